//! Socket-destroy events as bytes: the datagrams the kernel multicasts to the sock_diag destroy
//! groups (`SKNLGRP_INET{,6}_{TCP,UDP}_DESTROY`), turned into `Socket`s by the dump's own
//! message parser. Never opens a socket; `sys::sockevents` does the I/O.
//!
//! A destroy message is an `inet_diag_msg` like a dump's, but filled at destruction
//! (`inet_diag_handler_get_info`): the 4-tuple and the cookie, no inode, no uid, no cgroup id,
//! and TCP sockets always in TCP_CLOSE (fixtures/sock_diag/destroy.txt).

use netlink_packet_core::{NLMSG_DONE, NLMSG_ERROR, NLMSG_NOOP, NetlinkBuffer, NlasIterator};
use netlink_packet_sock_diag::SOCK_DIAG_BY_FAMILY;

use crate::model::{Proto, Socket};
use crate::parse::sock_diag;

/// The four destroy groups as a bind mask: groups 1..=4, bit `group - 1`.
pub const DESTROY_GROUPS: u32 = 0b1111;

/// Length of `struct inet_diag_msg`, after which the attributes start.
const INET_DIAG_MSG_LEN: usize = 72;
/// `INET_DIAG_PROTOCOL`: the socket's IPPROTO_*, which tells a TCP message from a UDP one.
const INET_DIAG_PROTOCOL: u16 = 10;
const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;
const IPPROTO_UDPLITE: u8 = 136;

/// What one received datagram held.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Received {
    /// The destroyed sockets, in the order of their messages; each has its `cookie`.
    pub destroyed: Vec<Socket>,
    /// Messages that could not be used, with the reason; the others were kept.
    pub skipped: Vec<String>,
}

/// Decodes one datagram of destroy events (the kernel sends one message per datagram; more
/// are read all the same). Never fails as a whole: a bad message is skipped with its reason.
pub fn parse(buf: &[u8]) -> Received {
    let mut out = Received::default();
    let mut offset = 0usize;
    while offset < buf.len() {
        let rest = buf.get(offset..).unwrap_or_default();
        let msg = match NetlinkBuffer::new_checked(rest) {
            Ok(m) => m,
            Err(e) => {
                out.skipped
                    .push(format!("message header at byte {offset}: {e}"));
                break;
            }
        };
        let len = msg.length() as usize;
        match msg.message_type() {
            SOCK_DIAG_BY_FAMILY => match destroyed(msg.payload()) {
                Ok(s) => out.destroyed.push(s),
                Err(why) => out.skipped.push(why),
            },
            NLMSG_NOOP | NLMSG_DONE => {}
            NLMSG_ERROR => out
                .skipped
                .push("an NLMSG_ERROR among destroy events".to_string()),
            other => out
                .skipped
                .push(format!("unexpected netlink message type {other}")),
        }
        let step = (len + 3) & !3;
        if step == 0 {
            break;
        }
        offset = offset.saturating_add(step);
    }
    out
}

/// One destroy message: its protocol from INET_DIAG_PROTOCOL, then the dump's parser.
fn destroyed(payload: &[u8]) -> Result<Socket, String> {
    let protocol = NlasIterator::new(payload.get(INET_DIAG_MSG_LEN..).unwrap_or_default())
        .map_while(Result::ok)
        .find(|nla| nla.kind() == INET_DIAG_PROTOCOL)
        .and_then(|nla| nla.value().first().copied());
    let proto = match protocol {
        Some(IPPROTO_TCP) => Proto::Tcp,
        Some(IPPROTO_UDP) | Some(IPPROTO_UDPLITE) => Proto::Udp,
        Some(p) => return Err(format!("destroy event of IP protocol {p}, not TCP or UDP")),
        None => return Err("destroy event without INET_DIAG_PROTOCOL".to_string()),
    };
    let socket = sock_diag::parse_socket(payload, proto)?;
    if socket.cookie.is_none() {
        return Err("destroy event of a non-inet socket".to_string());
    }
    Ok(socket)
}

#[cfg(test)]
mod tests {
    //! On destroy events captured from Linux 6.18 (fixtures/sock_diag/destroy.txt says which
    //! sockets closed, in order).

