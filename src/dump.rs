//! Stage 2, dump: a resolved namespace -> its sockets, over NETLINK_SOCK_DIAG inside it, or
//! from `/proc/<pid>/net` text when it cannot be entered (and the warning says so). Never
//! names a socket's holder: that is `attribute`'s job.

use crate::error::Error;
use crate::model::{Family, Proto, Socket};
use crate::parse::sock_diag::ReplyError;
use crate::parse::{proc_net, sock_diag};
use crate::request::{Filters, Request, Source};
use crate::resolve::Resolved;
use crate::sys::netlink::{Dump, DumpError, SockDiag};
use crate::sys::netns::{Netns, NsError};
use crate::sys::procfs::{self, ProcRoot};
use nix::libc;

enum DumpFailure {
    Denied(String),
    Other(String),
}

/// The protocols the filters ask for.
fn wanted_protos(filters: &Filters) -> Vec<Proto> {
    [Proto::Tcp, Proto::Udp, Proto::Unix]
        .into_iter()
        .filter(|p| filters.wants(*p))
        .collect()
}

/// Take the sockets of the target from the best source available, falling back to
/// `/proc/<pid>/net` (and saying so) when the namespace cannot be entered.
pub(crate) fn dump(
    req: &Request,
    target: &Resolved,
    procfs: &ProcRoot,
    warnings: &mut Vec<String>,
) -> Result<(Vec<Socket>, Source), Error> {
    let protos = wanted_protos(&req.filters);
    const PROC_LIMITS: &str = "which has no unix peer inodes and no listen backlog";
    let fallback = |why: String, warnings: &mut Vec<String>| match target.pid {
        Some(pid) => {
            warnings.push(format!(
                "{why}: read /proc/{pid}/net instead, {PROC_LIMITS}"
            ));
            let sockets = dump_proc(&ProcNet::Pid(procfs, pid), &protos, warnings)?;
            Ok((sockets, Source::Proc))
        }
        None => Err(Error::Privilege(format!(
            "{}: {why}; run as root, or use --pid with a process of that namespace to read \
             its /proc/PID/net instead",
            target.label
        ))),
    };
    let Some(ns) = &target.ns else {
        // A --pid target whose namespace file we may not open.
        let denied = target.denied.as_deref().unwrap_or("permission denied");
        return fallback(
            format!(
                "cannot open the network namespace of {} ({denied}: opening it needs ptrace \
                 access to the process, and entering it, setns, needs CAP_SYS_ADMIN)",
                target.label
            ),
            warnings,
        );
    };
    if req.source == Source::Proc {
        let sockets = match target.pid {
            Some(pid) => dump_proc(&ProcNet::Pid(procfs, pid), &protos, warnings)?,
            None => dump_proc(&ProcNet::Inside(ns), &protos, warnings)?,
        };
        return Ok((sockets, Source::Proc));
    }
    match dump_netlink(ns, &req.filters, &protos) {
        Ok((dump, unsupported)) => {
            warnings.extend(dump.warnings);
            let mut sockets = dump.sockets;
            if !unsupported.is_empty() {
                let names: Vec<&str> = unsupported.iter().map(|p| p.as_str()).collect();
                warnings.push(format!(
                    "this kernel's sock_diag has no {} support: read /proc/net for them instead, \
                     {PROC_LIMITS}",
                    names.join(", ")
                ));
                sockets.extend(dump_proc(&ProcNet::Inside(ns), &unsupported, warnings)?);
            }
            Ok((sockets, Source::Netlink))
        }
        Err(DumpFailure::Denied(why)) => fallback(
            format!(
                "cannot enter the network namespace of {} ({why}; needs CAP_SYS_ADMIN)",
                target.label
            ),
            warnings,
        ),
        Err(DumpFailure::Other(why)) => match target.pid {
            Some(_) => fallback(format!("netlink sock_diag failed ({why})"), warnings),
            None => Err(Error::Unreachable(format!("{}: {why}", target.label))),
        },
    }
}

