//! Hostile and unlucky conditions, against the real kernel: processes that lie about their
//! names, names and paths full of escape sequences and invalid UTF-8, owners hidden from a root
//! without CAP_SYS_PTRACE, namespaces that are gone, and processes that come and go while
//! podports looks. Needs root (skips with a reason without it; fails under CI=true).
// A test: it makes sockets, files and processes freely (clippy.toml keeps them in sys/).
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::process::Command;
use std::time::{Duration, Instant};

use common::compare::{json, podports};
use common::{Netns, Proc, Scratch, install_as, require_root};
use podports::render::json::{Document, EndpointDoc};

fn kind(p: &podports::render::json::ProcessDoc) -> String {
    serde_json::to_value(p.kind)
        .unwrap()
        .as_str()
        .unwrap()
        .to_string()
}

#[cfg_attr(podports_not_root, ignore = "needs root")]
#[test]
fn an_app_calling_itself_envoy_is_not_the_proxy() {
    if !require_root("an_app_calling_itself_envoy_is_not_the_proxy") {
        return;
    }
    let ns = Netns::new();
    let impostor = Proc::start(
        &ns,
        &install_as("myapp"),
        &["comm=envoy", "tcp-listen=0.0.0.0:15021"],
    );
    assert_eq!(common::proc_comm_ppid(impostor.pid()).0, "envoy");
    let doc = json(&["--netns", ns.name()]);
    let s = &doc.sockets[0];
    let p = &s.processes[0];
    assert_eq!(p.comm, "envoy");
    assert_eq!(kind(p), "app");
    assert!(
        p.kind_basis.contains("comm envoy but exe myapp"),
        "{}",
        p.kind_basis
    );
    assert!(
        s.warnings
            .iter()
            .any(|w| w.contains("reserved for envoy but held by app envoy[")),
        "{:?}",
        s.warnings
    );
    // -o wide says what the kind rests on.
    let out = podports(&["--netns", ns.name(), "-o", "wide"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("app (comm envoy but exe myapp)"), "{text}");
}

#[cfg_attr(podports_not_root, ignore = "needs root")]
#[test]
fn escape_sequences_and_invalid_utf8_never_reach_the_terminal_raw() {
    if !require_root("escape_sequences_and_invalid_utf8_never_reach_the_terminal_raw") {
        return;
    }
    let ns = Netns::new();
    let dir = Scratch::new();
    // A program file named with an escape sequence and a newline: comm and exe carry them.
    let exe = install_as("x\x1b[31mred\nz");
    let mut path = dir.path().as_os_str().as_bytes().to_vec();
    path.extend_from_slice(b"/s\nck\xff\x1b]0;t\x07");
    let mut op = b"unix-listen=".to_vec();
    op.extend_from_slice(&path);
    let ops = vec![
        OsString::from_vec(op),
        OsString::from("tcp-listen=127.0.0.1:8080"),
    ];
    let _p = Proc::start(&ns, &exe, &ops);

    let out = podports(&["--netns", ns.name(), "-o", "wide"]);
    assert_eq!(out.status.code(), Some(0));
    let raw: Vec<u8> = out
        .stdout
        .iter()
        .copied()
        .filter(|b| (*b < 0x20 && *b != b'\n') || *b == 0x7f)
        .collect();
    assert!(raw.is_empty(), "raw control bytes {raw:?}");
    let text = String::from_utf8(out.stdout).expect("UTF-8 table");
    // Header, 2 sockets, footer: a newline in a name never splits a row.
    assert_eq!(text.lines().count(), 4, "{text}");
    assert!(text.contains("x\\x1b[31mred\\nz["), "{text}");
    assert!(text.contains("/s\\nck\\xff\\x1b]0;t\\x07"), "{text}");

    // JSON keeps the exact bytes recoverable.
    let doc = json(&["--netns", ns.name()]);
    let unix = doc
        .sockets
        .iter()
        .find(|s| matches!(s.local, EndpointDoc::UnixLocal(_)))
        .unwrap();
    let EndpointDoc::UnixLocal(local) = &unix.local else {
        unreachable!()
    };
    let hex = local
        .path_hex
        .as_ref()
        .expect("path_hex for a non-UTF-8 path");
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    assert_eq!(bytes, path);
    assert_eq!(unix.processes[0].comm, "x\x1b[31mred\nz");
}

#[cfg_attr(podports_not_root, ignore = "needs root")]
#[test]
fn root_without_cap_sys_ptrace_is_told_owners_are_hidden() {
    if !require_root("root_without_cap_sys_ptrace_is_told_owners_are_hidden") {
        return;
    }
    let ns = Netns::new();
    let p = Proc::start(
        &ns,
        &install_as("myapp"),
        &["tcp-listen=0.0.0.0:9080", "user=1337"],
    );
    // With every capability, the owner is seen.
    let doc = json(&["--netns", ns.name()]);
    assert_eq!(doc.sockets[0].processes[0].pid, p.pid());
    let out = Command::new("setpriv")
        .args([
            "--bounding-set=-sys_ptrace",
            "--inh-caps=-sys_ptrace",
            "--",
            env!("CARGO_BIN_EXE_podports"),
            "-o",
            "json",
            "--netns",
            ns.name(),
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Document = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc.sockets.len(), 1, "the socket itself is still listed");
    assert!(doc.sockets[0].processes.is_empty());
    assert_eq!(doc.hidden_owners, 1);
    assert!(
        doc.warnings.iter().any(|w| w.contains("CAP_SYS_PTRACE")),
        "{:?}",
        doc.warnings
    );
}

#[cfg_attr(podports_not_root, ignore = "needs root")]
#[test]
fn a_netns_pin_that_was_unmounted_is_not_a_namespace() {
    if !require_root("a_netns_pin_that_was_unmounted_is_not_a_namespace") {
        return;
    }
    let ns = Netns::new();
    let status = Command::new("umount")
        .args(["-l", ns.path().to_str().unwrap()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = podports(&["--netns", ns.name()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a network namespace"), "{err}");
    assert!(err.contains(ns.name()), "{err}");
}

#[cfg_attr(podports_not_root, ignore = "needs root")]
#[test]
fn churn_every_run_succeeds_and_every_listed_socket_is_real() {
    if !require_root("churn_every_run_succeeds_and_every_listed_socket_is_real") {
        return;
    }
    let ns = Netns::new();
    let stable = Proc::start(&ns, &install_as("myapp"), &["tcp-listen=0.0.0.0:9080"]);
    let exe = install_as("churner");
    let path = ns.path().to_path_buf();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let churn = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut n = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                // Short-lived processes with sockets, started and killed continuously.
                let port = 20000 + (n % 200) as u16;
                let mut c = Command::new("nsenter")
                    .arg(format!("--net={}", path.display()))
                    .arg("--")
                    .arg(&exe)
                    .arg(format!("tcp-listen=127.0.0.1:{port}"))
                    .arg(format!("udp-bind=127.0.0.1:{port}"))
                    .arg("socketpair")
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .spawn()
                    .unwrap();
                std::thread::sleep(Duration::from_millis(3 + u64::from(n % 7)));
                let _ = c.kill();
                let _ = c.wait();
                n += 1;
            }
            n
        })
    };
    let started = Instant::now();
    for run in 0..30 {
        let doc = json(&["--netns", ns.name()]);
        for s in &doc.sockets {
            // Every socket is the stable listener or a churner's.
            match &s.local {
                EndpointDoc::Inet(e) => assert!(
                    e.port == 9080 || (20000..20200).contains(&e.port),
                    "run {run}: unexpected {s:?}"
                ),
                EndpointDoc::UnixLocal(_) => {}
                EndpointDoc::UnixPeer(_) => panic!("{s:?}"),
            }
            for p in &s.processes {
                assert!(
                    p.pid == stable.pid() || p.comm == "churner",
                    "run {run}: {p:?}"
                );
            }
        }
        let stable_seen = doc
            .sockets
            .iter()
            .any(|s| s.processes.iter().any(|p| p.pid == stable.pid()));
        assert!(stable_seen, "run {run}: the stable listener lost its owner");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let churned = churn.join().unwrap();
    assert!(
        churned > 10,
        "only {churned} processes churned in {:?}",
        started.elapsed()
    );
}

#[cfg_attr(podports_not_root, ignore = "needs root")]
#[test]
fn podports_writes_nothing_but_its_own_output() {
    if !require_root("podports_writes_nothing_but_its_own_output") {
        return;
    }
    if Command::new("strace").arg("-V").output().is_err() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "strace is missing: .ci/run installs it"
        );
        eprintln!("skipping podports_writes_nothing_but_its_own_output: no strace");
        return;
    }
    let ns = Netns::new();
    let _p = Proc::start(
        &ns,
        &install_as("envoy"),
        &["tcp-listen=127.0.0.1:15000", "udp-bind=127.0.0.1:15053"],
    );
    let scratch = Scratch::new();
    let log = scratch.join("strace.log");
    let traced = [
        "openat",
        "open",
        "creat",
        "write",
        "pwrite64",
        "writev",
        "unlink",
        "unlinkat",
        "mkdir",
        "mkdirat",
        "rename",
        "renameat",
        "renameat2",
        "truncate",
        "ftruncate",
        "chmod",
        "fchmod",
        "fchmodat",
        "chown",
        "fchown",
        "fchownat",
        "setxattr",
        "fsetxattr",
        "sendto",
        "sendmsg",
        "connect",
        "bind",
        "kill",
        "ptrace",
        "mount",
        "umount2",
        "bpf",
    ]
    .join(",");
    let out = Command::new("strace")
        .args(["-f", "-qq", "-o"])
        .arg(&log)
        .arg("-e")
        .arg(format!("trace={traced}"))
        .arg(env!("CARGO_BIN_EXE_podports"))
        .args(["--netns", ns.name(), "-o", "wide"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&log).unwrap();
    let mut calls = 0;
    let mut bpf_commands = Vec::new();
    for line in text.lines() {
        let call = line
            .split_once(' ')
            .map_or(line, |(_, rest)| rest)
            .trim_start();
        // With threads, strace splits a call: `<... sendto resumed>` ends one begun above.
        if call.starts_with("<...") {
            continue;
        }
        let name = call.split('(').next().unwrap_or_default();
        calls += 1;
        match name {
            "openat" | "open" => assert!(
                call.contains("O_RDONLY") && !call.contains("O_CREAT") && !call.contains("O_TRUNC"),
                "{line}"
            ),
            "write" | "writev" => assert!(
                call.starts_with("write(1,")
                    || call.starts_with("write(2,")
                    || call.starts_with("writev(1,")
                    || call.starts_with("writev(2,"),
                "{line}"
            ),
            // The netlink dump: a request to the kernel, nothing else.
            "sendto" | "sendmsg" | "bind" | "connect" => {
                assert!(
                    call.contains("AF_NETLINK") || call.contains("NLM_F_REQUEST"),
                    "{line}"
                )
            }
            // The kernel fd walk: load a tracing iterator, attach it, read it. No map, no pin,
            // no attachment to anything that runs on its own.
            "bpf" => {
                let cmd = call
                    .trim_start_matches("bpf(")
                    .split(',')
                    .next()
                    .unwrap_or_default();
                assert!(
                    ["BPF_PROG_LOAD", "BPF_LINK_CREATE", "BPF_ITER_CREATE"].contains(&cmd),
                    "{line}"
                );
                if cmd == "BPF_PROG_LOAD" {
                    assert!(call.contains("BPF_PROG_TYPE_TRACING"), "{line}");
                    assert!(call.contains("BPF_TRACE_ITER"), "{line}");
                }
                bpf_commands.push(cmd.to_string());
            }
            "+++" | "---" | "" => {}
            other => panic!("podports called {other}: {line}"),
        }
    }
    assert!(calls > 5, "strace saw nothing: {text}");
    // As root, the kernel walk ran (so the checks above covered it), once; on a kernel that
    // cannot (no BTF), podports fell back to /proc, which CI's kernel never needs.
    let kernel_walk =
        String::from_utf8_lossy(&out.stdout).contains("owners from the kernel's fd tables");
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        assert!(kernel_walk, "{}", String::from_utf8_lossy(&out.stdout));
    }
    if kernel_walk {
        // Loaded and attached once; walked once, or twice when a socket had no holder.
        let count = |c: &str| bpf_commands.iter().filter(|b| *b == c).count();
        assert_eq!(count("BPF_PROG_LOAD"), 1, "{text}");
        assert_eq!(count("BPF_LINK_CREATE"), 1, "{text}");
        assert!((1..=2).contains(&count("BPF_ITER_CREATE")), "{text}");
        assert_eq!(bpf_commands.len(), 2 + count("BPF_ITER_CREATE"), "{text}");
    } else {
        assert!(
            !bpf_commands.iter().any(|c| c == "BPF_ITER_CREATE"),
            "{text}"
        );
    }
}
