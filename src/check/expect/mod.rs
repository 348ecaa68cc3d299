//! Expectations: what a pod must, and must not, listen on (the model, here), the file format
//! (YAML or JSON, `file`: every error with a line and column), and `extends` resolution
//! against the built-in profiles (`extends`). Pure: text in, expectations out; never reads a
//! file or the system.
//!
//! ```yaml
//! extends: istio-sidecar     # optional: a built-in profile (or a list of them)
//! listen:                    # each must be listening
//!   - port: 9080
//!     proto: tcp             # tcp (default) | udp | unix (with `path:` instead of `port:`)
//!     owner: app             # optional: a process kind or a comm name
//!     bind: any              # optional: any | loopback | wildcard | an address
//!     owner_netns: other     # optional: own | other (held from another netns: ambient ztunnel)
//!     optional: false        # true: checked only when something listens there
//!     name: productpage      # optional: shown in reports
//! forbid:                    # none of these may be listening (added to the profiles')
//!   - port: 15000
//!     bind: wildcard         # narrows what is forbidden (also `owner:`)
//! drop:                      # profile items removed on purpose, reported on every run
//!   - port: 15004
//! strict: false              # true: any listener not named by a `listen` item (the
//!                            # file's or its profiles') fails
//! ```
//!
//! A file adds to the profiles it extends and never silently weakens them: its `listen` item
//! for a port replaces only the profiles' `listen` items for that port (and says so in its
//! `Origin`), its `forbid` items remove nothing, and only `drop` removes a profile item.

use std::fmt;
use std::net::IpAddr;

use serde::Deserialize;

use crate::catalog::{Bind, relative};
use crate::model::{Holder, Kind, Proto};

mod extends;
mod file;

pub use extends::resolve;
pub use file::parse;
use file::{RawDrop, RawForbid, RawListen};

/// What an expectation is about: a TCP or UDP port, or a unix socket name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `proto` is TCP or UDP.
    Inet { proto: Proto, port: u16 },
    /// A path as written (`etc/istio/proxy/XDS`, `/etc/istio/proxy/XDS`), or `@name` for an
    /// abstract name.
    Unix { path: String },
}

/// A unix name ready for matching: a path without leading `/` and `./` (pilot-agent binds
/// relative to `/`, so the kernel shows `etc/istio/proxy/XDS`), or an abstract name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnixKey<'a> {
    Path(&'a str),
    Abstract(&'a str),
}

impl Target {
    pub fn proto(&self) -> Proto {
        match self {
            Target::Inet { proto, .. } => *proto,
            Target::Unix { .. } => Proto::Unix,
        }
    }

    pub fn port(&self) -> Option<u16> {
        match self {
            Target::Inet { port, .. } => Some(*port),
            Target::Unix { .. } => None,
        }
    }

    pub fn unix_key(&self) -> Option<UnixKey<'_>> {
        match self {
            Target::Unix { path } => Some(match path.strip_prefix('@') {
                Some(name) => UnixKey::Abstract(name),
                None => UnixKey::Path(relative(path)),
            }),
            Target::Inet { .. } => None,
        }
    }

    /// The same socket name: unix paths compare without leading `/` and `./`.
    pub fn same(&self, other: &Target) -> bool {
        match (self, other) {
            (Target::Inet { .. }, Target::Inet { .. }) => self == other,
            _ => self.unix_key().is_some() && self.unix_key() == other.unix_key(),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Inet { proto, port } => write!(f, "{proto}/{port}"),
            Target::Unix { path } => write!(f, "unix {path}"),
        }
    }
}

/// Who must (or must not) hold a socket: a kind as podports classifies processes (a process
/// that merely names itself `envoy` is an `app`), or a comm name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    Kind(Kind),
    Comm(String),
}

/// The kernel keeps 15 bytes of a process name (TASK_COMM_LEN 16 with the NUL).
const COMM_LEN: usize = 15;

impl Owner {
    pub fn parse(s: &str) -> Result<Owner, String> {
        let s = s.trim();
        if s.is_empty() {
            return Err(
                "`owner` is empty: give a kind (envoy, pilot-agent, ztunnel, istiod, \
                        linkerd-proxy, app) or a process name"
                    .into(),
            );
        }
        if s.chars().any(char::is_control) {
            return Err(format!(
                "`owner` {:?} holds a control character",
                s.escape_debug().to_string()
            ));
        }
        Ok(match Kind::parse(s) {
            Some(k) => Owner::Kind(k),
            None => Owner::Comm(s.to_string()),
        })
    }

