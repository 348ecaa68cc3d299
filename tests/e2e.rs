//! The end-to-end suite on a real container runtime: `tests/e2e/run` starts a private
//! containerd with runc and the CNI bridge, builds the image with `ci/image` and the test
//! stand-ins, and runs the journeys of tests/e2e/suite.py through CRI (an ephemeral container
//! per kubectl debug profile, the node view, the DaemonSet, CI's check, and the plugin's own
//! `POD check` run through a stand-in kubectl backed by CRI). It skips, saying why,
//! where the runtime is not installed or the user is not root; under CI=true that is a failure.
//! `.ci/run` installs the runtime.
// A test: it makes sockets, files and processes freely (clippy.toml keeps them in sys/).
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::path::Path;
use std::process::Command;

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Runs one of the suite's scripts with its output going straight to the terminal (the journeys
/// print what they saw, which is the record of what the runtime really did). Returns false when
/// it skipped.
fn run(test: &str, script: &str, args: &[&str]) -> bool {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let status = Command::new("bash")
        .arg(root.join(script))
        .args(args)
        .current_dir(root)
        .status()
        .unwrap_or_else(|e| panic!("{test}: cannot run {script}: {e}"));
    match status.code() {
        Some(0) => true,
        Some(77) => {
            assert!(
                !ci(),
                "{test}: {script} skipped (its output says why); CI=true, so this is a failure: \
                 .ci/run installs containerd, runc, the CNI plugins, buildah and grpcio"
            );
            eprintln!("SKIP {test}: {script} skipped (see its output above)");
            false
        }
        other => panic!("{test}: {script} failed (exit {other:?}); its output is above"),
    }
}

#[cfg_attr(podports_not_root, ignore = "needs root")]
#[test]
fn e2e_journeys_on_containerd_and_runc() {
    run("e2e_journeys_on_containerd_and_runc", "tests/e2e/run", &[]);
}

/// The plugin <-> e2e agreement, with no runtime: for every ephemeral-container case of the
/// suite, `kubectl-podports --dry-run` still asks `kubectl debug` for the image's podports, the
/// `istio-proxy` target and exactly the security context (kubectl profile + `--custom`) that the
/// case ran under on containerd. Change the plugin, and this fails until the case (and so the
/// real run) says the same.
#[test]
fn plugin_asks_kubectl_debug_for_what_the_e2e_cases_proved() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("python3")
        .arg(root.join("tests/e2e/suite.py"))
        .arg("--agreement")
        .arg("--plugin")
        .arg(root.join("deploy/kubectl-podports"))
        .current_dir(root)
        .output()
        .expect("python3 (the e2e suite's language) must be installed");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "the plugin and the e2e cases disagree:\n{text}"
    );
    assert!(
        text.contains("agreement: ") && text.contains(" passed, 0 failed"),
        "{text}"
    );
}
