//! The kubectl plugin (deploy/kubectl-podports) against a stand-in `kubectl` on PATH, written
//! by each test into its own directory: it records every call, serves a pod's JSON for
//! `kubectl get pod -o json` and a client version for `kubectl version --client -o json`, and
//! for `kubectl debug` prints its arguments and what fd 3 (`--custom=/dev/fd/3`) holds. The
//! generated command is checked for each way of choosing the user: the uid found in the pod
//! spec, not found, Istio's default for istio-proxy, `--root`, `--run-as`, an old kubectl.
//! Needs no root. `check` against a stand-in cluster: tests/plugin_check.rs (a pod) and
//! tests/plugin_node.rs (a node).
// A test: it makes sockets, files and processes freely (clippy.toml keeps them in sys/).
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};

mod common;

use common::plugin::{image, pod, text};

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

/// `--dry-run` creates nothing and reads only what its help says: the pod's spec (for the
/// user, unless one is given) and kubectl's version (for --custom).
#[test]
fn dry_run_reads_the_spec_and_version_only_and_its_help_says_so() {
    let fake = Fake::new("dryrun", Some(&pod(Value::Null, Value::Null, false)), NEW);
    let kinds = |args: &[&str]| -> Vec<String> {
        let _ = fs::remove_file(fake.dir.join("calls"));
        let _ = fake.dry_run(args);
        fake.calls()
            .iter()
            .map(|c| c.split(']').next().unwrap_or("").to_string())
            .collect()
    };
    assert_eq!(
        kinds(&["-n", "shop", "p", "check"]),
        ["[get", "[version"],
        "{:?}",
        fake.calls()
    );
    assert_eq!(kinds(&["--root", "p"]), ["[version"]);
    assert_eq!(kinds(&["--run-as", "7", "p"]), ["[version"]);
    assert!(kinds(&["--debug-profile=legacy", "p"]).is_empty());
    assert!(kinds(&["node", "n1", "check"]).is_empty());
    let help = text(&fake.run(&["--help"], &[]).stdout);
    let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
    for says in [
        "create nothing",
        "reads the pod's spec (kubectl get pod) unless --root, --run-as or --debug-profile",
        "kubectl's version (kubectl version --client)",
        "`node NODE check --dry-run` runs no kubectl",
    ] {
        assert!(help.contains(says), "--help does not say {says:?}:\n{help}");
    }
}

/// With no kubectl on PATH the plugin says what to do, before anything else.
#[test]
fn no_kubectl_on_path_says_how_to_get_one() {
    let fake = Fake::new("nokubectl", None, NEW);
    // A PATH with the tools the plugin uses but no kubectl (this machine may have one).
    let bin = fake.dir.join("nokube");
    fs::create_dir_all(&bin).unwrap();
    for tool in [
        "bash", "awk", "sed", "tr", "wc", "head", "cat", "date", "dirname", "mktemp", "rm",
    ] {
        let found = std::env::var("PATH")
            .unwrap_or_default()
            .split(':')
            .map(|d| Path::new(d).join(tool))
            .find(|p| p.is_file());
        if let Some(found) = found {
            std::os::unix::fs::symlink(found, bin.join(tool)).unwrap();
        }
    }
    fs::write(fake.dir.join("x.yaml"), "listen:\n  - port: 9080\n").unwrap();
    let x = fake.dir.join("x.yaml");
    for args in [
        &["mypod", "check", "--expect", x.to_str().unwrap()][..],
        &["--root", "mypod"],
        &["node", "n1", "check"],
    ] {
        let out =
            Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kubectl-podports"))
                .args(args)
                .stdin(Stdio::null())
                .env("PATH", &bin)
                .output()
                .unwrap();
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains("kubectl is not on PATH: install kubectl 1.31 or newer")
                && err.contains("or add the directory that holds it to PATH"),
            "{args:?}: {err}"
        );
    }
    assert!(fake.calls().is_empty());
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
        "kubectl podports [OPTIONS] node NODE check",
        "-n/--namespace NS, which checks only the pods of namespace NS",
    ] {
        assert!(help.contains(says), "--help does not say {says:?}:\n{help}");
    }
    assert!(fake.calls().is_empty());
}
