use super::*;

// All captured on x86_64 (little-endian), Linux 6.18.44: see fixtures/proc/README.md.
const TCP: &[u8] = include_bytes!("../../../fixtures/proc/tcp");
const TCP6: &[u8] = include_bytes!("../../../fixtures/proc/tcp6");
const UDP: &[u8] = include_bytes!("../../../fixtures/proc/udp");
const UDP6: &[u8] = include_bytes!("../../../fixtures/proc/udp6");
const UNIX: &[u8] = include_bytes!("../../../fixtures/proc/unix");
const UNIX_NEWLINE: &[u8] = include_bytes!("../../../fixtures/proc/unix-newline");

const TCP_HEADER: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode";
const TCP_LISTEN_15000: &str = "   0: 0100007F:3A98 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 9636 1 0000000044bb6184 100 0 0 10 0";

fn ep(addr: &str, port: u16) -> Endpoint {
    Endpoint::Inet {
        addr: addr.parse().unwrap(),
        port,
    }
}

/// The one socket with this local and remote end.
fn find<'a>(p: &'a Parsed, local: &Endpoint, remote: &Endpoint) -> &'a Socket {
    let hits: Vec<&Socket> = p
        .sockets
        .iter()
        .filter(|s| &s.local == local && &s.remote == remote)
        .collect();
    assert_eq!(hits.len(), 1, "{local:?} -> {remote:?}: {hits:?}");
    hits[0]
}

fn unix_by_inode(p: &Parsed, inode: u64) -> &Socket {
    let hits: Vec<&Socket> = p.sockets.iter().filter(|s| s.inode == inode).collect();
    assert_eq!(hits.len(), 1, "inode {inode}: {hits:?}");
    hits[0]
}

fn count(p: &Parsed, state: State) -> usize {
    p.sockets.iter().filter(|s| s.state == state).count()
}

#[test]
#[cfg_attr(
    target_endian = "big",
    ignore = "fixture captured on little-endian x86_64"
)]
fn tcp4_fixture_matches_ss() {
    let p = parse_inet(TCP, Proto::Tcp, Family::Ipv4);
    assert_eq!(p.errors, vec![]);
    assert_eq!(p.sockets.len(), 16);
    assert_eq!(count(&p, State::Listen), 3);
    assert_eq!(count(&p, State::Established), 10);
    assert!(p.sockets.iter().all(|s| s.proto == Proto::Tcp
        && s.family == Family::Ipv4
        && s.sock_type == SockType::Stream));

    // ss: LISTEN 0 16 127.0.0.1:15000 0.0.0.0:* ino:9636
    let admin = find(&p, &ep("127.0.0.1", 15000), &ep("0.0.0.0", 0));
    assert_eq!(admin.state, State::Listen);
    assert_eq!(
        (admin.inode, admin.uid, admin.recv_q, admin.send_q),
        (9636, Some(0), 0, 0)
    );
    let outbound = find(&p, &ep("0.0.0.0", 15001), &ep("0.0.0.0", 0));
    assert_eq!((outbound.state, outbound.inode), (State::Listen, 9637));
    // ss: LISTEN 2 8 0.0.0.0:15021: two connections in the accept queue; the backlog
    // (ss's Send-Q) is not in /proc.
    let ready = find(&p, &ep("0.0.0.0", 15021), &ep("0.0.0.0", 0));
    assert_eq!((ready.state, ready.inode), (State::Listen, 9640));
    assert_eq!((ready.recv_q, ready.send_q), (2, 0));

    // ss: ESTAB 100 0 127.0.0.1:15000 127.0.0.1:40001 ino:9643
    let s = find(&p, &ep("127.0.0.1", 15000), &ep("127.0.0.1", 40001));
    assert_eq!(
        (s.state, s.inode, s.recv_q, s.send_q),
        (State::Established, 9643, 100, 0)
    );
    let c = find(&p, &ep("127.0.0.1", 40001), &ep("127.0.0.1", 15000));
    assert_eq!(
        (c.state, c.inode, c.recv_q, c.send_q),
        (State::Established, 9642, 0, 0)
    );

    // ss: ESTAB 0 3782144 127.0.0.1:40002 -> 15001 ino:9644; ESTAB 128512 0 the other end.
    let c = find(&p, &ep("127.0.0.1", 40002), &ep("127.0.0.1", 15001));
    assert_eq!((c.inode, c.recv_q, c.send_q), (9644, 0, 3_782_144));
    let s = find(&p, &ep("127.0.0.1", 15001), &ep("127.0.0.1", 40002));
    assert_eq!((s.inode, s.recv_q, s.send_q), (9645, 128_512, 0));

    // ss: TIME-WAIT 127.0.0.1:40008 -> 15000 ino:0: nobody owns it.
    let tw = find(&p, &ep("127.0.0.1", 40008), &ep("127.0.0.1", 15000));
    assert_eq!((tw.state, tw.inode, tw.uid), (State::TimeWait, 0, None));

    // ss: FIN-WAIT-2 40010 -> 15000 ino:9658; CLOSE-WAIT 1 0 15000 <- 40010 ino:9659.
    let fw = find(&p, &ep("127.0.0.1", 40010), &ep("127.0.0.1", 15000));
    assert_eq!((fw.state, fw.inode), (State::FinWait2, 9658));
    let cw = find(&p, &ep("127.0.0.1", 15000), &ep("127.0.0.1", 40010));
    assert_eq!((cw.state, cw.inode, cw.recv_q), (State::CloseWait, 9659, 1));

    // ss: ESTAB 127.0.0.1:15021 <- 40003 ino:0: accepted by the kernel, not by the app.
    let queued = find(&p, &ep("127.0.0.1", 15021), &ep("127.0.0.1", 40003));
    assert_eq!(
        (queued.state, queued.inode, queued.uid),
        (State::Established, 0, Some(0))
    );

    // The IPv4 end of the v4-mapped connection to the dual-stack [::]:15006.
    let c = find(&p, &ep("127.0.0.1", 40005), &ep("127.0.0.1", 15006));
    assert_eq!(c.inode, 9648);
}

