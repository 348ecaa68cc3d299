//! Reading `/proc` (or a host's `/proc` mounted elsewhere): which process holds which socket
//! inode through which fd, facts about those processes, and `/proc/<pid>/net/*` text for the
//! fallback. Text goes to `parse::proc_pid` and `parse::proc_net`; nothing is written, ever.
#![allow(unsafe_code)] // raw syscalls; each block says why it is sound (SAFETY)

use std::collections::{HashMap, HashSet};
use std::ffi::{CStr, CString, OsStr};
use std::fs;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{OFlag, openat};
use nix::libc;
use nix::sys::stat::Mode;

use crate::model::{ProcessInfo, RawText};
use crate::parse::proc_pid;
use crate::sys::bpf::FdIter;
use crate::unowned;

/// A `/proc` tree.
#[derive(Debug, Clone)]
pub struct ProcRoot {
    root: PathBuf,
    fd_walk: FdWalk,
}

/// How the holders of sockets are found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FdWalk {
    /// In the kernel (`Bpf`) when that is allowed and works, else through `/proc`.
    #[default]
    Auto,
    /// A BPF `task_file` iterator reads every process's fd table in the kernel, in one pass
    /// (`fd_iter`, `sys::bpf`). Only where it sees what `/proc` would show: in the initial pid
    /// namespace, with its `/proc`, CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH (or
    /// CAP_DAC_OVERRIDE), each holder then checked as `/proc` would (`as_proc_shows`);
    /// loading it needs CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN.
    Bpf,
    /// `readlink` of every `/proc/<pid>/fd/<n>`, as ss and lsof do.
    Proc,
}

impl FdWalk {
    pub fn name(self) -> &'static str {
        match self {
            FdWalk::Auto => "auto",
            FdWalk::Bpf => "bpf",
            FdWalk::Proc => "proc",
        }
    }
}

/// `/proc/thread-self/net/<name>`: the table of the namespace the calling thread is in (called
/// from inside `Netns::run_in`).
pub fn thread_net_file(name: &str) -> io::Result<Vec<u8>> {
    fs::read(format!("/proc/thread-self/net/{name}"))
}

/// Who this process runs as, from its own `/proc/self` (not the tree being walked, which may
/// be a host's): effective uid and gid, effective and bounding capabilities, and whether it is
/// in a user namespace of its own (a `uid_map` other than the identity map of every uid).
pub fn caller() -> Option<unowned::Caller> {
    let status = fs::read("/proc/self/status").ok()?;
    let map = fs::read_to_string("/proc/self/uid_map").unwrap_or_default();
    let identity = map.split_ascii_whitespace().collect::<Vec<_>>() == ["0", "0", "4294967295"];
    Some(unowned::Caller {
        uid: proc_pid::parse_status_uids(&status).ok()?.effective,
        gid: proc_pid::parse_status_gids(&status).ok()?.effective,
        cap_eff: proc_pid::parse_status_caps(&status, "CapEff").ok()?,
        cap_bnd: proc_pid::parse_status_caps(&status, "CapBnd").ok()?,
        user_ns: !map.is_empty() && !identity,
    })
}

/// PROC_PID_INIT_INO: the inode of the initial pid namespace (include/linux/proc_ns.h).
const INIT_PID_NS_INODE: u64 = 0xEFFF_FFFC;
/// Capabilities (include/uapi/linux/capability.h).
const CAP_DAC_OVERRIDE: u32 = 1;
const CAP_DAC_READ_SEARCH: u32 = 2;
const CAP_SYS_PTRACE: u32 = 19;

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

/// A socket fd seen in `/proc/<pid>/fd`: (socket inode, pid, fd).
type SocketFd = (u64, i32, i32);

