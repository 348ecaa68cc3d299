//! PURE: the pods of a node, from what `sys::node` read (pod log directories, container log
//! links, the processes in pod cgroups). Picks the process that stands for a pod's network
//! namespace; names the pod and container of a process or a cgroup; lookup.rs finds a pod by
//! name, UID or container ID prefix, and says which pods come closest when none matches. No I/O.

mod lookup;
pub mod scan;

pub use lookup::{Lookup, edit_distance};

use std::collections::{BTreeMap, HashMap};

use crate::model::{ContainerRef, PodRef};
use crate::parse::cgroup::Placement;
use crate::parse::kubelet::ContainerLink;
use crate::parse::runtime::RuntimeRecord;
use crate::sys::node::{PodLogDir, PodProcess};

/// How many near matches an error lists.
const CLOSEST: usize = 5;

/// Everything known about the pods of one node.
#[derive(Debug, Clone, Default)]
pub struct Node {
    dirs: Vec<PodLogDir>,
    links: Vec<ContainerLink>,
    procs: Vec<PodProcess>,
    by_pid: HashMap<i32, usize>,
    /// The runtime's records of containers the kubelet's names leave unnamed, by container ID.
    runtime: HashMap<String, RuntimeRecord>,
}

/// A pod with running processes, for the sweep of the whole node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LivePod {
    pub pod: PodRef,
    /// The process that stands for the pod (see `Node::pick_pid`).
    pub pid: i32,
    /// The network namespace of most of its processes; None when their namespace links may
    /// not be read.
    pub netns: Option<u64>,
}

/// The pause process of a pod sandbox (`/pause` of registry.k8s.io/pause): it holds the
/// namespaces but is the least interesting process to name.
fn is_pause(p: &PodProcess) -> bool {
    p.comm.as_ref().is_some_and(|c| c.as_bytes() == b"pause")
}

/// A process that stands for its pod: alive (it has a network namespace, if one we may not
/// name) and not CRI-O's monitor, which sits in the pod's cgroup but in the host's network
/// namespace.
fn stands_for_pod(p: &PodProcess) -> bool {
    (p.netns.is_some() || p.netns_denied) && !p.placement.is_conmon()
}

impl Node {
    pub fn new(dirs: Vec<PodLogDir>, links: Vec<ContainerLink>, procs: Vec<PodProcess>) -> Node {
        let by_pid = procs.iter().enumerate().map(|(i, p)| (p.pid, i)).collect();
        Node {
            dirs,
            links,
            procs,
            by_pid,
            runtime: HashMap::new(),
        }
    }

    /// The same node, with the runtime's records (`config.json` annotations) of the
    /// containers `ids_needing_runtime` asked for.
    pub fn with_runtime(mut self, runtime: HashMap<String, RuntimeRecord>) -> Node {
        self.runtime = runtime;
        self
    }

    /// The container IDs of running processes that the kubelet's log links and directories
    /// leave without a container name, or whose pod they leave without a name: only for
    /// these is the runtime's own record worth reading.
    pub fn ids_needing_runtime(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .procs
            .iter()
            .filter(|p| !p.placement.is_conmon())
            .filter_map(|p| {
                let id = &p.placement.container.as_ref()?.id;
                let linked = self.links.iter().any(|l| id.starts_with(&l.id));
                let pod_named = self
                    .uid_of(&p.placement)
                    .is_some_and(|uid| self.kubelet_pod_name(&uid).is_some());
                (!linked || !pod_named).then(|| id.clone())
            })
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }

    pub fn has_pod_dirs(&self) -> bool {
        !self.dirs.is_empty()
    }

    pub fn processes(&self) -> &[PodProcess] {
        &self.procs
    }

    /// The pod and container of a process scanned into this node.
    pub fn process(&self, pid: i32) -> Option<&PodProcess> {
        self.by_pid.get(&pid).and_then(|i| self.procs.get(*i))
    }

    /// The pod UID of a process's placement: its own, or that of its container (a relative
    /// cgroup path names only the container; other processes or the log links know the pod).
    fn uid_of(&self, placement: &Placement) -> Option<String> {
        if let Some(uid) = &placement.pod_uid {
            return Some(uid.clone());
        }
        let id = &placement.container.as_ref()?.id;
        self.procs
            .iter()
            .filter(|p| p.placement.container.as_ref().is_some_and(|c| &c.id == id))
            .find_map(|p| p.placement.pod_uid.clone())
            .or_else(|| {
                self.links
                    .iter()
                    .filter(|l| id.starts_with(&l.id))
                    .find_map(|l| l.uid.clone())
            })
            .or_else(|| self.runtime.get(id).and_then(|r| r.pod_uid.clone()))
    }

    /// The pod with this UID, named from its log directory (or a container link), or by UID
    /// alone.
    pub fn pod_ref(&self, uid: &str) -> PodRef {
        let from_runtime = || {
            self.runtime
                .values()
                .find(|r| r.pod_uid.as_deref() == Some(uid) && r.pod_name.is_some())
                .map(|r| (r.pod_namespace.clone(), r.pod_name.clone()))
        };
        let (namespace, name) = self
            .kubelet_pod_name(uid)
            .or_else(from_runtime)
            .unwrap_or((None, None));
        PodRef {
            namespace,
            name,
            uid: uid.to_string(),
        }
    }

    /// (namespace, name) of the pod with this UID, from its log directory or a container link.
    fn kubelet_pod_name(&self, uid: &str) -> Option<(Option<String>, Option<String>)> {
        let from_dir = self
            .dirs
            .iter()
            .find(|d| d.dir.uid == uid && d.dir.name.is_some())
            .map(|d| (d.dir.namespace.clone(), d.dir.name.clone()));
        from_dir.or_else(|| {
            self.links
                .iter()
                .find(|l| l.uid.as_deref() == Some(uid))
                .map(|l| (Some(l.namespace.clone()), Some(l.pod.clone())))
        })
    }

