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
    let Some(pod) = pod_target(req, procfs)? else {
        return Ok((resolve_netns(req, procfs)?, None));
    };
    let mut r = resolve_pod_pid(&pod, procfs)?;
    r.label = pod.label.clone();
    Ok((r, Some(pod)))
}

/// Opens the namespace of the process the scan chose for a pod, and makes sure it is still
/// that process: a pid that exited after the scan and was reused by another process would
/// hand us someone else's namespace. Compared: the namespace opened with the one the scan
/// recorded, and the pid's cgroup read again after opening with the scan's (pod, container).
fn resolve_pod_pid(pod: &PodTarget, procfs: &ProcRoot) -> Result<Resolved, Error> {
    let r = resolve_pid(pod.pid, procfs)?;
    let scanned = pod.node.process(pod.pid);
    let now = crate::sys::node::pod_process(procfs, pod.pid);
    match still_the_scanned_process(scanned, r.inode, now.as_ref()) {
        Ok(()) => Ok(r),
        Err(why) => Err(Error::Unreachable(format!(
            "{}: pid {} {why} between the scan of the node and the opening of its network              namespace; run again",
            pod.label, pod.pid
        ))),
    }
}

/// Whether the process whose namespace was opened (`opened`: its inode; `now`: its pod and
/// container read after opening) is the one the scan recorded. `Err` says what changed.
pub(crate) fn still_the_scanned_process(
    scanned: Option<&crate::sys::node::PodProcess>,
    opened: Option<u64>,
    now: Option<&crate::sys::node::PodProcess>,
) -> Result<(), &'static str> {
    let Some(scanned) = scanned else {
        return Err("was not found by the scan");
    };
    let Some(now) = now else {
        return Err("exited, or left the pod's cgroup,");
    };
    if now.placement.pod_uid != scanned.placement.pod_uid
        || now.placement.container.as_ref().map(|c| &c.id)
            != scanned.placement.container.as_ref().map(|c| &c.id)
    {
        return Err("was reused by a process of another pod or container");
    }
    if let (Some(was), Some(opened)) = (scanned.netns, opened)
        && was != opened
    {
        return Err("was reused (its network namespace is not the one the scan saw)");
    }
    Ok(())
}

/// The target's network namespace, resolved and opened as `inspect` does it, for work inside
/// it beyond the dump (`probe` connects from there). There is no fallback: a namespace that
/// cannot be opened is exit 3. Its inode is the one `inspect` reports for the same request,
/// so a caller can tell that both looked at the same namespace.
pub fn open_netns(req: &Request) -> Result<Netns, Error> {
    let procfs = ProcRoot::new(req.host.proc_dir());
    let target = match pod_target(req, &procfs)? {
        Some(p) => resolve_pod_pid(&p, &procfs)?,
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

#[cfg(test)]
mod tests {
    use super::still_the_scanned_process;
    use crate::parse::cgroup::parse_path;
    use crate::sys::node::PodProcess;

    const POD_A: &str = "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod6f1c2a3b_4d5e_4f60_8a71_92b3c4d5e6f7.slice/cri-containerd-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.scope";
    const POD_A_OTHER_CONTAINER: &str = "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod6f1c2a3b_4d5e_4f60_8a71_92b3c4d5e6f7.slice/cri-containerd-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.scope";
    const POD_B: &str = "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod0a1b2c3d_4e5f_4a6b_8c7d_8e9fa0b1c2d3.slice/cri-containerd-cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc.scope";

    fn process(pid: i32, cgroup: &str, netns: Option<u64>) -> PodProcess {
        PodProcess {
            pid,
            placement: parse_path(cgroup).expect("a pod cgroup path"),
            conflict: false,
            comm: None,
            netns,
            netns_denied: false,
        }
    }

    #[test]
    fn the_same_process_passes() {
        let scanned = process(4242, POD_A, Some(4026532001));
        assert_eq!(
            still_the_scanned_process(Some(&scanned), Some(4026532001), Some(&scanned)),
            Ok(())
        );
        // The scan could not read the namespace link: the cgroup still decides.
        let unnamed = process(4242, POD_A, None);
        assert_eq!(
            still_the_scanned_process(Some(&unnamed), Some(4026532001), Some(&unnamed)),
            Ok(())
        );
    }

    /// The pid the scan chose for pod A exited; the kernel gave the pid to a process of pod B
    /// (or of another container of A, or of no pod) before the namespace was opened.
    #[test]
    fn a_pid_reused_between_the_scan_and_the_open_is_refused() {
        let scanned = process(4242, POD_A, Some(4026532001));
        let reused_by_b = process(4242, POD_B, Some(4026532002));
        assert!(
            still_the_scanned_process(Some(&scanned), Some(4026532002), Some(&reused_by_b))
                .is_err()
        );
        let reused_in_pod = process(4242, POD_A_OTHER_CONTAINER, Some(4026532001));
        assert!(
            still_the_scanned_process(Some(&scanned), Some(4026532001), Some(&reused_in_pod))
                .is_err()
        );
        assert!(still_the_scanned_process(Some(&scanned), Some(4026532001), None).is_err());
        // Same cgroup, but the namespace opened is not the one the scan saw.
        assert!(
            still_the_scanned_process(Some(&scanned), Some(4026532009), Some(&scanned)).is_err()
        );
        assert!(still_the_scanned_process(None, Some(4026532001), Some(&scanned)).is_err());
    }
}
