//! The rules of `check`: each `listen`, `forbid` and `strict` expectation against the
//! listeners of one inspection -> an `Outcome`. Pure; never says pass when an owner it needs
//! to see is hidden (that is unknown).

use std::net::IpAddr;

use super::{CheckKind, Found, Outcome, Status, Visibility, Who};
use crate::catalog::{Bind, suffix_on_boundary};
use crate::check::expect::{
    BindSpec, Dropped, Expectations, Forbid, Listen, Origin, Owner, OwnerNetns, Removed, Target,
    UnixKey,
};
use crate::escape::endpoint;
use crate::model::{Endpoint, Proto, SockType, Socket, State, UnixName};

/// Evaluates every expectation: `listen` items, then `forbid` items, then what a file
/// dropped (reported, never checked), then `strict`.
pub fn evaluate(exp: &Expectations, sockets: &[Socket], vis: Visibility) -> Vec<Outcome> {
    let listeners: Vec<&Socket> = sockets.iter().filter(|s| is_listener(s)).collect();
    let mut out: Vec<Outcome> = exp
        .listen
        .iter()
        .map(|l| eval_listen(l, &listeners, vis))
        .collect();
    out.extend(exp.forbid.iter().map(|f| {
        let mut o = eval_forbid(f, &listeners, vis);
        // A file requiring what its profile forbids: both hold, so say how to allow it.
        if o.failed()
            && let Some(l) = exp
                .listen
                .iter()
                .find(|l| l.target.same(&f.target) && l.origin.source != f.origin.source)
        {
            o.reason.push_str(&format!(
                " ({} requires it; to allow it, drop the forbid: `drop: [{}]`)",
                l.origin.at(),
                drop_item(&f.target)
            ));
        }
        o
    }));
    out.extend(exp.dropped.iter().map(dropped));
    if let Some(origin) = &exp.strict {
        let named: Vec<&Listen> = exp.named().collect();
        out.push(eval_strict(&named, origin, &listeners));
    }
    out
}

