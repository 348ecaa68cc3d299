//! podports against the kernel: pods built from real processes holding real sockets in fresh
//! network namespaces, compared socket for socket and owner for owner with `ss -tuxanpe` in
//! the same namespace. Needs root: without it these skip with a reason, and under CI=true fail.
// A test: it makes sockets, files and processes freely (clippy.toml keeps them in sys/).
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use common::compare::{
    Key, Owners, assert_matches_ss, ends, json, key_of_doc, key_of_ss, owners_of_doc, podports,
    settle,
};
use common::{Netns, Proc, Scratch, install_as, require_root};
use podports::render::json::{Document, EndpointDoc, SocketDoc};

fn sockets_of(doc: &Document, pid: i32) -> Vec<&SocketDoc> {
    doc.sockets
        .iter()
        .filter(|s| s.processes.iter().any(|p| p.pid == pid))
        .collect()
}

fn local_port(s: &SocketDoc) -> Option<u16> {
    match &s.local {
        EndpointDoc::Inet(e) => Some(e.port),
        _ => None,
    }
}

fn role(s: &SocketDoc) -> (String, String) {
    let r = s
        .role
        .as_ref()
        .unwrap_or_else(|| panic!("no role on {s:?}"));
    (r.component.to_string(), r.name.clone())
}

/// A simulated sidecar pod: pilot-agent (which starts envoy), an app, and istiod reachable in
/// the pod, all real processes holding real sockets.
struct SidecarPod {
    ns: Netns,
    _root: Scratch,
    istiod: Proc,
    agent: Proc,
    envoy_pid: i32,
    app: Proc,
}

fn sidecar_pod() -> SidecarPod {
    let ns = Netns::new();
    ns.add_addr("10.0.0.5/32");
    let root = Scratch::new();
    let chdir = format!("chdir={}", root.path().display());
    let istiod = Proc::start(
        &ns,
        &install_as("pilot-discovery"),
        &["tcp-listen=[::]:15012", "tcp-listen=[::]:15017"],
    );
    let envoy_ready = root.join("envoy.ready");
    let envoy = install_as("envoy");
    let agent = Proc::start(
        &ns,
        &install_as("pilot-agent"),
        &[
            chdir.as_str(),
            "tcp-listen=[::]:15020",
            "udp-bind=127.0.0.1:15053",
            "mkdir=etc/istio/proxy",
            "unix-listen=etc/istio/proxy/XDS",
            "tcp-connect=127.0.0.1:15012",
            &format!("spawn={}", envoy.display()),
            "--ready",
            envoy_ready.to_str().unwrap(),
            chdir.as_str(),
            "tcp-listen=127.0.0.1:15000",
            "tcp-listen=0.0.0.0:15001,reuseport",
            "tcp-listen=0.0.0.0:15001,reuseport",
            "tcp-listen=0.0.0.0:15006,reuseport",
            "tcp-listen=0.0.0.0:15006,reuseport",
            "tcp-listen=0.0.0.0:15021",
            "tcp-listen=0.0.0.0:15090",
            "unix-connect=etc/istio/proxy/XDS",
            "tcp-connect=127.0.0.1:15020",
            ";;",
            &format!("wait-file={}", envoy_ready.display()),
        ],
    );
    let envoy_pid = common::wait_ready_file(&envoy_ready).pid;
    let app = Proc::start(
        &ns,
        &install_as("myapp"),
        &[
            "tcp-listen=10.0.0.5:9080",
            "tcp-connect=10.0.0.5:9080,from=127.0.0.6",
            "tcp-timewait=10.0.0.5:9080",
            "udp-connect=127.0.0.1:15053",
        ],
    );
    SidecarPod {
        ns,
        _root: root,
        istiod,
        agent,
        envoy_pid,
        app,
    }
}

