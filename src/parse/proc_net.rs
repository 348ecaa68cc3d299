//! Parsers of the `/proc/<pid>/net/{tcp,tcp6,udp,udp6,unix}` tables (the fallback when
//! NETLINK_SOCK_DIAG is unavailable). Text in, `model::Socket`s out: never touches the
//! filesystem, and a bad line is reported and skipped, never a panic or a lost good line.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::LineError;
use crate::model::{Endpoint, Family, Proto, RawText, SockType, Socket, State, UnixName};

/// The sockets read from one table, and the lines that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Parsed {
    pub sockets: Vec<Socket>,
    pub errors: Vec<LineError>,
}

/// `__SO_ACCEPTCON`: the kernel sets it in the Flags column exactly when `sk_state` is
/// TCP_LISTEN (net/unix/af_unix.c, `unix_seq_show`).
const SO_ACCEPTCON: u32 = 1 << 16;

/// Parses `/proc/<pid>/net/{tcp,tcp6,udp,udp6}`. `proto` must be TCP or UDP and `family`
/// IPv4 or IPv6, as the file name says; anything else gives one error (line 0) and no sockets.
///
/// Columns used (`sl local rem st tx:rx tr:when retrnsmt uid timeout inode ...`); the rest
/// differ by socket kind (TIME_WAIT rows stop after the pointer) and are ignored.
/// - Addresses are printed word by word with `%08X` of a `__be32` read as a host integer, so
///   each 32-bit word comes back with `to_ne_bytes` (little-endian on x86).
/// - v4-mapped IPv6 addresses stay IPv6 (`::ffff:127.0.0.1`), as `ss` prints them.
/// - `send_q` is `tx_queue` and `recv_q` is `rx_queue`. For LISTEN, `rx_queue` is the accept
///   queue; the backlog (what `ss` shows as Send-Q) is not in this file, so `send_q` stays 0.
/// - TIME_WAIT rows have no owner: the kernel prints uid 0 and inode 0 for them, so their uid
///   is `None`. Connections still in an accept queue also have inode 0 (no `struct socket`
///   yet), but their uid (the listener's) is real.
pub fn parse_inet(text: &[u8], proto: Proto, family: Family) -> Parsed {
    let mut parsed = Parsed::default();
    let sock_type = match proto {
        Proto::Tcp => SockType::Stream,
        Proto::Udp => SockType::Dgram,
        Proto::Unix => {
            parsed.errors.push(LineError {
                line: 0,
                reason: "parse_inet called for unix sockets; use parse_unix".into(),
            });
            return parsed;
        }
    };
    if family == Family::Unix {
        parsed.errors.push(LineError {
            line: 0,
            reason: "parse_inet called with the unix family".into(),
        });
        return parsed;
    }
    for (index, line) in text.split(|&b| b == b'\n').enumerate() {
        if line.trim_ascii().is_empty() {
            continue;
        }
        match inet_line(line, proto, family, sock_type) {
            Ok(Some(socket)) => parsed.sockets.push(socket),
            Ok(None) => {}
            Err(reason) => parsed.errors.push(LineError {
                line: index + 1,
                reason,
            }),
        }
    }
    parsed
}

