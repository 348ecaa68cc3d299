//! Tests of the catalog model, its validation and the built-in data.

use super::*;
use std::net::{Ipv4Addr, Ipv6Addr};

use Kind::{App, Envoy, Istiod, LinkerdProxy, PilotAgent, Ztunnel};
use Proto::{Tcp, Udp};

fn builtin() -> Catalog {
    Catalog::builtin().unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn err(text: &str) -> String {
    Catalog::parse(text).unwrap_err().to_string()
}

#[test]
fn builtin_parses_and_every_entry_is_sourced() {
    let c = builtin();
    assert!(c.entries().count() > 40);
    for e in c.entries() {
        assert!(!e.source.trim().is_empty(), "{}", e.label());
        assert!(!e.description.trim().is_empty(), "{}", e.label());
        assert!(!e.name.trim().is_empty(), "{}", e.label());
    }
}

/// Proto, port, holders, expected (component, name).
type LocalCase = (Proto, u16, &'static [Kind], Option<(Kind, &'static str)>);

/// The reference page's facts, including owner-dependent resolution.
#[test]
fn local_roles_follow_the_reference_page() {
    #[rustfmt::skip]
    let cases: &[LocalCase] = &[
        // Sidecar ports.
        (Tcp, 15000, &[Envoy], Some((Envoy, "admin"))),
        (Tcp, 15002, &[PilotAgent], Some((PilotAgent, "iptables-validation"))),
        (Tcp, 15004, &[PilotAgent], Some((PilotAgent, "xds-debug"))),
        (Tcp, 15009, &[Envoy], Some((Envoy, "hbone-secure-networks"))),
        (Tcp, 15090, &[Envoy], Some((Envoy, "prometheus-stats"))),
        (Tcp, 15090, &[], Some((Envoy, "prometheus-stats"))),
        // 15000: Envoy admin or ztunnel admin.
        (Tcp, 15000, &[Ztunnel], Some((Ztunnel, "admin"))),
        (Tcp, 15000, &[], Some((Envoy, "admin"))),
        (Tcp, 15000, &[App, Envoy], Some((Envoy, "admin"))),
        // 15001/15006/15008: Envoy capture or ztunnel in-pod listeners.
        (Tcp, 15001, &[Envoy], Some((Envoy, "virtual-outbound"))),
        (Tcp, 15001, &[Ztunnel], Some((Ztunnel, "outbound"))),
        (Tcp, 15001, &[], Some((Envoy, "virtual-outbound"))),
        (Tcp, 15001, &[App], Some((Envoy, "virtual-outbound"))),
        (Udp, 15001, &[Envoy], None),
        (Tcp, 15006, &[Envoy], Some((Envoy, "virtual-inbound"))),
        (Tcp, 15006, &[Ztunnel], Some((Ztunnel, "inbound-plaintext"))),
        (Tcp, 15006, &[], Some((Envoy, "virtual-inbound"))),
        (Tcp, 15008, &[Envoy], Some((Envoy, "hbone"))),
        (Tcp, 15008, &[Ztunnel], Some((Ztunnel, "hbone-inbound"))),
        (Tcp, 15008, &[], Some((Envoy, "hbone"))),
        (Tcp, 15080, &[], Some((Ztunnel, "socks5"))),
        // 15020/15021: sidecar status/readiness or ztunnel's own pod.
        (Tcp, 15020, &[PilotAgent], Some((PilotAgent, "status"))),
        (Tcp, 15020, &[Ztunnel], Some((Ztunnel, "metrics"))),
        (Tcp, 15020, &[], Some((PilotAgent, "status"))),
        (Tcp, 15021, &[Envoy], Some((Envoy, "readiness"))),
        (Tcp, 15021, &[Ztunnel], Some((Ztunnel, "readiness"))),
        (Tcp, 15021, &[App], Some((Envoy, "readiness"))),
        // 15053: DNS proxy, udp and tcp, pilot-agent or ztunnel.
        (Udp, 15053, &[PilotAgent], Some((PilotAgent, "dns-proxy"))),
        (Tcp, 15053, &[PilotAgent], Some((PilotAgent, "dns-proxy"))),
        (Udp, 15053, &[Ztunnel], Some((Ztunnel, "dns-proxy"))),
        (Udp, 15053, &[], Some((PilotAgent, "dns-proxy"))),
        // Gateways.
        (Tcp, 15443, &[Envoy], Some((Envoy, "tls-passthrough"))),
        (Tcp, 15012, &[Envoy], Some((Envoy, "istiod-xds-exposed"))),
        (Tcp, 443, &[Envoy], Some((Envoy, "gateway-https"))),
        (Tcp, 443, &[App], None),
        // istiod: generic ports match only when istiod holds them.
        (Tcp, 15012, &[Istiod], Some((Istiod, "xds-tls"))),
        (Tcp, 15012, &[], None),
        (Tcp, 15010, &[Istiod], Some((Istiod, "xds-plaintext"))),
        (Tcp, 15014, &[Istiod], Some((Istiod, "monitoring"))),
        (Tcp, 15017, &[Istiod], Some((Istiod, "webhook"))),
        (Tcp, 9876, &[Istiod], Some((Istiod, "controlz"))),
        (Tcp, 9876, &[App], None),
        (Tcp, 8080, &[Istiod], Some((Istiod, "http-debug"))),
        (Tcp, 8080, &[Envoy], Some((Envoy, "gateway-http-legacy"))),
        (Tcp, 8080, &[App], None),
        (Tcp, 8080, &[], None),
        // Linkerd.
        (Tcp, 4140, &[LinkerdProxy], Some((LinkerdProxy, "outbound"))),
        (Tcp, 4143, &[LinkerdProxy], Some((LinkerdProxy, "inbound"))),
        (Tcp, 4190, &[LinkerdProxy], Some((LinkerdProxy, "control"))),
        (Tcp, 4191, &[LinkerdProxy], Some((LinkerdProxy, "admin"))),
        (Tcp, 4191, &[App], None),
        (Tcp, 8086, &[App], None),
        // Nothing.
        (Tcp, 22, &[App], None),
    ];
    let c = builtin();
    for (proto, port, owners, want) in cases {
        let got = c
            .local_role(*proto, *port, owners)
            .map(|e| (e.component, e.name.as_str()));
        assert_eq!(got, *want, "{proto} {port} held by {owners:?}");
    }
}

