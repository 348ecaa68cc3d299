//! Expectations: what a pod must, and must not, listen on. The file format (YAML, or JSON),
//! its parsing with a line and column in every error, and `extends` resolution against the
//! built-in profiles. Pure: text in, expectations out; never reads a file or the system.
//!
//! ```yaml
//! extends: istio-sidecar     # optional: a built-in profile (or a list of them)
//! listen:                    # each must be listening
//!   - port: 9080
//!     proto: tcp             # tcp (default) | udp | unix (with `path:` instead of `port:`)
//!     owner: app             # optional: a process kind or a comm name
//!     bind: any              # optional: any | loopback | wildcard | an address
//!     optional: false        # true: checked only when something listens there
//!     name: productpage      # optional: shown in reports
//! forbid:                    # none of these may be listening
//!   - port: 15000
//!     bind: wildcard         # narrows what is forbidden (also `owner:`)
//! strict: false              # true: any listener not named by `listen` fails
//! ```

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;
use std::net::IpAddr;

use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};

use crate::catalog::{Bind, relative};
use crate::check::profiles;
use crate::model::{Holder, Kind, Proto};

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
    /// Checked only when something listens there (Istio's DNS capture, HBONE, ...).
    pub optional: bool,
    /// The profile or file it comes from.
    pub origin: String,
}

/// Something that must not be listening. `bind` and `owner` narrow what is forbidden.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawForbid")]
pub struct Forbid {
    pub name: Option<String>,
    pub target: Target,
    pub owner: Option<Owner>,
    pub bind: BindSpec,
    pub origin: String,
}

