//! Driving the kernel fd walk (`sys::bpf::FdIter`) for the /proc walk: whether it may be used
//! here (this /proc's pid namespace, our capabilities), and its holders cut to what `/proc`
//! would show. Reads only.

use std::ffi::CString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use crate::parse::proc_pid;
use crate::sys::bpf::FdIter;

use super::walk::{Found, SocketFd};
use super::{LINK_BUF, ProcRoot, readlink_at};

/// PROC_PID_INIT_INO: the inode of the initial pid namespace (include/linux/proc_ns.h).
const INIT_PID_NS_INODE: u64 = 0xEFFF_FFFC;
/// Capabilities (include/uapi/linux/capability.h).
const CAP_DAC_OVERRIDE: u32 = 1;
const CAP_DAC_READ_SEARCH: u32 = 2;
const CAP_SYS_PTRACE: u32 = 19;

impl ProcRoot {
    /// The kernel walk's holders, less those of processes whose fd links `/proc` would not
    /// let us read: one `readlink` per holding process (not per fd) asks the kernel's own
    /// permission checks, LSM policies included (AppArmor's default container profile
    /// denies reading unconfined processes). Those count as unreadable, as in the /proc walk.
    pub(super) fn as_proc_shows(&self, fds: Vec<SocketFd>) -> io::Result<Found> {
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
    pub(super) fn kernel_walk(&self) -> Result<(FdIter, Vec<SocketFd>), String> {
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

#[cfg(test)]
mod tests;
