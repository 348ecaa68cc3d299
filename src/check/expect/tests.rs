//! Tests of the expectation model, the file format and `extends`, on fixtures/check/.

use std::path::{Path, PathBuf};

use super::extends::resolve_with;
use super::*;
use crate::catalog::Catalog;
use crate::check::profiles;

fn fixture(name: &str) -> (PathBuf, String) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/check")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
    (path, text)
}

fn load_fixture(name: &str) -> Result<Expectations, ParseError> {
    let (path, text) = fixture(name);
    load(&text, Format::for_path(&path), name)
}

fn yaml(text: &str) -> Expectations {
    load(text, Format::Yaml, "f.yaml").unwrap_or_else(|e| panic!("{e}"))
}

fn err(text: &str) -> String {
    load(text, Format::Yaml, "f.yaml").unwrap_err().to_string()
}

/// Every malformed fixture, with the line, column and words of its error.
#[test]
fn every_malformed_file_is_rejected_with_line_and_column() {
    type Case<'a> = (&'a str, Option<(u64, u64)>, &'a str);
    #[rustfmt::skip]
    let cases: &[Case] = &[
        ("bad-unknown-key.yaml", Some((3, 5)), "unknown field `colour`, expected one of name, port, path, proto, owner, bind, owner_netns, optional"),
        ("bad-unknown-top-key.yaml", Some((2, 1)), "unknown field `listens`, expected one of description, extends, listen, forbid, drop, strict"),
        ("bad-optional-in-forbid.yaml", Some((3, 5)), "unknown field `optional`"),
        ("bad-port-out-of-range.yaml", Some((3, 11)), "port 70000 is out of range: a port is 1 to 65535"),
        ("bad-port-zero.yaml", Some((2, 11)), "port 0 is out of range"),
        ("bad-port-negative.yaml", Some((2, 11)), "port -1 is out of range"),
        ("bad-port-string.yaml", Some((2, 11)), "port \"9080\" is text: write the number without quotes"),
        ("bad-port-float.yaml", Some((2, 11)), "port 90.5 is not a whole number"),
        ("bad-list-type.yaml", Some((1, 9)), "expected a list of items (`- port: N`), not a number"),
        ("bad-strict-type.yaml", Some((2, 9)), "invalid boolean (true or false expected)"),
        ("bad-proto.yaml", Some((3, 12)), "unknown variant `sctp`, expected one of tcp, udp, unix"),
        ("bad-bind.yaml", Some((2, 5)), "`bind` \"everywhere\" is not any, loopback, wildcard or an IP address"),
        ("bad-port-and-path.yaml", Some((2, 5)), "give `port` (tcp, udp) or `path` (unix), not both"),
        ("bad-missing-port.yaml", Some((2, 5)), "missing `port` (or `path` for a unix socket)"),
        ("bad-unix-with-port.yaml", Some((2, 5)), "`proto: unix` names a socket by `path:`, not by `port:`"),
        ("bad-path-with-tcp.yaml", Some((2, 5)), "`path` names a unix socket, but `proto` is tcp"),
        ("bad-bind-on-unix.yaml", Some((2, 5)), "`bind` applies to tcp and udp ports, not to a unix path"),
        ("bad-unknown-profile.yaml", Some((2, 10)), "unknown profile `istio-sidecr`; the built-in profiles are istio-sidecar, istio-ambient, istio-gateway, istiod, ztunnel, linkerd-proxy"),
        ("bad-empty-owner.yaml", Some((2, 5)), "`owner` is empty"),
        ("bad-empty-path.yaml", Some((2, 5)), "`path` \"./\" names no socket"),
        ("bad-extends-type.yaml", Some((2, 3)), "expected a built-in profile name, or a list of them"),
        ("bad-syntax.yaml", Some((3, 5)), "unclosed bracket '{'"),
        ("bad-tab.yaml", Some((2, 2)), "tabs disallowed"),
        ("bad-duplicate-key.yaml", Some((3, 5)), "duplicate mapping key `port`"),
        ("bad-two-documents.yaml", Some((3, 1)), "only single YAML document expected"),
        ("bad-not-a-mapping.yaml", Some((1, 1)), "expected mapping start"),
        ("bad-empty.yaml", None, "expects nothing: add `extends: PROFILE`, `listen:`, `forbid:` or `strict: true`"),
        ("bad-trailing-comma.json", Some((4, 3)), "trailing comma"),
        ("bad-drop-nothing.yaml", Some((4, 5)), "`drop` tcp/15005: no profile this file extends (istio-sidecar) requires or forbids it"),
        ("bad-unknown-key.json", Some((3, 43)), "unknown field `colour`"),
    ];
    let on_disk = std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/check"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("bad-"))
        .count();
    assert_eq!(on_disk, cases.len(), "every bad-* fixture has a case");
    for (name, location, words) in cases {
        let e = load_fixture(name).expect_err(name);
        assert_eq!(e.location, *location, "{name}: {e}");
        assert!(
            e.message.contains(words),
            "{name}: want {words:?} in {:?}",
            e.message
        );
        assert!(
            !e.message.contains(" at line "),
            "{name}: location twice: {e}"
        );
        assert!(!e.message.contains('\n'), "{name}: one line: {e}");
    }
}

