//! `kubectl podports node NODE check` (a node debug pod running `podports check --all-pods
//! --host-root /host`) against the stand-in cluster of tests/common/plugin.rs, whose debug pod
//! runs the REAL podports on a host root made here (the real /proc, one pod in kubelet-shaped
//! cgroups, its log directory): the contract of `POD check` (docs/ci.md): local --expect files
//! sent, --junit written here, podports' own exit code, exit 3 for a debug pod that never
//! starts or is refused. Needs root (the netns and the cgroups).
// A test: it makes sockets, files and processes freely (clippy.toml keeps them in sys/).
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod common;

use common::plugin::{Cluster, FAILS, PASSES, image, text};
use common::{Netns, Proc, Scratch, install_as};

/// The debug pod kubectl makes (the stand-in's name for it).
const DEBUG_POD: &str = "node-debugger-node-1-x2x7k";

/// A node as `--host-root` sees it: `proc`, `run/netns` and `sys/fs/cgroup` link to the real
/// ones; one pod, `NS/web-0`, its app listening on 9080 in its own netns, in
/// `podports-test-<pid>-plugin-<n>/kubepods/besteffort/pod<uid>/<id>` of the cgroup2
/// hierarchy, with its `var/log/pods` directory and `var/log/containers` link. Its namespace
/// is this test's alone (other tests' pods share the machine's cgroups): check it with
/// `--namespace`.
struct Node {
    app: Option<Proc>,
    _ns: Netns,
    root: Scratch,
    tree: PathBuf,
    namespace: String,
}

impl Node {
    fn new() -> Node {
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let mount = cgroup2_mount().expect("a cgroup2 hierarchy (cgroup2 or hybrid host)");
        let tree = mount.join(format!("podports-test-{pid}-plugin-{n}"));
        let uid = format!("{pid:08x}-0000-4000-8000-{n:012x}");
        let id = format!("{pid:032x}{n:032x}");
        let namespace = format!("plugin-{pid}-{n}");
        let cgroup = tree.join(format!("kubepods/besteffort/pod{uid}/{id}"));
        fs::create_dir_all(&cgroup).unwrap_or_else(|e| panic!("{}: {e}", cgroup.display()));

        let root = Scratch::new();
        fs::create_dir_all(root.join("sys/fs")).unwrap();
        fs::create_dir_all(root.join("run")).unwrap();
        fs::create_dir_all(root.join("var/log/containers")).unwrap();
        symlink("/proc", root.join("proc")).unwrap();
        symlink("/run/netns", root.join("run/netns")).unwrap();
        let cg = if mount.ends_with("unified") {
            mount.parent().unwrap().to_path_buf()
        } else {
            mount.clone()
        };
        symlink(&cg, root.join("sys/fs/cgroup")).unwrap();
        let log = format!("var/log/pods/{namespace}_web-0_{uid}/app");
        fs::create_dir_all(root.join(&log)).unwrap();
        fs::write(root.join(&log).join("0.log"), "").unwrap();
        symlink(
            format!("/{log}/0.log"),
            root.join(format!("var/log/containers/web-0_{namespace}_app-{id}.log")),
        )
        .unwrap();

        let ns = Netns::new();
        let app = Proc::start_in_cgroups(
            &ns,
            &[cgroup],
            &install_as("myapp"),
            &["tcp-listen=0.0.0.0:9080"],
        );
        Node {
            app: Some(app),
            _ns: ns,
            root,
            tree,
            namespace,
        }
    }

