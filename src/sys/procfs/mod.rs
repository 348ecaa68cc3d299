//! Reading `/proc` (or a host's `/proc` mounted elsewhere): facts about processes, the
//! network namespace each is in, and `/proc/<pid>/net/*` text for the fallback; for the walk
//! `attribute` drives, the fd tables (fds.rs: `/proc/<pid>/fd`) and the kernel's (kernel.rs).
//! Text goes to `parse::proc_pid` and `parse::proc_net`; nothing is written, ever.
#![allow(unsafe_code)] // raw syscalls; each block says why it is sound (SAFETY)

mod fds;
mod kernel;

use std::ffi::{CStr, OsStr};
use std::fs;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::libc;

use crate::model::{FdWalk, ProcessInfo, RawText};
use crate::parse::proc_pid;
use crate::unowned;

pub use fds::{SocketFd, Tree};

/// A `/proc` tree.
#[derive(Debug, Clone)]
pub struct ProcRoot {
    root: PathBuf,
    fd_walk: FdWalk,
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
        self.facts(pid, |name| fs::read(self.pid_path(pid, name)).ok())
    }

    /// The facts of the process that holds socket `inode` through `fd`, read through one
    /// descriptor of its `/proc/<pid>` directory, opened first, so that they are that
    /// process's: once opened, the directory stays the one of that process (reads fail when it
    /// exits) even if its pid is given to another. Then `fd` must still name the socket: a pid
    /// reused between the fd walk and now holds another file there. None when the process is
    /// gone or is no longer the holder.
    pub fn process_info_held(&self, pid: i32, fd: i32, inode: u64) -> Option<ProcessInfo> {
        let dir = nix::fcntl::open(
            &self.pid_path(pid, ""),
            nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .ok()?;
        let want = format!("socket:[{inode}]");
        let names = |link: &str| -> Result<bool, Errno> {
            let link = std::ffi::CString::new(link).map_err(|_| Errno::EINVAL)?;
            let mut buf = [0u8; LINK_BUF];
            Ok(readlink_at(&dir, &link, &mut buf)? == want.as_bytes())
        };
        match names(&format!("fd/{fd}")) {
            Ok(true) => {}
            // Not in the process's fd table: a thread's own (unshare(CLONE_FILES)), or the
            // main thread has exited. One of its threads must hold it there.
            Ok(false) | Err(Errno::ENOENT) => {
                let tasks = nix::dir::Dir::openat(
                    &dir,
                    "task",
                    nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
                    nix::sys::stat::Mode::empty(),
                )
                .ok()?;
                let tids: Vec<String> = tasks
                    .into_iter()
                    .filter_map(|e| e.ok())
                    .filter_map(|e| e.file_name().to_str().ok().map(str::to_owned))
                    .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
                    .collect();
                if !tids
                    .iter()
                    .any(|tid| names(&format!("task/{tid}/fd/{fd}")) == Ok(true))
                {
                    return None;
                }
            }
            _ => return None,
        }
        let read = |name: &str| -> Option<Vec<u8>> {
            use std::io::Read;
            let file = nix::fcntl::openat(
                &dir,
                name,
                nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )
            .ok()?;
            let mut bytes = Vec::new();
            fs::File::from(file).read_to_end(&mut bytes).ok()?;
            Some(bytes)
        };
        let mut info = self.facts(pid, read)?;
        // The links too, through the same directory.
        info.exe = nix::fcntl::readlinkat(&dir, "exe")
            .ok()
            .map(|l| RawText::new(l.as_os_str().as_bytes()));
        info.netns_inode = nix::fcntl::readlinkat(&dir, "ns/net")
            .ok()
            .and_then(|l| ns_inode(l.as_os_str().as_bytes()));
        Some(info)
    }

    /// A process's facts from its files, read by `read` (by path, or through its directory).
    fn facts(&self, pid: i32, read: impl Fn(&str) -> Option<Vec<u8>>) -> Option<ProcessInfo> {
        let stat = read("stat")?;
        let stat = proc_pid::parse_stat(&stat).ok()?;
        let comm = read("comm")
            .map(|mut c| {
                if c.last() == Some(&b'\n') {
                    c.pop();
                }
                RawText::new(c)
            })
            .unwrap_or_else(|| stat.comm.clone());
        let exe = self.exe(pid);
        let cmdline = read("cmdline")
            .map(|c| proc_pid::parse_cmdline(&c))
            .unwrap_or_default();
        let uid = read("status").and_then(|s| proc_pid::parse_status_uids(&s).ok().map(|u| u.real));
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
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::MetadataExt;

    use super::ProcRoot;

    /// The facts of a holder are given only while its fd still names the socket: the walk saw
    /// socket inode I at fd N of pid P, and P's fd N must be I when its facts are read (a pid
    /// reused in between holds something else there, or nothing).
    #[test]
    fn facts_are_given_only_to_the_process_that_holds_the_socket() {
        let procfs = ProcRoot::new("/proc");
        let me = std::process::id() as i32;
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let fd = sock.as_raw_fd();
        let inode = std::fs::metadata(format!("/proc/self/fd/{fd}"))
            .unwrap()
            .ino();
        let info = procfs
            .process_info_held(me, fd, inode)
            .expect("our own socket, at its fd");
        assert_eq!(info.pid, me);
        assert!(info.exe.is_some() && info.netns_inode.is_some(), "{info:?}");
        assert_eq!(
            info.netns_inode,
            procfs.netns_inode(me),
            "read through the directory as by path"
        );
        // Another socket's inode at that fd: not the holder.
        assert!(procfs.process_info_held(me, fd, inode + 1).is_none());
        // The fd closed (or never a socket): not the holder.
        drop(sock);
        assert!(procfs.process_info_held(me, fd, inode).is_none());
        // A pid with no process.
        assert!(procfs.process_info_held(i32::MAX, 3, inode).is_none());
    }

    /// A socket in a thread's own fd table (unshare(CLONE_FILES)) is found through the thread.
    #[test]
    fn a_socket_in_a_threads_own_fd_table_is_held_by_its_process() {
        let procfs = ProcRoot::new("/proc");
        let me = std::process::id() as i32;
        let (tx, rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let t = std::thread::spawn(move || {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_FILES).unwrap();
            let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            let fd = sock.as_raw_fd();
            let inode = std::fs::metadata(format!("/proc/thread-self/fd/{fd}"))
                .unwrap()
                .ino();
            tx.send((fd, inode)).unwrap();
            let _ = done_rx.recv();
            drop(sock);
        });
        let (fd, inode) = rx.recv().unwrap();
        let held = procfs.process_info_held(me, fd, inode);
        done_tx.send(()).unwrap();
        t.join().unwrap();
        assert_eq!(held.map(|i| i.pid), Some(me));
    }
}
