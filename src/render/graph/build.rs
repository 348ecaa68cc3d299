//! Building the graph of one listing: a node per holding process (or hidden/closed stand-in),
//! listener and unix path, remote endpoints grouped past `REMOTE_LIMIT`, and the edges between
//! them (the grouping and the final numbering: build/finish.rs). Pure; every byte from the
//! target is escaped here.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

use crate::escape::escape;
use crate::listing::Inspection;
use crate::model::{ContainerRef, Endpoint, Proto, Socket, State, UnixName};
use crate::render::table::role_name;

use super::*;

mod finish;

/// Node identity while building; sorted for a stable drawing order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Key {
    Process(i32),
    Hidden {
        container: Option<Arc<ContainerRef>>,
        ztunnel: bool,
    },
    Closed,
    Listener {
        owners: Vec<Key>,
        proto: Proto,
        port: u16,
        addr: IpAddr,
    },
    UnixPath {
        owners: Vec<Key>,
        name: Vec<u8>,
        abstract_: bool,
    },
    Remote {
        addr: IpAddr,
        port: Option<u16>,
    },
    Remotes {
        label: String,
    },
}

/// A node while building: what it is, its container, its warnings.
type Pending = (What, Option<Arc<ContainerRef>>, Vec<String>);

struct Builder<'a> {
    ins: &'a Inspection,
    nodes: HashMap<Key, Pending>,
    edges: BTreeMap<(Key, Key, EdgeKind), (usize, Vec<String>)>,
    notes: Vec<String>,
}

/// Build the graph of a listing.
pub fn build(ins: &Inspection) -> Graph {
    let mut b = Builder {
        ins,
        nodes: HashMap::new(),
        edges: BTreeMap::new(),
        notes: Vec::new(),
    };
    b.listeners();
    b.connections();
    b.group_remotes();
    b.finish()
}

impl<'a> Builder<'a> {
    /// The keys of a socket's owners: each holding process once, or the hidden or closed
    /// stand-in when no process holds it.
    fn owners(&mut self, s: &'a Socket) -> Vec<Key> {
        let mut keys = Vec::new();
        for h in &s.holders {
            let key = Key::Process(h.process.pid);
            if keys.contains(&key) {
                continue;
            }
            let outside = match (h.process.netns_inode, self.ins.netns.inode) {
                (Some(a), Some(b)) => a != b,
                _ => false,
            };
            self.nodes.entry(key.clone()).or_insert_with(|| {
                (
                    What::Process {
                        kind: h.kind,
                        pid: h.process.pid,
                        name: escape(h.process.comm.as_bytes()),
                        outside,
                    },
                    h.container.clone(),
                    Vec::new(),
                )
            });
            keys.push(key);
        }
        if keys.is_empty() {
            let key = if s.inode == 0 || s.state == State::TimeWait {
                self.nodes
                    .entry(Key::Closed)
                    .or_insert_with(|| (What::Closed, None, Vec::new()));
                Key::Closed
            } else {
                let ztunnel = s.mark == Some(ZTUNNEL_MARK);
                let container = s.cgroup_owner.as_deref().cloned().map(Arc::new);
                let key = Key::Hidden {
                    container: container.clone(),
                    ztunnel,
                };
                self.nodes
                    .entry(key.clone())
                    .or_insert_with(|| (What::Hidden { ztunnel }, container, Vec::new()));
                key
            };
            keys.push(key);
        }
        keys.sort();
        keys
    }

    fn edge(&mut self, from: Key, to: Key, kind: EdgeKind, warnings: &[String]) {
        let e = self.edges.entry((from, to, kind)).or_default();
        e.0 += 1;
        for w in warnings {
            let w = escape(w.as_bytes());
            if !e.1.contains(&w) {
                e.1.push(w);
            }
        }
    }

    /// Listening inet sockets with a port, and unix sockets with a name.
    fn listeners(&mut self) {
        let ins = self.ins;
        for s in ins.sockets.iter().filter(|s| s.is_listening()) {
            let key = match &s.local {
                Endpoint::Inet { addr, port } if *port != 0 => Key::Listener {
                    owners: self.owners(s),
                    proto: s.proto,
                    port: *port,
                    addr: *addr,
                },
                Endpoint::UnixLocal(UnixName::Path(p)) => Key::UnixPath {
                    owners: self.owners(s),
                    name: p.as_bytes().to_vec(),
                    abstract_: false,
                },
                Endpoint::UnixLocal(UnixName::Abstract(p)) => Key::UnixPath {
                    owners: self.owners(s),
                    name: p.as_bytes().to_vec(),
                    abstract_: true,
                },
                _ => continue,
            };
            self.add_listener(key, s);
        }
    }

