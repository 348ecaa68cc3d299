//! Network namespace handles and entry. A namespace is opened once, identified by the
//! (dev, inode) of its nsfs file, and entered only on a short-lived dedicated thread that goes
//! back to its own namespace before it ends: no thread of podports stays in a foreign one.
#![allow(unsafe_code)] // raw syscalls; each block says why it is sound (SAFETY)

use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sched::{CloneFlags, setns};
use nix::sys::statfs::{NSFS_MAGIC, fstatfs};

// NS_GET_NSTYPE = _IO(0xb7, 0x3), Linux 4.11+: which kind of namespace an nsfs file is.
nix::ioctl_none!(ns_get_nstype, 0xb7, 0x3);

/// The identity of a network namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NsId {
    pub dev: u64,
    pub inode: u64,
}

/// An open network namespace.
#[derive(Debug)]
pub struct Netns {
    file: File,
    pub id: NsId,
    pub path: PathBuf,
}

/// Why a namespace could not be opened or entered.
#[derive(Debug)]
pub enum NsError {
    /// The path does not exist (exit 3).
    Missing(PathBuf),
    /// The path exists but is not a network namespace (exit 2).
    NotNetns(PathBuf, String),
    /// Opening or entering was refused (exit 3, or a fallback).
    Denied(PathBuf, Errno),
    /// Anything else.
    Other(PathBuf, io::Error),
}

impl std::fmt::Display for NsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NsError::Missing(p) => write!(f, "{}: no such network namespace", p.display()),
            NsError::NotNetns(p, what) => {
                write!(f, "{}: not a network namespace ({what})", p.display())
            }
            NsError::Denied(p, e) => write!(f, "{}: {}", p.display(), e.desc()),
            NsError::Other(p, e) => write!(f, "{}: {e}", p.display()),
        }
    }
}

impl Netns {
    /// Open `path` and check that it is a network namespace file.
    pub fn open(path: &Path) -> Result<Netns, NsError> {
        let file = File::open(path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => NsError::Missing(path.to_path_buf()),
            io::ErrorKind::PermissionDenied => NsError::Denied(
                path.to_path_buf(),
                Errno::from_raw(e.raw_os_error().unwrap_or(libc_eacces())),
            ),
            _ => NsError::Other(path.to_path_buf(), e),
        })?;
        let fs = fstatfs(file.as_fd()).map_err(|e| NsError::Other(path.to_path_buf(), e.into()))?;
        if fs.filesystem_type() != NSFS_MAGIC {
            let what = match std::fs::metadata(path) {
                Ok(m) if m.is_dir() => "a directory".to_string(),
                Ok(_) => "a regular file, not an nsfs file".to_string(),
                Err(e) => e.to_string(),
            };
            return Err(NsError::NotNetns(path.to_path_buf(), what));
        }
        // SAFETY: NS_GET_NSTYPE takes no argument and only reads the fd's namespace type.
        match unsafe { ns_get_nstype(std::os::fd::AsRawFd::as_raw_fd(&file)) } {
            Ok(t) if t == CloneFlags::CLONE_NEWNET.bits() => {}
            Ok(_) => {
                return Err(NsError::NotNetns(
                    path.to_path_buf(),
                    "a namespace of another type".into(),
                ));
            }
            // Kernels before 4.11: nsfs but no type query; setns will check the type.
            Err(_) => {}
        }
        let meta = file
            .metadata()
            .map_err(|e| NsError::Other(path.to_path_buf(), e))?;
        Ok(Netns {
            file,
            id: NsId {
                dev: meta.dev(),
                inode: meta.ino(),
            },
            path: path.to_path_buf(),
        })
    }

    /// The namespace the calling thread is in now.
    pub fn current() -> Result<Netns, NsError> {
        Netns::open(Path::new("/proc/thread-self/ns/net"))
    }

    /// Run `f` inside this namespace on a dedicated thread and return its result. When the
    /// caller is already in the namespace, `f` runs right here with no `setns` (an unprivileged
    /// user inside the pod needs no capability). The thread returns to its own namespace
    /// before it ends; if that fails it ends anyway, so nothing stays in the target.
    pub fn run_in<T: Send>(&self, f: impl FnOnce() -> T + Send) -> Result<T, NsError> {
        let here = Netns::current()?;
        if here.id == self.id {
            return Ok(f());
        }
        std::thread::scope(|scope| {
            let handle = scope.spawn(|| -> Result<T, NsError> {
                setns(self.file.as_fd(), CloneFlags::CLONE_NEWNET).map_err(|e| match e {
                    Errno::EINVAL => NsError::NotNetns(
                        self.path.clone(),
                        "setns refused it as a network namespace".into(),
                    ),
                    e => NsError::Denied(self.path.clone(), e),
                })?;
                let out = f();
                // Going back cannot fail for lack of privilege (we just used it), but if it
                // did, this thread ends right after and takes the namespace with it.
                let _ = setns(here.file.as_fd(), CloneFlags::CLONE_NEWNET);
                Ok(out)
            });
            handle.join().unwrap_or_else(|_| {
                Err(NsError::Other(
                    self.path.clone(),
                    io::Error::other("the namespace thread failed"),
                ))
            })
        })
    }

    /// Run `f` inside each of `nss` in turn, on one dedicated thread that enters them one
    /// after another (`check --all-pods` reads every pod's addresses: one thread, not one per
    /// pod), and return a result per namespace, in order. The thread returns to its own
    /// namespace before it ends; a namespace it may not enter is that one's error.
    pub fn run_in_each<T: Send>(
        nss: &[&Netns],
        f: impl Fn() -> T + Sync,
    ) -> Result<Vec<Result<T, NsError>>, NsError> {
        let here = Netns::current()?;
        std::thread::scope(|scope| {
            let handle = scope.spawn(|| {
                let mut out = Vec::with_capacity(nss.len());
                for ns in nss {
                    if let Err(e) = setns(ns.file.as_fd(), CloneFlags::CLONE_NEWNET) {
                        out.push(Err(match e {
                            Errno::EINVAL => NsError::NotNetns(
                                ns.path.clone(),
                                "setns refused it as a network namespace".into(),
                            ),
                            e => NsError::Denied(ns.path.clone(), e),
                        }));
                        continue;
                    }
                    out.push(Ok(f()));
                }
                let _ = setns(here.file.as_fd(), CloneFlags::CLONE_NEWNET);
                out
            });
            handle.join().map_err(|_| {
                NsError::Other(
                    here.path.clone(),
                    io::Error::other("the namespace thread failed"),
                )
            })
        })
    }
}

fn libc_eacces() -> i32 {
    nix::libc::EACCES
}
