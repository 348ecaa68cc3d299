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

#[cfg_attr(podports_not_root, ignore = "needs root")]
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

#[cfg_attr(podports_not_root, ignore = "needs root")]
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

#[cfg_attr(podports_not_root, ignore = "needs root")]
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
#[cfg_attr(podports_not_root, ignore = "needs root")]
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

#[cfg_attr(podports_not_root, ignore = "needs root")]
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

#[cfg_attr(podports_not_root, ignore = "needs root")]
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
    assert!(r.reason.contains("fds could not be read"), "{}", r.reason);
    assert!(r.found[0].processes.is_empty());
    // The warning names the cause where podports runs (a non-root uid) and no kubectl profile.
    let w = doc.warnings.join("\n");
    assert!(
        w.contains("owners hidden") && w.contains("runs as uid 65534 gid 65534"),
        "{w}"
    );
    assert!(!w.contains("profile"), "{w}");
}

/// The annotated example file of docs/check.md, kept as a fixture.
fn readme_example() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/check/readme-example.yaml")
        .to_str()
        .unwrap()
        .to_string()
}

#[cfg_attr(podports_not_root, ignore = "needs root")]
#[test]
fn the_readme_example_fails_a_pod_without_admin_and_readiness_and_passes_a_conformant_one() {
    if !require_root(
        "the_readme_example_fails_a_pod_without_admin_and_readiness_and_passes_a_conformant_one",
    ) {
        return;
    }
    let file = readme_example();
    // Envoy without its admin (15000) and readiness (15021) ports.
    let broken = pod_netns();
    let envoy: Vec<&str> = ENVOY_LISTENERS
        .iter()
        .copied()
        .filter(|op| !op.contains(":15021") && !op.contains(":15000"))
        .collect();
    let _pod = start_sidecar(&broken, &envoy, &["tcp-listen=10.0.0.5:9080"]);
    let (code, doc) = check_json(&["--netns", broken.name(), "--expect", &file]);
    assert_eq!(code, Some(1), "{:#?}", doc.results);
    let mut failed = failing(&doc);
    failed.sort();
    assert_eq!(
        failed,
        [
            "listen tcp/15000 owner=envoy bind=loopback: nothing listens on tcp/15000",
            "listen tcp/15021 owner=envoy bind=wildcard: nothing listens on tcp/15021",
        ]
    );
    assert_eq!(result(&doc, "listen tcp/15000").from, "istio-sidecar");
    // The profile alone gives the same verdict on those two ports.
    let (code, _) = check_json(&["--netns", broken.name(), "--profile", "istio-sidecar"]);
    assert_eq!(code, Some(1));

    // A conformant pod passes, with strict too (the profile's items are named).
    let good = pod_netns();
    let _pod = start_sidecar(&good, ENVOY_LISTENERS, &["tcp-listen=10.0.0.5:9080"]);
    let (code, doc) = check_json(&["--netns", good.name(), "--expect", &file]);
    assert_eq!(code, Some(0), "{:#?}", failing(&doc));
    // Where each came from: the file's lines, what they replace, what was dropped.
    let xds = result(&doc, "listen unix etc/istio/proxy/XDS");
    assert!(
        xds.from
            .ends_with("readme-example.yaml:9, replaces istio-sidecar"),
        "{}",
        xds.from
    );
    assert_eq!(xds.line, Some(9));
    assert_eq!(result(&doc, "forbid tcp/15000").line, Some(12));
    let dropped = result(&doc, "listen tcp/15004");
    assert_eq!(dropped.status, Status::Dropped);
    assert!(
        dropped
            .dropped_by
            .as_deref()
            .unwrap()
            .ends_with("readme-example.yaml:18"),
        "{dropped:?}"
    );
    assert_eq!(doc.summary.dropped, 1);

    let dir = Scratch::new();
    let strict = dir.join("strict.yaml");
    fs::write(
        &strict,
        fs::read_to_string(&file)
            .unwrap()
            .replace("strict: false", "strict: true"),
    )
    .unwrap();
    let (code, doc) = check_json(&["--netns", good.name(), "--expect", strict.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{:#?}", failing(&doc));
    assert!(doc.strict);
    // The table says it on every run: the dropped row and the count.
    let o = podports(&["check", "--netns", good.name(), "--expect", &file]);
    let table = String::from_utf8_lossy(&o.stdout);
    let row = table
        .lines()
        .find(|l| l.contains("tcp/15004"))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(row.trim_start().starts_with("DROPPED"), "{row}");
    assert!(row.contains("dropped by"), "{row}");
    assert!(table.contains(", 1 dropped"), "{table}");
}

/// The CI line `--profile istio-sidecar --expect podports.yaml`, where the file extends the
/// profile: the profile is the file's base, checked once as the file modifies it. A pod
/// without envoy's stats port, which the file drops, passes; with the profile checked again
/// beside the file, it failed on the very port the file dropped.
#[cfg_attr(podports_not_root, ignore = "needs root")]
#[test]
fn the_profile_a_file_extends_is_checked_as_the_file_modifies_it() {
    if !require_root("the_profile_a_file_extends_is_checked_as_the_file_modifies_it") {
        return;
    }
    let ns = pod_netns();
    let envoy: Vec<&str> = ENVOY_LISTENERS
        .iter()
        .copied()
        .filter(|op| !op.contains(":15090"))
        .collect();
    let pod = start_sidecar(&ns, &envoy, &["tcp-listen=10.0.0.5:9080"]);
    let dir = Scratch::new();
    let file = dir.join("podports.yaml");
    fs::write(
        &file,
        "extends: istio-sidecar\nlisten:\n  - {path: var/run/secrets/workload-spiffe-uds/socket, \
         optional: true}\ndrop:\n  - port: 15090\n",
    )
    .unwrap();
    let file = file.to_str().unwrap();
    let note = format!(
        "--profile istio-sidecar: already extended by {file}; checked as that file modifies it"
    );
    let (code, alone) = check_json(&["--netns", ns.name(), "--expect", file]);
    assert_eq!(code, Some(0), "{:#?}", failing(&alone));
    let (code, doc) = check_json(&[
        "--netns",
        ns.name(),
        "--profile",
        "istio-sidecar",
        "--expect",
        file,
    ]);
    assert_eq!(code, Some(0), "{:#?}", failing(&doc));
    assert_eq!(doc.results.len(), alone.results.len(), "{:#?}", doc.results);
    assert_eq!(doc.sources, [file]);
    assert_eq!(
        doc.warnings.iter().filter(|w| **w == note).count(),
        1,
        "{:?}",
        doc.warnings
    );
    let stats: Vec<_> = doc
        .results
        .iter()
        .filter(|r| r.port == Some(15090))
        .collect();
    assert_eq!(stats.len(), 1, "{stats:#?}");
    assert_eq!(stats[0].status, Status::Dropped);
    let sds: Vec<_> = doc
        .results
        .iter()
        .filter(|r| r.expected.contains("workload-spiffe-uds/socket"))
        .collect();
    assert_eq!(sds.len(), 1, "{sds:#?}");
    assert_eq!(sds[0].status, Status::Pass);
    assert_eq!(sds[0].from, format!("{file}:3, replaces istio-sidecar"));
    assert_eq!(sds[0].found[0].processes[0].pid, pod.agent.pid());
    // The profile alone still requires the stats port.
    let (code, doc) = check_json(&["--netns", ns.name(), "--profile", "istio-sidecar"]);
    assert_eq!(code, Some(1));
    assert_eq!(
        failing(&doc),
        ["listen tcp/15090 owner=envoy: nothing listens on tcp/15090"]
    );
}

/// Ports of `families_pod`: how each is bound.
const V4: u16 = 1501; // 0.0.0.0
const V6ONLY: u16 = 1502; // [::] with IPV6_V6ONLY
const DUAL: u16 = 1503; // [::] dual-stack
const BOTH: u16 = 1504; // 0.0.0.0 and a v6-only [::]

/// A namespace with the pod addresses `addrs` on lo and a process listening on the four
/// ports above.
fn families_pod(addrs: &[&str]) -> (Netns, Proc) {
    let ns = Netns::new();
    for a in addrs {
        ns.ip(&["addr", "add", a, "dev", "lo", "nodad"]);
    }
    let p = Proc::start(
        &ns,
        &install_as("myapp"),
        &[
            format!("tcp-listen=0.0.0.0:{V4}"),
            format!("tcp-listen=[::]:{V6ONLY},v6only=on"),
            format!("tcp-listen=[::]:{DUAL},v6only=off"),
            format!("tcp-listen=0.0.0.0:{BOTH}"),
            format!("tcp-listen=[::]:{BOTH},v6only=on"),
        ],
    );
    (ns, p)
}

/// Whether a client in `ns` reaches `addr` (a real connect, by the helper).
fn reaches(ns: &Netns, addr: &str) -> bool {
    Proc::try_start(ns, &install_as("client"), &[format!("tcp-connect={addr}")]).is_ok()
}

fn wildcard_statuses(ns: &Netns) -> (CheckDocument, Vec<(u16, Status)>) {
    let dir = Scratch::new();
    let file = dir.join("wildcard.yaml");
    let items: String = [V4, V6ONLY, DUAL, BOTH]
        .iter()
        .map(|p| format!("  - {{port: {p}, bind: wildcard, owner: app}}\n"))
        .collect();
    fs::write(&file, format!("listen:\n{items}")).unwrap();
    let (_, doc) = check_json(&["--netns", ns.name(), "--expect", file.to_str().unwrap()]);
    let statuses = [V4, V6ONLY, DUAL, BOTH]
        .iter()
        .map(|p| (*p, result(&doc, &format!("listen tcp/{p} ")).status))
        .collect();
    (doc, statuses)
}

fn ipv6_available() -> bool {
    fs::read_to_string("/proc/sys/net/ipv6/conf/all/disable_ipv6").is_ok_and(|s| s.trim() == "0")
}

#[cfg_attr(podports_not_root, ignore = "needs root")]
#[test]
fn wildcard_means_reachable_on_every_family_the_pod_has() {
    if !require_root("wildcard_means_reachable_on_every_family_the_pod_has") {
        return;
    }
    if !ipv6_available() {
        assert!(
            std::env::var_os("CI").is_none(),
            "IPv6 is disabled on this machine"
        );
        eprintln!("SKIP wildcard_means_reachable_on_every_family_the_pod_has: no IPv6");
        return;
    }
    use Status::{Fail, Pass};

    // IPv4-only pod: a v6-only [::] alone is unreachable for its IPv4 clients.
    let (ns, _p) = families_pod(&["10.0.0.5/32"]);
    let (doc, got) = wildcard_statuses(&ns);
    assert_eq!(doc.families, ["ipv4"]);
    assert_eq!(
        got,
        [(V4, Pass), (V6ONLY, Fail), (DUAL, Pass), (BOTH, Pass)],
        "{:#?}",
        failing(&doc)
    );
    let r = result(&doc, &format!("listen tcp/{V6ONLY} "));
    assert!(
        r.reason.contains("IPv4 clients cannot reach it")
            && r.reason.contains("IPv6-only (IPV6_V6ONLY)"),
        "{}",
        r.reason
    );
    // The kernel agrees: an IPv4 client reaches the ones that pass, not the one that fails.
    for (port, status) in &got {
        assert_eq!(
            reaches(&ns, &format!("10.0.0.5:{port}")),
            *status == Pass,
            "port {port}"
        );
    }

    // IPv6-only pod: a v6-only [::] is right; 0.0.0.0 alone is unreachable over IPv6.
    let (ns, _p) = families_pod(&["fd00::5/128"]);
    let (doc, got) = wildcard_statuses(&ns);
    assert_eq!(doc.families, ["ipv6"]);
    assert_eq!(
        got,
        [(V4, Fail), (V6ONLY, Pass), (DUAL, Pass), (BOTH, Pass)],
        "{:#?}",
        failing(&doc)
    );
    assert!(
        result(&doc, &format!("listen tcp/{V4} "))
            .reason
            .contains("IPv6 clients cannot reach it")
    );
    for (port, status) in &got {
        assert_eq!(
            reaches(&ns, &format!("[fd00::5]:{port}")),
            *status == Pass,
            "port {port}"
        );
    }

    // Dual-stack pod: both families, by a dual-stack [::] or 0.0.0.0 + [::].
    let (ns, _p) = families_pod(&["10.0.0.5/32", "fd00::5/128"]);
    let (doc, got) = wildcard_statuses(&ns);
    assert_eq!(doc.families, ["ipv4", "ipv6"]);
    assert_eq!(
        got,
        [(V4, Fail), (V6ONLY, Fail), (DUAL, Pass), (BOTH, Pass)],
        "{:#?}",
        failing(&doc)
    );
    for (port, status) in &got {
        let both =
            reaches(&ns, &format!("10.0.0.5:{port}")) && reaches(&ns, &format!("[fd00::5]:{port}"));
        assert_eq!(both, *status == Pass, "port {port}");
    }
}

#[cfg_attr(podports_not_root, ignore = "needs root")]
#[test]
fn a_unix_datagram_socket_a_client_connected_to_still_listens() {
    if !require_root("a_unix_datagram_socket_a_client_connected_to_still_listens") {
        return;
    }
    let ns = pod_netns();
    let dir = Scratch::new();
    let sock = dir.join("dgram.sock");
    let sock = sock.to_str().unwrap();
    let _server = Proc::start(&ns, &install_as("myapp"), &[format!("unix-dgram={sock}")]);
    let dir2 = Scratch::new();
    let file = dir2.join("pod.yaml");
    fs::write(
        &file,
        format!("listen:\n  - {{path: {sock}, owner: myapp}}\nstrict: true\n"),
    )
    .unwrap();
    let file = file.to_str().unwrap();
    let (code, doc) = check_json(&["--netns", ns.name(), "--expect", file]);
    assert_eq!(code, Some(0), "{:#?}", failing(&doc));

    let _client = Proc::start(
        &ns,
        &install_as("logger"),
        &[format!("unix-dgram-connect={sock}")],
    );
    // The kernel now shows the bound socket ESTABLISHED, as ss does.
    let ss = common::ss_sockets(&ns);
    let bound = ss
        .iter()
        .find(|s| s.local() == sock)
        .unwrap_or_else(|| panic!("{sock} not in ss: {ss:#?}"));
    assert_eq!(bound.state, "ESTABLISHED", "{bound:?}");
    let (code, doc) = check_json(&["--netns", ns.name(), "--expect", file]);
    assert_eq!(code, Some(0), "{:#?}", failing(&doc));
    assert_eq!(result(&doc, "listen unix").status, Status::Pass);
}
