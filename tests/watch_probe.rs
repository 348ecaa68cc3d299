//! `--watch` and `probe` against the kernel: a watcher sees a listener come up and go in a
//! fresh network namespace; `probe` asks small HTTP servers of the test's own (python3), one
//! healthy, one answering 503, one that never answers, and reports a port where nothing
//! listens. Needs root and python3: without them these skip with a reason, and under CI=true
//! fail.
// A test: it makes sockets, files and processes freely (clippy.toml keeps them in sys/).
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{Netns, Proc, eventually, find, install_as, require_root, ss_sockets};
use podports::render::json::EndpointDoc;
use podports::render::probe::{ProbeDocument, ResultDoc};
use podports::render::watch::WatchEvent;

fn podports(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_podports"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run podports")
}

/// A child process killed and reaped on Drop.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP servers

/// An HTTP/1.1 server: answers `code` on `path`, 404 elsewhere. `addr` may be IPv6.
const SERVER: &str = r#"
import http.server, socket, sys
addr, port, code, path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        c = code if self.path == path else 404
        body = b"ok\n"
        self.send_response(c)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
class S(http.server.HTTPServer):
    address_family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    def handle_error(self, request, client_address):
        pass  # podports closes once it has the status line
S((addr, port), H).serve_forever()
"#;

fn have_python() -> bool {
    let ok = Command::new("python3")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "python3 is missing; CI=true, so this is a failure, not a skip"
        );
        eprintln!("skipping: python3 is not installed");
    }
    ok
}

/// Starts the server inside `ns` and waits until it listens.
fn serve(ns: &Netns, addr: &str, port: u16, code: u16, path: &str) -> Guard {
    let child = Command::new("nsenter")
        .arg(format!("--net={}", ns.path().display()))
        .args(["--", "python3", "-c", SERVER])
        .args([addr, &port.to_string(), &code.to_string(), path])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start python3");
    let guard = Guard(child);
    eventually(
        &format!("python3 listening on {addr}:{port}"),
        Duration::from_secs(10),
        || {
            let all = ss_sockets(ns);
            if find(&all, "tcp", "LISTEN", Some(port)).is_empty() {
                Err(format!("{} sockets, none listening on {port}", all.len()))
            } else {
                Ok(())
            }
        },
    );
    guard
}

fn probe_json(ns: &Netns, extra: &[&str]) -> (Option<i32>, ProbeDocument) {
    let mut args = vec!["probe", "--netns", ns.name(), "-o", "json"];
    args.extend_from_slice(extra);
    let out = podports(&args);
    let doc = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "podports {args:?}: not a probe document ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code(), doc)
}

fn result(doc: &ProbeDocument, port: u16) -> &ResultDoc {
    doc.results
        .iter()
        .find(|r| r.port == port)
        .unwrap_or_else(|| panic!("no result for port {port}: {doc:#?}"))
}

// ---------------------------------------------------------------------------------------------
// probe

#[cfg_attr(podports_not_root, ignore = "needs root")]
#[test]
fn probe_reports_a_healthy_port_a_503_and_a_port_where_nothing_listens() {
    if !require_root("probe_reports_a_healthy_port_a_503_and_a_port_where_nothing_listens")
        || !have_python()
    {
        return;
    }
    let ns = Netns::new();
    let _admin = serve(&ns, "127.0.0.1", 15000, 200, "/server_info");
    let _ready = serve(&ns, "0.0.0.0", 15021, 503, "/healthz/ready");
    // Nothing on 15020 or 15090.

    let (code, doc) = probe_json(&ns, &[]);
    assert_eq!(code, Some(1), "{doc:#?}");
    assert!(!doc.passed);
    assert_eq!(doc.netns.inode, Some(ns.inode()));
    assert_eq!(doc.results.len(), 2, "{doc:#?}");

    let admin = result(&doc, 15000);
    assert_eq!(admin.result, "pass");
    assert_eq!(admin.status, Some(200));
    assert_eq!(admin.url, "http://127.0.0.1:15000/server_info");
    assert_eq!(
        (admin.role.component.as_str(), admin.role.name.as_str()),
        ("envoy", "admin")
    );
    let latency = admin.latency_ms.expect("a latency");
    assert!(latency > 0.0 && latency < 2000.0, "{latency}");
    assert_eq!(admin.processes[0].comm, "python3");

    // Asked on loopback, although it listens on 0.0.0.0; the path is the readiness one
    // (the server answers 404 to any other).
    let ready = result(&doc, 15021);
    assert_eq!(ready.result, "fail");
    assert_eq!(ready.status, Some(503));
    assert_eq!(ready.address, "127.0.0.1");
    assert_eq!(ready.listen, "0.0.0.0");
    assert_eq!(ready.path, "/healthz/ready");

    for silent in [15020, 15090] {
        assert!(
            doc.not_listening.contains(&silent),
            "{:?}",
            doc.not_listening
        );
        assert!(doc.results.iter().all(|r| r.port != silent));
    }
    assert_eq!(
        (doc.summary.probed, doc.summary.passed, doc.summary.failed),
        (2, 1, 1)
    );

    // The table says the same, and the verdict.
    let out = podports(&["probe", "--netns", ns.name()]);
    assert_eq!(out.status.code(), Some(1));
    let table = String::from_utf8(out.stdout).unwrap();
    let row = |port: &str| {
        table
            .lines()
            .find(|l| l.contains(&format!(":{port}/")))
            .unwrap_or_else(|| panic!("no row for {port}:\n{table}"))
            .to_string()
    };
    assert!(row("15000").trim_start().starts_with("pass"), "{table}");
    assert!(row("15021").trim_start().starts_with("FAIL"), "{table}");
    assert!(row("15021").contains("503 Service Unavailable"), "{table}");
    assert!(
        table.contains("probe FAILED: 1 of 2 ports did not answer 2xx"),
        "{table}"
    );

    // Only the healthy port: a pass.
    let (code, doc) = probe_json(&ns, &["--port", "15000"]);
    assert_eq!(code, Some(0), "{doc:#?}");
    assert!(doc.passed);
    assert_eq!(doc.results.len(), 1);
}