    fn host(&self) -> &Path {
        self.root.path()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        // The app first: a cgroup with a process in it cannot be removed.
        drop(self.app.take());
        let mut dirs = vec![self.tree.clone()];
        let mut i = 0;
        while i < dirs.len() {
            if let Ok(rd) = fs::read_dir(&dirs[i]) {
                dirs.extend(
                    rd.flatten()
                        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                        .map(|e| e.path()),
                );
            }
            i += 1;
        }
        for d in dirs.iter().rev() {
            let deadline = Instant::now() + Duration::from_secs(3);
            while fs::remove_dir(d).is_err() && d.exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// The cgroup2 hierarchy's mount point, from /proc/self/mountinfo.
fn cgroup2_mount() -> Option<PathBuf> {
    let info = fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines().find_map(|line| {
        let (pre, post) = line.split_once(" - ")?;
        let mount = pre.split(' ').nth(4)?;
        (post.split(' ').next() == Some("cgroup2")).then(|| PathBuf::from(mount))
    })
}

/// The generated container name in a recorded call, and the call with it as `NAME`.
fn unname(call: &str) -> (String, String) {
    let start = call.find("[--container=").expect("a --container") + "[--container=".len();
    let end = start + call[start..].find(']').unwrap();
    let name = call[start..end].to_string();
    let rest = name
        .strip_prefix("podports-check-")
        .expect("podports-check-EPOCH-PID");
    assert!(
        rest.split('-').count() == 2 && rest.split('-').all(|n| n.parse::<u64>().is_ok()),
        "{name}"
    );
    (name.clone(), call.replace(&name, "NAME"))
}

#[cfg_attr(podports_not_root, ignore = "needs root")]
#[test]
fn node_check_sends_local_files_writes_junit_here_and_exits_with_podports_code() {
    if !common::require_root(
        "node_check_sends_local_files_writes_junit_here_and_exits_with_podports_code",
    ) {
        return;
    }
    let node = Node::new();
    let ns = node.namespace.as_str();
    let c = Cluster::new("node-run", "run");
    c.file("deploy/podports.yaml", PASSES);
    c.file("deploy/admin.yaml", FAILS);
    c.file("reports/.keep", "");

    // Pass: exit 0, the pod's verdict shown, the JUnit here, naming the local file.
    let out = c.run_node(
        node.host(),
        &[
            "node",
            "node-1",
            "check",
            "--namespace",
            ns,
            "--expect",
            "deploy/podports.yaml",
            "--junit",
            "reports/node-1.xml",
        ],
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains(&format!("{ns}/web-0")), "{stdout}");
    assert!(
        !stdout.contains("podports junit"),
        "the frame is cut out of the report: {stdout}"
    );
    let (xml, tests, failures) = c.junit("reports/node-1.xml");
    assert_eq!((tests, failures), (1, 0), "{xml}");
    assert!(xml.contains(&format!("pod {ns}/web-0")), "{xml}");
    assert!(xml.contains(r#"file="deploy/podports.yaml""#), "{xml}");
    // The calls: the debug pod made detached, as root, stdin open, the files in the bundle and
    // the JUnit framed; then its status, the files through attach, its log.
    let calls = c.calls();
    let debug = calls
        .iter()
        .find(|l| l.starts_with("[debug]"))
        .expect("debug");
    let (name, debug) = unname(debug);
    assert_eq!(
        debug,
        format!(
            "[debug][node/node-1][--attach=false][-i][--container=NAME][--image={}]\
             [--profile=sysadmin][--custom=/dev/fd/3][--][podports][check][--all-pods]\
             [--host-root][/host][--namespace][{ns}][--expect][deploy/podports.yaml]\
             [--junit][-][--expect-bundle][-]",
            image()
        )
    );
    let custom: Value =
        serde_json::from_str(&fs::read_to_string(c.dir.join("custom")).unwrap()).unwrap();
    assert_eq!(
        custom,
        json!({"securityContext": {"runAsUser": 0, "runAsNonRoot": false}})
    );
    for want in [
        "[version][--client][-o][json]".to_string(),
        format!("[get][pod][{DEBUG_POD}][-o][json]"),
        format!("[attach][{DEBUG_POD}][-c][{name}][-i][-q]"),
        format!("[logs][{DEBUG_POD}][-c][{name}]"),
    ] {
        assert!(calls.contains(&want), "no {want} in {calls:?}");
    }
    // The debug pod is named, with how to remove it.
    assert!(
        stderr.contains(&format!("kubectl delete pod {DEBUG_POD}")),
        "{stderr}"
    );

    // Fail: exit 1, from the debug pod's status (attach says 0 here), the failing line of the
    // local file named, the JUnit says it failed.
    c.reset();
    fs::write(c.dir.join("mode"), "attach0").unwrap();
    let out = c.run_node(
        node.host(),
        &[
            "node",
            "node-1",
            "check",
            "--namespace",
            ns,
            "--expect=deploy/admin.yaml",
            "--junit=out.xml",
        ],
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains("deploy/admin.yaml:3"), "{stdout}");
    let (xml, tests, failures) = c.junit("out.xml");
    assert_eq!((tests, failures), (1, 1), "{xml}");
    assert!(xml.contains("nothing listens on tcp/9090"), "{xml}");

    // Without files: --profile auto, no stdin, no attach; the verdict still comes back.
    c.reset();
    let out = c.run_node(node.host(), &["node", "node-1", "check", "--namespace", ns]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let calls = c.calls();
    let debug = calls.iter().find(|l| l.starts_with("[debug]")).unwrap();
    assert!(
        debug.contains("[--attach=false][--container=")
            && debug.ends_with(&format!(
                "[--all-pods][--host-root][/host][--profile][auto][--namespace][{ns}]"
            )),
        "{debug}"
    );
    assert!(
        calls.iter().all(|l| !l.starts_with("[attach]")),
        "{calls:?}"
    );

    // A local file that is not here: exit 2 before the cluster is asked anything.
    c.reset();
    let out = c.run_node(
        node.host(),
        &["node", "node-1", "check", "--expect", "deploy/typo.yaml"],
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("--expect deploy/typo.yaml: no such file here"),
        "{stderr}"
    );
    assert!(c.calls().is_empty(), "{:?}", c.calls());
}

#[cfg_attr(podports_not_root, ignore = "needs root")]
#[test]
fn a_node_debug_pod_that_never_starts_or_is_refused_ends_in_exit_3() {
    if !common::require_root("a_node_debug_pod_that_never_starts_or_is_refused_ends_in_exit_3") {
        return;
    }
    let node = Node::new();
    // The debug pod gets no status (its node's kubelet does not answer): exit 3 at
    // --debug-timeout, naming the pod; no JUnit, nothing attached.
    let c = Cluster::new("node-pending", "pending");
    c.file("podports.yaml", PASSES);
    let out = c.run_node(
        node.host(),
        &[
            "node",
            "node-1",
            "check",
            "--debug-timeout",
            "2s",
            "--expect",
            "podports.yaml",
            "--junit",
            "out.xml",
        ],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains(&format!("in debug pod {DEBUG_POD} on node node-1 did not start within 2s (--debug-timeout): no status for it yet")),
        "{stderr}"
    );
    assert!(!c.dir.join("out.xml").exists());
    assert!(
        c.calls().iter().all(|l| !l.starts_with("[attach]")),
        "{:?}",
        c.calls()
    );

    // An image that cannot be pulled: the kubelet's reason.
    let c = Cluster::new("node-unpullable", "unpullable");
    let out = c.run_node(
        node.host(),
        &[
            "node",
            "node-1",
            "check",
            "--debug-timeout=1s",
            "--image",
            "registry.local/nope:1",
        ],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("did not start within 1s (--debug-timeout): ErrImagePull: failed to pull")
            && stderr.contains("registry.local/nope:1"),
        "{stderr}"
    );

    // Admission refuses the debug pod, or the node is not there: kubectl's words, exit 3.
    let c = Cluster::new("node-refuse", "refuse");
    let out = c.run_node(node.host(), &["node", "node-1", "check"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("kubectl debug could not create podports' debug pod on node node-1")
            && stderr.contains("violates PodSecurity"),
        "{stderr}"
    );
    let out = c.run_node(node.host(), &["node", "node-9", "check"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains(r#"nodes "node-9" not found"#), "{stderr}");
}

/// kubectl failing with no API server writes the same klog error again and again before the
/// real one: the message keeps the distinct lines (their klog headers dropped), the last 3,
/// the real one whole, on one line with no control character. Needs no root (the debug pod is
/// never made).
#[test]
fn kubectls_repeated_errors_are_shown_once_with_the_real_one_whole() {
    let c = Cluster::new("node-apidown", "apidown");
    let out = c.run_node(Path::new("/nonexistent"), &["node", "node-1", "check"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.contains("kubectl debug could not"))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert_eq!(
        line,
        "kubectl podports: kubectl debug could not create podports' debug pod on node node-1: \
         memcache.go:265] \"Unhandled Error\" err=\"couldn't get current server API group list: \
         Get \\\"https://127.0.0.1:6443/api?timeout=32s\\\": dial tcp 127.0.0.1:6443: connect: \
         connection refused\" | warnings.go:70] trying again in 1s | The connection to the \
         server 127.0.0.1:6443 was refused - did you specify the right host or port?"
    );
    assert!(
        !stderr.chars().any(|ch| ch.is_control() && ch != '\n'),
        "{stderr:?}"
    );
}
