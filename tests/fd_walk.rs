//! The two ways to find socket holders, against each other and against ss: the kernel walk
//! (`--fd-walk bpf`, a BPF task_file iterator) and the /proc walk (`--fd-walk proc`). They must
//! agree wherever /proc can see; where it cannot (a thread with its own fd table, a process
//! whose main thread exited), the kernel walk still finds the holder. And the kernel walk is
//! refused, with the reason, where its answer could differ from what /proc would show. Needs
//! root: without it this skips with a reason, and under CI=true fails.
// A test: it makes sockets, files and processes freely (clippy.toml keeps them in sys/).
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use std::fs;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use common::compare::{
    Key, Owners, assert_matches_ss, json, key_of_doc, owners_of_doc, podports, require_kernel_walk,
    settle,
};
use common::{Netns, Proc, Scratch, ambient_pod, eventually, install_as, require_root};
use podports::render::json::{Document, EndpointDoc};

/// (socket, owners) of every socket, sorted: what both walks must agree on.
fn holders(doc: &Document) -> Vec<(Key, Owners)> {
    let mut v: Vec<(Key, Owners)> = doc
        .sockets
        .iter()
        .map(|s| (key_of_doc(s, true), owners_of_doc(s)))
        .collect();
    v.sort();
    v
}

#[cfg_attr(podports_not_root, ignore = "needs root")]
#[test]
fn kernel_and_proc_walks_find_the_same_holders_as_ss() {
    if !require_kernel_walk("kernel_and_proc_walks_find_the_same_holders_as_ss") {
        return;
    }
    // Ambient: ztunnel holds the pod's listeners from its own namespace, so the /proc walk
    // needs its second pass, and the kernel walk sees it in its one pass.
    let pod = ambient_pod();
    let _envoy = Proc::start(
        &pod.pod,
        &install_as("envoy"),
        &[
            "tcp-listen=127.0.0.1:15000",
            "tcp-connect=127.0.0.1:15000,count=20",
            "unix-listen=@envoy-admin",
            "unix-connect=@envoy-admin",
            "udp-bind=[::]:15090",
        ],
    );
    let ss = settle(&pod.pod);
    let bpf = json(&["--netns", pod.pod.name(), "--fd-walk", "bpf"]);
    let proc = json(&["--netns", pod.pod.name(), "--fd-walk", "proc"]);
    assert_eq!(bpf.fd_walk.as_deref(), Some("bpf"));
    assert_eq!(proc.fd_walk.as_deref(), Some("proc"));
    assert_matches_ss(&bpf, &ss);
    assert_matches_ss(&proc, &ss);
    assert_eq!(holders(&bpf), holders(&proc));
    assert!(
        bpf.sockets
            .iter()
            .any(|s| s.processes.iter().any(|p| p.comm == "ztunnel")),
        "ztunnel, in another namespace, holds pod sockets"
    );
    // As root with every capability, the default is the kernel walk.
    let auto = json(&["--netns", pod.pod.name()]);
    assert_eq!(auto.fd_walk.as_deref(), Some("bpf"));
    // And the listeners-only view, which the benchmark times.
    let l_bpf = json(&["--netns", pod.pod.name(), "--fd-walk", "bpf", "-l"]);
    let l_proc = json(&["--netns", pod.pod.name(), "--fd-walk", "proc", "-l"]);
    assert_eq!(holders(&l_bpf), holders(&l_proc));
    assert!(l_bpf.sockets.iter().all(|s| !s.processes.is_empty()));
}

/// A python process in `ns` running READY and a body, with a ready file as its argument; it
/// writes `key=value` lines there once its sockets are open. Killed (with its children) on
/// drop.
struct Py {
    child: Child,
    ready: String,
    _dir: Scratch,
}

