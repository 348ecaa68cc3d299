//! A file over the profiles it extends: drop, forbid and listen merged without weakening.

use super::*;

#[test]
fn dropped_items_are_reported_not_checked_and_strict_still_names_them() {
    let e = exp(
        "extends: istio-sidecar\nlisten:\n  - {port: 9080, owner: app}\ndrop:\n  - port: 15090\nstrict: true\n",
    );
    let mut sockets: Vec<Socket> = sidecar()
        .into_iter()
        .filter(|s| s.local.port() != Some(15090))
        .collect();
    let o = evaluate(&e, &sockets, Visibility::default());
    let d: Vec<&Outcome> = o.iter().filter(|o| o.status == Status::Dropped).collect();
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].expected, "listen tcp/15090 owner=envoy");
    assert_eq!(d[0].from(), "istio-sidecar, dropped by test.yaml:5");
    assert!(!d[0].failed());
    assert!(o.iter().all(|o| !o.failed()), "{o:#?}");
    // Envoy's stats port back (a dropped item's port is still named under strict).
    sockets.push(tcp("0.0.0.0", 15090, &[envoy()]));
    let o = evaluate(&e, &sockets, Visibility::default());
    assert!(o.iter().all(|o| !o.failed()), "{o:#?}");
    // Strict counts the profile's items as named: a conformant pod passes.
    let e =
        exp("extends: istio-sidecar\nforbid:\n  - {port: 15000, bind: wildcard}\nstrict: true\n");
    let conformant: Vec<Socket> = sidecar()
        .into_iter()
        .filter(|s| s.local.port() != Some(9080))
        .collect();
    let o = evaluate(&e, &conformant, Visibility::default());
    assert!(o.iter().all(|o| !o.failed()), "{o:#?}");
}

#[test]
fn a_forbid_in_a_file_never_removes_the_profiles_listen_requirement() {
    // The README's old example: a pod without 15000 and 15021 must fail.
    let e = exp(
        "extends: istio-sidecar\nforbid:\n  - {port: 15000, bind: wildcard}\n  - {port: 15021, owner: app}\n",
    );
    let broken: Vec<Socket> = sidecar()
        .into_iter()
        .filter(|s| !matches!(s.local.port(), Some(15000 | 15021)))
        .collect();
    let o = evaluate(&e, &broken, Visibility::default());
    let failed: Vec<&str> = o
        .iter()
        .filter(|o| o.failed())
        .map(|o| o.expected.as_str())
        .collect();
    assert_eq!(
        failed,
        [
            "listen tcp/15000 owner=envoy bind=loopback",
            "listen tcp/15021 owner=envoy bind=wildcard"
        ]
    );
    // Both hold: envoy's admin on 0.0.0.0 fails the profile's item and the file's forbid.
    let mut wide = broken.clone();
    wide.push(tcp("0.0.0.0", 15000, &[envoy()]));
    wide.push(tcp("0.0.0.0", 15021, &[envoy()]));
    let o = evaluate(&e, &wide, Visibility::default());
    let failed: Vec<&str> = o
        .iter()
        .filter(|o| o.failed())
        .map(|o| o.expected.as_str())
        .collect();
    assert_eq!(
        failed,
        [
            "listen tcp/15000 owner=envoy bind=loopback",
            "forbid tcp/15000 bind=wildcard"
        ]
    );
}

#[test]
fn a_file_requiring_what_its_profile_forbids_fails_and_says_how_to_allow_it() {
    let e = exp("extends: istio-ambient\nlisten:\n  - {port: 15020, owner: app}\n");
    let o = evaluate(
        &e,
        &[tcp("0.0.0.0", 15020, &[app()])],
        Visibility::default(),
    );
    let f = o.iter().find(|o| o.expected == "forbid tcp/15020").unwrap();
    assert_eq!(f.status, Status::Fail);
    assert!(
        f.reason.contains(
            "(test.yaml:3 requires it; to allow it, drop the forbid: `drop: [{port: 15020}]`)"
        ),
        "{}",
        f.reason
    );
    // With the drop, it passes.
    let e = exp(
        "extends: istio-ambient\nlisten:\n  - {port: 15020, owner: app}\ndrop:\n  - port: 15020\n",
    );
    let o = evaluate(
        &e,
        &[tcp("0.0.0.0", 15020, &[app()])],
        Visibility::default(),
    );
    assert!(
        o.iter()
            .filter(|o| o.target.as_ref().and_then(|t| t.port()) == Some(15020))
            .all(|o| !o.failed()),
        "{o:#?}"
    );
}

