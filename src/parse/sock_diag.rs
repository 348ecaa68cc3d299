//! NETLINK_SOCK_DIAG requests and replies as bytes: builds dump requests and turns reply
//! datagrams into `Socket`s. Never opens a socket; `sys::netlink` does the I/O.
//!
//! Every message of a reply is decoded on its own: an odd attribute is ignored, an undecodable
//! message is reported and skipped, and neither loses the other sockets of the batch.

use netlink_packet_core::{
    NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_REQUEST, NLMSG_DONE, NLMSG_ERROR, NLMSG_NOOP, NLMSG_OVERRUN,
    NetlinkBuffer, NetlinkHeader, NetlinkMessage, NlasIterator, Parseable,
};
use netlink_packet_sock_diag::{
    SOCK_DIAG_BY_FAMILY, SockDiagMessage,
    constants::{AF_INET, AF_INET6, AF_UNIX},
    inet::{self, ExtensionFlags, InetRequest, InetResponseHeader, SocketId},
    unix::{self, ShowFlags, UnixRequest, UnixResponseHeader},
};

use crate::model::{Endpoint, Family, Proto, RawText, SockType, Socket, State, UnixName};

/// Length of `struct inet_diag_msg`, after which the attributes start.
const INET_DIAG_MSG_LEN: usize = 72;
/// Length of `struct unix_diag_msg`.
const UNIX_DIAG_MSG_LEN: usize = 16;

// Attribute numbers from include/uapi/linux/inet_diag.h and unix_diag.h.
const INET_DIAG_SKV6ONLY: u16 = 11;
const INET_DIAG_MARK: u16 = 15;
const INET_DIAG_CGROUP_ID: u16 = 21;
const UNIX_DIAG_NAME: u16 = 0;
const UNIX_DIAG_PEER: u16 = 2;
const UNIX_DIAG_RQLEN: u16 = 4;
const UNIX_DIAG_UID: u16 = 7;
/// `UDIAG_SHOW_UID` (Linux 5.3+); the crate's `ShowFlags` predates it.
const UDIAG_SHOW_UID: u32 = 0x40;

/// Every TCP state `ss -a` asks for: 1..=12 (TCP_NEW_SYN_RECV included, it is how pending
/// connections are dumped), without TCP_BOUND_INACTIVE (13), which `ss -a` leaves out too.
pub const ALL_INET_STATES: u32 = 0x1ffe;
/// Only listeners (and, for UDP, unconnected sockets: TCP_CLOSE), as `ss -l`.
pub const LISTENING_STATES: u32 = (1 << 10) | (1 << 7);
/// Every unix state. The crate's `StateFlags::all()` is only ESTABLISHED|LISTEN and would drop
/// unconnected sockets (every bound datagram socket).
pub const ALL_UNIX_STATES: u32 = u32::MAX;

/// Why a reply could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyError {
    /// The kernel answered NLMSG_ERROR (or a DONE carrying an error) with this errno.
    Kernel(i32),
    /// The bytes are not a well-formed netlink reply.
    Malformed(String),
}

impl std::fmt::Display for ReplyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReplyError::Kernel(errno) => write!(
                f,
                "the kernel refused the socket dump: {}",
                std::io::Error::from_raw_os_error(*errno)
            ),
            ReplyError::Malformed(why) => write!(f, "malformed sock_diag reply: {why}"),
        }
    }
}

/// What one received datagram held.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Batch {
    pub sockets: Vec<Socket>,
    /// NLMSG_DONE was seen: the dump is complete.
    pub done: bool,
    /// A message carried NLM_F_DUMP_INTR: the tables changed during the dump; retry it.
    pub interrupted: bool,
    /// Messages that could not be decoded, with the reason; the others were kept.
    pub skipped: Vec<String>,
}

/// A dump request for one inet family and protocol, in the given `TCP_*` state bits.
pub fn inet_request(family: Family, proto: Proto, states: u32, seq: u32) -> Vec<u8> {
    let (af, socket_id) = match family {
        Family::Ipv6 => (AF_INET6, SocketId::new_v6()),
        _ => (AF_INET, SocketId::new_v4()),
    };
    let protocol = match proto {
        Proto::Udp => netlink_packet_sock_diag::constants::IPPROTO_UDP,
        _ => netlink_packet_sock_diag::constants::IPPROTO_TCP,
    };
    let request = InetRequest {
        family: af,
        protocol,
        extensions: ExtensionFlags::empty(),
        states: inet::StateFlags::from_bits_retain(states),
        socket_id,
    };
    serialize(SockDiagMessage::InetRequest(request), seq)
}

