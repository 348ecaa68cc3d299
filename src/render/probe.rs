//! The `probe` report: a table for people, or one JSON document (version 1) typed so that
//! tests and users can read it back. Pure. Bytes from the target (reason phrases, process
//! names) are escaped in the table; in JSON they are lossy UTF-8.

use std::io::{self, Write};

use serde::{Deserialize, Serialize};

use crate::duration;
use crate::escape::escape;
use crate::model::{Holder, Kind, Role};
use crate::probe::{Outcome, Report, Skipped};
use crate::render::columns::{self, Cell, Column, Layout, Paint, Row};
use crate::render::json::NetnsDoc;
use crate::render::table::{Detail, plural};

pub const VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeDocument {
    pub version: u32,
    /// Every port asked answered 2xx within the timeout.
    pub passed: bool,
    pub netns: NetnsDoc,
    pub timeout_ms: u64,
    pub summary: Summary,
    pub results: Vec<ResultDoc>,
    /// HTTP listeners not asked: not on loopback or an address of the pod.
    pub skipped: Vec<SkippedDoc>,
    /// HTTP ports of the catalog where nothing listens.
    pub not_listening: Vec<u16>,
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub probed: usize,
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultDoc {
    /// `pass` or `fail`.
    pub result: String,
    pub port: u16,
    /// The address connected to (loopback, or the pod's own).
    pub address: String,
    /// The address the listener is bound to.
    pub listen: String,
    pub path: String,
    pub url: String,
    /// The HTTP status, when an answer came.
    pub status: Option<u16>,
    pub reason: Option<String>,
    /// Connect to status line, in milliseconds, when an answer came.
    pub latency_ms: Option<f64>,
    /// Why there is no answer: `connection refused`, `timed out after 2s`.
    pub error: Option<String>,
    pub role: Role,
    pub processes: Vec<ProcessRef>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SkippedDoc {
    pub port: u16,
    pub listen: String,
    pub reason: String,
    pub role: Role,
    pub processes: Vec<ProcessRef>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessRef {
    pub pid: i32,
    pub comm: String,
    pub kind: Kind,
}

pub fn document(r: &Report) -> ProbeDocument {
    let passed = r.outcomes.iter().filter(|o| o.passed()).count();
    ProbeDocument {
        version: VERSION,
        passed: r.passed(),
        netns: NetnsDoc {
            inode: r.netns.inode,
            target: r.netns.target.clone(),
        },
        timeout_ms: u64::try_from(r.timeout.as_millis()).unwrap_or(u64::MAX),
        summary: Summary {
            probed: r.outcomes.len(),
            passed,
            failed: r.outcomes.len() - passed,
            skipped: r.skipped.len(),
        },
        results: r.outcomes.iter().map(result_doc).collect(),
        skipped: r.skipped.iter().map(skipped_doc).collect(),
        not_listening: r.not_listening.clone(),
        warnings: r.warnings.clone(),
    }
}

pub fn write_json(out: &mut impl Write, r: &Report) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, &document(r)).map_err(io::Error::from)?;
    writeln!(out)
}

fn result_doc(o: &Outcome) -> ResultDoc {
    let t = &o.target;
    let (status, reason, latency_ms, error) = match &o.result {
        Ok(a) => (
            Some(a.status.code),
            Some(String::from_utf8_lossy(&a.status.reason).into_owned()),
            Some(a.latency.as_secs_f64() * 1000.0),
            None,
        ),
        Err(e) => (None, None, None, Some(e.clone())),
    };
    ResultDoc {
        result: if o.passed() { "pass" } else { "fail" }.into(),
        port: t.port,
        address: t.addr.to_string(),
        listen: t.listen.to_string(),
        path: t.path.to_string(),
        url: t.url(),
        status,
        reason,
        latency_ms,
        error,
        role: t.role.clone(),
        processes: processes(&t.holders),
    }
}

fn skipped_doc(s: &Skipped) -> SkippedDoc {
    SkippedDoc {
        port: s.port,
        listen: s.listen.to_string(),
        reason: s.reason.clone(),
        role: s.role.clone(),
        processes: processes(&s.holders),
    }
}

fn processes(hs: &[Holder]) -> Vec<ProcessRef> {
    let mut out: Vec<ProcessRef> = Vec::new();
    for h in hs {
        if !out.iter().any(|p| p.pid == h.process.pid) {
            out.push(ProcessRef {
                pid: h.process.pid,
                comm: h.process.comm.lossy(),
                kind: h.kind,
            });
        }
    }
    out
}

/// The table: one row per port asked (and per listener skipped), a summary line, and the
/// verdict when something failed.
pub fn write_table(
    out: &mut impl Write,
    r: &Report,
    detail: Detail,
    layout: Layout,
) -> io::Result<()> {
    let color = layout.color;
    if r.outcomes.is_empty() && r.skipped.is_empty() {
        let ports: Vec<String> = r.not_listening.iter().map(u16::to_string).collect();
        writeln!(
            out,
            "nothing to probe: no HTTP port of the catalog listens in {} ({})",
            escape(r.netns.target.as_bytes()),
            ports.join(", ")
        )?;
    } else {
        let mut columns = vec![
            Column::fixed("RESULT"),
            Column::fixed("PORT"),
            Column::long("URL"),
            Column::long("STATUS"),
            Column::fixed("LATENCY"),
            Column::long("ROLE"),
            Column::long("PROCESS"),
        ];
        let layout = if detail == Detail::Wide {
            columns.push(Column::fixed("LISTEN"));
            Layout {
                width: None,
                ..layout
            }
        } else {
            layout
        };
        let mut rows = Vec::new();
        for o in &r.outcomes {
            let (status, latency) = match &o.result {
                Ok(a) => {
                    let reason = escape(&a.status.reason);
                    (
                        format!("{} {reason}", a.status.code).trim_end().to_string(),
                        format!("{:.1}ms", a.latency.as_secs_f64() * 1000.0),
                    )
                }
                Err(e) => (escape(e.as_bytes()), "-".into()),
            };
            let result = if o.passed() {
                Cell::painted("pass", Paint::Green)
            } else {
                Cell::painted("FAIL", Paint::Red)
            };
            let mut row = vec![
                result,
                Cell::from(o.target.port.to_string()),
                Cell::from(o.target.url()),
                Cell::from(status),
                Cell::from(latency),
                Cell::painted(role_name(&o.target.role), Paint::Cyan),
                Cell::from(owners(&o.target.holders)),
            ];
            if detail == Detail::Wide {
                row.push(Cell::from(o.target.listen.to_string()));
            }
            rows.push(Row::new(row));
        }
        for s in &r.skipped {
            let mut row = vec![
                Cell::painted("skip", Paint::Yellow),
                Cell::from(s.port.to_string()),
                Cell::from("-"),
                Cell::from(escape(s.reason.as_bytes())),
                Cell::from("-"),
                Cell::painted(role_name(&s.role), Paint::Cyan),
                Cell::from(owners(&s.holders)),
            ];
            if detail == Detail::Wide {
                row.push(Cell::from(s.listen.to_string()));
            }
            rows.push(Row::new(row));
        }
        let table = columns::Table {
            columns: &columns,
            notes: None,
        };
        columns::write(out, table, layout, rows.len(), |i| {
            rows.get(i).cloned().unwrap_or_default()
        })?;
    }
    let mut text = Vec::new();
    footer(&mut text, r, color)?;
    columns::write_wrapped(out, &String::from_utf8_lossy(&text), layout.width)
}

fn footer(out: &mut impl Write, r: &Report, color: bool) -> io::Result<()> {
    let paint = |text: &str, code: &str| {
        if color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    };
    let inode = r
        .netns
        .inode
        .map(|i| format!(" (netns inode {i})"))
        .unwrap_or_default();
    let failed = r.failed();
    writeln!(
        out,
        "{} {} probed in {}{inode}: {} passed, {failed} failed, {} skipped; timeout {}",
        r.outcomes.len(),
        plural(r.outcomes.len(), "port", "ports"),
        escape(r.netns.target.as_bytes()),
        r.outcomes.len() - failed,
        r.skipped.len(),
        duration::display(r.timeout)
    )?;
    for w in &r.warnings {
        writeln!(out, "{} {}", paint("warning:", "33"), escape(w.as_bytes()))?;
    }
    if failed > 0 {
        writeln!(
            out,
            "probe FAILED: {failed} of {} {} did not answer 2xx",
            r.outcomes.len(),
            plural(r.outcomes.len(), "port", "ports")
        )?;
    }
    Ok(())
}

fn role_name(r: &Role) -> String {
    escape(crate::render::table::role_name(r).as_bytes())
}

/// `envoy[12]`, once per process.
fn owners(hs: &[Holder]) -> String {
    let mut seen: Vec<i32> = Vec::new();
    let mut parts = Vec::new();
    for h in hs {
        if !seen.contains(&h.process.pid) {
            seen.push(h.process.pid);
            parts.push(format!(
                "{}[{}]",
                escape(h.process.comm.as_bytes()),
                h.process.pid
            ));
        }
    }
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::listing::NetnsInfo;
    use crate::model::{ProcessInfo, RawText};
    use crate::parse::http;
    use crate::probe::Target;

    fn report() -> Report {
        let role = Role {
            mesh: "istio".into(),
            component: Kind::Envoy,
            name: "readiness".into(),
            description: String::new(),
            source: String::new(),
            versions: String::new(),
        };
        let holder = Holder {
            process: Arc::new(ProcessInfo {
                pid: 7,
                comm: RawText::new(&b"ev\x1bil"[..]),
                ..ProcessInfo::default()
            }),
            fd: 3,
            kind: Kind::App,
            basis: "".into(),
            container: None,
        };
        let target = |port| Target {
            port,
            addr: "127.0.0.1".parse::<IpAddr>().unwrap(),
            listen: "0.0.0.0".parse::<IpAddr>().unwrap(),
            path: "/healthz/ready",
            role: role.clone(),
            holders: vec![holder.clone(), holder.clone()],
        };
        let answer = |code, reason: &[u8]| {
            Ok(http::Answer {
                status: http::Status {
                    code,
                    reason: reason.to_vec(),
                },
                latency: Duration::from_micros(1500),
            })
        };
        Report {
            netns: NetnsInfo {
                inode: Some(42),
                target: "netns /run/netns/x".into(),
            },
            timeout: Duration::from_secs(2),
            outcomes: vec![
                Outcome {
                    target: target(15021),
                    result: answer(200, b"OK"),
                },
                Outcome {
                    target: target(15020),
                    result: answer(503, b"Unavailable\x1b]0;pwned\x07"),
                },
                Outcome {
                    target: target(15090),
                    result: Err("timed out after 2s".into()),
                },
            ],
            skipped: Vec::new(),
            not_listening: vec![15000],
            warnings: Vec::new(),
        }
    }

    #[test]
    fn the_table_shows_each_port_and_the_verdict_without_raw_control_bytes() {
        let mut out = Vec::new();
        write_table(&mut out, &report(), Detail::Normal, Layout::PLAIN).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains('\x1b') && !text.contains('\x07'), "{text}");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1 + 3 + 2, "{text}");
        assert!(lines[1].trim_start().starts_with("pass"), "{text}");
        assert!(lines[1].contains("http://127.0.0.1:15021/healthz/ready"));
        assert!(lines[1].contains("200 OK") && lines[1].contains("1.5ms"));
        assert!(lines[1].contains("ev\\x1bil[7]") && !lines[1].contains("[7] ev"));
        assert!(
            lines[2].contains("503 Unavailable\\x1b]0;pwned\\x07"),
            "{text}"
        );
        assert!(lines[3].contains("timed out after 2s"), "{text}");
        assert!(
            lines[4].contains(
                "3 ports probed in netns /run/netns/x (netns inode 42): 1 passed, 2 failed"
            )
        );
        assert_eq!(lines[5], "probe FAILED: 2 of 3 ports did not answer 2xx");
    }

    #[test]
    fn json_reads_back() {
        let mut out = Vec::new();
        write_json(&mut out, &report()).unwrap();
        let doc: ProbeDocument = serde_json::from_slice(&out).unwrap();
        assert!(!doc.passed);
        assert_eq!(
            doc.summary,
            Summary {
                probed: 3,
                passed: 1,
                failed: 2,
                skipped: 0
            }
        );
        assert_eq!(doc.results[0].status, Some(200));
        assert_eq!(doc.results[0].result, "pass");
        assert!((doc.results[0].latency_ms.unwrap() - 1.5).abs() < 1e-9);
        assert_eq!(doc.results[1].result, "fail");
        assert_eq!(doc.results[2].error.as_deref(), Some("timed out after 2s"));
        assert_eq!(doc.results[2].processes.len(), 1);
        assert_eq!(doc.not_listening, vec![15000]);
        assert_eq!(doc.timeout_ms, 2000);
    }

    #[test]
    fn nothing_to_probe_says_so() {
        let mut r = report();
        r.outcomes.clear();
        let mut out = Vec::new();
        write_table(
            &mut out,
            &r,
            Detail::Normal,
            Layout {
                color: true,
                ..Layout::PLAIN
            },
        )
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("nothing to probe: no HTTP port of the catalog listens"));
        assert!(!text.contains("FAILED"));
    }
}