impl Listen {
    /// `listen tcp/15021 owner=envoy bind=wildcard`, as the file would say it.
    pub fn describe(&self) -> String {
        let mut s = format!("listen {}", self.target);
        push_narrowing(&mut s, &self.owner, self.bind);
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
    /// The origin that asked for `strict: true`, if any did.
    pub strict: Option<String>,
}

impl Expectations {
    /// Nothing to check at all: a CI step that always passes, which is never what was meant.
    pub fn is_empty(&self) -> bool {
        self.listen.is_empty() && self.forbid.is_empty() && self.strict.is_none()
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
        if self.strict.is_none() {
            self.strict = other.strict;
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
    let exp = resolve(spec, origin).map_err(ParseError::unlocated)?;
    if exp.is_empty() {
        return Err(ParseError::unlocated(
            "expects nothing: add `extends: PROFILE`, `listen:`, `forbid:` or `strict: true`"
                .into(),
        ));
    }
    Ok(exp)
}

/// One file as written. Every error carries the line and column the parser stopped at.
pub fn parse(text: &str, format: Format) -> Result<Spec, ParseError> {
    let raw = match format {
        Format::Yaml => parse_yaml(text)?,
        Format::Json => parse_json(text)?,
    };
    Ok(Spec {
        description: raw.description,
        extends: raw.extends.0.into_iter().map(|p| p.0).collect(),
        listen: raw.listen,
        forbid: raw.forbid,
        strict: raw.strict,
    })
}

fn parse_yaml(text: &str) -> Result<RawFile, ParseError> {
    // YAML 1.2 booleans only: `strict: yes` is a mistake to report, not `true` (the "Norway
    // problem"); duplicate keys are errors (the default).
    let options = serde_saphyr::options! { strict_booleans: true, with_snippet: false };
    // `RawFile` itself, not `Root`: serde-saphyr places its own "expected mapping start" on
    // the document, and an empty document is a default `RawFile`.
    serde_saphyr::from_str_with_options::<RawFile>(text, options).map_err(|e| {
        let formatter = serde_saphyr::UserMessageFormatter.with_localizer(&Unlocated);
        ParseError {
            location: e
                .location()
                .filter(|l| l.line() > 0)
                .map(|l| (l.line(), l.column())),
            message: e.render_with_formatter(&formatter),
        }
    })
}

/// serde-saphyr's wording without its " at line X, column Y" suffix: the location goes first,
/// as `FILE:LINE:COLUMN:`.
struct Unlocated;

impl serde_saphyr::Localizer for Unlocated {
    fn attach_location<'a>(
        &self,
        base: Cow<'a, str>,
        _loc: serde_saphyr::Location,
    ) -> Cow<'a, str> {
        base
    }
}

fn parse_json(text: &str) -> Result<RawFile, ParseError> {
    serde_json::from_str::<Root>(text)
        .map(|r| r.0)
        .map_err(|e| {
            let located = e.line() > 0;
            let mut message = e.to_string();
            // serde_json appends " at line L column C"; the location goes first instead.
            let suffix = format!(" at line {} column {}", e.line(), e.column());
            if located && let Some(m) = message.strip_suffix(&suffix) {
                message = m.to_string();
            }
            ParseError {
                location: located.then(|| (e.line() as u64, e.column() as u64)),
                message,
            }
        })
}

/// Resolves `extends` (built-in profiles, which may extend others). The file's own items for
/// a port or path replace everything its profiles say about that port or path (to require
/// an optional item, or to allow what a profile forbids); `strict:` set in the file overrides
/// the profiles'.
pub fn resolve(spec: Spec, origin: &str) -> Result<Expectations, String> {
    resolve_with(spec, origin, &|name| profiles::get(name).map(|p| p.text))
}

/// `resolve` with the profiles' texts from `lookup` (tests give cyclic ones).
fn resolve_with(spec: Spec, origin: &str, lookup: &Lookup) -> Result<Expectations, String> {
    resolve_in(spec, origin, lookup, &mut Vec::new())
}

type Lookup = dyn Fn(&str) -> Option<&'static str>;

/// Profiles extend profiles at most this deep.
const MAX_DEPTH: usize = 8;

/// `chain` holds the profiles being resolved, outermost first.
fn resolve_in(
    spec: Spec,
    origin: &str,
    lookup: &Lookup,
    chain: &mut Vec<String>,
) -> Result<Expectations, String> {
    let mut inherited = Expectations::default();
    for name in &spec.extends {
        if chain.contains(name) {
            return Err(format!(
                "`extends` goes round in a circle: {} -> {name}",
                chain.join(" -> ")
            ));
        }
        if chain.len() >= MAX_DEPTH {
            return Err(format!(
                "`extends` is nested deeper than {MAX_DEPTH}: {}",
                chain.join(" -> ")
            ));
        }
        let text = lookup(name).ok_or_else(|| profiles::unknown(name))?;
        let parent = parse(text, Format::Yaml)
            .map_err(|e| format!("built-in profile {name} is invalid: {e}"))?;
        chain.push(name.clone());
        let resolved = resolve_in(parent, name, lookup, chain)?;
        chain.pop();
        inherited.append(resolved);
    }
    let own: Vec<&Target> = spec
        .listen
        .iter()
        .map(|l| &l.target)
        .chain(spec.forbid.iter().map(|f| &f.target))
        .collect();
    inherited
        .listen
        .retain(|l| !own.iter().any(|t| t.same(&l.target)));
    inherited
        .forbid
        .retain(|f| !own.iter().any(|t| t.same(&f.target)));
    let strict = match spec.strict {
        Some(true) => Some(origin.to_string()),
        Some(false) => None,
        None => inherited.strict.take(),
    };
    let mut out = inherited;
    out.strict = None;
    out.append(Expectations {
        listen: spec
            .listen
            .into_iter()
            .map(|l| Listen {
                origin: origin.to_string(),
                ..l
            })
            .collect(),
        forbid: spec
            .forbid
            .into_iter()
            .map(|f| Forbid {
                origin: origin.to_string(),
                ..f
            })
            .collect(),
        strict,
    });
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// The file as serde sees it. Checks that involve several fields run in `TryFrom`, so that
// their errors, too, point at the item (serde-saphyr locates them at the item's start).

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    extends: Extends,
    #[serde(default, deserialize_with = "list")]
    listen: Vec<Listen>,
    #[serde(default, deserialize_with = "list")]
    forbid: Vec<Forbid>,
    #[serde(default)]
    strict: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawListen {
    name: Option<String>,
    port: Option<Port>,
    path: Option<String>,
    proto: Option<Proto>,
    owner: Option<String>,
    bind: Option<String>,
    #[serde(default)]
    optional: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawForbid {
    name: Option<String>,
    port: Option<Port>,
    path: Option<String>,
    proto: Option<Proto>,
    owner: Option<String>,
    bind: Option<String>,
}

/// The fields `listen` and `forbid` items share, checked together.
struct Item {
    name: Option<String>,
    target: Target,
    owner: Option<Owner>,
    bind: BindSpec,
}

fn item(
    name: Option<String>,
    port: Option<Port>,
    path: Option<String>,
    proto: Option<Proto>,
    owner: Option<String>,
    bind: Option<String>,
) -> Result<Item, String> {
    let target = match (port, path) {
        (Some(_), Some(_)) => {
            return Err("give `port` (tcp, udp) or `path` (unix), not both".into());
        }
        (None, None) => return Err("missing `port` (or `path` for a unix socket)".into()),
        (Some(Port(port)), None) => match proto.unwrap_or(Proto::Tcp) {
            Proto::Unix => {
                return Err("`proto: unix` names a socket by `path:`, not by `port:`".into());
            }
            proto => Target::Inet { proto, port },
        },
        (None, Some(path)) => {
            if let Some(p) = proto.filter(|p| *p != Proto::Unix) {
                return Err(format!("`path` names a unix socket, but `proto` is {p}"));
            }
            if bind.is_some() {
                return Err("`bind` applies to tcp and udp ports, not to a unix path".into());
            }
            check_path(&path)?;
            Target::Unix { path }
        }
    };
    if let Some(n) = &name
        && (n.trim().is_empty() || n.chars().any(char::is_control))
    {
        return Err("`name` must be one line of text".into());
    }
    Ok(Item {
        name,
        target,
        owner: owner.as_deref().map(Owner::parse).transpose()?,
        bind: bind
            .as_deref()
            .map(BindSpec::parse)
            .transpose()?
            .unwrap_or_default(),
    })
}

fn check_path(path: &str) -> Result<(), String> {
    if path.chars().any(char::is_control) {
        return Err(format!(
            "`path` {:?} holds a control character",
            path.escape_debug().to_string()
        ));
    }
    let empty = match path.strip_prefix('@') {
        Some(name) => name.is_empty(),
        None => relative(path).is_empty(),
    };
    if empty {
        return Err(format!(
            "`path` {path:?} names no socket: give a path such as etc/istio/proxy/XDS, or \
             @name for an abstract name"
        ));
    }
    Ok(())
}

impl TryFrom<RawListen> for Listen {
    type Error = String;
    fn try_from(r: RawListen) -> Result<Listen, String> {
        let i = item(r.name, r.port, r.path, r.proto, r.owner, r.bind)?;
        Ok(Listen {
            name: i.name,
            target: i.target,
            owner: i.owner,
            bind: i.bind,
            optional: r.optional,
            origin: String::new(),
        })
    }
}

impl TryFrom<RawForbid> for Forbid {
    type Error = String;
    fn try_from(r: RawForbid) -> Result<Forbid, String> {
        let i = item(r.name, r.port, r.path, r.proto, r.owner, r.bind)?;
        Ok(Forbid {
            name: i.name,
            target: i.target,
            owner: i.owner,
            bind: i.bind,
            origin: String::new(),
        })
    }
}

/// A port number: an integer from 1 to 65535 (not a string, not a float).
struct Port(u16);

impl<'de> Deserialize<'de> for Port {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Port, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Port;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a port number from 1 to 65535")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Port, E> {
                match u16::try_from(v) {
                    Ok(p) if p > 0 => Ok(Port(p)),
                    _ => Err(E::custom(format!(
                        "port {v} is out of range: a port is 1 to 65535"
                    ))),
                }
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Port, E> {
                match u64::try_from(v) {
                    Ok(v) => self.visit_u64(v),
                    Err(_) => Err(E::custom(format!(
                        "port {v} is out of range: a port is 1 to 65535"
                    ))),
                }
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Port, E> {
                Err(E::custom(format!(
                    "port {:?} is text: write the number without quotes, 1 to 65535",
                    v.escape_debug().to_string()
                )))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Port, E> {
                Err(E::custom(format!(
                    "port {v} is not a whole number: a port is 1 to 65535"
                )))
            }
            fn visit_u128<E: de::Error>(self, v: u128) -> Result<Port, E> {
                self.visit_u64(u64::try_from(v).unwrap_or(u64::MAX))
            }
            fn visit_i128<E: de::Error>(self, v: i128) -> Result<Port, E> {
                match u64::try_from(v) {
                    Ok(v) => self.visit_u64(v),
                    Err(_) if v > 0 => self.visit_u64(u64::MAX),
                    Err(_) => Err(E::custom(
                        "port is out of range: a port is 1 to 65535".to_string(),
                    )),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// `extends: NAME` or `extends: [NAME, ...]`.
#[derive(Default)]
struct Extends(Vec<ProfileName>);

impl<'de> Deserialize<'de> for Extends {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Extends, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Extends;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a built-in profile name, or a list of them")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Extends, E> {
                ProfileName::check(v).map(|p| Extends(vec![p]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Extends, A::Error> {
                let mut names = Vec::new();
                while let Some(p) = seq.next_element::<ProfileName>()? {
                    names.push(p);
                }
                Ok(Extends(names))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Extends, E> {
                Ok(Extends::default())
            }
            fn visit_none<E: de::Error>(self) -> Result<Extends, E> {
                Ok(Extends::default())
            }
        }
        d.deserialize_any(V)
    }
}

/// The name of a built-in profile, checked where it is written.
struct ProfileName(String);

impl ProfileName {
    fn check<E: de::Error>(name: &str) -> Result<ProfileName, E> {
        match profiles::get(name) {
            Some(p) => Ok(ProfileName(p.name.to_string())),
            None => Err(E::custom(profiles::unknown(name))),
        }
    }
}

impl<'de> Deserialize<'de> for ProfileName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<ProfileName, D::Error> {
        let s = String::deserialize(d)?;
        ProfileName::check(&s)
    }
}

/// A list, where YAML's empty value (`listen:` with nothing after it) is an empty list.
fn list<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct V<T>(PhantomData<T>);
    impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
        type Value = Vec<T>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a list of items (`- port: N`)")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
            let mut items = Vec::new();
            while let Some(i) = seq.next_element()? {
                items.push(i);
            }
            Ok(items)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Vec<T>, E> {
            Ok(Vec::new())
        }
        fn visit_none<E: de::Error>(self) -> Result<Vec<T>, E> {
            Ok(Vec::new())
        }
        fn visit_map<A: de::MapAccess<'de>>(self, _: A) -> Result<Vec<T>, A::Error> {
            Err(not_a_list("a mapping (start each item with `- `)"))
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Vec<T>, E> {
            Err(not_a_list("text"))
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Vec<T>, E> {
            Err(not_a_list("a boolean"))
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Vec<T>, E> {
            Err(not_a_list("a number"))
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Vec<T>, E> {
            Err(not_a_list("a number"))
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Vec<T>, E> {
            Err(not_a_list("a number"))
        }
    }
    d.deserialize_any(V(PhantomData))
}

/// serde-saphyr locates custom errors at the offending value (its `invalid type` errors at the
/// enclosing item), so the visitors here give their own.
fn not_a_list<E: de::Error>(found: &str) -> E {
    E::custom(format!(
        "expected a list of items (`- port: N`), not {found}"
    ))
}

/// A JSON file: a mapping, or `null` (which `load` then refuses as expecting nothing).
struct Root(RawFile);

impl<'de> Deserialize<'de> for Root {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Root, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Root;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping of `extends`, `listen`, `forbid` and `strict`")
            }
            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Root, A::Error> {
                RawFile::deserialize(de::value::MapAccessDeserializer::new(map)).map(Root)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Root, E> {
                Ok(Root(RawFile::default()))
            }
            fn visit_none<E: de::Error>(self) -> Result<Root, E> {
                Ok(Root(RawFile::default()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Root, A::Error> {
                Err(not_a_mapping("a list"))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Root, E> {
                Err(not_a_mapping("text"))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Root, E> {
                Err(not_a_mapping("a boolean"))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Root, E> {
                Err(not_a_mapping("a number"))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Root, E> {
                Err(not_a_mapping("a number"))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Root, E> {
                Err(not_a_mapping("a number"))
            }
        }
        d.deserialize_any(V)
    }
}

fn not_a_mapping<E: de::Error>(found: &str) -> E {
    E::custom(format!(
        "an expectation file is a mapping (`extends:`, `listen:`, `forbid:`, `strict:`), not \
         {found}"
    ))
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;
    use crate::catalog::Catalog;

    fn fixture(name: &str) -> (PathBuf, String) {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/check")
            .join(name);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        (path, text)
    }

    fn load_fixture(name: &str) -> Result<Expectations, ParseError> {
        let (path, text) = fixture(name);
        load(&text, Format::for_path(&path), name)
    }

    fn yaml(text: &str) -> Expectations {
        load(text, Format::Yaml, "f.yaml").unwrap_or_else(|e| panic!("{e}"))
    }

    fn err(text: &str) -> String {
        load(text, Format::Yaml, "f.yaml").unwrap_err().to_string()
    }

    /// Every malformed fixture, with the line, column and words of its error.
    #[test]
    fn every_malformed_file_is_rejected_with_line_and_column() {
        type Case<'a> = (&'a str, Option<(u64, u64)>, &'a str);
        #[rustfmt::skip]
        let cases: &[Case] = &[
            ("bad-unknown-key.yaml", Some((3, 5)), "unknown field `colour`, expected one of name, port, path, proto, owner, bind, optional"),
            ("bad-unknown-top-key.yaml", Some((2, 1)), "unknown field `listens`, expected one of description, extends, listen, forbid, strict"),
            ("bad-optional-in-forbid.yaml", Some((3, 5)), "unknown field `optional`"),
            ("bad-port-out-of-range.yaml", Some((3, 11)), "port 70000 is out of range: a port is 1 to 65535"),
            ("bad-port-zero.yaml", Some((2, 11)), "port 0 is out of range"),
            ("bad-port-negative.yaml", Some((2, 11)), "port -1 is out of range"),
            ("bad-port-string.yaml", Some((2, 11)), "port \"9080\" is text: write the number without quotes"),
            ("bad-port-float.yaml", Some((2, 11)), "port 90.5 is not a whole number"),
            ("bad-list-type.yaml", Some((1, 9)), "expected a list of items (`- port: N`), not a number"),
            ("bad-strict-type.yaml", Some((2, 9)), "invalid boolean (true or false expected)"),
            ("bad-proto.yaml", Some((3, 12)), "unknown variant `sctp`, expected one of tcp, udp, unix"),
            ("bad-bind.yaml", Some((2, 5)), "`bind` \"everywhere\" is not any, loopback, wildcard or an IP address"),
            ("bad-port-and-path.yaml", Some((2, 5)), "give `port` (tcp, udp) or `path` (unix), not both"),
            ("bad-missing-port.yaml", Some((2, 5)), "missing `port` (or `path` for a unix socket)"),
            ("bad-unix-with-port.yaml", Some((2, 5)), "`proto: unix` names a socket by `path:`, not by `port:`"),
            ("bad-path-with-tcp.yaml", Some((2, 5)), "`path` names a unix socket, but `proto` is tcp"),
            ("bad-bind-on-unix.yaml", Some((2, 5)), "`bind` applies to tcp and udp ports, not to a unix path"),
            ("bad-unknown-profile.yaml", Some((2, 10)), "unknown profile `istio-sidecr`; the built-in profiles are istio-sidecar, istio-ambient, istio-gateway, istiod, ztunnel, linkerd-proxy"),
            ("bad-empty-owner.yaml", Some((2, 5)), "`owner` is empty"),
            ("bad-empty-path.yaml", Some((2, 5)), "`path` \"./\" names no socket"),
            ("bad-extends-type.yaml", Some((2, 3)), "expected a built-in profile name, or a list of them"),
            ("bad-syntax.yaml", Some((3, 5)), "unclosed bracket '{'"),
            ("bad-tab.yaml", Some((2, 2)), "tabs disallowed"),
            ("bad-duplicate-key.yaml", Some((3, 5)), "duplicate mapping key `port`"),
            ("bad-two-documents.yaml", Some((3, 1)), "only single YAML document expected"),
            ("bad-not-a-mapping.yaml", Some((1, 1)), "expected mapping start"),
            ("bad-empty.yaml", None, "expects nothing: add `extends: PROFILE`, `listen:`, `forbid:` or `strict: true`"),
            ("bad-trailing-comma.json", Some((4, 3)), "trailing comma"),
            ("bad-unknown-key.json", Some((3, 43)), "unknown field `colour`"),
        ];
        let on_disk =
            std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/check"))
                .unwrap()
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("bad-"))
                .count();
        assert_eq!(on_disk, cases.len(), "every bad-* fixture has a case");
        for (name, location, words) in cases {
            let e = load_fixture(name).expect_err(name);
            assert_eq!(e.location, *location, "{name}: {e}");
            assert!(
                e.message.contains(words),
                "{name}: want {words:?} in {:?}",
                e.message
            );
            assert!(
                !e.message.contains(" at line "),
                "{name}: location twice: {e}"
            );
            assert!(!e.message.contains('\n'), "{name}: one line: {e}");
        }
    }

    #[test]
    fn the_full_example_loads_and_replaces_what_it_names() {
        let e = load_fixture("valid-full.yaml").unwrap();
        assert_eq!(e.strict.as_deref(), Some("valid-full.yaml"));
        // The file's 15053/udp replaces the profile's optional one; 15053/tcp stays optional.
        let dns: Vec<&Listen> = e
            .listen
            .iter()
            .filter(|l| l.target.port() == Some(15053))
            .collect();
        assert_eq!(dns.len(), 2, "{dns:#?}");
        let udp = dns.iter().find(|l| l.target.proto() == Proto::Udp).unwrap();
        assert!(!udp.optional);
        assert_eq!(udp.origin, "valid-full.yaml");
        let tcp = dns.iter().find(|l| l.target.proto() == Proto::Tcp).unwrap();
        assert!(tcp.optional);
        assert_eq!(tcp.origin, "istio-sidecar");
        // Profile items first, then the file's, each with its origin.
        assert_eq!(e.listen[0].origin, "istio-sidecar");
        let app = e
            .listen
            .iter()
            .find(|l| l.target.port() == Some(9080))
            .unwrap();
        assert_eq!(app.owner, Some(Owner::Kind(Kind::App)));
        assert_eq!(app.name.as_deref(), Some("productpage"));
        assert_eq!(app.bind, BindSpec::Class(Bind::Any));
        let sock = e
            .listen
            .iter()
            .find(|l| l.target.proto() == Proto::Unix && l.origin == "valid-full.yaml")
            .unwrap();
        assert_eq!(sock.owner, Some(Owner::Comm("productpage".into())));
        assert_eq!(
            sock.target.unix_key(),
            Some(UnixKey::Path("var/run/app/admin.sock"))
        );
        let v6 = e
            .listen
            .iter()
            .find(|l| l.target.port() == Some(9090))
            .unwrap();
        assert_eq!(v6.bind, BindSpec::Addr("::1".parse().unwrap()));
        assert_eq!(v6.target.proto(), Proto::Udp);
        assert!(v6.optional);
        assert_eq!(e.forbid.len(), 2);
        assert_eq!(e.forbid[0].describe(), "forbid tcp/15000 bind=wildcard");
        assert_eq!(e.forbid[1].describe(), "forbid tcp/8080 owner=app");
        assert_eq!(
            udp.describe(),
            "listen udp/15053 owner=pilot-agent bind=loopback"
        );
        assert_eq!(v6.describe(), "listen udp/9090 bind=::1 optional");
    }

    #[test]
    fn json_and_yaml_are_the_same_format() {
        let j = load_fixture("valid.json").unwrap();
        let y = yaml(
            "extends: [istio-ambient]\nlisten:\n  - {port: 8080, owner: app, bind: wildcard}\nforbid:\n  - path: \"@debug\"\nstrict: false\n",
        );
        let origin = |mut e: Expectations| {
            for l in &mut e.listen {
                l.origin = l.origin.replace("valid.json", "f.yaml");
            }
            for f in &mut e.forbid {
                f.origin = f.origin.replace("valid.json", "f.yaml");
            }
            e
        };
        assert_eq!(origin(j), y);
        // A JSON file named .yaml is read as YAML: it parses all the same.
        let (_, text) = fixture("valid.json");
        assert!(load(&text, Format::Yaml, "x.yaml").is_ok());
        // JSON errors too carry a line and column.
        let e = load("{\n  \"strict\": 1\n}", Format::Json, "x.json").unwrap_err();
        assert_eq!(e.location, Some((2, 13)), "{e}");
        let e = load("[1]", Format::Json, "x.json").unwrap_err();
        assert!(e.message.contains("is a mapping"), "{e}");
        assert!(e.location.is_some(), "{e}");
        assert!(
            load("null", Format::Json, "x.json")
                .unwrap_err()
                .message
                .contains("expects nothing")
        );
    }

    #[test]
    fn empty_lists_are_allowed() {
        let e = load_fixture("valid-empty-lists.yaml").unwrap();
        assert_eq!(e.listen.len(), 4);
        assert!(e.listen.iter().all(|l| l.origin == "linkerd-proxy"));
        assert!(e.forbid.is_empty());
    }

    #[test]
    fn own_items_replace_the_profiles_items_for_that_port() {
        // An app allowed on 15020 in an ambient pod: the file's item replaces the forbid.
        let e = yaml("extends: istio-ambient\nlisten:\n  - port: 15020\n    owner: app\n");
        assert!(e.forbid.iter().all(|f| f.target.port() != Some(15020)));
        assert_eq!(e.forbid.len(), 5);
        // A forbid item replaces the profile's listen items for its port.
        let e = yaml("extends: istio-sidecar\nforbid:\n  - port: 15053\n    proto: udp\n");
        assert!(!e.listen.iter().any(|l| l.target
            == Target::Inet {
                proto: Proto::Udp,
                port: 15053
            }));
        assert!(e.listen.iter().any(|l| l.target
            == Target::Inet {
                proto: Proto::Tcp,
                port: 15053
            }));
        // Unix paths are the same with or without a leading `/`.
        let e = yaml(
            "extends: istio-sidecar\nlisten:\n  - path: /etc/istio/proxy/XDS\n    optional: true\n",
        );
        let xds: Vec<&Listen> = e
            .listen
            .iter()
            .filter(|l| l.target.unix_key() == Some(UnixKey::Path("etc/istio/proxy/XDS")))
            .collect();
        assert_eq!(xds.len(), 1);
        assert!(xds[0].optional);
    }

    #[test]
    fn strict_is_inherited_unless_the_file_says() {
        assert_eq!(yaml("strict: true\n").strict.as_deref(), Some("f.yaml"));
        let e = yaml("extends: [istio-sidecar, istio-sidecar]\n");
        assert_eq!(e.strict, None);
        assert_eq!(
            e,
            yaml("extends: istio-sidecar\n"),
            "a profile twice counts once"
        );
        let spec = Spec {
            strict: Some(true),
            listen: vec![],
            ..Spec::default()
        };
        let parent = resolve(spec, "parent").unwrap();
        let mut child = Expectations::default();
        child.append(parent.clone());
        assert_eq!(child.strict.as_deref(), Some("parent"));
        assert!(err("strict: false\n").contains("expects nothing"));
    }

    #[test]
    fn extends_cycles_and_depth_are_refused() {
        let spec = || Spec {
            extends: vec!["istio-sidecar".into()],
            ..Spec::default()
        };
        // Profiles that extend each other (the built-in ones never do).
        let cyclic = |name: &str| match name {
            "istio-sidecar" => Some("extends: istio-gateway\n"),
            "istio-gateway" => Some("extends: istio-sidecar\n"),
            _ => None,
        };
        let e = resolve_with(spec(), "pod.yaml", &cyclic).unwrap_err();
        assert_eq!(
            e,
            "`extends` goes round in a circle: istio-sidecar -> istio-gateway -> istio-sidecar"
        );
        // Deep but not circular: each profile extends the next, six levels down.
        let names = [
            "istio-sidecar",
            "istio-gateway",
            "istiod",
            "ztunnel",
            "linkerd-proxy",
            "istio-ambient",
        ];
        let deep = move |name: &str| {
            let i = names.iter().position(|n| *n == name)?;
            Some(match names.get(i + 1) {
                Some(next) => Box::leak(format!("extends: {next}\n").into_boxed_str()) as &str,
                None => "strict: true\n",
            })
        };
        let e = resolve_with(spec(), "pod.yaml", &deep).unwrap();
        assert_eq!(e.strict.as_deref(), Some("istio-ambient"));
        // A file may bear a profile's name without being that profile.
        let e = resolve(spec(), "istio-sidecar").unwrap();
        assert!(!e.listen.is_empty());
    }

    #[test]
    fn owners_and_binds_parse() {
        assert_eq!(Owner::parse("envoy"), Ok(Owner::Kind(Kind::Envoy)));
        assert_eq!(
            Owner::parse(" linkerd-proxy "),
            Ok(Owner::Kind(Kind::LinkerdProxy))
        );
        assert_eq!(
            Owner::parse("linkerd2-proxy"),
            Ok(Owner::Comm("linkerd2-proxy".into()))
        );
        assert!(Owner::parse("").is_err());
        assert!(
            Owner::parse("a\u{1b}b")
                .unwrap_err()
                .contains("control character")
        );
        assert_eq!(
            BindSpec::parse("loopback"),
            Ok(BindSpec::Class(Bind::Loopback))
        );
        assert_eq!(
            BindSpec::parse("wildcard"),
            Ok(BindSpec::Class(Bind::Wildcard))
        );
        assert_eq!(BindSpec::parse("any"), Ok(BindSpec::Class(Bind::Any)));
        assert_eq!(
            BindSpec::parse("10.0.0.5"),
            Ok(BindSpec::Addr("10.0.0.5".parse().unwrap()))
        );
        assert_eq!(
            BindSpec::parse("[::]"),
            Ok(BindSpec::Addr("::".parse().unwrap()))
        );
        assert!(BindSpec::parse("Loopback").is_err());
        assert!(BindSpec::parse("10.0.0.5:80").is_err());
        let mapped = BindSpec::parse("127.0.0.1").unwrap();
        assert!(mapped.allows("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!mapped.allows("127.0.0.2".parse().unwrap()));
    }

    #[test]
    fn proto_defaults_to_tcp_and_to_unix_for_a_path() {
        let e =
            yaml("listen:\n  - port: 80\n  - path: run/x\n  - path: \"@abs\"\n    proto: unix\n");
        assert_eq!(
            e.listen[0].target,
            Target::Inet {
                proto: Proto::Tcp,
                port: 80
            }
        );
        assert_eq!(e.listen[1].target.proto(), Proto::Unix);
        assert_eq!(
            e.listen[2].target.unix_key(),
            Some(UnixKey::Abstract("abs"))
        );
        assert!(err("listen:\n  - path: \"@\"\n").contains("names no socket"));
        assert!(err("listen:\n  - port: 80\n    name: \"\"\n").contains("`name` must be one line"));
    }

    /// Each built-in profile loads, names every item, and agrees with the catalog on the
    /// binds of the ports both describe (both come from the same reference page).
    #[test]
    fn built_in_profiles_agree_with_the_catalog() {
        let catalog = Catalog::builtin().unwrap();
        for p in profiles::ALL {
            let spec = parse(p.text, Format::Yaml).unwrap_or_else(|e| panic!("{}: {e}", p.name));
            assert!(spec.description.is_some(), "{}", p.name);
            assert!(
                p.text.contains("istio-ports.md"),
                "{}: cite the source",
                p.name
            );
            let e = load(p.text, Format::Yaml, p.name).unwrap();
            assert!(!e.listen.is_empty(), "{}", p.name);
            for l in &e.listen {
                assert!(l.name.is_some(), "{}: {} has no name", p.name, l.describe());
                assert_eq!(l.origin, p.name);
                let (Target::Inet { proto, port }, Some(Owner::Kind(kind))) = (&l.target, &l.owner)
                else {
                    continue;
                };
                let entry = catalog.local_role(*proto, *port, &[*kind]);
                let Some(entry) = entry.filter(|e| e.component == *kind) else {
                    continue;
                };
                if let (Some(want @ (Bind::Loopback | Bind::Wildcard)), BindSpec::Class(got)) =
                    (entry.bind, l.bind)
                {
                    assert_eq!(got, want, "{}: {}", p.name, l.describe());
                }
            }
        }
    }

    #[test]
    fn no_input_panics() {
        let (_, full) = fixture("valid-full.yaml");
        let (_, json) = fixture("valid.json");
        for text in [&full, &json] {
            for end in (0..text.len()).filter(|i| text.is_char_boundary(*i)) {
                let cut = &text[..end];
                let _ = load(cut, Format::Yaml, "cut");
                let _ = load(cut, Format::Json, "cut");
            }
        }
        let nasty = [
            "listen: [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
            "a: &a [*a, *a]",
            "listen: &x\n  - port: 1\nforbid: *x\n",
            "listen:\n  - port: 99999999999999999999999999999\n",
            "listen:\n  - port: -99999999999999999999999999999\n",
            "listen:\n  - port: .inf\n",
            "listen:\n  - port: 0x50\n",
            "listen:\n  - port: !!str 80\n",
            "\u{feff}extends: istio-sidecar\n",
            "extends: !!binary aGVsbG8=\n",
            "? [a]\n: b\n",
            "listen:\n  - port: 80\n    owner: \"\\u0000\"\n",
            "%YAML 9.9\n---\nstrict: true\n",
        ];
        for text in nasty {
            let _ = load(text, Format::Yaml, "nasty");
            let _ = load(text, Format::Json, "nasty");
        }
        let deep = format!("listen: {}{}", "[".repeat(50_000), "]".repeat(50_000));
        assert!(load(&deep, Format::Yaml, "deep").is_err());
        let deep = format!(
            "{{\"listen\": {}{}}}",
            "[".repeat(50_000),
            "]".repeat(50_000)
        );
        assert!(load(&deep, Format::Json, "deep").is_err());
    }
}
