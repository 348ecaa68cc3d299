//! The last steps of building a graph: remote ends grouped past `REMOTE_LIMIT`, then the
//! nodes numbered in drawing order, grouped by container, and the edges resolved. Pure.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

use crate::escape::escape;
use crate::model::{ContainerRef, PodRef};

use super::*;

impl Builder<'_> {
    /// Past `REMOTE_LIMIT` remote ends, one node per role (servers: per role, or per port
    /// without one; clients: per role, or all of them), then the smallest groups as one.
    pub(super) fn group_remotes(&mut self) {
        let remotes: Vec<Key> = self
            .nodes
            .keys()
            .filter(|k| matches!(k, Key::Remote { .. }))
            .cloned()
            .collect();
        if remotes.len() <= REMOTE_LIMIT {
            return;
        }
        let mut label_of: HashMap<Key, String> = HashMap::new();
        for k in &remotes {
            let Some((What::Remote { port, role, .. }, ..)) = self.nodes.get(k) else {
                continue;
            };
            let label = match (role, port) {
                (Some(r), Some(p)) => format!("{r} :{p}"),
                (None, Some(p)) => format!("servers :{p}"),
                (Some(r), None) => format!("{r} clients"),
                (None, None) => "clients outside the pod".into(),
            };
            label_of.insert(k.clone(), label);
        }
        // Too many distinct groups still (servers on many ports): keep the busiest, fold the
        // rest into one.
        let mut weight: HashMap<&str, usize> = HashMap::new();
        for ((from, to, _), (n, _)) in &self.edges {
            for k in [from, to] {
                if let Some(l) = label_of.get(k) {
                    *weight.entry(l.as_str()).or_default() += n;
                }
            }
        }
        let mut ranked: Vec<(&str, usize)> = weight.into_iter().collect();
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let keep: HashSet<String> = ranked
            .iter()
            .take(REMOTE_LIMIT - 1)
            .map(|(l, _)| l.to_string())
            .collect();
        for l in label_of.values_mut() {
            if !keep.contains(l) {
                *l = "other remote ends".into();
            }
        }
        let mut addresses: HashMap<String, HashSet<IpAddr>> = HashMap::new();
        for (k, l) in &label_of {
            if let Key::Remote { addr, .. } = k {
                addresses.entry(l.clone()).or_default().insert(*addr);
            }
        }
        for k in &remotes {
            self.nodes.remove(k);
        }
        for (label, addrs) in &addresses {
            self.nodes.insert(
                Key::Remotes {
                    label: label.clone(),
                },
                (
                    What::Remotes {
                        label: label.clone(),
                        addresses: addrs.len(),
                    },
                    None,
                    Vec::new(),
                ),
            );
        }
        let edges = std::mem::take(&mut self.edges);
        let map = |k: Key| match label_of.get(&k) {
            Some(l) => Key::Remotes { label: l.clone() },
            None => k,
        };
        for ((from, to, kind), (n, ws)) in edges {
            let e = self.edges.entry((map(from), map(to), kind)).or_default();
            e.0 += n;
            for w in ws {
                if !e.1.contains(&w) {
                    e.1.push(w);
                }
            }
        }
        self.notes.push(format!(
            "{} remote ends grouped by role (more than {REMOTE_LIMIT})",
            remotes.len()
        ));
    }

    pub(super) fn finish(self) -> Graph {
        let ins = self.ins;
        let mut keys: Vec<Key> = self.nodes.keys().cloned().collect();
        // Containers first (the listing's pod before others), then processes and their ports.
        let group_of = |k: &Key| self.nodes.get(k).and_then(|n| n.1.clone());
        keys.sort_by(|a, b| {
            let (ga, gb) = (group_of(a), group_of(b));
            (ga.is_none(), ga, a).cmp(&(gb.is_none(), gb, b))
        });
        let mut groups: Vec<Group> = Vec::new();
        let mut group_index: HashMap<Arc<ContainerRef>, usize> = HashMap::new();
        let mut index: HashMap<Key, usize> = HashMap::new();
        let mut nodes = Vec::with_capacity(keys.len());
        for k in &keys {
            let Some((what, container, warnings)) = self.nodes.get(k) else {
                continue;
            };
            let id = nodes.len();
            let group = container.as_ref().map(|c| {
                *group_index.entry(c.clone()).or_insert_with(|| {
                    groups.push(group(c, ins.pod.as_ref()));
                    groups.len() - 1
                })
            });
            index.insert(k.clone(), id);
            nodes.push(Node {
                id,
                group,
                what: what.clone(),
                warnings: warnings.clone(),
            });
        }
        let mut edges: Vec<Edge> = self
            .edges
            .into_iter()
            .filter_map(|((from, to, kind), (count, warnings))| {
                Some(Edge {
                    from: *index.get(&from)?,
                    to: *index.get(&to)?,
                    kind,
                    count,
                    warnings,
                })
            })
            .collect();
        edges.sort_by_key(|e| (e.from, e.to, e.kind));
        let mut notes = self.notes;
        if ins.hidden_owners > 0 {
            notes.insert(
                0,
                format!(
                    "the owners of {} could not be seen (the warnings say what shows them)",
                    crate::render::table::plural_n(ins.hidden_owners, "socket", "sockets")
                ),
            );
        }
        for w in &ins.warnings {
            notes.push(escape(w.as_bytes()));
        }
        let mut title = escape(ins.netns.target.as_bytes());
        if let Some(pod) = &ins.pod
            && !title.contains(&pod.to_string())
        {
            title.push_str(&format!(" (pod {})", escape(pod.to_string().as_bytes())));
        }
        Graph {
            title,
            groups,
            nodes,
            edges,
            notes,
        }
    }
}

fn group(c: &ContainerRef, pod: Option<&PodRef>) -> Group {
    let name = escape(c.name.as_deref().unwrap_or("?").as_bytes());
    let own = pod.is_some_and(|p| p.uid == c.pod.uid);
    Group {
        label: if own {
            name
        } else {
            format!("{}/{name}", escape(c.pod.to_string().as_bytes()))
        },
        outside: !own && pod.is_some(),
    }
}
