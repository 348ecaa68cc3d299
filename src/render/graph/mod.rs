//! The pod as a graph: processes (grouped by container), the ports and unix paths they listen
//! on, and who talks to whom, built from the same listing the table and JSON take. Pure: no
//! I/O; every byte from the target is escaped here, so the renderers only quote for their format.

mod build;
pub mod dot;
pub mod mermaid;
pub mod style;
pub mod svg;
pub mod text;

pub use build::build;

use std::net::IpAddr;

use crate::model::{Kind, Proto};

/// Past this many remote endpoints, remote endpoints of one role (or one server port, or every
/// client outside the pod) become one node with a count of addresses.
pub const REMOTE_LIMIT: usize = 16;

/// SO_MARK ztunnel sets on the listeners it opens inside ambient pods.
const ZTUNNEL_MARK: u32 = 1337;

/// The picture of one listing. Every text in it is already escaped (no control character, no
/// invalid UTF-8), ready to be quoted for DOT, Mermaid, XML or a terminal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Graph {
    /// What was looked at: `netns x (pod default/productpage)`.
    pub title: String,
    pub groups: Vec<Group>,
    /// In drawing order; a node's `id` is its index.
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
    /// What the picture leaves out or cannot show: the listing's warnings, hidden owners,
    /// unix socket pairs not drawn, remote endpoints grouped.
    pub notes: Vec<String>,
}

/// A container of a pod: the box its processes are drawn in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// `istio-proxy`, or `istio-system/ztunnel-x7k2p/istio-proxy` for another pod's.
    pub label: String,
    /// The container is not one of the listing's pod (ambient ztunnel).
    pub outside: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub id: usize,
    /// Index into `Graph::groups`.
    pub group: Option<usize>,
    pub what: What,
    /// The socket warnings this node carries (an app on 15021, admin beyond loopback).
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum What {
    /// A process holding sockets of the namespace.
    Process {
        kind: Kind,
        pid: i32,
        /// Its comm, escaped.
        name: String,
        /// It lives in another network namespace (ambient ztunnel).
        outside: bool,
    },
    /// The owner of live sockets that no visible process holds (privilege missing, or a
    /// process in another pid namespace). `ztunnel` when the sockets carry ztunnel's mark.
    Hidden { ztunnel: bool },
    /// Connections no process holds any more (TIME_WAIT and other orphans).
    Closed,
    /// One listening port of one holder: several SO_REUSEPORT sockets are one node.
    Listener {
        proto: Proto,
        port: u16,
        addr: IpAddr,
        role: Option<String>,
        sockets: usize,
    },
    /// A unix socket name (escaped; `@name` when abstract) and its listening sockets.
    UnixPath {
        name: String,
        role: Option<String>,
        sockets: usize,
    },
    /// An end outside the listing: a server the pod connects to (with its port), or a client
    /// connecting from outside (port None: its ephemeral port says nothing).
    Remote {
        addr: IpAddr,
        port: Option<u16>,
        role: Option<String>,
    },
    /// Remote ends grouped past `REMOTE_LIMIT`: `istiod xds-tls :15012`, `clients`.
    Remotes { label: String, addresses: usize },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EdgeKind {
    /// Holder -> its listener or unix path.
    Holds,
    /// Client -> the listener, path or remote end it reached: live connections.
    Connects,
    /// The same for connections no process holds any more (TIME_WAIT).
    Closed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    pub from: usize,
    pub to: usize,
    pub kind: EdgeKind,
    /// Sockets merged into this edge (1 for `Holds`).
    pub count: usize,
    /// The warnings of the connections it stands for.
    pub warnings: Vec<String>,
}

/// The ways to draw a graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The indented tree, for a terminal.
    Text,
    Dot,
    Mermaid,
    Svg,
}

