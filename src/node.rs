//! Node-level targets: a pod by name, UID or container, and the sweep of every pod of a node,
//! found from the kubelet's and the runtimes' records under the host root (no API server, no
//! runtime socket). Resolves pods to processes and reuses `inspect`'s stages; adds the stage
//! that names each socket owner's pod and container. Reads through `sys` only.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use crate::annotate;
use crate::catalog::Catalog;
use crate::error::Error;
use crate::inspect::{self, Inspection, NetnsInfo, Request, Source, Target};
use crate::model::{ContainerRef, PodRef, Socket};
use crate::parse::{cgroup, runtime};
use crate::pods::{LivePod, Node};
use crate::sys::node::{self as sysnode, HostRoot};
use crate::sys::procfs::{FdWalk, ProcRoot};

/// A pod target, resolved: the process that stands for the pod, and the node it was found on.
#[derive(Debug, Clone)]
pub struct PodTarget {
    pub pid: i32,
    pub pod: PodRef,
    /// `pod default/productpage-v1-...` (or `container <id> of pod ...`).
    pub label: String,
    pub node: Node,
}

/// Reads the node's pod records: log directories, container links, one walk of
/// `<proc>/*/cgroup`, and the runtime's config of any container those leave unnamed.
pub fn scan(host: &HostRoot, procfs: &ProcRoot) -> Result<Node, Error> {
    let dirs = match sysnode::pod_dirs(host) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            return Err(Error::Unreachable(format!(
                "{}: {e}; reading the kubelet's pod directories needs root",
                host.pod_logs().display()
            )));
        }
    };
    let links = sysnode::container_links(host);
    let procs = sysnode::pod_processes(procfs).map_err(|e| {
        Error::Unreachable(format!(
            "cannot list processes in {}: {e}; give --host-root the directory the host's / is \
             mounted at (with hostPID, so that its proc is the host's)",
            procfs.path().display()
        ))
    })?;
    let node = Node::new(dirs, links, procs);
    // The runtime's records, only for containers the kubelet's names leave unnamed.
    let runtime = node
        .ids_needing_runtime()
        .into_iter()
        .filter_map(|id| {
            let record = runtime::parse_config(&sysnode::runtime_config(host, &id)?).ok()?;
            Some((id, record))
        })
        .collect();
    Ok(node.with_runtime(runtime))
}

/// Resolves `--pod`, `--pod-uid` and `--container` to a process of the pod; None for the
/// other targets.
pub fn resolve(req: &Request, procfs: &ProcRoot) -> Result<Option<PodTarget>, Error> {
    let logs = req.host.pod_logs();
    let lookup = |e: crate::pods::Lookup| e.into_error(&logs);
    let target = match &req.target {
        Target::Pod { namespace, name } => {
            let node = scan(&req.host, procfs)?;
            let uid = node.find_pod(namespace.as_deref(), name).map_err(lookup)?;
            target_of(node, uid, None)?
        }
        Target::PodUid(asked) => {
            let node = scan(&req.host, procfs)?;
            let uid = node.find_uid(asked).map_err(lookup)?;
            target_of(node, uid, None)?
        }
        Target::Container(asked) => {
            let node = scan(&req.host, procfs)?;
            let id = node.find_container(asked).map_err(lookup)?;
            let uid = node
                .processes()
                .iter()
                .find(|p| p.placement.container.as_ref().is_some_and(|c| c.id == id))
                .and_then(|p| node.container_ref(&p.placement))
                .map(|c| c.pod.uid)
                .ok_or_else(|| {
                    Error::Unreachable(format!(
                        "container {id} runs, but no pod is known for it: its cgroup names no \
                         pod UID and no link under {} names the container",
                        req.host.container_logs().display()
                    ))
                })?;
            target_of(node, uid, Some(id))?
        }
        _ => return Ok(None),
    };
    Ok(Some(target))
}

fn target_of(node: Node, uid: String, container: Option<String>) -> Result<PodTarget, Error> {
    let pod = node.pod_ref(&uid);
    let pid = node
        .pick_pid(Some(&uid), container.as_deref())
        .ok_or_else(|| {
            Error::Unreachable(format!(
                "pod {pod} has no running process on this node any more; run again"
            ))
        })?;
    let label = match &container {
        Some(id) => {
            let short: String = id.chars().take(13).collect();
            format!("container {short} of pod {pod}")
        }
        None => format!("pod {pod}"),
    };
    Ok(PodTarget {
        pid,
        pod,
        label,
        node,
    })
}

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
}

/// One network namespace of the sweep, before attribution.
struct Group {
    label: String,
    pid: i32,
    inode: Option<u64>,
    pods: Vec<LivePod>,
    host: bool,
    sockets: Vec<Socket>,
    source: Source,
    warnings: Vec<String>,
}

