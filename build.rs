//! Marks a build made by a user other than root (`cfg(podports_not_root)`), so that the tests
//! that need root are `#[ignore]`d there and cargo's summary counts them ("N ignored") instead
//! of passing them silently. Under `CI=true` the mark is never set: there a missing privilege
//! fails the test (tests/common's `require_root`). Reads /proc/self/status; no dependency.
// A build script, not the library: reading a file here is its job (clippy.toml keeps I/O in sys/).
#![allow(clippy::disallowed_methods)]

fn main() {
    println!("cargo::rustc-check-cfg=cfg(podports_not_root)");
    // A different user (sudo) or CI setting builds again.
    for var in ["CI", "USER", "SUDO_UID", "HOME"] {
        println!("cargo::rerun-if-env-changed={var}");
    }
    println!("cargo::rerun-if-changed=build.rs");
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    if !ci && !effective_uid_is_root() {
        println!("cargo::rustc-cfg=podports_not_root");
    }
}

fn effective_uid_is_root() -> bool {
    // "Uid:\treal\teffective\tsaved\tfs"; unreadable means we cannot tell: assume root, so
    // nothing is ignored and `require_root` decides at run time as before.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|v| v.split_whitespace().nth(1).map(|e| e == "0"))
        })
        .unwrap_or(true)
}
