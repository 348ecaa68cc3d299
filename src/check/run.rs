//! The check of one target, short of showing it: the profiles and files loaded (or taken from
//! `--expect-bundle`), the target inspected and evaluated, again and again under `--wait`, and
//! the address families `bind: wildcard` needs. Reads files and the target, never writes:
//! `command::check` shows the progress line and writes the report.
use std::io;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::catalog::Catalog;
use crate::check::bundle::{self, Bundle};
use crate::check::eval::{Families, Report, Waited};
use crate::check::expect::{self, Expectations, Format};
use crate::check::profiles;
use crate::error::Error;
use crate::escape::escape;
use crate::inspect;
use crate::request::Request;

/// Where expectations come from: `--profile NAME`, `--expect FILE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Profile(String),
    File(PathBuf),
}

/// A validated `check` command line.
#[derive(Debug, Clone)]
pub struct Plan {
    pub request: Request,
    pub inputs: Vec<Input>,
    /// `--wait`: poll until every expectation holds or this much time has passed.
    pub wait: Option<Duration>,
    /// `--junit FILE`; `-`: on stdout, framed after the report (`junit::write_framed`).
    pub junit: Option<PathBuf>,
    /// `--expect-bundle FILE|-`: the `--expect` files come from this bundle, not the file
    /// system (the kubectl plugin streams them on stdin).
    pub bundle: Option<PathBuf>,
}

/// How often `--wait` looks again.
pub const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// Checks one target: the expectations loaded, then the target inspected and evaluated once,
/// or under `--wait` until every expectation holds (`progress` is told each failing look).
/// Errors are usage or input errors (exit 2: a malformed file, an unknown profile) or an
/// unreachable target (exit 3).
pub fn check(
    plan: &Plan,
    catalog: &Catalog,
    progress: &mut dyn FnMut(Poll<'_>),
) -> Result<Report, Error> {
    if plan
        .inputs
        .iter()
        .any(|i| matches!(i, Input::Profile(p) if p == profiles::AUTO))
    {
        return Err(Error::Usage(
            "--profile auto picks each pod's profile on a node: it goes with --all-pods".into(),
        ));
    }
    let bundle = plan.bundle.as_deref().map(read_bundle).transpose()?;
    let loaded = load_from(&plan.inputs, bundle.as_ref())?;
    check_until(
        plan.wait,
        POLL_INTERVAL,
        || {
            let ins = inspect::inspect(&plan.request, catalog)?;
            let (families, warning) = families(&plan.request);
            let mut r = Report::new(&loaded.exp, loaded.sources.clone(), &ins, families);
            r.warnings.splice(0..0, loaded.notes.iter().cloned());
            r.warnings.extend(warning);
            Ok(r)
        },
        progress,
    )
}

/// The address families of the target's namespace (its interface addresses, read inside it),
/// which `bind: wildcard` must serve. When they cannot be read (no CAP_SYS_ADMIN to enter the
/// namespace), IPv4 is assumed and the warning says so.
pub fn families(req: &Request) -> (Families, Option<String>) {
    let read = crate::resolve::open_netns(req)
        .map_err(|e| e.to_string())
        .and_then(|ns| {
            ns.run_in(crate::sys::ifaddrs::interface_addrs)
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())
        });
    match read {
        Ok(addrs) => (Families::of(&addrs), None),
        Err(e) => (
            Families::default(),
            Some(format!(
                "the pod's addresses could not be read ({e}): `bind: wildcard` was checked as \
                 for an IPv4 pod"
            )),
        ),
    }
}

/// `families` for many targets at once (`check --all-pods`): each namespace opened, then all
/// entered in turn by one thread. Per target, as `families` gives it.
pub fn families_of(reqs: &[Request]) -> Vec<(Families, Option<String>)> {
    let fallback = |e: String| {
        (
            Families::default(),
            Some(format!(
                "the pod's addresses could not be read ({e}): `bind: wildcard` was checked as \
                 for an IPv4 pod"
            )),
        )
    };
    let opened: Vec<Result<crate::sys::netns::Netns, String>> = reqs
        .iter()
        .map(|r| crate::resolve::open_netns(r).map_err(|e| e.to_string()))
        .collect();
    let handles: Vec<&crate::sys::netns::Netns> =
        opened.iter().filter_map(|o| o.as_ref().ok()).collect();
    let read =
        crate::sys::netns::Netns::run_in_each(&handles, crate::sys::ifaddrs::interface_addrs);
    let mut read = match read {
        Ok(v) => v.into_iter(),
        Err(e) => return reqs.iter().map(|_| fallback(e.to_string())).collect(),
    };
    opened
        .iter()
        .map(|o| match o {
            Err(e) => fallback(e.clone()),
            Ok(_) => match read.next() {
                Some(Ok(Ok(addrs))) => (Families::of(&addrs), None),
                Some(Ok(Err(e))) => fallback(e.to_string()),
                Some(Err(e)) => fallback(e.to_string()),
                None => fallback("not read".into()),
            },
        })
        .collect()
}

