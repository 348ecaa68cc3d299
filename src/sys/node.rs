//! The node's own records of its pods, read from a host root (`/`, or `/host` in a DaemonSet):
//! the kubelet's pod log directories and container log links, every process's cgroup (one walk
//! of `/proc`), and the cgroup v2 tree (for socket cgroup ids). Reads only; what the names
//! mean is `parse::{cgroup, kubelet}`'s business, never decided here.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::DirEntryExt;
use std::path::{Path, PathBuf};

use nix::sys::statfs::{CGROUP2_SUPER_MAGIC, statfs};

use crate::model::RawText;
use crate::parse::cgroup::{self, Placement};
use crate::parse::kubelet::{self, ContainerLink, PodDirName};
use crate::parse::proc_pid;
use crate::sys::procfs::ProcRoot;

/// Where the host's files are: `/`, or the host's `/` mounted elsewhere (`/host` in a
/// privileged DaemonSet with hostPID). Every node path podports reads is under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRoot {
    root: PathBuf,
    proc: PathBuf,
}

impl HostRoot {
    pub fn new(root: impl Into<PathBuf>) -> HostRoot {
        let root = root.into();
        HostRoot {
            proc: root.join("proc"),
            root,
        }
    }

    /// Another `/proc` than `<root>/proc`.
    pub fn with_proc(mut self, proc: impl Into<PathBuf>) -> HostRoot {
        self.proc = proc.into();
        self
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `<root>/proc`.
    pub fn proc_dir(&self) -> &Path {
        &self.proc
    }

    /// `<root>/var/log/pods`: one directory per pod.
    pub fn pod_logs(&self) -> PathBuf {
        self.root.join("var/log/pods")
    }

    /// `<root>/var/log/containers`: one link per container.
    pub fn container_logs(&self) -> PathBuf {
        self.root.join("var/log/containers")
    }

    /// `<root>/sys/fs/cgroup`.
    pub fn cgroup_dir(&self) -> PathBuf {
        self.root.join("sys/fs/cgroup")
    }

    /// `<root>/run/netns`, where `ip netns` names live.
    pub fn netns_dir(&self) -> PathBuf {
        self.root.join("run/netns")
    }
}

impl Default for HostRoot {
    fn default() -> HostRoot {
        HostRoot::new("/")
    }
}

/// A pod log directory and the container names under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodLogDir {
    pub dir: PodDirName,
    pub containers: Vec<String>,
}

