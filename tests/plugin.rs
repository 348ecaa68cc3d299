//! The kubectl plugin (deploy/kubectl-podports) against a stand-in `kubectl` on PATH, written
//! by each test into its own directory: it records every call, serves a pod's JSON for
//! `kubectl get pod -o json` and a client version for `kubectl version --client -o json`, and
//! for `kubectl debug` prints its arguments and what fd 3 (`--custom=/dev/fd/3`) holds. The
//! generated command is checked for each way of choosing the user: the uid found in the pod
//! spec, not found, Istio's default for istio-proxy, `--root`, `--run-as`, an old kubectl.
//! Needs no root.
// A test: it makes sockets, files and processes freely (clippy.toml keeps them in sys/).
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};

mod common;

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn image() -> String {
    format!("ghcr.io/podports/podports:{VERSION}")
}

const FAKE_KUBECTL: &str = r#"#!/bin/sh
# A stand-in kubectl: records each call, one line of [arg]s, in $FAKE_DIR/calls.
line=
for a in "$@"; do line="$line[$a]"; done
printf '%s\n' "$line" >> "$FAKE_DIR/calls"
sub=
for a in "$@"; do
  case $a in --*) ;; *) sub=$a; break ;; esac
done
case $sub in
  version)
    [ -f "$FAKE_DIR/version" ] || exit 1
    printf '{\n  "clientVersion": {\n    "major": "1",\n    "gitVersion": "%s",\n    "platform": "linux/amd64"\n  },\n  "kustomizeVersion": "v5.0.4"\n}\n' "$(cat "$FAKE_DIR/version")"
    ;;
  get)
    if [ -f "$FAKE_DIR/pod.json" ]; then cat "$FAKE_DIR/pod.json"; exit 0; fi
    echo 'Error from server (NotFound): pods "p" not found' >&2
    exit 1
    ;;
  debug)
    for a in "$@"; do printf '[%s]\n' "$a"; done
    if [ -r /dev/fd/3 ]; then printf 'fd3=%s\n' "$(cat /dev/fd/3)"; fi
    exit 7
    ;;
esac
"#;

/// A directory with the stand-in kubectl, a pod (or none) and a kubectl version.
struct Fake {
    dir: PathBuf,
}