#[test]
#[cfg_attr(
    target_endian = "big",
    ignore = "fixture captured on little-endian x86_64"
)]
fn tcp6_fixture_keeps_v4_mapped_as_ipv6() {
    let p = parse_inet(TCP6, Proto::Tcp, Family::Ipv6);
    assert_eq!(p.errors, vec![]);
    assert_eq!(p.sockets.len(), 8);
    assert!(p.sockets.iter().all(|s| s.family == Family::Ipv6));

    // ss: LISTEN [::1]:15020 ino:9639, *:15006 ino:9638 (v6only 0), [::]:15090 ino:9641.
    let l = find(&p, &ep("::1", 15020), &ep("::", 0));
    assert_eq!((l.state, l.inode), (State::Listen, 9639));
    let l = find(&p, &ep("::", 15006), &ep("::", 0));
    assert_eq!((l.state, l.inode, l.v6only), (State::Listen, 9638, None));
    let l = find(&p, &ep("::", 15090), &ep("::", 0));
    assert_eq!((l.state, l.inode), (State::Listen, 9641));

    // ss: ESTAB [::ffff:127.0.0.1]:15006 [::ffff:127.0.0.1]:40005 ino:9649
    let m = find(
        &p,
        &ep("::ffff:127.0.0.1", 15006),
        &ep("::ffff:127.0.0.1", 40005),
    );
    assert_eq!((m.state, m.inode), (State::Established, 9649));
    match m.local.addr() {
        Some(IpAddr::V6(a)) => assert_eq!(a.to_ipv4_mapped(), Some(Ipv4Addr::LOCALHOST)),
        other => panic!("expected an IPv6 address, got {other:?}"),
    }
    // ss: ESTAB [::ffff:127.0.0.1]:40006 [::ffff:127.0.0.1]:15001 ino:9650
    let m = find(
        &p,
        &ep("::ffff:127.0.0.1", 40006),
        &ep("::ffff:127.0.0.1", 15001),
    );
    assert_eq!(m.inode, 9650);

    let c = find(&p, &ep("::1", 40007), &ep("::1", 15020));
    assert_eq!((c.state, c.inode), (State::Established, 9652));
    let s = find(&p, &ep("::1", 15020), &ep("::1", 40007));
    assert_eq!(s.inode, 9653);
    let tw = find(&p, &ep("::1", 40009), &ep("::1", 15020));
    assert_eq!((tw.state, tw.inode, tw.uid), (State::TimeWait, 0, None));
}

#[test]
#[cfg_attr(
    target_endian = "big",
    ignore = "fixture captured on little-endian x86_64"
)]
fn udp_fixtures_unconn_and_connected() {
    let p = parse_inet(UDP, Proto::Udp, Family::Ipv4);
    assert_eq!(p.errors, vec![]);
    assert_eq!(p.sockets.len(), 2);
    assert!(
        p.sockets
            .iter()
            .all(|s| s.proto == Proto::Udp && s.sock_type == SockType::Dgram)
    );
    // ss: UNCONN 832 0 127.0.0.1:15053 0.0.0.0:* ino:9660 (one 10-byte datagram unread;
    // the queue counts buffer memory, not payload).
    let dns = find(&p, &ep("127.0.0.1", 15053), &ep("0.0.0.0", 0));
    assert_eq!(
        (dns.state, dns.inode, dns.recv_q, dns.send_q, dns.uid),
        (State::Unconn, 9660, 832, 0, Some(0))
    );
    assert!(dns.is_listening());
    let c = find(&p, &ep("127.0.0.1", 40011), &ep("127.0.0.1", 15053));
    assert_eq!((c.state, c.inode), (State::Established, 9662));

    let p = parse_inet(UDP6, Proto::Udp, Family::Ipv6);
    assert_eq!(p.errors, vec![]);
    assert_eq!(p.sockets.len(), 2);
    let any = find(&p, &ep("::", 15054), &ep("::", 0));
    assert_eq!((any.state, any.inode), (State::Unconn, 9661));
    let c = find(&p, &ep("::1", 40012), &ep("::1", 15054));
    assert_eq!((c.state, c.inode), (State::Established, 9663));
}

