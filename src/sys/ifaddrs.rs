//! The addresses of the network namespace the calling thread is in (getifaddrs, over
//! NETLINK_ROUTE), for `probe`, which connects only to loopback or to these. Call it inside
//! `Netns::run_in` to learn a pod's own addresses. Reads only.

use std::io;
use std::net::IpAddr;

use nix::ifaddrs::getifaddrs;

/// Every IPv4 and IPv6 address on an interface of the current thread's namespace, including
/// loopback's, without duplicates.
pub fn interface_addrs() -> io::Result<Vec<IpAddr>> {
    let mut out: Vec<IpAddr> = Vec::new();
    for ifa in getifaddrs().map_err(io::Error::from)? {
        let Some(addr) = ifa.address else { continue };
        let ip = if let Some(v4) = addr.as_sockaddr_in() {
            IpAddr::V4(v4.ip())
        } else if let Some(v6) = addr.as_sockaddr_in6() {
            IpAddr::V6(v6.ip())
        } else {
            continue;
        };
        if !out.contains(&ip) {
            out.push(ip);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_up_loopback_carries_its_addresses() {
        // IFF_UP is bit 0 of /sys/class/net/lo/flags (hex). In every namespace the kernel gives
        // lo 127.0.0.1 and, unless IPv6 is off, ::1; an `lo` that is up must show them here.
        let addrs = super::interface_addrs().unwrap();
        let flags = std::fs::read_to_string("/sys/class/net/lo/flags").unwrap_or_default();
        let flags = u32::from_str_radix(flags.trim().trim_start_matches("0x"), 16).unwrap_or(0);
        if flags & 1 == 0 {
            eprintln!("SKIP an_up_loopback_carries_its_addresses: lo is down here");
            return;
        }
        let v4: std::net::IpAddr = std::net::Ipv4Addr::LOCALHOST.into();
        assert!(
            addrs.contains(&v4),
            "lo is up but 127.0.0.1 is missing: {addrs:?}"
        );
        assert!(addrs.iter().all(|a| !a.is_unspecified()), "{addrs:?}");
    }
}
