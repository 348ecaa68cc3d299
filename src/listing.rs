//! What the pipeline gives: one namespace's listing (`Inspection`), the node's sweep of them,
//! and the order sockets are listed in. Plain data for `render`, `check`, `probe` and `watch`;
//! nothing here reads the system.

use crate::model::{FdWalk, PodRef, Socket};
use crate::request::Source;

/// The namespace looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetnsInfo {
    pub inode: Option<u64>,
    /// How the user named it: `current`, `pid 1234`, `netns /run/netns/x`.
    pub target: String,
}

/// Everything one inspection found.
#[derive(Debug, Clone)]
pub struct Inspection {
    pub netns: NetnsInfo,
    pub source: Source,
    pub sockets: Vec<Socket>,
    /// Things the user must know: a fallback taken, owners hidden, a message skipped.
    pub warnings: Vec<String>,
    /// Sockets whose owners could not be seen for lack of privilege.
    pub hidden_owners: usize,
    /// How the holders were found (`Bpf` or `Proc`); None when no socket needed one.
    pub fd_walk: Option<FdWalk>,
    /// The pod this listing is for (a pod target, or the pod of a `--pid` target).
    pub pod: Option<PodRef>,
    /// The namespace is the node's own (hostNetwork pods).
    pub host_network: bool,
    /// The pods sharing this namespace when it is not one pod's own (hostNetwork pods).
    pub pods: Vec<PodRef>,
}

/// The sweep of a whole node: one listing per network namespace.
#[derive(Debug, Clone)]
pub struct Sweep {
    /// One per pod network namespace, sorted by pod; the node's own namespace (hostNetwork
    /// pods) last, once.
    pub listings: Vec<Inspection>,
    /// Pods skipped (exited mid-sweep, namespace refused) and why.
    pub warnings: Vec<String>,
    /// Pods with a log directory but no running process.
    pub idle: Vec<PodRef>,
    /// For each listing, in the same order: the pid whose network namespace was read (for a
    /// later look inside it, as `check` reads the pod's address families).
    pub pids: Vec<i32>,
}

/// Listeners first, then by protocol, local port and address, then inode, so the output is
/// stable from run to run. No two sockets share a key (an inode, or for inode 0, a 4-tuple), so
/// an unstable sort gives the same order, in place: a stable one took a scratch copy of half the
/// sockets (issue 5).
pub fn sort(sockets: &mut [Socket]) {
    sockets.sort_unstable_by(|a, b| {
        (
            !a.is_listening(),
            a.proto,
            a.local.port(),
            &a.local,
            a.state,
            &a.remote,
            a.inode,
        )
            .cmp(&(
                !b.is_listening(),
                b.proto,
                b.local.port(),
                &b.local,
                b.state,
                &b.remote,
                b.inode,
            ))
    });
}
