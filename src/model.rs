//! The types every layer shares: a socket as the kernel reports it, the processes holding it,
//! and what the catalog says it is for. Plain data only: nothing here does I/O or parsing.

use std::fmt;
use std::net::IpAddr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Transport protocol of a socket, as `ss` groups them.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
    Unix,
}

impl Proto {
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Unix => "unix",
        }
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Address family.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Ipv4,
    Ipv6,
    Unix,
}

/// Socket type: TCP is a stream, UDP a datagram socket; Unix sockets may be any of three.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum SockType {
    Stream,
    Dgram,
    Seqpacket,
}

impl SockType {
    /// From the kernel's `SOCK_*` value (1 stream, 2 dgram, 5 seqpacket).
    pub fn from_kernel(v: u32) -> Option<SockType> {
        match v {
            1 => Some(SockType::Stream),
            2 => Some(SockType::Dgram),
            5 => Some(SockType::Seqpacket),
            _ => None,
        }
    }
}

/// Connection state, named as in the JSON output. `Unconn` is the kernel's TCP_CLOSE, which is
/// how unconnected UDP and Unix sockets are reported (ss prints UNCONN for it).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum State {
    Listen,
    Established,
    SynSent,
    SynRecv,
    FinWait1,
    FinWait2,
    TimeWait,
    CloseWait,
    LastAck,
    Closing,
    Unconn,
    BoundInactive,
    Unknown,
}

impl State {
    /// From the kernel's `TCP_*` state number (include/net/tcp_states.h). Unix sockets reuse
    /// the same numbers. TCP_NEW_SYN_RECV (12), how request sockets are dumped, is SYN_RECV.
    pub fn from_kernel(v: u8) -> State {
        match v {
            1 => State::Established,
            2 => State::SynSent,
            3 | 12 => State::SynRecv,
            4 => State::FinWait1,
            5 => State::FinWait2,
            6 => State::TimeWait,
            7 => State::Unconn,
            8 => State::CloseWait,
            9 => State::LastAck,
            10 => State::Listen,
            11 => State::Closing,
            13 => State::BoundInactive,
            _ => State::Unknown,
        }
    }

    /// The name used in JSON (`"TIME_WAIT"`).
    pub fn as_str(self) -> &'static str {
        match self {
            State::Listen => "LISTEN",
            State::Established => "ESTABLISHED",
            State::SynSent => "SYN_SENT",
            State::SynRecv => "SYN_RECV",
            State::FinWait1 => "FIN_WAIT1",
            State::FinWait2 => "FIN_WAIT2",
            State::TimeWait => "TIME_WAIT",
            State::CloseWait => "CLOSE_WAIT",
            State::LastAck => "LAST_ACK",
            State::Closing => "CLOSING",
            State::Unconn => "UNCONN",
            State::BoundInactive => "BOUND_INACTIVE",
            State::Unknown => "UNKNOWN",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Bytes from the target (a unix path, a process name) that may not be UTF-8. Kept exactly;
/// renderers decide how to show them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct RawText(pub Vec<u8>);

impl RawText {
    pub fn new(bytes: impl Into<Vec<u8>>) -> RawText {
        RawText(bytes.into())
    }
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// The text if it is valid UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }
    /// Lossy UTF-8 (invalid bytes become U+FFFD); not for display of control bytes.
    pub fn lossy(&self) -> String {
        String::from_utf8_lossy(&self.0).into_owned()
    }
}

impl From<&str> for RawText {
    fn from(s: &str) -> RawText {
        RawText(s.as_bytes().to_vec())
    }
}

/// A unix socket's bound name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum UnixName {
    /// Not bound (most client ends and socketpairs).
    Unnamed,
    /// A filesystem path exactly as bound: relative names stay relative (`etc/istio/proxy/XDS`).
    Path(RawText),
    /// An abstract name (without the leading NUL byte).
    Abstract(RawText),
}

/// One end of a socket.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Endpoint {
    Inet {
        addr: IpAddr,
        port: u16,
    },
    /// Local end of a unix socket.
    UnixLocal(UnixName),
    /// Remote end of a unix socket: the peer socket's inode, when connected.
    UnixPeer {
        peer_inode: Option<u64>,
    },
}

