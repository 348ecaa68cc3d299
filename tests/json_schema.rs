//! docs/podports.schema.json is the JSON Schema of `-o json`, generated from the types that
//! write it (`podports::render::json::schema`, derived with schemars); this keeps the file
//! equal to them (`PODPORTS_BLESS=1 cargo test --locked --test json_schema` rewrites it) and
//! validates real output against it with a validator (boon): the current namespace's, which
//! needs no privilege, and a simulated pod's in a fresh namespace, which needs root (without
//! it that test skips with a reason, and under CI=true fails).
// A test: it makes sockets, files and processes freely (clippy.toml keeps them in sys/).
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use std::fs;
use std::path::PathBuf;

use common::compare::{assert_exit, podports, settle};
use common::{Netns, Proc, Scratch, install_as, require_root};
use serde_json::{Value, json};

fn schema_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/podports.schema.json")
}

fn generated() -> String {
    let mut text = serde_json::to_string_pretty(&podports::render::json::schema()).unwrap();
    text.push('\n');
    text
}

#[test]
fn the_schema_file_is_generated_from_the_output_types() {
    let got = generated();
    if std::env::var_os("PODPORTS_BLESS").is_some_and(|v| v == "1") {
        fs::write(schema_path(), &got).unwrap();
    }
    let want = fs::read_to_string(schema_path()).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (PODPORTS_BLESS=1 cargo test --locked --test json_schema writes it)",
            schema_path().display()
        )
    });
    assert!(
        got == want,
        "docs/podports.schema.json differs from the types in src/render/json.rs: \
         `PODPORTS_BLESS=1 cargo test --locked --test json_schema` refreshes it"
    );
    let schema: Value = serde_json::from_str(&want).unwrap();
    assert_eq!(
        schema["$schema"], "https://json-schema.org/draft/2020-12/schema",
        "the draft the docs name"
    );
}

/// The compiled schema (from the committed file) and a function that validates against it.
fn validator() -> impl Fn(&Value) -> Result<(), String> {
    let schema: Value =
        serde_json::from_str(&fs::read_to_string(schema_path()).unwrap()).expect("JSON");
    let mut schemas = boon::Schemas::new();
    let mut compiler = boon::Compiler::new();
    compiler
        .add_resource("file:///podports.schema.json", schema)
        .unwrap();
    let index = compiler
        .compile("file:///podports.schema.json", &mut schemas)
        .unwrap_or_else(|e| panic!("the schema does not compile: {e:#}"));
    move |doc| schemas.validate(doc, index).map_err(|e| format!("{e}"))
}

fn output_json(args: &[&str]) -> Value {
    let out = podports(args);
    assert_exit(&out, 0);
    serde_json::from_slice(&out.stdout).expect("one JSON document")
}

/// The validator rejects what the types would not write, so a pass means something.
#[test]
fn the_schema_rejects_documents_the_program_does_not_write() {
    let valid = validator();
    let doc = output_json(&["-o", "json"]);
    valid(&doc).unwrap();
    let socket = json!({
        "proto": "unix", "family": "unix", "state": "LISTEN", "type": "stream",
        "local": {"path": "x"}, "remote": {"peer_inode": null}, "inode": 1, "uid": 0,
        "recv_q": 0, "send_q": 0, "processes": [], "role": null, "peer_role": null,
        "warnings": []
    });
    let with = |socket: Value| {
        let mut d = doc.clone();
        d["sockets"] = json!([socket]);
        d
    };
    valid(&with(socket.clone())).unwrap();
    for (field, bad) in [
        ("proto", json!("sctp")),
        ("state", json!("LISTENING")),
        ("local", json!(null)),
        ("local", json!({"path": "x", "peer_inode": 1})),
        ("remote", json!({"addr": "::", "port": 70000})),
        ("inode", json!(-1)),
        ("processes", json!([{"pid": 1}])),
    ] {
        let mut s = socket.clone();
        s[field] = bad.clone();
        assert!(valid(&with(s)).is_err(), "{field}: {bad} passed");
    }
    let mut missing = socket;
    missing.as_object_mut().unwrap().remove("inode");
    assert!(
        valid(&with(missing)).is_err(),
        "a socket without inode passed"
    );
    let mut no_version = doc.clone();
    no_version.as_object_mut().unwrap().remove("version");
    assert!(valid(&no_version).is_err());
}

/// `podports -o json` of the namespace the test runs in: no privilege needed.
#[test]
fn the_current_namespace_output_is_valid() {
    let doc = output_json(&["-o", "json"]);
    validator()(&doc).unwrap_or_else(|e| panic!("{e}\n{doc:#}"));
    assert!(doc["sockets"].is_array());
}

/// A simulated pod with every shape of socket: TCP v4 and v6 (v6only), a v4-mapped
/// connection, UDP with a mark, TIME_WAIT, unix stream and datagram, named, abstract and
/// unnamed ends, and a holder that lives in another namespace.
#[cfg_attr(podports_not_root, ignore = "needs root")]
#[test]
fn a_simulated_pods_output_is_valid() {
    if !require_root("a_simulated_pods_output_is_valid") {
        return;
    }
    let ns = Netns::new();
    let other = Netns::new();
    ns.add_addr("10.0.0.5/32");
    let root = Scratch::new();
    let chdir = format!("chdir={}", root.path().display());
    let agent = Proc::start(
        &ns,
        &install_as("pilot-agent"),
        &[
            chdir.as_str(),
            "tcp-listen=[::]:15020",
            "udp-bind=127.0.0.1:15053,mark=1337",
            "mkdir=etc/istio/proxy",
            "unix-listen=etc/istio/proxy/XDS",
            "unix-listen=@podports-abstract",
            "unix-connect=etc/istio/proxy/XDS",
            "tcp-connect=127.0.0.1:15020",
        ],
    );
    let _app = Proc::start(
        &ns,
        &install_as("myapp"),
        &[
            "tcp-listen=10.0.0.5:9080",
            "tcp-timewait=10.0.0.5:9080",
            &format!("setns={}", other.path().display()),
            "tcp-listen=0.0.0.0:8080",
        ],
    );
    settle(&ns);
    let valid = validator();
    let pid = agent.pid().to_string();
    for args in [
        &["--netns", ns.name(), "-o", "json"][..],
        &["--pid", &pid, "--source", "proc", "-o", "json"][..],
        &["--netns", other.name(), "-o", "json"][..],
    ] {
        let doc = output_json(args);
        valid(&doc).unwrap_or_else(|e| panic!("{args:?}: {e}\n{doc:#}"));
    }
    let doc = output_json(&["--netns", ns.name(), "-o", "json"]);
    let sockets = doc["sockets"].as_array().unwrap();
    // The docs' claims about unix ends, checked against the output.
    assert!(
        sockets
            .iter()
            .any(|s| s["proto"] == "unix" && s["local"] == json!({"path": null})),
        "an unnamed unix end is {{\"path\": null}}: {doc:#}"
    );
    assert!(
        sockets
            .iter()
            .any(|s| s["local"] == json!({"path": "@podports-abstract", "abstract": true})),
        "{doc:#}"
    );
    assert!(
        sockets
            .iter()
            .any(|s| s["proto"] == "unix" && s["remote"] == json!({"peer_inode": null})),
        "a unix listener's remote is {{\"peer_inode\": null}}: {doc:#}"
    );
    assert!(
        sockets
            .iter()
            .any(|s| s["state"] == "TIME_WAIT" && s["uid"].is_null())
    );
}
