//! The graph builder and its renderers on hand-built listings, annotated by the real catalog.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use super::*;
use crate::annotate::annotate;
use crate::catalog::Catalog;
use crate::listing::{Inspection, NetnsInfo};
use crate::model::{
    Endpoint, Family, Holder, ProcessInfo, RawText, SockType, Socket, State, UnixName,
};
use crate::request::Source;

const NETNS: u64 = 4026532000;

fn process(pid: i32, comm: &[u8], netns: u64) -> Arc<ProcessInfo> {
    Arc::new(ProcessInfo {
        pid,
        comm: RawText::new(comm),
        netns_inode: Some(netns),
        ..ProcessInfo::default()
    })
}

fn holder(p: &Arc<ProcessInfo>, kind: Kind) -> Holder {
    Holder {
        process: p.clone(),
        fd: 3,
        kind,
        basis: "test".into(),
        container: None,
    }
}

fn ep(s: &str) -> Endpoint {
    let (a, p) = s.rsplit_once(':').unwrap();
    let a = a.trim_start_matches('[').trim_end_matches(']');
    Endpoint::Inet {
        addr: a.parse::<IpAddr>().unwrap(),
        port: p.parse().unwrap(),
    }
}

fn tcp(state: State, local: &str, remote: &str, inode: u64, holders: Vec<Holder>) -> Socket {
    let family = if local.starts_with('[') {
        Family::Ipv6
    } else {
        Family::Ipv4
    };
    let mut s = Socket::new(
        Proto::Tcp,
        family,
        SockType::Stream,
        state,
        ep(local),
        ep(remote),
        inode,
    );
    s.holders = holders;
    s
}

fn unix(inode: u64, name: UnixName, peer: Option<u64>, holders: Vec<Holder>) -> Socket {
    let mut s = Socket::new(
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
    );
    s.holders = holders;
    s
}

fn inspection(mut sockets: Vec<Socket>) -> Inspection {
    annotate(&mut sockets, &Catalog::builtin().unwrap());
    Inspection {
        netns: NetnsInfo {
            inode: Some(NETNS),
            target: "netns test".into(),
        },
        source: Source::Netlink,
        sockets,
        warnings: Vec::new(),
        hidden_owners: 0,
        fd_walk: None,
        pod: None,
        host_network: false,
        pods: Vec::new(),
    }
}

/// A sidecar pod: pilot-agent and envoy, an app, with XDS over a unix socket, envoy to the
/// agent's 15020, the agent to istiod outside, and two inbound connections from outside.
fn sidecar() -> Inspection {
    let agent = process(10, b"pilot-agent", NETNS);
    let envoy = process(11, b"envoy", NETNS);
    let app = process(12, b"myapp", NETNS);
    let a = || vec![holder(&agent, Kind::PilotAgent)];
    let e = || vec![holder(&envoy, Kind::Envoy)];
    let listen = |l: &str, ino, h| tcp(State::Listen, l, "0.0.0.0:0", ino, h);
    let xds = UnixName::Path(RawText::from("etc/istio/proxy/XDS"));
    inspection(vec![
        listen("127.0.0.1:15000", 1, e()),
        listen("0.0.0.0:15001", 2, e()),
        listen("0.0.0.0:15001", 3, e()),
        listen("0.0.0.0:15006", 4, e()),
        tcp(State::Listen, "[::]:15020", "[::]:0", 5, a()),
        listen("10.0.0.5:9080", 6, vec![holder(&app, Kind::App)]),
        unix(20, xds.clone(), None, a()),
        unix(21, xds, Some(22), a()),
        unix(22, UnixName::Unnamed, Some(21), e()),
        tcp(
            State::Established,
            "127.0.0.1:40000",
            "127.0.0.1:15020",
            30,
            e(),
        ),
        tcp(
            State::Established,
            "127.0.0.1:15020",
            "127.0.0.1:40000",
            31,
            a(),
        ),
        tcp(
            State::Established,
            "10.0.0.5:41000",
            "10.96.0.10:15012",
            32,
            a(),
        ),
        tcp(
            State::Established,
            "10.0.0.5:41001",
            "10.96.0.10:15012",
            33,
            a(),
        ),
        tcp(
            State::Established,
            "10.0.0.5:15006",
            "10.1.0.9:50000",
            34,
            e(),
        ),
        tcp(
            State::Established,
            "10.0.0.5:15006",
            "10.1.0.9:50001",
            35,
            e(),
        ),
        tcp(
            State::Established,
            "10.0.0.5:9080",
            "127.0.0.6:50002",
            36,
            vec![holder(&app, Kind::App)],
        ),
        tcp(
            State::Established,
            "127.0.0.6:50002",
            "10.0.0.5:9080",
            37,
            e(),
        ),
        tcp(
            State::TimeWait,
            "10.0.0.5:50003",
            "10.0.0.5:9080",
            0,
            vec![],
        ),
    ])
}

