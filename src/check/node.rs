//! `check --all-pods`: every pod of the node checked in one sweep (one dump per network
//! namespace, one fd walk for the node), against the command line's profiles and files or,
//! with `--profile auto`, the profile each pod's mesh processes call for. I/O only through
//! the sweep, the files, the families read and the clock; never runs the single-pod path per
//! pod, never writes (`command::check` shows the `NodeReport`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::catalog::Catalog;
use crate::check::auto;
use crate::check::bundle::Bundle;
use crate::check::eval::{NodeReport, PodCheck, Report, Verdict, Waited};
use crate::check::expect::{self, Expectations, Format};
use crate::check::profiles;
use crate::check::run::{self, Input, Plan};
use crate::error::Error;
use crate::listing::{Inspection, Sweep};
use crate::model::PodRef;
use crate::request::{Request, Target};
use crate::sweep;

/// The expectations of every pod (and the notes of loading them), or `auto`.
enum Expect {
    Given(run::Loaded),
    Auto(BTreeMap<&'static str, Expectations>),
}

/// Checks every pod of the node (of `--namespace`): the expectations loaded once, then the
/// node swept and each pod evaluated, again under `--wait` while some pod fails. Errors: usage
/// (exit 2) or a node that cannot be read (exit 3).
pub fn check(
    plan: &Plan,
    catalog: &Catalog,
    progress: &mut dyn FnMut(run::Poll<'_>),
) -> Result<NodeReport, Error> {
    let Target::AllPods { namespace } = &plan.request.target else {
        return Err(Error::Usage("check --all-pods without --all-pods".into()));
    };
    let bundle = plan.bundle.as_deref().map(run::read_bundle).transpose()?;
    let expect = expectations(&plan.inputs, bundle.as_ref())?;
    check_node(
        &plan.request,
        namespace.as_deref(),
        &expect,
        plan.wait,
        catalog,
        progress,
    )
}

/// `--profile auto` alone, or profiles and files (loaded once, for every pod).
fn expectations(inputs: &[Input], bundle: Option<&Bundle>) -> Result<Expect, Error> {
    let auto = inputs
        .iter()
        .any(|i| matches!(i, Input::Profile(p) if p == profiles::AUTO));
    if !auto {
        return Ok(Expect::Given(run::load_from(inputs, bundle)?));
    }
    if inputs.len() > 1 {
        return Err(Error::Usage(
            "--profile auto picks each pod's profile itself: give it alone, without other \
             --profile or --expect"
                .into(),
        ));
    }
    let mut all = BTreeMap::new();
    for p in profiles::ALL {
        let exp = expect::load(p.text, Format::Yaml, p.name)
            .map_err(|e| Error::Usage(format!("built-in profile {}: {e}", p.name)))?;
        all.insert(p.name, exp);
    }
    Ok(Expect::Auto(all))
}

/// What a pod is checked against, or its verdict when it is not checked.
enum PodPlan<'a> {
    Check {
        exp: &'a Expectations,
        sources: Vec<String>,
        auto: Option<String>,
    },
    Done(Box<PodCheck>),
}

/// Whether and against what one pod is checked.
fn plan_pod<'a>(ins: &Inspection, expect: &'a Expect) -> PodPlan<'a> {
    let done = |verdict, auto| {
        PodPlan::Done(Box::new(PodCheck {
            label: ins.netns.target.clone(),
            pod: ins.pod.clone(),
            sources: Vec::new(),
            auto,
            verdict,
        }))
    };
    if ins.host_network {
        return done(Verdict::HostNetwork, None);
    }
    match expect {
        Expect::Given(loaded) => PodPlan::Check {
            exp: &loaded.exp,
            sources: loaded.sources.clone(),
            auto: None,
        },
        Expect::Auto(all) => {
            let choice = auto::choose(ins);
            match choice.profile.and_then(|p| all.get(p).map(|e| (p, e))) {
                Some((name, exp)) => PodPlan::Check {
                    exp,
                    sources: vec![name.to_string()],
                    auto: Some(choice.why),
                },
                None => done(Verdict::Unchecked, Some(choice.why)),
            }
        }
    }
}

