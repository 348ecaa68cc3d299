//! The names the kubelet gives pod log directories and container log links, which map pod
//! names to UIDs and container IDs to container names without an API server
//! (shared/reference/node-discovery.md). Pure: names in, values out; no filesystem access.
//!
//! - `/var/log/pods/<namespace>_<name>_<uid>/<container>/<restart>.log` (kubelet
//!   `kuberuntime/helpers.go`, BuildPodLogsDirectory); very old kubelets: `/var/log/pods/<uid>/`.
//! - `/var/log/containers/<name>_<namespace>_<container>-<id>.log` -> the file above
//!   (`kuberuntime/legacy.go`, logSymlink; the name is cut to 255 bytes).

use super::cgroup::normalize_uid;

/// A pod log directory's name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PodDirName {
    /// None for an old `<uid>`-only directory.
    pub namespace: Option<String>,
    pub name: Option<String>,
    /// Normalized (see `cgroup::normalize_uid`).
    pub uid: String,
}

/// A container log link, read from its name and (when it could be read) its target.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContainerLink {
    pub namespace: String,
    pub pod: String,
    pub container: String,
    /// The runtime's container ID in lowercase hex: all 64 digits, or a prefix when the
    /// kubelet cut the link name at 255 bytes.
    pub id: String,
    /// The pod UID, from the link's target (the name has none).
    pub uid: Option<String>,
}

/// Namespaces and pod names are DNS names: never empty, never a `_` or `/`.
fn is_name(s: &str) -> bool {
    !s.is_empty() && !s.contains(['_', '/']) && !s.chars().any(char::is_control)
}

/// `<namespace>_<name>_<uid>`, or an old `<uid>`. None for anything else.
pub fn parse_pod_dir(dir: &str) -> Option<PodDirName> {
    let parts: Vec<&str> = dir.split('_').collect();
    match parts.as_slice() {
        [ns, name, uid] if is_name(ns) && is_name(name) => Some(PodDirName {
            namespace: Some((*ns).to_string()),
            name: Some((*name).to_string()),
            uid: normalize_uid(uid)?,
        }),
        // An old directory is the bare UID with dashes (a `_` would have split it).
        [uid] => Some(PodDirName {
            namespace: None,
            name: None,
            uid: normalize_uid(uid)?,
        }),
        _ => None,
    }
}

/// The kubelet cuts link names (with `.log`) at this many bytes (ext4's NAME_MAX).
pub const LINK_NAME_MAX: usize = 255;

/// A link in /var/log/containers: its file name, and its target if readable
/// (`/var/log/pods/<ns>_<name>_<uid>/<container>/<n>.log`). The target, when it parses, is
/// trusted for the namespace, pod, container name and UID; the name alone still gives them
/// all but the UID. None when no container ID can be found.
pub fn parse_container_link(file_name: &str, target: Option<&str>) -> Option<ContainerLink> {
    let stem = file_name.strip_suffix(".log")?;
    let mut split = stem.splitn(3, '_');
    let (pod, ns, rest) = (split.next()?, split.next()?, split.next()?);
    if !is_name(pod) || !is_name(ns) {
        return None;
    }
    let from_target = target.and_then(parse_log_target);
    let (container, id) = match &from_target {
        // The target knows the container name, so a name with `-` splits right.
        Some((_, c)) => (c.clone(), rest.strip_prefix(c.as_str())?.strip_prefix('-')?),
        None => {
            let (c, id) = rest.rsplit_once('-')?;
            (c.to_string(), id)
        }
    };
    let hex = !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_hexdigit());
    let cut = file_name.len() >= LINK_NAME_MAX;
    if !hex || (id.len() < 64 && !cut) || !is_name(&container) {
        return None;
    }
    let (namespace, pod, uid) = match from_target {
        Some((dir, _)) => (
            dir.namespace.unwrap_or_else(|| ns.to_string()),
            dir.name.unwrap_or_else(|| pod.to_string()),
            Some(dir.uid),
        ),
        None => (ns.to_string(), pod.to_string(), None),
    };
    Some(ContainerLink {
        namespace,
        pod,
        container,
        id: id.to_ascii_lowercase(),
        uid,
    })
}

