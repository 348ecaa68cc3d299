//! `podports graph` against the kernel: the simulated sidecar, ambient and istiod pods (real
//! processes, real sockets, fresh network namespaces) drawn as DOT, Mermaid, SVG and text; the
//! DOT read back and checked against the listing of the same namespace, node for node and
//! edge for edge. Needs root: without it these skip with a reason, and under CI=true fail.
//! Also docs/graph.md's example, generated from the simulated sidecar pod (PODPORTS_BLESS=1
//! rewrites tests/golden/ and that block).
// A test: it makes sockets, files and processes freely (clippy.toml keeps them in sys/).
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;
mod dotparse;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::PathBuf;
use std::sync::Arc;

use common::compare::{assert_exit, podports, settle};
use common::{Netns, Proc, Scratch, install_as, require_root};
use dotparse::Dot;
use podports::catalog::Catalog;
use podports::inspect;
use podports::listing::Inspection;
use podports::model::{Endpoint, FdWalk, Proto, State, UnixName};
use podports::render::graph::{self, Format, bind_label};
use podports::request::{Filters, Request, Source, Target};
use podports::sys::node::HostRoot;

/// The listing of a namespace, in-process, as `podports --netns NAME` makes it.
fn listing(ns: &Netns) -> Inspection {
    let request = Request {
        target: Target::Netns(ns.name().to_string()),
        source: Source::Netlink,
        filters: Filters::default(),
        host: HostRoot::new("/"),
        fd_walk: FdWalk::Auto,
    };
    inspect::inspect(&request, &Catalog::builtin().unwrap()).expect("inspect the namespace")
}

/// `podports graph --netns NAME -o FORMAT`, which must succeed.
fn graph_of(ns: &Netns, format: &str) -> String {
    let out = podports(&["graph", "--netns", ns.name(), "-o", format]);
    assert_exit(&out, 0);
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// The DOT node whose label's first line is `first`.
fn node<'d>(dot: &'d Dot, first: &str) -> &'d str {
    dot.nodes
        .iter()
        .find(|(_, n)| n.attrs.get("label").and_then(|l| l.lines().next()) == Some(first))
        .map(|(id, _)| id.as_str())
        .unwrap_or_else(|| panic!("no node {first:?}: {:#?}", labels(dot)))
}

fn labels(dot: &Dot) -> Vec<&str> {
    dot.nodes
        .values()
        .filter_map(|n| n.attrs.get("label").map(String::as_str))
        .collect()
}

fn is_holds(e: &dotparse::Edge) -> bool {
    e.attrs.get("arrowhead").map(String::as_str) == Some("none")
}

/// The label of the connection edge from `from` to `to` (None when there is none).
fn edge_label(dot: &Dot, from: &str, to: &str) -> Option<String> {
    let from = node(dot, from);
    let to = node(dot, to);
    dot.edges
        .iter()
        .find(|e| e.from == from && e.to == to && !is_holds(e))
        .map(|e| e.attrs.get("label").cloned().unwrap_or_default())
}

fn process_line(kind: &str, pid: i32) -> String {
    format!("{kind} {pid}")
}

