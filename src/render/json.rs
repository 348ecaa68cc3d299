//! The JSON document (`-o json`, version 1): typed so that tests and users can read it back.
//! Pure. Fields may be added, never renamed.
//!
//! Text from the target (process names, cmdlines, unix paths) can be any bytes. A field such
//! as `comm` holds the text as UTF-8, with invalid bytes replaced by U+FFFD; when that
//! happened, a sibling field with the `_hex` suffix (`comm_hex`, `path_hex`, `exe_hex`)
//! carries the exact bytes in lowercase hex. `cmdline_hex` is present when any argument was
//! not UTF-8 and lists every argument in hex.

use std::io::{self, Write};

use serde::{Deserialize, Serialize, Serializer};

use crate::inspect::{Inspection, Source};
use crate::model::{
    ContainerRef, Endpoint, Family, Holder, Kind, PodRef, Proto, RawText, Role, SockType, Socket,
    UnixName,
};

pub const VERSION: u32 = 1;

/// `S` is how the sockets are held: a list when read back, a stream when written (`write`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Document<S = Vec<SocketDoc>> {
    pub version: u32,
    pub netns: NetnsDoc,
    /// `netlink`, or `proc` when /proc/<pid>/net was read instead.
    pub source: String,
    pub sockets: S,
    pub warnings: Vec<String>,
    /// Sockets whose owners are hidden for lack of privilege.
    pub hidden_owners: usize,
    /// The pod this listing is for (pod targets, `--pid` of a pod's process, `--all-pods`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<PodRef>,
    /// The namespace is the node's own: hostNetwork pods.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub host_network: bool,
    /// The pods sharing the node's namespace (`--all-pods`, hostNetwork).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pods: Vec<PodRef>,
}

/// A pod container: the runtime's ID (from the cgroup) and the name in the pod spec (from
/// the kubelet's log links); either may be null.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerDoc {
    pub id: Option<String>,
    pub name: Option<String>,
}

/// The pod container whose cgroup created a socket no visible process holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupOwnerDoc {
    pub pod: PodRef,
    pub container: Option<ContainerDoc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetnsDoc {
    pub inode: Option<u64>,
    pub target: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SocketDoc {
    pub proto: Proto,
    pub family: Family,
    pub state: String,
    #[serde(rename = "type")]
    pub sock_type: SockType,
    pub local: EndpointDoc,
    pub remote: EndpointDoc,
    pub inode: u64,
    pub uid: Option<u32>,
    pub recv_q: u32,
    pub send_q: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub v6only: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mark: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup_id: Option<u64>,
    pub processes: Vec<ProcessDoc>,
    /// When no process is seen holding the socket: the pod and container whose cgroup
    /// created it, from `cgroup_id` (cgroup v2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup_owner: Option<CgroupOwnerDoc>,
    pub role: Option<Role>,
    pub peer_role: Option<Role>,
    pub warnings: Vec<String>,
}

/// One end of a socket: `{addr, port}` for TCP/UDP, `{path}` for a unix socket's own end
/// (null when unnamed; abstract names start with `@`), `{peer_inode}` for a unix socket's
/// remote end (null when not connected).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EndpointDoc {
    Inet(InetEnd),
    UnixLocal(UnixLocalEnd),
    UnixPeer(UnixPeerEnd),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InetEnd {
    /// Without brackets; the IPv6 wildcard is `::`.
    pub addr: String,
    pub port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnixLocalEnd {
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_hex: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub r#abstract: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnixPeerEnd {
    pub peer_inode: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessDoc {
    pub pid: i32,
    pub comm: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comm_hex: Option<String>,
    pub fd: i32,
    pub kind: Kind,
    /// What the kind rests on: exe, comm, parent, arguments.
    pub kind_basis: String,
    pub ppid: i32,
    pub uid: Option<u32>,
    pub exe: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exe_hex: Option<String>,
    pub cmdline: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmdline_hex: Option<Vec<String>>,
    /// The network namespace the process lives in (ztunnel holds ambient pods' listeners
    /// from its own).
    pub netns_inode: Option<u64>,
    /// The pod container the process runs in, from its cgroup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<ContainerDoc>,
    /// The pod the process runs in (ztunnel, holding an ambient pod's sockets, is in its own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<PodRef>,
}

pub fn document(ins: &Inspection) -> Document {
    with_sockets(ins, ins.sockets.iter().map(socket_doc).collect())
}

/// Writes `document(ins)` as pretty JSON, byte for byte, but makes each socket's `SocketDoc`
/// only as it is written: the whole list of them cost more memory than the sockets themselves
/// (issue 5).
pub fn write(out: &mut impl Write, ins: &Inspection) -> io::Result<()> {
    serde_json::to_writer_pretty(out, &with_sockets(ins, Streamed(&ins.sockets)))
        .map_err(io::Error::from)
}

/// Serializes as the `Vec<SocketDoc>` would (`collect_seq` is what `Vec` does).
struct Streamed<'a>(&'a [Socket]);

impl Serialize for Streamed<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(socket_doc))
    }
}

