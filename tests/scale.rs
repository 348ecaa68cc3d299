//! podports at scale, against the kernel: a namespace of 10k TCP sockets held by several
//! processes (and more sockets in another namespace), compared with `ss` for the count and for
//! every owner (issue 5: the /proc walk runs beside the dump, the JSON is streamed, a LISTEN-only
//! dump skips the established hash); and 40k sockets dumped while connections open and close,
//! each listed once (issue 14). Nothing here is timed: `bench/run` measures. Needs root,
//! like tests/netns.rs: without it this skips with a reason, and under CI=true fails.
// A test: it makes sockets, files and processes freely (clippy.toml keeps them in sys/).
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use std::collections::BTreeMap;
use std::process::Command;

use common::compare::require_kernel_walk;
use common::{Netns, Proc, assert_ss_holds_exactly, install_as, require_root, ss_sockets};
use nix::sys::resource::{Resource, getrlimit, setrlimit};
use podports::render::json::{Document, EndpointDoc, SocketDoc};

/// Connections per helper; each helper also accepts them, so it holds 2 sockets per connection
/// plus its listener.
const CONNS: usize = 1250;
/// Helpers in the pod namespace: 4 x (2 x 1250 + 1) = 10,004 TCP sockets.
const NAMES: [&str; 4] = ["envoy", "pilot-agent", "myapp", "worker"];

/// (local, remote, state, inode) of a socket.
type Key = (String, String, String, u64);
/// (comm, pid, fd) of every holder, sorted.
type Owners = Vec<(String, i32, i32)>;

fn podports_json(args: &[&str]) -> Document {
    let out = Command::new(env!("CARGO_BIN_EXE_podports"))
        .args(["-o", "json"])
        .args(args)
        .output()
        .expect("run podports");
    assert_eq!(
        out.status.code(),
        Some(0),
        "podports {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("podports -o json reads back")
}

/// A helper listening on 127.0.0.1:PORT and holding `conns` connections to itself, both ends.
/// (`count=`, not one op per connection: every holder's cmdline is in every socket's JSON.)
fn ops(port: u16, conns: usize) -> Vec<String> {
    vec![
        format!("tcp-listen=127.0.0.1:{port},backlog=4096"),
        format!("tcp-connect=127.0.0.1:{port},count={conns}"),
    ]
}

/// Each helper holds ~2,500 fds: lift the soft limit to the hard one (helpers inherit it).
fn raise_fd_limit() {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
    let need = (2 * CONNS + 64) as u64;
    assert!(
        hard >= need,
        "RLIMIT_NOFILE hard limit {hard} < {need}: this test needs more fds per process"
    );
    if soft < need {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard).expect("setrlimit");
    }
}

/// `127.0.0.1:8000`, `[::1]:8000`, `0.0.0.0:*`: the form `common::SsSocket` uses.
fn inet(e: &EndpointDoc) -> String {
    let EndpointDoc::Inet(e) = e else {
        panic!("not an inet end: {e:?}")
    };
    let port = match e.port {
        0 => "*".to_string(),
        p => p.to_string(),
    };
    if e.addr.contains(':') {
        format!("[{}]:{port}", e.addr)
    } else {
        format!("{}:{port}", e.addr)
    }
}

fn by_key(doc: &Document) -> BTreeMap<Key, Owners> {
    let mut m = BTreeMap::new();
    for s in &doc.sockets {
        let mut owners: Owners = s
            .processes
            .iter()
            .map(|p| (p.comm.clone(), p.pid, p.fd))
            .collect();
        owners.sort();
        let prev = m.insert(key(s), owners);
        assert!(prev.is_none(), "podports lists {s:?} twice");
    }
    m
}

fn key(s: &SocketDoc) -> Key {
    (inet(&s.local), inet(&s.remote), s.state.clone(), s.inode)
}

