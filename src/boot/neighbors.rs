//! Which MAC an IPv4 address belongs to, for services that only see addresses (TFTP, HTTP): what
//! our DHCP server handed out or saw, else the kernel's neighbour table.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};

use crate::model::Mac;

const MAX_ENTRIES: usize = 100_000;

#[derive(Clone, Default)]
pub struct Neighbors {
    known: Arc<Mutex<HashMap<Ipv4Addr, Mac>>>,
}

impl Neighbors {
    pub fn learn(&self, ip: Ipv4Addr, mac: Mac) {
        if ip.is_unspecified() {
            return;
        }
        if let Ok(mut m) = self.known.lock() {
            if m.len() >= MAX_ENTRIES && !m.contains_key(&ip) {
                m.clear();
            }
            m.insert(ip, mac);
        }
    }

    pub fn mac_of(&self, ip: Ipv4Addr) -> Option<Mac> {
        if let Some(mac) = self.known.lock().ok().and_then(|m| m.get(&ip).copied()) {
            return Some(mac);
        }
        let table = std::fs::read_to_string("/proc/net/arp").ok()?;
        arp_lookup(&table, ip)
    }
}

/// Parses `/proc/net/arp` (header line, then `IP HWtype Flags HWaddress Mask Device`).
fn arp_lookup(table: &str, ip: Ipv4Addr) -> Option<Mac> {
    table.lines().skip(1).find_map(|line| {
        let cols: Vec<&str> = line.split_whitespace().collect();
        let (addr, flags, hw) = (cols.first()?, cols.get(2)?, cols.get(3)?);
        // Flags 0x0: an incomplete entry whose hardware address is all zeroes.
        if addr.parse::<Ipv4Addr>().ok()? != ip || *flags == "0x0" {
            return None;
        }
        hw.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_kernel_table() {
        let t = "IP address       HW type     Flags       HW address            Mask     Device\n\
                 10.213.0.50      0x1         0x2         52:54:00:13:01:00     *        ibbr0\n\
                 10.213.0.51      0x1         0x0         00:00:00:00:00:00     *        ibbr0\n";
        assert_eq!(arp_lookup(t, "10.213.0.50".parse().unwrap()), "52:54:00:13:01:00".parse().ok());
        assert_eq!(arp_lookup(t, "10.213.0.51".parse().unwrap()), None);
        assert_eq!(arp_lookup(t, "10.213.0.52".parse().unwrap()), None);
    }

    #[test]
    fn learned_addresses_win() {
        let n = Neighbors::default();
        let mac: Mac = "52:54:00:aa:bb:cc".parse().unwrap();
        n.learn("192.0.2.7".parse().unwrap(), mac);
        assert_eq!(n.mac_of("192.0.2.7".parse().unwrap()), Some(mac));
    }
}
