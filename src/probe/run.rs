//! The `probe` command end to end: open the target's namespace, list its TCP listeners, learn
//! its addresses, then GET each HTTP port from inside it (through `Netns::run_in`, so no
//! thread stays there). The only part of `probe` that does I/O.

use std::time::Duration;

use crate::catalog::Catalog;
use crate::error::Error;
use crate::inspect;
use crate::parse::http;
use crate::probe::{self, Outcome, Report};
use crate::request::Request;
use crate::sys::http as sys_http;
use crate::sys::ifaddrs;
use crate::sys::netns::NsError;

/// A validated `probe` command line.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The target, with the filters set to TCP listeners.
    pub request: Request,
    /// For each port: connect, send, and the status line, all within this.
    pub timeout: Duration,
    /// `--port`: only these (empty: every HTTP port that listens).
    pub ports: Vec<u16>,
}

/// The default `--timeout`.
pub const DEFAULT_TIMEOUT: &str = "2s";

/// Probes the target. Errors are an unreachable target or a missing privilege (exit 3); a
/// port that does not answer is a failed outcome in the report, not an error.
pub fn probe(plan: &Plan, catalog: &Catalog) -> Result<Report, Error> {
    let ns = crate::resolve::open_netns(&plan.request)?;
    let ins = inspect::inspect(&plan.request, catalog)?;
    if ins.netns.inode != Some(ns.id.inode) {
        return Err(Error::Unreachable(format!(
            "the network namespace of {} changed while it was being probed (did the pod \
             restart?); run again",
            ins.netns.target
        )));
    }
    let entry = |e: NsError| match e {
        NsError::Denied(path, errno) => Error::Privilege(format!(
            "cannot enter {} (setns: {}): probing from inside another network namespace needs \
             CAP_SYS_ADMIN",
            path.display(),
            errno.desc()
        )),
        e => Error::Unreachable(e.to_string()),
    };
    let own = ns
        .run_in(ifaddrs::interface_addrs)
        .map_err(entry)?
        .map_err(|e| {
            Error::Unreachable(format!(
                "cannot list the addresses of {}: {e}",
                ins.netns.target
            ))
        })?;
    let planned = probe::plan(&ins.sockets, &own, &plan.ports);
    let timeout = plan.timeout;
    let results: Vec<Result<http::Answer, String>> = ns
        .run_in(|| {
            planned
                .targets
                .iter()
                .map(|t| {
                    sys_http::get(t.socket_addr(), t.path, timeout).map_err(|e| match e {
                        sys_http::GetError::Timeout => {
                            format!("timed out after {}", crate::duration::display(timeout))
                        }
                        e => e.to_string(),
                    })
                })
                .collect()
        })
        .map_err(entry)?;
    Ok(Report {
        netns: ins.netns,
        timeout,
        outcomes: planned
            .targets
            .into_iter()
            .zip(results)
            .map(|(target, result)| Outcome { target, result })
            .collect(),
        skipped: planned.skipped,
        not_listening: planned.not_listening,
        warnings: ins.warnings,
    })
}
