//! One segment's leases, in memory (the store holds their durable copy; see `dhcp::persist`).
//! Pure: every decision takes `now` (Unix seconds), so the rules are unit-tested without clocks
//! or sockets. The table is authoritative while the server runs; it is loaded from the store at
//! start, so a restart never hands out an address that is still leased.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use crate::model::Mac;

/// How long an offered address is held for the client that was offered it.
pub const OFFER_HOLD_SECS: u64 = 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseState {
    /// Offered, not yet requested: held briefly, never persisted.
    Offered,
    Active,
    /// Given back by the client: free, but offered again to the same client first.
    Released,
    /// The client found the address in use (DECLINE): out of the pool until `expires`.
    Declined,
}

impl LeaseState {
    pub const fn as_str(self) -> &'static str {
        match self {
            LeaseState::Offered => "offered",
            LeaseState::Active => "active",
            LeaseState::Released => "released",
            LeaseState::Declined => "declined",
        }
    }

    pub fn parse(s: &str) -> Option<LeaseState> {
        Some(match s {
            "active" => LeaseState::Active,
            "released" => LeaseState::Released,
            "declined" => LeaseState::Declined,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub ip: Ipv4Addr,
    pub mac: Mac,
    pub state: LeaseState,
    /// Unix seconds.
    pub expires: u64,
    pub hostname: Option<String>,
    pub client_id: Option<Vec<u8>>,
}

impl Lease {
    /// Whether the address is unavailable to clients other than `mac` at `now`.
    fn blocks(&self, mac: &Mac, now: u64) -> bool {
        match self.state {
            LeaseState::Declined => self.expires > now,
            LeaseState::Offered | LeaseState::Active => self.expires > now && self.mac != *mac,
            LeaseState::Released => false,
        }
    }
}

/// The addresses a segment may hand out and the ones it must not.
pub trait AddressRules {
    /// The dynamic range, inclusive.
    fn range(&self) -> (Ipv4Addr, Ipv4Addr);
    /// Whether `ip` may be leased to `mac`: inside the range, not the gateway/network/broadcast,
    /// not reserved, not allocated through IPAM to someone else.
    fn assignable(&self, ip: Ipv4Addr, mac: &Mac) -> bool;
    /// The address IPAM holds for this client's asset on this segment, if any.
    fn reservation(&self, mac: &Mac) -> Option<Ipv4Addr>;
}

/// Why a REQUEST gets a NAK.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{0} is not an address this segment hands out")]
    NotAssignable(Ipv4Addr),
    #[error("{0} is leased to another client ({1})")]
    Taken(Ipv4Addr, Mac),
    #[error("{0} is quarantined after a DECLINE")]
    Quarantined(Ipv4Addr),
    #[error("{0} is reserved for this client's asset; it must use {1}")]
    WrongReservation(Ipv4Addr, Ipv4Addr),
}

/// A client's REQUEST for an address.
#[derive(Debug, Clone)]
pub struct Ask {
    pub mac: Mac,
    pub ip: Ipv4Addr,
    pub lease_secs: u64,
    pub hostname: Option<String>,
    pub client_id: Option<Vec<u8>>,
}

impl Ask {
    pub fn new(mac: Mac, ip: Ipv4Addr, lease_secs: u64) -> Ask {
        Ask { mac, ip, lease_secs, hostname: None, client_id: None }
    }
}

#[derive(Debug, Default)]
pub struct LeaseTable {
    by_ip: HashMap<Ipv4Addr, Lease>,
    by_mac: HashMap<Mac, Ipv4Addr>,
    /// Where the next scan for a free address starts (addresses just handed out are behind it).
    cursor: u32,
}

impl LeaseTable {
    /// A table holding `leases` (as loaded from the store).
    pub fn from_leases(leases: impl IntoIterator<Item = Lease>) -> LeaseTable {
        let mut t = LeaseTable::default();
        for l in leases {
            t.put(l);
        }
        t
    }

    pub fn get(&self, ip: Ipv4Addr) -> Option<&Lease> {
        self.by_ip.get(&ip)
    }

    pub fn of_client(&self, mac: &Mac) -> Option<&Lease> {
        self.by_mac.get(mac).and_then(|ip| self.by_ip.get(ip)).filter(|l| l.mac == *mac)
    }

    pub fn len(&self) -> usize {
        self.by_ip.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_ip.is_empty()
    }

    fn put(&mut self, l: Lease) {
        if l.state != LeaseState::Declined {
            self.by_mac.insert(l.mac, l.ip);
        }
        self.by_ip.insert(l.ip, l);
    }

    fn free_for(&self, ip: Ipv4Addr, mac: &Mac, rules: &impl AddressRules, now: u64) -> Result<(), Refusal> {
        if !rules.assignable(ip, mac) {
            return Err(Refusal::NotAssignable(ip));
        }
        match self.by_ip.get(&ip) {
            Some(l) if l.state == LeaseState::Declined && l.expires > now => Err(Refusal::Quarantined(ip)),
            Some(l) if l.blocks(mac, now) => Err(Refusal::Taken(ip, l.mac)),
            _ => Ok(()),
        }
    }

    /// Chooses the address to offer `mac` and holds it briefly: its reservation, else the address
    /// it holds or last held, else the one it asked for, else the next free one. None: the pool
    /// is exhausted.
    pub fn offer(
        &mut self,
        mac: Mac,
        requested: Option<Ipv4Addr>,
        rules: &impl AddressRules,
        now: u64,
    ) -> Option<Ipv4Addr> {
        let ip = self.choose(&mac, requested, rules, now)?;
        // An active lease stays active (and keeps its expiry): the offer only holds free addresses.
        let keep_active = self.by_ip.get(&ip).is_some_and(|l| l.mac == mac && l.state == LeaseState::Active);
        if !keep_active {
            let prev = self.by_ip.get(&ip).filter(|l| l.mac == mac);
            let (hostname, client_id) = prev.map(|l| (l.hostname.clone(), l.client_id.clone())).unwrap_or_default();
            self.put(Lease {
                ip,
                mac,
                state: LeaseState::Offered,
                expires: now + OFFER_HOLD_SECS,
                hostname,
                client_id,
            });
        }
        Some(ip)
    }

    fn choose(
        &mut self,
        mac: &Mac,
        requested: Option<Ipv4Addr>,
        rules: &impl AddressRules,
        now: u64,
    ) -> Option<Ipv4Addr> {
        if let Some(ip) = rules.reservation(mac) {
            return self.free_for(ip, mac, rules, now).is_ok().then_some(ip);
        }
        if let Some(l) = self.of_client(mac)
            && self.free_for(l.ip, mac, rules, now).is_ok()
        {
            return Some(l.ip);
        }
        if let Some(ip) = requested
            && self.free_for(ip, mac, rules, now).is_ok()
        {
            return Some(ip);
        }
        self.next_free(mac, rules, now)
    }

    /// Scans the range once from the cursor, wrapping; never-leased addresses and expired ones
    /// are both free.
    fn next_free(&mut self, mac: &Mac, rules: &impl AddressRules, now: u64) -> Option<Ipv4Addr> {
        let (start, end) = rules.range();
        let (start, end) = (u32::from(start), u32::from(end));
        if end < start {
            return None;
        }
        let size = u64::from(end - start) + 1;
        let from = if (start..=end).contains(&self.cursor) { self.cursor } else { start };
        for i in 0..size {
            // Wraps within [start, end]: offset from `from`, modulo the range size.
            let candidate = start + ((u64::from(from - start) + i) % size) as u32;
            let ip = Ipv4Addr::from(candidate);
            if self.free_for(ip, mac, rules, now).is_ok() {
                self.cursor = if candidate == end { start } else { candidate + 1 };
                return Some(ip);
            }
        }
        None
    }

    /// A REQUEST for `ip` (selecting, init-reboot, renewing or rebinding): the lease to persist
    /// before the ACK, plus the client's previous lease on another address, now released.
    pub fn request(
        &mut self,
        ask: Ask,
        rules: &impl AddressRules,
        now: u64,
    ) -> Result<(Lease, Option<Lease>), Refusal> {
        let Ask { mac, ip, lease_secs, hostname, client_id } = ask;
        if let Some(reserved) = rules.reservation(&mac)
            && reserved != ip
        {
            return Err(Refusal::WrongReservation(ip, reserved));
        }
        self.free_for(ip, &mac, rules, now)?;
        let previous = self.of_client(&mac).filter(|l| l.ip != ip && l.state == LeaseState::Active).cloned();
        let released = previous.map(|mut p| {
            p.state = LeaseState::Released;
            p.expires = now;
            self.by_ip.insert(p.ip, p.clone());
            p
        });
        let lease = Lease { ip, mac, state: LeaseState::Active, expires: now + lease_secs, hostname, client_id };
        self.put(lease.clone());
        Ok((lease, released))
    }

    /// RELEASE: the lease, now released, if `mac` held `ip`.
    pub fn release(&mut self, mac: Mac, ip: Ipv4Addr, now: u64) -> Option<Lease> {
        let l = self.by_ip.get_mut(&ip).filter(|l| l.mac == mac && l.state == LeaseState::Active)?;
        l.state = LeaseState::Released;
        l.expires = now;
        Some(l.clone())
    }

    /// DECLINE: `ip` is in use by someone we do not know: quarantine it. Only the client the
    /// address was offered or leased to may decline it (anyone else could empty the pool).
    pub fn decline(&mut self, mac: Mac, ip: Ipv4Addr, quarantine_secs: u64, now: u64) -> Option<Lease> {
        let l = self
            .by_ip
            .get_mut(&ip)
            .filter(|l| l.mac == mac && matches!(l.state, LeaseState::Offered | LeaseState::Active))?;
        l.state = LeaseState::Declined;
        l.expires = now + quarantine_secs;
        let l = l.clone();
        if self.by_mac.get(&mac) == Some(&ip) {
            self.by_mac.remove(&mac);
        }
        Some(l)
    }

    /// Forgets the offer made to `mac` (it chose another server).
    pub fn withdraw_offer(&mut self, mac: &Mac) {
        if let Some(ip) = self.by_mac.get(mac).copied()
            && self.by_ip.get(&ip).is_some_and(|l| l.state == LeaseState::Offered)
        {
            self.by_ip.remove(&ip);
            self.by_mac.remove(mac);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    struct Rules {
        start: Ipv4Addr,
        end: Ipv4Addr,
        taken: HashSet<Ipv4Addr>,
        reservations: HashMap<Mac, Ipv4Addr>,
    }

    impl AddressRules for Rules {
        fn range(&self) -> (Ipv4Addr, Ipv4Addr) {
            (self.start, self.end)
        }
        fn assignable(&self, ip: Ipv4Addr, mac: &Mac) -> bool {
            let mine = self.reservations.get(mac) == Some(&ip);
            mine || (self.start <= ip && ip <= self.end && !self.taken.contains(&ip))
        }
        fn reservation(&self, mac: &Mac) -> Option<Ipv4Addr> {
            self.reservations.get(mac).copied()
        }
    }

    fn rules(start: &str, end: &str) -> Rules {
        Rules { start: ip(start), end: ip(end), taken: HashSet::new(), reservations: HashMap::new() }
    }

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn mac(n: u8) -> Mac {
        Mac::from_octets([0x52, 0x54, 0, 0, 0, n])
    }

    #[test]
    fn offers_distinct_addresses_and_keeps_them_per_client() {
        let r = rules("10.0.0.10", "10.0.0.12");
        let mut t = LeaseTable::default();
        let a = t.offer(mac(1), None, &r, 100).unwrap();
        let b = t.offer(mac(2), None, &r, 100).unwrap();
        assert_ne!(a, b);
        assert_eq!(t.offer(mac(1), None, &r, 101), Some(a), "a repeated DISCOVER gets the same address");
        t.request(Ask::new(mac(1), a, 3600), &r, 102).unwrap();
        assert_eq!(t.offer(mac(1), None, &r, 200), Some(a), "a leased client is offered its lease");
        let c = t.offer(mac(3), None, &r, 100).unwrap();
        assert!(c != a && c != b);
        assert_eq!(t.offer(mac(4), None, &r, 100), None, "three addresses, three holders: exhausted");
        // Offers lapse: mac(2) never requested.
        assert_eq!(t.offer(mac(4), None, &r, 100 + OFFER_HOLD_SECS + 1), Some(b));
    }

    #[test]
    fn requests_are_refused_for_addresses_others_hold() {
        let r = rules("10.0.0.10", "10.0.0.20");
        let mut t = LeaseTable::default();
        t.request(Ask::new(mac(1), ip("10.0.0.15"), 60), &r, 0).unwrap();
        assert_eq!(
            t.request(Ask::new(mac(2), ip("10.0.0.15"), 60), &r, 30),
            Err(Refusal::Taken(ip("10.0.0.15"), mac(1)))
        );
        assert!(matches!(t.request(Ask::new(mac(2), ip("10.0.0.99"), 60), &r, 30), Err(Refusal::NotAssignable(_))));
        // Expired: free again.
        assert!(t.request(Ask::new(mac(2), ip("10.0.0.15"), 60), &r, 61).is_ok());
    }

    #[test]
    fn renewing_extends_and_moving_releases_the_old_address() {
        let r = rules("10.0.0.10", "10.0.0.20");
        let mut t = LeaseTable::default();
        let (l, _) = t.request(Ask::new(mac(1), ip("10.0.0.11"), 60), &r, 0).unwrap();
        assert_eq!(l.expires, 60);
        let (l, prev) = t.request(Ask::new(mac(1), ip("10.0.0.11"), 60), &r, 50).unwrap();
        assert_eq!((l.expires, prev), (110, None));
        let (_, prev) = t.request(Ask::new(mac(1), ip("10.0.0.12"), 60), &r, 51).unwrap();
        assert_eq!(prev.map(|p| (p.ip, p.state)), Some((ip("10.0.0.11"), LeaseState::Released)));
    }

    #[test]
    fn release_frees_and_the_same_client_gets_its_address_back() {
        let r = rules("10.0.0.10", "10.0.0.20");
        let mut t = LeaseTable::default();
        let a = t.offer(mac(1), None, &r, 0).unwrap();
        t.request(Ask::new(mac(1), a, 60), &r, 0).unwrap();
        assert!(t.release(mac(2), a, 1).is_none(), "only the holder releases");
        assert_eq!(t.release(mac(1), a, 1).map(|l| l.state), Some(LeaseState::Released));
        assert_eq!(t.offer(mac(1), None, &r, 2), Some(a));
    }

    #[test]
    fn declined_addresses_are_quarantined() {
        let r = rules("10.0.0.10", "10.0.0.11");
        let mut t = LeaseTable::default();
        let a = t.offer(mac(1), None, &r, 0).unwrap();
        assert!(t.decline(mac(9), a, 600, 1).is_none(), "a stranger cannot decline");
        assert_eq!(t.decline(mac(1), a, 600, 1).map(|l| l.state), Some(LeaseState::Declined));
        let b = t.offer(mac(1), None, &r, 2).unwrap();
        assert_ne!(a, b, "the declined address is not offered again");
        assert_eq!(t.request(Ask::new(mac(2), a, 60), &r, 3), Err(Refusal::Quarantined(a)));
        assert!(t.request(Ask::new(mac(2), a, 60), &r, 602).is_ok(), "quarantine ends");
    }

    #[test]
    fn reservations_and_ipam_allocations_are_respected() {
        let mut r = rules("10.0.0.10", "10.0.0.12");
        r.taken.insert(ip("10.0.0.10"));
        r.reservations.insert(mac(7), ip("10.0.0.50"));
        let mut t = LeaseTable::default();
        assert_eq!(t.offer(mac(7), None, &r, 0), Some(ip("10.0.0.50")), "the asset's own address");
        assert_eq!(
            t.request(Ask::new(mac(7), ip("10.0.0.11"), 60), &r, 0),
            Err(Refusal::WrongReservation(ip("10.0.0.11"), ip("10.0.0.50")))
        );
        assert_eq!(t.offer(mac(1), None, &r, 0), Some(ip("10.0.0.11")), "IPAM-held 10.0.0.10 skipped");
        assert_eq!(t.offer(mac(1), Some(ip("10.0.0.10")), &r, 0), Some(ip("10.0.0.11")));
    }

    #[test]
    fn loaded_leases_survive_a_restart() {
        let r = rules("10.0.0.10", "10.0.0.10");
        let held = Lease {
            ip: ip("10.0.0.10"),
            mac: mac(1),
            state: LeaseState::Active,
            expires: 1000,
            hostname: None,
            client_id: None,
        };
        let mut t = LeaseTable::from_leases([held]);
        assert_eq!(t.offer(mac(2), None, &r, 10), None, "still leased after the restart");
        assert_eq!(t.offer(mac(1), None, &r, 10), Some(ip("10.0.0.10")));
    }
}
