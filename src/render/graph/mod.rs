//! The pod as a graph: processes (grouped by container), the ports and unix paths they listen
//! on, and who talks to whom, built from the same listing the table and JSON take. Pure: no
//! I/O; every byte from the target is escaped here, so the renderers only quote for their format.

pub mod dot;
pub mod mermaid;
pub mod style;
pub mod svg;
pub mod text;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

use crate::escape::escape;
use crate::listing::Inspection;
use crate::model::{ContainerRef, Endpoint, Kind, PodRef, Proto, Socket, State, UnixName};
use crate::render::table::role_name;

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

/// Node identity while building; sorted for a stable drawing order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Key {
    Process(i32),
    Hidden {
        container: Option<Arc<ContainerRef>>,
        ztunnel: bool,
    },
    Closed,
    Listener {
        owners: Vec<Key>,
        proto: Proto,
        port: u16,
        addr: IpAddr,
    },
    UnixPath {
        owners: Vec<Key>,
        name: Vec<u8>,
        abstract_: bool,
    },
    Remote {
        addr: IpAddr,
        port: Option<u16>,
    },
    Remotes {
        label: String,
    },
}

/// A node while building: what it is, its container, its warnings.
type Pending = (What, Option<Arc<ContainerRef>>, Vec<String>);

struct Builder<'a> {
    ins: &'a Inspection,
    nodes: HashMap<Key, Pending>,
    edges: BTreeMap<(Key, Key, EdgeKind), (usize, Vec<String>)>,
    notes: Vec<String>,
}

/// Build the graph of a listing.
pub fn build(ins: &Inspection) -> Graph {
    let mut b = Builder {
        ins,
        nodes: HashMap::new(),
        edges: BTreeMap::new(),
        notes: Vec::new(),
    };
    b.listeners();
    b.connections();
    b.group_remotes();
    b.finish()
}

impl<'a> Builder<'a> {
    /// The keys of a socket's owners: each holding process once, or the hidden or closed
    /// stand-in when no process holds it.
    fn owners(&mut self, s: &'a Socket) -> Vec<Key> {
        let mut keys = Vec::new();
        for h in &s.holders {
            let key = Key::Process(h.process.pid);
            if keys.contains(&key) {
                continue;
            }
            let outside = match (h.process.netns_inode, self.ins.netns.inode) {
                (Some(a), Some(b)) => a != b,
                _ => false,
            };
            self.nodes.entry(key.clone()).or_insert_with(|| {
                (
                    What::Process {
                        kind: h.kind,
                        pid: h.process.pid,
                        name: escape(h.process.comm.as_bytes()),
                        outside,
                    },
                    h.container.clone(),
                    Vec::new(),
                )
            });
            keys.push(key);
        }
        if keys.is_empty() {
            let key = if s.inode == 0 || s.state == State::TimeWait {
                self.nodes
                    .entry(Key::Closed)
                    .or_insert_with(|| (What::Closed, None, Vec::new()));
                Key::Closed
            } else {
                let ztunnel = s.mark == Some(ZTUNNEL_MARK);
                let container = s.cgroup_owner.as_deref().cloned().map(Arc::new);
                let key = Key::Hidden {
                    container: container.clone(),
                    ztunnel,
                };
                self.nodes
                    .entry(key.clone())
                    .or_insert_with(|| (What::Hidden { ztunnel }, container, Vec::new()));
                key
            };
            keys.push(key);
        }
        keys.sort();
        keys
    }

    fn edge(&mut self, from: Key, to: Key, kind: EdgeKind, warnings: &[String]) {
        let e = self.edges.entry((from, to, kind)).or_default();
        e.0 += 1;
        for w in warnings {
            let w = escape(w.as_bytes());
            if !e.1.contains(&w) {
                e.1.push(w);
            }
        }
    }

