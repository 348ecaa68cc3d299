use std::path::Path;

use super::*;
use crate::model::RawText;
use crate::parse::cgroup::{ContainerCgroup, Runtime};
use crate::parse::kubelet::{self, PodDirName};

const UID: &str = "8f2c8d4e-1b7a-4c1e-9d62-0c6a3f1e2b44";
const UID2: &str = "0e1d2c3b-4a59-4687-a766-554433221100";
const STALE: &str = "11111111-2222-4333-8444-555555555555";
const PAUSE: &str = "1000000000000000000000000000000000000000000000000000000000000000";
const PROXY: &str = "4d9c1f0e2b3a59687766554433221100ffeeddccbbaa99887766554433221100";
const APP: &str = "4d9c2222222222222222222222222222222222222222222222222222222222aa";
const ZT: &str = "7777777777777777777777777777777777777777777777777777777777777777";

fn dir(ns: &str, name: &str, uid: &str, containers: &[&str]) -> PodLogDir {
    PodLogDir {
        dir: PodDirName {
            namespace: Some(ns.into()),
            name: Some(name.into()),
            uid: uid.into(),
        },
        containers: containers.iter().map(|c| c.to_string()).collect(),
    }
}

fn proc_(pid: i32, uid: Option<&str>, id: &str, comm: &str, netns: u64) -> PodProcess {
    PodProcess {
        pid,
        placement: Placement {
            pod_uid: uid.map(String::from),
            qos: None,
            container: Some(ContainerCgroup {
                id: id.into(),
                runtime: Runtime::Containerd,
                conmon: comm == "conmon",
            }),
        },
        conflict: false,
        comm: Some(RawText::from(comm)),
        netns: Some(netns),
        netns_denied: false,
    }
}

fn link(pod: &str, ns: &str, c: &str, id: &str, uid: &str) -> ContainerLink {
    kubelet::parse_container_link(
        &format!("{pod}_{ns}_{c}-{id}.log"),
        Some(&format!("/var/log/pods/{ns}_{pod}_{uid}/{c}/0.log")),
    )
    .unwrap()
}

/// productpage (pause, envoy, app; a relative-path process), ztunnel, a stale directory.
fn node() -> Node {
    Node::new(
        vec![
            dir(
                "default",
                "productpage-v1",
                STALE,
                &["istio-proxy", "productpage"],
            ),
            dir(
                "default",
                "productpage-v1",
                UID,
                &["istio-proxy", "productpage"],
            ),
            dir("istio-system", "ztunnel-x7k2p", UID2, &["istio-proxy"]),
            dir(
                "other",
                "reviews-v1",
                "22222222-2222-4333-8444-555555555555",
                &[],
            ),
        ],
        vec![
            link("productpage-v1", "default", "istio-proxy", PROXY, UID),
            link("productpage-v1", "default", "productpage", APP, UID),
        ],
        vec![
            proc_(10, Some(UID), PAUSE, "pause", 100),
            proc_(12, Some(UID), PROXY, "envoy", 100),
            proc_(11, Some(UID), PROXY, "pilot-agent", 100),
            proc_(13, None, APP, "myapp", 100),
            proc_(9, Some(UID), APP, "conmon", 1),
            proc_(20, Some(UID2), ZT, "ztunnel", 200),
        ],
    )
}

#[test]
fn a_pod_by_name_prefers_the_uid_that_runs() {
    let n = node();
    assert_eq!(
        n.find_pod(Some("default"), "productpage-v1"),
        Ok(UID.into())
    );
    assert_eq!(n.find_pod(None, "productpage-v1"), Ok(UID.into()));
    // The pick skips conmon (host netns) and pause.
    assert_eq!(n.pick_pid(Some(UID), None), Some(11));
    assert_eq!(n.pick_pid(Some(UID), Some(APP)), Some(13));
}

#[test]
fn unknown_pods_list_the_closest() {
    let n = node();
    let Err(Lookup::NoSuchPod { asked, closest }) = n.find_pod(Some("default"), "productpage")
    else {
        panic!()
    };
    assert_eq!(asked, "default/productpage");
    assert_eq!(closest[0].name.as_deref(), Some("productpage-v1"));
    assert_eq!(closest[0].uid, UID);
    let e = n
        .find_pod(Some("default"), "productpage")
        .unwrap_err()
        .into_error(Path::new("/host/var/log/pods"));
    assert_eq!(e.exit_code(), 3);
    assert!(
        e.message()
            .contains("no pod default/productpage on this node"),
        "{e}"
    );
    assert!(
        e.message()
            .contains("closest on this node: default/productpage-v1"),
        "{e}"
    );
    // A pod with only a log directory is known but not running.
    assert!(matches!(
        n.find_pod(Some("other"), "reviews-v1"),
        Err(Lookup::NotRunning { .. })
    ));
}

#[test]
fn uids_in_either_form() {
    let n = node();
    assert_eq!(n.find_uid(&UID.replace('-', "_")), Ok(UID.into()));
    assert_eq!(n.find_uid(&UID.to_uppercase()), Ok(UID.into()));
    assert!(matches!(n.find_uid(STALE), Err(Lookup::NotRunning { .. })));
    let Err(Lookup::NoSuchUid { closest, .. }) = n.find_uid("8f2c8d4e-1b7a-4c1e-9d62-0c6a3f1e2b45")
    else {
        panic!()
    };
    assert_eq!(closest[0].uid, UID);
    assert_eq!(
        n.find_uid("nope")
            .unwrap_err()
            .into_error(Path::new("/"))
            .exit_code(),
        2
    );
}

