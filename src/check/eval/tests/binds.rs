//! Binds as a client reaches them: the pod's address families, wildcard and loopback per
//! family, unix datagram listeners.

use super::*;

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