/// What every graph must show of its listing, whatever the pod: every holder, every listener
/// (SO_REUSEPORT sockets counted on one node) with holder edges from exactly its holders,
/// every named unix listener, as many connections as the listing has (pairs counted once),
/// and no node the listing does not justify.
fn assert_graph_matches_listing(dot: &Dot, ins: &Inspection) {
    let first_line = |id: &str| -> String {
        dot.nodes[id].attrs["label"]
            .lines()
            .next()
            .unwrap_or("")
            .to_string()
    };
    // Holders.
    let mut holders: BTreeSet<String> = BTreeSet::new();
    for s in &ins.sockets {
        for h in &s.holders {
            holders.insert(process_line(h.kind.as_str(), h.process.pid));
        }
    }
    for h in &holders {
        node(dot, h);
    }
    // Listeners: (holder lines, first line) -> sockets.
    let mut listeners: BTreeMap<(BTreeSet<String>, String), usize> = BTreeMap::new();
    let mut paths: BTreeSet<String> = BTreeSet::new();
    for s in ins.sockets.iter().filter(|s| s.is_listening()) {
        let owners: BTreeSet<String> = if s.holders.is_empty() {
            ["owner not visible".to_string()].into()
        } else {
            s.holders
                .iter()
                .map(|h| process_line(h.kind.as_str(), h.process.pid))
                .collect()
        };
        match &s.local {
            Endpoint::Inet { addr, port } if *port != 0 => {
                let line = format!("{port}/{} {}", s.proto, bind_label(*addr));
                *listeners.entry((owners, line)).or_default() += 1;
            }
            Endpoint::UnixLocal(UnixName::Path(p)) => {
                paths.insert(String::from_utf8_lossy(p.as_bytes()).into_owned());
            }
            _ => {}
        }
    }
    let listener_nodes: Vec<&String> = dot
        .nodes
        .keys()
        .filter(|id| {
            let l = first_line(id);
            l.split(' ').next().is_some_and(|w| {
                w.contains('/') && w.split('/').next().unwrap().parse::<u16>().is_ok()
            })
        })
        .collect();
    assert_eq!(
        listener_nodes.len(),
        listeners.len(),
        "listener nodes {:?} vs the listing's {listeners:?}",
        listener_nodes
            .iter()
            .map(|id| first_line(id))
            .collect::<Vec<_>>()
    );
    for ((owners, line), count) in &listeners {
        // The node with this first line whose holder edges come from exactly these owners.
        let found = listener_nodes.iter().find(|id| {
            let from: BTreeSet<String> = dot
                .edges
                .iter()
                .filter(|e| &e.to == **id && is_holds(e))
                .map(|e| first_line(&e.from))
                .collect();
            first_line(id) == *line && from == *owners
        });
        let id = found.unwrap_or_else(|| panic!("no node {line} held by {owners:?}"));
        let label = &dot.nodes[id.as_str()].attrs["label"];
        if *count > 1 {
            assert!(label.contains(&format!("\n{count} sockets")), "{label}");
        } else {
            assert!(!label.contains(" sockets"), "{label}");
        }
    }
    for p in &paths {
        node(dot, p);
    }
    // Connections: each pair once (an inet pair whose both ends are listed; a unix pair
    // through a named end), every other connection socket once.
    let inet: Vec<_> = ins
        .sockets
        .iter()
        .filter(|s| !s.is_listening())
        .filter_map(|s| match (&s.local, &s.remote) {
            (Endpoint::Inet { addr, port }, Endpoint::Inet { addr: ra, port: rp }) => {
                Some((s.proto, addr.to_canonical(), *port, ra.to_canonical(), *rp))
            }
            _ => None,
        })
        .collect();
    let tuples: BTreeSet<_> = inet.iter().copied().collect();
    let paired = inet
        .iter()
        .filter(|(p, a, pt, ra, rp)| tuples.contains(&(*p, *ra, *rp, *a, *pt)))
        .count();
    let by_inode: BTreeMap<u64, &podports::model::Socket> =
        ins.sockets.iter().map(|s| (s.inode, s)).collect();
    let unix_pairs = ins
        .sockets
        .iter()
        .filter(|s| s.state != State::Listen && s.proto == Proto::Unix)
        .filter(|s| matches!(s.local, Endpoint::UnixLocal(UnixName::Unnamed)))
        .filter(|s| match s.remote {
            Endpoint::UnixPeer {
                peer_inode: Some(p),
            } => by_inode
                .get(&p)
                .is_some_and(|peer| !matches!(peer.local, Endpoint::UnixLocal(UnixName::Unnamed))),
            _ => false,
        })
        .count();
    let want = inet.len() - paired / 2 + unix_pairs;
    let drawn: usize = dot
        .edges
        .iter()
        .filter(|e| !is_holds(e))
        .map(|e| {
            let l = &e.attrs["label"];
            l.split(' ')
                .next()
                .unwrap()
                .parse::<usize>()
                .unwrap_or_else(|_| panic!("{l}"))
        })
        .sum();
    assert_eq!(
        drawn,
        want,
        "connections drawn vs listed (inet {}, paired {paired}, unix {unix_pairs})",
        inet.len()
    );
    // Nothing unjustified: every node is a holder, a listener, a path, a remote end of a
    // listed socket, or a stand-in the listing calls for.
    let remotes: BTreeSet<String> = ins
        .sockets
        .iter()
        .filter_map(|s| s.remote.addr())
        .map(|a| a.to_canonical().to_string())
        .collect();
    for id in dot.nodes.keys() {
        let l = first_line(id);
        let label = &dot.nodes[id.as_str()].attrs["label"];
        let ok = holders.contains(&l)
            || listener_nodes.contains(&id)
            || paths.contains(&l)
            || (l == "owner not visible"
                && ins
                    .sockets
                    .iter()
                    .any(|s| s.holders.is_empty() && s.inode != 0))
            || (l == "closed, no process"
                && ins.sockets.iter().any(|s| s.state == State::TimeWait))
            // Remote ends grouped: as many addresses as the listing's remote ends, at most.
            || label.lines().nth(1).and_then(|x| x.strip_suffix(" addresses")).and_then(|n| n.parse::<usize>().ok()).is_some_and(|n| n >= 1 && n <= remotes.len())
            || label.lines().any(|x| {
                let host = x.rsplit_once(':').map_or(x, |(h, _)| h);
                remotes.contains(host.trim_matches(['[', ']']))
            });
        assert!(ok, "node {label:?} is not in the listing");
    }
}

