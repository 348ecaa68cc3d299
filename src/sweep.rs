//! The orchestrator for `--all-pods`: every pod of the node (of one namespace, if given), each
//! network namespace resolved and dumped once, one fd walk for all of them, then place,
//! annotate, sort per namespace. Gives a `Sweep`; holds no stage logic of its own.

use std::collections::{BTreeMap, HashSet};

use crate::annotate;
use crate::attribute;
use crate::catalog::Catalog;
use crate::dump;
use crate::error::Error;
use crate::listing::{self, Inspection, NetnsInfo, Sweep};
use crate::model::{FdWalk, PodRef, Socket};
use crate::place;
use crate::pods::LivePod;
use crate::pods::scan::scan;
use crate::request::{Request, Source};
use crate::resolve;
use crate::sys::node as sysnode;
use crate::sys::procfs::ProcRoot;

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
        let mut resolved = match resolve::resolve_pid(pid, &procfs) {
            Ok(r) => r,
            Err(e) => {
                warnings.push(format!("{label} skipped: {e}"));
                continue;
            }
        };
        // The pid was chosen by the scan: reused since, it would show another namespace.
        if let (Some(scanned), Some(opened)) = (inode, resolved.inode)
            && scanned != opened
        {
            warnings.push(format!(
                "{label} skipped: pid {pid} was reused between the scan of the node and the                  opening of its network namespace; run again"
            ));
            continue;
        }
        resolved.label = label.clone();
        let mut w = Vec::new();
        let (mut sockets, source) = match dump::dump(req, &resolved, &procfs, &mut w) {
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
        .flat_map(|g| attribute::wanted_inodes(&g.sockets))
        .collect();
    let owners = attribute::owners(&procfs, &wanted);
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
    let mut pids = Vec::new();
    for mut g in groups {
        let hidden_owners =
            attribute::apply_owners(&procfs, owners.as_ref(), &mut g.sockets, &mut g.warnings);
        let placed = place::place(
            &req.host,
            &procfs,
            Some(&node),
            Some(g.pid),
            g.inode,
            &mut g.sockets,
            &mut Vec::new(),
        );
        annotate::annotate(&mut g.sockets, catalog);
        listing::sort(&mut g.sockets);
        let pods: Vec<PodRef> = g.pods.iter().map(|p| p.pod.clone()).collect();
        let (pod, pods) = match (g.host, pods.as_slice()) {
            (true, _) => (None, pods),
            (false, [one]) => (Some(one.clone()), Vec::new()),
            (false, _) => (placed.pod.or_else(|| pods.first().cloned()), pods),
        };
        pids.push(g.pid);
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
    let mut pairs: Vec<(Inspection, i32)> = listings.into_iter().zip(pids).collect();
    pairs.sort_by(|(a, _), (b, _)| (a.host_network, &a.pod).cmp(&(b.host_network, &b.pod)));
    let (listings, pids): (Vec<Inspection>, Vec<i32>) = pairs.into_iter().unzip();
    let idle = node
        .idle_pods()
        .into_iter()
        .filter(|p| namespace.is_none_or(|ns| p.namespace.as_deref() == Some(ns)))
        .collect();
    Ok(Sweep {
        listings,
        warnings,
        idle,
        pids,
    })
}
