//! Reading `/proc` (or a host's `/proc` mounted elsewhere): which process holds which socket
//! inode through which fd, facts about those processes, and `/proc/<pid>/net/*` text for the
//! fallback. Text goes to `parse::proc_pid` and `parse::proc_net`; nothing is written, ever.

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::model::{ProcessInfo, RawText};
use crate::parse::proc_pid;

/// A `/proc` tree.
#[derive(Debug, Clone)]
pub struct ProcRoot {
    root: PathBuf,
}

/// Who holds the sockets that were asked about.
#[derive(Debug, Default)]
pub struct Owners {
    /// Socket inode -> (process, fd), every holder.
    pub by_inode: HashMap<u64, Vec<(Arc<ProcessInfo>, i32)>>,
    /// Processes whose fd table could not be read (EACCES), and so may hold sockets unseen.
    pub unreadable: Vec<i32>,
    /// Processes looked at.
    pub scanned: usize,
}

/// What we know of a process before reading its fds.
struct Candidate {
    pid: i32,
    netns: Option<u64>,
}

impl ProcRoot {
    pub fn new(root: impl Into<PathBuf>) -> ProcRoot {
        ProcRoot { root: root.into() }
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
        let mut owners = Owners::default();
        let mut candidates: Vec<Candidate> = self
            .pids()?
            .into_iter()
            .map(|pid| Candidate {
                pid,
                netns: self.netns_inode(pid),
            })
            .collect();
        let (first, rest): (Vec<_>, Vec<_>) = match target_netns {
            Some(ns) => candidates.drain(..).partition(|c| c.netns == Some(ns)),
            None => (std::mem::take(&mut candidates), Vec::new()),
        };
        let mut remaining: HashSet<u64> = wanted.clone();
        let mut holders: HashMap<i32, Vec<(u64, i32)>> = HashMap::new();
        for pass in [first, rest] {
            if remaining.is_empty() {
                break;
            }
            for c in pass {
                owners.scanned += 1;
                match self.socket_fds(c.pid, wanted) {
                    Ok(found) => {
                        for (inode, _) in &found {
                            remaining.remove(inode);
                        }
                        if !found.is_empty() {
                            holders.insert(c.pid, found);
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                        owners.unreadable.push(c.pid)
                    }
                    // The process exited while we looked: skip it.
                    Err(_) => {}
                }
            }
        }
        let mut infos: HashMap<i32, Arc<ProcessInfo>> = HashMap::new();
        for (pid, found) in holders {
            let Some(info) = self.process_info(pid) else {
                continue;
            };
            let info = infos.entry(pid).or_insert_with(|| Arc::new(info)).clone();
            for (inode, fd) in found {
                owners
                    .by_inode
                    .entry(inode)
                    .or_default()
                    .push((info.clone(), fd));
            }
        }
        for list in owners.by_inode.values_mut() {
            list.sort_by_key(|(p, fd)| (p.pid, *fd));
        }
        Ok(owners)
    }

    /// (socket inode, fd) for every fd of `pid` that is one of the `wanted` sockets.
    fn socket_fds(&self, pid: i32, wanted: &HashSet<u64>) -> io::Result<Vec<(u64, i32)>> {
        let dir = self.pid_path(pid, "fd");
        let mut found = Vec::new();
        for entry in fs::read_dir(&dir)? {
            let Ok(entry) = entry else { continue };
            let Some(fd) = parse_pid(&entry.file_name()) else {
                continue;
            };
            let link = match fs::read_link(entry.path()) {
                Ok(link) => link,
                // Listing the fd directory (CAP_DAC_READ_SEARCH) is not reading the links
                // (ptrace access, CAP_SYS_PTRACE): this process's sockets stay hidden.
                Err(e) if e.kind() == io::ErrorKind::PermissionDenied => return Err(e),
                // The fd was closed, or the process exited, while we looked.
                Err(_) => continue,
            };
            if let Some(inode) = proc_pid::socket_inode(link.as_os_str().as_bytes())
                && wanted.contains(&inode)
            {
                found.push((inode, fd));
            }
        }
        Ok(found)
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

    /// `/proc/<pid>/stat`: state, parent, flags and start time (with the pid, the start time
    /// tells a process from a later one that reused its pid).
    pub fn stat(&self, pid: i32) -> Option<proc_pid::Stat> {
        let stat = fs::read(self.pid_path(pid, "stat")).ok()?;
        proc_pid::parse_stat(&stat).ok()
    }
}

fn parse_pid(name: &OsStr) -> Option<i32> {
    let s = std::str::from_utf8(name.as_bytes()).ok()?;
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// The inode in a namespace link target `net:[4026531840]`.
fn ns_inode(link: &[u8]) -> Option<u64> {
    let digits = link.strip_prefix(b"net:[")?.strip_suffix(b"]")?;
    std::str::from_utf8(digits).ok()?.parse().ok()
}
