//! The port catalog: what each mesh port, unix socket path and special source address is for,
//! kept as data in `catalog/mesh.toml` (embedded) and looked up when annotating sockets.
//! Pure: no I/O, and no fact that is not in the data file (each entry cites its source).
//! The model and lookups are here; the raw TOML entry and its validation are in `validate`.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::model::{Kind, Proto, Role};

mod validate;

use validate::{RawCatalog, Table, build, conflict, no_fallback};

/// The catalog shipped with podports.
const BUILTIN: &str = include_str!("../../catalog/mesh.toml");

/// The meshes the catalog knows.
const MESHES: [&str; 2] = ["istio", "linkerd"];

/// Where a port is expected to be bound. Reused by `check` expectations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Bind {
    /// Loopback only (127.0.0.0/8, ::1): must never be reachable from outside the pod.
    Loopback,
    /// All addresses (0.0.0.0 or ::).
    Wildcard,
    /// Either is normal (it is configurable), so no address is a violation.
    Any,
}

impl Bind {
    pub fn as_str(self) -> &'static str {
        match self {
            Bind::Loopback => "loopback",
            Bind::Wildcard => "wildcard",
            Bind::Any => "any",
        }
    }

    /// Whether a socket bound to `addr` meets the expectation. An IPv4-mapped IPv6 address
    /// (`::ffff:127.0.0.1`) counts as the IPv4 address it carries.
    pub fn allows(self, addr: IpAddr) -> bool {
        let addr = addr.to_canonical();
        match self {
            Bind::Loopback => addr.is_loopback(),
            Bind::Wildcard => addr.is_unspecified(),
            Bind::Any => true,
        }
    }
}

impl fmt::Display for Bind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an entry is looked up by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Key {
    /// A TCP or UDP port.
    Port { port: u16, protos: Vec<Proto> },
    /// A unix socket path as documented; matched by suffix (see [`Catalog::unix_role`]).
    Unix { path: String },
    /// Special remote addresses, stored canonical (IPv4, not IPv4-mapped).
    Address { addrs: Vec<IpAddr> },
}

/// One catalog entry. Only [`Catalog::parse`] makes them, so every one has passed validation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// `istio` or `linkerd`.
    pub mesh: String,
    /// The kind of process that owns it. `App` marks a process podports cannot tell from an
    /// application (istio-cni node agent, Linkerd controllers): such entries never give a port
    /// a role, and `process` names the real one.
    pub component: Kind,
    pub name: String,
    pub description: String,
    /// Path in istio/istio, or `owner/repo: path`.
    pub source: String,
    /// Versions the entry holds for, e.g. `< 1.25`; empty when always.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub versions: String,
    /// The real process, when `component` alone does not say it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub process: Option<String>,
    pub key: Key,
    /// Expected local address (ports only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bind: Option<Bind>,
    /// A mesh-reserved port an app must never hold; names the port even with no matching owner.
    pub reserved: bool,
    /// Clients connect to it: the role of a connection's remote port.
    pub peer: bool,
}

impl Entry {
    /// The role to attach to a socket.
    pub fn role(&self) -> Role {
        Role {
            mesh: self.mesh.clone(),
            component: self.component,
            name: self.name.clone(),
            description: self.description.clone(),
            source: self.source.clone(),
            versions: self.versions.clone(),
        }
    }

    /// Short label for messages: `envoy admin (15000)`, `pilot-agent xds-proxy (etc/istio/proxy/XDS)`.
    pub fn label(&self) -> String {
        match &self.key {
            Key::Port { port, .. } => format!("{} {} ({port})", self.component, self.name),
            Key::Unix { path } => format!("{} {} ({path})", self.component, self.name),
            Key::Address { .. } => format!("{} {}", self.component, self.name),
        }
    }

    /// Why binding this entry's port to `addr` is wrong, or `None` when it is as expected (or
    /// the catalog has no expectation). Envoy admin on 0.0.0.0 is the case that matters: admin
    /// must never be reachable beyond loopback (istio/istio#31138).
    pub fn bind_violation(&self, addr: IpAddr) -> Option<String> {
        let bind = self.bind?;
        if bind.allows(addr) {
            return None;
        }
        let shown = match addr {
            IpAddr::V4(a) => a.to_string(),
            IpAddr::V6(a) => format!("[{a}]"),
        };
        match bind {
            Bind::Loopback => Some(format!(
                "{} bound to {shown}, reachable beyond loopback",
                self.label()
            )),
            Bind::Wildcard => Some(format!(
                "{} bound to {shown} only, expected on all addresses (0.0.0.0 or [::])",
                self.label()
            )),
            Bind::Any => None,
        }
    }

    fn on_port(&self, proto: Proto, port: u16) -> bool {
        matches!(&self.key, Key::Port { port: p, protos } if *p == port && protos.contains(&proto))
    }
}

/// Sidecar components: the preferred fallback when several reserved entries share a port.
fn is_sidecar(kind: Kind) -> bool {
    matches!(kind, Kind::Envoy | Kind::PilotAgent)
}

/// The port catalog, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalog {
    entries: Vec<Entry>,
}

/// A catalog that cannot be used: the text is not TOML of the expected shape, or an entry
/// breaks a rule. Names the entry (`[[port]] #3 "admin"`) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CatalogError {
    /// Not valid TOML, or a field of the wrong type or an unknown field.
    Syntax(String),
    /// One entry is invalid, or conflicts with an earlier one.
    Entry { entry: String, problem: String },
}

impl fmt::Display for CatalogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CatalogError::Syntax(msg) => {
                write!(f, "invalid catalog: {msg}")
            }
            CatalogError::Entry { entry, problem } => write!(f, "catalog entry {entry}: {problem}"),
        }
    }
}

