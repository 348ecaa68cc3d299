//! The check's verdict for people (a table of every expectation, pass or fail, with what was
//! found instead) and for programs (`-o json`, typed so it reads back). Pure: writes to any
//! `impl Write`; every text from the target or a file goes through `escape` first.

use std::io::{self, Write};

use serde::{Deserialize, Serialize};

use crate::check::eval::{CheckKind, Found, Outcome, Report, Status, Summary};
use crate::check::expect::Target;
use crate::check::node::{NodeReport, PodCheck, Verdict};
use crate::duration;
use crate::escape::endpoint;
use crate::escape::escape;
use crate::model::{Kind, PodRef, Proto};
use crate::render::columns::{self, Cell, Column, Layout, Paint, Row};
use crate::render::json::NetnsDoc;
use crate::render::table::plural;
use crate::request::Source;

pub const VERSION: u32 = 1;

/// One row per expectation: STATUS, EXPECTATION, FROM (the profile or file and line it comes
/// from, what it replaces, who dropped it), FOUND; then a footer with the counts, the wait,
/// the inspection's warnings and the verdict. `wide` is never shortened. Fitted to a width,
/// the FOUND of a FAIL or UNKNOWN row is a numbered note under the table, whole.
pub fn write_table(out: &mut impl Write, r: &Report, wide: bool, layout: Layout) -> io::Result<()> {
    write_table_as(out, r, wide, layout, "check")
}

/// `write_table`, its verdict line said by `who` (`check`, or the pod in `--all-pods`).
fn write_table_as(
    out: &mut impl Write,
    r: &Report,
    wide: bool,
    layout: Layout,
    who: &str,
) -> io::Result<()> {
    let header = [
        Column::fixed("STATUS"),
        Column::long_to("EXPECTATION", 44),
        Column::long_to("FROM", 20),
        Column::long_to("FOUND", 30),
    ];
    let layout = if wide {
        Layout {
            width: None,
            ..layout
        }
    } else {
        layout
    };
    // Fitted to a width, a FAIL or UNKNOWN row's reason is a numbered note under the table,
    // wrapped but never shortened: it is what the reader needs. Off a terminal it stays in
    // FOUND, whole, so each row is complete for grep.
    let fitted = layout.width.is_some();
    let table = columns::Table {
        columns: &header,
        notes: fitted.then_some("REASONS"),
    };
    columns::write(out, table, layout, r.outcomes.len(), |i| {
        let Some(o) = r.outcomes.get(i) else {
            return Row::default();
        };
        let status = o.status.label();
        let paint = match status {
            "pass" => Paint::Green,
            "FAIL" => Paint::Red,
            _ => Paint::Yellow,
        };
        let (found, notes) = if fitted && o.failed() {
            (String::new(), vec![note(o)])
        } else {
            (found_cell(o), Vec::new())
        };
        Row {
            cells: vec![
                Cell::painted(status, paint),
                Cell::from(guard(&o.title())),
                Cell::from(guard(&o.from())),
                Cell::from(found),
            ],
            notes,
        }
    })?;
    let mut text = Vec::new();
    footer(&mut text, r, layout.color, who)?;
    columns::write_wrapped(out, &String::from_utf8_lossy(&text), layout.width)
}

/// A failure as its note says it, whole: the expectation, then why and what was found.
fn note(o: &Outcome) -> String {
    format!("{}: {}", guard(&o.title()), found_cell(o))
}

/// Why it failed (or was skipped), then what was found: `held by myapp[77] (app) (expected
/// envoy): tcp 0.0.0.0:15021 myapp[77] (app)`.
fn found_cell(o: &Outcome) -> String {
    let found: Vec<String> = o.found.iter().map(Found::text).collect();
    let found = found.join("; ");
    let text = match (o.reason.is_empty(), found.is_empty()) {
        (true, true) if o.check == CheckKind::Listen => "-".to_string(),
        (true, true) => "nothing".to_string(),
        (true, false) => found,
        (false, true) => o.reason.clone(),
        (false, false) => format!("{}: {found}", o.reason),
    };
    guard(&text)
}

/// Text that is escaped already (eval escapes every byte from the target): control
/// characters that slipped in anyway are made visible, backslashes stay as they are.
fn guard(s: &str) -> String {
    s.split('\\')
        .map(|part| escape(part.as_bytes()))
        .collect::<Vec<_>>()
        .join("\\")
}