/// Dump over netlink inside `ns`. Protocols the kernel's sock_diag does not handle (a
/// missing `udp_diag` module answers ENOENT) come back in the second list.
fn dump_netlink(
    ns: &Netns,
    filters: &Filters,
    protos: &[Proto],
) -> Result<(Dump, Vec<Proto>), DumpFailure> {
    let mut diag = ns
        .run_in(SockDiag::open)
        .map_err(|e| match e {
            NsError::Denied(_, errno) => DumpFailure::Denied(format!("setns: {}", errno.desc())),
            e => DumpFailure::Other(e.to_string()),
        })?
        .map_err(|e| DumpFailure::Other(format!("opening a NETLINK_SOCK_DIAG socket: {e}")))?;
    let inet_states = if filters.listening {
        sock_diag::LISTENING_STATES
    } else {
        sock_diag::ALL_INET_STATES
    };
    let mut out = Dump::default();
    let mut unsupported = Vec::new();
    for proto in protos.iter().copied() {
        let dumps: Vec<Result<Dump, DumpError>> = match proto {
            Proto::Unix => vec![diag.dump_unix(sock_diag::ALL_UNIX_STATES)],
            _ => [Family::Ipv4, Family::Ipv6]
                .into_iter()
                .map(|family| diag.dump_inet(family, proto, inet_states))
                .collect(),
        };
        let mut parts = Vec::new();
        for dump in dumps {
            match dump {
                Ok(d) => parts.push(d),
                Err(DumpError::Reply(ReplyError::Kernel(errno)))
                    if errno == libc::ENOENT || errno == libc::EOPNOTSUPP =>
                {
                    unsupported.push(proto);
                    parts.clear();
                    break;
                }
                Err(e) => return Err(DumpFailure::Other(e.to_string())),
            }
        }
        for d in parts {
            // The smaller list is copied into the larger, never the reverse: a second copy
            // of 40k sockets was the peak of memory (issue 5). Order is the sort's job.
            let mut sockets = d.sockets;
            if sockets.len() > out.sockets.len() {
                std::mem::swap(&mut sockets, &mut out.sockets);
            }
            out.sockets.extend(sockets);
            out.warnings.extend(d.warnings);
        }
    }
    Ok((out, unsupported))
}

/// The `/proc/.../net` files that hold `proto`'s sockets, with the family of each.
fn proc_files(proto: Proto) -> &'static [(&'static str, Option<Family>)] {
    match proto {
        Proto::Tcp => &[("tcp", Some(Family::Ipv4)), ("tcp6", Some(Family::Ipv6))],
        Proto::Udp => &[("udp", Some(Family::Ipv4)), ("udp6", Some(Family::Ipv6))],
        Proto::Unix => &[("unix", None)],
    }
}

/// Where `/proc/.../net` text is read from.
enum ProcNet<'a> {
    /// `/proc/<pid>/net`: that process's namespace, no privilege beyond reading it.
    Pid(&'a ProcRoot, i32),
    /// `/proc/thread-self/net` of a thread inside the namespace (needs to enter it).
    Inside(&'a Netns),
}

impl ProcNet<'_> {
    fn label(&self, name: &str) -> String {
        match self {
            ProcNet::Pid(_, pid) => format!("/proc/{pid}/net/{name}"),
            ProcNet::Inside(_) => format!("/proc/net/{name} (inside the namespace)"),
        }
    }

    fn read(&self, names: &[&'static str]) -> Result<Vec<std::io::Result<Vec<u8>>>, Error> {
        match self {
            ProcNet::Pid(procfs, pid) => Ok(names
                .iter()
                .map(|n| procfs.net_file(Some(*pid), n))
                .collect()),
            ProcNet::Inside(ns) => ns
                .run_in(|| names.iter().map(|n| procfs::thread_net_file(n)).collect())
                .map_err(|e| match e {
                    NsError::Denied(path, errno) => Error::Privilege(format!(
                        "cannot enter {} (setns: {}): entering another network namespace \
                         needs CAP_SYS_ADMIN",
                        path.display(),
                        errno.desc()
                    )),
                    e => Error::Unreachable(e.to_string()),
                }),
        }
    }
}

/// Sockets of the wanted protocols from `/proc/.../net` text.
fn dump_proc(
    from: &ProcNet,
    protos: &[Proto],
    warnings: &mut Vec<String>,
) -> Result<Vec<Socket>, Error> {
    let files: Vec<(&'static str, Proto, Option<Family>)> = protos
        .iter()
        .flat_map(|p| proc_files(*p).iter().map(|(n, f)| (*n, *p, *f)))
        .collect();
    let names: Vec<&'static str> = files.iter().map(|(n, _, _)| *n).collect();
    let texts = from.read(&names)?;
    let mut sockets = Vec::new();
    for ((name, proto, family), text) in files.into_iter().zip(texts) {
        let text = match text {
            Ok(t) => t,
            // IPv6 disabled: no tcp6/udp6 file.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && family == Some(Family::Ipv6) => {
                continue;
            }
            Err(e) => {
                return Err(Error::Unreachable(format!(
                    "{}: {e} (the process may have exited)",
                    from.label(name)
                )));
            }
        };
        let parsed = match family {
            Some(family) => proc_net::parse_inet(&text, proto, family),
            None => proc_net::parse_unix(&text),
        };
        for err in parsed.errors {
            warnings.push(format!("{}: skipped {err}", from.label(name)));
        }
        sockets.extend(parsed.sockets);
    }
    Ok(sockets)
}