impl Endpoint {
    pub fn port(&self) -> Option<u16> {
        match self {
            Endpoint::Inet { port, .. } => Some(*port),
            _ => None,
        }
    }
    pub fn addr(&self) -> Option<IpAddr> {
        match self {
            Endpoint::Inet { addr, .. } => Some(*addr),
            _ => None,
        }
    }
}

/// What kind of process holds a socket.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    PilotAgent,
    Envoy,
    Ztunnel,
    Istiod,
    LinkerdProxy,
    App,
}

impl Kind {
    pub const ALL: [Kind; 6] = [
        Kind::PilotAgent,
        Kind::Envoy,
        Kind::Ztunnel,
        Kind::Istiod,
        Kind::LinkerdProxy,
        Kind::App,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::PilotAgent => "pilot-agent",
            Kind::Envoy => "envoy",
            Kind::Ztunnel => "ztunnel",
            Kind::Istiod => "istiod",
            Kind::LinkerdProxy => "linkerd-proxy",
            Kind::App => "app",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Facts about a process, read from `/proc/<pid>`, that classification rests on.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProcessInfo {
    pub pid: i32,
    pub ppid: i32,
    pub comm: RawText,
    /// Target of `/proc/<pid>/exe`, when readable.
    pub exe: Option<RawText>,
    /// argv, split at NUL.
    pub cmdline: Vec<RawText>,
    pub uid: Option<u32>,
    /// comm of the parent process, when it could be read.
    pub parent_comm: Option<RawText>,
    /// exe of the parent process, when it could be read.
    pub parent_exe: Option<RawText>,
    /// Inode of `/proc/<pid>/ns/net`.
    pub netns_inode: Option<u64>,
}

/// Why a socket has no holder in the listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Unowned {
    /// Some processes' fds could not be read (privilege or policy): its holder may be one.
    Hidden,
    /// Every visible process's fds were read and none holds it: its holder lives outside this
    /// pid namespace (another container of the pod that shares no pid namespace, a node agent).
    OutsidePidNamespace,
    /// No process holds it: TIME_WAIT and orphaned sockets (inode 0), or, seen from the node's
    /// pid namespace where every process is visible, one only the kernel holds.
    NoProcess,
}

impl Unowned {
    pub fn as_str(self) -> &'static str {
        match self {
            Unowned::Hidden => "hidden",
            Unowned::OutsidePidNamespace => "outside_pid_namespace",
            Unowned::NoProcess => "no_process",
        }
    }
}

/// A process holding a socket through one fd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub process: std::sync::Arc<ProcessInfo>,
    pub fd: i32,
    pub kind: Kind,
    /// What the classification rests on (for `-o wide`), e.g. "exe envoy, parent pilot-agent".
    /// Shared by every holder of one process, as `process` is.
    pub basis: std::sync::Arc<str>,
    /// The pod container the process runs in, from its cgroup (None off a node, or outside
    /// any pod). Shared by every holder of one process: Envoy holds thousands of sockets.
    pub container: Option<std::sync::Arc<ContainerRef>>,
}

/// A pod on this node, as the kubelet's log directories name it. The UID comes from the
/// cgroup tree; namespace and name are None when no log directory names the UID.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
pub struct PodRef {
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub uid: String,
}

impl fmt::Display for PodRef {
    /// `default/productpage-v1-abc`, or `uid 8f2c...` when the name is unknown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.namespace, &self.name) {
            (Some(ns), Some(name)) => write!(f, "{ns}/{name}"),
            _ => write!(f, "uid {}", self.uid),
        }
    }
}

/// A container of a pod (or the pod's own cgroup, above its containers, when `id` is None).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContainerRef {
    pub pod: PodRef,
    /// The runtime's container ID (64 hex), from the cgroup.
    pub id: Option<String>,
    /// The container's name in the pod spec, from the kubelet's log links or directories.
    pub name: Option<String>,
}

/// The mesh role of a port or unix path, from the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Role {
    /// `istio` or `linkerd`.
    pub mesh: String,
    /// The kind of process that should own it.
    pub component: Kind,
    /// Short name, e.g. `admin`.
    pub name: String,
    pub description: String,
    /// Where the fact comes from (a path in the upstream repository).
    pub source: String,
    /// Versions the entry holds for, e.g. `< 1.25`; empty when always.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub versions: String,
}