impl Fake {
    fn new(name: &str, pod: Option<&Value>, version: &str) -> Fake {
        let dir =
            std::env::temp_dir().join(format!("podports-plugin-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let kubectl = dir.join("kubectl");
        fs::write(&kubectl, FAKE_KUBECTL).unwrap();
        fs::set_permissions(&kubectl, fs::Permissions::from_mode(0o755)).unwrap();
        if let Some(pod) = pod {
            // Pretty, as kubectl prints it.
            fs::write(
                dir.join("pod.json"),
                serde_json::to_string_pretty(pod).unwrap(),
            )
            .unwrap();
        }
        fs::write(dir.join("version"), version).unwrap();
        Fake { dir }
    }

    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let path_env = format!(
            "{}:{}",
            self.dir.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut cmd =
            Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kubectl-podports"));
        cmd.args(args)
            .stdin(Stdio::null())
            .env_remove("PODPORTS_IMAGE")
            .env_remove("KUBECTL_DEBUG_CUSTOM_PROFILE")
            .env("PATH", path_env)
            .env("FAKE_DIR", &self.dir);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().expect("run deploy/kubectl-podports")
    }

    /// `--dry-run ARGS`: (the printed command, the --custom JSON if any, stderr).
    fn dry_run(&self, args: &[&str]) -> (String, Option<Value>, String) {
        let mut all = vec!["--dry-run"];
        all.extend_from_slice(args);
        let out = self.run(&all, &[]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            text(&out.stderr)
        );
        let line = text(&out.stdout);
        let line = line.strip_suffix('\n').expect("one line").to_string();
        match line.split_once(" 3<<<'") {
            Some((cmd, custom)) => {
                let custom = custom.strip_suffix('\'').expect("quoted JSON");
                (
                    cmd.to_string(),
                    Some(serde_json::from_str(custom).unwrap_or_else(|e| panic!("{custom}: {e}"))),
                    text(&out.stderr),
                )
            }
            None => (line, None, text(&out.stderr)),
        }
    }

    fn calls(&self) -> Vec<String> {
        fs::read_to_string(self.dir.join("calls"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// A pod as the API server returns it: an app and an istio-proxy container (in `containers`,
/// or in `initContainers` as a native sidecar), each with the given securityContext, and
/// annotations whose strings hold JSON-looking text (the reader must not be fooled).
fn pod(pod_sc: Value, proxy_sc: Value, native_sidecar: bool) -> Value {
    let mut proxy = json!({
        "name": "istio-proxy",
        "image": "docker.io/istio/proxyv2:1.24.0",
        "args": ["proxy", "sidecar", "--domain", "$(POD_NAMESPACE).svc.cluster.local"],
        "ports": [{"containerPort": 15090, "name": "http-envoy-prom", "protocol": "TCP"}],
    });
    if !proxy_sc.is_null() {
        proxy["securityContext"] = proxy_sc;
    }
    let app = json!({
        "name": "productpage",
        "image": "docker.io/istio/examples-bookinfo-productpage-v1:1.20.2",
        "ports": [{"containerPort": 9080, "protocol": "TCP"}],
        "securityContext": {"runAsUser": 1000},
    });
    let mut spec = json!({
        "containers": [app],
        "serviceAccountName": "bookinfo-productpage",
    });
    if native_sidecar {
        proxy["restartPolicy"] = json!("Always");
        spec["initContainers"] = json!([{"name": "istio-validation", "image": "x",
                                         "securityContext": {"runAsUser": 7}}, proxy]);
    } else if let Some(c) = spec["containers"].as_array_mut() {
        c.push(proxy);
    }
    if !pod_sc.is_null() {
        spec["securityContext"] = pod_sc;
    }
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "productpage-v1",
            "namespace": "shop",
            "annotations": {
                "sidecar.istio.io/status": "{\"initContainers\":[\"istio-init\"],\"containers\":[\"istio-proxy\"],\"runAsUser\":0}",
                "odd": "a \\\" b ] } , : [ {",
            },
        },
        "spec": spec,
        "status": {"phase": "Running", "containerStatuses": [{"name": "istio-proxy", "ready": true}]},
    })
}

/// The securityContext Pod Security "restricted" admits for a container (v1.30 rules):
/// runAsNonRoot true, a non-zero runAsUser, allowPrivilegeEscalation false, every capability
/// dropped (none added but NET_BIND_SERVICE), seccomp RuntimeDefault or Localhost, not
/// privileged.
fn assert_restricted(custom: &Value, uid: u64, gid: u64) {
    let sc = &custom["securityContext"];
    assert_eq!(custom.as_object().map(|o| o.len()), Some(1), "{custom}");
    assert_eq!(sc["runAsUser"], json!(uid), "{custom}");
    assert_eq!(sc["runAsGroup"], json!(gid), "{custom}");
    assert_ne!(sc["runAsUser"], json!(0), "{custom}");
    assert_eq!(sc["runAsNonRoot"], json!(true), "{custom}");
    assert_eq!(sc["allowPrivilegeEscalation"], json!(false), "{custom}");
    assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]), "{custom}");
    assert!(sc["capabilities"].get("add").is_none(), "{custom}");
    assert_eq!(
        sc["seccompProfile"]["type"],
        json!("RuntimeDefault"),
        "{custom}"
    );
    assert!(sc.get("privileged").is_none(), "{custom}");
}

const NEW: &str = "v1.31.2";