/// One row of an inet table; `Ok(None)` for the header.
fn inet_line(
    line: &[u8],
    proto: Proto,
    family: Family,
    sock_type: SockType,
) -> Result<Option<Socket>, String> {
    let line = std::str::from_utf8(line).map_err(|_| "not UTF-8".to_string())?;
    let cols: Vec<&str> = line.split_ascii_whitespace().collect();
    if cols.first() == Some(&"sl") {
        return Ok(None);
    }
    let [
        sl,
        local,
        remote,
        st,
        queues,
        _timer,
        _retrnsmt,
        uid,
        _timeout,
        inode,
        ..,
    ] = cols.as_slice()
    else {
        return Err(format!("{} columns, expected at least 10", cols.len()));
    };
    match sl.strip_suffix(':') {
        Some(n) if is_dec(n) => {}
        _ => return Err(format!("first column {sl:?} is not a slot number and ':'")),
    }
    let local = inet_endpoint(local, family, "local address")?;
    let remote = inet_endpoint(remote, family, "remote address")?;
    let state = State::from_kernel(hex_u8(st, "state")?);
    let (tx, rx) = queues
        .split_once(':')
        .ok_or_else(|| format!("queues {queues:?}: expected tx_queue:rx_queue"))?;
    let send_q = hex_u32(tx, "tx_queue")?;
    let recv_q = hex_u32(rx, "rx_queue")?;
    let uid = dec(uid, "uid")?;
    let uid = u32::try_from(uid).map_err(|_| format!("uid {uid} out of range"))?;
    let inode = dec(inode, "inode")?;

    let mut socket = Socket::new(proto, family, sock_type, state, local, remote, inode);
    socket.uid = (state != State::TimeWait).then_some(uid);
    socket.recv_q = recv_q;
    socket.send_q = send_q;
    Ok(Some(socket))
}

/// `0100007F:3A98` (IPv4) or 32 hex digits and a port (IPv6).
fn inet_endpoint(field: &str, family: Family, what: &str) -> Result<Endpoint, String> {
    let (addr_hex, port_hex) = field
        .split_once(':')
        .ok_or_else(|| format!("{what} {field:?}: no ':' before the port"))?;
    if port_hex.len() > 4 {
        return Err(format!("{what} {field:?}: port is not 4 hex digits"));
    }
    let port = hex_u32(port_hex, "port")
        .ok()
        .and_then(|p| u16::try_from(p).ok())
        .ok_or_else(|| format!("{what} {field:?}: bad port"))?;
    let digits = if family == Family::Ipv4 { 8 } else { 32 };
    if addr_hex.len() != digits || !addr_hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "{what} {field:?}: expected {digits} hex digits for {family:?}"
        ));
    }
    let mut bytes = [0u8; 16];
    for (i, chunk) in bytes.chunks_exact_mut(4).take(digits / 8).enumerate() {
        let word = addr_hex
            .get(i * 8..i * 8 + 8)
            .and_then(|w| u32::from_str_radix(w, 16).ok())
            .ok_or_else(|| format!("{what} {field:?}: bad hex"))?;
        chunk.copy_from_slice(&word.to_ne_bytes());
    }
    let addr = if family == Family::Ipv4 {
        let [a, b, c, d, ..] = bytes;
        IpAddr::V4(Ipv4Addr::new(a, b, c, d))
    } else {
        IpAddr::V6(Ipv6Addr::from(bytes))
    };
    Ok(Endpoint::Inet { addr, port })
}

/// Parses `/proc/<pid>/net/unix`: `Num RefCount Protocol Flags Type St Inode [Path]`.
///
/// What this file cannot say, so is left unset: the peer inode (`UnixPeer { peer_inode:
/// None }`), the queues (0) and the uid (`None`). State, from what `unix_seq_show` prints:
/// Flags with `__SO_ACCEPTCON` is LISTEN; St 03 (SS_CONNECTED) is ESTABLISHED, and so is St 02,
/// which the kernel prints for an established socket with no `struct socket` yet (a connection
/// waiting in an accept queue; it has inode 0 and `ss` does not list it); anything else is
/// UNCONN.
///
/// The path is the rest of the line after the single space that follows the inode (paths may
/// hold spaces and any byte). A leading `@` marks an abstract name, stored without the `@`;
/// the kernel also prints NULs inside abstract names as `@`, and a filesystem path that starts
/// with `@` looks the same, so this file cannot tell those apart. A path holding a newline is
/// printed raw and splits the row; its tail then parses as a row of its own, or is reported.
pub fn parse_unix(text: &[u8]) -> Parsed {
    let mut parsed = Parsed::default();
    for (index, line) in text.split(|&b| b == b'\n').enumerate() {
        if line.trim_ascii().is_empty() {
            continue;
        }
        match unix_line(line) {
            Ok(Some(socket)) => parsed.sockets.push(socket),
            Ok(None) => {}
            Err(reason) => parsed.errors.push(LineError {
                line: index + 1,
                reason,
            }),
        }
    }
    parsed
}

