//! `--watch`: what changed in a namespace between two looks. PURE: two listings in, the sockets
//! that appeared and those that disappeared out, in a stable order; never reads the system.
//! `command::watch` does the looking again (and the waiting); `render::watch` shows the
//! changes.

pub mod closed;
pub mod events;

use std::collections::HashMap;
use std::time::Duration;

use crate::model::{Endpoint, Proto, Socket, State};

/// What identifies a socket from one look to the next: protocol, state, both ends and inode.
/// A connection that changes state (SYN_SENT, then ESTABLISHED) is one socket that
/// disappeared and one that appeared; TIME_WAIT sockets, which all have inode 0, are told
/// apart by their ends. Owners, queues and roles are not part of it: a socket whose backlog
/// fills up is still the same socket.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub proto: Proto,
    pub state: State,
    pub local: Endpoint,
    pub remote: Endpoint,
    pub inode: u64,
}

impl Key {
    pub fn of(s: &Socket) -> Key {
        Key {
            proto: s.proto,
            state: s.state,
            local: s.local.clone(),
            remote: s.remote.clone(),
            inode: s.inode,
        }
    }
}

/// Whether a socket came or went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Appeared,
    Disappeared,
}

impl Event {
    /// The name in JSON Lines (`"appeared"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Event::Appeared => "appeared",
            Event::Disappeared => "disappeared",
        }
    }
}

/// The changes between two looks. Each list keeps the order of the listing it comes from
/// (listeners first, then by protocol and port: `inspect` sorts them), so the same two
/// listings always give the same output.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Diff<'a> {
    /// In the new listing and not in the old one.
    pub appeared: Vec<&'a Socket>,
    /// In the old listing and not in the new one.
    pub disappeared: Vec<&'a Socket>,
}

impl Diff<'_> {
    pub fn is_empty(&self) -> bool {
        self.appeared.is_empty() && self.disappeared.is_empty()
    }

    /// Every change, the disappeared first (a listener that closed, then the one that
    /// replaced it), each with its event.
    pub fn changes(&self) -> impl Iterator<Item = (Event, &Socket)> + '_ {
        self.disappeared
            .iter()
            .map(|s| (Event::Disappeared, *s))
            .chain(self.appeared.iter().map(|s| (Event::Appeared, *s)))
    }
}

/// The sockets of `after` that `before` does not have, and those of `before` that `after`
/// does not have, compared by [`Key`]. Keys are counted, not just seen: two sockets with one
/// key (which the kernel never reports, but a reader must not assume) are two sockets.
pub fn diff<'a>(before: &'a [Socket], after: &'a [Socket]) -> Diff<'a> {
    Diff {
        appeared: missing_from(after, before),
        disappeared: missing_from(before, after),
    }
}

/// The sockets of `from` that `other` does not account for, in `from`'s order.
fn missing_from<'a>(from: &'a [Socket], other: &[Socket]) -> Vec<&'a Socket> {
    let mut left: HashMap<Key, usize> = HashMap::new();
    for s in other {
        *left.entry(Key::of(s)).or_default() += 1;
    }
    from.iter()
        .filter(|s| match left.get_mut(&Key::of(s)) {
            Some(n) if *n > 0 => {
                *n -= 1;
                false
            }
            _ => true,
        })
        .collect()
}

/// The shortest interval `--watch` takes: faster than this is a busy loop over `/proc`.
pub const MIN_INTERVAL: Duration = Duration::from_millis(100);

/// The interval when `--watch` is given without one, as `watch(1)`.
pub const DEFAULT_INTERVAL: &str = "2";

