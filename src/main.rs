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

use clap::Parser;

use podports::catalog::Catalog;
use podports::cli::Cli;
use podports::command::{self, Failure};
use podports::error::Error;
use podports::generate;
use podports::inspect;
use podports::plan::{Plan, Show, Terminal};
use podports::render::{self, table::Detail};
use podports::sweep;
use podports::sys::files;
use podports::sys::output;

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
        Plan::Check { plan, show } => {
            if !command::check::run(&plan, show, &catalog, &mut out)? {
                return Err(Failure::ChecksFailed);
            }
        }
        Plan::Probe { plan, show } => return command::probe::run(&plan, show, &catalog, &mut out),
        Plan::Watch {
            request,
            every,
            view,
        } => return command::watch::run(&request, every, view, &catalog, &mut out),
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
