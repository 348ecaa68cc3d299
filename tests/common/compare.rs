//! Running podports from tests, and comparing its JSON with the `ss` oracle: a socket as both
//! sides describe it (proto, state, local end, remote end, inode, queues) and its owners.

use std::collections::BTreeMap;
use std::process::{Command, Output};
use std::time::Duration;

use podports::render::json::{Document, EndpointDoc, SocketDoc};

use super::{Netns, SsSocket, eventually, ss_sockets};

/// A socket as both sides can describe it: proto, state, local end, remote end, inode,
/// recv-q, send-q.
pub type Key = (String, String, String, String, u64, u64, u64);
/// (comm, pid, fd) of every holder, sorted.
pub type Owners = Vec<(String, i32, i32)>;

/// Runs the podports binary under test.
pub fn podports<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_podports"))
        .args(args)
        .output()
        .expect("run podports")
}

/// `podports -o json ARGS`, which must succeed, read back into the documented type.
pub fn json(args: &[&str]) -> Document {
    let mut all = vec!["-o", "json"];
    all.extend_from_slice(args);
    let out = podports(&all);
    assert_eq!(
        out.status.code(),
        Some(0),
        "podports {all:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "podports {all:?}: not a JSON document ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts the exit code, showing both streams, and that nothing panicked.
pub fn assert_exit(o: &Output, code: i32) {
    assert_eq!(
        o.status.code(),
        Some(code),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&o.stdout),
        stderr(o)
    );
    let e = stderr(o);
    assert!(
        !e.contains("panicked") && !e.contains("RUST_BACKTRACE"),
        "{e}"
    );
}

/// `127.0.0.1:15000`, `[::]:15001`, `0.0.0.0:*`: the ss form.
pub fn inet_text(addr: &str, port: u16) -> String {
    let port = if port == 0 {
        "*".to_string()
    } else {
        port.to_string()
    };
    if addr.contains(':') {
        format!("[{addr}]:{port}")
    } else {
        format!("{addr}:{port}")
    }
}

/// The local and remote ends of a listed socket, in the ss form (`peer:N` for unix peers).
pub fn ends(s: &SocketDoc) -> (String, String) {
    let local = match &s.local {
        EndpointDoc::Inet(e) => inet_text(&e.addr, e.port),
        EndpointDoc::UnixLocal(u) => u.path.clone().unwrap_or_else(|| "*".into()),
        EndpointDoc::UnixPeer(_) => panic!("a peer as the local end: {s:?}"),
    };
    let remote = match &s.remote {
        EndpointDoc::Inet(e) => inet_text(&e.addr, e.port),
        EndpointDoc::UnixPeer(p) => format!("peer:{}", p.peer_inode.unwrap_or(0)),
        EndpointDoc::UnixLocal(_) => panic!("a local end as the remote: {s:?}"),
    };
    (local, remote)
}

/// The key of a listed socket; without `queues`, recv-q and send-q count as 0.
pub fn key_of_doc(s: &SocketDoc, queues: bool) -> Key {
    let (local, remote) = ends(s);
    let proto = serde_json::to_value(s.proto).unwrap();
    let (rq, sq) = if queues {
        (u64::from(s.recv_q), u64::from(s.send_q))
    } else {
        (0, 0)
    };
    (
        proto.as_str().unwrap().to_string(),
        s.state.clone(),
        local,
        remote,
        s.inode,
        rq,
        sq,
    )
}

/// The key of a socket ss showed.
pub fn key_of_ss(s: &SsSocket, queues: bool) -> Key {
    let remote = if s.proto == "unix" {
        format!("peer:{}", s.peer_inode.unwrap_or(0))
    } else {
        s.peer()
    };
    let (rq, sq) = if queues { (s.recv_q, s.send_q) } else { (0, 0) };
    (
        s.proto.clone(),
        s.state.clone(),
        s.local(),
        remote,
        s.inode,
        rq,
        sq,
    )
}

pub fn owners_of_doc(s: &SocketDoc) -> Owners {
    let mut o: Owners = s
        .processes
        .iter()
        .map(|p| (p.comm.clone(), p.pid, p.fd))
        .collect();
    o.sort();
    o
}

/// Asserts podports and ss list the same sockets (as a multiset) with the same owners.
pub fn assert_matches_ss(doc: &Document, ss: &[SsSocket]) {
    let mut ours: BTreeMap<Key, Vec<Owners>> = BTreeMap::new();
    for s in &doc.sockets {
        ours.entry(key_of_doc(s, true))
            .or_default()
            .push(owners_of_doc(s));
    }
    let mut theirs: BTreeMap<Key, Vec<Owners>> = BTreeMap::new();
    for s in ss {
        let mut users = s.users.clone();
        users.sort();
        theirs.entry(key_of_ss(s, true)).or_default().push(users);
    }
    for v in ours.values_mut().chain(theirs.values_mut()) {
        v.sort();
    }
    let only_ours: Vec<_> = ours
        .iter()
        .filter(|(k, _)| !theirs.contains_key(*k))
        .collect();
    let only_ss: Vec<_> = theirs
        .iter()
        .filter(|(k, _)| !ours.contains_key(*k))
        .collect();
    assert!(
        only_ours.is_empty() && only_ss.is_empty(),
        "podports ({}) and ss disagree\nonly podports: {only_ours:#?}\nonly ss: {only_ss:#?}",
        doc.netns.target
    );
    for (k, owners) in &ours {
        assert_eq!(Some(owners), theirs.get(k), "owners of {k:?}");
    }
    assert_eq!(doc.sockets.len(), ss.len());
}

/// Connections a helper has not accepted yet have no owner and inode 0; wait until none is
/// left, so that podports and ss see the same settled namespace.
pub fn settle(ns: &Netns) -> Vec<SsSocket> {
    eventually("every connection accepted", Duration::from_secs(10), || {
        let ss = ss_sockets(ns);
        let pending: Vec<_> = ss
            .iter()
            .filter(|s| s.inode == 0 && s.state != "TIME_WAIT")
            .map(|s| s.line.clone())
            .collect();
        if pending.is_empty() {
            Ok(ss)
        } else {
            Err(format!("{pending:?}"))
        }
    })
}

/// True when podports can find owners in the kernel here (`--fd-walk bpf`: root, BTF, a
/// kernel that loads the iterator). When it cannot: under `CI=true` this PANICS (CI runs as
/// root on a kernel that can), otherwise it prints `skipping <test>: ...` and returns false.
/// Also requires root, as `require_root` does.
pub fn require_kernel_walk(test_name: &str) -> bool {
    use std::sync::OnceLock;
    static PROBE: OnceLock<Result<(), String>> = OnceLock::new();
    if !super::require_root(test_name) {
        return false;
    }
    let probe = PROBE.get_or_init(|| {
        // A socket of ours, so that there is an owner to find.
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        let port = sock
            .local_addr()
            .map_err(|e| e.to_string())?
            .port()
            .to_string();
        let out = podports(&["-u", "--port", &port, "--fd-walk", "bpf", "-o", "json"]);
        if !out.status.success() {
            return Err(stderr(&out));
        }
        // The walk ran and found us: a listing with no socket to own never walks at all.
        let doc: Document = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
        let me = std::process::id() as i32;
        let found = doc
            .sockets
            .iter()
            .any(|s| s.processes.iter().any(|p| p.pid == me));
        if doc.fd_walk.as_deref() == Some("bpf") && found {
            Ok(())
        } else {
            Err(format!(
                "--fd-walk bpf did not find this test's own socket on port {port}                  (fd_walk {:?}, {} sockets)",
                doc.fd_walk,
                doc.sockets.len()
            ))
        }
    });
    match probe {
        Ok(()) => true,
        Err(why) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("{test_name}: the kernel fd walk does not work here under CI=true: {why}")
        }
        Err(why) => {
            eprintln!("skipping {test_name}: the kernel fd walk does not work here: {why}");
            false
        }
    }
}
