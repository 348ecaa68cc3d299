//! Replies captured from Linux 6.18 (see fixtures/sock_diag/README.md for the sockets that
//! were open and `ss-tuanpxe.txt` for what ss said of them at the same moment).

use super::*;
use std::net::IpAddr;

const TCP4: &[u8] = include_bytes!("../../../fixtures/sock_diag/tcp4.bin");
const TCP6: &[u8] = include_bytes!("../../../fixtures/sock_diag/tcp6.bin");
const UDP4: &[u8] = include_bytes!("../../../fixtures/sock_diag/udp4.bin");
const UDP6: &[u8] = include_bytes!("../../../fixtures/sock_diag/udp6.bin");
const UNIX: &[u8] = include_bytes!("../../../fixtures/sock_diag/unix.bin");
/// The sequence numbers the capture used, in dump order.
const SEQ_TCP4: u32 = 1;
const SEQ_TCP6: u32 = 2;
const SEQ_UDP4: u32 = 3;
const SEQ_UDP6: u32 = 4;
const SEQ_UNIX: u32 = 5;

fn inet(addr: &str, port: u16) -> Endpoint {
    Endpoint::Inet {
        addr: addr.parse::<IpAddr>().unwrap(),
        port,
    }
}

fn find<'a>(sockets: &'a [Socket], local: &Endpoint, state: State) -> Vec<&'a Socket> {
    sockets
        .iter()
        .filter(|s| &s.local == local && s.state == state)
        .collect()
}

#[test]
fn tcp4_dump_has_every_socket_ss_showed() {
    let b = parse_batch(TCP4, Proto::Tcp, SEQ_TCP4).unwrap();
    assert!(b.done && !b.interrupted && b.skipped.is_empty());
    assert_eq!(b.sockets.len(), 6);
    let admin = find(&b.sockets, &inet("127.0.0.1", 15000), State::Listen);
    assert_eq!(admin.len(), 1);
    assert_eq!(admin[0].inode, 17373);
    assert_eq!((admin[0].recv_q, admin[0].send_q), (0, 128));
    assert_eq!(admin[0].remote, inet("0.0.0.0", 0));
    assert_eq!(admin[0].uid, Some(0));
    // Two SO_REUSEPORT listeners on one address stay two sockets.
    let outbound = find(&b.sockets, &inet("0.0.0.0", 15001), State::Listen);
    let mut inodes: Vec<u64> = outbound.iter().map(|s| s.inode).collect();
    inodes.sort();
    assert_eq!(inodes, vec![17374, 17375]);
    let tw = find(&b.sockets, &inet("127.0.0.1", 45510), State::TimeWait);
    assert_eq!(tw.len(), 1);
    assert_eq!(tw[0].inode, 0);
    assert_eq!(tw[0].remote, inet("127.0.0.1", 9080));
    let est = find(&b.sockets, &inet("127.0.0.1", 60278), State::Established);
    assert_eq!(est[0].remote, inet("127.0.0.1", 15021));
    assert!(
        b.sockets
            .iter()
            .all(|s| s.family == Family::Ipv4 && s.v6only.is_none())
    );
}

#[test]
fn tcp6_dump_keeps_v6only_mark_and_mapped_addresses() {
    let b = parse_batch(TCP6, Proto::Tcp, SEQ_TCP6).unwrap();
    assert!(b.done);
    assert_eq!(b.sockets.len(), 3);
    let inbound = find(&b.sockets, &inet("::", 15006), State::Listen)[0];
    assert_eq!(inbound.v6only, Some(true));
    assert_eq!(inbound.mark, Some(1337));
    assert_eq!(inbound.cgroup_id, Some(1));
    let ready = find(&b.sockets, &inet("::", 15021), State::Listen)[0];
    assert_eq!(ready.v6only, Some(false));
    assert_eq!(
        ready.send_q, 4096,
        "the backlog of a listener is its send_q"
    );
    let mapped = find(
        &b.sockets,
        &inet("::ffff:127.0.0.1", 15021),
        State::Established,
    )[0];
    assert_eq!(mapped.recv_q, 100);
    assert_eq!(mapped.remote, inet("::ffff:127.0.0.1", 60278));
}