fn find<'g>(g: &'g Graph, first_line: &str) -> &'g Node {
    g.nodes
        .iter()
        .find(|n| n.lines().first().map(String::as_str) == Some(first_line))
        .unwrap_or_else(|| panic!("no node {first_line:?} in {:#?}", g.nodes))
}

fn edge(g: &Graph, from: &Node, to: &Node) -> Option<Edge> {
    g.edges
        .iter()
        .find(|e| e.from == from.id && e.to == to.id)
        .cloned()
}

#[test]
fn a_sidecar_pod_is_processes_ports_and_who_talks_to_whom() {
    let g = build(&sidecar());
    let envoy = find(&g, "envoy 11");
    let agent = find(&g, "pilot-agent 10");
    let app = find(&g, "app 12");
    assert_eq!(app.lines(), ["app 12", "myapp"]);
    // Two SO_REUSEPORT sockets on 15001: one node, counted.
    let outbound = find(&g, "15001/tcp wildcard");
    assert_eq!(
        outbound.lines(),
        ["15001/tcp wildcard", "envoy virtual-outbound", "2 sockets"]
    );
    assert_eq!(edge(&g, envoy, outbound).unwrap().kind, EdgeKind::Holds);
    let admin = find(&g, "15000/tcp loopback");
    assert_eq!(admin.lines()[1], "envoy admin");
    // envoy -> the agent's 15020, once (the accepted end does not count again).
    let status = find(&g, "15020/tcp wildcard v6");
    assert_eq!(edge(&g, agent, status).unwrap().kind, EdgeKind::Holds);
    let e = edge(&g, envoy, status).unwrap();
    assert_eq!((e.kind, e.count), (EdgeKind::Connects, 1));
    // XDS through its path.
    let xds = find(&g, "etc/istio/proxy/XDS");
    assert_eq!(edge(&g, agent, xds).unwrap().kind, EdgeKind::Holds);
    assert_eq!(edge(&g, envoy, xds).unwrap().count, 1);
    // The agent's two connections to istiod: one edge, count 2, to the remote with its role.
    let istiod = find(&g, "istiod xds-tls :15012");
    assert_eq!(istiod.lines()[1], "10.96.0.10:15012");
    assert_eq!(edge(&g, agent, istiod).unwrap().count, 2);
    // Two inbound connections from one outside client: its address, no port.
    let client = find(&g, "10.1.0.9");
    let inbound = find(&g, "15006/tcp wildcard");
    assert_eq!(edge(&g, client, inbound).unwrap().count, 2);
    // Envoy's passthrough to the app, from 127.0.0.6: envoy is the client.
    let app_port = find(&g, "9080/tcp 10.0.0.5");
    assert_eq!(edge(&g, envoy, app_port).unwrap().count, 1);
    // The TIME_WAIT connection: no process, drawn as closed.
    let closed = find(&g, "closed, no process");
    let tw = edge(&g, closed, app_port).unwrap();
    assert_eq!((tw.kind, tw.count), (EdgeKind::Closed, 1));
    // Nothing else: 3 processes, 5 ports, 1 path, 2 remotes, the closed stand-in; 6 holder
    // edges and 6 connection edges.
    assert_eq!(g.nodes.len(), 12, "{:#?}", g.nodes);
    let holds = g.edges.iter().filter(|e| e.kind == EdgeKind::Holds).count();
    assert_eq!(holds, 6);
    assert_eq!(g.edges.len(), 6 + 6, "{:#?}", g.edges);
}

