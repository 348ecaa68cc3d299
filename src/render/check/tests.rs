use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::check::eval::{Families, Waited, Who};
use crate::check::expect::{Origin, Owner, Target};
use crate::model::{Endpoint, RawText};

pub(crate) fn sample() -> Report {
    let base = Outcome {
        check: CheckKind::Listen,
        name: Some("envoy readiness".into()),
        expected: "listen tcp/15021 owner=envoy bind=wildcard".into(),
        origin: Origin::new("istio-sidecar"),
        dropped_by: None,
        status: Status::Pass,
        reason: String::new(),
        found: vec![Found {
            proto: Proto::Tcp,
            local: Endpoint::Inet {
                addr: "0.0.0.0".parse().unwrap(),
                port: 15021,
            },
            sockets: 2,
            holders: vec![Who {
                pid: 12,
                comm: "envoy".into(),
                kind: Kind::Envoy,
            }],
        }],
        target: Some(Target::Inet {
            proto: Proto::Tcp,
            port: 15021,
        }),
        owner: Some(Owner::Kind(Kind::Envoy)),
        bind: None,
        optional: false,
    };
    let fail = Outcome {
        status: Status::Fail,
        name: None,
        expected: "listen tcp/9080 owner=myapp".into(),
        origin: Origin {
            source: "checks/pod.yaml".into(),
            line: Some(7),
            replaces: vec!["istio-sidecar".into()],
        },
        reason: "held by evil\u{1b}[31m[66] (app) (expected myapp)".into(),
        found: vec![Found {
            proto: Proto::Tcp,
            local: Endpoint::Inet {
                addr: "10.0.0.5".parse().unwrap(),
                port: 9080,
            },
            sockets: 1,
            holders: vec![Who {
                pid: 66,
                comm: RawText::new(b"evil\x1b[31m\xff".to_vec()),
                kind: Kind::App,
            }],
        }],
        ..base.clone()
    };
    let skip = Outcome {
        status: Status::Skip,
        expected: "listen udp/15053 owner=pilot-agent bind=loopback optional".into(),
        reason: "nothing listens on udp/15053 (optional)".into(),
        found: vec![],
        optional: true,
        ..base.clone()
    };
    let unknown = Outcome {
        status: Status::Unknown,
        check: CheckKind::Forbid,
        expected: "forbid tcp/15000 owner=app".into(),
        reason: "owner not visible: grant CAP_SYS_PTRACE".into(),
        ..base.clone()
    };
    let _ = Arc::new(());
    Report {
        outcomes: vec![base, fail, skip, unknown],
        sources: vec!["istio-sidecar".into(), "checks/pod.yaml".into()],
        target: "netns /run/netns/pod".into(),
        netns_inode: Some(4026532177),
        source: Source::Netlink,
        warnings: vec!["owners hidden: 1 socket(s)".into()],
        hidden_owners: 1,
        strict: false,
        waited: Some(Waited {
            limit: Duration::from_secs(30),
            elapsed: Duration::from_secs(30),
            attempts: 61,
        }),
        families: Families::IPV4,
    }
}

#[test]
fn table_shows_every_expectation_and_the_verdict() {
    let mut out = Vec::new();
    write_table(&mut out, &sample(), false, Layout::PLAIN).unwrap();
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].contains("STATUS") && lines[0].contains("FOUND"),
        "{text}"
    );
    assert!(!lines[0].contains("SOURCE"), "{text}");
    assert!(lines[1].contains("pass"), "{text}");
    assert!(
        lines[1].contains("listen tcp/15021 owner=envoy bind=wildcard (envoy readiness)"),
        "{text}"
    );
    assert!(
        lines[1].contains("tcp 0.0.0.0:15021 envoy[12] (2 sockets)"),
        "{text}"
    );
    assert!(lines[2].contains("FAIL"), "{text}");
    assert!(
        lines[2].contains("tcp 10.0.0.5:9080 evil\\x1b[31m\\xff[66] (app)"),
        "{text}"
    );
    assert!(lines[3].contains("skip"), "{text}");
    assert!(
        lines[3].contains("nothing listens on udp/15053 (optional)"),
        "{text}"
    );
    assert!(lines[4].contains("UNKNOWN"), "{text}");
    assert!(
        !text.contains('\u{1b}'),
        "a raw escape reached the table: {text}"
    );
    assert!(text.contains(
        "istio-sidecar, checks/pod.yaml on netns /run/netns/pod (netns inode 4026532177): \
         4 expectations, 1 passed, 1 failed, 1 unknown, 1 skipped"
    ));
    assert!(text.contains("gave up after 30s (61 attempts)"), "{text}");
    assert!(text.contains("warning: owners hidden"), "{text}");
    assert!(
        text.ends_with("check FAILED: 1 failed, 1 unknown\n"),
        "{text}"
    );
}

