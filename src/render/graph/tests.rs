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

fn hostile() -> Inspection {
    let names: [&[u8]; 4] = [
        b"ev\"il\\\n\x1b[31m<b>&amp;</b>",
        "bidi\u{202e}cod.exe\u{fffe}".as_bytes(),
        b"}; n0 -> n1 [label=x]; \"",
        b"end\n%%{init}%%\xff\xfe",
    ];
    let mut sockets = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let p = process(100 + i as i32, name, NETNS);
        let path = UnixName::Path(RawText::new(*name));
        let inode = 10 * (i as u64 + 1);
        sockets.push(unix(inode, path.clone(), None, vec![holder(&p, Kind::App)]));
        sockets.push(unix(
            inode + 1,
            path,
            Some(inode + 2),
            vec![holder(&p, Kind::App)],
        ));
        sockets.push(unix(
            inode + 2,
            UnixName::Unnamed,
            Some(inode + 1),
            vec![holder(&p, Kind::App)],
        ));
        sockets.push(tcp(
            State::Listen,
            &format!("127.0.0.1:{}", 8000 + i),
            "0.0.0.0:0",
            inode + 3,
            vec![holder(&p, Kind::App)],
        ));
    }
    let mut ins = inspection(sockets);
    ins.netns.target = "netns \"x\x07\"".into();
    ins.warnings.push("bad\x1b]0;title\x07 <warning>".into());
    ins
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

#[test]
fn hostile_names_stay_text_in_every_format() {
    let g = build(&hostile());
    let [d, m, s, t] = render(&g);
    for (what, out) in [("dot", &d), ("mermaid", &m), ("svg", &s), ("text", &t)] {
        assert!(
            !out.chars().any(|c| c.is_control() && c != '\n'),
            "{what}: a raw control character in {out}"
        );
        assert!(!out.contains('\u{202e}'), "{what}: a raw bidi override");
    }
    // Every DOT string reads back to the escaped name, and the graph has exactly its nodes.
    let parsed = dotparse::parse(&d).unwrap_or_else(|e| panic!("{e}\n{d}"));
    assert_eq!(parsed.nodes.len(), g.nodes.len());
    assert_eq!(parsed.edges.len(), g.edges.len());
    let labels: Vec<&str> = parsed
        .nodes
        .values()
        .map(|n| n.attrs["label"].as_str())
        .collect();
    assert!(
        labels.contains(&"app 100\nev\"il\\\\\\n\\x1b[31m<b>&amp;</b>"),
        "{labels:#?}"
    );
    assert!(
        labels
            .iter()
            .any(|l| l.ends_with("\n}; n0 -> n1 [label=x]; \"")),
        "{labels:#?}"
    );
    // Mermaid: no quote or markup inside a label, entities instead.
    for line in m
        .lines()
        .filter(|l| l.contains('"') && !l.starts_with("%%"))
    {
        let inner: Vec<&str> = line.split('"').collect();
        assert_eq!(inner.len() % 2, 1, "unbalanced quotes: {line}");
        for label in inner.iter().skip(1).step_by(2) {
            assert!(
                !label.contains(['<', '>', '&', '|', '\\']) || label.contains("<br/>"),
                "{line}"
            );
            assert!(!label.replace("<br/>", "").contains(['<', '>']), "{line}");
        }
    }
    assert!(m.contains("#34;"), "{m}");
    assert!(!m.contains("%%{init}"), "{m}");
    // SVG: well-formed XML, every label's text in it.
    let doc = roxmltree::Document::parse(&s).unwrap_or_else(|e| panic!("{e}: {s}"));
    let text: String = doc
        .descendants()
        .filter(|n| n.is_text())
        .filter_map(|n| n.text())
        .collect();
    for n in &g.nodes {
        for l in n.lines() {
            assert!(text.contains(&svg::xml_text(&l)), "{l:?} not in the SVG");
        }
    }
    assert!(text.contains("\\u{fffe}"), "U+FFFE escaped: {text}");
    // Text: names escaped, one line each.
    assert!(
        t.contains("app 100, ev\"il\\\\\\n\\x1b[31m<b>&amp;</b>"),
        "{t}"
    );
    assert!(t.contains("note: bad\\x1b]0;title\\x07 <warning>"), "{t}");
}

