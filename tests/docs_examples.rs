//! The example outputs of README.md and docs/*.md, made by the program from simulated pods
//! (real processes holding real sockets in fresh network namespaces, tests/common), so that the
//! docs cannot drift from what podports prints. Each example is a golden file under
//! tests/golden/ and a block between `<!-- example NAME -->` and `<!-- end -->` in every
//! Markdown file that shows it; `PODPORTS_BLESS=1 cargo test --locked --test docs_examples`
//! rewrites both (the convention of tests/graph.rs).
//!
//! What changes from run to run is normalised before rendering (`Stable`): pids become 101,
//! 102, ... in pid order (start order); socket inodes 1001, 1002, ... in the order of what their
//! rows show; ephemeral ports 40001, ... by holder and destination of their connection; network
//! namespace inodes 4026532001, ... (the target's first); cgroup ids 9001, ...; executables
//! /usr/local/bin/NAME, each command line its executable alone, pids in warnings as the pids;
//! each process's file descriptors 3, 4, ... in the order of its sockets' inodes;
//! the target `netns demo`.
//! Then the sockets are sorted again, as the program sorts them. Needs root: without it these
//! skip with a reason, and under CI=true fail.
// A test: it makes sockets, files and processes freely (clippy.toml keeps them in sys/).
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;

use std::process::Command;
use std::sync::Arc;

use common::compare::settle;
use common::golden::{golden, markdown_files, root};
use common::{Netns, Proc, Scratch, ambient_pod, install_as, require_root};
use podports::catalog::Catalog;
use podports::check::eval::Report;
use podports::check::expect::{self, Format};
use podports::inspect;
use podports::listing::{self, Inspection};
use podports::model::{Endpoint, FdWalk, RawText};
use podports::render::columns::Layout;
use podports::render::table::{self, Detail};
use podports::render::{check, json, watch};
use podports::request::{Filters, Request, Source, Target};
use podports::sys::node::HostRoot;

/// Every `<!-- example NAME -->` in the docs names a golden file, and every golden file this
/// test writes is shown somewhere (the graph branch's own goldens are not named `example`).
#[test]
fn every_example_block_has_a_golden_file() {
    let mut named = BTreeSet::new();
    for md in markdown_files() {
        let text = fs::read_to_string(&md).unwrap();
        for line in text.lines() {
            let Some(name) = line
                .strip_prefix("<!-- example ")
                .and_then(|l| l.strip_suffix(" -->"))
            else {
                continue;
            };
            let name = name.to_string();
            assert!(
                root().join("tests/golden").join(&name).exists(),
                "{}: example {name} has no tests/golden/{name}",
                md.display()
            );
            assert!(
                EXAMPLES.contains(&name.as_str()),
                "{}: example {name} is made by no test (tests/docs_examples.rs, tests/node.rs)",
                md.display()
            );
            named.insert(name);
        }
    }
    for name in EXAMPLES {
        assert!(named.contains(*name), "no Markdown file shows {name}");
    }
}

/// The examples this file makes.
const EXAMPLES: &[&str] = &[
    "listing-sidecar.txt",
    "listing-filtered.txt",
    "json-admin.json",
    "check-sidecar.txt",
    "check-errors.txt",
    "watch-frame.txt",
    "watch-events.jsonl",
    "watch-closed.txt",
    "watch-closed.jsonl",
    "listing-ambient.txt",
    // Made by tests/node.rs, which simulates a node of pods.
    "check-node.txt",
];

// ---------------------------------------------------------------------------------------------
// Normalisation

/// Maps what changes from run to run to stable values, the same way for every look at one
/// pod (so that two looks of `--watch` agree).
#[derive(Default)]
struct Stable {
    pids: BTreeMap<i32, i32>,
    inodes: BTreeMap<u64, u64>,
    ports: BTreeMap<u16, u16>,
    netns: BTreeMap<u64, u64>,
    cgroups: BTreeMap<u64, u64>,
}

/// Assigns `base`, `base + 1`, ... to the keys of `map` in their order, after adding `new`.
fn renumber<K: Ord + Copy, V: Copy + From<u16> + std::ops::Add<Output = V>>(
    map: &mut BTreeMap<K, V>,
    new: impl IntoIterator<Item = K>,
    base: V,
) {
    for k in new {
        map.entry(k).or_insert(base);
    }
    let keys: Vec<K> = map.keys().copied().collect();
    for (i, k) in keys.into_iter().enumerate() {
        map.insert(k, base + V::from(u16::try_from(i).unwrap()));
    }
}

