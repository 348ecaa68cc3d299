//! Starting the kernel fd walk (`sys::bpf::FdIter`) for the holder walk `attribute` drives:
//! whether it may be used here (this /proc's pid namespace, our capabilities), and the socket
//! fds it reads. Reads only.

use std::fs;
use std::os::unix::ffi::OsStrExt;

use crate::parse::proc_pid;
use crate::sys::bpf::FdIter;

use super::ProcRoot;
use super::fds::SocketFd;

/// PROC_PID_INIT_INO: the inode of the initial pid namespace (include/linux/proc_ns.h).
const INIT_PID_NS_INODE: u64 = 0xEFFF_FFFC;
/// Capabilities (include/uapi/linux/capability.h).
const CAP_DAC_OVERRIDE: u32 = 1;
const CAP_DAC_READ_SEARCH: u32 = 2;
const CAP_SYS_PTRACE: u32 = 19;

impl ProcRoot {
    /// Every socket fd on the node, from the kernel walk, if it may be used here: the pids it
    /// reports are those of the initial pid namespace, so this `/proc` must be that
    /// namespace's (ours, and ours the initial one); and it bypasses the permission checks
    /// that guard `/proc/<pid>/fd`, so only a caller they never stop (CAP_SYS_PTRACE and
    /// CAP_DAC_READ_SEARCH or CAP_DAC_OVERRIDE) gets it. Else, or if the kernel refuses it,
    /// why not.
    pub fn kernel_walk(&self) -> Result<(FdIter, Vec<SocketFd>), String> {
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
        // asked per holding process afterwards, in `attribute`'s `as_proc_shows`).
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