/// Reserved = pilot-agent's istioReservedPorts, plus ztunnel's in-pod 15080.
#[test]
fn reserved_ports_are_istio_reserved_ports() {
    let mut ports: Vec<u16> = builtin()
        .entries()
        .filter(|e| e.reserved)
        .filter_map(|e| match e.key {
            Key::Port { port, .. } => Some(port),
            _ => None,
        })
        .collect();
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(
        ports,
        [
            15000, 15001, 15004, 15006, 15008, 15020, 15021, 15053, 15080, 15090
        ]
    );
}

#[test]
fn istio_15004_carries_a_version_note() {
    let c = builtin();
    let e = c.local_role(Tcp, 15004, &[PilotAgent]).unwrap();
    assert_eq!(e.versions, "< 1.25");
    assert_eq!(e.role().versions, "< 1.25");
    let sds = c.unix_role(b"etc/istio/proxy/SDS").unwrap();
    assert_eq!(sds.versions, "< 1.14");
}

#[test]
fn role_copies_the_entry() {
    let c = builtin();
    let role = c.local_role(Tcp, 15000, &[Envoy]).unwrap().role();
    assert_eq!(role.mesh, "istio");
    assert_eq!(role.component, Envoy);
    assert_eq!(role.name, "admin");
    assert_eq!(
        role.source,
        "tools/packaging/common/envoy_bootstrap.json (admin.address)"
    );
    assert!(role.versions.is_empty());
}