/// Fitted to a width, every FAIL and UNKNOWN reason is whole (a numbered note, wrapped at
/// spaces), no line is wider than the width or ends in a space; pass rows may be cut.
#[test]
fn on_a_terminal_every_failure_reason_is_whole() {
    let r = sample();
    for width in [80usize, 120] {
        let mut out = Vec::new();
        let layout = Layout {
            width: Some(width),
            ..Layout::PLAIN
        };
        write_table(&mut out, &r, false, layout).unwrap();
        let text = String::from_utf8(out).unwrap();
        for line in text.lines() {
            assert!(line.chars().count() <= width, "{line:?}\n{text}");
            assert!(!line.ends_with(' '), "{line:?}\n{text}");
        }
        let words = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
        let flat = words(&text);
        for o in r.outcomes.iter().filter(|o| o.failed()) {
            let reason = words(&note(o));
            assert!(flat.contains(&reason), "{reason:?} cut at {width}:\n{text}");
        }
        assert!(text.contains("NOTE"), "{text}");
        assert!(
            text.contains("[1] listen tcp/9080 owner=myapp: held by"),
            "{text}"
        );
        assert!(
            flat.contains("[2] forbid tcp/15000 owner=app (envoy readiness): owner not visible"),
            "{text}"
        );
    }
}

pub(crate) fn node() -> NodeReport {
    let pod = |name: &str| PodRef {
        namespace: Some("shop".into()),
        name: Some(name.into()),
        uid: format!("uid-{name}"),
    };
    let mut passing = sample();
    passing.outcomes.truncate(1);
    passing.waited = None;
    let check = |name: &str, mut r: Report| PodCheck {
        label: format!("pod shop/{name}"),
        pod: Some(pod(name)),
        sources: {
            r.sources = vec!["istio-sidecar".into()];
            r.sources.clone()
        },
        auto: Some("pilot-agent and envoy".into()),
        verdict: Verdict::Checked(r),
    };
    NodeReport {
        pods: vec![
            check("good", passing),
            check("bad\x1b[2J", sample()),
            PodCheck {
                label: "pod shop/db".into(),
                pod: Some(pod("db")),
                sources: vec![],
                auto: Some("no mesh process holds a listener".into()),
                verdict: Verdict::Unchecked,
            },
            PodCheck {
                label: "pod kube-system/kube-proxy".into(),
                pod: None,
                sources: vec![],
                auto: None,
                verdict: Verdict::HostNetwork,
            },
        ],
        warnings: vec!["pod shop/gone skipped: no such process".into()],
    }
}

#[test]
fn the_node_table_has_a_section_and_a_verdict_per_pod() {
    let n = node();
    assert!(!n.passed());
    for width in [None, Some(80)] {
        let mut out = Vec::new();
        let layout = Layout {
            width,
            ..Layout::PLAIN
        };
        write_node_table(&mut out, &n, false, layout).unwrap();
        let t = String::from_utf8(out).unwrap();
        assert!(
            t.starts_with("=== pod shop/good: istio-sidecar (auto: pilot-agent and envoy)\n"),
            "{t}"
        );
        assert!(t.contains("\npod shop/good passed\n"), "{t}");
        assert!(
            t.contains("pod shop/bad\\x1b[2J FAILED: 1 failed, 1 unknown"),
            "{t}"
        );
        assert!(!t.contains('\u{1b}'), "{t}");
        assert!(
            t.contains("=== pod shop/db: unchecked (auto: no mesh process"),
            "{t}"
        );
        assert!(
            t.contains("=== pod kube-system/kube-proxy: skipped: hostNetwork"),
            "{t}"
        );
        assert!(t.contains("warning: pod shop/gone skipped"), "{t}");
        let flat = t.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            flat.contains(
                "node: 4 pods: 2 checked (1 passed, 1 failed), 1 unchecked, 1 hostNetwork \
                 skipped"
            ),
            "{t}"
        );
        assert!(t.ends_with("check FAILED: pod shop/bad\\x1b[2J\n"), "{t}");
        if let Some(w) = width {
            assert!(
                t.lines()
                    .all(|l| l.chars().count() <= w && !l.ends_with(' ')),
                "{t}"
            );
        }
    }
}

#[test]
fn node_json_lines_are_one_pod_each_and_read_back() {
    let mut out = Vec::new();
    write_node_json_lines(&mut out, &node()).unwrap();
    let docs: Vec<PodCheckDocument> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let verdicts: Vec<&str> = docs.iter().map(|d| d.verdict.as_str()).collect();
    assert_eq!(verdicts, ["pass", "fail", "unchecked", "skipped"]);
    assert_eq!(docs[1].check.as_ref().map(|c| c.summary.failed), Some(1));
    assert_eq!(docs[0].sources, ["istio-sidecar"]);
    assert!(docs[2].check.is_none() && docs[3].check.is_none());
    assert_eq!(
        docs[2].auto.as_deref(),
        Some("no mesh process holds a listener")
    );
}