#[test]
fn the_full_example_loads_and_replaces_what_it_names() {
    let e = load_fixture("valid-full.yaml").unwrap();
    assert_eq!(e.strict.as_deref(), Some("valid-full.yaml"));
    // The file's 15053/udp replaces the profile's optional one; 15053/tcp stays optional.
    let dns: Vec<&Listen> = e
        .listen
        .iter()
        .filter(|l| l.target.port() == Some(15053))
        .collect();
    assert_eq!(dns.len(), 2, "{dns:#?}");
    let udp = dns.iter().find(|l| l.target.proto() == Proto::Udp).unwrap();
    assert!(!udp.optional);
    assert_eq!(udp.origin.source, "valid-full.yaml");
    assert_eq!(udp.origin.replaces, ["istio-sidecar"]);
    assert!(udp.origin.line.is_some());
    let tcp = dns.iter().find(|l| l.target.proto() == Proto::Tcp).unwrap();
    assert!(tcp.optional);
    assert_eq!(tcp.origin, Origin::new("istio-sidecar"));
    // Profile items first, then the file's, each with its origin.
    assert_eq!(e.listen[0].origin, Origin::new("istio-sidecar"));
    let app = e
        .listen
        .iter()
        .find(|l| l.target.port() == Some(9080))
        .unwrap();
    assert_eq!(app.owner, Some(Owner::Kind(Kind::App)));
    assert_eq!(app.name.as_deref(), Some("productpage"));
    assert_eq!(app.bind, BindSpec::Class(Bind::Any));
    let sock = e
        .listen
        .iter()
        .find(|l| l.target.proto() == Proto::Unix && l.origin.source == "valid-full.yaml")
        .unwrap();
    assert_eq!(sock.owner, Some(Owner::Comm("productpage".into())));
    assert_eq!(
        sock.target.unix_key(),
        Some(UnixKey::Path("var/run/app/admin.sock"))
    );
    let v6 = e
        .listen
        .iter()
        .find(|l| l.target.port() == Some(9090))
        .unwrap();
    assert_eq!(v6.bind, BindSpec::Addr("::1".parse().unwrap()));
    assert_eq!(v6.target.proto(), Proto::Udp);
    assert!(v6.optional);
    assert_eq!(e.forbid.len(), 2);
    assert_eq!(e.forbid[0].describe(), "forbid tcp/15000 bind=wildcard");
    assert_eq!(e.forbid[1].describe(), "forbid tcp/8080 owner=app");
    assert_eq!(
        udp.describe(),
        "listen udp/15053 owner=pilot-agent bind=loopback"
    );
    assert_eq!(v6.describe(), "listen udp/9090 bind=::1 optional");
}

