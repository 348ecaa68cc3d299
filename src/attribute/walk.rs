//! The walk that finds which process holds which socket: the processes of the target
//! namespace first (while the sockets are dumped), the rest of the tree only for sockets
//! still without a holder; through `/proc/<pid>/fd`, or the kernel's fd tables (kernel.rs)
//! where that may be used. The passes, which fds are kept and how the threads' finds merge
//! are decided here; every read is `sys::procfs`'s (`Tree`, `kernel_walk`, `process_info_held`).

use std::collections::{HashMap, HashSet};
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use crate::model::{FdWalk, ProcessInfo};
use crate::sys::bpf::FdIter;
use crate::sys::procfs::{ProcRoot, SocketFd, Tree};

use super::kernel;

/// Who holds the sockets that were asked about.
#[derive(Debug, Default)]
pub struct Owners {
    /// (socket inode, process, fd) of every holder, sorted by inode, then pid, then fd: one
    /// flat list, not a map of small lists (a pod may hold tens of thousands of sockets).
    holders: Vec<(u64, Arc<ProcessInfo>, i32)>,
    /// Processes whose fd table could not be read (EACCES), and so may hold sockets unseen.
    pub unreadable: Vec<i32>,
    /// Processes looked at (with the kernel walk: processes holding a socket).
    pub scanned: usize,
    /// How the holders were found: `Bpf` or `Proc`.
    pub via: FdWalk,
}

impl Owners {
    /// Every (process, fd) holding the socket `inode`, by pid, then fd. Exact-size, so that a
    /// `collect` allocates exactly as many holders (a guess of 4 per socket was 25 MB at 40k).
    pub fn of(&self, inode: u64) -> impl ExactSizeIterator<Item = (&Arc<ProcessInfo>, i32)> {
        let start = self.holders.partition_point(|(i, _, _)| *i < inode);
        let end = self.holders.partition_point(|(i, _, _)| *i <= inode);
        self.holders
            .get(start..end)
            .unwrap_or_default()
            .iter()
            .map(|(_, p, fd)| (p, *fd))
    }
}

/// The walk of `/proc/*/fd` that finds socket holders, in two passes. First the processes of
/// the target namespace, whose socket fds are all kept, so that this pass needs no list of
/// wanted sockets and can run while the sockets are still being dumped; then, only if a wanted
/// socket is left without an owner, the rest of the tree, keeping only wanted sockets
/// (ambient: ztunnel holds in-pod listeners from its own namespace). Any number of threads may
/// call `work` to share the first pass, one process at a time; `finish` completes it.
pub struct Walk<'a> {
    procfs: &'a ProcRoot,
    target_netns: Option<u64>,
    /// The kernel walk (loaded, for a second walk) and its socket fds, or why it was not
    /// used (unless `FdWalk::Proc`).
    kernel: OnceLock<Result<(FdIter, Vec<SocketFd>), String>>,
    plan: OnceLock<io::Result<Plan>>,
    /// Index of the next process of `Plan::first` to read.
    next: AtomicUsize,
    found: Mutex<Found>,
}

/// Which processes each pass reads.
struct Plan {
    /// The `/proc` tree itself, opened once.
    root: Tree,
    /// Processes in the target namespace.
    first: Vec<i32>,
    /// Every other process.
    rest: Vec<i32>,
}

#[derive(Default)]
pub(super) struct Found {
    pub(super) fds: Vec<SocketFd>,
    pub(super) unreadable: Vec<i32>,
    pub(super) scanned: usize,
}

impl Found {
    fn merge(&mut self, other: Found) {
        self.fds.extend(other.fds);
        self.unreadable.extend(other.unreadable);
        self.scanned += other.scanned;
    }

    /// Reads the processes `queue` hands out, until it runs dry.
    fn drain(&mut self, root: &Tree, queue: &Queue, keep: &(impl Fn(u64) -> bool + Sync)) {
        while let Some(pid) = queue.take() {
            self.scanned += 1;
            match root.socket_fds(pid, keep, &mut self.fds) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::PermissionDenied => self.unreadable.push(pid),
                // The process exited while we looked: skip it.
                Err(_) => {}
            }
        }
    }
}

