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
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::model::{Family, Holder, Kind, PodRef, ProcessInfo, RawText, SockType};

    fn ep(addr: &str, port: u16) -> Endpoint {
        Endpoint::Inet {
            addr: addr.parse().unwrap(),
            port,
        }
    }

    fn tcp(state: State, local: Endpoint, remote: Endpoint, inode: u64, cookie: u64) -> Socket {
        let mut s = Socket::new(
            Proto::Tcp,
            Family::Ipv4,
            SockType::Stream,
            state,
            local,
            remote,
            inode,
        );
        s.cookie = Some(cookie);
        s
    }

    fn held_by(mut s: Socket, pid: i32, comm: &str, container: Option<&str>) -> Socket {
        s.holders.push(Holder {
            process: Arc::new(ProcessInfo {
                pid,
                comm: RawText::from(comm),
                ..Default::default()
            }),
            fd: 3,
            kind: Kind::Envoy,
            basis: "test".into(),
            container: container.map(|name| {
                Arc::new(ContainerRef {
                    pod: PodRef {
                        namespace: Some("default".into()),
                        name: Some("productpage".into()),
                        uid: "u1".into(),
                    },
                    id: Some("c1".into()),
                    name: Some(name.into()),
                })
            }),
        });
        s
    }

    fn event(local: Endpoint, remote: Endpoint, cookie: u64) -> Socket {
        // What the kernel sends: TCP_CLOSE, no inode.
        tcp(State::Unconn, local, remote, 0, cookie)
    }

    fn at(ms: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_millis(1_000_000 + ms)
    }

    fn catalog() -> Catalog {
        Catalog::builtin().unwrap()
    }

    /// A connection no look saw, which the connection tracing saw connect: its process (by
    /// pid and comm, fd unknown), its container by cgroup, its lifetime from the connect. An
    /// accepted one is its listener's and never asked about; one the tracing missed is unseen.
    #[test]
    fn a_connection_no_look_saw_is_owned_by_the_process_the_tracing_saw_connect_it() {
        let mut t = Tracker::new();
        t.saw(&[], at(0));
        let container = ContainerRef {
            pod: PodRef {
                namespace: Some("default".into()),
                name: Some("web-0".into()),
                uid: "u1".into(),
            },
            id: Some("abc".into()),
            name: Some("app".into()),
        };
        let mut asked = Vec::new();
        let closed = t.closed(
            vec![
                (
                    at(1020),
                    event(ep("10.0.0.5", 41000), ep("10.96.0.10", 15012), 7),
                ),
                (
                    at(1030),
                    event(ep("10.0.0.5", 41001), ep("10.96.0.10", 15012), 8),
                ),
            ],
            &Filters::default(),
            &catalog(),
            &mut |cookie| {
                asked.push(cookie);
                (cookie == 7).then(|| Created {
                    at: at(1000),
                    pid: 42,
                    comm: b"curl".to_vec(),
                    cgroup_id: 9001,
                    container: Some(container.clone()),
                })
            },
        );
        assert_eq!(asked, vec![7, 8]);
        let c = &closed[0];
        assert_eq!(c.owner, OwnerFrom::Created);
        assert_eq!(c.lived(), Some(Duration::from_millis(20)));
        let h = &c.socket.holders[0];
        assert_eq!(
            (h.process.pid, h.process.comm.as_bytes(), h.fd),
            (42, &b"curl"[..], -1)
        );
        assert_eq!(h.container.as_deref(), Some(&container));
        assert_eq!(c.socket.cgroup_id, Some(9001));
        // The role still comes from the catalog.
        assert!(c.socket.peer_role.is_some());
        assert_eq!(closed[1].owner, OwnerFrom::Unseen);
        assert_eq!(closed[1].lived(), None);
    }

    #[test]
    fn a_socket_a_look_saw_closes_with_its_owner_state_container_and_lifetime() {
        let mut t = Tracker::new();
        let xds = held_by(
            tcp(
                State::Established,
                ep("10.0.0.5", 41000),
                ep("10.96.0.10", 15012),
                77,
                9,
            ),
            5102,
            "envoy",
            Some("istio-proxy"),
        );
        t.saw(std::slice::from_ref(&xds), at(0));
        t.saw(std::slice::from_ref(&xds), at(2000));
        // Then the process is gone and the socket with it; the event comes.
        t.saw(&[], at(4000));
        let closed = t.closed(
            vec![(
                at(4100),
                event(ep("10.0.0.5", 41000), ep("10.96.0.10", 15012), 9),
            )],
            &Filters::default(),
            &catalog(),
            &mut |_| None,
        );
        assert_eq!(closed.len(), 1);
        let c = &closed[0];
        assert_eq!(c.owner, OwnerFrom::Look);
        assert_eq!(c.socket.state, State::Established, "the last state seen");
        assert_eq!(c.socket.holders[0].process.pid, 5102);
        let container = c.socket.holders[0].container.as_ref().unwrap();
        assert_eq!(container.name.as_deref(), Some("istio-proxy"));
        assert_eq!(
            c.lived(),
            Some(Duration::from_millis(4100)),
            "from first seen"
        );
        // Reported once: the same cookie again is no longer a seen socket.
        let again = t.closed(
            vec![(
                at(4200),
                event(ep("10.0.0.5", 41000), ep("10.96.0.10", 15012), 9),
            )],
            &Filters::default(),
            &catalog(),
            &mut |_| None,
        );
        assert_eq!(again[0].owner, OwnerFrom::Unseen);
    }

    #[test]
    fn an_unseen_socket_has_no_owner_but_its_roles_and_a_cleared_port_is_told() {
        let mut t = Tracker::new();
        t.saw(&[], at(0));
        let closed = t.closed(
            vec![
                (
                    at(10),
                    event(ep("10.0.0.5", 41001), ep("10.96.0.10", 15012), 1),
                ),
                (at(20), event(ep("10.0.0.5", 41002), ep("10.96.0.10", 0), 2)),
            ],
            &Filters::default(),
            &catalog(),
            &mut |_| None,
        );
        assert_eq!(closed[0].owner, OwnerFrom::Unseen);
        assert!(closed[0].socket.holders.is_empty());
        assert_eq!(closed[0].lived(), None);
        let role = closed[0].socket.peer_role.as_ref().expect("a peer role");
        assert_eq!(
            (role.component, role.name.as_str()),
            (Kind::Istiod, "xds-tls")
        );
        assert!(!closed[0].port_cleared);
        assert!(closed[1].port_cleared);
    }

    #[test]
    fn an_unseen_accepted_connection_is_given_its_listeners_holders() {
        let mut t = Tracker::new();
        let listener = held_by(
            tcp(
                State::Listen,
                ep("0.0.0.0", 15006),
                ep("0.0.0.0", 0),
                5,
                100,
            ),
            5102,
            "envoy",
            None,
        );
        let other = held_by(
            tcp(
                State::Listen,
                ep("10.0.0.5", 8080),
                ep("0.0.0.0", 0),
                6,
                101,
            ),
            7,
            "app",
            None,
        );
        t.saw(&[listener, other], at(0));
        let closed = t.closed(
            vec![
                (
                    at(5),
                    event(ep("10.0.0.5", 15006), ep("10.0.0.9", 40000), 3),
                ),
                (at(6), event(ep("10.0.0.5", 8080), ep("10.0.0.9", 40001), 4)),
                // A client end from port 15006 elsewhere is not this listener's... but a
                // closed listener (no remote) is never "accepted".
                (at(7), event(ep("0.0.0.0", 15006), ep("0.0.0.0", 0), 100)),
                (at(8), event(ep("10.0.0.5", 9999), ep("10.0.0.9", 40002), 5)),
            ],
            &Filters::default(),
            &catalog(),
            &mut |_| None,
        );
        assert_eq!(closed[0].owner, OwnerFrom::Listener);
        assert_eq!(closed[0].socket.holders[0].process.pid, 5102);
        assert_eq!(closed[1].socket.holders[0].process.pid, 7);
        assert_eq!(
            closed[2].owner,
            OwnerFrom::Look,
            "the listener itself, seen"
        );
        assert_eq!(closed[3].owner, OwnerFrom::Unseen);
    }

    #[test]
    fn sockets_no_look_shows_any_more_are_forgotten_after_a_few_looks() {
        let mut t = Tracker::new();
        let s = tcp(
            State::Established,
            ep("10.0.0.5", 1),
            ep("10.0.0.6", 2),
            8,
            42,
        );
        t.saw(&[s], at(0));
        for i in 1..=KEEP_LOOKS {
            t.saw(&[], at(i * 1000));
        }
        let closed = t.closed(
            vec![(at(9000), event(ep("10.0.0.5", 1), ep("10.0.0.6", 2), 42))],
            &Filters::default(),
            &catalog(),
            &mut |_| None,
        );
        assert_eq!(closed[0].owner, OwnerFrom::Unseen);
        // TIME_WAIT (inode 0) is never remembered: it has no destroy event of its own.
        let mut t = Tracker::new();
        t.saw(
            &[tcp(
                State::TimeWait,
                ep("10.0.0.5", 1),
                ep("10.0.0.6", 2),
                0,
                43,
            )],
            at(0),
        );
        assert!(t.seen.is_empty());
    }

    #[test]
    fn filters_apply_to_closed_sockets_as_to_the_listing() {
        let mut t = Tracker::new();
        t.saw(&[], at(0));
        let events = || {
            vec![
                (
                    at(1),
                    event(ep("10.0.0.5", 41001), ep("10.96.0.10", 15012), 1),
                ),
                (at(2), event(ep("10.0.0.5", 41002), ep("10.0.0.7", 9080), 2)),
            ]
        };
        let port = Filters {
            ports: vec![15012],
            ..Filters::default()
        };
        assert_eq!(
            t.closed(events(), &port, &catalog(), &mut |_| None).len(),
            1
        );
        let udp = Filters {
            protos: vec![Proto::Udp],
            ..Filters::default()
        };
        assert!(
            t.closed(events(), &udp, &catalog(), &mut |_| None)
                .is_empty()
        );
        let listening = Filters {
            listening: true,
            ..Filters::default()
        };
        assert!(
            t.closed(events(), &listening, &catalog(), &mut |_| None)
                .is_empty()
        );
    }

    #[test]
    fn groups_are_by_side_and_owner_with_lifetime_ranges_largest_first() {
        let envoy = |c: Closed| Closed {
            socket: held_by(c.socket, 5102, "envoy", Some("istio-proxy")),
            ..c
        };
        let client = |port: u16, first: Option<u64>, closed: u64| Closed {
            socket: tcp(
                State::Established,
                ep("10.0.0.5", port),
                ep("10.96.0.10", 15012),
                1,
                u64::from(port),
            ),
            closed_at: at(closed),
            first_seen: first.map(at),
            owner: OwnerFrom::Look,
            created: None,
            port_cleared: false,
        };
        let closed = vec![
            envoy(client(41000, Some(0), 200)),
            envoy(client(41001, Some(0), 1900)),
            envoy(client(41002, None, 1900)),
            // Same remote, no owner known: another group.
            Closed {
                owner: OwnerFrom::Unseen,
                ..client(41003, None, 50)
            },
            // The served end of an inbound connection, on a listening port.
            Closed {
                socket: tcp(
                    State::Established,
                    ep("10.0.0.5", 9080),
                    ep("10.0.0.9", 40000),
                    2,
                    5,
                ),
                ..client(1, None, 10)
            },
        ];
        let groups = group(&closed, &[9080]);
        assert_eq!(groups.len(), 3);
        assert_eq!(groups[0].members.len(), 3);
        assert_eq!(
            groups[0].side,
            Side::Client {
                local: "10.0.0.5".parse().unwrap(),
                remote: ep("10.96.0.10", 15012)
            }
        );
        assert_eq!(groups[0].owner.pids, vec![5102]);
        assert_eq!(
            groups[0].lived(),
            Some((Duration::from_millis(200), Duration::from_millis(1900)))
        );
        let served = groups
            .iter()
            .find(|g| matches!(g.side, Side::Served { .. }))
            .unwrap();
        assert_eq!(
            served.side,
            Side::Served {
                local: ep("10.0.0.5", 9080),
                remote: Some("10.0.0.9".parse().unwrap())
            }
        );
        let unseen = groups
            .iter()
            .find(|g| g.owner.from == OwnerFrom::Unseen)
            .unwrap();
        assert_eq!(unseen.members.len(), 1);
        assert_eq!(unseen.lived(), None);
        assert!(group(&[], &[]).is_empty());
    }
}
