//! `extends` resolution: a file's `Spec` and the built-in profiles it extends (which may
//! extend others) -> one `Expectations`. Pure; never reads a file (profiles are built in).

use super::{
    Dropped, Expectations, Forbid, Format, Listen, Origin, ParseError, Removed, Spec, Target, parse,
};
use crate::check::profiles;

/// Resolves `extends` (built-in profiles, which may extend others). A file adds to its
/// profiles and never silently weakens them:
/// - its `forbid` items are added; they remove nothing (a profile's "15000 on loopback" and
///   the file's "no 15000 on the wildcard address" both hold);
/// - its `listen` item for a port or path replaces the profiles' `listen` items for that port
///   or path (to require an optional one, to change an owner), and its origin says which
///   profiles it replaces; the profiles' `forbid` items for the port stay;
/// - `drop` removes the profiles' `listen` and `forbid` items for a port or path on purpose;
///   what it removed is kept in `Expectations::dropped`, reported on every run. A `drop` that
///   names nothing the profiles say is an error at its line and column;
/// - `strict:` set in the file overrides the profiles'.
pub fn resolve(spec: Spec, origin: &str) -> Result<Expectations, ParseError> {
    resolve_with(spec, origin, &|name| profiles::get(name).map(|p| p.text))
}

/// `resolve` with the profiles' texts from `lookup` (tests give cyclic ones).
pub(super) fn resolve_with(
    spec: Spec,
    origin: &str,
    lookup: &Lookup,
) -> Result<Expectations, ParseError> {
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
) -> Result<Expectations, ParseError> {
    let mut inherited = Expectations::default();
    for name in &spec.extends {
        if chain.contains(name) {
            return Err(ParseError::unlocated(format!(
                "`extends` goes round in a circle: {} -> {name}",
                chain.join(" -> ")
            )));
        }
        if chain.len() >= MAX_DEPTH {
            return Err(ParseError::unlocated(format!(
                "`extends` is nested deeper than {MAX_DEPTH}: {}",
                chain.join(" -> ")
            )));
        }
        let text = lookup(name).ok_or_else(|| ParseError::unlocated(profiles::unknown(name)))?;
        let parent = parse(text, Format::Yaml).map_err(|e| {
            ParseError::unlocated(format!("built-in profile {name} is invalid: {e}"))
        })?;
        chain.push(name.clone());
        let resolved = resolve_in(parent, name, lookup, chain)?;
        chain.pop();
        inherited.append(resolved);
        if !inherited.extends.contains(name) {
            inherited.extends.push(name.clone());
        }
    }
    // A built-in profile is named by its name alone; a file's items by file and line.
    let is_profile = !chain.is_empty() || lookup(origin).is_some();
    let here = |line: Option<u64>| Origin {
        source: origin.to_string(),
        line: if is_profile { None } else { line },
        replaces: Vec::new(),
    };

    for d in &spec.drop {
        let (listen, kept): (Vec<Listen>, Vec<Listen>) = std::mem::take(&mut inherited.listen)
            .into_iter()
            .partition(|l| l.target.same(&d.target));
        inherited.listen = kept;
        let (forbid, kept): (Vec<Forbid>, Vec<Forbid>) = std::mem::take(&mut inherited.forbid)
            .into_iter()
            .partition(|f| f.target.same(&d.target));
        inherited.forbid = kept;
        if listen.is_empty() && forbid.is_empty() {
            return Err(ParseError {
                location: d.location,
                message: drop_names_nothing(d.target.clone(), &spec.extends, &inherited),
            });
        }
        let by = here(d.location.map(|(l, _)| l));
        inherited.dropped.extend(
            listen
                .into_iter()
                .map(Removed::Listen)
                .chain(forbid.into_iter().map(Removed::Forbid))
                .map(|item| Dropped {
                    item,
                    by: by.clone(),
                }),
        );
    }

    // The file's `listen` items replace the profiles' `listen` items for their port.
    let mut replaced: Vec<(Target, String)> = Vec::new();
    inherited.listen.retain(|l| {
        let mine = spec.listen.iter().any(|own| own.target.same(&l.target));
        if mine {
            replaced.push((l.target.clone(), l.origin.source.clone()));
        }
        !mine
    });
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
            .map(|l| {
                let mut o = here(l.origin.line);
                for (t, source) in &replaced {
                    if t.same(&l.target) && !o.replaces.contains(source) {
                        o.replaces.push(source.clone());
                    }
                }
                Listen { origin: o, ..l }
            })
            .collect(),
        forbid: spec
            .forbid
            .into_iter()
            .map(|f| Forbid {
                origin: here(f.origin.line),
                ..f
            })
            .collect(),
        dropped: Vec::new(),
        strict,
        extends: Vec::new(),
    });
    Ok(out)
}

/// Why a `drop` is an error: it names nothing the extended profiles say (a typo, a profile
/// changed, or an item dropped twice).
fn drop_names_nothing(target: Target, extends: &[String], left: &Expectations) -> String {
    let what = format!("`drop` {target}");
    if extends.is_empty() {
        return format!(
            "{what}: this file extends no profile, so there is nothing to drop; remove it"
        );
    }
    let already = left.dropped.iter().any(|d| match &d.item {
        Removed::Listen(l) => l.target.same(&target),
        Removed::Forbid(f) => f.target.same(&target),
    });
    if already {
        return format!("{what}: dropped twice; remove one");
    }
    format!(
        "{what}: no profile this file extends ({}) requires or forbids it; remove the `drop`, \
         or give the port, proto and path as the profile does",
        extends.join(", ")
    )
}
