//! Roles and warnings: what each socket's port or path is for (with its owners in mind), what
//! the remote end of a connection is, and what looks wrong. Pure: sockets and the catalog in,
//! the same sockets annotated out. Reads nothing from the system.

use std::collections::{HashMap, HashSet};

use crate::catalog::Catalog;
use crate::escape::escape;
use crate::model::{Endpoint, Holder, Kind, Proto, Socket, State, UnixName};

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
                    s.role = Some(Box::new(entry.role()));
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
                    s.peer_role = by_port.or(by_addr).map(|e| Box::new(e.role()));
                }
            }
            Endpoint::UnixLocal(UnixName::Path(p)) => {
                s.role = catalog.unix_role(p.as_bytes()).map(|e| Box::new(e.role()));
            }
            Endpoint::UnixLocal(_) => {}
            Endpoint::UnixPeer { .. } => {}
        }
        if let Endpoint::UnixPeer {
            peer_inode: Some(peer),
        } = s.remote
            && let Some(path) = unix_paths.get(&peer)
        {
            s.peer_role = catalog.unix_role(path).map(|e| Box::new(e.role()));
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

#[cfg(test)]
mod tests {
    use std::net::IpAddr;
    use std::sync::Arc;

    use super::*;
    use crate::model::{Family, ProcessInfo, RawText, SockType};

    fn catalog() -> Catalog {
        Catalog::builtin().unwrap()
    }

    fn holder(pid: i32, comm: &str, kind: Kind) -> Holder {
        Holder {
            process: Arc::new(ProcessInfo {
                pid,
                comm: RawText::from(comm),
                ..ProcessInfo::default()
            }),
            fd: 3,
            kind,
            basis: "".into(),
            container: None,
        }
    }

    fn tcp(state: State, local: (&str, u16), remote: (&str, u16), holders: Vec<Holder>) -> Socket {
        let ep = |(a, p): (&str, u16)| Endpoint::Inet {
            addr: a.parse::<IpAddr>().unwrap(),
            port: p,
        };
        let mut s = Socket::new(
            Proto::Tcp,
            Family::Ipv4,
            SockType::Stream,
            state,
            ep(local),
            ep(remote),
            100,
        );
        s.holders = holders;
        s
    }

    fn unix(inode: u64, name: UnixName, peer: Option<u64>) -> Socket {
        Socket::new(
            Proto::Unix,
            Family::Unix,
            SockType::Stream,
            if peer.is_some() {
                State::Established
            } else {
                State::Listen
            },
            Endpoint::UnixLocal(name),
            Endpoint::UnixPeer { peer_inode: peer },
            inode,
        )
    }

    fn role_of(s: &Socket) -> (Kind, &str) {
        let r = s.role.as_ref().expect("a role");
        (r.component, r.name.as_str())
    }

    #[test]
    fn the_owner_decides_between_envoy_and_ztunnel_on_15001() {
        let mut socks = vec![
            tcp(
                State::Listen,
                ("0.0.0.0", 15001),
                ("0.0.0.0", 0),
                vec![holder(1, "envoy", Kind::Envoy)],
            ),
            tcp(
                State::Listen,
                ("0.0.0.0", 15001),
                ("0.0.0.0", 0),
                vec![holder(2, "ztunnel", Kind::Ztunnel)],
            ),
        ];
        annotate(&mut socks, &catalog());
        assert_eq!(role_of(&socks[0]).0, Kind::Envoy);
        assert_eq!(role_of(&socks[1]).0, Kind::Ztunnel);
    }

    #[test]
    fn a_hidden_owner_with_ztunnels_mark_is_taken_for_ztunnel() {
        let mut s = tcp(State::Listen, ("0.0.0.0", 15008), ("0.0.0.0", 0), vec![]);
        s.mark = Some(0x539);
        let mut socks = vec![s];
        annotate(&mut socks, &catalog());
        assert_eq!(role_of(&socks[0]).0, Kind::Ztunnel);
        assert!(socks[0].warnings.is_empty(), "{:?}", socks[0].warnings);
    }

    #[test]
    fn an_app_on_a_reserved_port_is_flagged_without_a_bind_complaint() {
        let mut socks = vec![tcp(
            State::Listen,
            ("0.0.0.0", 15021),
            ("0.0.0.0", 0),
            vec![holder(7, "myapp", Kind::App)],
        )];
        annotate(&mut socks, &catalog());
        assert_eq!(role_of(&socks[0]), (Kind::Envoy, "readiness"));
        assert_eq!(socks[0].warnings.len(), 1, "{:?}", socks[0].warnings);
        assert!(socks[0].warnings[0].contains("reserved for envoy but held by app myapp[7]"));
    }

    #[test]
    fn envoy_admin_beyond_loopback_is_flagged() {
        let envoy = || vec![holder(1, "envoy", Kind::Envoy)];
        let mut socks = vec![
            tcp(State::Listen, ("0.0.0.0", 15000), ("0.0.0.0", 0), envoy()),
            tcp(State::Listen, ("127.0.0.1", 15000), ("0.0.0.0", 0), envoy()),
        ];
        annotate(&mut socks, &catalog());
        assert!(
            socks[0]
                .warnings
                .iter()
                .any(|w| w.contains("reachable beyond loopback"))
        );
        assert!(socks[1].warnings.is_empty(), "{:?}", socks[1].warnings);
    }

    #[test]
    fn a_generic_port_takes_a_role_only_from_its_component() {
        let mut socks = vec![
            tcp(
                State::Listen,
                ("0.0.0.0", 8080),
                ("0.0.0.0", 0),
                vec![holder(1, "myapp", Kind::App)],
            ),
            tcp(
                State::Listen,
                ("0.0.0.0", 8080),
                ("0.0.0.0", 0),
                vec![holder(2, "pilot-discovery", Kind::Istiod)],
            ),
        ];
        annotate(&mut socks, &catalog());
        assert!(socks[0].role.is_none());
        assert_eq!(role_of(&socks[1]).0, Kind::Istiod);
    }

    #[test]
    fn peer_roles_for_connections() {
        let mut socks = vec![
            tcp(
                State::Established,
                ("10.0.0.5", 40000),
                ("10.96.0.10", 15012),
                vec![],
            ),
            tcp(
                State::Established,
                ("10.0.0.5", 9080),
                ("127.0.0.6", 41000),
                vec![],
            ),
        ];
        annotate(&mut socks, &catalog());
        assert_eq!(socks[0].peer_role.as_ref().unwrap().component, Kind::Istiod);
        assert_eq!(socks[1].peer_role.as_ref().unwrap().component, Kind::Envoy);
        assert!(socks[0].role.is_none());
    }

    #[test]
    fn a_unix_client_takes_its_servers_role_through_the_peer_inode() {
        let path = UnixName::Path(RawText::from("etc/istio/proxy/XDS"));
        let mut socks = vec![
            unix(10, path.clone(), None),
            unix(11, path, Some(12)),
            unix(12, UnixName::Unnamed, Some(11)),
        ];
        annotate(&mut socks, &catalog());
        assert_eq!(role_of(&socks[0]).0, Kind::PilotAgent);
        assert_eq!(
            socks[2].peer_role.as_ref().unwrap().component,
            Kind::PilotAgent
        );
        assert!(socks[2].role.is_none());
    }

    #[test]
    fn listeners_of_different_kinds_on_one_port_are_a_conflict() {
        let mut socks = vec![
            tcp(
                State::Listen,
                ("0.0.0.0", 9090),
                ("0.0.0.0", 0),
                vec![holder(1, "a", Kind::App)],
            ),
            tcp(
                State::Listen,
                ("0.0.0.0", 9090),
                ("0.0.0.0", 0),
                vec![holder(2, "envoy", Kind::Envoy)],
            ),
        ];
        annotate(&mut socks, &catalog());
        assert!(socks[0].warnings.iter().any(|w| w.contains("app, envoy")));
    }
}