impl Py {
    /// `body` runs after the `ready` and `listener` helpers (READY).
    fn start(ns: &Netns, body: &str) -> Py {
        let script = format!("{READY}{body}");
        let dir = Scratch::new();
        let ready_path = dir.join("ready");
        let child = Command::new("nsenter")
            .arg(format!("--net={}", ns.path().display()))
            .args(["--", "python3", "-c", &script])
            .arg(&ready_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("start python3");
        let ready = eventually(
            "the python helper is ready",
            Duration::from_secs(10),
            || {
                fs::read_to_string(&ready_path)
                    .ok()
                    .filter(|t| t.ends_with("end\n"))
                    .ok_or_else(|| "no ready file yet".to_string())
            },
        );
        Py {
            child,
            ready,
            _dir: dir,
        }
    }

    fn get(&self, key: &str) -> i32 {
        self.ready
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("{key} not in {:?}", self.ready))
            .parse()
            .unwrap()
    }
}

impl Drop for Py {
    fn drop(&mut self) {
        for key in ["child", "pid"] {
            if let Some(pid) = self
                .ready
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{key}=")))
                .and_then(|p| p.parse::<i32>().ok())
            {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes the ready file atomically; `pid` is the process (tgid).
const READY: &str = r#"
import ctypes, os, socket, sys, threading, time
libc = ctypes.CDLL(None, use_errno=True)
def ready(**kv):
    tmp = sys.argv[1] + ".tmp"
    with open(tmp, "w") as f:
        for k, v in kv.items():
            f.write(f"{k}={v}\n")
        f.write("end\n")
    os.rename(tmp, sys.argv[1])
def listener(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen()
    return s
"#;

/// The holders podports shows for the socket on 127.0.0.1:`port`, as (pid, fd).
fn holders_of(doc: &Document, port: u16) -> Vec<(i32, i32)> {
    let s = doc
        .sockets
        .iter()
        .find(|s| matches!(&s.local, EndpointDoc::Inet(e) if e.port == port))
        .unwrap_or_else(|| panic!("no socket on port {port} in {:?}", doc.sockets));
    let mut v: Vec<(i32, i32)> = s.processes.iter().map(|p| (p.pid, p.fd)).collect();
    v.sort();
    v
}

fn both(ns: &Netns) -> (Document, Document) {
    (
        json(&["--netns", ns.name(), "--fd-walk", "bpf"]),
        json(&["--netns", ns.name(), "--fd-walk", "proc"]),
    )
}

#[cfg_attr(podports_not_root, ignore = "needs root")]
#[test]
fn a_listener_shared_by_forked_workers_has_every_worker_as_holder() {
    if !require_kernel_walk("a_listener_shared_by_forked_workers_has_every_worker_as_holder") {
        return;
    }
    let ns = Netns::new();
    let py = Py::start(
        &ns,
        r#"
s = listener(7001)
child = os.fork()
if child == 0:
    time.sleep(3600)
    os._exit(0)
ready(pid=os.getpid(), child=child, fd=s.fileno())
time.sleep(3600)
"#,
    );
    let want = {
        let mut v = vec![
            (py.get("pid"), py.get("fd")),
            (py.get("child"), py.get("fd")),
        ];
        v.sort();
        v
    };
    let ss = settle(&ns);
    let (bpf, proc) = both(&ns);
    assert_eq!(holders_of(&bpf, 7001), want);
    assert_eq!(holders_of(&proc, 7001), want);
    assert_matches_ss(&bpf, &ss);
}

#[cfg_attr(podports_not_root, ignore = "needs root")]
#[test]
fn a_socket_in_a_threads_own_fd_table_is_found_by_the_kernel_walk() {
    if !require_kernel_walk("a_socket_in_a_threads_own_fd_table_is_found_by_the_kernel_walk") {
        return;
    }
    let ns = Netns::new();
    // The thread unshares its fd table (CLONE_FILES), then opens the socket: it is in no
    // table /proc/<pid>/fd shows, only in /proc/<pid>/task/<tid>/fd.
    let py = Py::start(
        &ns,
        r#"
def worker():
    if libc.unshare(0x400) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_FILES)")
    s = listener(7002)
    ready(pid=os.getpid(), tid=threading.get_native_id(), fd=s.fileno())
    time.sleep(3600)
threading.Thread(target=worker).start()
time.sleep(3600)
"#,
    );
    let (pid, fd) = (py.get("pid"), py.get("fd"));
    assert!(
        fs::read_link(format!("/proc/{pid}/fd/{fd}"))
            .map(|l| !l.to_string_lossy().starts_with("socket:"))
            .unwrap_or(true),
        "the leader's table must not hold the socket for this test to mean anything"
    );
    let (bpf, proc) = both(&ns);
    assert_eq!(holders_of(&bpf, 7002), vec![(pid, fd)]);
    assert_eq!(
        holders_of(&proc, 7002),
        vec![],
        "/proc/<pid>/fd cannot show it"
    );
}

#[cfg_attr(podports_not_root, ignore = "needs root")]
#[test]
fn a_socket_of_a_process_whose_main_thread_exited_is_found_by_the_kernel_walk() {
    if !require_kernel_walk(
        "a_socket_of_a_process_whose_main_thread_exited_is_found_by_the_kernel_walk",
    ) {
        return;
    }
    let ns = Netns::new();
    // The main thread leaves with exit(2) (the thread only, not exit_group): the process lives
    // on in its worker, and /proc/<pid>/fd, which is the main thread's, is empty.
    let py = Py::start(
        &ns,
        r#"
up = threading.Event()
def worker():
    s = listener(7003)
    ready(pid=os.getpid(), fd=s.fileno())
    up.set()
    time.sleep(3600)
threading.Thread(target=worker).start()
up.wait()
time.sleep(0.2)
# exit(2), the thread's own exit: 60 on x86_64, 93 on arm64 and riscv64.
libc.syscall({"x86_64": 60, "aarch64": 93, "riscv64": 93}[os.uname().machine], 0)
"#,
    );
    let (pid, fd) = (py.get("pid"), py.get("fd"));
    eventually("the main thread is gone", Duration::from_secs(5), || {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).map_err(|e| e.to_string())?;
        let state = stat.rsplit(") ").next().unwrap_or("").chars().next();
        (state == Some('Z'))
            .then_some(())
            .ok_or_else(|| format!("state {state:?}"))
    });
    let (bpf, proc) = both(&ns);
    assert_eq!(holders_of(&bpf, 7003), vec![(pid, fd)]);
    assert_eq!(holders_of(&proc, 7003), vec![], "/proc/<pid>/fd is empty");
}

#[cfg_attr(podports_not_root, ignore = "needs root")]
#[test]
fn a_socket_held_inside_and_outside_the_namespace_has_both_holders_with_the_kernel_walk() {
    if !require_kernel_walk(
        "a_socket_held_inside_and_outside_the_namespace_has_both_holders_with_the_kernel_walk",
    ) {
        return;
    }
    let ns = Netns::new();
    let elsewhere = Netns::new();
    // The child moves to another namespace and keeps the listener it inherited (as a socket
    // passed to a node agent would be held from outside the pod).
    let py = Py::start(
        &ns,
        &format!(
            r#"
s = listener(7004)
child = os.fork()
if child == 0:
    fd = os.open("{}", os.O_RDONLY)
    if libc.setns(fd, 0x40000000) != 0:
        os._exit(3)
    time.sleep(3600)
    os._exit(0)
time.sleep(0.3)
ready(pid=os.getpid(), child=child, fd=s.fileno())
time.sleep(3600)
"#,
            elsewhere.path().display()
        ),
    );
    let (pid, child, fd) = (py.get("pid"), py.get("child"), py.get("fd"));
    eventually(
        "the child is in the other namespace",
        Duration::from_secs(5),
        || {
            let link = fs::read_link(format!("/proc/{child}/ns/net")).map_err(|e| e.to_string())?;
            (link.to_string_lossy() == format!("net:[{}]", elsewhere.inode()))
                .then_some(())
                .ok_or_else(|| format!("{link:?}"))
        },
    );
    let (bpf, proc) = both(&ns);
    let mut every = vec![(pid, fd), (child, fd)];
    every.sort();
    assert_eq!(holders_of(&bpf, 7004), every, "every holder, node-wide");
    // The /proc walk reads the rest of the node only for sockets without an owner.
    assert_eq!(holders_of(&proc, 7004), vec![(pid, fd)]);
}

fn output_text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `--fd-walk bpf` is exit 3 naming `why`.
fn assert_refused(o: &Output, why: &str) {
    assert_eq!(o.status.code(), Some(3), "{}", output_text(o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(why),
        "{}",
        output_text(o)
    );
}

/// `--fd-walk auto` falls back to the /proc walk and succeeds.
fn assert_proc_fallback(o: &Output) {
    assert_eq!(o.status.code(), Some(0), "{}", output_text(o));
    let doc: Document = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc.fd_walk.as_deref(), Some("proc"));
}

#[cfg_attr(podports_not_root, ignore = "needs root")]
#[test]
fn the_kernel_walk_is_refused_where_it_would_see_more_than_proc() {
    if !require_root("the_kernel_walk_is_refused_where_it_would_see_more_than_proc") {
        return;
    }
    let ns = Netns::new();
    let _app = Proc::start(&ns, &install_as("myapp"), &["tcp-listen=0.0.0.0:9080"]);
    let exe = env!("CARGO_BIN_EXE_podports");
    // podports under `wrapper`, with the given walk.
    let under = |wrapper: &[&str], walk: &str| {
        Command::new(wrapper[0])
            .args(&wrapper[1..])
            .args([exe, "-o", "json", "--netns", ns.name(), "--fd-walk", walk])
            .output()
            .unwrap()
    };

    // Without CAP_SYS_PTRACE: /proc would hide other users' fds; so must we.
    let no_ptrace = [
        "setpriv",
        "--bounding-set=-sys_ptrace",
        "--inh-caps=-sys_ptrace",
        "--",
    ];
    assert_refused(&under(&no_ptrace, "bpf"), "CAP_SYS_PTRACE");
    assert_proc_fallback(&under(&no_ptrace, "auto"));

    // In a pid namespace of its own, the kernel's pids are not this /proc's.
    let in_pidns = ["unshare", "--pid", "--fork", "--mount-proc", "--"];
    assert_refused(&under(&in_pidns, "bpf"), "not in the node's pid namespace");
    assert_proc_fallback(&under(&in_pidns, "auto"));

    // Another /proc (a host's, mounted elsewhere) whose pids are not ours.
    let fake = Scratch::new();
    fs::create_dir_all(fake.join("1")).unwrap();
    let o = podports(&[
        "-o",
        "json",
        "--proc-root",
        fake.path().to_str().unwrap(),
        "--netns",
        ns.path().to_str().unwrap(),
        "--fd-walk",
        "bpf",
    ]);
    assert_refused(&o, "not the /proc of this pid namespace");
}

/// This machine's own namespace as it is (no simulated pod): every socket both walks list gets
/// the same account from each, its holders or why it has none (hidden, outside the pid
/// namespace, no process), and both say "owners hidden" or neither. Where a policy refuses
/// root some process's fds (seen here: a sandbox's pid 1, whose sockets neither /proc nor the
/// kernel's task iterator shows), the kernel walk once called them "no process".
#[cfg_attr(podports_not_root, ignore = "needs root")]
#[test]
fn both_walks_give_one_account_of_this_machines_own_sockets() {
    if !require_kernel_walk("both_walks_give_one_account_of_this_machines_own_sockets") {
        return;
    }
    let kernel = json(&["--fd-walk", "bpf"]);
    let proc = json(&["--fd-walk", "proc"]);
    let account = |doc: &Document| -> std::collections::BTreeMap<u64, String> {
        doc.sockets
            .iter()
            .filter(|s| s.inode != 0)
            .map(|s| {
                let mut pids: Vec<i32> = s.processes.iter().map(|p| p.pid).collect();
                pids.sort();
                (s.inode, format!("{pids:?} {:?}", s.unowned))
            })
            .collect()
    };
    let (k, p) = (account(&kernel), account(&proc));
    let mut compared = 0;
    for (inode, theirs) in &k {
        if let Some(ours) = p.get(inode) {
            assert_eq!(
                theirs, ours,
                "socket inode {inode}: kernel walk vs /proc walk"
            );
            compared += 1;
        }
    }
    assert!(compared > 0, "no socket listed by both walks");
    let hidden = |doc: &Document| doc.warnings.iter().any(|w| w.starts_with("owners hidden"));
    assert_eq!(
        hidden(&kernel),
        hidden(&proc),
        "kernel: {:?}\n/proc: {:?}",
        kernel.warnings,
        proc.warnings
    );
    eprintln!(
        "{compared} sockets compared; hidden owners: kernel {}, /proc {}",
        kernel.hidden_owners, proc.hidden_owners
    );
}
