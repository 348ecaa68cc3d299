//! Large pods: a gateway's ten thousand connections stay a few hundred nodes.

use super::*;

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
