//! Self-test of the netns test infrastructure (tests/common): the sockholder helper, the
//! namespace and process guards, and the `ss` oracle. If these fail, every netns test of
//! podports is built on sand. The root tests skip without privileges, except under CI=true.
// A test: it makes sockets, files and processes freely (clippy.toml keeps them in sys/).
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;

// ---------------------------------------------------------------------------------------------
// Pure: the ss line parser, on lines captured from `ss -tuxanpeH` (iproute2 6.1.0, Linux
// 6.18.44) in namespaces holding podports-sockholder processes.

#[test]
fn ss_parser_reads_tcp_udp_lines() {
    let s = parse_ss_line(
        "tcp   LISTEN    0      128                0.0.0.0:15001            0.0.0.0:*     \
         users:((\"envoy\",pid=14635,fd=5)) ino:22552 sk:9a cgroup:unreachable:1 <->",
    )
    .unwrap();
    assert_eq!(
        (s.proto.as_str(), s.family.as_str(), s.sock_type.as_str()),
        ("tcp", "inet", "stream")
    );
    assert_eq!(s.state, "LISTEN");
    assert_eq!(s.local_addr.as_deref(), Some("0.0.0.0"));
    assert_eq!(s.local_port, Some(15001));
    assert_eq!(s.peer_addr.as_deref(), Some("0.0.0.0"));
    assert_eq!(s.peer_port, None);
    assert_eq!((s.recv_q, s.send_q), (0, 128));
    assert_eq!(s.inode, 22552);
    assert_eq!(s.users, vec![("envoy".to_string(), 14635, 5)]);
    assert_eq!((s.v6only, s.mark, s.uid), (None, None, 0));
    assert_eq!(
        (s.local(), s.peer()),
        ("0.0.0.0:15001".into(), "0.0.0.0:*".into())
    );

    // Dual-stack [::] bind: ss prints `*`, and v6only:0.
    let s = parse_ss_line(
        "tcp   LISTEN    0      128                      *:15020                  *:*     \
         users:((\"pilot-agent\",pid=14633,fd=4)) ino:22543 sk:a2 cgroup:unreachable:1 \
         v6only:0 <->",
    )
    .unwrap();
    assert_eq!(s.family, "inet6");
    assert_eq!(s.local_addr.as_deref(), Some("::"));
    assert_eq!(s.v6only, Some(false));
    assert_eq!(s.local(), "[::]:15020");

    // v6only [::] bind prints `[::]`; SO_MARK prints as fwmark.
    let s = parse_ss_line(
        "tcp   LISTEN    0      128                  [::1]:15000               [::]:*     \
         users:((\"envoy\",pid=14635,fd=23)) ino:22572 sk:a4 fwmark:0x539 \
         cgroup:unreachable:1 v6only:1 <->",
    )
    .unwrap();
    assert_eq!(s.local_addr.as_deref(), Some("::1"));
    assert_eq!(s.peer_addr.as_deref(), Some("::"));
    assert_eq!((s.v6only, s.mark), (Some(true), Some(1337)));

    // v4-mapped; established v6 sockets carry no v6only field.
    let s = parse_ss_line(
        "tcp   ESTAB     0      0       [::ffff:127.0.0.1]:54634 [::ffff:127.0.0.1]:15000 \
         users:((\"envoy\",pid=14635,fd=14)) ino:22561 sk:a5 cgroup:unreachable:1 <->",
    )
    .unwrap();
    assert_eq!(s.family, "inet6");
    assert_eq!(s.local_addr.as_deref(), Some("::ffff:127.0.0.1"));
    assert_eq!((s.local_port, s.peer_port), (Some(54634), Some(15000)));
    assert_eq!(s.state, "ESTABLISHED");

    // TIME-WAIT: no users, ino:0, a timer even without -o.
    let s = parse_ss_line(
        "tcp   TIME-WAIT 0      0                127.0.0.1:54642          127.0.0.1:15000 \
         timer:(timewait,58sec,0) ino:0 sk:9e",
    )
    .unwrap();
    assert_eq!(s.state, "TIME_WAIT");
    assert!(s.users.is_empty());
    assert_eq!(s.inode, 0);

    // SO_BINDTODEVICE: `addr%dev:port`.
    let s = parse_ss_line(
        "udp UNCONN 0      0      127.0.0.1%lo:15053   0.0.0.0:*     \
         users:((\"podports-sockho\",pid=15161,fd=4)) ino:23984 sk:102d cgroup:/ <->",
    )
    .unwrap();
    assert_eq!((s.proto.as_str(), s.state.as_str()), ("udp", "UNCONN"));
    assert_eq!(s.local_addr.as_deref(), Some("127.0.0.1"));
    assert_eq!(s.local_dev.as_deref(), Some("lo"));
    let s = parse_ss_line(
        "tcp LISTEN 0      128        [::1]%lo:15053      [::]:*     \
         users:((\"podports-sockho\",pid=15161,fd=5)) ino:23985 sk:1034 cgroup:/ v6only:1 <->",
    )
    .unwrap();
    assert_eq!(s.local_addr.as_deref(), Some("::1"));
    assert_eq!(s.local_dev.as_deref(), Some("lo"));

    // A connection still in a noaccept listener's queue: no users; the listener's Recv-Q
    // counts it and Send-Q is the backlog.
    let s = parse_ss_line(
        "tcp LISTEN 1      5         127.0.0.1:9000    0.0.0.0:*     \
         users:((\"podports-sockho\",pid=15161,fd=7)) ino:23987 sk:102e cgroup:/ <->",
    )
    .unwrap();
    assert_eq!((s.recv_q, s.send_q), (1, 5));

    // Several holders, and a comm with a space and a comma.
    let s = parse_ss_line(
        "tcp LISTEN 0 128 0.0.0.0:80 0.0.0.0:* \
         users:((\"Web Content,x\",pid=1,fd=3),(\"envoy\",pid=2,fd=40)) ino:7 sk:1 <->",
    )
    .unwrap();
    assert_eq!(
        s.users,
        vec![
            ("Web Content,x".to_string(), 1, 3),
            ("envoy".to_string(), 2, 40)
        ]
    );
    assert_eq!(s.inode, 7);
}

