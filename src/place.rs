//! Stage 4, place: socket owners -> their containers and pods (from cgroups and the node's
//! records), and a pod for sockets no visible process holds (the cgroup that created them).
//! Reads through `sys` only; never changes who holds a socket.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::model::{ContainerRef, PodRef, Socket};
use crate::parse::cgroup;
use crate::pods::Node;
use crate::sys::node::{self as sysnode, HostRoot};
use crate::sys::procfs::ProcRoot;

/// What the placement stage found about the listing as a whole.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Placed {
    /// The pod the listing is for (a pod target, or the pod of a `--pid` target).
    pub pod: Option<PodRef>,
    /// The listing's namespace is the node's own (a hostNetwork pod).
    pub host_network: bool,
}

/// The placement stage, after attribution: names the pod and container of every socket
/// owner from its cgroup and, for a socket no visible process holds, the pod container whose
/// cgroup created it (cgroup v2 socket cgroup ids). `node` is the full scan when one was made
/// (pod targets, the sweep); otherwise only the owners' cgroups are read. `listing` is the
/// pid the namespace was taken from, if any.
pub fn place(
    host: &HostRoot,
    procfs: &ProcRoot,
    node: Option<&Node>,
    listing: Option<i32>,
    netns: Option<u64>,
    sockets: &mut [Socket],
    warnings: &mut Vec<String>,
) -> Placed {
    let light;
    let node = match node {
        Some(n) => n,
        None => {
            let mut pids: Vec<i32> = sockets
                .iter()
                .flat_map(|s| s.holders.iter().map(|h| h.process.pid))
                .chain(listing)
                .collect();
            pids.sort_unstable();
            pids.dedup();
            let procs: Vec<_> = pids
                .into_iter()
                .filter_map(|pid| sysnode::pod_process(procfs, pid))
                .collect();
            let orphans = sockets
                .iter()
                .any(|s| s.holders.is_empty() && s.cgroup_id.is_some_and(|id| id > 1));
            if procs.is_empty() && !orphans {
                return Placed::default();
            }
            light = Node::new(
                sysnode::pod_dirs(host).unwrap_or_default(),
                sysnode::container_links(host),
                procs,
            );
            &light
        }
    };
    // Once per process: Envoy holds thousands of sockets.
    let mut named: HashMap<i32, Option<Arc<ContainerRef>>> = HashMap::new();
    for s in sockets.iter_mut() {
        for h in &mut s.holders {
            h.container = named
                .entry(h.process.pid)
                .or_insert_with(|| {
                    node.process(h.process.pid)
                        .and_then(|p| node.container_ref(&p.placement))
                        .map(Arc::new)
                })
                .clone();
        }
    }
    cgroup_owners(host, node, sockets);
    let pod = listing
        .and_then(|pid| node.process(pid))
        .and_then(|p| node.container_ref(&p.placement))
        .map(|c| c.pod);
    let host_network = pod.is_some() && netns.is_some() && netns == sysnode::host_netns(procfs);
    if host_network && let Some(pod) = &pod {
        warnings.push(format!(
            "pod {pod} uses the node's network namespace (hostNetwork): these are the node's \
             sockets"
        ));
    }
    Placed { pod, host_network }
}

/// The pod containers of cgroup (v2) ids (the connection tracing's, for `--watch`): names
/// that stay true after the process in them is gone. Ids of no pod's cgroup are absent.
pub fn cgroup_containers(host: &HostRoot, ids: &HashSet<u64>) -> HashMap<u64, ContainerRef> {
    let wanted: HashSet<u64> = ids.iter().copied().filter(|id| *id > 1).collect();
    if wanted.is_empty() {
        return HashMap::new();
    }
    let Some(root) = sysnode::cgroup2_root(host) else {
        return HashMap::new();
    };
    let paths = sysnode::cgroup_paths(&root, &wanted);
    if paths.is_empty() {
        return HashMap::new();
    }
    let node = Node::new(
        sysnode::pod_dirs(host).unwrap_or_default(),
        sysnode::container_links(host),
        Vec::new(),
    );
    paths
        .into_iter()
        .filter_map(|(id, path)| {
            let placement = cgroup::parse_path(&path)?;
            Some((id, node.container_ref(&placement)?))
        })
        .collect()
}

/// Sockets without a visible owner, named by the cgroup that created them: on cgroup v2 the
/// socket's INET_DIAG_CGROUP_ID is the inode of that cgroup's directory. (On v1 the id is
/// that of the v2 tree all the same, which a v1-only host leaves at its root: nothing to say.)
fn cgroup_owners(host: &HostRoot, node: &Node, sockets: &mut [Socket]) {
    let wanted: HashSet<u64> = sockets
        .iter()
        .filter(|s| s.holders.is_empty())
        .filter_map(|s| s.cgroup_id)
        .filter(|id| *id > 1)
        .collect();
    if wanted.is_empty() {
        return;
    }
    let Some(root) = sysnode::cgroup2_root(host) else {
        return;
    };
    let paths = sysnode::cgroup_paths(&root, &wanted);
    for s in sockets.iter_mut().filter(|s| s.holders.is_empty()) {
        s.cgroup_owner = s
            .cgroup_id
            .and_then(|id| paths.get(&id))
            .and_then(|path| cgroup::parse_path(path))
            .and_then(|placement| node.container_ref(&placement))
            .map(Box::new);
    }
}
