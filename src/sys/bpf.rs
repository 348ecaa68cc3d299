//! Runs the in-kernel fd walk (`fd_iter`): reads the kernel's BTF, loads the iterator program,
//! attaches it, reads its output, and closes everything. The program, its link and the
//! iterator live only as long as this call; nothing is pinned, no map is created, nothing of
//! the kernel's state is changed. Needs CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN).
//!
//! Also `--watch`'s creation-side source (`SockCreations`, `parse::sock_create`): a map and a
//! tracing program attached to the `inet_sock_set_state` tracepoint for as long as the watch
//! runs; closing it (drop) detaches and frees both. Nothing pinned.
#![allow(unsafe_code)] // raw syscalls; each block says why it is sound (SAFETY)

use std::fs;
use std::io::{self, Read};
use std::os::fd::{FromRawFd, OwnedFd};

use std::num::NonZeroUsize;
use std::ptr::NonNull;

use nix::libc;
use nix::sys::mman::{self, MapFlags, ProtFlags};

use crate::parse::btf::Btf;
use crate::parse::fd_iter::{self, Layout, SocketFd};
use crate::parse::sock_create;
use std::time::{Duration, SystemTime};

const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";
/// PROC_PID_INIT_INO: the inode of the initial pid namespace (include/linux/proc_ns.h).
const INIT_PID_NS_INODE: u64 = 0xEFFF_FFFC;

// bpf(2) commands, program type, attach type (uapi bpf.h).
const BPF_MAP_CREATE: libc::c_long = 0;
const BPF_MAP_LOOKUP_ELEM: libc::c_long = 1;
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_RAW_TRACEPOINT_OPEN: libc::c_long = 17;
const BPF_LINK_CREATE: libc::c_long = 28;
const BPF_ITER_CREATE: libc::c_long = 33;
const BPF_PROG_TYPE_TRACING: u32 = 26;
const BPF_TRACE_ITER: u32 = 28;
const BPF_TRACE_RAW_TP: u32 = 23;
const BPF_MAP_TYPE_LRU_HASH: u32 = 9;

/// The program is declared GPL-compatible ("Dual MIT/GPL", which the kernel accepts):
/// `bpf_seq_write` is a GPL-only helper. MIT is one of podports' licenses (see LICENSE).
const LICENSE: &[u8] = b"Dual MIT/GPL\0";
/// The program's name as the kernel keeps it (BPF_OBJ_NAME_LEN, NUL-padded).
const PROG_NAME: [u8; 16] = *b"podports_fds\0\0\0\0";
const CREATE_PROG_NAME: [u8; 16] = *b"podports_conn\0\0\0";
const CREATE_MAP_NAME: [u8; 16] = *b"podports_conn\0\0\0";

/// Sockets the creation map remembers: the least recently written go first. At 10,000
/// connections a second on the whole node, a record lives some 6 s, three looks of 2 s; each
/// takes about 120 bytes of kernel memory (some 8 MB in all, preallocated).
const CREATE_MAP_ENTRIES: u32 = 65_536;

/// The size of `union bpf_attr` podports passes: every field it sets lies below it, and the
/// kernel zero-fills what a newer kernel's union has beyond it.
const ATTR_SIZE: usize = 128;

/// `union bpf_attr` as BPF_PROG_LOAD reads it (uapi bpf.h), up to `attach_btf_id`.
#[repr(C)]
#[derive(Default)]
struct ProgLoad {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
    prog_btf_fd: u32,
    func_info_rec_size: u32,
    func_info: u64,
    func_info_cnt: u32,
    line_info_rec_size: u32,
    line_info: u64,
    line_info_cnt: u32,
    attach_btf_id: u32,
    _rest: [u64; 2],
}

/// `union bpf_attr` as BPF_LINK_CREATE reads it: the program, no target, the attach type.
#[repr(C)]
#[derive(Default)]
struct LinkCreate {
    prog_fd: u32,
    target_fd: u32,
    attach_type: u32,
    flags: u32,
    _rest: [u64; 14],
}