fn with_sockets<S>(ins: &Inspection, sockets: S) -> Document<S> {
    Document {
        version: VERSION,
        netns: NetnsDoc {
            inode: ins.netns.inode,
            target: ins.netns.target.clone(),
        },
        source: match ins.source {
            Source::Netlink => "netlink".into(),
            Source::Proc => "proc".into(),
        },
        sockets,
        warnings: ins.warnings.clone(),
        hidden_owners: ins.hidden_owners,
        pod: ins.pod.clone(),
        host_network: ins.host_network,
        pods: ins.pods.clone(),
    }
}

fn container_doc(c: &ContainerRef) -> Option<ContainerDoc> {
    (c.id.is_some() || c.name.is_some()).then(|| ContainerDoc {
        id: c.id.clone(),
        name: c.name.clone(),
    })
}

pub fn socket_doc(s: &Socket) -> SocketDoc {
    SocketDoc {
        proto: s.proto,
        family: s.family,
        state: s.state.as_str().to_string(),
        sock_type: s.sock_type,
        local: endpoint_doc(&s.local),
        remote: endpoint_doc(&s.remote),
        inode: s.inode,
        uid: s.uid,
        recv_q: s.recv_q,
        send_q: s.send_q,
        v6only: s.v6only,
        mark: s.mark,
        cgroup_id: s.cgroup_id,
        processes: s.holders.iter().map(process_doc).collect(),
        cgroup_owner: s.cgroup_owner.as_ref().map(|c| CgroupOwnerDoc {
            pod: c.pod.clone(),
            container: container_doc(c),
        }),
        role: s.role.clone(),
        peer_role: s.peer_role.clone(),
        warnings: s.warnings.clone(),
    }
}

fn endpoint_doc(e: &Endpoint) -> EndpointDoc {
    match e {
        Endpoint::Inet { addr, port } => EndpointDoc::Inet(InetEnd {
            addr: addr.to_string(),
            port: *port,
        }),
        Endpoint::UnixLocal(name) => EndpointDoc::UnixLocal(match name {
            UnixName::Unnamed => UnixLocalEnd {
                path: None,
                path_hex: None,
                r#abstract: false,
            },
            UnixName::Path(p) => UnixLocalEnd {
                path: Some(p.lossy()),
                path_hex: hex_if_not_utf8(p),
                r#abstract: false,
            },
            UnixName::Abstract(p) => UnixLocalEnd {
                path: Some(format!("@{}", p.lossy())),
                path_hex: hex_if_not_utf8(p),
                r#abstract: true,
            },
        }),
        Endpoint::UnixPeer { peer_inode } => EndpointDoc::UnixPeer(UnixPeerEnd {
            peer_inode: *peer_inode,
        }),
    }
}

fn process_doc(h: &Holder) -> ProcessDoc {
    let p = &h.process;
    let cmdline_hex = if p.cmdline.iter().any(|a| a.as_str().is_none()) {
        Some(p.cmdline.iter().map(|a| hex(a.as_bytes())).collect())
    } else {
        None
    };
    ProcessDoc {
        pid: p.pid,
        comm: p.comm.lossy(),
        comm_hex: hex_if_not_utf8(&p.comm),
        fd: h.fd,
        kind: h.kind,
        kind_basis: h.basis.clone(),
        ppid: p.ppid,
        uid: p.uid,
        exe: p.exe.as_ref().map(RawText::lossy),
        exe_hex: p.exe.as_ref().and_then(hex_if_not_utf8),
        cmdline: p.cmdline.iter().map(RawText::lossy).collect(),
        cmdline_hex,
        netns_inode: p.netns_inode,
        container: h.container.as_ref().and_then(container_doc),
        pod: h.container.as_ref().map(|c| c.pod.clone()),
    }
}

fn hex_if_not_utf8(t: &RawText) -> Option<String> {
    match t.as_str() {
        Some(_) => None,
        None => Some(hex(t.as_bytes())),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
