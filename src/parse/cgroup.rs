//! `/proc/<pid>/cgroup` -> which pod and container a process runs in, as the kubelet and the
//! container runtimes name their cgroups (shared/reference/node-discovery.md). Pure: bytes in,
//! a `Placement` out; never touches the filesystem, and no path makes it panic.
//!
//! Path components are matched one by one, never a fixed prefix: kind nests the kubelet's
//! tree under `kubelet.slice`, a cgroup namespace shows `/../..` relative paths, and kind inside
//! a pod nests one kubelet tree in another (the innermost pod wins).

use std::collections::HashMap;

/// The pod's QoS class, from the cgroup tree the kubelet put it in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Qos {
    /// Directly under `kubepods` (`kubepods-pod<uid>.slice`, `kubepods/pod<uid>`).
    Guaranteed,
    Burstable,
    BestEffort,
}

/// Which runtime made a container's cgroup, as far as its name tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Runtime {
    /// `cri-containerd-<id>.scope`
    Containerd,
    /// `crio-<id>.scope`, `crio-<id>` (CRI-O)
    Crio,
    /// `docker-<id>.scope` (cri-dockerd)
    Docker,
    /// A bare `<id>` (cgroupfs driver: containerd or docker alike)
    Unknown,
}

impl Runtime {
    pub fn as_str(self) -> &'static str {
        match self {
            Runtime::Containerd => "containerd",
            Runtime::Crio => "cri-o",
            Runtime::Docker => "docker",
            Runtime::Unknown => "unknown",
        }
    }
}

/// A container's cgroup.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ContainerCgroup {
    /// The runtime's container ID: 64 lowercase hex digits.
    pub id: String,
    pub runtime: Runtime,
    /// CRI-O's monitor (`crio-conmon-<id>`): it sits in the pod's cgroup but is not the
    /// container, and lives in the host's network namespace. Never a process of the pod.
    pub conmon: bool,
}

/// Where a cgroup path puts a process (or a socket, through its cgroup id).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Placement {
    /// The pod UID in its API form (with `-`; systemd's `_` undone), or the 32 hex digits of a
    /// static pod. None when a relative path starts below the pod's cgroup.
    pub pod_uid: Option<String>,
    pub qos: Option<Qos>,
    /// None for a process in the pod's own cgroup (above any container).
    pub container: Option<ContainerCgroup>,
}

impl Placement {
    /// A process of the pod proper (not CRI-O's monitor).
    pub fn is_conmon(&self) -> bool {
        self.container.as_ref().is_some_and(|c| c.conmon)
    }
}

/// One line of `/proc/<pid>/cgroup`: `hierarchy-ID:controller-list:cgroup-path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupLine {
    pub hierarchy: u32,
    /// Empty for the cgroup v2 line (`0::/...`); `pids`, `cpu,cpuacct`, `name=systemd` on v1.
    pub controllers: String,
    pub path: String,
}

impl CgroupLine {
    pub fn is_v2(&self) -> bool {
        self.hierarchy == 0 && self.controllers.is_empty()
    }
}

/// What a whole `/proc/<pid>/cgroup` file says.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CgroupFile {
    /// The pod and container, if any line names one.
    pub placement: Option<Placement>,
    /// The v1 lines named more than one pod or container (the most common one was taken).
    pub conflict: bool,
}

/// Parses the lines of a `/proc/<pid>/cgroup` file; lines that are not `N:list:path` are
/// skipped. The path may hold any bytes; it is kept as lossy UTF-8 (names that matter are
/// ASCII).
pub fn parse_lines(text: &[u8]) -> Vec<CgroupLine> {
    let text = String::from_utf8_lossy(text);
    text.lines()
        .filter_map(|line| {
            let (id, rest) = line.split_once(':')?;
            let (controllers, path) = rest.split_once(':')?;
            Some(CgroupLine {
                hierarchy: id.parse().ok()?,
                controllers: controllers.to_string(),
                path: path.to_string(),
            })
        })
        .collect()
}

