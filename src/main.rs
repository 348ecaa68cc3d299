//! podports' entry point: parse, run, print, exit with the code the contract names.
//! A closed stdout (`podports | head`) ends quietly with 0; nothing here ever panics on input.
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
use podports::cli::{Cli, Command, Output};
use podports::error::Error;
use podports::inspect::{self, Target};
use podports::node;
use podports::render::{self, table::Detail};
use podports::sys::output::{self, Waited};
use podports::watch::run::{Next, Stop, View};
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
    let color = cli.color.enabled(
        stdout.is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    );
    // 64 KiB: a listing of 40k sockets is 45 MB of JSON (issue 5).
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    let watching = cli.watch_plan(stdout.is_terminal(), color)?;
    match cli.command {
        Some(Command::Catalog) => match cli.output {
            Output::Json => render::catalog::write_json(&mut out, &catalog)?,
            Output::Wide => render::catalog::write_table(&mut out, &catalog, true)?,
            Output::Table => render::catalog::write_table(&mut out, &catalog, false)?,
        },
        Some(Command::Check { .. }) => {
            if !check::run::run(&cli.check_plan()?, &catalog, &mut out)? {
                return Err(Failure::ChecksFailed);
            }
        }
        Some(Command::Probe { .. }) => return run_probe(cli, &catalog, &mut out, color),
        Some(Command::Completions { shell }) => generate::completions(shell, &mut out)?,
        Some(Command::Man) => generate::man(&mut out)?,
        None => {
            if let Some((every, view)) = watching {
                return run_watch(cli, every, view, &catalog, &mut out);
            }
            let request = cli.request()?;
            if let Target::AllPods { namespace } = &request.target {
                let sweep = node::sweep(&request, namespace.as_deref(), &catalog)?;
                match cli.output {
                    Output::Json => {
                        render::pods::write_json_lines(&mut out, &sweep)?;
                        for w in &sweep.warnings {
                            let _ = writeln!(io::stderr(), "podports: warning: {w}");
                        }
                    }
                    Output::Table => {
                        render::pods::write_table(&mut out, &sweep, Detail::Normal, color)?
                    }
                    Output::Wide => {
                        render::pods::write_table(&mut out, &sweep, Detail::Wide, color)?
                    }
                }
                out.flush()?;
                return Ok(());
            }
            let inspection = inspect::inspect(&request, &catalog)?;
            match cli.output {
                Output::Json => {
                    render::json::write(&mut out, &inspection)?;
                    writeln!(out)?;
                }
                Output::Table => {
                    render::table::write(&mut out, &inspection, Detail::Normal, color)?
                }
                Output::Wide => render::table::write(&mut out, &inspection, Detail::Wide, color)?,
            }
        }
    }
    out.flush()?;
    Ok(())
}

/// `probe`: the report, then exit 1 when a port did not answer (a closed stdout does not
/// change that).
fn run_probe(
    cli: &Cli,
    catalog: &Catalog,
    out: &mut impl Write,
    color: bool,
) -> Result<(), Failure> {
    let report = probe::run::probe(&cli.probe_plan()?, catalog)?;
    let written = match cli.output {
        Output::Json => render::probe::write_json(out, &report),
        Output::Table => render::probe::write_table(out, &report, Detail::Normal, color),
        Output::Wide => render::probe::write_table(out, &report, Detail::Wide, color),
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
    cli: &Cli,
    every: Duration,
    view: View,
    catalog: &Catalog,
    out: &mut impl Write,
) -> Result<(), Failure> {
    let request = cli.request()?;
    let stdout = io::stdout();
    let wait = |d| match output::wait_unless_hung_up(stdout.as_fd(), d) {
        Waited::Elapsed => Next::Again,
        Waited::HungUp => Next::Done,
    };
    let look = || inspect::inspect(&request, catalog);
    watch::run::watch(look, wait, every, view, out, &mut io::stderr()).map_err(|e| match e {
        Stop::Target(e) => Failure::Error(e),
        Stop::Output(e) => Failure::from(e),
    })
}