#[test]
fn an_empty_listing_renders_in_every_format() {
    let g = build(&inspection(Vec::new()));
    assert!(g.nodes.is_empty() && g.edges.is_empty());
    let [d, _, s, t] = render(&g);
    assert!(dotparse::parse(&d).unwrap().nodes.is_empty());
    roxmltree::Document::parse(&s).unwrap();
    assert!(t.starts_with("netns test"));
}

/// A gateway: envoy with two listeners, 10k connections in from 4000 clients, 2000 out to
/// 400 upstreams on 30 ports (one with a mesh role), plus the agent.
fn gateway() -> Inspection {
    let agent = process(1, b"pilot-agent", NETNS);
    let envoy = process(2, b"envoy", NETNS);
    let e = || vec![holder(&envoy, Kind::Envoy)];
    let mut sockets = vec![
        tcp(State::Listen, "0.0.0.0:8080", "0.0.0.0:0", 1, e()),
        tcp(State::Listen, "0.0.0.0:8443", "0.0.0.0:0", 2, e()),
        tcp(
            State::Listen,
            "[::]:15020",
            "[::]:0",
            3,
            vec![holder(&agent, Kind::PilotAgent)],
        ),
    ];
    let mut inode = 100;
    for i in 0..10_000u32 {
        inode += 1;
        let client = format!(
            "10.{}.{}.{}:{}",
            1 + i % 7,
            (i / 7) % 250,
            (i % 4000) % 250,
            20000 + i % 40000
        );
        let local = if i % 3 == 0 {
            "10.0.0.5:8443"
        } else {
            "10.0.0.5:8080"
        };
        sockets.push(tcp(State::Established, local, &client, inode, e()));
    }
    for i in 0..2_000u32 {
        inode += 1;
        let port = if i % 10 == 0 {
            15012
        } else {
            9000 + (i % 30) as u16
        };
        let server = format!("10.96.{}.{}:{port}", (i % 400) / 250, (i % 400) % 250);
        sockets.push(tcp(
            State::Established,
            &format!("10.0.0.5:{}", 30000 + i),
            &server,
            inode,
            e(),
        ));
    }
    inspection(sockets)
}

#[test]
fn a_gateway_with_ten_thousand_connections_stays_a_few_hundred_nodes() {
    let ins = gateway();
    let start = Instant::now();
    let g = build(&ins);
    let built = start.elapsed();
    let [d, m, s, t] = render(&g);
    let total = start.elapsed();
    eprintln!(
        "gateway, {} sockets: graph of {} nodes and {} edges built in {built:?}, built and \
         rendered (dot {} B, mermaid {} B, svg {} B, text {} B) in {total:?}",
        ins.sockets.len(),
        g.nodes.len(),
        g.edges.len(),
        d.len(),
        m.len(),
        s.len(),
        t.len()
    );
    assert!(g.nodes.len() <= 300, "{} nodes", g.nodes.len());
    assert!(g.edges.len() <= 600, "{} edges", g.edges.len());
    // Every connection is still counted, in some edge.
    let connects: usize = g
        .edges
        .iter()
        .filter(|e| e.kind == EdgeKind::Connects)
        .map(|e| e.count)
        .sum();
    assert_eq!(connects, 12_000);
    // The role survives grouping: istiod's port is one node, the rest by port.
    let istiod = find(&g, "istiod xds-tls :15012");
    assert_eq!(
        istiod.what,
        What::Remotes {
            label: "istiod xds-tls :15012".into(),
            addresses: 40
        }
    );
    assert!(g.notes.iter().any(|n| n.contains("grouped")));
    roxmltree::Document::parse(&s).unwrap();
}

#[test]
fn remote_ends_stay_apart_below_the_limit() {
    let envoy = process(2, b"envoy", NETNS);
    let e = || vec![holder(&envoy, Kind::Envoy)];
    let mut sockets = vec![tcp(State::Listen, "0.0.0.0:8080", "0.0.0.0:0", 1, e())];
    for i in 0..REMOTE_LIMIT as u64 {
        sockets.push(tcp(
            State::Established,
            "10.0.0.5:8080",
            &format!("10.1.0.{i}:4000"),
            10 + i,
            e(),
        ));
    }
    let g = build(&inspection(sockets));
    let remotes = g
        .nodes
        .iter()
        .filter(|n| matches!(n.what, What::Remote { .. }))
        .count();
    assert_eq!(remotes, REMOTE_LIMIT);
}

#[path = "../../../tests/dotparse/mod.rs"]
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
