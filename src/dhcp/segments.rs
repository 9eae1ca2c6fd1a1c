//! The VNIs the DHCP server hands addresses out of, read from the store and re-read in the
//! background when the `vnis` or `assets` generation moves (checked every second), so a VNI
//! created or changed through the API takes effect without a restart and no packet waits for the
//! database.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use ipnet::{IpNet, Ipv4Net};

use super::leases::AddressRules;
use crate::app::vnis::Segment;
use crate::ipam::Pool;
use crate::model::Mac;
use crate::store::Store;
use crate::store::vnis::VniRow;

pub const REFRESH: Duration = Duration::from_secs(1);
const FORCED_MIN_GAP: Duration = Duration::from_millis(250);

/// One IPv4 VNI with a DHCP range, as the DHCP server needs it.
#[derive(Debug, Clone)]
pub struct DhcpSegment {
    pub vni_id: String,
    pub name: String,
    pub net: Ipv4Net,
    pub pool: Pool,
    pub range: (Ipv4Addr, Ipv4Addr),
    pub gateway: Option<Ipv4Addr>,
    pub dns: Vec<Ipv4Addr>,
    /// Option 15.
    pub domain: Option<String>,
    /// Addresses IPAM has allocated (to anyone): not for dynamic leases.
    pub ipam_held: HashSet<Ipv4Addr>,
    /// An asset's IPAM address on this VNI, by each of the asset's MACs: its static lease.
    pub reservations: HashMap<Mac, Ipv4Addr>,
}

impl AddressRules for DhcpSegment {
    fn range(&self) -> (Ipv4Addr, Ipv4Addr) {
        self.range
    }

    fn assignable(&self, ip: Ipv4Addr, mac: &Mac) -> bool {
        if self.reservations.get(mac) == Some(&ip) {
            return true;
        }
        self.range.0 <= ip
            && ip <= self.range.1
            && self.pool.check(IpAddr::V4(ip)).is_ok()
            && !self.ipam_held.contains(&ip)
    }

    fn reservation(&self, mac: &Mac) -> Option<Ipv4Addr> {
        self.reservations.get(mac).copied()
    }
}

impl DhcpSegment {
    fn from_row(v: &VniRow) -> Option<DhcpSegment> {
        let seg = Segment::from_row(v).ok()?;
        let IpNet::V4(net) = seg.net else { return None };
        let dhcp = seg.dhcp.as_ref()?;
        let (IpAddr::V4(start), IpAddr::V4(end)) = (dhcp.start, dhcp.end) else { return None };
        let pool = seg.pool().ok()?;
        let v4 = |ip: &IpAddr| match ip {
            IpAddr::V4(a) => Some(*a),
            IpAddr::V6(_) => None,
        };
        Some(DhcpSegment {
            vni_id: v.id.clone(),
            name: v.name.clone(),
            net,
            pool,
            range: (start, end),
            gateway: seg.gateway.as_ref().and_then(v4),
            dns: seg.dns.iter().filter_map(v4).collect(),
            domain: v.domain.clone(),
            ipam_held: HashSet::new(),
            reservations: HashMap::new(),
        })
    }

    /// Whether `ip` lies in this segment's network (a relay's giaddr chooses the segment).
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        self.net.contains(&ip)
    }
}

/// Every DHCP-enabled IPv4 VNI, by id, shared between the packet loops and the refresher.
#[derive(Clone, Default)]
pub struct Segments {
    inner: Arc<RwLock<HashMap<String, Arc<DhcpSegment>>>>,
    /// When a lookup missed and forced a refresh last (bounds how often misses reach the store).
    last_forced: Arc<tokio::sync::Mutex<Option<Instant>>>,
}

impl Segments {
    pub fn by_name(&self, name: &str) -> Option<Arc<DhcpSegment>> {
        let map = self.inner.read().ok()?;
        map.values().find(|s| s.name == name || s.vni_id == name).cloned()
    }

    /// The segment whose network holds `giaddr` (the most specific one if several do).
    pub fn by_relay(&self, giaddr: Ipv4Addr) -> Option<Arc<DhcpSegment>> {
        let map = self.inner.read().ok()?;
        map.values().filter(|s| s.contains(giaddr)).max_by_key(|s| s.net.prefix_len()).cloned()
    }

    /// After a miss: reads the VNIs again now (a VNI created a moment ago serves its first
    /// DISCOVER), at most once per `FORCED_MIN_GAP`.
    pub async fn refresh_after_miss(&self, store: &Store) {
        let mut last = self.last_forced.lock().await;
        if last.is_some_and(|t| t.elapsed() < FORCED_MIN_GAP) {
            return;
        }
        *last = Some(Instant::now());
        if let Err(e) = self.refresh(store).await {
            tracing::debug!(error = %e, "dhcp: refresh after a miss failed");
        }
    }

    /// Reads every VNI again.
    pub async fn refresh(&self, store: &Store) -> Result<(), sqlx::Error> {
        let mut conn = store.pool().acquire().await?;
        let rows = Store::vni_all(&mut conn).await?;
        let mut next = HashMap::new();
        for row in &rows {
            let Some(mut seg) = DhcpSegment::from_row(row) else { continue };
            for a in Store::allocation_addresses(&mut conn, &row.id).await? {
                if let Ok(ip) = a.parse() {
                    seg.ipam_held.insert(ip);
                }
            }
            let reserved: Vec<(String, String)> = sqlx::query_as(
                "SELECT a.address, m.mac FROM ip_allocations a JOIN asset_macs m ON m.asset_id = a.holder_id \
                 WHERE a.vni_id = $1 AND a.holder_type = 'asset'",
            )
            .bind(&row.id)
            .fetch_all(&mut *conn)
            .await?;
            for (address, mac) in reserved {
                if let (Ok(ip), Ok(mac)) = (address.parse(), mac.parse()) {
                    seg.reservations.insert(mac, ip);
                }
            }
            next.insert(seg.vni_id.clone(), Arc::new(seg));
        }
        if let Ok(mut map) = self.inner.write() {
            *map = next;
        }
        Ok(())
    }

    /// Re-reads the segments whenever VNIs, allocations or assets (their MACs are reservations)
    /// changed: one small query per `REFRESH` otherwise. Runs until the task is dropped.
    pub async fn keep_fresh(self, store: Store) {
        let mut tick = tokio::time::interval(REFRESH);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut seen: Option<(i64, i64)> = None;
        let mut failing = false;
        loop {
            tick.tick().await;
            let now = match (store.generation("vnis").await, store.generation("assets").await) {
                (Ok(v), Ok(a)) => Some((v, a)),
                _ => None,
            };
            if now.is_some() && now == seen {
                continue;
            }
            match self.refresh(&store).await {
                Ok(()) => {
                    failing = false;
                    seen = now;
                }
                Err(e) if !failing => {
                    failing = true;
                    tracing::warn!(error = %e, "dhcp: could not read the VNIs; serving the last known ones");
                }
                Err(_) => {}
            }
        }
    }
}
