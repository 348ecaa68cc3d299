//! `--watch`'s "closed since the last look": the kernel's destroy events matched with what the
//! looks saw. PURE: looks and events in, closed sockets (with their owner, roles and lifetime
//! when known) and their grouping out; never reads the system, never guesses an owner.
//!
//! A destroy event names a socket by its cookie and 4-tuple only: no inode, no uid, no cgroup
//! (fixtures/sock_diag/destroy.txt). So its owner is the one a look saw holding that cookie
//! (and the container placement gave it, which stays true after the process is gone); for an
//! accepted connection no look saw, the holders of the listener it came in on; for a
//! connection no look saw, the process the connection tracing (`parse::sock_create`) saw
//! connect it, with its cgroup's container; else nobody.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::annotate;
use crate::catalog::Catalog;
use crate::classify;
use crate::model::{ContainerRef, Endpoint, Holder, ProcessInfo, Proto, RawText, Socket, State};
use crate::request::Filters;

/// How many looks a socket no look shows any more is remembered: its destroy event comes from
/// a kernel workqueue and may be read after the look that no longer saw it.
const KEEP_LOOKS: u64 = 3;

/// Where a closed socket's owner comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OwnerFrom {
    /// A look saw the socket itself held by these processes (or created by this cgroup).
    Look,
    /// No look saw it; it was accepted on a listener a look saw held by these processes.
    Listener,
    /// No look saw it; the connection tracing saw this process connect it.
    Created,
    /// No look saw it: "closed before it was seen".
    Unseen,
}

impl OwnerFrom {
    /// The name in JSON (`"look"`).
    pub fn as_str(self) -> &'static str {
        match self {
            OwnerFrom::Look => "look",
            OwnerFrom::Listener => "listener",
            OwnerFrom::Created => "created",
            OwnerFrom::Unseen => "unseen",
        }
    }
}

/// One socket the kernel destroyed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closed {
    /// As the last look saw it (state, holders, container, roles), or as the event gives it
    /// (annotated with the catalog; holders from the listener when `owner` says so).
    pub socket: Socket,
    pub closed_at: SystemTime,
    /// The look that first showed it, when one did.
    pub first_seen: Option<SystemTime>,
    /// When the connection tracing saw it connect, when it did.
    pub created: Option<SystemTime>,
    pub owner: OwnerFrom,
    /// No look saw it, and the kernel disconnected it before its end, clearing the remote
    /// port (a blocking connect that failed, refused or unreachable; or an abortive close,
    /// SO_LINGER 0): only the remote address is known.
    pub port_cleared: bool,
}

impl Closed {
    /// From its connect (when traced) to its event; else at least this long: from the first
    /// look that showed it.
    pub fn lived(&self) -> Option<Duration> {
        self.created
            .or(self.first_seen)
            .map(|f| self.closed_at.duration_since(f).unwrap_or_default())
    }
}

/// What the connection tracing recorded of a socket: who connected it, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    pub at: SystemTime,
    pub pid: i32,
    pub comm: Vec<u8>,
    /// The cgroup (v2) id of the process then.
    pub cgroup_id: u64,
    /// The pod container of that cgroup, named when the tracing was read (on a node), which
    /// stays true after the process is gone.
    pub container: Option<ContainerRef>,
}

impl Created {
    /// The connecting process as a holder of the socket: its pid and comm, classified by its
    /// comm alone (the process may be gone); its fd is not known (-1).
    fn holder(&self) -> Holder {
        let process = ProcessInfo {
            pid: self.pid,
            comm: RawText::new(self.comm.clone()),
            ..ProcessInfo::default()
        };
        let class = classify::classify(&process);
        Holder {
            process: Arc::new(process),
            fd: -1,
            kind: class.kind,
            basis: Arc::from(class.basis),
            container: self.container.clone().map(Arc::new),
        }
    }
}

/// What a look remembers of a socket.
#[derive(Debug, Clone)]
struct Seen {
    socket: Socket,
    first_seen: SystemTime,
    look: u64,
}

/// The memory of past looks that destroy events are matched against.
#[derive(Debug, Default)]
pub struct Tracker {
    seen: HashMap<u64, Seen>,
    /// TCP listeners of the last look that some process holds.
    listeners: Vec<Socket>,
    looks: u64,
}

impl Tracker {
    pub fn new() -> Tracker {
        Tracker::default()
    }

    /// Remembers a look taken at `at`: every inet socket by its cookie, the time it was first
    /// seen kept; forgets sockets no look has shown for `KEEP_LOOKS` looks.
    pub fn saw(&mut self, sockets: &[Socket], at: SystemTime) {
        self.looks += 1;
        let look = self.looks;
        for s in sockets {
            // TIME_WAIT and request sockets are no full sockets: they have no destroy event.
            let Some(cookie) = s.cookie.filter(|_| s.inode != 0) else {
                continue;
            };
            self.seen
                .entry(cookie)
                .and_modify(|e| {
                    e.socket = s.clone();
                    e.look = look;
                })
                .or_insert_with(|| Seen {
                    socket: s.clone(),
                    first_seen: at,
                    look,
                });
        }
        self.seen.retain(|_, e| e.look + KEEP_LOOKS > look);
        self.listeners = sockets
            .iter()
            .filter(|s| s.proto == Proto::Tcp && s.state == State::Listen)
            .filter(|s| !s.holders.is_empty())
            .cloned()
            .collect();
    }

