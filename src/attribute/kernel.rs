//! The kernel fd walk's holders cut to what `/proc` would show (an LSM policy may refuse what
//! the kernel walk saw), so that `--fd-walk bpf` and `proc` find the same holders. The cut is
//! decided here, over what `readlink` answers; the reading is `sys::procfs::Tree`'s.

use std::io;

use nix::errno::Errno;

use crate::sys::procfs::{ProcRoot, SocketFd};

use super::walk::Found;

/// The kernel walk's holders, less those of processes whose fd links `/proc` would not
/// let us read: one `readlink` per holding process (not per fd) asks the kernel's own
/// permission checks, LSM policies included (AppArmor's default container profile
/// denies reading unconfined processes). Those count as unreadable, as in the /proc walk.
pub(super) fn as_proc_shows(procfs: &ProcRoot, fds: Vec<SocketFd>) -> io::Result<Found> {
    let tree = procfs.tree()?;
    Ok(drop_unreadable(fds, |pid, fd| tree.readlink(pid, fd)))
}

/// The processes, other than `known` (sorted), whose fd links `/proc` refuses (EACCES,
/// EPERM on the exe link, which the kernel checks as it checks fd links). Asked only when
/// some socket has no holder after the kernel walk: that walk may not have seen a process
/// whose fds `/proc` hides either (seen: a sandbox's pid 1, whose sockets neither `/proc` nor
/// the kernel's task iterator shows), and the /proc walk counts every refused process; so
/// both walks give one account of hidden owners. One `readlink` per process.
pub(super) fn refused(procfs: &ProcRoot, known: &[i32]) -> io::Result<Vec<i32>> {
    let tree = procfs.tree()?;
    let pids = procfs.pids()?;
    Ok(pids
        .into_iter()
        .filter(|pid| known.binary_search(pid).is_err())
        .filter(|&pid| matches!(tree.readlink(pid, None), Err(Errno::EACCES | Errno::EPERM)))
        .collect())
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
