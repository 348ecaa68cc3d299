//! Stage 1, resolve: a target (current, pid, named netns, a pod by name, UID or container) ->
//! an open network namespace handle (or why not) and, for pod targets, the pod and the node's
//! records. Reads through `sys` only; never enters the namespace nor reads its sockets.

use std::path::PathBuf;

use crate::error::Error;
use crate::model::PodRef;
use crate::parse::proc_pid;
use crate::pods::scan::scan;
use crate::pods::{Lookup, Node};
use crate::request::{Request, Target};
use crate::sys::netns::{Netns, NsError};
use crate::sys::procfs::ProcRoot;

/// A resolved target: its namespace handle if it could be opened, and the pid to read
/// `/proc/<pid>/net` from if it comes to that.
pub(crate) struct Resolved {
    pub(crate) ns: Option<Netns>,
    pub(crate) pid: Option<i32>,
    pub(crate) label: String,
    pub(crate) inode: Option<u64>,
    /// Why the namespace could not be opened, when it could not.
    pub(crate) denied: Option<String>,
}

/// A pod target, resolved: the process that stands for the pod, and the node it was found on.
#[derive(Debug, Clone)]
pub struct PodTarget {
    pub pid: i32,
    pub pod: PodRef,
    /// `pod default/productpage-v1-...` (or `container <id> of pod ...`).
    pub label: String,
    pub node: Node,
}

/// Resolves the request's target: the namespace to look at and, for a pod target, the pod it
/// was found as (its process stands for the namespace).
pub(crate) fn resolve(
    req: &Request,
    procfs: &ProcRoot,
) -> Result<(Resolved, Option<PodTarget>), Error> {
    let pod = pod_target(req, procfs)?;
    let target = match &pod {
        Some(p) => {
            let mut r = resolve_pid(p.pid, procfs)?;
            r.label = p.label.clone();
            r
        }
        None => resolve_netns(req, procfs)?,
    };
    Ok((target, pod))
}

/// The target's network namespace, resolved and opened as `inspect` does it, for work inside
/// it beyond the dump (`probe` connects from there). There is no fallback: a namespace that
/// cannot be opened is exit 3. Its inode is the one `inspect` reports for the same request,
/// so a caller can tell that both looked at the same namespace.
pub fn open_netns(req: &Request) -> Result<Netns, Error> {
    let procfs = ProcRoot::new(req.host.proc_dir());
    let target = match pod_target(req, &procfs)? {
        Some(p) => resolve_pid(p.pid, &procfs)?,
        None => resolve_netns(req, &procfs)?,
    };
    target.ns.ok_or_else(|| {
        Error::Privilege(format!(
            "cannot open the network namespace of {} ({}): opening it needs ptrace access \
             to the process (its user, or CAP_SYS_PTRACE), and entering it, setns, needs \
             CAP_SYS_ADMIN",
            target.label,
            target.denied.as_deref().unwrap_or("permission denied")
        ))
    })
}

fn resolve_netns(req: &Request, procfs: &ProcRoot) -> Result<Resolved, Error> {
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
        // Resolved by `pod_target` before this, or swept by `sweep::sweep`.
        Target::Pod { .. } | Target::PodUid(_) | Target::Container(_) => Err(Error::Usage(
            "a pod target is resolved on the node first".into(),
        )),
        Target::AllPods { .. } => Err(Error::Usage(
            "--all-pods makes one listing per pod: use sweep::sweep".into(),
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

/// Resolves `--pod`, `--pod-uid` and `--container` to a process of the pod; None for the
/// other targets.
fn pod_target(req: &Request, procfs: &ProcRoot) -> Result<Option<PodTarget>, Error> {
    let logs = req.host.pod_logs();
    let lookup = |e: Lookup| e.into_error(&logs);
    let target = match &req.target {
        Target::Pod { namespace, name } => {
            let node = scan(&req.host, procfs)?;
            let uid = node.find_pod(namespace.as_deref(), name).map_err(lookup)?;
            target_of(node, uid, None)?
        }
        Target::PodUid(asked) => {
            let node = scan(&req.host, procfs)?;
            let uid = node.find_uid(asked).map_err(lookup)?;
            target_of(node, uid, None)?
        }
        Target::Container(asked) => {
            let node = scan(&req.host, procfs)?;
            let id = node.find_container(asked).map_err(lookup)?;
            let uid = node
                .processes()
                .iter()
                .find(|p| p.placement.container.as_ref().is_some_and(|c| c.id == id))
                .and_then(|p| node.container_ref(&p.placement))
                .map(|c| c.pod.uid)
                .ok_or_else(|| {
                    Error::Unreachable(format!(
                        "container {id} runs, but no pod is known for it: its cgroup names no \
                         pod UID and no link under {} names the container",
                        req.host.container_logs().display()
                    ))
                })?;
            target_of(node, uid, Some(id))?
        }
        _ => return Ok(None),
    };
    Ok(Some(target))
}

fn target_of(node: Node, uid: String, container: Option<String>) -> Result<PodTarget, Error> {
    let pod = node.pod_ref(&uid);
    let pid = node
        .pick_pid(Some(&uid), container.as_deref())
        .ok_or_else(|| {
            Error::Unreachable(format!(
                "pod {pod} has no running process on this node any more; run again"
            ))
        })?;
    let label = match &container {
        Some(id) => {
            let short: String = id.chars().take(13).collect();
            format!("container {short} of pod {pod}")
        }
        None => format!("pod {pod}"),
    };
    Ok(PodTarget {
        pid,
        pod,
        label,
        node,
    })
}
