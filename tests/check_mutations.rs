//! Proof by mutation that `check` has no false pass on the built-in profiles. For each profile
//! in profiles/, a conformant simulated pod is built from its own items (real processes under
//! the owners' names holding real sockets in a fresh network namespace, as the netns tests
//! do) and must pass; then every single mutation, one at a time, each in a fresh pod, must
//! fail (exit 1) naming the port:
//! - a required listener removed;
//! - a loopback bind widened to the wildcard address;
//! - a wildcard bind narrowed to loopback, and to a v6-only `[::]` (the pod has an IPv4
//!   address);
//! - an owner replaced by an app squatting the port;
//! - a forbidden listener added;
//! - under `strict: true`, an unnamed extra listener added;
//! - for istio-ambient, a ztunnel listener held from inside the pod instead of from ztunnel's
//!   own namespace.
//!
//! Optional items are mutated when present (wrong owner, wrong bind). A profile item with no
//! mutation is a failure. The table (profile x item x mutation -> caught) is printed and kept
//! in docs/check-mutations.md (`PODPORTS_BLESS=1` rewrites it). Needs root: without it this
//! skips with a reason, and under CI=true fails.
// A test: it makes sockets, files and processes freely (clippy.toml keeps them in sys/).
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;
use std::process::Command;

use common::{Netns, Proc, Scratch, install_as, require_root};
use podports::catalog::Bind;
use podports::check::eval::Status;
use podports::check::expect::{self, BindSpec, Expectations, Format, Owner, Target};
use podports::check::profiles;
use podports::model::{Kind, Proto};
use podports::render::check::CheckDocument;

/// One socket of the simulated pod.
#[derive(Debug, Clone)]
struct Sock {
    /// The podports-sockholder op, without `chdir`/`mkdir`.
    op: String,
    /// A unix path's directory to create first (relative to the pod's root).
    dir: Option<String>,
    /// The executable name of the process holding it.
    exe: String,
    /// Opened in the pod, then held from another namespace (ambient ztunnel).
    outside: bool,
}

fn exe_of(owner: &Option<Owner>) -> String {
    match owner {
        Some(Owner::Kind(k)) => match k {
            Kind::Envoy => "envoy",
            Kind::PilotAgent => "pilot-agent",
            Kind::Ztunnel => "ztunnel",
            Kind::Istiod => "pilot-discovery",
            Kind::LinkerdProxy => "linkerd2-proxy",
            Kind::App => "myapp",
        }
        .to_string(),
        Some(Owner::Comm(c)) => c.clone(),
        None => "myapp".to_string(),
    }
}

/// The address a listener of `bind` is opened on in the conformant pod (IPv4, pod IP
/// 10.0.0.5): loopback 127.0.0.1, wildcard (and don't care) 0.0.0.0.
fn addr_of(bind: BindSpec) -> String {
    match bind {
        BindSpec::Class(Bind::Loopback) => "127.0.0.1".into(),
        BindSpec::Class(_) => "0.0.0.0".into(),
        BindSpec::Addr(a) if a.is_ipv6() => format!("[{a}]"),
        BindSpec::Addr(a) => a.to_string(),
    }
}

fn sock(target: &Target, addr: &str, opts: &str, exe: String, outside: bool) -> Sock {
    let (op, dir) = match target {
        Target::Inet { proto, port } => {
            let verb = if *proto == Proto::Udp {
                "udp-bind"
            } else {
                "tcp-listen"
            };
            (format!("{verb}={addr}:{port}{opts}"), None)
        }
        Target::Unix { path } if path.starts_with('@') => (format!("unix-listen={path}"), None),
        Target::Unix { path } => {
            let rel = path.trim_start_matches('/').to_string();
            let dir = rel.rsplit_once('/').map(|(d, _)| d.to_string());
            (format!("unix-listen={rel}"), dir)
        }
    };
    Sock {
        op,
        dir,
        exe,
        outside,
    }
}