#[cfg_attr(podports_not_root, ignore = "needs root")]
#[test]
fn ten_thousand_sockets_match_ss_in_count_and_owners() {
    if !require_root("ten_thousand_sockets_match_ss_in_count_and_owners") {
        return;
    }
    raise_fd_limit();
    let pod = Netns::new();
    let other = Netns::new();
    let helpers: Vec<(&str, Proc)> = NAMES
        .iter()
        .zip(8000u16..)
        .map(|(name, port)| {
            (
                *name,
                Proc::start(&pod, &install_as(name), &ops(port, CONNS)),
            )
        })
        .collect();
    // Sockets of another namespace, held by another process: in no listing of the pod's.
    let _elsewhere = Proc::start(&other, &install_as("ztunnel"), &ops(8000, CONNS / 2));

    let ss = ss_sockets(&pod);
    let want = NAMES.len() * (2 * CONNS + 1);
    assert_eq!(ss.len(), want, "ss does not show the load this test built");
    let holders: Vec<(&str, &common::Ready)> =
        helpers.iter().map(|(name, p)| (*name, p.ready())).collect();
    assert_ss_holds_exactly(&ss, &holders, |_| false);

    let doc = podports_json(&["--netns", pod.name()]);
    assert_eq!(
        doc.sockets.len(),
        ss.len(),
        "podports and ss count differently"
    );
    let ours = by_key(&doc);
    let mut theirs: BTreeMap<Key, Owners> = BTreeMap::new();
    for s in &ss {
        let mut users = s.users.clone();
        users.sort();
        theirs.insert((s.local(), s.peer(), s.state.clone(), s.inode), users);
    }
    let only_ours: Vec<_> = ours.keys().filter(|k| !theirs.contains_key(*k)).collect();
    let only_ss: Vec<_> = theirs.keys().filter(|k| !ours.contains_key(*k)).collect();
    assert!(
        only_ours.is_empty() && only_ss.is_empty(),
        "podports and ss list different sockets\nonly podports ({}): {:?}\nonly ss ({}): {:?}",
        only_ours.len(),
        only_ours.iter().take(5).collect::<Vec<_>>(),
        only_ss.len(),
        only_ss.iter().take(5).collect::<Vec<_>>()
    );
    let differ: Vec<_> = ours
        .iter()
        .filter(|(k, o)| theirs.get(*k) != Some(*o))
        .take(5)
        .map(|(k, o)| (k, o, theirs.get(k)))
        .collect();
    assert!(
        differ.is_empty(),
        "owners differ (podports, ss): {differ:#?}"
    );
    assert!(
        doc.sockets.iter().all(|s| !s.processes.is_empty()),
        "a socket without an owner, though every one is held"
    );
    assert!(doc.warnings.is_empty(), "warnings: {:?}", doc.warnings);
    // The kernel walk and the /proc walk find the same holders, at 10k.
    if require_kernel_walk("ten_thousand_sockets_match_ss_in_count_and_owners (kernel walk)") {
        let bpf = podports_json(&["--netns", pod.name(), "--fd-walk", "bpf"]);
        let proc = podports_json(&["--netns", pod.name(), "--fd-walk", "proc"]);
        assert_eq!(bpf.fd_walk.as_deref(), Some("bpf"));
        assert_eq!(proc.fd_walk.as_deref(), Some("proc"));
        let (bpf, proc) = (by_key(&bpf), by_key(&proc));
        assert!(bpf == ours, "the kernel walk and the default differ at 10k");
        assert!(proc == ours, "the /proc walk and the default differ at 10k");
    }

    // Listeners only: the dump that skips the established hash still finds every listener and
    // its one owner among 10k connections.
    let listening = podports_json(&["--netns", pod.name(), "-l"]);
    let got = by_key(&listening);
    let want: BTreeMap<Key, Owners> = theirs
        .into_iter()
        .filter(|((_, _, state, _), _)| state == "LISTEN")
        .collect();
    assert_eq!(got.len(), NAMES.len());
    assert_eq!(got, want, "podports -l and ss's listeners differ");
}

/// A dump of 40k sockets while connections open and close in the namespace (issue 14 item 5):
/// inet_diag dumps that span many datagrams resume from a cursor, so under churn the kernel
/// can return a socket twice. Every listing lists each socket once (by inode; by its whole
/// tuple where the inode is 0, as TIME_WAIT's) and nothing of another namespace, whose
/// sockets use ports the pod's never do.
#[cfg_attr(podports_not_root, ignore = "needs root")]
#[test]
fn forty_thousand_churning_sockets_are_each_listed_once() {
    if !require_root("forty_thousand_churning_sockets_are_each_listed_once") {
        return;
    }
    raise_fd_limit();
    let pod = Netns::new();
    let other = Netns::new();
    // 16 x (2 x 1250 + 1) = 40,016 TCP sockets on ports 8000-8015.
    let helpers: Vec<Proc> = (8000u16..8016)
        .map(|port| Proc::start(&pod, &install_as("envoy"), &ops(port, CONNS)))
        .collect();
    let _elsewhere = Proc::start(&other, &install_as("ztunnel"), &ops(9000, CONNS / 2));
    // The churn: connections to 8000 opened and closed as fast as one process can.
    let churner = Command::new("nsenter")
        .arg(format!("--net={}", pod.path().display()))
        .args([
            "--",
            "python3",
            "-c",
            "import socket\nwhile True:\n s=socket.create_connection(('127.0.0.1',8000))\n s.close()",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("python3 in the namespace");
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _churner = Kill(churner);
    std::thread::sleep(std::time::Duration::from_millis(500));
    for run in 0..5 {
        let doc = podports_json(&["--netns", pod.name()]);
        assert!(
            doc.sockets.len() >= helpers.len() * (2 * CONNS + 1),
            "run {run}: {} sockets, fewer than the load",
            doc.sockets.len()
        );
        let mut inodes = std::collections::HashSet::new();
        let mut tuples = std::collections::HashSet::new();
        let mut churned = 0;
        for s in &doc.sockets {
            let (local, remote) = (inet(&s.local), inet(&s.remote));
            for end in [&local, &remote] {
                assert!(
                    !end.ends_with(":9000"),
                    "run {run}: another namespace's {s:?}"
                );
            }
            if remote.ends_with(":8000") && s.processes.iter().all(|p| p.comm != "envoy") {
                churned += 1;
            }
            if s.inode != 0 {
                assert!(
                    inodes.insert(s.inode),
                    "run {run}: inode {} listed twice",
                    s.inode
                );
            } else {
                let tuple = (local, remote, s.state.clone());
                assert!(
                    tuples.insert(tuple.clone()),
                    "run {run}: {tuple:?} listed twice"
                );
            }
        }
        eprintln!(
            "run {run}: {} sockets, {} without an inode, {churned} of the churner's",
            doc.sockets.len(),
            tuples.len()
        );
    }
}