/// A socket something can connect or send to: TCP LISTEN, bound UDP, a unix listener or a
/// bound unix datagram socket, also once a client connect()ed to it (the kernel then shows it
/// ESTABLISHED, with no peer of its own, and it still receives). Port 0 and unnamed unix
/// sockets are no listeners.
pub fn is_listener(s: &Socket) -> bool {
    let state = match s.proto {
        Proto::Tcp => s.state == State::Listen,
        Proto::Udp => s.state == State::Unconn,
        Proto::Unix => {
            s.state == State::Listen
                || (s.state == State::Unconn && s.sock_type == SockType::Dgram)
                || s.is_connected_to_dgram()
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
    // With no wildcard listener at all, "bound to ..." above says it all.
    let any_wildcard = selected
        .iter()
        .any(|s| addr_of(s).is_some_and(|a| a.to_canonical().is_unspecified()));
    if l.bind == BindSpec::Class(Bind::Wildcard) && any_wildcard {
        match reach(&selected, vis, l.target.port().unwrap_or(0)) {
            Reach::Yes => {}
            Reach::No(why) => problems.push(why),
            Reach::Unknown(why) => unknown = Some(why),
        }
    }
    if let Some(owner) = &l.owner {
        let wrong = others(&selected, owner);
        let unseen = selected.iter().filter(|s| s.holders.is_empty()).count();
        if !wrong.is_empty() {
            problems.push(format!("held by {} (expected {owner})", who_list(&wrong)));
        }
        if let Some(want) = l.owner_netns {
            let (misplaced, unsure) = netns_misplaced(&selected, want, vis.netns);
            if !misplaced.is_empty() {
                let expected = match want {
                    OwnerNetns::Other => {
                        "from the pod's own network namespace (expected a process in another: \
                         ambient ztunnel holds the pod's listeners from its own)"
                    }
                    OwnerNetns::Own => {
                        "from another network namespace (expected a process in the pod's own)"
                    }
                };
                problems.push(format!("held by {} {expected}", who_list(&misplaced)));
            } else if unsure > 0 && unknown.is_none() {
                unknown = Some(format!(
                    "{unsure} holder(s) of the port have no readable network namespace, so \
                     whether they hold it from the pod's own (owner_netns={}) is unknown",
                    want.as_str()
                ));
            }
        }
        if unseen > 0 {
            let why = owner_unknown(vis, owner, unseen);
            unknown = Some(match unknown {
                Some(before) => format!("{before}; {why}"),
                None => why,
            });
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

/// Whether clients of every family the pod has reach a wildcard listener of the port: IPv4
/// ones need `0.0.0.0` or a dual-stack `[::]` (IPV6_V6ONLY off), IPv6 ones a `[::]`.
enum Reach {
    Yes,
    No(String),
    Unknown(String),
}

fn reach(selected: &[&Socket], vis: Visibility, port: u16) -> Reach {
    let (need4, need6) = vis.families.needed();
    let mut v4 = false;
    let mut v4_maybe = false;
    let mut v6 = false;
    for s in selected {
        match addr_of(s) {
            Some(IpAddr::V4(a)) if a.is_unspecified() => v4 = true,
            Some(IpAddr::V6(a)) if a.is_unspecified() => {
                v6 = true;
                match s.v6only {
                    Some(false) => v4 = true,
                    Some(true) => {}
                    None => v4_maybe = true,
                }
            }
            Some(IpAddr::V6(a)) if a.to_canonical().is_unspecified() => v4 = true,
            _ => {}
        }
    }
    let pod = format!("the pod's addresses are {}", vis.families);
    if need4 && !v4 {
        if v4_maybe {
            return Reach::Unknown(format!(
                "whether IPv4 clients reach [::]:{port} is unknown: the sockets were read from                  /proc/net text, which does not say whether it is IPv6-only (IPV6_V6ONLY);                  {pod}"
            ));
        }
        let only = if v6 {
            format!("[::]:{port} is IPv6-only (IPV6_V6ONLY) and nothing listens on 0.0.0.0:{port}")
        } else {
            format!("nothing listens on 0.0.0.0:{port} or a dual-stack [::]:{port}")
        };
        return Reach::No(format!(
            "IPv4 clients cannot reach it: {only} ({pod}; expected 0.0.0.0 or a dual-stack [::])"
        ));
    }
    if need6 && !v6 {
        return Reach::No(format!(
            "IPv6 clients cannot reach it: nothing listens on [::]:{port} ({pod}; expected [::] \
             as well)"
        ));
    }
    Reach::Yes
}

/// Holders of `sockets` in the wrong network namespace for `want` (once each), and how many
/// holders' namespaces are unknown.
fn netns_misplaced(
    sockets: &[&Socket],
    want: OwnerNetns,
    target: Option<u64>,
) -> (Vec<Who>, usize) {
    let mut wrong: Vec<Who> = Vec::new();
    let mut unsure = 0;
    for h in sockets.iter().flat_map(|s| &s.holders) {
        match (h.process.netns_inode, target) {
            (Some(n), Some(t)) => {
                let inside = n == t;
                let bad = match want {
                    OwnerNetns::Other => inside,
                    OwnerNetns::Own => !inside,
                };
                if bad && !wrong.iter().any(|w| w.pid == h.process.pid) {
                    wrong.push(who(h));
                }
            }
            _ => unsure += 1,
        }
    }
    (wrong, unsure)
}

/// `{port: 15020}`, `{port: 15053, proto: udp}`, `{path: etc/istio/proxy/XDS}`.
fn drop_item(t: &Target) -> String {
    match t {
        Target::Inet { proto, port } if *proto == Proto::Tcp => format!("{{port: {port}}}"),
        Target::Inet { proto, port } => format!("{{port: {port}, proto: {proto}}}"),
        Target::Unix { path } => format!("{{path: {path}}}"),
    }
}

/// A profile item a file dropped: reported with who dropped it, never checked.
fn dropped(d: &Dropped) -> Outcome {
    let (check, expected, name, origin) = match &d.item {
        Removed::Listen(l) => (CheckKind::Listen, l.describe(), &l.name, &l.origin),
        Removed::Forbid(f) => (CheckKind::Forbid, f.describe(), &f.name, &f.origin),
    };
    let mut o = outcome(check, expected, name, origin);
    o.status = Status::Dropped;
    o.reason = format!("dropped by {}: not checked", d.by.at());
    o.dropped_by = Some(d.by.clone());
    if let Removed::Listen(l) = &d.item {
        o.target = Some(l.target.clone());
        o.owner = l.owner.clone();
        o.bind = Some(l.bind);
        o.optional = l.optional;
    }
    if let Removed::Forbid(f) = &d.item {
        o.target = Some(f.target.clone());
        o.owner = f.owner.clone();
        o.bind = Some(f.bind);
    }
    o
}

fn eval_strict(listen: &[&Listen], origin: &str, listeners: &[&Socket]) -> Outcome {
    let mut o = outcome(
        CheckKind::Strict,
        "strict: no listener beyond the `listen` items".into(),
        &None,
        &Origin::new(origin),
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
            "{} listening {} not named by any `listen` item",
            o.found.len(),
            if o.found.len() == 1 { "port" } else { "ports" }
        );
    }
    o
}

fn outcome(check: CheckKind, expected: String, name: &Option<String>, origin: &Origin) -> Outcome {
    Outcome {
        check,
        name: name.clone(),
        expected,
        origin: origin.clone(),
        dropped_by: None,
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
             fds could not be read, so whether {owner} holds them is unknown (the `owners \
             hidden` warning names their uids and what would show them here)"
        )
    } else {
        format!(
            "owner not visible: no process podports can see holds {unseen} listener(s), so \
             whether {owner} holds them is unknown: every visible process's fds were read, so \
             unless podports runs in the node's pid namespace the holder lives outside this pid \
             namespace (target its container, give the pod shareProcessNamespace, or run \
             podports on the node)"
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