/// The SVG is well-formed and carries every line of every DOT label; the Mermaid has every
/// node and edge.
fn assert_svg_and_mermaid_agree(dot: &Dot, svg: &str, mermaid: &str) {
    let doc = roxmltree::Document::parse(svg).unwrap_or_else(|e| panic!("{e}: {svg}"));
    let text: Vec<&str> = doc
        .descendants()
        .filter(|n| n.is_text())
        .filter_map(|n| n.text())
        .collect();
    for l in labels(dot) {
        for line in l.lines() {
            assert!(
                text.iter().any(|t| t.contains(line)),
                "{line:?} not in the SVG"
            );
        }
    }
    let nodes = mermaid
        .lines()
        .filter(|l| {
            let t = l.trim_start();
            t.starts_with('n') && t.contains(":::")
        })
        .count();
    assert_eq!(nodes, dot.nodes.len(), "{mermaid}");
    let edges = mermaid
        .lines()
        .filter(|l| l.contains(" --- ") || l.contains(" -->|") || l.contains(" -.->|"))
        .count();
    assert_eq!(edges, dot.edges.len(), "{mermaid}");
}

/// The simulated sidecar pod of tests/netns.rs: pilot-agent starting envoy, an app, istiod
/// reachable in the pod.
struct SidecarPod {
    ns: Netns,
    _root: Scratch,
    istiod: Proc,
    agent: Proc,
    envoy_pid: i32,
    app: Proc,
}

