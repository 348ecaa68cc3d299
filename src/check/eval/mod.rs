//! Evaluation: expectations against the listeners of one inspection, giving each expectation
//! pass, fail, unknown or skip, and for each what was found (who holds the port, on which
//! address). PURE: sockets in, outcomes out; no I/O, no clock.
//!
//! A listener is a TCP socket in LISTEN, a bound UDP socket (UNCONN), or a unix socket in
//! LISTEN or a bound unix datagram socket. Several SO_REUSEPORT sockets on one address (one per
//! Envoy worker) are one listening port: they are grouped, never counted as extras.
//!
//! The outcome model and the report are here; the rules that decide each outcome are in
//! `rules`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::check::expect::{BindSpec, Expectations, Owner, Target};
use crate::escape::{endpoint, escape};
use crate::listing::Inspection;
use crate::model::{Endpoint, Kind, Proto, RawText};
use crate::request::Source;

mod rules;

pub use rules::{evaluate, is_listener};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Fail,
    /// Could not be decided: the owner of a listener is not visible. Fails the check: an
    /// owner expectation never passes unseen.
    Unknown,
    /// An optional expectation with nothing listening.
    Skip,
}

impl Status {
    /// As the table shows it: failures shout.
    pub fn label(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "FAIL",
            Status::Unknown => "UNKNOWN",
            Status::Skip => "skip",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckKind {
    Listen,
    Forbid,
    Strict,
}

impl CheckKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckKind::Listen => "listen",
            CheckKind::Forbid => "forbid",
            CheckKind::Strict => "strict",
        }
    }
}

/// A process holding a found listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Who {
    pub pid: i32,
    pub comm: RawText,
    pub kind: Kind,
}

impl Who {
    /// `envoy[12]`, or `myapp[77] (app)` when the name does not say the kind.
    pub fn text(&self) -> String {
        let comm = escape(self.comm.as_bytes());
        if comm == self.kind.as_str() {
            format!("{comm}[{}]", self.pid)
        } else {
            format!("{comm}[{}] ({})", self.pid, self.kind)
        }
    }
}

/// Listeners on one address held by the same processes (SO_REUSEPORT sockets count once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub proto: Proto,
    pub local: Endpoint,
    /// How many sockets: Envoy opens one per worker.
    pub sockets: usize,
    /// Empty when no holder is visible.
    pub holders: Vec<Who>,
}

impl Found {
    /// `tcp 0.0.0.0:15001 envoy[12] (2 sockets)`.
    pub fn text(&self) -> String {
        let who = if self.holders.is_empty() {
            "(no visible process)".to_string()
        } else {
            self.holders
                .iter()
                .map(Who::text)
                .collect::<Vec<_>>()
                .join(",")
        };
        let mut s = format!("{} {} {who}", self.proto, endpoint(&self.local));
        if self.sockets > 1 {
            s.push_str(&format!(" ({} sockets)", self.sockets));
        }
        s
    }
}

/// The verdict on one expectation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub check: CheckKind,
    pub name: Option<String>,
    /// The expectation as the file would say it: `listen tcp/15021 owner=envoy bind=wildcard`.
    pub expected: String,
    /// The profile or file it comes from.
    pub origin: String,
    pub status: Status,
    /// Why it failed, is unknown or was skipped; empty when it passed.
    pub reason: String,
    /// The listeners it concerns: those found on the port (or, for `strict`, the extras).
    pub found: Vec<Found>,
    pub target: Option<Target>,
    pub owner: Option<Owner>,
    pub bind: Option<BindSpec>,
    pub optional: bool,
}

impl Outcome {
    /// `listen tcp/15021 owner=envoy bind=wildcard (envoy readiness)`: one line naming it.
    pub fn title(&self) -> String {
        match &self.name {
            Some(n) => format!("{} ({n})", self.expected),
            None => self.expected.clone(),
        }
    }

    pub fn failed(&self) -> bool {
        matches!(self.status, Status::Fail | Status::Unknown)
    }
}

/// What the inspection could see, which decides between fail and unknown.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Visibility {
    /// Some processes' fds could not be read (privilege or policy): owners may be hidden.
    pub owners_hidden: bool,
}

/// How long `--wait` waited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Waited {
    pub limit: Duration,
    pub elapsed: Duration,
    pub attempts: u32,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub total: usize,
    pub passed: usize,
    pub failed: usize,
    pub unknown: usize,
    pub skipped: usize,
}

/// One check of one target: the outcomes and what the user must know about the inspection.
#[derive(Debug, Clone)]
pub struct Report {
    pub outcomes: Vec<Outcome>,
    /// The profiles and files checked, as given.
    pub sources: Vec<String>,
    /// How the target was named: `current`, `pid 1234`, `netns /run/netns/x`.
    pub target: String,
    pub netns_inode: Option<u64>,
    pub source: Source,
    /// The inspection's warnings (a fallback taken, owners hidden).
    pub warnings: Vec<String>,
    pub hidden_owners: usize,
    pub strict: bool,
    pub waited: Option<Waited>,
}

impl Report {
    /// Evaluates `exp` against `ins`.
    pub fn new(exp: &Expectations, sources: Vec<String>, ins: &Inspection) -> Report {
        let vis = Visibility {
            owners_hidden: ins.hidden_owners > 0,
        };
        Report {
            outcomes: evaluate(exp, &ins.sockets, vis),
            sources,
            target: ins.netns.target.clone(),
            netns_inode: ins.netns.inode,
            source: ins.source,
            warnings: ins.warnings.clone(),
            hidden_owners: ins.hidden_owners,
            strict: exp.strict.is_some(),
            waited: None,
        }
    }

    /// Every expectation holds (skipped optional ones included).
    pub fn passed(&self) -> bool {
        !self.outcomes.iter().any(Outcome::failed)
    }

    pub fn summary(&self) -> Summary {
        let count = |st: Status| self.outcomes.iter().filter(|o| o.status == st).count();
        Summary {
            total: self.outcomes.len(),
            passed: count(Status::Pass),
            failed: count(Status::Fail),
            unknown: count(Status::Unknown),
            skipped: count(Status::Skip),
        }
    }
}

#[cfg(test)]
mod tests;
