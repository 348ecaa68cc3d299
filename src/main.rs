//! podports' entry point: parse, run, print, exit with the code the contract names.
//! A closed stdout (`podports | head`) ends quietly with 0; nothing here ever panics on input.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::io::{self, BufWriter, IsTerminal, Write};
use std::process::ExitCode;

use clap::Parser;

use podports::catalog::Catalog;
use podports::cli::{Cli, Command, Output};
use podports::error::Error;
use podports::inspect;
use podports::render::{self, table::Detail};

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
    let mut out = BufWriter::new(stdout.lock());
    match cli.command {
        Some(Command::Catalog) => match cli.output {
            Output::Json => render::catalog::write_json(&mut out, &catalog)?,
            Output::Wide => render::catalog::write_table(&mut out, &catalog, true)?,
            Output::Table => render::catalog::write_table(&mut out, &catalog, false)?,
        },
        None => {
            let request = cli.request()?;
            let inspection = inspect::inspect(&request, &catalog)?;
            match cli.output {
                Output::Json => {
                    serde_json::to_writer_pretty(&mut out, &render::json::document(&inspection))
                        .map_err(io::Error::from)?;
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
