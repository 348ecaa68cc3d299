//! `podports check` end to end: `check::run` (one target) or `check::node` (`--all-pods`)
//! loads and evaluates; this shows the `--wait` progress line on a terminal, writes the JUnit
//! file and the report. Decides no verdict itself and never reads the target directly.

use std::io::{self, IsTerminal, Write};
use std::path::Path;

use crate::catalog::Catalog;
use crate::check::node;
use crate::check::run::{self, Plan, Poll};
use crate::error::Error;
use crate::plan::Show;
use crate::render::table::Detail;
use crate::render::{check as report, junit};
use crate::request::Target;

/// Runs the check; returns whether every expectation holds (on every checked pod, under
/// `--all-pods`). Errors are usage or input errors (exit 2: a malformed file, an unknown
/// profile) or an unreachable target (exit 3). A closed stdout does not change the verdict.
pub fn run(
    plan: &Plan,
    show: Show,
    catalog: &Catalog,
    out: &mut impl Write,
) -> Result<bool, Error> {
    if matches!(plan.request.target, Target::AllPods { .. }) {
        return run_node(plan, show, catalog, out);
    }
    let mut terminal = Progress::new(io::stderr().is_terminal());
    let report = run::check(plan, catalog, &mut |p| terminal.show(p))?;
    let framed = write_junit(plan.junit.as_deref(), |xml| junit::write(xml, &report))?;
    let written = match show {
        Show::Json => serde_json::to_writer_pretty(&mut *out, &report::document(&report))
            .map_err(io::Error::from)
            .and_then(|()| writeln!(out)),
        Show::Table { detail, layout } => {
            report::write_table(out, &report, detail == Detail::Wide, layout)
        }
    }
    .and_then(|()| match &framed {
        Some(xml) => junit::write_framed(out, xml),
        None => Ok(()),
    })
    .and_then(|()| out.flush());
    verdict(written, report.passed())
}

/// `check --all-pods`: one report per pod (JSON Lines under `-o json`, the sweep's warnings
/// then on stderr).
fn run_node(
    plan: &Plan,
    show: Show,
    catalog: &Catalog,
    out: &mut impl Write,
) -> Result<bool, Error> {
    let mut terminal = Progress::new(io::stderr().is_terminal());
    let report = node::check(plan, catalog, &mut |p| terminal.show(p))?;
    let framed = write_junit(plan.junit.as_deref(), |xml| junit::write_node(xml, &report))?;
    let written = match show {
        Show::Json => report::write_node_json_lines(out, &report),
        Show::Table { detail, layout } => {
            report::write_node_table(out, &report, detail == Detail::Wide, layout)
        }
    }
    .and_then(|()| match &framed {
        Some(xml) => junit::write_framed(out, xml),
        None => Ok(()),
    })
    .and_then(|()| out.flush());
    if show == Show::Json {
        for w in &report.warnings {
            let _ = writeln!(io::stderr(), "podports: warning: {w}");
        }
    }
    verdict(written, report.passed())
}

/// `--junit FILE`: the XML written to the file now; `--junit -`: kept, to follow the report on
/// stdout (`junit::write_framed`).
fn write_junit(
    path: Option<&Path>,
    write: impl FnOnce(&mut Vec<u8>) -> io::Result<()>,
) -> Result<Option<Vec<u8>>, Error> {
    let Some(path) = path else {
        return Ok(None);
    };
    let mut xml = Vec::new();
    if path.as_os_str() == "-" {
        write(&mut xml).map_err(|e| Error::Usage(format!("--junit -: {e}")))?;
        Ok(Some(xml))
    } else {
        write(&mut xml)
            .and_then(|()| crate::sys::files::write(path, &xml))
            .map_err(|e| {
                Error::Usage(format!("--junit {}: cannot write it: {e}", path.display()))
            })?;
        Ok(None)
    }
}

/// The verdict, unless writing it failed other than by the reader going away.
fn verdict(written: io::Result<()>, passed: bool) -> Result<bool, Error> {
    match written {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
            Err(Error::Usage(format!("writing output: {e}")))
        }
        _ => Ok(passed),
    }
}

/// The progress line of `--wait`: on stderr, only when it is a terminal, rewritten in place
/// and cleared at the end.
struct Progress {
    active: bool,
    shown: bool,
}

impl Progress {
    fn new(active: bool) -> Progress {
        Progress {
            active,
            shown: false,
        }
    }

    fn show(&mut self, p: Poll<'_>) {
        if !self.active {
            return;
        }
        let line = match p {
            Poll::Done => {
                if self.shown {
                    let _ = write!(io::stderr(), "\r\x1b[K");
                }
                self.shown = false;
                return;
            }
            Poll::Failing {
                report,
                elapsed,
                limit,
            } => {
                let failing: Vec<String> = report
                    .outcomes
                    .iter()
                    .filter(|o| o.failed())
                    .map(|o| o.title())
                    .collect();
                report::wait_line(report::Waiting::Failing(&failing), elapsed, limit)
            }
            Poll::PodsFailing {
                pods,
                elapsed,
                limit,
            } => report::wait_line(report::Waiting::Pods(pods), elapsed, limit),
            Poll::Unreachable {
                error,
                elapsed,
                limit,
            } => report::wait_line(
                report::Waiting::Unreachable(&error.to_string()),
                elapsed,
                limit,
            ),
        };
        let _ = write!(io::stderr(), "\r\x1b[K{line}");
        let _ = io::stderr().flush();
        self.shown = true;
    }
}
