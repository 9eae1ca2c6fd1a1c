//! The host's network interfaces, as far as the boot services need them: an interface's IPv4
//! addresses (DHCP server identifier, TFTP bind addresses, the URL clients are told) and its index.

use std::ffi::CStr;
use std::net::Ipv4Addr;

/// An IPv4 address on an interface, with its prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IfAddr {
    pub addr: Ipv4Addr,
    pub prefix_len: u8,
}

/// The IPv4 addresses of interface `name` (empty if it has none or does not exist).
pub fn ipv4_addrs(name: &str) -> std::io::Result<Vec<IfAddr>> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list we free with freeifaddrs below.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mut out = Vec::new();
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned, not yet freed.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        if ifa.ifa_name.is_null() || ifa.ifa_addr.is_null() {
            continue;
        }
        // SAFETY: ifa_name is a NUL-terminated string owned by the list.
        let ifname = unsafe { CStr::from_ptr(ifa.ifa_name) };
        if ifname.to_bytes() != name.as_bytes() {
            continue;
        }
        // SAFETY: ifa_addr is non-null and points at a sockaddr of the family it states.
        if i32::from(unsafe { (*ifa.ifa_addr).sa_family }) != libc::AF_INET {
            continue;
        }
        // SAFETY: family AF_INET: the sockaddr is a sockaddr_in (and so is the netmask).
        let sin = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in) };
        let addr = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
        let prefix_len = if ifa.ifa_netmask.is_null() {
            32
        } else {
            // SAFETY: as above.
            let mask = unsafe { &*(ifa.ifa_netmask as *const libc::sockaddr_in) };
            u32::from_be(mask.sin_addr.s_addr).count_ones() as u8
        };
        out.push(IfAddr { addr, prefix_len });
    }
    // SAFETY: `head` came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(head) };
    Ok(out)
}

/// The interface's first IPv4 address.
pub fn first_ipv4(name: &str) -> Option<IfAddr> {
    ipv4_addrs(name).ok().and_then(|a| a.into_iter().next())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_has_its_address() {
        let lo = ipv4_addrs("lo").expect("getifaddrs");
        assert!(lo.iter().any(|a| a.addr == Ipv4Addr::LOCALHOST && a.prefix_len == 8), "{lo:?}");
        assert!(ipv4_addrs("ib-no-such-if").expect("getifaddrs").is_empty());
    }
}