#[cfg_attr(podports_not_root, ignore = "needs root")]
#[test]
fn sidecar_pod_matches_ss_with_kinds_roles_and_peer_roles() {
    if !require_root("sidecar_pod_matches_ss_with_kinds_roles_and_peer_roles") {
        return;
    }
    let pod = sidecar_pod();
    let ss = settle(&pod.ns);
    let doc = json(&["--netns", pod.ns.name()]);
    assert_matches_ss(&doc, &ss);
    assert_eq!(doc.netns.inode, Some(pod.ns.inode()));
    assert_eq!(doc.source, "netlink");
    assert!(doc.warnings.is_empty(), "{:?}", doc.warnings);

    // Kinds, from exe, comm, parent and arguments.
    let kind_of = |pid: i32| {
        let s = sockets_of(&doc, pid);
        let p = s[0].processes.iter().find(|p| p.pid == pid).unwrap();
        (serde_json::to_value(p.kind).unwrap(), p.kind_basis.clone())
    };
    assert_eq!(kind_of(pod.envoy_pid).0, "envoy");
    assert!(kind_of(pod.envoy_pid).1.contains("parent pilot-agent"));
    assert_eq!(kind_of(pod.agent.pid()).0, "pilot-agent");
    assert_eq!(kind_of(pod.istiod.pid()).0, "istiod");
    assert_eq!(kind_of(pod.app.pid()).0, "app");

    // Roles of every envoy listener, one row per SO_REUSEPORT socket.
    let listeners = |pid: i32, port: u16| -> Vec<&SocketDoc> {
        sockets_of(&doc, pid)
            .into_iter()
            .filter(|s| s.state == "LISTEN" && local_port(s) == Some(port))
            .collect()
    };
    for (port, name, count) in [
        (15000, "admin", 1),
        (15001, "virtual-outbound", 2),
        (15006, "virtual-inbound", 2),
        (15021, "readiness", 1),
    ] {
        let l = listeners(pod.envoy_pid, port);
        assert_eq!(l.len(), count, "envoy listeners on {port}");
        for s in l {
            assert_eq!(role(s), ("envoy".into(), name.into()), "{port}");
        }
    }
    assert_eq!(listeners(pod.envoy_pid, 15090).len(), 1);
    assert_eq!(role(listeners(pod.envoy_pid, 15090)[0]).0, "envoy");
    assert_eq!(role(listeners(pod.agent.pid(), 15020)[0]).0, "pilot-agent");
    assert_eq!(role(listeners(pod.istiod.pid(), 15012)[0]).0, "istiod");
    assert!(listeners(pod.app.pid(), 9080)[0].role.is_none());

    // pilot-agent's XDS socket, and envoy's end of it, which takes its role from the peer.
    let xds: Vec<&SocketDoc> = sockets_of(&doc, pod.agent.pid())
        .into_iter()
        .filter(|s| s.state == "LISTEN" && s.proto == podports::model::Proto::Unix)
        .collect();
    assert_eq!(xds.len(), 1);
    assert_eq!(ends(xds[0]).0, "etc/istio/proxy/XDS");
    assert_eq!(role(xds[0]).0, "pilot-agent");
    let envoy_unix: Vec<&SocketDoc> = sockets_of(&doc, pod.envoy_pid)
        .into_iter()
        .filter(|s| s.proto == podports::model::Proto::Unix)
        .collect();
    assert_eq!(envoy_unix.len(), 1);
    assert_eq!(
        envoy_unix[0]
            .peer_role
            .as_ref()
            .map(|r| r.component.to_string()),
        Some("pilot-agent".into())
    );

    // Peer roles: the agent's connection to istiod's 15012, envoy's to the agent's 15020, and
    // the app's connection from 127.0.0.6 (Envoy's inbound passthrough).
    let peer_component = |s: &SocketDoc| s.peer_role.as_ref().map(|r| r.component.to_string());
    let to_istiod: Vec<_> = sockets_of(&doc, pod.agent.pid())
        .into_iter()
        .filter(|s| s.state == "ESTABLISHED" && ends(s).1 == "127.0.0.1:15012")
        .collect();
    assert_eq!(to_istiod.len(), 1);
    assert_eq!(peer_component(to_istiod[0]), Some("istiod".into()));
    let to_agent: Vec<_> = sockets_of(&doc, pod.envoy_pid)
        .into_iter()
        .filter(|s| ends(s).1 == "127.0.0.1:15020")
        .collect();
    assert_eq!(peer_component(to_agent[0]), Some("pilot-agent".into()));
    let passthrough: Vec<_> = sockets_of(&doc, pod.app.pid())
        .into_iter()
        .filter(|s| s.state == "ESTABLISHED" && ends(s).0 == "10.0.0.5:9080")
        .filter(|s| ends(s).1.starts_with("127.0.0.6:"))
        .collect();
    assert_eq!(passthrough.len(), 1);
    assert_eq!(peer_component(passthrough[0]), Some("envoy".into()));

    // A healthy pod has nothing to warn about.
    for s in &doc.sockets {
        assert!(s.warnings.is_empty(), "{s:?}");
    }
    // TIME_WAIT is listed, with no owner and no uid.
    let tw: Vec<_> = doc
        .sockets
        .iter()
        .filter(|s| s.state == "TIME_WAIT")
        .collect();
    assert_eq!(tw.len(), 1);
    assert!(tw[0].processes.is_empty() && tw[0].uid.is_none());
}