impl std::error::Error for CatalogError {}

impl Catalog {
    /// The catalog embedded from `catalog/mesh.toml`.
    pub fn builtin() -> Result<Catalog, CatalogError> {
        Catalog::parse(BUILTIN)
    }

    /// Parse and validate catalog text (schema in the header of `catalog/mesh.toml`).
    pub fn parse(text: &str) -> Result<Catalog, CatalogError> {
        let raw: RawCatalog = toml::from_str(text)
            .map_err(|e| CatalogError::Syntax(e.to_string().trim_end().to_string()))?;
        let mut built: Vec<(String, Entry)> = Vec::new();
        for (table, list) in [
            (Table::Port, raw.port),
            (Table::Unix, raw.unix),
            (Table::Address, raw.address),
        ] {
            for (i, r) in list.into_iter().enumerate() {
                let id = match &r.name {
                    Some(n) => format!("[[{}]] #{} \"{n}\"", table.as_str(), i + 1),
                    None => format!("[[{}]] #{}", table.as_str(), i + 1),
                };
                let entry = build(table, r).map_err(|problem| CatalogError::Entry {
                    entry: id.clone(),
                    problem,
                })?;
                for (earlier_id, earlier) in &built {
                    if let Some(problem) = conflict(earlier, &entry) {
                        return Err(CatalogError::Entry {
                            entry: id,
                            problem: format!("conflicts with {earlier_id}: {problem}"),
                        });
                    }
                }
                built.push((id, entry));
            }
        }
        no_fallback(&built)?;
        Ok(Catalog {
            entries: built.into_iter().map(|(_, e)| e).collect(),
        })
    }

    /// Every entry, in file order (for `podports catalog`).
    pub fn entries(&self) -> impl Iterator<Item = &Entry> + '_ {
        self.entries.iter()
    }

    /// The role of a LOCAL port, given the kinds of the processes holding the socket (empty
    /// when the owner is hidden, as ztunnel's in-pod listeners are: istio/istio#52260).
    ///
    /// An entry whose component is among `owners` wins (15001 held by ztunnel is ztunnel's
    /// outbound capture, held by envoy Envoy's virtualOutbound); with several, the first in the
    /// file. Otherwise a reserved entry names the port, the sidecar one (envoy/pilot-agent) when
    /// several are reserved, so an app holding 15021 is shown as colliding with Envoy's
    /// readiness port (istio/istio#41239). Generic entries (8080, 443, ...) and `app` entries
    /// never match by port alone.
    pub fn local_role(&self, proto: Proto, port: u16, owners: &[Kind]) -> Option<&Entry> {
        let on_port = || self.entries.iter().filter(move |e| e.on_port(proto, port));
        if let Some(e) =
            on_port().find(|e| e.component != Kind::App && owners.contains(&e.component))
        {
            return Some(e);
        }
        on_port()
            .filter(|e| e.reserved)
            .find(|e| is_sidecar(e.component))
            .or_else(|| on_port().find(|e| e.reserved))
    }

    /// The role of the REMOTE port of a connection: only ports clients connect to (a
    /// connection to :15012 is xDS/CA to istiod). Validation keeps it unambiguous.
    pub fn peer_role(&self, proto: Proto, port: u16) -> Option<&Entry> {
        self.entries
            .iter()
            .find(|e| e.peer && e.on_port(proto, port))
    }

    /// The role of a bound unix socket path, matched by suffix on `/` boundaries: pilot-agent
    /// binds relative to cwd `/`, so the name shows as `etc/istio/proxy/XDS`, but it may also
    /// be `/etc/istio/proxy/XDS` or `./etc/istio/proxy/XDS`. `etc/istio/proxy/XDSX` does not
    /// match. The longest matching catalog path wins. Pass path names only, not abstract ones.
    pub fn unix_role(&self, path: &[u8]) -> Option<&Entry> {
        self.entries
            .iter()
            .filter_map(|e| match &e.key {
                Key::Unix { path: p } => {
                    let rel = relative(p).as_bytes();
                    suffix_on_boundary(path, rel).then_some((rel.len(), e))
                }
                _ => None,
            })
            .max_by_key(|(len, _)| *len)
            .map(|(_, e)| e)
    }

    /// The role of a special remote address: 127.0.0.6 / ::6 (also as ::ffff:127.0.0.6) is
    /// Envoy's inbound passthrough or pilot-agent forwarding kubelet probes.
    pub fn source_role(&self, addr: IpAddr) -> Option<&Entry> {
        let addr = addr.to_canonical();
        self.entries
            .iter()
            .find(|e| matches!(&e.key, Key::Address { addrs } if addrs.contains(&addr)))
    }
}

/// A unix path without leading `/` and `./`, as pilot-agent's relative binds show it. The one
/// rule for comparing unix paths, shared by the catalog and `check`.
pub fn relative(path: &str) -> &str {
    let mut p = path;
    loop {
        if let Some(rest) = p.strip_prefix("./") {
            p = rest;
        } else if let Some(rest) = p.strip_prefix('/') {
            p = rest;
        } else {
            return p;
        }
    }
}

/// `path` is `suffix`, or ends with `/` + `suffix`: `etc/istio/proxy/XDS` matches
/// `/etc/istio/proxy/XDS`, never `fooetc/istio/proxy/XDS`.
pub fn suffix_on_boundary(path: &[u8], suffix: &[u8]) -> bool {
    !suffix.is_empty()
        && path
            .strip_suffix(suffix)
            .is_some_and(|head| head.is_empty() || head.ends_with(b"/"))
}

#[cfg(test)]
mod tests;
