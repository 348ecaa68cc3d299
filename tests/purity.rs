//! Purity is checked by a tool (ARCHITECTURE.md): clippy.toml disallows file, socket, process
//! and namespace I/O, and only `src/sys/` allows it. These tests make sure the rule still
//! bites: clippy run on a small crate laid out like ours, with our clippy.toml, must flag each
//! kind of I/O outside `sys` and nothing inside it; and no module of ours but `sys` may allow
//! the lints. The layers too: no `crate::` path under src/ goes up ARCHITECTURE.md's layers,
//! and no two modules import each other.
// A test: it makes files and runs cargo (clippy.toml keeps them in sys/).
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const LINTS: [&str; 2] = ["disallowed_methods", "disallowed_types"];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// One call per kind of I/O the rule is for, each on its own line so that clippy's report
/// names each; `stage.rs` and `sys/mod.rs` of the probe crate both carry it.
const IO_CALLS: &[(&str, &str)] = &[
    (
        "std::fs::read",
        "let _ = std::fs::read(\"/proc/self/stat\");",
    ),
    (
        "std::fs::write",
        "let _ = std::fs::write(\"/tmp/x\", b\"\");",
    ),
    ("std::fs::read_dir", "let _ = std::fs::read_dir(\"/proc\");"),
    (
        "std::fs::File::open",
        "let _ = std::fs::File::open(\"/etc/hosts\");",
    ),
    (
        "std::path::Path::exists",
        "let _ = std::path::Path::new(\"/x\").exists();",
    ),
    (
        "std::net::TcpStream::connect",
        "let _ = std::net::TcpStream::connect(\"127.0.0.1:1\");",
    ),
    (
        "std::net::UdpSocket::bind",
        "let _ = std::net::UdpSocket::bind(\"127.0.0.1:0\");",
    ),
    (
        "std::os::unix::net::UnixStream::connect",
        "let _ = std::os::unix::net::UnixStream::connect(\"/x\");",
    ),
    (
        "std::process::Command::new",
        "let _ = std::process::Command::new(\"ss\").output();",
    ),
];

fn io_body() -> String {
    let mut body = String::from("pub fn io() {\n");
    for (_, call) in IO_CALLS {
        body.push_str("    ");
        body.push_str(call);
        body.push('\n');
    }
    body.push_str("}\n\npub fn held(_f: &std::fs::File, _c: &std::process::Command) {}\n");
    body
}

/// The inner attribute our `src/sys/mod.rs` carries, taken from the file itself.
fn sys_allowance() -> String {
    let text = fs::read_to_string(root().join("src/sys/mod.rs")).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("#![allow(") && LINTS.iter().all(|lint| l.contains(lint)))
        .expect("src/sys/mod.rs allows clippy::disallowed_methods and disallowed_types");
    line.to_string()
}

