//! The kubectl plugin's stand-in cluster, shared by tests/plugin_check.rs (`kubectl podports
//! POD check`) and tests/plugin_node.rs (`kubectl podports node NODE check`): a `kubectl` on
//! PATH that records every call and runs a REAL podports (the built binary) where the debug
//! container would, and a pod as the API server serves it. It must never reach a cluster: only
//! its own kubectl is first on PATH, and it knows no other calls.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};

use super::{Netns, Proc, install_as};

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub fn image() -> String {
    format!("ghcr.io/podports/podports:{}", env!("CARGO_PKG_VERSION"))
}

/// A pod as the API server returns it: an app and an istio-proxy container (in `containers`,
/// or in `initContainers` as a native sidecar), each with the given securityContext, and
/// annotations whose strings hold JSON-looking text (the reader must not be fooled).
pub fn pod(pod_sc: Value, proxy_sc: Value, native_sidecar: bool) -> Value {
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

/// The stand-in kubectl: `get pod -o json` serves the pod with the ephemeral container's status
/// (or, for the node debug pod, the pod with its container's status); `debug --attach=false`
/// starts the "container" (podports, the built binary: for a pod in $FAKE_NETNS, for
/// `debug node/$(cat node)` in the test's own network namespace with its `/host` argument
/// replaced by $FAKE_HOST, as the debug pod mounts the host's / there; its stdin a fifo when
/// `-i`); `attach -i` writes its stdin to that fifo and keeps it open until the container ends
/// (podports must not need EOF); `logs` prints what podports wrote. fd 3 of `debug` is kept in
/// $FAKE_DIR/custom. $FAKE_DIR/mode: `run` (attach returns the container's code), `attach0`
/// (attach always returns 0), `apidown` (`debug` fails as kubectl does with no API server: klog
/// lines repeated, an escape, then the real error), `unpullable` (the container waits in ErrImagePull forever),
/// `pending` (the pod never gets a status for it, as on an unreachable node), `refuse`
/// (admission refuses the container), `crash` (the container dies with 137), `noattach` (attach
/// fails: podports waits for its stdin).
pub const FAKE_CLUSTER: &str = r#"#!/bin/sh
line=
for a in "$@"; do line="$line[$a]"; done
printf '%s\n' "$line" >> "$FAKE_DIR/calls"
mode=$(cat "$FAKE_DIR/mode")
sub=
for a in "$@"; do
  case $a in --*) ;; *) sub=$a; break ;; esac
