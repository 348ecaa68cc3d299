//! The least privilege that shows the sidecar's owners, on the kernel: podports running as the
//! sidecar's uid and gid (1337, as Istio's) with no capability, in the sidecar's pid namespace
//! (as `kubectl debug --target=istio-proxy` puts it), names envoy and pilot-agent as the
//! holders of their sockets, exactly as `ss -p` run as the same user does, and names the app's
//! sockets (the app runs as another uid in another pid namespace, as another container of the
//! pod) as held outside the pid namespace, not hidden for lack of privilege. Then the three
//! hidden-owner messages, each for its own cause: root without CAP_SYS_PTRACE, a non-root uid
//! with SYS_PTRACE in its bounding set only, and a denial CAP_SYS_PTRACE does not lift (a user
//! namespace of its own). Needs root: without it these skip with a reason, and under CI=true
//! fail.
// A test: it makes sockets, files and processes freely (clippy.toml keeps them in sys/).
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{Netns, parse_ss_line, require_root, sockholder_exe};
use serde_json::Value;

/// A directory any uid may enter, with podports and the helper under mesh names, and a
/// world-writable directory for ready files.
struct Bins {
    dir: PathBuf,
}

impl Bins {
    fn get() -> &'static Bins {
        static BINS: OnceLock<Bins> = OnceLock::new();
        BINS.get_or_init(|| {
            // A static is never dropped: sweep what earlier, finished runs left.
            if let Ok(entries) = fs::read_dir(std::env::temp_dir()) {
                for e in entries.flatten() {
                    let name = e.file_name().to_string_lossy().into_owned();
                    let pid = name
                        .strip_prefix("podports-leastpriv-")
                        .and_then(|r| r.split('-').next())
                        .and_then(|p| p.parse::<u32>().ok());
                    if pid.is_some_and(|p| !Path::new(&format!("/proc/{p}")).exists()) {
                        let _ = fs::remove_dir_all(e.path());
                    }
                }
            }
            let dir =
                std::env::temp_dir().join(format!("podports-leastpriv-{}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            let bin = dir.join("usr/local/bin");
            fs::create_dir_all(&bin).unwrap();
            for d in [
                dir.as_path(),
                &dir.join("usr"),
                &dir.join("usr/local"),
                &bin,
            ] {
                fs::set_permissions(d, fs::Permissions::from_mode(0o755)).unwrap();
            }
            let copy = |from: &Path, to: &Path| {
                fs::copy(from, to).unwrap_or_else(|e| panic!("{}: {e}", to.display()));
                fs::set_permissions(to, fs::Permissions::from_mode(0o755)).unwrap();
            };
            copy(
                Path::new(env!("CARGO_BIN_EXE_podports")),
                &dir.join("podports"),
            );
            for name in ["pilot-agent", "envoy", "productpage"] {
                copy(&sockholder_exe(), &bin.join(name));
            }
            Bins { dir }
        })
    }

    fn exe(&self, name: &str) -> PathBuf {
        if name == "podports" {
            self.dir.join(name)
        } else {
            self.dir.join("usr/local/bin").join(name)
        }
    }
}

impl Drop for Bins {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// A per-test directory every uid may write its ready file into.
struct Ready(PathBuf);

impl Ready {
    fn new(test: &str) -> Ready {
        let d =
            std::env::temp_dir().join(format!("podports-leastpriv-{}-{test}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        fs::set_permissions(&d, fs::Permissions::from_mode(0o777)).unwrap();
        Ready(d)
    }
}

impl Drop for Ready {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A process started in its own pid namespace (`unshare --pid --fork --kill-child`: killing
/// unshare kills it), killed and reaped on Drop.
struct Isolated(Child);

impl Drop for Isolated {
    fn drop(&mut self) {
        // unshare's child changed its credentials (setpriv), which clears the parent-death
        // signal --kill-child set: kill it (pid 1 of its namespace, so all of it) first.
        let pid = self.0.id();
        let children =
            fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
        for child in children
            .split_whitespace()
            .filter_map(|c| c.parse::<i32>().ok())
        {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const SETPRIV: [&str; 1] = ["setpriv"];

fn as_user(uid: u32) -> Vec<String> {
    let mut v: Vec<String> = SETPRIV.iter().map(|s| s.to_string()).collect();
    v.extend([
        format!("--reuid={uid}"),
        format!("--regid={uid}"),
        "--clear-groups".to_string(),
    ]);
    v
}

/// The app: `productpage` as uid 1000 listening on 9080, in a pid namespace of its own (another
/// container of the pod), in `ns`.
fn app_elsewhere(ns: &Netns, ready: &Ready) -> Isolated {
    let file = ready.0.join("app");
    let child = Command::new("nsenter")
        .arg(format!("--net={}", ns.path().display()))
        .args(["--", "unshare", "--pid", "--fork", "--kill-child", "--"])
        .args(as_user(1000))
        .arg(Bins::get().exe("productpage"))
        .arg("--ready")
        .arg(&file)
        .args(["tcp-listen=0.0.0.0:9080", "udp-bind=0.0.0.0:9081"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("start the app");
    let app = Isolated(child);
    let deadline = Instant::now() + common::READY_TIMEOUT;
    while !fs::read_to_string(&file).is_ok_and(|t| t.contains("socket ")) {
        assert!(Instant::now() < deadline, "the app wrote no ready file");
        std::thread::sleep(Duration::from_millis(10));
    }
    app
}

/// Runs `script` with sh in `ns`, in a fresh pid namespace with its own /proc, as `init_as`
/// (setpriv words, or none for root); `$PODPORTS`, `$PILOT`, `$ENVOY`, `$R` (the ready
/// directory) are set.
fn in_pid_ns(ns: &Netns, ready: &Ready, init_as: &[String], script: &str) -> Output {
    let bins = Bins::get();
    Command::new("nsenter")
        .arg(format!("--net={}", ns.path().display()))
        .args([
            "--",
            "unshare",
            "--pid",
            "--fork",
            "--mount-proc",
            "--kill-child",
            "--",
        ])
        .args(init_as)
        .args(["sh", "-c", script])
        .env("PODPORTS", bins.exe("podports"))
        .env("PILOT", bins.exe("pilot-agent"))
        .env("ENVOY", bins.exe("envoy"))
        .env("R", &ready.0)
        .stdin(Stdio::null())
        .output()
        .expect("run sh in a pid namespace")
}

const WAIT_AGENT: &str = r#"i=0
while [ ! -s "$R/agent" ]; do
  i=$((i+1))
  if [ $i -gt 400 ]; then echo "pilot-agent not ready" >&2; cat "$R/agent.err" >&2; exit 90; fi
  sleep 0.025
done
"#;

fn doc(stdout: &[u8]) -> Value {
    serde_json::from_slice(stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(stdout)))
}

fn port(s: &Value) -> Option<u64> {
    s["local"]["port"].as_u64()
}

fn warnings(doc: &Value) -> String {
    doc["warnings"]
        .as_array()
        .map(|w| {
            w.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

#[cfg_attr(podports_not_root, ignore = "needs root")]
#[test]
fn as_the_sidecars_uid_envoy_and_pilot_agent_own_their_ports_and_the_app_is_outside() {
    if !require_root(
        "as_the_sidecars_uid_envoy_and_pilot_agent_own_their_ports_and_the_app_is_outside",
    ) {
        return;
    }
    let ns = Netns::new();
    let ready = Ready::new("sidecar");
    let _app = app_elsewhere(&ns, &ready);
    // pilot-agent (pid 1's child) starts envoy; podports and ss run as 1337 too, with no
    // capability, in the sidecar's pid namespace, while both hold their sockets.
    let script = format!(
        r#""$PILOT" --ready "$R/agent" "tcp-listen=[::]:15020" udp-bind=127.0.0.1:15053 \
  spawn="$ENVOY" --ready "$R/envoy" tcp-listen=0.0.0.0:15001,reuseport \
  tcp-listen=0.0.0.0:15001,reuseport tcp-listen=0.0.0.0:15021 tcp-connect=127.0.0.1:15020 ';;' \
  wait-file="$R/envoy" >/dev/null 2>"$R/agent.err" &
{WAIT_AGENT}
grep -E '^Cap(Eff|Prm)' /proc/self/status >&2
"$PODPORTS" -o json --fd-walk proc || exit 91
echo ---ss---
ss -tuxanpeH
"#
    );
    let out = in_pid_ns(&ns, &ready, &as_user(1337), &script);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{stderr}\n{stdout}");
    // No capability at all.
    assert!(stderr.contains("CapEff:\t0000000000000000"), "{stderr}");
    let (json, ss) = stdout.split_once("---ss---\n").expect("the ss marker");
    let doc = doc(json.as_bytes());

    // Owners as ss run as the same user sees them, socket for socket (tcp and udp).
    let ss: Vec<_> = ss
        .lines()
        .filter(|l| l.starts_with("tcp") || l.starts_with("udp"))
        .map(|l| parse_ss_line(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    let key = |proto: &str, state: &str, port: Option<u64>| format!("{proto} {state} {port:?}");
    let mut theirs: BTreeMap<String, Vec<Vec<i32>>> = BTreeMap::new();
    for s in &ss {
        let mut pids = s.pids();
        pids.sort();
        pids.dedup();
        theirs
            .entry(key(&s.proto, &s.state, s.local_port.map(u64::from)))
            .or_default()
            .push(pids);
    }
    let mut ours: BTreeMap<String, Vec<Vec<i32>>> = BTreeMap::new();
    let sockets = doc["sockets"].as_array().expect("sockets");
    for s in sockets
        .iter()
        .filter(|s| s["proto"] == "tcp" || s["proto"] == "udp")
    {
        let mut pids: Vec<i32> = s["processes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["pid"].as_i64().unwrap() as i32)
            .collect();
        pids.sort();
        pids.dedup();
        ours.entry(key(
            s["proto"].as_str().unwrap(),
            s["state"].as_str().unwrap(),
            port(s),
        ))
        .or_default()
        .push(pids);
    }
    for v in theirs.values_mut().chain(ours.values_mut()) {
        v.sort();
    }
    assert_eq!(ours, theirs, "podports and ss -p disagree");

    let kinds_on = |p: u64| -> Vec<String> {
        let mut k: Vec<String> = sockets
            .iter()
            .filter(|s| port(s) == Some(p) && s["state"] != "ESTABLISHED")
            .flat_map(|s| s["processes"].as_array().unwrap().iter())
            .map(|p| p["kind"].as_str().unwrap().to_string())
            .collect();
        k.dedup();
        k
    };
    assert_eq!(kinds_on(15020), ["pilot-agent"]);
    assert_eq!(kinds_on(15053), ["pilot-agent"]);
    assert_eq!(kinds_on(15001), ["envoy"]);
    assert_eq!(kinds_on(15021), ["envoy"]);
    // The app's sockets: no holder here, and said to be held from outside the pid namespace.
    let app: Vec<&Value> = sockets
        .iter()
        .filter(|s| matches!(port(s), Some(9080 | 9081)))
        .collect();
    assert_eq!(app.len(), 2, "{app:?}");
    for s in &app {
        assert_eq!(s["processes"].as_array().map(Vec::len), Some(0), "{s}");
        assert_eq!(s["unowned"], "outside_pid_namespace", "{s}");
    }
    // Nothing is hidden for lack of privilege.
    assert_eq!(doc["hidden_owners"], 0);
    assert!(
        sockets.iter().all(|s| s["unowned"] != "hidden"),
        "{sockets:?}"
    );
    let w = warnings(&doc);
    assert!(!w.contains("owners hidden"), "{w}");
    // No remedy for a privilege problem there is not.
    assert!(
        !w.contains("CAP_SYS_PTRACE") && !w.contains("--root"),
        "{w}"
    );
    assert!(
        w.contains("2 sockets have no holder in this pid namespace")
            && w.contains("outside it")
            && w.contains("--target")
            && w.contains("shareProcessNamespace"),
        "{w}"
    );
}

/// podports run by `prefix` (setpriv or unshare words) in a pid namespace of its own, with the
/// app (uid 1000) started before it in the same one: podports' JSON.
fn hidden_case(test: &str, prefix: &[&str]) -> Value {
    let ns = Netns::new();
    let ready = Ready::new(test);
    // sh's words after the script: $0, then the prefix as "$@".
    let script = format!(
        r#"setpriv --reuid=1000 --regid=1000 --clear-groups "$APP" --ready "$R/agent" \
  tcp-listen=0.0.0.0:9080 >/dev/null 2>"$R/agent.err" &
{WAIT_AGENT}
exec "$@" "$PODPORTS" -o json --fd-walk proc
"#
    );
    let bins = Bins::get();
    let out = Command::new("nsenter")
        .arg(format!("--net={}", ns.path().display()))
        .args([
            "--",
            "unshare",
            "--pid",
            "--fork",
            "--mount-proc",
            "--kill-child",
            "--",
            "sh",
            "-c",
            &script,
            "sh",
        ])
        .args(prefix)
        .env("PODPORTS", bins.exe("podports"))
        .env("APP", bins.exe("productpage"))
        .env("R", &ready.0)
        .stdin(Stdio::null())
        .output()
        .expect("run sh in a pid namespace");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = doc(&out.stdout);
    let app: Vec<&Value> = doc["sockets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| port(s) == Some(9080))
        .collect();
    assert_eq!(app.len(), 1, "{doc}");
    assert_eq!(app[0]["processes"].as_array().map(Vec::len), Some(0));
    assert_eq!(app[0]["unowned"], "hidden", "{}", app[0]);
    assert!(doc["hidden_owners"].as_u64() >= Some(1), "{doc}");
    let w = warnings(&doc);
    // Never a kubectl profile: the one in use cannot be known from inside.
    assert!(!w.contains("profile"), "{w}");
    doc
}

#[cfg_attr(podports_not_root, ignore = "needs root")]
#[test]
fn root_without_cap_sys_ptrace_is_told_to_get_it_or_run_as_the_holders_uid() {
    if !require_root("root_without_cap_sys_ptrace_is_told_to_get_it_or_run_as_the_holders_uid") {
        return;
    }
    let doc = hidden_case(
        "root",
        &[
            "setpriv",
            "--bounding-set=-sys_ptrace",
            "--inh-caps=-sys_ptrace",
        ],
    );
    let w = warnings(&doc);
    assert!(
        w.contains("podports runs as root without CAP_SYS_PTRACE in its effective set"),
        "{w}"
    );
    assert!(w.contains("uid 1000 gid 1000 (pid "), "{w}");
    assert!(
        w.contains("`--root`") && w.contains("`kubectl podports --run-as 1000:1000`"),
        "{w}"
    );
    assert!(
        !w.contains("bounding set only") && !w.contains("still refused"),
        "{w}"
    );
}

#[cfg_attr(podports_not_root, ignore = "needs root")]
#[test]
fn a_uid_with_sys_ptrace_in_its_bounding_set_only_is_told_it_never_takes_effect() {
    if !require_root("a_uid_with_sys_ptrace_in_its_bounding_set_only_is_told_it_never_takes_effect")
    {
        return;
    }
    // As kubectl's general profile leaves the image's uid: SYS_PTRACE bounding, not effective.
    let doc = hidden_case(
        "bounding",
        &[
            "setpriv",
            "--reuid=65532",
            "--regid=65532",
            "--clear-groups",
        ],
    );
    let w = warnings(&doc);
    assert!(
        w.contains("podports runs as uid 65532 gid 65532 without CAP_SYS_PTRACE effective"),
        "{w}"
    );
    assert!(w.contains("bounding set only"), "{w}");
    assert!(
        w.contains("`kubectl podports --run-as 1000:1000`") && w.contains("`--root`"),
        "{w}"
    );
    assert!(
        !w.contains("root without") && !w.contains("still refused"),
        "{w}"
    );
    // Without SYS_PTRACE in the bounding set (kubectl's restricted profile): not said.
    let doc = hidden_case(
        "nobounding",
        &[
            "setpriv",
            "--reuid=65532",
            "--regid=65532",
            "--clear-groups",
            "--bounding-set=-sys_ptrace",
        ],
    );
    let w = warnings(&doc);
    assert!(w.contains("runs as uid 65532 gid 65532"), "{w}");
    assert!(!w.contains("bounding set"), "{w}");
}

#[cfg_attr(podports_not_root, ignore = "needs root")]
#[test]
fn a_denial_cap_sys_ptrace_does_not_lift_suggests_no_uid_and_no_capability() {
    if !require_root("a_denial_cap_sys_ptrace_does_not_lift_suggests_no_uid_and_no_capability") {
        return;
    }
    // Root with every capability, in a user namespace of its own: they do not reach the app.
    let doc = hidden_case("policy", &["unshare", "--user", "--map-root-user"]);
    let w = warnings(&doc);
    assert!(
        w.contains("podports runs as root with CAP_SYS_PTRACE effective and was still refused"),
        "{w}"
    );
    assert!(w.contains("user namespace"), "{w}");
    assert!(!w.contains("--run-as") && !w.contains("`--root`"), "{w}");
    assert!(
        !w.contains("bounding set only") && !w.contains("root without"),
        "{w}"
    );
}

/// Landlock (Linux 5.13+) as a policy that denies reading other processes' fds to root with
/// every capability: a process in a Landlock domain may not ptrace-read (so not read
/// `/proc/<pid>/fd` of) a process outside it. `python3 -c LANDLOCK PROGRAM ARGS...` runs
/// PROGRAM in a domain of its own that restricts nothing else (only executing files is
/// handled, and allowed everywhere).
const LANDLOCK: &str = r#"
import ctypes, os, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
attr = struct.pack("QQQ", 1, 0, 0)
fd = libc.syscall(444, ctypes.create_string_buffer(attr), len(attr), 0)
if fd < 0: sys.exit("landlock_create_ruleset: errno %d" % ctypes.get_errno())
root = os.open("/", os.O_PATH | os.O_CLOEXEC)
rule = struct.pack("=Qi", 1, root)
if libc.syscall(445, fd, 1, ctypes.create_string_buffer(rule), 0) < 0: sys.exit("landlock_add_rule")
libc.prctl(38, 1, 0, 0, 0)
if libc.syscall(446, fd, 0) < 0: sys.exit("landlock_restrict_self")
os.execv(sys.argv[1], sys.argv[1:])
"#;

/// Issue 14: where a policy denies root (with CAP_SYS_PTRACE) the fds of the pod's processes,
/// both fd walks give one account: the same sockets hidden, the same count, the same cause and
/// remedy (none: no uid or capability helps). The kernel walk sees the fds but shows only what
/// /proc would; it names exactly the refused holders, where /proc names every process it could
/// not read.
#[cfg_attr(podports_not_root, ignore = "needs root")]
#[test]
fn under_a_policy_denial_both_fd_walks_give_the_same_account() {
    if !require_root("under_a_policy_denial_both_fd_walks_give_the_same_account") {
        return;
    }
    let ns = Netns::new();
    let app = common::Proc::start(
        &ns,
        &common::install_as("productpage"),
        &["user=1000", "tcp-listen=0.0.0.0:9080"],
    );
    let agent = common::Proc::start(
        &ns,
        &common::install_as("pilot-agent"),
        &["tcp-listen=0.0.0.0:15020"],
    );
    let run = |walk: &str| -> Value {
        let out = Command::new("python3")
            .args(["-c", LANDLOCK, env!("CARGO_BIN_EXE_podports")])
            .args(["--netns", ns.name(), "-o", "json", "--fd-walk", walk])
            .output()
            .expect("run podports under Landlock");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{walk}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        doc(&out.stdout)
    };
    let (proc, kernel) = (run("proc"), run("bpf"));
    assert_eq!(kernel["fd_walk"], "bpf", "{kernel}");
    let account = |d: &Value| -> Vec<(Option<u64>, Value, usize)> {
        d["sockets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    port(s),
                    s["unowned"].clone(),
                    s["processes"].as_array().map_or(0, Vec::len),
                )
            })
            .collect()
    };
    assert_eq!(account(&proc), account(&kernel));
    for port in [9080, 15020] {
        assert!(
            account(&proc).contains(&(Some(port), Value::from("hidden"), 0)),
            "{port}: {proc}"
        );
    }
    assert_eq!(proc["hidden_owners"], kernel["hidden_owners"]);
    assert_eq!(proc["hidden_owners"], 2);
    // The same cause and remedy; the lists of refused processes differ only in breadth.
    let cause = |d: &Value| -> String {
        let w = warnings(d);
        w.split_once("podports runs as")
            .map(|(_, c)| c.to_string())
            .unwrap_or_else(|| panic!("no cause in {w}"))
    };
    assert_eq!(cause(&proc), cause(&kernel));
    assert!(
        cause(&kernel).contains("still refused"),
        "{}",
        cause(&kernel)
    );
    let w = warnings(&kernel);
    for p in [&app, &agent] {
        assert!(w.contains(&p.pid().to_string()), "{w}");
    }
}
