//! `--watch`'s sockets closed since the last look: on a terminal, a section under the listing,
//! one line per group (`14 x tcp 10.0.0.5:* -> 10.96.0.10:15012 (istiod xds-tls),
//! envoy[5102] istio-proxy, lived 0.2-1.9 s`); in JSON Lines, one `closed` object per socket
//! and one `lost` object per look that lost events. Pure: writes to any `impl Write`.

use std::io::{self, Write};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::escape::{endpoint, escape};
use crate::model::{Endpoint, Proto, Socket, State};
use crate::render::json::{SocketDoc, socket_doc};
use crate::render::table::role_name;
use crate::watch::closed::{Closed, Group, OwnerFrom, Side};

/// The most groups the screen shows; the rest are counted.
pub const MAX_GROUPS: usize = 20;

/// Where the closed sockets come from, or why they do not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The kernel's destroy events; `buffer_note` says, when events are lost, what would
    /// give them a larger buffer; `tracing_off`, when set, why connections no look saw have
    /// no owner (the connection tracing could not be loaded).
    Events {
        buffer_note: Option<String>,
        tracing_off: Option<String>,
    },
    /// Not watched: polling only, for this reason.
    Off(String),
}

/// What the watch loop hands over after a look.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section<'a> {
    pub source: &'a Source,
    pub closed: &'a [Closed],
    pub groups: &'a [Group<'a>],
    /// Events lost since the last look, and since the watch started.
    pub lost: u64,
    pub lost_total: u64,
}

/// One `closed` line of `--watch` JSON Lines.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClosedEvent {
    /// `closed`.
    pub event: String,
    /// As the last look saw it (its state then), or as the destroy event gives it (state
    /// `CLOSE` for TCP, no inode, no uid).
    pub socket: SocketDoc,
    /// Milliseconds since the Unix epoch at which the event was read.
    pub closed_at_ms: u64,
    /// When the first look that showed it was taken; null when none did.
    pub first_seen_ms: Option<u64>,
    /// When the connection tracing saw its process connect it; null when it did not.
    pub created_ms: Option<u64>,
    /// From `created_ms`, else at least this long (from `first_seen_ms`); null when unknown.
    pub lived_ms: Option<u64>,
    /// Where `socket.processes` come from: `look` (a look saw it held), `listener` (no look
    /// saw it; accepted on a listener held by them), `created` (no look saw it; the connection
    /// tracing saw this process connect it: pid, comm and cgroup only, fd -1) or `unseen`
    /// (closed before it was seen).
    pub owner_from: String,
    /// The kernel disconnected the socket before its end (a failed blocking connect, or an
    /// abortive close with SO_LINGER 0) and cleared its remote port (`remote.port` 0); only
    /// for sockets no look saw.
    pub port_cleared: bool,
}

/// One `lost` line: events the kernel or podports dropped since the last look.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LostEvent {
    /// `lost`.
    pub event: String,
    pub lost: u64,
    pub lost_total: u64,
    pub at_ms: u64,
}