/// `--all-pods`: every pod with a running process (of `namespace`, if given), each network
/// namespace dumped once (hostNetwork pods share the node's: it is listed once, for all of
/// them), and one walk of `/proc/*/fd` for the owners of every socket of every pod.
pub fn sweep(req: &Request, namespace: Option<&str>, catalog: &Catalog) -> Result<Sweep, Error> {
    let procfs = ProcRoot::new(req.host.proc_dir()).with_fd_walk(req.fd_walk);
    let node = scan(&req.host, &procfs)?;
    let live: Vec<LivePod> = node
        .live_pods()
        .into_iter()
        .filter(|p| namespace.is_none_or(|ns| p.pod.namespace.as_deref() == Some(ns)))
        .collect();
    if live.is_empty() && !node.has_pod_dirs() && namespace.is_none() {
        return Err(Error::Unreachable(format!(
            "no pods found: no pod directory under {} and no process in a pod's cgroup under \
             {}; run on a Kubernetes node, or in a DaemonSet with the host's / mounted (at \
             /host, with hostPID) and --host-root /host",
            req.host.pod_logs().display(),
            procfs.path().display()
        )));
    }
    let host_ns = sysnode::host_netns(&procfs);
    // Pods by network namespace; a pod whose namespace may not be named is its own group.
    let mut by_netns: BTreeMap<(Option<u64>, String), Vec<LivePod>> = BTreeMap::new();
    for p in live {
        let key = match p.netns {
            Some(ns) => (Some(ns), String::new()),
            None => (None, p.pod.uid.clone()),
        };
        by_netns.entry(key).or_default().push(p);
    }
    let mut warnings = Vec::new();
    let mut groups: Vec<Group> = Vec::new();
    for ((inode, _), pods) in by_netns {
        let host = inode.is_some() && inode == host_ns;
        let Some(first) = pods.first() else { continue };
        let label = if host {
            "the node's network namespace (hostNetwork pods)".to_string()
        } else {
            format!("pod {}", first.pod)
        };
        let pid = first.pid;
        let mut resolved = match inspect::resolve_pid(pid, &procfs) {
            Ok(r) => r,
            Err(e) => {
                warnings.push(format!("{label} skipped: {e}"));
                continue;
            }
        };
        resolved.label = label.clone();
        let mut w = Vec::new();
        let (mut sockets, source) = match inspect::dump(req, &resolved, &procfs, &mut w) {
            Ok(d) => d,
            Err(e) => {
                warnings.push(format!("{label} skipped: {e}"));
                continue;
            }
        };
        sockets.retain(|s| req.filters.keeps(s));
        groups.push(Group {
            label,
            pid,
            inode: resolved.inode,
            pods,
            host,
            sockets,
            source,
            warnings: w,
        });
    }
    // One walk of /proc/*/fd for the sockets of every namespace: socket inodes are unique
    // node-wide.
    let wanted: HashSet<u64> = groups
        .iter()
        .flat_map(|g| inspect::wanted_inodes(&g.sockets))
        .collect();
    let owners = if wanted.is_empty() {
        Ok(Default::default())
    } else {
        procfs.owners(&wanted, None)
    };
    if let Err(e) = &owners
        && req.fd_walk == FdWalk::Bpf
    {
        return Err(Error::Privilege(e.to_string()));
    }
    let fd_walk = owners
        .as_ref()
        .ok()
        .map(|o| o.via)
        .filter(|v| *v != FdWalk::Auto);
    let mut listings = Vec::new();
    for mut g in groups {
        let hidden_owners =
            inspect::apply_owners(&procfs, owners.as_ref(), &mut g.sockets, &mut g.warnings);
        let placed = place(
            &req.host,
            &procfs,
            Some(&node),
            Some(g.pid),
            g.inode,
            &mut g.sockets,
            &mut Vec::new(),
        );
        annotate::annotate(&mut g.sockets, catalog);
        inspect::sort(&mut g.sockets);
        let pods: Vec<PodRef> = g.pods.iter().map(|p| p.pod.clone()).collect();
        let (pod, pods) = match (g.host, pods.as_slice()) {
            (true, _) => (None, pods),
            (false, [one]) => (Some(one.clone()), Vec::new()),
            (false, _) => (placed.pod.or_else(|| pods.first().cloned()), pods),
        };
        listings.push(Inspection {
            netns: NetnsInfo {
                inode: g.inode,
                target: g.label,
            },
            source: g.source,
            sockets: g.sockets,
            warnings: g.warnings,
            hidden_owners,
            fd_walk,
            pod,
            host_network: g.host,
            pods,
        });
    }
    listings.sort_by(|a, b| (a.host_network, &a.pod).cmp(&(b.host_network, &b.pod)));
    let idle = node
        .idle_pods()
        .into_iter()
        .filter(|p| namespace.is_none_or(|ns| p.namespace.as_deref() == Some(ns)))
        .collect();
    Ok(Sweep {
        listings,
        warnings,
        idle,
    })
}