#[test]
fn ss_parser_reads_unix_lines() {
    // The -e `ino:` of a path socket is the socket FILE's inode: the socket inode is the
    // local "port" column.
    let s = parse_ss_line(
        "u_str LISTEN    0      128    etc/istio/proxy/XDS 22546                  * 0     \
         users:((\"pilot-agent\",pid=14633,fd=7)) <-> ino:10010665 dev:0/65024 peers:",
    )
    .unwrap();
    assert_eq!(
        (s.proto.as_str(), s.family.as_str(), s.sock_type.as_str()),
        ("unix", "unix", "stream")
    );
    assert_eq!(s.state, "LISTEN");
    assert_eq!(s.local_addr.as_deref(), Some("etc/istio/proxy/XDS"));
    assert_eq!(s.local_port, None);
    assert_eq!(s.inode, 22546);
    assert_eq!((s.peer_addr.clone(), s.peer_inode), (None, None));
    assert_eq!(s.users, vec![("pilot-agent".to_string(), 14633, 7)]);

    // Client end: unnamed local, peer name not resolved, peer inode set.
    let s = parse_ss_line(
        "u_str ESTAB     0      0                        * 22554                  * 22555 \
         users:((\"envoy\",pid=14635,fd=7)) <->",
    )
    .unwrap();
    assert_eq!(
        (s.local_addr.clone(), s.inode, s.peer_inode),
        (None, 22554, Some(22555))
    );
    assert_eq!(s.local(), "*");

    let s = parse_ss_line(
        "u_seq LISTEN    0      128                     sp 22568                  * 0     \
         users:((\"envoy\",pid=14635,fd=19)) <-> ino:10010667 dev:0/65024 peers:",
    )
    .unwrap();
    assert_eq!(s.sock_type, "seqpacket");
    let s = parse_ss_line(
        "u_dgr UNCONN    0      0                      @dg 22567                  * 0     \
         users:((\"envoy\",pid=14635,fd=18)) <->",
    )
    .unwrap();
    assert_eq!(
        (s.sock_type.as_str(), s.state.as_str()),
        ("dgram", "UNCONN")
    );
    assert_eq!(s.local_addr.as_deref(), Some("@dg"));

    // A path with a space survives (as a single space).
    let s = parse_ss_line(
        "u_str LISTEN    0      128             with space 22571                  * 0     \
         users:((\"envoy\",pid=14635,fd=22)) <-> ino:10010668 dev:0/65024 peers:",
    )
    .unwrap();
    assert_eq!(s.local_addr.as_deref(), Some("with space"));
    assert_eq!(s.inode, 22571);
}