fn ms(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The socket as a closed event shows it: TCP sockets no look saw are `CLOSE`.
fn doc(c: &Closed) -> SocketDoc {
    let mut d = socket_doc(&c.socket);
    if c.owner != OwnerFrom::Look && c.socket.proto == Proto::Tcp {
        d.state = "CLOSE".to_string();
    }
    d
}

/// One JSON line per closed socket, then a `lost` line when events were lost.
pub fn write_events(out: &mut impl Write, s: &Section, now: SystemTime) -> io::Result<()> {
    for c in s.closed {
        let line = ClosedEvent {
            event: "closed".into(),
            socket: doc(c),
            closed_at_ms: ms(c.closed_at),
            first_seen_ms: c.first_seen.map(ms),
            created_ms: c.created.map(ms),
            lived_ms: c.lived().map(|d| d.as_millis() as u64),
            owner_from: c.owner.as_str().into(),
            port_cleared: c.port_cleared,
        };
        serde_json::to_writer(&mut *out, &line).map_err(io::Error::from)?;
        writeln!(out)?;
    }
    if s.lost > 0 {
        let line = LostEvent {
            event: "lost".into(),
            lost: s.lost,
            lost_total: s.lost_total,
            at_ms: ms(now),
        };
        serde_json::to_writer(&mut *out, &line).map_err(io::Error::from)?;
        writeln!(out)?;
    }
    Ok(())
}

/// The section under the listing.
pub fn write_section(out: &mut impl Write, s: &Section) -> io::Result<()> {
    let why = match s.source {
        Source::Off(why) => why,
        Source::Events {
            buffer_note,
            tracing_off,
        } => {
            let lost = match (s.lost, s.lost_total) {
                (0, 0) => String::new(),
                (0, t) => format!("; {t} events lost since the start"),
                (n, t) => format!(
                    "; {n} events LOST (the kernel's buffer overflowed), {t} since the start"
                ),
            };
            writeln!(
                out,
                " closed since the last look: {} tcp/udp socket(s){lost}",
                s.closed.len()
            )?;
            if let Some(note) = buffer_note.as_ref().filter(|_| s.lost_total > 0) {
                writeln!(out, "  ({note})")?;
            }
            let unseen = s.closed.iter().any(|c| c.owner == OwnerFrom::Unseen);
            if let Some(why) = tracing_off.as_ref().filter(|_| unseen) {
                writeln!(
                    out,
                    "  (owners of connections no look saw are unknown: {})",
                    escape(why.as_bytes())
                )?;
            }
            for g in s.groups.iter().take(MAX_GROUPS) {
                writeln!(out, "  {}", line(g))?;
            }
            if s.groups.len() > MAX_GROUPS {
                let rest: usize = s
                    .groups
                    .iter()
                    .skip(MAX_GROUPS)
                    .map(|g| g.members.len())
                    .sum();
                writeln!(
                    out,
                    "  ... {} more group(s), {rest} socket(s): `-o json` lists each",
                    s.groups.len() - MAX_GROUPS
                )?;
            }
            return Ok(());
        }
    };
    writeln!(out, " closed since the last look: not watched ({why})")
}

/// `14 x tcp 10.0.0.5:* -> 10.96.0.10:15012 (istiod xds-tls), envoy[5102] istio-proxy, lived
/// 0.2-1.9 s`.
pub fn line(g: &Group) -> String {
    let Some(c) = g.example() else {
        return String::new();
    };
    let s = &c.socket;
    let ends = match &g.side {
        Side::Client { local, remote } => {
            let local = endpoint(&Endpoint::Inet {
                addr: *local,
                port: 0,
            });
            let remote = if c.port_cleared {
                let addr = endpoint(remote);
                format!(
                    "{}? (refused or reset: the kernel cleared the port)",
                    addr.trim_end_matches('*')
                )
            } else {
                endpoint(remote)
            };
            let role = s
                .peer_role
                .as_ref()
                .map(|r| format!(" ({})", role_name(r)))
                .unwrap_or_default();
            format!("{local} -> {remote}{role}")
        }
        Side::Served { local, remote } => {
            let role = s
                .role
                .as_ref()
                .map(|r| format!(" ({})", role_name(r)))
                .unwrap_or_default();
            let from = remote
                .map(|a| {
                    let peer = endpoint(&Endpoint::Inet { addr: a, port: 0 });
                    let peer_role = s
                        .peer_role
                        .as_ref()
                        .map(|r| format!(" ({})", role_name(r)))
                        .unwrap_or_default();
                    format!(" <- {peer}{peer_role}")
                })
                .unwrap_or_default();
            format!("{}{role}{from}", endpoint(local))
        }
    };
    let state = match (c.owner, s.state) {
        (OwnerFrom::Look, State::Established) | (OwnerFrom::Look, State::Unconn) => String::new(),
        (OwnerFrom::Look, st) => format!(" last {st}"),
        _ => String::new(),
    };
    let mut text = format!(
        "{} x {} {ends}{state}, {}",
        g.members.len(),
        g.proto,
        owner(s, c.owner)
    );
    if let Some((lo, hi)) = g.lived() {
        text.push_str(&format!(", lived {}", lifetime(lo, hi)));
    }
    text
}

/// `envoy[5102] istio-proxy`; for an accepted connection no look saw, the listener's holders;
/// `closed before it was seen` when nothing is known.
fn owner(s: &Socket, from: OwnerFrom) -> String {
    let mut seen: Vec<i32> = Vec::new();
    let mut parts: Vec<String> = Vec::new();
    for h in &s.holders {
        if seen.contains(&h.process.pid) {
            continue;
        }
        seen.push(h.process.pid);
        let mut p = format!("{}[{}]", escape(h.process.comm.as_bytes()), h.process.pid);
        if let Some(c) = &h.container {
            p.push(' ');
            p.push_str(&escape(c.name.as_deref().unwrap_or("?").as_bytes()));
        }
        parts.push(p);
    }
    match (from, parts.is_empty(), &s.cgroup_owner) {
        (OwnerFrom::Unseen, _, _) => "closed before it was seen".into(),
        (OwnerFrom::Listener, false, _) => format!("accepted by {}", parts.join(" ")),
        (_, false, _) => parts.join(" "),
        (_, true, Some(c)) => format!(
            "- (cgroup of {}/{})",
            escape(c.pod.to_string().as_bytes()),
            escape(c.name.as_deref().unwrap_or("?").as_bytes())
        ),
        (_, true, None) => "no owner seen".into(),
    }
}

/// `0.2 s`, `0.2-1.9 s`, `20 ms`.
fn lifetime(lo: Duration, hi: Duration) -> String {
    let secs = |d: Duration| format!("{:.1}", d.as_secs_f64());
    if hi < Duration::from_millis(100) {
        if lo == hi {
            format!("{} ms", lo.as_millis())
        } else {
            format!("{}-{} ms", lo.as_millis(), hi.as_millis())
        }
    } else if secs(lo) == secs(hi) {
        format!("{} s", secs(lo))
    } else {
        format!("{}-{} s", secs(lo), secs(hi))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::model::{
        ContainerRef, Family, Holder, Kind, PodRef, ProcessInfo, RawText, Role, SockType,
    };
    use crate::watch::closed::group;

    fn ep(addr: &str, port: u16) -> Endpoint {
        Endpoint::Inet {
            addr: addr.parse().unwrap(),
            port,
        }
    }

    fn at(ms: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_millis(1_000_000 + ms)
    }

    fn xds(port: u16, first: Option<u64>, closed: u64) -> Closed {
        let mut s = Socket::new(
            Proto::Tcp,
            Family::Ipv4,
            SockType::Stream,
            State::Established,
            ep("10.0.0.5", port),
            ep("10.96.0.10", 15012),
            9,
        );
        s.peer_role = Some(Box::new(Role {
            mesh: "istio".into(),
            component: Kind::Istiod,
            name: "xds-tls".into(),
            description: String::new(),
            source: String::new(),
            versions: String::new(),
        }));
        s.holders.push(Holder {
            process: Arc::new(ProcessInfo {
                pid: 5102,
                comm: RawText::from("envoy\x1b"),
                ..Default::default()
            }),
            fd: 3,
            kind: Kind::Envoy,
            basis: "t".into(),
            container: Some(Arc::new(ContainerRef {
                pod: PodRef {
                    namespace: Some("default".into()),
                    name: Some("p".into()),
                    uid: "u".into(),
                },
                id: None,
                name: Some("istio-proxy".into()),
            })),
        });
        Closed {
            socket: s,
            closed_at: at(closed),
            first_seen: first.map(at),
            created: None,
            owner: OwnerFrom::Look,
            port_cleared: false,
        }
    }

    #[test]
    fn a_group_line_reads_as_the_issue_shows_it_escaped() {
        let closed = vec![xds(41000, Some(0), 200), xds(41001, Some(0), 1900)];
        let groups = group(&closed, &[]);
        assert_eq!(
            line(&groups[0]),
            "2 x tcp 10.0.0.5:* -> 10.96.0.10:15012 (istiod xds-tls), envoy\\x1b[5102] \
             istio-proxy, lived 0.2-1.9 s"
        );
    }

    #[test]
    fn unseen_and_failed_sockets_say_what_is_not_known() {
        let mut c = xds(41000, None, 10);
        c.owner = OwnerFrom::Unseen;
        c.socket.holders.clear();
        c.socket.remote = ep("10.96.0.10", 0);
        c.port_cleared = true;
        let closed = vec![c];
        let groups = group(&closed, &[]);
        assert_eq!(
            line(&groups[0]),
            "1 x tcp 10.0.0.5:* -> 10.96.0.10:? (refused or reset: the kernel cleared the \
             port) (istiod xds-tls), closed before it was seen"
        );
    }

    /// A connection the tracing saw connect reads as one a look saw, its lifetime from the
    /// connect; when the tracing is off, the section says why an unseen one has no owner.
    #[test]
    fn created_connections_have_owner_and_lifetime_and_tracing_off_is_said() {
        let mut c = xds(41000, None, 20);
        c.owner = OwnerFrom::Created;
        c.created = Some(at(0));
        let mut unseen = xds(41001, None, 30);
        unseen.owner = OwnerFrom::Unseen;
        unseen.socket.holders.clear();
        let closed = vec![c, unseen];
        let groups = group(&closed, &[]);
        assert!(
            line(&groups[0]).ends_with("envoy\\x1b[5102] istio-proxy, lived 20 ms"),
            "{}",
            line(&groups[0])
        );
        let source = Source::Events {
            buffer_note: None,
            tracing_off: Some("cannot trace connections: EPERM".into()),
        };
        let mut out = Vec::new();
        let section = Section {
            source: &source,
            closed: &closed,
            groups: &groups,
            lost: 0,
            lost_total: 0,
        };
        write_section(&mut out, &section).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains(
                "  (owners of connections no look saw are unknown: cannot trace connections: \
                 EPERM)"
            ),
            "{text}"
        );
        let mut out = Vec::new();
        write_events(&mut out, &section, at(100)).unwrap();
        let first: ClosedEvent =
            serde_json::from_str(String::from_utf8(out).unwrap().lines().next().unwrap()).unwrap();
        assert_eq!(first.owner_from, "created");
        assert_eq!(first.socket.state, "CLOSE");
        assert_eq!(
            (first.created_ms, first.lived_ms),
            (Some(1_000_000), Some(20))
        );
    }

    #[test]
    fn the_section_counts_losses_and_says_when_events_are_off() {
        let closed = vec![xds(41000, Some(0), 20)];
        let groups = group(&closed, &[]);
        let mut out = Vec::new();
        let source = Source::Events {
            buffer_note: None,
            tracing_off: None,
        };
        write_section(
            &mut out,
            &Section {
                source: &source,
                closed: &closed,
                groups: &groups,
                lost: 3,
                lost_total: 5,
            },
        )
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with(
                " closed since the last look: 1 tcp/udp socket(s); 3 events LOST (the \
                 kernel's buffer overflowed), 5 since the start\n  1 x tcp"
            ),
            "{text}"
        );
        assert!(text.contains("lived 20 ms"), "{text}");

        let off = Source::Off("no way in".into());
        let mut out = Vec::new();
        write_section(
            &mut out,
            &Section {
                source: &off,
                closed: &[],
                groups: &[],
                lost: 0,
                lost_total: 0,
            },
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            " closed since the last look: not watched (no way in)\n"
        );
    }

    #[test]
    fn json_lines_read_back_with_times_owner_and_loss() {
        let mut unseen = xds(41001, None, 30);
        unseen.owner = OwnerFrom::Unseen;
        unseen.socket.state = State::Unconn;
        let closed = vec![xds(41000, Some(0), 20), unseen];
        let source = Source::Events {
            buffer_note: None,
            tracing_off: None,
        };
        let mut out = Vec::new();
        let s = Section {
            source: &source,
            closed: &closed,
            groups: &[],
            lost: 2,
            lost_total: 2,
        };
        write_events(&mut out, &s, at(40)).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        let first: ClosedEvent = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(first.event, "closed");
        assert_eq!(first.socket.state, "ESTABLISHED");
        assert_eq!(first.socket.processes[0].pid, 5102);
        assert_eq!(first.lived_ms, Some(20));
        assert_eq!(first.closed_at_ms, 1_000_020);
        assert_eq!(first.owner_from, "look");
        let second: ClosedEvent = serde_json::from_str(lines[1]).unwrap();
        assert_eq!(second.socket.state, "CLOSE");
        assert_eq!((second.first_seen_ms, second.lived_ms), (None, None));
        assert_eq!(second.owner_from, "unseen");
        let lost: LostEvent = serde_json::from_str(lines[2]).unwrap();
        assert_eq!((lost.event.as_str(), lost.lost), ("lost", 2));
    }
}
