//! Finding a pod or container by what the user typed (`--pod`, `--pod-uid`, `--container`),
//! and, when nothing or too much matches, saying which come closest. Pure, over `Node`.

use std::path::Path;

use crate::error::Error;
use crate::model::{ContainerRef, PodRef};
use crate::parse::cgroup;

use super::{CLOSEST, Node, stands_for_pod};

impl Node {
    /// `--pod [NAMESPACE/]NAME`: the UID of the pod, preferring the one with running processes
    /// when a recreated pod left a stale directory under the same name.
    pub fn find_pod(&self, namespace: Option<&str>, name: &str) -> Result<String, Lookup> {
        let matches: Vec<PodRef> = self
            .known_pods()
            .into_iter()
            .filter(|p| p.name.as_deref() == Some(name))
            .filter(|p| namespace.is_none_or(|ns| p.namespace.as_deref() == Some(ns)))
            .collect();
        let mut namespaces: Vec<&str> = matches
            .iter()
            .filter_map(|p| p.namespace.as_deref())
            .collect();
        namespaces.sort_unstable();
        namespaces.dedup();
        if namespaces.len() > 1 {
            return Err(Lookup::AmbiguousName {
                name: name.to_string(),
                matches,
            });
        }
        let with_uid: Vec<&PodRef> = matches.iter().filter(|p| !p.uid.is_empty()).collect();
        if let Some(live) = with_uid
            .iter()
            .find(|p| self.pick_pid(Some(&p.uid), None).is_some())
        {
            return Ok(live.uid.clone());
        }
        if matches.is_empty() {
            return Err(Lookup::NoSuchPod {
                asked: match namespace {
                    Some(ns) => format!("{ns}/{name}"),
                    None => name.to_string(),
                },
                closest: self.closest_by_name(namespace, name),
            });
        }
        Err(Lookup::NotRunning { pods: matches })
    }

    /// `--pod-uid UID`: the UID, normalized, if a process of that pod runs.
    pub fn find_uid(&self, asked: &str) -> Result<String, Lookup> {
        let Some(uid) = cgroup::normalize_uid(asked) else {
            return Err(Lookup::BadUid(asked.to_string()));
        };
        if self.pick_pid(Some(&uid), None).is_some() {
            return Ok(uid);
        }
        let known: Vec<PodRef> = self
            .known_pods()
            .into_iter()
            .filter(|p| p.uid == uid)
            .collect();
        if !known.is_empty() {
            return Err(Lookup::NotRunning { pods: known });
        }
        let mut closest: Vec<(usize, PodRef)> = self
            .known_pods()
            .into_iter()
            .filter(|p| !p.uid.is_empty())
            .map(|p| (edit_distance(&p.uid, &uid), p))
            .collect();
        closest.sort();
        Err(Lookup::NoSuchUid {
            uid,
            closest: closest.into_iter().take(CLOSEST).map(|(_, p)| p).collect(),
        })
    }

    /// `--container ID`: the one running container whose ID starts with the prefix (a
    /// `containerd://` style scheme is dropped, as kubectl prints container IDs with one).
    /// Returns the full ID.
    pub fn find_container(&self, asked: &str) -> Result<String, Lookup> {
        let prefix = asked
            .rsplit_once("://")
            .map_or(asked, |(_, id)| id)
            .to_ascii_lowercase();
        if prefix.is_empty() || prefix.len() > 64 || !prefix.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(Lookup::BadContainerId(asked.to_string()));
        }
        let mut running: Vec<&str> = self
            .procs
            .iter()
            .filter(|p| stands_for_pod(p))
            .filter_map(|p| p.placement.container.as_ref().map(|c| c.id.as_str()))
            .collect();
        running.sort_unstable();
        running.dedup();
        let matching: Vec<&str> = running
            .iter()
            .copied()
            .filter(|id| id.starts_with(&prefix))
            .collect();
        match matching.as_slice() {
            [id] => Ok((*id).to_string()),
            [] => Err(Lookup::NoSuchContainer {
                prefix,
                running: running
                    .iter()
                    .take(CLOSEST * 2)
                    .filter_map(|id| self.describe_container(id))
                    .collect(),
            }),
            many => Err(Lookup::AmbiguousContainer {
                prefix,
                matches: many
                    .iter()
                    .filter_map(|id| self.describe_container(id))
                    .collect(),
            }),
        }
    }

    fn describe_container(&self, id: &str) -> Option<ContainerRef> {
        let p = self
            .procs
            .iter()
            .find(|p| p.placement.container.as_ref().is_some_and(|c| c.id == id))?;
        self.container_ref(&p.placement).or_else(|| {
            Some(ContainerRef {
                pod: PodRef {
                    namespace: None,
                    name: None,
                    uid: String::new(),
                },
                id: Some(id.to_string()),
                name: None,
            })
        })
    }

    /// The named pods nearest to `[namespace/]name`: the same namespace first, then by edit
    /// distance of the name, running pods before stale directories.
    fn closest_by_name(&self, namespace: Option<&str>, name: &str) -> Vec<PodRef> {
        let mut scored: Vec<(bool, usize, bool, PodRef)> = self
            .known_pods()
            .into_iter()
            .filter_map(|p| {
                let d = edit_distance(p.name.as_deref()?, name);
                let other_ns = namespace.is_some_and(|ns| p.namespace.as_deref() != Some(ns));
                let idle = self.pick_pid(Some(&p.uid), None).is_none();
                Some((other_ns, d, idle, p))
            })
            .collect();
        scored.sort();
        scored
            .into_iter()
            .take(CLOSEST)
            .map(|(_, _, _, p)| p)
            .collect()
    }
}