fn footer(out: &mut impl Write, r: &Report, color: bool, who: &str) -> io::Result<()> {
    let s = r.summary();
    let inode = r
        .netns_inode
        .map(|i| format!(" (netns inode {i})"))
        .unwrap_or_default();
    let source = match r.source {
        Source::Netlink => "",
        Source::Proc => ", sockets from /proc/net text",
    };
    writeln!(
        out,
        "{} on {}{inode}{source}: {} {}, {} passed, {} failed, {} unknown, {} skipped{}",
        guard(&r.sources.join(", ")),
        escape(r.target.as_bytes()),
        s.total,
        plural(s.total, "expectation", "expectations"),
        s.passed,
        s.failed,
        s.unknown,
        s.skipped,
        if s.dropped > 0 {
            format!(", {} dropped", s.dropped)
        } else {
            String::new()
        }
    )?;
    if let Some(w) = r.waited {
        if r.passed() {
            writeln!(
                out,
                "waited {} of {} ({} {})",
                duration::display(w.elapsed),
                duration::display(w.limit),
                w.attempts,
                plural(w.attempts as usize, "attempt", "attempts")
            )?;
        } else {
            writeln!(
                out,
                "gave up after {} ({} {})",
                duration::display(w.elapsed),
                w.attempts,
                plural(w.attempts as usize, "attempt", "attempts")
            )?;
        }
    }
    for w in &r.warnings {
        let label = Paint::Yellow.apply("warning:", color);
        writeln!(out, "{label} {}", escape(w.as_bytes()))?;
    }
    if r.passed() {
        writeln!(out, "{who} {}", Paint::Green.apply("passed", color))
    } else {
        writeln!(
            out,
            "{who} {}: {} failed, {} unknown",
            Paint::Red.apply("FAILED", color),
            s.failed,
            s.unknown
        )
    }
}

/// `check --all-pods`: a section per pod (`=== pod NS/NAME: istio-sidecar (auto: ...)`, its
/// table, its counts and its verdict line `pod NS/NAME passed`), one line for each pod not
/// checked (no mesh, hostNetwork), then the node's counts and verdict.
pub fn write_node_table(
    out: &mut impl Write,
    node: &NodeReport,
    wide: bool,
    layout: Layout,
) -> io::Result<()> {
    let wrap = |t: String| columns::wrap(&t, layout.width, 4);
    for (i, c) in node.pods.iter().enumerate() {
        if i > 0 {
            writeln!(out)?;
        }
        let label = escape(c.label.as_bytes());
        let auto = c
            .auto
            .as_ref()
            .map(|w| format!(" (auto: {})", escape(w.as_bytes())))
            .unwrap_or_default();
        match &c.verdict {
            Verdict::Checked(r) => {
                let head = format!("=== {label}: {}{auto}", guard(&r.sources.join(", ")));
                writeln!(out, "{}", wrap(head))?;
                write_table_as(out, r, wide, layout, &label)?;
            }
            Verdict::Unchecked => {
                let text = format!("=== {label}: unchecked{auto}: no expectations");
                writeln!(out, "{}", wrap(text))?;
            }
            Verdict::HostNetwork => {
                let text = format!(
                    "=== {label}: skipped: hostNetwork (its namespace is the node's, not the pod's)"
                );
                writeln!(out, "{}", wrap(text))?;
            }
        }
    }
    if !node.pods.is_empty() {
        writeln!(out)?;
    }
    for w in &node.warnings {
        let text = wrap(format!("warning: {}", escape(w.as_bytes())));
        let label = Paint::Yellow.apply("warning:", layout.color);
        writeln!(
            out,
            "{label}{}",
            text.strip_prefix("warning:").unwrap_or(&text)
        )?;
    }
    let n = node_summary(node);
    let line = format!(
        "node: {} {}: {} checked ({} passed, {} failed), {} unchecked, {} hostNetwork skipped",
        n.pods,
        plural(n.pods, "pod", "pods"),
        n.checked,
        n.passed,
        n.failed,
        n.unchecked,
        n.host_network
    );
    writeln!(out, "{}", wrap(line))?;
    if node.passed() {
        writeln!(out, "check {}", Paint::Green.apply("passed", layout.color))
    } else {
        let failing: Vec<String> = node
            .pods
            .iter()
            .filter(|c| !c.passed())
            .map(|c| escape(c.label.as_bytes()))
            .collect();
        writeln!(
            out,
            "{}",
            wrap(format!(
                "check {}: {}",
                Paint::Red.apply("FAILED", layout.color),
                failing.join(", ")
            ))
        )
    }
}