#[cfg_attr(podports_not_root, ignore = "needs root")]
#[test]
fn pid_target_and_netns_target_agree() {
    if !require_root("pid_target_and_netns_target_agree") {
        return;
    }
    let pod = sidecar_pod();
    settle(&pod.ns);
    let by_ns = json(&["--netns", pod.ns.name()]);
    let by_pid = json(&["--pid", &pod.app.pid().to_string()]);
    let by_path = json(&["--netns", pod.ns.path().to_str().unwrap()]);
    let keys = |d: &Document| {
        let mut k: Vec<(Key, Owners)> = d
            .sockets
            .iter()
            .map(|s| (key_of_doc(s, true), owners_of_doc(s)))
            .collect();
        k.sort();
        k
    };
    assert_eq!(keys(&by_ns), keys(&by_pid));
    assert_eq!(keys(&by_ns), keys(&by_path));
    assert_eq!(by_pid.netns.target, format!("pid {}", pod.app.pid()));
    assert_eq!(by_pid.netns.inode, Some(pod.ns.inode()));
}

#[cfg_attr(podports_not_root, ignore = "needs root")]
#[test]
fn proc_source_agrees_with_netlink() {
    if !require_root("proc_source_agrees_with_netlink") {
        return;
    }
    let pod = sidecar_pod();
    settle(&pod.ns);
    let netlink = json(&["--netns", pod.ns.name()]);
    let proc = json(&["--netns", pod.ns.name(), "--source", "proc"]);
    assert_eq!(proc.source, "proc");
    // /proc/net has no unix peer inodes and no listen backlog: compare inet sockets fully
    // except queues, and unix sockets by inode, name and state.
    let inet = |d: &Document| {
        let mut k: Vec<(Key, Owners)> = d
            .sockets
            .iter()
            .filter(|s| s.proto != podports::model::Proto::Unix)
            .map(|s| (key_of_doc(s, false), owners_of_doc(s)))
            .collect();
        k.sort();
        k
    };
    assert_eq!(inet(&netlink), inet(&proc));
    let unix = |d: &Document| {
        let mut k: Vec<(u64, String, String, Owners)> = d
            .sockets
            .iter()
            .filter(|s| s.proto == podports::model::Proto::Unix)
            .map(|s| (s.inode, ends(s).0, s.state.clone(), owners_of_doc(s)))
            .collect();
        k.sort();
        k
    };
    assert_eq!(unix(&netlink), unix(&proc));
    // The --pid form reads /proc/<pid>/net.
    let by_pid = json(&["--pid", &pod.envoy_pid.to_string(), "--source", "proc"]);
    assert_eq!(inet(&netlink), inet(&by_pid));
}

#[cfg_attr(podports_not_root, ignore = "needs root")]
#[test]
fn filters_keep_only_what_was_asked() {
    if !require_root("filters_keep_only_what_was_asked") {
        return;
    }
    let pod = sidecar_pod();
    let ss = settle(&pod.ns);
    let name = pod.ns.name();
    let listening = json(&["--netns", name, "-l"]);
    let want = ss
        .iter()
        .filter(|s| s.state == "LISTEN" || s.state == "UNCONN")
        .count();
    assert_eq!(listening.sockets.len(), want);
    let tcp = json(&["--netns", name, "-t"]);
    assert_eq!(
        tcp.sockets.len(),
        ss.iter().filter(|s| s.proto == "tcp").count()
    );
    let udp_unix = json(&["--netns", name, "-u", "-x"]);
    assert_eq!(
        udp_unix.sockets.len(),
        ss.iter().filter(|s| s.proto != "tcp").count()
    );
    let port = json(&["--netns", name, "--port", "15001,15021"]);
    let want = ss
        .iter()
        .filter(|s| {
            [s.local_port, s.peer_port]
                .into_iter()
                .flatten()
                .any(|p| p == 15001 || p == 15021)
        })
        .count();
    assert_eq!(port.sockets.len(), want);
    assert!(want >= 3);
}

