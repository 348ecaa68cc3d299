//! Roles and warnings: what each socket's port or path is for (with its owners in mind), what
//! the remote end of a connection is, and what looks wrong. Pure: sockets and the catalog in,
//! the same sockets annotated out. Reads nothing from the system.

use std::collections::{HashMap, HashSet};

use crate::catalog::Catalog;
use crate::model::{Endpoint, Holder, Kind, Proto, Socket, State, UnixName};
use crate::render::escape::escape;

/// SO_MARK ztunnel sets on its in-pod sockets (0x539, ztunnel src/inpod).
const ZTUNNEL_MARK: u32 = 1337;

pub fn annotate(sockets: &mut [Socket], catalog: &Catalog) {
    // Unix client ends are unnamed: their role is their server's, found through the peer inode.
    let unix_paths: HashMap<u64, Vec<u8>> = sockets
        .iter()
        .filter_map(|s| match &s.local {
            Endpoint::UnixLocal(UnixName::Path(p)) => Some((s.inode, p.as_bytes().to_vec())),
            _ => None,
        })
        .collect();

    for s in sockets.iter_mut() {
        let mut kinds: Vec<Kind> = s.holders.iter().map(|h| h.kind).collect();
        if kinds.is_empty() && s.mark == Some(ZTUNNEL_MARK) {
            // Owner hidden, but ztunnel marks the listeners it opens inside ambient pods.
            kinds.push(Kind::Ztunnel);
        }
        match s.local.clone() {
            Endpoint::Inet { addr, port } => {
                if let Some(entry) = catalog.local_role(s.proto, port, &kinds) {
                    let owned_by_component = kinds.contains(&entry.component);
                    if s.is_listening()
                        && entry.reserved
                        && !s.holders.is_empty()
                        && !owned_by_component
                    {
                        s.warnings.push(format!(
                            "{} is reserved for {} but held by {}",
                            entry.label(),
                            entry.component,
                            owner_list(&s.holders)
                        ));
                    }
                    // The bind rule is the component's: an app squatting the port is already
                    // flagged above, and its bind address says nothing about the mesh.
                    if s.is_listening()
                        && (owned_by_component || s.holders.is_empty())
                        && let Some(why) = entry.bind_violation(addr)
                    {
                        s.warnings.push(why);
                    }
                    s.role = Some(entry.role());
                }
                if !s.is_listening()
                    && let Endpoint::Inet {
                        addr: raddr,
                        port: rport,
                    } = s.remote
                {
                    let by_port = (rport != 0)
                        .then(|| catalog.peer_role(s.proto, rport))
                        .flatten();
                    let by_addr = catalog.source_role(raddr);
                    s.peer_role = by_port.or(by_addr).map(|e| e.role());
                }
            }
            Endpoint::UnixLocal(UnixName::Path(p)) => {
                s.role = catalog.unix_role(p.as_bytes()).map(|e| e.role());
            }
            Endpoint::UnixLocal(_) => {}
            Endpoint::UnixPeer { .. } => {}
        }
        if let Endpoint::UnixPeer {
            peer_inode: Some(peer),
        } = s.remote
            && let Some(path) = unix_paths.get(&peer)
        {
            s.peer_role = catalog.unix_role(path).map(|e| e.role());
        }
    }
    flag_shared_ports(sockets);
}

/// Listeners on one port held by processes of different kinds: the classic
/// "address already in use" for the sidecar, seen from the side that won.
fn flag_shared_ports(sockets: &mut [Socket]) {
    let mut kinds_by_port: HashMap<(Proto, u16), HashSet<Kind>> = HashMap::new();
    for s in sockets.iter() {
        if s.state != State::Listen {
            continue;
        }
        if let Some(port) = s.local.port() {
            let entry = kinds_by_port.entry((s.proto, port)).or_default();
            entry.extend(s.holders.iter().map(|h| h.kind));
        }
    }
    for s in sockets.iter_mut() {
        if s.state != State::Listen {
            continue;
        }
        let Some(port) = s.local.port() else { continue };
        if let Some(kinds) = kinds_by_port.get(&(s.proto, port))
            && kinds.len() > 1
        {
            let mut names: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
            names.sort_unstable();
            s.warnings.push(format!(
                "port {port}/{} is listened on by processes of different kinds: {}",
                s.proto,
                names.join(", ")
            ));
        }
    }
}

/// `app myapp[12], envoy[34]` for a warning.
fn owner_list(holders: &[Holder]) -> String {
    let mut seen = Vec::new();
    let mut parts = Vec::new();
    for h in holders {
        if seen.contains(&h.process.pid) {
            continue;
        }
        seen.push(h.process.pid);
        parts.push(format!(
            "{} {}[{}]",
            h.kind,
            escape(h.process.comm.as_bytes()),
            h.process.pid
        ));
    }
    parts.join(", ")
}
