use std::sync::Arc;

use super::*;
use crate::model::{Family, Holder, Kind, PodRef, ProcessInfo, RawText, SockType};

fn ep(addr: &str, port: u16) -> Endpoint {
    Endpoint::Inet {
        addr: addr.parse().unwrap(),
        port,
    }
}

fn tcp(state: State, local: Endpoint, remote: Endpoint, inode: u64, cookie: u64) -> Socket {
    let mut s = Socket::new(
        Proto::Tcp,
        Family::Ipv4,
        SockType::Stream,
        state,
        local,
        remote,
        inode,
    );
    s.cookie = Some(cookie);
    s
}

fn held_by(mut s: Socket, pid: i32, comm: &str, container: Option<&str>) -> Socket {
    s.holders.push(Holder {
        process: Arc::new(ProcessInfo {
            pid,
            comm: RawText::from(comm),
            ..Default::default()
        }),
        fd: 3,
        kind: Kind::Envoy,
        basis: "test".into(),
        container: container.map(|name| {
            Arc::new(ContainerRef {
                pod: PodRef {
                    namespace: Some("default".into()),
                    name: Some("productpage".into()),
                    uid: "u1".into(),
                },
                id: Some("c1".into()),
                name: Some(name.into()),
            })
        }),
    });
    s
}

fn event(local: Endpoint, remote: Endpoint, cookie: u64) -> Socket {
    // What the kernel sends: TCP_CLOSE, no inode.
    tcp(State::Unconn, local, remote, 0, cookie)
}

fn at(ms: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(1_000_000 + ms)
}

fn catalog() -> Catalog {
    Catalog::builtin().unwrap()
}

/// A connection no look saw, which the connection tracing saw connect: its process (by
/// pid and comm, fd unknown), its container by cgroup, its lifetime from the connect. An
/// accepted one is its listener's and never asked about; one the tracing missed is unseen.
#[test]
fn a_connection_no_look_saw_is_owned_by_the_process_the_tracing_saw_connect_it() {
    let mut t = Tracker::new();
    t.saw(&[], at(0));
    let container = ContainerRef {
        pod: PodRef {
            namespace: Some("default".into()),
            name: Some("web-0".into()),
            uid: "u1".into(),
        },
        id: Some("abc".into()),
        name: Some("app".into()),
    };
    let mut asked = Vec::new();
    let closed = t.closed(
        vec![
            (
                at(1020),
                event(ep("10.0.0.5", 41000), ep("10.96.0.10", 15012), 7),
            ),
            (
                at(1030),
                event(ep("10.0.0.5", 41001), ep("10.96.0.10", 15012), 8),
            ),
        ],
        &Filters::default(),
        &catalog(),
        &mut |cookie| {
            asked.push(cookie);
            (cookie == 7).then(|| Created {
                at: at(1000),
                pid: 42,
                comm: b"curl".to_vec(),
                cgroup_id: 9001,
                container: Some(container.clone()),
            })
        },
    );
    assert_eq!(asked, vec![7, 8]);
    let c = &closed[0];
    assert_eq!(c.owner, OwnerFrom::Created);
    assert_eq!(c.lived(), Some(Duration::from_millis(20)));
    let h = &c.socket.holders[0];
    assert_eq!(
        (h.process.pid, h.process.comm.as_bytes(), h.fd),
        (42, &b"curl"[..], -1)
    );
    assert_eq!(h.container.as_deref(), Some(&container));
    assert_eq!(c.socket.cgroup_id, Some(9001));
    // The role still comes from the catalog.
    assert!(c.socket.peer_role.is_some());
    assert_eq!(closed[1].owner, OwnerFrom::Unseen);
    assert_eq!(closed[1].lived(), None);
}

