//! The addresses TFTP listens on: the IPv4 addresses of the named interfaces (never the wildcard
//! address, so the service is not reachable from networks it was not given), and each
//! interface's MTU, which bounds the block size a client may negotiate.

use std::net::Ipv4Addr;

/// IPv4 addresses currently on interface `name` (empty when it is down without an address or
/// does not exist).
pub fn ipv4_addresses(name: &str) -> Vec<Ipv4Addr> {
    crate::netif::ipv4_addrs(name).map(|a| a.into_iter().map(|a| a.addr).collect()).unwrap_or_default()
}

/// The largest TFTP block that fits one unfragmented datagram on `name`: MTU minus the IPv4 (20),
/// UDP (8) and TFTP DATA (4) headers — 1468 on Ethernet, 65464 (the RFC 2348 maximum) on loopback.
/// Fragmented blocks work on a clean LAN but one lost fragment costs the whole block, so we stay
/// under the MTU; 1468 when the MTU cannot be read.
pub fn max_blksize(name: &str) -> u16 {
    let mtu = std::fs::read_to_string(format!("/sys/class/net/{name}/mtu"))
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .unwrap_or(1500);
    blksize_for_mtu(mtu)
}

fn blksize_for_mtu(mtu: u32) -> u16 {
    u16::try_from(mtu.saturating_sub(32)).unwrap_or(u16::MAX).clamp(512, super::options::MAX_BLKSIZE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_size_follows_the_mtu() {
        assert_eq!(blksize_for_mtu(1500), 1468);
        assert_eq!(blksize_for_mtu(9000), 8968);
        assert_eq!(blksize_for_mtu(65536), 65464);
        assert_eq!(blksize_for_mtu(100), 512);
    }

    #[test]
    fn loopback_has_127_0_0_1() {
        // Every namespace has `lo`; it is up in the test environment's namespace.
        let lo = ipv4_addresses("lo");
        assert!(lo.is_empty() || lo.contains(&Ipv4Addr::LOCALHOST), "{lo:?}");
        assert!(ipv4_addresses("no-such-if0").is_empty());
    }
}
