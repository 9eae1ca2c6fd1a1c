//! IP address management, pure: which addresses of a network segment may be handed out, the next
//! free one, and whether two networks overlap. The store records who holds each address (a
//! unique key per segment and address is the last word under concurrency); this module decides.

use std::collections::BTreeSet;
use std::net::IpAddr;

use ipnet::IpNet;

/// An inclusive address range, e.g. a DHCP pool or a reserved block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub start: IpAddr,
    pub end: IpAddr,
}

impl Range {
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.start <= ip && ip <= self.end
    }
}

/// A segment's addressing: its network, gateway, reserved ranges and, optionally, the range that
/// allocations are drawn from (default: the whole network).
#[derive(Debug, Clone)]
pub struct Pool {
    pub net: IpNet,
    pub gateway: Option<IpAddr>,
    pub reserved: Vec<Range>,
    pub range: Option<Range>,
}

/// Why an address cannot be allocated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unassignable {
    #[error("{0} is outside the network {1}")]
    OutsideNetwork(IpAddr, IpNet),
    #[error("{0} is the network address")]
    NetworkAddress(IpAddr),
    #[error("{0} is the broadcast address")]
    BroadcastAddress(IpAddr),
    #[error("{0} is the gateway")]
    Gateway(IpAddr),
    #[error("{0} is in a reserved range ({1}-{2})")]
    Reserved(IpAddr, IpAddr, IpAddr),
    #[error("{0} is outside the allocation range {1}-{2}")]
    OutsideRange(IpAddr, IpAddr, IpAddr),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    #[error("range {0}-{1} is not inside {2}")]
    RangeOutsideNetwork(IpAddr, IpAddr, IpNet),
    #[error("range start {0} is after its end {1}")]
    RangeReversed(IpAddr, IpAddr),
    #[error("gateway {0} is not inside {1}")]
    GatewayOutsideNetwork(IpAddr, IpNet),
}

impl Pool {
    /// Builds a pool after checking that every range and the gateway lie inside the network.
    pub fn new(
        net: IpNet,
        gateway: Option<IpAddr>,
        reserved: Vec<Range>,
        range: Option<Range>,
    ) -> Result<Self, PoolError> {
        let net = net.trunc();
        for r in reserved.iter().chain(range.iter()) {
            if r.start > r.end {
                return Err(PoolError::RangeReversed(r.start, r.end));
            }
            if !net.contains(&r.start) || !net.contains(&r.end) {
                return Err(PoolError::RangeOutsideNetwork(r.start, r.end, net));
            }
        }
        if let Some(g) = gateway
            && !net.contains(&g)
        {
            return Err(PoolError::GatewayOutsideNetwork(g, net));
        }
        Ok(Pool { net, gateway, reserved, range })
    }

    /// Whether `ip` may be handed out, and if not, why.
    pub fn check(&self, ip: IpAddr) -> Result<(), Unassignable> {
        if !self.net.contains(&ip) {
            return Err(Unassignable::OutsideNetwork(ip, self.net));
        }
        // /31 and /32 (and IPv6 /127, /128) have no network or broadcast address to spare.
        let tiny = self.net.max_prefix_len() - self.net.prefix_len() <= 1;
        if !tiny && ip == self.net.network() {
            return Err(Unassignable::NetworkAddress(ip));
        }
        if !tiny && matches!(self.net, IpNet::V4(_)) && ip == self.net.broadcast() {
            return Err(Unassignable::BroadcastAddress(ip));
        }
        if self.gateway == Some(ip) {
            return Err(Unassignable::Gateway(ip));
        }
        if let Some(r) = self.reserved.iter().find(|r| r.contains(ip)) {
            return Err(Unassignable::Reserved(ip, r.start, r.end));
        }
        if let Some(r) = self.range
            && !r.contains(ip)
        {
            return Err(Unassignable::OutsideRange(ip, r.start, r.end));
        }
        Ok(())
    }

    /// The lowest assignable address not in `taken`, scanning at most `limit` candidates (a /64
    /// has more addresses than any scan should visit).
    pub fn next_free(&self, taken: &BTreeSet<IpAddr>, limit: u64) -> Option<IpAddr> {
        self.next_free_from(None, taken, limit)
    }

    /// `next_free`, starting at `from` instead of the start of the pool when it lies inside it:
    /// the allocator's shortcut when it knows every assignable address below `from` is taken.
    pub fn next_free_from(&self, from: Option<IpAddr>, taken: &BTreeSet<IpAddr>, limit: u64) -> Option<IpAddr> {
        let (first, last) = match self.range {
            Some(r) => (r.start, r.end),
            None => (self.net.network(), self.net.broadcast()),
        };
        let mut ip = match from {
            Some(f) if f > first && f <= last && f.is_ipv4() == first.is_ipv4() => f,
            _ => first,
        };
        for _ in 0..limit {
            if !taken.contains(&ip) && self.check(ip).is_ok() {
                return Some(ip);
            }
            if ip >= last {
                return None;
            }
            // A reserved range is skipped in one step rather than address by address.
            ip = match self.reserved.iter().find(|r| r.contains(ip)) {
                Some(r) if r.end < last => next_addr(r.end)?,
                Some(_) => return None,
                None => next_addr(ip)?,
            };
        }
        None
    }
}