    /// The pod and container a cgroup placement names, with the container's name from the
    /// kubelet's log links (a link names a container ID, or its first digits when the link
    /// name was cut at 255 bytes), else from the runtime's record of the container. When
    /// neither names it and the pod has a single container log directory and a single
    /// container other than pause, that is its name.
    pub fn container_ref(&self, placement: &Placement) -> Option<ContainerRef> {
        let uid = self.uid_of(placement)?;
        let pod = self.pod_ref(&uid);
        let Some(c) = &placement.container else {
            return Some(ContainerRef {
                pod,
                id: None,
                name: None,
            });
        };
        let name = self
            .links
            .iter()
            .find(|l| c.id.starts_with(&l.id) && l.uid.as_ref().is_none_or(|u| *u == uid))
            .map(|l| l.container.clone())
            .or_else(|| {
                self.runtime
                    .get(&c.id)
                    .filter(|r| r.pod_uid.as_ref().is_none_or(|u| *u == uid))
                    .and_then(|r| r.container.clone())
            })
            .or_else(|| self.only_container_name(&uid, &c.id));
        Some(ContainerRef {
            pod,
            id: Some(c.id.clone()),
            name,
        })
    }

    fn only_container_name(&self, uid: &str, id: &str) -> Option<String> {
        let dir = self.dirs.iter().find(|d| d.dir.uid == uid)?;
        let [only] = dir.containers.as_slice() else {
            return None;
        };
        let mut ids: Vec<&str> = self
            .procs
            .iter()
            .filter(|p| self.uid_of(&p.placement).as_deref() == Some(uid))
            .filter(|p| !is_pause(p) && !p.placement.is_conmon())
            .filter_map(|p| p.placement.container.as_ref().map(|c| c.id.as_str()))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        (ids == [id]).then(|| only.clone())
    }

    /// The pod processes (standing for the pod) of `uid`, or of one container.
    fn members<'a>(
        &'a self,
        uid: Option<&'a str>,
        container: Option<&'a str>,
    ) -> impl Iterator<Item = &'a PodProcess> + 'a {
        self.procs.iter().filter(move |p| {
            stands_for_pod(p)
                && container
                    .is_none_or(|id| p.placement.container.as_ref().is_some_and(|c| c.id == id))
                && uid.is_none_or(|u| self.uid_of(&p.placement).as_deref() == Some(u))
        })
    }

    /// The process whose network namespace is the pod's: any process of the pod shares it;
    /// the lowest pid that is not pause (an app or a sidecar), else pause itself. `container`
    /// restricts the choice to one container's processes.
    pub fn pick_pid(&self, uid: Option<&str>, container: Option<&str>) -> Option<i32> {
        self.members(uid, container)
            .min_by_key(|p| (is_pause(p), p.pid))
            .map(|p| p.pid)
    }

    /// Every pod with a running process, each once, sorted by namespace and name.
    pub fn live_pods(&self) -> Vec<LivePod> {
        let mut uids: Vec<String> = self
            .procs
            .iter()
            .filter(|p| stands_for_pod(p))
            .filter_map(|p| self.uid_of(&p.placement))
            .collect();
        uids.sort();
        uids.dedup();
        let mut out: Vec<LivePod> = uids
            .into_iter()
            .filter_map(|uid| {
                let pid = self.pick_pid(Some(&uid), None)?;
                let mut counts: BTreeMap<u64, usize> = BTreeMap::new();
                for p in self.members(Some(&uid), None) {
                    if let Some(ns) = p.netns {
                        *counts.entry(ns).or_default() += 1;
                    }
                }
                let netns = counts
                    .into_iter()
                    .max_by_key(|(ns, n)| (*n, std::cmp::Reverse(*ns)))
                    .map(|(ns, _)| ns);
                Some(LivePod {
                    pod: self.pod_ref(&uid),
                    pid,
                    netns,
                })
            })
            .collect();
        out.sort_by(|a, b| a.pod.cmp(&b.pod));
        out
    }

    /// Pods named by a log directory but with no running process (exited, or stale dirs).
    pub fn idle_pods(&self) -> Vec<PodRef> {
        let live: Vec<String> = self.live_pods().into_iter().map(|p| p.pod.uid).collect();
        let mut out: Vec<PodRef> = self
            .dirs
            .iter()
            .filter(|d| !live.contains(&d.dir.uid))
            .map(|d| self.pod_ref(&d.dir.uid))
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Every pod this node has a record of: log directories, links, cgroups.
    fn known_pods(&self) -> Vec<PodRef> {
        let mut uids: Vec<String> = self.dirs.iter().map(|d| d.dir.uid.clone()).collect();
        uids.extend(self.links.iter().filter_map(|l| l.uid.clone()));
        uids.extend(self.procs.iter().filter_map(|p| self.uid_of(&p.placement)));
        uids.sort();
        uids.dedup();
        let mut pods: Vec<PodRef> = uids.iter().map(|u| self.pod_ref(u)).collect();
        // Links without a readable target still name a pod.
        for l in &self.links {
            if l.uid.is_none()
                && !pods.iter().any(|p| {
                    p.namespace.as_deref() == Some(&l.namespace)
                        && p.name.as_deref() == Some(&l.pod)
                })
            {
                pods.push(PodRef {
                    namespace: Some(l.namespace.clone()),
                    name: Some(l.pod.clone()),
                    uid: String::new(),
                });
            }
        }
        pods
    }
}

#[cfg(test)]
mod tests;
