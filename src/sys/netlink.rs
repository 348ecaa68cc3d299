//! Socket dumps over NETLINK_SOCK_DIAG, in whatever network namespace the calling thread is in
//! when `SockDiag::open` runs (a netlink socket stays bound to the namespace it was made in).
//! Bytes go to `parse::sock_diag`; nothing here interprets them.

use std::io;

use netlink_sys::{Socket as NlSocket, SocketAddr, protocols::NETLINK_SOCK_DIAG};
use nix::libc;

use crate::model::{Family, Proto, Socket};
use crate::parse::sock_diag::{self, ReplyError};

/// How many times a dump interrupted by NLM_F_DUMP_INTR is started again before we give up.
const MAX_ATTEMPTS: usize = 5;
/// The kernel fills dump datagrams up to about 32 KiB; start above that.
const INITIAL_BUFFER: usize = 64 * 1024;

/// An open sock_diag socket.
pub struct SockDiag {
    socket: NlSocket,
    seq: u32,
    buf: Vec<u8>,
}

/// The result of one dump: the sockets, plus what went wrong without stopping it.
#[derive(Debug, Default)]
pub struct Dump {
    pub sockets: Vec<Socket>,
    pub warnings: Vec<String>,
}

/// Why a dump failed.
#[derive(Debug)]
pub enum DumpError {
    Io(io::Error),
    Reply(ReplyError),
}

impl std::fmt::Display for DumpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DumpError::Io(e) => write!(f, "netlink sock_diag: {e}"),
            DumpError::Reply(e) => write!(f, "{e}"),
        }
    }
}

impl SockDiag {
    /// Open a NETLINK_SOCK_DIAG socket in the calling thread's network namespace.
    pub fn open() -> io::Result<SockDiag> {
        let mut socket = NlSocket::new(NETLINK_SOCK_DIAG)?;
        socket.bind_auto()?;
        socket.connect(&SocketAddr::new(0, 0))?;
        Ok(SockDiag {
            socket,
            seq: 0,
            buf: vec![0u8; INITIAL_BUFFER],
        })
    }

    /// Dump TCP or UDP sockets of one family in the given `TCP_*` state bits.
    pub fn dump_inet(
        &mut self,
        family: Family,
        proto: Proto,
        states: u32,
    ) -> Result<Dump, DumpError> {
        self.dump(proto, |seq| {
            sock_diag::inet_request(family, proto, states, seq)
        })
    }

    /// Dump unix sockets in the given state bits.
    pub fn dump_unix(&mut self, states: u32) -> Result<Dump, DumpError> {
        self.dump(Proto::Unix, |seq| sock_diag::unix_request(states, seq))
    }

    fn dump(&mut self, proto: Proto, request: impl Fn(u32) -> Vec<u8>) -> Result<Dump, DumpError> {
        let mut last_reason = String::new();
        for _ in 0..MAX_ATTEMPTS {
            self.seq = self.seq.wrapping_add(1);
            let seq = self.seq;
            match self.dump_once(proto, &request(seq), seq)? {
                Attempt::Complete(dump) => return Ok(dump),
                Attempt::Retry(reason) => last_reason = reason,
            }
        }
        Err(DumpError::Reply(ReplyError::Malformed(format!(
            "{} dump did not complete after {MAX_ATTEMPTS} attempts: {last_reason}",
            proto
        ))))
    }

    fn dump_once(&mut self, proto: Proto, request: &[u8], seq: u32) -> Result<Attempt, DumpError> {
        self.socket.send(request, 0).map_err(DumpError::Io)?;
        let mut dump = Dump::default();
        let mut interrupted = false;
        loop {
            // Peek at the datagram's real length (MSG_TRUNC) so that no reply is ever cut:
            // grow the buffer first when it would not fit.
            let size = self.recv(libc::MSG_PEEK | libc::MSG_TRUNC, 0)?;
            if size > self.buf.len() {
                self.buf.resize(size.next_power_of_two(), 0);
            }
            let received = self.recv(0, self.buf.len())?;
            let bytes = self.buf.get(..received).unwrap_or_default();
            let batch = sock_diag::parse_batch(bytes, proto, seq).map_err(DumpError::Reply)?;
            interrupted |= batch.interrupted;
            dump.sockets.extend(batch.sockets);
            for why in batch.skipped {
                dump.warnings
                    .push(format!("skipped one {proto} socket: {why}"));
            }
            if batch.done {
                break;
            }
            if received == 0 {
                return Err(DumpError::Reply(ReplyError::Malformed(
                    "the kernel closed the dump without NLMSG_DONE".into(),
                )));
            }
        }
        if interrupted {
            return Ok(Attempt::Retry(
                "the socket table changed during the dump (NLM_F_DUMP_INTR)".into(),
            ));
        }
        Ok(Attempt::Complete(dump))
    }

    /// One `recv` into the first `len` bytes of the buffer, retried on EINTR.
    fn recv(&mut self, flags: libc::c_int, len: usize) -> Result<usize, DumpError> {
        loop {
            let buf = self.buf.get_mut(..len).unwrap_or_default();
            match self.socket.recv(&mut &mut buf[..], flags) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(DumpError::Io(e)),
            }
        }
    }
}

enum Attempt {
    Complete(Dump),
    Retry(String),
}
