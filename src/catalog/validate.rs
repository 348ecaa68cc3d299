//! The catalog file as written (every field optional, so that a missing one is named) and
//! the rules an entry, and the entries together, must follow. Pure; never accepts an entry
//! that two lookups could answer differently.

use std::net::IpAddr;

use serde::Deserialize;

use super::{Bind, CatalogError, Entry, Key, MESHES, is_sidecar, relative};
use crate::model::{Kind, Proto};
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Table {
    Port,
    Unix,
    Address,
}

impl Table {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Table::Port => "port",
            Table::Unix => "unix",
            Table::Address => "address",
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCatalog {
    #[serde(default)]
    pub(super) port: Vec<RawEntry>,
    #[serde(default)]
    pub(super) unix: Vec<RawEntry>,
    #[serde(default)]
    pub(super) address: Vec<RawEntry>,
}

/// One entry as written; every field optional so that `build` can say what is missing.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEntry {
    mesh: Option<String>,
    component: Option<String>,
    pub(super) name: Option<String>,
    description: Option<String>,
    source: Option<String>,
    versions: Option<String>,
    process: Option<String>,
    port: Option<u16>,
    protos: Option<Vec<Proto>>,
    bind: Option<Bind>,
    reserved: Option<bool>,
    peer: Option<bool>,
    path: Option<String>,
    addrs: Option<Vec<IpAddr>>,
}

/// A required, non-blank text field.
pub(super) fn required(value: Option<String>, field: &str) -> Result<String, String> {
    match value {
        Some(v) if !v.trim().is_empty() => Ok(v),
        Some(_) => Err(format!("`{field}` is empty")),
        None => Err(format!("missing `{field}`")),
    }
}

/// An optional text field that, when present, is not blank.
pub(super) fn optional(value: Option<String>, field: &str) -> Result<Option<String>, String> {
    match value {
        Some(v) if v.trim().is_empty() => Err(format!("`{field}` is empty (leave it out instead)")),
        other => Ok(other),
    }
}

/// Validate one entry on its own.
pub(super) fn build(table: Table, r: RawEntry) -> Result<Entry, String> {
    let mesh = required(r.mesh, "mesh")?;
    if !MESHES.contains(&mesh.as_str()) {
        return Err(format!(
            "unknown mesh `{mesh}` (expected one of: {})",
            MESHES.join(", ")
        ));
    }
    let component_text = required(r.component, "component")?;
    let component = Kind::parse(&component_text).ok_or_else(|| {
        let known: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
        format!(
            "unknown component `{component_text}` (expected one of: {})",
            known.join(", ")
        )
    })?;
    let name = required(r.name, "name")?;
    let description = required(r.description, "description")?;
    let source = required(r.source, "source")?;
    let versions = optional(r.versions, "versions")?.unwrap_or_default();
    let process = optional(r.process, "process")?;

    let only_ports = |present: bool, field: &str| -> Result<(), String> {
        if present {
            Err(format!("`{field}` applies to [[port]] entries only"))
        } else {
            Ok(())
        }
    };
    let not_here = |present: bool, field: &str| -> Result<(), String> {
        if present {
            Err(format!(
                "`{field}` does not belong in a [[{}]] entry",
                table.as_str()
            ))
        } else {
            Ok(())
        }
    };

    let (key, bind, reserved, peer) = match table {
        Table::Port => {
            not_here(r.path.is_some(), "path")?;
            not_here(r.addrs.is_some(), "addrs")?;
            let port = match r.port {
                None => return Err("missing `port`".to_string()),
                Some(0) => return Err("`port` is 0".to_string()),
                Some(p) => p,
            };
            let protos = r.protos.ok_or("missing `protos` (e.g. [\"tcp\"])")?;
            if protos.is_empty() {
                return Err("`protos` is empty".to_string());
            }
            if protos.contains(&Proto::Unix) {
                return Err(
                    "`protos` may hold tcp and udp only (unix paths go in [[unix]])".to_string(),
                );
            }
            for (i, p) in protos.iter().enumerate() {
                if protos.iter().skip(i + 1).any(|q| q == p) {
                    return Err(format!("`protos` lists {p} twice"));
                }
            }
            let reserved = r.reserved.unwrap_or(false);
            let peer = r.peer.unwrap_or(false);
            if component == Kind::App && (reserved || peer) {
                return Err("an `app` component cannot be `reserved` or `peer`: podports cannot tell that process from an application".to_string());
            }
            (Key::Port { port, protos }, r.bind, reserved, peer)
        }
        Table::Unix | Table::Address => {
            only_ports(r.port.is_some(), "port")?;
            only_ports(r.protos.is_some(), "protos")?;
            only_ports(r.bind.is_some(), "bind")?;
            only_ports(r.reserved.is_some(), "reserved")?;
            only_ports(r.peer.is_some(), "peer")?;
            let key = if table == Table::Unix {
                not_here(r.addrs.is_some(), "addrs")?;
                let path = required(r.path, "path")?;
                if relative(&path).is_empty() {
                    return Err(format!("`path` {path:?} names no file"));
                }
                Key::Unix { path }
            } else {
                not_here(r.path.is_some(), "path")?;
                let addrs: Vec<IpAddr> = r
                    .addrs
                    .ok_or("missing `addrs`")?
                    .into_iter()
                    .map(|a| a.to_canonical())
                    .collect();
                if addrs.is_empty() {
                    return Err("`addrs` is empty".to_string());
                }
                Key::Address { addrs }
            };
            (key, None, false, false)
        }
    };

    Ok(Entry {
        mesh,
        component,
        name,
        description,
        source,
        versions,
        process,
        key,
        bind,
        reserved,
        peer,
    })
}

