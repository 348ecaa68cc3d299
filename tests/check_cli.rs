//! `podports check` from the command line: exit codes, error wording (file, line, column), the
//! JSON report read back, and JUnit XML parsed back. These need no privilege: they check the
//! test's own network namespace, with a listener the test opens itself.
// A test: it makes sockets, files and processes freely (clippy.toml keeps them in sys/).
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use common::compare::{assert_exit, podports, stderr};
use podports::check::eval::{CheckKind, Status};
use podports::render::check::CheckDocument;

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/check")
        .join(name)
        .display()
        .to_string()
}

/// A file in the temp dir, removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, contents: &[u8]) -> TempFile {
        static N: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "podports-check-{}-{}-{name}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&path, contents).unwrap();
        TempFile(path)
    }
    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn without_a_profile_or_a_file_it_is_a_usage_error_listing_the_profiles() {
    let o = podports(&["check"]);
    assert_exit(&o, 2);
    assert_eq!(
        stderr(&o),
        "podports: check needs at least one --profile NAME or --expect FILE; the built-in \
         profiles are istio-sidecar, istio-ambient, istio-gateway, istiod, ztunnel, \
         linkerd-proxy\n"
    );
}

#[test]
fn an_unknown_profile_is_a_usage_error_listing_the_known_ones() {
    let o = podports(&["check", "--profile", "istio-sidecr"]);
    assert_exit(&o, 2);
    assert_eq!(
        stderr(&o),
        "podports: --profile: unknown profile `istio-sidecr`; the built-in profiles are \
         istio-sidecar, istio-ambient, istio-gateway, istiod, ztunnel, linkerd-proxy\n"
    );
}

#[test]
fn a_missing_or_unreadable_expect_file_is_named() {
    let o = podports(&["check", "--expect", "/nonexistent/pod.yaml"]);
    assert_exit(&o, 2);
    assert_eq!(
        stderr(&o),
        "podports: --expect /nonexistent/pod.yaml: no such file\n"
    );
    let dir = std::env::temp_dir();
    let o = podports(&["check", "--expect", dir.to_str().unwrap()]);
    assert_exit(&o, 2);
    assert!(
        stderr(&o).starts_with(&format!(
            "podports: --expect {}: cannot read it:",
            dir.display()
        )),
        "{}",
        stderr(&o)
    );
}

#[test]
fn malformed_files_name_the_file_line_and_column() {
    let cases = [
        (
            "bad-unknown-key.yaml",
            ":3:5: unknown field `colour`, expected one of name, port, path, proto, owner, bind, \
             owner_netns, optional",
        ),
        ("bad-port-string.yaml", ":2:11: port \"9080\" is text"),
        (
            "bad-port-out-of-range.yaml",
            ":3:11: port 70000 is out of range: a port is 1 to 65535",
        ),
        (
            "bad-strict-type.yaml",
            ":2:9: invalid boolean (true or false expected)",
        ),
        (
            "bad-unknown-profile.yaml",
            ":2:10: unknown profile `istio-sidecr`",
        ),
        ("bad-unknown-key.json", ":3:43: unknown field `colour`"),
        ("bad-trailing-comma.json", ":4:3: trailing comma"),
        (
            "bad-drop-nothing.yaml",
            ":4:5: `drop` tcp/15005: no profile this file extends (istio-sidecar) requires or \
             forbids it",
        ),
        (
            "bad-empty.yaml",
            ": expects nothing: add `extends: PROFILE`, `listen:`, `forbid:` or `strict: true`",
        ),
    ];
    for (name, want) in cases {
        let path = fixture(name);
        // A good profile before the bad file: the file is still read before any inspection.
        let o = podports(&["check", "--profile", "istiod", "--expect", &path]);
        assert_exit(&o, 2);
        let e = stderr(&o);
        assert!(
            e.starts_with(&format!("podports: {path}{want}")),
            "{name}: want {want:?}, got {e:?}"
        );
        assert_eq!(e.lines().count(), 1, "{e}");
        assert!(o.stdout.is_empty(), "{name}: no report for a bad file");
    }
}

