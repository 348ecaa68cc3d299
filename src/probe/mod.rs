//! `podports probe`: do the mesh's HTTP ports answer as they should, asked from inside the
//! pod's network namespace? This module is PURE: which listeners to ask (those the listing
//! shows with a catalog role that speaks HTTP), on which address (loopback, or an address of
//! the namespace itself: never anything else), and what an answer means. `http` speaks
//! HTTP/1.1 (`parse::http`, pure) over one TCP connection (`sys::http`); `run` does the I/O. Probing is the one thing podports
//! does that sends bytes to the target: one GET per listener, and only with `probe`.

pub mod run;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use crate::listing::NetnsInfo;
use crate::model::{Holder, Kind, Proto, Role, Socket, State};
use crate::parse::http;

/// A catalog role that answers HTTP, and what to ask it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpPort {
    pub mesh: &'static str,
    pub component: Kind,
    /// The role's name in `catalog/mesh.toml`.
    pub name: &'static str,
    pub port: u16,
    pub path: &'static str,
    /// Asked on loopback only, even when it listens beyond (Envoy admin answers
    /// `/quitquitquit` and config dumps: podports never talks to it from anywhere else).
    pub loopback_only: bool,
}

/// The HTTP ports podports probes, with the path the mesh's own probes use (each must be a
/// role of the catalog: a test checks it). Envoy admin's `/server_info` answers 200 whenever
/// Envoy is up; the readiness paths answer 503 until the proxy has its configuration.
pub const HTTP_PORTS: [HttpPort; 7] = [
    HttpPort {
        mesh: "istio",
        component: Kind::Envoy,
        name: "admin",
        port: 15000,
        path: "/server_info",
        loopback_only: true,
    },
    HttpPort {
        mesh: "istio",
        component: Kind::PilotAgent,
        name: "status",
        port: 15020,
        path: "/healthz/ready",
        loopback_only: false,
    },
    HttpPort {
        mesh: "istio",
        component: Kind::Envoy,
        name: "readiness",
        port: 15021,
        path: "/healthz/ready",
        loopback_only: false,
    },
    HttpPort {
        mesh: "istio",
        component: Kind::Envoy,
        name: "prometheus-stats",
        port: 15090,
        path: "/stats/prometheus",
        loopback_only: false,
    },
    HttpPort {
        mesh: "istio",
        component: Kind::Ztunnel,
        name: "readiness",
        port: 15021,
        path: "/healthz/ready",
        loopback_only: false,
    },
    HttpPort {
        mesh: "linkerd",
        component: Kind::LinkerdProxy,
        name: "admin",
        port: 4191,
        path: "/ready",
        loopback_only: false,
    },
    HttpPort {
        mesh: "istio",
        component: Kind::Istiod,
        name: "http-debug",
        port: 8080,
        path: "/ready",
        loopback_only: false,
    },
];

/// The HTTP port of this role, if it has one.
pub fn http_port(role: &Role) -> Option<&'static HttpPort> {
    HTTP_PORTS
        .iter()
        .find(|h| h.mesh == role.mesh && h.component == role.component && h.name == role.name)
}

/// One GET to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub port: u16,
    /// Where to connect: loopback, or an address of the namespace.
    pub addr: IpAddr,
    /// The address the listener is bound to.
    pub listen: IpAddr,
    pub path: &'static str,
    pub role: Role,
    /// The processes holding the listener(s) (several with SO_REUSEPORT).
    pub holders: Vec<Holder>,
}

impl Target {
    pub fn socket_addr(&self) -> SocketAddr {
        SocketAddr::new(self.addr, self.port)
    }

    /// `http://127.0.0.1:15021/healthz/ready`.
    pub fn url(&self) -> String {
        format!("http://{}{}", self.socket_addr(), self.path)
    }
}

/// An HTTP listener that is not asked, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub port: u16,
    pub listen: IpAddr,
    pub role: Role,
    pub holders: Vec<Holder>,
    pub reason: String,
}

/// What to probe in one namespace.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    pub targets: Vec<Target>,
    pub skipped: Vec<Skipped>,
    /// Ports of `HTTP_PORTS` where nothing listens at all (sorted).
    pub not_listening: Vec<u16>,
}