#[test]
fn unix_paths_match_by_suffix_on_component_boundaries() {
    let c = builtin();
    #[rustfmt::skip]
    let cases: &[(&[u8], Option<&str>)] = &[
        (b"etc/istio/proxy/XDS", Some("xds-proxy")),
        (b"/etc/istio/proxy/XDS", Some("xds-proxy")),
        (b"./etc/istio/proxy/XDS", Some("xds-proxy")),
        (b"/host/root/etc/istio/proxy/XDS", Some("xds-proxy")),
        (b"./var/run/secrets/workload-spiffe-uds/socket", Some("sds")),
        (b"etc/istio/proxy/SDS", Some("sds-legacy")),
        (b"var/run/secrets/credential-uds/socket", Some("credential-sds")),
        (b"var/run/secrets/credential-uds/files-socket", Some("file-credentials-sds")),
        (b"/var/run/ztunnel/ztunnel.sock", Some("zds")),
        (b"var/run/ztunnel/ztunnel.sock", Some("zds")),
        (b"/var/run/istio-cni/pluginevent.sock", Some("cni-plugin-events")),
        (b"/var/run/istio-cni/log.sock", Some("cni-plugin-log")),
        // Negative: not on a boundary, longer, shorter, or other bytes.
        (b"foo/etc/istio/proxy/XDSX", None),
        (b"etc/istio/proxy/XDSX", None),
        (b"fooetc/istio/proxy/XDS", None),
        (b"istio/proxy/XDS", None),
        (b"XDS", None),
        (b"etc/istio/proxy/XDS/", None),
        (b"etc/istio/proxy/xds", None),
        (b"etc/istio/proxy/XD\xff", None),
        (b"var/run/secrets/other-uds/socket", None),
        (b"socket", None),
        (b"", None),
    ];
    for (path, want) in cases {
        let got = c.unix_role(path).map(|e| e.name.as_str());
        assert_eq!(got, *want, "{:?}", String::from_utf8_lossy(path));
    }
}

#[test]
fn peer_roles_are_server_ports_only() {
    let c = builtin();
    let p = |proto, port| {
        c.peer_role(proto, port)
            .map(|e| (e.component, e.name.as_str()))
    };
    assert_eq!(p(Tcp, 15012), Some((Istiod, "xds-tls")));
    assert_eq!(p(Tcp, 15010), Some((Istiod, "xds-plaintext")));
    assert_eq!(p(Tcp, 15017), Some((Istiod, "webhook")));
    assert_eq!(p(Tcp, 15008), Some((Envoy, "hbone")));
    assert_eq!(p(Tcp, 15443), Some((Envoy, "tls-passthrough")));
    assert_eq!(p(Tcp, 4143), Some((LinkerdProxy, "inbound")));
    assert_eq!(p(Udp, 15012), None);
    assert_eq!(p(Tcp, 15000), None);
    assert_eq!(p(Tcp, 15001), None);
    assert_eq!(p(Tcp, 15006), None);
    assert_eq!(p(Tcp, 8080), None);
    assert_eq!(p(Tcp, 443), None);
}

#[test]
fn special_source_addresses() {
    let c = builtin();
    for a in ["127.0.0.6", "::6", "::ffff:127.0.0.6"] {
        let e = c.source_role(ip(a)).unwrap_or_else(|| panic!("{a}"));
        assert_eq!(
            (e.component, e.name.as_str()),
            (Envoy, "inbound-passthrough-source")
        );
    }
    for a in [
        "127.0.0.1",
        "::1",
        "127.0.0.7",
        "10.0.0.6",
        "::ffff:127.0.0.1",
    ] {
        assert_eq!(c.source_role(ip(a)), None, "{a}");
    }
}

