//! The kernel's socket-destroy events for `--watch`: a NETLINK_SOCK_DIAG socket bound to the
//! destroy multicast groups, opened inside the target's namespace (it stays bound to it; the
//! thread that opened it leaves), and a reader thread that drains it into a bounded queue so
//! the kernel's buffer never fills while podports looks or writes. Bytes go to
//! `parse::sock_events`; this module only reads, counts and hands over.
//!
//! What the kernel requires (net/core/sock_diag.c, Linux 4.5 to 6.18): the sock_diag netlink
//! family is created with NL_CFG_F_NONROOT_RECV and its bind hook checks nothing, so any
//! process in the namespace may join the groups, no capability needed. Entering the namespace
//! is what needs privilege (CAP_SYS_ADMIN for setns). SO_RCVBUFFORCE, a buffer beyond
//! net.core.rmem_max, needs CAP_NET_ADMIN.
#![allow(unsafe_code)] // raw syscalls; each block says why it is sound (SAFETY)

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::SystemTime;

use nix::errno::Errno;
use nix::libc;
use nix::sys::socket::{
    self, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, sockopt,
};
use nix::sys::time::TimeVal;

use crate::model::Socket;
use crate::parse::sock_events::{self, DESTROY_GROUPS};
use crate::sys::netns::{Netns, NsError};

/// The receive buffer asked for: at about 1.2 KiB of kernel memory per queued event, some
/// 25,000 events, over two seconds of 10,000 closes per second, should the reader thread not
/// be scheduled for that long. The kernel doubles what it is given; this is before doubling.
pub const WANTED_BUFFER: usize = 16 << 20;
/// The most events held for the watch loop between two looks (about 250 bytes each): two
/// minutes at 10,000 closes per second behind a stalled terminal. Beyond it, events are
/// dropped and counted, never waited for.
pub const MAX_QUEUED: usize = 1 << 20;
/// How often the reader thread wakes up to see whether it should stop.
const POLL_STOP: TimeVal = TimeVal::new(0, 200_000);
/// `SO_MEMINFO` (Linux 4.12+) and the index of `SK_MEMINFO_DROPS` in what it returns.
const SO_MEMINFO: libc::c_int = 55;
const SK_MEMINFO_DROPS: usize = 8;
const SK_MEMINFO_VARS: usize = 9;

/// How large the receive buffer ended up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Buffer {
    /// What the kernel reports (`SO_RCVBUF`, already doubled).
    pub bytes: usize,
    /// SO_RCVBUFFORCE was allowed (CAP_NET_ADMIN); otherwise net.core.rmem_max capped it.
    pub forced: bool,
}

/// What the feed gathered since it was last drained.
#[derive(Debug, Default)]
pub struct Drained {
    /// Each destroyed socket with the time its event was read (within milliseconds of the
    /// socket's end: the kernel sends it from a workqueue).
    pub destroyed: Vec<(SystemTime, Socket)>,
    /// Events the kernel dropped because the receive buffer was full (ENOBUFS), counted by
    /// the kernel itself (the socket's drop counter).
    pub lost_kernel: u64,
    /// Events dropped because the queue to the watch loop was full (`MAX_QUEUED`).
    pub lost_queue: u64,
    /// Messages that could not be decoded, with the reason.
    pub skipped: Vec<String>,
    /// The reader stopped for good on this error: no more events will come.
    pub failed: Option<String>,
}

/// Why the feed could not be opened.
#[derive(Debug)]
pub enum FeedError {
    /// The namespace could not be entered.
    Enter(NsError),
    /// The socket could not be made or bound.
    Socket(String),
}

impl std::fmt::Display for FeedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FeedError::Enter(NsError::Denied(p, e)) => {
                write!(f, "cannot enter {} (setns: {})", p.display(), e.desc())
            }
            FeedError::Enter(e) => write!(f, "{e}"),
            FeedError::Socket(why) => f.write_str(why),
        }
    }
}

#[derive(Default)]
struct Queue {
    destroyed: VecDeque<(SystemTime, Socket)>,
    lost_queue: u64,
    skipped: Vec<String>,
    failed: Option<String>,
}

/// An open feed of destroy events, read by its own thread until dropped.
pub struct DestroyFeed {
    fd: Arc<OwnedFd>,
    queue: Arc<Mutex<Queue>>,
    stop: Arc<AtomicBool>,
    reader: Option<JoinHandle<()>>,
    /// The kernel's drop counter when last drained.
    drops_seen: u64,
    pub buffer: Buffer,
}

impl DestroyFeed {
    /// Joins the four destroy groups inside `ns` and starts the reader thread.
    pub fn open(ns: &Netns) -> Result<DestroyFeed, FeedError> {
        DestroyFeed::open_sized(ns, WANTED_BUFFER)
    }

