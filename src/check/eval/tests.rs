//! Tests of check's rules and report on hand-built sockets.

use std::net::IpAddr;
use std::sync::Arc;

use super::*;
use crate::check::expect::{self, Format};
use crate::model::{Family, Holder, ProcessInfo, SockType, Socket, State, UnixName};

fn holder(pid: i32, comm: &str, kind: Kind) -> Holder {
    Holder {
        process: Arc::new(ProcessInfo {
            pid,
            comm: comm.into(),
            ..ProcessInfo::default()
        }),
        fd: 3,
        kind,
        basis: "".into(),
        container: None,
    }
}

fn inet(proto: Proto, addr: &str, port: u16, state: State, holders: &[Holder]) -> Socket {
    let addr: IpAddr = addr.parse().unwrap();
    let family = if addr.is_ipv4() {
        Family::Ipv4
    } else {
        Family::Ipv6
    };
    let ty = if proto == Proto::Tcp {
        SockType::Stream
    } else {
        SockType::Dgram
    };
    let remote = Endpoint::Inet {
        addr: if addr.is_ipv4() {
            "0.0.0.0".parse().unwrap()
        } else {
            "::".parse().unwrap()
        },
        port: 0,
    };
    let mut s = Socket::new(
        proto,
        family,
        ty,
        state,
        Endpoint::Inet { addr, port },
        remote,
        1000 + u64::from(port),
    );
    // As sock_diag reports an IPv6 socket: dual-stack unless said otherwise (`v6only`).
    if family == Family::Ipv6 {
        s.v6only = Some(false);
    }
    s.holders = holders.to_vec();
    s
}

fn tcp(addr: &str, port: u16, holders: &[Holder]) -> Socket {
    inet(Proto::Tcp, addr, port, State::Listen, holders)
}

fn udp(addr: &str, port: u16, holders: &[Holder]) -> Socket {
    inet(Proto::Udp, addr, port, State::Unconn, holders)
}

fn unix(name: UnixName, ty: SockType, state: State, holders: &[Holder]) -> Socket {
    let mut s = Socket::new(
        Proto::Unix,
        Family::Unix,
        ty,
        state,
        Endpoint::UnixLocal(name),
        Endpoint::UnixPeer { peer_inode: None },
        77,
    );
    s.holders = holders.to_vec();
    s
}

fn path(p: &str) -> UnixName {
    UnixName::Path(p.into())
}

fn envoy() -> Holder {
    holder(12, "envoy", Kind::Envoy)
}
fn agent() -> Holder {
    holder(10, "pilot-agent", Kind::PilotAgent)
}
fn app() -> Holder {
    holder(77, "myapp", Kind::App)
}
fn ztunnel() -> Holder {
    holder(5, "ztunnel", Kind::Ztunnel)
}

fn exp(yaml: &str) -> Expectations {
    expect::load(yaml, Format::Yaml, "test.yaml").unwrap_or_else(|e| panic!("{e}"))
}

fn run(yaml: &str, sockets: &[Socket]) -> Vec<Outcome> {
    evaluate(&exp(yaml), sockets, Visibility::default())
}

fn only(yaml: &str, sockets: &[Socket]) -> Outcome {
    let mut o = run(yaml, sockets);
    assert_eq!(o.len(), 1, "{o:#?}");
    o.remove(0)
}

/// A healthy sidecar pod, as podports lists it.
fn sidecar() -> Vec<Socket> {
    let e = [envoy()];
    let a = [agent()];
    vec![
        tcp("127.0.0.1", 15000, &e),
        tcp("0.0.0.0", 15001, &e),
        tcp("0.0.0.0", 15001, &e),
        tcp("0.0.0.0", 15006, &e),
        tcp("0.0.0.0", 15006, &e),
        tcp("::", 15020, &a),
        tcp("0.0.0.0", 15021, &e),
        tcp("0.0.0.0", 15090, &e),
        unix(
            path("etc/istio/proxy/XDS"),
            SockType::Stream,
            State::Listen,
            &a,
        ),
        unix(
            path("./var/run/secrets/workload-spiffe-uds/socket"),
            SockType::Stream,
            State::Listen,
            &a,
        ),
        tcp("10.0.0.5", 9080, &[app()]),
        // Not listeners: a connection, a TIME_WAIT, an unnamed unix socket.
        inet(Proto::Tcp, "127.0.0.1", 40000, State::Established, &a),
        inet(Proto::Tcp, "10.0.0.5", 9080, State::TimeWait, &[]),
        unix(UnixName::Unnamed, SockType::Stream, State::Established, &e),
    ]
}

fn statuses(o: &[Outcome]) -> Vec<(String, Status)> {
    o.iter().map(|o| (o.expected.clone(), o.status)).collect()
}