/// Processes shared out among threads, one at a time.
struct Queue<'q> {
    pids: &'q [i32],
    next: &'q AtomicUsize,
}

impl Queue<'_> {
    fn take(&self) -> Option<i32> {
        self.pids
            .get(self.next.fetch_add(1, Ordering::Relaxed))
            .copied()
    }
}

impl Walk<'_> {
    /// Reads processes of the target namespace until none is left for this thread. With the
    /// kernel walk, the first thread here runs it (it reads every process at once) and the
    /// others wait for it; only if it cannot be used do they read `/proc`.
    pub fn work(&self) {
        if self.procfs.fd_walk() != FdWalk::Proc
            && (self.kernel().is_ok() || self.procfs.fd_walk() == FdWalk::Bpf)
        {
            return;
        }
        let Some(plan) = self.plan() else { return };
        let queue = Queue {
            pids: &plan.first,
            next: &self.next,
        };
        let mut mine = Found::default();
        mine.drain(&plan.root, &queue, &|_| true);
        lock(&self.found).merge(mine);
    }

    fn kernel(&self) -> &Result<(FdIter, Vec<SocketFd>), String> {
        self.kernel.get_or_init(|| self.procfs.kernel_walk())
    }

    fn plan(&self) -> Option<&Plan> {
        self.plan
            .get_or_init(|| plan(self.procfs, self.target_netns))
            .as_ref()
            .ok()
    }

    /// Completes the walk for the `wanted` socket inodes and reads the facts of every process
    /// holding one.
    pub fn finish(self, wanted: &HashSet<u64>) -> io::Result<Owners> {
        self.work();
        match self.kernel.into_inner() {
            Some(Ok((iter, mut fds))) => {
                fds.retain(|(inode, _, _)| wanted.contains(inode));
                // The walk ran while the sockets were dumped: a socket made meanwhile is in
                // the dump and not in the walk. Walk again, now that the dump is done, with
                // the program already loaded (a socket no process holds, such as a kernel
                // socket, costs this second walk too: a few ms per 10k fds on the node).
                if has_unowned(wanted, &fds)
                    && let Ok(mut again) = iter.socket_fds()
                {
                    again.retain(|(inode, _, _)| wanted.contains(inode));
                    fds = again;
                }
                // A socket the kernel walk saw no process hold at all (not one whose holder
                // /proc refuses: that holder is named) may be held by a process the walk
                // did not see: then every process /proc refuses is a possible holder.
                let unseen = has_unowned(wanted, &fds);
                let mut found = kernel::as_proc_shows(self.procfs, fds)?;
                if unseen {
                    found.unreadable.sort_unstable();
                    let more = kernel::refused(self.procfs, &found.unreadable)?;
                    found.unreadable.extend(more);
                    found.unreadable.sort_unstable();
                    found.unreadable.dedup();
                }
                return Ok(holders(self.procfs, found, FdWalk::Bpf));
            }
            Some(Err(why)) if self.procfs.fd_walk() == FdWalk::Bpf => {
                return Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!("cannot walk fds in the kernel (--fd-walk bpf): {why}"),
                ));
            }
            _ => {}
        }
        let plan = match self.plan.into_inner() {
            Some(plan) => plan?,
            None => return Err(io::Error::other("the /proc walk never started")),
        };
        let mut found = self
            .found
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner);
        found.fds.retain(|(inode, _, _)| wanted.contains(inode));
        found.fds.sort_unstable();
        if has_unowned(wanted, &found.fds) {
            // The rest of the tree (ambient: ztunnel holds in-pod listeners from its own
            // namespace), and the target's processes again: one of them may have made a socket
            // after the first pass read it, while the dump ran. Only sockets still without a
            // holder are taken, so nothing is found twice.
            let owned: HashSet<u64> = found.fds.iter().map(|(inode, _, _)| *inode).collect();
            let pids: Vec<i32> = plan.rest.iter().chain(&plan.first).copied().collect();
            let next = AtomicUsize::new(0);
            let queue = Queue {
                pids: &pids,
                next: &next,
            };
            let keep = |inode: u64| wanted.contains(&inode) && !owned.contains(&inode);
            let helpers: Vec<Found> = std::thread::scope(|s| {
                let handles: Vec<_> = (1..threads())
                    .map(|_| {
                        s.spawn(|| {
                            let mut theirs = Found::default();
                            theirs.drain(&plan.root, &queue, &keep);
                            theirs
                        })
                    })
                    .collect();
                found.drain(&plan.root, &queue, &keep);
                handles.into_iter().filter_map(|h| h.join().ok()).collect()
            });
            for theirs in helpers {
                found.merge(theirs);
            }
            found.fds.sort_unstable();
            found.unreadable.sort_unstable();
            found.unreadable.dedup();
            // The target's processes were read twice: count each process once.
            found.scanned = found.scanned.min(plan.first.len() + plan.rest.len());
        }
        Ok(holders(self.procfs, found, FdWalk::Proc))
    }
}