/// `.../<ns>_<name>_<uid>/<container>/<restart>.log` -> (pod dir, container name).
pub fn parse_log_target(target: &str) -> Option<(PodDirName, String)> {
    let mut comps = target.rsplit('/');
    let file = comps.next()?;
    let container = comps.next()?;
    let dir = parse_pod_dir(comps.next()?)?;
    if !file.ends_with(".log") || !is_name(container) || dir.namespace.is_none() {
        return None;
    }
    Some((dir, container.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const UID: &str = "8f2c8d4e-1b7a-4c1e-9d62-0c6a3f1e2b44";
    const ID: &str = "4d9c1f0e2b3a59687766554433221100ffeeddccbbaa99887766554433221100";

    fn fixture(name: &str) -> String {
        let path = format!("{}/fixtures/kubelet/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// fixtures/kubelet/pods.txt: one directory name per line, `# expect` comments above.
    #[test]
    fn pod_dirs_of_the_fixture() {
        let dirs: Vec<Option<PodDirName>> = fixture("pods.txt")
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .map(parse_pod_dir)
            .collect();
        let named = |ns: &str, name: &str, uid: &str| {
            Some(PodDirName {
                namespace: Some(ns.into()),
                name: Some(name.into()),
                uid: uid.into(),
            })
        };
        assert_eq!(
            dirs,
            vec![
                named("default", "productpage-v1-6b746f74dc-9stvb", UID),
                named(
                    "kube-system",
                    "kube-apiserver-kind-control-plane",
                    "3c8a2e1d6e0b4a7f9a1b2c3d4e5f6a7b"
                ),
                named(
                    "istio-system",
                    "ztunnel-x7k2p",
                    "0e1d2c3b-4a59-4687-a766-554433221100"
                ),
                Some(PodDirName {
                    namespace: None,
                    name: None,
                    uid: "5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b".into()
                }),
                None, // not a UID
                None, // four fields
                None, // an empty namespace
                None, // a file that is no pod directory
            ]
        );
    }

    /// fixtures/kubelet/containers.txt: `NAME -> TARGET` as `ls -l` shows the links.
    #[test]
    fn container_links_of_the_fixture() {
        let links: Vec<Option<ContainerLink>> = fixture("containers.txt")
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .map(|l| {
                let (name, target) = l.split_once(" -> ").unwrap();
                parse_container_link(name, (!target.is_empty()).then_some(target))
            })
            .collect();
        let link = |ns: &str, pod: &str, c: &str, id: &str, uid: Option<&str>| {
            Some(ContainerLink {
                namespace: ns.into(),
                pod: pod.into(),
                container: c.into(),
                id: id.into(),
                uid: uid.map(String::from),
            })
        };
        let pp = "productpage-v1-6b746f74dc-9stvb";
        let long_pod = format!("{}-{}", "p".repeat(200), "x");
        assert_eq!(links.len(), 6);
        assert_eq!(links[0], link("default", pp, "istio-proxy", ID, Some(UID)));
        assert_eq!(links[1], link("default", pp, "productpage", ID, Some(UID)));
        // No readable target: everything but the UID, split at the last `-`.
        assert_eq!(links[2], link("default", pp, "istio-init", ID, None));
        // Cut at 255 bytes: a prefix of the ID, the rest from the target.
        let cut = links[3].clone().unwrap();
        assert_eq!(cut.pod, long_pod);
        assert_eq!(cut.container, "app");
        assert!(ID.starts_with(&cut.id) && cut.id.len() < 64, "{cut:?}");
        assert_eq!(cut.uid.as_deref(), Some(UID));
        // Not hex, and a short ID in an uncut name.
        assert_eq!(links[4], None);
        assert_eq!(links[5], None);
    }

    #[test]
    fn targets() {
        let (dir, c) =
            parse_log_target(&format!("/var/log/pods/default_web-0_{UID}/nginx/3.log")).unwrap();
        assert_eq!(dir.name.as_deref(), Some("web-0"));
        assert_eq!(c, "nginx");
        assert_eq!(parse_log_target("/var/log/pods/x/nginx/0.log"), None);
        assert_eq!(parse_log_target("0.log"), None);
        assert_eq!(parse_log_target(""), None);
    }

    #[test]
    fn garbage_never_panics() {
        for name in [
            "",
            ".log",
            "_.log",
            "__.log",
            "a_b_.log",
            "a_b_-.log",
            "\u{1b}_b_c-1.log",
        ] {
            assert_eq!(parse_container_link(name, Some(name)), None, "{name:?}");
            let _ = parse_pod_dir(name);
        }
    }
}
