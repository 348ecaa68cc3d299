//! The table for people, on a simulated sidecar pod (real processes, real sockets, a fresh
//! network namespace): fitted to 80, 120 and 200 columns (`--width`, and once through a real
//! pseudo-terminal) every line fits, no line ends in a space, warnings are numbered notes,
//! and every pid and port is still there; off a terminal nothing is shortened.
//! Needs root: without it these skip with a reason, and under CI=true fail.
// A test: it makes sockets, files and processes freely (clippy.toml keeps them in sys/).
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use std::process::Command;

use common::compare::{json, podports};
use common::{Netns, Proc, Scratch, install_as, require_root};
use podports::render::json::{Document, EndpointDoc};

/// A sidecar pod: pilot-agent (which starts envoy), an app with a long unix path, a
/// v6-only and a dual-stack listener, and a port of the mesh it should not hold (a warning).
struct Pod {
    ns: Netns,
    _root: Scratch,
    _agent: Proc,
    _app: Proc,
    pids: Vec<i32>,
}

const LONG_PATH: &str =
    "var/run/secrets/workload-spiffe-uds/a-rather-long-directory-name-for-a-socket/socket";

fn sidecar_pod() -> Pod {
    let ns = Netns::new();
    ns.add_addr("10.0.0.5/32");
    let root = Scratch::new();
    let chdir = format!("chdir={}", root.path().display());
    let envoy_ready = root.join("envoy.ready");
    let envoy = install_as("envoy");
    let agent = Proc::start(
        &ns,
        &install_as("pilot-agent"),
        &[
            chdir.as_str(),
            "tcp-listen=[::]:15020",
            "udp-bind=127.0.0.1:15053",
            "mkdir=etc/istio/proxy",
            "unix-listen=etc/istio/proxy/XDS",
            &format!("spawn={}", envoy.display()),
            "--ready",
            envoy_ready.to_str().unwrap(),
            chdir.as_str(),
            "tcp-listen=127.0.0.1:15000",
            "tcp-listen=0.0.0.0:15001,reuseport",
            "tcp-listen=0.0.0.0:15006,reuseport",
            "tcp-listen=0.0.0.0:15021",
            "tcp-listen=0.0.0.0:15090",
            "unix-connect=etc/istio/proxy/XDS",
            "tcp-connect=127.0.0.1:15020",
            ";;",
            &format!("wait-file={}", envoy_ready.display()),
        ],
    );
    let envoy_pid = common::wait_ready_file(&envoy_ready).pid;
    let app = Proc::start(
        &ns,
        &install_as("myapp"),
        &[
            chdir.as_str(),
            "tcp-listen=10.0.0.5:9080",
            "tcp-listen=[::]:9200,v6only=on",
            "tcp-listen=[::]:9201,v6only=off",
            // Envoy's admin port, held by the app: the listing warns.
            "tcp-listen=[::1]:15000",
            &format!("mkdir={}", LONG_PATH.rsplit_once('/').unwrap().0),
            &format!("unix-listen={LONG_PATH}"),
            "tcp-connect=10.0.0.5:9080,from=127.0.0.6",
        ],
    );
    let pids = vec![agent.pid(), envoy_pid, app.pid()];
    Pod {
        ns,
        _root: root,
        _agent: agent,
        _app: app,
        pids,
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn table(pod: &Pod, extra: &[&str]) -> String {
    let mut args = vec!["--netns", pod.ns.name()];
    args.extend(extra);
    let o = podports(&args);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    text(&o.stdout)
}

/// Every local port and every pid of the JSON listing.
fn identifiers(doc: &Document) -> (Vec<String>, Vec<String>) {
    let mut ports: Vec<String> = doc
        .sockets
        .iter()
        .filter_map(|s| match &s.local {
            EndpointDoc::Inet(e) => Some(format!(":{}", e.port)),
            _ => None,
        })
        .collect();
    ports.sort();
    ports.dedup();
    let mut pids: Vec<String> = doc
        .sockets
        .iter()
        .flat_map(|s| s.processes.iter().map(|p| format!("[{}]", p.pid)))
        .collect();
    pids.sort();
    pids.dedup();
    (ports, pids)
}

fn assert_fits(out: &str, width: usize) {
    for line in out.lines() {
        assert!(
            line.chars().count() <= width,
            "{} columns > {width}: {line:?}\n{out}",
            line.chars().count()
        );
        assert!(!line.ends_with(' '), "trailing space: {line:?}\n{out}");
    }
}

#[cfg_attr(podports_not_root, ignore = "needs root")]
#[test]
fn the_sidecar_table_fits_80_120_and_200_columns_and_loses_nothing() {
    if !require_root("the_sidecar_table_fits_80_120_and_200_columns_and_loses_nothing") {
        return;
    }
    let pod = sidecar_pod();
    let doc = json(&["--netns", pod.ns.name()]);
    let (ports, pids) = identifiers(&doc);
    for p in &pod.pids {
        assert!(pids.contains(&format!("[{p}]")), "{p} not in {pids:?}");
    }
    let warned = doc.sockets.iter().any(|s| !s.warnings.is_empty());
    assert!(warned, "the app on envoy's admin port warns: {doc:?}");
    for width in [80usize, 120, 200] {
        let out = table(&pod, &["--width", &width.to_string()]);
        eprintln!("--- {width} columns\n{out}");
        assert_fits(&out, width);
        for id in ports.iter().chain(&pids) {
            assert!(out.contains(id.as_str()), "{id} lost at {width}:\n{out}");
        }
        // Warnings are numbered notes under the table, not a column.
        assert!(!out.contains("WARNINGS"), "{out}");
        assert!(out.contains("NOTE"), "{out}");
        assert!(out.lines().any(|l| l.starts_with("[1] ")), "{out}");
        assert!(out.contains(" [1]\n"), "{out}");
        // ss's convention for the unspecified IPv6 address.
        assert!(out.contains("*:9201") && out.contains("[::]:9200"), "{out}");
    }
    // At 80 columns the long unix path is shortened, in the middle.
    let narrow = table(&pod, &["--width", "80"]);
    assert!(narrow.contains('…'), "{narrow}");
    assert!(narrow.contains("/socket"), "{narrow}");
}

#[cfg_attr(podports_not_root, ignore = "needs root")]
#[test]
fn off_a_terminal_nothing_is_shortened_and_no_line_ends_in_a_space() {
    if !require_root("off_a_terminal_nothing_is_shortened_and_no_line_ends_in_a_space") {
        return;
    }
    let pod = sidecar_pod();
    // COLUMNS says nothing to a pipe.
    let o = Command::new(env!("CARGO_BIN_EXE_podports"))
        .args(["--netns", pod.ns.name()])
        .env("COLUMNS", "80")
        .output()
        .unwrap();
    let out = text(&o.stdout);
    assert!(!out.contains('…'), "{out}");
    assert!(out.contains(LONG_PATH), "{out}");
    assert!(out.contains("WARNINGS"), "{out}");
    assert_fits(&out, usize::MAX);
    for extra in [
        &["-o", "wide", "--width", "80"][..],
        &["--no-headers"],
        &["-l"],
    ] {
        let out = table(&pod, extra);
        assert!(!out.contains('…'), "{extra:?}: {out}");
        assert_fits(&out, usize::MAX);
    }
    let bare = table(&pod, &["--no-headers"]);
    assert!(!bare.contains("PROTO"), "{bare}");
    for args in [&["catalog"][..], &["catalog", "-o", "wide"]] {
        let o = podports(args);
        assert_fits(&text(&o.stdout), usize::MAX);
    }
    let o = podports(&["catalog", "--width", "80"]);
    assert_fits(&text(&o.stdout), 80);
    let o = podports(&[
        "check",
        "--netns",
        pod.ns.name(),
        "--profile",
        "istio-sidecar",
        "--width",
        "80",
    ]);
    assert_fits(&text(&o.stdout), 80);
    let o = podports(&["probe", "--netns", pod.ns.name(), "--width", "80"]);
    assert_fits(&text(&o.stdout), 80);
}

/// `check` fitted to 80 and 120 columns: every FAIL and UNKNOWN reason (with what was found)
/// is whole under the table, as the JSON gives it, while no line is wider than the width.
#[cfg_attr(podports_not_root, ignore = "needs root")]
#[test]
fn check_failure_reasons_are_whole_at_80_and_120_columns() {
    if !require_root("check_failure_reasons_are_whole_at_80_and_120_columns") {
        return;
    }
    let pod = sidecar_pod();
    let args = [
        "check",
        "--netns",
        pod.ns.name(),
        "--profile",
        "istio-sidecar",
    ];
    let o = podports(&[&args[..], &["-o", "json"]].concat());
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let doc: podports::render::check::CheckDocument =
        serde_json::from_slice(&o.stdout).expect("check's JSON");
    let failed: Vec<_> = doc
        .results
        .iter()
        .filter(|r| r.reason.len() > 30 && matches!(r.status, podports::check::eval::Status::Fail))
        .collect();
    assert!(
        !failed.is_empty(),
        "the app on 15000 fails the sidecar: {doc:?}"
    );
    let words = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    for width in [80usize, 120] {
        let o = podports(&[&args[..], &["--width", &width.to_string()]].concat());
        assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
        let out = text(&o.stdout);
        eprintln!("--- {width} columns\n{out}");
        assert_fits(&out, width);
        let flat = words(&out);
        for r in &failed {
            let found: Vec<String> = r.found.iter().map(|f| f.local.clone()).collect();
            assert!(
                flat.contains(&words(&r.reason)),
                "{:?} cut at {width}:\n{out}",
                r.reason
            );
            for f in found {
                assert!(flat.contains(&f), "{f} lost at {width}:\n{out}");
            }
        }
        assert!(out.lines().any(|l| l.starts_with("[1] ")), "{out}");
    }
}

/// A real terminal: a pseudo-terminal from script(1), sized with stty, COLUMNS unset (the
/// TIOCGWINSZ path), then COLUMNS set (it wins).
#[cfg_attr(podports_not_root, ignore = "needs root")]
#[test]
fn on_a_real_terminal_the_table_fits_its_width() {
    if !require_root("on_a_real_terminal_the_table_fits_its_width") {
        return;
    }
    let pod = sidecar_pod();
    let exe = env!("CARGO_BIN_EXE_podports");
    for (cols, env) in [(80usize, None), (100, Some("100"))] {
        let size = if env.is_some() { 200 } else { cols };
        // The shell script(1) runs resets COLUMNS after stty: set it for podports alone.
        let columns = env.map(|v| format!("COLUMNS={v} ")).unwrap_or_default();
        let cmd = format!(
            "stty cols {size} rows 50; {columns}exec {exe} --netns {} --color always",
            pod.ns.name()
        );
        let mut c = Command::new("script");
        c.args(["-qec", &cmd, "/dev/null"]).env_remove("COLUMNS");
        let o = c.output().expect("script(1) from util-linux");
        assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
        let raw = text(&o.stdout).replace("\r\n", "\n");
        assert!(
            raw.contains("\x1b[32mLISTEN\x1b[0m"),
            "colored states: {raw:?}"
        );
        // Colour never counts as width.
        let plain = strip_ansi(&raw);
        assert_fits(&plain, cols);
        assert!(plain.contains("NOTE") && plain.contains('…'), "{plain}");
    }
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