#[test]
fn header_only_and_empty_give_nothing() {
    for text in [
        format!("{TCP_HEADER}\n"),
        TCP_HEADER.to_string(),
        String::new(),
        "\n\n".into(),
    ] {
        let p = parse_inet(text.as_bytes(), Proto::Tcp, Family::Ipv4);
        assert_eq!(p, Parsed::default(), "{text:?}");
    }
    let p = parse_unix(b"Num       RefCount Protocol Flags    Type St Inode Path\n");
    assert_eq!(p, Parsed::default());
    assert_eq!(parse_unix(b""), Parsed::default());
}

#[test]
fn malformed_inet_lines_are_reported_and_skipped() {
    let bad = [
        // 2: truncated mid-row
        "   1: 0100007F:3A98 00000000:0000 0A 00000000:00000000 00:00000000",
        // 3: bad hex in the address
        "   2: 0100007G:3A98 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1",
        // 4: port missing
        "   3: 0100007F 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1",
        // 5: IPv6 address in an IPv4 table
        "   4: 00000000000000000000000001000000:3AAC 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1 1",
        // 6: state is not hex
        "   5: 0100007F:3A98 00000000:0000 ZZ 00000000:00000000 00:00000000 00000000     0        0 1 1",
        // 7: queues without ':'
        "   6: 0100007F:3A98 00000000:0000 0A 0000000000000000 00:00000000 00000000     0        0 1 1",
        // 8: inode not a number
        "   7: 0100007F:3A98 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 -1 1",
        // 9: a '+' that from_str_radix would accept
        "   8: 0100007F:+A98 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1",
        // 10: no slot number
        "0100007F:3A98 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1 1 x",
    ];
    let mut bytes = format!("{TCP_HEADER}\n").into_bytes();
    for line in bad {
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
    }
    bytes.extend_from_slice(TCP_LISTEN_15000.as_bytes()); // 11: good
    bytes.extend_from_slice(b"\n   9: \xe9\n"); // 12: not UTF-8

    let p = parse_inet(&bytes, Proto::Tcp, Family::Ipv4);
    let lines: Vec<usize> = p.errors.iter().map(|e| e.line).collect();
    assert_eq!(
        lines,
        (2..=10).chain([12]).collect::<Vec<_>>(),
        "{:#?}",
        p.errors
    );
    assert_eq!(p.sockets.len(), 1);
    assert_eq!(p.sockets[0].inode, 9636);
    assert!(p.errors[0].reason.contains("columns"), "{}", p.errors[0]);
    assert!(p.errors[1].reason.contains("hex"), "{}", p.errors[1]);
    assert!(
        p.errors[5].reason.contains("tx_queue:rx_queue"),
        "{}",
        p.errors[5]
    );
    assert!(p.errors[9].reason.contains("UTF-8"), "{}", p.errors[9]);
}

#[test]
fn wrong_proto_or_family_is_one_error() {
    let p = parse_inet(TCP, Proto::Unix, Family::Ipv4);
    assert!(p.sockets.is_empty());
    assert_eq!(p.errors.len(), 1);
    assert_eq!(p.errors[0].line, 0);
    let p = parse_inet(TCP, Proto::Tcp, Family::Unix);
    assert_eq!((p.sockets.len(), p.errors.len()), (0, 1));
    // IPv4 rows read as IPv6 fail on the address width, line by line.
    let p = parse_inet(TCP, Proto::Tcp, Family::Ipv6);
    assert_eq!((p.sockets.len(), p.errors.len()), (0, 16));
}