/// The port or path a failing result must name.
fn named(target: &Target) -> String {
    target.to_string()
}

struct Mutation {
    item: String,
    what: &'static str,
    pod: Vec<Sock>,
    strict: bool,
    /// The port or path the failure must name.
    names: String,
}

/// The conformant pod and every mutation of it, for one profile.
fn plan(profile: &str, exp: &Expectations) -> (Vec<Sock>, Vec<Mutation>) {
    let ambient = profile == "istio-ambient";
    let outside = |owner: &Option<Owner>| ambient && *owner == Some(Owner::Kind(Kind::Ztunnel));
    let listen_sock = |l: &expect::Listen, addr: &str, opts: &str, exe: String, out: bool| {
        sock(&l.target, addr, opts, exe, out)
    };
    let mut pod = Vec::new();
    let mut index = Vec::new();
    for l in &exp.listen {
        if l.optional {
            index.push(None);
        } else {
            index.push(Some(pod.len()));
            pod.push(listen_sock(
                l,
                &addr_of(l.bind),
                "",
                exe_of(&l.owner),
                outside(&l.owner),
            ));
        }
    }
    let mut muts = Vec::new();
    for (l, at) in exp.listen.iter().zip(&index) {
        let item = l.describe();
        let names = named(&l.target);
        let out = outside(&l.owner);
        let exe = exe_of(&l.owner);
        // Replace the item's socket (required) or add one (optional, checked when present).
        let with = |s: Sock| -> Vec<Sock> {
            let mut p = pod.clone();
            match at {
                Some(i) => p[*i] = s,
                None => p.push(s),
            }
            p
        };
        let mut add = |what: &'static str, p: Vec<Sock>| {
            muts.push(Mutation {
                item: item.clone(),
                what,
                pod: p,
                strict: false,
                names: names.clone(),
            })
        };
        if let Some(i) = at {
            let mut p = pod.clone();
            p.remove(*i);
            add("required listener removed", p);
        }
        match l.bind {
            BindSpec::Class(Bind::Loopback) => {
                add(
                    "loopback widened to 0.0.0.0",
                    with(listen_sock(l, "0.0.0.0", "", exe.clone(), out)),
                );
                add(
                    "loopback widened to [::]",
                    with(listen_sock(l, "[::]", ",v6only=off", exe.clone(), out)),
                );
            }
            BindSpec::Class(Bind::Wildcard) => {
                add(
                    "wildcard narrowed to loopback",
                    with(listen_sock(l, "127.0.0.1", "", exe.clone(), out)),
                );
                add(
                    "wildcard narrowed to v6-only [::]",
                    with(listen_sock(l, "[::]", ",v6only=on", exe.clone(), out)),
                );
            }
            _ => {}
        }
        if matches!(&l.owner, Some(o) if *o != Owner::Kind(Kind::App)) {
            add(
                "owner replaced by an app",
                with(listen_sock(l, &addr_of(l.bind), "", "myapp".into(), false)),
            );
        }
        if out {
            add(
                "ztunnel listener held from inside the pod",
                with(listen_sock(l, &addr_of(l.bind), "", exe.clone(), false)),
            );
        }
    }
    for f in &exp.forbid {
        let mut p = pod.clone();
        p.push(sock(
            &f.target,
            &addr_of(f.bind),
            "",
            exe_of(&f.owner),
            false,
        ));
        muts.push(Mutation {
            item: f.describe(),
            what: "forbidden listener added",
            pod: p,
            strict: false,
            names: named(&f.target),
        });
    }
    let mut p = pod.clone();
    p.push(sock(
        &Target::Inet {
            proto: Proto::Tcp,
            port: 7777,
        },
        "0.0.0.0",
        "",
        "myapp".into(),
        false,
    ));
    muts.push(Mutation {
        item: "strict: true".into(),
        what: "unnamed extra listener added",
        pod: p,
        strict: true,
        names: ":7777".into(),
    });
    (pod, muts)
}