    fn add_listener(&mut self, key: Key, s: &Socket) {
        let role = s.role.as_deref().map(role_name);
        let owners = match &key {
            Key::Listener { owners, .. } | Key::UnixPath { owners, .. } => owners.clone(),
            _ => Vec::new(),
        };
        let entry = self.nodes.entry(key.clone()).or_insert_with(|| {
            let what = match (&key, &s.local) {
                (
                    Key::UnixPath {
                        name, abstract_, ..
                    },
                    _,
                ) => What::UnixPath {
                    name: if *abstract_ {
                        format!("@{}", escape(name))
                    } else {
                        escape(name)
                    },
                    role: role.clone(),
                    sockets: 0,
                },
                (_, Endpoint::Inet { addr, port }) => What::Listener {
                    proto: s.proto,
                    port: *port,
                    addr: *addr,
                    role: role.clone(),
                    sockets: 0,
                },
                _ => What::Closed,
            };
            (what, None, Vec::new())
        });
        if let What::Listener { sockets, .. } | What::UnixPath { sockets, .. } = &mut entry.0 {
            *sockets += 1;
        }
        for w in &s.warnings {
            let w = escape(w.as_bytes());
            if !entry.2.contains(&w) {
                entry.2.push(w);
            }
        }
        // The group of a port is its holder's: drawn next to it.
        if let Some(Key::Process(pid)) = owners.first()
            && let Some(c) = s
                .holders
                .iter()
                .find(|h| h.process.pid == *pid)
                .and_then(|h| h.container.clone())
        {
            entry.1 = Some(c);
        } else if let Some(Key::Hidden { container, .. }) = owners.first() {
            entry.1 = container.clone();
        }
        for o in owners {
            // One holder edge per (holder, port): not one per socket.
            self.edges
                .entry((o, key.clone(), EdgeKind::Holds))
                .or_insert((1, Vec::new()));
        }
    }

    fn connections(&mut self) {
        let ins = self.ins;
        // Listener nodes by (proto, port): where a connection's server end lands.
        let mut by_port: HashMap<(Proto, u16), Vec<(IpAddr, Key)>> = HashMap::new();
        // Every unix listener key by name: where a unix client lands.
        let mut unix_by_inode: HashMap<u64, &Socket> = HashMap::new();
        let mut local_addrs: HashSet<IpAddr> = HashSet::new();
        let mut tuples: HashMap<(Proto, IpAddr, u16, IpAddr, u16), &Socket> = HashMap::new();
        for s in &ins.sockets {
            match (&s.local, &s.remote) {
                (Endpoint::Inet { addr, port }, remote) => {
                    local_addrs.insert(addr.to_canonical());
                    if s.is_listening() && *port != 0 {
                        // The key this listener got in `listeners`.
                        let key = self.listener_key(s);
                        by_port
                            .entry((s.proto, *port))
                            .or_default()
                            .push((addr.to_canonical(), key));
                    } else if let Endpoint::Inet { addr: ra, port: rp } = remote {
                        tuples.insert(
                            (s.proto, addr.to_canonical(), *port, ra.to_canonical(), *rp),
                            s,
                        );
                    }
                }
                (Endpoint::UnixLocal(_), _) => {
                    unix_by_inode.insert(s.inode, s);
                }
                _ => {}
            }
        }
        // The listener a connection's server end belongs to: on its address, else a wildcard
        // (only for what reaches the namespace's own addresses); among SO_REUSEPORT listeners
        // of several processes, the one held by the process holding the accepted socket.
        let find_listener = |proto: Proto,
                             addr: IpAddr,
                             port: u16,
                             local: bool,
                             accepted: Option<&Socket>|
         -> Option<Key> {
            let addr = addr.to_canonical();
            let ls = by_port.get(&(proto, port))?;
            let mut cands: Vec<&Key> = ls
                .iter()
                .filter(|(a, _)| *a == addr)
                .map(|(_, k)| k)
                .collect();
            if cands.is_empty() {
                if !local && !addr.is_loopback() {
                    return None;
                }
                cands = ls
                    .iter()
                    .filter(|(a, _)| {
                        a.is_unspecified()
                            && (a.is_ipv6() || addr.is_ipv4() || addr.is_unspecified())
                    })
                    .map(|(_, k)| k)
                    .collect();
                if cands.is_empty() {
                    cands = ls
                        .iter()
                        .filter(|(a, _)| a.is_unspecified())
                        .map(|(_, k)| k)
                        .collect();
                }
            }
            let held_by_holder = |k: &Key| match (k, accepted) {
                (Key::Listener { owners, .. }, Some(s)) => s
                    .holders
                    .iter()
                    .any(|h| owners.contains(&Key::Process(h.process.pid))),
                _ => false,
            };
            cands
                .iter()
                .find(|k| held_by_holder(k))
                .or(cands.first())
                .map(|k| (*k).clone())
        };

        let mut unpaired_unix = 0usize;
        for s in ins.sockets.iter().filter(|s| !s.is_listening()) {
            let kind = if s.holders.is_empty() && (s.inode == 0 || s.state == State::TimeWait) {
                EdgeKind::Closed
            } else {
                EdgeKind::Connects
            };
            match (&s.local, &s.remote) {
                (
                    Endpoint::Inet { addr, port },
                    Endpoint::Inet {
                        addr: raddr,
                        port: rport,
                    },
                ) => {
                    let (addr, raddr) = (addr.to_canonical(), raddr.to_canonical());
                    let peer = tuples.get(&(s.proto, raddr, *rport, addr, *port)).copied();
                    let mine = find_listener(s.proto, addr, *port, true, Some(s));
                    let theirs =
                        peer.and_then(|p| find_listener(s.proto, raddr, *rport, true, Some(p)));
                    let server_side = match (&mine, &theirs) {
                        (Some(_), None) => true,
                        // Both ends on a listening port: the lower port is the server's.
                        (Some(_), Some(_)) => port < rport,
                        _ => false,
                    };
                    if server_side {
                        if peer.is_some() {
                            continue; // the client's end draws it
                        }
                        let Some(to) = mine else { continue };
                        let from = self.remote(raddr, None, s.peer_role.as_deref());
                        self.edge(from, to, kind, &s.warnings);
                        continue;
                    }
                    let to = match (theirs, peer) {
                        (Some(l), _) => l,
                        // Both ends here, neither on a listener: process to process.
                        (None, Some(p)) => match self.owners(p).into_iter().next() {
                            Some(k) => k,
                            None => continue,
                        },
                        (None, None) => match find_listener(
                            s.proto,
                            raddr,
                            *rport,
                            local_addrs.contains(&raddr),
                            None,
                        ) {
                            Some(l) => l,
                            None => self.remote(raddr, Some(*rport), s.peer_role.as_deref()),
                        },
                    };
                    for from in self.owners(s) {
                        self.edge(from, to.clone(), kind, &s.warnings);
                    }
                }
                (Endpoint::UnixLocal(name), Endpoint::UnixPeer { peer_inode }) => {
                    let peer = peer_inode.and_then(|p| unix_by_inode.get(&p)).copied();
                    let named = |n: &UnixName| !matches!(n, UnixName::Unnamed);
                    let peer_name = match peer.map(|p| &p.local) {
                        Some(Endpoint::UnixLocal(n)) if named(n) => Some(n),
                        _ => None,
                    };
                    match (named(name), peer_name) {
                        // The accepted end: its client's end draws the edge.
                        (true, _) if peer.is_some() => {}
                        (false, Some(pn)) => {
                            let Some(p) = peer else { continue };
                            let to = self.unix_path_node(p, pn);
                            for from in self.owners(s) {
                                self.edge(from, to.clone(), kind, &s.warnings);
                            }
                        }
                        _ => unpaired_unix += 1,
                    }
                }
                _ => {}
            }
        }
        if unpaired_unix > 0 {
            self.notes.push(format!(
                "{unpaired_unix} unix sockets with no named end (socket pairs, or a peer \
                 outside the listing) are not drawn"
            ));
        }
    }