    /// Whether `h` is this owner. A comm name longer than the kernel keeps matches the
    /// truncated name (`pilot-discovery-x` matches comm `pilot-discovery`).
    pub fn matches(&self, h: &Holder) -> bool {
        match self {
            Owner::Kind(k) => h.kind == *k,
            Owner::Comm(name) => {
                let comm = h.process.comm.as_bytes();
                let want = name.as_bytes();
                comm == want
                    || (want.len() > COMM_LEN && comm.len() == COMM_LEN && want.starts_with(comm))
            }
        }
    }
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Owner::Kind(k) => f.write_str(k.as_str()),
            Owner::Comm(c) => f.write_str(c),
        }
    }
}

/// Where a listener must be bound (in `listen`) or which binds are forbidden (in `forbid`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindSpec {
    /// `any` (don't care), `loopback` (127.0.0.0/8, ::1) or `wildcard` (0.0.0.0, ::).
    Class(Bind),
    /// One address (an IPv4-mapped IPv6 address counts as the IPv4 address it carries).
    Addr(IpAddr),
}

impl Default for BindSpec {
    fn default() -> Self {
        BindSpec::Class(Bind::Any)
    }
}

impl BindSpec {
    pub fn parse(s: &str) -> Result<BindSpec, String> {
        let s = s.trim();
        match s {
            "any" => return Ok(BindSpec::Class(Bind::Any)),
            "loopback" => return Ok(BindSpec::Class(Bind::Loopback)),
            "wildcard" => return Ok(BindSpec::Class(Bind::Wildcard)),
            _ => {}
        }
        let bare = s
            .strip_prefix('[')
            .and_then(|a| a.strip_suffix(']'))
            .unwrap_or(s);
        bare.parse::<IpAddr>().map(BindSpec::Addr).map_err(|_| {
            format!(
                "`bind` {:?} is not any, loopback, wildcard or an IP address",
                s.escape_debug().to_string()
            )
        })
    }

    /// Whether a listener on `addr` meets this bind.
    pub fn allows(self, addr: IpAddr) -> bool {
        match self {
            BindSpec::Class(b) => b.allows(addr),
            BindSpec::Addr(want) => want.to_canonical() == addr.to_canonical(),
        }
    }

    pub fn is_any(self) -> bool {
        self == BindSpec::Class(Bind::Any)
    }
}

impl fmt::Display for BindSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BindSpec::Class(b) => f.write_str(b.as_str()),
            BindSpec::Addr(a) => write!(f, "{a}"),
        }
    }
}

/// Where an expectation comes from: `podports.yaml:7, replaces istio-sidecar`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    /// The profile or file (as given on the command line).
    pub source: String,
    /// The item's line in a file; none for the built-in profiles (named by their name).
    pub line: Option<u64>,
    /// The profiles whose `listen` items for the same port or path this item replaces.
    pub replaces: Vec<String>,
}

impl Origin {
    pub fn new(source: &str) -> Origin {
        Origin {
            source: source.to_string(),
            ..Origin::default()
        }
    }

    /// `podports.yaml:7`, without what it replaces.
    pub fn at(&self) -> String {
        match self.line {
            Some(l) => format!("{}:{l}", self.source),
            None => self.source.clone(),
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.at())?;
        if !self.replaces.is_empty() {
            write!(f, ", replaces {}", self.replaces.join(", "))?;
        }
        Ok(())
    }
}

/// Something that must be listening.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawListen")]
pub struct Listen {
    pub name: Option<String>,
    pub target: Target,
    pub owner: Option<Owner>,
    /// `loopback` and `wildcard` constrain every listener of the port; an address selects the
    /// listeners on it (`port: 9080, bind: 10.0.0.5` means "listening on 10.0.0.5:9080").
    pub bind: BindSpec,
    /// Whether the owner must hold it from the pod's own network namespace or from another
    /// (ambient ztunnel opens the pod's listeners inside it, then lives in its own).
    pub owner_netns: Option<OwnerNetns>,
    /// Checked only when something listens there (Istio's DNS capture, HBONE, ...).
    pub optional: bool,
    /// The profile or file (and line) it comes from, and what it replaces.
    pub origin: Origin,
}

/// Where the process holding a listener lives, relative to the pod's network namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OwnerNetns {
    /// In the pod's own network namespace.
    Own,
    /// In another one (ambient ztunnel, from its own pod).
    Other,
}

impl OwnerNetns {
    pub fn as_str(self) -> &'static str {
        match self {
            OwnerNetns::Own => "own",
            OwnerNetns::Other => "other",
        }
    }
}

/// Something that must not be listening. `bind` and `owner` narrow what is forbidden.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawForbid")]
pub struct Forbid {
    pub name: Option<String>,
    pub target: Target,
    pub owner: Option<Owner>,
    pub bind: BindSpec,
    pub origin: Origin,
}

/// A `drop` item as written: the port or path whose profile items the file removes.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawDrop")]
pub struct DropItem {
    pub target: Target,
    /// 1-based line and column in the file, when known.
    pub location: Option<(u64, u64)>,
}