#[test]
fn a_healthy_sidecar_passes_the_profile_and_optional_items_are_skipped() {
    let o = run("extends: istio-sidecar\n", &sidecar());
    let failed: Vec<_> = o.iter().filter(|o| o.status != Status::Pass).collect();
    assert!(
        failed
            .iter()
            .all(|o| o.status == Status::Skip && o.optional),
        "{failed:#?}"
    );
    assert_eq!(failed.len(), 4, "15053 udp+tcp, 15008, 15004: {failed:#?}");
    let outbound = o.iter().find(|o| o.expected.contains("15001")).unwrap();
    // Two SO_REUSEPORT sockets are one listening port.
    assert_eq!(outbound.found.len(), 1);
    assert_eq!(outbound.found[0].sockets, 2);
    assert_eq!(
        outbound.found[0].text(),
        "tcp 0.0.0.0:15001 envoy[12] (2 sockets)"
    );
}

#[test]
fn missing_listener_fails_and_says_so() {
    let sockets: Vec<Socket> = sidecar()
        .into_iter()
        .filter(|s| s.local.port() != Some(15021))
        .collect();
    let o = run("extends: istio-sidecar\n", &sockets);
    let bad: Vec<_> = o.iter().filter(|o| o.failed()).collect();
    assert_eq!(bad.len(), 1, "{bad:#?}");
    assert_eq!(bad[0].status, Status::Fail);
    assert_eq!(bad[0].reason, "nothing listens on tcp/15021");
    assert_eq!(bad[0].name.as_deref(), Some("envoy readiness"));
    assert_eq!(bad[0].origin.to_string(), "istio-sidecar");
    assert!(bad[0].found.is_empty());
}

#[test]
fn udp_and_tcp_are_different_listeners() {
    let o = only(
        "listen:\n  - port: 15053\n    proto: udp\n",
        &[tcp("127.0.0.1", 15053, &[agent()])],
    );
    assert_eq!(o.status, Status::Fail);
    assert_eq!(o.reason, "nothing listens on udp/15053");
    let o = only(
        "listen:\n  - port: 15053\n    proto: udp\n",
        &[udp("127.0.0.1", 15053, &[agent()])],
    );
    assert_eq!(o.status, Status::Pass);
    // A connected UDP socket is no listener.
    let o = only(
        "listen:\n  - port: 15053\n    proto: udp\n",
        &[inet(
            Proto::Udp,
            "127.0.0.1",
            15053,
            State::Established,
            &[agent()],
        )],
    );
    assert_eq!(o.status, Status::Fail);
}

#[test]
fn wrong_owner_fails_naming_who_holds_it() {
    let o = only(
        "listen:\n  - port: 15021\n    owner: envoy\n",
        &[tcp("0.0.0.0", 15021, &[app()])],
    );
    assert_eq!(o.status, Status::Fail);
    assert_eq!(o.reason, "held by myapp[77] (app) (expected envoy)");
    assert_eq!(o.found[0].text(), "tcp 0.0.0.0:15021 myapp[77] (app)");
}

#[test]
fn every_holder_must_be_the_owner() {
    let o = only(
        "listen:\n  - port: 15021\n    owner: envoy\n",
        &[
            tcp("0.0.0.0", 15021, &[envoy()]),
            tcp("0.0.0.0", 15021, &[envoy(), app()]),
        ],
    );
    assert_eq!(o.status, Status::Fail);
    assert!(o.reason.contains("myapp[77]"), "{}", o.reason);
    assert!(!o.reason.contains("envoy[12]"), "{}", o.reason);
}

#[test]
fn a_fake_envoy_is_an_app_but_matches_by_comm() {
    let fake = holder(66, "envoy", Kind::App);
    let o = only(
        "listen:\n  - port: 15000\n    owner: envoy\n",
        &[tcp("127.0.0.1", 15000, std::slice::from_ref(&fake))],
    );
    assert_eq!(o.status, Status::Fail);
    assert!(o.reason.contains("envoy[66] (app)"), "{}", o.reason);
    // A comm name that is no kind matches the comm.
    let o = only(
        "listen:\n  - port: 9080\n    owner: myapp\n",
        &[tcp("10.0.0.5", 9080, &[app()])],
    );
    assert_eq!(o.status, Status::Pass);
    // A long name matches the 15 bytes the kernel keeps.
    let long = holder(9, "pilot-discovery", Kind::Istiod);
    let o = only(
        "listen:\n  - port: 8080\n    owner: pilot-discovery-extra\n",
        &[tcp("::", 8080, &[long])],
    );
    assert_eq!(o.status, Status::Pass);
}