fn clippy_available() -> bool {
    Command::new(env!("CARGO"))
        .args(["clippy", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn clippy_flags_each_kind_of_io_outside_sys_and_none_inside() {
    if !clippy_available() {
        assert!(
            std::env::var_os("CI").is_none_or(|v| v != "true"),
            "CI=true but `cargo clippy` is not installed: the purity rule cannot be checked"
        );
        eprintln!("SKIPPED: `cargo clippy` is not installed; the purity rule is not checked");
        return;
    }
    let dir = std::env::temp_dir().join(format!("podports-purity-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("src/sys")).unwrap();
    fs::write(
        dir.join("Cargo.toml"),
        "[package]\nname = \"purity-probe\"\nversion = \"0.0.0\"\nedition = \"2024\"\n\n\
         [workspace]\n",
    )
    .unwrap();
    fs::copy(root().join("clippy.toml"), dir.join("clippy.toml")).unwrap();
    fs::write(dir.join("src/lib.rs"), "pub mod stage;\npub mod sys;\n").unwrap();
    fs::write(dir.join("src/stage.rs"), io_body()).unwrap();
    fs::write(
        dir.join("src/sys/mod.rs"),
        format!("{}\n\n{}", sys_allowance(), io_body()),
    )
    .unwrap();

    let out = Command::new(env!("CARGO"))
        .args(["clippy", "--offline", "--quiet", "--message-format=short"])
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", dir.join("target"))
        .env_remove("CLIPPY_CONF_DIR")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stderr).into_owned();
    let _ = fs::remove_dir_all(&dir);
    assert!(out.status.success(), "cargo clippy failed:\n{report}");

    assert!(
        !report.contains("does not refer"),
        "clippy.toml names a path clippy cannot find:\n{report}"
    );
    for (path, _) in IO_CALLS {
        let flagged = format!("use of a disallowed method `{path}`");
        assert!(
            report
                .lines()
                .any(|l| l.starts_with("src/stage.rs:") && l.contains(&flagged)),
            "clippy did not flag {path} outside sys:\n{report}"
        );
    }
    for ty in ["std::fs::File", "std::process::Command"] {
        let flagged = format!("use of a disallowed type `{ty}`");
        assert!(
            report
                .lines()
                .any(|l| l.starts_with("src/stage.rs:") && l.contains(&flagged)),
            "clippy did not flag the type {ty} outside sys:\n{report}"
        );
    }
    assert!(
        !report.lines().any(|l| l.starts_with("src/sys/")),
        "sys/'s allowance did not hold:\n{report}"
    );
}

#[test]
fn only_sys_allows_the_io_lints() {
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    assert!(
        files.len() > 20,
        "found only {} files under src/",
        files.len()
    );
    let sys = root().join("src/sys");
    let lib = root().join("src/lib.rs");
    let mut offenders = Vec::new();
    for file in &files {
        if file.starts_with(&sys) {
            continue;
        }
        let text = fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            if !LINTS.iter().any(|lint| line.contains(lint)) {
                continue;
            }
            // lib.rs lets the unit tests (cfg(test) only) make their fixtures anywhere.
            let test_only = file == &lib && line.starts_with("#![cfg_attr(test, allow(");
            if !test_only {
                offenders.push(format!("{}:{}: {line}", file.display(), n + 1));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "only src/sys/ may allow file, socket and process I/O; move the I/O into sys:\n{}",
        offenders.join("\n")
    );
}

#[test]
fn clippy_toml_covers_files_sockets_and_processes() {
    let text = fs::read_to_string(root().join("clippy.toml")).unwrap();
    let table: toml::Table = text.parse().unwrap();
    let paths = |key: &str| -> Vec<String> {
        table[key]
            .as_array()
            .unwrap_or_else(|| panic!("clippy.toml has no {key} list"))
            .iter()
            .map(|e| e["path"].as_str().unwrap().to_string())
            .collect()
    };
    let methods = paths("disallowed-methods");
    let types = paths("disallowed-types");
    for must in [
        "std::fs::read",
        "std::fs::read_to_string",
        "std::fs::write",
        "std::fs::read_dir",
        "std::fs::metadata",
        "std::fs::File::open",
        "std::fs::File::create",
        "std::fs::OpenOptions::open",
        "std::net::TcpStream::connect",
        "std::net::UdpSocket::bind",
        "std::os::unix::net::UnixStream::connect",
        "std::process::Command::new",
        "nix::fcntl::open",
        "nix::sys::socket::socket",
        "nix::sched::setns",
        "netlink_sys::Socket::new",
    ] {
        assert!(
            methods.iter().any(|m| m == must),
            "clippy.toml lets {must} through"
        );
    }
    for must in [
        "std::fs::File",
        "std::net::TcpStream",
        "std::process::Command",
    ] {
        assert!(
            types.iter().any(|t| t == must),
            "clippy.toml lets the type {must} through"
        );
    }
}

/// The layers of ARCHITECTURE.md ("What may call what"), bottom first: a module may name
/// (`crate::x`) only modules of its own layer or below, and no two may name each other, even
/// through others. `main.rs` (the binary, on top of everything) and `lib.rs` (which declares
/// them) are not in it.
const LAYERS: &[&[&str]] = &[
    &["model", "error", "escape", "duration"],
    &["parse", "catalog", "classify", "unowned"],
    &["sys"],
    &["pods", "request", "listing"],
    &["resolve", "dump", "attribute", "place", "annotate"],
    &["inspect", "sweep"],
    &["check", "watch", "probe"],
    &["render"],
    &["cli", "plan", "generate"],
    &["command", "fuzz_targets"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

/// The top-level modules `text` names as `crate::x` or `crate::{x, y::z}`, outside comments.
fn named_modules(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for line in text.lines() {
        let code = line.trim_start();
        if code.starts_with("//") {
            continue;
        }
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            let before = rest[..at].chars().next_back();
            rest = &rest[at + "crate::".len()..];
            // `podports_crate::x` or `my_crate::x` are not ours.
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue;
            }
            if let Some(group) = rest.strip_prefix('{') {
                // Top-level names of the group: those at brace depth 0.
                let mut depth = 0;
                let mut name = String::new();
                let mut at_start = true;
                for c in group.chars() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => break,
                        '}' => depth -= 1,
                        ',' if depth == 0 => at_start = true,
                        c if depth == 0 && at_start && (c.is_alphanumeric() || c == '_') => {
                            name.push(c)
                        }
                        _ if !name.is_empty() => {
                            found.push(std::mem::take(&mut name));
                            at_start = false;
                        }
                        _ => {}
                    }
                }
                if !name.is_empty() {
                    found.push(name);
                }
            } else {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    found.push(name);
                }
            }
        }
    }
    found
}

#[test]
fn the_module_parser_finds_plain_and_grouped_paths_not_comments() {
    let text = "use crate::model::Socket;\n\
                use crate::{escape::escape, render::{json, table}};\n\
                // crate::plan in a comment\n\
                let x = crate::sys::files::read(p);\n\
                use other_crate::thing;\n";
    assert_eq!(
        named_modules(text),
        ["model", "escape", "render", "sys"],
        "one name per module named, in order"
    );
}

/// Which top-level module a file under src/ belongs to (`None`: lib.rs, main.rs).
fn module_of(file: &Path) -> Option<String> {
    let rel = file.strip_prefix(root().join("src")).unwrap();
    let first = rel.components().next()?.as_os_str().to_str()?;
    match first {
        "lib.rs" | "main.rs" => None,
        f => Some(f.trim_end_matches(".rs").to_string()),
    }
}

/// Module -> (module it names, the file that does), over every file under src/.
fn imports() -> Vec<(String, String, String)> {
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    files.sort();
    let mut edges = Vec::new();
    for file in &files {
        let Some(from) = module_of(file) else {
            continue;
        };
        let text = fs::read_to_string(file).unwrap();
        let shown = file.strip_prefix(root()).unwrap().display().to_string();
        for to in named_modules(&text) {
            if to != from {
                edges.push((from.clone(), to, shown.clone()));
            }
        }
    }
    edges
}

#[test]
fn no_module_imports_one_above_it() {
    let edges = imports();
    assert!(edges.len() > 100, "found only {} imports", edges.len());
    let mut unplaced: Vec<String> = Vec::new();
    let mut upward: Vec<String> = Vec::new();
    for (from, to, file) in &edges {
        for m in [from, to] {
            if layer_of(m).is_none() && !unplaced.contains(m) {
                unplaced.push(m.clone());
            }
        }
        if let (Some(f), Some(t)) = (layer_of(from), layer_of(to))
            && t > f
        {
            upward.push(format!(
                "{file}: {from} (layer {}) imports {to} (layer {})",
                f + 1,
                t + 1
            ));
        }
    }
    upward.dedup();
    assert!(
        unplaced.is_empty(),
        "modules in no layer: {unplaced:?}; place them in ARCHITECTURE.md's \"What may call \
         what\" and in LAYERS here"
    );
    assert!(
        upward.is_empty(),
        "imports that go up the layers (ARCHITECTURE.md, \"What may call what\"):\n{}",
        upward.join("\n")
    );
}

#[test]
fn no_two_modules_import_each_other() {
    let edges = imports();
    let mut graph: std::collections::BTreeMap<&str, std::collections::BTreeSet<&str>> =
        Default::default();
    for (from, to, _) in &edges {
        graph.entry(from).or_default().insert(to);
    }
    // Every cycle, found from each module by a depth-first walk over what it names.
    let mut cycles = Vec::new();
    for start in graph.keys() {
        let mut stack = vec![(*start, vec![*start])];
        let mut seen = std::collections::BTreeSet::new();
        while let Some((at, path)) = stack.pop() {
            for next in graph.get(at).into_iter().flatten() {
                if next == start {
                    let mut cycle = path.clone();
                    cycle.push(next);
                    cycles.push(cycle.join(" -> "));
                } else if seen.insert(*next) {
                    let mut longer = path.clone();
                    longer.push(next);
                    stack.push((next, longer));
                }
            }
        }
    }
    let files = |from: &str, to: &str| -> Vec<&str> {
        edges
            .iter()
            .filter(|(f, t, _)| f == from && t == to)
            .map(|(_, _, file)| file.as_str())
            .collect()
    };
    assert!(
        cycles.is_empty(),
        "modules that import each other:\n{}\n(first link named in {:?})",
        cycles.join("\n"),
        cycles
            .first()
            .and_then(|c| {
                let mut it = c.split(" -> ");
                Some(files(it.next()?, it.next()?))
            })
            .unwrap_or_default()
    );
}

#[test]
fn architecture_md_lists_the_same_layers() {
    let text = fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
    let section = text
        .split("## What may call what")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("ARCHITECTURE.md has a \"What may call what\" section");
    // `N. `a`, `b/`, ...: what they are`: the names before the first colon.
    let listed: Vec<Vec<String>> = section
        .lines()
        .filter(|l| {
            l.split_once(". ")
                .is_some_and(|(n, _)| n.parse::<u32>().is_ok())
        })
        .map(|l| {
            let head = l.split_once(": ").map_or(l, |(h, _)| h);
            head.split('`')
                .skip(1)
                .step_by(2)
                .map(|name| name.trim_end_matches('/').to_string())
                .collect()
        })
        .collect();
    let ours: Vec<Vec<String>> = LAYERS
        .iter()
        .map(|l| l.iter().map(|m| m.to_string()).collect())
        .collect();
    assert_eq!(
        listed, ours,
        "ARCHITECTURE.md's layers and this test's LAYERS must agree"
    );
}