/// `union bpf_attr` as BPF_MAP_CREATE reads it, up to `map_name`.
#[repr(C)]
#[derive(Default)]
struct MapCreate {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    inner_map_fd: u32,
    numa_node: u32,
    map_name: [u8; 16],
    _pad: u32,
    _rest: [u64; 10],
}

/// `union bpf_attr` as BPF_MAP_LOOKUP_ELEM reads it.
#[repr(C)]
#[derive(Default)]
struct MapElem {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value: u64,
    flags: u64,
    _rest: [u64; 12],
}

/// `union bpf_attr` as BPF_RAW_TRACEPOINT_OPEN reads it: no name (the program's attach BTF
/// id names the tracepoint).
#[repr(C)]
#[derive(Default)]
struct RawTracepointOpen {
    name: u64,
    prog_fd: u32,
    _pad: u32,
    _rest: [u64; 14],
}

/// `union bpf_attr` as BPF_ITER_CREATE reads it.
#[repr(C)]
#[derive(Default)]
struct IterCreate {
    link_fd: u32,
    flags: u32,
    _rest: [u64; 15],
}

// The layouts are uapi bpf.h's, checked when podports is compiled: a field at another offset,
// or a struct of another size, does not build.
const _: () = {
    use std::mem::{offset_of, size_of};
    assert!(size_of::<ProgLoad>() == ATTR_SIZE);
    assert!(offset_of!(ProgLoad, insn_cnt) == 4);
    assert!(offset_of!(ProgLoad, insns) == 8);
    assert!(offset_of!(ProgLoad, license) == 16);
    assert!(offset_of!(ProgLoad, log_level) == 24);
    assert!(offset_of!(ProgLoad, log_size) == 28);
    assert!(offset_of!(ProgLoad, log_buf) == 32);
    assert!(offset_of!(ProgLoad, kern_version) == 40);
    assert!(offset_of!(ProgLoad, prog_name) == 48);
    assert!(offset_of!(ProgLoad, expected_attach_type) == 68);
    assert!(offset_of!(ProgLoad, prog_btf_fd) == 72);
    assert!(offset_of!(ProgLoad, func_info) == 80);
    assert!(offset_of!(ProgLoad, line_info) == 96);
    assert!(offset_of!(ProgLoad, attach_btf_id) == 108);
    assert!(size_of::<LinkCreate>() == ATTR_SIZE);
    assert!(offset_of!(LinkCreate, target_fd) == 4);
    assert!(offset_of!(LinkCreate, attach_type) == 8);
    assert!(offset_of!(LinkCreate, flags) == 12);
    assert!(size_of::<IterCreate>() == ATTR_SIZE);
    assert!(size_of::<MapCreate>() == ATTR_SIZE);
    assert!(offset_of!(MapCreate, key_size) == 4);
    assert!(offset_of!(MapCreate, value_size) == 8);
    assert!(offset_of!(MapCreate, max_entries) == 12);
    assert!(offset_of!(MapCreate, map_flags) == 16);
    assert!(offset_of!(MapCreate, map_name) == 28);
    assert!(size_of::<MapElem>() == ATTR_SIZE);
    assert!(offset_of!(MapElem, key) == 8);
    assert!(offset_of!(MapElem, value) == 16);
    assert!(offset_of!(MapElem, flags) == 24);
    assert!(size_of::<RawTracepointOpen>() == ATTR_SIZE);
    assert!(offset_of!(RawTracepointOpen, prog_fd) == 8);
    assert!(offset_of!(IterCreate, flags) == 4);
};

/// One command's view of `union bpf_attr`: `#[repr(C)]`, `ATTR_SIZE` bytes, plain integers.
trait Attr: Sized {}
impl Attr for ProgLoad {}
impl Attr for LinkCreate {}
impl Attr for IterCreate {}
impl Attr for MapCreate {}
impl Attr for MapElem {}
impl Attr for RawTracepointOpen {}