/// The facts of every process in `found`, joined to its socket fds.
fn holders(procfs: &ProcRoot, found: Found, via: FdWalk) -> Owners {
    let mut infos: HashMap<i32, Option<Arc<ProcessInfo>>> = HashMap::new();
    let mut holders = Vec::with_capacity(found.fds.len());
    for (inode, pid, fd) in found.fds {
        // Read through the process's own /proc directory after checking that this fd
        // still names the socket: a pid reused since the walk lends nothing. A process
        // that exited before its facts were read holds nothing any more.
        let info = infos
            .entry(pid)
            .or_insert_with(|| procfs.process_info_held(pid, fd, inode).map(Arc::new));
        if let Some(info) = info {
            holders.push((inode, info.clone(), fd));
        }
    }
    Owners {
        holders,
        unreadable: found.unreadable,
        scanned: found.scanned,
        via,
    }
}

/// Find the holders of `wanted` socket inodes. Processes in the namespace `target_netns` are
/// read first; the rest of the tree only if some wanted socket is still without an owner
/// (ambient: ztunnel holds in-pod listeners from its own namespace).
pub fn owners(
    procfs: &ProcRoot,
    wanted: &HashSet<u64>,
    target_netns: Option<u64>,
) -> io::Result<Owners> {
    Walk::new(procfs, target_netns).finish(wanted)
}

impl Walk<'_> {
    /// A walk for the holders of sockets of the namespace `target_netns`, to be shared by
    /// threads (`Walk::work`) before the sockets are known, and completed by `Walk::finish`.
    /// Without a target namespace, nothing is read before `finish`.
    pub fn new(procfs: &ProcRoot, target_netns: Option<u64>) -> Walk<'_> {
        Walk {
            procfs,
            target_netns,
            kernel: OnceLock::new(),
            plan: OnceLock::new(),
            next: AtomicUsize::new(0),
            found: Mutex::new(Found::default()),
        }
    }
}

/// Every process, split into those in `target_netns` and the rest.
fn plan(procfs: &ProcRoot, target_netns: Option<u64>) -> io::Result<Plan> {
    let root = procfs.tree()?;
    let pids = procfs.pids()?;
    let (first, rest) = match target_netns {
        Some(ns) => pids
            .into_iter()
            .partition(|pid| root.netns_of(*pid) == Some(ns)),
        None => (Vec::new(), pids),
    };
    Ok(Plan { root, first, rest })
}

/// Whether some `wanted` socket has no holder in `fds` (sorted by inode).
fn has_unowned(wanted: &HashSet<u64>, fds: &[SocketFd]) -> bool {
    wanted
        .iter()
        .any(|w| fds.binary_search_by_key(w, |(i, _, _)| *i).is_err())
}

/// How many threads share a walk: one per CPU, up to 4 (past that, /proc's locks win).
pub fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests;