    /// The key `listeners` gave this listening inet socket (its owners computed again).
    fn listener_key(&mut self, s: &'a Socket) -> Key {
        let (addr, port) = match &s.local {
            Endpoint::Inet { addr, port } => (*addr, *port),
            _ => (IpAddr::from([0, 0, 0, 0]), 0),
        };
        Key::Listener {
            owners: self.owners(s),
            proto: s.proto,
            port,
            addr,
        }
    }

    /// The unix path node a client reached through the server's accepted socket `p`: the
    /// listener's node when the listing has it (same holders, same name), else a node of its
    /// own attached to the accepting process.
    fn unix_path_node(&mut self, p: &'a Socket, name: &UnixName) -> Key {
        let (bytes, abstract_) = match name {
            UnixName::Path(b) => (b.as_bytes().to_vec(), false),
            UnixName::Abstract(b) => (b.as_bytes().to_vec(), true),
            UnixName::Unnamed => (Vec::new(), false),
        };
        let owners = self.owners(p);
        let key = Key::UnixPath {
            owners: owners.clone(),
            name: bytes.clone(),
            abstract_,
        };
        if let Some(existing) = self.nodes.keys().find(|k| {
            matches!(k, Key::UnixPath { name: n, abstract_: a, owners: o }
                if *n == bytes && *a == abstract_ && o.iter().any(|x| owners.contains(x)))
        }) {
            return existing.clone();
        }
        let name = if abstract_ {
            format!("@{}", escape(&bytes))
        } else {
            escape(&bytes)
        };
        let container = p.holders.first().and_then(|h| h.container.clone());
        self.nodes.insert(
            key.clone(),
            (
                What::UnixPath {
                    name,
                    role: p.role.as_deref().map(role_name),
                    sockets: 0,
                },
                container,
                Vec::new(),
            ),
        );
        for o in owners {
            self.edges
                .entry((o, key.clone(), EdgeKind::Holds))
                .or_insert((1, Vec::new()));
        }
        key
    }

    fn remote(
        &mut self,
        addr: IpAddr,
        port: Option<u16>,
        role: Option<&crate::model::Role>,
    ) -> Key {
        let key = Key::Remote { addr, port };
        self.nodes.entry(key.clone()).or_insert_with(|| {
            (
                What::Remote {
                    addr,
                    port,
                    role: role.map(role_name),
                },
                None,
                Vec::new(),
            )
        });
        key
    }
}