    /// Listening inet sockets with a port, and unix sockets with a name.
    fn listeners(&mut self) {
        let ins = self.ins;
        for s in ins.sockets.iter().filter(|s| s.is_listening()) {
            let key = match &s.local {
                Endpoint::Inet { addr, port } if *port != 0 => Key::Listener {
                    owners: self.owners(s),
                    proto: s.proto,
                    port: *port,
                    addr: *addr,
                },
                Endpoint::UnixLocal(UnixName::Path(p)) => Key::UnixPath {
                    owners: self.owners(s),
                    name: p.as_bytes().to_vec(),
                    abstract_: false,
                },
                Endpoint::UnixLocal(UnixName::Abstract(p)) => Key::UnixPath {
                    owners: self.owners(s),
                    name: p.as_bytes().to_vec(),
                    abstract_: true,
                },
                _ => continue,
            };
            self.add_listener(key, s);
        }
    }

    fn add_listener(&mut self, key: Key, s: &Socket) {
        let role = s.role.as_deref().map(role_name);
        let owners = match &key {
            Key::Listener { owners, .. } | Key::UnixPath { owners, .. } => owners.clone(),
            _ => Vec::new(),
        };
        let entry = self.nodes.entry(key.clone()).or_insert_with(|| {
            let what = match (&key, &s.local) {
                (
                    Key::UnixPath {
                        name, abstract_, ..
                    },
                    _,
                ) => What::UnixPath {
                    name: if *abstract_ {
                        format!("@{}", escape(name))
                    } else {
                        escape(name)
                    },
                    role: role.clone(),
                    sockets: 0,
                },
                (_, Endpoint::Inet { addr, port }) => What::Listener {
                    proto: s.proto,
                    port: *port,
                    addr: *addr,
                    role: role.clone(),
                    sockets: 0,
                },
                _ => What::Closed,
            };
            (what, None, Vec::new())
        });
        if let What::Listener { sockets, .. } | What::UnixPath { sockets, .. } = &mut entry.0 {
            *sockets += 1;
        }
        for w in &s.warnings {
            let w = escape(w.as_bytes());
            if !entry.2.contains(&w) {
                entry.2.push(w);
            }
        }
        // The group of a port is its holder's: drawn next to it.
        if let Some(Key::Process(pid)) = owners.first()
            && let Some(c) = s
                .holders
                .iter()
                .find(|h| h.process.pid == *pid)
                .and_then(|h| h.container.clone())
        {
            entry.1 = Some(c);
        } else if let Some(Key::Hidden { container, .. }) = owners.first() {
            entry.1 = container.clone();
        }
        for o in owners {
            // One holder edge per (holder, port): not one per socket.
            self.edges
                .entry((o, key.clone(), EdgeKind::Holds))
                .or_insert((1, Vec::new()));
        }
    }