/// A pod running `socks`: one process per (owner, inside or outside), in a fresh namespace
/// with the pod IP 10.0.0.5 on lo; `outside` ones move to a second namespace once their
/// sockets are open.
struct Pod {
    ns: Netns,
    _node: Netns,
    _root: Scratch,
    _procs: Vec<Proc>,
}

fn start(socks: &[Sock]) -> Pod {
    let ns = Netns::new();
    ns.add_addr("10.0.0.5/32");
    let node = Netns::new();
    let root = Scratch::new();
    let mut groups: BTreeMap<(String, bool), Vec<String>> = BTreeMap::new();
    for s in socks {
        let ops = groups
            .entry((s.exe.clone(), s.outside))
            .or_insert_with(|| vec![format!("chdir={}", root.path().display())]);
        if let Some(d) = &s.dir {
            ops.push(format!("mkdir={d}"));
        }
        ops.push(s.op.clone());
    }
    let mut procs = Vec::new();
    for ((exe, outside), mut ops) in groups {
        if outside {
            ops.push(format!("setns={}", node.path().display()));
        }
        procs.push(Proc::start(&ns, &install_as(&exe), &ops));
    }
    Pod {
        ns,
        _node: node,
        _root: root,
        _procs: procs,
    }
}

fn check(pod: &Pod, args: &[&str]) -> (Option<i32>, CheckDocument) {
    let mut all = vec!["check", "-o", "json", "--netns", pod.ns.name()];
    all.extend_from_slice(args);
    let o = Command::new(env!("CARGO_BIN_EXE_podports"))
        .args(&all)
        .output()
        .expect("run podports");
    let doc = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "podports {all:?}: not a check document ({e}): {}",
            String::from_utf8_lossy(&o.stderr)
        )
    });
    (o.status.code(), doc)
}

/// The failing results, one line each.
fn failing(doc: &CheckDocument) -> Vec<String> {
    doc.results
        .iter()
        .filter(|r| matches!(r.status, Status::Fail | Status::Unknown))
        .map(|r| {
            let found: Vec<&str> = r.found.iter().map(|f| f.local.as_str()).collect();
            format!("{}: {} [{}]", r.expected, r.reason, found.join(", "))
        })
        .collect()
}

