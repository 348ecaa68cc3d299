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