/// Which of `sockets` to probe and where. `own` are the namespace's interface addresses;
/// `only` restricts the ports (empty: all). Listeners of one port on one address (one per
/// Envoy worker with SO_REUSEPORT) are asked once.
pub fn plan(sockets: &[Socket], own: &[IpAddr], only: &[u16]) -> Plan {
    let wanted = |port: u16| only.is_empty() || only.contains(&port);
    let mut out = Plan::default();
    for s in sockets {
        if s.proto != Proto::Tcp || s.state != State::Listen {
            continue;
        }
        let (Some(listen), Some(port)) = (s.local.addr(), s.local.port()) else {
            continue;
        };
        let Some(role) = s.role.as_deref() else {
            continue;
        };
        let Some(http) = http_port(role) else {
            continue;
        };
        if !wanted(port) {
            continue;
        }
        match connect_addr(listen, s.v6only, own, http.loopback_only) {
            Ok(addr) => {
                if let Some(t) = out
                    .targets
                    .iter_mut()
                    .find(|t| t.port == port && t.addr == addr)
                {
                    t.holders.extend(s.holders.iter().cloned());
                } else {
                    out.targets.push(Target {
                        port,
                        addr,
                        listen,
                        path: http.path,
                        role: Role::clone(role),
                        holders: s.holders.clone(),
                    });
                }
            }
            Err(reason) => out.skipped.push(Skipped {
                port,
                listen,
                role: Role::clone(role),
                holders: s.holders.clone(),
                reason,
            }),
        }
    }
    let listening = |port: u16| {
        sockets.iter().any(|s| {
            s.proto == Proto::Tcp && s.state == State::Listen && s.local.port() == Some(port)
        })
    };
    out.not_listening = HTTP_PORTS
        .iter()
        .map(|h| h.port)
        .filter(|p| wanted(*p) && !listening(*p))
        .collect();
    out.not_listening.sort_unstable();
    out.not_listening.dedup();
    out
}