fn sidecar_pod() -> SidecarPod {
    let ns = Netns::new();
    ns.add_addr("10.0.0.5/32");
    let root = Scratch::new();
    let chdir = format!("chdir={}", root.path().display());
    let istiod = Proc::start(
        &ns,
        &install_as("pilot-discovery"),
        &["tcp-listen=[::]:15012", "tcp-listen=[::]:15017"],
    );
    let envoy_ready = root.join("envoy.ready");
    let envoy = install_as("envoy");
    let agent = Proc::start(
        &ns,
        &install_as("pilot-agent"),
        &[
            chdir.as_str(),
            "tcp-listen=[::]:15020",
            "udp-bind=127.0.0.1:15053",
            "mkdir=etc/istio/proxy",
            "unix-listen=etc/istio/proxy/XDS",
            "tcp-connect=127.0.0.1:15012",
            &format!("spawn={}", envoy.display()),
            "--ready",
            envoy_ready.to_str().unwrap(),
            chdir.as_str(),
            "tcp-listen=127.0.0.1:15000",
            "tcp-listen=0.0.0.0:15001,reuseport",
            "tcp-listen=0.0.0.0:15001,reuseport",
            "tcp-listen=0.0.0.0:15006,reuseport",
            "tcp-listen=0.0.0.0:15006,reuseport",
            "tcp-listen=0.0.0.0:15021",
            "tcp-listen=0.0.0.0:15090",
            "unix-connect=etc/istio/proxy/XDS",
            "tcp-connect=127.0.0.1:15020",
            ";;",
            &format!("wait-file={}", envoy_ready.display()),
        ],
    );
    let envoy_pid = common::wait_ready_file(&envoy_ready).pid;
    let app = Proc::start(
        &ns,
        &install_as("myapp"),
        &[
            "tcp-listen=10.0.0.5:9080",
            "tcp-connect=10.0.0.5:9080,from=127.0.0.6",
            "tcp-timewait=10.0.0.5:9080",
            "udp-connect=127.0.0.1:15053",
        ],
    );
    SidecarPod {
        ns,
        _root: root,
        istiod,
        agent,
        envoy_pid,
        app,
    }
}

#[cfg_attr(podports_not_root, ignore = "needs root")]
#[test]
fn the_sidecar_pod_draws_its_schematic_in_every_format() {
    if !require_root("the_sidecar_pod_draws_its_schematic_in_every_format") {
        return;
    }
    let pod = sidecar_pod();
    settle(&pod.ns);
    let dot_text = graph_of(&pod.ns, "dot");
    let ins = listing(&pod.ns);
    let dot = dotparse::parse(&dot_text).unwrap_or_else(|e| panic!("{e}\n{dot_text}"));
    assert_graph_matches_listing(&dot, &ins);

    let envoy = process_line("envoy", pod.envoy_pid);
    let agent = process_line("pilot-agent", pod.agent.pid());
    let app = process_line("app", pod.app.pid());
    // The schematic: envoy to the agent's status port and its XDS socket, the agent to
    // istiod, the app's connection from 127.0.0.6 and its DNS query, a closed connection.
    assert_eq!(
        edge_label(&dot, &envoy, "15020/tcp wildcard v6").as_deref(),
        Some("1")
    );
    assert_eq!(
        edge_label(&dot, &envoy, "etc/istio/proxy/XDS").as_deref(),
        Some("1")
    );
    assert_eq!(
        edge_label(&dot, &agent, "15012/tcp wildcard v6").as_deref(),
        Some("1")
    );
    assert_eq!(
        edge_label(&dot, &app, "9080/tcp 10.0.0.5").as_deref(),
        Some("1")
    );
    assert_eq!(
        edge_label(&dot, &app, "15053/udp loopback").as_deref(),
        Some("1")
    );
    assert_eq!(
        edge_label(&dot, "closed, no process", "9080/tcp 10.0.0.5").as_deref(),
        Some("1 closed")
    );
    let outbound = &dot.nodes[node(&dot, "15001/tcp wildcard")].attrs["label"];
    assert_eq!(
        outbound,
        "15001/tcp wildcard\nenvoy virtual-outbound\n2 sockets"
    );
    let istiod = &dot.nodes[node(&dot, &process_line("istiod", pod.istiod.pid()))];
    assert_eq!(istiod.attrs["class"], "istiod");
    assert_eq!(dot.nodes[node(&dot, &envoy)].attrs["class"], "envoy");

    let svg = graph_of(&pod.ns, "svg");
    let mermaid = graph_of(&pod.ns, "mermaid");
    assert_svg_and_mermaid_agree(&dot, &svg, &mermaid);
    let text = graph_of(&pod.ns, "table");
    assert!(
        text.contains(&format!("  <- {envoy}, envoy (1)")) || text.contains(&format!("<- {envoy}")),
        "{text}"
    );
}