/// The pod and container of a `/proc/<pid>/cgroup` file.
///
/// cgroup v2 has one line, and it decides. On v1 (and hybrid hosts, whose `0::` line may stay
/// at `/`) each hierarchy has its own line and they can disagree (a process moved in one
/// hierarchy only, or a controller the kubelet does not manage, like a sandbox's own memory
/// cgroup): the pod named by the most lines wins, then the container named most within it.
pub fn parse_file(text: &[u8]) -> CgroupFile {
    let lines = parse_lines(text);
    if let Some(p) = lines
        .iter()
        .filter(|l| l.is_v2())
        .find_map(|l| parse_path(&l.path))
    {
        return CgroupFile {
            placement: Some(p),
            conflict: false,
        };
    }
    let found: Vec<Placement> = lines.iter().filter_map(|l| parse_path(&l.path)).collect();
    let Some(first) = found.first() else {
        return CgroupFile::default();
    };
    // A line naming the pod beats a relative one naming only a container.
    let uid = most_common(found.iter().filter_map(|p| p.pod_uid.clone()));
    let same_pod: Vec<&Placement> = found.iter().filter(|p| p.pod_uid == uid).collect();
    let container_id = most_common(
        same_pod
            .iter()
            .filter_map(|p| p.container.as_ref().map(|c| c.id.clone())),
    );
    let chosen = same_pod
        .iter()
        .find(|p| p.container.as_ref().map(|c| &c.id) == container_id.as_ref())
        .or(same_pod.first())
        .map(|p| (*p).clone())
        .unwrap_or_else(|| first.clone());
    let conflict = found.iter().any(|p| {
        p.pod_uid != chosen.pod_uid
            || p.container
                .as_ref()
                .is_some_and(|c| chosen.container.as_ref().map(|k| &k.id) != Some(&c.id))
    });
    CgroupFile {
        placement: Some(chosen),
        conflict,
    }
}

/// The value seen most often; ties go to the one seen first.
fn most_common<T: Eq + std::hash::Hash + Clone>(items: impl Iterator<Item = T>) -> Option<T> {
    let mut counts: HashMap<T, (usize, usize)> = HashMap::new();
    for (i, item) in items.enumerate() {
        let e = counts.entry(item).or_insert((0, i));
        e.0 += 1;
    }
    counts
        .into_iter()
        .max_by(|a, b| (a.1.0, std::cmp::Reverse(a.1.1)).cmp(&(b.1.0, std::cmp::Reverse(b.1.1))))
        .map(|(k, _)| k)
}

/// The pod and container a cgroup path names, or None if it names neither.
///
/// Handles the systemd driver (`kubepods-burstable-pod<uid_>.slice/cri-containerd-<id>.scope`,
/// also nested as kind's `kubelet-kubepods-...`), the cgroupfs driver
/// (`kubepods/burstable/pod<uid>/<id>`), CRI-O (`crio-<id>`, `crio-conmon-<id>`), cri-dockerd
/// (`docker-<id>.scope`), crun's extra `/container` leaf, and `..` components of relative
/// paths (skipped: a relative path that starts below the pod's cgroup names only the
/// container).
pub fn parse_path(path: &str) -> Option<Placement> {
    // `..` only appears in paths relative to the reader's cgroup namespace root.
    let relative = path.split('/').any(|c| c == "..");
    let comps: Vec<&str> = path
        .split('/')
        .filter(|c| !c.is_empty() && *c != "." && *c != "..")
        .collect();
    // The innermost pod component, with the QoS it implies.
    let mut pod: Option<(usize, String, Option<Qos>)> = None;
    for (i, c) in comps.iter().enumerate() {
        if let Some((uid, qos)) = pod_component(c) {
            let qos = qos.or_else(|| {
                // cgroupfs: `kubepods/burstable/pod<uid>`, or `kubepods/pod<uid>` (Guaranteed).
                let parent = i.checked_sub(1).and_then(|j| comps.get(j));
                match parent.copied() {
                    Some("burstable") => Some(Qos::Burstable),
                    Some("besteffort") => Some(Qos::BestEffort),
                    Some("kubepods") => Some(Qos::Guaranteed),
                    _ => None,
                }
            });
            pod = Some((i, uid, qos));
        }
    }
    let after = pod.as_ref().map_or(0, |(i, _, _)| i + 1);
    let container = comps
        .get(after..)
        .unwrap_or_default()
        .iter()
        .find_map(|c| container_component(c, pod.is_some()));
    // Without a pod component, a container scope is a pod's only in a relative path (a
    // reader in a cgroup namespace sees no further up); `/system.slice/docker-<id>.scope` is
    // a plain docker container.
    if pod.is_none() && (container.is_none() || !relative) {
        return None;
    }
    let (pod_uid, qos) = match pod {
        Some((_, uid, qos)) => (Some(uid), qos),
        None => (None, None),
    };
    Some(Placement {
        pod_uid,
        qos,
        container,
    })
}