/// One row of the unix table; `Ok(None)` for the header.
fn unix_line(line: &[u8]) -> Result<Option<Socket>, String> {
    let mut rest = line;
    let mut cols: [&str; 7] = [""; 7];
    for (i, col) in cols.iter_mut().enumerate() {
        let (token, after) = next_token(rest);
        if token.is_empty() {
            return Err(format!("{i} columns, expected at least 7"));
        }
        *col = std::str::from_utf8(token).map_err(|_| format!("column {} is not UTF-8", i + 1))?;
        rest = after;
        if i == 0 && *col == "Num" {
            return Ok(None);
        }
    }
    let [num, refcount, protocol, flags, sock_type, st, inode] = cols;
    match num.strip_suffix(':') {
        Some(ptr) if is_hex(ptr) => {}
        _ => return Err(format!("first column {num:?} is not a hex pointer and ':'")),
    }
    hex_u32(refcount, "RefCount")?;
    hex_u32(protocol, "Protocol")?;
    let flags = hex_u32(flags, "Flags")?;
    let type_num = hex_u32(sock_type, "Type")?;
    let sock_type =
        SockType::from_kernel(type_num).ok_or_else(|| format!("unknown socket type {type_num}"))?;
    let st = hex_u8(st, "St")?;
    let inode = dec(inode, "Inode")?;
    let name = match rest.split_first() {
        None => UnixName::Unnamed,
        Some((b' ', [])) => return Err("empty path after the inode".into()),
        Some((b' ', [b'@', name @ ..])) => UnixName::Abstract(RawText::new(name)),
        Some((b' ', path)) => UnixName::Path(RawText::new(path)),
        Some(_) => return Err("no space between the inode and the path".into()),
    };
    let state = if flags & SO_ACCEPTCON != 0 {
        State::Listen
    } else if st == 3 || st == 2 {
        State::Established
    } else {
        State::Unconn
    };
    Ok(Some(Socket::new(
        Proto::Unix,
        Family::Unix,
        sock_type,
        state,
        Endpoint::UnixLocal(name),
        Endpoint::UnixPeer { peer_inode: None },
        inode,
    )))
}

/// Skips spaces, then splits off the next space-delimited token. The rest starts at the space
/// after the token (or is empty), so the caller can see the single space before a path.
fn next_token(line: &[u8]) -> (&[u8], &[u8]) {
    let start = line.iter().position(|&b| b != b' ').unwrap_or(line.len());
    let line = line.split_at_checked(start).map_or(&[][..], |(_, l)| l);
    let end = line.iter().position(|&b| b == b' ').unwrap_or(line.len());
    line.split_at_checked(end).unwrap_or((line, &[]))
}

fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn is_dec(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Strict hex: digits only (`from_str_radix` alone would take a leading `+`).
fn hex_u32(s: &str, what: &str) -> Result<u32, String> {
    if !is_hex(s) {
        return Err(format!("{what} {s:?} is not hex"));
    }
    u32::from_str_radix(s, 16).map_err(|_| format!("{what} {s:?} is out of range"))
}

fn hex_u8(s: &str, what: &str) -> Result<u8, String> {
    let v = hex_u32(s, what)?;
    u8::try_from(v).map_err(|_| format!("{what} {s:?} is out of range"))
}

fn dec(s: &str, what: &str) -> Result<u64, String> {
    if !is_dec(s) {
        return Err(format!("{what} {s:?} is not a decimal number"));
    }
    s.parse()
        .map_err(|_| format!("{what} {s:?} is out of range"))
}

#[cfg(test)]
mod tests;