#[test]
fn a_socket_a_look_saw_closes_with_its_owner_state_container_and_lifetime() {
    let mut t = Tracker::new();
    let xds = held_by(
        tcp(
            State::Established,
            ep("10.0.0.5", 41000),
            ep("10.96.0.10", 15012),
            77,
            9,
        ),
        5102,
        "envoy",
        Some("istio-proxy"),
    );
    t.saw(std::slice::from_ref(&xds), at(0));
    t.saw(std::slice::from_ref(&xds), at(2000));
    // Then the process is gone and the socket with it; the event comes.
    t.saw(&[], at(4000));
    let closed = t.closed(
        vec![(
            at(4100),
            event(ep("10.0.0.5", 41000), ep("10.96.0.10", 15012), 9),
        )],
        &Filters::default(),
        &catalog(),
        &mut |_| None,
    );
    assert_eq!(closed.len(), 1);
    let c = &closed[0];
    assert_eq!(c.owner, OwnerFrom::Look);
    assert_eq!(c.socket.state, State::Established, "the last state seen");
    assert_eq!(c.socket.holders[0].process.pid, 5102);
    let container = c.socket.holders[0].container.as_ref().unwrap();
    assert_eq!(container.name.as_deref(), Some("istio-proxy"));
    assert_eq!(
        c.lived(),
        Some(Duration::from_millis(4100)),
        "from first seen"
    );
    // Reported once: the same cookie again is no longer a seen socket.
    let again = t.closed(
        vec![(
            at(4200),
            event(ep("10.0.0.5", 41000), ep("10.96.0.10", 15012), 9),
        )],
        &Filters::default(),
        &catalog(),
        &mut |_| None,
    );
    assert_eq!(again[0].owner, OwnerFrom::Unseen);
}

#[test]
fn an_unseen_socket_has_no_owner_but_its_roles_and_a_cleared_port_is_told() {
    let mut t = Tracker::new();
    t.saw(&[], at(0));
    let closed = t.closed(
        vec![
            (
                at(10),
                event(ep("10.0.0.5", 41001), ep("10.96.0.10", 15012), 1),
            ),
            (at(20), event(ep("10.0.0.5", 41002), ep("10.96.0.10", 0), 2)),
        ],
        &Filters::default(),
        &catalog(),
        &mut |_| None,
    );
    assert_eq!(closed[0].owner, OwnerFrom::Unseen);
    assert!(closed[0].socket.holders.is_empty());
    assert_eq!(closed[0].lived(), None);
    let role = closed[0].socket.peer_role.as_ref().expect("a peer role");
    assert_eq!(
        (role.component, role.name.as_str()),
        (Kind::Istiod, "xds-tls")
    );
    assert!(!closed[0].port_cleared);
    assert!(closed[1].port_cleared);
}

#[test]
fn an_unseen_accepted_connection_is_given_its_listeners_holders() {
    let mut t = Tracker::new();
    let listener = held_by(
        tcp(
            State::Listen,
            ep("0.0.0.0", 15006),
            ep("0.0.0.0", 0),
            5,
            100,
        ),
        5102,
        "envoy",
        None,
    );
    let other = held_by(
        tcp(
            State::Listen,
            ep("10.0.0.5", 8080),
            ep("0.0.0.0", 0),
            6,
            101,
        ),
        7,
        "app",
        None,
    );
    t.saw(&[listener, other], at(0));
    let closed = t.closed(
        vec![
            (
                at(5),
                event(ep("10.0.0.5", 15006), ep("10.0.0.9", 40000), 3),
            ),
            (at(6), event(ep("10.0.0.5", 8080), ep("10.0.0.9", 40001), 4)),
            // A client end from port 15006 elsewhere is not this listener's... but a
            // closed listener (no remote) is never "accepted".
            (at(7), event(ep("0.0.0.0", 15006), ep("0.0.0.0", 0), 100)),
            (at(8), event(ep("10.0.0.5", 9999), ep("10.0.0.9", 40002), 5)),
        ],
        &Filters::default(),
        &catalog(),
        &mut |_| None,
    );
    assert_eq!(closed[0].owner, OwnerFrom::Listener);
    assert_eq!(closed[0].socket.holders[0].process.pid, 5102);
    assert_eq!(closed[1].socket.holders[0].process.pid, 7);
    assert_eq!(
        closed[2].owner,
        OwnerFrom::Look,
        "the listener itself, seen"
    );
    assert_eq!(closed[3].owner, OwnerFrom::Unseen);
}