/// `kubepods-burstable-pod<uid_>.slice`, `kubelet-kubepods-pod<uid_>.slice` (systemd) or
/// `pod<uid>` (cgroupfs) -> (uid, QoS if the name says it).
fn pod_component(c: &str) -> Option<(String, Option<Qos>)> {
    if let Some(slice) = c.strip_suffix(".slice") {
        let at = slice.rfind("-pod")?;
        let prefix = slice.get(..at)?;
        let uid = normalize_uid(slice.get(at + 4..)?)?;
        // The slice is the kubelet's: its name runs through `kubepods`.
        let qos = if prefix.ends_with("kubepods-burstable") {
            Qos::Burstable
        } else if prefix.ends_with("kubepods-besteffort") {
            Qos::BestEffort
        } else if prefix.ends_with("kubepods") {
            Qos::Guaranteed
        } else {
            return None;
        };
        return Some((uid, Some(qos)));
    }
    let uid = normalize_uid(c.strip_prefix("pod")?)?;
    Some((uid, None))
}

/// A container's cgroup name -> its ID and runtime. A bare 64-hex name counts only below a
/// pod component (elsewhere it could be any runtime's, or anything).
fn container_component(c: &str, below_pod: bool) -> Option<ContainerCgroup> {
    let scoped = c.strip_suffix(".scope");
    let name = scoped.unwrap_or(c);
    let prefixed: [(&str, Runtime, bool); 4] = [
        ("cri-containerd-", Runtime::Containerd, false),
        ("crio-conmon-", Runtime::Crio, true),
        ("crio-", Runtime::Crio, false),
        ("docker-", Runtime::Docker, false),
    ];
    for (prefix, runtime, conmon) in prefixed {
        if let Some(id) = name.strip_prefix(prefix) {
            return is_container_id(id).then(|| ContainerCgroup {
                id: id.to_ascii_lowercase(),
                runtime,
                conmon,
            });
        }
    }
    (below_pod && scoped.is_none() && is_container_id(c)).then(|| ContainerCgroup {
        id: c.to_ascii_lowercase(),
        runtime: Runtime::Unknown,
        conmon: false,
    })
}