/// A dump request for unix sockets in the given state bits, asking for name, peer, queue
/// lengths and owner uid.
pub fn unix_request(states: u32, seq: u32) -> Vec<u8> {
    let show = ShowFlags::NAME | ShowFlags::PEER | ShowFlags::RQLEN;
    let request = UnixRequest {
        state_flags: unix::StateFlags::from_bits_retain(states),
        inode: 0,
        show_flags: ShowFlags::from_bits_retain(show.bits() | UDIAG_SHOW_UID),
        cookie: [0xff; 8],
    };
    serialize(SockDiagMessage::UnixRequest(request), seq)
}

fn serialize(message: SockDiagMessage, seq: u32) -> Vec<u8> {
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    header.sequence_number = seq;
    let mut packet = NetlinkMessage::new(header, message.into());
    packet.finalize();
    let mut buf = vec![0u8; packet.buffer_len()];
    packet.serialize(&mut buf);
    buf
}

/// Decode one received datagram of a dump for `proto`. Messages with another sequence
/// number (a late answer to an abandoned dump) are ignored.
pub fn parse_batch(buf: &[u8], proto: Proto, seq: u32) -> Result<Batch, ReplyError> {
    let mut batch = Batch::default();
    let mut offset = 0usize;
    while offset < buf.len() {
        let rest = buf.get(offset..).unwrap_or_default();
        let msg = NetlinkBuffer::new_checked(rest)
            .map_err(|e| ReplyError::Malformed(format!("message header at byte {offset}: {e}")))?;
        let len = msg.length() as usize;
        // NLMSG_ALIGN: messages start on 4-byte boundaries.
        let step = (len + 3) & !3;
        if msg.flags() & NLM_F_DUMP_INTR != 0 {
            batch.interrupted = true;
        }
        if msg.sequence_number() == seq {
            match msg.message_type() {
                NLMSG_NOOP => {}
                NLMSG_ERROR | NLMSG_DONE => {
                    let code = read_u32(msg.payload()).map(|c| c as i32);
                    match code {
                        // -c overflows for i32::MIN, which is no errno (issue 14).
                        Some(c) if c < 0 => {
                            return Err(match c.checked_neg() {
                                Some(errno) => ReplyError::Kernel(errno),
                                None => ReplyError::Malformed(format!(
                                    "error code {c} in a reply is no errno"
                                )),
                            });
                        }
                        None if msg.message_type() == NLMSG_ERROR => {
                            return Err(ReplyError::Malformed(
                                "NLMSG_ERROR without an error code".into(),
                            ));
                        }
                        // An ERROR with code 0 is an acknowledgement.
                        _ => {}
                    }
                    if msg.message_type() == NLMSG_DONE {
                        batch.done = true;
                        return Ok(batch);
                    }
                }
                NLMSG_OVERRUN => {
                    return Err(ReplyError::Malformed("NLMSG_OVERRUN: data was lost".into()));
                }
                SOCK_DIAG_BY_FAMILY => match parse_socket(msg.payload(), proto) {
                    Ok(socket) => batch.sockets.push(socket),
                    Err(why) => batch.skipped.push(why),
                },
                other => batch
                    .skipped
                    .push(format!("unexpected netlink message type {other}")),
            }
        }
        if step == 0 {
            break;
        }
        offset = offset.saturating_add(step);
    }
    Ok(batch)
}

/// One SOCK_DIAG_BY_FAMILY message payload.
pub fn parse_socket(payload: &[u8], proto: Proto) -> Result<Socket, String> {
    match payload.first().copied() {
        Some(AF_INET) | Some(AF_INET6) => parse_inet(payload, proto),
        Some(AF_UNIX) => parse_unix(payload),
        Some(af) => Err(format!("unknown address family {af}")),
        None => Err("empty sock_diag message".into()),
    }
}

/// Drops sockets a dump returned twice, keeping the first; returns how many were dropped.
///
/// An inet_diag dump that spans several datagrams resumes from a cursor (hash bucket, position
/// in it), so a socket that moves up a chain while connections close between two reads is
/// returned again (issue 14). A socket is the same when its inode is (inodes are unique while
/// the socket lives); inode 0 (TIME_WAIT, request sockets) is the same when state and both
/// ends are.
pub fn dedup(sockets: &mut Vec<Socket>) -> usize {
    use std::collections::HashSet;
    let before = sockets.len();
    let mut inodes: HashSet<u64> = HashSet::with_capacity(sockets.len());
    let mut tuples: HashSet<(State, Endpoint, Endpoint)> = HashSet::new();
    sockets.retain(|s| {
        if s.inode != 0 {
            inodes.insert(s.inode)
        } else {
            tuples.insert((s.state, s.local.clone(), s.remote.clone()))
        }
    });
    before - sockets.len()
}

/// include/net/tcp_states.h: how request sockets are dumped.
const TCP_NEW_SYN_RECV: u8 = 12;

