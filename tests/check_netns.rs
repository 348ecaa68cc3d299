//! `podports check` against the kernel: simulated sidecar and ambient pods, built from real
//! processes holding real sockets in fresh network namespaces (see tests/common), checked
//! against the built-in profiles. Needs root: without it these skip with a reason, and under
//! CI=true fail.
// A test: it makes sockets, files and processes freely (clippy.toml keeps them in sys/).
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::{Netns, Proc, Scratch, eventually, install_as, require_root};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use podports::check::eval::Status;
use podports::render::check::{CheckDocument, ResultDoc};

fn podports(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_podports"))
        .args(args)
        .output()
        .expect("run podports")
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `podports check ARGS -o json`: the exit code and the report.
fn check_json(args: &[&str]) -> (Option<i32>, CheckDocument) {
    let mut all = vec!["check", "-o", "json"];
    all.extend_from_slice(args);
    let o = podports(&all);
    let doc = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "podports {all:?}: not a check document ({e}):\n{}",
            text(&o)
        )
    });
    (o.status.code(), doc)
}

/// The result whose expectation starts with `expected` (`listen tcp/15021`).
fn result<'a>(doc: &'a CheckDocument, expected: &str) -> &'a ResultDoc {
    doc.results
        .iter()
        .find(|r| r.expected.starts_with(expected))
        .unwrap_or_else(|| panic!("no result for {expected}: {:#?}", doc.results))
}

fn failing(doc: &CheckDocument) -> Vec<String> {
    doc.results
        .iter()
        .filter(|r| matches!(r.status, Status::Fail | Status::Unknown))
        .map(|r| format!("{}: {}", r.expected, r.reason))
        .collect()
}

/// Envoy's listeners in a healthy sidecar (two SO_REUSEPORT workers on the capture ports).
const ENVOY_LISTENERS: &[&str] = &[
    "tcp-listen=127.0.0.1:15000",
    "tcp-listen=0.0.0.0:15001,reuseport",
    "tcp-listen=0.0.0.0:15001,reuseport",
    "tcp-listen=0.0.0.0:15006,reuseport",
    "tcp-listen=0.0.0.0:15006,reuseport",
    "tcp-listen=0.0.0.0:15021",
    "tcp-listen=0.0.0.0:15090",
];

/// The processes of a simulated sidecar pod: pilot-agent (status port, XDS and SDS unix
/// sockets, bound relative to its cwd as the real one does) starting envoy, and an app.
struct Sidecar {
    _root: Scratch,
    agent: Proc,
    envoy_pid: i32,
    app: Proc,
}