#[test]
fn every_row_says_where_it_came_from() {
    for wide in [false, true] {
        let mut out = Vec::new();
        write_table(&mut out, &sample(), wide, Layout::PLAIN).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].contains("FROM"), "{text}");
        assert!(lines[1].contains("istio-sidecar"), "{text}");
        assert!(
            lines[2].contains("checks/pod.yaml:7, replaces istio-sidecar"),
            "{text}"
        );
    }
}

#[test]
fn a_dropped_item_is_shown_and_counted_but_does_not_fail() {
    let mut r = sample();
    r.outcomes.truncate(1);
    let mut d = r.outcomes[0].clone();
    d.status = Status::Dropped;
    d.reason = "dropped by checks/pod.yaml:9: not checked".into();
    d.found.clear();
    d.dropped_by = Some(Origin {
        source: "checks/pod.yaml".into(),
        line: Some(9),
        replaces: vec![],
    });
    r.outcomes.push(d);
    assert!(r.passed());
    let mut out = Vec::new();
    write_table(&mut out, &r, false, Layout::PLAIN).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("DROPPED"), "{text}");
    assert!(
        text.contains("istio-sidecar, dropped by checks/pod.yaml:9"),
        "{text}"
    );
    assert!(text.contains("0 skipped, 1 dropped"), "{text}");
    let doc = document(&r);
    assert_eq!(doc.results[1].status, Status::Dropped);
    assert_eq!(
        doc.results[1].dropped_by.as_deref(),
        Some("checks/pod.yaml:9")
    );
    assert_eq!(doc.summary.dropped, 1);
}

#[test]
fn a_passing_report_says_so() {
    let mut r = sample();
    r.outcomes.truncate(1);
    r.waited = Some(Waited {
        limit: Duration::from_secs(30),
        elapsed: Duration::from_millis(4500),
        attempts: 10,
    });
    let mut out = Vec::new();
    write_table(&mut out, &r, false, Layout::PLAIN).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("waited 4.5s of 30s (10 attempts)"), "{text}");
    assert!(text.ends_with("check passed\n"), "{text}");
}

#[test]
fn json_reads_back() {
    let doc = document(&sample());
    let text = serde_json::to_string_pretty(&doc).unwrap();
    let back: CheckDocument = serde_json::from_str(&text).unwrap();
    assert_eq!(back, doc);
    assert!(!back.passed);
    assert_eq!(back.summary.failed, 1);
    assert_eq!(back.results[0].status, Status::Pass);
    assert_eq!(back.results[0].port, Some(15021));
    assert_eq!(back.results[0].owner.as_deref(), Some("envoy"));
    assert_eq!(back.results[0].found[0].local, "0.0.0.0:15021");
    assert_eq!(back.results[0].found[0].sockets, 2);
    assert_eq!(
        back.results[1].found[0].processes[0].comm,
        "evil\u{1b}[31m\u{fffd}"
    );
    assert_eq!(back.wait.as_ref().map(|w| w.limit_ms), Some(30_000));
    assert_eq!(back.results[1].origin, "checks/pod.yaml");
    assert_eq!(back.results[1].line, Some(7));
    assert_eq!(back.results[1].replaces, ["istio-sidecar"]);
    assert_eq!(
        back.results[1].from,
        "checks/pod.yaml:7, replaces istio-sidecar"
    );
    assert_eq!(back.families, ["ipv4"]);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["results"][2]["status"], "skip");
    assert_eq!(v["results"][3]["check"], "forbid");
    assert_eq!(v["results"][3]["status"], "unknown");
}

#[test]
fn the_wait_line_says_what_still_fails_escaped_and_short() {
    let failing = vec![
        "listen tcp/15021".to_string(),
        "listen tcp/15000".to_string(),
    ];
    let line = wait_line(
        Waiting::Failing(&failing),
        Duration::from_secs(3),
        Duration::from_secs(60),
    );
    assert!(line.starts_with("waiting 3s/"), "{line}");
    assert!(
        line.ends_with("2 failing: listen tcp/15021; listen tcp/15000"),
        "{line}"
    );
    let pods = vec!["pod shop/cart-1".to_string()];
    let line = wait_line(
        Waiting::Pods(&pods),
        Duration::from_secs(4),
        Duration::from_secs(60),
    );
    assert!(line.starts_with("waiting 4s/"), "{line}");
    assert!(line.ends_with("1 pod failing: pod shop/cart-1"), "{line}");
    let hostile = "pod\x1b[31m gone ".repeat(20);
    let line = wait_line(
        Waiting::Unreachable(&hostile),
        Duration::from_secs(1),
        Duration::from_secs(60),
    );
    assert!(
        !line.contains('\x1b') && line.chars().count() <= 110,
        "{line:?}"
    );
}
