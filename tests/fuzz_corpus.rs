//! Replays every fuzz seed and every input a fuzzer ever crashed on (`fuzz/corpus/<target>/`,
//! `fuzz/regressions/<target>/`) through the same entry points the `cargo fuzz` targets use,
//! on stable Rust, in every `cargo test`. A parser that panics on one of them fails here.
// A test: it makes sockets, files and processes freely (clippy.toml keeps them in sys/).
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::fs;
use std::path::Path;

use podports::fuzz_targets;

fn replay(target: &str, run: fn(&[u8])) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut count = 0;
    for kind in ["corpus", "regressions"] {
        let dir = root.join(kind).join(target);
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if !path.is_file() {
                continue;
            }
            let data = fs::read(&path).unwrap();
            let outcome = std::panic::catch_unwind(|| run(&data));
            assert!(outcome.is_ok(), "{target}: {} panics", path.display());
            count += 1;
        }
    }
    count
}

#[test]
fn sock_diag_corpus() {
    assert!(replay("sock_diag", fuzz_targets::sock_diag_reply) >= 5);
}

#[test]
fn proc_net_corpus() {
    assert!(replay("proc_net", fuzz_targets::proc_net_table) >= 6);
}

#[test]
fn proc_pid_corpus() {
    assert!(replay("proc_pid", fuzz_targets::proc_pid_text) >= 5);
}

#[test]
fn expect_file_corpus() {
    assert!(replay("expect_file", fuzz_targets::expect_file) >= 10);
}

#[test]
fn cgroup_corpus() {
    assert!(replay("cgroup", fuzz_targets::cgroup_file) >= 10);
}

#[test]
fn kubelet_corpus() {
    assert!(replay("kubelet", fuzz_targets::kubelet_names) >= 2);
}

#[test]
fn btf_corpus() {
    assert!(replay("btf", fuzz_targets::btf_blob) >= 2);
}

#[test]
fn runtime_corpus() {
    assert!(replay("runtime", fuzz_targets::runtime_config) >= 3);
}