    fn connections(&mut self) {
        let ins = self.ins;
        // Listener nodes by (proto, port): where a connection's server end lands.
        let mut by_port: HashMap<(Proto, u16), Vec<(IpAddr, Key)>> = HashMap::new();
        // Every unix listener key by name: where a unix client lands.
        let mut unix_by_inode: HashMap<u64, &Socket> = HashMap::new();
        let mut local_addrs: HashSet<IpAddr> = HashSet::new();
        let mut tuples: HashMap<(Proto, IpAddr, u16, IpAddr, u16), &Socket> = HashMap::new();
        for s in &ins.sockets {
            match (&s.local, &s.remote) {
                (Endpoint::Inet { addr, port }, remote) => {
                    local_addrs.insert(addr.to_canonical());
                    if s.is_listening() && *port != 0 {
                        // The key this listener got in `listeners`.
                        let key = self.listener_key(s);
                        by_port
                            .entry((s.proto, *port))
                            .or_default()
                            .push((addr.to_canonical(), key));
                    } else if let Endpoint::Inet { addr: ra, port: rp } = remote {
                        tuples.insert(
                            (s.proto, addr.to_canonical(), *port, ra.to_canonical(), *rp),
                            s,
                        );
                    }
                }
                (Endpoint::UnixLocal(_), _) => {
                    unix_by_inode.insert(s.inode, s);
                }
                _ => {}
            }
        }
        // The listener a connection's server end belongs to: on its address, else a wildcard
        // (only for what reaches the namespace's own addresses); among SO_REUSEPORT listeners
        // of several processes, the one held by the process holding the accepted socket.
        let find_listener = |proto: Proto,
                             addr: IpAddr,
                             port: u16,
                             local: bool,
                             accepted: Option<&Socket>|
         -> Option<Key> {
            let addr = addr.to_canonical();
            let ls = by_port.get(&(proto, port))?;
            let mut cands: Vec<&Key> = ls
                .iter()
                .filter(|(a, _)| *a == addr)
                .map(|(_, k)| k)
                .collect();
            if cands.is_empty() {
                if !local && !addr.is_loopback() {
                    return None;
                }
                cands = ls
                    .iter()
                    .filter(|(a, _)| {
                        a.is_unspecified()
                            && (a.is_ipv6() || addr.is_ipv4() || addr.is_unspecified())
                    })
                    .map(|(_, k)| k)
                    .collect();
                if cands.is_empty() {
                    cands = ls
                        .iter()
                        .filter(|(a, _)| a.is_unspecified())
                        .map(|(_, k)| k)
                        .collect();
                }
            }
            let held_by_holder = |k: &Key| match (k, accepted) {
                (Key::Listener { owners, .. }, Some(s)) => s
                    .holders
                    .iter()
                    .any(|h| owners.contains(&Key::Process(h.process.pid))),
                _ => false,
            };
            cands
                .iter()
                .find(|k| held_by_holder(k))
                .or(cands.first())
                .map(|k| (*k).clone())
        };

        let mut unpaired_unix = 0usize;
        for s in ins.sockets.iter().filter(|s| !s.is_listening()) {
            let kind = if s.holders.is_empty() && (s.inode == 0 || s.state == State::TimeWait) {
                EdgeKind::Closed
            } else {
                EdgeKind::Connects
            };
            match (&s.local, &s.remote) {
                (
                    Endpoint::Inet { addr, port },
                    Endpoint::Inet {
                        addr: raddr,
                        port: rport,
                    },
                ) => {
                    let (addr, raddr) = (addr.to_canonical(), raddr.to_canonical());
                    let peer = tuples.get(&(s.proto, raddr, *rport, addr, *port)).copied();
                    let mine = find_listener(s.proto, addr, *port, true, Some(s));
                    let theirs =
                        peer.and_then(|p| find_listener(s.proto, raddr, *rport, true, Some(p)));
                    let server_side = match (&mine, &theirs) {
                        (Some(_), None) => true,
                        // Both ends on a listening port: the lower port is the server's.
                        (Some(_), Some(_)) => port < rport,
                        _ => false,
                    };
                    if server_side {
                        if peer.is_some() {
                            continue; // the client's end draws it
                        }
                        let Some(to) = mine else { continue };
                        let from = self.remote(raddr, None, s.peer_role.as_deref());
                        self.edge(from, to, kind, &s.warnings);
                        continue;
                    }
                    let to = match (theirs, peer) {
                        (Some(l), _) => l,
                        // Both ends here, neither on a listener: process to process.
                        (None, Some(p)) => match self.owners(p).into_iter().next() {
                            Some(k) => k,
                            None => continue,
                        },
                        (None, None) => match find_listener(
                            s.proto,
                            raddr,
                            *rport,
                            local_addrs.contains(&raddr),
                            None,
                        ) {
                            Some(l) => l,
                            None => self.remote(raddr, Some(*rport), s.peer_role.as_deref()),
                        },
                    };
                    for from in self.owners(s) {
                        self.edge(from, to.clone(), kind, &s.warnings);
                    }
                }
                (Endpoint::UnixLocal(name), Endpoint::UnixPeer { peer_inode }) => {
                    let peer = peer_inode.and_then(|p| unix_by_inode.get(&p)).copied();
                    let named = |n: &UnixName| !matches!(n, UnixName::Unnamed);
                    let peer_name = match peer.map(|p| &p.local) {
                        Some(Endpoint::UnixLocal(n)) if named(n) => Some(n),
                        _ => None,
                    };
                    match (named(name), peer_name) {
                        // The accepted end: its client's end draws the edge.
                        (true, _) if peer.is_some() => {}
                        (false, Some(pn)) => {
                            let Some(p) = peer else { continue };
                            let to = self.unix_path_node(p, pn);
                            for from in self.owners(s) {
                                self.edge(from, to.clone(), kind, &s.warnings);
                            }
                        }
                        _ => unpaired_unix += 1,
                    }
                }
                _ => {}
            }
        }
        if unpaired_unix > 0 {
            self.notes.push(format!(
                "{unpaired_unix} unix sockets with no named end (socket pairs, or a peer \
                 outside the listing) are not drawn"
            ));
        }
    }