#[test]
fn json_and_yaml_are_the_same_format() {
    let j = load_fixture("valid.json").unwrap();
    let y = yaml(
        "extends: [istio-ambient]\nlisten:\n  - {port: 8080, owner: app, bind: wildcard}\nforbid:\n  - path: \"@debug\"\nstrict: false\n",
    );
    let origin = |mut e: Expectations| {
        for l in &mut e.listen {
            l.origin.source = l.origin.source.replace("valid.json", "f.yaml");
            l.origin.line = None;
        }
        for f in &mut e.forbid {
            f.origin.source = f.origin.source.replace("valid.json", "f.yaml");
            f.origin.line = None;
        }
        e
    };
    let j = origin(j);
    assert_eq!(j, origin(y));
    // JSON items have lines too, read from the same text as YAML.
    let j = load_fixture("valid.json").unwrap();
    assert!(
        j.listen
            .iter()
            .any(|l| l.origin.source == "valid.json" && l.origin.line.is_some()),
        "{j:#?}"
    );
    // A JSON file named .yaml is read as YAML: it parses all the same.
    let (_, text) = fixture("valid.json");
    assert!(load(&text, Format::Yaml, "x.yaml").is_ok());
    // JSON errors too carry a line and column.
    let e = load("{\n  \"strict\": 1\n}", Format::Json, "x.json").unwrap_err();
    assert_eq!(e.location, Some((2, 13)), "{e}");
    let e = load("[1]", Format::Json, "x.json").unwrap_err();
    assert!(e.message.contains("is a mapping"), "{e}");
    assert!(e.location.is_some(), "{e}");
    assert!(
        load("null", Format::Json, "x.json")
            .unwrap_err()
            .message
            .contains("expects nothing")
    );
}

#[test]
fn empty_lists_are_allowed() {
    let e = load_fixture("valid-empty-lists.yaml").unwrap();
    assert_eq!(e.listen.len(), 4);
    assert!(
        e.listen
            .iter()
            .all(|l| l.origin == Origin::new("linkerd-proxy"))
    );
    assert!(e.forbid.is_empty());
}

#[test]
fn a_forbid_item_adds_and_removes_nothing() {
    // The README's old example: forbidding 15000 on the wildcard address and an app on 15021
    // keeps the profile's 15000 (loopback) and 15021 (envoy) requirements: both hold.
    let e = yaml(
        "extends: istio-sidecar\nforbid:\n  - {port: 15000, bind: wildcard}\n  - {port: 15021, owner: app}\n",
    );
    let sidecar = yaml("extends: istio-sidecar\n");
    assert_eq!(e.listen, sidecar.listen);
    assert_eq!(e.forbid.len(), 2);
    assert_eq!(e.forbid[0].origin.to_string(), "f.yaml:3");
    assert_eq!(e.forbid[1].origin.to_string(), "f.yaml:4");
    // A forbid for a port the profile only makes optional leaves the optional item too.
    let e = yaml("extends: istio-sidecar\nforbid:\n  - port: 15053\n    proto: udp\n");
    assert!(e.listen.iter().any(|l| l.target
        == Target::Inet {
            proto: Proto::Udp,
            port: 15053
        }));
}

#[test]
fn a_listen_item_replaces_only_that_ports_listen_items_and_says_so() {
    let e = yaml("extends: istio-sidecar\nlisten:\n  - port: 15021\n    owner: app\n");
    let ready: Vec<&Listen> = e
        .listen
        .iter()
        .filter(|l| l.target.port() == Some(15021))
        .collect();
    assert_eq!(ready.len(), 1, "{ready:#?}");
    assert_eq!(ready[0].owner, Some(Owner::Kind(Kind::App)));
    assert_eq!(
        ready[0].origin.to_string(),
        "f.yaml:3, replaces istio-sidecar"
    );
    // Everything else of the profile stays.
    assert_eq!(
        e.listen.len(),
        yaml("extends: istio-sidecar\n").listen.len()
    );
    // An app on 15020 in an ambient pod: the file's listen item does not remove the profile's
    // forbid (both hold, so it fails); allowing it takes `drop`.
    let e = yaml("extends: istio-ambient\nlisten:\n  - port: 15020\n    owner: app\n");
    assert!(e.forbid.iter().any(|f| f.target.port() == Some(15020)));
    assert!(e.listen.iter().all(|l| l.origin.replaces.is_empty()));
    // Unix paths are the same with or without a leading `/`.
    let e = yaml(
        "extends: istio-sidecar\nlisten:\n  - path: /etc/istio/proxy/XDS\n    optional: true\n",
    );
    let xds: Vec<&Listen> = e
        .listen
        .iter()
        .filter(|l| l.target.unix_key() == Some(UnixKey::Path("etc/istio/proxy/XDS")))
        .collect();
    assert_eq!(xds.len(), 1);
    assert!(xds[0].optional);
    assert_eq!(xds[0].origin.replaces, ["istio-sidecar"]);
}