#[test]
fn wrong_bind_fails_with_the_address() {
    let o = only(
        "listen:\n  - port: 15000\n    bind: loopback\n",
        &[
            tcp("127.0.0.1", 15000, &[envoy()]),
            tcp("0.0.0.0", 15000, &[envoy()]),
        ],
    );
    assert_eq!(o.status, Status::Fail);
    assert_eq!(o.reason, "bound to 0.0.0.0:15000 (expected loopback only)");
    let o = only(
        "listen:\n  - port: 15001\n    bind: wildcard\n",
        &[tcp("127.0.0.1", 15001, &[envoy()])],
    );
    assert_eq!(o.status, Status::Fail);
    assert!(o.reason.contains("expected the wildcard"), "{}", o.reason);
    for (addr, ok) in [
        ("::1", true),
        ("::ffff:127.0.0.1", true),
        ("10.0.0.5", false),
    ] {
        let o = only(
            "listen:\n  - port: 15000\n    bind: loopback\n",
            &[tcp(addr, 15000, &[envoy()])],
        );
        assert_eq!(o.status == Status::Pass, ok, "{addr}: {o:#?}");
    }
    let o = only(
        "listen:\n  - port: 15001\n    bind: wildcard\n",
        &[tcp("::", 15001, &[envoy()])],
    );
    assert_eq!(o.status, Status::Pass);
}

#[test]
fn an_address_selects_the_listener_on_it() {
    let sockets = [
        tcp("127.0.0.1", 15000, &[envoy()]),
        tcp("::1", 15000, &[envoy()]),
    ];
    let o = only("listen:\n  - port: 15000\n    bind: 127.0.0.1\n", &sockets);
    assert_eq!(o.status, Status::Pass);
    assert_eq!(o.found.len(), 1);
    let o = only("listen:\n  - port: 15000\n    bind: \"[::1]\"\n", &sockets);
    assert_eq!(o.status, Status::Pass);
    let o = only("listen:\n  - port: 15000\n    bind: 10.0.0.5\n", &sockets);
    assert_eq!(o.status, Status::Fail);
    assert_eq!(
        o.reason,
        "nothing listens on tcp/15000 at 10.0.0.5; found on other addresses"
    );
    assert_eq!(o.found.len(), 2);
}

#[test]
fn forbidden_listener_present_fails() {
    let o = only(
        "forbid:\n  - port: 15000\n",
        &[tcp("127.0.0.1", 15000, &[envoy()])],
    );
    assert_eq!(o.status, Status::Fail);
    assert_eq!(o.reason, "listening, which is forbidden");
    assert_eq!(o.found[0].text(), "tcp 127.0.0.1:15000 envoy[12]");
    let o = only(
        "forbid:\n  - port: 15000\n",
        &[tcp("127.0.0.1", 15001, &[])],
    );
    assert_eq!(o.status, Status::Pass);
    assert!(o.found.is_empty());
}

#[test]
fn forbid_bind_narrows_what_is_forbidden() {
    let yaml = "forbid:\n  - port: 15000\n    bind: wildcard\n";
    let o = only(yaml, &[tcp("127.0.0.1", 15000, &[envoy()])]);
    assert_eq!(o.status, Status::Pass, "loopback is fine");
    let o = only(yaml, &[tcp("::", 15000, &[envoy()])]);
    assert_eq!(o.status, Status::Fail);
    let o = only(
        "forbid:\n  - port: 15000\n    bind: 10.0.0.5\n",
        &[tcp("0.0.0.0", 15000, &[envoy()])],
    );
    assert_eq!(o.status, Status::Pass);
}

#[test]
fn forbid_owner_narrows_what_is_forbidden() {
    let yaml = "forbid:\n  - port: 15021\n    owner: app\n";
    let o = only(yaml, &[tcp("0.0.0.0", 15021, &[envoy()])]);
    assert_eq!(o.status, Status::Pass);
    let o = only(yaml, &[tcp("0.0.0.0", 15021, &[app()])]);
    assert_eq!(o.status, Status::Fail);
    assert_eq!(o.reason, "held by app, which is forbidden");
    let o = only(yaml, &[tcp("0.0.0.0", 15021, &[])]);
    assert_eq!(o.status, Status::Unknown);
}