/// Draw `g` in `format`; `color` only colours the text tree's warnings.
pub fn write(
    out: &mut impl std::io::Write,
    g: &Graph,
    format: Format,
    color: bool,
) -> std::io::Result<()> {
    match format {
        Format::Text => text::write(out, g, color),
        Format::Dot => dot::write(out, g),
        Format::Mermaid => mermaid::write(out, g),
        Format::Svg => svg::write(out, g),
    }
}

impl Graph {
    pub fn node(&self, id: usize) -> Option<&Node> {
        self.nodes.get(id)
    }
}

/// `wildcard`, `loopback`, or the address: how a listener's bind reads.
pub fn bind_label(addr: IpAddr) -> String {
    match addr.to_canonical() {
        IpAddr::V4(a) if a.is_unspecified() => "wildcard".into(),
        IpAddr::V6(a) if a.is_unspecified() => "wildcard v6".into(),
        IpAddr::V4(a) if a.octets() == [127, 0, 0, 1] => "loopback".into(),
        IpAddr::V6(a) if a.is_loopback() => "loopback v6".into(),
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => format!("[{a}]"),
    }
}

fn addr_text(addr: IpAddr) -> String {
    match addr {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => format!("[{a}]"),
    }
}

impl Node {
    /// The node's label, one line per entry; the renderers join them their way.
    pub fn lines(&self) -> Vec<String> {
        let mut l = Vec::new();
        match &self.what {
            What::Process {
                kind,
                pid,
                name,
                outside,
            } => {
                l.push(format!("{kind} {pid}"));
                if name != kind.as_str() {
                    l.push(name.clone());
                }
                if *outside {
                    l.push("outside this netns".into());
                }
            }
            What::Hidden { ztunnel } => {
                l.push("owner not visible".into());
                if *ztunnel {
                    l.push("ztunnel (SO_MARK 1337)".into());
                }
            }
            What::Closed => l.push("closed, no process".into()),
            What::Listener {
                proto,
                port,
                addr,
                role,
                sockets,
            } => {
                l.push(format!("{port}/{proto} {}", bind_label(*addr)));
                if let Some(r) = role {
                    l.push(r.clone());
                }
                if *sockets > 1 {
                    l.push(format!("{sockets} sockets"));
                }
            }
            What::UnixPath {
                name,
                role,
                sockets,
            } => {
                l.push(name.clone());
                if let Some(r) = role {
                    l.push(r.clone());
                }
                if *sockets > 1 {
                    l.push(format!("{sockets} sockets"));
                }
            }
            What::Remote { addr, port, role } => {
                match (role, port) {
                    (Some(r), Some(p)) => l.push(format!("{r} :{p}")),
                    (Some(r), None) => l.push(r.clone()),
                    (None, _) => {}
                }
                match port {
                    Some(p) => l.push(format!("{}:{p}", addr_text(*addr))),
                    None => l.push(addr_text(*addr)),
                }
            }
            What::Remotes { label, addresses } => {
                l.push(label.clone());
                l.push(format!("{addresses} addresses"));
            }
        }
        for w in &self.warnings {
            l.push(format!("warning: {w}"));
        }
        l
    }

    /// A short class for styling: the process kind, or what the node is.
    pub fn class(&self) -> &'static str {
        match &self.what {
            What::Process { kind, .. } => kind.as_str(),
            What::Hidden { .. } => "hidden",
            What::Closed => "closed",
            What::Listener { .. } | What::UnixPath { .. } if !self.warnings.is_empty() => "warn",
            What::Listener { .. } => "port",
            What::UnixPath { .. } => "path",
            What::Remote { .. } | What::Remotes { .. } => "remote",
        }
    }
}

impl Edge {
    /// `3` for three connections, `2 closed`; empty for a holder's edge.
    pub fn label(&self) -> String {
        match self.kind {
            EdgeKind::Holds => String::new(),
            EdgeKind::Connects => self.count.to_string(),
            EdgeKind::Closed => format!("{} closed", self.count),
        }
    }
}

#[cfg(test)]
mod tests;
