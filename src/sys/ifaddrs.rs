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
    fn this_namespace_has_addresses_when_it_has_interfaces() {
        // Whatever the sandbox, the call succeeds; an `lo` that is up carries 127.0.0.1.
        let addrs = super::interface_addrs().unwrap();
        let lo_up = std::fs::read_to_string("/sys/class/net/lo/operstate").is_ok();
        if lo_up && !addrs.is_empty() {
            assert!(addrs.iter().all(|a| !a.is_unspecified()), "{addrs:?}");
        }
    }
}
