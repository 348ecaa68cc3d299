//! What the pipeline is asked: a target, where to read its sockets from, which to keep, and
//! where the host's files are. Plain data, built from the command line by `plan`; nothing here
//! reads the system.

use crate::model::{FdWalk, Proto, Socket};
use crate::sys::node::HostRoot;

/// Which network namespace to look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The one podports runs in.
    Current,
    /// The one process PID is in.
    Pid(i32),
    /// A name under /run/netns, or a path to an nsfs file.
    Netns(String),
    /// A pod on this node by name; without a namespace, the name must be unique on the node.
    Pod {
        namespace: Option<String>,
        name: String,
    },
    /// A pod on this node by UID.
    PodUid(String),
    /// The pod of a container on this node, by ID or a unique prefix of it.
    Container(String),
    /// Every pod of the node (of one namespace, if given): see `sweep::sweep`.
    AllPods { namespace: Option<String> },
}

/// Where sockets come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Netlink,
    Proc,
}

/// Which sockets to keep.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters {
    pub listening: bool,
    /// Protocols to show; empty means all.
    pub protos: Vec<Proto>,
    /// Keep sockets whose local or remote port is one of these; empty means all.
    pub ports: Vec<u16>,
}

impl Filters {
    pub(crate) fn wants(&self, proto: Proto) -> bool {
        self.protos.is_empty() || self.protos.contains(&proto)
    }

    pub(crate) fn keeps(&self, s: &Socket) -> bool {
        if !self.wants(s.proto) || (self.listening && !s.is_listening()) {
            return false;
        }
        self.ports.is_empty()
            || [s.local.port(), s.remote.port()]
                .into_iter()
                .flatten()
                .any(|p| self.ports.contains(&p))
    }
}

/// What to inspect and how.
#[derive(Debug, Clone)]
pub struct Request {
    pub target: Target,
    pub source: Source,
    pub filters: Filters,
    /// The host's files: `/proc`, `/run/netns`, the kubelet's pod records (another root when
    /// the host's `/` is mounted elsewhere, as `/host` in a DaemonSet).
    pub host: HostRoot,
    /// How socket holders are found.
    pub fd_walk: FdWalk,
}
