//! The container runtime's own record of a container: the OCI `config.json` it keeps while the
//! container runs, whose annotations name the container and its pod
//! (shared/reference/node-discovery.md, "Runtime state, for cross-checks"). It names a
//! container the kubelet's log links do not (a link removed, logs kept elsewhere) and a pod
//! with no log directory. Pure: bytes in, names out; no filesystem access.
//!
//! - containerd: `/run/containerd/io.containerd.runtime.v2.task/k8s.io/<id>/config.json`,
//!   annotations `io.kubernetes.cri.{container-name,sandbox-name,sandbox-namespace,
//!   sandbox-uid,container-type}` (containerd `internal/cri/annotations`).
//! - CRI-O: `/run/containers/storage/overlay-containers/<id>/userdata/config.json`,
//!   annotations `io.kubernetes.{container.name,pod.name,pod.namespace,pod.uid}` and
//!   `io.kubernetes.cri-o.ContainerType` (cri-o `pkg/annotations`, kubelet's labels).
//! - cri-dockerd: docker's `/var/lib/docker/containers/<id>/config.v2.json`, the same
//!   `io.kubernetes.*` keys as labels under `Config.Labels`, and `io.kubernetes.docker.type`
//!   (`podsandbox` or `container`).

use std::collections::HashMap;

use serde::Deserialize;

use super::ParseError;
use super::cgroup::normalize_uid;

/// What a runtime's config.json says of its container. Every field is None when the
/// annotation is missing or empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuntimeRecord {
    /// The container's name in the pod spec; None for a sandbox (pause).
    pub container: Option<String>,
    pub pod_namespace: Option<String>,
    pub pod_name: Option<String>,
    /// Normalized as cgroup paths are (`cgroup::normalize_uid`).
    pub pod_uid: Option<String>,
    /// The pod's sandbox (pause), not a container of the spec.
    pub sandbox: bool,
}

#[derive(Deserialize)]
struct Config {
    #[serde(default)]
    annotations: HashMap<String, String>,
    /// Docker's container record: `{"Config": {"Labels": {...}}}`.
    #[serde(default, rename = "Config")]
    docker: Option<DockerConfig>,
}

#[derive(Deserialize)]
struct DockerConfig {
    #[serde(default, rename = "Labels")]
    labels: Option<HashMap<String, String>>,
}

/// Reads the annotations of an OCI `config.json` (containerd's or CRI-O's keys), or the labels
/// of docker's `config.v2.json`. A document that is not JSON, or whose annotations are not a
/// map of strings, is an error; one without them is a record of nothing.
pub fn parse_config(bytes: &[u8]) -> Result<RuntimeRecord, ParseError> {
    let mut config: Config =
        serde_json::from_slice(bytes).map_err(|e| ParseError::new(format!("config.json: {e}")))?;
    if let Some(labels) = config.docker.and_then(|d| d.labels) {
        config.annotations.extend(labels);
    }
    let a = &config.annotations;
    let first = |keys: &[&str]| {
        keys.iter()
            .find_map(|k| a.get(*k).filter(|v| !v.is_empty()).cloned())
    };
    let kind = first(&[
        "io.kubernetes.cri.container-type",
        "io.kubernetes.cri-o.ContainerType",
        "io.kubernetes.docker.type",
    ]);
    let sandbox = matches!(kind.as_deref(), Some("sandbox" | "podsandbox"));
    Ok(RuntimeRecord {
        container: if sandbox {
            None
        } else {
            first(&[
                "io.kubernetes.cri.container-name",
                "io.kubernetes.container.name",
            ])
            .filter(|n| n != "POD")
        },
        pod_namespace: first(&[
            "io.kubernetes.cri.sandbox-namespace",
            "io.kubernetes.pod.namespace",
        ]),
        pod_name: first(&["io.kubernetes.cri.sandbox-name", "io.kubernetes.pod.name"]),
        pod_uid: first(&["io.kubernetes.cri.sandbox-uid", "io.kubernetes.pod.uid"])
            .and_then(|u| normalize_uid(&u)),
        sandbox,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONTAINERD: &[u8] = include_bytes!("../../fixtures/runtime/containerd-config.json");
    const CRIO: &[u8] = include_bytes!("../../fixtures/runtime/crio-config.json");
    const SANDBOX: &[u8] = include_bytes!("../../fixtures/runtime/containerd-sandbox.json");
    const DOCKER: &[u8] = include_bytes!("../../fixtures/runtime/docker-config.v2.json");

    #[test]
    fn containerd_and_crio_name_the_container_and_its_pod() {
        assert_eq!(
            parse_config(CONTAINERD).unwrap(),
            RuntimeRecord {
                container: Some("istio-proxy".into()),
                pod_namespace: Some("default".into()),
                pod_name: Some("productpage-v1-6b746f74dc-9stvb".into()),
                pod_uid: Some("8f2c6a36-3c3b-4bd3-9a0e-0f5f3b7ad1e2".into()),
                sandbox: false,
            }
        );
        assert_eq!(
            parse_config(CRIO).unwrap(),
            RuntimeRecord {
                container: Some("discovery".into()),
                pod_namespace: Some("istio-system".into()),
                pod_name: Some("istiod-5d4c8f7b9-x2k4q".into()),
                pod_uid: Some("0c7f5a0e-1d2b-4f3a-8e9c-6b5a4d3c2b1a".into()),
                sandbox: false,
            }
        );
        assert_eq!(
            parse_config(DOCKER).unwrap(),
            RuntimeRecord {
                container: Some("details".into()),
                pod_namespace: Some("bookinfo".into()),
                pod_name: Some("details-v1-79f774bdb9-kq8zl".into()),
                pod_uid: Some("5a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d".into()),
                sandbox: false,
            }
        );
        let pause = parse_config(SANDBOX).unwrap();
        assert!(pause.sandbox);
        assert_eq!(pause.container, None);
        assert_eq!(
            pause.pod_name.as_deref(),
            Some("productpage-v1-6b746f74dc-9stvb")
        );
    }

    #[test]
    fn no_annotations_is_a_record_of_nothing_and_bad_json_an_error() {
        assert_eq!(
            parse_config(br#"{"ociVersion": "1.0.2"}"#).unwrap(),
            RuntimeRecord::default()
        );
        assert_eq!(
            parse_config(br#"{"annotations": {"io.kubernetes.cri.container-name": ""}}"#).unwrap(),
            RuntimeRecord::default()
        );
        for bad in [&b""[..], b"{", br#"{"annotations": {"a": 1}}"#, b"\xff"] {
            assert!(
                parse_config(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
