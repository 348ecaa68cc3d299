//! Evaluation: expectations against the listeners of one inspection, giving each expectation
//! pass, fail, unknown or skip, and for each what was found (who holds the port, on which
//! address). PURE: sockets in, outcomes out; no I/O, no clock.
//!
//! A listener is a TCP socket in LISTEN, a bound UDP socket (UNCONN), or a unix socket in
//! LISTEN or a bound unix datagram socket. Several SO_REUSEPORT sockets on one address (one per
//! Envoy worker) are one listening port: they are grouped, never counted as extras.

use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::catalog::{Bind, suffix_on_boundary};
use crate::check::expect::{BindSpec, Expectations, Forbid, Listen, Owner, Target, UnixKey};
use crate::inspect::{Inspection, Source};
use crate::model::{Endpoint, Kind, Proto, RawText, SockType, Socket, State, UnixName};
use crate::render::escape::escape;
use crate::render::table::endpoint;

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
    /// Some processes' fds could not be read (no CAP_SYS_PTRACE): owners may be hidden.
    pub owners_hidden: bool,
}

/// Evaluates every expectation: `listen` items, then `forbid` items, then `strict`.
pub fn evaluate(exp: &Expectations, sockets: &[Socket], vis: Visibility) -> Vec<Outcome> {
    let listeners: Vec<&Socket> = sockets.iter().filter(|s| is_listener(s)).collect();
    let mut out: Vec<Outcome> = exp
        .listen
        .iter()
        .map(|l| eval_listen(l, &listeners, vis))
        .collect();
    out.extend(exp.forbid.iter().map(|f| eval_forbid(f, &listeners, vis)));
    if let Some(origin) = &exp.strict {
        out.push(eval_strict(&exp.listen, origin, &listeners));
    }
    out
}

/// A socket something can connect or send to: TCP LISTEN, bound UDP, a unix listener or bound
/// unix datagram socket. Port 0 and unnamed unix sockets are no listeners.
pub fn is_listener(s: &Socket) -> bool {
    let state = match s.proto {
        Proto::Tcp => s.state == State::Listen,
        Proto::Udp => s.state == State::Unconn,
        Proto::Unix => {
            s.state == State::Listen || (s.state == State::Unconn && s.sock_type == SockType::Dgram)
        }
    };
    let named = match &s.local {
        Endpoint::Inet { port, .. } => *port != 0,
        Endpoint::UnixLocal(UnixName::Path(p) | UnixName::Abstract(p)) => !p.is_empty(),
        _ => false,
    };
    state && named
}

/// Whether `s` is a socket of `target` (protocol, then port or unix name).
fn on_target(s: &Socket, target: &Target) -> bool {
    if s.proto != target.proto() {
        return false;
    }
    match (&s.local, target) {
        (Endpoint::Inet { port, .. }, Target::Inet { port: want, .. }) => port == want,
        (Endpoint::UnixLocal(name), Target::Unix { .. }) => match (name, target.unix_key()) {
            (UnixName::Path(p), Some(UnixKey::Path(k))) => {
                suffix_on_boundary(p.as_bytes(), k.as_bytes())
            }
            (UnixName::Abstract(a), Some(UnixKey::Abstract(k))) => a.as_bytes() == k.as_bytes(),
            _ => false,
        },
        _ => false,
    }
}

fn addr_of(s: &Socket) -> Option<IpAddr> {
    s.local.addr()
}

/// Whether a listen item names `s`: its target, and its address when it gives one.
fn names(l: &Listen, s: &Socket) -> bool {
    on_target(s, &l.target)
        && match l.bind {
            BindSpec::Addr(_) => addr_of(s).is_some_and(|a| l.bind.allows(a)),
            BindSpec::Class(_) => true,
        }
}