/// Where to connect to reach a listener bound to `listen`: the same family's loopback for a
/// wildcard listener, the address itself when it is loopback or one of the namespace's own
/// (`own`), and nowhere otherwise. A listener may be bound to an address that is not the
/// namespace's (IP_FREEBIND, IP_TRANSPARENT): connecting there would leave the pod, so it is
/// never done.
pub fn connect_addr(
    listen: IpAddr,
    v6only: Option<bool>,
    own: &[IpAddr],
    loopback_only: bool,
) -> Result<IpAddr, String> {
    let a = listen.to_canonical();
    let v6_loopback = IpAddr::V6(Ipv6Addr::LOCALHOST);
    if a.is_unspecified() {
        return match a {
            IpAddr::V4(_) => Ok(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            IpAddr::V6(_) if own.contains(&v6_loopback) => Ok(v6_loopback),
            // A dual-stack [::] listener takes IPv4 too.
            IpAddr::V6(_) if v6only != Some(true) => Ok(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            IpAddr::V6(_) => Err(
                "listens on [::] for IPv6 only, and this namespace has no ::1 \
                                  on loopback"
                    .into(),
            ),
        };
    }
    if a.is_loopback() {
        return Ok(a);
    }
    if loopback_only {
        return Err("asked on loopback only, and this listener is not on loopback".into());
    }
    if let IpAddr::V6(v6) = a
        && v6.is_unicast_link_local()
    {
        return Err("a link-local address: not probed".into());
    }
    if own.iter().any(|o| o.to_canonical() == a) {
        Ok(a)
    } else {
        Err(format!(
            "{a} is not an address of this namespace (a transparent or free-bind listener): \
             podports only connects to loopback and the pod's own addresses"
        ))
    }
}

/// What one GET got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub target: Target,
    /// The answer, or why there is none (`connection refused`, `timed out after 2s`).
    pub result: Result<http::Answer, String>,
}

impl Outcome {
    /// A 2xx answer within the timeout.
    pub fn passed(&self) -> bool {
        matches!(&self.result, Ok(a) if (200..300).contains(&a.status.code))
    }
}

/// Everything one probe found.
#[derive(Debug, Clone)]
pub struct Report {
    pub netns: NetnsInfo,
    pub timeout: Duration,
    pub outcomes: Vec<Outcome>,
    pub skipped: Vec<Skipped>,
    pub not_listening: Vec<u16>,
    /// The listing's warnings (owners hidden, a fallback taken).
    pub warnings: Vec<String>,
}

impl Report {
    /// Every port asked answered 2xx (true when there was nothing to ask).
    pub fn passed(&self) -> bool {
        self.outcomes.iter().all(Outcome::passed)
    }

    pub fn failed(&self) -> usize {
        self.outcomes.iter().filter(|o| !o.passed()).count()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::catalog::Catalog;
    use crate::model::{Endpoint, Family, ProcessInfo, RawText, SockType};

    fn role(component: Kind, name: &str) -> Role {
        let catalog = Catalog::builtin().unwrap();
        catalog
            .entries()
            .find(|e| e.component == component && e.name == name)
            .unwrap_or_else(|| panic!("no {component} {name} in the catalog"))
            .role()
    }

    fn listener(addr: &str, port: u16, role: Option<Role>, pid: i32) -> Socket {
        let addr: IpAddr = addr.parse().unwrap();
        let mut s = Socket::new(
            Proto::Tcp,
            if addr.is_ipv4() {
                Family::Ipv4
            } else {
                Family::Ipv6
            },
            SockType::Stream,
            State::Listen,
            Endpoint::Inet { addr, port },
            Endpoint::Inet {
                addr: if addr.is_ipv4() {
                    Ipv4Addr::UNSPECIFIED.into()
                } else {
                    Ipv6Addr::UNSPECIFIED.into()
                },
                port: 0,
            },
            pid as u64,
        );
        s.role = role.map(Box::new);
        s.holders.push(Holder {
            process: Arc::new(ProcessInfo {
                pid,
                comm: RawText::from("envoy"),
                ..ProcessInfo::default()
            }),
            fd: 3,
            kind: Kind::Envoy,
            basis: "".into(),
            container: None,
        });
        s
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn every_http_port_is_a_role_of_the_catalog_on_its_port() {
        let catalog = Catalog::builtin().unwrap();
        for h in HTTP_PORTS {
            let r = role(h.component, h.name);
            assert_eq!(r.mesh, h.mesh, "{h:?}");
            let entry = catalog
                .local_role(Proto::Tcp, h.port, &[h.component])
                .unwrap_or_else(|| panic!("{h:?}: no role on port {}", h.port));
            assert_eq!(
                (entry.component, entry.name.as_str()),
                (h.component, h.name)
            );
            assert!(h.path.starts_with('/'));
        }
    }

    #[test]
    fn wildcard_listeners_are_asked_on_loopback() {
        let own = [ip("127.0.0.1"), ip("::1"), ip("10.0.0.5")];
        assert_eq!(
            connect_addr(ip("0.0.0.0"), None, &own, false),
            Ok(ip("127.0.0.1"))
        );
        assert_eq!(
            connect_addr(ip("::"), Some(true), &own, false),
            Ok(ip("::1"))
        );
        // No ::1 (IPv6 off on lo): a dual-stack [::] listener takes 127.0.0.1.
        let v4 = [ip("127.0.0.1")];
        assert_eq!(
            connect_addr(ip("::"), Some(false), &v4, false),
            Ok(ip("127.0.0.1"))
        );
        assert_eq!(
            connect_addr(ip("::"), None, &v4, false),
            Ok(ip("127.0.0.1"))
        );
        assert!(connect_addr(ip("::"), Some(true), &v4, false).is_err());
    }

    #[test]
    fn only_loopback_and_the_pods_own_addresses() {
        let own = [ip("127.0.0.1"), ip("10.0.0.5"), ip("fd00::5")];
        assert_eq!(
            connect_addr(ip("127.0.0.1"), None, &own, true),
            Ok(ip("127.0.0.1"))
        );
        assert_eq!(
            connect_addr(ip("127.0.0.6"), None, &own, false),
            Ok(ip("127.0.0.6"))
        );
        assert_eq!(
            connect_addr(ip("::ffff:127.0.0.1"), None, &own, true),
            Ok(ip("127.0.0.1"))
        );
        assert_eq!(
            connect_addr(ip("10.0.0.5"), None, &own, false),
            Ok(ip("10.0.0.5"))
        );
        assert_eq!(
            connect_addr(ip("::ffff:10.0.0.5"), None, &own, false),
            Ok(ip("10.0.0.5"))
        );
        assert_eq!(
            connect_addr(ip("fd00::5"), None, &own, false),
            Ok(ip("fd00::5"))
        );
        // Bound (free-bind, transparent) to an address that is not the pod's: never.
        let err = connect_addr(ip("10.0.0.9"), None, &own, false).unwrap_err();
        assert!(err.contains("not an address of this namespace"), "{err}");
        assert!(connect_addr(ip("8.8.8.8"), None, &own, false).is_err());
        assert!(connect_addr(ip("fe80::1"), None, &[ip("fe80::1")], false).is_err());
        // Envoy admin beyond loopback: not asked there.
        let err = connect_addr(ip("10.0.0.5"), None, &own, true).unwrap_err();
        assert!(err.contains("loopback only"), "{err}");
    }

    #[test]
    fn the_plan_asks_each_http_role_once_per_address() {
        let own = [ip("127.0.0.1"), ip("10.0.0.5")];
        let sockets = vec![
            listener("127.0.0.1", 15000, Some(role(Kind::Envoy, "admin")), 10),
            // Two workers on one address: one GET.
            listener("0.0.0.0", 15021, Some(role(Kind::Envoy, "readiness")), 10),
            listener("0.0.0.0", 15021, Some(role(Kind::Envoy, "readiness")), 11),
            listener(
                "10.0.0.5",
                15090,
                Some(role(Kind::Envoy, "prometheus-stats")),
                10,
            ),
            // Not HTTP, or no role: never asked.
            listener(
                "0.0.0.0",
                15001,
                Some(role(Kind::Envoy, "virtual-outbound")),
                10,
            ),
            listener("0.0.0.0", 9080, None, 12),
            // Not the pod's address.
            listener(
                "192.0.2.1",
                15020,
                Some(role(Kind::PilotAgent, "status")),
                13,
            ),
        ];
        let p = plan(&sockets, &own, &[]);
        let asked: Vec<String> = p.targets.iter().map(Target::url).collect();
        assert_eq!(
            asked,
            vec![
                "http://127.0.0.1:15000/server_info",
                "http://127.0.0.1:15021/healthz/ready",
                "http://10.0.0.5:15090/stats/prometheus",
            ]
        );
        assert_eq!(p.targets[1].holders.len(), 2);
        assert_eq!(p.skipped.len(), 1);
        assert_eq!(p.skipped[0].port, 15020);
        // 15020 listens (on an address not asked), so it is not among the silent ones.
        assert_eq!(p.not_listening, vec![4191, 8080]);

        let only = plan(&sockets, &own, &[15021, 4191]);
        assert_eq!(only.targets.len(), 1);
        assert!(only.skipped.is_empty());
        assert_eq!(only.not_listening, vec![4191]);
    }

    #[test]
    fn nothing_listening_is_nothing_to_ask() {
        let p = plan(&[], &[], &[]);
        assert!(p.targets.is_empty() && p.skipped.is_empty());
        assert_eq!(
            p.not_listening,
            vec![4191, 8080, 15000, 15020, 15021, 15090]
        );
    }

    #[test]
    fn only_2xx_passes() {
        let t = plan(
            &[listener(
                "0.0.0.0",
                15021,
                Some(role(Kind::Envoy, "readiness")),
                1,
            )],
            &[],
            &[],
        )
        .targets
        .remove(0);
        let with = |result| Outcome {
            target: t.clone(),
            result,
        };
        let answer = |code| {
            Ok(http::Answer {
                status: http::Status {
                    code,
                    reason: Vec::new(),
                },
                latency: Duration::from_millis(1),
            })
        };
        assert!(with(answer(200)).passed());
        assert!(with(answer(204)).passed());
        assert!(!with(answer(301)).passed());
        assert!(!with(answer(503)).passed());
        assert!(!with(Err("connection refused".into())).passed());
    }

    #[test]
    fn durations_read_short() {
        assert_eq!(
            crate::duration::display(Duration::from_millis(850)),
            "850ms"
        );
        assert_eq!(crate::duration::display(Duration::from_secs(2)), "2s");
        assert_eq!(
            crate::duration::display(Duration::from_millis(1500)),
            "1.5s"
        );
    }
}