/// The walk of `/proc/*/fd` that finds socket holders, in two passes. First the processes of
/// the target namespace, whose socket fds are all kept, so that this pass needs no list of
/// wanted sockets and can run while the sockets are still being dumped; then, only if a wanted
/// socket is left without an owner, the rest of the tree, keeping only wanted sockets
/// (ambient: ztunnel holds in-pod listeners from its own namespace). Any number of threads may
/// call `work` to share the first pass, one process at a time; `finish` completes it.
///
/// Paths are looked up relative to directory fds (`/proc`, then `/proc/<pid>/fd`), never
/// rebuilt from the root: at tens of thousands of fds, the path walk per `readlink` was a
/// third of the cost.
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
    root: OwnedFd,
    /// Processes in the target namespace.
    first: Vec<i32>,
    /// Every other process.
    rest: Vec<i32>,
}

#[derive(Default)]
struct Found {
    fds: Vec<SocketFd>,
    unreadable: Vec<i32>,
    scanned: usize,
}

impl Found {
    fn merge(&mut self, other: Found) {
        self.fds.extend(other.fds);
        self.unreadable.extend(other.unreadable);
        self.scanned += other.scanned;
    }

    /// Reads the processes `queue` hands out, until it runs dry.
    fn drain(&mut self, root: &OwnedFd, queue: &Queue, keep: &(impl Fn(u64) -> bool + Sync)) {
        while let Some(pid) = queue.take() {
            self.scanned += 1;
            match socket_fds(root, pid, keep, &mut self.fds) {
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
        if self.procfs.fd_walk != FdWalk::Proc
            && (self.kernel().is_ok() || self.procfs.fd_walk == FdWalk::Bpf)
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
            .get_or_init(|| self.procfs.plan(self.target_netns))
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
                let found = self.procfs.as_proc_shows(fds)?;
                return Ok(self.procfs.holders(found, FdWalk::Bpf));
            }
            Some(Err(why)) if self.procfs.fd_walk == FdWalk::Bpf => {
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
        if has_unowned(wanted, &found.fds) && !plan.rest.is_empty() {
            let next = AtomicUsize::new(0);
            let queue = Queue {
                pids: &plan.rest,
                next: &next,
            };
            let keep = |inode: u64| wanted.contains(&inode);
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
        }
        Ok(self.procfs.holders(found, FdWalk::Proc))
    }
}

impl ProcRoot {
    /// The facts of every process in `found`, joined to its socket fds.
    fn holders(&self, found: Found, via: FdWalk) -> Owners {
        let mut infos: HashMap<i32, Option<Arc<ProcessInfo>>> = HashMap::new();
        let mut holders = Vec::with_capacity(found.fds.len());
        for (inode, pid, fd) in found.fds {
            let info = infos
                .entry(pid)
                .or_insert_with(|| self.process_info(pid).map(Arc::new));
            // A process that exited before its facts were read holds nothing any more.
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

    /// The kernel walk's holders, less those of processes whose fd links `/proc` would not
    /// let us read: one `readlink` per holding process (not per fd) asks the kernel's own
    /// permission checks, LSM policies included (AppArmor's default container profile
    /// denies reading unconfined processes). Those count as unreadable, as in the /proc walk.
    fn as_proc_shows(&self, fds: Vec<SocketFd>) -> io::Result<Found> {
        let root = nix::fcntl::open(
            &self.root,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        let mut buf = [0u8; LINK_BUF];
        Ok(drop_unreadable(fds, |pid, fd| {
            let path = match fd {
                Some(fd) => format!("{pid}/fd/{fd}"),
                None => format!("{pid}/exe"),
            };
            let path = CString::new(path).map_err(|_| Errno::EINVAL)?;
            readlink_at(&root, &path, &mut buf).map(|_| ())
        }))
    }

    /// Every socket fd on the node, from the kernel walk, if it may be used here: the pids it
    /// reports are those of the initial pid namespace, so this `/proc` must be that
    /// namespace's (ours, and ours the initial one); and it bypasses the permission checks
    /// that guard `/proc/<pid>/fd`, so only a caller they never stop (CAP_SYS_PTRACE and
    /// CAP_DAC_READ_SEARCH or CAP_DAC_OVERRIDE) gets it. Else, or if the kernel refuses it,
    /// why not.
    fn kernel_walk(&self) -> Result<(FdIter, Vec<SocketFd>), String> {
        let me = std::process::id().to_string();
        let own = fs::read_link(self.root.join("self"))
            .is_ok_and(|l| l.as_os_str().as_bytes() == me.as_bytes());
        if !own {
            return Err(format!(
                "{} is not the /proc of this pid namespace",
                self.root.display()
            ));
        }
        let pid_ns = nix::sys::stat::stat(&self.root.join("self/ns/pid"))
            .map_err(|e| format!("cannot read this process's pid namespace: {e}"))?;
        if pid_ns.st_ino != INIT_PID_NS_INODE {
            return Err("not in the node's pid namespace (run with hostPID)".into());
        }
        let status = fs::read(self.root.join("self/status"))
            .map_err(|e| format!("cannot read this process's status: {e}"))?;
        let caps = proc_pid::parse_status_cap_eff(&status).map_err(|e| e.to_string())?;
        // Listing another user's /proc/<pid>/fd takes a DAC capability, reading its links
        // ptrace access, which CAP_SYS_PTRACE always grants (LSM policies aside: those are
        // asked per holding process afterwards, in `as_proc_shows`).
        if caps & (1 << CAP_SYS_PTRACE) == 0 {
            return Err("needs CAP_SYS_PTRACE".into());
        }
        if caps & ((1 << CAP_DAC_READ_SEARCH) | (1 << CAP_DAC_OVERRIDE)) == 0 {
            return Err("needs CAP_DAC_READ_SEARCH".into());
        }
        let iter = FdIter::load().map_err(|e| e.to_string())?;
        let fds = iter.socket_fds().map_err(|e| e.to_string())?;
        Ok((iter, fds))
    }
}

/// `fds` less the processes for which `readlink(pid, Some(fd))` is refused (EACCES, EPERM),
/// which are listed as unreadable. The first fd still there decides (an fd closed since the
/// walk says nothing). When none is there (ENOENT before any permission check: the socket is
/// in a thread's own fd table, or the main thread has exited), `readlink(pid, None)` of the
/// exe link decides: the kernel checks it as it checks fd links, and fails with ENOENT only
/// after the check passed.
fn drop_unreadable(
    mut fds: Vec<SocketFd>,
    mut readlink: impl FnMut(i32, Option<i32>) -> Result<(), Errno>,
) -> Found {
    let mut by_pid: Vec<(i32, i32)> = fds.iter().map(|&(_, pid, fd)| (pid, fd)).collect();
    by_pid.sort_unstable();
    let mut hidden: Vec<i32> = Vec::new();
    let mut scanned = 0;
    for group in by_pid.chunk_by(|a, b| a.0 == b.0) {
        let Some(&(pid, _)) = group.first() else {
            continue;
        };
        scanned += 1;
        let verdict = group
            .iter()
            .map(|&(_, fd)| readlink(pid, Some(fd)))
            .find(|r| *r != Err(Errno::ENOENT))
            .unwrap_or_else(|| readlink(pid, None));
        if matches!(verdict, Err(Errno::EACCES | Errno::EPERM)) {
            hidden.push(pid);
        }
    }
    fds.retain(|(_, pid, _)| hidden.binary_search(pid).is_err());
    Found {
        fds,
        unreadable: hidden,
        scanned,
    }
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

/// Appends (inode, pid, fd) for every fd of `pid` that is a socket `keep` accepts. An error
/// of kind PermissionDenied means the fds of this process cannot be read (listing the fd
/// directory needs CAP_DAC_READ_SEARCH, reading the links ptrace access, CAP_SYS_PTRACE); then
/// nothing is appended. Any other error: the process exited.
fn socket_fds(
    root: &OwnedFd,
    pid: i32,
    keep: &impl Fn(u64) -> bool,
    out: &mut Vec<SocketFd>,
) -> io::Result<()> {
    let start = out.len();
    let fds = openat(
        root,
        format!("{pid}/fd").as_str(),
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    // One descriptor to list the directory with, one to look its entries up in.
    let lookup = fds.try_clone()?;
    let mut dir = Dir::from_fd(fds)?;
    let mut buf = [0u8; LINK_BUF];
    for entry in dir.iter() {
        // An error here means the process is going away.
        let Ok(entry) = entry else { break };
        let name = entry.file_name();
        let Some(fd) = parse_num(name.to_bytes()) else {
            continue;
        };
        match readlink_at(&lookup, name, &mut buf) {
            Ok(link) => {
                if let Some(inode) = proc_pid::socket_inode(link)
                    && keep(inode)
                {
                    out.push((inode, pid, fd));
                }
            }
            Err(Errno::EACCES) => {
                out.truncate(start);
                return Err(io::ErrorKind::PermissionDenied.into());
            }
            // The fd was closed, or the process exited, while we looked.
            Err(_) => {}
        }
    }
    Ok(())
}

/// Room for a link target such as `socket:[4026531840]` or `net:[4026531840]`. A longer target
/// (a file path) comes back cut at this length, which is never mistaken for either.
const LINK_BUF: usize = 64;

/// `readlinkat(2)` into `buf`, without allocating: this runs once per fd of every process read.
fn readlink_at<'b>(
    dir: &OwnedFd,
    name: &CStr,
    buf: &'b mut [u8; LINK_BUF],
) -> Result<&'b [u8], Errno> {
    // SAFETY: `name` is NUL-terminated, `buf` is writable for `buf.len()` bytes, and the
    // kernel writes at most that many; `dir` is an open descriptor for the whole call.
    let n = unsafe {
        libc::readlinkat(
            dir.as_raw_fd(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    let n = usize::try_from(n).map_err(|_| Errno::last())?;
    Ok(buf.get(..n).unwrap_or_default())
}

impl ProcRoot {
    pub fn new(root: impl Into<PathBuf>) -> ProcRoot {
        ProcRoot {
            root: root.into(),
            fd_walk: FdWalk::default(),
        }
    }

    pub fn fd_walk(&self) -> FdWalk {
        self.fd_walk
    }

    /// The same tree, finding socket holders the way `fd_walk` says.
    pub fn with_fd_walk(mut self, fd_walk: FdWalk) -> ProcRoot {
        self.fd_walk = fd_walk;
        self
    }

    pub fn path(&self) -> &Path {
        &self.root
    }

    fn pid_path(&self, pid: i32, rest: &str) -> PathBuf {
        let mut p = self.root.join(pid.to_string());
        if !rest.is_empty() {
            p.push(rest);
        }
        p
    }

    /// Every numeric entry of the tree.
    pub fn pids(&self) -> io::Result<Vec<i32>> {
        let mut pids = Vec::new();
        for entry in fs::read_dir(&self.root)? {
            let Ok(entry) = entry else { continue };
            if let Some(pid) = parse_pid(&entry.file_name()) {
                pids.push(pid);
            }
        }
        pids.sort_unstable();
        Ok(pids)
    }

    /// The inode of the network namespace `pid` is in, from the `net:[N]` link.
    pub fn netns_inode(&self, pid: i32) -> Option<u64> {
        let link = fs::read_link(self.pid_path(pid, "ns/net")).ok()?;
        ns_inode(link.as_os_str().as_bytes())
    }

    /// Find the holders of `wanted` socket inodes. Processes in the namespace `target_netns`
    /// are read first; the rest of the tree only if some wanted socket is still without an
    /// owner (ambient: ztunnel holds in-pod listeners from its own namespace).
    pub fn owners(&self, wanted: &HashSet<u64>, target_netns: Option<u64>) -> io::Result<Owners> {
        self.walk(target_netns).finish(wanted)
    }

    /// A walk for the holders of sockets of the namespace `target_netns`, to be shared by
    /// threads (`Walk::work`) before the sockets are known, and completed by `Walk::finish`.
    /// Without a target namespace, nothing is read before `finish`.
    pub fn walk(&self, target_netns: Option<u64>) -> Walk<'_> {
        Walk {
            procfs: self,
            target_netns,
            kernel: OnceLock::new(),
            plan: OnceLock::new(),
            next: AtomicUsize::new(0),
            found: Mutex::new(Found::default()),
        }
    }

    /// Every process, split into those in `target_netns` and the rest.
    fn plan(&self, target_netns: Option<u64>) -> io::Result<Plan> {
        let root = nix::fcntl::open(
            &self.root,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        let pids = self.pids()?;
        let (first, rest) = match target_netns {
            Some(ns) => {
                let mut buf = [0u8; LINK_BUF];
                pids.into_iter().partition(|pid| {
                    let Ok(path) = CString::new(format!("{pid}/ns/net")) else {
                        return false;
                    };
                    readlink_at(&root, &path, &mut buf).ok().and_then(ns_inode) == Some(ns)
                })
            }
            None => (Vec::new(), pids),
        };
        Ok(Plan { root, first, rest })
    }

    /// Facts about one process, or None if it is gone.
    pub fn process_info(&self, pid: i32) -> Option<ProcessInfo> {
        let stat = fs::read(self.pid_path(pid, "stat")).ok()?;
        let stat = proc_pid::parse_stat(&stat).ok()?;
        let comm = fs::read(self.pid_path(pid, "comm"))
            .map(|mut c| {
                if c.last() == Some(&b'\n') {
                    c.pop();
                }
                RawText::new(c)
            })
            .unwrap_or_else(|_| stat.comm.clone());
        let exe = self.exe(pid);
        let cmdline = fs::read(self.pid_path(pid, "cmdline"))
            .map(|c| proc_pid::parse_cmdline(&c))
            .unwrap_or_default();
        let uid = fs::read(self.pid_path(pid, "status"))
            .ok()
            .and_then(|s| proc_pid::parse_status_uids(&s).ok().map(|u| u.real));
        let (parent_comm, parent_exe) = if stat.ppid > 0 {
            (
                fs::read(self.pid_path(stat.ppid, "comm"))
                    .ok()
                    .map(|mut c| {
                        if c.last() == Some(&b'\n') {
                            c.pop();
                        }
                        RawText::new(c)
                    }),
                self.exe(stat.ppid),
            )
        } else {
            (None, None)
        };
        Some(ProcessInfo {
            pid,
            ppid: stat.ppid,
            comm,
            exe,
            cmdline,
            uid,
            parent_comm,
            parent_exe,
            netns_inode: self.netns_inode(pid),
        })
    }

    fn exe(&self, pid: i32) -> Option<RawText> {
        let link = fs::read_link(self.pid_path(pid, "exe")).ok()?;
        Some(RawText::new(link.as_os_str().as_bytes()))
    }

    /// `/proc/<pid>/net/<name>`: that process's network namespace, no setns needed.
    pub fn net_file(&self, pid: Option<i32>, name: &str) -> io::Result<Vec<u8>> {
        let base = match pid {
            Some(pid) => self.pid_path(pid, "net"),
            None => self.root.join("self/net"),
        };
        fs::read(base.join(name))
    }

    /// The effective uid and gid of `pid`, from its status (readable by anyone, unlike its fds).
    pub fn ids(&self, pid: i32) -> (Option<u32>, Option<u32>) {
        let Ok(status) = fs::read(self.pid_path(pid, "status")) else {
            return (None, None);
        };
        (
            proc_pid::parse_status_uids(&status)
                .ok()
                .map(|u| u.effective),
            proc_pid::parse_status_gids(&status)
                .ok()
                .map(|g| g.effective),
        )
    }

    /// Whether this tree is the node's pid namespace, where every process is visible: kernel
    /// threads (kthreadd is pid 2) show in no other pid namespace's `/proc`.
    pub fn node_wide(&self) -> bool {
        const PF_KTHREAD: u32 = 0x0020_0000;
        self.stat(2).is_some_and(|s| s.flags & PF_KTHREAD != 0)
    }

    /// What explains the sockets left without a holder: who podports runs as, the uid and gid
    /// of each process whose fds could not be read, whether this tree is the node's.
    pub fn unowned_facts(&self, unreadable: &[i32]) -> unowned::Facts {
        unowned::Facts {
            caller: caller(),
            unreadable: unreadable
                .iter()
                .map(|&pid| {
                    let (uid, gid) = self.ids(pid);
                    unowned::Unreadable { pid, uid, gid }
                })
                .collect(),
            node_wide: self.node_wide(),
        }
    }

    /// `/proc/<pid>/stat`: state, parent, flags and start time (with the pid, the start time
    /// tells a process from a later one that reused its pid).
    pub fn stat(&self, pid: i32) -> Option<proc_pid::Stat> {
        let stat = fs::read(self.pid_path(pid, "stat")).ok()?;
        proc_pid::parse_stat(&stat).ok()
    }
}

fn parse_pid(name: &OsStr) -> Option<i32> {
    parse_num(name.as_bytes())
}

/// A pid or fd number: digits only.
fn parse_num(name: &[u8]) -> Option<i32> {
    if name.is_empty() || !name.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(name).ok()?.parse().ok()
}

/// The inode in a namespace link target `net:[4026531840]`.
fn ns_inode(link: &[u8]) -> Option<u64> {
    let digits = link.strip_prefix(b"net:[")?.strip_suffix(b"]")?;
    std::str::from_utf8(digits).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kernel walk keeps what /proc would show: a process whose fd links are refused
    /// (an LSM policy) is dropped and counted as unreadable; an fd closed since the walk
    /// (ENOENT) defers to the process's next fd, and then to its exe link.
    #[test]
    fn drop_unreadable_asks_once_per_process() {
        let fds = vec![
            (100, 7, 3),
            (101, 7, 4),
            (102, 8, 3),
            (103, 9, 5),
            (104, 9, 6),
            (105, 10, 3),
            (106, 11, 3),
            (107, 12, 4),
        ];
        let mut asked = Vec::new();
        let found = drop_unreadable(fds, |pid, fd| {
            asked.push((pid, fd));
            match (pid, fd) {
                (8, _) => Err(Errno::EACCES),
                (9, Some(5)) => Err(Errno::ENOENT),
                (10, _) => Err(Errno::EPERM),
                // Every fd gone from /proc/<pid>/fd (main thread exited): the exe link decides.
                (11 | 12, Some(_)) => Err(Errno::ENOENT),
                (11, None) => Err(Errno::ENOENT),
                (12, None) => Err(Errno::EACCES),
                _ => Ok(()),
            }
        });
        assert_eq!(
            asked,
            vec![
                (7, Some(3)),
                (8, Some(3)),
                (9, Some(5)),
                (9, Some(6)),
                (10, Some(3)),
                (11, Some(3)),
                (11, None),
                (12, Some(4)),
                (12, None)
            ]
        );
        assert_eq!(
            found.fds,
            vec![
                (100, 7, 3),
                (101, 7, 4),
                (103, 9, 5),
                (104, 9, 6),
                (106, 11, 3)
            ]
        );
        assert_eq!(found.unreadable, vec![8, 10, 12]);
        assert_eq!(found.scanned, 6);
    }
}