/// The node's counts of pods.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeSummary {
    pub pods: usize,
    pub checked: usize,
    pub passed: usize,
    pub failed: usize,
    pub unchecked: usize,
    pub host_network: usize,
}

pub fn node_summary(node: &NodeReport) -> NodeSummary {
    let mut n = NodeSummary {
        pods: node.pods.len(),
        ..NodeSummary::default()
    };
    for c in &node.pods {
        match &c.verdict {
            Verdict::Checked(r) => {
                n.checked += 1;
                if r.passed() {
                    n.passed += 1;
                } else {
                    n.failed += 1;
                }
            }
            Verdict::Unchecked => n.unchecked += 1,
            Verdict::HostNetwork => n.host_network += 1,
        }
    }
    n
}

/// One line of `check --all-pods -o json`: a pod and its verdict. Fields may be added, never
/// renamed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PodCheckDocument {
    pub version: u32,
    /// `pod NS/NAME`, as the table names it.
    pub target: String,
    pub pod: Option<PodRef>,
    /// `pass`, `fail` (a failed or unknown expectation), `unchecked` (`--profile auto` found
    /// no mesh process: nothing was expected) or `skipped` (a hostNetwork pod).
    pub verdict: String,
    /// The profiles and files it was checked against.
    pub sources: Vec<String>,
    /// Under `--profile auto`: what the choice of profile rests on.
    pub auto: Option<String>,
    /// The pod's check, as `check -o json` gives it for one pod; none when not checked.
    pub check: Option<CheckDocument>,
}

pub fn pod_document(c: &PodCheck) -> PodCheckDocument {
    let (verdict, check) = match &c.verdict {
        Verdict::Checked(r) if r.passed() => ("pass", Some(document(r))),
        Verdict::Checked(r) => ("fail", Some(document(r))),
        Verdict::Unchecked => ("unchecked", None),
        Verdict::HostNetwork => ("skipped", None),
    };
    PodCheckDocument {
        version: VERSION,
        target: c.label.clone(),
        pod: c.pod.clone(),
        verdict: verdict.into(),
        sources: c.sources.clone(),
        auto: c.auto.clone(),
        check,
    }
}

/// JSON Lines: one `PodCheckDocument` per pod, one line each.
pub fn write_node_json_lines(out: &mut impl Write, node: &NodeReport) -> io::Result<()> {
    for c in &node.pods {
        serde_json::to_writer(&mut *out, &pod_document(c)).map_err(io::Error::from)?;
        writeln!(out)?;
    }
    Ok(())
}

/// The `-o json` document of a check, version 1. Fields may be added, never renamed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckDocument {
    pub version: u32,
    /// Every expectation holds: the exit code is 0.
    pub passed: bool,
    pub netns: NetnsDoc,
    /// `netlink`, or `proc` when /proc/<pid>/net was read instead.
    pub source: String,
    /// The profiles and files checked, as given.
    pub sources: Vec<String>,
    pub strict: bool,
    /// The pod's address families `bind: wildcard` was checked against: `ipv4`, `ipv6`, or
    /// both; empty when none beyond loopback (checked as IPv4).
    #[serde(default)]
    pub families: Vec<String>,
    /// False when the pod's addresses could not be read (checked as IPv4; see `warnings`).
    #[serde(default)]
    pub families_known: bool,
    pub summary: Summary,
    pub results: Vec<ResultDoc>,
    pub warnings: Vec<String>,
    pub hidden_owners: usize,
    /// Present under `--wait`.
    pub wait: Option<WaitDoc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultDoc {
    /// `pass`, `fail`, `unknown` (the owner is not visible; counts as a failure), `skip`
    /// (optional, nothing listening) or `dropped` (a profile item a file's `drop` removed:
    /// not checked).
    pub status: Status,
    /// `listen`, `forbid` or `strict`.
    pub check: CheckKind,
    /// The expectation as a file would say it: `listen tcp/15021 owner=envoy bind=wildcard`.
    pub expected: String,
    pub name: Option<String>,
    /// The profile or file it comes from, as given.
    pub origin: String,
    /// The item's line in that file (none for a built-in profile's items).
    #[serde(default)]
    pub line: Option<u64>,
    /// The profiles whose `listen` items for this port or path this file item replaces.
    #[serde(default)]
    pub replaces: Vec<String>,
    /// For `status: dropped`: the file and line whose `drop` removed this profile item.
    #[serde(default)]
    pub dropped_by: Option<String>,
    /// All of the above in one line, as the table's FROM column shows it:
    /// `podports.yaml:7, replaces istio-sidecar`.
    #[serde(default)]
    pub from: String,
    pub proto: Option<Proto>,
    pub port: Option<u16>,
    pub path: Option<String>,
    pub owner: Option<String>,
    pub bind: Option<String>,
    pub optional: bool,
    /// Why it failed, is unknown or was skipped; empty when it passed.
    pub reason: String,
    pub found: Vec<FoundDoc>,
}

