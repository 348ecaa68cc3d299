//! Captures raw NETLINK_SOCK_DIAG reply datagrams for the parser fixtures in
//! `fixtures/sock_diag/`. Run it in a namespace holding the sockets you want:
//!
//! ```sh
//! ip netns exec NAME cargo run --example capture_sock_diag -- OUTDIR
//! ```
//!
//! Writes `OUTDIR/<proto><family>.bin`: every datagram of one dump, concatenated, exactly as
//! the kernel sent it (so multi-part framing and NLMSG_DONE are in the file).
// A capture tool beside podports, not part of it: its own netlink socket and files.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::io::Write;

use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_SOCK_DIAG};
use podports::model::{Family, Proto};
use podports::parse::sock_diag;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::env::args()
        .nth(1)
        .ok_or("usage: capture_sock_diag OUTDIR")?;
    std::fs::create_dir_all(&out)?;
    let mut socket = Socket::new(NETLINK_SOCK_DIAG)?;
    socket.bind_auto()?;
    socket.connect(&SocketAddr::new(0, 0))?;
    let dumps = [
        ("tcp4", Proto::Tcp, Some(Family::Ipv4)),
        ("tcp6", Proto::Tcp, Some(Family::Ipv6)),
        ("udp4", Proto::Udp, Some(Family::Ipv4)),
        ("udp6", Proto::Udp, Some(Family::Ipv6)),
        ("unix", Proto::Unix, None),
    ];
    for (seq, (name, proto, family)) in (1u32..).zip(dumps) {
        let request = match family {
            Some(f) => sock_diag::inet_request(f, proto, sock_diag::ALL_INET_STATES, seq),
            None => sock_diag::unix_request(sock_diag::ALL_UNIX_STATES, seq),
        };
        socket.send(&request, 0)?;
        let mut file = std::fs::File::create(format!("{out}/{name}.bin"))?;
        loop {
            let mut buf = vec![0u8; 1 << 20];
            let n = socket.recv(&mut &mut buf[..], 0)?;
            let datagram = buf.get(..n).ok_or("short read")?;
            file.write_all(datagram)?;
            let batch = sock_diag::parse_batch(datagram, proto, seq)?;
            if batch.done {
                break;
            }
        }
        println!("{out}/{name}.bin");
    }
    Ok(())
}