/// `cmd` with the generated container name (`podports-check-EPOCH-PID`) as `NAME`.
fn unname(cmd: &str) -> String {
    cmd.split(' ')
        .map(|w| match w.strip_prefix("--container=podports-check-") {
            Some(rest)
                if rest.split('-').count() == 2
                    && rest
                        .split('-')
                        .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())) =>
            {
                "--container=NAME".to_string()
            }
            _ => w.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn base(profile: &str) -> String {
    format!(
        "--image={} --target=istio-proxy --profile={profile} --quiet",
        image()
    )
}

#[test]
fn the_uid_and_gid_in_the_containers_spec_become_a_restricted_security_context() {
    let p = pod(
        json!({"runAsUser": 1000, "runAsGroup": 3000, "fsGroup": 2000}),
        json!({"runAsUser": 1337, "runAsGroup": 1337, "allowPrivilegeEscalation": false}),
        false,
    );
    let fake = Fake::new("container-spec", Some(&p), NEW);
    let (cmd, custom, err) = fake.dry_run(&["-n", "shop", "productpage-v1", "-o", "json"]);
    assert_eq!(
        cmd,
        format!(
            "kubectl debug -i productpage-v1 --namespace=shop {} --custom=/dev/fd/3 -- \
             podports -o json",
            base("restricted")
        )
    );
    assert_restricted(&custom.expect("a --custom JSON"), 1337, 1337);
    assert_eq!(err, "", "nothing to say when the spec names the user");
    // It asked the API server for this pod, in this namespace, and kubectl for its version.
    let calls = fake.calls();
    assert!(
        calls.contains(&"[get][pod][productpage-v1][--namespace=shop][-o][json]".to_string()),
        "{calls:?}"
    );
    assert!(
        calls.contains(&"[version][--client][-o][json]".to_string()),
        "{calls:?}"
    );

    // Run for real: kubectl gets exactly those words, and the JSON on fd 3; its exit code is
    // the plugin's.
    let out = fake.run(
        &[
            "--context",
            "prod",
            "-n",
            "shop",
            "productpage-v1",
            "--",
            "-o",
            "json",
            "a b",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(7), "{}", text(&out.stderr));
    let got = text(&out.stdout);
    let words: Vec<&str> = got.lines().collect();
    let img = format!("[--image={}]", image());
    assert_eq!(
        words[..words.len() - 1],
        [
            "[--context=prod]",
            "[debug]",
            "[-i]",
            "[productpage-v1]",
            "[--namespace=shop]",
            img.as_str(),
            "[--target=istio-proxy]",
            "[--profile=restricted]",
            "[--quiet]",
            "[--custom=/dev/fd/3]",
            "[--]",
            "[podports]",
            "[-o]",
            "[json]",
            "[a b]",
        ]
    );
    let fd3: Value = serde_json::from_str(
        words
            .last()
            .and_then(|l| l.strip_prefix("fd3="))
            .expect("fd 3 holds the JSON"),
    )
    .unwrap();
    assert_restricted(&fd3, 1337, 1337);
    // --context went to `kubectl get` too.
    assert!(
        fake.calls()
            .iter()
            .any(|c| c.starts_with("[--context=prod][get][pod][productpage-v1]")),
        "{:?}",
        fake.calls()
    );
}

#[test]
fn the_pods_security_context_fills_in_field_by_field_and_native_sidecars_are_found() {
    // Nothing on the container: the pod's uid and gid.
    let fake = Fake::new(
        "pod-spec",
        Some(&pod(
            json!({"runAsUser": 2000, "runAsGroup": 3000}),
            Value::Null,
            false,
        )),
        NEW,
    );
    let (_, custom, err) = fake.dry_run(&["p"]);
    assert_restricted(&custom.unwrap(), 2000, 3000);
    assert_eq!(err, "");
    // The container's uid, the pod's gid.
    let fake = Fake::new(
        "mixed",
        Some(&pod(
            json!({"runAsGroup": 5}),
            json!({"runAsUser": 1337}),
            false,
        )),
        NEW,
    );
    let (_, custom, _) = fake.dry_run(&["p"]);
    assert_restricted(&custom.unwrap(), 1337, 5);
    // A uid and no gid anywhere: the uid, said.
    let fake = Fake::new(
        "no-gid",
        Some(&pod(Value::Null, json!({"runAsUser": 4242}), false)),
        NEW,
    );
    let (_, custom, err) = fake.dry_run(&["p"]);
    assert_restricted(&custom.unwrap(), 4242, 4242);
    assert!(
        err.contains("no runAsGroup") && err.contains("--run-as 4242:GID"),
        "{err}"
    );
    // istio-proxy as a native sidecar (an init container with restartPolicy Always).
    let fake = Fake::new(
        "native",
        Some(&pod(
            Value::Null,
            json!({"runAsUser": 1337, "runAsGroup": 1337}),
            true,
        )),
        NEW,
    );
    let (_, custom, _) = fake.dry_run(&["p"]);
    assert_restricted(&custom.unwrap(), 1337, 1337);
    // The app's container, by --target: its own uid.
    let (cmd, custom, _) = fake.dry_run(&["--target", "productpage", "p"]);
    assert!(cmd.contains(" --target=productpage "), "{cmd}");
    assert_eq!(custom.unwrap()["securityContext"]["runAsUser"], json!(1000));
}

#[test]
fn istio_proxy_without_a_uid_in_the_spec_runs_as_istios_1337() {
    let fake = Fake::new(
        "istio-default",
        Some(&pod(Value::Null, Value::Null, false)),
        NEW,
    );
    let (cmd, custom, err) = fake.dry_run(&["-n", "shop", "p"]);
    assert!(cmd.contains(" --profile=restricted "), "{cmd}");
    assert_restricted(&custom.unwrap(), 1337, 1337);
    assert_eq!(err, "");
}

#[test]
fn no_uid_to_learn_falls_back_to_the_images_uid_and_says_so() {
    // A container with no runAsUser, not istio-proxy: the image's user is not in the spec.
    let mut p = pod(Value::Null, Value::Null, false);
    p["spec"]["containers"][0]
        .as_object_mut()
        .unwrap()
        .remove("securityContext");
    let fake = Fake::new("not-found", Some(&p), NEW);
    let (cmd, custom, err) = fake.dry_run(&["--target=productpage", "p"]);
    assert_eq!(
        cmd,
        format!(
            "kubectl debug -i p {} -- podports",
            base("restricted").replace("istio-proxy", "productpage")
        )
    );
    assert_eq!(custom, None);
    assert!(
        err.contains("no runAsUser for container productpage"),
        "{err}"
    );
    assert!(
        err.contains("65532") && err.contains("--run-as") && err.contains("--root"),
        "{err}"
    );

    // No such container.
    let (_, custom, err) = fake.dry_run(&["--target=linkerd-proxy", "p"]);
    assert_eq!(custom, None);
    assert!(err.contains("no container named linkerd-proxy"), "{err}");

    // The pod cannot be read: kubectl's error, then ours.
    let fake = Fake::new("no-pod", None, NEW);
    let (cmd, custom, err) = fake.dry_run(&["p"]);
    assert!(cmd.contains(" --profile=restricted "), "{cmd}");
    assert_eq!(custom, None);
    assert!(
        err.contains("NotFound") && err.contains("cannot read pod p's spec"),
        "{err}"
    );

    // The target runs as root: running as root without SYS_PTRACE would not read its fds.
    let fake = Fake::new(
        "root-target",
        Some(&pod(Value::Null, json!({"runAsUser": 0}), false)),
        NEW,
    );
    let (_, custom, err) = fake.dry_run(&["p"]);
    assert_eq!(custom, None);
    assert!(
        err.contains("runs as root") && err.contains("--root"),
        "{err}"
    );
}

#[test]
fn root_is_kubectls_general_profile_with_run_as_user_0() {
    let fake = Fake::new("root", Some(&pod(Value::Null, Value::Null, false)), NEW);
    let (cmd, custom, err) = fake.dry_run(&[
        "--image",
        "registry.local/podports:dev",
        "--target=linkerd-proxy",
        "--root",
        "--kubeconfig=/tmp/kc",
        "web-0",
        "check",
        "--profile",
        "linkerd-proxy",
    ]);
    // `check` creates the container under a name of its own and follows it (no -i: no
    // file to send).
    assert_eq!(
        unname(&cmd),
        "kubectl --kubeconfig=/tmp/kc debug --attach=false --container=NAME web-0 \
         --image=registry.local/podports:dev --target=linkerd-proxy --profile=general --quiet \
         --custom=/dev/fd/3 -- podports check --profile linkerd-proxy"
    );
    assert_eq!(
        custom,
        Some(json!({"securityContext": {"runAsUser": 0, "runAsNonRoot": false}}))
    );
    assert_eq!(err, "");
    // The pod spec is not needed.
    assert!(
        fake.calls().iter().all(|c| !c.contains("[get]")),
        "{:?}",
        fake.calls()
    );
    let out = fake.run(&["--root", "--run-as", "1337", "p"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("give one"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn run_as_overrides_the_spec() {
    let fake = Fake::new("run-as", Some(&pod(Value::Null, Value::Null, false)), NEW);
    let (cmd, custom, _) = fake.dry_run(&["--run-as", "1000", "p"]);
    assert!(
        cmd.contains(" --profile=restricted --quiet --custom=/dev/fd/3 "),
        "{cmd}"
    );
    assert_restricted(&custom.unwrap(), 1000, 1000);
    let (_, custom, _) = fake.dry_run(&["--run-as=1000:2000", "p"]);
    assert_restricted(&custom.unwrap(), 1000, 2000);
    assert!(
        fake.calls().iter().all(|c| !c.contains("[get]")),
        "{:?}",
        fake.calls()
    );
    for (bad, says) in [
        ("0", "use --root"),
        ("0:0", "use --root"),
        ("x", "want UID or UID:GID"),
        ("1:", "want UID or UID:GID"),
        ("-1", "want UID or UID:GID"),
        ("1:2:3", "want UID or UID:GID"),
        ("99999999999", "want UID or UID:GID"),
    ] {
        let out = fake.run(&["--dry-run", "--run-as", bad, "p"], &[]);
        assert_eq!(out.status.code(), Some(2), "{bad}");
        assert!(
            text(&out.stderr).contains(says),
            "{bad}: {}",
            text(&out.stderr)
        );
    }
}

#[test]
fn an_old_kubectl_is_a_clear_error_not_a_silent_downgrade() {
    let p = pod(
        Value::Null,
        json!({"runAsUser": 1337, "runAsGroup": 1337}),
        false,
    );
    for (version, args) in [
        ("v1.29.3", &["p"][..]),
        ("v1.30.2", &["p"]),
        ("v1.28.0-eks-1234", &["--root", "p"]),
        ("v1.27.1", &["--run-as", "1337", "p"]),
    ] {
        let fake = Fake::new("old", Some(&p), version);
        let out = fake.run(args, &[]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{version} {args:?}: {err}");
        assert!(err.contains(version), "{err}");
        assert!(err.contains("1.31"), "{err}");
        assert!(err.contains("--debug-profile=restricted"), "{err}");
        assert!(
            fake.calls().iter().all(|c| !c.contains("[debug]")),
            "{:?}",
            fake.calls()
        );
    }
    // 1.30 with the alpha switch on has --custom.
    let fake = Fake::new("alpha", Some(&p), "v1.30.2");
    let out = fake.run(&["p"], &[("KUBECTL_DEBUG_CUSTOM_PROFILE", "true")]);
    assert_eq!(out.status.code(), Some(7), "{}", text(&out.stderr));
    // kubectl's own profile needs no --custom: works with the old kubectl, asks no version.
    let fake = Fake::new("legacy", Some(&p), "v1.27.1");
    let (cmd, custom, _) = fake.dry_run(&["--debug-profile", "legacy", "p"]);
    assert_eq!(
        cmd,
        format!("kubectl debug -i p {} -- podports", base("legacy"))
    );
    assert_eq!(custom, None);
    assert!(fake.calls().is_empty(), "{:?}", fake.calls());
    // Newer ones pass, whatever their suffix.
    for v in ["v1.31.0", "v1.32.4-dispatcher", "v1.40.0+k3s1"] {
        let fake = Fake::new("new", Some(&p), v);
        let (_, custom, err) = fake.dry_run(&["p"]);
        assert!(custom.is_some() && err.is_empty(), "{v}: {err}");
    }
}

#[test]
fn options_pass_through_and_usage_errors_exit_2() {
    let fake = Fake::new("usage", Some(&pod(Value::Null, Value::Null, false)), NEW);
    // Options before and after the pod; podports' own flags pass through, after `--` as is.
    let (cmd, _, _) = fake.dry_run(&[
        "productpage-v1",
        "--namespace=shop",
        "probe",
        "--timeout",
        "1s",
    ]);
    assert!(
        cmd.ends_with(" --custom=/dev/fd/3 -- podports probe --timeout 1s"),
        "{cmd}"
    );
    let (cmd, _, _) = fake.dry_run(&["p", "--", "-n", "x", "--watch", "it's a b"]);
    assert!(
        cmd.ends_with(" -- podports -n x --watch 'it'\\''s a b'"),
        "{cmd}"
    );
    // kubectl's --profile is --debug-profile: --profile after the pod is `check --profile`.
    let (cmd, _, _) = fake.dry_run(&[
        "--debug-profile=sysadmin",
        "p",
        "check",
        "--profile",
        "istio-sidecar",
    ]);
    assert_eq!(
        unname(&cmd),
        format!(
            "kubectl debug --attach=false --container=NAME p {} -- podports check --profile \
             istio-sidecar",
            base("sysadmin")
        )
    );
    // PODPORTS_IMAGE sets the default; --image wins over it.
    let out = fake.run(&["--dry-run", "p"], &[("PODPORTS_IMAGE", "mine/pp:1")]);
    assert!(
        text(&out.stdout).contains(" --image=mine/pp:1 "),
        "{}",
        text(&out.stdout)
    );
    let out = fake.run(
        &["--dry-run", "--image=theirs/pp:2", "p"],
        &[("PODPORTS_IMAGE", "mine/pp:1")],
    );
    assert!(
        text(&out.stdout).contains(" --image=theirs/pp:2 "),
        "{}",
        text(&out.stdout)
    );

    for (args, says) in [
        (&[][..], "Usage: kubectl podports"),
        (&["--dry-run"], "Usage: kubectl podports"),
        (&["-n"], "-n needs a value"),
        (&["p", "--image"], "--image needs a value"),
        (&["--image=", "p"], "--image needs an image"),
        (&["p", "--run-as"], "--run-as needs a value"),
        (
            &["--debug-profile=", "p"],
            "--debug-profile needs a profile",
        ),
    ] {
        let out = fake.run(args, &[]);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            text(&out.stderr).contains(says),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
}

#[test]
fn help_says_what_each_way_shows() {
    let fake = Fake::new("help", None, NEW);
    let out = fake.run(&["--help"], &[]);
    assert_eq!(out.status.code(), Some(0));
    let help = text(&out.stdout);
    for says in [
        "--dry-run",
        "--run-as UID[:GID]",
        "Istio's 1337:1337",
        "admitted by Pod Security restricted",
        "Refused where Pod Security baseline",
        "bounding set, never",
        "legacy",
        "general",
        "node view",
        "held outside",
        "kubectl 1.31+",
        "--debug-timeout",
        "--junit FILE",
    ] {
        assert!(help.contains(says), "--help does not say {says:?}:\n{help}");
    }
    assert!(fake.calls().is_empty());
}

// ---------------------------------------------------------------------------------------------
// `check` from outside the cluster: a stand-in cluster behind kubectl that runs a REAL podports
// in a test netns as the ephemeral container would.

/// A stand-in kubectl for `check`: `get pod -o json` serves the pod with the ephemeral
/// container's status; `debug --attach=false` starts the "container" (podports, the built
/// binary, in $FAKE_NETNS, its stdin a fifo when `-i`), `attach -i` writes its stdin to that
/// fifo and keeps it open until the container ends (podports must not need EOF), `logs` prints
/// what podports wrote. $FAKE_DIR/mode: `run` (attach returns the container's code), `attach0`
/// (attach always returns 0), `unpullable` (the container waits in ErrImagePull forever),
/// `refuse` (admission refuses the ephemeral container), `crash` (the container dies with 137),
/// `noattach` (attach fails: podports waits for its stdin).
const FAKE_CLUSTER: &str = r#"#!/bin/sh
line=
for a in "$@"; do line="$line[$a]"; done
printf '%s\n' "$line" >> "$FAKE_DIR/calls"
mode=$(cat "$FAKE_DIR/mode")
sub=
for a in "$@"; do
  case $a in --*) ;; *) sub=$a; break ;; esac
done
ec_status() {
  if [ ! -f "$FAKE_DIR/ec_name" ]; then printf '[]'; return; fi
  name=$(cat "$FAKE_DIR/ec_name")
  if [ "$mode" = unpullable ]; then
    printf '[{"name":"%s","image":"%s","ready":false,"restartCount":0,"state":{"waiting":{"reason":"ErrImagePull","message":"failed to pull and unpack image \\"%s\\": not found"}}}]' \
      "$name" "$(cat "$FAKE_DIR/ec_image")" "$(cat "$FAKE_DIR/ec_image")"
  elif [ -f "$FAKE_DIR/exit" ]; then
    code=$(cat "$FAKE_DIR/exit")
    reason=Completed
    [ "$code" = 0 ] || reason=Error
    printf '[{"name":"%s","ready":false,"restartCount":0,"state":{"terminated":{"exitCode":%s,"reason":"%s","startedAt":"2026-12-03T10:00:00Z","finishedAt":"2026-12-03T10:00:01Z"}}}]' "$name" "$code" "$reason"
  elif [ -f "$FAKE_DIR/started" ]; then
    printf '[{"name":"%s","ready":false,"restartCount":0,"state":{"running":{"startedAt":"2026-12-03T10:00:00Z"}}}]' "$name"
  else
    printf '[{"name":"%s","ready":false,"restartCount":0,"state":{"waiting":{"reason":"ContainerCreating"}}}]' "$name"
  fi
}
case $sub in
  version)
    printf '{\n  "clientVersion": {\n    "major": "1",\n    "gitVersion": "v1.31.2"\n  }\n}\n'
    ;;
  get)
    if [ ! -f "$FAKE_DIR/pod-head.json" ]; then
      echo 'Error from server (NotFound): pods "p" not found' >&2
      exit 1
    fi
    cat "$FAKE_DIR/pod-head.json"
    printf ',\n  "status": {"phase": "Running", "ephemeralContainerStatuses": %s}\n}\n' "$(ec_status)"
    ;;
  debug)
    attach=true stdin=false name= image=
    while [ $# -gt 0 ]; do
      case $1 in
        --attach=false) attach=false ;;
        -i) stdin=true ;;
        --container=*) name=${1#--container=} ;;
        --image=*) image=${1#--image=} ;;
        --) shift; break ;;
      esac
      shift
    done
    [ "$1" = podports ] && shift
    if [ ! -f "$FAKE_DIR/pod-head.json" ]; then
      echo 'Error from server (NotFound): pods "p" not found' >&2
      exit 1
    fi
    if [ "$mode" = refuse ]; then
      echo 'Error from server (Forbidden): pods "productpage-v1" is forbidden: violates PodSecurity "baseline:latest": non-default capabilities (container "'"$name"'" must not include "SYS_PTRACE" in securityContext.capabilities.add)' >&2
      exit 1
    fi
    $attach && { echo "the fake wants --attach=false" >&2; exit 9; }
    printf '%s' "$name" > "$FAKE_DIR/ec_name"
    printf '%s' "$image" > "$FAKE_DIR/ec_image"
    [ "$mode" = unpullable ] && exit 0
    if [ "$mode" = crash ]; then
      : > "$FAKE_DIR/started"
      echo 'fatal runtime error: out of memory' > "$FAKE_DIR/log"
      echo 137 > "$FAKE_DIR/exit"
      exit 0
    fi
    input=/dev/null
    if $stdin; then mkfifo "$FAKE_DIR/stdin"; input=$FAKE_DIR/stdin; fi
    : > "$FAKE_DIR/started"
    (
      nsenter --net="$FAKE_NETNS" -- "$PODPORTS" "$@" <"$input" >"$FAKE_DIR/log" 2>&1
      echo $? > "$FAKE_DIR/exit.tmp"
      mv "$FAKE_DIR/exit.tmp" "$FAKE_DIR/exit"
    ) </dev/null >/dev/null 2>&1 &
    echo $! > "$FAKE_DIR/ec_pid"
    ;;
  attach)
    if [ ! -p "$FAKE_DIR/stdin" ] || [ "$mode" = noattach ]; then
      echo 'error: unable to upgrade connection: container not found' >&2
      exit 1
    fi
    exec 9>"$FAKE_DIR/stdin"
    cat >&9
    while [ ! -f "$FAKE_DIR/exit" ]; do sleep 0.1; done
    exec 9>&-
    cat "$FAKE_DIR/log"
    [ "$mode" = attach0 ] && exit 0
    exit "$(cat "$FAKE_DIR/exit")"
    ;;
  logs)
    cat "$FAKE_DIR/log"
    ;;
  *)
    echo "the fake does not know $sub" >&2
    exit 9
    ;;