impl Stable {
    /// Learns the values of every look at one pod.
    fn learn(looks: &[&Inspection]) -> Stable {
        let mut st = Stable::default();
        let sockets = || looks.iter().flat_map(|ins| ins.sockets.iter());
        renumber(
            &mut st.pids,
            sockets().flat_map(|s| s.holders.iter().map(|h| h.process.pid)),
            101,
        );
        // Ephemeral ports: the local port of a connection that nothing listens on, in the
        // order of who made the connection to where (inode numbers are handed out per CPU,
        // so their order is not the order of creation).
        let listening: BTreeSet<u16> = sockets()
            .filter(|s| s.is_listening())
            .filter_map(|s| s.local.port())
            .collect();
        let mut connections: Vec<(String, u16)> = sockets()
            .filter(|s| !s.is_listening())
            .filter_map(|s| match (&s.local, &s.remote) {
                (Endpoint::Inet { addr, port }, Endpoint::Inet { .. })
                    if !listening.contains(port) =>
                {
                    let pids: Vec<i32> =
                        s.holders.iter().map(|h| st.pids[&h.process.pid]).collect();
                    Some((
                        format!("{pids:?} {:?} {addr} {:?}", s.proto, s.remote),
                        *port,
                    ))
                }
                _ => None,
            })
            .collect();
        connections.sort();
        for (_, port) in connections {
            let next = 40001 + u16::try_from(st.ports.len()).unwrap();
            st.ports.entry(port).or_insert(next);
        }
        let by_inode: Vec<_> = sockets().collect();
        // Socket inodes, in the order of what the rows show (an accepted socket's inode is
        // taken whenever the server gets to accept(), so raw inode order is not stable).
        let mut keyed: Vec<(String, u64)> = by_inode.iter().map(|s| (st.key(s), s.inode)).collect();
        keyed.sort();
        keyed.dedup_by_key(|(_, inode)| *inode);
        for (i, (_, inode)) in keyed.into_iter().enumerate() {
            st.inodes.entry(inode).or_insert(1001 + i as u64);
        }
        if let Some(target) = looks.first().and_then(|ins| ins.netns.inode) {
            st.netns.insert(target, 4026532001);
        }
        let mut others: Vec<u64> = sockets()
            .flat_map(|s| s.holders.iter().filter_map(|h| h.process.netns_inode))
            .filter(|i| !st.netns.contains_key(i))
            .collect();
        others.sort_unstable();
        for i in others {
            let next = 4026532001 + st.netns.len() as u64;
            st.netns.entry(i).or_insert(next);
        }
        renumber(&mut st.cgroups, sockets().filter_map(|s| s.cgroup_id), 9001);
        st
    }

    /// What a socket's row shows, with pids and ephemeral ports already stable.
    fn key(&self, s: &podports::model::Socket) -> String {
        let end = |e: &Endpoint| match e {
            Endpoint::Inet { addr, port } => {
                format!("{addr}:{}", self.ports.get(port).copied().unwrap_or(*port))
            }
            Endpoint::UnixLocal(name) => format!("{name:?}"),
            Endpoint::UnixPeer { peer_inode } => format!("peer {}", peer_inode.is_some()),
        };
        let pids: Vec<i32> = s
            .holders
            .iter()
            .map(|h| self.pids[&h.process.pid])
            .collect();
        format!(
            "{:?} {:?} {} {} {pids:?}",
            s.proto,
            s.state,
            end(&s.local),
            end(&s.remote)
        )
    }

