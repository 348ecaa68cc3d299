//! The check's verdict for people (a table of every expectation, pass or fail, with what was
//! found instead) and for programs (`-o json`, typed so it reads back). Pure: writes to any
//! `impl Write`; every text from the target or a file goes through `escape` first.

use std::io::{self, Write};

use serde::{Deserialize, Serialize};

use crate::check::eval::{
    CheckKind, Found, NodeReport, Outcome, PodCheck, Report, Status, Summary, Verdict,
};
use crate::check::expect::Target;
use crate::duration;
use crate::escape::endpoint;
use crate::escape::escape;
use crate::model::{Kind, PodRef, Proto};
use crate::render::columns::{self, Cell, Column, Layout, Paint, Row};
use crate::render::json::NetnsDoc;
use crate::render::table::plural;
use crate::request::Source;

mod json;
mod node;

pub use json::*;
pub use node::*;

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

#[cfg(test)]
pub(crate) mod tests;

/// Keeps `--wait`'s progress line on one row of a narrow terminal.
const LINE_MAX: usize = 110;

/// What `--wait` is waiting on.
pub enum Waiting<'a> {
    /// The titles of the expectations still failing.
    Failing(&'a [String]),
    /// Why the target cannot be looked at yet.
    Unreachable(&'a str),
    /// `check --all-pods`: the pods still failing.
    Pods(&'a [String]),
}

/// `--wait`'s progress line: what still fails (or why the target cannot be read), the time
/// spent and allowed; escaped, at most `LINE_MAX` characters.
pub fn wait_line(
    w: Waiting<'_>,
    elapsed: std::time::Duration,
    limit: std::time::Duration,
) -> String {
    let line = match w {
        Waiting::Failing(failing) => format!(
            "waiting {}/{}: {} failing: {}",
            duration::display(elapsed),
            duration::display(limit),
            failing.len(),
            failing.join("; ")
        ),
        Waiting::Pods(pods) => format!(
            "waiting {}/{}: {} {} failing: {}",
            duration::display(elapsed),
            duration::display(limit),
            pods.len(),
            if pods.len() == 1 { "pod" } else { "pods" },
            pods.join("; ")
        ),
        Waiting::Unreachable(error) => format!(
            "waiting {}/{}: {error}",
            duration::display(elapsed),
            duration::display(limit)
        ),
    };
    escape(line.as_bytes()).chars().take(LINE_MAX).collect()
}