/// What the profiles and files given say, loaded once for every look at the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    pub exp: Expectations,
    /// The profiles and files checked, as given (a profile a file extends is not one).
    pub sources: Vec<String>,
    /// For the report's warnings: each `--profile` left out as a file's base.
    pub notes: Vec<String>,
}

/// Reads and resolves every profile and file, in order. Every error names the profile or
/// file (and the line and column in it).
pub fn load(inputs: &[Input]) -> Result<Loaded, Error> {
    load_from(inputs, None)
}

/// `load`, with the `--expect` files taken from `bundle` when there is one (by the name the
/// user gave, never from the file system: the container has no such file).
///
/// A `--profile` that a given file extends (directly or through the profiles it extends) is
/// that file's base, not a second source: it is checked once, as the file modifies it (its
/// replacements and `drop`s hold), and a note says so. Profiles no file extends, and files,
/// are all checked as they are.
pub fn load_from(inputs: &[Input], bundle: Option<&Bundle>) -> Result<Loaded, Error> {
    if inputs.is_empty() {
        return Err(Error::Usage(format!(
            "check needs at least one --profile NAME or --expect FILE; the built-in profiles \
             are {}",
            profiles::names()
        )));
    }
    let mut loaded: Vec<(bool, Expectations, String)> = Vec::new();
    for input in inputs {
        let (exp, name) = match input {
            Input::Profile(name) => {
                let p = profiles::get(name).ok_or_else(|| {
                    Error::Usage(format!("--profile: {}", profiles::unknown(name)))
                })?;
                let exp = expect::load(p.text, Format::Yaml, p.name)
                    .map_err(|e| Error::Usage(format!("built-in profile {}: {e}", p.name)))?;
                (exp, p.name.to_string())
            }
            Input::File(path) => {
                let name = path.display().to_string();
                let bytes = match bundle {
                    Some(b) => b.get(&name).map(<[u8]>::to_vec).ok_or_else(|| {
                        Error::Usage(format!(
                            "--expect {}: not in the bundle of --expect-bundle, which holds: {}",
                            escape(name.as_bytes()),
                            escape(b.names().as_bytes())
                        ))
                    })?,
                    None => read_file(path, &name)?,
                };
                (parse_file(bytes, path, &name)?, name)
            }
        };
        loaded.push((matches!(input, Input::File(_)), exp, name));
    }
    let mut out = Loaded {
        exp: Expectations::default(),
        sources: Vec::new(),
        notes: Vec::new(),
    };
    for (is_file, exp, name) in &loaded {
        let base_of: Vec<&str> = loaded
            .iter()
            .filter(|(file, e, _)| !is_file && *file && e.extends.contains(name))
            .map(|(_, _, f)| f.as_str())
            .collect();
        if base_of.is_empty() {
            out.exp.append(exp.clone());
            out.sources.push(name.clone());
            continue;
        }
        let note = format!(
            "--profile {name}: already extended by {}; checked as {} modifies it",
            base_of.join(", "),
            if base_of.len() == 1 {
                "that file"
            } else {
                "each of those files"
            }
        );
        if !out.notes.contains(&note) {
            out.notes.push(note);
        }
    }
    Ok(out)
}

/// Reads `--expect-bundle`: `-` is stdin, read up to the bundle's `end` line only.
pub fn read_bundle(path: &std::path::Path) -> Result<Bundle, Error> {
    let read = if path.as_os_str() == "-" {
        bundle::read(&mut io::stdin().lock())
    } else {
        let bytes = crate::sys::files::read(path).map_err(|e| {
            Error::Usage(format!(
                "--expect-bundle {}: {e}",
                escape(path.as_os_str().as_encoded_bytes())
            ))
        })?;
        bundle::read(&mut io::Cursor::new(bytes))
    };
    read.map_err(|e| {
        Error::Usage(format!(
            "--expect-bundle {}: {e}",
            escape(path.as_os_str().as_encoded_bytes())
        ))
    })
}