    fn apply(&self, mut ins: Inspection) -> Inspection {
        ins.netns.target = "netns demo".into();
        ins.netns.inode = ins.netns.inode.map(|i| self.netns[&i]);
        let port = |p: u16| self.ports.get(&p).copied().unwrap_or(p);
        for s in &mut ins.sockets {
            s.inode = self.inodes[&s.inode];
            s.cgroup_id = s.cgroup_id.map(|c| self.cgroups[&c]);
            for end in [&mut s.local, &mut s.remote] {
                match end {
                    Endpoint::Inet { port: p, .. } => *p = port(*p),
                    Endpoint::UnixPeer {
                        peer_inode: Some(i),
                    } => *i = self.inodes.get(i).copied().unwrap_or(1),
                    _ => {}
                }
            }
            for h in &mut s.holders {
                let mut p = (*h.process).clone();
                p.pid = self.pids[&p.pid];
                p.ppid = self.pids.get(&p.ppid).copied().unwrap_or(1);
                p.netns_inode = p.netns_inode.map(|i| self.netns[&i]);
                let name = p
                    .exe
                    .as_ref()
                    .and_then(|e| {
                        e.as_bytes()
                            .rsplit(|b| *b == b'/')
                            .next()
                            .map(<[u8]>::to_vec)
                    })
                    .unwrap_or_else(|| p.comm.as_bytes().to_vec());
                let exe = RawText::new([b"/usr/local/bin/".as_slice(), &name].concat());
                p.cmdline = vec![exe.clone()];
                p.exe = Some(exe);
                p.parent_exe = None;
                h.process = Arc::new(p);
            }
        }
        // Warnings name holders as `comm[pid]`.
        let pids = |w: &mut String| {
            for (old, new) in &self.pids {
                *w = w.replace(&format!("[{old}]"), &format!("[{new}]"));
            }
        };
        ins.warnings.iter_mut().for_each(pids);
        for s in &mut ins.sockets {
            s.warnings.iter_mut().for_each(pids);
        }
        // File descriptors: which one a process's socket gets depends on the order its
        // threads ran; each process's sockets get 3, 4, ... in the order of their inodes.
        let mut fds: Vec<(i32, u64, usize, usize)> = Vec::new();
        for (si, s) in ins.sockets.iter().enumerate() {
            for (hi, h) in s.holders.iter().enumerate() {
                fds.push((h.process.pid, s.inode, si, hi));
            }
        }
        fds.sort_unstable();
        let mut last = None;
        let mut next = 3;
        for (pid, _, si, hi) in fds {
            if last != Some(pid) {
                (last, next) = (Some(pid), 3);
            }
            ins.sockets[si].holders[hi].fd = next;
            next += 1;
        }
        listing::sort(&mut ins.sockets);
        ins
    }
}

// ---------------------------------------------------------------------------------------------
// The pods

/// `podports --netns NAME` with these filters, in-process.
fn look(ns: &Netns, filters: Filters) -> Inspection {
    let request = Request {
        target: Target::Netns(ns.name().to_string()),
        source: Source::Netlink,
        filters,
        host: HostRoot::new("/"),
        fd_walk: FdWalk::Auto,
    };
    inspect::inspect(&request, &Catalog::builtin().unwrap()).expect("inspect the namespace")
}

/// What a person sees at a terminal of 120 columns (`--width 120`): the docs show the tables
/// for people; piped, cells stay whole and warnings are a column (tests/table.rs).
const TERMINAL: Layout = Layout {
    width: Some(120),
    ..Layout::PLAIN
};

/// The namespace's address families, as `check` reads them.
fn families(ns: &Netns) -> podports::check::eval::Families {
    let request = Request {
        target: Target::Netns(ns.name().to_string()),
        source: Source::Netlink,
        filters: Filters::default(),
        host: HostRoot::new("/"),
        fd_walk: FdWalk::Auto,
    };
    let (families, warning) = podports::check::run::families(&request);
    assert_eq!(warning, None);
    families
}

fn table(ins: &Inspection) -> String {
    let mut out = Vec::new();
    table::write(&mut out, ins, Detail::Normal, TERMINAL).unwrap();
    String::from_utf8(out).unwrap()
}

/// The sidecar pod the examples show, without its app (which `start_app` adds): pilot-agent
/// (status 15020, DNS 15053/udp, the XDS unix socket) and the Envoy it spawns, whose admin
/// port is bound to 0.0.0.0, talking to the agent over TCP and the XDS socket.
struct Pod {
    ns: Netns,
    _root: Scratch,
    _agent: Proc,
}

fn sidecar_without_app() -> Pod {
    let ns = Netns::new();
    ns.add_addr("10.0.0.5/32");
    let root = Scratch::new();
    let chdir = format!("chdir={}", root.path().display());
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
            &format!("spawn={}", envoy.display()),
            "--ready",
            envoy_ready.to_str().unwrap(),
            chdir.as_str(),
            "tcp-listen=0.0.0.0:15000",
            "tcp-listen=0.0.0.0:15001,reuseport",
            "tcp-listen=0.0.0.0:15001,reuseport",
            "tcp-listen=0.0.0.0:15006,reuseport",
            "tcp-listen=0.0.0.0:15006,reuseport",
            "tcp-listen=0.0.0.0:15090",
            "unix-connect=etc/istio/proxy/XDS",
            "tcp-connect=127.0.0.1:15020",
            ";;",
            &format!("wait-file={}", envoy_ready.display()),
        ],
    );
    common::wait_ready_file(&envoy_ready);
    Pod {
        ns,
        _root: root,
        _agent: agent,
    }
}