/// Parses an interval as `watch -n` takes it, in seconds (`2`, `0.5`), or with a unit as
/// `check --wait` takes it (`500ms`, `2s`, `1m`). At least 100ms, at most 24h. Also for
/// `probe --timeout`. Never panics, whatever the text.
pub fn parse_interval(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let d = if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        t.parse::<f64>()
            .ok()
            .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
            .ok_or_else(|| {
                format!(
                    "`{}`: not a number of seconds; write 2, 0.5 or 500ms",
                    text.escape_debug()
                )
            })?
    } else {
        crate::duration::parse(t)?
    };
    if d < MIN_INTERVAL {
        return Err(format!(
            "`{}`: shorter than 100ms; podports reads all of /proc each time",
            text.escape_debug()
        ));
    }
    if d > Duration::from_secs(24 * 3600) {
        return Err(format!("`{}`: longer than 24h", text.escape_debug()));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;
    use crate::model::{Family, SockType};

    fn tcp(state: State, local: &str, lport: u16, remote: &str, rport: u16, inode: u64) -> Socket {
        let ip = |a: &str| a.parse::<IpAddr>().unwrap();
        Socket::new(
            Proto::Tcp,
            Family::Ipv4,
            SockType::Stream,
            state,
            Endpoint::Inet {
                addr: ip(local),
                port: lport,
            },
            Endpoint::Inet {
                addr: ip(remote),
                port: rport,
            },
            inode,
        )
    }

    fn ports(list: &[&Socket]) -> Vec<(u16, State)> {
        list.iter()
            .map(|s| (s.local.port().unwrap(), s.state))
            .collect()
    }

    #[test]
    fn a_listener_that_comes_up_appears() {
        let before = vec![tcp(State::Listen, "127.0.0.1", 15000, "0.0.0.0", 0, 10)];
        let mut after = before.clone();
        after.push(tcp(State::Listen, "0.0.0.0", 15021, "0.0.0.0", 0, 11));
        let d = diff(&before, &after);
        assert_eq!(ports(&d.appeared), vec![(15021, State::Listen)]);
        assert!(d.disappeared.is_empty());
    }

    #[test]
    fn a_connection_that_closes_disappears_and_its_time_wait_appears() {
        let before = vec![
            tcp(State::Listen, "0.0.0.0", 9080, "0.0.0.0", 0, 1),
            tcp(State::Established, "10.0.0.5", 9080, "10.0.0.9", 40000, 2),
        ];
        let after = vec![
            tcp(State::Listen, "0.0.0.0", 9080, "0.0.0.0", 0, 1),
            tcp(State::TimeWait, "10.0.0.5", 9080, "10.0.0.9", 40000, 0),
        ];
        let d = diff(&before, &after);
        assert_eq!(ports(&d.disappeared), vec![(9080, State::Established)]);
        assert_eq!(ports(&d.appeared), vec![(9080, State::TimeWait)]);
        let events: Vec<Event> = d.changes().map(|(e, _)| e).collect();
        assert_eq!(events, vec![Event::Disappeared, Event::Appeared]);
    }

    #[test]
    fn same_listings_differ_in_nothing_whatever_the_owners_and_queues() {
        let before = vec![tcp(State::Listen, "0.0.0.0", 15001, "0.0.0.0", 0, 5)];
        let mut after = before.clone();
        after[0].recv_q = 7;
        after[0].warnings.push("something".into());
        assert!(diff(&before, &after).is_empty());
        assert!(diff(&[], &[]).is_empty());
    }

    #[test]
    fn a_reopened_listener_is_a_new_socket() {
        // Same address, new inode: the process restarted.
        let before = vec![tcp(State::Listen, "0.0.0.0", 15021, "0.0.0.0", 0, 5)];
        let after = vec![tcp(State::Listen, "0.0.0.0", 15021, "0.0.0.0", 0, 6)];
        let d = diff(&before, &after);
        assert_eq!(d.appeared.len(), 1);
        assert_eq!(d.appeared[0].inode, 6);
        assert_eq!(d.disappeared[0].inode, 5);
    }

    #[test]
    fn reuseport_listeners_are_counted_one_by_one() {
        // Two Envoy workers' sockets; one goes away.
        let a = tcp(State::Listen, "0.0.0.0", 15001, "0.0.0.0", 0, 0);
        let before = vec![a.clone(), a.clone()];
        let after = vec![a];
        let d = diff(&before, &after);
        assert_eq!(d.disappeared.len(), 1);
        assert!(d.appeared.is_empty());
    }

    #[test]
    fn order_follows_the_listings() {
        let before = vec![
            tcp(State::Listen, "0.0.0.0", 1, "0.0.0.0", 0, 1),
            tcp(State::Listen, "0.0.0.0", 2, "0.0.0.0", 0, 2),
            tcp(State::Listen, "0.0.0.0", 3, "0.0.0.0", 0, 3),
        ];
        let after = vec![
            tcp(State::Listen, "0.0.0.0", 4, "0.0.0.0", 0, 4),
            tcp(State::Listen, "0.0.0.0", 5, "0.0.0.0", 0, 5),
        ];
        let d = diff(&before, &after);
        assert_eq!(
            ports(&d.disappeared),
            vec![(1, State::Listen), (2, State::Listen), (3, State::Listen)]
        );
        assert_eq!(
            ports(&d.appeared),
            vec![(4, State::Listen), (5, State::Listen)]
        );
    }

    #[test]
    fn unix_sockets_are_keyed_by_name_and_peer() {
        use crate::model::{RawText, UnixName};
        let unix = |inode, peer| {
            Socket::new(
                Proto::Unix,
                Family::Unix,
                SockType::Stream,
                State::Established,
                Endpoint::UnixLocal(UnixName::Path(RawText::from("etc/istio/proxy/XDS"))),
                Endpoint::UnixPeer {
                    peer_inode: Some(peer),
                },
                inode,
            )
        };
        let (before, after) = ([unix(1, 2)], [unix(1, 3)]);
        let d = diff(&before, &after);
        assert_eq!(d.appeared.len(), 1);
        assert_eq!(d.disappeared.len(), 1);
    }

    #[test]
    fn intervals_as_watch_and_check_take_them() {
        assert_eq!(parse_interval("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_interval("0.2"), Ok(Duration::from_millis(200)));
        assert_eq!(parse_interval("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_interval("1m"), Ok(Duration::from_secs(60)));
        for bad in [
            "", "0", "0.01", "-1", "1.2.3", ".", "abc", "2x", "1e9", "90000", "NaN", "inf",
        ] {
            assert!(parse_interval(bad).is_err(), "{bad:?} accepted");
        }
        assert!(parse_interval("99999999999999999999999").is_err());
    }
}