#[test]
fn bind_expectations() {
    let c = builtin();
    let admin = c.local_role(Tcp, 15000, &[Envoy]).unwrap();
    assert_eq!(admin.bind, Some(Bind::Loopback));
    assert_eq!(
        admin
            .bind_violation(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
            .as_deref(),
        Some("envoy admin (15000) bound to 0.0.0.0, reachable beyond loopback")
    );
    assert_eq!(
        admin
            .bind_violation(IpAddr::V6(Ipv6Addr::UNSPECIFIED))
            .as_deref(),
        Some("envoy admin (15000) bound to [::], reachable beyond loopback")
    );
    for ok in ["127.0.0.1", "::1", "::ffff:127.0.0.1"] {
        assert_eq!(admin.bind_violation(ip(ok)), None, "{ok}");
    }
    let dns = c.local_role(Udp, 15053, &[Ztunnel]).unwrap();
    assert!(dns.bind_violation(ip("10.1.2.3")).is_some());
    assert_eq!(dns.bind_violation(ip("::1")), None);
    let outbound = c.local_role(Tcp, 15001, &[Envoy]).unwrap();
    assert_eq!(outbound.bind_violation(ip("0.0.0.0")), None);
    assert_eq!(outbound.bind_violation(ip("::")), None);
    assert_eq!(
        outbound.bind_violation(ip("127.0.0.1")).as_deref(),
        Some(
            "envoy virtual-outbound (15001) bound to 127.0.0.1 only, expected on all addresses (0.0.0.0 or [::])"
        )
    );
    let stats = c.local_role(Tcp, 15090, &[Envoy]).unwrap();
    assert_eq!(stats.bind, Some(Bind::Any));
    assert_eq!(stats.bind_violation(ip("127.0.0.1")), None);
    assert_eq!(stats.bind_violation(ip("0.0.0.0")), None);
    let validation = c.local_role(Tcp, 15002, &[PilotAgent]).unwrap();
    assert_eq!(validation.bind_violation(ip("0.0.0.0")), None);
}

#[test]
fn bind_round_trips_through_serde() {
    let b: Bind = serde_json::from_str("\"loopback\"").unwrap();
    assert_eq!(b, Bind::Loopback);
    assert_eq!(
        serde_json::to_string(&Bind::Wildcard).unwrap(),
        "\"wildcard\""
    );
    assert_eq!(Bind::Any.to_string(), "any");
}

const GOOD: &str = r#"
[[port]]
mesh = "istio"
component = "envoy"
name = "admin"
description = "d"
source = "s"
port = 15000
protos = ["tcp"]
"#;

#[test]
fn minimal_catalog_parses() {
    let c = Catalog::parse(GOOD).unwrap();
    assert_eq!(c.entries().count(), 1);
    assert_eq!(Catalog::parse("").unwrap().entries().count(), 0);
}

#[test]
fn unknown_component_is_named() {
    let e = err(&GOOD.replace("\"envoy\"", "\"envoyy\""));
    assert!(e.contains("[[port]] #1 \"admin\""), "{e}");
    assert!(e.contains("unknown component `envoyy`"), "{e}");
    assert!(e.contains("pilot-agent, envoy, ztunnel"), "{e}");
}

#[test]
fn missing_port_is_named() {
    let e = err(&GOOD.replace("port = 15000\n", ""));
    assert_eq!(e, "catalog entry [[port]] #1 \"admin\": missing `port`");
}

#[test]
fn malformed_entries_are_rejected_with_the_reason() {
    #[rustfmt::skip]
    let cases: &[(&str, &str)] = &[
        (&GOOD.replace("port = 15000", "port = 0"), "`port` is 0"),
        (&GOOD.replace("protos = [\"tcp\"]\n", ""), "missing `protos`"),
        (&GOOD.replace("[\"tcp\"]", "[]"), "`protos` is empty"),
        (&GOOD.replace("[\"tcp\"]", "[\"unix\"]"), "tcp and udp only"),
        (&GOOD.replace("[\"tcp\"]", "[\"tcp\", \"tcp\"]"), "lists tcp twice"),
        (&GOOD.replace("\"istio\"", "\"consul\""), "unknown mesh `consul`"),
        (&GOOD.replace("source = \"s\"\n", ""), "missing `source`"),
        (&GOOD.replace("source = \"s\"", "source = \" \""), "`source` is empty"),
        (&GOOD.replace("name = \"admin\"\n", ""), "missing `name`"),
        (&format!("{GOOD}versions = \"\"\n"), "`versions` is empty"),
        (&format!("{GOOD}path = \"x\"\n"), "`path` does not belong in a [[port]] entry"),
        (&format!("{GOOD}reserved = true\n").replace("\"envoy\"", "\"app\""), "cannot be `reserved`"),
    ];
    for (text, want) in cases {
        let e = err(text);
        assert!(e.contains("[[port]] #1"), "{e}");
        assert!(e.contains(want), "want {want:?} in {e:?}");
    }
}

#[test]
fn unix_and_address_entries_are_checked() {
    let unix = "[[unix]]\nmesh = \"istio\"\ncomponent = \"pilot-agent\"\nname = \"xds\"\ndescription = \"d\"\nsource = \"s\"\n";
    assert!(err(unix).contains("[[unix]] #1 \"xds\": missing `path`"));
    assert!(err(&format!("{unix}path = \"./\"\n")).contains("names no file"));
    let e = err(&format!("{unix}path = \"etc/x\"\nbind = \"loopback\"\n"));
    assert!(e.contains("`bind` applies to [[port]] entries only"), "{e}");
    let dup = format!(
        "{unix}path = \"etc/x\"\n{}path = \"/etc/x\"\n",
        unix.replace("\"xds\"", "\"xds2\"")
    );
    let e = err(&dup);
    assert!(
        e.contains(
            "[[unix]] #2 \"xds2\": conflicts with [[unix]] #1 \"xds\": same unix path `etc/x`"
        ),
        "{e}"
    );

    let addr = "[[address]]\nmesh = \"istio\"\ncomponent = \"envoy\"\nname = \"a\"\ndescription = \"d\"\nsource = \"s\"\n";
    assert!(err(addr).contains("missing `addrs`"));
    assert!(err(&format!("{addr}addrs = []\n")).contains("`addrs` is empty"));
    let dup = format!(
        "{addr}addrs = [\"127.0.0.6\"]\n{}addrs = [\"::ffff:127.0.0.6\"]\n",
        addr.replace("\"a\"", "\"b\"")
    );
    assert!(err(&dup).contains("same address 127.0.0.6"));
}

#[test]
fn unresolvable_duplicates_are_rejected() {
    let entry = |component: &str, name: &str, extra: &str| {
        format!(
            "[[port]]\nmesh = \"istio\"\ncomponent = \"{component}\"\nname = \"{name}\"\ndescription = \"d\"\nsource = \"s\"\nport = 15000\nprotos = [\"tcp\", \"udp\"]\n{extra}"
        )
    };
    let two = |a: String, b: String| err(&format!("{a}{b}"));

    let e = two(entry("envoy", "a", ""), entry("envoy", "b", ""));
    assert!(e.contains("[[port]] #2 \"b\": conflicts with [[port]] #1 \"a\": both give 15000/tcp to component envoy"), "{e}");
    let e = two(
        entry("ztunnel", "a", "reserved = true\n"),
        entry("istiod", "b", "reserved = true\n"),
    );
    assert!(
        e.contains(
            "[[port]] #1 \"a\": several `reserved` entries for 15000/tcp and none is a sidecar"
        ),
        "{e}"
    );
    let e = two(
        entry("envoy", "a", "reserved = true\n"),
        entry("pilot-agent", "b", "reserved = true\n"),
    );
    assert!(e.contains("both are `reserved`"), "{e}");
    let e = two(
        entry("envoy", "a", "peer = true\n"),
        entry("ztunnel", "b", "peer = true\n"),
    );
    assert!(e.contains("both are `peer`"), "{e}");
    let e = two(
        entry("envoy", "a", ""),
        entry("envoy", "a", "").replace("15000", "15001"),
    );
    assert!(e.contains("same name `a` for istio envoy"), "{e}");

    // Resolvable: one sidecar reserved entry is the fallback; different components.
    let ok = format!(
        "{}{}",
        entry("envoy", "a", "reserved = true\n"),
        entry("ztunnel", "b", "reserved = true\n")
    );
    assert!(Catalog::parse(&ok).is_ok());
    let ok = format!(
        "{}{}{}",
        entry("ztunnel", "a", "reserved = true\n"),
        entry("istiod", "b", "reserved = true\n"),
        entry("pilot-agent", "c", "reserved = true\n")
    );
    assert!(Catalog::parse(&ok).is_ok());
    let ok = format!("{}{}", entry("envoy", "a", ""), entry("ztunnel", "a", ""));
    assert!(Catalog::parse(&ok).is_ok());
}

#[test]
fn syntax_errors_and_unknown_fields() {
    let e = err("[[port]\n");
    assert!(e.starts_with("invalid catalog: TOML parse error"), "{e}");
    let e = err(&format!("{GOOD}colour = \"red\"\n"));
    assert!(e.contains("colour"), "{e}");
    let e = err(&GOOD.replace("port = 15000", "port = 70000"));
    assert!(e.starts_with("invalid catalog: TOML parse error"), "{e}");
    let e = err(&format!("{GOOD}bind = \"loopbak\"\n"));
    assert!(e.contains("loopbak"), "{e}");
}
