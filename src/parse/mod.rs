//! PURE parsers of what the kernel says: `/proc/<pid>/net/*` tables, `/proc/<pid>/{stat,status,
//! cmdline}`, fd link targets, NETLINK_SOCK_DIAG replies, `/proc/<pid>/cgroup` paths and the
//! kubelet's log names. Bytes in, `model` structs out.
//! Nothing here touches the filesystem or makes a syscall, and no input makes it panic.

use std::fmt;

pub mod bpf_insn;
pub mod btf;
pub mod cgroup;
pub mod fd_iter;
pub mod http;
pub mod kubelet;
pub mod proc_net;
pub mod proc_pid;
pub mod runtime;
pub mod sock_create;
pub mod sock_diag;
pub mod sock_events;

/// Why a whole input could not be parsed (`/proc/<pid>/stat` without a `)`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub reason: String,
}

impl ParseError {
    pub fn new(reason: impl Into<String>) -> ParseError {
        ParseError {
            reason: reason.into(),
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for ParseError {}

/// One line of a table that was skipped, and why. The other lines are still parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    /// 1-based line number in the input (the header is line 1).
    pub line: usize,
    pub reason: String,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}