#[test]
fn udp_dumps_show_unconnected_and_connected_sockets() {
    let b4 = parse_batch(UDP4, Proto::Udp, SEQ_UDP4).unwrap();
    assert_eq!(b4.sockets.len(), 2);
    assert!(
        b4.sockets
            .iter()
            .all(|s| s.proto == Proto::Udp && s.sock_type == SockType::Dgram)
    );
    assert_eq!(
        find(&b4.sockets, &inet("127.0.0.1", 15053), State::Unconn)[0].inode,
        17383
    );
    let connected = &b4
        .sockets
        .iter()
        .find(|s| s.state == State::Established)
        .unwrap();
    assert_eq!(connected.remote, inet("127.0.0.1", 15053));
    let b6 = parse_batch(UDP6, Proto::Udp, SEQ_UDP6).unwrap();
    assert_eq!(b6.sockets.len(), 1);
    assert_eq!(b6.sockets[0].local, inet("::1", 15053));
    assert_eq!(b6.sockets[0].v6only, Some(true));
}

#[test]
fn unix_dump_has_names_peers_types_and_queues() {
    let b = parse_batch(UNIX, Proto::Unix, SEQ_UNIX).unwrap();
    assert!(b.done && b.skipped.is_empty());
    assert_eq!(b.sockets.len(), 8);
    let by_inode = |i: u64| b.sockets.iter().find(|s| s.inode == i).unwrap();
    let xds = by_inode(17386);
    assert_eq!(xds.state, State::Listen);
    assert_eq!(
        xds.local,
        Endpoint::UnixLocal(UnixName::Path("etc/istio/proxy/XDS".into()))
    );
    assert_eq!((xds.recv_q, xds.send_q), (0, 5));
    let accepted = by_inode(17388);
    assert_eq!(accepted.state, State::Established);
    assert_eq!(
        accepted.remote,
        Endpoint::UnixPeer {
            peer_inode: Some(17387)
        }
    );
    let client = by_inode(17387);
    assert_eq!(client.local, Endpoint::UnixLocal(UnixName::Unnamed));
    assert_eq!(
        by_inode(17389).local,
        Endpoint::UnixLocal(UnixName::Abstract("podports-abstract".into()))
    );
    let dgram = by_inode(17390);
    assert_eq!(
        (dgram.sock_type, dgram.state),
        (SockType::Dgram, State::Unconn)
    );
    assert_eq!(
        dgram.local,
        Endpoint::UnixLocal(UnixName::Path("/tmp/ppcap/dgram sock".into()))
    );
    assert_eq!(by_inode(17391).sock_type, SockType::Seqpacket);
    assert_eq!(
        by_inode(17392).remote,
        Endpoint::UnixPeer {
            peer_inode: Some(17393)
        }
    );
    assert!(b.sockets.iter().all(|s| s.uid == Some(0)));
}

#[test]
fn a_reply_with_another_sequence_number_is_ignored() {
    let b = parse_batch(TCP4, Proto::Tcp, 99).unwrap();
    assert!(b.sockets.is_empty() && !b.done);
}