#[test]
fn strict_lists_every_listener_not_named() {
    let yaml = "extends: istio-sidecar\nlisten:\n  - port: 9080\nstrict: true\n";
    let mut sockets = sidecar();
    let o = run(yaml, &sockets);
    let strict = o.last().unwrap();
    assert_eq!(strict.check, CheckKind::Strict);
    assert_eq!(strict.status, Status::Pass, "{strict:#?}");
    assert_eq!(strict.origin.to_string(), "test.yaml");

    sockets.push(tcp("0.0.0.0", 8080, &[app()]));
    sockets.push(tcp("0.0.0.0", 8080, &[app()]));
    sockets.push(udp("0.0.0.0", 5353, &[app()]));
    sockets.push(unix(
        UnixName::Abstract("app-admin".into()),
        SockType::Stream,
        State::Listen,
        &[app()],
    ));
    // Not listeners: no extras.
    sockets.push(unix(
        UnixName::Unnamed,
        SockType::Dgram,
        State::Unconn,
        &[app()],
    ));
    sockets.push(unix(
        path("/tmp/x"),
        SockType::Stream,
        State::Unconn,
        &[app()],
    ));
    sockets.push(udp("0.0.0.0", 0, &[app()]));
    let o = run(yaml, &sockets);
    let strict = o.last().unwrap();
    assert_eq!(strict.status, Status::Fail);
    let found: Vec<String> = strict.found.iter().map(Found::text).collect();
    assert_eq!(
        found,
        [
            "tcp 0.0.0.0:8080 myapp[77] (app) (2 sockets)",
            "udp 0.0.0.0:5353 myapp[77] (app)",
            "unix @app-admin myapp[77] (app)",
        ]
    );
    assert_eq!(
        strict.reason,
        "3 listening ports not named by any `listen` item"
    );
    // Without strict there is nothing about extras.
    let o = run("extends: istio-sidecar\n", &sockets);
    assert!(o.iter().all(|o| o.check != CheckKind::Strict));
}

#[test]
fn strict_names_by_address_when_the_item_gives_one() {
    let yaml = "listen:\n  - port: 9080\n    bind: 10.0.0.5\nstrict: true\n";
    let o = run(
        yaml,
        &[
            tcp("10.0.0.5", 9080, &[app()]),
            tcp("127.0.0.1", 9080, &[app()]),
        ],
    );
    assert_eq!(o[0].status, Status::Pass);
    assert_eq!(o[1].status, Status::Fail);
    assert_eq!(o[1].found.len(), 1);
    assert_eq!(o[1].found[0].text(), "tcp 127.0.0.1:9080 myapp[77] (app)");
}

#[test]
fn unix_paths_match_by_suffix_and_abstract_names_exactly() {
    let yaml = "listen:\n  - path: /etc/istio/proxy/XDS\n    owner: pilot-agent\n";
    for (name, ok) in [
        ("etc/istio/proxy/XDS", true),
        ("/etc/istio/proxy/XDS", true),
        ("./etc/istio/proxy/XDS", true),
        ("/host/etc/istio/proxy/XDS", true),
        ("fooetc/istio/proxy/XDS", false),
        ("etc/istio/proxy/XDS2", false),
        ("etc/istio/proxy/xds", false),
    ] {
        let o = only(
            yaml,
            &[unix(
                path(name),
                SockType::Stream,
                State::Listen,
                &[agent()],
            )],
        );
        assert_eq!(o.status == Status::Pass, ok, "{name}: {o:#?}");
    }
    let o = only(
        yaml,
        &[unix(
            UnixName::Abstract("etc/istio/proxy/XDS".into()),
            SockType::Stream,
            State::Listen,
            &[agent()],
        )],
    );
    assert_eq!(o.status, Status::Fail, "an abstract name is not a path");
    let o = only(
        "listen:\n  - path: \"@envoy_domain_socket\"\n",
        &[unix(
            UnixName::Abstract("envoy_domain_socket".into()),
            SockType::Stream,
            State::Listen,
            &[envoy()],
        )],
    );
    assert_eq!(o.status, Status::Pass);
    // A bound unix datagram socket listens; a connected stream socket does not.
    let o = only(
        "listen:\n  - path: run/log.sock\n",
        &[unix(
            path("/run/log.sock"),
            SockType::Dgram,
            State::Unconn,
            &[],
        )],
    );
    assert_eq!(o.status, Status::Pass);
    let o = only(
        "listen:\n  - path: run/log.sock\n",
        &[unix(
            path("/run/log.sock"),
            SockType::Stream,
            State::Established,
            &[],
        )],
    );
    assert_eq!(o.status, Status::Fail);
    assert_eq!(o.reason, "nothing listens on unix run/log.sock");
    // Wrong owner of a unix socket.
    let o = only(
        yaml,
        &[unix(
            path("etc/istio/proxy/XDS"),
            SockType::Stream,
            State::Listen,
            &[app()],
        )],
    );
    assert_eq!(o.status, Status::Fail);
    assert_eq!(
        o.found[0].text(),
        "unix etc/istio/proxy/XDS myapp[77] (app)"
    );
}