/// `bpf(cmd, attr)`, returning the new descriptor.
fn bpf<A: Attr>(cmd: libc::c_long, attr: &mut A) -> io::Result<OwnedFd> {
    let fd = bpf_call(cmd, attr)?;
    let fd = i32::try_from(fd).map_err(|_| io::Error::other("bpf(2) returned no descriptor"))?;
    // SAFETY: the kernel just returned this descriptor to us; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `bpf(cmd, attr)`, returning what the kernel returned (not negative).
fn bpf_call<A: Attr>(cmd: libc::c_long, attr: &mut A) -> io::Result<libc::c_long> {
    // SAFETY: `attr` is one of the `#[repr(C)]` views of `union bpf_attr` above, of the size
    // passed (checked at compile time), zero-initialised by `Default` beyond the fields set;
    // every pointer put in it refers to memory that outlives the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            std::ptr::from_mut(attr).cast::<libc::c_void>(),
            std::mem::size_of::<A>(),
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(r)
}

/// The fd walk program, loaded and attached, ready to walk as often as asked: each walk is
/// one `BPF_ITER_CREATE` and its reads. Closing it (drop) unloads everything.
#[derive(Debug)]
pub struct FdIter {
    /// Holds the program: the link keeps its own reference, this one is for clarity of
    /// ownership only.
    _prog: OwnedFd,
    link: OwnedFd,
}

impl FdIter {
    /// Reads the kernel's BTF, assembles, loads and attaches the program. The error says why
    /// the kernel walk cannot be used, for the caller to fall back.
    pub fn load() -> io::Result<FdIter> {
        let raw = Blob::open(VMLINUX_BTF)
            .map_err(|e| io::Error::new(e.kind(), format!("cannot read {VMLINUX_BTF}: {e}")))?;
        let btf = Btf::parse(&raw).map_err(|e| io::Error::other(format!("{VMLINUX_BTF}: {e}")))?;
        let attach = btf.func_id(fd_iter::ATTACH_FUNC).ok_or_else(|| {
            io::Error::other(format!(
                "this kernel has no {} (Linux 5.8 or later with BTF needed)",
                fd_iter::ATTACH_FUNC
            ))
        })?;
        let layout = Layout::from_btf(&btf).map_err(io::Error::other)?;
        drop(btf);
        drop(raw);

        let insns = fd_iter::program(&layout);
        let prog = load(&insns, attach)?;
        let link = bpf(
            BPF_LINK_CREATE,
            &mut LinkCreate {
                prog_fd: fd_u32(&prog),
                attach_type: BPF_TRACE_ITER,
                ..LinkCreate::default()
            },
        )?;
        Ok(FdIter { _prog: prog, link })
    }

    /// Every socket fd of every process in this pid namespace, as (socket inode, tgid, fd),
    /// sorted, as the kernel has them now.
    pub fn socket_fds(&self) -> io::Result<Vec<SocketFd>> {
        let iter = bpf(
            BPF_ITER_CREATE,
            &mut IterCreate {
                link_fd: fd_u32(&self.link),
                ..IterCreate::default()
            },
        )?;
        read_all(fs::File::from(iter))
    }
}

/// `--watch`'s creation-side source: the map of sockets' creations, filled by the program
/// on `inet_sock_set_state` for as long as this lives (see `parse::sock_create`). Dropping it
/// detaches the program and frees the map.
#[derive(Debug)]
pub struct SockCreations {
    map: OwnedFd,
    _prog: OwnedFd,
    /// The attachment: closing it detaches the program.
    _link: OwnedFd,
}

impl SockCreations {
    /// Creates the map, assembles, loads and attaches the program. The error says why the
    /// creation side cannot be watched (no CAP_BPF and CAP_PERFMON, a kernel older than
    /// 5.12 or without BTF), for the caller to go on without it.
    pub fn load() -> io::Result<SockCreations> {
        // The program records tgids of the initial pid namespace: shown in another, they
        // would name other processes, or none.
        use std::os::unix::fs::MetadataExt;
        let pid_ns = fs::metadata("/proc/self/ns/pid")
            .map_err(|e| io::Error::new(e.kind(), format!("cannot read our pid namespace: {e}")))?;
        if pid_ns.ino() != INIT_PID_NS_INODE {
            return Err(io::Error::other(
                "not in the node's pid namespace (run with hostPID): the pids the kernel \
                 records would not be this namespace's",
            ));
        }
        let raw = Blob::open(VMLINUX_BTF)
            .map_err(|e| io::Error::new(e.kind(), format!("cannot read {VMLINUX_BTF}: {e}")))?;
        let btf = Btf::parse(&raw).map_err(|e| io::Error::other(format!("{VMLINUX_BTF}: {e}")))?;
        let attach = btf.typedef_id(sock_create::ATTACH_TYPEDEF).ok_or_else(|| {
            io::Error::other(format!(
                "this kernel's BTF has no {} (the inet_sock_set_state tracepoint)",
                sock_create::ATTACH_TYPEDEF
            ))
        })?;
        let layout = sock_create::Layout::from_btf(&btf).map_err(io::Error::other)?;
        drop(btf);
        drop(raw);
        let map = bpf(
            BPF_MAP_CREATE,
            &mut MapCreate {
                map_type: BPF_MAP_TYPE_LRU_HASH,
                key_size: sock_create::KEY as u32,
                value_size: sock_create::RECORD as u32,
                max_entries: CREATE_MAP_ENTRIES,
                map_name: CREATE_MAP_NAME,
                ..MapCreate::default()
            },
        )?;
        use std::os::fd::AsRawFd;
        let insns = sock_create::program(map.as_raw_fd(), &layout);
        let prog = load_as(
            &insns,
            attach,
            BPF_TRACE_RAW_TP,
            CREATE_PROG_NAME,
            "connection tracing",
        )?;
        let link = bpf(
            BPF_RAW_TRACEPOINT_OPEN,
            &mut RawTracepointOpen {
                prog_fd: fd_u32(&prog),
                ..RawTracepointOpen::default()
            },
        )?;
        Ok(SockCreations {
            map,
            _prog: prog,
            _link: link,
        })
    }

    /// What the program recorded of the socket `cookie`, with the time of day it stands for;
    /// None when it recorded nothing (a socket made before the watch, or not TCP, or one the
    /// map has since forgotten).
    pub fn lookup(&self, cookie: u64) -> Option<(sock_create::Record, SystemTime)> {
        let mut value = [0u8; sock_create::RECORD];
        bpf_call(
            BPF_MAP_LOOKUP_ELEM,
            &mut MapElem {
                map_fd: fd_u32(&self.map),
                key: std::ptr::from_ref(&cookie) as u64,
                value: value.as_mut_ptr() as u64,
                ..MapElem::default()
            },
        )
        .ok()?;
        let record = sock_create::decode(&value)?;
        // ktime is CLOCK_MONOTONIC: its age now, taken from the time of day now.
        let mut mono = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes one `timespec` to the pointer, a local that outlives
        // the call.
        if unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut mono) } != 0 {
            return None;
        }
        let now_ns =
            u64::try_from(mono.tv_sec).ok()? * 1_000_000_000 + u64::try_from(mono.tv_nsec).ok()?;
        let age = Duration::from_nanos(now_ns.saturating_sub(record.ktime_ns));
        let at = SystemTime::now().checked_sub(age)?;
        Some((record, at))
    }
}