#[test]
fn a_file_that_is_not_utf8_is_rejected_where_the_bad_byte_is() {
    let f = TempFile::new("bin.yaml", b"listen:\n  - port: 9\xff80\n");
    let o = podports(&["check", "--expect", f.path()]);
    assert_exit(&o, 2);
    assert_eq!(
        stderr(&o),
        format!(
            "podports: {}:2:12: not UTF-8 text (an expectation file is YAML or JSON)\n",
            f.path()
        )
    );
}

#[test]
fn a_bad_wait_duration_is_a_usage_error() {
    for bad in ["5x", "30", "-1s", "1.5s", "25h"] {
        let o = podports(&["check", "--profile", "istiod", &format!("--wait={bad}")]);
        assert_exit(&o, 2);
        assert!(
            stderr(&o).contains("such as 30s, 2m, 500ms or 1m30s"),
            "{bad}: {}",
            stderr(&o)
        );
    }
}

#[test]
fn listing_filters_do_not_apply_to_check() {
    // clap rejects them, before the subcommand or after it.
    let o = podports(&["-l", "--port", "80", "check", "--profile", "istiod"]);
    assert_exit(&o, 2);
    assert!(
        stderr(&o).contains("the subcommand 'check' cannot be used with"),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("--listening"), "{}", stderr(&o));
    let o = podports(&["check", "--profile", "istiod", "-l"]);
    assert_exit(&o, 2);
    assert!(
        stderr(&o).contains("unexpected argument '-l'"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn an_unreachable_target_exits_3() {
    let o = podports(&["check", "--profile", "istiod", "--pid", "2147483647"]);
    assert_exit(&o, 3);
    assert!(
        stderr(&o).contains("no process with pid 2147483647"),
        "{}",
        stderr(&o)
    );
    let o = podports(&[
        "check",
        "--profile",
        "istiod",
        "--netns",
        "podports-no-such-ns",
    ]);
    assert_exit(&o, 3);
    assert!(stderr(&o).contains("ip netns list"), "{}", stderr(&o));
    // Still unreachable when the wait is over: exit 3, not 1.
    let o = podports(&[
        "check",
        "--profile",
        "istiod",
        "--netns",
        "podports-no-such-ns",
        "--wait",
        "700ms",
    ]);
    assert_exit(&o, 3);
}

/// An expectation file about a listener this test holds (in its own namespace).
fn own_listener_file(listener: &TcpListener, extra: &str) -> TempFile {
    let port = listener.local_addr().unwrap().port();
    TempFile::new(
        "own.yaml",
        format!(
            "listen:\n  - name: the test's own listener\n    port: {port}\n    bind: loopback\n    \
             owner: app\n{extra}"
        )
        .as_bytes(),
    )
}

#[test]
fn a_listener_that_is_there_passes_and_one_that_is_not_fails() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let f = own_listener_file(&listener, "");
    let o = podports(&["check", "--expect", f.path()]);
    assert_exit(&o, 0);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains(&format!("tcp 127.0.0.1:{port} ")), "{out}");
    assert!(out.ends_with("check passed\n"), "{out}");

    // Owned by something else, bound elsewhere, and a port nobody holds.
    let f = TempFile::new(
        "bad.yaml",
        format!(
            "listen:\n  - port: {port}\n    owner: envoy\n  - port: {port}\n    bind: wildcard\n"
        )
        .as_bytes(),
    );
    let o = podports(&["check", "--expect", f.path(), "-o", "json"]);
    assert_exit(&o, 1);
    let doc: CheckDocument = serde_json::from_slice(&o.stdout).unwrap();
    assert!(!doc.passed);
    assert_eq!(doc.version, 1);
    assert_eq!(doc.summary.failed, 2);
    assert_eq!(doc.sources, [f.path()]);
    let owner = &doc.results[0];
    assert_eq!(owner.status, Status::Fail);
    assert_eq!(owner.check, CheckKind::Listen);
    assert_eq!(owner.port, Some(port));
    assert!(owner.reason.starts_with("held by "), "{owner:?}");
    assert!(owner.reason.ends_with("(expected envoy)"), "{owner:?}");
    assert_eq!(owner.found[0].local, format!("127.0.0.1:{port}"));
    assert_eq!(
        owner.found[0].processes[0].pid,
        std::process::id() as i32,
        "{owner:?}"
    );
    let bind = &doc.results[1];
    assert_eq!(
        bind.reason,
        format!("bound to 127.0.0.1:{port} (expected the wildcard address (0.0.0.0 or ::))")
    );
}

#[test]
fn strict_fails_on_a_listener_nobody_named() {
    let named = TcpListener::bind("127.0.0.1:0").unwrap();
    let extra = TcpListener::bind("127.0.0.1:0").unwrap();
    let extra_port = extra.local_addr().unwrap().port();
    let f = own_listener_file(&named, "strict: true\n");
    let o = podports(&["check", "--expect", f.path(), "-o", "json"]);
    assert_exit(&o, 1);
    let doc: CheckDocument = serde_json::from_slice(&o.stdout).unwrap();
    assert!(doc.strict);
    let strict = doc.results.last().unwrap();
    assert_eq!(strict.check, CheckKind::Strict);
    assert_eq!(strict.status, Status::Fail);
    assert!(
        strict
            .found
            .iter()
            .any(|f| f.local == format!("127.0.0.1:{extra_port}")),
        "{strict:?}"
    );
    assert!(
        strict
            .found
            .iter()
            .all(|f| f.local != named.local_addr().unwrap().to_string()),
        "{strict:?}"
    );
}

#[test]
fn junit_is_written_for_a_failing_check_and_parses() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let f = own_listener_file(&listener, "forbid:\n  - port: 1\n");
    let absent = TempFile::new(
        "absent.yaml",
        b"listen:\n  - port: 1\n    name: \"<nobody & none>\"\n",
    );
    let xml = TempFile::new("junit.xml", b"");
    let o = podports(&[
        "check",
        "--expect",
        f.path(),
        "--expect",
        absent.path(),
        "--junit",
        xml.path(),
    ]);
    assert_exit(&o, 1);
    let text = std::fs::read_to_string(xml.path()).unwrap();
    let doc = roxmltree::Document::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    assert_eq!(root.attribute("tests"), Some("3"));
    assert_eq!(root.attribute("failures"), Some("1"));
    let suites: Vec<_> = root
        .children()
        .filter(|n| n.has_tag_name("testsuite"))
        .collect();
    assert_eq!(suites.len(), 2);
    assert_eq!(suites[1].attribute("name"), Some(absent.path()));
    let failed = suites[1]
        .descendants()
        .find(|n| n.has_tag_name("testcase"))
        .unwrap();
    assert_eq!(
        failed.attribute("name"),
        Some("listen tcp/1 (<nobody & none>)")
    );
    let failure = failed
        .children()
        .find(|n| n.has_tag_name("failure"))
        .unwrap();
    assert_eq!(
        failure.attribute("message"),
        Some("nothing listens on tcp/1")
    );
    // The table still went to stdout.
    assert!(String::from_utf8_lossy(&o.stdout).contains("check FAILED"));

    // A path that cannot be written is an input error, named.
    let o = podports(&[
        "check",
        "--expect",
        f.path(),
        "--junit",
        "/nonexistent/dir/junit.xml",
    ]);
    assert_exit(&o, 2);
    assert!(
        stderr(&o).starts_with("podports: --junit /nonexistent/dir/junit.xml: cannot write it:"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_closed_stdout_does_not_turn_a_failure_into_a_pass() {
    let f = TempFile::new("absent.yaml", b"listen:\n  - port: 1\n");
    let mut child = Command::new(env!("CARGO_BIN_EXE_podports"))
        .args(["check", "--expect", f.path()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.is_empty(), "{err}");
}

#[test]
fn wait_sees_a_listener_that_appears_while_waiting() {
    // Find a free port, then let a thread listen on it a moment after the check started.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let f = TempFile::new(
        "later.yaml",
        format!("listen:\n  - port: {port}\n    bind: loopback\n").as_bytes(),
    );
    let (done, wait_done) = std::sync::mpsc::channel::<()>();
    let opener = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(1200));
        let l = TcpListener::bind(("127.0.0.1", port)).unwrap();
        // Held until podports has answered.
        let _ = wait_done.recv();
        drop(l);
    });
    let o = podports(&["check", "--expect", f.path(), "--wait", "20s", "-o", "json"]);
    done.send(()).unwrap();
    assert_exit(&o, 0);
    let doc: CheckDocument = serde_json::from_slice(&o.stdout).unwrap();
    let wait = doc.wait.unwrap();
    assert!(wait.attempts >= 2, "{wait:?}");
    assert!(wait.elapsed_ms >= 1000, "{wait:?}");
    assert!(wait.elapsed_ms < 20_000, "{wait:?}");
    // Not a terminal: no progress line on stderr.
    assert!(o.stderr.is_empty(), "{}", stderr(&o));
    opener.join().unwrap();
}

