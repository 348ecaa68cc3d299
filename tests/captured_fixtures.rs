//! The parsers on what a real runtime wrote: records captured by the end-to-end suite
//! (`tests/e2e/run --capture DIR`, containerd 1.6 + runc through CRI, the cgroupfs driver, a
//! hybrid cgroup host) into fixtures/runtime, fixtures/cgroup and fixtures/kubelet. The pod
//! and ids are those of `fixtures/runtime/containerd-1.6-cri-ids.txt`.
// A test: it makes sockets, files and processes freely (clippy.toml keeps them in sys/).
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use podports::parse::cgroup::{Qos, Runtime, parse_file};
use podports::parse::kubelet::{parse_container_link, parse_pod_dir};
use podports::parse::runtime::parse_config;

fn fixture(path: &str) -> Vec<u8> {
    let p = format!("{}/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

/// `name id` lines of the capture's ids.txt.
fn id(name: &str) -> String {
    let ids = String::from_utf8(fixture("runtime/containerd-1.6-cri-ids.txt")).unwrap();
    ids.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .map(|v| v.trim_start_matches("uid ").to_string())
        .unwrap_or_else(|| panic!("ids.txt names no {name}"))
}

const POD: &str = "productpage-v1-5c8f7b8d6-e2e01";

#[test]
fn containerd_config_json_names_the_container_and_the_pod() {
    let c = parse_config(&fixture("runtime/containerd-1.6-cri-container.json")).unwrap();
    assert_eq!(c.container.as_deref(), Some("istio-proxy"));
    assert_eq!(c.pod_namespace.as_deref(), Some("bookinfo"));
    assert_eq!(c.pod_name.as_deref(), Some(POD));
    assert_eq!(c.pod_uid.as_deref(), Some(id("pod").as_str()));
    assert!(!c.sandbox);
    let s = parse_config(&fixture("runtime/containerd-1.6-cri-sandbox.json")).unwrap();
    assert!(s.sandbox);
    assert_eq!(s.container, None);
    assert_eq!(s.pod_name.as_deref(), Some(POD));
    assert_eq!(s.pod_uid.as_deref(), Some(id("pod").as_str()));
}

#[test]
fn runc_cgroupfs_lines_place_envoy_and_pause_in_the_pod() {
    for (file, cid) in [
        ("cgroup/live-v1-hybrid-containerd-cri", id("istio-proxy")),
        (
            "cgroup/live-v1-hybrid-containerd-cri-sandbox",
            id("sandbox"),
        ),
    ] {
        let parsed = parse_file(&fixture(file));
        assert!(
            !parsed.conflict,
            "{file}: every line names the same container"
        );
        let p = parsed
            .placement
            .unwrap_or_else(|| panic!("{file}: no placement"));
        assert_eq!(p.pod_uid.as_deref(), Some(id("pod").as_str()), "{file}");
        assert_eq!(p.qos, Some(Qos::BestEffort), "{file}");
        let c = p
            .container
            .unwrap_or_else(|| panic!("{file}: no container"));
        assert_eq!(c.id, cid, "{file}");
        // A bare id: the cgroupfs driver does not say which runtime made it.
        assert_eq!(c.runtime, Runtime::Unknown, "{file}");
        assert!(!c.conmon);
    }
}

#[test]
fn the_kubelets_log_tree_names_pod_containers_and_the_restart() {
    let dir = String::from_utf8(fixture("kubelet/live-pods.txt")).unwrap();
    let pod = parse_pod_dir(dir.trim()).expect("the pod's log directory");
    assert_eq!(pod.namespace.as_deref(), Some("bookinfo"));
    assert_eq!(pod.name.as_deref(), Some(POD));
    assert_eq!(pod.uid, id("pod"));
    let text = String::from_utf8(fixture("kubelet/live-containers.txt")).unwrap();
    let links: Vec<_> = text
        .lines()
        .map(|l| {
            let (name, target) = l.split_once(" -> ").unwrap();
            parse_container_link(name, Some(target)).unwrap_or_else(|| panic!("{l}"))
        })
        .collect();
    for l in &links {
        assert_eq!((l.namespace.as_str(), l.pod.as_str()), ("bookinfo", POD));
        assert_eq!(l.uid.as_deref(), Some(id("pod").as_str()));
        assert_eq!(l.id.len(), 64);
    }
    let proxy: Vec<_> = links
        .iter()
        .filter(|l| l.container == "istio-proxy")
        .collect();
    assert_eq!(proxy.len(), 1);
    assert_eq!(proxy[0].id, id("istio-proxy"));
    // The app restarted: its dead container's link stays beside the new one.
    let app = links
        .iter()
        .filter(|l| l.container == "productpage")
        .count();
    assert_eq!(app, 2, "{links:?}");
    assert!(text.contains("/productpage/0.log") && text.contains("/productpage/1.log"));
}