    /// The key `listeners` gave this listening inet socket (its owners computed again).
    fn listener_key(&mut self, s: &'a Socket) -> Key {
        let (addr, port) = match &s.local {
            Endpoint::Inet { addr, port } => (*addr, *port),
            _ => (IpAddr::from([0, 0, 0, 0]), 0),
        };
        Key::Listener {
            owners: self.owners(s),
            proto: s.proto,
            port,
            addr,
        }
    }

    /// The unix path node a client reached through the server's accepted socket `p`: the
    /// listener's node when the listing has it (same holders, same name), else a node of its
    /// own attached to the accepting process.
    fn unix_path_node(&mut self, p: &'a Socket, name: &UnixName) -> Key {
        let (bytes, abstract_) = match name {
            UnixName::Path(b) => (b.as_bytes().to_vec(), false),
            UnixName::Abstract(b) => (b.as_bytes().to_vec(), true),
            UnixName::Unnamed => (Vec::new(), false),
        };
        let owners = self.owners(p);
        let key = Key::UnixPath {
            owners: owners.clone(),
            name: bytes.clone(),
            abstract_,
        };
        if let Some(existing) = self.nodes.keys().find(|k| {
            matches!(k, Key::UnixPath { name: n, abstract_: a, owners: o }
                if *n == bytes && *a == abstract_ && o.iter().any(|x| owners.contains(x)))
        }) {
            return existing.clone();
        }
        let name = if abstract_ {
            format!("@{}", escape(&bytes))
        } else {
            escape(&bytes)
        };
        let container = p.holders.first().and_then(|h| h.container.clone());
        self.nodes.insert(
            key.clone(),
            (
                What::UnixPath {
                    name,
                    role: p.role.as_deref().map(role_name),
                    sockets: 0,
                },
                container,
                Vec::new(),
            ),
        );
        for o in owners {
            self.edges
                .entry((o, key.clone(), EdgeKind::Holds))
                .or_insert((1, Vec::new()));
        }
        key
    }

    fn remote(
        &mut self,
        addr: IpAddr,
        port: Option<u16>,
        role: Option<&crate::model::Role>,
    ) -> Key {
        let key = Key::Remote { addr, port };
        self.nodes.entry(key.clone()).or_insert_with(|| {
            (
                What::Remote {
                    addr,
                    port,
                    role: role.map(role_name),
                },
                None,
                Vec::new(),
            )
        });
        key
    }

    /// Past `REMOTE_LIMIT` remote ends, one node per role (servers: per role, or per port
    /// without one; clients: per role, or all of them), then the smallest groups as one.
    fn group_remotes(&mut self) {
        let remotes: Vec<Key> = self
            .nodes
            .keys()
            .filter(|k| matches!(k, Key::Remote { .. }))
            .cloned()
            .collect();
        if remotes.len() <= REMOTE_LIMIT {
            return;
        }
        let mut label_of: HashMap<Key, String> = HashMap::new();
        for k in &remotes {
            let Some((What::Remote { port, role, .. }, ..)) = self.nodes.get(k) else {
                continue;
            };
            let label = match (role, port) {
                (Some(r), Some(p)) => format!("{r} :{p}"),
                (None, Some(p)) => format!("servers :{p}"),
                (Some(r), None) => format!("{r} clients"),
                (None, None) => "clients outside the pod".into(),
            };
            label_of.insert(k.clone(), label);
        }
        // Too many distinct groups still (servers on many ports): keep the busiest, fold the
        // rest into one.
        let mut weight: HashMap<&str, usize> = HashMap::new();
        for ((from, to, _), (n, _)) in &self.edges {
            for k in [from, to] {
                if let Some(l) = label_of.get(k) {
                    *weight.entry(l.as_str()).or_default() += n;
                }
            }
        }
        let mut ranked: Vec<(&str, usize)> = weight.into_iter().collect();
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let keep: HashSet<String> = ranked
            .iter()
            .take(REMOTE_LIMIT - 1)
            .map(|(l, _)| l.to_string())
            .collect();
        for l in label_of.values_mut() {
            if !keep.contains(l) {
                *l = "other remote ends".into();
            }
        }
        let mut addresses: HashMap<String, HashSet<IpAddr>> = HashMap::new();
        for (k, l) in &label_of {
            if let Key::Remote { addr, .. } = k {
                addresses.entry(l.clone()).or_default().insert(*addr);
            }
        }
        for k in &remotes {
            self.nodes.remove(k);
        }
        for (label, addrs) in &addresses {
            self.nodes.insert(
                Key::Remotes {
                    label: label.clone(),
                },
                (
                    What::Remotes {
                        label: label.clone(),
                        addresses: addrs.len(),
                    },
                    None,
                    Vec::new(),
                ),
            );
        }
        let edges = std::mem::take(&mut self.edges);
        let map = |k: Key| match label_of.get(&k) {
            Some(l) => Key::Remotes { label: l.clone() },
            None => k,
        };
        for ((from, to, kind), (n, ws)) in edges {
            let e = self.edges.entry((map(from), map(to), kind)).or_default();
            e.0 += n;
            for w in ws {
                if !e.1.contains(&w) {
                    e.1.push(w);
                }
            }
        }
        self.notes.push(format!(
            "{} remote ends grouped by role (more than {REMOTE_LIMIT})",
            remotes.len()
        ));
    }

