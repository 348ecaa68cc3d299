//! `extends` resolution: a file's `Spec` and the built-in profiles it extends (which may
//! extend others) -> one `Expectations`. Pure; never reads a file (profiles are built in).

use super::{Expectations, Forbid, Format, Listen, Spec, Target, parse};
use crate::check::profiles;

/// Resolves `extends` (built-in profiles, which may extend others). The file's own items for
/// a port or path replace everything its profiles say about that port or path (to require
/// an optional item, or to allow what a profile forbids); `strict:` set in the file overrides
/// the profiles'.
pub fn resolve(spec: Spec, origin: &str) -> Result<Expectations, String> {
    resolve_with(spec, origin, &|name| profiles::get(name).map(|p| p.text))
}

/// `resolve` with the profiles' texts from `lookup` (tests give cyclic ones).
pub(super) fn resolve_with(
    spec: Spec,
    origin: &str,
    lookup: &Lookup,
) -> Result<Expectations, String> {
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
