//! The pipeline for one target: resolve it, open its namespace, dump its sockets (netlink, or
//! `/proc/<pid>/net` as the fallback), attribute them to processes, annotate their roles.
//! Decides nothing about presentation; all syscalls go through `sys`.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use crate::annotate;
use crate::catalog::Catalog;
use crate::classify::{Classification, classify};
use crate::error::Error;
use crate::model::{Family, Holder, Kind, PodRef, Proto, Socket, State};
use crate::node;
use crate::parse::sock_diag::ReplyError;
use crate::parse::{proc_net, proc_pid, sock_diag};
use crate::sys::netlink::{Dump, DumpError, SockDiag};
use crate::sys::netns::{Netns, NsError};
use crate::sys::node::HostRoot;
use crate::sys::procfs::{self, FdWalk, Owners, ProcRoot, Walk};
use nix::libc;

/// Which network namespace to look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The one podports runs in.
    Current,
    /// The one process PID is in.
    Pid(i32),
    /// A name under /run/netns, or a path to an nsfs file.
    Netns(String),
    /// A pod on this node by name; without a namespace, the name must be unique on the node.
    Pod {
        namespace: Option<String>,
        name: String,
    },
    /// A pod on this node by UID.
    PodUid(String),
    /// The pod of a container on this node, by ID or a unique prefix of it.
    Container(String),
    /// Every pod of the node (of one namespace, if given): see `node::sweep`.
    AllPods { namespace: Option<String> },
}

/// Where sockets come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Netlink,
    Proc,
}

/// Which sockets to keep.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters {
    pub listening: bool,
    /// Protocols to show; empty means all.
    pub protos: Vec<Proto>,
    /// Keep sockets whose local or remote port is one of these; empty means all.
    pub ports: Vec<u16>,
}

impl Filters {
    fn wants(&self, proto: Proto) -> bool {
        self.protos.is_empty() || self.protos.contains(&proto)
    }

    pub(crate) fn keeps(&self, s: &Socket) -> bool {
        if !self.wants(s.proto) || (self.listening && !s.is_listening()) {
            return false;
        }
        self.ports.is_empty()
            || [s.local.port(), s.remote.port()]
                .into_iter()
                .flatten()
                .any(|p| self.ports.contains(&p))
    }
}

/// What to inspect and how.
#[derive(Debug, Clone)]
pub struct Request {
    pub target: Target,
    pub source: Source,
    pub filters: Filters,
    /// The host's files: `/proc`, `/run/netns`, the kubelet's pod records (another root when
    /// the host's `/` is mounted elsewhere, as `/host` in a DaemonSet).
    pub host: HostRoot,
    /// How socket holders are found.
    pub fd_walk: FdWalk,
}

/// The namespace looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetnsInfo {
    pub inode: Option<u64>,
    /// How the user named it: `current`, `pid 1234`, `netns /run/netns/x`.
    pub target: String,
}

/// Everything one inspection found.
#[derive(Debug, Clone)]
pub struct Inspection {
    pub netns: NetnsInfo,
    pub source: Source,
    pub sockets: Vec<Socket>,
    /// Things the user must know: a fallback taken, owners hidden, a message skipped.
    pub warnings: Vec<String>,
    /// Sockets whose owners could not be seen for lack of privilege.
    pub hidden_owners: usize,
    /// How the holders were found (`Bpf` or `Proc`); None when no socket needed one.
    pub fd_walk: Option<FdWalk>,
    /// The pod this listing is for (a pod target, or the pod of a `--pid` target).
    pub pod: Option<PodRef>,
    /// The namespace is the node's own (hostNetwork pods).
    pub host_network: bool,
    /// The pods sharing this namespace when it is not one pod's own (hostNetwork pods).
    pub pods: Vec<PodRef>,
}

/// A resolved target: its namespace handle if it could be opened, and the pid to read
/// `/proc/<pid>/net` from if it comes to that.
pub(crate) struct Resolved {
    ns: Option<Netns>,
    pub(crate) pid: Option<i32>,
    pub(crate) label: String,
    pub(crate) inode: Option<u64>,
    /// Why the namespace could not be opened, when it could not.
    denied: Option<String>,
}

pub fn inspect(req: &Request, catalog: &Catalog) -> Result<Inspection, Error> {
    let procfs = ProcRoot::new(req.host.proc_dir()).with_fd_walk(req.fd_walk);
    let pod = node::resolve(req, &procfs)?;
    let target = match &pod {
        Some(p) => {
            let mut r = resolve_pid(p.pid, &procfs)?;
            r.label = p.label.clone();
            r
        }
        None => resolve(req, &procfs)?,
    };
    let mut warnings = Vec::new();

    // The /proc walk needs no list of sockets to read the target's processes: it runs while
    // they are dumped, and this thread joins it when the dump is done (issue 5).
    let walk = procfs.walk(target.inode);
    let dumped = std::thread::scope(|s| {
        for _ in 1..procfs::threads() {
            s.spawn(|| walk.work());
        }
        let dumped = dump(req, &target, &procfs, &mut warnings);
        walk.work();
        dumped
    });
    let (mut sockets, source) = dumped?;
    sockets.retain(|s| req.filters.keeps(s));

    let (hidden_owners, fd_walk) = attribute(&procfs, walk, &mut sockets, &mut warnings)?;
    let placed = node::place(
        &req.host,
        &procfs,
        pod.as_ref().map(|p| &p.node),
        target.pid,
        target.inode,
        &mut sockets,
        &mut warnings,
    );
    annotate::annotate(&mut sockets, catalog);
    sort(&mut sockets);

    Ok(Inspection {
        netns: NetnsInfo {
            inode: target.inode,
            target: target.label,
        },
        source,
        sockets,
        warnings,
        hidden_owners,
        fd_walk,
        pod: pod.map(|p| p.pod).or(placed.pod),
        host_network: placed.host_network,
        pods: Vec::new(),
    })
}

