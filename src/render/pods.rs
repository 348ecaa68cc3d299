//! The `--all-pods` views: the table grouped by pod, and JSON Lines (one compact document per
//! listing, each the single-target document plus its `pod`). Pure: writes to any `impl Write`.

use std::io::{self, Write};

use crate::escape::escape;
use crate::listing::Sweep;
use crate::render::columns::Layout;
use crate::render::json;
use crate::render::table::{self, Detail};

/// One table per listing, under a heading naming its pod (or the node's namespace), then the
/// pods that have no running process and what was skipped.
pub fn write_table(
    out: &mut impl Write,
    sweep: &Sweep,
    detail: Detail,
    layout: Layout,
) -> io::Result<()> {
    let color = layout.color;
    if sweep.listings.is_empty() {
        writeln!(out, "no running pods")?;
    }
    for (i, ins) in sweep.listings.iter().enumerate() {
        if i > 0 {
            writeln!(out)?;
        }
        let heading = match &ins.pod {
            Some(pod) if !ins.host_network => format!("pod {pod}"),
            _ => "the node's network namespace (hostNetwork)".to_string(),
        };
        writeln!(out, "=== {}", escape(heading.as_bytes()))?;
        table::write(out, ins, detail, layout)?;
    }
    if !sweep.idle.is_empty() {
        let names: Vec<String> = sweep
            .idle
            .iter()
            .map(|p| escape(p.to_string().as_bytes()))
            .collect();
        writeln!(out)?;
        writeln!(
            out,
            "{} {} with a log directory but no running process: {}",
            names.len(),
            table::plural(names.len(), "pod", "pods"),
            names.join(", ")
        )?;
    }
    for w in &sweep.warnings {
        let label = if color {
            "\x1b[33mwarning:\x1b[0m"
        } else {
            "warning:"
        };
        writeln!(out, "{label} {}", escape(w.as_bytes()))?;
    }
    Ok(())
}