/// One socket, as dumped, then filled in by attribution and annotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Socket {
    pub proto: Proto,
    pub family: Family,
    pub sock_type: SockType,
    pub state: State,
    pub local: Endpoint,
    pub remote: Endpoint,
    pub inode: u64,
    pub uid: Option<u32>,
    /// For listeners: the accept queue length; otherwise bytes in the receive queue.
    pub recv_q: u32,
    /// For listeners: the backlog; otherwise bytes in the send queue.
    pub send_q: u32,
    pub v6only: Option<bool>,
    pub mark: Option<u32>,
    /// INET_DIAG_CGROUP_ID (Linux 5.7+), when the kernel sent it.
    pub cgroup_id: Option<u64>,
    /// The kernel's socket cookie (inet sockets over netlink): what a destroy event names the
    /// socket by, since it carries no inode (issue 16).
    pub cookie: Option<u64>,
    pub holders: Vec<Holder>,
    /// For a socket no process is seen holding: why (`unowned::classify`); None while it has
    /// holders, or when the processes could not be listed at all.
    pub unowned: Option<Unowned>,
    /// For a socket no visible process holds: the pod container whose cgroup created it,
    /// found through `cgroup_id` (cgroup v2). Boxed: most sockets have none (issue 5).
    pub cgroup_owner: Option<Box<ContainerRef>>,
    /// Boxed: most sockets have none, and inline they were half of every socket's size (at
    /// 40k sockets, 10 MB; issue 5).
    pub role: Option<Box<Role>>,
    pub peer_role: Option<Box<Role>>,
    pub warnings: Vec<String>,
}

impl Socket {
    /// A socket with nothing attributed or annotated yet.
    pub fn new(
        proto: Proto,
        family: Family,
        sock_type: SockType,
        state: State,
        local: Endpoint,
        remote: Endpoint,
        inode: u64,
    ) -> Socket {
        Socket {
            proto,
            family,
            sock_type,
            state,
            local,
            remote,
            inode,
            uid: None,
            recv_q: 0,
            send_q: 0,
            v6only: None,
            mark: None,
            cgroup_id: None,
            cookie: None,
            holders: Vec::new(),
            unowned: None,
            cgroup_owner: None,
            role: None,
            peer_role: None,
            warnings: Vec::new(),
        }
    }

    pub fn is_listening(&self) -> bool {
        // As `ss -l`: LISTEN, plus UNCONN (bound UDP and unix datagram sockets), plus a bound
        // unix datagram socket a client connect()ed to, which ss shows ESTAB but which still
        // receives.
        matches!(self.state, State::Listen | State::Unconn) || self.is_connected_to_dgram()
    }

    /// A named unix datagram socket with no peer of its own, in another state than UNCONN:
    /// since Linux 5.15 a client's connect() marks the socket it connects to ESTABLISHED too
    /// (the client itself has a peer, or no name).
    pub fn is_connected_to_dgram(&self) -> bool {
        self.proto == Proto::Unix
            && self.sock_type == SockType::Dgram
            && matches!(
                &self.local,
                Endpoint::UnixLocal(UnixName::Path(p) | UnixName::Abstract(p)) if !p.is_empty()
            )
            && matches!(self.remote, Endpoint::UnixPeer { peer_inode: None })
    }
}

/// How the holders of sockets are found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FdWalk {
    /// In the kernel (`Bpf`) when that is allowed and works, else through `/proc`.
    #[default]
    Auto,
    /// A BPF `task_file` iterator reads every process's fd table in the kernel, in one pass
    /// (`fd_iter`, `sys::bpf`). Only where it sees what `/proc` would show: in the initial pid
    /// namespace, with its `/proc`, CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH (or
    /// CAP_DAC_OVERRIDE), each holder then checked as `/proc` would (`as_proc_shows`);
    /// loading it needs CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN.
    Bpf,
    /// `readlink` of every `/proc/<pid>/fd/<n>`, as ss and lsof do.
    Proc,
}

impl FdWalk {
    pub fn name(self) -> &'static str {
        match self {
            FdWalk::Auto => "auto",
            FdWalk::Bpf => "bpf",
            FdWalk::Proc => "proc",
        }
    }
}
