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
/// `1 << TCP_CLOSE`: how unconnected UDP sockets are asked for.
const TCPF_CLOSE: u32 = 1 << 7;
/// The kernel fills dump datagrams up to about 32 KiB; start above that.
const INITIAL_BUFFER: usize = 64 * 1024;

/// Datagram I/O with the kernel: the one seam between the dump loop and the syscalls, so the
/// loop's retries and buffer growth are tested on scripted replies.
pub trait Transport {
    fn send(&mut self, request: &[u8]) -> io::Result<()>;
    /// Receive one datagram into `buf` (or, with `peek`, leave it queued); returns its real
    /// length even when that exceeds `buf` (MSG_TRUNC semantics).
    fn recv(&mut self, buf: &mut [u8], peek: bool) -> io::Result<usize>;
}

impl Transport for NlSocket {
    fn send(&mut self, request: &[u8]) -> io::Result<()> {
        NlSocket::send(self, request, 0).map(|_| ())
    }

    fn recv(&mut self, buf: &mut [u8], peek: bool) -> io::Result<usize> {
        let flags = if peek {
            libc::MSG_PEEK | libc::MSG_TRUNC
        } else {
            libc::MSG_TRUNC
        };
        loop {
            match NlSocket::recv(self, &mut &mut buf[..], flags) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => return other,
            }
        }
    }
}

/// An open sock_diag socket (or, in tests, a scripted transport).
pub struct SockDiag<T: Transport = NlSocket> {
    socket: T,
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

impl SockDiag<NlSocket> {
    /// Open a NETLINK_SOCK_DIAG socket in the calling thread's network namespace.
    pub fn open() -> io::Result<SockDiag> {
        let mut socket = NlSocket::new(NETLINK_SOCK_DIAG)?;
        socket.bind_auto()?;
        socket.connect(&SocketAddr::new(0, 0))?;
        Ok(SockDiag::with_transport(socket))
    }
}

impl<T: Transport> SockDiag<T> {
    /// A dumper over any transport.
    pub fn with_transport(socket: T) -> SockDiag<T> {
        SockDiag {
            socket,
            seq: 0,
            buf: vec![0u8; INITIAL_BUFFER],
        }
    }

    /// Dump TCP or UDP sockets of one family in the given `TCP_*` state bits.
    ///
    /// For TCP the TCP_CLOSE bit is dropped: a closed TCP socket is in none of the tables the
    /// kernel dumps, so it is never reported, but asking for any state beyond LISTEN makes it
    /// walk the whole established hash (`inet_diag_dump_icsk`). With it, `-l` in a namespace
    /// of 40k connections cost as much as listing them all (issue 5).
    pub fn dump_inet(
        &mut self,
        family: Family,
        proto: Proto,
        states: u32,
    ) -> Result<Dump, DumpError> {
        let states = match proto {
            Proto::Tcp => states & !TCPF_CLOSE,
            _ => states,
        };
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
        self.socket.send(request).map_err(DumpError::Io)?;
        let mut dump = Dump::default();
        let mut interrupted = false;
        loop {
            // Peek at the datagram's real length (MSG_TRUNC) so that no reply is ever cut:
            // grow the buffer first when it would not fit.
            let size = self.recv(true, 0)?;
            if size > self.buf.len() {
                self.buf.resize(size.next_power_of_two(), 0);
            }
            let received = self.recv(false, self.buf.len())?;
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
        sock_diag::dedup(&mut dump.sockets);
        if interrupted {
            return Ok(Attempt::Retry(
                "the socket table changed during the dump (NLM_F_DUMP_INTR)".into(),
            ));
        }
        Ok(Attempt::Complete(dump))
    }

    /// One `recv` into the first `len` bytes of the buffer.
    fn recv(&mut self, peek: bool, len: usize) -> Result<usize, DumpError> {
        let buf = self.buf.get_mut(..len).unwrap_or_default();
        self.socket.recv(buf, peek).map_err(DumpError::Io)
    }
}

enum Attempt {
    Complete(Dump),
    Retry(String),
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use netlink_packet_core::{NLM_F_DUMP_INTR, NLMSG_DONE};
    use netlink_packet_sock_diag::SOCK_DIAG_BY_FAMILY;

    use super::*;

    /// Replies to each request with the next scripted dump (a list of datagrams), stamping
    /// the request's sequence number into every message.
    struct Script {
        dumps: VecDeque<Vec<Vec<u8>>>,
        queue: VecDeque<Vec<u8>>,
        requests: usize,
    }

    impl Script {
        fn new(dumps: Vec<Vec<Vec<u8>>>) -> Script {
            Script {
                dumps: dumps.into(),
                queue: VecDeque::new(),
                requests: 0,
            }
        }
    }

    impl Transport for Script {
        fn send(&mut self, request: &[u8]) -> io::Result<()> {
            self.requests += 1;
            let seq = u32::from_ne_bytes(request[8..12].try_into().unwrap());
            let dump = self.dumps.pop_front().expect("a scripted reply");
            for mut datagram in dump {
                let mut off = 0;
                while off < datagram.len() {
                    let len = u32::from_ne_bytes(datagram[off..off + 4].try_into().unwrap());
                    datagram[off + 8..off + 12].copy_from_slice(&seq.to_ne_bytes());
                    off += (len as usize + 3) & !3;
                }
                self.queue.push_back(datagram);
            }
            Ok(())
        }