#[cfg_attr(podports_not_root, ignore = "needs root")]
#[test]
fn the_ambient_pod_shows_ztunnel_outside_and_hidden_owners_as_such() {
    if !require_root("the_ambient_pod_shows_ztunnel_outside_and_hidden_owners_as_such") {
        return;
    }
    let ambient = common::ambient_pod();
    settle(&ambient.pod);
    let dot_text = graph_of(&ambient.pod, "dot");
    let dot = dotparse::parse(&dot_text).unwrap_or_else(|e| panic!("{e}\n{dot_text}"));
    let ins = listing(&ambient.pod);
    assert_graph_matches_listing(&dot, &ins);
    let zt = &dot.nodes[node(&dot, &process_line("ztunnel", ambient.ztunnel.pid()))];
    assert!(zt.attrs["label"].contains("outside this netns"), "{zt:?}");
    assert!(zt.attrs["style"].contains("dashed"), "{zt:?}");
    for first in [
        "15001/tcp wildcard v6",
        "15006/tcp wildcard v6",
        "15008/tcp wildcard v6",
    ] {
        let label = &dot.nodes[node(&dot, first)].attrs["label"];
        assert!(label.contains("ztunnel"), "{label}");
    }
    assert_svg_and_mermaid_agree(
        &dot,
        &graph_of(&ambient.pod, "svg"),
        &graph_of(&ambient.pod, "mermaid"),
    );

    // Seen without the node's processes (an empty /proc, as from a debug container that
    // shares none of them): the same listeners, owned by "owner not visible", which the
    // mark says is ztunnel.
    let empty = Scratch::new();
    let out = podports(&[
        "graph",
        "--fd-walk",
        "proc",
        "--proc-root",
        empty.path().to_str().unwrap(),
        "--netns",
        ambient.pod.name(),
        "-o",
        "dot",
    ]);
    assert_exit(&out, 0);
    let d = dotparse::parse(&String::from_utf8_lossy(&out.stdout)).unwrap();
    let marked = d
        .nodes
        .iter()
        .find(|(_, n)| n.attrs["label"] == "owner not visible\nztunnel (SO_MARK 1337)")
        .map(|(id, _)| id.as_str())
        .unwrap_or_else(|| panic!("{:#?}", labels(&d)));
    for first in ["15001/tcp wildcard v6", "15008/tcp wildcard v6"] {
        let port = node(&d, first);
        assert!(
            d.edges
                .iter()
                .any(|e| e.from == marked && e.to == port && is_holds(e))
        );
    }
}