    /// The destroyed sockets that `filters` keeps, each matched once with what the looks saw;
    /// the unseen ones annotated with `catalog`, and owned by who `created` says connected
    /// them (the connection tracing, by cookie), if anyone. In the order of the events.
    pub fn closed(
        &mut self,
        destroyed: Vec<(SystemTime, Socket)>,
        filters: &Filters,
        catalog: &Catalog,
        created: &mut dyn FnMut(u64) -> Option<Created>,
    ) -> Vec<Closed> {
        let mut out: Vec<Closed> = Vec::with_capacity(destroyed.len());
        let mut unseen: Vec<usize> = Vec::new();
        for (closed_at, event) in destroyed {
            let seen = event.cookie.and_then(|c| self.seen.remove(&c));
            let closed = match seen {
                // The look knew the remote port. A socket seen in the dump but closed before
                // the walk of the fd tables has no holder: an accepted one still has its
                // listener's.
                Some(mut seen) => {
                    let mut owner = OwnerFrom::Look;
                    if seen.socket.holders.is_empty()
                        && let Some(l) = self.listener_of(&seen.socket)
                    {
                        seen.socket.holders = l.holders.clone();
                        owner = OwnerFrom::Listener;
                    }
                    Closed {
                        socket: seen.socket,
                        closed_at,
                        first_seen: Some(seen.first_seen),
                        created: None,
                        owner,
                        port_cleared: false,
                    }
                }
                None => {
                    let port_cleared = port_cleared(&event);
                    let mut socket = event;
                    // Every TCP socket ends in TCP_CLOSE, which the model reads as UNCONN, a
                    // listening state: its last real state is not known.
                    if socket.proto == Proto::Tcp {
                        socket.state = State::Unknown;
                    }
                    // Only TCP connects are traced; an accepted socket has its listener's owner.
                    let traced = match (socket.proto, socket.cookie) {
                        (Proto::Tcp, Some(c)) if self.listener_of(&socket).is_none() => created(c),
                        _ => None,
                    };
                    let owner = match (&traced, self.listener_of(&socket)) {
                        (Some(t), _) => {
                            socket.holders = vec![t.holder()];
                            socket.cgroup_id = Some(t.cgroup_id);
                            OwnerFrom::Created
                        }
                        (None, Some(l)) => {
                            socket.holders = l.holders.clone();
                            OwnerFrom::Listener
                        }
                        (None, None) => OwnerFrom::Unseen,
                    };
                    unseen.push(out.len());
                    Closed {
                        socket,
                        closed_at,
                        first_seen: None,
                        created: traced.map(|t| t.at),
                        owner,
                        port_cleared,
                    }
                }
            };
            out.push(closed);
        }
        // The catalog's roles for what no look annotated, in one pass.
        let mut fresh: Vec<Socket> = Vec::with_capacity(unseen.len());
        for &i in &unseen {
            if let Some(c) = out.get_mut(i) {
                fresh.push(std::mem::replace(&mut c.socket, placeholder()));
            }
        }
        annotate::annotate(&mut fresh, catalog);
        for (&i, s) in unseen.iter().zip(fresh) {
            if let Some(c) = out.get_mut(i) {
                c.socket = s;
            }
        }
        out.retain(|c| keeps(filters, c));
        out
    }

    /// The held listener an unseen TCP socket was accepted on: same local port, and the
    /// listener's address is the socket's or a wildcard of its family (or `[::]` without
    /// v6only for an IPv4 socket). A listening socket itself is never "accepted".
    fn listener_of(&self, s: &Socket) -> Option<&Socket> {
        let Endpoint::Inet { addr, port } = s.local else {
            return None;
        };
        if s.proto != Proto::Tcp || port == 0 || s.remote.port().unwrap_or(0) == 0 {
            return None;
        }
        let fits = |l: &&Socket| match l.local {
            Endpoint::Inet {
                addr: laddr,
                port: lport,
            } => {
                lport == port
                    && (laddr == addr
                        || (laddr.is_unspecified() && laddr.is_ipv4() == addr.is_ipv4())
                        || (laddr.is_unspecified()
                            && laddr.is_ipv6()
                            && addr.is_ipv4()
                            && l.v6only != Some(true)))
            }
            _ => false,
        };
        // The exact address first: a pod IP listener wins over a wildcard one.
        self.listeners
            .iter()
            .filter(fits)
            .find(|l| l.local.addr() == Some(addr))
            .or_else(|| self.listeners.iter().find(fits))
    }
}

/// An empty socket, for the moment a socket is out for annotation.
fn placeholder() -> Socket {
    Socket::new(
        Proto::Tcp,
        crate::model::Family::Ipv4,
        crate::model::SockType::Stream,
        State::Unknown,
        Endpoint::UnixPeer { peer_inode: None },
        Endpoint::UnixPeer { peer_inode: None },
        0,
    )
}