impl Pool {
    /// How many addresses `next_free` can ever hand out: the allocation range (or the network)
    /// minus the network, broadcast, gateway and reserved addresses inside it. Exact even when the
    /// exclusions overlap.
    pub fn capacity(&self) -> u128 {
        let (lo, hi) = match self.range {
            Some(r) => (num(r.start), num(r.end)),
            None => (num(self.net.network()), num(self.net.broadcast())),
        };
        let tiny = self.net.max_prefix_len() - self.net.prefix_len() <= 1;
        let mut excluded: Vec<(u128, u128)> = self.reserved.iter().map(|r| (num(r.start), num(r.end))).collect();
        let mut single = |ip: IpAddr| excluded.push((num(ip), num(ip)));
        if !tiny {
            single(self.net.network());
            if matches!(self.net, IpNet::V4(_)) {
                single(self.net.broadcast());
            }
        }
        if let Some(g) = self.gateway {
            single(g);
        }
        excluded.sort_unstable();
        // Merge, clip to [lo, hi], and subtract.
        let mut removed: u128 = 0;
        let mut cur: Option<(u128, u128)> = None;
        for (s, e) in excluded {
            match cur {
                Some((cs, ce)) if s <= ce.saturating_add(1) => cur = Some((cs, ce.max(e))),
                Some(done) => {
                    removed += clipped(done, lo, hi);
                    cur = Some((s, e));
                }
                None => cur = Some((s, e)),
            }
        }
        if let Some(done) = cur {
            removed += clipped(done, lo, hi);
        }
        (hi - lo).saturating_add(1).saturating_sub(removed)
    }
}

fn clipped((s, e): (u128, u128), lo: u128, hi: u128) -> u128 {
    let (s, e) = (s.max(lo), e.min(hi));
    if s > e { 0 } else { e - s + 1 }
}

fn num(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// A text key whose order is the addresses' numeric order (`4:0a000005`, `6:fd00…`).
pub fn sort_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => format!("4:{:08x}", u32::from(v4)),
        IpAddr::V6(v6) => format!("6:{:032x}", u128::from(v6)),
    }
}

/// Do two networks share any address?
pub fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

