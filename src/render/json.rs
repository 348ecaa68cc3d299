//! The JSON document (`-o json`, version 1): typed so that tests and users can read it back.
//! Pure. Fields may be added, never renamed.
//!
//! Text from the target (process names, cmdlines, unix paths) can be any bytes. A field such
//! as `comm` holds the text as UTF-8, with invalid bytes replaced by U+FFFD; when that
//! happened, a sibling field with the `_hex` suffix (`comm_hex`, `path_hex`, `exe_hex`)
//! carries the exact bytes in lowercase hex. `cmdline_hex` is present when any argument was
//! not UTF-8 and lists every argument in hex.

use std::io::{self, Write};
use std::sync::mpsc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::ser::Formatter;

use crate::listing::Inspection;
use crate::model::{
    ContainerRef, Endpoint, Family, Holder, Kind, PodRef, Proto, RawText, Role, SockType, Socket,
    UnixName, Unowned,
};
use crate::request::Source;

pub const VERSION: u32 = 1;

/// `S` is how the sockets are held: a list when read back, a stream when written (`write`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Document<S = Vec<SocketDoc>> {
    pub version: u32,
    pub netns: NetnsDoc,
    /// `netlink`, or `proc` when /proc/<pid>/net was read instead.
    pub source: String,
    pub sockets: S,
    pub warnings: Vec<String>,
    /// Sockets whose owners are hidden (`unowned: hidden`): some processes' fds could not be
    /// read. Sockets held from outside the pid namespace are not counted.
    pub hidden_owners: usize,
    /// How the processes holding sockets were found: `bpf` (one pass in the kernel) or
    /// `proc` (`/proc/<pid>/fd`); absent when no socket needed an owner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fd_walk: Option<String>,
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ContainerDoc {
    pub id: Option<String>,
    pub name: Option<String>,
}