#[test]
fn hidden_owners_never_pass_an_owner_expectation() {
    let e = exp("listen:\n  - port: 15021\n    owner: envoy\n  - port: 15090\n");
    let sockets = [tcp("0.0.0.0", 15021, &[]), tcp("0.0.0.0", 15090, &[])];
    let o = evaluate(
        &e,
        &sockets,
        Visibility {
            owners_hidden: true,
            ..Visibility::default()
        },
    );
    assert_eq!(o[0].status, Status::Unknown);
    assert!(o[0].failed());
    assert!(
        o[0].reason.contains("fds could not be read"),
        "{}",
        o[0].reason
    );
    assert!(o[0].reason.contains("owners hidden"), "{}", o[0].reason);
    assert!(!o[0].reason.contains("profile"), "{}", o[0].reason);
    assert!(o[0].reason.contains("envoy"), "{}", o[0].reason);
    assert_eq!(
        o[0].found[0].text(),
        "tcp 0.0.0.0:15021 (no visible process)"
    );
    // No owner asked: listening is enough.
    assert_eq!(o[1].status, Status::Pass);
    // Not hidden for lack of privilege, simply not visible (another pid namespace).
    let o = evaluate(&e, &sockets, Visibility::default());
    assert_eq!(o[0].status, Status::Unknown);
    assert!(
        o[0].reason.contains("outside this pid namespace"),
        "{}",
        o[0].reason
    );
    // A wrong owner seen is a failure even when other owners are hidden.
    let o = evaluate(
        &e,
        &[tcp("0.0.0.0", 15021, &[]), tcp("0.0.0.0", 15021, &[app()])],
        Visibility {
            owners_hidden: true,
            ..Visibility::default()
        },
    );
    assert_eq!(o[0].status, Status::Fail);
    assert!(
        o[0].reason.contains("fds could not be read"),
        "{}",
        o[0].reason
    );
}

#[test]
fn ambient_listeners_held_by_ztunnel_pass_ambient_and_fail_sidecar() {
    // ztunnel lives in its own namespace (inode 2), the pod's is inode 1.
    let elsewhere = |netns: u64| {
        let mut h = ztunnel();
        let mut p = (*h.process).clone();
        p.netns_inode = Some(netns);
        h.process = Arc::new(p);
        h
    };
    let vis = Visibility {
        netns: Some(1),
        ..Visibility::default()
    };
    let run = |yaml: &str, sockets: &[Socket]| evaluate(&exp(yaml), sockets, vis);
    let z = [elsewhere(2)];
    let pod = [
        tcp("::", 15001, &z),
        tcp("::", 15006, &z),
        tcp("::", 15008, &z),
        udp("127.0.0.1", 15053, &z),
        tcp("127.0.0.1", 15053, &z),
        tcp("0.0.0.0", 8080, &[app()]),
    ];
    let o = run("extends: istio-ambient\n", &pod);
    assert!(o.iter().all(|o| !o.failed()), "{:#?}", statuses(&o));
    let dns = o
        .iter()
        .filter(|o| o.expected.contains("15053"))
        .collect::<Vec<_>>();
    assert_eq!(dns.len(), 2);
    assert!(dns.iter().all(|o| o.status == Status::Pass));

    let o = run("extends: istio-sidecar\n", &pod);
    let failed: Vec<&Outcome> = o.iter().filter(|o| o.failed()).collect();
    let reason = |port: &str| {
        failed
            .iter()
            .find(|o| o.expected.contains(port))
            .map(|o| o.reason.clone())
            .unwrap_or_default()
    };
    assert_eq!(reason("tcp/15000"), "nothing listens on tcp/15000");
    assert_eq!(reason("tcp/15001"), "held by ztunnel[5] (expected envoy)");
    // The optional 15053 is present, so it is checked: wrong owner.
    assert_eq!(
        reason("udp/15053"),
        "held by ztunnel[5] (expected pilot-agent)"
    );

    // A "ztunnel" inside the pod is not ambient's ztunnel: it fails, saying where it lives.
    let inside = [elsewhere(1)];
    let pod = [
        tcp("::", 15001, &inside),
        tcp("::", 15006, &z),
        tcp("::", 15008, &z),
    ];
    let o = run("extends: istio-ambient\n", &pod);
    let bad: Vec<&Outcome> = o.iter().filter(|o| o.failed()).collect();
    assert_eq!(bad.len(), 1, "{:#?}", statuses(&o));
    assert!(bad[0].expected.contains("tcp/15001"));
    assert!(
        bad[0]
            .reason
            .contains("from the pod's own network namespace"),
        "{}",
        bad[0].reason
    );
    // Where it lives cannot be read: unknown, which fails.
    let o = evaluate(
        &exp("extends: istio-ambient\n"),
        &pod,
        Visibility::default(),
    );
    assert_eq!(o[0].status, Status::Unknown, "{:#?}", statuses(&o));
}