fn next_addr(ip: IpAddr) -> Option<IpAddr> {
    match ip {
        IpAddr::V4(v4) => u32::from(v4).checked_add(1).map(|n| IpAddr::V4(n.into())),
        IpAddr::V6(v6) => u128::from(v6).checked_add(1).map(|n| IpAddr::V6(n.into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_free_from_a_hint_skips_what_is_below_it() {
        let net: IpNet = "10.9.0.0/24".parse().unwrap();
        let pool = Pool::new(net, Some("10.9.0.1".parse().unwrap()), Vec::new(), None).unwrap();
        let taken: BTreeSet<IpAddr> = ["10.9.0.2", "10.9.0.3"].iter().map(|a| a.parse().unwrap()).collect();
        assert_eq!(pool.next_free_from(None, &taken, 1000), Some("10.9.0.4".parse().unwrap()));
        assert_eq!(
            pool.next_free_from(Some("10.9.0.3".parse().unwrap()), &taken, 1000),
            Some("10.9.0.4".parse().unwrap())
        );
        assert_eq!(
            pool.next_free_from(Some("10.9.0.9".parse().unwrap()), &taken, 1000),
            Some("10.9.0.9".parse().unwrap())
        );
        // A hint outside the pool (or of the other family) is ignored.
        assert_eq!(
            pool.next_free_from(Some("10.10.0.9".parse().unwrap()), &taken, 1000),
            Some("10.9.0.4".parse().unwrap())
        );
        assert_eq!(pool.next_free_from(Some("::1".parse().unwrap()), &taken, 1000), Some("10.9.0.4".parse().unwrap()));
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn pool(net: &str, gw: Option<&str>, reserved: &[(&str, &str)], range: Option<(&str, &str)>) -> Pool {
        Pool::new(
            net.parse().unwrap(),
            gw.map(ip),
            reserved.iter().map(|(a, b)| Range { start: ip(a), end: ip(b) }).collect(),
            range.map(|(a, b)| Range { start: ip(a), end: ip(b) }),
        )
        .unwrap()
    }

    #[test]
    fn never_hands_out_network_broadcast_gateway_or_reserved() {
        let p = pool("10.0.0.0/29", Some("10.0.0.1"), &[("10.0.0.2", "10.0.0.3")], None);
        assert_eq!(p.check(ip("10.0.0.0")), Err(Unassignable::NetworkAddress(ip("10.0.0.0"))));
        assert_eq!(p.check(ip("10.0.0.7")), Err(Unassignable::BroadcastAddress(ip("10.0.0.7"))));
        assert_eq!(p.check(ip("10.0.0.1")), Err(Unassignable::Gateway(ip("10.0.0.1"))));
        assert!(matches!(p.check(ip("10.0.0.3")), Err(Unassignable::Reserved(..))));
        assert!(matches!(p.check(ip("10.0.1.1")), Err(Unassignable::OutsideNetwork(..))));
        let mut taken = BTreeSet::new();
        let mut got = Vec::new();
        while let Some(a) = p.next_free(&taken, 1 << 20) {
            taken.insert(a);
            got.push(a);
        }
        assert_eq!(got, vec![ip("10.0.0.4"), ip("10.0.0.5"), ip("10.0.0.6")]);
    }

    #[test]
    fn allocation_range_bounds_the_scan() {
        let p = pool("192.168.10.0/24", Some("192.168.10.1"), &[], Some(("192.168.10.100", "192.168.10.101")));
        let mut taken = BTreeSet::new();
        assert_eq!(p.next_free(&taken, 1000), Some(ip("192.168.10.100")));
        taken.insert(ip("192.168.10.100"));
        assert_eq!(p.next_free(&taken, 1000), Some(ip("192.168.10.101")));
        taken.insert(ip("192.168.10.101"));
        assert_eq!(p.next_free(&taken, 1000), None);
        assert!(matches!(p.check(ip("192.168.10.5")), Err(Unassignable::OutsideRange(..))));
    }

    #[test]
    fn ipv6_and_tiny_networks() {
        let p = pool("fd00:1::/126", None, &[], None);
        assert!(p.check(ip("fd00:1::")).is_err(), "the subnet-router anycast address");
        assert!(p.check(ip("fd00:1::3")).is_ok(), "IPv6 has no broadcast");
        let p31 = pool("10.9.9.0/31", None, &[], None);
        assert!(p31.check(ip("10.9.9.0")).is_ok() && p31.check(ip("10.9.9.1")).is_ok());
    }

    #[test]
    fn pools_reject_ranges_outside_their_network() {
        let net: IpNet = "10.0.0.0/24".parse().unwrap();
        let outside = Range { start: ip("10.0.0.200"), end: ip("10.0.1.5") };
        assert!(matches!(Pool::new(net, None, vec![outside], None), Err(PoolError::RangeOutsideNetwork(..))));
        let reversed = Range { start: ip("10.0.0.9"), end: ip("10.0.0.3") };
        assert!(matches!(Pool::new(net, None, vec![], Some(reversed)), Err(PoolError::RangeReversed(..))));
        assert!(matches!(
            Pool::new(net, Some(ip("10.1.0.1")), vec![], None),
            Err(PoolError::GatewayOutsideNetwork(..))
        ));
    }

    #[test]
    fn capacity_counts_what_next_free_can_hand_out() {
        assert_eq!(pool("10.0.0.0/24", Some("10.0.0.1"), &[], None).capacity(), 253);
        let p = pool("10.0.0.0/29", Some("10.0.0.1"), &[("10.0.0.1", "10.0.0.3")], None);
        assert_eq!(p.capacity(), 3, "gateway inside a reserved range counts once");
        let r =
            pool("10.0.0.0/24", Some("10.0.0.1"), &[("10.0.0.100", "10.0.0.109")], Some(("10.0.0.100", "10.0.0.199")));
        assert_eq!(r.capacity(), 90);
        assert_eq!(pool("fd00::/64", None, &[], None).capacity(), (1u128 << 64) - 1);
        assert!(sort_key(ip("10.0.0.2")) < sort_key(ip("10.0.0.10")));
    }

    #[test]
    fn overlap_is_symmetric_and_exact() {
        let n = |s: &str| s.parse::<IpNet>().unwrap();
        assert!(overlaps(&n("10.0.0.0/16"), &n("10.0.5.0/24")));
        assert!(overlaps(&n("10.0.5.0/24"), &n("10.0.0.0/16")));
        assert!(!overlaps(&n("10.0.0.0/24"), &n("10.0.1.0/24")));
        assert!(!overlaps(&n("10.0.0.0/8"), &n("fd00::/8")));
        assert!(overlaps(&n("fd00::/8"), &n("fd00:1::/64")));
    }

    #[test]
    fn a_slash_16_allocates_densely_and_reports_exhaustion() {
        let p = pool("10.20.0.0/16", Some("10.20.0.1"), &[("10.20.255.0", "10.20.255.255")], None);
        let mut taken = BTreeSet::new();
        for _ in 0..1000 {
            let a = p.next_free(&taken, 1 << 20).unwrap();
            assert!(p.check(a).is_ok());
            assert!(taken.insert(a), "handed out twice: {a}");
        }
        assert_eq!(taken.iter().next(), Some(&ip("10.20.0.2")));
        // Exhaustion: every assignable address taken.
        let small = pool("10.30.0.0/30", None, &[], None);
        let all: BTreeSet<IpAddr> = [ip("10.30.0.1"), ip("10.30.0.2")].into();
        assert_eq!(small.next_free(&all, 1 << 20), None);
    }
}