#[cfg_attr(podports_not_root, ignore = "needs root")]
#[test]
fn an_app_squatting_sidecar_ports_is_flagged() {
    if !require_root("an_app_squatting_sidecar_ports_is_flagged") {
        return;
    }
    let ns = Netns::new();
    let app = Proc::start(
        &ns,
        &install_as("myapp"),
        &["tcp-listen=0.0.0.0:15021", "tcp-listen=0.0.0.0:15090"],
    );
    let envoy = Proc::start(
        &ns,
        &install_as("envoy"),
        &["tcp-listen=0.0.0.0:15000", "udp-bind=0.0.0.0:15053"],
    );
    let doc = json(&["--netns", ns.name()]);
    assert_matches_ss(&doc, &settle(&ns));
    let warnings_on = |pid: i32, port: u16| -> Vec<String> {
        sockets_of(&doc, pid)
            .into_iter()
            .filter(|s| local_port(s) == Some(port))
            .flat_map(|s| s.warnings.clone())
            .collect()
    };
    let w = warnings_on(app.pid(), 15021);
    assert!(
        w.iter()
            .any(|w| w.contains("reserved for envoy but held by app myapp")),
        "{w:?}"
    );
    assert!(!warnings_on(app.pid(), 15090).is_empty());
    let w = warnings_on(envoy.pid(), 15000);
    assert!(
        w.iter().any(|w| w.contains("reachable beyond loopback")),
        "{w:?}"
    );
    // Roles stay the sidecar's: the port is Envoy's readiness, whoever holds it.
    let ready = sockets_of(&doc, app.pid())
        .into_iter()
        .find(|s| local_port(s) == Some(15021))
        .unwrap();
    assert_eq!(role(ready), ("envoy".into(), "readiness".into()));

    // The table shows the same warning, on the socket's row.
    let out = podports(&["--netns", ns.name()]);
    let text = String::from_utf8_lossy(&out.stdout);
    let row = text
        .lines()
        .find(|l| l.contains(":15021") && l.contains("myapp"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(row.contains("reserved for envoy"), "{row}");
}

/// An ambient pod: ztunnel opens the pod's 15001/15006/15008 and DNS listeners inside the pod's
/// namespace, then lives in its own.
#[cfg_attr(podports_not_root, ignore = "needs root")]
#[test]
fn ambient_listeners_are_owned_by_ztunnel_from_another_netns() {
    if !require_root("ambient_listeners_are_owned_by_ztunnel_from_another_netns") {
        return;
    }
    let ambient = common::ambient_pod();
    let (ztunnel, app, pod, node) = (&ambient.ztunnel, &ambient.app, &ambient.pod, &ambient.node);

    let doc = json(&["--netns", pod.name()]);
    assert_matches_ss(&doc, &settle(pod));
    let zt = sockets_of(&doc, ztunnel.pid());
    assert_eq!(zt.len(), 5, "{zt:?}");
    for s in &zt {
        let p = s.processes.iter().find(|p| p.pid == ztunnel.pid()).unwrap();
        assert_eq!(serde_json::to_value(p.kind).unwrap(), "ztunnel");
        assert_eq!(p.netns_inode, Some(node.inode()));
        assert_eq!(role(s).0, "ztunnel", "{s:?}");
        assert_eq!(s.mark, Some(1337));
        assert!(s.warnings.is_empty(), "{s:?}");
    }
    let names: Vec<String> = zt.iter().map(|s| role(s).1).collect();
    for port in [15001u16, 15006, 15008] {
        assert!(zt.iter().any(|s| local_port(s) == Some(port)), "{port}");
    }
    assert!(names.iter().all(|n| !n.is_empty()));
    // ztunnel's own readiness port is in its own namespace, not the pod's.
    assert!(zt.iter().all(|s| local_port(s) != Some(15021)));
    assert_eq!(sockets_of(&doc, app.pid()).len(), 1);
    // The pod is not a sidecar pod: no envoy anywhere.
    assert!(
        doc.sockets
            .iter()
            .flat_map(|s| &s.processes)
            .all(|p| serde_json::to_value(p.kind).unwrap() != "envoy")
    );
}

/// A copy of the podports binary that any user can run (the build directory may sit under a
/// home directory that `nobody` cannot enter).
fn world_executable_podports() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("podports-bin-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        let dest = dir.join("podports");
        fs::copy(env!("CARGO_BIN_EXE_podports"), &dest).unwrap();
        fs::set_permissions(&dest, fs::Permissions::from_mode(0o755)).unwrap();
        dest
    })
    .clone()
}

