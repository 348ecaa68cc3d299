//! The README's first code block, run as a newcomer runs it: its build-and-run command, as
//! written, on a fresh `git clone` of this repository (issue 11: `cargo run` once exited 101
//! because two binaries were installable). The test command itself is what `.ci/run` runs.
// A test: it makes sockets, files and processes freely (clippy.toml keeps them in sys/).
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The lines of the README's first ```sh block, comments stripped.
fn first_block(readme: &str) -> Vec<String> {
    let mut lines = readme.lines().skip_while(|l| l.trim() != "```sh").skip(1);
    let mut out = Vec::new();
    for l in lines.by_ref() {
        if l.trim() == "```" {
            return out;
        }
        let cmd = l.split(" #").next().unwrap_or("").trim();
        if !cmd.is_empty() {
            out.push(cmd.to_string());
        }
    }
    panic!("README.md: the first ```sh block is never closed");
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_first_block_is_the_run_command_then_the_test_command() {
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README.md");
    let block = first_block(&readme);
    assert_eq!(
        block.first().map(String::as_str),
        Some("cargo run --locked --release"),
        "{block:?}"
    );
    assert_eq!(
        block.get(1).map(String::as_str),
        Some("cargo test --locked"),
        "{block:?}"
    );
    let ci = std::fs::read_to_string(root().join(".ci/run")).expect(".ci/run");
    assert!(
        ci.contains("README.md"),
        ".ci/run must take its test command from the README"
    );
}

/// Skips (visibly) where there is no git or no repository, except under CI=true, where it fails.
fn git_clone(to: &Path) -> bool {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let out = Command::new("git")
        .arg("clone")
        .arg("--quiet")
        .arg(root())
        .arg(to)
        .output();
    match out {
        Ok(o) if o.status.success() => true,
        other => {
            let why = format!("cannot git clone {}: {other:?}", root().display());
            assert!(!ci, "{why} (CI=true: this must run)");
            eprintln!("SKIP readme_run_command_works_on_a_fresh_clone: {why}");
            false
        }
    }
}

#[test]
fn readme_run_command_works_on_a_fresh_clone() {
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README.md");
    let cmd = first_block(&readme)
        .into_iter()
        .next()
        .expect("a first command");
    let scratch = std::env::temp_dir().join(format!("podports-readme-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    let clone = scratch.join("podports");
    if !git_clone(&clone) {
        return;
    }
    // The build goes to a directory kept under this build's own target/, so that a second run
    // is incremental; the command and its working directory are the README's.
    let target = root().join("target").join("readme-clone");
    let out = Command::new("sh")
        .arg("-c")
        .arg(&cmd)
        .current_dir(&clone)
        .env("CARGO_TARGET_DIR", &target)
        .env_remove("CARGO_MANIFEST_DIR")
        .output()
        .expect("run sh");
    let _ = std::fs::remove_dir_all(&scratch);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "`{cmd}` on a fresh clone:\n{stderr}"
    );
    let header = stdout.lines().next().unwrap_or("");
    assert!(
        header.contains("PROTO") && header.contains("LOCAL"),
        "`{cmd}` printed no listing:\n{stdout}\n{stderr}"
    );
}
