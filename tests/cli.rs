//! The command-line contract: exit codes, error wording, and JSON that reads back into the
//! documented types. These need no privilege.
// A test: it makes sockets, files and processes freely (clippy.toml keeps them in sys/).
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use std::io::Read;
use std::process::{Command, Output, Stdio};

use common::compare::{assert_exit, podports, stderr};
use podports::render::json::Document;

/// No error may look like a crash.
fn assert_no_panic(o: &Output) {
    let e = stderr(o);
    assert!(
        !e.contains("panicked") && !e.contains("RUST_BACKTRACE"),
        "{e}"
    );
}

#[test]
fn two_targets_are_a_usage_error() {
    let o = podports(&["--pid", "1", "--netns", "x"]);
    assert_exit(&o, 2);
    assert!(stderr(&o).contains("--pid"), "{}", stderr(&o));
    assert!(stderr(&o).contains("--netns"), "{}", stderr(&o));
}

#[test]
fn a_pid_that_does_not_exist_is_unreachable() {
    let o = podports(&["--pid", "2147483647"]);
    assert_exit(&o, 3);
    assert!(
        stderr(&o).contains("no process with pid 2147483647"),
        "{}",
        stderr(&o)
    );
    assert_no_panic(&o);
}

#[test]
fn a_pid_that_is_not_a_number_or_not_positive_is_a_usage_error() {
    for arg in ["--pid=abc", "--pid=0", "--pid=-5", "--pid="] {
        let o = podports(&[arg]);
        assert_exit(&o, 2);
        assert_no_panic(&o);
    }
}

#[test]
fn an_unknown_netns_name_is_unreachable_and_says_how_to_list_them() {
    let o = podports(&["--netns", "podports-no-such-ns"]);
    assert_exit(&o, 3);
    let e = stderr(&o);
    assert!(
        e.contains("network namespace 'podports-no-such-ns' not found"),
        "{e}"
    );
    assert!(e.contains("ip netns list"), "{e}");
}

#[test]
fn a_missing_netns_path_is_unreachable() {
    let o = podports(&["--netns", "/var/run/netns/cni-00000000-no-such"]);
    assert_exit(&o, 3);
    assert!(stderr(&o).contains("no such file"), "{}", stderr(&o));
}

#[test]
fn a_path_that_is_not_a_network_namespace_is_an_input_error() {
    let dir = std::env::temp_dir();
    let file = dir.join(format!("podports-not-a-netns-{}", std::process::id()));
    std::fs::write(&file, b"x").unwrap();
    for path in [
        file.to_str().unwrap(),
        dir.to_str().unwrap(),
        "/proc/self/ns/uts",
    ] {
        let o = podports(&["--netns", path]);
        assert_exit(&o, 2);
        let e = stderr(&o);
        assert!(e.contains("not a network namespace"), "{path}: {e}");
        assert!(e.contains(path), "{path}: {e}");
    }
    std::fs::remove_file(file).unwrap();
}

#[test]
fn an_unknown_flag_is_a_usage_error() {
    let o = podports(&["--no-such-flag"]);
    assert_exit(&o, 2);
    let o = podports(&["--port", "70000"]);
    assert_exit(&o, 2);
}

#[test]
fn help_and_version_exit_zero() {
    assert_exit(&podports(&["--help"]), 0);
    assert_exit(&podports(&["--version"]), 0);
}

/// Help points at the docs that hold what it refers to (the file format, the JSON schemas),
/// each of which exists, not at the README, which no longer holds them.
#[test]
fn help_points_at_docs_that_exist() {
    for args in [&["--help"][..], &["check", "--help"]] {
        let o = podports(args);
        assert_exit(&o, 0);
        let help = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(!help.contains("README"), "{args:?}:\n{help}");
        let mut docs = help
            .split(|c: char| c.is_whitespace() || c == '(' || c == ')' || c == ',' || c == ';')
            .filter_map(|w| w.strip_prefix("docs/"))
            .map(|w| w.trim_end_matches(['.', ':']))
            .peekable();
        assert!(docs.peek().is_some(), "{args:?}: no docs/ pointer:\n{help}");
        for doc in docs {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("docs")
                .join(doc);
            assert!(path.is_file(), "{args:?} points at docs/{doc}, not a file");
        }
    }
    let check = String::from_utf8_lossy(&podports(&["check", "--help"]).stdout).into_owned();
    for doc in ["docs/check.md", "docs/json.md"] {
        assert!(check.contains(doc), "check --help names no {doc}:\n{check}");
    }
}