/// A netlink message: header (len, type, flags, seq, pid) then payload, padded to 4.
fn message(kind: u16, flags: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
    let len = 16 + payload.len();
    let mut m = Vec::new();
    m.extend_from_slice(&(len as u32).to_ne_bytes());
    m.extend_from_slice(&kind.to_ne_bytes());
    m.extend_from_slice(&flags.to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend_from_slice(payload);
    while m.len() % 4 != 0 {
        m.push(0);
    }
    m
}

/// An inet_diag_msg (72 bytes) for 127.0.0.1:15006 <- 127.0.0.6:40000, uid 1337, no NLAs.
    #[rustfmt::skip]
    fn inet_payload(state: u8, inode: u32) -> Vec<u8> {
        let mut p = vec![
            2,          // idiag_family: AF_INET
            state,      // idiag_state
            0, 0,       // idiag_timer, idiag_retrans
            0x3a, 0x9e, // sport 15006 (big-endian)
            0x9c, 0x40, // dport 40000
        ];
        p.extend_from_slice(&[127, 0, 0, 1]); p.extend_from_slice(&[0; 12]); // src
        p.extend_from_slice(&[127, 0, 0, 6]); p.extend_from_slice(&[0; 12]); // dst
        p.extend_from_slice(&[0; 4]);  // if
        p.extend_from_slice(&[0; 8]);  // cookie
        p.extend_from_slice(&[0; 4]);  // expires
        p.extend_from_slice(&[0; 4]);  // rqueue
        p.extend_from_slice(&[0; 4]);  // wqueue
        p.extend_from_slice(&1337u32.to_ne_bytes()); // uid
        p.extend_from_slice(&inode.to_ne_bytes());   // inode
        p
    }

#[test]
fn request_and_time_wait_sockets_have_no_uid() {
    // The kernel writes 0 in idiag_uid for request sockets (state 12) and TIME_WAIT (6):
    // those zeros are no owner. A full socket in SYN_RECV (3) and an established one keep
    // the uid the kernel gave.
    for (state, want) in [(12u8, None), (6, None), (3, Some(1337)), (1, Some(1337))] {
        let mut bytes = message(SOCK_DIAG_BY_FAMILY, 2, 7, &inet_payload(state, 0));
        bytes.extend(message(NLMSG_DONE, 2, 7, &[0, 0, 0, 0]));
        let b = parse_batch(&bytes, Proto::Tcp, 7).unwrap();
        assert_eq!(b.sockets.len(), 1, "state {state}: {:?}", b.skipped);
        assert_eq!(b.sockets[0].uid, want, "state {state}");
    }
}

#[rustfmt::skip]
    fn unix_payload(name_attr: &[u8]) -> Vec<u8> {
        let mut p = vec![
            1,          // udiag_family: AF_UNIX
            1,          // udiag_type: SOCK_STREAM
            10,         // udiag_state: TCP_LISTEN
            0,          // pad
            0x39, 0x30, 0, 0, // udiag_ino: 12345
            0, 0, 0, 0, 0, 0, 0, 0, // udiag_cookie
        ];
        p.extend_from_slice(name_attr);
        p
    }

#[rustfmt::skip]
    #[test]
    fn a_hand_made_unix_message_decodes_field_by_field() {
        let name = [
            12, 0,      // nla_len: 4 + 8
            0, 0,       // nla_type: UNIX_DIAG_NAME
            b's', b'o', b'c', b'k', b'.', b'x', b'd', 0, // "sock.xd" + NUL
        ];
        let rqlen = [
            12, 0, 4, 0,          // UNIX_DIAG_RQLEN
            2, 0, 0, 0,           // pending connections
            0x80, 0, 0, 0,        // backlog 128
        ];
        let mut payload = unix_payload(&name);
        payload.extend_from_slice(&rqlen);
        let mut bytes = message(SOCK_DIAG_BY_FAMILY, 2, 7, &payload);
        bytes.extend(message(NLMSG_DONE, 2, 7, &[0, 0, 0, 0]));
        let b = parse_batch(&bytes, Proto::Unix, 7).unwrap();
        assert!(b.done);
        let s = &b.sockets[0];
        assert_eq!((s.inode, s.state, s.recv_q, s.send_q), (12345, State::Listen, 2, 128));
        assert_eq!(s.local, Endpoint::UnixLocal(UnixName::Path("sock.xd".into())));
    }

#[test]
fn an_odd_attribute_loses_only_itself() {
    // An attribute claiming more bytes than there are ends the attribute list; the socket
    // itself is kept.
    let bad = [200u8, 0, 0, 0, b'x', 0, 0, 0];
    let mut bytes = message(SOCK_DIAG_BY_FAMILY, 2, 7, &unix_payload(&bad));
    bytes.extend(message(NLMSG_DONE, 2, 7, &[0, 0, 0, 0]));
    let b = parse_batch(&bytes, Proto::Unix, 7).unwrap();
    assert_eq!(b.sockets.len(), 1);
    assert_eq!(b.sockets[0].local, Endpoint::UnixLocal(UnixName::Unnamed));
}

#[test]
fn an_undecodable_message_is_skipped_with_a_reason_and_the_rest_kept() {
    let mut bytes = message(SOCK_DIAG_BY_FAMILY, 2, 7, &[42, 0, 0, 0]); // AF 42
    bytes.extend(message(SOCK_DIAG_BY_FAMILY, 2, 7, &[1, 1, 10])); // short unix header
    bytes.extend(message(SOCK_DIAG_BY_FAMILY, 2, 7, &unix_payload(&[])));
    bytes.extend(message(NLMSG_DONE, 2, 7, &[0, 0, 0, 0]));
    let b = parse_batch(&bytes, Proto::Unix, 7).unwrap();
    assert_eq!(b.sockets.len(), 1);
    assert_eq!(b.skipped.len(), 2);
    assert!(
        b.skipped[0].contains("unknown address family 42"),
        "{:?}",
        b.skipped
    );
}

#[test]
fn nlmsg_error_is_the_kernels_errno() {
    let eperm = (-1i32).to_ne_bytes();
    let bytes = message(NLMSG_ERROR, 0, 7, &eperm);
    assert_eq!(
        parse_batch(&bytes, Proto::Tcp, 7),
        Err(ReplyError::Kernel(1))
    );
    // A DONE carrying an error is one too.
    let bytes = message(NLMSG_DONE, 2, 7, &(-22i32).to_ne_bytes());
    assert_eq!(
        parse_batch(&bytes, Proto::Tcp, 7),
        Err(ReplyError::Kernel(22))
    );
    // i32::MIN has no negation: malformed, not an overflow (a panic in debug builds).
    let bytes = message(NLMSG_ERROR, 0, 7, &i32::MIN.to_ne_bytes());
    assert!(matches!(
        parse_batch(&bytes, Proto::Tcp, 7),
        Err(ReplyError::Malformed(m)) if m.contains("no errno")
    ));
    // An NLMSG_ERROR with code 0 is an acknowledgement.
    let mut ack = message(NLMSG_ERROR, 0, 7, &0i32.to_ne_bytes());
    ack.extend(message(NLMSG_DONE, 2, 7, &[0, 0, 0, 0]));
    assert!(parse_batch(&ack, Proto::Tcp, 7).unwrap().done);
}

#[test]
fn dump_intr_is_reported_for_a_retry() {
    let mut bytes = message(
        SOCK_DIAG_BY_FAMILY,
        2 | NLM_F_DUMP_INTR,
        7,
        &unix_payload(&[]),
    );
    bytes.extend(message(NLMSG_DONE, 2, 7, &[0, 0, 0, 0]));
    let b = parse_batch(&bytes, Proto::Unix, 7).unwrap();
    assert!(b.interrupted);
}

#[test]
fn a_truncated_reply_is_an_error_not_a_shorter_list() {
    for cut in [1, 17, 40, TCP4.len() - 30] {
        let r = parse_batch(&TCP4[..TCP4.len() - cut], Proto::Tcp, SEQ_TCP4);
        assert!(
            matches!(r, Err(ReplyError::Malformed(_))),
            "cut {cut}: {r:?}"
        );
    }
}

#[test]
fn no_prefix_or_byte_flip_panics() {
    for fixture in [TCP4, TCP6, UDP4, UDP6, UNIX] {
        for end in 0..fixture.len() {
            let _ = parse_batch(&fixture[..end], Proto::Tcp, SEQ_TCP4);
        }
        for i in 0..fixture.len() {
            let mut m = fixture.to_vec();
            m[i] ^= 0xff;
            let _ = parse_batch(&m, Proto::Unix, SEQ_UNIX);
            let _ = parse_batch(&m, Proto::Tcp, SEQ_TCP4);
        }
    }
}

#[test]
fn requests_are_well_formed() {
    let r = inet_request(Family::Ipv6, Proto::Udp, ALL_INET_STATES, 3);
    assert_eq!(r.len(), 16 + 56);
    assert_eq!(
        u32::from_ne_bytes(r[0..4].try_into().unwrap()) as usize,
        r.len()
    );
    assert_eq!(r[16], AF_INET6);
    assert_eq!(r[17], 17, "IPPROTO_UDP");
    assert_eq!(
        u32::from_ne_bytes(r[20..24].try_into().unwrap()),
        ALL_INET_STATES
    );
    let u = unix_request(ALL_UNIX_STATES, 4);
    assert_eq!(u[16], AF_UNIX);
    // udiag_states: every state, so unconnected datagram sockets are not dropped.
    assert_eq!(u32::from_ne_bytes(u[20..24].try_into().unwrap()), u32::MAX);
    let show = u32::from_ne_bytes(u[28..32].try_into().unwrap());
    assert_eq!(show & UDIAG_SHOW_UID, UDIAG_SHOW_UID);
}
