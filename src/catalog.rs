//! The port catalog: what each mesh port, unix socket path and special source address is for,
//! kept as data in `catalog/mesh.toml` (embedded) and looked up when annotating sockets.
//! Pure: no I/O, and no fact that is not in the data file (each entry cites its source).

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::model::{Kind, Proto, Role};

/// The catalog shipped with podports.
const BUILTIN: &str = include_str!("../catalog/mesh.toml");

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Table {
    Port,
    Unix,
    Address,
}

impl Table {
    fn as_str(self) -> &'static str {
        match self {
            Table::Port => "port",
            Table::Unix => "unix",
            Table::Address => "address",
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCatalog {
    #[serde(default)]
    port: Vec<RawEntry>,
    #[serde(default)]
    unix: Vec<RawEntry>,
    #[serde(default)]
    address: Vec<RawEntry>,
}

/// One entry as written; every field optional so that `build` can say what is missing.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    mesh: Option<String>,
    component: Option<String>,
    name: Option<String>,
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
fn required(value: Option<String>, field: &str) -> Result<String, String> {
    match value {
        Some(v) if !v.trim().is_empty() => Ok(v),
        Some(_) => Err(format!("`{field}` is empty")),
        None => Err(format!("missing `{field}`")),
    }
}

/// An optional text field that, when present, is not blank.
fn optional(value: Option<String>, field: &str) -> Result<Option<String>, String> {
    match value {
        Some(v) if v.trim().is_empty() => Err(format!("`{field}` is empty (leave it out instead)")),
        other => Ok(other),
    }
}

/// Validate one entry on its own.
fn build(table: Table, r: RawEntry) -> Result<Entry, String> {
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
fn conflict(earlier: &Entry, later: &Entry) -> Option<String> {
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
fn no_fallback(built: &[(String, Entry)]) -> Result<(), CatalogError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    use Kind::{App, Envoy, Istiod, LinkerdProxy, PilotAgent, Ztunnel};
    use Proto::{Tcp, Udp};

    fn builtin() -> Catalog {
        Catalog::builtin().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn err(text: &str) -> String {
        Catalog::parse(text).unwrap_err().to_string()
    }

    #[test]
    fn builtin_parses_and_every_entry_is_sourced() {
        let c = builtin();
        assert!(c.entries().count() > 40);
        for e in c.entries() {
            assert!(!e.source.trim().is_empty(), "{}", e.label());
            assert!(!e.description.trim().is_empty(), "{}", e.label());
            assert!(!e.name.trim().is_empty(), "{}", e.label());
        }
    }

    /// Proto, port, holders, expected (component, name).
    type LocalCase = (Proto, u16, &'static [Kind], Option<(Kind, &'static str)>);

    /// The reference page's facts, including owner-dependent resolution.
    #[test]
    fn local_roles_follow_the_reference_page() {
        #[rustfmt::skip]
        let cases: &[LocalCase] = &[
            // Sidecar ports.
            (Tcp, 15000, &[Envoy], Some((Envoy, "admin"))),
            (Tcp, 15002, &[PilotAgent], Some((PilotAgent, "iptables-validation"))),
            (Tcp, 15004, &[PilotAgent], Some((PilotAgent, "xds-debug"))),
            (Tcp, 15009, &[Envoy], Some((Envoy, "hbone-secure-networks"))),
            (Tcp, 15090, &[Envoy], Some((Envoy, "prometheus-stats"))),
            (Tcp, 15090, &[], Some((Envoy, "prometheus-stats"))),
            // 15000: Envoy admin or ztunnel admin.
            (Tcp, 15000, &[Ztunnel], Some((Ztunnel, "admin"))),
            (Tcp, 15000, &[], Some((Envoy, "admin"))),
            (Tcp, 15000, &[App, Envoy], Some((Envoy, "admin"))),
            // 15001/15006/15008: Envoy capture or ztunnel in-pod listeners.
            (Tcp, 15001, &[Envoy], Some((Envoy, "virtual-outbound"))),
            (Tcp, 15001, &[Ztunnel], Some((Ztunnel, "outbound"))),
            (Tcp, 15001, &[], Some((Envoy, "virtual-outbound"))),
            (Tcp, 15001, &[App], Some((Envoy, "virtual-outbound"))),
            (Udp, 15001, &[Envoy], None),
            (Tcp, 15006, &[Envoy], Some((Envoy, "virtual-inbound"))),
            (Tcp, 15006, &[Ztunnel], Some((Ztunnel, "inbound-plaintext"))),
            (Tcp, 15006, &[], Some((Envoy, "virtual-inbound"))),
            (Tcp, 15008, &[Envoy], Some((Envoy, "hbone"))),
            (Tcp, 15008, &[Ztunnel], Some((Ztunnel, "hbone-inbound"))),
            (Tcp, 15008, &[], Some((Envoy, "hbone"))),
            (Tcp, 15080, &[], Some((Ztunnel, "socks5"))),
            // 15020/15021: sidecar status/readiness or ztunnel's own pod.
            (Tcp, 15020, &[PilotAgent], Some((PilotAgent, "status"))),
            (Tcp, 15020, &[Ztunnel], Some((Ztunnel, "metrics"))),
            (Tcp, 15020, &[], Some((PilotAgent, "status"))),
            (Tcp, 15021, &[Envoy], Some((Envoy, "readiness"))),
            (Tcp, 15021, &[Ztunnel], Some((Ztunnel, "readiness"))),
            (Tcp, 15021, &[App], Some((Envoy, "readiness"))),
            // 15053: DNS proxy, udp and tcp, pilot-agent or ztunnel.
            (Udp, 15053, &[PilotAgent], Some((PilotAgent, "dns-proxy"))),
            (Tcp, 15053, &[PilotAgent], Some((PilotAgent, "dns-proxy"))),
            (Udp, 15053, &[Ztunnel], Some((Ztunnel, "dns-proxy"))),
            (Udp, 15053, &[], Some((PilotAgent, "dns-proxy"))),
            // Gateways.
            (Tcp, 15443, &[Envoy], Some((Envoy, "tls-passthrough"))),
            (Tcp, 15012, &[Envoy], Some((Envoy, "istiod-xds-exposed"))),
            (Tcp, 443, &[Envoy], Some((Envoy, "gateway-https"))),
            (Tcp, 443, &[App], None),
            // istiod: generic ports match only when istiod holds them.
            (Tcp, 15012, &[Istiod], Some((Istiod, "xds-tls"))),
            (Tcp, 15012, &[], None),
            (Tcp, 15010, &[Istiod], Some((Istiod, "xds-plaintext"))),
            (Tcp, 15014, &[Istiod], Some((Istiod, "monitoring"))),
            (Tcp, 15017, &[Istiod], Some((Istiod, "webhook"))),
            (Tcp, 9876, &[Istiod], Some((Istiod, "controlz"))),
            (Tcp, 9876, &[App], None),
            (Tcp, 8080, &[Istiod], Some((Istiod, "http-debug"))),
            (Tcp, 8080, &[Envoy], Some((Envoy, "gateway-http-legacy"))),
            (Tcp, 8080, &[App], None),
            (Tcp, 8080, &[], None),
            // Linkerd.
            (Tcp, 4140, &[LinkerdProxy], Some((LinkerdProxy, "outbound"))),
            (Tcp, 4143, &[LinkerdProxy], Some((LinkerdProxy, "inbound"))),
            (Tcp, 4190, &[LinkerdProxy], Some((LinkerdProxy, "control"))),
            (Tcp, 4191, &[LinkerdProxy], Some((LinkerdProxy, "admin"))),
            (Tcp, 4191, &[App], None),
            (Tcp, 8086, &[App], None),
            // Nothing.
            (Tcp, 22, &[App], None),
        ];
        let c = builtin();
        for (proto, port, owners, want) in cases {
            let got = c
                .local_role(*proto, *port, owners)
                .map(|e| (e.component, e.name.as_str()));
            assert_eq!(got, *want, "{proto} {port} held by {owners:?}");
        }
    }

    /// Reserved = pilot-agent's istioReservedPorts, plus ztunnel's in-pod 15080.
    #[test]
    fn reserved_ports_are_istio_reserved_ports() {
        let mut ports: Vec<u16> = builtin()
            .entries()
            .filter(|e| e.reserved)
            .filter_map(|e| match e.key {
                Key::Port { port, .. } => Some(port),
                _ => None,
            })
            .collect();
        ports.sort_unstable();
        ports.dedup();
        assert_eq!(
            ports,
            [
                15000, 15001, 15004, 15006, 15008, 15020, 15021, 15053, 15080, 15090
            ]
        );
    }

    #[test]
    fn istio_15004_carries_a_version_note() {
        let c = builtin();
        let e = c.local_role(Tcp, 15004, &[PilotAgent]).unwrap();
        assert_eq!(e.versions, "< 1.25");
        assert_eq!(e.role().versions, "< 1.25");
        let sds = c.unix_role(b"etc/istio/proxy/SDS").unwrap();
        assert_eq!(sds.versions, "< 1.14");
    }

    #[test]
    fn role_copies_the_entry() {
        let c = builtin();
        let role = c.local_role(Tcp, 15000, &[Envoy]).unwrap().role();
        assert_eq!(role.mesh, "istio");
        assert_eq!(role.component, Envoy);
        assert_eq!(role.name, "admin");
        assert_eq!(
            role.source,
            "tools/packaging/common/envoy_bootstrap.json (admin.address)"
        );
        assert!(role.versions.is_empty());
    }

    #[test]
    fn unix_paths_match_by_suffix_on_component_boundaries() {
        let c = builtin();
        #[rustfmt::skip]
        let cases: &[(&[u8], Option<&str>)] = &[
            (b"etc/istio/proxy/XDS", Some("xds-proxy")),
            (b"/etc/istio/proxy/XDS", Some("xds-proxy")),
            (b"./etc/istio/proxy/XDS", Some("xds-proxy")),
            (b"/host/root/etc/istio/proxy/XDS", Some("xds-proxy")),
            (b"./var/run/secrets/workload-spiffe-uds/socket", Some("sds")),
            (b"etc/istio/proxy/SDS", Some("sds-legacy")),
            (b"var/run/secrets/credential-uds/socket", Some("credential-sds")),
            (b"var/run/secrets/credential-uds/files-socket", Some("file-credentials-sds")),
            (b"/var/run/ztunnel/ztunnel.sock", Some("zds")),
            (b"var/run/ztunnel/ztunnel.sock", Some("zds")),
            (b"/var/run/istio-cni/pluginevent.sock", Some("cni-plugin-events")),
            (b"/var/run/istio-cni/log.sock", Some("cni-plugin-log")),
            // Negative: not on a boundary, longer, shorter, or other bytes.
            (b"foo/etc/istio/proxy/XDSX", None),
            (b"etc/istio/proxy/XDSX", None),
            (b"fooetc/istio/proxy/XDS", None),
            (b"istio/proxy/XDS", None),
            (b"XDS", None),
            (b"etc/istio/proxy/XDS/", None),
            (b"etc/istio/proxy/xds", None),
            (b"etc/istio/proxy/XD\xff", None),
            (b"var/run/secrets/other-uds/socket", None),
            (b"socket", None),
            (b"", None),
        ];
        for (path, want) in cases {
            let got = c.unix_role(path).map(|e| e.name.as_str());
            assert_eq!(got, *want, "{:?}", String::from_utf8_lossy(path));
        }
    }

    #[test]
    fn peer_roles_are_server_ports_only() {
        let c = builtin();
        let p = |proto, port| {
            c.peer_role(proto, port)
                .map(|e| (e.component, e.name.as_str()))
        };
        assert_eq!(p(Tcp, 15012), Some((Istiod, "xds-tls")));
        assert_eq!(p(Tcp, 15010), Some((Istiod, "xds-plaintext")));
        assert_eq!(p(Tcp, 15017), Some((Istiod, "webhook")));
        assert_eq!(p(Tcp, 15008), Some((Envoy, "hbone")));
        assert_eq!(p(Tcp, 15443), Some((Envoy, "tls-passthrough")));
        assert_eq!(p(Tcp, 4143), Some((LinkerdProxy, "inbound")));
        assert_eq!(p(Udp, 15012), None);
        assert_eq!(p(Tcp, 15000), None);
        assert_eq!(p(Tcp, 15001), None);
        assert_eq!(p(Tcp, 15006), None);
        assert_eq!(p(Tcp, 8080), None);
        assert_eq!(p(Tcp, 443), None);
    }

    #[test]
    fn special_source_addresses() {
        let c = builtin();
        for a in ["127.0.0.6", "::6", "::ffff:127.0.0.6"] {
            let e = c.source_role(ip(a)).unwrap_or_else(|| panic!("{a}"));
            assert_eq!(
                (e.component, e.name.as_str()),
                (Envoy, "inbound-passthrough-source")
            );
        }
        for a in [
            "127.0.0.1",
            "::1",
            "127.0.0.7",
            "10.0.0.6",
            "::ffff:127.0.0.1",
        ] {
            assert_eq!(c.source_role(ip(a)), None, "{a}");
        }
    }

    #[test]
    fn bind_expectations() {
        let c = builtin();
        let admin = c.local_role(Tcp, 15000, &[Envoy]).unwrap();
        assert_eq!(admin.bind, Some(Bind::Loopback));
        assert_eq!(
            admin
                .bind_violation(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
                .as_deref(),
            Some("envoy admin (15000) bound to 0.0.0.0, reachable beyond loopback")
        );
        assert_eq!(
            admin
                .bind_violation(IpAddr::V6(Ipv6Addr::UNSPECIFIED))
                .as_deref(),
            Some("envoy admin (15000) bound to [::], reachable beyond loopback")
        );
        for ok in ["127.0.0.1", "::1", "::ffff:127.0.0.1"] {
            assert_eq!(admin.bind_violation(ip(ok)), None, "{ok}");
        }
        let dns = c.local_role(Udp, 15053, &[Ztunnel]).unwrap();
        assert!(dns.bind_violation(ip("10.1.2.3")).is_some());
        assert_eq!(dns.bind_violation(ip("::1")), None);
        let outbound = c.local_role(Tcp, 15001, &[Envoy]).unwrap();
        assert_eq!(outbound.bind_violation(ip("0.0.0.0")), None);
        assert_eq!(outbound.bind_violation(ip("::")), None);
        assert_eq!(
            outbound.bind_violation(ip("127.0.0.1")).as_deref(),
            Some(
                "envoy virtual-outbound (15001) bound to 127.0.0.1 only, expected on all addresses (0.0.0.0 or [::])"
            )
        );
        let stats = c.local_role(Tcp, 15090, &[Envoy]).unwrap();
        assert_eq!(stats.bind, Some(Bind::Any));
        assert_eq!(stats.bind_violation(ip("127.0.0.1")), None);
        assert_eq!(stats.bind_violation(ip("0.0.0.0")), None);
        let validation = c.local_role(Tcp, 15002, &[PilotAgent]).unwrap();
        assert_eq!(validation.bind_violation(ip("0.0.0.0")), None);
    }

    #[test]
    fn bind_round_trips_through_serde() {
        let b: Bind = serde_json::from_str("\"loopback\"").unwrap();
        assert_eq!(b, Bind::Loopback);
        assert_eq!(
            serde_json::to_string(&Bind::Wildcard).unwrap(),
            "\"wildcard\""
        );
        assert_eq!(Bind::Any.to_string(), "any");
    }

    const GOOD: &str = r#"
[[port]]
mesh = "istio"
component = "envoy"
name = "admin"
description = "d"
source = "s"
port = 15000
protos = ["tcp"]
"#;

    #[test]
    fn minimal_catalog_parses() {
        let c = Catalog::parse(GOOD).unwrap();
        assert_eq!(c.entries().count(), 1);
        assert_eq!(Catalog::parse("").unwrap().entries().count(), 0);
    }

    #[test]
    fn unknown_component_is_named() {
        let e = err(&GOOD.replace("\"envoy\"", "\"envoyy\""));
        assert!(e.contains("[[port]] #1 \"admin\""), "{e}");
        assert!(e.contains("unknown component `envoyy`"), "{e}");
        assert!(e.contains("pilot-agent, envoy, ztunnel"), "{e}");
    }

    #[test]
    fn missing_port_is_named() {
        let e = err(&GOOD.replace("port = 15000\n", ""));
        assert_eq!(e, "catalog entry [[port]] #1 \"admin\": missing `port`");
    }

    #[test]
    fn malformed_entries_are_rejected_with_the_reason() {
        #[rustfmt::skip]
        let cases: &[(&str, &str)] = &[
            (&GOOD.replace("port = 15000", "port = 0"), "`port` is 0"),
            (&GOOD.replace("protos = [\"tcp\"]\n", ""), "missing `protos`"),
            (&GOOD.replace("[\"tcp\"]", "[]"), "`protos` is empty"),
            (&GOOD.replace("[\"tcp\"]", "[\"unix\"]"), "tcp and udp only"),
            (&GOOD.replace("[\"tcp\"]", "[\"tcp\", \"tcp\"]"), "lists tcp twice"),
            (&GOOD.replace("\"istio\"", "\"consul\""), "unknown mesh `consul`"),
            (&GOOD.replace("source = \"s\"\n", ""), "missing `source`"),
            (&GOOD.replace("source = \"s\"", "source = \" \""), "`source` is empty"),
            (&GOOD.replace("name = \"admin\"\n", ""), "missing `name`"),
            (&format!("{GOOD}versions = \"\"\n"), "`versions` is empty"),
            (&format!("{GOOD}path = \"x\"\n"), "`path` does not belong in a [[port]] entry"),
            (&format!("{GOOD}reserved = true\n").replace("\"envoy\"", "\"app\""), "cannot be `reserved`"),
        ];
        for (text, want) in cases {
            let e = err(text);
            assert!(e.contains("[[port]] #1"), "{e}");
            assert!(e.contains(want), "want {want:?} in {e:?}");
        }
    }

    #[test]
    fn unix_and_address_entries_are_checked() {
        let unix = "[[unix]]\nmesh = \"istio\"\ncomponent = \"pilot-agent\"\nname = \"xds\"\ndescription = \"d\"\nsource = \"s\"\n";
        assert!(err(unix).contains("[[unix]] #1 \"xds\": missing `path`"));
        assert!(err(&format!("{unix}path = \"./\"\n")).contains("names no file"));
        let e = err(&format!("{unix}path = \"etc/x\"\nbind = \"loopback\"\n"));
        assert!(e.contains("`bind` applies to [[port]] entries only"), "{e}");
        let dup = format!(
            "{unix}path = \"etc/x\"\n{}path = \"/etc/x\"\n",
            unix.replace("\"xds\"", "\"xds2\"")
        );
        let e = err(&dup);
        assert!(
            e.contains(
                "[[unix]] #2 \"xds2\": conflicts with [[unix]] #1 \"xds\": same unix path `etc/x`"
            ),
            "{e}"
        );

        let addr = "[[address]]\nmesh = \"istio\"\ncomponent = \"envoy\"\nname = \"a\"\ndescription = \"d\"\nsource = \"s\"\n";
        assert!(err(addr).contains("missing `addrs`"));
        assert!(err(&format!("{addr}addrs = []\n")).contains("`addrs` is empty"));
        let dup = format!(
            "{addr}addrs = [\"127.0.0.6\"]\n{}addrs = [\"::ffff:127.0.0.6\"]\n",
            addr.replace("\"a\"", "\"b\"")
        );
        assert!(err(&dup).contains("same address 127.0.0.6"));
    }

    #[test]
    fn unresolvable_duplicates_are_rejected() {
        let entry = |component: &str, name: &str, extra: &str| {
            format!(
                "[[port]]\nmesh = \"istio\"\ncomponent = \"{component}\"\nname = \"{name}\"\ndescription = \"d\"\nsource = \"s\"\nport = 15000\nprotos = [\"tcp\", \"udp\"]\n{extra}"
            )
        };
        let two = |a: String, b: String| err(&format!("{a}{b}"));

        let e = two(entry("envoy", "a", ""), entry("envoy", "b", ""));
        assert!(e.contains("[[port]] #2 \"b\": conflicts with [[port]] #1 \"a\": both give 15000/tcp to component envoy"), "{e}");
        let e = two(
            entry("ztunnel", "a", "reserved = true\n"),
            entry("istiod", "b", "reserved = true\n"),
        );
        assert!(
            e.contains(
                "[[port]] #1 \"a\": several `reserved` entries for 15000/tcp and none is a sidecar"
            ),
            "{e}"
        );
        let e = two(
            entry("envoy", "a", "reserved = true\n"),
            entry("pilot-agent", "b", "reserved = true\n"),
        );
        assert!(e.contains("both are `reserved`"), "{e}");
        let e = two(
            entry("envoy", "a", "peer = true\n"),
            entry("ztunnel", "b", "peer = true\n"),
        );
        assert!(e.contains("both are `peer`"), "{e}");
        let e = two(
            entry("envoy", "a", ""),
            entry("envoy", "a", "").replace("15000", "15001"),
        );
        assert!(e.contains("same name `a` for istio envoy"), "{e}");

        // Resolvable: one sidecar reserved entry is the fallback; different components.
        let ok = format!(
            "{}{}",
            entry("envoy", "a", "reserved = true\n"),
            entry("ztunnel", "b", "reserved = true\n")
        );
        assert!(Catalog::parse(&ok).is_ok());
        let ok = format!(
            "{}{}{}",
            entry("ztunnel", "a", "reserved = true\n"),
            entry("istiod", "b", "reserved = true\n"),
            entry("pilot-agent", "c", "reserved = true\n")
        );
        assert!(Catalog::parse(&ok).is_ok());
        let ok = format!("{}{}", entry("envoy", "a", ""), entry("ztunnel", "a", ""));
        assert!(Catalog::parse(&ok).is_ok());
    }

    #[test]
    fn syntax_errors_and_unknown_fields() {
        let e = err("[[port]\n");
        assert!(e.starts_with("invalid catalog: TOML parse error"), "{e}");
        let e = err(&format!("{GOOD}colour = \"red\"\n"));
        assert!(e.contains("colour"), "{e}");
        let e = err(&GOOD.replace("port = 15000", "port = 70000"));
        assert!(e.starts_with("invalid catalog: TOML parse error"), "{e}");
        let e = err(&format!("{GOOD}bind = \"loopbak\"\n"));
        assert!(e.contains("loopbak"), "{e}");
    }
}
