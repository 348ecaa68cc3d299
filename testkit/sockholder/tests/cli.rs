//! Builds the helper for the root package's tests (an integration test makes `cargo test` link
//! the binary into target/<profile>/) and pins its usage contract: bad arguments exit 2.
// A test: it makes sockets, files and processes freely (clippy.toml keeps them in sys/).
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::process::Command;

#[test]
fn bad_op_is_a_usage_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_podports-sockholder"))
        .args(["probe", "no-such-op=1"])
        .output()
        .expect("run podports-sockholder");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(!out.stderr.is_empty(), "a usage error says why");
}