        fn recv(&mut self, buf: &mut [u8], peek: bool) -> io::Result<usize> {
            let front = self.queue.front().expect("a queued datagram");
            let n = front.len().min(buf.len());
            buf[..n].copy_from_slice(&front[..n]);
            let len = front.len();
            if !peek {
                self.queue.pop_front();
            }
            Ok(len)
        }
    }

    fn message(kind: u16, flags: u16, payload: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&((16 + payload.len()) as u32).to_ne_bytes());
        m.extend_from_slice(&kind.to_ne_bytes());
        m.extend_from_slice(&flags.to_ne_bytes());
        m.extend_from_slice(&[0; 8]);
        m.extend_from_slice(payload);
        while m.len() % 4 != 0 {
            m.push(0);
        }
        m
    }

    /// A unix_diag_msg for a listener with this inode, padded with `pad` bytes of attribute.
    fn unix_socket(inode: u32, flags: u16, pad: usize) -> Vec<u8> {
        let mut p = vec![1, 1, 10, 0];
        p.extend_from_slice(&inode.to_ne_bytes());
        p.extend_from_slice(&[0; 8]);
        if pad > 0 {
            // An attribute of a kind podports ignores, to make the message large.
            p.extend_from_slice(&((4 + pad) as u16).to_ne_bytes());
            p.extend_from_slice(&99u16.to_ne_bytes());
            p.extend(std::iter::repeat_n(0u8, pad));
        }
        message(SOCK_DIAG_BY_FAMILY, flags, &p)
    }

    fn done() -> Vec<u8> {
        message(NLMSG_DONE, 2, &[0, 0, 0, 0])
    }

    fn inodes(d: &Dump) -> Vec<u64> {
        d.sockets.iter().map(|s| s.inode).collect()
    }

    #[test]
    fn a_multipart_dump_is_read_to_its_end() {
        let mut d = SockDiag::with_transport(Script::new(vec![vec![
            [unix_socket(1, 2, 0), unix_socket(2, 2, 0)].concat(),
            unix_socket(3, 2, 0),
            done(),
        ]]));
        let dump = d.dump_unix(u32::MAX).unwrap();
        assert_eq!(inodes(&dump), vec![1, 2, 3]);
    }

    #[test]
    fn a_socket_returned_twice_by_a_resumed_dump_is_kept_once() {
        // Datagram 2 repeats inode 2, as a dump resumed from its cursor does when a socket
        // moved up its hash chain between two reads.
        let mut d = SockDiag::with_transport(Script::new(vec![vec![
            [unix_socket(1, 2, 0), unix_socket(2, 2, 0)].concat(),
            [unix_socket(2, 2, 0), unix_socket(3, 2, 0)].concat(),
            done(),
        ]]));
        let dump = d.dump_unix(u32::MAX).unwrap();
        assert_eq!(inodes(&dump), vec![1, 2, 3]);
    }

    #[test]
    fn an_interrupted_dump_is_retried_and_the_clean_one_kept() {
        let intr = 2 | NLM_F_DUMP_INTR;
        let mut d = SockDiag::with_transport(Script::new(vec![
            vec![[unix_socket(1, intr, 0), done()].concat()],
            vec![[unix_socket(1, 2, 0), unix_socket(2, 2, 0), done()].concat()],
        ]));
        let dump = d.dump_unix(u32::MAX).unwrap();
        assert_eq!(inodes(&dump), vec![1, 2]);
        assert_eq!(d.socket.requests, 2);
    }

    #[test]
    fn a_dump_that_never_settles_is_an_error_not_a_partial_list() {
        let intr = 2 | NLM_F_DUMP_INTR;
        let dumps = (0..MAX_ATTEMPTS)
            .map(|_| vec![[unix_socket(1, intr, 0), done()].concat()])
            .collect();
        let mut d = SockDiag::with_transport(Script::new(dumps));
        let err = d.dump_unix(u32::MAX).unwrap_err();
        assert!(err.to_string().contains("NLM_F_DUMP_INTR"), "{err}");
    }

    #[test]
    fn a_datagram_larger_than_the_buffer_grows_it_instead_of_being_cut() {
        let big = unix_socket(7, 2, 100_000);
        let mut d = SockDiag::with_transport(Script::new(vec![vec![big, done()]]));
        let dump = d.dump_unix(u32::MAX).unwrap();
        assert_eq!(inodes(&dump), vec![7]);
        assert!(d.buf.len() >= 100_000);
    }

    #[test]
    fn a_kernel_error_is_reported_with_its_errno() {
        let eperm = message(
            netlink_packet_core::NLMSG_ERROR,
            0,
            &(-(libc::EPERM)).to_ne_bytes(),
        );
        let mut d = SockDiag::with_transport(Script::new(vec![vec![eperm]]));
        let err = d.dump_inet(Family::Ipv4, Proto::Tcp, u32::MAX).unwrap_err();
        assert!(matches!(err, DumpError::Reply(ReplyError::Kernel(e)) if e == libc::EPERM));
    }
}