/// Why a pod or container lookup found nothing, or too much.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// No pod of that name on this node (exit 3).
    NoSuchPod { asked: String, closest: Vec<PodRef> },
    /// A bare name that is in several namespaces (exit 2).
    AmbiguousName { name: String, matches: Vec<PodRef> },
    /// The pod is known (a log directory) but none of its processes runs (exit 3).
    NotRunning { pods: Vec<PodRef> },
    /// Not a pod UID (exit 2).
    BadUid(String),
    /// No pod of that UID (exit 3).
    NoSuchUid { uid: String, closest: Vec<PodRef> },
    /// Not a container ID prefix (exit 2).
    BadContainerId(String),
    /// No running container with that prefix (exit 3).
    NoSuchContainer {
        prefix: String,
        running: Vec<ContainerRef>,
    },
    /// Several running containers with that prefix (exit 2).
    AmbiguousContainer {
        prefix: String,
        matches: Vec<ContainerRef>,
    },
}

fn pod_text(p: &PodRef) -> String {
    match (&p.namespace, &p.name) {
        (Some(ns), Some(n)) if !p.uid.is_empty() => format!("{ns}/{n} (uid {})", p.uid),
        (Some(ns), Some(n)) => format!("{ns}/{n}"),
        _ => format!("uid {}", p.uid),
    }
}

fn container_text(c: &ContainerRef) -> String {
    let id: String = c.id.as_deref().unwrap_or("-").chars().take(13).collect();
    let name = c.name.as_deref().unwrap_or("?");
    if c.pod.uid.is_empty() {
        format!("{id} ({name})")
    } else {
        format!("{id} ({name} in {})", c.pod)
    }
}

fn list(items: impl Iterator<Item = String>) -> String {
    let v: Vec<String> = items.collect();
    v.join(", ")
}

impl Lookup {
    /// The error to show, naming the thing asked for and what is there instead. `logs` is
    /// where the pod directories were looked for.
    pub fn into_error(self, logs: &Path) -> Error {
        let closest = |pods: &[PodRef]| {
            if pods.is_empty() {
                format!(
                    "; no pod directory under {} (on a DaemonSet, mount the host's / and \
                     pass --host-root)",
                    logs.display()
                )
            } else {
                format!(
                    "; closest on this node: {}",
                    list(pods.iter().map(pod_text))
                )
            }
        };
        match self {
            Lookup::NoSuchPod { asked, closest: c } => Error::Unreachable(format!(
                "no pod {asked} on this node (no {}/<namespace>_<name>_<uid> directory names \
                 it){}",
                logs.display(),
                closest(&c)
            )),
            Lookup::AmbiguousName { name, matches } => Error::Usage(format!(
                "pod name {name} is in several namespaces: {}; give NAMESPACE/NAME",
                list(matches.iter().map(pod_text))
            )),
            Lookup::NotRunning { pods } => Error::Unreachable(format!(
                "pod {} has no running process on this node (it exited, was deleted, or \
                 runs elsewhere; its log directory outlives it)",
                list(pods.iter().map(pod_text))
            )),
            Lookup::BadUid(u) => Error::Usage(format!(
                "--pod-uid {u:?} is not a pod UID (8-4-4-4-12 hex digits, or 32 for a static \
                 pod)"
            )),
            Lookup::NoSuchUid { uid, closest: c } => Error::Unreachable(format!(
                "no pod with UID {uid} on this node (no process in its cgroup){}",
                closest(&c)
            )),
            Lookup::BadContainerId(id) => Error::Usage(format!(
                "--container {id:?} is not a container ID (hex digits, a prefix is enough)"
            )),
            Lookup::NoSuchContainer { prefix, running } => Error::Unreachable(format!(
                "no running container with an ID starting {prefix} on this node{}",
                if running.is_empty() {
                    "; no process runs in a container's cgroup here".to_string()
                } else {
                    format!(
                        "; running containers include: {}",
                        list(running.iter().map(container_text))
                    )
                }
            )),
            Lookup::AmbiguousContainer { prefix, matches } => Error::Usage(format!(
                "container ID prefix {prefix} matches {} running containers: {}; give more \
                 digits",
                matches.len(),
                list(matches.iter().map(container_text))
            )),
        }
    }
}

/// Levenshtein distance over chars, for "did you mean" (strsim's, as clap's suggestions use).
pub fn edit_distance(a: &str, b: &str) -> usize {
    strsim::levenshtein(a, b)
}