/// The pod container whose cgroup created a socket no visible process holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CgroupOwnerDoc {
    pub pod: PodRef,
    pub container: Option<ContainerDoc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct NetnsDoc {
    pub inode: Option<u64>,
    pub target: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SocketDoc {
    pub proto: Proto,
    pub family: Family,
    /// `LISTEN`, `ESTABLISHED`, ... as `State` names them.
    #[schemars(with = "crate::model::State")]
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
    /// When no process is seen holding the socket, why: `hidden` (some processes' fds could
    /// not be read, its holder may be one of them), `outside_pid_namespace` (every visible
    /// process's fds were read: the holder lives in another pid namespace, such as another
    /// container of the pod or a node agent), `no_process` (TIME_WAIT and orphaned sockets;
    /// seen from the node's pid namespace, a socket only the kernel holds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unowned: Option<Unowned>,
    /// When no process is seen holding the socket: the pod and container whose cgroup
    /// created it, from `cgroup_id` (cgroup v2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup_owner: Option<CgroupOwnerDoc>,
    pub role: Option<Role>,
    pub peer_role: Option<Role>,
    pub warnings: Vec<String>,
}

/// One end of a socket: `{addr, port}` for TCP/UDP, `{path}` for a unix socket's own end
/// (`{"path": null}` when unnamed; abstract names start with `@`), `{peer_inode}` for a unix
/// socket's remote end (`{"peer_inode": null}` when not connected).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum EndpointDoc {
    Inet(InetEnd),
    UnixLocal(UnixLocalEnd),
    UnixPeer(UnixPeerEnd),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InetEnd {
    /// Without brackets; the IPv6 wildcard is `::`.
    pub addr: String,
    pub port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UnixLocalEnd {
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_hex: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub r#abstract: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UnixPeerEnd {
    pub peer_inode: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
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

/// Writes `document(ins)` as pretty JSON, byte for byte (`to_writer_pretty`), but faster and
/// in memory proportional to one chunk of sockets, not to the listing: each socket's
/// `SocketDoc` is made only as it is written, and chunks of sockets are rendered on two
/// threads while the document around them comes from serde as usual (issue 5).
pub fn write(out: &mut impl Write, ins: &Inspection) -> io::Result<()> {
    // The document with a marker for its socket list, which goes where the marker is.
    let mut frame = Vec::new();
    with_sockets(ins, Marker)
        .serialize(&mut serde_json::Serializer::with_formatter(
            &mut frame,
            Pretty::default(),
        ))
        .map_err(io::Error::from)?;
    let Some((head, tail, depth)) = split_at_marker(&frame) else {
        // Some text of the frame holds the marker itself (a namespace path may): then the
        // sockets go one at a time, through serde.
        let mut serializer = serde_json::Serializer::with_formatter(out, Pretty::default());
        return with_sockets(ins, Streamed(&ins.sockets))
            .serialize(&mut serializer)
            .map_err(io::Error::from);
    };
    out.write_all(head)?;
    write_sockets(out, &ins.sockets, depth)?;
    out.write_all(tail)
}

/// Sockets rendered per chunk: ~0.5 MB of JSON each, two in flight.
const CHUNK: usize = 512;

/// The JSON array of `sockets` as the pretty printer writes it at `depth`.
fn write_sockets(out: &mut impl Write, sockets: &[Socket], depth: usize) -> io::Result<()> {
    if sockets.is_empty() {
        return out.write_all(b"[]");
    }
    out.write_all(b"[")?;
    let mut chunks = sockets.chunks(CHUNK);
    std::thread::scope(|scope| -> io::Result<()> {
        let (jobs, inbox) = mpsc::sync_channel::<(&[Socket], Vec<u8>)>(1);
        let (results, done) = mpsc::sync_channel::<io::Result<Vec<u8>>>(1);
        scope.spawn(move || {
            for (chunk, mut buf) in inbox {
                buf.clear();
                let rendered = render(&mut buf, chunk, depth + 1, false).map(|()| buf);
                if results.send(rendered).is_err() {
                    break;
                }
            }
        });
        let (mut mine, mut spare) = (Vec::new(), Vec::new());
        let mut first = true;
        while let Some(chunk) = chunks.next() {
            let theirs = chunks.next();
            if let Some(theirs) = theirs {
                jobs.send((theirs, std::mem::take(&mut spare)))
                    .map_err(|_| io::Error::other("the JSON render thread stopped"))?;
            }
            mine.clear();
            render(&mut mine, chunk, depth + 1, first)?;
            first = false;
            out.write_all(&mine)?;
            if theirs.is_some() {
                spare = done
                    .recv()
                    .map_err(|_| io::Error::other("the JSON render thread stopped"))??;
                out.write_all(&spare)?;
            }
        }
        Ok(())
    })?;
    let mut close = Pretty {
        depth: depth + 1,
        has_value: true,
    };
    close.end_array(out)
}

/// Appends `sockets` as elements of an array whose elements are at `depth`, each preceded by
/// the line break the pretty printer puts before it.
fn render(buf: &mut Vec<u8>, sockets: &[Socket], depth: usize, first: bool) -> io::Result<()> {
    for (i, s) in sockets.iter().enumerate() {
        let pretty = Pretty {
            depth,
            has_value: false,
        };
        pretty.line_break(buf, !(first && i == 0))?;
        socket_doc(s)
            .serialize(&mut serde_json::Serializer::with_formatter(
                &mut *buf, pretty,
            ))
            .map_err(io::Error::from)?;
    }
    Ok(())
}

/// Stands for the socket list in the frame of the document.
struct Marker;

/// A string no listing holds outside its sockets: the frame's text is a namespace label,
/// warnings and pod names.
const MARKER: &str = "\u{1}podports: the sockets go here\u{1}";

impl Serialize for Marker {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(MARKER)
    }
}

/// (before, after, depth of the value) around the one occurrence of the marker in `frame`.
fn split_at_marker(frame: &[u8]) -> Option<(&[u8], &[u8], usize)> {
    let marker = serde_json::to_vec(MARKER).ok()?;
    let found: Vec<usize> = frame
        .windows(marker.len())
        .enumerate()
        .filter(|(_, w)| *w == marker.as_slice())
        .map(|(i, _)| i)
        .collect();
    let [at] = found.as_slice() else {
        return None;
    };
    let head = frame.get(..*at)?;
    let tail = frame.get(at + marker.len()..)?;
    // The value's depth is its key's: the indentation of the line it is on, in 2-space steps.
    let line = head.rsplit(|b| *b == b'\n').next()?;
    let indent = line.iter().take_while(|b| **b == b' ').count();
    Some((head, tail, indent / 2))
}

/// serde_json's `PrettyFormatter` (two-space indent), byte for byte, except that each line
/// break goes out with its indentation in one write: one write per level made the indentation
/// a third of the time of a 40k-socket listing (issue 5).
#[derive(Default)]
struct Pretty {
    depth: usize,
    has_value: bool,
}

/// `,\n` and enough indentation for any depth this document reaches in one write.
const BREAK: &[u8; 2 + 64] = b",\n                                                                ";

impl Pretty {
    fn line_break<W: ?Sized + Write>(&self, w: &mut W, comma: bool) -> io::Result<()> {
        let start = if comma { 0 } else { 1 };
        let mut spaces = self.depth * 2;
        let first = spaces.min(BREAK.len() - 2);
        w.write_all(BREAK.get(start..2 + first).unwrap_or_default())?;
        spaces -= first;
        while spaces > 0 {
            let n = spaces.min(BREAK.len() - 2);
            w.write_all(BREAK.get(2..2 + n).unwrap_or_default())?;
            spaces -= n;
        }
        Ok(())
    }
}

impl Formatter for Pretty {
    fn begin_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.depth += 1;
        self.has_value = false;
        w.write_all(b"[")
    }

    fn end_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.depth = self.depth.saturating_sub(1);
        if self.has_value {
            self.line_break(w, false)?;
        }
        w.write_all(b"]")
    }

    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.line_break(w, !first)
    }

    fn end_array_value<W: ?Sized + Write>(&mut self, _w: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }

    fn begin_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.depth += 1;
        self.has_value = false;
        w.write_all(b"{")
    }

    fn end_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.depth = self.depth.saturating_sub(1);
        if self.has_value {
            self.line_break(w, false)?;
        }
        w.write_all(b"}")
    }

    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.line_break(w, !first)
    }

    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }

    fn end_object_value<W: ?Sized + Write>(&mut self, _w: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }
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
        fd_walk: ins.fd_walk.map(|w| w.name().to_string()),
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
        unowned: s.unowned,
        cgroup_owner: s.cgroup_owner.as_ref().map(|c| CgroupOwnerDoc {
            pod: c.pod.clone(),
            container: container_doc(c),
        }),
        role: s.role.as_deref().cloned(),
        peer_role: s.peer_role.as_deref().cloned(),
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
        kind_basis: h.basis.to_string(),
        ppid: p.ppid,
        uid: p.uid,
        exe: p.exe.as_ref().map(RawText::lossy),
        exe_hex: p.exe.as_ref().and_then(hex_if_not_utf8),
        cmdline: p.cmdline.iter().map(RawText::lossy).collect(),
        cmdline_hex,
        netns_inode: p.netns_inode,
        container: h.container.as_deref().and_then(container_doc),
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

/// The JSON Schema (2020-12) of the document, from the types above: docs/podports.schema.json
/// is this, pretty-printed (tests/json_schema.rs keeps the two equal).
pub fn schema() -> serde_json::Value {
    let mut schema = schemars::schema_for!(Document).to_value();
    if let Some(o) = schema.as_object_mut() {
        o.insert(
            "title".into(),
            format!("podports -o json, version {VERSION}").into(),
        );
    }
    schema
}

#[cfg(test)]
mod tests;