#[test]
fn a_sidecar_fails_the_ambient_profile_for_its_sidecar_ports() {
    let o = run("extends: istio-ambient\n", &sidecar());
    let forbid_failed: Vec<&Outcome> = o
        .iter()
        .filter(|o| o.check == CheckKind::Forbid && o.failed())
        .collect();
    let ports: Vec<String> = forbid_failed.iter().map(|o| o.expected.clone()).collect();
    assert_eq!(
        ports,
        [
            "forbid tcp/15000",
            "forbid tcp/15020",
            "forbid tcp/15021",
            "forbid tcp/15090",
            "forbid unix etc/istio/proxy/XDS"
        ]
    );
}

#[test]
fn report_counts_and_verdict() {
    let report = |yaml: &str| {
        let e = exp(yaml);
        Report {
            outcomes: evaluate(&e, &sidecar(), Visibility::default()),
            sources: vec![],
            target: "current".into(),
            netns_inode: None,
            source: Source::Netlink,
            warnings: vec![],
            hidden_owners: 0,
            strict: e.strict.is_some(),
            waited: None,
            families: Families::IPV4,
        }
    };
    let r = report("extends: istio-sidecar\n");
    assert!(r.passed());
    assert_eq!(
        r.summary(),
        Summary {
            total: 12,
            passed: 8,
            failed: 0,
            unknown: 0,
            skipped: 4,
            dropped: 0,
        }
    );
    let r = report("extends: istio-sidecar\nlisten:\n  - port: 1\n");
    assert!(!r.passed());
    assert_eq!(r.summary().failed, 1);
}

#[test]
fn every_profile_evaluates_without_panicking_on_odd_sockets() {
    let odd = [
        tcp("0.0.0.0", 1, &[]),
        unix(
            UnixName::Path(RawText::new(b"\xff/etc/istio/proxy/XDS".to_vec())),
            SockType::Stream,
            State::Listen,
            &[],
        ),
        unix(
            UnixName::Abstract(RawText::new(Vec::new())),
            SockType::Stream,
            State::Listen,
            &[],
        ),
        unix(
            UnixName::Path(RawText::new(Vec::new())),
            SockType::Dgram,
            State::Unconn,
            &[],
        ),
    ];
    for p in crate::check::profiles::ALL {
        let e = exp(&format!("extends: {}\nstrict: true\n", p.name));
        let o = evaluate(&e, &odd, Visibility::default());
        assert!(!o.is_empty());
    }
}

fn v6only(addr: &str, port: u16, holders: &[Holder]) -> Socket {
    let mut s = tcp(addr, port, holders);
    s.v6only = Some(true);
    s
}

fn in_pod(yaml: &str, sockets: &[Socket], families: Families) -> Outcome {
    let mut o = evaluate(
        &exp(yaml),
        sockets,
        Visibility {
            families,
            ..Visibility::default()
        },
    );
    assert_eq!(o.len(), 1, "{o:#?}");
    o.remove(0)
}

#[test]
fn families_are_those_of_the_pods_addresses_beyond_loopback_and_link_local() {
    let addrs = |a: &[&str]| -> Vec<IpAddr> { a.iter().map(|s| s.parse().unwrap()).collect() };
    let f = Families::of(&addrs(&["127.0.0.1", "::1", "10.0.0.5", "fe80::1"]));
    assert_eq!((f.ipv4, f.ipv6, f.known), (true, false, true));
    let f = Families::of(&addrs(&["127.0.0.1", "::1", "fd00::5", "fe80::1"]));
    assert_eq!((f.ipv4, f.ipv6), (false, true));
    let f = Families::of(&addrs(&["10.0.0.5", "fd00::5"]));
    assert_eq!((f.ipv4, f.ipv6), (true, true));
    let f = Families::of(&addrs(&["127.0.0.1", "::1"]));
    assert_eq!((f.ipv4, f.ipv6), (false, false));
    assert_eq!(f.needed(), (true, false), "no address: checked as IPv4");
    assert_eq!(
        Families::default().needed(),
        (true, false),
        "unknown: as IPv4"
    );
}