#[test]
fn sockets_no_look_shows_any_more_are_forgotten_after_a_few_looks() {
    let mut t = Tracker::new();
    let s = tcp(
        State::Established,
        ep("10.0.0.5", 1),
        ep("10.0.0.6", 2),
        8,
        42,
    );
    t.saw(&[s], at(0));
    for i in 1..=KEEP_LOOKS {
        t.saw(&[], at(i * 1000));
    }
    let closed = t.closed(
        vec![(at(9000), event(ep("10.0.0.5", 1), ep("10.0.0.6", 2), 42))],
        &Filters::default(),
        &catalog(),
        &mut |_| None,
    );
    assert_eq!(closed[0].owner, OwnerFrom::Unseen);
    // TIME_WAIT (inode 0) is never remembered: it has no destroy event of its own.
    let mut t = Tracker::new();
    t.saw(
        &[tcp(
            State::TimeWait,
            ep("10.0.0.5", 1),
            ep("10.0.0.6", 2),
            0,
            43,
        )],
        at(0),
    );
    assert!(t.seen.is_empty());
}

#[test]
fn filters_apply_to_closed_sockets_as_to_the_listing() {
    let mut t = Tracker::new();
    t.saw(&[], at(0));
    let events = || {
        vec![
            (
                at(1),
                event(ep("10.0.0.5", 41001), ep("10.96.0.10", 15012), 1),
            ),
            (at(2), event(ep("10.0.0.5", 41002), ep("10.0.0.7", 9080), 2)),
        ]
    };
    let port = Filters {
        ports: vec![15012],
        ..Filters::default()
    };
    assert_eq!(
        t.closed(events(), &port, &catalog(), &mut |_| None).len(),
        1
    );
    let udp = Filters {
        protos: vec![Proto::Udp],
        ..Filters::default()
    };
    assert!(
        t.closed(events(), &udp, &catalog(), &mut |_| None)
            .is_empty()
    );
    let listening = Filters {
        listening: true,
        ..Filters::default()
    };
    assert!(
        t.closed(events(), &listening, &catalog(), &mut |_| None)
            .is_empty()
    );
}

#[test]
fn groups_are_by_side_and_owner_with_lifetime_ranges_largest_first() {
    let envoy = |c: Closed| Closed {
        socket: held_by(c.socket, 5102, "envoy", Some("istio-proxy")),
        ..c
    };
    let client = |port: u16, first: Option<u64>, closed: u64| Closed {
        socket: tcp(
            State::Established,
            ep("10.0.0.5", port),
            ep("10.96.0.10", 15012),
            1,
            u64::from(port),
        ),
        closed_at: at(closed),
        first_seen: first.map(at),
        owner: OwnerFrom::Look,
        created: None,
        port_cleared: false,
    };
    let closed = vec![
        envoy(client(41000, Some(0), 200)),
        envoy(client(41001, Some(0), 1900)),
        envoy(client(41002, None, 1900)),
        // Same remote, no owner known: another group.
        Closed {
            owner: OwnerFrom::Unseen,
            ..client(41003, None, 50)
        },
        // The served end of an inbound connection, on a listening port.
        Closed {
            socket: tcp(
                State::Established,
                ep("10.0.0.5", 9080),
                ep("10.0.0.9", 40000),
                2,
                5,
            ),
            ..client(1, None, 10)
        },
    ];
    let groups = group(&closed, &[9080]);
    assert_eq!(groups.len(), 3);
    assert_eq!(groups[0].members.len(), 3);
    assert_eq!(
        groups[0].side,
        Side::Client {
            local: "10.0.0.5".parse().unwrap(),
            remote: ep("10.96.0.10", 15012)
        }
    );
    assert_eq!(groups[0].owner.pids, vec![5102]);
    assert_eq!(
        groups[0].lived(),
        Some((Duration::from_millis(200), Duration::from_millis(1900)))
    );
    let served = groups
        .iter()
        .find(|g| matches!(g.side, Side::Served { .. }))
        .unwrap();
    assert_eq!(
        served.side,
        Side::Served {
            local: ep("10.0.0.5", 9080),
            remote: Some("10.0.0.9".parse().unwrap())
        }
    );
    let unseen = groups
        .iter()
        .find(|g| g.owner.from == OwnerFrom::Unseen)
        .unwrap();
    assert_eq!(unseen.members.len(), 1);
    assert_eq!(unseen.lived(), None);
    assert!(group(&[], &[]).is_empty());
}