fn start_sidecar(ns: &Netns, envoy_listeners: &[&str], app_ops: &[&str]) -> Sidecar {
    let root = Scratch::new();
    let chdir = format!("chdir={}", root.path().display());
    let envoy_ready = root.join("envoy.ready");
    let mut ops: Vec<String> = [
        chdir.as_str(),
        "tcp-listen=[::]:15020",
        "mkdir=etc/istio/proxy",
        "unix-listen=etc/istio/proxy/XDS",
        "mkdir=var/run/secrets/workload-spiffe-uds",
        "unix-listen=var/run/secrets/workload-spiffe-uds/socket",
        &format!("spawn={}", install_as("envoy").display()),
        "--ready",
        envoy_ready.to_str().unwrap(),
        chdir.as_str(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    ops.extend(envoy_listeners.iter().map(|s| s.to_string()));
    ops.push("unix-connect=etc/istio/proxy/XDS".into());
    ops.push("tcp-connect=127.0.0.1:15020".into());
    ops.push(";;".into());
    ops.push(format!("wait-file={}", envoy_ready.display()));
    let agent = Proc::start(ns, &install_as("pilot-agent"), &ops);
    let envoy_pid = common::wait_ready_file(&envoy_ready).pid;
    let app = Proc::start(ns, &install_as("myapp"), app_ops);
    Sidecar {
        _root: root,
        agent,
        envoy_pid,
        app,
    }
}

/// A fresh namespace with the pod IP 10.0.0.5 on lo.
fn pod_netns() -> Netns {
    let ns = Netns::new();
    ns.add_addr("10.0.0.5/32");
    ns
}

#[test]
fn a_healthy_sidecar_pod_passes_istio_sidecar() {
    if !require_root("a_healthy_sidecar_pod_passes_istio_sidecar") {
        return;
    }
    let ns = pod_netns();
    let pod = start_sidecar(&ns, ENVOY_LISTENERS, &["tcp-listen=10.0.0.5:9080"]);
    let (code, doc) = check_json(&["--netns", ns.name(), "--profile", "istio-sidecar"]);
    assert_eq!(code, Some(0), "{:#?}", failing(&doc));
    assert!(doc.passed);
    assert_eq!(doc.netns.inode, Some(ns.inode()));
    assert_eq!(doc.summary.passed, 8, "{:#?}", doc.results);
    assert_eq!(
        doc.summary.skipped, 4,
        "the optional 15053 (udp, tcp), 15008, 15004"
    );
    let readiness = result(&doc, "listen tcp/15021");
    assert_eq!(readiness.status, Status::Pass);
    assert_eq!(readiness.found[0].processes[0].pid, pod.envoy_pid);
    // Two SO_REUSEPORT workers are one listening port.
    let outbound = result(&doc, "listen tcp/15001");
    assert_eq!(outbound.found.len(), 1);
    assert_eq!(outbound.found[0].sockets, 2);
    let sds = result(
        &doc,
        "listen unix var/run/secrets/workload-spiffe-uds/socket",
    );
    assert_eq!(sds.status, Status::Pass);
    assert_eq!(sds.found[0].processes[0].pid, pod.agent.pid());

    // The pod's own file on top: the app's port, and nothing else may listen.
    let dir = Scratch::new();
    let file = dir.join("pod.yaml");
    fs::write(
        &file,
        "extends: istio-sidecar\nlisten:\n  - port: 9080\n    owner: myapp\n    bind: 10.0.0.5\nstrict: true\n",
    )
    .unwrap();
    let file = file.to_str().unwrap();
    let (code, doc) = check_json(&["--netns", ns.name(), "--expect", file]);
    assert_eq!(code, Some(0), "{:#?}", failing(&doc));
    assert!(doc.strict);
    assert_eq!(
        result(&doc, "listen tcp/9080").found[0].processes[0].pid,
        pod.app.pid()
    );

    // By pid, with the table: the same verdict.
    let o = podports(&[
        "check",
        "--pid",
        &pod.app.pid().to_string(),
        "--profile",
        "istio-sidecar",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).ends_with("check passed\n"));
}

#[test]
fn killing_envoy_fails_the_check_naming_15021() {
    if !require_root("killing_envoy_fails_the_check_naming_15021") {
        return;
    }
    let ns = pod_netns();
    let pod = start_sidecar(&ns, ENVOY_LISTENERS, &["tcp-listen=10.0.0.5:9080"]);
    let (code, _) = check_json(&["--netns", ns.name(), "--profile", "istio-sidecar"]);
    assert_eq!(code, Some(0));

    kill(Pid::from_raw(pod.envoy_pid), Signal::SIGKILL).unwrap();
    let files = Scratch::new();
    let junit = files.join("junit.xml");
    let out = eventually("the check to fail", Duration::from_secs(10), || {
        let o = podports(&[
            "check",
            "--netns",
            ns.name(),
            "--profile",
            "istio-sidecar",
            "--junit",
            junit.to_str().unwrap(),
        ]);
        if o.status.code() == Some(1) {
            Ok(o)
        } else {
            Err(text(&o))
        }
    });
    let table = String::from_utf8_lossy(&out.stdout);
    let line = table
        .lines()
        .find(|l| l.contains("tcp/15021"))
        .unwrap_or_else(|| panic!("15021 not named:\n{table}"));
    assert!(line.trim_start().starts_with("FAIL"), "{line}");
    assert!(line.contains("nothing listens on tcp/15021"), "{line}");
    assert!(line.contains("envoy readiness"), "{line}");
    // Every envoy port fails; pilot-agent's still pass.
    for port in ["tcp/15000", "tcp/15001", "tcp/15006", "tcp/15090"] {
        let l = table.lines().find(|l| l.contains(port)).unwrap();
        assert!(l.trim_start().starts_with("FAIL"), "{l}");
    }
    let l = table.lines().find(|l| l.contains("tcp/15020")).unwrap();
    assert!(l.trim_start().starts_with("pass"), "{l}");
    assert!(
        table.contains("check FAILED: 5 failed, 0 unknown"),
        "{table}"
    );

    // The JUnit file names it too.
    let xml = fs::read_to_string(&junit).unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let case = doc
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .find(|n| n.attribute("name").is_some_and(|a| a.contains("tcp/15021")))
        .unwrap_or_else(|| panic!("no 15021 test case:\n{xml}"));
    let failure = case.children().find(|n| n.has_tag_name("failure")).unwrap();
    assert_eq!(
        failure.attribute("message"),
        Some("nothing listens on tcp/15021")
    );
    assert_eq!(doc.root_element().attribute("failures"), Some("5"));
}

#[test]
fn an_app_squatting_15021_and_admin_beyond_loopback_fail_with_who_and_where() {
    if !require_root("an_app_squatting_15021_and_admin_beyond_loopback_fail_with_who_and_where") {
        return;
    }
    let ns = pod_netns();
    let envoy: Vec<&str> = ENVOY_LISTENERS
        .iter()
        .copied()
        .filter(|op| !op.contains(":15021") && !op.contains(":15000"))
        .chain(["tcp-listen=0.0.0.0:15000"])
        .collect();
    let pod = start_sidecar(&ns, &envoy, &["tcp-listen=0.0.0.0:15021"]);
    let (code, doc) = check_json(&["--netns", ns.name(), "--profile", "istio-sidecar"]);
    assert_eq!(code, Some(1));
    let readiness = result(&doc, "listen tcp/15021");
    assert_eq!(readiness.status, Status::Fail);
    assert_eq!(
        readiness.reason,
        format!("held by myapp[{}] (app) (expected envoy)", pod.app.pid())
    );
    assert_eq!(readiness.found[0].local, "0.0.0.0:15021");
    let admin = result(&doc, "listen tcp/15000");
    assert_eq!(admin.status, Status::Fail);
    assert_eq!(
        admin.reason,
        "bound to 0.0.0.0:15000 (expected loopback only)"
    );
    assert_eq!(admin.found[0].processes[0].pid, pod.envoy_pid);
    assert_eq!(doc.summary.failed, 2, "{:#?}", failing(&doc));
}

/// An ambient pod: ztunnel opens the pod's listeners from inside it, then lives in its own
/// namespace (as `ambient_listeners_are_owned_by_ztunnel_from_another_netns` in netns.rs).
#[test]
fn an_ambient_pod_passes_istio_ambient_and_fails_istio_sidecar() {
    if !require_root("an_ambient_pod_passes_istio_ambient_and_fails_istio_sidecar") {
        return;
    }
    let ambient = common::ambient_pod();
    let (ztunnel, pod) = (&ambient.ztunnel, &ambient.pod);

    let (code, doc) = check_json(&["--netns", pod.name(), "--profile", "istio-ambient"]);
    assert_eq!(code, Some(0), "{:#?}", failing(&doc));
    for port in [
        "tcp/15001",
        "tcp/15006",
        "tcp/15008",
        "udp/15053",
        "tcp/15053",
    ] {
        let r = result(&doc, &format!("listen {port}"));
        assert_eq!(r.status, Status::Pass, "{r:?}");
        assert_eq!(r.found[0].processes[0].pid, ztunnel.pid(), "{r:?}");
    }
    // ztunnel's own readiness port is in the node's namespace: no sidecar port in the pod.
    assert_eq!(result(&doc, "forbid tcp/15021").status, Status::Pass);
    assert_eq!(result(&doc, "listen tcp/15080").status, Status::Skip);

    let (code, doc) = check_json(&["--netns", pod.name(), "--profile", "istio-sidecar"]);
    assert_eq!(code, Some(1));
    assert_eq!(
        result(&doc, "listen tcp/15000").reason,
        "nothing listens on tcp/15000"
    );
    assert_eq!(
        result(&doc, "listen tcp/15001").reason,
        format!("held by ztunnel[{}] (expected envoy)", ztunnel.pid())
    );
    // The optional DNS proxy is present, so it is checked, and ztunnel is not pilot-agent.
    assert_eq!(result(&doc, "listen udp/15053").status, Status::Fail);
    assert_eq!(result(&doc, "listen tcp/15004").status, Status::Skip);
}

#[test]
fn wait_succeeds_when_the_sidecar_comes_up_while_waiting() {
    if !require_root("wait_succeeds_when_the_sidecar_comes_up_while_waiting") {
        return;
    }
    let ns = pod_netns();
    let child = Command::new(env!("CARGO_BIN_EXE_podports"))
        .args([
            "check",
            "--netns",
            ns.name(),
            "--profile",
            "istio-sidecar",
            "--wait",
            "30s",
            "-o",
            "json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The rollout: the pod's processes start a moment after the check began.
    std::thread::sleep(Duration::from_millis(1500));
    let _pod = start_sidecar(&ns, ENVOY_LISTENERS, &["tcp-listen=10.0.0.5:9080"]);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let doc: CheckDocument = serde_json::from_slice(&out.stdout).unwrap();
    assert!(doc.passed);
    let wait = doc.wait.unwrap();
    assert!(
        wait.attempts >= 3,
        "it failed before the pod came up: {wait:?}"
    );
    assert!(
        wait.elapsed_ms >= 1000 && wait.elapsed_ms < 30_000,
        "{wait:?}"
    );
    assert_eq!(wait.limit_ms, 30_000);
    // stderr is no terminal: no progress line.
    assert!(out.stderr.is_empty(), "{}", text(&out));

    // Nothing comes: the wait runs out and the last verdict stands.
    let empty = Netns::new();
    let o = podports(&[
        "check",
        "--netns",
        empty.name(),
        "--profile",
        "istio-sidecar",
        "--wait",
        "1s",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    // The time it gave up after is the time taken, the limit or a little more: 1s, 1.1s.
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("gave up after 1s") || stdout.contains("gave up after 1."),
        "{}",
        text(&o)
    );
}

/// A copy of the podports binary that any user can run (the build directory may sit under a
/// home directory that `nobody` cannot enter), removed with `dir`.
fn world_executable_podports(dir: &Scratch) -> PathBuf {
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let dest = dir.join("podports");
    fs::copy(env!("CARGO_BIN_EXE_podports"), &dest).unwrap();
    fs::set_permissions(&dest, fs::Permissions::from_mode(0o755)).unwrap();
    dest
}

#[test]
fn hidden_owners_never_pass_an_owner_expectation() {
    if !require_root("hidden_owners_never_pass_an_owner_expectation") {
        return;
    }
    let ns = pod_netns();
    let _pod = start_sidecar(&ns, ENVOY_LISTENERS, &["tcp-listen=10.0.0.5:9080"]);
    // Unprivileged, inside the pod: every socket is seen, no owner is.
    let bin = Scratch::new();
    let out = Command::new("nsenter")
        .arg(format!("--net={}", ns.path().display()))
        .args([
            "--",
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .arg(world_executable_podports(&bin))
        .args(["check", "--profile", "istio-sidecar", "-o", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let doc: CheckDocument = serde_json::from_slice(&out.stdout).unwrap();
    assert!(doc.hidden_owners > 0);
    assert_eq!(doc.summary.passed, 0, "{:#?}", doc.results);
    assert_eq!(doc.summary.unknown, 8, "{:#?}", doc.results);
    let r = result(&doc, "listen tcp/15021");
    assert_eq!(r.status, Status::Unknown);
    assert!(r.reason.contains("CAP_SYS_PTRACE"), "{}", r.reason);
    assert!(r.found[0].processes.is_empty());
}