#[test]
fn drop_removes_profile_items_on_purpose_and_keeps_them_for_the_report() {
    let e = yaml(
        "extends: istio-ambient\nlisten:\n  - {port: 15020, owner: app}\ndrop:\n  - port: 15020\n  - {port: 15053, proto: udp}\n",
    );
    assert!(e.forbid.iter().all(|f| f.target.port() != Some(15020)));
    assert!(!e.listen.iter().any(|l| l.target
        == Target::Inet {
            proto: Proto::Udp,
            port: 15053
        }));
    assert_eq!(e.dropped.len(), 2, "{:#?}", e.dropped);
    assert!(matches!(&e.dropped[0].item, Removed::Forbid(f) if f.target.port() == Some(15020)));
    assert_eq!(e.dropped[0].by.to_string(), "f.yaml:5");
    assert!(matches!(&e.dropped[1].item, Removed::Listen(l) if l.optional));
    assert_eq!(e.dropped[1].by.to_string(), "f.yaml:6");
    // strict still knows a dropped listen item's port.
    assert!(e.named().any(|l| l.target.port() == Some(15053)));
}

#[test]
fn a_drop_naming_nothing_is_an_error_at_its_line_and_column() {
    let e = load(
        "extends: istio-sidecar\ndrop:\n  - port: 15004\n  - port: 15005\n",
        Format::Yaml,
        "f.yaml",
    )
    .unwrap_err();
    assert_eq!(e.location, Some((4, 5)), "{e}");
    assert!(e.message.contains("`drop` tcp/15005"), "{e}");
    assert!(e.message.contains("istio-sidecar"), "{e}");
    // Twice.
    let e = load(
        "extends: istio-sidecar\ndrop:\n  - port: 15004\n  - port: 15004\n",
        Format::Yaml,
        "f.yaml",
    )
    .unwrap_err();
    assert_eq!(e.location, Some((4, 5)), "{e}");
    assert!(e.message.contains("dropped twice"), "{e}");
    // Without a profile.
    let e = load("drop:\n  - port: 1\nstrict: true\n", Format::Yaml, "f.yaml").unwrap_err();
    assert!(e.message.contains("extends no profile"), "{e}");
    // Wrong proto: the profile's 15053 is udp and tcp, 15004 is tcp only.
    let e = load(
        "extends: istio-sidecar\ndrop:\n  - {port: 15004, proto: udp}\n",
        Format::Yaml,
        "f.yaml",
    )
    .unwrap_err();
    assert_eq!(e.location, Some((3, 5)), "{e}");
    // JSON: located too.
    let e = load(
        "{\"extends\": \"istio-sidecar\",\n \"drop\": [{\"port\": 1}]}\n",
        Format::Json,
        "f.json",
    )
    .unwrap_err();
    assert_eq!(e.location.map(|(l, _)| l), Some(2), "{e}");
    // A drop item is a port or a path, nothing else.
    let e = load(
        "extends: istio-sidecar\ndrop:\n  - {port: 15004, owner: envoy}\n",
        Format::Yaml,
        "f.yaml",
    )
    .unwrap_err();
    assert!(e.message.contains("unknown field `owner`"), "{e}");
}

#[test]
fn the_readme_example_keeps_every_profile_requirement() {
    let (path, text) = fixture("readme-example.yaml");
    let e = load(&text, Format::for_path(&path), "podports.yaml").unwrap();
    let sidecar = yaml("extends: istio-sidecar\n");
    for l in &sidecar.listen {
        let kept = e.listen.iter().any(|m| m.target.same(&l.target));
        assert_eq!(kept, l.target.port() != Some(15004), "{}", l.describe());
    }
    // 15004 was dropped on purpose, and that is kept for the report.
    assert_eq!(e.dropped.len(), 1);
    assert_eq!(e.dropped[0].by.to_string(), "podports.yaml:18");
    for port in [15000, 15021] {
        let l = e
            .listen
            .iter()
            .find(|l| l.target.port() == Some(port))
            .unwrap();
        assert!(!l.optional, "{}", l.describe());
        assert_eq!(l.owner, Some(Owner::Kind(Kind::Envoy)));
    }
}