/// The app: productpage on the pod address, an 8080 nobody named, and Envoy's readiness port
/// 15021 squatted; a connection in from Envoy's inbound passthrough address.
fn start_app(pod: &Pod) -> Proc {
    Proc::start(
        &pod.ns,
        &install_as("myapp"),
        &[
            "tcp-listen=10.0.0.5:9080",
            "tcp-listen=0.0.0.0:8080",
            "tcp-listen=0.0.0.0:15021",
            "tcp-connect=10.0.0.5:9080,from=127.0.0.6",
        ],
    )
}

const CHECK_FILE: &str = "\
extends: istio-sidecar
listen:
  - {port: 9080, owner: app, name: productpage}
  - {path: var/run/secrets/workload-spiffe-uds/socket, optional: true}   # external SDS
strict: true
";

#[cfg_attr(podports_not_root, ignore = "needs root")]
#[test]
fn the_sidecar_pod_examples() {
    if !require_root("the_sidecar_pod_examples") {
        return;
    }
    let pod = sidecar_without_app();
    settle(&pod.ns);
    let before = look(&pod.ns, Filters::default());
    let _app = start_app(&pod);
    settle(&pod.ns);
    let after = look(&pod.ns, Filters::default());
    let admin = look(
        &pod.ns,
        Filters {
            listening: true,
            protos: vec![],
            ports: vec![15000],
        },
    );
    let filtered = look(
        &pod.ns,
        Filters {
            listening: true,
            protos: vec![],
            ports: vec![15000, 15021],
        },
    );
    let stable = Stable::learn(&[&after, &before, &admin, &filtered]);
    let (before, after) = (stable.apply(before), stable.apply(after));
    let (admin, filtered) = (stable.apply(admin), stable.apply(filtered));

    golden("listing-sidecar.txt", &table(&after));
    golden("listing-filtered.txt", &table(&filtered));

    let mut doc = Vec::new();
    json::write(&mut doc, &admin).unwrap();
    doc.push(b'\n');
    golden("json-admin.json", &String::from_utf8(doc).unwrap());

    // check, against the file the docs show (it extends istio-sidecar).
    let exp = expect::load(CHECK_FILE, Format::Yaml, "podports.yaml").expect("the docs' file");
    let report = Report::new(
        &exp,
        vec!["podports.yaml".into()],
        &after,
        families(&pod.ns),
    );
    let mut out = Vec::new();
    check::write_table(&mut out, &report, false, TERMINAL).unwrap();
    assert!(!report.passed());
    golden("check-sidecar.txt", &String::from_utf8(out).unwrap());

    // --watch: the look before the app started, then the one after.
    let diff = podports::watch::diff(&before.sockets, &after.sockets);
    assert!(!diff.appeared.is_empty());
    let mut frame = Vec::new();
    watch::write_frame(
        &mut frame,
        &after,
        &diff,
        &watch::Frame {
            every: "2s",
            at: "08:46:42 UTC",
            first: false,
        },
        Detail::Normal,
        TERMINAL,
    )
    .unwrap();
    let frame = String::from_utf8(frame).unwrap();
    let frame = frame
        .strip_prefix("\x1b[H\x1b[2J\x1b[3J")
        .expect("the frame clears the screen first");
    golden("watch-frame.txt", frame);
    // -o json: the listeners that came, as JSON Lines.
    let listeners = |ins: &Inspection| -> Vec<podports::model::Socket> {
        ins.sockets
            .iter()
            .filter(|s| s.is_listening())
            .cloned()
            .collect()
    };
    let (listeners_before, listeners_after) = (listeners(&before), listeners(&after));
    let mut events = Vec::new();
    watch::write_events(
        &mut events,
        &podports::watch::diff(&listeners_before, &listeners_after),
    )
    .unwrap();
    golden("watch-events.jsonl", &String::from_utf8(events).unwrap());

    closed_section(&after);
}