#[test]
fn warnings_are_drawn_on_the_port_they_belong_to() {
    let app = process(7, b"myapp", NETNS);
    let envoy = process(8, b"envoy", NETNS);
    let ins = inspection(vec![
        tcp(
            State::Listen,
            "0.0.0.0:15021",
            "0.0.0.0:0",
            1,
            vec![holder(&app, Kind::App)],
        ),
        tcp(
            State::Listen,
            "0.0.0.0:15000",
            "0.0.0.0:0",
            2,
            vec![holder(&envoy, Kind::Envoy)],
        ),
    ]);
    let g = build(&ins);
    let squat = find(&g, "15021/tcp wildcard");
    assert_eq!(squat.class(), "warn");
    assert!(squat.warnings[0].contains("reserved for envoy but held by app myapp[7]"));
    let admin = find(&g, "15000/tcp wildcard");
    assert_eq!(admin.class(), "warn");
    assert!(
        admin.warnings[0].contains("beyond loopback"),
        "{:?}",
        admin.warnings
    );
    let mut dot = Vec::new();
    dot::write(&mut dot, &g).unwrap();
    let dot = String::from_utf8(dot).unwrap();
    assert!(dot.contains("fillcolor=\"#f8d7da\""), "{dot}");
}

#[test]
fn hidden_owners_and_holders_outside_the_namespace_are_drawn_as_such() {
    let ztunnel = process(30, b"ztunnel", 999);
    let mut marked = tcp(State::Listen, "[::]:15008", "[::]:0", 1, vec![]);
    marked.mark = Some(1337);
    let mut hidden = tcp(
        State::Established,
        "10.0.0.5:8080",
        "10.1.0.1:5000",
        2,
        vec![],
    );
    hidden.mark = None;
    let mut ins = inspection(vec![
        tcp(
            State::Listen,
            "[::]:15001",
            "[::]:0",
            3,
            vec![holder(&ztunnel, Kind::Ztunnel)],
        ),
        marked,
        hidden,
    ]);
    ins.hidden_owners = 2;
    let g = build(&ins);
    let z = find(&g, "ztunnel 30");
    assert!(z.lines().contains(&"outside this netns".to_string()));
    let unseen: Vec<&Node> = g
        .nodes
        .iter()
        .filter(|n| matches!(n.what, What::Hidden { .. }))
        .collect();
    assert_eq!(unseen.len(), 2, "{:#?}", g.nodes);
    assert!(
        unseen
            .iter()
            .any(|n| n.what == What::Hidden { ztunnel: true })
    );
    assert!(g.notes[0].contains("owners of 2 sockets could not be seen"));
    let port = find(&g, "15008/tcp wildcard v6");
    let marked_owner = unseen
        .iter()
        .find(|n| n.what == What::Hidden { ztunnel: true })
        .unwrap();
    assert_eq!(edge(&g, marked_owner, port).unwrap().kind, EdgeKind::Holds);
}

/// Every format of a graph, as text.
fn render(g: &Graph) -> [String; 4] {
    let mut d = Vec::new();
    dot::write(&mut d, g).unwrap();
    let mut m = Vec::new();
    mermaid::write(&mut m, g).unwrap();
    let mut s = Vec::new();
    svg::write(&mut s, g).unwrap();
    let mut t = Vec::new();
    text::write(&mut t, g, false).unwrap();
    [d, m, s, t].map(|v| String::from_utf8(v).expect("UTF-8 output"))
}

mod formats;
mod large;

#[path = "../../../../tests/dotparse/mod.rs"]
mod dotparse;