fn read_file(path: &std::path::Path, name: &str) -> Result<Vec<u8>, Error> {
    let shown = escape(name.as_bytes());
    crate::sys::files::read(path).map_err(|e| {
        Error::Usage(match e.kind() {
            io::ErrorKind::NotFound => format!("--expect {shown}: no such file"),
            _ => format!("--expect {shown}: cannot read it: {e}"),
        })
    })
}

fn parse_file(bytes: Vec<u8>, path: &std::path::Path, name: &str) -> Result<Expectations, Error> {
    let shown = escape(name.as_bytes());
    let text = String::from_utf8(bytes).map_err(|e| {
        let good = e
            .as_bytes()
            .get(..e.utf8_error().valid_up_to())
            .unwrap_or_default();
        let line = good.iter().filter(|b| **b == b'\n').count() + 1;
        let column = good.iter().rev().take_while(|b| **b != b'\n').count() + 1;
        Error::Usage(format!(
            "{shown}:{line}:{column}: not UTF-8 text (an expectation file is YAML or JSON)"
        ))
    })?;
    expect::load(&text, Format::for_path(path), name).map_err(|e| {
        Error::Usage(match e.location {
            Some((line, column)) => format!("{shown}:{line}:{column}: {}", e.message),
            None => format!("{shown}: {}", e.message),
        })
    })
}

/// One moment of `--wait`, for the progress line.
#[derive(Debug)]
pub enum Poll<'a> {
    /// Some expectations fail; looking again soon.
    Failing {
        report: &'a Report,
        elapsed: Duration,
        limit: Duration,
    },
    /// The target cannot be reached (yet); looking again soon.
    Unreachable {
        error: &'a Error,
        elapsed: Duration,
        limit: Duration,
    },
    /// `check --all-pods`: these pods (their labels) still fail; sweeping again soon.
    PodsFailing {
        pods: &'a [String],
        elapsed: Duration,
        limit: Duration,
    },
    /// Waiting is over.
    Done,
}