    fn finish(self) -> Graph {
        let ins = self.ins;
        let mut keys: Vec<Key> = self.nodes.keys().cloned().collect();
        // Containers first (the listing's pod before others), then processes and their ports.
        let group_of = |k: &Key| self.nodes.get(k).and_then(|n| n.1.clone());
        keys.sort_by(|a, b| {
            let (ga, gb) = (group_of(a), group_of(b));
            (ga.is_none(), ga, a).cmp(&(gb.is_none(), gb, b))
        });
        let mut groups: Vec<Group> = Vec::new();
        let mut group_index: HashMap<Arc<ContainerRef>, usize> = HashMap::new();
        let mut index: HashMap<Key, usize> = HashMap::new();
        let mut nodes = Vec::with_capacity(keys.len());
        for k in &keys {
            let Some((what, container, warnings)) = self.nodes.get(k) else {
                continue;
            };
            let id = nodes.len();
            let group = container.as_ref().map(|c| {
                *group_index.entry(c.clone()).or_insert_with(|| {
                    groups.push(group(c, ins.pod.as_ref()));
                    groups.len() - 1
                })
            });
            index.insert(k.clone(), id);
            nodes.push(Node {
                id,
                group,
                what: what.clone(),
                warnings: warnings.clone(),
            });
        }
        let mut edges: Vec<Edge> = self
            .edges
            .into_iter()
            .filter_map(|((from, to, kind), (count, warnings))| {
                Some(Edge {
                    from: *index.get(&from)?,
                    to: *index.get(&to)?,
                    kind,
                    count,
                    warnings,
                })
            })
            .collect();
        edges.sort_by_key(|e| (e.from, e.to, e.kind));
        let mut notes = self.notes;
        if ins.hidden_owners > 0 {
            notes.insert(
                0,
                format!(
                    "the owners of {} could not be seen (the warnings say what shows them)",
                    crate::render::table::plural_n(ins.hidden_owners, "socket", "sockets")
                ),
            );
        }
        for w in &ins.warnings {
            notes.push(escape(w.as_bytes()));
        }
        let mut title = escape(ins.netns.target.as_bytes());
        if let Some(pod) = &ins.pod
            && !title.contains(&pod.to_string())
        {
            title.push_str(&format!(" (pod {})", escape(pod.to_string().as_bytes())));
        }
        Graph {
            title,
            groups,
            nodes,
            edges,
            notes,
        }
    }
}

fn group(c: &ContainerRef, pod: Option<&PodRef>) -> Group {
    let name = escape(c.name.as_deref().unwrap_or("?").as_bytes());
    let own = pod.is_some_and(|p| p.uid == c.pod.uid);
    Group {
        label: if own {
            name
        } else {
            format!("{}/{name}", escape(c.pod.to_string().as_bytes()))
        },
        outside: !own && pod.is_some(),
    }
}

#[cfg(test)]
mod tests;