fn eval_listen(l: &Listen, listeners: &[&Socket], vis: Visibility) -> Outcome {
    let mut o = outcome(CheckKind::Listen, l.describe(), &l.name, &l.origin);
    o.target = Some(l.target.clone());
    o.owner = l.owner.clone();
    o.bind = Some(l.bind);
    o.optional = l.optional;

    let on_port: Vec<&Socket> = listeners
        .iter()
        .copied()
        .filter(|s| on_target(s, &l.target))
        .collect();
    let selected: Vec<&Socket> = on_port.iter().copied().filter(|s| names(l, s)).collect();
    if selected.is_empty() {
        let nothing = match l.bind {
            BindSpec::Addr(a) => format!("nothing listens on {} at {a}", l.target),
            BindSpec::Class(_) => format!("nothing listens on {}", l.target),
        };
        if l.optional {
            o.status = Status::Skip;
            o.reason = format!("{nothing} (optional)");
        } else {
            o.status = Status::Fail;
            o.reason = if on_port.is_empty() {
                nothing
            } else {
                format!("{nothing}; found on other addresses")
            };
        }
        o.found = group(&on_port);
        return o;
    }

    let mut problems = Vec::new();
    if let BindSpec::Class(bind @ (Bind::Loopback | Bind::Wildcard)) = l.bind {
        let off: Vec<&Socket> = selected
            .iter()
            .copied()
            .filter(|s| addr_of(s).is_some_and(|a| !bind.allows(a)))
            .collect();
        if !off.is_empty() {
            let expected = match bind {
                Bind::Loopback => "loopback only",
                _ => "the wildcard address (0.0.0.0 or ::)",
            };
            problems.push(format!(
                "bound to {} (expected {expected})",
                endpoints(&off)
            ));
        }
    }
    let mut unknown = None;
    if let Some(owner) = &l.owner {
        let wrong = others(&selected, owner);
        let unseen = selected.iter().filter(|s| s.holders.is_empty()).count();
        if !wrong.is_empty() {
            problems.push(format!("held by {} (expected {owner})", who_list(&wrong)));
        }
        if unseen > 0 {
            unknown = Some(owner_unknown(vis, owner, unseen));
        }
    }
    o.found = group(&selected);
    if !problems.is_empty() {
        o.status = Status::Fail;
        problems.extend(unknown);
        o.reason = problems.join("; ");
    } else if let Some(why) = unknown {
        o.status = Status::Unknown;
        o.reason = why;
    }
    o
}

fn eval_forbid(f: &Forbid, listeners: &[&Socket], vis: Visibility) -> Outcome {
    let mut o = outcome(CheckKind::Forbid, f.describe(), &f.name, &f.origin);
    o.target = Some(f.target.clone());
    o.owner = f.owner.clone();
    o.bind = Some(f.bind);

    let present: Vec<&Socket> = listeners
        .iter()
        .copied()
        .filter(|s| on_target(s, &f.target))
        .filter(|s| addr_of(s).is_none_or(|a| f.bind.allows(a)))
        .collect();
    let Some(owner) = &f.owner else {
        if !present.is_empty() {
            o.status = Status::Fail;
            o.reason = "listening, which is forbidden".into();
            o.found = group(&present);
        }
        return o;
    };
    let offending: Vec<&Socket> = present
        .iter()
        .copied()
        .filter(|s| s.holders.iter().any(|h| owner.matches(h)))
        .collect();
    let unseen = present.iter().filter(|s| s.holders.is_empty()).count();
    if !offending.is_empty() {
        o.status = Status::Fail;
        o.reason = format!("held by {owner}, which is forbidden");
        o.found = group(&offending);
    } else if unseen > 0 {
        o.status = Status::Unknown;
        o.reason = owner_unknown(vis, owner, unseen);
        o.found = group(&present);
    }
    o
}

fn eval_strict(listen: &[Listen], origin: &str, listeners: &[&Socket]) -> Outcome {
    let mut o = outcome(
        CheckKind::Strict,
        "strict: no listener beyond the `listen` items".into(),
        &None,
        origin,
    );
    let extras: Vec<&Socket> = listeners
        .iter()
        .copied()
        .filter(|s| !listen.iter().any(|l| names(l, s)))
        .collect();
    if !extras.is_empty() {
        o.found = group(&extras);
        o.status = Status::Fail;
        o.reason = format!(
            "{} listening port(s) not named by any `listen` item",
            o.found.len()
        );
    }
    o
}

fn outcome(check: CheckKind, expected: String, name: &Option<String>, origin: &str) -> Outcome {
    Outcome {
        check,
        name: name.clone(),
        expected,
        origin: origin.to_string(),
        status: Status::Pass,
        reason: String::new(),
        found: Vec::new(),
        target: None,
        owner: None,
        bind: None,
        optional: false,
    }
}

/// Holders of `sockets` that are not `owner`, once each.
fn others(sockets: &[&Socket], owner: &Owner) -> Vec<Who> {
    let mut out: Vec<Who> = Vec::new();
    for h in sockets.iter().flat_map(|s| &s.holders) {
        if !owner.matches(h) && !out.iter().any(|w| w.pid == h.process.pid) {
            out.push(who(h));
        }
    }
    out
}