/// An istiod pod: pilot-discovery's ports, and proxies in another namespace (over a veth
/// pair, 198.18.0.0/24) holding three connections to 15012 and one to 15010.
#[cfg_attr(podports_not_root, ignore = "needs root")]
#[test]
fn the_istiod_pod_draws_clients_outside_the_pod_by_address() {
    if !require_root("the_istiod_pod_draws_clients_outside_the_pod_by_address") {
        return;
    }
    let istiod_ns = Netns::new();
    let proxies = Netns::new();
    istiod_ns.ip(&[
        "link",
        "add",
        "pp-istiod",
        "type",
        "veth",
        "peer",
        "name",
        "pp-proxy",
        "netns",
        proxies.name(),
    ]);
    istiod_ns.ip(&["addr", "add", "198.18.0.2/24", "dev", "pp-istiod"]);
    istiod_ns.ip(&["link", "set", "pp-istiod", "up"]);
    proxies.ip(&["addr", "add", "198.18.0.3/24", "dev", "pp-proxy"]);
    proxies.ip(&["link", "set", "pp-proxy", "up"]);
    let istiod = Proc::start(
        &istiod_ns,
        &install_as("pilot-discovery"),
        &[
            "tcp-listen=[::]:15010",
            "tcp-listen=[::]:15012",
            "tcp-listen=[::]:15014",
            "tcp-listen=[::]:15017",
            "tcp-listen=[::]:8080",
            "tcp-listen=127.0.0.1:9876",
        ],
    );
    let _proxy = common::eventually(
        "a route to istiod",
        std::time::Duration::from_secs(5),
        || {
            Proc::try_start(
                &proxies,
                &install_as("envoy"),
                &[
                    "tcp-connect=198.18.0.2:15012",
                    "tcp-connect=198.18.0.2:15012",
                    "tcp-connect=198.18.0.2:15012",
                    "tcp-connect=198.18.0.2:15010",
                ],
            )
            .map_err(|e| e.to_string())
        },
    );
    settle(&istiod_ns);
    let dot_text = graph_of(&istiod_ns, "dot");
    let dot = dotparse::parse(&dot_text).unwrap_or_else(|e| panic!("{e}\n{dot_text}"));
    let ins = listing(&istiod_ns);
    assert_graph_matches_listing(&dot, &ins);
    let xds = &dot.nodes[node(&dot, "15012/tcp wildcard v6")].attrs["label"];
    assert!(xds.contains("istiod xds-tls"), "{xds}");
    // The proxies are outside the listing: drawn by their address, the 3 connections one edge.
    let client = node(&dot, "198.18.0.3");
    let to_xds = node(&dot, "15012/tcp wildcard v6");
    let e = dot
        .edges
        .iter()
        .find(|e| e.from == client && e.to == to_xds)
        .unwrap_or_else(|| panic!("{:#?}", dot.edges));
    assert_eq!(e.attrs["label"], "3");
    assert_eq!(
        edge_label(&dot, "198.18.0.3", "15010/tcp wildcard v6").as_deref(),
        Some("1")
    );
    let holds = dot
        .edges
        .iter()
        .filter(|e| is_holds(e) && e.from == node(&dot, &process_line("istiod", istiod.pid())))
        .count();
    assert_eq!(holds, 6);
    assert_svg_and_mermaid_agree(
        &dot,
        &graph_of(&istiod_ns, "svg"),
        &graph_of(&istiod_ns, "mermaid"),
    );

    // The proxies' side: istiod is a remote end with its peer role.
    let out = graph_of(&proxies, "table");
    assert!(
        out.contains("-> istiod xds-tls :15012, 198.18.0.2:15012 (3)"),
        "{out}"
    );
}

// ---------------------------------------------------------------------------------------------
// docs/graph.md's example

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The sidecar pod's listing with stable pids (101, 102, ... in pid order) and a stable name,
/// so the example does not change from run to run.
fn stable(mut ins: Inspection) -> Inspection {
    let mut pids: Vec<i32> = ins
        .sockets
        .iter()
        .flat_map(|s| s.holders.iter().map(|h| h.process.pid))
        .collect();
    pids.sort_unstable();
    pids.dedup();
    for s in &mut ins.sockets {
        for h in &mut s.holders {
            let i = pids.binary_search(&h.process.pid).unwrap();
            let mut p = (*h.process).clone();
            p.pid = 101 + i as i32;
            h.process = Arc::new(p);
        }
    }
    ins.netns.target = "netns sidecar-example".into();
    ins
}

/// Compares `got` with the golden file NAME, or writes it under PODPORTS_BLESS=1; then
/// checks that docs/graph.md shows it between `<!-- graph-example NAME -->` and `<!-- end -->`.
fn golden(name: &str, got: &str, fence: &str) {
    let path = root().join("tests/golden").join(name);
    let bless = std::env::var_os("PODPORTS_BLESS").is_some_and(|v| v == "1");
    if bless {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, got).unwrap();
    }
    let want = fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (PODPORTS_BLESS=1 writes it)", path.display()));
    assert_eq!(
        got, want,
        "{name} changed: PODPORTS_BLESS=1 refreshes it and docs/graph.md"
    );
    let doc_path = root().join("docs/graph.md");
    let doc = fs::read_to_string(&doc_path).unwrap();
    let begin = format!("<!-- graph-example {name} -->\n");
    let block = format!("{begin}```{fence}\n{got}```\n<!-- end -->");
    let start = doc
        .find(&begin)
        .unwrap_or_else(|| panic!("docs/graph.md has no {begin:?}"));
    let end = doc[start..]
        .find("<!-- end -->")
        .map(|i| start + i + "<!-- end -->".len())
        .expect("an <!-- end --> after it");
    if bless && doc[start..end] != block {
        fs::write(
            &doc_path,
            format!("{}{block}{}", &doc[..start], &doc[end..]),
        )
        .unwrap();
        return;
    }
    assert_eq!(
        &doc[start..end],
        block,
        "docs/graph.md's {name} example differs from tests/golden (PODPORTS_BLESS=1)"
    );
}