fn parse_inet(payload: &[u8], proto: Proto) -> Result<Socket, String> {
    let header =
        InetResponseHeader::parse(payload).map_err(|e| format!("inet_diag_msg header: {e}"))?;
    let family = if header.family == AF_INET6 {
        Family::Ipv6
    } else {
        Family::Ipv4
    };
    let sock_type = if proto == Proto::Udp {
        SockType::Dgram
    } else {
        SockType::Stream
    };
    let id = &header.socket_id;
    let mut socket = Socket::new(
        proto,
        family,
        sock_type,
        State::from_kernel(header.state),
        Endpoint::Inet {
            addr: id.source_address,
            port: id.source_port,
        },
        Endpoint::Inet {
            addr: id.destination_address,
            port: id.destination_port,
        },
        u64::from(header.inode),
    );
    // TIME_WAIT and request sockets (TCP_NEW_SYN_RECV, 12) carry a literal 0 that the kernel
    // writes for want of an owner (inet_twsk_diag_fill, inet_req_diag_fill): "unknown", never a
    // made-up root (issue 14). A full socket in TCP_SYN_RECV (3) has a real uid.
    let no_owner = socket.state == State::TimeWait || header.state == TCP_NEW_SYN_RECV;
    socket.uid = (!no_owner).then_some(header.uid);
    socket.recv_q = header.recv_queue;
    socket.send_q = header.send_queue;
    socket.cookie = Some(u64::from_ne_bytes(id.cookie));
    for nla in NlasIterator::new(payload.get(INET_DIAG_MSG_LEN..).unwrap_or_default()) {
        // A malformed attribute ends the attribute list, not the socket.
        let Ok(nla) = nla else { break };
        let value = nla.value();
        match nla.kind() {
            INET_DIAG_SKV6ONLY => socket.v6only = value.first().map(|v| *v != 0),
            INET_DIAG_MARK => socket.mark = read_u32(value),
            INET_DIAG_CGROUP_ID => socket.cgroup_id = read_u64(value),
            _ => {}
        }
    }
    if family == Family::Ipv4 {
        socket.v6only = None;
    }
    Ok(socket)
}

fn parse_unix(payload: &[u8]) -> Result<Socket, String> {
    let header =
        UnixResponseHeader::parse(payload).map_err(|e| format!("unix_diag_msg header: {e}"))?;
    let sock_type = SockType::from_kernel(u32::from(header.kind))
        .ok_or_else(|| format!("unknown unix socket type {}", header.kind))?;
    let mut name = UnixName::Unnamed;
    let mut peer = None;
    let mut socket = Socket::new(
        Proto::Unix,
        Family::Unix,
        sock_type,
        State::from_kernel(header.state),
        Endpoint::UnixLocal(UnixName::Unnamed),
        Endpoint::UnixPeer { peer_inode: None },
        u64::from(header.inode),
    );
    for nla in NlasIterator::new(payload.get(UNIX_DIAG_MSG_LEN..).unwrap_or_default()) {
        let Ok(nla) = nla else { break };
        let value = nla.value();
        match nla.kind() {
            UNIX_DIAG_NAME => name = unix_name(value),
            UNIX_DIAG_PEER => peer = read_u32(value).filter(|p| *p != 0).map(u64::from),
            UNIX_DIAG_RQLEN => {
                // Listeners: (pending connections, backlog); others: (rqueue, wqueue).
                if let (Some(r), Some(w)) = (read_u32(value), value.get(4..).and_then(read_u32)) {
                    socket.recv_q = r;
                    socket.send_q = w;
                }
            }
            UNIX_DIAG_UID => socket.uid = read_u32(value),
            _ => {}
        }
    }
    socket.local = Endpoint::UnixLocal(name);
    socket.remote = Endpoint::UnixPeer { peer_inode: peer };
    Ok(socket)
}

/// `sun_path` as the kernel reports it: a leading NUL marks an abstract name (which may hold
/// any bytes, NULs included); a path name may carry a trailing NUL.
fn unix_name(value: &[u8]) -> UnixName {
    match value.split_first() {
        None => UnixName::Unnamed,
        Some((0, rest)) => UnixName::Abstract(RawText::new(rest)),
        Some(_) => {
            let end = value.iter().position(|b| *b == 0).unwrap_or(value.len());
            UnixName::Path(RawText::new(value.get(..end).unwrap_or_default()))
        }
    }
}

fn read_u32(v: &[u8]) -> Option<u32> {
    let b: [u8; 4] = v.get(..4)?.try_into().ok()?;
    Some(u32::from_ne_bytes(b))
}

fn read_u64(v: &[u8]) -> Option<u64> {
    let b: [u8; 8] = v.get(..8)?.try_into().ok()?;
    Some(u64::from_ne_bytes(b))
}

impl std::error::Error for ReplyError {}

#[cfg(test)]
mod tests;
