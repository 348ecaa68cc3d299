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

mod binds;
mod merge;
mod profiles;