#[cfg_attr(podports_not_root, ignore = "needs root")]
#[test]
fn the_docs_example_is_the_simulated_sidecar_pod() {
    if !require_root("the_docs_example_is_the_simulated_sidecar_pod") {
        return;
    }
    let pod = sidecar_pod();
    settle(&pod.ns);
    let g = graph::build(&stable(listing(&pod.ns)));
    let render = |f| {
        let mut out = Vec::new();
        graph::write(&mut out, &g, f, false).unwrap();
        String::from_utf8(out).unwrap()
    };
    golden("sidecar.txt", &render(Format::Text), "text");
    golden("sidecar.mmd", &render(Format::Mermaid), "mermaid");
}

#[cfg_attr(podports_not_root, ignore = "needs root")]
#[test]
fn the_listings_filters_apply_before_or_after_graph() {
    if !require_root("the_listings_filters_apply_before_or_after_graph") {
        return;
    }
    let pod = sidecar_pod();
    settle(&pod.ns);
    for args in [
        &[
            "graph",
            "--netns",
            pod.ns.name(),
            "-o",
            "dot",
            "-t",
            "--port",
            "15012",
        ][..],
        &[
            "graph",
            "-t",
            "--port",
            "15012",
            "--netns",
            pod.ns.name(),
            "-o",
            "dot",
        ][..],
    ] {
        let out = podports(args);
        assert_exit(&out, 0);
        let dot = dotparse::parse(&String::from_utf8_lossy(&out.stdout)).unwrap();
        let mut got: Vec<&str> = labels(&dot)
            .into_iter()
            .map(|l| l.lines().next().unwrap())
            .collect();
        got.sort_unstable();
        let istiod = process_line("istiod", pod.istiod.pid());
        let agent = process_line("pilot-agent", pod.agent.pid());
        let mut want = vec!["15012/tcp wildcard v6", istiod.as_str(), agent.as_str()];
        want.sort_unstable();
        assert_eq!(got, want, "{args:?}");
        assert_eq!(
            edge_label(&dot, &agent, "15012/tcp wildcard v6").as_deref(),
            Some("1")
        );
    }
    // -l: listeners only, no connection edge.
    let out = podports(&["graph", "--netns", pod.ns.name(), "-o", "dot", "-l"]);
    assert_exit(&out, 0);
    let dot = dotparse::parse(&String::from_utf8_lossy(&out.stdout)).unwrap();
    assert!(dot.edges.iter().all(is_holds), "{:#?}", dot.edges);
}