/// One walk with a program loaded for it alone.
pub fn socket_fds() -> io::Result<Vec<SocketFd>> {
    FdIter::load()?.socket_fds()
}

/// The iterator's whole output, decoded as it comes. A `read` that visited a million fds
/// without one socket among them comes back EAGAIN (the kernel bounds the work of one call);
/// the next one goes on from there.
fn read_all(mut iter: fs::File) -> io::Result<Vec<SocketFd>> {
    let mut out = fd_iter::Decoder::default();
    let mut buf = vec![0u8; 1 << 16];
    let mut idle: u32 = 0;
    loop {
        match iter.read(&mut buf) {
            Ok(0) => return Ok(out.finish()),
            Ok(n) => {
                out.feed(buf.get(..n).unwrap_or_default());
                idle = 0;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // Each EAGAIN stands for a million fds looked at: a node never has this many.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && idle < 10_000 => idle += 1,
            Err(e) => return Err(e),
        }
    }
}

/// A file's bytes: mapped when the kernel allows it (the vmlinux BTF can be mapped since
/// Linux 6.16: no copy of its ~5 MB), else read (sysfs hands it out a page per `read`).
enum Blob {
    Mapped(NonNull<libc::c_void>, usize),
    Read(Vec<u8>),
}

impl Blob {
    fn open(path: &str) -> io::Result<Blob> {
        let file = fs::File::open(path)?;
        let len = usize::try_from(file.metadata()?.len()).unwrap_or(0);
        if let Some(nonzero) = NonZeroUsize::new(len) {
            // SAFETY: a private read-only mapping of a file nobody writes to (the kernel's
            // own BTF); the bytes are only read through `Deref`, and unmapped on drop.
            let mapped = unsafe {
                mman::mmap(
                    None,
                    nonzero,
                    ProtFlags::PROT_READ,
                    MapFlags::MAP_PRIVATE,
                    &file,
                    0,
                )
            };
            if let Ok(ptr) = mapped {
                return Ok(Blob::Mapped(ptr, len));
            }
        }
        let mut bytes = Vec::with_capacity(len);
        let mut file = file;
        file.read_to_end(&mut bytes)?;
        Ok(Blob::Read(bytes))
    }
}

impl std::ops::Deref for Blob {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            // SAFETY: `ptr` maps `len` readable bytes until `drop`.
            Blob::Mapped(ptr, len) => unsafe {
                std::slice::from_raw_parts(ptr.as_ptr().cast::<u8>(), *len)
            },
            Blob::Read(bytes) => bytes,
        }
    }
}