    use std::net::IpAddr;

    use super::*;
    use crate::model::{Endpoint, Family, State};

    const DESTROY: &[u8] = include_bytes!("../../fixtures/sock_diag/destroy.bin");

    fn inet(addr: &str, port: u16) -> Endpoint {
        Endpoint::Inet {
            addr: addr.parse::<IpAddr>().unwrap(),
            port,
        }
    }

    #[test]
    fn every_captured_event_is_read_with_its_protocol_tuple_and_cookie() {
        let r = parse(DESTROY);
        assert!(r.skipped.is_empty(), "{:?}", r.skipped);
        let got: Vec<(Proto, Family, State, Endpoint, Endpoint)> = r
            .destroyed
            .iter()
            .map(|s| {
                (
                    s.proto,
                    s.family,
                    s.state,
                    s.local.clone(),
                    s.remote.clone(),
                )
            })
            .collect();
        use Family::{Ipv4, Ipv6};
        use Proto::{Tcp, Udp};
        let closed = State::Unconn; // TCP_CLOSE
        assert_eq!(
            got,
            vec![
                (
                    Tcp,
                    Ipv4,
                    closed,
                    inet("127.0.0.1", 40001),
                    inet("127.0.0.1", 15006)
                ),
                (
                    Tcp,
                    Ipv4,
                    closed,
                    inet("127.0.0.1", 15006),
                    inet("127.0.0.1", 40001)
                ),
                // Refused: the kernel cleared the remote port.
                (
                    Tcp,
                    Ipv4,
                    closed,
                    inet("127.0.0.1", 40002),
                    inet("127.0.0.1", 0)
                ),
                (
                    Udp,
                    Ipv4,
                    closed,
                    inet("127.0.0.1", 15053),
                    inet("0.0.0.0", 0)
                ),
                (Tcp, Ipv6, closed, inet("::1", 15001), inet("::1", 40003)),
                (Tcp, Ipv6, closed, inet("::1", 40003), inet("::1", 15001)),
                (
                    Udp,
                    Ipv6,
                    State::Established,
                    inet("::1", 39740),
                    inet("::1", 53)
                ),
                (
                    Tcp,
                    Ipv4,
                    closed,
                    inet("127.0.0.1", 15006),
                    inet("0.0.0.0", 0)
                ),
                (Tcp, Ipv6, closed, inet("::1", 15001), inet("::", 0)),
            ]
        );
        let cookies: Vec<u64> = r.destroyed.iter().map(|s| s.cookie.unwrap()).collect();
        assert_eq!(cookies, (50..59).collect::<Vec<u64>>());
        // Nothing of an owner: no inode, no cgroup id.
        assert!(
            r.destroyed
                .iter()
                .all(|s| s.inode == 0 && s.cgroup_id.is_none())
        );
    }

    #[test]
    fn a_bad_message_is_skipped_and_the_next_one_kept() {
        let first_len = u32::from_ne_bytes(DESTROY[..4].try_into().unwrap()) as usize;
        let mut bad = DESTROY[..first_len].to_vec();
        // INET_DIAG_PROTOCOL (the first attribute, at 16 + 72) says ICMP.
        assert_eq!(bad[16 + 72 + 2], INET_DIAG_PROTOCOL as u8);
        bad[16 + 72 + 4] = 1;
        let second_len = u32::from_ne_bytes(DESTROY[first_len..first_len + 4].try_into().unwrap());
        let both = [
            &bad[..],
            &DESTROY[first_len..first_len + second_len as usize],
        ]
        .concat();
        let r = parse(&both);
        assert_eq!(r.destroyed.len(), 1);
        assert_eq!(r.destroyed[0].cookie, Some(51));
        assert_eq!(r.skipped.len(), 1, "{:?}", r.skipped);
        assert!(r.skipped[0].contains("IP protocol 1"));
    }

    #[test]
    fn truncated_or_garbage_input_never_panics() {
        for n in 0..DESTROY.len().min(400) {
            let r = parse(&DESTROY[..n]);
            assert!(r.destroyed.len() <= 1);
        }
        let r = parse(&[0xff; 64]);
        assert!(r.destroyed.is_empty());
        assert!(parse(&[]).destroyed.is_empty());
    }
}