/// `--watch`'s "closed since the last look", from the pod's own connections: the look `after`
/// is what the watch saw; then each of its TCP connections is destroyed as the kernel's event
/// names it (the 4-tuple and the cookie: no inode, uid, cgroup id or holder), plus one
/// connection accepted on the app's 9080 that no look saw. The real tracker, grouping and
/// renderers make the section and the JSON lines; the times are fixed (looks 2 s apart).
fn closed_section(after: &Inspection) {
    use podports::render::closed::{self, Section, Source};
    use podports::watch::closed::{Tracker, group, listening_ports};
    use std::time::{Duration, UNIX_EPOCH};

    let t0 = UNIX_EPOCH + Duration::from_millis(1_764_752_400_000);
    let mut tracker = Tracker::new();
    tracker.saw(&after.sockets, t0);
    let as_event = |s: &podports::model::Socket, cookie: u64| {
        let mut e = s.clone();
        e.inode = 0;
        e.uid = None;
        e.cgroup_id = None;
        e.holders.clear();
        e.role = None;
        e.peer_role = None;
        e.warnings.clear();
        e.cookie = Some(cookie);
        e
    };
    let mut destroyed = Vec::new();
    let mut at = t0 + Duration::from_millis(1_500);
    for s in after.sockets.iter().filter(|s| {
        s.proto == podports::model::Proto::Tcp && s.state == podports::model::State::Established
    }) {
        destroyed.push((
            at,
            as_event(s, s.cookie.expect("a look's tcp socket has a cookie")),
        ));
        at += Duration::from_millis(100);
    }
    let accepted = after
        .sockets
        .iter()
        .find(|s| s.state == podports::model::State::Established && s.local.port() == Some(9080))
        .expect("the app's accepted connection");
    let mut unseen = as_event(accepted, u64::MAX);
    unseen.remote = Endpoint::Inet {
        addr: "127.0.0.6".parse().unwrap(),
        port: 40099,
    };
    destroyed.push((at, unseen));
    let catalog = Catalog::builtin().unwrap();
    let gone = tracker.closed(destroyed, &Filters::default(), &catalog, &mut |_| None);
    let groups = group(&gone, &listening_ports(&after.sockets));
    let source = Source::Events {
        buffer_note: None,
        tracing_off: None,
    };
    let section = Section {
        source: &source,
        closed: &gone,
        groups: &groups,
        lost: 0,
        lost_total: 0,
    };
    let mut out = Vec::new();
    closed::write_section(&mut out, &section).unwrap();
    golden("watch-closed.txt", &String::from_utf8(out).unwrap());
    let mut out = Vec::new();
    closed::write_events(&mut out, &section, t0 + Duration::from_secs(2)).unwrap();
    golden("watch-closed.jsonl", &String::from_utf8(out).unwrap());
}

#[cfg_attr(podports_not_root, ignore = "needs root")]
#[test]
fn the_ambient_pod_example() {
    if !require_root("the_ambient_pod_example") {
        return;
    }
    let pod = ambient_pod();
    settle(&pod.pod);
    let ins = look(&pod.pod, Filters::default());
    let stable = Stable::learn(&[&ins]);
    golden("listing-ambient.txt", &table(&stable.apply(ins)));
}

/// `check --expect FILE` of files with a mistake each: usage errors, exit 2, whatever the
/// target (the file is read before the target is looked at), so no root is needed.
#[test]
fn the_expectation_file_errors() {
    let dir = Scratch::new();
    let files = [
        ("range.yaml", "listen:\n  - port: 70000\n"),
        ("typo.yaml", "listen:\n  - port: 9080\n    colour: blue\n"),
        ("profile.yaml", "extends: istio-sidecr\n"),
    ];
    let mut got = String::new();
    for (name, text) in files {
        fs::write(dir.join(name), text).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_podports"))
            .current_dir(dir.path())
            .args(["check", "--expect", name])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        assert!(out.stdout.is_empty(), "{out:?}");
        got.push_str(&String::from_utf8(out.stderr).unwrap());
    }
    golden("check-errors.txt", &got);
}

/// A Markdown block after `<!-- file PATH -->` shows the file PATH exactly (the annotated
/// expectation file of docs/check.md is fixtures/check/readme-example.yaml, which the netns
/// tests check against real pods); at least one such block exists.
#[test]
fn shown_files_are_the_files() {
    let mut seen = 0;
    for md in markdown_files() {
        let text = fs::read_to_string(&md).unwrap();
        let mut rest = text.as_str();
        while let Some(at) = rest.find("<!-- file ") {
            let after = &rest[at + "<!-- file ".len()..];
            let (path, after) = after.split_once(" -->\n").expect("`<!-- file PATH -->`");
            let (_fence, body) = after.split_once('\n').expect("a fenced block");
            let end = body.find("```\n").expect("the block's end");
            let want = fs::read_to_string(root().join(path))
                .unwrap_or_else(|e| panic!("{}: {path}: {e}", md.display()));
            assert_eq!(
                &body[..end],
                want,
                "{} shows {path} differently",
                md.display()
            );
            seen += 1;
            rest = &body[end..];
        }
    }
    assert!(seen >= 1, "no `<!-- file PATH -->` block found");
}