#[test]
fn wildcard_must_reach_every_family_the_pod_has() {
    let y = "listen:\n  - {port: 15021, bind: wildcard}\n";
    let e = [envoy()];
    let v4 = [tcp("0.0.0.0", 15021, &e)];
    let dual = [tcp("::", 15021, &e)];
    let v6 = [v6only("::", 15021, &e)];
    let both = [tcp("0.0.0.0", 15021, &e), v6only("::", 15021, &e)];

    // IPv4-only pod: 0.0.0.0 or a dual-stack [::]; a v6-only [::] alone fails.
    assert_eq!(in_pod(y, &v4, Families::IPV4).status, Status::Pass);
    assert_eq!(in_pod(y, &dual, Families::IPV4).status, Status::Pass);
    assert_eq!(in_pod(y, &both, Families::IPV4).status, Status::Pass);
    let o = in_pod(y, &v6, Families::IPV4);
    assert_eq!(o.status, Status::Fail);
    assert!(
        o.reason.contains("IPv4 clients cannot reach it")
            && o.reason.contains("[::]:15021 is IPv6-only"),
        "{}",
        o.reason
    );
    // The same with the families unknown or empty: as IPv4, never a pass.
    assert_eq!(in_pod(y, &v6, Families::default()).status, Status::Fail);

    // IPv6-only pod: a v6-only [::] is right; 0.0.0.0 alone is not.
    assert_eq!(in_pod(y, &v6, Families::IPV6).status, Status::Pass);
    assert_eq!(in_pod(y, &dual, Families::IPV6).status, Status::Pass);
    let o = in_pod(y, &v4, Families::IPV6);
    assert_eq!(o.status, Status::Fail);
    assert!(
        o.reason.contains("IPv6 clients cannot reach it"),
        "{}",
        o.reason
    );

    // Dual-stack pod: both families, by a dual-stack [::] or 0.0.0.0 + [::].
    assert_eq!(in_pod(y, &dual, Families::DUAL).status, Status::Pass);
    assert_eq!(in_pod(y, &both, Families::DUAL).status, Status::Pass);
    let o = in_pod(y, &v4, Families::DUAL);
    assert!(o.reason.contains("IPv6 clients"), "{}", o.reason);
    let o = in_pod(y, &v6, Families::DUAL);
    assert!(o.reason.contains("IPv4 clients"), "{}", o.reason);
    assert!(o.reason.contains("IPv4 and IPv6"), "{}", o.reason);

    // Sockets read from /proc/net text do not say IPV6_V6ONLY: unknown, which fails.
    let mut unsure = tcp("::", 15021, &e);
    unsure.v6only = None;
    let o = in_pod(y, &[unsure.clone()], Families::IPV4);
    assert_eq!(o.status, Status::Unknown);
    assert!(o.failed());
    assert!(o.reason.contains("IPV6_V6ONLY"), "{}", o.reason);
    // ... unless IPv4 is served otherwise, or the pod is IPv6-only.
    let o = in_pod(
        y,
        &[unsure.clone(), tcp("0.0.0.0", 15021, &e)],
        Families::IPV4,
    );
    assert_eq!(o.status, Status::Pass);
    assert_eq!(in_pod(y, &[unsure], Families::IPV6).status, Status::Pass);

    // The owner rule still applies on top.
    let o = in_pod(
        "listen:\n  - {port: 15021, bind: wildcard, owner: envoy}\n",
        &[v6only("::", 15021, &[app()])],
        Families::IPV4,
    );
    assert!(
        o.reason.contains("IPv4 clients") && o.reason.contains("expected envoy"),
        "{}",
        o.reason
    );
}

#[test]
fn loopback_is_the_loopback_address_of_the_family_each_listener_serves() {
    let y = "listen:\n  - {port: 15000, bind: loopback}\n";
    let e = [envoy()];
    for fam in [Families::IPV4, Families::IPV6, Families::DUAL] {
        assert_eq!(
            in_pod(y, &[tcp("127.0.0.1", 15000, &e)], fam).status,
            Status::Pass
        );
        assert_eq!(
            in_pod(y, &[v6only("::1", 15000, &e)], fam).status,
            Status::Pass
        );
        assert_eq!(
            in_pod(y, &[tcp("::ffff:127.0.0.1", 15000, &e)], fam).status,
            Status::Pass
        );
        // Widened to the wildcard, of either family: fails.
        for wide in [
            tcp("0.0.0.0", 15000, &e),
            tcp("::", 15000, &e),
            v6only("::", 15000, &e),
        ] {
            let o = in_pod(y, &[tcp("127.0.0.1", 15000, &e), wide], fam);
            assert_eq!(o.status, Status::Fail, "{fam:?}");
            assert!(o.reason.contains("expected loopback only"), "{}", o.reason);
        }
    }
}

#[test]
fn a_bound_unix_datagram_socket_listens_even_when_a_client_connected_to_it() {
    // Linux 5.15+ marks both ends of a unix datagram connect() ESTABLISHED.
    let o = only(
        "listen:\n  - path: run/dgram.sock\n",
        &[unix(
            path("/run/dgram.sock"),
            SockType::Dgram,
            State::Established,
            &[app()],
        )],
    );
    assert_eq!(o.status, Status::Pass, "{}", o.reason);
    // The connected client is unnamed: no listener, so strict has no extra.
    let client = unix(
        UnixName::Unnamed,
        SockType::Dgram,
        State::Established,
        &[app()],
    );
    assert!(!is_listener(&client));
}