/// `check --profile ... --expect ...` loaded, the files from a bundle (tests read no file).
fn given(inputs: &[&str], files: &[(&str, &str)]) -> crate::check::run::Loaded {
    use crate::check::run::{Input, load_from};
    let bundle = crate::check::bundle::Bundle {
        files: files
            .iter()
            .map(|(n, t)| (n.to_string(), t.as_bytes().to_vec()))
            .collect(),
    };
    let inputs: Vec<Input> = inputs
        .iter()
        .map(|i| match i.strip_prefix("--expect ") {
            Some(f) => Input::File(f.into()),
            None => Input::Profile(i.to_string()),
        })
        .collect();
    load_from(&inputs, Some(&bundle)).unwrap_or_else(|e| panic!("{e}"))
}

const SDS: &str = "var/run/secrets/workload-spiffe-uds/socket";

/// The newcomer's file: the SDS socket made optional, Envoy's stats port dropped.
const RELAXED: &str = "extends: istio-sidecar\nlisten:\n  - {path: var/run/secrets/workload-spiffe-uds/socket, optional: true}\ndrop:\n  - port: 15090\n";

#[test]
fn a_profile_the_file_extends_is_checked_once_as_the_file_modifies_it() {
    let files = [("podports.yaml", RELAXED)];
    let alone = given(&["--expect podports.yaml"], &files);
    assert!(alone.notes.is_empty(), "{:?}", alone.notes);
    // The pod without an SDS socket and without 15090: the file allows both.
    let pod: Vec<Socket> = sidecar()
        .into_iter()
        .filter(|s| s.local.port() != Some(15090))
        .filter(|s| !matches!(&s.local, Endpoint::UnixLocal(UnixName::Path(p)) if p.as_bytes().ends_with(SDS.as_bytes())))
        .collect();
    for order in [
        ["istio-sidecar", "--expect podports.yaml"],
        ["--expect podports.yaml", "istio-sidecar"],
    ] {
        let both = given(&order, &files);
        assert_eq!(both.exp, alone.exp, "{order:?}");
        assert_eq!(both.sources, ["podports.yaml"], "{order:?}");
        assert_eq!(
            both.notes,
            [
                "--profile istio-sidecar: already extended by podports.yaml; checked as that file \
              modifies it"
            ],
            "{order:?}"
        );
        let o = evaluate(&both.exp, &pod, Visibility::default());
        assert!(o.iter().all(|o| !o.failed()), "{order:?}: {o:#?}");
        // One row for the socket: the file's replacement, skipped (nothing listens there).
        let sds: Vec<&Outcome> = o.iter().filter(|o| o.expected.contains(SDS)).collect();
        assert_eq!(sds.len(), 1, "{sds:#?}");
        assert_eq!(sds[0].status, Status::Skip);
        assert_eq!(sds[0].from(), "podports.yaml:3, replaces istio-sidecar");
        // The drop holds: 15090 once, dropped, not required.
        let stats: Vec<&Outcome> = o
            .iter()
            .filter(|o| o.target.as_ref().and_then(|t| t.port()) == Some(15090))
            .collect();
        assert_eq!(stats.len(), 1, "{stats:#?}");
        assert_eq!(stats[0].status, Status::Dropped);
    }
    // Two files extending it: said once, naming both.
    let two = given(
        &[
            "istio-sidecar",
            "--expect a.yaml",
            "--expect b.yaml",
            "istio-sidecar",
        ],
        &[
            ("a.yaml", RELAXED),
            ("b.yaml", "extends: [istio-sidecar]\n"),
        ],
    );
    assert_eq!(two.sources, ["a.yaml", "b.yaml"]);
    assert_eq!(
        two.notes,
        [
            "--profile istio-sidecar: already extended by a.yaml, b.yaml; checked as each of \
          those files modifies it"
        ]
    );
}

#[test]
fn a_profile_no_file_extends_is_checked_as_it_is_beside_the_files() {
    // A file without `extends`: the profile is a second source, all of it checked.
    let files = [
        ("app.yaml", "listen:\n  - {port: 9080, owner: app}\n"),
        ("podports.yaml", RELAXED),
    ];
    let both = given(&["istio-sidecar", "--expect app.yaml"], &files);
    assert!(both.notes.is_empty(), "{:?}", both.notes);
    assert_eq!(both.sources, ["istio-sidecar", "app.yaml"]);
    let o = evaluate(&both.exp, &sidecar(), Visibility::default());
    assert!(o.iter().all(|o| !o.failed()), "{o:#?}");
    assert!(
        o.iter()
            .any(|o| o.from() == "istio-sidecar" && o.expected.contains(SDS))
    );
    assert!(o.iter().any(|o| o.from() == "app.yaml:2"));
    // A file extending another profile: the one given with --profile is checked as it is.
    let both = given(&["istio-ambient", "--expect podports.yaml"], &files);
    assert!(both.notes.is_empty(), "{:?}", both.notes);
    assert_eq!(both.sources, ["istio-ambient", "podports.yaml"]);
    let ambient = given(&["istio-ambient"], &files).exp;
    assert!(ambient.listen.iter().all(|l| both.exp.listen.contains(l)));
    assert!(ambient.forbid.iter().all(|f| both.exp.forbid.contains(f)));
}