#[cfg_attr(podports_not_root, ignore = "needs root")]
#[test]
fn every_single_mutation_of_every_profile_is_caught() {
    if !require_root("every_single_mutation_of_every_profile_is_caught") {
        return;
    }
    let dir = Scratch::new();
    let mut rows: Vec<(String, String, String, bool)> = Vec::new();
    let mut escaped = Vec::new();
    for p in profiles::ALL {
        let exp = expect::load(p.text, Format::Yaml, p.name).expect("a built-in profile");
        let (conformant, muts) = plan(p.name, &exp);
        // Every item has at least one mutation.
        for item in exp
            .listen
            .iter()
            .map(|l| l.describe())
            .chain(exp.forbid.iter().map(|f| f.describe()))
        {
            assert!(
                muts.iter().any(|m| m.item == item),
                "{}: `{item}` has no mutation: teach tests/check_mutations.rs one",
                p.name
            );
        }
        let strict_file = dir.join(format!("{}-strict.yaml", p.name));
        fs::write(&strict_file, format!("extends: {}\nstrict: true\n", p.name)).unwrap();
        let strict_file = strict_file.to_str().unwrap().to_string();
        let profile_args = ["--profile", p.name];
        let strict_args = ["--expect", strict_file.as_str()];

        let pod = start(&conformant);
        for args in [&profile_args, &strict_args] {
            let (code, doc) = check(&pod, args);
            assert_eq!(
                code,
                Some(0),
                "{}: the conformant pod fails {args:?}: {:#?}",
                p.name,
                failing(&doc)
            );
        }
        drop(pod);

        for m in muts {
            let pod = start(&m.pod);
            let args: &[&str] = if m.strict {
                &strict_args
            } else {
                &profile_args
            };
            let (code, doc) = check(&pod, args);
            let fails = failing(&doc);
            let caught = code == Some(1) && fails.iter().any(|f| f.contains(&m.names));
            if !caught {
                escaped.push(format!(
                    "{} / {} / {}: exit {code:?}, failing {fails:#?}",
                    p.name, m.item, m.what
                ));
            }
            rows.push((p.name.to_string(), m.item, m.what.to_string(), caught));
        }
    }

    // The annotated example of docs/check.md, on the sidecar pod with the app's port: it
    // passes the conformant pod and fails one without Envoy's admin and readiness ports.
    let example =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/check/readme-example.yaml");
    let example_args = ["--expect", example.to_str().unwrap()];
    let sidecar = profiles::get("istio-sidecar").unwrap();
    let exp = expect::load(sidecar.text, Format::Yaml, sidecar.name).unwrap();
    let (mut conformant, _) = plan(sidecar.name, &exp);
    conformant.push(Sock {
        op: "tcp-listen=10.0.0.5:9080".into(),
        dir: None,
        exe: "myapp".into(),
        outside: false,
    });
    let pod = start(&conformant);
    let (code, doc) = check(&pod, &example_args);
    assert_eq!(
        code,
        Some(0),
        "the example fails a conformant pod: {:#?}",
        failing(&doc)
    );
    drop(pod);
    let broken: Vec<Sock> = conformant
        .into_iter()
        .filter(|s| !s.op.ends_with(":15000") && !s.op.ends_with(":15021"))
        .collect();
    let pod = start(&broken);
    let (code, doc) = check(&pod, &example_args);
    let fails = failing(&doc);
    let ok = code == Some(1)
        && fails.iter().any(|f| f.contains("tcp/15000"))
        && fails.iter().any(|f| f.contains("tcp/15021"));
    if !ok {
        escaped.push(format!(
            "readme-example.yaml: exit {code:?}, failing {fails:#?}"
        ));
    }
    rows.push((
        "docs/check.md's example".into(),
        "fixtures/check/readme-example.yaml".into(),
        "Envoy's 15000 and 15021 removed".into(),
        ok,
    ));

    let caught = rows.iter().filter(|r| r.3).count();
    let mut doc = String::new();
    doc.push_str(
        "# `podports check`: proof by mutation\n\n\
         [README](../README.md) · [all docs](README.md) · [check](check.md)\n\n\
         Written by `tests/check_mutations.rs` (`PODPORTS_BLESS=1 cargo test --locked --test \
         check_mutations` rewrites it). For each built-in profile, a conformant simulated pod \
         (real processes under the owners' names, holding real sockets in a fresh network \
         namespace with the IPv4 address 10.0.0.5) passes; then each single mutation, in a \
         fresh pod, must make `check` exit 1 naming the port. A profile item without \
         mutations fails the test.\n\n",
    );
    doc.push_str(&format!(
        "Score: {caught}/{} mutations caught ({}%).\n\n",
        rows.len(),
        caught * 100 / rows.len().max(1)
    ));
    doc.push_str("| profile | item | mutation | caught |\n|---|---|---|---|\n");
    for (profile, item, what, ok) in &rows {
        doc.push_str(&format!(
            "| `{profile}` | `{item}` | {what} | {} |\n",
            if *ok { "yes" } else { "**NO**" }
        ));
    }
    print!("{doc}");
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/check-mutations.md");
    if std::env::var_os("PODPORTS_BLESS").is_some_and(|v| v == "1") {
        fs::write(&path, &doc).unwrap();
    }
    assert!(
        escaped.is_empty(),
        "mutations not caught:\n{}",
        escaped.join("\n")
    );
    let kept = fs::read_to_string(&path).unwrap_or_default();
    assert_eq!(
        kept, doc,
        "docs/check-mutations.md is stale: PODPORTS_BLESS=1 cargo test --locked --test \
         check_mutations"
    );
}
