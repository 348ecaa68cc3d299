//! podports' entry point: parse, run, print, exit with the code the contract names.
//! A closed stdout (`podports | head`) ends quietly with 0; nothing here ever panics on input.
#![forbid(unsafe_code)]
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::io::{self, BufWriter, IsTerminal, Write};
use std::os::fd::AsFd;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

use podports::catalog::Catalog;
use podports::check;
use podports::cli::Cli;
use podports::error::Error;
use podports::inspect;
use podports::plan::{Plan, Show, Terminal};
use podports::render::{self, table::Detail};
use podports::request::Request;
use podports::sweep;
use podports::sys::files;
use podports::sys::output::{self, Waited};
use podports::watch::run::{Closing, Next, Stop, View};
use podports::{generate, probe, watch};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Closed) => ExitCode::SUCCESS,
        // The report says which; a closed stdout does not turn it into a pass.
        Err(Failure::ChecksFailed) => ExitCode::from(1),
        Err(Failure::Io(e)) => {
            let _ = writeln!(io::stderr(), "podports: writing output: {e}");
            ExitCode::from(2)
        }
        Err(Failure::Error(e)) => {
            let _ = writeln!(io::stderr(), "podports: {e}");
            ExitCode::from(e.exit_code() as u8)
        }
    }
}

enum Failure {
    Error(Error),
    /// stdout was closed by the reader.
    Closed,
    /// `check` ran and an expectation does not hold, or `probe` ran and a port did not
    /// answer (exit 1).
    ChecksFailed,
    Io(io::Error),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        Failure::Error(e)
    }
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Failure {
        if e.kind() == io::ErrorKind::BrokenPipe {
            Failure::Closed
        } else {
            Failure::Io(e)
        }
    }
}

fn run(cli: &Cli) -> Result<(), Failure> {
    let catalog = Catalog::builtin()
        .map_err(|e| Error::Usage(format!("the built-in catalog is invalid: {e}")))?;
    let stdout = io::stdout();
    let is_terminal = stdout.is_terminal();
    let term = Terminal {
        is_terminal,
        width: if is_terminal {
            // COLUMNS first, as ls and ps take it; then the terminal's own size.
            std::env::var("COLUMNS")
                .ok()
                .and_then(|c| c.trim().parse::<usize>().ok())
                .filter(|c| *c > 0)
                .or_else(|| output::terminal_columns(stdout.as_fd()))
        } else {
            None
        },
    };
    let plan = Plan::new(cli, term, std::env::var_os("NO_COLOR").as_deref())?;
    // 64 KiB: a listing of 40k sockets is 45 MB of JSON (issue 5).
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    match plan {
        Plan::List { request, show } => {
            let inspection = inspect::inspect(&request, &catalog)?;
            match show {
                Show::Json => {
                    render::json::write(&mut out, &inspection)?;
                    writeln!(out)?;
                }
                Show::Table { detail, layout } => {
                    render::table::write(&mut out, &inspection, detail, layout)?
                }
            }
        }
        Plan::Sweep {
            request,
            namespace,
            show,
        } => {
            let sweep = sweep::sweep(&request, namespace.as_deref(), &catalog)?;
            match show {
                Show::Json => {
                    render::pods::write_json_lines(&mut out, &sweep)?;
                    for w in &sweep.warnings {
                        let _ = writeln!(io::stderr(), "podports: warning: {w}");
                    }
                }
                Show::Table { detail, layout } => {
                    render::pods::write_table(&mut out, &sweep, detail, layout)?
                }
            }
        }
        Plan::Check(plan) => {
            if !check::run::run(&plan, &catalog, &mut out)? {
                return Err(Failure::ChecksFailed);
            }
        }
        Plan::Probe { plan, show } => return run_probe(&plan, show, &catalog, &mut out),
        Plan::Watch {
            request,
            every,
            view,
        } => return run_watch(&request, every, view, &catalog, &mut out),
        Plan::Graph {
            request,
            format,
            color,
        } => {
            let graph = render::graph::build(&inspect::inspect(&request, &catalog)?);
            render::graph::write(&mut out, &graph, format, color)?;
        }
        Plan::Catalog { show } => match show {
            Show::Json => render::catalog::write_json(&mut out, &catalog)?,
            Show::Table { detail, layout } => {
                render::catalog::write_table(&mut out, &catalog, detail == Detail::Wide, layout)?
            }
        },
        Plan::Completions(shell) => generate::completions(shell, &mut out)?,
        Plan::Man { dir: None } => generate::man(&mut out)?,
        Plan::Man { dir: Some(dir) } => {
            for (name, page) in generate::man_pages()? {
                let path = dir.join(&name);
                files::write(&path, &page).map_err(|e| {
                    Error::Usage(format!("man --dir: cannot write {}: {e}", path.display()))
                })?;
                writeln!(out, "{}", path.display())?;
            }
        }
    }
    out.flush()?;
    Ok(())
}

/// `probe`: the report, then exit 1 when a port did not answer (a closed stdout does not
/// change that).
fn run_probe(
    plan: &probe::run::Plan,
    show: Show,
    catalog: &Catalog,
    out: &mut impl Write,
) -> Result<(), Failure> {
    let report = probe::run::probe(plan, catalog)?;
    let written = match show {
        Show::Json => render::probe::write_json(out, &report),
        Show::Table { detail, layout } => render::probe::write_table(out, &report, detail, layout),
    }
    .and_then(|()| out.flush());
    if !report.passed() {
        return Err(Failure::ChecksFailed);
    }
    Ok(written?)
}

/// `--watch`: the listing again every `every` until Ctrl-C, a failed look (exit 3), or the
/// reader of stdout going away (exit 0, even when nothing was written for a while).
fn run_watch(
    request: &Request,
    every: Duration,
    view: View,
    catalog: &Catalog,
    out: &mut impl Write,
) -> Result<(), Failure> {
    let stdout = io::stdout();
    let wait = |d| match output::wait_unless_hung_up(stdout.as_fd(), d) {
        Waited::Elapsed => Next::Again,
        Waited::HungUp => Next::Done,
    };
    let look = || inspect::inspect(request, catalog);
    let mut opened = watch::events::open(request)?;
    for w in &opened.warnings {
        let _ = writeln!(io::stderr(), "podports: warning: {w}");
    }
    // Who connected what no look saw: only worth loading when there are events to match.
    let mut tracing = opened
        .feed
        .as_ref()
        .map_err(|why| why.clone())
        .and_then(|_| watch::events::Tracing::load(request));
    if let (Ok(_), Err(why)) = (&opened.feed, &tracing) {
        let _ = writeln!(
            io::stderr(),
            "podports: warning: owners of connections no look saw are unknown: {why}"
        );
    }
    let tracing_off = tracing.as_ref().err().cloned();
    let closing = match opened.feed.as_mut() {
        Ok(f) => Closing::events(
            || f.drain(),
            |cookie| tracing.as_mut().ok().and_then(|t| t.created(cookie)),
            &request.filters,
            catalog,
            opened.buffer_note,
            tracing_off,
        ),
        Err(why) => Closing::off(why.clone(), catalog),
    };
    let (closing, err) = (Some(closing), &mut io::stderr());
    watch::run::watch_closing(look, wait, every, view, closing, out, err).map_err(|e| match e {
        Stop::Target(e) => Failure::Error(e),
        Stop::Output(e) => Failure::from(e),
    })
}