/// A TCP socket whose remote address is known but remote port is 0: the kernel disconnected it
/// (tcp_disconnect clears the port, keeps the address), after a failed blocking connect or on
/// an abortive close (SO_LINGER 0). A listener or a socket that never connected has no remote
/// address either.
fn port_cleared(s: &Socket) -> bool {
    s.proto == Proto::Tcp
        && matches!(s.remote, Endpoint::Inet { addr, port: 0 } if !addr.is_unspecified())
}

/// The listing's own filters, applied to a closed socket: protocols, ports (either end), and
/// with `-l` only sockets a look saw listening.
fn keeps(filters: &Filters, c: &Closed) -> bool {
    let s = &c.socket;
    if !filters.protos.is_empty() && !filters.protos.contains(&s.proto) {
        return false;
    }
    if filters.listening && !(c.owner == OwnerFrom::Look && s.is_listening()) {
        return false;
    }
    filters.ports.is_empty()
        || [s.local.port(), s.remote.port()]
            .into_iter()
            .flatten()
            .any(|p| p != 0 && filters.ports.contains(&p))
}

/// Which end of a closed socket a group is named by.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Side {
    /// A served port (a listener's, an accepted connection's, or one with a local role, or
    /// an unconnected UDP socket): its local endpoint, and the remote address if connected.
    Served {
        local: Endpoint,
        remote: Option<IpAddr>,
    },
    /// A client end: its local address (the port is ephemeral) and the remote endpoint.
    Client { local: IpAddr, remote: Endpoint },
}

/// Who a group's sockets belonged to: the processes (pids), or the container whose cgroup
/// created them, as far as `owner` says.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OwnerKey {
    pub from: OwnerFrom,
    pub pids: Vec<i32>,
    pub cgroup: Option<ContainerRef>,
}

/// Sockets closed since the last look that look alike: same protocol, same side, same owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group<'a> {
    pub proto: Proto,
    pub side: Side,
    pub owner: OwnerKey,
    pub members: Vec<&'a Closed>,
}

impl Group<'_> {
    /// The shortest and longest known lifetimes (at least from first seen), if any is known.
    pub fn lived(&self) -> Option<(Duration, Duration)> {
        let mut known = self.members.iter().filter_map(|c| c.lived());
        let first = known.next()?;
        Some(known.fold((first, first), |(lo, hi), d| (lo.min(d), hi.max(d))))
    }

    /// One of the sockets, for what they share (roles, owner names).
    pub fn example(&self) -> Option<&Closed> {
        self.members.first().copied()
    }
}

/// The side a closed socket is grouped by.
pub fn side(c: &Closed, served_ports: &[u16]) -> Side {
    let s = &c.socket;
    let (Endpoint::Inet { addr, port }, Endpoint::Inet { addr: raddr, .. }) = (&s.local, &s.remote)
    else {
        return Side::Served {
            local: s.local.clone(),
            remote: None,
        };
    };
    let connected = !raddr.is_unspecified();
    let served = !connected
        || c.owner == OwnerFrom::Listener
        || s.role.is_some()
        || served_ports.contains(port);
    if served {
        Side::Served {
            local: s.local.clone(),
            remote: connected.then_some(*raddr),
        }
    } else {
        Side::Client {
            local: *addr,
            remote: s.remote.clone(),
        }
    }
}

fn owner_key(c: &Closed) -> OwnerKey {
    let mut pids: Vec<i32> = c.socket.holders.iter().map(|h| h.process.pid).collect();
    pids.sort_unstable();
    pids.dedup();
    OwnerKey {
        from: c.owner,
        cgroup: match pids.is_empty() {
            true => c.socket.cgroup_owner.as_deref().cloned(),
            false => None,
        },
        pids,
    }
}

/// Groups closed sockets by (protocol, side, owner), the largest groups first, then in a
/// stable order. `served_ports` are the local ports the looks saw listening: a closed socket
/// on one of them is the served end of a connection.
pub fn group<'a>(closed: &'a [Closed], served_ports: &[u16]) -> Vec<Group<'a>> {
    let mut groups: BTreeMap<(Proto, Side, OwnerKey), Vec<&'a Closed>> = BTreeMap::new();
    for c in closed {
        groups
            .entry((c.socket.proto, side(c, served_ports), owner_key(c)))
            .or_default()
            .push(c);
    }
    let mut out: Vec<Group> = groups
        .into_iter()
        .map(|((proto, side, owner), members)| Group {
            proto,
            side,
            owner,
            members,
        })
        .collect();
    // Stable: equal counts keep the key order.
    out.sort_by_key(|g| std::cmp::Reverse(g.members.len()));
    out
}

/// The local ports of the listeners in `sockets` (TCP LISTEN), sorted.
pub fn listening_ports(sockets: &[Socket]) -> Vec<u16> {
    let mut ports: Vec<u16> = sockets
        .iter()
        .filter(|s| s.state == State::Listen)
        .filter_map(|s| s.local.port())
        .collect();
    ports.sort_unstable();
    ports.dedup();
    ports
}

#[cfg(test)]
mod tests;