#[cfg_attr(podports_not_root, ignore = "needs root")]
#[test]
fn probe_asks_the_pods_own_address_and_gives_up_on_a_port_that_never_answers() {
    if !require_root("probe_asks_the_pods_own_address_and_gives_up_on_a_port_that_never_answers")
        || !have_python()
    {
        return;
    }
    let ns = Netns::new();
    ns.add_addr("10.0.0.5/32");
    let _stats = serve(&ns, "10.0.0.5", 15090, 200, "/stats/prometheus");
    // Connections wait in the accept queue: connect succeeds, no answer ever comes.
    let _mute = Proc::start(
        &ns,
        &install_as("pilot-agent"),
        &["tcp-listen=0.0.0.0:15020,noaccept"],
    );

    let start = Instant::now();
    let (code, doc) = probe_json(&ns, &["--timeout", "500ms"]);
    let took = start.elapsed();
    assert_eq!(code, Some(1), "{doc:#?}");
    assert_eq!(doc.timeout_ms, 500);

    let stats = result(&doc, 15090);
    assert_eq!(stats.result, "pass", "{stats:#?}");
    assert_eq!(
        stats.address, "10.0.0.5",
        "a pod address is asked where it listens"
    );
    assert_eq!(stats.url, "http://10.0.0.5:15090/stats/prometheus");

    let mute = result(&doc, 15020);
    assert_eq!(mute.result, "fail");
    assert_eq!(mute.status, None);
    assert_eq!(mute.error.as_deref(), Some("timed out after 500ms"));
    assert_eq!(
        (mute.role.component.as_str(), mute.role.name.as_str()),
        ("pilot-agent", "status")
    );
    assert!(took < Duration::from_secs(5), "took {took:?}");
}

#[cfg_attr(podports_not_root, ignore = "needs root")]
#[test]
fn probe_passes_when_every_port_answers_and_over_ipv6_loopback() {
    if !require_root("probe_passes_when_every_port_answers_and_over_ipv6_loopback")
        || !have_python()
    {
        return;
    }
    let ns = Netns::new();
    let _agent = serve(&ns, "0.0.0.0", 15020, 200, "/healthz/ready");
    let ipv6 = std::fs::read_to_string("/proc/sys/net/ipv6/conf/all/disable_ipv6")
        .is_ok_and(|v| v.trim() == "0");
    let _ready = if ipv6 {
        serve(&ns, "::1", 15021, 200, "/healthz/ready")
    } else {
        serve(&ns, "127.0.0.1", 15021, 200, "/healthz/ready")
    };
    let (code, doc) = probe_json(&ns, &[]);
    assert_eq!(code, Some(0), "{doc:#?}");
    assert!(doc.passed);
    assert_eq!(doc.summary.passed, 2);
    if ipv6 {
        assert_eq!(result(&doc, 15021).url, "http://[::1]:15021/healthz/ready");
    }
    let out = podports(&["probe", "--netns", ns.name()]);
    assert_eq!(out.status.code(), Some(0));
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(
        table.contains("2 ports probed") && !table.contains("FAILED"),
        "{table}"
    );
}