/// JSON Lines: one document per listing, one line each.
pub fn write_json_lines(out: &mut impl Write, sweep: &Sweep) -> io::Result<()> {
    for ins in &sweep.listings {
        serde_json::to_writer(&mut *out, &json::document(ins)).map_err(io::Error::from)?;
        writeln!(out)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::listing::{Inspection, NetnsInfo};
    use crate::model::{
        ContainerRef, Endpoint, Family, Holder, Kind, PodRef, ProcessInfo, RawText, SockType,
        Socket, State,
    };
    use crate::render::json::Document;
    use crate::request::Source;

    fn pod(ns: &str, name: &str, uid: &str) -> PodRef {
        PodRef {
            namespace: Some(ns.into()),
            name: Some(name.into()),
            uid: uid.into(),
        }
    }

    fn container(pod: &PodRef, name: &str) -> ContainerRef {
        ContainerRef {
            pod: pod.clone(),
            id: Some("ab".repeat(32)),
            name: Some(name.into()),
        }
    }

    fn listen(port: u16, holder: Option<(i32, &str, ContainerRef)>) -> Socket {
        let mut s = Socket::new(
            crate::model::Proto::Tcp,
            Family::Ipv4,
            SockType::Stream,
            State::Listen,
            Endpoint::Inet {
                addr: "0.0.0.0".parse().unwrap(),
                port,
            },
            Endpoint::Inet {
                addr: "0.0.0.0".parse().unwrap(),
                port: 0,
            },
            u64::from(port),
        );
        if let Some((pid, comm, c)) = holder {
            s.holders.push(Holder {
                process: Arc::new(ProcessInfo {
                    pid,
                    comm: RawText::from(comm),
                    ..ProcessInfo::default()
                }),
                fd: 3,
                kind: Kind::App,
                basis: "".into(),
                container: Some(Arc::new(c)),
            });
        }
        s
    }

    /// An ambient pod: envoy-less, its capture port held by ztunnel from ztunnel's pod, a
    /// listener of its own app, and a socket only its cgroup names.
    fn sweep() -> Sweep {
        let p = pod("default", "productpage-v1", "1111");
        let z = pod("istio-system", "ztunnel-x7k2p", "2222");
        let mut orphan = listen(9443, None);
        orphan.cgroup_owner = Some(Box::new(container(&p, "app")));
        let ins = Inspection {
            netns: NetnsInfo {
                inode: Some(7),
                target: "pod default/productpage-v1".into(),
            },
            source: Source::Netlink,
            sockets: vec![
                listen(15001, Some((77, "ztunnel", container(&z, "istio-proxy")))),
                listen(9080, Some((12, "myapp", container(&p, "app\x1b[2J")))),
                orphan,
            ],
            warnings: Vec::new(),
            hidden_owners: 0,
            fd_walk: None,
            pod: Some(p.clone()),
            host_network: false,
            pods: Vec::new(),
        };
        let host = Inspection {
            netns: NetnsInfo {
                inode: Some(1),
                target: "the node's network namespace (hostNetwork pods)".into(),
            },
            sockets: Vec::new(),
            pod: None,
            host_network: true,
            pods: vec![z.clone()],
            ..ins.clone()
        };
        Sweep {
            listings: vec![ins, host],
            warnings: vec!["pod x skipped: gone".into()],
            idle: vec![pod("default", "old-0", "3333")],
            pids: vec![10, 1],
        }
    }

    #[test]
    fn the_table_names_containers_in_the_pod_and_in_others() {
        let mut out = Vec::new();
        write_table(&mut out, &sweep(), Detail::Normal, Layout::PLAIN).unwrap();
        let t = String::from_utf8(out).unwrap();
        assert!(t.starts_with("=== pod default/productpage-v1\n"), "{t}");
        assert!(
            t.contains("ztunnel[77] istio-system/ztunnel-x7k2p/istio-proxy"),
            "{t}"
        );
        assert!(t.contains("myapp[12] app\\x1b[2J"), "{t}");
        assert!(t.contains("- (cgroup of app)"), "{t}");
        assert!(t.contains("pod default/productpage-v1, uid 1111"), "{t}");
        assert!(
            t.contains("=== the node's network namespace (hostNetwork)"),
            "{t}"
        );
        assert!(
            t.contains("hostNetwork pods: istio-system/ztunnel-x7k2p"),
            "{t}"
        );
        assert!(t.contains("1 pod with a log directory but no running process: default/old-0"));
        assert!(t.ends_with("warning: pod x skipped: gone\n"), "{t}");
        assert!(!t.contains('\x1b'), "{t}");
    }

    #[test]
    fn json_lines_read_back_one_document_per_listing() {
        let mut out = Vec::new();
        write_json_lines(&mut out, &sweep()).unwrap();
        let text = String::from_utf8(out).unwrap();
        let docs: Vec<Document> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(docs.len(), 2);
        let d = &docs[0];
        assert_eq!(d.pod.as_ref().map(|p| p.uid.as_str()), Some("1111"));
        assert!(!d.host_network);
        let zt = &d.sockets[0].processes[0];
        assert_eq!(zt.pod.as_ref().map(|p| p.uid.as_str()), Some("2222"));
        assert_eq!(
            zt.container.as_ref().and_then(|c| c.name.as_deref()),
            Some("istio-proxy")
        );
        let owner = d.sockets[2].cgroup_owner.as_ref().unwrap();
        assert_eq!(owner.pod.uid, "1111");
        assert_eq!(
            owner.container.as_ref().and_then(|c| c.name.as_deref()),
            Some("app")
        );
        assert!(docs[1].host_network && docs[1].pod.is_none());
        assert_eq!(docs[1].pods.len(), 1);
        // Listings outside a node carry none of the new fields.
        let plain = serde_json::to_value(json::document(&Inspection {
            pod: None,
            pods: Vec::new(),
            host_network: false,
            sockets: Vec::new(),
            ..sweep().listings[0].clone()
        }))
        .unwrap();
        for field in ["pod", "pods", "host_network"] {
            assert!(plain.get(field).is_none(), "{field}");
        }
    }
}
