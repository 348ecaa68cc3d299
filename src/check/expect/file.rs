//! An expectation file as written, YAML or JSON -> `Spec`: serde types for the format, checks
//! that span several fields, and every error with the line and column the parser stopped at.
//! Pure; never resolves `extends` (that is `extends.rs`) nor reads a file.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};

use serde_saphyr::Spanned;

use super::{
    BindSpec, DropItem, Forbid, Format, Listen, Owner, OwnerNetns, ParseError, Spec, Target,
};
use crate::catalog::relative;
use crate::check::profiles;
use crate::model::Proto;

/// One file as written. Every error carries the line and column the parser stopped at.
/// Items carry their line (`Origin::line`; `DropItem::location`), read from the YAML parser's
/// spans. A JSON file is parsed as JSON (its errors are JSON's), then its items are located
/// by reading it again as YAML, which JSON is; if that fails they have no line.
pub fn parse(text: &str, format: Format) -> Result<Spec, ParseError> {
    let raw = match format {
        Format::Yaml => parse_yaml(text)?,
        Format::Json => {
            let mut raw = parse_json(text)?;
            if let Ok(spanned) = parse_yaml(text) {
                raw.take_locations(&spanned);
            }
            raw
        }
    };
    let line = |loc: &Option<(u64, u64)>| loc.map(|(l, _)| l);
    Ok(Spec {
        description: raw.description,
        extends: raw.extends.0.into_iter().map(|p| p.0).collect(),
        listen: raw
            .listen
            .into_iter()
            .map(|i| {
                let mut l = i.value;
                l.origin.line = line(&i.location);
                l
            })
            .collect(),
        forbid: raw
            .forbid
            .into_iter()
            .map(|i| {
                let mut f = i.value;
                f.origin.line = line(&i.location);
                f
            })
            .collect(),
        drop: raw
            .drop
            .into_iter()
            .map(|i| DropItem {
                location: i.location,
                ..i.value
            })
            .collect(),
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
    listen: Vec<Located<Listen>>,
    #[serde(default, deserialize_with = "list")]
    forbid: Vec<Located<Forbid>>,
    #[serde(default, deserialize_with = "list")]
    drop: Vec<Located<DropItem>>,
    #[serde(default)]
    strict: Option<bool>,
}

impl RawFile {
    /// Takes the items' locations from `other`, the same file read again, item by item.
    fn take_locations(&mut self, other: &RawFile) {
        fn take<T>(mine: &mut [Located<T>], theirs: &[Located<T>]) {
            if mine.len() == theirs.len() {
                for (m, t) in mine.iter_mut().zip(theirs) {
                    m.location = t.location;
                }
            }
        }
        take(&mut self.listen, &other.listen);
        take(&mut self.forbid, &other.forbid);
        take(&mut self.drop, &other.drop);
    }
}

/// An item and where it starts in the file (1-based line and column), when the parser says.
struct Located<T> {
    value: T,
    location: Option<(u64, u64)>,
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Located<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Located<T>, D::Error> {
        let s = Spanned::<T>::deserialize(d)?;
        let loc = s.referenced;
        Ok(Located {
            value: s.value,
            location: (loc.line() > 0).then(|| (loc.line(), loc.column())),
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawListen {
    name: Option<String>,
    port: Option<Port>,
    path: Option<String>,
    proto: Option<Proto>,
    owner: Option<String>,
    bind: Option<String>,
    owner_netns: Option<OwnerNetns>,
    #[serde(default)]
    optional: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawForbid {
    name: Option<String>,
    port: Option<Port>,
    path: Option<String>,
    proto: Option<Proto>,
    owner: Option<String>,
    bind: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDrop {
    port: Option<Port>,
    path: Option<String>,
    proto: Option<Proto>,
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
        if r.owner_netns.is_some() && i.owner.is_none() {
            return Err("`owner_netns` says where the owner lives: give `owner:` too".into());
        }
        Ok(Listen {
            name: i.name,
            target: i.target,
            owner: i.owner,
            bind: i.bind,
            owner_netns: r.owner_netns,
            optional: r.optional,
            origin: Default::default(),
        })
    }
}

impl TryFrom<RawDrop> for DropItem {
    type Error = String;
    fn try_from(r: RawDrop) -> Result<DropItem, String> {
        let i = item(None, r.port, r.path, r.proto, None, None)?;
        Ok(DropItem {
            target: i.target,
            location: None,
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
            origin: Default::default(),
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
                f.write_str("a mapping of `extends`, `listen`, `forbid`, `drop` and `strict`")
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
        "an expectation file is a mapping (`extends:`, `listen:`, `forbid:`, `drop:`, \
         `strict:`), not {found}"
    ))
}