/// A bundle (`check --expect-bundle`) of `files`, as the kubectl plugin sends it.
fn bundle(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = b"podports-bundle v1\n".to_vec();
    for (name, bytes) in files {
        b.extend(format!("file {} {name}\n", bytes.len()).bytes());
        b.extend_from_slice(bytes);
        b.push(b'\n');
    }
    b.extend(b"end\n");
    b
}

/// Runs podports with `stdin` written to it and then left OPEN (as an attached container's
/// stdin stays open): podports must read the bundle up to its `end` line, not to EOF.
fn with_open_stdin(args: &[&str], stdin: &[u8]) -> std::process::Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_podports"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin).unwrap();
    input.flush().unwrap();
    // A guard against a hang, not a timing assertion.
    let start = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > std::time::Duration::from_secs(60) {
            let _ = child.kill();
            panic!("podports {args:?} waits for EOF on stdin");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    drop(input);
    out
}

#[test]
fn expect_files_come_from_a_bundle_on_stdin_under_their_own_names() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let good = format!("listen:\n  - port: {port}\n    bind: loopback\n");
    let b = bundle(&[
        ("deploy/podports.yaml", good.as_bytes()),
        (
            "deploy/bad.yaml",
            b"listen:\n  - port: 1\n    bogus: true\n",
        ),
    ]);
    // Read from the bundle, not from the file system (there is no deploy/podports.yaml here).
    let o = with_open_stdin(
        &[
            "check",
            "--expect",
            "deploy/podports.yaml",
            "--expect-bundle",
            "-",
        ],
        &b,
    );
    assert_exit(&o, 0);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("deploy/podports.yaml:2"), "{out}");
    // Errors name the file as the user named it, line and column.
    let o = with_open_stdin(
        &[
            "check",
            "--expect",
            "deploy/bad.yaml",
            "--expect-bundle",
            "-",
        ],
        &b,
    );
    assert_exit(&o, 2);
    assert!(
        stderr(&o).starts_with("podports: deploy/bad.yaml:3:5: unknown field `bogus`"),
        "{}",
        stderr(&o)
    );
    // A name the bundle does not hold, a bundle too big, not a bundle: exit 2, said.
    let o = with_open_stdin(
        &["check", "--expect", "podports.yaml", "--expect-bundle", "-"],
        &b,
    );
    assert_exit(&o, 2);
    assert_eq!(
        stderr(&o),
        "podports: --expect podports.yaml: not in the bundle of --expect-bundle, which holds: \
         deploy/podports.yaml, deploy/bad.yaml\n"
    );
    let big = format!("podports-bundle v1\nfile {} a.yaml\n", 1024 * 1024 + 1);
    let o = with_open_stdin(
        &["check", "--expect", "a.yaml", "--expect-bundle", "-"],
        big.as_bytes(),
    );
    assert_exit(&o, 2);
    assert!(
        stderr(&o).contains("--expect-bundle -: a.yaml: 1048577 bytes, more than"),
        "{}",
        stderr(&o)
    );
    let f = TempFile::new("bundle", &b);
    let o = podports(&[
        "check",
        "--expect",
        "deploy/podports.yaml",
        "--expect-bundle",
        f.path(),
    ]);
    assert_exit(&o, 0);
    let o = podports(&[
        "check",
        "--expect",
        "x",
        "--expect-bundle",
        &fixture("readme-example.yaml"),
    ]);
    assert_exit(&o, 2);
    assert!(
        stderr(&o).contains("not a podports bundle"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn junit_dash_is_framed_in_base64_after_the_report_byte_for_byte() {
    let f = TempFile::new(
        "absent.yaml",
        b"listen:\n  - port: 1\n    name: a <b> & \"c\"\n",
    );
    let file = TempFile::new("report.xml", b"");
    let o = podports(&["check", "--expect", f.path(), "--junit", file.path()]);
    assert_exit(&o, 1);
    let written = std::fs::read(&file.0).unwrap();
    let o = podports(&["check", "--expect", f.path(), "--junit", "-"]);
    assert_exit(&o, 1);
    let out = String::from_utf8(o.stdout).unwrap();
    let (report, frame) = out
        .split_once("----- podports junit v1 begin ")
        .expect("a frame");
    assert!(
        report.ends_with("check FAILED: 1 failed, 0 unknown\n"),
        "{report}"
    );
    let (head, rest) = frame.split_once('\n').unwrap();
    assert_eq!(head, format!("bytes={} -----", written.len()));
    let b64 = rest
        .strip_suffix("----- podports junit v1 end -----\n")
        .expect("the frame ends the output");
    let mut decode = Command::new("base64")
        .arg("-d")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        decode
            .stdin
            .take()
            .unwrap()
            .write_all(b64.as_bytes())
            .unwrap();
    }
    let decoded = decode.wait_with_output().unwrap();
    assert_eq!(decoded.stdout, written);
}

/// The newcomer's file: the SDS socket optional (this namespace has none).
const RELAXED_SDS: &str = "extends: istio-sidecar\n# the SDS socket is external here\nlisten:\n  \
                           - {path: var/run/secrets/workload-spiffe-uds/socket, optional: true}\n";

#[test]
fn a_profile_the_file_extends_is_checked_once_as_the_file_modifies_it() {
    let f = TempFile::new("podports.yaml", RELAXED_SDS.as_bytes());
    let note = format!(
        "--profile istio-sidecar: already extended by {}; checked as that file modifies it",
        f.path()
    );
    let sds = |doc: &CheckDocument| -> Vec<(Status, String)> {
        doc.results
            .iter()
            .filter(|r| r.expected.contains("workload-spiffe-uds/socket"))
            .map(|r| (r.status, r.from.clone()))
            .collect()
    };
    let json = |args: &[&str]| -> CheckDocument {
        let mut all = vec!["check", "-o", "json"];
        all.extend_from_slice(args);
        let o = podports(&all);
        // No envoy in this namespace: the profile's other items fail, which is not the point.
        assert_exit(&o, 1);
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let alone = json(&["--expect", f.path()]);
    let one_row = vec![(
        Status::Skip,
        format!("{}:4, replaces istio-sidecar", f.path()),
    )];
    assert_eq!(sds(&alone), one_row);
    assert!(!alone.warnings.contains(&note), "{:?}", alone.warnings);
    for args in [
        ["--profile", "istio-sidecar", "--expect", f.path()],
        ["--expect", f.path(), "--profile", "istio-sidecar"],
    ] {
        let both = json(&args);
        assert_eq!(sds(&both), one_row, "{args:?}");
        assert_eq!(both.results.len(), alone.results.len(), "{args:?}");
        assert_eq!(both.sources, [f.path()], "{args:?}");
        assert_eq!(
            both.warnings.iter().filter(|w| **w == note).count(),
            1,
            "{args:?}: {:?}",
            both.warnings
        );
    }
    // The table says it once, as a warning.
    let o = podports(&["check", "--profile", "istio-sidecar", "--expect", f.path()]);
    assert_exit(&o, 1);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(out.matches(&format!("warning: {note}")).count(), 1, "{out}");
    let rows: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("workload-spiffe-uds/socket"))
        .collect();
    assert_eq!(rows.len(), 1, "{out}");
    assert!(rows[0].trim_start().starts_with("skip"), "{out}");
    assert!(rows[0].contains(", replaces istio-sidecar"), "{out}");

    // A profile the file does not extend is checked beside it, as it is: no note.
    let other = json(&["--profile", "istio-ambient", "--expect", f.path()]);
    assert_eq!(other.sources, ["istio-ambient", f.path()]);
    assert!(
        other
            .warnings
            .iter()
            .all(|w| !w.contains("already extended")),
        "{:?}",
        other.warnings
    );
    assert!(other.results.iter().any(|r| r.from == "istio-ambient"));
}