/// Every pod directory under `<root>/var/log/pods`, sorted by name. Entries that are no pod
/// directory are skipped. A missing directory is an error of kind NotFound, so the caller can
/// say what it looked for.
pub fn pod_dirs(host: &HostRoot) -> io::Result<Vec<PodLogDir>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(host.pod_logs())? {
        let Ok(entry) = entry else { continue };
        let name = entry.file_name();
        let Some(dir) = std::str::from_utf8(name.as_bytes())
            .ok()
            .and_then(kubelet::parse_pod_dir)
        else {
            continue;
        };
        let mut containers: Vec<String> = fs::read_dir(entry.path())
            .map(|rd| {
                rd.flatten()
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .filter_map(|e| e.file_name().to_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        containers.sort();
        out.push(PodLogDir { dir, containers });
    }
    out.sort_by(|a, b| a.dir.cmp(&b.dir));
    Ok(out)
}

/// Every container link under `<root>/var/log/containers` that names a container ID. The
/// targets are host paths (`/var/log/pods/...`): only their text is read, never followed.
pub fn container_links(host: &HostRoot) -> Vec<ContainerLink> {
    let Ok(rd) = fs::read_dir(host.container_logs()) else {
        return Vec::new();
    };
    let mut out: Vec<ContainerLink> = rd
        .flatten()
        .filter_map(|e| {
            let name = e.file_name();
            let name = std::str::from_utf8(name.as_bytes()).ok()?;
            let target = fs::read_link(e.path()).ok();
            let target = target
                .as_ref()
                .and_then(|t| std::str::from_utf8(t.as_os_str().as_bytes()).ok());
            kubelet::parse_container_link(name, target)
        })
        .collect();
    out.sort();
    out
}

/// Where containerd and CRI-O keep a running container's OCI config, and docker (under
/// cri-dockerd) its record (`<id>` is the runtime's container ID, 64 hex digits).
const RUNTIME_CONFIGS: [(&str, &str); 3] = [
    (
        "run/containerd/io.containerd.runtime.v2.task/k8s.io",
        "config.json",
    ),
    (
        "run/containers/storage/overlay-containers",
        "userdata/config.json",
    ),
    ("var/lib/docker/containers", "config.v2.json"),
];

/// A config.json is a few KiB to a few hundred; past this it is not one.
const RUNTIME_CONFIG_MAX: u64 = 4 << 20;

/// The runtime's `config.json` of container `id` (containerd's, else CRI-O's, else docker's
/// `config.v2.json`), if the node has one. An ID that is not hex is never made into a path.
pub fn runtime_config(host: &HostRoot, id: &str) -> Option<Vec<u8>> {
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    RUNTIME_CONFIGS.iter().find_map(|(dir, file)| {
        let file = fs::File::open(host.root().join(dir).join(id).join(file)).ok()?;
        let mut bytes = Vec::new();
        file.take(RUNTIME_CONFIG_MAX).read_to_end(&mut bytes).ok()?;
        Some(bytes)
    })
}

/// A process in a pod's cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodProcess {
    pub pid: i32,
    pub placement: Placement,
    /// Its v1 cgroup lines disagreed (the majority was taken).
    pub conflict: bool,
    /// `/proc/<pid>/comm` (to tell the pause process), when readable.
    pub comm: Option<RawText>,
    /// Inode of its network namespace; None for a zombie or an exiting process, or when the
    /// link may not be read.
    pub netns: Option<u64>,
    /// `/proc/<pid>/ns/net` could not be read for lack of privilege: alive, namespace unknown.
    pub netns_denied: bool,
}

/// One walk of `<proc>/*/cgroup`: every process in a pod's (or a container's) cgroup.
/// Processes that exit while we look are skipped.
pub fn pod_processes(procfs: &ProcRoot) -> io::Result<Vec<PodProcess>> {
    let mut out = Vec::new();
    for pid in procfs.pids()? {
        if let Some(p) = pod_process(procfs, pid) {
            out.push(p);
        }
    }
    Ok(out)
}

/// The pod and container of one process, if it is in one.
pub fn pod_process(procfs: &ProcRoot, pid: i32) -> Option<PodProcess> {
    let dir = procfs.path().join(pid.to_string());
    let text = fs::read(dir.join("cgroup")).ok()?;
    let file = cgroup::parse_file(&text);
    let placement = file.placement?;
    let netns = procfs.netns_inode(pid);
    let comm = fs::read(dir.join("comm")).ok().map(|mut c| {
        if c.last() == Some(&b'\n') {
            c.pop();
        }
        RawText::new(c)
    });
    Some(PodProcess {
        pid,
        placement,
        conflict: file.conflict,
        comm,
        netns,
        netns_denied: netns.is_none()
            && fs::read_link(dir.join("ns/net"))
                .is_err_and(|e| e.kind() == io::ErrorKind::PermissionDenied),
    })
}

/// The root of the cgroup v2 tree: `<root>/sys/fs/cgroup` on a v2 host, its `unified`
/// directory on a hybrid one. None on a pure v1 host (or when it cannot be read).
pub fn cgroup2_root(host: &HostRoot) -> Option<PathBuf> {
    let base = host.cgroup_dir();
    [base.clone(), base.join("unified")]
        .into_iter()
        .find(|p| statfs(p.as_path()).is_ok_and(|s| s.filesystem_type() == CGROUP2_SUPER_MAGIC))
}

/// Limits of the cgroup tree walk: real trees are a few thousand directories deep at most.
const CGROUP_WALK_MAX_DEPTH: usize = 32;
const CGROUP_WALK_MAX_DIRS: usize = 200_000;

/// The paths (relative to `root`, starting with `/`) of the cgroup v2 directories whose inode
/// is one of `wanted`. On cgroup v2 a socket's INET_DIAG_CGROUP_ID is the inode of its cgroup
/// directory (64-bit kernfs ids, Linux 5.5+), so this names the cgroup that created a socket.
/// Stops once every wanted inode is found.
pub fn cgroup_paths(root: &Path, wanted: &HashSet<u64>) -> HashMap<u64, String> {
    let mut found = HashMap::new();
    if wanted.is_empty() {
        return found;
    }
    if let Ok(meta) = fs::metadata(root) {
        use std::os::unix::fs::MetadataExt;
        if wanted.contains(&meta.ino()) {
            found.insert(meta.ino(), "/".to_string());
        }
    }
    let mut stack: Vec<(PathBuf, String, usize)> = vec![(root.to_path_buf(), String::new(), 0)];
    let mut seen = 0usize;
    while let Some((dir, rel, depth)) = stack.pop() {
        if found.len() == wanted.len() || seen >= CGROUP_WALK_MAX_DIRS {
            break;
        }
        let Ok(rd) = fs::read_dir(&dir) else { continue };
        for entry in rd.flatten() {
            if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            seen += 1;
            let name = entry.file_name();
            let rel = format!("{rel}/{}", String::from_utf8_lossy(name.as_bytes()));
            if wanted.contains(&entry.ino()) {
                found.insert(entry.ino(), rel.clone());
            }
            if depth + 1 < CGROUP_WALK_MAX_DEPTH {
                stack.push((entry.path(), rel, depth + 1));
            }
        }
    }
    found
}

/// The inode of the node's network namespace: that of `<proc>/1`, the host's init (with
/// hostPID). A pod in it uses hostNetwork. When pid 1's namespace links cannot be read (its
/// capabilities exceed ours, as in some sandboxes), kthreadd's (pid 2): kernel threads always
/// live in the initial network namespace.
pub fn host_netns(procfs: &ProcRoot) -> Option<u64> {
    procfs.netns_inode(1).or_else(|| {
        procfs
            .stat(2)
            .filter(|s| s.flags & proc_pid::PF_KTHREAD != 0)
            .and_then(|_| procfs.netns_inode(2))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_root_paths() {
        let h = HostRoot::new("/host");
        assert_eq!(h.proc_dir(), Path::new("/host/proc"));
        assert_eq!(h.pod_logs(), Path::new("/host/var/log/pods"));
        assert_eq!(h.container_logs(), Path::new("/host/var/log/containers"));
        assert_eq!(h.cgroup_dir(), Path::new("/host/sys/fs/cgroup"));
        assert_eq!(h.netns_dir(), Path::new("/host/run/netns"));
        let h = HostRoot::default().with_proc("/elsewhere");
        assert_eq!(h.proc_dir(), Path::new("/elsewhere"));
        assert_eq!(h.netns_dir(), Path::new("/run/netns"));
    }

    /// A plain directory tree stands in for the cgroup v2 tree: only inodes are compared.
    #[test]
    fn cgroup_paths_finds_directories_by_inode() {
        use std::os::unix::fs::MetadataExt;
        let base = std::env::temp_dir().join(format!("podports-unit-cg-{}", std::process::id()));
        let deep = base.join("kubepods.slice/kubepods-pod1.slice/cri-containerd-x.scope");
        fs::create_dir_all(&deep).unwrap();
        fs::write(base.join("kubepods.slice/cgroup.procs"), "").unwrap();
        let ino = fs::metadata(&deep).unwrap().ino();
        let mid = fs::metadata(base.join("kubepods.slice")).unwrap().ino();
        let wanted: HashSet<u64> = [ino, mid, 1].into_iter().collect();
        let found = cgroup_paths(&base, &wanted);
        let _ = fs::remove_dir_all(&base);
        assert_eq!(
            found.get(&ino).map(String::as_str),
            Some("/kubepods.slice/kubepods-pod1.slice/cri-containerd-x.scope")
        );
        assert_eq!(found.get(&mid).map(String::as_str), Some("/kubepods.slice"));
        assert_eq!(found.len(), 2);
    }
}