#[cfg_attr(podports_not_root, ignore = "needs root")]
#[test]
fn probe_with_nothing_to_ask_says_so_and_passes() {
    if !require_root("probe_with_nothing_to_ask_says_so_and_passes") {
        return;
    }
    let ns = Netns::new();
    let out = podports(&["probe", "--netns", ns.name()]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with("nothing to probe: no HTTP port of the catalog listens"),
        "{text}"
    );
}

// ---------------------------------------------------------------------------------------------
// --watch

/// `podports --watch 0.2 -o json --netns NS`, its stdout lines coming over a channel.
fn watcher(ns: &Netns) -> (Guard, mpsc::Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_podports"))
        .args(["--watch", "0.2", "-o", "json", "--netns", ns.name()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start podports --watch");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (Guard(child), rx)
}

/// Reads events until one matches, or panics after 10 s with what was seen.
fn wait_for(
    rx: &mpsc::Receiver<String>,
    what: &str,
    f: impl Fn(&WatchEvent) -> bool,
) -> WatchEvent {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                let e: WatchEvent = serde_json::from_str(&line)
                    .unwrap_or_else(|err| panic!("not a watch event ({err}): {line}"));
                if f(&e) {
                    return e;
                }
                seen.push(line);
            }
            Err(_) => panic!("no {what} within 10s; saw:\n{}", seen.join("\n")),
        }
    }
}

fn local_port(e: &WatchEvent) -> Option<u16> {
    match &e.socket.local {
        EndpointDoc::Inet(i) => Some(i.port),
        _ => None,
    }
}

#[cfg_attr(podports_not_root, ignore = "needs root")]
#[test]
fn watch_reports_a_listener_that_comes_up_and_goes() {
    if !require_root("watch_reports_a_listener_that_comes_up_and_goes") {
        return;
    }
    let ns = Netns::new();
    let _old = Proc::start(&ns, &install_as("envoy"), &["tcp-listen=0.0.0.0:15001"]);
    let (_watch, rx) = watcher(&ns);
    // The first look reports what is there.
    wait_for(&rx, "the listener already there", |e| {
        e.event == "appeared" && local_port(e) == Some(15001)
    });

    let admin = Proc::start(&ns, &install_as("envoy"), &["tcp-listen=127.0.0.1:15000"]);
    let inode = admin.ready().socket("tcp-listen", "127.0.0.1:15000").ino;
    let up = wait_for(&rx, "15000 appearing", |e| {
        e.event == "appeared" && local_port(e) == Some(15000)
    });
    assert_eq!(up.socket.state, "LISTEN");
    assert_eq!(up.socket.inode, inode);
    assert_eq!(up.socket.processes[0].pid, admin.pid());
    assert_eq!(
        up.socket.role.as_ref().map(|r| r.name.as_str()),
        Some("admin")
    );

    drop(admin);
    let down = wait_for(&rx, "15000 disappearing", |e| {
        e.event == "disappeared" && local_port(e) == Some(15000)
    });
    assert_eq!(down.socket.inode, inode);
    // Nothing else changed: 15001 never disappeared.
    while let Ok(line) = rx.recv_timeout(Duration::from_millis(500)) {
        let e: WatchEvent = serde_json::from_str(&line).unwrap();
        assert_ne!(local_port(&e), Some(15001), "{line}");
    }
}

#[cfg_attr(podports_not_root, ignore = "needs root")]
#[test]
fn watch_ends_with_0_when_the_reader_goes_away_even_if_nothing_changes() {
    if !require_root("watch_ends_with_0_when_the_reader_goes_away_even_if_nothing_changes") {
        return;
    }
    let ns = Netns::new();
    let mut child = Command::new(env!("CARGO_BIN_EXE_podports"))
        .args(["--watch", "0.2", "-o", "json", "--netns", ns.name()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start podports --watch");
    // An empty namespace: nothing is ever written. Let it look a few times, then leave.
    std::thread::sleep(Duration::from_millis(600));
    assert!(
        child.try_wait().unwrap().is_none(),
        "exited before the reader left"
    );
    drop(child.stdout.take());
    let mut guard = Guard(child);
    let status = eventually("podports --watch to exit", Duration::from_secs(5), || {
        guard
            .0
            .try_wait()
            .map_err(|e| e.to_string())?
            .ok_or_else(|| "still running".to_string())
    });
    assert_eq!(status.code(), Some(0));
}