/// Runs `attempt` once, or under `--wait` until its report passes or `limit` has passed,
/// sleeping `interval` between attempts. An unreachable target (the pod not there yet) is
/// retried while time remains; any other error ends at once. The last attempt runs at the
/// limit, so a listener that appears in the last moments is seen.
pub fn check_until(
    limit: Option<Duration>,
    interval: Duration,
    mut attempt: impl FnMut() -> Result<Report, Error>,
    progress: &mut dyn FnMut(Poll<'_>),
) -> Result<Report, Error> {
    let Some(limit) = limit else {
        return attempt();
    };
    let start = Instant::now();
    let mut attempts: u32 = 0;
    loop {
        attempts = attempts.saturating_add(1);
        let result = attempt();
        let elapsed = start.elapsed();
        match result {
            Ok(mut r) if r.passed() || elapsed >= limit => {
                progress(Poll::Done);
                r.waited = Some(Waited {
                    limit,
                    elapsed,
                    attempts,
                });
                return Ok(r);
            }
            Ok(r) => progress(Poll::Failing {
                report: &r,
                elapsed,
                limit,
            }),
            Err(e @ Error::Unreachable(_)) if elapsed < limit => progress(Poll::Unreachable {
                error: &e,
                elapsed,
                limit,
            }),
            Err(e) => {
                progress(Poll::Done);
                return Err(e);
            }
        }
        std::thread::sleep(interval.min(limit.saturating_sub(elapsed)));
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;
    use crate::check::eval::{CheckKind, Outcome, Status};
    use crate::request::Source;

    fn report(pass: bool) -> Report {
        Report {
            outcomes: vec![Outcome {
                check: CheckKind::Listen,
                name: None,
                expected: "listen tcp/15021".into(),
                origin: crate::check::expect::Origin::new("x"),
                dropped_by: None,
                status: if pass { Status::Pass } else { Status::Fail },
                reason: String::new(),
                found: vec![],
                target: None,
                owner: None,
                bind: None,
                optional: false,
            }],
            sources: vec![],
            target: "current".into(),
            netns_inode: None,
            source: Source::Netlink,
            warnings: vec![],
            hidden_owners: 0,
            strict: false,
            waited: None,
            families: Families::IPV4,
        }
    }

    #[test]
    fn without_wait_one_attempt() {
        let calls = Cell::new(0);
        let r = check_until(
            None,
            Duration::ZERO,
            || {
                calls.set(calls.get() + 1);
                Ok(report(false))
            },
            &mut |_| {},
        )
        .unwrap();
        assert_eq!(calls.get(), 1);
        assert!(!r.passed());
        assert!(r.waited.is_none());
    }

    #[test]
    fn wait_stops_as_soon_as_it_passes() {
        let calls = Cell::new(0);
        let mut seen = Vec::new();
        let r = check_until(
            Some(Duration::from_secs(10)),
            Duration::from_millis(1),
            || {
                calls.set(calls.get() + 1);
                Ok(report(calls.get() >= 3))
            },
            &mut |p| {
                seen.push(match p {
                    Poll::Failing { .. } => "failing",
                    Poll::Unreachable { .. } => "unreachable",
                    Poll::PodsFailing { .. } => "pods",
                    Poll::Done => "done",
                })
            },
        )
        .unwrap();
        assert!(r.passed());
        assert_eq!(calls.get(), 3);
        assert_eq!(seen, ["failing", "failing", "done"]);
        let w = r.waited.unwrap();
        assert_eq!(w.attempts, 3);
        assert!(w.elapsed < Duration::from_secs(10));
    }

    #[test]
    fn wait_gives_up_at_the_limit_with_the_last_report() {
        let start = Instant::now();
        let r = check_until(
            Some(Duration::from_millis(120)),
            Duration::from_millis(50),
            || Ok(report(false)),
            &mut |_| {},
        )
        .unwrap();
        assert!(!r.passed());
        let w = r.waited.unwrap();
        assert!(w.elapsed >= Duration::from_millis(120), "{w:?}");
        assert!(start.elapsed() < Duration::from_secs(5));
        assert!((3..=6).contains(&w.attempts), "{w:?}");
    }

    #[test]
    fn wait_retries_an_unreachable_target_but_not_other_errors() {
        let calls = Cell::new(0);
        let r = check_until(
            Some(Duration::from_secs(10)),
            Duration::from_millis(1),
            || {
                calls.set(calls.get() + 1);
                if calls.get() < 3 {
                    Err(Error::Unreachable("no such netns".into()))
                } else {
                    Ok(report(true))
                }
            },
            &mut |_| {},
        );
        assert!(r.unwrap().passed());
        let calls = Cell::new(0);
        let e = check_until(
            Some(Duration::from_secs(10)),
            Duration::from_millis(1),
            || {
                calls.set(calls.get() + 1);
                Err(Error::Privilege("CAP_SYS_ADMIN".into()))
            },
            &mut |_| {},
        )
        .unwrap_err();
        assert_eq!(calls.get(), 1);
        assert_eq!(e.exit_code(), 3);
        // Still unreachable at the limit: the error, exit 3.
        let e = check_until(
            Some(Duration::from_millis(30)),
            Duration::from_millis(10),
            || Err(Error::Unreachable("gone".into())),
            &mut |_| {},
        )
        .unwrap_err();
        assert_eq!(e, Error::Unreachable("gone".into()));
    }

    #[test]
    fn load_names_what_is_wrong() {
        let e = load(&[]).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.message().contains("istio-sidecar, istio-ambient"), "{e}");
        let e = load(&[Input::Profile("istio-sidecr".into())]).unwrap_err();
        assert!(
            e.message().contains("unknown profile `istio-sidecr`"),
            "{e}"
        );
        assert!(e.message().contains("istio-sidecar"), "{e}");
        let e = load(&[Input::File("/nonexistent/podports.yaml".into())]).unwrap_err();
        assert_eq!(
            e,
            Error::Usage("--expect /nonexistent/podports.yaml: no such file".into())
        );
        let twice = load(&[
            Input::Profile("istio-sidecar".into()),
            Input::Profile("istio-sidecar".into()),
        ])
        .unwrap();
        assert_eq!(twice.sources, ["istio-sidecar", "istio-sidecar"]);
        assert!(twice.notes.is_empty(), "{:?}", twice.notes);
        let once = load(&[Input::Profile("istio-sidecar".into())]).unwrap().exp;
        assert_eq!(
            twice.exp, once,
            "the same profile twice checks each item once"
        );
    }
}
