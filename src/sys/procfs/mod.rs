//! Reading `/proc` (or a host's `/proc` mounted elsewhere): facts about processes, the
//! network namespace each is in, and `/proc/<pid>/net/*` text for the fallback. Which process
//! holds which socket is found by the walk (walk.rs: `/proc/*/fd`, or the kernel's fd tables
//! through kernel.rs). Text goes to `parse::proc_pid` and `parse::proc_net`; nothing is
//! written, ever.
#![allow(unsafe_code)] // raw syscalls; each block says why it is sound (SAFETY)

mod kernel;
mod walk;

use std::ffi::{CStr, OsStr};
use std::fs;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::libc;

use crate::model::{ProcessInfo, RawText};
use crate::parse::proc_pid;
use crate::unowned;

pub use walk::{Owners, Walk, threads};

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
}

impl ProcRoot {
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