#[test]
fn json_of_the_current_namespace_reads_back_into_the_documented_types() {
    let o = podports(&["-o", "json"]);
    assert_exit(&o, 0);
    let doc: Document = serde_json::from_slice(&o.stdout).expect("JSON document");
    assert_eq!(doc.version, 1);
    assert_eq!(doc.netns.target, "current");
    let own = std::fs::read_link("/proc/self/ns/net").unwrap();
    assert_eq!(
        own.to_str().unwrap(),
        format!("net:[{}]", doc.netns.inode.unwrap())
    );
    assert_eq!(doc.source, "netlink");
}

#[test]
fn json_by_proc_source_says_so() {
    let o = podports(&["-o", "json", "--source", "proc"]);
    assert_exit(&o, 0);
    let doc: Document = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc.source, "proc");
}

#[test]
fn catalog_prints_the_ports_with_their_sources() {
    let o = podports(&["catalog", "-o", "wide"]);
    assert_exit(&o, 0);
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(text.contains("15021"), "{text}");
    assert!(text.contains("envoy_bootstrap.json"), "{text}");

    let o = podports(&["catalog", "-o", "json"]);
    assert_exit(&o, 0);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let entries = v["entries"].as_array().unwrap();
    let admin = entries
        .iter()
        .find(|e| e["key"]["port"] == 15000 && e["component"] == "envoy")
        .expect("15000 envoy admin");
    assert_eq!(admin["name"], "admin");
    assert_eq!(admin["bind"], "loopback");
    let old = entries
        .iter()
        .find(|e| e["key"]["port"] == 15004)
        .expect("15004");
    assert!(old["versions"].as_str().unwrap().contains("1.25"), "{old}");
}

#[test]
fn a_closed_stdout_exits_zero_quietly() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_podports"))
        .args(["catalog"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Close the read end before podports writes anything.
    drop(child.stdout.take());
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(err.is_empty(), "{err}");
}

#[test]
fn a_zombie_is_unreachable_and_says_so() {
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    // Not reaped yet: wait until the kernel shows it as a zombie.
    let stat = format!("/proc/{pid}/stat");
    for _ in 0..500 {
        let s = std::fs::read_to_string(&stat).unwrap_or_default();
        if s.rsplit(')')
            .next()
            .is_some_and(|r| r.trim_start().starts_with('Z'))
        {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let o = podports(&["--pid", &pid.to_string()]);
    child.wait().unwrap();
    assert_exit(&o, 3);
    assert!(stderr(&o).contains("is a zombie"), "{}", stderr(&o));
}

#[test]
fn a_kernel_thread_is_not_a_target() {
    // Any kernel thread visible here (PF_KTHREAD in /proc/<pid>/stat field 9).
    let kthread = std::fs::read_dir("/proc").unwrap().flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
        let flags: u32 = stat
            .rsplit(')')
            .next()?
            .split_whitespace()
            .nth(6)?
            .parse()
            .ok()?;
        (flags & 0x0020_0000 != 0).then_some(pid)
    });
    let Some(pid) = kthread else {
        eprintln!("skipping a_kernel_thread_is_not_a_target: no kernel thread visible in /proc");
        return;
    };
    let o = podports(&["--pid", &pid.to_string()]);
    assert_exit(&o, 2);
    assert!(stderr(&o).contains("is a kernel thread"), "{}", stderr(&o));
}

#[test]
fn a_pid_reused_while_its_namespace_is_opened_is_refused() {
    // A fake /proc whose <pid>/stat is a FIFO: the first read shows one process, the second
    // (after the namespace was opened) a later process with the same pid.
    let root = std::env::temp_dir().join(format!("podports-reuse-{}", std::process::id()));
    let dir = root.join("4242");
    std::fs::create_dir_all(dir.join("ns")).unwrap();
    std::os::unix::fs::symlink("/proc/self/ns/net", dir.join("ns/net")).unwrap();
    let fifo = dir.join("stat");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (fifo, stop) = (fifo.clone(), stop.clone());
        std::thread::spawn(move || {
            // Serve every read (a podports without the check would read on and list).
            for start in std::iter::once(1000).chain(std::iter::repeat(2000)) {
                let stat = format!(
                    "4242 (myapp) S 1 1 1 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 {start} 0 0 \
                     18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n"
                );
                // Blocks until a reader opens the FIFO.
                let _ = std::fs::write(&fifo, stat);
                if stop.load(std::sync::atomic::Ordering::SeqCst) {
                    break;
                }
                // Let that reader see EOF and close before the next write, so no read ever
                // sees two contents.
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        })
    };
    let o = podports(&["--proc-root", root.to_str().unwrap(), "--pid", "4242"]);
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    // Release the writer from its last blocking open.
    let _ = std::fs::read(&fifo);
    writer.join().unwrap();
    std::fs::remove_dir_all(&root).unwrap();
    assert_exit(&o, 3);
    assert!(stderr(&o).contains("was reused"), "{}", stderr(&o));
}