#[test]
fn wrong_formats_and_targets_are_usage_errors() {
    for (args, says) in [
        (&["graph", "-o", "json"][..], "graph draws text"),
        (&["graph", "-o", "wide"][..], "graph draws text"),
        (&["-o", "dot"][..], "draw `podports graph`"),
        (&["catalog", "-o", "svg"][..], "draw `podports graph`"),
        (&["graph", "--all-pods"][..], "graph draws one target"),
        (
            &["graph", "--pid", "1", "--netns", "x"][..],
            "cannot be used with",
        ),
    ] {
        let out = podports(args);
        assert_exit(&out, 2);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

/// A gateway pod: four envoy processes on 8080 (SO_REUSEPORT: the helper's single poll loop
/// accepts a few thousand connections each in good time, not 10,000), 10,000 connections in
/// from 20 clients outside the pod (another namespace over a veth pair). The picture stays a handful of nodes (the
/// clients grouped past the limit), every connection counted; the time is printed, not
/// asserted.
#[cfg_attr(podports_not_root, ignore = "needs root")]
#[test]
fn a_gateway_with_ten_thousand_connections_stays_small() {
    if !require_root("a_gateway_with_ten_thousand_connections_stays_small") {
        return;
    }
    const CLIENTS: usize = 20;
    const PER_CLIENT: usize = 500;
    let (soft, hard) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .expect("getrlimit");
    let need = (CLIENTS * PER_CLIENT + 64) as u64;
    assert!(hard >= need, "RLIMIT_NOFILE hard limit {hard} < {need}");
    if soft < need {
        nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, hard, hard)
            .expect("setrlimit");
    }
    let gw = Netns::new();
    let outside = Netns::new();
    gw.ip(&[
        "link",
        "add",
        "pp-gw",
        "type",
        "veth",
        "peer",
        "name",
        "pp-out",
        "netns",
        outside.name(),
    ]);
    gw.ip(&["addr", "add", "198.18.0.2/24", "dev", "pp-gw"]);
    gw.ip(&["link", "set", "pp-gw", "up"]);
    outside.ip(&["link", "set", "pp-out", "up"]);
    let mut ops = Vec::new();
    for i in 0..CLIENTS {
        outside.ip(&[
            "addr",
            "add",
            &format!("198.18.0.{}/24", 10 + i),
            "dev",
            "pp-out",
        ]);
        ops.push(format!(
            "tcp-connect=198.18.0.2:8080,from=198.18.0.{},count={PER_CLIENT}",
            10 + i
        ));
    }
    let _envoys: Vec<Proc> = (0..4)
        .map(|_| {
            Proc::start(
                &gw,
                &install_as("envoy"),
                &["tcp-listen=0.0.0.0:8080,reuseport,backlog=4096"],
            )
        })
        .collect();
    let _clients = common::eventually(
        "a route to the gateway",
        std::time::Duration::from_secs(30),
        || Proc::try_start(&outside, &install_as("loadgen"), &ops).map_err(|e| e.to_string()),
    );
    settle(&gw);

    let start = std::time::Instant::now();
    let out = podports(&["graph", "--netns", gw.name(), "-o", "svg"]);
    let svg_time = start.elapsed();
    assert_exit(&out, 0);
    roxmltree::Document::parse(&String::from_utf8_lossy(&out.stdout)).expect("well-formed SVG");
    let start = std::time::Instant::now();
    let dot_text = graph_of(&gw, "dot");
    let dot_time = start.elapsed();
    let dot = dotparse::parse(&dot_text).unwrap_or_else(|e| panic!("{e}\n{dot_text}"));
    let ins = listing(&gw);
    assert_eq!(ins.sockets.len(), CLIENTS * PER_CLIENT + 4);
    assert_graph_matches_listing(&dot, &ins);
    eprintln!(
        "gateway, {} sockets: {} nodes, {} edges; podports graph -o svg {svg_time:?}, \
         -o dot {dot_time:?} (listing included)",
        ins.sockets.len(),
        dot.nodes.len(),
        dot.edges.len()
    );
    assert!(dot.nodes.len() <= 300 && dot.edges.len() <= 600);
    let clients = node(&dot, "clients outside the pod");
    assert!(dot.nodes[clients].attrs["label"].contains(&format!("\n{CLIENTS} addresses")));
    let reached: usize = dot
        .edges
        .iter()
        .filter(|e| e.from == clients)
        .map(|e| {
            assert!(dot.nodes[&e.to].attrs["label"].starts_with("8080/tcp wildcard"));
            e.attrs["label"].parse::<usize>().unwrap()
        })
        .sum();
    assert_eq!(reached, CLIENTS * PER_CLIENT);
    // Each envoy's connections go to its own listener (the kernel spreads them over all four).
    assert_eq!(dot.edges.iter().filter(|e| e.from == clients).count(), 4);
}