/// The target's network namespace, resolved and opened as `inspect` does it, for work inside
/// it beyond the dump (`probe` connects from there). There is no fallback: a namespace that
/// cannot be opened is exit 3. Its inode is the one `inspect` reports for the same request,
/// so a caller can tell that both looked at the same namespace.
pub fn open_netns(req: &Request) -> Result<Netns, Error> {
    let procfs = ProcRoot::new(req.host.proc_dir());
    let target = match node::resolve(req, &procfs)? {
        Some(p) => resolve_pid(p.pid, &procfs)?,
        None => resolve(req, &procfs)?,
    };
    target.ns.ok_or_else(|| {
        Error::Privilege(format!(
            "cannot open the network namespace of {} ({}): needs CAP_SYS_PTRACE or \
             CAP_SYS_ADMIN",
            target.label,
            target.denied.as_deref().unwrap_or("permission denied")
        ))
    })
}

fn resolve(req: &Request, procfs: &ProcRoot) -> Result<Resolved, Error> {
    match &req.target {
        Target::Current => {
            let ns = Netns::current().map_err(|e| Error::Unreachable(e.to_string()))?;
            Ok(Resolved {
                inode: Some(ns.id.inode),
                ns: Some(ns),
                pid: None,
                label: "current".into(),
                denied: None,
            })
        }
        Target::Pid(pid) => resolve_pid(*pid, procfs),
        Target::Netns(spec) => {
            let path = if spec.contains('/') {
                PathBuf::from(spec)
            } else {
                req.host.netns_dir().join(spec)
            };
            let ns = Netns::open(&path).map_err(|e| match e {
                NsError::Missing(_) if !spec.contains('/') => Error::Unreachable(format!(
                    "network namespace '{spec}' not found: no {} (list them with `ip netns list`)",
                    path.display()
                )),
                NsError::Missing(_) => Error::Unreachable(format!(
                    "{}: no such file; give a name under {} or a path to a netns file such as \
                     /proc/PID/ns/net",
                    path.display(),
                    req.host.netns_dir().display()
                )),
                NsError::NotNetns(..) => Error::Usage(e.to_string()),
                NsError::Denied(_, errno) => Error::Privilege(format!(
                    "{}: {}: opening a network namespace file needs read access to it (run \
                     as root)",
                    path.display(),
                    errno.desc()
                )),
                NsError::Other(..) => Error::Unreachable(e.to_string()),
            })?;
            Ok(Resolved {
                inode: Some(ns.id.inode),
                ns: Some(ns),
                pid: None,
                label: format!("netns {}", path.display()),
                denied: None,
            })
        }
        // Resolved by `node::resolve` before this, or swept by `node::sweep`.
        Target::Pod { .. } | Target::PodUid(_) | Target::Container(_) => Err(Error::Usage(
            "a pod target is resolved on the node first".into(),
        )),
        Target::AllPods { .. } => Err(Error::Usage(
            "--all-pods makes one listing per pod: use node::sweep".into(),
        )),
    }
}