fn who(h: &crate::model::Holder) -> Who {
    Who {
        pid: h.process.pid,
        comm: h.process.comm.clone(),
        kind: h.kind,
    }
}

fn who_list(w: &[Who]) -> String {
    w.iter().map(Who::text).collect::<Vec<_>>().join(", ")
}

/// `0.0.0.0:15000, [::]:15000`, each address once.
fn endpoints(sockets: &[&Socket]) -> String {
    let mut seen: Vec<String> = Vec::new();
    for s in sockets {
        let e = endpoint(&s.local);
        if !seen.contains(&e) {
            seen.push(e);
        }
    }
    seen.join(", ")
}

fn owner_unknown(vis: Visibility, owner: &Owner, unseen: usize) -> String {
    if vis.owners_hidden {
        format!(
            "owner not visible: {unseen} listener(s) have no visible owner and some processes' \
             fds could not be read, so whether {owner} holds them is unknown; grant \
             CAP_SYS_PTRACE (in a pod: `kubectl debug --profile=general`)"
        )
    } else {
        format!(
            "owner not visible: no process podports can see holds {unseen} listener(s), so \
             whether {owner} holds them is unknown (the owner may live in another pid \
             namespace: run podports on the node)"
        )
    }
}

/// Groups sockets by protocol, local address and holding processes, in first-seen order.
fn group(sockets: &[&Socket]) -> Vec<Found> {
    let mut out: Vec<Found> = Vec::new();
    for s in sockets {
        let mut holders: Vec<Who> = Vec::new();
        for h in &s.holders {
            if !holders.iter().any(|w| w.pid == h.process.pid) {
                holders.push(who(h));
            }
        }
        holders.sort_by_key(|w| w.pid);
        match out
            .iter_mut()
            .find(|f| f.proto == s.proto && f.local == s.local && f.holders == holders)
        {
            Some(f) => f.sockets += 1,
            None => out.push(Found {
                proto: s.proto,
                local: s.local.clone(),
                sockets: 1,
                holders,
            }),
        }
    }
    out
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
mod tests {
    use std::net::IpAddr;
    use std::sync::Arc;

    use super::*;
    use crate::check::expect::{self, Format};
    use crate::model::{Family, Holder, ProcessInfo};

    fn holder(pid: i32, comm: &str, kind: Kind) -> Holder {
        Holder {
            process: Arc::new(ProcessInfo {
                pid,
                comm: comm.into(),
                ..ProcessInfo::default()
            }),
            fd: 3,
            kind,
            basis: "".into(),
            container: None,
        }
    }

    fn inet(proto: Proto, addr: &str, port: u16, state: State, holders: &[Holder]) -> Socket {
        let addr: IpAddr = addr.parse().unwrap();
        let family = if addr.is_ipv4() {
            Family::Ipv4
        } else {
            Family::Ipv6
        };
        let ty = if proto == Proto::Tcp {
            SockType::Stream
        } else {
            SockType::Dgram
        };
        let remote = Endpoint::Inet {
            addr: if addr.is_ipv4() {
                "0.0.0.0".parse().unwrap()
            } else {
                "::".parse().unwrap()
            },
            port: 0,
        };
        let mut s = Socket::new(
            proto,
            family,
            ty,
            state,
            Endpoint::Inet { addr, port },
            remote,
            1000 + u64::from(port),
        );
        s.holders = holders.to_vec();
        s
    }

    fn tcp(addr: &str, port: u16, holders: &[Holder]) -> Socket {
        inet(Proto::Tcp, addr, port, State::Listen, holders)
    }

    fn udp(addr: &str, port: u16, holders: &[Holder]) -> Socket {
        inet(Proto::Udp, addr, port, State::Unconn, holders)
    }

    fn unix(name: UnixName, ty: SockType, state: State, holders: &[Holder]) -> Socket {
        let mut s = Socket::new(
            Proto::Unix,
            Family::Unix,
            ty,
            state,
            Endpoint::UnixLocal(name),
            Endpoint::UnixPeer { peer_inode: None },
            77,
        );
        s.holders = holders.to_vec();
        s
    }

    fn path(p: &str) -> UnixName {
        UnixName::Path(p.into())
    }

    fn envoy() -> Holder {
        holder(12, "envoy", Kind::Envoy)
    }
    fn agent() -> Holder {
        holder(10, "pilot-agent", Kind::PilotAgent)
    }
    fn app() -> Holder {
        holder(77, "myapp", Kind::App)
    }
    fn ztunnel() -> Holder {
        holder(5, "ztunnel", Kind::Ztunnel)
    }

    fn exp(yaml: &str) -> Expectations {
        expect::load(yaml, Format::Yaml, "test.yaml").unwrap_or_else(|e| panic!("{e}"))
    }

    fn run(yaml: &str, sockets: &[Socket]) -> Vec<Outcome> {
        evaluate(&exp(yaml), sockets, Visibility::default())
    }

    fn only(yaml: &str, sockets: &[Socket]) -> Outcome {
        let mut o = run(yaml, sockets);
        assert_eq!(o.len(), 1, "{o:#?}");
        o.remove(0)
    }

    /// A healthy sidecar pod, as podports lists it.
    fn sidecar() -> Vec<Socket> {
        let e = [envoy()];
        let a = [agent()];
        vec![
            tcp("127.0.0.1", 15000, &e),
            tcp("0.0.0.0", 15001, &e),
            tcp("0.0.0.0", 15001, &e),
            tcp("0.0.0.0", 15006, &e),
            tcp("0.0.0.0", 15006, &e),
            tcp("::", 15020, &a),
            tcp("0.0.0.0", 15021, &e),
            tcp("0.0.0.0", 15090, &e),
            unix(
                path("etc/istio/proxy/XDS"),
                SockType::Stream,
                State::Listen,
                &a,
            ),
            unix(
                path("./var/run/secrets/workload-spiffe-uds/socket"),
                SockType::Stream,
                State::Listen,
                &a,
            ),
            tcp("10.0.0.5", 9080, &[app()]),
            // Not listeners: a connection, a TIME_WAIT, an unnamed unix socket.
            inet(Proto::Tcp, "127.0.0.1", 40000, State::Established, &a),
            inet(Proto::Tcp, "10.0.0.5", 9080, State::TimeWait, &[]),
            unix(UnixName::Unnamed, SockType::Stream, State::Established, &e),
        ]
    }

    fn statuses(o: &[Outcome]) -> Vec<(String, Status)> {
        o.iter().map(|o| (o.expected.clone(), o.status)).collect()
    }

    #[test]
    fn a_healthy_sidecar_passes_the_profile_and_optional_items_are_skipped() {
        let o = run("extends: istio-sidecar\n", &sidecar());
        let failed: Vec<_> = o.iter().filter(|o| o.status != Status::Pass).collect();
        assert!(
            failed
                .iter()
                .all(|o| o.status == Status::Skip && o.optional),
            "{failed:#?}"
        );
        assert_eq!(failed.len(), 4, "15053 udp+tcp, 15008, 15004: {failed:#?}");
        let outbound = o.iter().find(|o| o.expected.contains("15001")).unwrap();
        // Two SO_REUSEPORT sockets are one listening port.
        assert_eq!(outbound.found.len(), 1);
        assert_eq!(outbound.found[0].sockets, 2);
        assert_eq!(
            outbound.found[0].text(),
            "tcp 0.0.0.0:15001 envoy[12] (2 sockets)"
        );
    }

    #[test]
    fn missing_listener_fails_and_says_so() {
        let sockets: Vec<Socket> = sidecar()
            .into_iter()
            .filter(|s| s.local.port() != Some(15021))
            .collect();
        let o = run("extends: istio-sidecar\n", &sockets);
        let bad: Vec<_> = o.iter().filter(|o| o.failed()).collect();
        assert_eq!(bad.len(), 1, "{bad:#?}");
        assert_eq!(bad[0].status, Status::Fail);
        assert_eq!(bad[0].reason, "nothing listens on tcp/15021");
        assert_eq!(bad[0].name.as_deref(), Some("envoy readiness"));
        assert_eq!(bad[0].origin, "istio-sidecar");
        assert!(bad[0].found.is_empty());
    }

    #[test]
    fn udp_and_tcp_are_different_listeners() {
        let o = only(
            "listen:\n  - port: 15053\n    proto: udp\n",
            &[tcp("127.0.0.1", 15053, &[agent()])],
        );
        assert_eq!(o.status, Status::Fail);
        assert_eq!(o.reason, "nothing listens on udp/15053");
        let o = only(
            "listen:\n  - port: 15053\n    proto: udp\n",
            &[udp("127.0.0.1", 15053, &[agent()])],
        );
        assert_eq!(o.status, Status::Pass);
        // A connected UDP socket is no listener.
        let o = only(
            "listen:\n  - port: 15053\n    proto: udp\n",
            &[inet(
                Proto::Udp,
                "127.0.0.1",
                15053,
                State::Established,
                &[agent()],
            )],
        );
        assert_eq!(o.status, Status::Fail);
    }

    #[test]
    fn wrong_owner_fails_naming_who_holds_it() {
        let o = only(
            "listen:\n  - port: 15021\n    owner: envoy\n",
            &[tcp("0.0.0.0", 15021, &[app()])],
        );
        assert_eq!(o.status, Status::Fail);
        assert_eq!(o.reason, "held by myapp[77] (app) (expected envoy)");
        assert_eq!(o.found[0].text(), "tcp 0.0.0.0:15021 myapp[77] (app)");
    }

    #[test]
    fn every_holder_must_be_the_owner() {
        let o = only(
            "listen:\n  - port: 15021\n    owner: envoy\n",
            &[
                tcp("0.0.0.0", 15021, &[envoy()]),
                tcp("0.0.0.0", 15021, &[envoy(), app()]),
            ],
        );
        assert_eq!(o.status, Status::Fail);
        assert!(o.reason.contains("myapp[77]"), "{}", o.reason);
        assert!(!o.reason.contains("envoy[12]"), "{}", o.reason);
    }

    #[test]
    fn a_fake_envoy_is_an_app_but_matches_by_comm() {
        let fake = holder(66, "envoy", Kind::App);
        let o = only(
            "listen:\n  - port: 15000\n    owner: envoy\n",
            &[tcp("127.0.0.1", 15000, std::slice::from_ref(&fake))],
        );
        assert_eq!(o.status, Status::Fail);
        assert!(o.reason.contains("envoy[66] (app)"), "{}", o.reason);
        // A comm name that is no kind matches the comm.
        let o = only(
            "listen:\n  - port: 9080\n    owner: myapp\n",
            &[tcp("10.0.0.5", 9080, &[app()])],
        );
        assert_eq!(o.status, Status::Pass);
        // A long name matches the 15 bytes the kernel keeps.
        let long = holder(9, "pilot-discovery", Kind::Istiod);
        let o = only(
            "listen:\n  - port: 8080\n    owner: pilot-discovery-extra\n",
            &[tcp("::", 8080, &[long])],
        );
        assert_eq!(o.status, Status::Pass);
    }

    #[test]
    fn wrong_bind_fails_with_the_address() {
        let o = only(
            "listen:\n  - port: 15000\n    bind: loopback\n",
            &[
                tcp("127.0.0.1", 15000, &[envoy()]),
                tcp("0.0.0.0", 15000, &[envoy()]),
            ],
        );
        assert_eq!(o.status, Status::Fail);
        assert_eq!(o.reason, "bound to 0.0.0.0:15000 (expected loopback only)");
        let o = only(
            "listen:\n  - port: 15001\n    bind: wildcard\n",
            &[tcp("127.0.0.1", 15001, &[envoy()])],
        );
        assert_eq!(o.status, Status::Fail);
        assert!(o.reason.contains("expected the wildcard"), "{}", o.reason);
        for (addr, ok) in [
            ("::1", true),
            ("::ffff:127.0.0.1", true),
            ("10.0.0.5", false),
        ] {
            let o = only(
                "listen:\n  - port: 15000\n    bind: loopback\n",
                &[tcp(addr, 15000, &[envoy()])],
            );
            assert_eq!(o.status == Status::Pass, ok, "{addr}: {o:#?}");
        }
        let o = only(
            "listen:\n  - port: 15001\n    bind: wildcard\n",
            &[tcp("::", 15001, &[envoy()])],
        );
        assert_eq!(o.status, Status::Pass);
    }

    #[test]
    fn an_address_selects_the_listener_on_it() {
        let sockets = [
            tcp("127.0.0.1", 15000, &[envoy()]),
            tcp("::1", 15000, &[envoy()]),
        ];
        let o = only("listen:\n  - port: 15000\n    bind: 127.0.0.1\n", &sockets);
        assert_eq!(o.status, Status::Pass);
        assert_eq!(o.found.len(), 1);
        let o = only("listen:\n  - port: 15000\n    bind: \"[::1]\"\n", &sockets);
        assert_eq!(o.status, Status::Pass);
        let o = only("listen:\n  - port: 15000\n    bind: 10.0.0.5\n", &sockets);
        assert_eq!(o.status, Status::Fail);
        assert_eq!(
            o.reason,
            "nothing listens on tcp/15000 at 10.0.0.5; found on other addresses"
        );
        assert_eq!(o.found.len(), 2);
    }

    #[test]
    fn forbidden_listener_present_fails() {
        let o = only(
            "forbid:\n  - port: 15000\n",
            &[tcp("127.0.0.1", 15000, &[envoy()])],
        );
        assert_eq!(o.status, Status::Fail);
        assert_eq!(o.reason, "listening, which is forbidden");
        assert_eq!(o.found[0].text(), "tcp 127.0.0.1:15000 envoy[12]");
        let o = only(
            "forbid:\n  - port: 15000\n",
            &[tcp("127.0.0.1", 15001, &[])],
        );
        assert_eq!(o.status, Status::Pass);
        assert!(o.found.is_empty());
    }

    #[test]
    fn forbid_bind_narrows_what_is_forbidden() {
        let yaml = "forbid:\n  - port: 15000\n    bind: wildcard\n";
        let o = only(yaml, &[tcp("127.0.0.1", 15000, &[envoy()])]);
        assert_eq!(o.status, Status::Pass, "loopback is fine");
        let o = only(yaml, &[tcp("::", 15000, &[envoy()])]);
        assert_eq!(o.status, Status::Fail);
        let o = only(
            "forbid:\n  - port: 15000\n    bind: 10.0.0.5\n",
            &[tcp("0.0.0.0", 15000, &[envoy()])],
        );
        assert_eq!(o.status, Status::Pass);
    }

    #[test]
    fn forbid_owner_narrows_what_is_forbidden() {
        let yaml = "forbid:\n  - port: 15021\n    owner: app\n";
        let o = only(yaml, &[tcp("0.0.0.0", 15021, &[envoy()])]);
        assert_eq!(o.status, Status::Pass);
        let o = only(yaml, &[tcp("0.0.0.0", 15021, &[app()])]);
        assert_eq!(o.status, Status::Fail);
        assert_eq!(o.reason, "held by app, which is forbidden");
        let o = only(yaml, &[tcp("0.0.0.0", 15021, &[])]);
        assert_eq!(o.status, Status::Unknown);
    }

    #[test]
    fn strict_lists_every_listener_not_named() {
        let yaml = "extends: istio-sidecar\nlisten:\n  - port: 9080\nstrict: true\n";
        let mut sockets = sidecar();
        let o = run(yaml, &sockets);
        let strict = o.last().unwrap();
        assert_eq!(strict.check, CheckKind::Strict);
        assert_eq!(strict.status, Status::Pass, "{strict:#?}");
        assert_eq!(strict.origin, "test.yaml");

        sockets.push(tcp("0.0.0.0", 8080, &[app()]));
        sockets.push(tcp("0.0.0.0", 8080, &[app()]));
        sockets.push(udp("0.0.0.0", 5353, &[app()]));
        sockets.push(unix(
            UnixName::Abstract("app-admin".into()),
            SockType::Stream,
            State::Listen,
            &[app()],
        ));
        // Not listeners: no extras.
        sockets.push(unix(
            UnixName::Unnamed,
            SockType::Dgram,
            State::Unconn,
            &[app()],
        ));
        sockets.push(unix(
            path("/tmp/x"),
            SockType::Stream,
            State::Unconn,
            &[app()],
        ));
        sockets.push(udp("0.0.0.0", 0, &[app()]));
        let o = run(yaml, &sockets);
        let strict = o.last().unwrap();
        assert_eq!(strict.status, Status::Fail);
        let found: Vec<String> = strict.found.iter().map(Found::text).collect();
        assert_eq!(
            found,
            [
                "tcp 0.0.0.0:8080 myapp[77] (app) (2 sockets)",
                "udp 0.0.0.0:5353 myapp[77] (app)",
                "unix @app-admin myapp[77] (app)",
            ]
        );
        assert_eq!(
            strict.reason,
            "3 listening port(s) not named by any `listen` item"
        );
        // Without strict there is nothing about extras.
        let o = run("extends: istio-sidecar\n", &sockets);
        assert!(o.iter().all(|o| o.check != CheckKind::Strict));
    }

    #[test]
    fn strict_names_by_address_when_the_item_gives_one() {
        let yaml = "listen:\n  - port: 9080\n    bind: 10.0.0.5\nstrict: true\n";
        let o = run(
            yaml,
            &[
                tcp("10.0.0.5", 9080, &[app()]),
                tcp("127.0.0.1", 9080, &[app()]),
            ],
        );
        assert_eq!(o[0].status, Status::Pass);
        assert_eq!(o[1].status, Status::Fail);
        assert_eq!(o[1].found.len(), 1);
        assert_eq!(o[1].found[0].text(), "tcp 127.0.0.1:9080 myapp[77] (app)");
    }

    #[test]
    fn unix_paths_match_by_suffix_and_abstract_names_exactly() {
        let yaml = "listen:\n  - path: /etc/istio/proxy/XDS\n    owner: pilot-agent\n";
        for (name, ok) in [
            ("etc/istio/proxy/XDS", true),
            ("/etc/istio/proxy/XDS", true),
            ("./etc/istio/proxy/XDS", true),
            ("/host/etc/istio/proxy/XDS", true),
            ("fooetc/istio/proxy/XDS", false),
            ("etc/istio/proxy/XDS2", false),
            ("etc/istio/proxy/xds", false),
        ] {
            let o = only(
                yaml,
                &[unix(
                    path(name),
                    SockType::Stream,
                    State::Listen,
                    &[agent()],
                )],
            );
            assert_eq!(o.status == Status::Pass, ok, "{name}: {o:#?}");
        }
        let o = only(
            yaml,
            &[unix(
                UnixName::Abstract("etc/istio/proxy/XDS".into()),
                SockType::Stream,
                State::Listen,
                &[agent()],
            )],
        );
        assert_eq!(o.status, Status::Fail, "an abstract name is not a path");
        let o = only(
            "listen:\n  - path: \"@envoy_domain_socket\"\n",
            &[unix(
                UnixName::Abstract("envoy_domain_socket".into()),
                SockType::Stream,
                State::Listen,
                &[envoy()],
            )],
        );
        assert_eq!(o.status, Status::Pass);
        // A bound unix datagram socket listens; a connected stream socket does not.
        let o = only(
            "listen:\n  - path: run/log.sock\n",
            &[unix(
                path("/run/log.sock"),
                SockType::Dgram,
                State::Unconn,
                &[],
            )],
        );
        assert_eq!(o.status, Status::Pass);
        let o = only(
            "listen:\n  - path: run/log.sock\n",
            &[unix(
                path("/run/log.sock"),
                SockType::Stream,
                State::Established,
                &[],
            )],
        );
        assert_eq!(o.status, Status::Fail);
        assert_eq!(o.reason, "nothing listens on unix run/log.sock");
        // Wrong owner of a unix socket.
        let o = only(
            yaml,
            &[unix(
                path("etc/istio/proxy/XDS"),
                SockType::Stream,
                State::Listen,
                &[app()],
            )],
        );
        assert_eq!(o.status, Status::Fail);
        assert_eq!(
            o.found[0].text(),
            "unix etc/istio/proxy/XDS myapp[77] (app)"
        );
    }

    #[test]
    fn hidden_owners_never_pass_an_owner_expectation() {
        let e = exp("listen:\n  - port: 15021\n    owner: envoy\n  - port: 15090\n");
        let sockets = [tcp("0.0.0.0", 15021, &[]), tcp("0.0.0.0", 15090, &[])];
        let o = evaluate(
            &e,
            &sockets,
            Visibility {
                owners_hidden: true,
            },
        );
        assert_eq!(o[0].status, Status::Unknown);
        assert!(o[0].failed());
        assert!(o[0].reason.contains("CAP_SYS_PTRACE"), "{}", o[0].reason);
        assert!(o[0].reason.contains("envoy"), "{}", o[0].reason);
        assert_eq!(
            o[0].found[0].text(),
            "tcp 0.0.0.0:15021 (no visible process)"
        );
        // No owner asked: listening is enough.
        assert_eq!(o[1].status, Status::Pass);
        // Not hidden for lack of privilege, simply not visible (another pid namespace).
        let o = evaluate(&e, &sockets, Visibility::default());
        assert_eq!(o[0].status, Status::Unknown);
        assert!(o[0].reason.contains("another pid"), "{}", o[0].reason);
        // A wrong owner seen is a failure even when other owners are hidden.
        let o = evaluate(
            &e,
            &[tcp("0.0.0.0", 15021, &[]), tcp("0.0.0.0", 15021, &[app()])],
            Visibility {
                owners_hidden: true,
            },
        );
        assert_eq!(o[0].status, Status::Fail);
        assert!(o[0].reason.contains("CAP_SYS_PTRACE"), "{}", o[0].reason);
    }

    #[test]
    fn ambient_listeners_held_by_ztunnel_pass_ambient_and_fail_sidecar() {
        let z = [ztunnel()];
        let pod = [
            tcp("::", 15001, &z),
            tcp("::", 15006, &z),
            tcp("::", 15008, &z),
            udp("127.0.0.1", 15053, &z),
            tcp("127.0.0.1", 15053, &z),
            tcp("0.0.0.0", 8080, &[app()]),
        ];
        let o = run("extends: istio-ambient\n", &pod);
        assert!(o.iter().all(|o| !o.failed()), "{:#?}", statuses(&o));
        let dns = o
            .iter()
            .filter(|o| o.expected.contains("15053"))
            .collect::<Vec<_>>();
        assert_eq!(dns.len(), 2);
        assert!(dns.iter().all(|o| o.status == Status::Pass));

        let o = run("extends: istio-sidecar\n", &pod);
        let failed: Vec<&Outcome> = o.iter().filter(|o| o.failed()).collect();
        let reason = |port: &str| {
            failed
                .iter()
                .find(|o| o.expected.contains(port))
                .map(|o| o.reason.clone())
                .unwrap_or_default()
        };
        assert_eq!(reason("tcp/15000"), "nothing listens on tcp/15000");
        assert_eq!(reason("tcp/15001"), "held by ztunnel[5] (expected envoy)");
        // The optional 15053 is present, so it is checked: wrong owner.
        assert_eq!(
            reason("udp/15053"),
            "held by ztunnel[5] (expected pilot-agent)"
        );
    }

    #[test]
    fn a_sidecar_fails_the_ambient_profile_for_its_sidecar_ports() {
        let o = run("extends: istio-ambient\n", &sidecar());
        let forbid_failed: Vec<&Outcome> = o
            .iter()
            .filter(|o| o.check == CheckKind::Forbid && o.failed())
            .collect();
        let ports: Vec<String> = forbid_failed.iter().map(|o| o.expected.clone()).collect();
        assert_eq!(
            ports,
            [
                "forbid tcp/15000",
                "forbid tcp/15020",
                "forbid tcp/15021",
                "forbid tcp/15090",
                "forbid unix etc/istio/proxy/XDS"
            ]
        );
    }

    #[test]
    fn report_counts_and_verdict() {
        let report = |yaml: &str| {
            let e = exp(yaml);
            Report {
                outcomes: evaluate(&e, &sidecar(), Visibility::default()),
                sources: vec![],
                target: "current".into(),
                netns_inode: None,
                source: Source::Netlink,
                warnings: vec![],
                hidden_owners: 0,
                strict: e.strict.is_some(),
                waited: None,
            }
        };
        let r = report("extends: istio-sidecar\n");
        assert!(r.passed());
        assert_eq!(
            r.summary(),
            Summary {
                total: 12,
                passed: 8,
                failed: 0,
                unknown: 0,
                skipped: 4
            }
        );
        let r = report("extends: istio-sidecar\nlisten:\n  - port: 1\n");
        assert!(!r.passed());
        assert_eq!(r.summary().failed, 1);
    }

    #[test]
    fn every_profile_evaluates_without_panicking_on_odd_sockets() {
        let odd = [
            tcp("0.0.0.0", 1, &[]),
            unix(
                UnixName::Path(RawText::new(b"\xff/etc/istio/proxy/XDS".to_vec())),
                SockType::Stream,
                State::Listen,
                &[],
            ),
            unix(
                UnixName::Abstract(RawText::new(Vec::new())),
                SockType::Stream,
                State::Listen,
                &[],
            ),
            unix(
                UnixName::Path(RawText::new(Vec::new())),
                SockType::Dgram,
                State::Unconn,
                &[],
            ),
        ];
        for p in crate::check::profiles::ALL {
            let e = exp(&format!("extends: {}\nstrict: true\n", p.name));
            let o = evaluate(&e, &odd, Visibility::default());
            assert!(!o.is_empty());
        }
    }
}