/// Why `later` cannot sit in the same catalog as `earlier`, if it cannot: two answers to one
/// lookup that no rule can choose between.
pub(super) fn conflict(earlier: &Entry, later: &Entry) -> Option<String> {
    if earlier.mesh == later.mesh
        && earlier.component == later.component
        && earlier.name == later.name
    {
        return Some(format!(
            "same name `{}` for {} {}",
            later.name, later.mesh, later.component
        ));
    }
    match (&earlier.key, &later.key) {
        (
            Key::Port {
                port: p1,
                protos: s1,
            },
            Key::Port {
                port: p2,
                protos: s2,
            },
        ) if p1 == p2 => {
            let proto = s1.iter().find(|p| s2.contains(p))?;
            if earlier.component == later.component {
                return Some(format!(
                    "both give {p1}/{proto} to component {}",
                    later.component
                ));
            }
            if earlier.peer && later.peer {
                return Some(format!(
                    "both are `peer` for {p1}/{proto}: a remote port needs one answer"
                ));
            }
            if earlier.reserved
                && later.reserved
                && is_sidecar(earlier.component)
                && is_sidecar(later.component)
            {
                return Some(format!(
                    "both are `reserved` sidecar entries for {p1}/{proto}: the fallback needs one"
                ));
            }
            None
        }
        (Key::Unix { path: a }, Key::Unix { path: b }) if relative(a) == relative(b) => {
            Some(format!("same unix path `{}`", relative(b)))
        }
        (Key::Address { addrs: a }, Key::Address { addrs: b }) => b
            .iter()
            .find(|x| a.contains(x))
            .map(|x| format!("same address {x}")),
        _ => None,
    }
}

/// Several reserved entries on one port and protocol need a sidecar one to fall back to.
pub(super) fn no_fallback(built: &[(String, Entry)]) -> Result<(), CatalogError> {
    for (id, e) in built {
        let Key::Port { port, protos } = &e.key else {
            continue;
        };
        if !e.reserved || is_sidecar(e.component) {
            continue;
        }
        for proto in protos {
            let reserved = || {
                built
                    .iter()
                    .map(|(_, o)| o)
                    .filter(|o| o.reserved && o.on_port(*proto, *port))
            };
            if reserved().count() > 1 && !reserved().any(|o| is_sidecar(o.component)) {
                return Err(CatalogError::Entry {
                    entry: id.clone(),
                    problem: format!(
                        "several `reserved` entries for {port}/{proto} and none is a sidecar (envoy/pilot-agent) one to fall back to"
                    ),
                });
            }
        }
    }
    Ok(())
}