pub(crate) fn resolve_pid(pid: i32, procfs: &ProcRoot) -> Result<Resolved, Error> {
    let label = format!("pid {pid}");
    let gone = || {
        Error::Unreachable(format!(
            "no process with pid {pid} (it may have exited); find the pid with `ps -e` or \
             `pgrep`"
        ))
    };
    if pid <= 0 {
        return Err(Error::Usage(format!(
            "--pid {pid}: a pid is a positive number"
        )));
    }
    let stat = procfs.stat(pid).ok_or_else(gone)?;
    if stat.flags & proc_pid::PF_KTHREAD != 0 {
        return Err(Error::Usage(format!(
            "pid {pid} is a kernel thread ({}): it belongs to no pod; give the pid of a process \
             of the pod",
            String::from_utf8_lossy(stat.comm.as_bytes()).escape_debug()
        )));
    }
    if stat.state == 'Z' || stat.state == 'X' {
        return Err(Error::Unreachable(format!(
            "pid {pid} is a zombie (it exited and was not reaped yet): it has no network \
             namespace; pick another process of the pod"
        )));
    }
    let path = procfs.path().join(pid.to_string()).join("ns/net");
    let opened = Netns::open(&path);
    // A pid reused between our two looks would hand us another process's namespace.
    if procfs.stat(pid).map(|s| s.starttime) != Some(stat.starttime) {
        return Err(Error::Unreachable(format!(
            "pid {pid} exited (or was reused) while its namespace was being opened; run again"
        )));
    }
    match opened {
        Ok(ns) => Ok(Resolved {
            inode: Some(ns.id.inode),
            ns: Some(ns),
            pid: Some(pid),
            label,
            denied: None,
        }),
        Err(NsError::Denied(_, errno)) => Ok(Resolved {
            inode: procfs.netns_inode(pid),
            ns: None,
            pid: Some(pid),
            label,
            denied: Some(errno.desc().to_string()),
        }),
        Err(NsError::Missing(_)) => Err(Error::Unreachable(format!(
            "pid {pid} has no network namespace to look at (a zombie or exiting process); \
             pick another process of the pod"
        ))),
        Err(e) => Err(Error::Unreachable(e.to_string())),
    }
}

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
                "cannot open the network namespace of {} ({denied}; needs CAP_SYS_PTRACE or \
                 CAP_SYS_ADMIN)",
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
                .run_in(|| {
                    names
                        .iter()
                        .map(|n| std::fs::read(format!("/proc/thread-self/net/{n}")))
                        .collect()
                })
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

/// Fill in every socket's holders. Returns how many sockets stay without a visible owner
/// because some process's fds could not be read, and how the holders were found. Only an
/// explicit `--fd-walk bpf` that cannot be honoured is an error (exit 3).
fn attribute(
    procfs: &ProcRoot,
    walk: Walk<'_>,
    sockets: &mut [Socket],
    warnings: &mut Vec<String>,
) -> Result<(usize, Option<FdWalk>), Error> {
    let wanted = wanted_inodes(sockets);
    if wanted.is_empty() {
        return Ok((0, None));
    }
    let owners = walk.finish(&wanted);
    if let Err(e) = &owners
        && procfs.fd_walk() == FdWalk::Bpf
    {
        return Err(Error::Privilege(e.to_string()));
    }
    let via = owners.as_ref().ok().map(|o| o.via);
    Ok((
        apply_owners(procfs, owners.as_ref(), sockets, warnings),
        via,
    ))
}

/// The inodes of the sockets a process may hold: TIME_WAIT and request sockets have inode 0.
pub(crate) fn wanted_inodes(sockets: &[Socket]) -> HashSet<u64> {
    sockets
        .iter()
        .filter(|s| s.inode != 0)
        .map(|s| s.inode)
        .collect()
}

/// Fill in the holders of `sockets` from a walk of `/proc/*/fd` (one walk may serve several
/// namespaces: `--all-pods`). Returns how many sockets stay without a visible owner because
/// some process's fds could not be read.
pub(crate) fn apply_owners(
    procfs: &ProcRoot,
    owners: Result<&Owners, &std::io::Error>,
    sockets: &mut [Socket],
    warnings: &mut Vec<String>,
) -> usize {
    let owners = match owners {
        Ok(o) => o,
        Err(e) => {
            warnings.push(format!(
                "cannot list processes in {}: {e}; owners are not shown",
                procfs.path().display()
            ));
            return 0;
        }
    };
    // Once per process, not per socket: Envoy holds thousands (issue 5).
    let mut kinds: HashMap<i32, (Kind, Arc<str>)> = HashMap::new();
    for s in sockets.iter_mut() {
        s.holders = owners
            .of(s.inode)
            .map(|(p, fd)| {
                let (kind, basis) = kinds.entry(p.pid).or_insert_with(|| {
                    let Classification { kind, basis } = classify(p);
                    (kind, basis.into())
                });
                Holder {
                    process: p.clone(),
                    fd,
                    kind: *kind,
                    basis: basis.clone(),
                    container: None,
                }
            })
            .collect();
    }
    let orphans = sockets
        .iter()
        .filter(|s| s.inode != 0 && s.holders.is_empty() && s.state != State::TimeWait)
        .count();
    if orphans > 0 && !owners.unreadable.is_empty() {
        warnings.push(format!(
            "owners hidden: {orphans} socket(s) have no visible owner and the fds of {} \
             process(es) could not be read; grant CAP_SYS_PTRACE (or use `kubectl debug \
             --profile=general`) to see them",
            owners.unreadable.len()
        ));
        return orphans;
    }
    0
}

/// Listeners first, then by protocol, local port and address, then inode, so the output is
/// stable from run to run. No two sockets share a key (an inode, or for inode 0, a 4-tuple), so
/// an unstable sort gives the same order, in place: a stable one took a scratch copy of half the
/// sockets (issue 5).
pub(crate) fn sort(sockets: &mut [Socket]) {
    sockets.sort_unstable_by(|a, b| {
        (
            !a.is_listening(),
            a.proto,
            a.local.port(),
            &a.local,
            a.state,
            &a.remote,
            a.inode,
        )
            .cmp(&(
                !b.is_listening(),
                b.proto,
                b.local.port(),
                &b.local,
                b.state,
                &b.remote,
                b.inode,
            ))
    });
}