#[test]
fn ss_parser_rejects_what_it_does_not_know() {
    for line in [
        "",
        "tcp LISTEN 0 128",
        "raw UNCONN 0 0 0.0.0.0:1 0.0.0.0:* ino:1",
        "tcp LISTENING 0 128 0.0.0.0:80 0.0.0.0:* ino:1",
        "tcp LISTEN x 128 0.0.0.0:80 0.0.0.0:* ino:1",
        "tcp LISTEN 0 128 0.0.0.0 0.0.0.0:* ino:1",
        "tcp LISTEN 0 128 bogus:80 0.0.0.0:* ino:1",
        "tcp LISTEN 0 128 0.0.0.0:80 0.0.0.0:* users:((\"x\",pid=1)) ino:1",
        "u_str ESTAB 0 0 * x * y",
    ] {
        assert!(parse_ss_line(line).is_err(), "accepted {line:?}");
    }
}

#[test]
fn ready_file_parses() {
    let r = Ready::parse(
        "pid=14635\nnetns=4026532177\nchild=9\n\
         socket fd=4 ino=22551 op=tcp-listen local=0.0.0.0:15001\n\
         socket fd=7 ino=22554 op=unix-connect local=* peer=etc/istio/proxy/XDS\n\
         socket fd=22 ino=22571 op=unix-listen local=with space\n\
         timewait local=127.0.0.1:54642 peer=127.0.0.1:15000\n",
    )
    .unwrap();
    assert_eq!(
        (r.pid, r.netns, r.children.clone()),
        (14635, 4026532177, vec![9])
    );
    assert_eq!(r.sockets.len(), 3);
    assert_eq!(r.sockets[1].peer.as_deref(), Some("etc/istio/proxy/XDS"));
    assert_eq!(r.socket("unix-listen", "with space").ino, 22571);
    assert_eq!(
        r.timewaits,
        vec![("127.0.0.1:54642".to_string(), "127.0.0.1:15000".to_string())]
    );
    assert!(Ready::parse("netns=1\n").is_err());
    assert!(Ready::parse("pid=1\nsocket fd=x ino=1 op=a local=b\n").is_err());
}

// ---------------------------------------------------------------------------------------------
// The helper's command line (no root needed: nothing here reaches a socket op).

fn helper() -> Command {
    Command::new(sockholder_exe())
}

#[test]
fn helper_help_exits_zero() {
    let out = helper().arg("--help").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    for op in [
        "tcp-listen=",
        "udp-bind=",
        "unix-seqpacket=",
        "setns=",
        "spawn=",
    ] {
        assert!(text.contains(op), "--help does not mention {op}");
    }
}