done
ec_status() {
  if [ ! -f "$FAKE_DIR/ec_name" ] || [ "$mode" = pending ]; then printf '[]'; return; fi
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
    want= prev=
    for a in "$@"; do
      [ "$prev" = pod ] && want=$a
      prev=$a
    done
    if [ -f "$FAKE_DIR/debug_pod" ] && [ "$want" = "$(cat "$FAKE_DIR/debug_pod")" ]; then
      phase=Running
      [ "$mode" = pending ] && phase=Pending
      printf '{\n  "apiVersion": "v1",\n  "kind": "Pod",\n  "metadata": {"name": "%s", "namespace": "default"},\n  "spec": {"nodeName": "%s", "hostPID": true, "hostNetwork": true, "restartPolicy": "Never", "containers": [{"name": "%s", "image": "%s"}]},\n  "status": {"phase": "%s", "containerStatuses": %s}\n}\n' \
        "$want" "$(cat "$FAKE_DIR/node")" "$(cat "$FAKE_DIR/ec_name")" "$(cat "$FAKE_DIR/ec_image")" "$phase" "$(ec_status)"
      exit 0
    fi
    if [ ! -f "$FAKE_DIR/pod-head.json" ]; then
      echo 'Error from server (NotFound): pods "p" not found' >&2
      exit 1
    fi
    cat "$FAKE_DIR/pod-head.json"
    printf ',\n  "status": {"phase": "Running", "ephemeralContainerStatuses": %s}\n}\n' "$(ec_status)"
    ;;
  debug)
    attach=true stdin=false quiet=false name= image= node=
    while [ $# -gt 0 ]; do
      case $1 in
        --attach=false) attach=false ;;
        -i) stdin=true ;;
        --quiet) quiet=true ;;
        --container=*) name=${1#--container=} ;;
        --image=*) image=${1#--image=} ;;
        node/*) node=${1#node/} ;;
        --) shift; break ;;
      esac
      shift
    done
    [ "$1" = podports ] && shift
    if [ -r /dev/fd/3 ]; then cat /dev/fd/3 > "$FAKE_DIR/custom"; fi
    if [ -n "$node" ] && [ "$node" != "$(cat "$FAKE_DIR/node")" ]; then
      echo 'Error from server (NotFound): nodes "'"$node"'" not found' >&2
      exit 1
    fi
    if [ -z "$node" ] && [ ! -f "$FAKE_DIR/pod-head.json" ]; then
      echo 'Error from server (NotFound): pods "p" not found' >&2
      exit 1
    fi
    if [ "$mode" = apidown ]; then
      printf 'I1203 10:00:00.000001    4242 cached.go:1] early noise\n' >&2
      for us in 000002 000003 000004 000005; do
        printf 'E1203 10:00:00.%s    4242 memcache.go:265] "Unhandled Error" err="couldn'"'"'t get current server API group list: Get \\"https://127.0.0.1:6443/api?timeout=32s\\": dial tcp 127.0.0.1:6443: connect: connection refused"\n' "$us" >&2
      done
      printf 'W1203 10:00:00.000006    4242 warnings.go:70] \033[33mtrying\033[0m again\tin\r 1s\a\n' >&2
      echo 'The connection to the server 127.0.0.1:6443 was refused - did you specify the right host or port?' >&2
      exit 1
    fi
    if [ "$mode" = refuse ]; then
      echo 'Error from server (Forbidden): pods "productpage-v1" is forbidden: violates PodSecurity "baseline:latest": non-default capabilities (container "'"$name"'" must not include "SYS_PTRACE" in securityContext.capabilities.add)' >&2
      exit 1
    fi
    $attach && { echo "the fake wants --attach=false" >&2; exit 9; }
    printf '%s' "$name" > "$FAKE_DIR/ec_name"
    printf '%s' "$image" > "$FAKE_DIR/ec_image"
    if [ -n "$node" ]; then
      pod="node-debugger-$node-x2x7k"
      printf '%s' "$pod" > "$FAKE_DIR/debug_pod"
      $quiet || echo "Creating debugging pod $pod with container $name on node $node."
      # The debug pod mounts the host's / at /host.
      for a in "$@"; do
        shift
        [ "$a" = /host ] && a=$FAKE_HOST
        set -- "$@" "$a"
      done
    fi
    [ "$mode" = unpullable ] || [ "$mode" = pending ] && exit 0
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
      if [ -n "$node" ]; then
        "$PODPORTS" "$@" <"$input" >"$FAKE_DIR/log" 2>&1
      else
        nsenter --net="$FAKE_NETNS" -- "$PODPORTS" "$@" <"$input" >"$FAKE_DIR/log" 2>&1
      fi
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
pub struct Cluster {
    pub dir: PathBuf,
}

impl Cluster {
    pub fn new(name: &str, mode: &str) -> Cluster {
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
        fs::write(dir.join("node"), "node-1").unwrap();
        Cluster { dir }
    }

    /// Writes a local file (relative to the directory the plugin runs in).
    pub fn file(&self, rel: &str, text: &str) {
        let path = self.dir.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    /// Runs the plugin in the directory; the pod's "containers" run in `ns`.
    pub fn run(&self, ns: &Netns, args: &[&str]) -> Output {
        self.plugin(args)
            .env("FAKE_NETNS", ns.path())
            .output()
            .expect("run deploy/kubectl-podports")
    }

    /// Runs the plugin in the directory; the node debug pod's `/host` is `host`.
    pub fn run_node(&self, host: &Path, args: &[&str]) -> Output {
        self.plugin(args)
            .env("FAKE_HOST", host)
            .output()
            .expect("run deploy/kubectl-podports")
    }

    fn plugin(&self, args: &[&str]) -> Command {
        let path_env = format!(
            "{}:{}",
            self.dir.join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut cmd =
            Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kubectl-podports"));
        cmd.args(args)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .env_remove("PODPORTS_IMAGE")
            .env("PATH", path_env)
            .env("FAKE_DIR", &self.dir)
            .env("PODPORTS", env!("CARGO_BIN_EXE_podports"));
        cmd
    }

    pub fn calls(&self) -> Vec<String> {
        fs::read_to_string(self.dir.join("calls"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Forgets the last container (as a new `kubectl debug` adds a new one).
    pub fn reset(&self) {
        self.stop();
        for f in [
            "ec_name",
            "ec_image",
            "ec_pid",
            "stdin",
            "started",
            "exit",
            "log",
            "calls",
            "debug_pod",
            "custom",
        ] {
            let _ = fs::remove_file(self.dir.join(f));
        }
    }

    pub fn stop(&self) {
        let pid = fs::read_to_string(self.dir.join("ec_pid")).unwrap_or_default();
        if let Ok(pid) = pid.trim().parse::<i32>() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }

    /// The JUnit file the plugin wrote here, parsed: (tests, failures) of `<testsuites>`.
    pub fn junit(&self, rel: &str) -> (String, u32, u32) {
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
pub fn pod_netns() -> (Netns, Proc) {
    let ns = Netns::new();
    let app = Proc::start(&ns, &install_as("myapp"), &["tcp-listen=0.0.0.0:9080"]);
    (ns, app)
}

pub const PASSES: &str = "listen:\n  - port: 9080\n    name: productpage\n";
pub const FAILS: &str = "# the app's admin port\nlisten:\n  - port: 9090\n";
pub const BAD: &str = "listen:\n  - port: 9080\n    bogus: 1\n";