/// A runtime container ID: 64 hex digits.
pub fn is_container_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A pod UID in its API form: `8-4-4-4-12` hex with `-` (systemd's `_` accepted), or the 32
/// hex digits of a static pod (the kubelet hashes the manifest). Lowercase. None for anything
/// else.
pub fn normalize_uid(s: &str) -> Option<String> {
    let s = s.replace('_', "-").to_ascii_lowercase();
    let hex = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_hexdigit());
    if s.len() == 32 && hex(&s) {
        return Some(s);
    }
    let parts: Vec<&str> = s.split('-').collect();
    let lens: Vec<usize> = parts.iter().map(|p| p.len()).collect();
    (lens == [8, 4, 4, 4, 12] && parts.iter().all(|p| hex(p))).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    const UID: &str = "8f2c8d4e-1b7a-4c1e-9d62-0c6a3f1e2b44";
    const ID: &str = "4d9c1f0e2b3a59687766554433221100ffeeddccbbaa99887766554433221100";
    const ID2: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90";

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!("{}/fixtures/cgroup/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn placed(name: &str) -> Placement {
        let f = parse_file(&fixture(name));
        assert!(!f.conflict, "{name}: unexpected conflict");
        f.placement
            .unwrap_or_else(|| panic!("{name}: no pod or container found"))
    }

    fn container(id: &str, runtime: Runtime, conmon: bool) -> Option<ContainerCgroup> {
        Some(ContainerCgroup {
            id: id.into(),
            runtime,
            conmon,
        })
    }

    /// Every layout of the reference page, each a fixture file (see fixtures/cgroup/README.md).
    #[test]
    fn every_documented_layout() {
        let uid = Some(UID.to_string());
        let cases: &[(&str, Option<Qos>, Option<ContainerCgroup>)] = &[
            (
                "v2-systemd-containerd",
                Some(Qos::Burstable),
                container(ID, Runtime::Containerd, false),
            ),
            (
                "v2-systemd-crio-guaranteed",
                Some(Qos::Guaranteed),
                container(ID, Runtime::Crio, false),
            ),
            (
                "v2-systemd-crio-crun",
                Some(Qos::BestEffort),
                container(ID, Runtime::Crio, false),
            ),
            (
                "v2-systemd-crio-conmon",
                Some(Qos::Burstable),
                container(ID, Runtime::Crio, true),
            ),
            (
                "v2-systemd-cri-dockerd",
                Some(Qos::Burstable),
                container(ID, Runtime::Docker, false),
            ),
            (
                "v2-cgroupfs-containerd",
                Some(Qos::Burstable),
                container(ID, Runtime::Unknown, false),
            ),
            (
                "v2-cgroupfs-guaranteed",
                Some(Qos::Guaranteed),
                container(ID, Runtime::Unknown, false),
            ),
            (
                "v2-cgroupfs-crio",
                Some(Qos::Burstable),
                container(ID, Runtime::Crio, false),
            ),
            (
                "v2-cgroupfs-crio-conmon",
                Some(Qos::BestEffort),
                container(ID, Runtime::Crio, true),
            ),
            (
                "v2-kind",
                Some(Qos::BestEffort),
                container(ID, Runtime::Containerd, false),
            ),
            (
                "v2-relative",
                Some(Qos::Burstable),
                container(ID, Runtime::Containerd, false),
            ),
            ("v2-pod-level", Some(Qos::Burstable), None),
            (
                "v1-systemd-containerd",
                Some(Qos::Burstable),
                container(ID, Runtime::Containerd, false),
            ),
            (
                "v1-cgroupfs-docker",
                Some(Qos::Burstable),
                container(ID, Runtime::Unknown, false),
            ),
            (
                "v1-hybrid-unified-root",
                Some(Qos::BestEffort),
                container(ID, Runtime::Unknown, false),
            ),
        ];
        for (name, qos, c) in cases {
            let p = placed(name);
            assert_eq!(p.pod_uid, uid, "{name}");
            assert_eq!(&p.qos, qos, "{name}");
            assert_eq!(&p.container, c, "{name}");
        }
    }

    #[test]
    fn static_pods_have_32_hex_uids() {
        let p = placed("v2-static-pod");
        assert_eq!(
            p.pod_uid.as_deref(),
            Some("3c8a2e1d6e0b4a7f9a1b2c3d4e5f6a7b")
        );
        assert_eq!(p.qos, Some(Qos::Burstable));
        let p = placed("v1-static-pod-cgroupfs");
        assert_eq!(
            p.pod_uid.as_deref(),
            Some("3c8a2e1d6e0b4a7f9a1b2c3d4e5f6a7b")
        );
        assert_eq!(p.qos, Some(Qos::Guaranteed));
    }

    #[test]
    fn a_relative_path_below_the_pod_names_only_the_container() {
        let p = placed("v2-relative-below-pod");
        assert_eq!(p.pod_uid, None);
        assert_eq!(p.container, container(ID, Runtime::Containerd, false));
    }

    #[test]
    fn processes_outside_pods_have_no_placement() {
        for name in ["host-systemd-v2", "host-v1", "host-docker-not-k8s"] {
            assert_eq!(parse_file(&fixture(name)), CgroupFile::default(), "{name}");
        }
    }

    #[test]
    fn kind_in_a_pod_takes_the_innermost_pod() {
        let p = placed("v2-kind-in-a-pod");
        assert_eq!(p.pod_uid.as_deref(), Some(UID));
        assert_eq!(p.container, container(ID2, Runtime::Containerd, false));
    }

    #[test]
    fn v1_lines_that_disagree_take_the_majority_and_say_so() {
        let f = parse_file(&fixture("v1-disagree"));
        assert!(f.conflict);
        let p = f.placement.unwrap();
        assert_eq!(p.pod_uid.as_deref(), Some(UID));
        assert_eq!(p.container, container(ID, Runtime::Containerd, false));
    }

    /// Captured from a helper process that tests/node.rs moved into a kubelet-shaped cgroup
    /// on a hybrid host (v1 controllers, the v2 tree at /sys/fs/cgroup/unified).
    #[test]
    fn captured_from_the_test_node() {
        let p = placed("live-hybrid-v2-containerd");
        assert_eq!(
            p.pod_uid.as_deref(),
            Some("1d0f2c5e-7a3b-4f08-9b6e-2d4c8a1e3f50")
        );
        assert_eq!(p.qos, Some(Qos::Burstable));
        assert_eq!(p.container.map(|c| c.runtime), Some(Runtime::Containerd));
    }

    #[test]
    fn names_that_only_look_like_kubelet_ones() {
        for path in [
            "/",
            "/system.slice/containerd.service",
            "/user.slice/user-1000.slice/session-2.scope",
            // Not the kubelet's slice.
            "/system.slice/foo-pod8f2c8d4e_1b7a_4c1e_9d62_0c6a3f1e2b44.slice",
            // A bad UID.
            "/kubepods/burstable/podnot-a-uid/4d9c",
            "/kubepods/burstable/pod8f2c8d4e-1b7a-4c1e-9d62-0c6a3f1e2b4",
            // An ID of the wrong length, or not hex.
            "/cri-containerd-4d9c1f0e.scope",
            "/crio-zz9c1f0e2b3a59687766554433221100ffeeddccbbaa99887766554433221100.scope",
            // A bare ID outside any pod.
            "/4d9c1f0e2b3a59687766554433221100ffeeddccbbaa99887766554433221100",
        ] {
            assert_eq!(parse_path(path), None, "{path}");
        }
    }

    #[test]
    fn uids_are_normalized() {
        assert_eq!(
            normalize_uid("8F2C8D4E_1B7A_4C1E_9D62_0C6A3F1E2B44").as_deref(),
            Some(UID)
        );
        assert_eq!(normalize_uid(UID).as_deref(), Some(UID));
        assert_eq!(normalize_uid("8f2c8d4e-1b7a-4c1e-9d62"), None);
        assert_eq!(normalize_uid(""), None);
        assert_eq!(normalize_uid("g3c8a2e1d6e0b4a7f9a1b2c3d4e5f6a7"), None);
    }

    #[test]
    fn garbage_never_panics() {
        for text in [
            &b""[..],
            b"\n\n:::\n",
            b"0::",
            b"x:y:z\n",
            b"0::/kubepods.slice/kubepods-pod.slice",
            b"0::/kubepods/pod/\xff\xfe",
            b"4294967296:pids:/",
            b"0::/kubepods-pod-.slice/-pod.slice/.slice/.scope",
        ] {
            let _ = parse_file(text);
        }
    }
}