#[test]
fn helper_rejects_bad_arguments_with_exit_2() {
    use std::os::unix::ffi::OsStrExt;
    let cases: &[&[&[u8]]] = &[
        &[b"bogus"],
        &[b"tcp-listen"],
        &[b"tcp-listen="],
        &[b"tcp-listen=1.2.3.4"],
        &[b"tcp-listen=[::1]:99999"],
        &[b"tcp-listen=127.0.0.1:1,backlog=x"],
        &[b"tcp-listen=127.0.0.1:1,backlog=99999999999"],
        &[b"tcp-listen=127.0.0.1:1,v6only=on"],
        &[b"tcp-listen=127.0.0.1:1,from=127.0.0.6"],
        &[b"tcp-connect=127.0.0.1:1,from=::1"],
        &[b"udp-bind=127.0.0.1:1,mark=-1"],
        &[b"socketpair=foo"],
        &[b"--ready"],
        &[b"tcp-listen=\xff"],
        &[b"\xff=1"],
    ];
    for args in cases {
        let out = helper()
            .args(args.iter().map(|a| std::ffi::OsStr::from_bytes(a)))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("usage error"), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn helper_failed_op_exits_1_naming_the_op() {
    let dir = Scratch::new();
    let ready = dir.join("ready");
    let out = helper()
        .arg("--ready")
        .arg(&ready)
        .arg("socketpair")
        .arg("unix-connect=/nonexistent/podports/sock")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("op 2 `unix-connect=/nonexistent/podports/sock`: connect: ENOENT"),
        "{err}"
    );
    assert!(!ready.exists(), "no ready file after a failed op");
}

// ---------------------------------------------------------------------------------------------
// Real kernel

/// A standalone `envoy` with the sockets of a sidecar proxy: the oracle sees exactly them, each
/// owned by envoy's pid and fd.
#[cfg_attr(podports_not_root, ignore = "needs root")]
#[test]
fn envoy_sockets_match_ss_exactly() {
    if !require_root("envoy_sockets_match_ss_exactly") {
        return;
    }
    let ns = Netns::new();
    let dir = Scratch::new();
    let envoy = install_as("envoy");
    let chdir = format!("chdir={}", dir.path().display());
    let p = Proc::start(
        &ns,
        &envoy,
        &[
            chdir.as_str(),
            "tcp-listen=0.0.0.0:15001,reuseport",
            "tcp-listen=0.0.0.0:15001,reuseport",
            "tcp-listen=0.0.0.0:15001,reuseport",
            "tcp-listen=0.0.0.0:15001,reuseport",
            "tcp-listen=127.0.0.1:15000",
            "udp-bind=127.0.0.1:15053",
            "mkdir=etc/istio/proxy",
            "unix-listen=etc/istio/proxy/XDS",
            "tcp-connect=127.0.0.1:15000",
        ],
    );
    // The pid is the helper's, not nsenter's: nsenter exec()ed it.
    assert_eq!(p.pid(), p.ready().pid);
    assert_eq!(proc_comm_ppid(p.pid()).0, "envoy");
    let exe = std::fs::read_link(format!("/proc/{}/exe", p.pid())).unwrap();
    assert!(exe.ends_with("usr/local/bin/envoy"), "{}", exe.display());
    assert_eq!(netns_inode_of(p.pid()), ns.inode());
    assert_eq!(p.ready().netns, ns.inode());
    // The relative name is bound relative to the helper's cwd, and shows as given.
    assert!(dir.join("etc/istio/proxy/XDS").exists());

    let ss = ss_sockets(&ns);
    assert_ss_holds_exactly(&ss, &[("envoy", p.ready())], |_| false);

    let listeners = find(&ss, "tcp", "LISTEN", Some(15001));
    assert_eq!(
        listeners.len(),
        4,
        "one socket per reuseport listener: {ss:#?}"
    );
    let mut inodes: Vec<u64> = listeners.iter().map(|s| s.inode).collect();
    inodes.dedup();
    assert_eq!(inodes.len(), 4, "four distinct sockets");
    let admin = find(&ss, "tcp", "LISTEN", Some(15000));
    assert_eq!(admin.len(), 1);
    assert_eq!(admin[0].local_addr.as_deref(), Some("127.0.0.1"));
    let dns = find(&ss, "udp", "UNCONN", Some(15053));
    assert_eq!(dns.len(), 1);
    // Both ends of the loopback connection, both owned by envoy.
    let conn = find(&ss, "tcp", "ESTABLISHED", None);
    assert_eq!(conn.len(), 2, "{ss:#?}");
    assert_eq!(conn[0].local(), conn[1].peer());
    assert!(conn.iter().all(|s| s.pids() == vec![p.pid()]));
    let xds = find(&ss, "unix", "LISTEN", None);
    assert_eq!(xds.len(), 1);
    assert_eq!(xds[0].local_addr.as_deref(), Some("etc/istio/proxy/XDS"));
    assert_eq!(ss.len(), 4 + 1 + 1 + 2 + 1);
}

/// pilot-agent starts envoy as its child: each holds only its own sockets (nothing leaks
/// through exec), envoy's parent is pilot-agent, and envoy's XDS client is connected to
/// pilot-agent's XDS listener.
#[cfg_attr(podports_not_root, ignore = "needs root")]
#[test]
fn pilot_agent_spawns_envoy() {
    if !require_root("pilot_agent_spawns_envoy") {
        return;
    }
    let ns = Netns::new();
    let dir = Scratch::new();
    let agent = install_as("pilot-agent");
    let envoy = install_as("envoy");
    let envoy_ready = dir.join("envoy.ready");
    let chdir = format!("chdir={}", dir.path().display());
    let spawn = format!("spawn={}", envoy.display());
    let wait = format!("wait-file={}", envoy_ready.display());
    let agent_proc = Proc::start(
        &ns,
        &agent,
        &[
            chdir.as_str(),
            "tcp-listen=[::]:15020",
            "udp-bind=127.0.0.1:15053",
            "mkdir=etc/istio/proxy",
            "unix-listen=etc/istio/proxy/XDS",
            spawn.as_str(),
            "--ready",
            envoy_ready.to_str().unwrap(),
            chdir.as_str(),
            "tcp-listen=0.0.0.0:15001,reuseport",
            "tcp-listen=0.0.0.0:15001,reuseport",
            "tcp-listen=0.0.0.0:15006,reuseport",
            "tcp-listen=127.0.0.1:15000",
            "tcp-listen=0.0.0.0:15021",
            "tcp-listen=0.0.0.0:15090",
            "unix-connect=etc/istio/proxy/XDS",
            ";;",
            wait.as_str(),
        ],
    );
    let envoy_r = wait_ready_file(&envoy_ready);
    let agent_r = agent_proc.ready();
    assert_eq!(agent_proc.children(), &[envoy_r.pid]);
    let (comm, ppid) = proc_comm_ppid(envoy_r.pid);
    assert_eq!((comm.as_str(), ppid), ("envoy", agent_proc.pid()));
    assert_eq!(proc_comm_ppid(agent_proc.pid()).0, "pilot-agent");

    // pilot-agent accepts envoy's XDS connection in its poll loop, after it became ready.
    let ss = eventually(
        "pilot-agent to accept envoy's XDS connection",
        Duration::from_secs(5),
        || {
            let ss = ss_sockets(&ns);
            let accepted = ss.iter().any(|s| {
                s.proto == "unix" && s.state == "ESTABLISHED" && s.pids() == vec![agent_proc.pid()]
            });
            if accepted {
                Ok(ss)
            } else {
                Err(format!("{ss:#?}"))
            }
        },
    );
    let server_end = ss
        .iter()
        .find(|s| {
            s.proto == "unix" && s.state == "ESTABLISHED" && s.pids() == vec![agent_proc.pid()]
        })
        .unwrap();
    assert_eq!(
        server_end.local_addr.as_deref(),
        Some("etc/istio/proxy/XDS")
    );
    let client = envoy_r.socket("unix-connect", "*");
    assert_eq!(
        server_end.peer_inode,
        Some(client.ino),
        "XDS ends are peers"
    );
    assert_ss_holds_exactly(&ss, &[("pilot-agent", agent_r), ("envoy", &envoy_r)], |s| {
        s.inode == server_end.inode
    });
    let status = find(&ss, "tcp", "LISTEN", Some(15020));
    assert_eq!(status.len(), 1);
    assert_eq!(status[0].users[0].0, "pilot-agent");
    assert_eq!(
        (status[0].family.as_str(), status[0].v6only),
        ("inet6", Some(false))
    );
    assert_eq!(find(&ss, "tcp", "LISTEN", Some(15001)).len(), 2);

    // Drop reaps both: SIGTERM is forwarded to envoy.
    let (agent_pid, envoy_pid) = (agent_proc.pid(), envoy_r.pid);
    drop(agent_proc);
    assert!(
        !Path::new(&format!("/proc/{agent_pid}")).exists(),
        "pilot-agent reaped"
    );
    assert!(
        !Path::new(&format!("/proc/{envoy_pid}")).exists(),
        "envoy reaped"
    );
}

/// Ambient: ztunnel opens its capture listeners inside the pod's netns, then lives in its
/// own. From inside the pod, ss shows them without a process; from the node (all of /proc),
/// ss still finds ztunnel by inode. An app binding 15001 in the pod gets EADDRINUSE.
#[cfg_attr(podports_not_root, ignore = "needs root")]
#[test]
fn ambient_ztunnel_listens_in_pod_netns_from_its_own() {
    if !require_root("ambient_ztunnel_listens_in_pod_netns_from_its_own") {
        return;
    }
    let pod = Netns::new();
    let node = Netns::new();
    let ztunnel = install_as("ztunnel");
    let setns = format!("setns={}", node.path().display());
    let z = Proc::start(
        &pod,
        &ztunnel,
        &[
            "tcp-listen=[::]:15001,mark=1337",
            "tcp-listen=[::]:15006,mark=1337",
            "tcp-listen=[::]:15008,mark=1337",
            setns.as_str(),
            "tcp-listen=127.0.0.1:15000",
            "tcp-listen=[::]:15021",
        ],
    );
    assert_ne!(pod.inode(), node.inode());
    assert_eq!(
        netns_inode_of(z.pid()),
        node.inode(),
        "ztunnel lives in its own netns"
    );
    assert_eq!(z.ready().netns, node.inode());

    let in_pod = ss_sockets_without_procs(&pod);
    assert_eq!(in_pod.len(), 3, "{in_pod:#?}");
    for port in [15001, 15006, 15008] {
        let l = find(&in_pod, "tcp", "LISTEN", Some(port));
        assert_eq!(l.len(), 1, "{in_pod:#?}");
        assert!(
            l[0].users.is_empty(),
            "no process visible from the pod: {}",
            l[0].line
        );
        assert_eq!(l[0].mark, Some(1337));
        assert_eq!(l[0].local_addr.as_deref(), Some("::"));
        assert_eq!(
            l[0].inode,
            z.ready().socket("tcp-listen", &format!("[::]:{port}")).ino
        );
    }

    let from_node = ss_sockets(&pod);
    let ready_pod_only = Ready {
        sockets: z.ready().sockets[..3].to_vec(),
        ..z.ready().clone()
    };
    assert_ss_holds_exactly(&from_node, &[("ztunnel", &ready_pod_only)], |_| false);

    let own = ss_sockets(&node);
    let ready_own = Ready {
        sockets: z.ready().sockets[3..].to_vec(),
        ..z.ready().clone()
    };
    assert_ss_holds_exactly(&own, &[("ztunnel", &ready_own)], |_| false);

    let myapp = install_as("myapp");
    let err = match Proc::try_start(&pod, &myapp, &["tcp-listen=0.0.0.0:15001"]) {
        Ok(_) => panic!("myapp bound 0.0.0.0:15001 over ztunnel's dual-stack [::]:15001"),
        Err(e) => e,
    };
    assert_eq!(err.code, Some(1), "{err}");
    assert!(
        err.stderr
            .contains("op 1 `tcp-listen=0.0.0.0:15001`: bind: EADDRINUSE"),
        "{err}"
    );
}

/// Everything else the oracle must read right, checked against the helper's own account:
/// v4-mapped, a fixed source address, a pod IP, TIME_WAIT, an unaccepted connection, every
/// unix type, a bound device, a cross-process connection, EADDRINUSE without SO_REUSEPORT.
#[cfg_attr(podports_not_root, ignore = "needs root")]
#[test]
fn ss_oracle_matches_helper_for_every_socket_kind() {
    if !require_root("ss_oracle_matches_helper_for_every_socket_kind") {
        return;
    }
    let ns = Netns::new();
    ns.add_addr("10.0.0.5/32");
    let dir = Scratch::new();
    let chdir = format!("chdir={}", dir.path().display());
    let envoy = install_as("envoy");
    let app = install_as("myapp");
    let e = Proc::start(
        &ns,
        &envoy,
        &[
            chdir.as_str(),
            "tcp-listen=127.0.0.1:15000",
            "tcp-listen=[::]:15006,v6only=on",
            "tcp-listen=[::]:15008,v6only=off",
            "tcp-listen=10.0.0.5:15090,backlog=7",
            "tcp-connect=[::ffff:127.0.0.1]:15000",
            "tcp-timewait=127.0.0.1:15000",
            "tcp-listen=127.0.0.1:9000,noaccept,backlog=5",
            "tcp-connect=127.0.0.1:9000",
            "udp-bind=127.0.0.1:15053,dev=lo",
            "udp-connect=127.0.0.1:15053",
            "tcp-listen=[::1]:15053,mark=0x539",
            "unix-listen=@envoy-admin",
            "unix-seqpacket=ztunnel.sock",
            "unix-seqpacket-connect=ztunnel.sock",
            "unix-dgram=dgram.sock",
            "socketpair",
            "socketpair=seqpacket",
        ],
    );
    let app_p = Proc::start(
        &ns,
        &app,
        &[
            "tcp-listen=10.0.0.5:8080",
            "tcp-connect=10.0.0.5:15090,from=127.0.0.6",
        ],
    );
    // envoy accepts the app's connection after being ready.
    let (ss, accepted) = eventually(
        "envoy to accept myapp's connection",
        Duration::from_secs(5),
        || {
            let ss = ss_sockets(&ns);
            let acc = ss
                .iter()
                .find(|s| s.local() == "10.0.0.5:15090" && s.state == "ESTABLISHED");
            match acc {
                Some(a) if a.pids() == vec![e.pid()] => Ok((ss.clone(), a.inode)),
                _ => Err(format!("{ss:#?}")),
            }
        },
    );
    assert_ss_holds_exactly(
        &ss,
        &[("envoy", e.ready()), ("myapp", app_p.ready())],
        // envoy's end of myapp's connection; the queued (never accepted) end on :9000.
        |s| s.inode == accepted || (s.local() == "127.0.0.1:9000" && s.state == "ESTABLISHED"),
    );
    let r = e.ready();
    let by_ino = |ino: u64| ss.iter().find(|s| s.inode == ino).unwrap();

    let v6only = by_ino(r.socket("tcp-listen", "[::]:15006").ino);
    assert_eq!(
        (v6only.v6only, v6only.local()),
        (Some(true), "[::]:15006".into())
    );
    let dual = by_ino(r.socket("tcp-listen", "[::]:15008").ino);
    assert_eq!((dual.v6only, dual.family.as_str()), (Some(false), "inet6"));
    assert_eq!(dual.local_addr.as_deref(), Some("::"));
    let pod_ip = by_ino(r.socket("tcp-listen", "10.0.0.5:15090").ino);
    assert_eq!(pod_ip.send_q, 7, "a listener's Send-Q is its backlog");

    // The unaccepted connection: queued on the listener, server end without owner or inode.
    let queued = by_ino(r.socket("tcp-listen", "127.0.0.1:9000").ino);
    assert_eq!((queued.recv_q, queued.send_q), (1, 5));
    let client = r
        .sockets
        .iter()
        .find(|s| s.peer.as_deref() == Some("127.0.0.1:9000"))
        .unwrap();
    let server_end = ss
        .iter()
        .find(|s| s.local() == "127.0.0.1:9000" && s.state == "ESTABLISHED")
        .unwrap();
    assert_eq!(server_end.peer(), client.local);
    assert!(server_end.users.is_empty());
    assert_eq!(server_end.inode, 0);

    let tw = &r.timewaits;
    assert_eq!(tw.len(), 1);
    assert!(
        find(&ss, "tcp", "TIME_WAIT", None)
            .iter()
            .any(|s| s.local() == tw[0].0)
    );

    let dns = by_ino(r.socket("udp-bind", "127.0.0.1:15053").ino);
    assert_eq!(dns.local_dev.as_deref(), Some("lo"));
    let marked = by_ino(r.socket("tcp-listen", "[::1]:15053").ino);
    assert_eq!(marked.mark, Some(0x539));

    let mapped = r
        .sockets
        .iter()
        .find(|s| s.op == "tcp-connect" && s.local.starts_with("[::ffff:127.0.0.1]:"))
        .expect("the v4-mapped client");
    let mapped_ss = by_ino(mapped.ino);
    assert_eq!(
        (mapped_ss.family.as_str(), mapped_ss.local_addr.as_deref()),
        ("inet6", Some("::ffff:127.0.0.1"))
    );

    let from6 = app_p
        .ready()
        .sockets
        .iter()
        .find(|s| s.op == "tcp-connect")
        .unwrap();
    assert!(from6.local.starts_with("127.0.0.6:"), "{from6:?}");
    assert_eq!(by_ino(from6.ino).local_addr.as_deref(), Some("127.0.0.6"));

    // unix: abstract, seqpacket pair, dgram, socketpairs (peer inodes point at each other).
    let abs = by_ino(r.socket("unix-listen", "@envoy-admin").ino);
    assert_eq!(abs.local_addr.as_deref(), Some("@envoy-admin"));
    let seq = by_ino(r.socket("unix-seqpacket", "ztunnel.sock").ino);
    assert_eq!(
        (seq.sock_type.as_str(), seq.state.as_str()),
        ("seqpacket", "LISTEN")
    );
    let dg = by_ino(r.socket("unix-dgram", "dgram.sock").ino);
    assert_eq!(
        (dg.sock_type.as_str(), dg.state.as_str()),
        ("dgram", "UNCONN")
    );
    let pairs: Vec<_> = r.sockets.iter().filter(|s| s.op == "socketpair").collect();
    assert_eq!(pairs.len(), 4);
    for pair in pairs.chunks(2) {
        assert_eq!(by_ino(pair[0].ino).peer_inode, Some(pair[1].ino));
        assert_eq!(by_ino(pair[1].ino).peer_inode, Some(pair[0].ino));
    }
    assert_eq!(by_ino(pairs[2].ino).sock_type, "seqpacket");

    // Without SO_REUSEPORT a second listener on the same port fails; with it on both, it works.
    let second = Proc::try_start(&ns, &envoy, &["tcp-listen=127.0.0.1:15000"]);
    let err = second
        .err()
        .expect("second listener on 127.0.0.1:15000 must fail");
    assert_eq!(err.code, Some(1), "{err}");
    assert!(err.stderr.contains("EADDRINUSE"), "{err}");
}

/// A SIGKILLed helper's sockets vanish and the netns is deleted by the guard.
#[cfg_attr(podports_not_root, ignore = "needs root")]
#[test]
fn guards_clean_up() {
    if !require_root("guards_clean_up") {
        return;
    }
    let name;
    {
        let ns = Netns::new();
        name = ns.name().to_string();
        assert!(ns.path().exists());
        let p = Proc::start(&ns, &install_as("myapp"), &["tcp-listen=0.0.0.0:8080"]);
        let pid = p.pid();
        assert_eq!(ss_sockets(&ns).len(), 1);
        drop(p);
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "helper reaped"
        );
        assert!(ss_sockets(&ns).is_empty());
    }
    assert!(
        !Path::new("/run/netns").join(&name).exists(),
        "netns deleted"
    );
}