/// Listeners on one address held by the same processes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FoundDoc {
    pub proto: Proto,
    /// `0.0.0.0:15001`, `[::]:15001`, a unix path or `@abstract`, escaped as in the table.
    pub local: String,
    /// SO_REUSEPORT sockets on that address (one per Envoy worker).
    pub sockets: usize,
    pub processes: Vec<ProcessRef>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessRef {
    pub pid: i32,
    /// UTF-8, invalid bytes replaced by U+FFFD.
    pub comm: String,
    pub kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitDoc {
    pub limit_ms: u64,
    pub elapsed_ms: u64,
    pub attempts: u32,
}

pub fn document(r: &Report) -> CheckDocument {
    CheckDocument {
        version: VERSION,
        passed: r.passed(),
        netns: NetnsDoc {
            inode: r.netns_inode,
            target: r.target.clone(),
        },
        source: match r.source {
            Source::Netlink => "netlink".into(),
            Source::Proc => "proc".into(),
        },
        sources: r.sources.clone(),
        strict: r.strict,
        families: [(r.families.ipv4, "ipv4"), (r.families.ipv6, "ipv6")]
            .into_iter()
            .filter(|(on, _)| *on)
            .map(|(_, name)| name.to_string())
            .collect(),
        families_known: r.families.known,
        summary: r.summary(),
        results: r.outcomes.iter().map(result_doc).collect(),
        warnings: r.warnings.clone(),
        hidden_owners: r.hidden_owners,
        wait: r.waited.map(|w| WaitDoc {
            limit_ms: w.limit.as_millis().try_into().unwrap_or(u64::MAX),
            elapsed_ms: w.elapsed.as_millis().try_into().unwrap_or(u64::MAX),
            attempts: w.attempts,
        }),
    }
}

fn result_doc(o: &Outcome) -> ResultDoc {
    let (proto, port, path) = match &o.target {
        Some(Target::Inet { proto, port }) => (Some(*proto), Some(*port), None),
        Some(Target::Unix { path }) => (Some(Proto::Unix), None, Some(path.clone())),
        None => (None, None, None),
    };
    ResultDoc {
        status: o.status,
        check: o.check,
        expected: o.expected.clone(),
        name: o.name.clone(),
        origin: o.origin.source.clone(),
        line: o.origin.line,
        replaces: o.origin.replaces.clone(),
        dropped_by: o.dropped_by.as_ref().map(|d| d.at()),
        from: o.from(),
        proto,
        port,
        path,
        owner: o.owner.as_ref().map(|w| w.to_string()),
        bind: o.bind.map(|b| b.to_string()),
        optional: o.optional,
        reason: o.reason.clone(),
        found: o
            .found
            .iter()
            .map(|f| FoundDoc {
                proto: f.proto,
                local: endpoint(&f.local),
                sockets: f.sockets,
                processes: f
                    .holders
                    .iter()
                    .map(|w| ProcessRef {
                        pid: w.pid,
                        comm: w.comm.lossy(),
                        kind: w.kind,
                    })
                    .collect(),
            })
            .collect(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
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
                flat.contains(
                    "[2] forbid tcp/15000 owner=app (envoy readiness): owner not visible"
                ),
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
}