#[test]
fn unix_fixture_matches_ss() {
    let p = parse_unix(UNIX);
    assert_eq!(p.errors, vec![]);
    assert_eq!(p.sockets.len(), 16);
    assert!(p.sockets.iter().all(|s| s.proto == Proto::Unix
        && s.family == Family::Unix
        && s.remote == Endpoint::UnixPeer { peer_inode: None }
        && s.uid.is_none()));
    let path = |b: &[u8]| Endpoint::UnixLocal(UnixName::Path(RawText::new(b)));
    let abs = |b: &[u8]| Endpoint::UnixLocal(UnixName::Abstract(RawText::new(b)));
    let unnamed = Endpoint::UnixLocal(UnixName::Unnamed);
    let check = |inode: u64, t: SockType, st: State, local: &Endpoint| {
        let s = unix_by_inode(&p, inode);
        assert_eq!(
            (s.sock_type, s.state, &s.local),
            (t, st, local),
            "inode {inode}"
        );
    };
    use SockType::{Dgram, Seqpacket, Stream};
    use State::{Established, Listen, Unconn};
    // ss: u_str LISTEN etc/istio/proxy/XDS 9664, and the accepted end ESTAB 9666.
    check(9664, Stream, Listen, &path(b"etc/istio/proxy/XDS"));
    check(9666, Stream, Established, &path(b"etc/istio/proxy/XDS"));
    check(9665, Stream, Established, &unnamed);
    check(9667, Stream, Listen, &abs(b"podports/fixture"));
    // Bound to "\0nul\0inside": the kernel prints the inner NUL as '@'.
    check(9668, Stream, Listen, &abs(b"nul@inside"));
    // Autobind: five hex digits.
    check(9669, Dgram, Unconn, &abs(b"39b18"));
    // A dgram socket another one connect()ed to is ESTABLISHED too (ss agrees).
    check(
        9670,
        Dgram,
        Established,
        &path(b"/tmp/pp-fixture.FUdXOd/dgram.sock"),
    );
    check(9671, Dgram, Established, &unnamed);
    check(9672, Stream, Established, &unnamed); // socketpair
    check(9673, Stream, Established, &unnamed);
    check(9674, Seqpacket, Listen, &path(b"seq.sock"));
    check(9675, Stream, Listen, &path(b"my socket.sock"));
    check(9676, Stream, Established, &unnamed);
    check(9677, Stream, Listen, &path(b"caf\xe9.sock"));
    check(9678, Stream, Unconn, &path(b"bound-not-listening.sock"));
    // St 02, inode 0: the server end still in "my socket.sock"'s accept queue. ss lists it
    // only as the listener's "peers: 9676".
    check(0, Stream, Established, &path(b"my socket.sock"));
}

/// A bound path may hold a newline, which the kernel prints raw: the tail of the path
/// reads as a row of its own, and a crafted one is indistinguishable from a real socket.
#[test]
fn unix_newline_in_path_splits_the_row() {
    let p = parse_unix(UNIX_NEWLINE);
    assert_eq!(p.errors, vec![]);
    assert_eq!(p.sockets.len(), 2);
    let real = unix_by_inode(&p, 9799);
    assert_eq!(
        real.local,
        Endpoint::UnixLocal(UnixName::Path(RawText::from("evil")))
    );
    let fake = unix_by_inode(&p, 99999);
    assert_eq!(fake.state, State::Listen);
    assert_eq!(
        fake.local,
        Endpoint::UnixLocal(UnixName::Path(RawText::from("fake")))
    );
}

#[test]
fn malformed_unix_lines_are_reported_and_skipped() {
    let text: &[u8] = b"Num       RefCount Protocol Flags    Type St Inode Path\n\
            00000000834702c7: 00000002 00000000 00010000 0001 01  9664\n\
            00000000834702c7: 00000002 00000000 00010000 0001\n\
            00000000834702c7: 00000002 00000000 00010000 0003 01  9664 x\n\
            00000000834702c7: 00000002 00000000 0001000G 0001 01  9664 x\n\
            00000000834702c7: 00000002 00000000 00010000 0001 01  96x4 x\n\
            00000000834702c7 00000002 00000000 00010000 0001 01  9664 x\n\
            00000000834702c7: 00000002 00000000 00010000 0001 01  9664 \n\
            00000000834702c7: 00000002 00000000 00010000 0001 01  9665  lead space\n";
    let p = parse_unix(text);
    let lines: Vec<usize> = p.errors.iter().map(|e| e.line).collect();
    assert_eq!(lines, vec![3, 4, 5, 6, 7, 8], "{:#?}", p.errors);
    assert!(p.errors[0].reason.contains("columns"), "{}", p.errors[0]);
    assert!(
        p.errors[1].reason.contains("socket type"),
        "{}",
        p.errors[1]
    );
    assert_eq!(p.sockets.len(), 2);
    assert_eq!(p.sockets[0].local, Endpoint::UnixLocal(UnixName::Unnamed));
    // One space separates inode and path; any further spaces belong to the path.
    assert_eq!(
        p.sockets[1].local,
        Endpoint::UnixLocal(UnixName::Path(RawText::from(" lead space")))
    );
}