fn as_nobody(netns: Option<&Path>, args: &[&str]) -> Output {
    let mut cmd = Command::new("nsenter");
    if let Some(ns) = netns {
        cmd.arg(format!("--net={}", ns.display()));
    }
    cmd.arg("--")
        .args([
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .arg(world_executable_podports())
        .args(args);
    cmd.output().expect("run setpriv")
}

fn doc_of(out: &Output) -> Document {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[cfg_attr(podports_not_root, ignore = "needs root")]
#[test]
fn unprivileged_inside_the_pod_sees_every_socket_and_is_told_owners_are_hidden() {
    if !require_root("unprivileged_inside_the_pod_sees_every_socket_and_is_told_owners_are_hidden")
    {
        return;
    }
    let pod = sidecar_pod();
    let ss = settle(&pod.ns);
    let doc = doc_of(&as_nobody(Some(pod.ns.path()), &["-o", "json"]));
    assert_eq!(doc.source, "netlink");
    let mut ours: Vec<Key> = doc.sockets.iter().map(|s| key_of_doc(s, true)).collect();
    let mut theirs: Vec<Key> = ss.iter().map(|s| key_of_ss(s, true)).collect();
    ours.sort();
    theirs.sort();
    assert_eq!(ours, theirs);
    assert!(doc.sockets.iter().all(|s| s.processes.is_empty()));
    assert!(doc.hidden_owners > 0);
    assert!(
        doc.warnings.iter().any(|w| w.contains("CAP_SYS_PTRACE")),
        "{:?}",
        doc.warnings
    );
}

#[cfg_attr(podports_not_root, ignore = "needs root")]
#[test]
fn unprivileged_outside_falls_back_to_proc_for_a_pid_and_fails_for_a_netns() {
    if !require_root("unprivileged_outside_falls_back_to_proc_for_a_pid_and_fails_for_a_netns") {
        return;
    }
    let pod = sidecar_pod();
    let ss = settle(&pod.ns);
    let doc = doc_of(&as_nobody(
        None,
        &["-o", "json", "--pid", &pod.app.pid().to_string()],
    ));
    assert_eq!(doc.source, "proc");
    assert!(
        doc.warnings.iter().any(|w| w.contains("CAP_SYS_")),
        "{:?}",
        doc.warnings
    );
    let mut ours: Vec<Key> = doc
        .sockets
        .iter()
        .filter(|s| s.proto != podports::model::Proto::Unix)
        .map(|s| key_of_doc(s, false))
        .collect();
    let mut theirs: Vec<Key> = ss
        .iter()
        .filter(|s| s.proto != "unix")
        .map(|s| key_of_ss(s, false))
        .collect();
    ours.sort();
    theirs.sort();
    assert_eq!(ours, theirs);

    let out = as_nobody(None, &["--netns", pod.ns.name()]);
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("CAP_SYS_ADMIN"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// This process's threads whose network namespace is `ino`.
fn threads_in(ino: u64) -> Vec<std::path::PathBuf> {
    use std::os::unix::fs::MetadataExt;
    fs::read_dir("/proc/self/task")
        .unwrap()
        .flatten()
        .filter(|t| fs::metadata(t.path().join("ns/net")).is_ok_and(|m| m.ino() == ino))
        .map(|t| t.path())
        .collect()
}

#[cfg_attr(podports_not_root, ignore = "needs root")]
#[test]
fn entering_a_namespace_leaves_no_thread_behind() {
    if !require_root("entering_a_namespace_leaves_no_thread_behind") {
        return;
    }
    use podports::sys::netns::Netns as Ns;
    use std::os::unix::fs::MetadataExt;
    let pod = Netns::new();
    let own = fs::metadata("/proc/thread-self/ns/net").unwrap();
    let ns = Ns::open(pod.path()).unwrap();
    // While the closure runs, exactly one thread (its own) is in the pod: the check below sees
    // a thread in the namespace when there is one, so its "none" after the call means none.
    let (seen, inside) = ns
        .run_in(|| {
            let ino = fs::metadata("/proc/thread-self/ns/net").unwrap().ino();
            (ino, threads_in(ino).len())
        })
        .unwrap();
    assert_eq!(seen, pod.inode(), "the closure ran inside the namespace");
    assert_eq!(inside, 1, "the closure's own thread, seen from inside");
    assert_eq!(
        fs::metadata("/proc/thread-self/ns/net").unwrap().ino(),
        own.ino()
    );
    let stayed = threads_in(pod.inode());
    assert!(stayed.is_empty(), "threads stayed in the pod: {stayed:?}");
}
