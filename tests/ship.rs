//! How podports ships, checked: shell completions and the man page generated from the CLI (the
//! kubectl plugin's command lines are tests/plugin.rs'), the Kubernetes manifests and the krew template parsed and held to what the README
//! promises, the Containerfile and the release profile. Needs no root.
// A test: it makes sockets, files and processes freely (clippy.toml keeps them in sys/).
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use clap::Parser;
use podports::cli::Cli;
use podports::plan::Plan;
use podports::request::Target;
use serde_json::Value;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const VERSION: &str = env!("CARGO_PKG_VERSION");
const CAPS: [&str; 3] = ["SYS_ADMIN", "SYS_PTRACE", "DAC_READ_SEARCH"];

fn path(rel: &str) -> PathBuf {
    Path::new(ROOT).join(rel)
}

fn read(rel: &str) -> String {
    fs::read_to_string(path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn podports(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_podports"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run podports")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The image every manifest, the plugin and the Containerfile name.
fn image() -> String {
    format!("ghcr.io/podports/podports:{VERSION}")
}

// ---------------------------------------------------------------------------------------------
// Completions and the man page

#[test]
fn completions_for_bash_zsh_and_fish() {
    let scratch = std::env::temp_dir().join(format!("podports-ship-{}", std::process::id()));
    fs::create_dir_all(&scratch).unwrap();
    for (shell, checker) in [("bash", "bash"), ("zsh", "zsh"), ("fish", "fish")] {
        let out = podports(&["completions", shell]);
        assert_eq!(out.status.code(), Some(0), "{shell}: {}", text(&out.stderr));
        let script = text(&out.stdout);
        assert!(script.len() > 1000, "{shell}: {} bytes", script.len());
        // fish names long options without their dashes (`-l watch`).
        for word in ["podports", "probe", "check", "watch", "netns", "all-pods"] {
            assert!(script.contains(word), "{shell} completion has no {word}");
        }
        // The shell itself reads it, where that shell is installed.
        let file = scratch.join(format!("podports.{shell}"));
        fs::write(&file, &script).unwrap();
        match Command::new(checker).arg("-n").arg(&file).output() {
            Ok(o) => assert!(o.status.success(), "{checker} -n: {}", text(&o.stderr)),
            Err(e) => eprintln!("{checker} not installed ({e}): syntax not checked"),
        }
    }
    let _ = fs::remove_dir_all(&scratch);
    let bad = podports(&["completions", "cmd.exe"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        text(&bad.stderr).contains("possible values: bash"),
        "{}",
        text(&bad.stderr)
    );
}

#[test]
fn the_man_page_covers_the_options_and_subcommands() {
    let out = podports(&["man"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let page = text(&out.stdout);
    assert!(page.contains(".TH podports 1"), "{page}");
    for word in [
        ".SH SYNOPSIS",
        ".SH OPTIONS",
        ".SH SUBCOMMANDS",
        "\\-\\-watch",
        "\\-\\-all\\-pods",
        "podports\\-probe",
        "podports\\-completions",
    ] {
        assert!(page.contains(word), "man page has no {word}");
    }
    // groff reads it without a warning, where groff is installed.
    if let Ok(mut child) = Command::new("groff")
        .args(["-man", "-Tutf8", "-ww", "-z"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(page.as_bytes())
            .unwrap();
        let o = child.wait_with_output().unwrap();
        assert!(
            o.status.success() && o.stderr.is_empty(),
            "groff: {}",
            text(&o.stderr)
        );
    }
}

/// fish itself completes (`complete -C`, as at a prompt): `--profile` the built-in names, `-o`
/// its formats at the top level as after a subcommand, `--netns` the names under /run/netns.
/// Needs fish: without it this skips, saying so, and under CI=true (which installs it) fails.
#[test]
fn fish_completes_profiles_formats_and_netns_names() {
    if Command::new("fish").arg("--version").output().is_err() {
        assert!(
            std::env::var_os("CI").is_none_or(|v| v != "true"),
            "fish is not installed; CI=true, so this is a failure (.ci/run installs it)"
        );
        eprintln!("skipping fish_completes_profiles_formats_and_netns_names: fish not installed");
        return;
    }
    let out = podports(&["completions", "fish"]);
    let script = std::env::temp_dir().join(format!("podports-fish-{}", std::process::id()));
    fs::write(&script, &out.stdout).unwrap();
    let complete = |line: &str| -> Vec<String> {
        let cmd = format!("source '{}'; complete -C '{line}'", script.display());
        let o = Command::new("fish")
            .args(["--no-config", "-c", &cmd])
            .current_dir("/")
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o.stderr));
        // Each line is `VALUE<TAB>description`.
        text(&o.stdout)
            .lines()
            .map(|l| l.split('\t').next().unwrap_or("").to_string())
            .collect()
    };
    assert_eq!(
        complete("podports check --profile istio-s"),
        ["istio-sidecar"]
    );
    // Every built-in profile, and `auto` (with --all-pods).
    let all = complete("podports check --profile ");
    assert_eq!(
        all.len(),
        podports::check::profiles::ALL.len() + 1,
        "{all:?}"
    );
    assert!(all.iter().any(|p| p == "auto"), "{all:?}");
    for line in ["podports -o ", "podports --pid 1 -o ", "podports check -o "] {
        let formats = complete(line);
        for f in ["table", "json"] {
            assert!(formats.iter().any(|g| g == f), "{line:?}: {formats:?}");
        }
    }
    let name = format!("podports-fish-{}", std::process::id());
    let dir = Path::new("/run/netns").join(&name);
    if fs::create_dir_all(&dir).is_ok() {
        let top = complete("podports --netns podports-fish-");
        let check = complete("podports check --netns podports-fish-");
        let _ = fs::remove_dir(&dir);
        assert!(top.contains(&name), "{top:?}");
        assert!(check.contains(&name), "{check:?}");
    } else if std::env::var_os("CI").is_some_and(|v| v == "true") {
        panic!(
            "cannot make {}: the --netns completion is not tested",
            dir.display()
        );
    } else {
        eprintln!("skipping the --netns part: cannot make {}", dir.display());
    }
    let _ = fs::remove_file(&script);
}

/// bash itself completes: `--profile` the built-in names, `-o` the formats, `--netns` the
/// names under /run/netns (a directory the test fills when it may: a name made with mkdir is
/// enough for completion, and is removed again).
#[test]
fn bash_completes_profiles_formats_and_netns_names() {
    let out = podports(&["completions", "bash"]);
    let script = std::env::temp_dir().join(format!("podports-bash-{}", std::process::id()));
    fs::write(&script, &out.stdout).unwrap();
    let complete = |words: &[&str]| -> Vec<String> {
        let cur = words.last().copied().unwrap_or("");
        let prev = words
            .get(words.len().saturating_sub(2))
            .copied()
            .unwrap_or("");
        let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
        let cmd = format!(
            "source '{}'; COMP_WORDS=({}); COMP_CWORD={}; _podports_netns podports '{cur}' \
             '{prev}'; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            script.display(),
            quoted.join(" "),
            words.len() - 1
        );
        let o = Command::new("bash").args(["-c", &cmd]).output().unwrap();
        assert!(o.status.success(), "{}", text(&o.stderr));
        text(&o.stdout).lines().map(String::from).collect()
    };
    assert_eq!(
        complete(&["podports", "check", "--profile", "istio-s"]),
        ["istio-sidecar"]
    );
    let all = complete(&["podports", "check", "--profile", ""]);
    assert_eq!(
        all.len(),
        podports::check::profiles::ALL.len() + 1,
        "{all:?}"
    );
    assert!(all.iter().any(|p| p == "auto"), "{all:?}");
    let formats = complete(&["podports", "-o", ""]);
    for f in ["table", "wide", "json"] {
        assert!(formats.iter().any(|g| g == f), "{formats:?}");
    }
    assert_eq!(complete(&["podports", "catalog", "-o", "w"]), ["wide"]);
    let name = format!("podports-compl-{}", std::process::id());
    let dir = Path::new("/run/netns").join(&name);
    if fs::create_dir_all(&dir).is_ok() {
        let got = complete(&["podports", "check", "--netns", "podports-compl-"]);
        let _ = fs::remove_dir(&dir);
        assert!(got.contains(&name), "{got:?}");
    } else if std::env::var_os("CI").is_some_and(|v| v == "true") {
        panic!(
            "cannot make {}: the --netns completion is not tested",
            dir.display()
        );
    } else {
        eprintln!("skipping the --netns part: cannot make {}", dir.display());
    }
    let _ = fs::remove_file(&script);
}

/// `podports man --dir DIR`: one page per command, each naming every option of its command
/// (clap's tree walked), and every page the main page refers to exists.
#[test]
fn man_dir_writes_a_page_per_command_with_every_option() {
    use clap::CommandFactory;
    let dir = std::env::temp_dir().join(format!("podports-man-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let out = podports(&["man", "--dir", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let mut cmd = Cli::command();
    cmd.build();
    let mut commands = vec![("podports".to_string(), cmd.clone())];
    for sub in cmd.get_subcommands() {
        if sub.get_name() != "help" {
            commands.push((format!("podports-{}", sub.get_name()), sub.clone()));
        }
    }
    for name in [
        "podports-check",
        "podports-probe",
        "podports-catalog",
        "podports-man",
    ] {
        assert!(commands.iter().any(|(n, _)| n == name), "no {name}");
    }
    for (name, c) in &commands {
        let path = dir.join(format!("{name}.1"));
        let page = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for arg in c.get_arguments().filter(|a| !a.is_hide_set()) {
            if let Some(long) = arg.get_long() {
                let roff = format!("\\-\\-{}", long.replace('-', "\\-"));
                assert!(page.contains(&roff), "{name}.1 has no --{long}");
            }
            if let Some(short) = arg.get_short() {
                assert!(
                    page.contains(&format!("\\-{short}")),
                    "{name}.1 has no -{short}"
                );
            }
        }
        // Every page it names is there.
        for word in page.split(|c: char| c.is_whitespace() || c == ',') {
            if let Some(p) = word
                .strip_prefix("podports\\-")
                .and_then(|w| w.strip_suffix("(1)"))
            {
                let file = dir.join(format!("podports-{}.1", p.replace("\\-", "-")));
                assert!(file.exists(), "{name}.1 names {word}, not written");
            }
        }
    }
    let main = fs::read_to_string(dir.join("podports.1")).unwrap();
    assert!(main.contains("podports\\-check(1)"), "{main}");
    assert!(!main.contains("podports\\-help"), "no page for help");
    let check = fs::read_to_string(dir.join("podports-check.1")).unwrap();
    for word in [
        "istio\\-sidecar",
        "\\-\\-junit",
        "\\-\\-wait",
        "\\-\\-expect",
    ] {
        assert!(check.contains(word), "podports-check.1 has no {word}");
    }
    let _ = fs::remove_dir_all(&dir);
}

/// Options that mean nothing to a command are clap's usage errors (exit 2).
#[test]
fn options_a_command_does_not_take_are_usage_errors() {
    for args in [
        &["catalog", "--pid", "999999"][..],
        &["--pid", "999999", "catalog"],
        &["catalog", "-l"],
        &["catalog", "--netns", "x"],
        &["man", "-o", "json"],
        &["completions", "bash", "--pid", "1"],
        &["check", "--port", "80"],
        &["probe", "-t"],
    ] {
        let out = podports(args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "podports {args:?}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).starts_with("error:"),
            "{}",
            text(&out.stderr)
        );
    }
    let help = text(&podports(&["catalog", "--help"]).stdout);
    assert!(help.contains("-o wide"), "{help}");
    assert!(!help.contains("--pid"), "{help}");
}

#[test]
fn closed_stdout_while_printing_completions_exits_0() {
    // clap_complete panics on a failed write; podports must not.
    let mut child = Command::new(env!("CARGO_BIN_EXE_podports"))
        .args(["completions", "zsh"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

// ---------------------------------------------------------------------------------------------
// Usage errors of --watch and probe

#[test]
fn watch_and_probe_usage_errors_exit_2() {
    for (args, says) in [
        (&["--watch", "catalog"][..], "expected a number"),
        (&["--watch", "0.01"], "shorter than 100ms"),
        (&["--watch", "-1"], "unexpected argument '-1'"),
        (&["--watch", "--all-pods"], "--watch looks at one target"),
        (&["--watch=1", "catalog"], "cannot be used with"),
        (&["probe", "--timeout", "soon"], "--timeout"),
        (&["-l", "probe"], "cannot be used with"),
        (&["probe", "-l"], "unexpected argument '-l'"),
        (&["probe", "--all-pods"], "probe looks at one target"),
        (
            &["probe", "--pid", "1", "--netns", "x"],
            "cannot be used with",
        ),
    ] {
        let out = podports(args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "podports {args:?}: {err}");
        assert!(err.contains(says), "podports {args:?}: {err}");
    }
}

#[test]
fn watch_and_probe_of_a_missing_namespace_exit_3() {
    for args in [
        &["--watch", "--netns", "podports-ship-no-such-netns"][..],
        &["probe", "--netns", "podports-ship-no-such-netns"],
    ] {
        let out = podports(args);
        assert_eq!(
            out.status.code(),
            Some(3),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains("not found"),
            "{}",
            text(&out.stderr)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Manifests

fn yaml_docs(rel: &str) -> Vec<Value> {
    serde_saphyr::from_multiple::<Value>(&read(rel))
        .unwrap_or_else(|e| panic!("{rel} is not YAML: {e}"))
}

/// `v["a"]["b"][0]`, by a path such as `spec.template.spec.containers.0.name`.
fn at<'a>(v: &'a Value, path: &str) -> &'a Value {
    let mut cur = v;
    for key in path.split('.') {
        cur = match key.parse::<usize>() {
            Ok(i) => &cur[i],
            Err(_) => &cur[key],
        };
    }
    cur
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|s| {
            s.as_str()
                .unwrap_or_else(|| panic!("not a string: {s}"))
                .to_string()
        })
        .collect()
}

/// What the README promises of a podports container on a node: the static binary, the sweep,
/// root with exactly the three capabilities and nothing else, the host's / read-only.
fn check_node_container(c: &Value, pod: &Value, what: &str) {
    assert_eq!(at(c, "image"), &Value::from(image()), "{what}");
    assert_eq!(
        strings(at(c, "command")),
        ["/usr/local/bin/podports"],
        "{what}"
    );
    let args = strings(at(c, "args"));
    assert_eq!(
        args,
        ["--all-pods", "-o", "json", "--host-root", "/host"],
        "{what}"
    );
    // The CLI takes these flags, and they mean a sweep of the node rooted at /host.
    let cli = Cli::try_parse_from(std::iter::once("podports".to_string()).chain(args))
        .unwrap_or_else(|e| panic!("{what}: podports does not take its args: {e}"));
    let plan = Plan::new(&cli, podports::plan::Terminal::default(), None).unwrap();
    let Plan::Sweep { request, .. } = plan else {
        panic!("{what}: the args do not plan a sweep: {plan:?}");
    };
    assert!(
        matches!(request.target, Target::AllPods { namespace: None }),
        "{what}"
    );
    assert_eq!(cli.target.host_root, PathBuf::from("/host"));

    let sc = at(c, "securityContext");
    assert_eq!(at(sc, "runAsUser"), &Value::from(0), "{what}");
    assert_eq!(at(sc, "runAsNonRoot"), &Value::from(false), "{what}");
    assert_eq!(at(sc, "privileged"), &Value::from(false), "{what}");
    assert_eq!(
        at(sc, "readOnlyRootFilesystem"),
        &Value::from(true),
        "{what}"
    );
    assert_eq!(strings(at(sc, "capabilities.drop")), ["ALL"], "{what}");
    let add: BTreeSet<String> = strings(at(sc, "capabilities.add")).into_iter().collect();
    let want: BTreeSet<String> = CAPS.iter().map(|s| s.to_string()).collect();
    assert_eq!(
        add, want,
        "{what}: exactly SYS_ADMIN, SYS_PTRACE, DAC_READ_SEARCH"
    );
    assert_eq!(
        at(sc, "seccompProfile.type"),
        &Value::from("RuntimeDefault")
    );

    let mounts = at(c, "volumeMounts").as_array().unwrap();
    assert_eq!(mounts.len(), 1, "{what}");
    let m = &mounts[0];
    assert_eq!(at(m, "mountPath"), &Value::from("/host"), "{what}");
    assert_eq!(at(m, "readOnly"), &Value::from(true), "{what}");
    let vol = at(pod, "volumes")
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == m["name"])
        .unwrap_or_else(|| panic!("{what}: no volume {}", m["name"]));
    assert_eq!(at(vol, "hostPath.path"), &Value::from("/"), "{what}");

    assert_eq!(at(pod, "hostPID"), &Value::from(true), "{what}");
    assert!(pod.get("hostNetwork").is_none(), "{what}: no hostNetwork");
    assert!(pod.get("hostIPC").is_none(), "{what}: no hostIPC");
    assert_eq!(at(pod, "automountServiceAccountToken"), &Value::from(false));
    assert_eq!(
        at(pod, "tolerations.0.operator"),
        "Exists",
        "{what}: every node"
    );
}

fn check_namespace(doc: &Value, what: &str) {
    assert_eq!(doc["kind"], "Namespace", "{what}");
    assert_eq!(at(doc, "metadata.name"), "podports", "{what}");
    assert_eq!(
        doc["metadata"]["labels"]["pod-security.kubernetes.io/enforce"], "privileged",
        "{what}: hostPID and capabilities need the privileged Pod Security level"
    );
}

#[test]
fn the_daemonset_sweeps_every_node_with_the_least_privilege() {
    let docs = yaml_docs("deploy/daemonset.yaml");
    assert_eq!(docs.len(), 2);
    check_namespace(&docs[0], "daemonset.yaml");
    let ds = &docs[1];
    assert_eq!(ds["apiVersion"], "apps/v1");
    assert_eq!(ds["kind"], "DaemonSet");
    assert_eq!(at(ds, "metadata.namespace"), "podports");
    let pod = at(ds, "spec.template.spec");
    assert_eq!(
        at(ds, "spec.selector.matchLabels"),
        at(ds, "spec.template.metadata.labels")
    );
    // The sweep runs once per node, its JSON Lines in its log; then the pod idles.
    let init = at(pod, "initContainers").as_array().unwrap();
    assert_eq!(init.len(), 1);
    assert_eq!(init[0]["name"], "sweep");
    check_node_container(&init[0], pod, "daemonset sweep");
    let idle = at(pod, "containers").as_array().unwrap();
    assert_eq!(idle.len(), 1);
    assert!(
        idle[0]["image"]
            .as_str()
            .unwrap()
            .starts_with("registry.k8s.io/pause:")
    );
    assert_eq!(
        at(&idle[0], "securityContext.runAsNonRoot"),
        &Value::from(true)
    );
    assert_eq!(
        strings(at(&idle[0], "securityContext.capabilities.drop")),
        ["ALL"]
    );
    assert!(idle[0].get("volumeMounts").is_none());
}

#[test]
fn the_job_lists_one_node() {
    let docs = yaml_docs("deploy/job.yaml");
    assert_eq!(docs.len(), 2);
    check_namespace(&docs[0], "job.yaml");
    let job = &docs[1];
    assert_eq!(job["apiVersion"], "batch/v1");
    assert_eq!(job["kind"], "Job");
    assert_eq!(at(job, "metadata.name"), "podports-NODE_NAME");
    assert_eq!(at(job, "spec.backoffLimit"), &Value::from(0));
    assert!(at(job, "spec.ttlSecondsAfterFinished").is_u64());
    let pod = at(job, "spec.template.spec");
    assert_eq!(at(pod, "nodeName"), "NODE_NAME");
    assert_eq!(at(pod, "restartPolicy"), "Never");
    let cs = at(pod, "containers").as_array().unwrap();
    assert_eq!(cs.len(), 1);
    check_node_container(&cs[0], pod, "job");
    // The one-command use in the file's header works as written.
    assert!(
        read("deploy/job.yaml")
            .contains("sed 's/NODE_NAME/node-1/g' deploy/job.yaml | kubectl apply -f -")
    );
}

/// The conformance Job is the node Job (same pod, privileges and mounts) running
/// `check --all-pods --profile auto -o json` instead of the listing.
#[test]
fn the_conformance_job_checks_every_pod_of_one_node() {
    let job = yaml_docs("deploy/job.yaml");
    let docs = yaml_docs("deploy/conformance-job.yaml");
    assert_eq!(docs.len(), 2);
    check_namespace(&docs[0], "conformance-job.yaml");
    let conf = &docs[1];
    assert_eq!(at(conf, "metadata.name"), "podports-check-NODE_NAME");
    let mut same = conf.clone();
    same["metadata"]["name"] = job[1]["metadata"]["name"].clone();
    let c = &mut same["spec"]["template"]["spec"]["containers"][0];
    let args = strings(&c["args"]);
    c["args"] = job[1]["spec"]["template"]["spec"]["containers"][0]["args"].clone();
    assert_eq!(
        same, job[1],
        "only the name and the args differ from job.yaml"
    );
    assert_eq!(
        args,
        [
            "check",
            "--all-pods",
            "--profile",
            "auto",
            "-o",
            "json",
            "--host-root",
            "/host"
        ]
    );
    let cli = Cli::try_parse_from(std::iter::once("podports".to_string()).chain(args))
        .unwrap_or_else(|e| panic!("podports does not take the args: {e}"));
    let plan = Plan::new(&cli, podports::plan::Terminal::default(), None).unwrap();
    let Plan::Check { plan: check, show } = plan else {
        panic!("the args do not plan a check: {plan:?}");
    };
    assert!(matches!(
        check.request.target,
        Target::AllPods { namespace: None }
    ));
    assert_eq!(
        check.inputs,
        [podports::check::run::Input::Profile("auto".into())]
    );
    assert_eq!(show, podports::plan::Show::Json);
    assert!(
        read("deploy/conformance-job.yaml").contains(
            "sed 's/NODE_NAME/node-1/g' deploy/conformance-job.yaml | kubectl apply -f -"
        )
    );
}

/// The plugin, with no kubectl needed (`--dry-run` and usage errors only).
fn plugin(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(path("deploy/kubectl-podports"));
    cmd.args(args)
        .stdin(Stdio::null())
        .env_remove("PODPORTS_IMAGE");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run deploy/kubectl-podports")
}

/// `kubectl podports node NODE check`: the conformance check from a node debug pod, as root,
/// made detached under a name of the plugin's (which it then follows, as `POD check`).
#[test]
fn plugin_checks_a_whole_node() {
    let img = image();
    let root = r#"3<<<'{"securityContext":{"runAsUser":0,"runAsNonRoot":false}}'"#;
    let base = format!(
        "debug node/node-1 --attach=false --container=NAME --image={img} --profile=sysadmin \
         --custom=/dev/fd/3 -- podports check --all-pods --host-root /host"
    );
    // The generated name, podports-check-EPOCH-PID, as NAME.
    let unname = |line: String| -> String {
        line.split(' ')
            .map(|w| match w.strip_prefix("--container=podports-check-") {
                Some(n) if n.split('-').all(|d| d.parse::<u64>().is_ok()) => {
                    "--container=NAME".to_string()
                }
                _ => w.to_string(),
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    let run = |args: &[&str]| {
        let o = plugin(args, &[]);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", text(&o.stderr));
        unname(text(&o.stdout))
    };
    assert_eq!(
        run(&["node", "node-1", "check", "--dry-run"]),
        format!("kubectl {base} --profile auto {root}\n")
    );
    assert_eq!(
        run(&[
            "node",
            "node-1",
            "check",
            "--context",
            "prod",
            "--profile",
            "istiod",
            "--namespace",
            "istio-system",
            "-o",
            "json",
            "--dry-run"
        ]),
        format!(
            "kubectl --context=prod {base} --profile istiod --namespace istio-system -o json \
             {root}\n"
        )
    );
    // -n/--namespace is podports' --namespace filter (podports has no -n), after `check` or
    // before `node`, with the plugin's other options there too; `--` passes the rest as is.
    let shop = format!("kubectl {base} --profile auto --namespace shop {root}\n");
    for args in [
        &["node", "node-1", "check", "-n", "shop", "--dry-run"][..],
        &["-n", "shop", "node", "node-1", "check", "--dry-run"],
        &["--dry-run", "--namespace=shop", "node", "node-1", "check"],
        &[
            "-n",
            "shop",
            "node",
            "node-1",
            "check",
            "--namespace",
            "shop",
            "--dry-run",
        ],
    ] {
        assert_eq!(run(args), shop, "{args:?}");
    }
    assert_eq!(
        run(&[
            "--context",
            "prod",
            "--kubeconfig=/k",
            "--image",
            "mine/pp:2",
            "-n",
            "shop",
            "node",
            "node-1",
            "check",
            "--profile",
            "istiod",
            "--dry-run",
            "--",
            "-o",
            "json",
        ]),
        format!(
            "kubectl --context=prod --kubeconfig=/k {} --namespace shop --profile istiod -o json \
             {root}\n",
            base.replace(&format!("--image={img}"), "--image=mine/pp:2")
        )
    );
    for (bad, says) in [
        (
            &["-n", "a", "node", "node-1", "check", "-n", "b"][..],
            "-n/--namespace given twice (a, b)",
        ),
        (&["node", "node-1", "check", "-n"], "-n needs a value"),
        (
            &["--root", "node", "node-1", "check"],
            "--root is for a pod, not `node NODE check`",
        ),
        (
            &["node", "node-1", "check", "--target=app"],
            "--target is for a pod",
        ),
    ] {
        let o = plugin(bad, &[]);
        assert_eq!(o.status.code(), Some(2), "{bad:?}");
        assert!(
            text(&o.stderr).contains(says),
            "{bad:?}: {}",
            text(&o.stderr)
        );
    }
    // Local files are sent (stdin open: -i), the JUnit comes back framed.
    let dir = std::env::temp_dir().join(format!("podports-ship-node-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let file = dir.join("podports.yaml");
    fs::write(&file, "listen:\n  - port: 9080\n").unwrap();
    let line = run(&[
        "node",
        "node-1",
        "check",
        "--dry-run",
        "--expect",
        file.to_str().unwrap(),
        "--junit",
        dir.join("out.xml").to_str().unwrap(),
    ]);
    let _ = fs::remove_dir_all(&dir);
    assert_eq!(
        line,
        format!(
            "kubectl {} --expect {} --junit - --expect-bundle - {root}\n",
            base.replace("--attach=false", "--attach=false -i"),
            file.display()
        )
    );
    for bad in [
        &["node"][..],
        &["node", "node-1"],
        &["node", "node-1", "list"],
    ] {
        let o = plugin(bad, &[]);
        assert_eq!(o.status.code(), Some(2), "{bad:?}");
        assert!(
            text(&o.stderr).contains("kubectl podports node NODE check"),
            "{bad:?}"
        );
    }
}

/// docs/ci.md's recipes: every file they `--expect` is shown there as the user's own (a
/// ```yaml block headed with its name) and is a valid expectation file; no recipe checks
/// `--profile X` beside a file that already `extends: X` (the profile would be checked twice,
/// the file's replacements undone); the sidecar's file, checked from istio-proxy by default,
/// names no owner of the app's items (unseen there: UNKNOWN), and the app's file is run with
/// `--target`.
#[test]
fn the_ci_recipes_show_the_users_files_and_check_each_set_once() {
    let ci = read("docs/ci.md");
    // The ```yaml blocks whose first line is `# NAME`.
    let mut files = std::collections::BTreeMap::new();
    for block in ci.split("```yaml\n").skip(1) {
        let body = block.split("```").next().unwrap();
        if let Some(name) = body.lines().next().and_then(|l| l.strip_prefix("# "))
            && !name.contains(' ')
            && name.ends_with(".yaml")
            && !name.starts_with('.')
        {
            files.insert(name.to_string(), body.to_string());
        }
    }
    assert!(files.contains_key("ci/podports.yaml"), "{files:?}");
    assert!(files.contains_key("ci/app.yaml"), "{files:?}");
    // The recipes' command lines, continuation lines joined.
    let joined = ci.replace("\\\n", " ").replace("\n        --", " --");
    let recipes: Vec<&str> = joined
        .lines()
        .filter(|l| l.contains("podports") && l.contains(" check ") && l.contains("--expect "))
        .collect();
    assert!(recipes.len() >= 4, "{recipes:?}");
    let dir = std::env::temp_dir().join(format!("podports-ship-ci-{}", std::process::id()));
    for line in &recipes {
        let words: Vec<&str> = line.split_whitespace().collect();
        for (i, w) in words.iter().enumerate() {
            if *w != "--expect" {
                continue;
            }
            let name = words[i + 1];
            let body = files
                .get(name)
                .unwrap_or_else(|| panic!("{line}: {name} is not shown in docs/ci.md"));
            for x in body
                .lines()
                .filter_map(|l| l.trim().strip_prefix("extends: "))
            {
                let x = x.split_whitespace().next().unwrap();
                assert!(
                    !line.contains(&format!("--profile {x}")),
                    "{line}: --profile {x} beside {name}, which extends it"
                );
            }
            assert!(
                !body.contains("owner: app")
                    || line.contains("--target ")
                    || line.contains(" node "),
                "{line}: {name} says owner: app, seen only from the app's container or the node"
            );
            // A valid expectation file: podports checks it (pass or fail), never exit 2.
            let file = dir.join(name);
            fs::create_dir_all(file.parent().unwrap()).unwrap();
            fs::write(&file, body).unwrap();
            let o = podports(&["check", "--expect", file.to_str().unwrap()]);
            assert!(
                matches!(o.status.code(), Some(0 | 1)),
                "{name}: {}",
                text(&o.stderr)
            );
        }
    }
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn the_krew_template_installs_the_plugin() {
    let docs = yaml_docs("deploy/krew/podports.yaml");
    assert_eq!(docs.len(), 1);
    let p = &docs[0];
    assert_eq!(
        p["apiVersion"],
        "krew.googlecontainertools.github.com/v1alpha2"
    );
    assert_eq!(p["kind"], "Plugin");
    assert_eq!(at(p, "metadata.name"), "podports");
    assert_eq!(at(p, "spec.version"), "${VERSION}");
    let platforms = at(p, "spec.platforms").as_array().unwrap();
    assert!(!platforms.is_empty());
    for pl in platforms {
        assert_eq!(pl["bin"], "kubectl-podports");
        assert_eq!(pl["sha256"], "${SHA256}");
        assert!(
            pl["uri"]
                .as_str()
                .unwrap()
                .ends_with("/${VERSION}/kubectl-podports.tar.gz")
        );
        assert_eq!(at(pl, "files.0.from"), "kubectl-podports");
        let oses = strings(at(pl, "selector.matchExpressions.0.values"));
        assert!(oses.contains(&"linux".to_string()), "{oses:?}");
    }
    assert!(at(p, "spec.shortDescription").as_str().unwrap().len() <= 60);
}

// ---------------------------------------------------------------------------------------------
// The image, the static binary, versions

/// The non-comment lines of a Containerfile, split into its stages (each from its FROM).
fn stages(file: &str) -> Vec<Vec<String>> {
    let mut stages: Vec<Vec<String>> = Vec::new();
    for l in file.lines().map(str::trim) {
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        if l.starts_with("FROM ") {
            stages.push(Vec::new());
        }
        stages.last_mut().expect("a FROM first").push(l.to_string());
    }
    stages
}

/// The shipped image's stage: scratch, the binary alone, non-root by default.
fn assert_scratch_image(stage: &[String], copy: &str) {
    assert_eq!(stage[0], "FROM scratch");
    assert!(stage.iter().any(|l| l == copy), "{stage:?} lacks `{copy}`");
    let user = stage.iter().find_map(|l| l.strip_prefix("USER ")).unwrap();
    assert_eq!(user, "65532:65532", "non-root by default");
    assert!(
        stage
            .iter()
            .any(|l| l == "ENTRYPOINT [\"/usr/local/bin/podports\"]")
    );
    // Nothing else in the image.
    let copies = stage
        .iter()
        .filter(|l| l.starts_with("COPY") || l.starts_with("ADD"))
        .count();
    assert_eq!(copies, 1, "{stage:?}");
}

#[test]
fn the_containerfile_puts_each_architectures_static_binary_into_a_non_root_scratch_image() {
    // ci/image lays out its build context as linux/<arch>/podports and builds with buildah
    // --platform, which sets TARGETARCH.
    let stages = stages(&read("Containerfile"));
    assert_eq!(stages.len(), 1, "one stage: no build inside the image");
    assert!(stages[0].iter().any(|l| l == "ARG TARGETARCH"));
    assert_scratch_image(
        &stages[0],
        "COPY linux/${TARGETARCH}/podports /usr/local/bin/podports",
    );
    let script = read("ci/image");
    assert!(script.contains("linux/$arch/podports") && script.contains("-f Containerfile"));
    for triple in ["x86_64-unknown-linux-musl", "aarch64-unknown-linux-musl"] {
        assert!(script.contains(triple), "ci/image builds {triple}");
    }
}

#[test]
fn the_source_containerfile_builds_the_static_binary_into_the_same_image() {
    let file = read("Containerfile.source");
    let stages = stages(&file);
    assert_eq!(stages.len(), 2, "a build stage and the image");
    assert_scratch_image(
        &stages[1],
        "COPY --from=build /src/target/x86_64-unknown-linux-musl/release/podports \
         /usr/local/bin/podports",
    );
    assert!(
        stages[0]
            .iter()
            .any(|l| l.starts_with(&format!("RUN {}", static_build()))),
        "{:?}",
        stages[0]
    );
    assert!(
        file.contains(&format!("-f Containerfile.source -t {} .", image())),
        "the header's command tags the image"
    );
}

/// The one documented command for the static binary.
fn static_build() -> &'static str {
    "cargo build --release --locked --target x86_64-unknown-linux-musl"
}

#[test]
fn the_release_profile_makes_a_small_binary() {
    let manifest: toml::Table = read("Cargo.toml").parse().unwrap();
    let release = &manifest["profile"]["release"];
    assert_eq!(release["lto"].as_bool(), Some(true));
    assert_eq!(release["codegen-units"].as_integer(), Some(1));
    assert_eq!(release["strip"].as_bool(), Some(true));
}

#[test]
fn one_version_everywhere() {
    let plugin = read("deploy/kubectl-podports");
    assert!(
        plugin.contains(&format!("\nVERSION={VERSION}\n")),
        "plugin VERSION"
    );
    for file in ["Containerfile", "Containerfile.source"] {
        assert!(
            read(file).contains(&format!("org.opencontainers.image.version=\"{VERSION}\"")),
            "{file}"
        );
    }
    for manifest in ["deploy/daemonset.yaml", "deploy/job.yaml"] {
        assert!(
            read(manifest).contains(&format!("image: {}", image())),
            "{manifest}"
        );
    }
}

#[test]
fn the_install_docs_give_each_install_its_one_command() {
    let readme = read("README.md");
    let install = readme
        .split("\n## Install")
        .nth(1)
        .expect("README has an Install section")
        .split("\n## ")
        .next()
        .unwrap();
    let docs = read("docs/install-and-plugin.md");
    let short = [
        "cargo install --locked --path .",
        static_build(),
        "ci/image",
        "--target aarch64-unknown-linux-musl",
        &format!("docker build -f Containerfile.source -t {} .", image()),
        "kubectl apply -f deploy/daemonset.yaml",
        "install -m 0755 deploy/kubectl-podports /usr/local/bin/kubectl-podports",
    ];
    for command in short {
        assert!(
            install.contains(command),
            "README install section lacks `{command}`"
        );
    }
    for command in short.into_iter().chain([
        "sed 's/NODE_NAME/node-1/g' deploy/job.yaml | kubectl apply -f -",
        "podports completions bash",
        "podports man",
    ]) {
        assert!(
            docs.contains(command),
            "docs/install-and-plugin.md lacks `{command}`"
        );
    }
    assert!(install.contains("docs/install-and-plugin.md"));
}