#[test]
fn strict_is_inherited_unless_the_file_says() {
    assert_eq!(yaml("strict: true\n").strict.as_deref(), Some("f.yaml"));
    let e = yaml("extends: [istio-sidecar, istio-sidecar]\n");
    assert_eq!(e.strict, None);
    assert_eq!(
        e,
        yaml("extends: istio-sidecar\n"),
        "a profile twice counts once"
    );
    let spec = Spec {
        strict: Some(true),
        listen: vec![],
        ..Spec::default()
    };
    let parent = resolve(spec, "parent").unwrap();
    let mut child = Expectations::default();
    child.append(parent.clone());
    assert_eq!(child.strict.as_deref(), Some("parent"));
    assert!(err("strict: false\n").contains("expects nothing"));
}

#[test]
fn extends_cycles_and_depth_are_refused() {
    let spec = || Spec {
        extends: vec!["istio-sidecar".into()],
        ..Spec::default()
    };
    // Profiles that extend each other (the built-in ones never do).
    let cyclic = |name: &str| match name {
        "istio-sidecar" => Some("extends: istio-gateway\n"),
        "istio-gateway" => Some("extends: istio-sidecar\n"),
        _ => None,
    };
    let e = resolve_with(spec(), "pod.yaml", &cyclic).unwrap_err();
    assert_eq!(
        e.message,
        "`extends` goes round in a circle: istio-sidecar -> istio-gateway -> istio-sidecar"
    );
    // Deep but not circular: each profile extends the next, six levels down.
    let names = [
        "istio-sidecar",
        "istio-gateway",
        "istiod",
        "ztunnel",
        "linkerd-proxy",
        "istio-ambient",
    ];
    let deep = move |name: &str| {
        let i = names.iter().position(|n| *n == name)?;
        Some(match names.get(i + 1) {
            Some(next) => Box::leak(format!("extends: {next}\n").into_boxed_str()) as &str,
            None => "strict: true\n",
        })
    };
    let e = resolve_with(spec(), "pod.yaml", &deep).unwrap();
    assert_eq!(e.strict.as_deref(), Some("istio-ambient"));
    // Every profile reached counts as the file's base, however deep (`--profile` of any of
    // them is not checked a second time).
    let mut reached = names.to_vec();
    reached.reverse();
    assert_eq!(e.extends, reached);
    // A file may bear a profile's name without being that profile.
    let e = resolve(spec(), "istio-sidecar").unwrap();
    assert!(!e.listen.is_empty());
}

#[test]
fn owners_and_binds_parse() {
    assert_eq!(Owner::parse("envoy"), Ok(Owner::Kind(Kind::Envoy)));
    assert_eq!(
        Owner::parse(" linkerd-proxy "),
        Ok(Owner::Kind(Kind::LinkerdProxy))
    );
    assert_eq!(
        Owner::parse("linkerd2-proxy"),
        Ok(Owner::Comm("linkerd2-proxy".into()))
    );
    assert!(Owner::parse("").is_err());
    assert!(
        Owner::parse("a\u{1b}b")
            .unwrap_err()
            .contains("control character")
    );
    assert_eq!(
        BindSpec::parse("loopback"),
        Ok(BindSpec::Class(Bind::Loopback))
    );
    assert_eq!(
        BindSpec::parse("wildcard"),
        Ok(BindSpec::Class(Bind::Wildcard))
    );
    assert_eq!(BindSpec::parse("any"), Ok(BindSpec::Class(Bind::Any)));
    assert_eq!(
        BindSpec::parse("10.0.0.5"),
        Ok(BindSpec::Addr("10.0.0.5".parse().unwrap()))
    );
    assert_eq!(
        BindSpec::parse("[::]"),
        Ok(BindSpec::Addr("::".parse().unwrap()))
    );
    assert!(BindSpec::parse("Loopback").is_err());
    assert!(BindSpec::parse("10.0.0.5:80").is_err());
    let mapped = BindSpec::parse("127.0.0.1").unwrap();
    assert!(mapped.allows("::ffff:127.0.0.1".parse().unwrap()));
    assert!(!mapped.allows("127.0.0.2".parse().unwrap()));
}

