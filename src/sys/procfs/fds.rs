//! The fd tables under `/proc`, read for the walk `attribute` drives: the tree opened once,
//! each process's network namespace, its socket fds, and whether `/proc` lets us read a
//! process's fd links at all. Paths are looked up relative to directory fds (`/proc`, then
//! `/proc/<pid>/fd`), never rebuilt from the root: at tens of thousands of fds, the path walk
//! per `readlink` was a third of the cost. Reads only; decides nothing.

use std::ffi::CString;
use std::io;
use std::os::fd::OwnedFd;

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{OFlag, openat};
use nix::sys::stat::Mode;

use crate::parse::proc_pid;

use super::{LINK_BUF, ProcRoot, ns_inode, parse_num, readlink_at};

/// A socket fd: (socket inode, pid, fd).
pub type SocketFd = (u64, i32, i32);

/// The `/proc` tree itself, opened once for a walk.
#[derive(Debug)]
pub struct Tree {
    root: OwnedFd,
}

impl ProcRoot {
    /// Opens the tree for a walk.
    pub fn tree(&self) -> io::Result<Tree> {
        let root = nix::fcntl::open(
            &self.root,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Tree { root })
    }
}

impl Tree {
    /// The inode of the network namespace `pid` is in (`None`: gone, or not readable).
    pub fn netns_of(&self, pid: i32) -> Option<u64> {
        let mut buf = [0u8; LINK_BUF];
        let path = CString::new(format!("{pid}/ns/net")).ok()?;
        readlink_at(&self.root, &path, &mut buf)
            .ok()
            .and_then(ns_inode)
    }

    /// `readlink` of `pid`'s fd link `fd` (`None`: its exe link), for what the kernel's own
    /// permission checks say: `EACCES` or `EPERM` when we may not read it, `ENOENT` when it is
    /// gone (for an fd link, before any check).
    pub fn readlink(&self, pid: i32, fd: Option<i32>) -> Result<(), Errno> {
        let mut buf = [0u8; LINK_BUF];
        let path = match fd {
            Some(fd) => format!("{pid}/fd/{fd}"),
            None => format!("{pid}/exe"),
        };
        let path = CString::new(path).map_err(|_| Errno::EINVAL)?;
        readlink_at(&self.root, &path, &mut buf).map(|_| ())
    }

    /// Appends (inode, pid, fd) for every fd of `pid` that is a socket `keep` accepts. An error
    /// of kind PermissionDenied means the fds of this process cannot be read (listing the fd
    /// directory needs CAP_DAC_READ_SEARCH, reading the links ptrace access, CAP_SYS_PTRACE);
    /// then nothing is appended. Any other error: the process exited.
    pub fn socket_fds(
        &self,
        pid: i32,
        keep: &impl Fn(u64) -> bool,
        out: &mut Vec<SocketFd>,
    ) -> io::Result<()> {
        let start = out.len();
        let fds = openat(
            &self.root,
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
}