#[test]
fn dropped_items_are_reported_not_checked_and_strict_still_names_them() {
    let e = exp(
        "extends: istio-sidecar\nlisten:\n  - {port: 9080, owner: app}\ndrop:\n  - port: 15090\nstrict: true\n",
    );
    let mut sockets: Vec<Socket> = sidecar()
        .into_iter()
        .filter(|s| s.local.port() != Some(15090))
        .collect();
    let o = evaluate(&e, &sockets, Visibility::default());
    let d: Vec<&Outcome> = o.iter().filter(|o| o.status == Status::Dropped).collect();
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].expected, "listen tcp/15090 owner=envoy");
    assert_eq!(d[0].from(), "istio-sidecar, dropped by test.yaml:5");
    assert!(!d[0].failed());
    assert!(o.iter().all(|o| !o.failed()), "{o:#?}");
    // Envoy's stats port back (a dropped item's port is still named under strict).
    sockets.push(tcp("0.0.0.0", 15090, &[envoy()]));
    let o = evaluate(&e, &sockets, Visibility::default());
    assert!(o.iter().all(|o| !o.failed()), "{o:#?}");
    // Strict counts the profile's items as named: a conformant pod passes.
    let e =
        exp("extends: istio-sidecar\nforbid:\n  - {port: 15000, bind: wildcard}\nstrict: true\n");
    let conformant: Vec<Socket> = sidecar()
        .into_iter()
        .filter(|s| s.local.port() != Some(9080))
        .collect();
    let o = evaluate(&e, &conformant, Visibility::default());
    assert!(o.iter().all(|o| !o.failed()), "{o:#?}");
}

#[test]
fn a_forbid_in_a_file_never_removes_the_profiles_listen_requirement() {
    // The README's old example: a pod without 15000 and 15021 must fail.
    let e = exp(
        "extends: istio-sidecar\nforbid:\n  - {port: 15000, bind: wildcard}\n  - {port: 15021, owner: app}\n",
    );
    let broken: Vec<Socket> = sidecar()
        .into_iter()
        .filter(|s| !matches!(s.local.port(), Some(15000 | 15021)))
        .collect();
    let o = evaluate(&e, &broken, Visibility::default());
    let failed: Vec<&str> = o
        .iter()
        .filter(|o| o.failed())
        .map(|o| o.expected.as_str())
        .collect();
    assert_eq!(
        failed,
        [
            "listen tcp/15000 owner=envoy bind=loopback",
            "listen tcp/15021 owner=envoy bind=wildcard"
        ]
    );
    // Both hold: envoy's admin on 0.0.0.0 fails the profile's item and the file's forbid.
    let mut wide = broken.clone();
    wide.push(tcp("0.0.0.0", 15000, &[envoy()]));
    wide.push(tcp("0.0.0.0", 15021, &[envoy()]));
    let o = evaluate(&e, &wide, Visibility::default());
    let failed: Vec<&str> = o
        .iter()
        .filter(|o| o.failed())
        .map(|o| o.expected.as_str())
        .collect();
    assert_eq!(
        failed,
        [
            "listen tcp/15000 owner=envoy bind=loopback",
            "forbid tcp/15000 bind=wildcard"
        ]
    );
}

#[test]
fn a_file_requiring_what_its_profile_forbids_fails_and_says_how_to_allow_it() {
    let e = exp("extends: istio-ambient\nlisten:\n  - {port: 15020, owner: app}\n");
    let o = evaluate(
        &e,
        &[tcp("0.0.0.0", 15020, &[app()])],
        Visibility::default(),
    );
    let f = o.iter().find(|o| o.expected == "forbid tcp/15020").unwrap();
    assert_eq!(f.status, Status::Fail);
    assert!(
        f.reason.contains(
            "(test.yaml:3 requires it; to allow it, drop the forbid: `drop: [{port: 15020}]`)"
        ),
        "{}",
        f.reason
    );
    // With the drop, it passes.
    let e = exp(
        "extends: istio-ambient\nlisten:\n  - {port: 15020, owner: app}\ndrop:\n  - port: 15020\n",
    );
    let o = evaluate(
        &e,
        &[tcp("0.0.0.0", 15020, &[app()])],
        Visibility::default(),
    );
    assert!(
        o.iter()
            .filter(|o| o.target.as_ref().and_then(|t| t.port()) == Some(15020))
            .all(|o| !o.failed()),
        "{o:#?}"
    );
}
