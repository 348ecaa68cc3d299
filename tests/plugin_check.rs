//! `kubectl podports POD check` from outside the cluster (docs/ci.md), against the stand-in
//! cluster of tests/common/plugin.rs, whose debug container is a REAL podports in a test netns:
//! local --expect files sent and named in errors, --junit written here byte for byte, the exit
//! code podports' own also when attach says 0, and exit 3 with the reason when the container
//! cannot be added, pulled, started or fed. Needs root (the netns).
// A test: it makes sockets, files and processes freely (clippy.toml keeps them in sys/).
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::fs;
use std::process::Command;

mod common;

use common::plugin::{BAD, Cluster, FAILS, PASSES, pod_netns, text};

#[cfg_attr(podports_not_root, ignore = "needs root")]
#[test]
fn check_sends_local_files_writes_junit_here_and_exits_with_podports_code() {
    if !common::require_root(
        "check_sends_local_files_writes_junit_here_and_exits_with_podports_code",
    ) {
        return;
    }
    let (ns, _app) = pod_netns();
    let c = Cluster::new("run", "run");
    c.file("deploy/podports.yaml", PASSES);
    c.file("deploy/admin.yaml", FAILS);
    c.file("deploy/bad.yaml", BAD);
    c.file("reports/.keep", "");

    // Pass: exit 0, the report shown, the JUnit here, byte-exact what podports wrote.
    let out = c.run(
        &ns,
        &[
            "-n",
            "shop",
            "productpage-v1",
            "check",
            "--expect",
            "deploy/podports.yaml",
            "--junit",
            "reports/podports.xml",
        ],
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("deploy/podports.yaml:2"), "{stdout}");
    assert!(
        !stdout.contains("podports junit"),
        "the frame is cut out of the report: {stdout}"
    );
    let (xml, tests, failures) = c.junit("reports/podports.xml");
    assert_eq!((tests, failures), (1, 0), "{xml}");
    assert!(xml.contains(r#"file="deploy/podports.yaml""#), "{xml}");
    // Byte for byte what podports writes itself with --junit FILE.
    let direct = Command::new("nsenter")
        .arg(format!("--net={}", ns.path().display()))
        .args(["--", env!("CARGO_BIN_EXE_podports"), "check"])
        .args(["--expect", "deploy/podports.yaml", "--junit", "direct.xml"])
        .current_dir(&c.dir)
        .output()
        .unwrap();
    assert_eq!(direct.status.code(), Some(0), "{}", text(&direct.stderr));
    assert_eq!(xml, fs::read_to_string(c.dir.join("direct.xml")).unwrap());
    // podports saw the file under its local name, from the bundle the plugin sent.
    let calls = c.calls();
    let debug = calls
        .iter()
        .find(|l| l.contains("[debug]"))
        .expect("a debug call");
    assert!(
        debug.contains("[debug][-i][--attach=false][--container=podports-check-")
            && debug.contains("[productpage-v1][--namespace=shop]")
            && debug.contains("[--profile=restricted][--quiet][--custom=/dev/fd/3]")
            && debug.ends_with(
                "[--][podports][check][--expect][deploy/podports.yaml][--junit][-][--expect-bundle][-]"
            ),
        "{debug}"
    );
    let name = fs::read_to_string(c.dir.join("ec_name")).unwrap();
    assert!(
        calls.iter().any(
            |l| l == &format!("[attach][productpage-v1][--namespace=shop][-c][{name}][-i][-q]")
        ),
        "{calls:?}"
    );
    assert!(
        calls
            .iter()
            .any(|l| l == &format!("[logs][productpage-v1][--namespace=shop][-c][{name}]")),
        "{calls:?}"
    );

    // Fail: exit 1, the failing line of the local file named, the JUnit says it failed.
    c.reset();
    let out = c.run(
        &ns,
        &[
            "productpage-v1",
            "check",
            "--expect",
            "deploy/podports.yaml",
            "--expect=deploy/admin.yaml",
            "--junit=out.xml",
        ],
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("FAIL") && stdout.contains("deploy/admin.yaml:3"),
        "{stdout}"
    );
    let (xml, tests, failures) = c.junit("out.xml");
    assert_eq!((tests, failures), (2, 1), "{xml}");
    assert!(xml.contains("nothing listens on tcp/9090"), "{xml}");

    // `--junit -` asked of the plugin: the frame is podports' output, left as it is.
    c.reset();
    let out = c.run(
        &ns,
        &[
            "productpage-v1",
            "check",
            "--expect",
            "deploy/podports.yaml",
            "--junit",
            "-",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("----- podports junit v1 begin bytes=")
            && stdout.ends_with("----- podports junit v1 end -----\n"),
        "{stdout}"
    );

    // Bad input: exit 2, the error names the local file, line and column; no JUnit.
    c.reset();
    let out = c.run(
        &ns,
        &[
            "productpage-v1",
            "check",
            "--expect",
            "deploy/bad.yaml",
            "--junit",
            "bad.xml",
        ],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("podports: deploy/bad.yaml:3:5: unknown field `bogus`"),
        "{stderr}"
    );
    assert!(stderr.contains("bad.xml not written"), "{stderr}");
    assert!(!c.dir.join("bad.xml").exists());

    // A file that is not here, or too big: exit 2 before the cluster is asked anything.
    c.reset();
    let out = c.run(
        &ns,
        &["productpage-v1", "check", "--expect", "deploy/typo.yaml"],
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("--expect deploy/typo.yaml: no such file here"),
        "{stderr}"
    );
    c.file("big.yaml", &"#".repeat(1024 * 1024 + 1));
    let out = c.run(&ns, &["productpage-v1", "check", "--expect", "big.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("--expect big.yaml: 1048577 bytes, more than the 1 MiB"),
        "{stderr}"
    );
    assert!(c.calls().is_empty(), "{:?}", c.calls());
}

#[cfg_attr(podports_not_root, ignore = "needs root")]
#[test]
fn the_verdict_comes_from_the_pod_status_when_attach_says_0() {
    if !common::require_root("the_verdict_comes_from_the_pod_status_when_attach_says_0") {
        return;
    }
    let (ns, _app) = pod_netns();
    let c = Cluster::new("attach0", "attach0");
    c.file("admin.yaml", FAILS);
    // `--wait` through the plugin: podports polls for 2s, then fails; the plugin waits for it.
    let out = c.run(
        &ns,
        &[
            "--debug-timeout",
            "10s",
            "productpage-v1",
            "check",
            "--expect",
            "admin.yaml",
            "--wait",
            "2s",
            "--junit",
            "out.xml",
        ],
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    let (xml, tests, failures) = c.junit("out.xml");
    assert_eq!((tests, failures), (1, 1), "{xml}");
    // podports waited its 2s before it gave its verdict.
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let time: f64 = doc
        .root_element()
        .attribute("time")
        .unwrap()
        .parse()
        .unwrap();
    assert!(time >= 2.0, "{xml}");
    assert!(stdout.contains("admin.yaml:3"), "{stdout}");
}

#[cfg_attr(podports_not_root, ignore = "needs root")]
#[test]
fn an_unpullable_image_ends_in_exit_3_within_the_timeout() {
    if !common::require_root("an_unpullable_image_ends_in_exit_3_within_the_timeout") {
        return;
    }
    let (ns, _app) = pod_netns();
    let c = Cluster::new("unpullable", "unpullable");
    c.file("podports.yaml", PASSES);
    let out = c.run(
        &ns,
        &[
            "--debug-timeout=2s",
            "--image",
            "registry.local/nope:1",
            "p",
            "check",
            "--expect",
            "podports.yaml",
            "--junit",
            "out.xml",
        ],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("did not start within 2s (--debug-timeout): ErrImagePull: failed to pull"),
        "{stderr}"
    );
    assert!(stderr.contains("registry.local/nope:1"), "{stderr}");
    assert!(!c.dir.join("out.xml").exists());
    assert!(
        c.calls().iter().all(|l| !l.contains("[attach]")),
        "{:?}",
        c.calls()
    );
}

#[cfg_attr(podports_not_root, ignore = "needs root")]
#[test]
fn a_refused_debug_container_ends_in_exit_3_with_the_admission_message() {
    if !common::require_root("a_refused_debug_container_ends_in_exit_3_with_the_admission_message")
    {
        return;
    }
    let (ns, _app) = pod_netns();
    let c = Cluster::new("refuse", "refuse");
    c.file("podports.yaml", PASSES);
    let out = c.run(
        &ns,
        &[
            "--root",
            "p",
            "check",
            "--expect",
            "podports.yaml",
            "--junit",
            "out.xml",
        ],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("kubectl debug could not add podports' container to pod p"),
        "{stderr}"
    );
    assert!(
        stderr.contains("violates PodSecurity \"baseline:latest\""),
        "{stderr}"
    );
    assert!(!c.dir.join("out.xml").exists());
    // A pod that is not there: exit 3, kubectl's words.
    c.reset();
    let _ = fs::remove_file(c.dir.join("pod-head.json"));
    fs::write(c.dir.join("mode"), "run").unwrap();
    let out = c.run(&ns, &["p", "check", "--profile", "istio-sidecar"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("NotFound"), "{stderr}");

    // The container dies by a signal: not a verdict of podports', exit 3.
    let c = Cluster::new("crash", "crash");
    c.file("podports.yaml", PASSES);
    let out = c.run(
        &ns,
        &[
            "p",
            "check",
            "--expect",
            "podports.yaml",
            "--junit",
            "out.xml",
        ],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("out of memory"), "{stderr}");
    assert!(
        stderr.contains("podports ended with exit code 137 (Error)"),
        "{stderr}"
    );
    assert!(!c.dir.join("out.xml").exists());

    // The files cannot be sent (attach fails): podports never starts checking; exit 3 at the
    // timeout, with attach's words.
    let c = Cluster::new("noattach", "noattach");
    c.file("podports.yaml", PASSES);
    let out = c.run(
        &ns,
        &[
            "--debug-timeout",
            "1s",
            "p",
            "check",
            "--expect",
            "podports.yaml",
        ],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("did not end within 1s (--wait plus --debug-timeout)")
            && stderr.contains("kubectl attach: error: unable to upgrade connection"),
        "{stderr}"
    );
}
