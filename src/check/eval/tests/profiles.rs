//! Whole profiles: hidden owners, ambient against sidecar, the report's counts, odd sockets.

use super::*;

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