#[test]
fn containers_by_unique_prefix() {
    let n = node();
    assert_eq!(n.find_container("4d9c1"), Ok(PROXY.into()));
    assert_eq!(
        n.find_container(&format!("containerd://{APP}")),
        Ok(APP.into())
    );
    let e = n.find_container("4d9c").unwrap_err();
    let Lookup::AmbiguousContainer { matches, .. } = &e else {
        panic!("{e:?}")
    };
    assert_eq!(matches.len(), 2);
    let e = e.into_error(Path::new("/"));
    assert_eq!(e.exit_code(), 2);
    assert!(
        e.message()
            .contains("4d9c1f0e2b3a5 (istio-proxy in default/productpage-v1)")
    );
    assert!(
        e.message()
            .contains("4d9c222222222 (productpage in default/productpage-v1)")
    );
    assert!(matches!(
        n.find_container("abc"),
        Err(Lookup::NoSuchContainer { .. })
    ));
    assert!(matches!(
        n.find_container("xyz"),
        Err(Lookup::BadContainerId(_))
    ));
    assert!(matches!(
        n.find_container(""),
        Err(Lookup::BadContainerId(_))
    ));
}

#[test]
fn containers_are_named_from_links_or_the_only_log_dir() {
    let n = node();
    let c = n.container_ref(&n.process(13).unwrap().placement).unwrap();
    // A relative path with no pod: the pod from the other processes of the container.
    assert_eq!(c.pod.uid, UID);
    assert_eq!(c.pod.name.as_deref(), Some("productpage-v1"));
    assert_eq!(c.name.as_deref(), Some("productpage"));
    // ztunnel has no link, but one container directory and one container.
    let z = n.container_ref(&n.process(20).unwrap().placement).unwrap();
    assert_eq!(z.name.as_deref(), Some("istio-proxy"));
    assert_eq!(z.pod.to_string(), "istio-system/ztunnel-x7k2p");
}

#[test]
fn live_pods_once_each_with_their_netns() {
    let live = node().live_pods();
    let names: Vec<(String, i32, Option<u64>)> = live
        .iter()
        .map(|p| (p.pod.to_string(), p.pid, p.netns))
        .collect();
    assert_eq!(
        names,
        vec![
            ("default/productpage-v1".to_string(), 11, Some(100)),
            ("istio-system/ztunnel-x7k2p".to_string(), 20, Some(200)),
        ]
    );
    let idle: Vec<String> = node().idle_pods().iter().map(|p| p.to_string()).collect();
    assert_eq!(idle, vec!["default/productpage-v1", "other/reviews-v1"]);
}

#[test]
fn ambiguous_bare_names() {
    let n = Node::new(
        vec![dir("a", "web-0", UID, &[]), dir("b", "web-0", UID2, &[])],
        vec![],
        vec![],
    );
    let e = n
        .find_pod(None, "web-0")
        .unwrap_err()
        .into_error(Path::new("/"));
    assert_eq!(e.exit_code(), 2);
    assert!(e.message().contains("a/web-0"), "{e}");
    assert!(e.message().contains("b/web-0"), "{e}");
}

#[test]
fn edit_distances() {
    assert_eq!(edit_distance("", ""), 0);
    assert_eq!(edit_distance("abc", ""), 3);
    assert_eq!(edit_distance("", "abc"), 3);
    assert_eq!(edit_distance("kitten", "sitting"), 3);
    assert_eq!(edit_distance("productpage", "productpage-v1"), 3);
}

/// No log directory and no link: the runtime's record names the pod and the container,
/// and `--pod` finds the pod by that name. A record of another pod's UID names nothing.
#[test]
fn the_runtime_record_names_what_the_kubelet_does_not() {
    let bare = Node::new(
        Vec::new(),
        Vec::new(),
        vec![
            proc_(10, Some(UID), PAUSE, "pause", 5),
            proc_(11, Some(UID), PROXY, "envoy", 5),
            proc_(12, Some(UID), APP, "myapp", 5),
        ],
    );
    assert_eq!(bare.ids_needing_runtime(), vec![PAUSE, PROXY, APP]);
    let record = |container: Option<&str>, uid: &str, sandbox: bool| RuntimeRecord {
        container: container.map(String::from),
        pod_namespace: Some("default".into()),
        pod_name: Some("productpage-v1".into()),
        pod_uid: Some(uid.into()),
        sandbox,
    };
    let node = bare.with_runtime(HashMap::from([
        (PAUSE.to_string(), record(None, UID, true)),
        (PROXY.to_string(), record(Some("istio-proxy"), UID, false)),
        (APP.to_string(), record(Some("wrong"), UID2, false)),
    ]));
    let placement = |pid| node.process(pid).unwrap().placement.clone();
    let proxy = node.container_ref(&placement(11)).unwrap();
    assert_eq!(proxy.name.as_deref(), Some("istio-proxy"));
    assert_eq!(proxy.pod.name.as_deref(), Some("productpage-v1"));
    assert_eq!(proxy.pod.namespace.as_deref(), Some("default"));
    let app = node.container_ref(&placement(12)).unwrap();
    assert_eq!(app.name, None, "a record of another pod names nothing");
    assert_eq!(
        node.find_pod(Some("default"), "productpage-v1"),
        Ok(UID.to_string())
    );
    // With the kubelet's names there, nothing is asked of the runtime.
    let named = Node::new(
        vec![dir("default", "productpage-v1", UID, &["istio-proxy"])],
        vec![link("productpage-v1", "default", "istio-proxy", PROXY, UID)],
        vec![proc_(11, Some(UID), PROXY, "envoy", 5)],
    );
    assert!(named.ids_needing_runtime().is_empty());
}
