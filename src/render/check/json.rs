//! One check's verdict as the typed `-o json` document (`version`, every expectation with
//! what was found). Pure, as the rest of `render::check`.

use super::*;

/// The `-o json` document of a check, version 1. Fields may be added, never renamed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckDocument {
    pub version: u32,
    /// Every expectation holds: the exit code is 0.
    pub passed: bool,
    pub netns: NetnsDoc,
    /// `netlink`, or `proc` when /proc/<pid>/net was read instead.
    pub source: String,
    /// The profiles and files checked, as given.
    pub sources: Vec<String>,
    pub strict: bool,
    /// The pod's address families `bind: wildcard` was checked against: `ipv4`, `ipv6`, or
    /// both; empty when none beyond loopback (checked as IPv4).
    #[serde(default)]
    pub families: Vec<String>,
    /// False when the pod's addresses could not be read (checked as IPv4; see `warnings`).
    #[serde(default)]
    pub families_known: bool,
    pub summary: Summary,
    pub results: Vec<ResultDoc>,
    pub warnings: Vec<String>,
    pub hidden_owners: usize,
    /// Present under `--wait`.
    pub wait: Option<WaitDoc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultDoc {
    /// `pass`, `fail`, `unknown` (the owner is not visible; counts as a failure), `skip`
    /// (optional, nothing listening) or `dropped` (a profile item a file's `drop` removed:
    /// not checked).
    pub status: Status,
    /// `listen`, `forbid` or `strict`.
    pub check: CheckKind,
    /// The expectation as a file would say it: `listen tcp/15021 owner=envoy bind=wildcard`.
    pub expected: String,
    pub name: Option<String>,
    /// The profile or file it comes from, as given.
    pub origin: String,
    /// The item's line in that file (none for a built-in profile's items).
    #[serde(default)]
    pub line: Option<u64>,
    /// The profiles whose `listen` items for this port or path this file item replaces.
    #[serde(default)]
    pub replaces: Vec<String>,
    /// For `status: dropped`: the file and line whose `drop` removed this profile item.
    #[serde(default)]
    pub dropped_by: Option<String>,
    /// All of the above in one line, as the table's FROM column shows it:
    /// `podports.yaml:7, replaces istio-sidecar`.
    #[serde(default)]
    pub from: String,
    pub proto: Option<Proto>,
    pub port: Option<u16>,
    pub path: Option<String>,
    pub owner: Option<String>,
    pub bind: Option<String>,
    pub optional: bool,
    /// Why it failed, is unknown or was skipped; empty when it passed.
    pub reason: String,
    pub found: Vec<FoundDoc>,
}

/// Listeners on one address held by the same processes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FoundDoc {
    pub proto: Proto,
    /// `0.0.0.0:15001`, `[::]:15001`, a unix path or `@abstract`, escaped as in the table.
    pub local: String,
    /// SO_REUSEPORT sockets on that address (one per Envoy worker).
    pub sockets: usize,
    pub processes: Vec<ProcessRef>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessRef {
    pub pid: i32,
    /// UTF-8, invalid bytes replaced by U+FFFD.
    pub comm: String,
    pub kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitDoc {
    pub limit_ms: u64,
    pub elapsed_ms: u64,
    pub attempts: u32,
}

pub fn document(r: &Report) -> CheckDocument {
    CheckDocument {
        version: VERSION,
        passed: r.passed(),
        netns: NetnsDoc {
            inode: r.netns_inode,
            target: r.target.clone(),
        },
        source: match r.source {
            Source::Netlink => "netlink".into(),
            Source::Proc => "proc".into(),
        },
        sources: r.sources.clone(),
        strict: r.strict,
        families: [(r.families.ipv4, "ipv4"), (r.families.ipv6, "ipv6")]
            .into_iter()
            .filter(|(on, _)| *on)
            .map(|(_, name)| name.to_string())
            .collect(),
        families_known: r.families.known,
        summary: r.summary(),
        results: r.outcomes.iter().map(result_doc).collect(),
        warnings: r.warnings.clone(),
        hidden_owners: r.hidden_owners,
        wait: r.waited.map(|w| WaitDoc {
            limit_ms: w.limit.as_millis().try_into().unwrap_or(u64::MAX),
            elapsed_ms: w.elapsed.as_millis().try_into().unwrap_or(u64::MAX),
            attempts: w.attempts,
        }),
    }
}

fn result_doc(o: &Outcome) -> ResultDoc {
    let (proto, port, path) = match &o.target {
        Some(Target::Inet { proto, port }) => (Some(*proto), Some(*port), None),
        Some(Target::Unix { path }) => (Some(Proto::Unix), None, Some(path.clone())),
        None => (None, None, None),
    };
    ResultDoc {
        status: o.status,
        check: o.check,
        expected: o.expected.clone(),
        name: o.name.clone(),
        origin: o.origin.source.clone(),
        line: o.origin.line,
        replaces: o.origin.replaces.clone(),
        dropped_by: o.dropped_by.as_ref().map(|d| d.at()),
        from: o.from(),
        proto,
        port,
        path,
        owner: o.owner.as_ref().map(|w| w.to_string()),
        bind: o.bind.map(|b| b.to_string()),
        optional: o.optional,
        reason: o.reason.clone(),
        found: o
            .found
            .iter()
            .map(|f| FoundDoc {
                proto: f.proto,
                local: endpoint(&f.local),
                sockets: f.sockets,
                processes: f
                    .holders
                    .iter()
                    .map(|w| ProcessRef {
                        pid: w.pid,
                        comm: w.comm.lossy(),
                        kind: w.kind,
                    })
                    .collect(),
            })
            .collect(),
    }
}
