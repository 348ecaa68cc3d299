//! podports on a simulated node: pods made of real processes in fresh network namespaces,
//! moved into cgroups named as the kubelet and the runtimes name them (in the machine's cgroup
//! v2 tree and a v1 hierarchy, under a `podports-test-<pid>-<n>` directory), with a
//! `var/log/pods` and `var/log/containers` tree under a test host root (`--host-root`, its
//! `proc` a link to the real /proc). `--pod`, `--pod-uid`, `--container` and `--all-pods` must
//! list what `ss` lists in each pod's namespace. The error tests need no root: their node is
//! a fake `/proc` of cgroup files.
// A test: it makes sockets, files and processes freely (clippy.toml keeps them in sys/).
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::compare::{Key, assert_exit, assert_matches_ss, key_of_doc, podports, settle, stderr};
use common::{Netns, Proc, Scratch, eventually, install_as, require_root, ss_sockets};
use podports::model::PodRef;
use podports::render::json::{Document, SocketDoc};

// ---------------------------------------------------------------------------------------------
// Running podports

/// `podports --host-root ROOT -o json ARGS`, one document.
fn json(root: &Path, args: &[&str]) -> Document {
    let mut all = vec!["--host-root", root.to_str().unwrap(), "-o", "json"];
    all.extend_from_slice(args);
    let out = podports(&all);
    assert_exit(&out, 0);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "podports {all:?}: not a JSON document ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// `podports --host-root ROOT -o json --all-pods ARGS`: JSON Lines.
fn json_lines(root: &Path, args: &[&str]) -> Vec<Document> {
    let mut all = vec![
        "--host-root",
        root.to_str().unwrap(),
        "-o",
        "json",
        "--all-pods",
    ];
    all.extend_from_slice(args);
    let out = podports(&all);
    assert_exit(&out, 0);
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect()
}

fn table(root: &Path, args: &[&str]) -> String {
    let mut all = vec!["--host-root", root.to_str().unwrap()];
    all.extend_from_slice(args);
    let out = podports(&all);
    assert_exit(&out, 0);
    String::from_utf8(out.stdout).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Comparing with ss (as tests/netns.rs does)

fn keys(doc: &Document) -> Vec<Key> {
    let mut k: Vec<Key> = doc.sockets.iter().map(|s| key_of_doc(s, true)).collect();
    k.sort();
    k
}

/// (pid, container name, container id, pod uid) of every socket owner.
fn owner_containers(doc: &Document) -> BTreeMap<i32, (Option<String>, Option<String>, String)> {
    doc.sockets
        .iter()
        .flat_map(|s| s.processes.iter())
        .map(|p| {
            let c = p.container.as_ref();
            (
                p.pid,
                (
                    c.and_then(|c| c.name.clone()),
                    c.and_then(|c| c.id.clone()),
                    p.pod.as_ref().map(|p| p.uid.clone()).unwrap_or_default(),
                ),
            )
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Names, as the kubelet and the runtimes make them

fn unique() -> u64 {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    // splitmix64 over pid, counter and time: distinct per call and per run.
    let mut z = nanos ^ (u64::from(std::process::id()) << 32) ^ n.wrapping_mul(0x9e37_79b9);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A pod UID: `8-4-4-4-12` hex.
fn new_uid() -> String {
    let h = format!("{:016x}{:016x}", unique(), unique());
    format!(
        "{}-{}-4{}-8{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

/// A static pod's UID: 32 hex digits (the kubelet hashes the manifest).
fn new_static_uid() -> String {
    format!("{:016x}{:016x}", unique(), unique())
}

/// A container ID: 64 hex digits.
fn new_id() -> String {
    format!(
        "{:016x}{:016x}{:016x}{:016x}",
        unique(),
        unique(),
        unique(),
        unique()
    )
}

/// How a node names its cgroups: driver, runtime, QoS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// cgroup v2, systemd driver, containerd, Burstable.
    SystemdContainerd,
    /// v2, systemd, CRI-O with crun's `/container` leaf, BestEffort.
    SystemdCrioCrun,
    /// v2, cgroupfs driver, CRI-O (`crio-<id>`, the monitor in `crio-conmon-<id>`), Burstable.
    CgroupfsCrio,
    /// cgroup v1 (a v1 hierarchy only), cgroupfs driver, docker's bare `<id>`, BestEffort.
    V1CgroupfsDocker,
    /// kind: the kubelet's tree under `kubelet.slice`, containerd, Guaranteed.
    Kind,
}

impl Layout {
    fn pod(self, uid: &str) -> String {
        let u_ = uid.replace('-', "_");
        match self {
            Layout::SystemdContainerd => {
                format!("kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{u_}.slice")
            }
            Layout::SystemdCrioCrun => format!(
                "kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{u_}.slice"
            ),
            Layout::CgroupfsCrio => format!("kubepods/burstable/pod{uid}"),
            Layout::V1CgroupfsDocker => format!("kubepods/besteffort/pod{uid}"),
            Layout::Kind => {
                format!("kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-pod{u_}.slice")
            }
        }
    }

    fn container(self, uid: &str, id: &str) -> String {
        let pod = self.pod(uid);
        match self {
            Layout::SystemdContainerd | Layout::Kind => {
                format!("{pod}/cri-containerd-{id}.scope")
            }
            Layout::SystemdCrioCrun => format!("{pod}/crio-{id}.scope/container"),
            Layout::CgroupfsCrio => format!("{pod}/crio-{id}"),
            Layout::V1CgroupfsDocker => format!("{pod}/{id}"),
        }
    }

    fn conmon(self, uid: &str, id: &str) -> String {
        format!("{}/crio-conmon-{id}", self.pod(uid))
    }

    fn v1(self) -> bool {
        self == Layout::V1CgroupfsDocker
    }
}

// ---------------------------------------------------------------------------------------------
// cgroup hierarchies

/// Where a cgroup hierarchy is mounted, from /proc/self/mountinfo: cgroup2, or the v1
/// hierarchy with the `pids` controller (any v1 one will do).
fn find_mount(v2: bool) -> Option<PathBuf> {
    let info = fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mut v1_any = None;
    for line in info.lines() {
        let (pre, post) = line.split_once(" - ")?;
        let mount = pre.split(' ').nth(4)?;
        let mut post = post.split(' ');
        let fstype = post.next()?;
        let opts = post.nth(1).unwrap_or("");
        if v2 && fstype == "cgroup2" {
            return Some(PathBuf::from(mount));
        }
        if !v2 && fstype == "cgroup" {
            if opts.split(',').any(|o| o == "pids") {
                return Some(PathBuf::from(mount));
            }
            v1_any.get_or_insert_with(|| PathBuf::from(mount));
        }
    }
    if v2 { None } else { v1_any }
}

/// A `podports-test-<pid>-<n>` directory in a cgroup hierarchy, for kubelet-shaped cgroups.
/// On Drop, every directory made under it is removed, deepest first (after the helpers are
/// gone: declare it before the pods), and the hierarchy unmounted if this test mounted it.
struct CgroupTree {
    mount: PathBuf,
    base: PathBuf,
    /// The mount point this guard made, if it had to mount the hierarchy.
    mounted: Option<Scratch>,
}

impl CgroupTree {
    fn new(v2: bool) -> CgroupTree {
        static N: AtomicU64 = AtomicU64::new(0);
        let (mount, mounted) = match find_mount(v2) {
            Some(m) => (m, None),
            None => {
                let dir = Scratch::new();
                let st = if v2 {
                    Command::new("mount")
                        .args(["-t", "cgroup2", "none"])
                        .arg(dir.path())
                        .status()
                } else {
                    Command::new("mount")
                        .args(["-t", "cgroup", "-o", "none,name=podports-test", "cgroup"])
                        .arg(dir.path())
                        .status()
                };
                assert!(
                    st.is_ok_and(|s| s.success()),
                    "no {} hierarchy mounted, and mounting one failed",
                    if v2 { "cgroup2" } else { "cgroup v1" }
                );
                (dir.path().to_path_buf(), Some(dir))
            }
        };
        sweep_stale_cgroups(&mount);
        let base = mount.join(format!(
            "podports-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir(&base).unwrap_or_else(|e| panic!("{}: {e}", base.display()));
        CgroupTree {
            mount,
            base,
            mounted,
        }
    }

    /// Creates `base/rel` (and its parents); returns it.
    fn dir(&self, rel: &str) -> PathBuf {
        let d = self.base.join(rel);
        fs::create_dir_all(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display()));
        d
    }

    /// The path `/proc/PID/cgroup` shows for `base/rel`.
    fn proc_path(&self, rel: &str) -> String {
        format!(
            "/{}/{rel}",
            self.base.strip_prefix(&self.mount).unwrap().display()
        )
    }
}

impl Drop for CgroupTree {
    fn drop(&mut self) {
        remove_cgroup_tree(&self.mount, &self.base);
        if let Some(dir) = &self.mounted {
            let _ = Command::new("umount").arg(dir.path()).status();
        }
    }
}

/// Removes `dir` and every cgroup under it, deepest first. A process still inside (exiting)
/// makes rmdir fail with EBUSY for a moment: retry, then move it to the root.
fn remove_cgroup_tree(mount: &Path, dir: &Path) {
    let mut dirs = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        if let Ok(rd) = fs::read_dir(&d) {
            for e in rd.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    stack.push(e.path());
                }
            }
        }
        dirs.push(d);
    }
    dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    for d in dirs {
        let deadline = Instant::now() + Duration::from_secs(3);
        while fs::remove_dir(&d).is_err() && d.exists() {
            if Instant::now() >= deadline {
                for pid in fs::read_to_string(d.join("cgroup.procs"))
                    .unwrap_or_default()
                    .lines()
                {
                    let _ = fs::write(mount.join("cgroup.procs"), pid);
                }
                if fs::remove_dir(&d).is_err() {
                    eprintln!("warning: could not remove cgroup {}", d.display());
                }
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Removes `podports-test-<pid>-*` trees left by a test process that is gone.
fn sweep_stale_cgroups(mount: &Path) {
    static DONE: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());
    let mut done = DONE.lock().unwrap_or_else(|e| e.into_inner());
    if done.iter().any(|m| m == mount) {
        return;
    }
    done.push(mount.to_path_buf());
    let Ok(rd) = fs::read_dir(mount) else { return };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix("podports-test-")
            .and_then(|r| r.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            remove_cgroup_tree(mount, &e.path());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The simulated node

/// A host root for `--host-root`: `proc` and `run/netns` link to the real ones, `sys/fs/cgroup`
/// to the directory holding the cgroup2 tree; `var/log/pods` and `var/log/containers` are
/// written by the test. Owns the cgroup trees, so it must be declared before the pods.
struct SimNode {
    root: Scratch,
    v2: CgroupTree,
    v1: OnceLock<CgroupTree>,
}

impl SimNode {
    fn new() -> SimNode {
        let root = Scratch::new();
        let v2 = CgroupTree::new(true);
        fs::create_dir_all(root.join("sys/fs")).unwrap();
        fs::create_dir_all(root.join("run")).unwrap();
        fs::create_dir_all(root.join("var/log/pods")).unwrap();
        fs::create_dir_all(root.join("var/log/containers")).unwrap();
        symlink("/proc", root.join("proc")).unwrap();
        symlink("/run/netns", root.join("run/netns")).unwrap();
        // A hybrid host has the v2 tree at /sys/fs/cgroup/unified: link its parent.
        let cg = if v2.mount.ends_with("unified") {
            v2.mount.parent().unwrap().to_path_buf()
        } else {
            v2.mount.clone()
        };
        symlink(&cg, root.join("sys/fs/cgroup")).unwrap();
        SimNode {
            root,
            v2,
            v1: OnceLock::new(),
        }
    }

    fn root(&self) -> &Path {
        self.root.path()
    }

    fn tree(&self, layout: Layout) -> &CgroupTree {
        if layout.v1() {
            self.v1.get_or_init(|| CgroupTree::new(false))
        } else {
            &self.v2
        }
    }

    /// `var/log/pods/<ns>_<name>_<uid>/<container>/0.log` for each container.
    fn pod_dir(&self, ns: &str, name: &str, uid: &str, containers: &[&str]) {
        let dir = self.root.join(format!("var/log/pods/{ns}_{name}_{uid}"));
        for c in containers {
            fs::create_dir_all(dir.join(c)).unwrap();
            fs::write(dir.join(c).join("0.log"), "").unwrap();
        }
        fs::create_dir_all(&dir).unwrap();
    }

    /// `var/log/containers/<pod>_<ns>_<container>-<id>.log -> /var/log/pods/...` (a host path:
    /// dangling here, as in a DaemonSet; podports reads the link, never follows it).
    fn container_link(&self, ns: &str, pod: &str, uid: &str, container: &str, id: &str) {
        symlink(
            format!("/var/log/pods/{ns}_{pod}_{uid}/{container}/0.log"),
            self.root.join(format!(
                "var/log/containers/{pod}_{ns}_{container}-{id}.log"
            )),
        )
        .unwrap();
    }
}

/// One container of a simulated pod.
struct SimContainer {
    name: String,
    id: String,
    /// Its cgroup directory.
    cgroup: PathBuf,
}

/// A pod: processes in its own network namespace (or the node's), in kubelet-shaped cgroups,
/// with its log directory and links. Helpers are killed before the namespace goes.
struct SimPod {
    procs: Vec<Proc>,
    ns: Netns,
    namespace: String,
    name: String,
    uid: String,
    layout: Layout,
    containers: Vec<SimContainer>,
}

impl SimPod {
    fn new(node: &SimNode, layout: Layout, namespace: &str, name: &str, uid: &str) -> SimPod {
        SimPod {
            procs: Vec::new(),
            ns: Netns::new(),
            namespace: namespace.into(),
            name: name.into(),
            uid: uid.into(),
            layout,
            containers: Vec::new(),
        }
        .with_dir(node)
    }

    fn with_dir(self, node: &SimNode) -> SimPod {
        node.pod_dir(&self.namespace, &self.name, &self.uid, &[]);
        self
    }

    /// A container: its cgroup, log directory and link (`pause` gets neither: the kubelet
    /// logs no sandbox). Returns its index.
    fn container(&mut self, node: &SimNode, name: &str) -> usize {
        let id = new_id();
        let cgroup = node
            .tree(self.layout)
            .dir(&self.layout.container(&self.uid, &id));
        if name != "pause" {
            node.pod_dir(&self.namespace, &self.name, &self.uid, &[name]);
            node.container_link(&self.namespace, &self.name, &self.uid, name, &id);
        }
        self.containers.push(SimContainer {
            name: name.into(),
            id,
            cgroup,
        });
        self.containers.len() - 1
    }

    /// Starts `exe OPS` in container `c` (inside the pod's namespace); returns its pid.
    fn run(&mut self, c: usize, exe: &str, ops: &[&str]) -> i32 {
        let cgroup = self.containers[c].cgroup.clone();
        let p = Proc::start_in_cgroups(&self.ns, &[cgroup], &install_as(exe), ops);
        let pid = p.pid();
        self.procs.push(p);
        pid
    }

    fn container_named(&self, name: &str) -> &SimContainer {
        self.containers.iter().find(|c| c.name == name).unwrap()
    }

    fn pod_ref(&self) -> PodRef {
        PodRef {
            namespace: Some(self.namespace.clone()),
            name: Some(self.name.clone()),
            uid: self.uid.clone(),
        }
    }
}

/// A sidecar pod: pause, istio-proxy (pilot-agent starting envoy), and the app.
fn sidecar_pod(node: &SimNode, layout: Layout, namespace: &str, name: &str) -> (SimPod, i32) {
    let mut pod = SimPod::new(node, layout, namespace, name, &new_uid());
    pod.ns.add_addr("10.0.0.5/32");
    let pause = pod.container(node, "pause");
    pod.run(pause, "pause", &[]);
    let proxy = pod.container(node, "istio-proxy");
    let envoy_ready = node.root.join(format!("envoy-{}.ready", unique()));
    let envoy = install_as("envoy");
    pod.run(
        proxy,
        "pilot-agent",
        &[
            "tcp-listen=[::]:15020",
            "udp-bind=127.0.0.1:15053",
            &format!("spawn={}", envoy.display()),
            "--ready",
            envoy_ready.to_str().unwrap(),
            "tcp-listen=127.0.0.1:15000",
            "tcp-listen=0.0.0.0:15001,reuseport",
            "tcp-listen=0.0.0.0:15006",
            "tcp-listen=0.0.0.0:15021",
            "tcp-connect=127.0.0.1:15020",
            ";;",
            &format!("wait-file={}", envoy_ready.display()),
        ],
    );
    let envoy_pid = common::wait_ready_file(&envoy_ready).pid;
    let app = pod.container(node, "productpage");
    pod.run(
        app,
        "myapp",
        &[
            "tcp-listen=10.0.0.5:9080",
            "tcp-connect=10.0.0.5:9080,from=127.0.0.6",
            "udp-connect=127.0.0.1:15053",
        ],
    );
    (pod, envoy_pid)
}

/// `/proc/PID/cgroup`'s v2 (or v1) line for `pid`.
fn cgroup_line(pid: i32, v1: bool) -> String {
    let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    text.lines()
        .find(|l| l.starts_with("0::") != v1 && l.contains("kubepods"))
        .unwrap_or_else(|| panic!("pid {pid} is in no kubepods cgroup:\n{text}"))
        .to_string()
}

// ---------------------------------------------------------------------------------------------
// Live tests

#[cfg_attr(podports_not_root, ignore = "needs root")]
#[test]
fn pod_by_name_uid_and_container_lists_what_ss_lists() {
    if !require_root("pod_by_name_uid_and_container_lists_what_ss_lists") {
        return;
    }
    let node = SimNode::new();
    let (pod, envoy_pid) = sidecar_pod(
        &node,
        Layout::SystemdContainerd,
        "default",
        "productpage-v1-6b746f74dc-9stvb",
    );
    // A recreated pod of the same name left its old directory behind: not the one to pick.
    node.pod_dir("default", &pod.name, &new_uid(), &["istio-proxy"]);
    let proxy = pod.container_named("istio-proxy");
    assert!(
        cgroup_line(envoy_pid, false).ends_with(
            &node
                .v2
                .proc_path(&Layout::SystemdContainerd.container(&pod.uid, &proxy.id))
        ),
        "{}",
        cgroup_line(envoy_pid, false)
    );
    let ss = settle(&pod.ns);
    let root = node.root();

    let by_name = json(root, &["--pod", &format!("default/{}", pod.name)]);
    assert_matches_ss(&by_name, &ss);
    assert_eq!(by_name.pod, Some(pod.pod_ref()));
    assert_eq!(by_name.netns.inode, Some(pod.ns.inode()));
    assert_eq!(by_name.netns.target, format!("pod default/{}", pod.name));
    assert!(!by_name.host_network);
    assert!(by_name.warnings.is_empty(), "{:?}", by_name.warnings);

    // Every owner is named with its container.
    let app = pod.container_named("productpage");
    let owners = owner_containers(&by_name);
    assert_eq!(
        owners.get(&envoy_pid),
        Some(&(
            Some("istio-proxy".into()),
            Some(proxy.id.clone()),
            pod.uid.clone()
        ))
    );
    assert_eq!(owners.len(), 3, "{owners:?}");
    for (pid, (name, id, uid)) in &owners {
        assert_eq!(uid, &pod.uid, "pid {pid}");
        let want = if *pid == pod.procs[2].pid() {
            app
        } else {
            proxy
        };
        assert_eq!(
            (name.as_deref(), id.as_deref()),
            (Some(want.name.as_str()), Some(want.id.as_str())),
            "pid {pid}"
        );
    }

    // The same pod by UID (either form), by its container, and by name and --namespace.
    for args in [
        vec!["--pod-uid".to_string(), pod.uid.clone()],
        vec!["--pod-uid".to_string(), pod.uid.replace('-', "_")],
        vec!["--container".to_string(), app.id[..12].to_string()],
        vec![
            "--pod".to_string(),
            pod.name.clone(),
            "--namespace".to_string(),
            "default".to_string(),
        ],
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let doc = json(root, &args);
        assert_eq!(keys(&doc), keys(&by_name), "{args:?}");
        assert_eq!(doc.pod, Some(pod.pod_ref()), "{args:?}");
        assert_eq!(owner_containers(&doc), owners, "{args:?}");
    }

    // --pid of a pod's process names the pod too.
    let by_pid = json(root, &["--pid", &envoy_pid.to_string()]);
    assert_eq!(by_pid.pod, Some(pod.pod_ref()));

    // The table says who is who: `envoy[1234] istio-proxy`.
    let t = table(root, &["--pod", &format!("default/{}", pod.name)]);
    assert!(
        t.contains(&format!("envoy[{envoy_pid}] istio-proxy")),
        "{t}"
    );
    assert!(
        t.contains(&format!("myapp[{}] productpage", pod.procs[2].pid())),
        "{t}"
    );
    assert!(
        t.contains(&format!("pod default/{}, uid {}", pod.name, pod.uid)),
        "{t}"
    );
}

#[cfg_attr(podports_not_root, ignore = "needs root")]
#[test]
fn every_layout_resolves_crio_monitor_skipped() {
    if !require_root("every_layout_resolves_crio_monitor_skipped") {
        return;
    }
    let node = SimNode::new();
    let root = node.root();

    // CRI-O with the cgroupfs driver: no pause, and a monitor in the pod's cgroup but in
    // another network namespace (the host's, on a real node) holding a socket of its own.
    let mut crio = SimPod::new(
        &node,
        Layout::CgroupfsCrio,
        "team-a",
        "crio-web",
        &new_uid(),
    );
    let web = crio.container(&node, "web");
    crio.run(
        web,
        "nginx",
        &["tcp-listen=0.0.0.0:8080", "udp-bind=[::]:8053"],
    );
    let decoy = Netns::new();
    let conmon_cg = node
        .v2
        .dir(&Layout::CgroupfsCrio.conmon(&crio.uid, &crio.containers[web].id));
    let conmon = Proc::start_in_cgroups(
        &decoy,
        &[conmon_cg],
        &install_as("conmon"),
        &["tcp-listen=127.0.0.1:7777"],
    );
    assert!(cgroup_line(conmon.pid(), false).contains("/crio-conmon-"));

    // CRI-O with the systemd driver and crun's extra `/container` leaf.
    let mut crun = SimPod::new(
        &node,
        Layout::SystemdCrioCrun,
        "team-a",
        "crun-api",
        &new_uid(),
    );
    let api = crun.container(&node, "api");
    crun.run(
        api,
        "api-server",
        &["tcp-listen=[::]:8443", "unix-listen=@api.sock"],
    );
    assert!(cgroup_line(crun.procs[0].pid(), false).ends_with("/container"));

    // cgroup v1 only (the v2 line stays at /), cgroupfs driver, docker.
    let mut v1 = SimPod::new(
        &node,
        Layout::V1CgroupfsDocker,
        "team-b",
        "legacy-0",
        &new_uid(),
    );
    let pause = v1.container(&node, "pause");
    v1.run(pause, "pause", &[]);
    let app = v1.container(&node, "legacy");
    v1.run(
        app,
        "legacy-app",
        &["tcp-listen=127.0.0.1:9000", "socketpair"],
    );
    let line = cgroup_line(v1.procs[1].pid(), true);
    assert!(
        line.contains(&format!("/kubepods/besteffort/pod{}/", v1.uid)),
        "{line}"
    );

    // kind (kubelet.slice nesting), a static pod (32-hex UID).
    let mut kind = SimPod::new(
        &node,
        Layout::Kind,
        "kube-system",
        "etcd-kind-control-plane",
        &new_static_uid(),
    );
    let etcd = kind.container(&node, "etcd");
    kind.run(
        etcd,
        "etcd",
        &["tcp-listen=127.0.0.1:2379", "tcp-listen=127.0.0.1:2381"],
    );

    for (pod, args) in [
        (
            &crio,
            vec!["--pod".to_string(), "team-a/crio-web".to_string()],
        ),
        (&crun, vec!["--pod-uid".to_string(), crun.uid.clone()]),
        (
            &v1,
            vec!["--pod".to_string(), "team-b/legacy-0".to_string()],
        ),
        (
            &kind,
            vec![
                "--container".to_string(),
                kind.containers[0].id[..20].to_string(),
            ],
        ),
        (
            &kind,
            vec!["--pod-uid".to_string(), kind.uid.to_uppercase()],
        ),
    ] {
        let ss = settle(&pod.ns);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let doc = json(root, &args);
        assert_matches_ss(&doc, &ss);
        assert_eq!(doc.netns.inode, Some(pod.ns.inode()), "{args:?}");
        assert_eq!(doc.pod, Some(pod.pod_ref()), "{args:?}");
        for s in &doc.sockets {
            for p in &s.processes {
                let c = p.container.as_ref().unwrap_or_else(|| panic!("{p:?}"));
                let want = &pod.containers.iter().find(|c| c.name != "pause").unwrap();
                assert_eq!(c.name.as_deref(), Some(want.name.as_str()), "{args:?}");
                assert_eq!(c.id.as_deref(), Some(want.id.as_str()), "{args:?}");
            }
        }
    }
    drop(conmon);
}

#[cfg_attr(podports_not_root, ignore = "needs root")]
#[test]
fn all_pods_lists_each_namespace_once_grouped_by_pod() {
    if !require_root("all_pods_lists_each_namespace_once_grouped_by_pod") {
        return;
    }
    let node = SimNode::new();
    let root = node.root();
    let (a, _) = sidecar_pod(&node, Layout::SystemdContainerd, "team-a", "reviews-v1-abc");
    let mut b = SimPod::new(
        &node,
        Layout::CgroupfsCrio,
        "team-b",
        "ratings-v1-def",
        &new_uid(),
    );
    let c = b.container(&node, "ratings");
    b.run(
        c,
        "ratings",
        &["tcp-listen=0.0.0.0:9080", "udp-bind=0.0.0.0:9053"],
    );
    // Two hostNetwork pods: their processes live in the node's namespace, that of /proc/1
    // (which this sandbox does not let us open: join the test's own, the same one).
    let host_ns = fs::metadata(format!("/proc/{}/ns/net", std::process::id()))
        .unwrap()
        .ino();
    let node_ns = fs::read_link("/proc/1/ns/net")
        .or_else(|_| fs::read_link("/proc/2/ns/net"))
        .unwrap();
    assert_eq!(
        node_ns,
        PathBuf::from(format!("net:[{host_ns}]")),
        "the tests must run in the node's network namespace (that of pid 1, or kthreadd's)"
    );
    let join_host = format!("setns=/proc/{}/ns/net", std::process::id());
    let mut host_pods = Vec::new();
    for (ns, name, exe) in [
        ("team-b", "node-exporter-x1", "node-exporter"),
        ("kube-system", "kube-proxy-x2", "kube-proxy"),
    ] {
        let mut p = SimPod::new(&node, Layout::SystemdContainerd, ns, name, &new_uid());
        let c = p.container(&node, exe);
        p.run(c, exe, &[&join_host, "tcp-listen=127.0.0.1:0"]);
        host_pods.push(p);
    }
    let ss_a = settle(&a.ns);
    let ss_b = settle(&b.ns);

    let docs = json_lines(root, &[]);
    let of = |uid: &str| -> Vec<&Document> {
        docs.iter()
            .filter(|d| d.pod.as_ref().is_some_and(|p| p.uid == uid))
            .collect()
    };
    for (pod, ss) in [(&a, &ss_a), (&b, &ss_b)] {
        let mine = of(&pod.uid);
        assert_eq!(mine.len(), 1, "{} listed {} times", pod.name, mine.len());
        assert_matches_ss(mine[0], ss);
        assert_eq!(mine[0].pod, Some(pod.pod_ref()));
        assert_eq!(mine[0].netns.inode, Some(pod.ns.inode()));
        assert!(!mine[0].host_network);
    }
    // The node's namespace: once, for both hostNetwork pods, with their sockets named.
    let host: Vec<&Document> = docs.iter().filter(|d| d.host_network).collect();
    assert_eq!(host.len(), 1, "{docs:#?}");
    let host = host[0];
    assert_eq!(host.netns.inode, Some(host_ns));
    assert!(host.pod.is_none());
    for p in &host_pods {
        assert!(host.pods.contains(&p.pod_ref()), "{:?}", host.pods);
        let ready = p.procs[0].ready();
        let s = host
            .sockets
            .iter()
            .find(|s| s.inode == ready.sockets[0].ino)
            .unwrap_or_else(|| panic!("{} not in the host listing", p.name));
        let owner = &s.processes[0];
        assert_eq!(owner.pid, p.procs[0].pid());
        assert_eq!(owner.pod.as_ref(), Some(&p.pod_ref()));
        assert_eq!(
            owner.container.as_ref().and_then(|c| c.name.as_deref()),
            Some(p.containers[0].name.as_str())
        );
        assert!(
            of(&p.uid).is_empty(),
            "a hostNetwork pod has no listing of its own"
        );
    }

    // --namespace keeps one namespace's pods (the node's listing only for its hostNetwork pod).
    let team_b = json_lines(root, &["--namespace", "team-b"]);
    let names: Vec<String> = team_b
        .iter()
        .flat_map(|d| d.pod.iter().chain(d.pods.iter()))
        .map(|p| p.to_string())
        .collect();
    assert_eq!(
        names,
        vec!["team-b/ratings-v1-def", "team-b/node-exporter-x1"]
    );

    // The table: grouped by pod, each under its heading, the node's namespace last.
    let t = table(root, &["--all-pods", "--namespace", "team-a"]);
    assert!(t.starts_with("=== pod team-a/reviews-v1-abc\n"), "{t}");
    assert!(t.contains(" istio-proxy"), "{t}");
    assert!(!t.contains("team-b"), "{t}");
    let t = table(root, &["--all-pods"]);
    let heading_a = t.find("=== pod team-a/reviews-v1-abc").unwrap();
    let heading_b = t.find("=== pod team-b/ratings-v1-def").unwrap();
    let heading_host = t.find("=== the node's network namespace").unwrap();
    assert!(heading_a < heading_b && heading_b < heading_host, "{t}");
    assert!(t.contains("hostNetwork pods: "), "{t}");
}

#[cfg_attr(podports_not_root, ignore = "needs root")]
#[test]
fn a_socket_no_process_holds_is_named_by_its_cgroup() {
    if !require_root("a_socket_no_process_holds_is_named_by_its_cgroup") {
        return;
    }
    let node = SimNode::new();
    let mut pod = SimPod::new(
        &node,
        Layout::SystemdContainerd,
        "default",
        "backlog-0",
        &new_uid(),
    );
    pod.ns.add_addr("10.0.0.9/32");
    let app = pod.container(&node, "app");
    let client = pod.container(&node, "client");
    // The app never accepts: the server end of the connection waits in its accept queue, a
    // full socket with no file and no fd (inode 0), created in the app's cgroup.
    pod.run(app, "myapp", &["tcp-listen=10.0.0.9:9080,noaccept"]);
    pod.run(client, "curl", &["tcp-connect=10.0.0.9:9080"]);
    let ss = eventually("the queued connection", Duration::from_secs(10), || {
        let ss = ss_sockets(&pod.ns);
        let queued = ss
            .iter()
            .filter(|s| s.state == "ESTABLISHED" && s.inode == 0)
            .count();
        if queued == 1 {
            Ok(ss)
        } else {
            Err(format!("{ss:?}"))
        }
    });
    let doc = json(node.root(), &["--pod", "default/backlog-0"]);
    assert_matches_ss(&doc, &ss);
    let queued: Vec<&SocketDoc> = doc
        .sockets
        .iter()
        .filter(|s| s.state == "ESTABLISHED" && s.inode == 0)
        .collect();
    assert_eq!(queued.len(), 1);
    let q = queued[0];
    assert!(q.processes.is_empty());
    let app_dir = &pod.container_named("app").cgroup;
    assert_eq!(
        q.cgroup_id,
        Some(fs::metadata(app_dir).unwrap().ino()),
        "INET_DIAG_CGROUP_ID is the inode of the app's cgroup v2 directory"
    );
    let owner = q
        .cgroup_owner
        .as_ref()
        .unwrap_or_else(|| panic!("no cgroup owner: {q:?}"));
    assert_eq!(owner.pod, pod.pod_ref());
    let c = owner.container.as_ref().unwrap();
    assert_eq!(c.name.as_deref(), Some("app"));
    assert_eq!(c.id.as_deref(), Some(pod.containers[app].id.as_str()));
    // Sockets with an owner need no cgroup owner.
    assert!(
        doc.sockets
            .iter()
            .filter(|s| !s.processes.is_empty())
            .all(|s| s.cgroup_owner.is_none())
    );
    let t = table(node.root(), &["--pod", "default/backlog-0"]);
    assert!(t.contains("- (cgroup of app)"), "{t}");
}

#[cfg_attr(podports_not_root, ignore = "needs root")]
#[test]
fn pods_are_found_from_inside_a_cgroup_namespace() {
    if !require_root("pods_are_found_from_inside_a_cgroup_namespace") {
        return;
    }
    let node = SimNode::new();
    let mut pod = SimPod::new(
        &node,
        Layout::SystemdContainerd,
        "default",
        "details-v1-0",
        &new_uid(),
    );
    let app = pod.container(&node, "details");
    pod.run(
        app,
        "details",
        &["tcp-listen=0.0.0.0:9080", "udp-bind=[::]:9053"],
    );
    let ss = settle(&pod.ns);
    // podports in its own cgroup namespace, rooted at a sibling of the kubelet's tree: every
    // pod process's cgroup reads `0::/../kubepods.slice/...` to it.
    let reader = node.v2.dir("reader");
    let podports = env!("CARGO_BIN_EXE_podports");
    let script = format!(
        "echo 0 > {}/cgroup.procs && exec unshare --cgroup -- sh -c \
         'cat /proc/{}/cgroup; exec \"$0\" \"$@\"' {podports} --host-root {} -o json --pod \
         default/details-v1-0",
        reader.display(),
        pod.procs[0].pid(),
        node.root().display()
    );
    let out = Command::new("sh").args(["-c", &script]).output().unwrap();
    assert_exit(&out, 0);
    let text = String::from_utf8(out.stdout).unwrap();
    let (seen, doc) = text.split_once('{').unwrap();
    assert!(
        seen.contains("0::/../kubepods.slice/kubepods-burstable.slice/"),
        "not a relative path: {seen}"
    );
    let doc: Document = serde_json::from_str(&format!("{{{doc}")).unwrap();
    assert_matches_ss(&doc, &ss);
    assert_eq!(doc.pod, Some(pod.pod_ref()));
    let owners = owner_containers(&doc);
    assert_eq!(
        owners.get(&pod.procs[0].pid()),
        Some(&(
            Some("details".into()),
            Some(pod.containers[app].id.clone()),
            pod.uid.clone()
        ))
    );
}

// ---------------------------------------------------------------------------------------------
// Errors, on a fake node (no root needed): a `proc` of cgroup files and ns links.

struct FakeNode {
    root: Scratch,
}

impl FakeNode {
    fn new() -> FakeNode {
        let root = Scratch::new();
        fs::create_dir_all(root.join("proc")).unwrap();
        fs::create_dir_all(root.join("var/log/pods")).unwrap();
        fs::create_dir_all(root.join("var/log/containers")).unwrap();
        FakeNode { root }
    }

    fn pod(&self, ns: &str, name: &str, uid: &str) {
        fs::create_dir_all(
            self.root
                .join(format!("var/log/pods/{ns}_{name}_{uid}/app")),
        )
        .unwrap();
    }

    /// A process in the container `id` of pod `uid` (systemd, containerd), in netns `netns`.
    fn process(&self, pid: i32, uid: &str, id: &str, netns: u64) {
        let dir = self.root.join(format!("proc/{pid}"));
        fs::create_dir_all(dir.join("ns")).unwrap();
        fs::write(
            dir.join("cgroup"),
            format!("0::/{}\n", Layout::SystemdContainerd.container(uid, id)),
        )
        .unwrap();
        fs::write(dir.join("comm"), "app\n").unwrap();
        symlink(format!("net:[{netns}]"), dir.join("ns/net")).unwrap();
    }

    fn run(&self, args: &[&str]) -> Output {
        let mut all = vec!["--host-root", self.root.path().to_str().unwrap()];
        all.extend_from_slice(args);
        podports(&all)
    }
}

fn fake_node() -> (FakeNode, [String; 3], [String; 3]) {
    let node = FakeNode::new();
    let uids = [new_uid(), new_uid(), new_uid()];
    let ids = [
        format!("abc1{}", &new_id()[4..]),
        format!("abc2{}", &new_id()[4..]),
        format!("fff0{}", &new_id()[4..]),
    ];
    node.pod("default", "productpage-v1-6b746f74dc-9stvb", &uids[0]);
    node.pod("default", "reviews-v1-5c8b7d6f8-xk2lp", &uids[1]);
    node.pod("istio-system", "istiod-7d4f9b8c6-q9w8e", &uids[2]);
    for (i, (uid, id)) in uids.iter().zip(&ids).enumerate() {
        node.process(100 + i as i32, uid, id, 4026532000 + i as u64);
    }
    (node, uids, ids)
}

#[test]
fn an_unknown_pod_is_exit_3_naming_it_and_the_closest_pods() {
    let (node, uids, _) = fake_node();
    let o = node.run(&["--pod", "default/productpage-v1"]);
    assert_exit(&o, 3);
    let e = stderr(&o);
    assert!(
        e.contains("no pod default/productpage-v1 on this node"),
        "{e}"
    );
    assert!(
        e.contains(&format!(
            "closest on this node: default/productpage-v1-6b746f74dc-9stvb (uid {})",
            uids[0]
        )),
        "{e}"
    );
    // Same namespace first.
    let closest = e.split("closest on this node: ").nth(1).unwrap();
    assert!(closest.find("reviews") < closest.find("istiod"), "{e}");

    let o = node.run(&["--pod-uid", "11111111-2222-4333-8444-555555555555"]);
    assert_exit(&o, 3);
    let e = stderr(&o);
    assert!(
        e.contains("no pod with UID 11111111-2222-4333-8444-555555555555"),
        "{e}"
    );
    assert!(e.contains("closest on this node: "), "{e}");
    assert_exit(&node.run(&["--pod-uid", "not-a-uid"]), 2);

    let o = node.run(&["--container", "0123"]);
    assert_exit(&o, 3);
    assert!(
        stderr(&o).contains("no running container with an ID starting 0123"),
        "{}",
        stderr(&o)
    );

    // A pod whose processes are gone (a stale directory).
    node.pod("default", "gone-0", &new_uid());
    let o = node.run(&["--pod", "default/gone-0"]);
    assert_exit(&o, 3);
    assert!(
        stderr(&o).contains("has no running process"),
        "{}",
        stderr(&o)
    );

    // Not a node at all.
    let empty = Scratch::new();
    let o = podports(&["--host-root", empty.path().to_str().unwrap(), "--all-pods"]);
    assert_exit(&o, 3);
    assert!(stderr(&o).contains("--host-root"), "{}", stderr(&o));
}

#[test]
fn an_ambiguous_container_prefix_is_exit_2_listing_the_matches() {
    let (node, _, ids) = fake_node();
    let o = node.run(&["--container", "abc"]);
    assert_exit(&o, 2);
    let e = stderr(&o);
    assert!(
        e.contains("container ID prefix abc matches 2 running containers"),
        "{e}"
    );
    assert!(e.contains(&ids[0][..13]), "{e}");
    assert!(e.contains(&ids[1][..13]), "{e}");
    assert!(e.contains("default/productpage-v1-6b746f74dc-9stvb"), "{e}");
    assert!(!e.contains(&ids[2][..13]), "{e}");
    assert_exit(&node.run(&["--container", "xyz"]), 2);
}

#[test]
fn pod_flags_are_checked() {
    for args in [
        &["--pod", "a/b", "--pid", "1"][..],
        &["--pod", "a/b", "--all-pods"],
        &["--pod", ""],
        &["--pod", "a/b/c"],
        &["--pod", "/b"],
        &["--pod", "a/b", "--namespace", "c"],
        &["--namespace", "a"],
        &["--pid", "1", "--namespace", "a"],
        &["--container", ""],
    ] {
        let o = podports(args);
        assert_exit(&o, 2);
    }
}

/// The kubelet's names gone (no log directory, no links: a DaemonSet without /var/log, or
/// logs kept elsewhere): the runtime's own record of each container (containerd's config.json
/// for one pod, CRI-O's for another, docker's config.v2.json under cri-dockerd for a third)
/// names the pod and the containers, and `--pod` finds the pod.
#[cfg_attr(podports_not_root, ignore = "needs root")]
#[test]
fn the_runtime_state_names_pods_and_containers_the_kubelet_logs_do_not() {
    if !require_root("the_runtime_state_names_pods_and_containers_the_kubelet_logs_do_not") {
        return;
    }
    let node = SimNode::new();
    let pods = [
        sidecar_pod(
            &node,
            Layout::SystemdContainerd,
            "default",
            "reviews-v2-5b667bcbf8-x9z2p",
        ),
        sidecar_pod(
            &node,
            Layout::SystemdCrioCrun,
            "shop",
            "cart-7d9f8c6b5-q4w8e",
        ),
        sidecar_pod(
            &node,
            Layout::V1CgroupfsDocker,
            "bookinfo",
            "details-v1-79f774bdb9-kq8zl",
        ),
    ];
    let root = node.root();
    fs::remove_dir_all(root.join("var/log/pods")).unwrap();
    fs::remove_dir_all(root.join("var/log/containers")).unwrap();
    for (pod, _) in &pods {
        for c in &pod.containers {
            let sandbox = c.name == "pause";
            let (file, record) = match pod.layout {
                Layout::SystemdCrioCrun => (
                    format!(
                        "run/containers/storage/overlay-containers/{}/userdata/config.json",
                        c.id
                    ),
                    serde_json::json!({"ociVersion": "1.0.2-dev", "annotations": {
                        "io.kubernetes.container.name": if sandbox { "POD" } else { c.name.as_str() },
                        "io.kubernetes.pod.name": pod.name,
                        "io.kubernetes.pod.namespace": pod.namespace,
                        "io.kubernetes.pod.uid": pod.uid,
                        "io.kubernetes.cri-o.ContainerType": if sandbox { "sandbox" } else { "container" },
                    }}),
                ),
                Layout::V1CgroupfsDocker => (
                    format!("var/lib/docker/containers/{}/config.v2.json", c.id),
                    serde_json::json!({"ID": c.id, "Config": {"Labels": {
                        "io.kubernetes.container.name": if sandbox { "POD" } else { c.name.as_str() },
                        "io.kubernetes.docker.type": if sandbox { "podsandbox" } else { "container" },
                        "io.kubernetes.pod.name": pod.name,
                        "io.kubernetes.pod.namespace": pod.namespace,
                        "io.kubernetes.pod.uid": pod.uid,
                    }}}),
                ),
                _ => (
                    format!(
                        "run/containerd/io.containerd.runtime.v2.task/k8s.io/{}/config.json",
                        c.id
                    ),
                    serde_json::json!({"ociVersion": "1.1.0", "annotations": {
                        "io.kubernetes.cri.container-name": c.name,
                        "io.kubernetes.cri.container-type": if sandbox { "sandbox" } else { "container" },
                        "io.kubernetes.cri.sandbox-name": pod.name,
                        "io.kubernetes.cri.sandbox-namespace": pod.namespace,
                        "io.kubernetes.cri.sandbox-uid": pod.uid,
                    }}),
                ),
            };
            let path = root.join(file);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, record.to_string()).unwrap();
        }
    }
    for (pod, envoy) in &pods {
        let ss = settle(&pod.ns);
        let doc = json(root, &["--pod", &format!("{}/{}", pod.namespace, pod.name)]);
        assert_matches_ss(&doc, &ss);
        assert_eq!(doc.pod, Some(pod.pod_ref()), "{:?}", pod.layout);
        let owners = owner_containers(&doc);
        assert_eq!(
            owners.get(envoy),
            Some(&(
                Some("istio-proxy".into()),
                Some(pod.container_named("istio-proxy").id.clone()),
                pod.uid.clone()
            )),
            "{:?}: {owners:?}",
            pod.layout
        );
        let app = pod.procs[2].pid();
        assert_eq!(
            owners.get(&app).and_then(|o| o.0.as_deref()),
            Some(pod.container_named("productpage").name.as_str()),
            "{:?}",
            pod.layout
        );
    }
}

// ---------------------------------------------------------------------------------------------
// check --all-pods

/// A sidecar pod as the istio-sidecar profile wants it (pilot-agent with its status port, xDS
/// and SDS sockets; Envoy with admin, capture, readiness and stats ports), Envoy's admin bound
/// to `admin` (127.0.0.1 conforms), and the app on 9080.
fn mesh_sidecar(node: &SimNode, namespace: &str, name: &str, admin: &str) -> SimPod {
    mesh_sidecar_late(node, namespace, name, admin, None)
}

/// `mesh_sidecar`, with Envoy's admin listener opened only once `admin_after` exists.
fn mesh_sidecar_late(
    node: &SimNode,
    namespace: &str,
    name: &str,
    admin: &str,
    admin_after: Option<&Path>,
) -> SimPod {
    let mut pod = SimPod::new(node, Layout::SystemdContainerd, namespace, name, &new_uid());
    pod.ns.add_addr("10.0.0.5/32");
    let dir = node.root.join(format!("fs-{}", unique()));
    fs::create_dir_all(&dir).unwrap();
    let chdir = format!("chdir={}", dir.display());
    let pause = pod.container(node, "pause");
    pod.run(pause, "pause", &[]);
    let proxy = pod.container(node, "istio-proxy");
    let ready = node.root.join(format!("envoy-{}.ready", unique()));
    let envoy = install_as("envoy");
    let spawn = format!("spawn={}", envoy.display());
    let listen_admin = format!("tcp-listen={admin}:15000");
    let wait_envoy = format!("wait-file={}", ready.display());
    let mut ops = vec![
        chdir.as_str(),
        "tcp-listen=[::]:15020",
        "mkdir=etc/istio/proxy",
        "unix-listen=etc/istio/proxy/XDS",
        "mkdir=var/run/secrets/workload-spiffe-uds",
        "unix-listen=var/run/secrets/workload-spiffe-uds/socket",
        spawn.as_str(),
        "--ready",
        ready.to_str().unwrap(),
        "tcp-listen=0.0.0.0:15001,reuseport",
        "tcp-listen=0.0.0.0:15006",
        "tcp-listen=0.0.0.0:15021",
        "tcp-listen=0.0.0.0:15090",
    ];
    let late = admin_after.map(|p| format!("wait-file={}", p.display()));
    ops.extend(late.as_deref());
    ops.extend([listen_admin.as_str(), ";;"]);
    if late.is_none() {
        ops.push(wait_envoy.as_str());
    }
    pod.run(proxy, "pilot-agent", &ops);
    if late.is_none() {
        common::wait_ready_file(&ready);
    }
    let app = pod.container(node, "app");
    pod.run(app, "myapp", &["tcp-listen=10.0.0.5:9080"]);
    pod
}

/// `podports --host-root ROOT check --all-pods ARGS`.
fn check_all(root: &Path, args: &[&str]) -> Output {
    let mut all = vec!["check", "--all-pods", "--host-root", root.to_str().unwrap()];
    all.extend_from_slice(args);
    podports(&all)
}

/// A node of mixed pods: a conformant sidecar, a sidecar whose Envoy admin listens on every
/// address, an ambient pod whose listeners ztunnel holds from its own pod's namespace, ztunnel's
/// pod, istiod, a pod with no mesh, and a hostNetwork pod. `check --all-pods --profile auto`
/// gives each its verdict in the table, JSON Lines and JUnit, in one sweep.
#[cfg_attr(podports_not_root, ignore = "needs root")]
#[test]
fn check_all_pods_auto_gives_each_pod_its_verdict() {
    if !require_root("check_all_pods_auto_gives_each_pod_its_verdict") {
        return;
    }
    let node = SimNode::new();
    let root = node.root();
    // Namespaces of this test alone: other tests' simulated pods share the machine's cgroups.
    let mesh = format!("mesh-{:08x}", unique() as u32);
    let broken_ns = format!("broken-{:08x}", unique() as u32);
    let good = mesh_sidecar(&node, &mesh, "good-sidecar", "127.0.0.1");
    let broken = mesh_sidecar(&node, &broken_ns, "broken-sidecar", "0.0.0.0");

    // ztunnel's pod, and an ambient pod whose capture listeners ztunnel opens from inside it.
    let mut ztunnel = SimPod::new(
        &node,
        Layout::SystemdContainerd,
        &mesh,
        "ztunnel-x1",
        &new_uid(),
    );
    let mut ambient = SimPod::new(
        &node,
        Layout::SystemdContainerd,
        &mesh,
        "ambient-app",
        &new_uid(),
    );
    ambient.ns.add_addr("10.0.0.6/32");
    let pause = ambient.container(&node, "pause");
    ambient.run(pause, "pause", &[]);
    let app = ambient.container(&node, "app");
    ambient.run(app, "myapp", &["tcp-listen=10.0.0.6:8080"]);
    ztunnel.ns.add_addr("10.0.0.7/32");
    let zpause = ztunnel.container(&node, "pause");
    ztunnel.run(zpause, "pause", &[]);
    let zc = ztunnel.container(&node, "istio-proxy");
    let zt = Proc::start_in_cgroups(
        &ambient.ns,
        &[ztunnel.containers[zc].cgroup.clone()],
        &install_as("ztunnel"),
        &[
            "tcp-listen=0.0.0.0:15001",
            "tcp-listen=0.0.0.0:15006",
            "tcp-listen=0.0.0.0:15008",
            &format!("setns={}", ztunnel.ns.path().display()),
            "tcp-listen=127.0.0.1:15000",
            "tcp-listen=0.0.0.0:15020",
            "tcp-listen=0.0.0.0:15021",
        ],
    );
    ztunnel.procs.push(zt);

    let mut istiod = SimPod::new(&node, Layout::CgroupfsCrio, &mesh, "istiod-y2", &new_uid());
    istiod.ns.add_addr("10.0.0.8/32");
    let c = istiod.container(&node, "discovery");
    istiod.run(
        c,
        "pilot-discovery",
        &[
            "tcp-listen=0.0.0.0:8080",
            "tcp-listen=0.0.0.0:15010",
            "tcp-listen=0.0.0.0:15012",
            "tcp-listen=0.0.0.0:15014",
            "tcp-listen=0.0.0.0:15017",
            "tcp-listen=127.0.0.1:9876",
        ],
    );

    let mut plain = SimPod::new(
        &node,
        Layout::SystemdContainerd,
        &mesh,
        "plain-db",
        &new_uid(),
    );
    let c = plain.container(&node, "db");
    plain.run(c, "postgres", &["tcp-listen=0.0.0.0:5432"]);

    let join_host = format!("setns=/proc/{}/ns/net", std::process::id());
    let mut host = SimPod::new(
        &node,
        Layout::SystemdContainerd,
        &mesh,
        "node-agent",
        &new_uid(),
    );
    let c = host.container(&node, "agent");
    host.run(c, "node-agent", &[&join_host, "tcp-listen=127.0.0.1:0"]);

    let want: Vec<(&SimPod, &str, Option<&str>)> = vec![
        (&good, "pass", Some("istio-sidecar")),
        (&broken, "fail", Some("istio-sidecar")),
        (&ambient, "pass", Some("istio-ambient")),
        (&ztunnel, "pass", Some("ztunnel")),
        (&istiod, "pass", Some("istiod")),
        (&plain, "unchecked", None),
        (&host, "skipped", None),
    ];

    // JSON Lines: one object per pod, the whole node (other tests' pods included).
    let junit = node.root.join("check.xml");
    let o = check_all(
        root,
        &[
            "--profile",
            "auto",
            "-o",
            "json",
            "--junit",
            junit.to_str().unwrap(),
        ],
    );
    assert_exit(&o, 1);
    let docs: Vec<podports::render::check::PodCheckDocument> = String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect();
    for (pod, verdict, profile) in &want {
        let mine: Vec<_> = docs
            .iter()
            .filter(|d| d.pod.as_ref().is_some_and(|p| p.uid == pod.uid))
            .collect();
        assert_eq!(mine.len(), 1, "{}: {docs:#?}", pod.name);
        let d = mine[0];
        assert_eq!(d.verdict, *verdict, "{}: {d:#?}", pod.name);
        assert_eq!(
            d.sources,
            profile.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
            "{}: {d:#?}",
            pod.name
        );
        assert_eq!(d.check.is_some(), profile.is_some(), "{}", pod.name);
        if let Some(c) = &d.check {
            assert_eq!(c.passed, *verdict == "pass", "{}: {c:#?}", pod.name);
            assert_eq!(c.netns.inode, Some(pod.ns.inode()), "{}", pod.name);
            // Each pod's own addresses, read inside its namespace.
            assert!(c.families_known, "{}: {c:#?}", pod.name);
            assert_eq!(c.families, ["ipv4"], "{}", pod.name);
            assert!(d.auto.is_some(), "{}", pod.name);
        }
    }
    let broken_doc = docs
        .iter()
        .find(|d| d.pod.as_ref().is_some_and(|p| p.uid == broken.uid))
        .unwrap();
    let failed: Vec<_> = broken_doc
        .check
        .as_ref()
        .unwrap()
        .results
        .iter()
        .filter(|r| r.reason.contains("0.0.0.0:15000"))
        .collect();
    assert_eq!(failed.len(), 1, "{broken_doc:#?}");
    assert_eq!(failed[0].port, Some(15000));

    // JUnit: one testsuite per pod, one testcase per expectation; a failure only in the
    // broken sidecar's suite.
    let xml = fs::read_to_string(&junit).unwrap();
    let tree = roxmltree::Document::parse(&xml).unwrap_or_else(|e| panic!("{e}: {xml}"));
    for (pod, verdict, profile) in &want {
        let name = format!("pod {}/{}", pod.namespace, pod.name);
        let suites: Vec<_> = tree
            .descendants()
            .filter(|n| n.has_tag_name("testsuite") && n.attribute("name") == Some(&name))
            .collect();
        assert_eq!(suites.len(), 1, "{name}: {xml}");
        let suite = suites[0];
        let cases = suite
            .children()
            .filter(|n| n.has_tag_name("testcase"))
            .count();
        let failures: usize = suite.attribute("failures").unwrap().parse().unwrap();
        assert_eq!(failures > 0, *verdict == "fail", "{name}: {xml}");
        let doc = docs
            .iter()
            .find(|d| d.pod.as_ref().is_some_and(|p| p.uid == pod.uid))
            .unwrap();
        match (&doc.check, profile) {
            (Some(c), Some(_)) => assert_eq!(cases, c.results.len(), "{name}: {xml}"),
            _ => {
                assert_eq!(cases, 1, "{name}: {xml}");
                assert!(
                    suite.descendants().any(|n| n.has_tag_name("skipped")),
                    "{name}"
                );
            }
        }
    }

    // The table: a section and a summary line per pod, the node's verdict last.
    let o = check_all(root, &["--profile", "auto", "--namespace", &mesh]);
    assert_exit(&o, 0);
    let t = String::from_utf8(o.stdout).unwrap();
    eprintln!("{t}");
    for (pod, verdict, profile) in &want {
        let label = format!("pod {}/{}", pod.namespace, pod.name);
        match (verdict, profile) {
            (&"pass", Some(p)) => {
                assert!(
                    t.contains(&format!("=== {label}: {p} (auto: ")),
                    "{label}: {t}"
                );
                assert!(t.contains(&format!("\n{label} passed\n")), "{label}: {t}");
            }
            (&"unchecked", _) => assert!(
                t.contains(&format!("=== {label}: unchecked (auto: no mesh process")),
                "{t}"
            ),
            (&"skipped", _) => {
                assert!(
                    t.contains(&format!("=== {label}: skipped: hostNetwork")),
                    "{t}"
                )
            }
            _ => assert!(!t.contains(&label), "{label} is not in {mesh}: {t}"),
        }
    }
    assert!(
        t.contains(
            "node: 6 pods: 4 checked (4 passed, 0 failed), 1 unchecked, 1 hostNetwork skipped"
        ),
        "{t}"
    );
    assert!(t.ends_with("check passed\n"), "{t}");

    let o = check_all(
        root,
        &[
            "--profile",
            "auto",
            "--namespace",
            &broken_ns,
            "--width",
            "100",
        ],
    );
    assert_exit(&o, 1);
    let t = String::from_utf8(o.stdout).unwrap();
    let label = format!("pod {broken_ns}/broken-sidecar");
    assert!(
        t.contains(&format!("\n{label} FAILED: 1 failed, 0 unknown\n")),
        "{t}"
    );
    let flat = t.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        flat.contains("bound to 0.0.0.0:15000 (expected loopback only)"),
        "{t}"
    );
    assert!(t.ends_with(&format!("check FAILED: {label}\n")), "{t}");
    for line in t.lines() {
        assert!(
            line.chars().count() <= 100 && !line.ends_with(' '),
            "{line:?}\n{t}"
        );
    }

    // Expectations from the command line apply to every pod: the ambient pod is no sidecar.
    let o = check_all(
        root,
        &[
            "--profile",
            "istio-sidecar",
            "--namespace",
            &mesh,
            "-o",
            "json",
        ],
    );
    assert_exit(&o, 1);
    let docs: Vec<podports::render::check::PodCheckDocument> = String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let verdict = |pod: &SimPod| {
        docs.iter()
            .find(|d| d.pod.as_ref().is_some_and(|p| p.uid == pod.uid))
            .map(|d| d.verdict.clone())
    };
    assert_eq!(verdict(&good).as_deref(), Some("pass"));
    assert_eq!(verdict(&ambient).as_deref(), Some("fail"));
    assert_eq!(verdict(&plain).as_deref(), Some("fail"));
    assert_eq!(verdict(&host).as_deref(), Some("skipped"));

    // A file over the profile it extends, with the profile given too: the file's `drop` of
    // the admin port holds for every pod (the broken sidecar passes), said once for the node.
    let file = node.root.join("podports.yaml");
    fs::write(&file, "extends: istio-sidecar\ndrop:\n  - port: 15000\n").unwrap();
    let file = file.to_str().unwrap();
    let o = check_all(
        root,
        &[
            "--profile",
            "istio-sidecar",
            "--expect",
            file,
            "--namespace",
            &broken_ns,
        ],
    );
    assert_exit(&o, 0);
    let t = String::from_utf8(o.stdout).unwrap();
    let note = format!(
        "warning: --profile istio-sidecar: already extended by {file}; checked as that file \
         modifies it"
    );
    let flat = t.split_whitespace().collect::<Vec<_>>().join(" ");
    assert_eq!(flat.matches(&note).count(), 1, "{t}");
    assert!(t.ends_with("check passed\n"), "{t}");
}

/// `check --all-pods` on a host root with no pods is exit 3 (the node cannot be read), and
/// `--profile auto` goes alone and with --all-pods only (exit 2).
#[test]
fn check_all_pods_errors() {
    let empty = Scratch::new();
    fs::create_dir_all(empty.join("proc")).unwrap();
    let o = check_all(empty.path(), &["--profile", "auto"]);
    assert_exit(&o, 3);
    assert!(stderr(&o).contains("no pods found"), "{}", stderr(&o));
    let o = check_all(empty.path(), &["--profile", "auto", "--profile", "istiod"]);
    assert_exit(&o, 2);
    assert!(stderr(&o).contains("--profile auto"), "{}", stderr(&o));
    let o = podports(&["check", "--netns", "x", "--profile", "auto"]);
    assert_exit(&o, 2);
    assert!(
        stderr(&o).contains("goes with --all-pods"),
        "{}",
        stderr(&o)
    );
}

/// `--wait` applies per pod: a sidecar whose Envoy admin comes late is looked at again until it
/// passes, while a pod that passed at once is final after the first look.
#[cfg_attr(podports_not_root, ignore = "needs root")]
#[test]
fn check_all_pods_waits_for_each_pod() {
    if !require_root("check_all_pods_waits_for_each_pod") {
        return;
    }
    let node = SimNode::new();
    let root = node.root();
    let ns = format!("late-{:08x}", unique() as u32);
    let go = node.root.join("admin.go");
    let _good = mesh_sidecar(&node, &ns, "ready-now", "127.0.0.1");
    let late = mesh_sidecar_late(&node, &ns, "ready-later", "127.0.0.1", Some(&go));
    // Without --wait the late pod fails: its admin port is not there yet.
    let o = check_all(
        root,
        &["--profile", "auto", "--namespace", &ns, "-o", "json"],
    );
    assert_exit(&o, 1);
    let child = Command::new(env!("CARGO_BIN_EXE_podports"))
        .args(["check", "--all-pods", "--host-root", root.to_str().unwrap()])
        .args([
            "--profile",
            "auto",
            "--namespace",
            &ns,
            "--wait",
            "20s",
            "-o",
            "json",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    fs::write(&go, "").unwrap();
    let o = child.wait_with_output().unwrap();
    assert_exit(&o, 0);
    let docs: Vec<podports::render::check::PodCheckDocument> = String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(docs.len(), 2, "{docs:#?}");
    for d in &docs {
        assert_eq!(d.verdict, "pass", "{d:#?}");
        let wait = d
            .check
            .as_ref()
            .and_then(|c| c.wait.as_ref())
            .expect("wait");
        assert_eq!(wait.limit_ms, 20_000);
        if d.pod.as_ref().is_some_and(|p| p.uid != late.uid) {
            assert_eq!(wait.attempts, 1, "passed at the first look: {d:#?}");
        }
    }

    // At a terminal (a pty: `script`), the wait names the pods still failing on one line of
    // stderr, rewritten in place, and clears it before the report.
    let ns2 = format!("late-{:08x}", unique() as u32);
    let go2 = node.root.join("admin2.go");
    let _late2 = mesh_sidecar_late(&node, &ns2, "ready-later", "127.0.0.1", Some(&go2));
    let command = format!(
        "{} check --all-pods --host-root {} --profile auto --namespace {ns2} --wait 20s \
         --color never",
        env!("CARGO_BIN_EXE_podports"),
        root.display()
    );
    let child = Command::new("script")
        .args(["--quiet", "--return", "--command", &command, "/dev/null"])
        .env("COLUMNS", "120")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    fs::write(&go2, "").unwrap();
    let o = child.wait_with_output().unwrap();
    let screen = String::from_utf8_lossy(&o.stdout).to_string();
    assert_eq!(o.status.code(), Some(0), "{screen}");
    let progress = format!("1 pod failing: pod {ns2}/ready-later");
    assert!(
        screen.contains("\r\x1b[Kwaiting ") && screen.contains(&progress),
        "no progress line naming the failing pod: {screen:?}"
    );
    let report = screen.rsplit("\x1b[K").next().unwrap();
    assert!(
        report.contains(&format!("pod {ns2}/ready-later passed")),
        "{report}"
    );
}
/// `--watch --pod`: a client in the pod's `client` container connects and is gone (process and
/// all) within one interval; the closed connection is named by the container of the cgroup
/// that connected it, found after the process is gone (the connection tracing's cgroup id; or
/// the look's placement when a look caught it open). Skips without the tracing, except under
/// CI=true.
#[cfg_attr(podports_not_root, ignore = "needs root")]
#[test]
fn watch_names_the_container_of_a_connection_whose_process_is_gone() {
    const NAME: &str = "watch_names_the_container_of_a_connection_whose_process_is_gone";
    if !require_root(NAME) {
        return;
    }
    if let Err(e) = podports::sys::bpf::SockCreations::load() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{NAME}: the connection tracing does not load under CI=true: {e}");
        }
        eprintln!("skipped {NAME}: the connection tracing does not load: {e}");
        return;
    }
    let node = SimNode::new();
    let mut pod = SimPod::new(
        &node,
        Layout::SystemdContainerd,
        "default",
        "churn-0",
        &new_uid(),
    );
    pod.ns.add_addr("10.0.0.9/32");
    let app = pod.container(&node, "app");
    let client = pod.container(&node, "client");
    pod.run(app, "myapp", &["tcp-listen=10.0.0.9:9080"]);
    let mut watch = Command::new(env!("CARGO_BIN_EXE_podports"))
        .args(["--host-root", node.root().to_str().unwrap()])
        .args(["--watch", "2", "-o", "json", "--pod", "default/churn-0"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = watch.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // The first look.
    rx.recv_timeout(Duration::from_secs(10))
        .expect("a first look");
    // Five short-lived clients: each connects, and is killed with its connection.
    let cgroup = pod.containers[client].cgroup.clone();
    let mut pids = Vec::new();
    for _ in 0..5 {
        let p = Proc::start_in_cgroups(
            &pod.ns,
            std::slice::from_ref(&cgroup),
            &install_as("curl"),
            &["tcp-connect=10.0.0.9:9080"],
        );
        pids.push(p.pid());
        drop(p);
    }
    // Two more looks: every event is out.
    let mut lines = Vec::new();
    let until = Instant::now() + Duration::from_millis(4500);
    while let Ok(l) = rx.recv_timeout(until.saturating_duration_since(Instant::now())) {
        lines.push(l);
    }
    let _ = watch.kill();
    let _ = watch.wait();
    let closed: Vec<podports::render::closed::ClosedEvent> = lines
        .iter()
        .filter(|l| l.contains(r#""event":"closed""#))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let clients: Vec<_> = closed
        .iter()
        .filter(|c| match &c.socket.remote {
            podports::render::json::EndpointDoc::Inet(i) => i.port == 9080,
            _ => false,
        })
        .collect();
    assert_eq!(clients.len(), 5, "{closed:#?}");
    let mut created = 0;
    for c in &clients {
        assert!(
            matches!(c.owner_from.as_str(), "created" | "look"),
            "{c:#?}"
        );
        created += usize::from(c.owner_from == "created");
        let p = &c.socket.processes[0];
        assert!(pids.contains(&p.pid), "{c:#?}");
        assert_eq!(p.comm, "curl");
        let container = p.container.as_ref().expect("the client's container");
        assert_eq!(container.name.as_deref(), Some("client"), "{c:#?}");
        assert_eq!(
            container.id.as_deref(),
            Some(pod.containers[client].id.as_str())
        );
        assert_eq!(p.pod.as_ref(), Some(&pod.pod_ref()));
    }
    // Each lived a few ms between two looks 2 s apart: most, if not all, no look saw.
    assert!(
        created >= 3,
        "only {created} of 5 through the connection tracing"
    );
}

/// docs/check.md's example of `check --all-pods --profile auto`, as a person sees it at a
/// terminal of 120 columns, from a simulated node of three pods: a sidecar whose Envoy admin
/// listens on every address, a database with no mesh, and a hostNetwork pod. The check runs
/// in-process as `podports check --all-pods` runs it; what changes from run to run (pids, the
/// namespace's inode) is numbered before the table is laid out, so the widths are the same
/// every time. The golden file is tests/golden/check-node.txt (`PODPORTS_BLESS=1` refreshes it).
#[cfg_attr(podports_not_root, ignore = "needs root")]
#[test]
fn the_node_check_example() {
    use podports::catalog::Catalog;
    use podports::check::eval::{NodeReport, Verdict};
    use podports::check::run::{Input, Plan};
    use podports::model::FdWalk;
    use podports::render::columns::Layout as TableLayout;
    use podports::request::{Filters, Request, Source, Target};
    use podports::sys::node::HostRoot;

    if !require_root("the_node_check_example") {
        return;
    }
    let node = SimNode::new();
    let ns = "bookshop";
    let _sidecar = mesh_sidecar(&node, ns, "productpage-v1-7d4b9c-x2x7k", "0.0.0.0");
    let mut db = SimPod::new(
        &node,
        Layout::SystemdContainerd,
        ns,
        "postgres-0",
        &new_uid(),
    );
    let c = db.container(&node, "postgres");
    db.run(c, "postgres", &["tcp-listen=0.0.0.0:5432"]);
    let join_host = format!("setns=/proc/{}/ns/net", std::process::id());
    let mut host = SimPod::new(
        &node,
        Layout::SystemdContainerd,
        ns,
        "node-exporter-x2",
        &new_uid(),
    );
    let c = host.container(&node, "node-exporter");
    host.run(c, "node_exporter", &[&join_host, "tcp-listen=127.0.0.1:0"]);

    let plan = Plan {
        request: Request {
            target: Target::AllPods {
                namespace: Some(ns.to_string()),
            },
            source: Source::Netlink,
            filters: Filters::default(),
            host: HostRoot::new(node.root()),
            fd_walk: FdWalk::Auto,
        },
        inputs: vec![Input::Profile("auto".into())],
        wait: None,
        junit: None,
        bundle: None,
    };
    let catalog = Catalog::builtin().unwrap();
    let mut report = podports::check::node::check(&plan, &catalog, &mut |_| ()).unwrap();
    stable_numbers(&mut report);
    let mut out = Vec::new();
    let terminal = TableLayout {
        width: Some(120),
        ..TableLayout::PLAIN
    };
    podports::render::check::write_node_table(&mut out, &report, false, terminal).unwrap();
    let screen = String::from_utf8(out).unwrap();
    assert!(!report.passed(), "{screen}");
    assert!(
        screen.lines().all(|l| l.chars().count() <= 120),
        "wider than the terminal:\n{screen}"
    );
    common::golden::golden("check-node.txt", &screen);

    /// Holders' pids become 101, 102, ... in order of first appearance (in the reasons too),
    /// each checked pod's namespace inode 4026532001, ...
    fn stable_numbers(report: &mut NodeReport) {
        let mut pids: Vec<i32> = Vec::new();
        let mut inode = 4026532001;
        for pod in &mut report.pods {
            let Verdict::Checked(r) = &mut pod.verdict else {
                continue;
            };
            if r.netns_inode.is_some() {
                r.netns_inode = Some(inode);
                inode += 1;
            }
            for o in &mut r.outcomes {
                for f in &mut o.found {
                    for who in &mut f.holders {
                        if !pids.contains(&who.pid) {
                            pids.push(who.pid);
                        }
                    }
                }
            }
            let new = |pid: i32, pids: &[i32]| 101 + pids.iter().position(|p| *p == pid).unwrap();
            for o in &mut r.outcomes {
                for &old in &pids {
                    o.reason = o
                        .reason
                        .replace(&format!("[{old}]"), &format!("[{}]", new(old, &pids)));
                }
                for f in &mut o.found {
                    for who in &mut f.holders {
                        who.pid = new(who.pid, &pids) as i32;
                    }
                }
            }
        }
    }
}
