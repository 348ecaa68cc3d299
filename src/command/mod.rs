//! The modes of a `Plan` that run a loop or write more than one thing: `check`, `probe`,
//! `--watch`. Each takes its plan, runs the evaluation below it (`check::`, `probe::`,
//! `watch::`) and writes through `render` to any `impl Write`; the one layer above `render`,
//! so nothing below it knows how output looks. `main` calls one per arm of its match and
//! turns a `Failure` into the exit code; nothing here parses the command line.

pub mod check;
pub mod probe;
pub mod watch;

use std::io;

use crate::error::Error;

/// Why a command did not end well.
#[derive(Debug)]
pub enum Failure {
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
