//! podports' error type and the exit-code contract: 2 usage or input, 3 target unreachable or
//! missing privilege (1 is a failed check, decided elsewhere). Every message names the thing
//! and what to do next.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// Bad flags or input (exit 2).
    Usage(String),
    /// The target cannot be reached: no such pid, missing netns, dump refused (exit 3).
    Unreachable(String),
    /// A privilege is missing and nothing can stand in for it (exit 3).
    Privilege(String),
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) => 2,
            Error::Unreachable(_) | Error::Privilege(_) => 3,
        }
    }

    pub fn message(&self) -> &str {
        match self {
            Error::Usage(m) | Error::Unreachable(m) | Error::Privilege(m) => m,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for Error {}