#[test]
fn processes_are_grouped_by_container_and_another_pods_is_marked() {
    use crate::model::{ContainerRef, PodRef};
    let pod = |ns: &str, name: &str, uid: &str| PodRef {
        namespace: Some(ns.into()),
        name: Some(name.into()),
        uid: uid.into(),
    };
    let container = |p: &PodRef, name: &str| {
        Some(Arc::new(ContainerRef {
            pod: p.clone(),
            id: Some(format!("{name}-id")),
            name: Some(name.into()),
        }))
    };
    let shop = pod("shop", "productpage-1", "u1");
    let system = pod("istio-system", "ztunnel-x", "u2");
    let envoy = process(11, b"envoy", NETNS);
    let app = process(12, b"myapp", NETNS);
    let zt = process(13, b"ztunnel", 999);
    let mut h_envoy = holder(&envoy, Kind::Envoy);
    h_envoy.container = container(&shop, "istio-proxy");
    let mut h_app = holder(&app, Kind::App);
    h_app.container = container(&shop, "app");
    let mut h_zt = holder(&zt, Kind::Ztunnel);
    h_zt.container = container(&system, "istio-proxy");
    let mut ins = inspection(vec![
        tcp(
            State::Listen,
            "0.0.0.0:15006",
            "0.0.0.0:0",
            1,
            vec![h_envoy],
        ),
        tcp(State::Listen, "0.0.0.0:9080", "0.0.0.0:0", 2, vec![h_app]),
        tcp(State::Listen, "[::]:15008", "[::]:0", 3, vec![h_zt]),
    ]);
    ins.pod = Some(shop);
    let g = build(&ins);
    let labels: Vec<(&str, bool)> = g
        .groups
        .iter()
        .map(|c| (c.label.as_str(), c.outside))
        .collect();
    assert_eq!(labels.len(), 3, "{labels:?}");
    assert!(labels.contains(&("istio-proxy", false)));
    assert!(labels.contains(&("app", false)));
    assert!(labels.contains(&("istio-system/ztunnel-x/istio-proxy", true)));
    // A port is drawn in its holder's container.
    let envoy_node = find(&g, "envoy 11");
    assert_eq!(find(&g, "15006/tcp wildcard").group, envoy_node.group);
    let [d, m, s, t] = render(&g);
    let parsed = dotparse::parse(&d).unwrap();
    let clusters: HashSet<String> = parsed
        .nodes
        .values()
        .filter_map(|n| n.cluster.as_ref().map(|c| c.1.clone()))
        .collect();
    assert!(
        clusters.contains("istio-system/ztunnel-x/istio-proxy\nanother pod"),
        "{clusters:?}"
    );
    assert_eq!(m.matches("subgraph g").count(), 3, "{m}");
    assert_eq!(s.matches("class=\"container\"").count(), 3, "{s}");
    assert!(t.contains("container istio-system/ztunnel-x/istio-proxy (another pod)\n  ztunnel 13, outside this netns"), "{t}");
}

#[test]
fn reuseport_listeners_of_two_processes_each_get_their_own_connections() {
    let w1 = process(21, b"envoy", NETNS);
    let w2 = process(22, b"envoy", NETNS);
    let h1 = || vec![holder(&w1, Kind::Envoy)];
    let h2 = || vec![holder(&w2, Kind::Envoy)];
    let g = build(&inspection(vec![
        tcp(State::Listen, "0.0.0.0:8080", "0.0.0.0:0", 1, h1()),
        tcp(State::Listen, "0.0.0.0:8080", "0.0.0.0:0", 2, h2()),
        tcp(
            State::Established,
            "10.0.0.5:8080",
            "10.1.0.1:4000",
            3,
            h1(),
        ),
        tcp(
            State::Established,
            "10.0.0.5:8080",
            "10.1.0.1:4001",
            4,
            h2(),
        ),
        tcp(
            State::Established,
            "10.0.0.5:8080",
            "10.1.0.1:4002",
            5,
            h2(),
        ),
    ]));
    let client = find(&g, "10.1.0.1");
    let mut counts: Vec<(i32, usize)> = g
        .edges
        .iter()
        .filter(|e| e.from == client.id)
        .map(|e| {
            let holder = g
                .edges
                .iter()
                .find(|h| h.to == e.to && h.kind == EdgeKind::Holds)
                .unwrap();
            match g.nodes[holder.from].what {
                What::Process { pid, .. } => (pid, e.count),
                _ => panic!("{holder:?}"),
            }
        })
        .collect();
    counts.sort_unstable();
    assert_eq!(counts, [(21, 1), (22, 2)]);
}