    /// `open` with a receive buffer of `bytes` (before the kernel doubles it): a small one
    /// overflows under a burst, which is how the loss count is tested.
    pub fn open_sized(ns: &Netns, bytes: usize) -> Result<DestroyFeed, FeedError> {
        let fd = ns
            .run_in(subscribe)
            .map_err(FeedError::Enter)?
            .map_err(FeedError::Socket)?;
        let buffer = size_buffer(&fd, bytes);
        let fd = Arc::new(fd);
        let queue = Arc::new(Mutex::new(Queue::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let reader = {
            let (fd, queue, stop) = (fd.clone(), queue.clone(), stop.clone());
            std::thread::Builder::new()
                .name("destroy-events".into())
                .spawn(move || read_loop(&fd, &queue, &stop))
                .map_err(|e| FeedError::Socket(format!("starting the reader thread: {e}")))?
        };
        let drops_seen = drops(&fd).unwrap_or(0);
        Ok(DestroyFeed {
            fd,
            queue,
            stop,
            reader: Some(reader),
            drops_seen,
            buffer,
        })
    }

    /// Everything gathered since the last call. Never waits for the reader beyond the moment
    /// it takes to swap the queue out.
    pub fn drain(&mut self) -> Drained {
        let mut q = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        let destroyed = std::mem::take(&mut q.destroyed).into();
        let lost_queue = std::mem::take(&mut q.lost_queue);
        let skipped = std::mem::take(&mut q.skipped);
        let failed = q.failed.clone();
        drop(q);
        let now = drops(&self.fd).unwrap_or(self.drops_seen);
        let lost_kernel = now.saturating_sub(self.drops_seen);
        self.drops_seen = now;
        Drained {
            destroyed,
            lost_kernel,
            lost_queue,
            skipped,
            failed,
        }
    }
}

impl Drop for DestroyFeed {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.reader.take() {
            let _ = t.join();
        }
    }
}

/// A NETLINK_SOCK_DIAG socket in the calling thread's namespace, joined to the destroy
/// groups, with a receive timeout so that the reader can be stopped.
fn subscribe() -> Result<OwnedFd, String> {
    let fd = socket::socket(
        AddressFamily::Netlink,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkSockDiag,
    )
    .map_err(|e| format!("opening a NETLINK_SOCK_DIAG socket: {}", e.desc()))?;
    socket::bind(fd.as_raw_fd(), &NetlinkAddr::new(0, DESTROY_GROUPS))
        .map_err(|e| format!("joining the sock_diag destroy groups: {}", e.desc()))?;
    socket::setsockopt(&fd, sockopt::ReceiveTimeout, &POLL_STOP)
        .map_err(|e| format!("SO_RCVTIMEO: {}", e.desc()))?;
    Ok(fd)
}

/// SO_RCVBUFFORCE when permitted, else SO_RCVBUF (capped by net.core.rmem_max).
fn size_buffer(fd: &OwnedFd, wanted: usize) -> Buffer {
    let forced = socket::setsockopt(fd, sockopt::RcvBufForce, &wanted).is_ok();
    if !forced {
        let _ = socket::setsockopt(fd, sockopt::RcvBuf, &wanted);
    }
    let bytes = socket::getsockopt(fd, sockopt::RcvBuf).unwrap_or(0);
    Buffer { bytes, forced }
}

/// The socket's drop counter (`SK_MEMINFO_DROPS`): every multicast message the kernel could
/// not queue for us (netlink_overrun counts each one).
fn drops(fd: &OwnedFd) -> Option<u64> {
    let mut info = [0u32; SK_MEMINFO_VARS];
    let mut len = std::mem::size_of_val(&info) as libc::socklen_t;
    // SAFETY: `info` is a writable buffer of `len` bytes, and the kernel writes at most `len`.
    let r = unsafe {
        libc::getsockopt(
            fd.as_fd().as_raw_fd(),
            libc::SOL_SOCKET,
            SO_MEMINFO,
            info.as_mut_ptr().cast(),
            &mut len,
        )
    };
    (r == 0).then(|| info.get(SK_MEMINFO_DROPS).copied().map(u64::from))?
}

/// Reads datagrams until told to stop or the socket fails; parses them and queues the sockets.
fn read_loop(fd: &OwnedFd, queue: &Mutex<Queue>, stop: &AtomicBool) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut batch: Vec<(SystemTime, Socket)> = Vec::new();
    let mut skipped: Vec<String> = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        // Read what is there without blocking, then hand it over in one lock; block only
        // when the socket is empty.
        let flags = if batch.is_empty() {
            MsgFlags::empty()
        } else {
            MsgFlags::MSG_DONTWAIT
        };
        match socket::recv(fd.as_raw_fd(), &mut buf, flags) {
            Ok(n) => {
                let at = SystemTime::now();
                let got = sock_events::parse(buf.get(..n).unwrap_or_default());
                batch.extend(got.destroyed.into_iter().map(|s| (at, s)));
                skipped.extend(got.skipped);
                if batch.len() < 256 {
                    continue;
                }
            }
            // Overflow: the kernel counted what it dropped (see `drops`); go on reading.
            Err(Errno::ENOBUFS) | Err(Errno::EINTR) => continue,
            Err(Errno::EAGAIN) => {}
            Err(e) => {
                let mut q = queue.lock().unwrap_or_else(PoisonError::into_inner);
                q.failed = Some(format!("reading destroy events: {}", io::Error::from(e)));
                return;
            }
        }
        if batch.is_empty() && skipped.is_empty() {
            continue;
        }
        let mut q = queue.lock().unwrap_or_else(PoisonError::into_inner);
        let room = MAX_QUEUED.saturating_sub(q.destroyed.len());
        if batch.len() > room {
            q.lost_queue += (batch.len() - room) as u64;
            batch.truncate(room);
        }
        q.destroyed.extend(batch.drain(..));
        // A reason per bad message would grow without bound under a flood: keep a few.
        let keep = 16usize.saturating_sub(q.skipped.len());
        q.skipped.extend(skipped.drain(..).take(keep));
        skipped.clear();
    }
}