esac
"#;

/// The stand-in cluster: a directory with kubectl, the pod, the mode, the local files.
struct Cluster {
    dir: PathBuf,
}

impl Cluster {
    fn new(name: &str, mode: &str) -> Cluster {
        let dir =
            std::env::temp_dir().join(format!("podports-plugin-ci-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("bin")).unwrap();
        let kubectl = dir.join("bin/kubectl");
        fs::write(&kubectl, FAKE_CLUSTER).unwrap();
        fs::set_permissions(&kubectl, fs::Permissions::from_mode(0o755)).unwrap();
        let mut p = pod(
            Value::Null,
            json!({"runAsUser": 1337, "runAsGroup": 1337}),
            false,
        );
        p.as_object_mut().unwrap().remove("status");
        let pretty = serde_json::to_string_pretty(&p).unwrap();
        let head = pretty.trim_end().strip_suffix('}').unwrap().trim_end();
        fs::write(dir.join("pod-head.json"), head).unwrap();
        fs::write(dir.join("mode"), mode).unwrap();
        Cluster { dir }
    }

    /// Writes a local file (relative to the directory the plugin runs in).
    fn file(&self, rel: &str, text: &str) {
        let path = self.dir.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    /// Runs the plugin in the directory, against `ns`.
    fn run(&self, ns: &common::Netns, args: &[&str]) -> Output {
        let path_env = format!(
            "{}:{}",
            self.dir.join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kubectl-podports"))
            .args(args)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .env_remove("PODPORTS_IMAGE")
            .env("PATH", path_env)
            .env("FAKE_DIR", &self.dir)
            .env("FAKE_NETNS", ns.path())
            .env("PODPORTS", env!("CARGO_BIN_EXE_podports"))
            .output()
            .expect("run deploy/kubectl-podports")
    }

    fn calls(&self) -> Vec<String> {
        fs::read_to_string(self.dir.join("calls"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Forgets the last container (as a new `kubectl debug` adds a new one).
    fn reset(&self) {
        self.stop();
        for f in [
            "ec_name", "ec_image", "ec_pid", "stdin", "started", "exit", "log", "calls",
        ] {
            let _ = fs::remove_file(self.dir.join(f));
        }
    }

    fn stop(&self) {
        let pid = fs::read_to_string(self.dir.join("ec_pid")).unwrap_or_default();
        if let Ok(pid) = pid.trim().parse::<i32>() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }

    /// The JUnit file the plugin wrote here, parsed: (tests, failures) of `<testsuites>`.
    fn junit(&self, rel: &str) -> (String, u32, u32) {
        let xml = fs::read_to_string(self.dir.join(rel))
            .unwrap_or_else(|e| panic!("{rel} was not written: {e}"));
        let doc = roxmltree::Document::parse(&xml).unwrap_or_else(|e| panic!("{rel}: {e}\n{xml}"));
        let root = doc.root_element();
        assert_eq!(root.tag_name().name(), "testsuites", "{xml}");
        let n = |a: &str| root.attribute(a).unwrap().parse::<u32>().unwrap();
        (xml.clone(), n("tests"), n("failures"))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// A pod's netns with an app listening on 0.0.0.0:9080.
fn pod_netns() -> (common::Netns, common::Proc) {
    let ns = common::Netns::new();
    let app = common::Proc::start(
        &ns,
        &common::install_as("myapp"),
        &["tcp-listen=0.0.0.0:9080"],
    );
    (ns, app)
}

const PASSES: &str = "listen:\n  - port: 9080\n    name: productpage\n";
const FAILS: &str = "# the app's admin port\nlisten:\n  - port: 9090\n";
const BAD: &str = "listen:\n  - port: 9080\n    bogus: 1\n";

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