impl DropItem {
    /// `drop tcp/15004`.
    pub fn describe(&self) -> String {
        format!("drop {}", self.target)
    }
}

/// A profile item a file removed with `drop`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removed {
    Listen(Listen),
    Forbid(Forbid),
}

/// What `drop` removed, and which file (and line) removed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dropped {
    pub item: Removed,
    pub by: Origin,
}

impl Listen {
    /// `listen tcp/15021 owner=envoy bind=wildcard`, as the file would say it.
    pub fn describe(&self) -> String {
        let mut s = format!("listen {}", self.target);
        push_narrowing(&mut s, &self.owner, self.bind);
        if let Some(n) = self.owner_netns {
            s.push_str(&format!(" owner_netns={}", n.as_str()));
        }
        if self.optional {
            s.push_str(" optional");
        }
        s
    }
}

impl Forbid {
    /// `forbid tcp/15000 bind=wildcard`.
    pub fn describe(&self) -> String {
        let mut s = format!("forbid {}", self.target);
        push_narrowing(&mut s, &self.owner, self.bind);
        s
    }
}

fn push_narrowing(s: &mut String, owner: &Option<Owner>, bind: BindSpec) {
    if let Some(o) = owner {
        s.push_str(&format!(" owner={o}"));
    }
    if !bind.is_any() {
        s.push_str(&format!(" bind={bind}"));
    }
}

/// Everything to check, from every profile and file, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expectations {
    pub listen: Vec<Listen>,
    pub forbid: Vec<Forbid>,
    /// Profile items a file removed with `drop`: not checked, but reported on every run.
    pub dropped: Vec<Dropped>,
    /// The origin that asked for `strict: true`, if any did.
    pub strict: Option<String>,
    /// The built-in profiles resolved into these through `extends`, directly or through
    /// the profiles they extend: a file's base, which `--profile` does not add again.
    pub extends: Vec<String>,
}

impl Expectations {
    /// Nothing to check at all: a CI step that always passes, which is never what was meant.
    pub fn is_empty(&self) -> bool {
        self.listen.is_empty() && self.forbid.is_empty() && self.strict.is_none()
    }

    /// The `listen` items `strict` counts as named: every one checked, and every one a file
    /// dropped (a dropped requirement is no longer required, but its port is still known).
    pub fn named(&self) -> impl Iterator<Item = &Listen> {
        self.listen
            .iter()
            .chain(self.dropped.iter().filter_map(|d| match &d.item {
                Removed::Listen(l) => Some(l),
                Removed::Forbid(_) => None,
            }))
    }

    /// Adds `other`'s expectations, skipping exact duplicates (two profiles extending the
    /// same one).
    pub fn append(&mut self, other: Expectations) {
        for l in other.listen {
            if !self.listen.contains(&l) {
                self.listen.push(l);
            }
        }
        for f in other.forbid {
            if !self.forbid.contains(&f) {
                self.forbid.push(f);
            }
        }
        for d in other.dropped {
            if !self.dropped.contains(&d) {
                self.dropped.push(d);
            }
        }
        if self.strict.is_none() {
            self.strict = other.strict;
        }
        for name in other.extends {
            if !self.extends.contains(&name) {
                self.extends.push(name);
            }
        }
    }
}

/// One file as written, before `extends` is resolved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Spec {
    pub description: Option<String>,
    pub extends: Vec<String>,
    pub listen: Vec<Listen>,
    pub forbid: Vec<Forbid>,
    pub drop: Vec<DropItem>,
    pub strict: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Yaml,
    Json,
}

impl Format {
    /// JSON for a `.json` file (exact JSON errors), YAML otherwise (YAML also reads JSON).
    pub fn for_path(path: &std::path::Path) -> Format {
        match path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("json") => Format::Json,
            _ => Format::Yaml,
        }
    }
}

/// Why a file was rejected: the message, and where in the file when that is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line and column.
    pub location: Option<(u64, u64)>,
    pub message: String,
}

impl ParseError {
    fn unlocated(message: String) -> ParseError {
        ParseError {
            location: None,
            message,
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.location {
            Some((line, column)) => write!(f, "{line}:{column}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// Parses, resolves `extends`, and refuses a file that expects nothing. `origin` names the
/// file (or profile) in reports.
pub fn load(text: &str, format: Format, origin: &str) -> Result<Expectations, ParseError> {
    let spec = parse(text, format)?;
    let exp = resolve(spec, origin)?;
    if exp.is_empty() {
        return Err(ParseError::unlocated(
            "expects nothing: add `extends: PROFILE`, `listen:`, `forbid:` or `strict: true`"
                .into(),
        ));
    }
    Ok(exp)
}

#[cfg(test)]
mod tests;
