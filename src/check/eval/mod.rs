//! Evaluation: expectations against the listeners of one inspection, giving each expectation
//! pass, fail, unknown or skip, and for each what was found (who holds the port, on which
//! address). PURE: sockets in, outcomes out; no I/O, no clock.
//!
//! A listener is a TCP socket in LISTEN, a bound UDP socket (UNCONN), or a unix socket in
//! LISTEN or a bound unix datagram socket (UNCONN, or ESTABLISHED once a client connect()ed
//! to it: it still receives). Several SO_REUSEPORT sockets on one address (one per
//! Envoy worker) are one listening port: they are grouped, never counted as extras.
//!
//! The outcome model and the reports (one pod's, and `NodeReport`: every pod of a node) are
//! here; the rules that decide each outcome are in
//! `rules`.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::check::expect::{BindSpec, Expectations, Origin, Owner, Target};
use crate::escape::{endpoint, escape};
use crate::listing::Inspection;
use crate::model::{Endpoint, Kind, PodRef, Proto, RawText};
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
    /// A profile item a file removed with `drop`: not checked, shown on every run.
    Dropped,
}

impl Status {
    /// As the table shows it: failures shout.
    pub fn label(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "FAIL",
            Status::Unknown => "UNKNOWN",
            Status::Skip => "skip",
            Status::Dropped => "DROPPED",
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
    /// The profile or file (and line) it comes from, and what it replaces.
    pub origin: Origin,
    /// For a dropped profile item: the file (and line) whose `drop` removed it.
    pub dropped_by: Option<Origin>,
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

    /// Where it came from, in one line: `podports.yaml:7, replaces istio-sidecar`,
    /// `istio-sidecar, dropped by podports.yaml:9`.
    pub fn from(&self) -> String {
        match &self.dropped_by {
            Some(by) => format!("{}, dropped by {}", self.origin, by.at()),
            None => self.origin.to_string(),
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
    /// The address families the pod's clients come from, which `bind: wildcard` must serve.
    pub families: Families,
    /// The inode of the target's network namespace, for `owner_netns`.
    pub netns: Option<u64>,
}

/// The address families of a pod: those of its addresses other than loopback and IPv6
/// link-local (every interface with IPv6 has an fe80:: address; no client outside the link
/// uses it). `bind: wildcard` must be reachable on each. A pod with none, or whose addresses
/// could not be read (`known: false`), is taken as IPv4, the Kubernetes default, so that a
/// v6-only `[::]` never passes unseen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Families {
    pub ipv4: bool,
    pub ipv6: bool,
    /// Read from the pod's namespace; false when they could not be.
    pub known: bool,
}

impl Families {
    /// The families of `addrs` (the namespace's interface addresses).
    pub fn of(addrs: &[IpAddr]) -> Families {
        let mut f = Families {
            known: true,
            ..Families::default()
        };
        for a in addrs {
            match a.to_canonical() {
                IpAddr::V4(v4) if !v4.is_loopback() && !v4.is_unspecified() => f.ipv4 = true,
                IpAddr::V6(v6)
                    if !v6.is_loopback() && !v6.is_unspecified() && !v6.is_unicast_link_local() =>
                {
                    f.ipv6 = true
                }
                _ => {}
            }
        }
        f
    }

    /// Only IPv4 clients, only IPv6 clients, or both.
    pub const IPV4: Families = Families {
        ipv4: true,
        ipv6: false,
        known: true,
    };
    pub const IPV6: Families = Families {
        ipv4: false,
        ipv6: true,
        known: true,
    };
    pub const DUAL: Families = Families {
        ipv4: true,
        ipv6: true,
        known: true,
    };

    /// (IPv4, IPv6): the families a wildcard listener must serve.
    pub fn needed(self) -> (bool, bool) {
        if self.ipv4 || self.ipv6 {
            (self.ipv4, self.ipv6)
        } else {
            (true, false)
        }
    }
}

impl fmt::Display for Families {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.ipv4, self.ipv6, self.known) {
            (true, true, _) => f.write_str("IPv4 and IPv6"),
            (true, false, _) => f.write_str("IPv4"),
            (false, true, _) => f.write_str("IPv6"),
            (false, false, true) => f.write_str("no address beyond loopback (taken as IPv4)"),
            (false, false, false) => f.write_str("unknown (taken as IPv4)"),
        }
    }
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
    /// Profile items removed by a file's `drop`.
    #[serde(default)]
    pub dropped: usize,
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
    /// The notes of loading (a `--profile` left out as a file's base, `run::Loaded::notes`),
    /// then the inspection's warnings (a fallback taken, owners hidden).
    pub warnings: Vec<String>,
    pub hidden_owners: usize,
    pub strict: bool,
    pub waited: Option<Waited>,
    /// The pod's address families, which `bind: wildcard` was checked against.
    pub families: Families,
}

impl Report {
    /// Evaluates `exp` against `ins`, in a pod of these address `families`.
    pub fn new(
        exp: &Expectations,
        sources: Vec<String>,
        ins: &Inspection,
        families: Families,
    ) -> Report {
        let vis = Visibility {
            owners_hidden: ins.hidden_owners > 0,
            families,
            netns: ins.netns.inode,
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
            families,
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
            dropped: count(Status::Dropped),
        }
    }
}

// `check --all-pods`: one verdict per pod of the node.

/// What happened to one pod.
#[derive(Debug, Clone)]
pub enum Verdict {
    /// Checked: the report of its expectations.
    Checked(Report),
    /// `--profile auto` found no mesh process: nothing expected, nothing checked.
    Unchecked,
    /// A hostNetwork pod: its namespace is the node's, not the pod's; not checked.
    HostNetwork,
}

/// One pod of the node and its verdict.
#[derive(Debug, Clone)]
pub struct PodCheck {
    /// `pod default/productpage-v1`, as the listing names it.
    pub label: String,
    pub pod: Option<PodRef>,
    /// The profiles and files it was checked against.
    pub sources: Vec<String>,
    /// Under `--profile auto`: what the choice rests on.
    pub auto: Option<String>,
    pub verdict: Verdict,
}

impl PodCheck {
    /// Checked and every expectation holds, or not checked at all.
    pub fn passed(&self) -> bool {
        match &self.verdict {
            Verdict::Checked(r) => r.passed(),
            Verdict::Unchecked | Verdict::HostNetwork => true,
        }
    }
}

/// Every pod of the node.
#[derive(Debug, Clone, Default)]
pub struct NodeReport {
    pub pods: Vec<PodCheck>,
    /// Each `--profile` left out as a file's base (`run::Loaded::notes`), then the pods the
    /// sweep skipped (exited, namespace refused) and why.
    pub warnings: Vec<String>,
}

impl NodeReport {
    /// No checked pod fails (UNKNOWN owners count as failures).
    pub fn passed(&self) -> bool {
        self.pods.iter().all(PodCheck::passed)
    }
}

#[cfg(test)]
mod tests;