impl Drop for Blob {
    fn drop(&mut self) {
        if let Blob::Mapped(ptr, len) = self {
            // SAFETY: unmaps exactly the mapping made in `open`; no slice of it outlives
            // `self`.
            let _ = unsafe { mman::munmap(*ptr, *len) };
        }
    }
}

fn fd_u32(fd: &OwnedFd) -> u32 {
    use std::os::fd::AsRawFd;
    u32::try_from(fd.as_raw_fd()).unwrap_or(u32::MAX)
}

/// `BPF_PROG_LOAD`; when the kernel refuses, loads again with the verifier's log to say why.
fn load(insns: &[u8], attach_btf_id: u32) -> io::Result<OwnedFd> {
    load_as(insns, attach_btf_id, BPF_TRACE_ITER, PROG_NAME, "fd walk")
}

/// `load` for a tracing program of any attach type; `what` names it in the error.
fn load_as(
    insns: &[u8],
    attach_btf_id: u32,
    attach_type: u32,
    name: [u8; 16],
    what: &str,
) -> io::Result<OwnedFd> {
    let count = u32::try_from(insns.len() / 8).unwrap_or(u32::MAX);
    let attr = |log: Option<&mut Vec<u8>>| {
        let mut a = ProgLoad {
            prog_type: BPF_PROG_TYPE_TRACING,
            insn_cnt: count,
            insns: insns.as_ptr() as u64,
            license: LICENSE.as_ptr() as u64,
            prog_name: name,
            expected_attach_type: attach_type,
            attach_btf_id,
            ..ProgLoad::default()
        };
        if let Some(log) = log {
            a.log_level = 1;
            a.log_size = u32::try_from(log.len()).unwrap_or(u32::MAX);
            a.log_buf = log.as_mut_ptr() as u64;
        }
        a
    };
    match bpf(BPF_PROG_LOAD, &mut attr(None)) {
        Ok(fd) => Ok(fd),
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => Err(e),
        Err(e) => {
            let mut log = vec![0u8; 1 << 16];
            let _ = bpf(BPF_PROG_LOAD, &mut attr(Some(&mut log)));
            let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
            let text = String::from_utf8_lossy(log.get(..end).unwrap_or_default());
            // The verifier ends with statistics; the reason is the line before them.
            let reason = text
                .lines()
                .rev()
                .map(str::trim)
                .find(|l| {
                    !l.is_empty()
                        && !l.starts_with("processed ")
                        && !l.starts_with("verification time")
                        && !l.starts_with("stack depth")
                })
                .unwrap_or("");
            Err(io::Error::new(
                e.kind(),
                format!("the kernel refused the {what} program: {e}: {reason}"),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Our own UDP socket is found, under its inode and fd; an `O_PATH` fd of a unix socket's
    /// file (an S_IFSOCK inode, but of the filesystem, not sockfs) is not.
    #[test]
    fn finds_our_own_socket_and_no_socket_file_opened_by_path() {
        // The records carry pids of the initial pid namespace: only there are they ours.
        use std::os::unix::fs::MetadataExt;
        if fs::metadata("/proc/self/ns/pid").map(|m| m.ino()).ok() != Some(0xEFFF_FFFC) {
            eprintln!("skipped: not in the initial pid namespace");
            return;
        }
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let dir = std::env::temp_dir().join(format!("podports-bpf-test-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.sock");
        let _ = fs::remove_file(&path);
        let _bound = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let by_path = nix::fcntl::open(
            &path,
            nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .unwrap();
        let result = socket_fds();
        let _ = fs::remove_dir_all(&dir);
        let fds = match result {
            Ok(f) => f,
            // Not root, or a kernel without BTF: under CI (root, this kernel) that is a failure.
            Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
                panic!("the kernel fd walk failed under CI=true: {e}")
            }
            Err(e) => {
                eprintln!("skipped: {e}");
                return;
            }
        };
        use std::os::fd::AsRawFd;
        let fd = sock.as_raw_fd();
        let link = fs::read_link(format!("/proc/self/fd/{fd}")).unwrap();
        let me = std::process::id() as i32;
        assert!(
            fds.iter().any(|&(ino, pid, f)| pid == me
                && f == fd
                && link.to_str() == Some(&format!("socket:[{ino}]"))),
            "{link:?} not in {} records",
            fds.len()
        );
        let by_path = by_path.as_raw_fd();
        assert!(
            !fds.iter().any(|&(_, pid, f)| pid == me && f == by_path),
            "the O_PATH fd {by_path} was taken for a socket"
        );
    }

    /// SO_COOKIE of a socket (Linux 4.12+), as destroy events name it.
    fn cookie(fd: &impl std::os::fd::AsRawFd) -> u64 {
        let mut c: u64 = 0;
        let mut len = std::mem::size_of::<u64>() as libc::socklen_t;
        // SAFETY: getsockopt writes at most `len` bytes to `c`, a local u64.
        let r = unsafe {
            libc::getsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                57, // SO_COOKIE
                std::ptr::from_mut(&mut c).cast(),
                &mut len,
            )
        };
        assert_eq!(r, 0);
        c
    }

    /// A connection we make is recorded with our pid, our process's comm and our cgroup; the
    /// one we accept is not, nor a socket made before.
    #[test]
    fn records_who_connected_and_when_accepted() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let before = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let creations = match SockCreations::load() {
            Ok(c) => c,
            Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
                panic!("the connection tracing program failed to load under CI=true: {e}")
            }
            Err(e) => {
                eprintln!("skipped: {e}");
                return;
            }
        };
        let t0 = SystemTime::now();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let t1 = SystemTime::now();
        let (rec, at) = creations
            .lookup(cookie(&client))
            .expect("the client is recorded");
        let who = rec;
        assert_eq!(who.tgid, std::process::id() as i32);
        // The process's comm, not this test thread's.
        let comm = fs::read("/proc/self/comm").unwrap();
        assert_eq!(who.comm, comm.strip_suffix(b"\n").unwrap_or(&comm));
        use std::os::unix::fs::MetadataExt;
        let cg = fs::read_to_string("/proc/self/cgroup").unwrap();
        if let Some(path) = cg.lines().find_map(|l| l.strip_prefix("0::"))
            && let Ok(m) = fs::metadata(format!("/sys/fs/cgroup{path}"))
        {
            assert_eq!(who.cgroup_id, m.ino());
        }
        // Within the connect, give or take the clocks' reading apart.
        let slack = Duration::from_millis(50);
        assert!(
            at + slack >= t0 && at <= t1 + slack,
            "{at:?} not in {t0:?}..{t1:?}"
        );
        // Only connects are recorded.
        assert!(creations.lookup(cookie(&server)).is_none());
        assert!(creations.lookup(cookie(&before)).is_none());
    }
}