/// Every listing's verdict, the address families of the checked pods read in one pass (one
/// thread entering each pod's namespace in turn).
fn verdicts(sweep: &Sweep, req: &Request, expect: &Expect) -> Vec<PodCheck> {
    let plans: Vec<PodPlan> = sweep
        .listings
        .iter()
        .map(|ins| plan_pod(ins, expect))
        .collect();
    let inside: Vec<Request> = plans
        .iter()
        .zip(&sweep.pids)
        .filter(|(p, _)| matches!(p, PodPlan::Check { .. }))
        .map(|(_, pid)| Request {
            target: Target::Pid(*pid),
            ..req.clone()
        })
        .collect();
    let mut families = run::families_of(&inside).into_iter();
    plans
        .into_iter()
        .zip(&sweep.listings)
        .map(|(plan, ins)| match plan {
            PodPlan::Done(c) => *c,
            PodPlan::Check { exp, sources, auto } => {
                let (fam, warning) = families.next().unwrap_or_default();
                let mut report = Report::new(exp, sources.clone(), ins, fam);
                report.warnings.extend(warning);
                PodCheck {
                    label: ins.netns.target.clone(),
                    pod: ins.pod.clone(),
                    sources,
                    auto,
                    verdict: Verdict::Checked(report),
                }
            }
        })
        .collect()
}

/// The sweep, evaluated per pod; under `--wait`, swept again while some pod fails, each pod
/// final as soon as it passes (or at the limit, with its last report).
fn check_node(
    req: &Request,
    namespace: Option<&str>,
    expect: &Expect,
    wait: Option<Duration>,
    catalog: &Catalog,
    progress: &mut dyn FnMut(run::Poll<'_>),
) -> Result<NodeReport, Error> {
    let start = Instant::now();
    let mut attempts: u32 = 0;
    // By pod (or label, for a namespace without one), in the sweep's order of first sight.
    let mut order: Vec<String> = Vec::new();
    let mut done: BTreeMap<String, PodCheck> = BTreeMap::new();
    loop {
        attempts = attempts.saturating_add(1);
        let swept = sweep::sweep(req, namespace, catalog);
        let elapsed = start.elapsed();
        let over = wait.is_none_or(|limit| elapsed >= limit);
        let swept = match swept {
            Ok(s) => s,
            // No pod yet (the node not readable): retried while --wait's time remains.
            Err(e @ Error::Unreachable(_)) if !over && done.is_empty() => {
                progress(run::Poll::Unreachable {
                    error: &e,
                    elapsed,
                    limit: wait.unwrap_or_default(),
                });
                std::thread::sleep(run::POLL_INTERVAL);
                continue;
            }
            Err(e) => {
                progress(run::Poll::Done);
                return Err(e);
            }
        };
        let mut pending = false;
        let all = verdicts(&swept, req, expect);
        for (ins, checked) in swept.listings.iter().zip(all) {
            let keys: Vec<(String, Option<PodRef>)> = if ins.host_network {
                ins.pods
                    .iter()
                    .map(|p| (format!("pod {p}"), Some(p.clone())))
                    .collect()
            } else {
                vec![(ins.netns.target.clone(), ins.pod.clone())]
            };
            for (key, pod) in keys {
                if done.get(&key).is_some_and(|c| c.passed()) {
                    continue;
                }
                let mut c = checked.clone();
                if ins.host_network {
                    c.label = key.clone();
                    c.pod = pod;
                }
                if let (Some(limit), Verdict::Checked(r)) = (wait, &mut c.verdict) {
                    r.waited = Some(Waited {
                        limit,
                        elapsed,
                        attempts,
                    });
                }
                pending |= !c.passed();
                if !order.contains(&key) {
                    order.push(key.clone());
                }
                done.insert(key, c);
            }
        }
        if !pending || over {
            progress(run::Poll::Done);
            let pods = order
                .iter()
                .filter_map(|k| done.remove(k))
                .collect::<Vec<_>>();
            // Said once for the node, not once per pod.
            let mut warnings = match expect {
                Expect::Given(loaded) => loaded.notes.clone(),
                Expect::Auto(_) => Vec::new(),
            };
            warnings.extend(swept.warnings);
            return Ok(NodeReport { pods, warnings });
        }
        let limit = wait.unwrap_or_default();
        let failing: Vec<String> = order
            .iter()
            .filter(|k| done.get(*k).is_some_and(|c| !c.passed()))
            .cloned()
            .collect();
        progress(run::Poll::PodsFailing {
            pods: &failing,
            elapsed,
            limit,
        });
        std::thread::sleep(run::POLL_INTERVAL.min(limit.saturating_sub(elapsed)));
    }
}