#[test]
fn proto_defaults_to_tcp_and_to_unix_for_a_path() {
    let e = yaml("listen:\n  - port: 80\n  - path: run/x\n  - path: \"@abs\"\n    proto: unix\n");
    assert_eq!(
        e.listen[0].target,
        Target::Inet {
            proto: Proto::Tcp,
            port: 80
        }
    );
    assert_eq!(e.listen[1].target.proto(), Proto::Unix);
    assert_eq!(
        e.listen[2].target.unix_key(),
        Some(UnixKey::Abstract("abs"))
    );
    assert!(err("listen:\n  - path: \"@\"\n").contains("names no socket"));
    assert!(err("listen:\n  - port: 80\n    name: \"\"\n").contains("`name` must be one line"));
}

/// Each built-in profile loads, names every item, and agrees with the catalog on the
/// binds of the ports both describe (both come from the same reference page).
#[test]
fn built_in_profiles_agree_with_the_catalog() {
    let catalog = Catalog::builtin().unwrap();
    for p in profiles::ALL {
        let spec = parse(p.text, Format::Yaml).unwrap_or_else(|e| panic!("{}: {e}", p.name));
        assert!(spec.description.is_some(), "{}", p.name);
        assert!(
            p.text.contains("istio-ports.md"),
            "{}: cite the source",
            p.name
        );
        let e = load(p.text, Format::Yaml, p.name).unwrap();
        assert!(!e.listen.is_empty(), "{}", p.name);
        for l in &e.listen {
            assert!(l.name.is_some(), "{}: {} has no name", p.name, l.describe());
            assert_eq!(l.origin, Origin::new(p.name));
            let (Target::Inet { proto, port }, Some(Owner::Kind(kind))) = (&l.target, &l.owner)
            else {
                continue;
            };
            let entry = catalog.local_role(*proto, *port, &[*kind]);
            let Some(entry) = entry.filter(|e| e.component == *kind) else {
                continue;
            };
            if let (Some(want @ (Bind::Loopback | Bind::Wildcard)), BindSpec::Class(got)) =
                (entry.bind, l.bind)
            {
                assert_eq!(got, want, "{}: {}", p.name, l.describe());
            }
        }
    }
}

#[test]
fn no_input_panics() {
    let (_, full) = fixture("valid-full.yaml");
    let (_, json) = fixture("valid.json");
    for text in [&full, &json] {
        for end in (0..text.len()).filter(|i| text.is_char_boundary(*i)) {
            let cut = &text[..end];
            let _ = load(cut, Format::Yaml, "cut");
            let _ = load(cut, Format::Json, "cut");
        }
    }
    let nasty = [
        "listen: [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
        "a: &a [*a, *a]",
        "listen: &x\n  - port: 1\nforbid: *x\n",
        "listen:\n  - port: 99999999999999999999999999999\n",
        "listen:\n  - port: -99999999999999999999999999999\n",
        "listen:\n  - port: .inf\n",
        "listen:\n  - port: 0x50\n",
        "listen:\n  - port: !!str 80\n",
        "\u{feff}extends: istio-sidecar\n",
        "extends: !!binary aGVsbG8=\n",
        "? [a]\n: b\n",
        "listen:\n  - port: 80\n    owner: \"\\u0000\"\n",
        "%YAML 9.9\n---\nstrict: true\n",
    ];
    for text in nasty {
        let _ = load(text, Format::Yaml, "nasty");
        let _ = load(text, Format::Json, "nasty");
    }
    let deep = format!("listen: {}{}", "[".repeat(50_000), "]".repeat(50_000));
    assert!(load(&deep, Format::Yaml, "deep").is_err());
    let deep = format!(
        "{{\"listen\": {}{}}}",
        "[".repeat(50_000),
        "]".repeat(50_000)
    );
    assert!(load(&deep, Format::Json, "deep").is_err());
}
