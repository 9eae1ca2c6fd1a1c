//! Network segments (VNIs, KairOS shape) and address allocation from them (IPAM). DHCP pools and
//! cluster node addresses are drawn from here by later issues.

use std::collections::BTreeSet;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{AppState, Page, PageRequest, present};
use crate::audit::{self, Event};
use crate::auth::Actor;
use crate::error::{Error, Result};
use crate::ipam::{self, Pool, Range};
use crate::model::{IdKind, Scope, ids, new_id, now_rfc3339};
use crate::store::vnis::{AllocationRow, VniCounts, VniRow};
use crate::store::{Store, is_unique_violation};

pub const MAX_VNI: i64 = 16_777_215;
/// How many candidate addresses one allocation may scan (a /12 worth).
const SCAN_LIMIT: u64 = 1 << 20;
const ALLOCATION_ATTEMPTS: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RangeBody {
    #[schema(value_type = String)]
    pub start: IpAddr,
    #[schema(value_type = String)]
    pub end: IpAddr,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateVni {
    pub name: String,
    /// IPv4 or IPv6 network, e.g. `10.213.0.0/24`.
    pub cidr: String,
    /// VXLAN/VLAN number, 1-16777215 (PSKs' `vlan_id` refers to it).
    pub vni: i64,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub dhcp: Option<RangeBody>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub gateway: Option<IpAddr>,
    #[serde(default)]
    #[schema(value_type = Vec<String>)]
    pub dns_servers: Vec<IpAddr>,
    #[serde(default)]
    pub reserved: Vec<RangeBody>,
    /// Domain name handed to DHCP clients (option 15).
    #[serde(default)]
    pub domain: Option<String>,
}

/// Partial update; `cidr` and `vni` are immutable (allocations depend on them).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateVni {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<RangeBody>)]
    pub dhcp: Option<Option<RangeBody>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub gateway: Option<Option<IpAddr>>,
    #[serde(default)]
    #[schema(value_type = Option<Vec<String>>)]
    pub dns_servers: Option<Vec<IpAddr>>,
    #[serde(default)]
    pub reserved: Option<Vec<RangeBody>>,
    /// `null` removes it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub domain: Option<Option<String>>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub cidr: Option<serde_json::Value>,
    #[serde(default)]
    #[schema(value_type = Option<i64>)]
    pub vni: Option<serde_json::Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VniView {
    pub id: String,
    pub name: String,
    pub cidr: String,
    pub vni: i64,
    pub description: String,
    pub status: String,
    pub dhcp: Option<RangeBody>,
    #[schema(value_type = Option<String>)]
    pub gateway: Option<IpAddr>,
    #[schema(value_type = Vec<String>)]
    pub dns_servers: Vec<IpAddr>,
    pub reserved: Vec<RangeBody>,
    /// DHCP option 15; null when unset.
    pub domain: Option<String>,
    pub allocation_count: i64,
    pub asset_count: i64,
    pub device_count: i64,
    /// Addresses that can be allocated in all (network, broadcast, gateway and reserved excluded).
    #[schema(value_type = u64)]
    pub capacity: u128,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AllocateRequest {
    /// `asset`, `device`, `cluster` or `other`.
    pub holder_type: String,
    pub holder_id: String,
    /// A specific address; omitted: the lowest free one.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub address: Option<IpAddr>,
}

const HOLDER_TYPES: [&str; 4] = ["asset", "device", "cluster", "other"];

/// A VNI's row parsed into typed parts.
pub struct Segment {
    pub net: IpNet,
    pub dhcp: Option<RangeBody>,
    pub gateway: Option<IpAddr>,
    pub dns: Vec<IpAddr>,
    pub reserved: Vec<RangeBody>,
}

impl Segment {
    pub fn pool(&self) -> Result<Pool> {
        let range = |r: &RangeBody| Range { start: r.start, end: r.end };
        Pool::new(self.net, self.gateway, self.reserved.iter().map(range).collect(), self.dhcp.as_ref().map(range))
            .map_err(|e| pool_error(&e))
    }

    pub fn from_row(v: &VniRow) -> Result<Self> {
        let bad = |what: &str| Error::internal(format_args!("vnis.{what} of {} is unreadable", v.id));
        let ip = |s: &Option<String>| s.as_deref().map(|s| s.parse::<IpAddr>()).transpose();
        let dhcp =
            match (ip(&v.dhcp_start).map_err(|_| bad("dhcp_start"))?, ip(&v.dhcp_end).map_err(|_| bad("dhcp_end"))?) {
                (Some(start), Some(end)) => Some(RangeBody { start, end }),
                _ => None,
            };
        Ok(Segment {
            net: v.cidr.parse().map_err(|_| bad("cidr"))?,
            dhcp,
            gateway: ip(&v.gateway).map_err(|_| bad("gateway"))?,
            dns: serde_json::from_str(&v.dns_servers).map_err(|_| bad("dns_servers"))?,
            reserved: serde_json::from_str(&v.reserved).map_err(|_| bad("reserved"))?,
        })
    }
}

/// A DNS domain name (RFC 1035 preferred syntax, lowercased): labels of letters, digits and
/// hyphens, 1-63 characters each, 253 in all.
fn validate_domain(d: &str) -> Result<String> {
    let d = d.trim_end_matches('.').to_ascii_lowercase();
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if d.is_empty() || d.len() > 253 || !d.split('.').all(label_ok) {
        return Err(Error::invalid_field("domain", format!("`{d}` is not a domain name (e.g. rack-a.example.com)")));
    }
    Ok(d)
}

fn pool_error(e: &ipam::PoolError) -> Error {
    let field = match e {
        ipam::PoolError::GatewayOutsideNetwork(..) => "gateway",
        _ => "range",
    };
    Error::invalid_field(field, e.to_string())
}

/// Checks each part on its own so the error names the field at fault.
fn validate_segment(s: &Segment) -> Result<()> {
    let in_net = |ip: IpAddr| s.net.contains(&ip);
    if let Some(r) = &s.dhcp
        && (r.start > r.end || !in_net(r.start) || !in_net(r.end))
    {
        return Err(Error::invalid_field(
            "dhcp",
            format!("dhcp range {}-{} must lie inside {} with start <= end", r.start, r.end, s.net),
        ));
    }
    if let Some(g) = s.gateway
        && !in_net(g)
    {
        return Err(Error::invalid_field("gateway", format!("gateway {g} is not inside {}", s.net)));
    }
    for r in &s.reserved {
        if r.start > r.end || !in_net(r.start) || !in_net(r.end) {
            return Err(Error::invalid_field(
                "reserved",
                format!("reserved range {}-{} must lie inside {} with start <= end", r.start, r.end, s.net),
            ));
        }
    }
    if s.dns.len() > 8 {
        return Err(Error::invalid_field("dns_servers", "at most 8 DNS servers"));
    }
    s.pool().map(|_| ())
}

fn validate_name(name: &str) -> Result<()> {
    let ok = (1..=64).contains(&name.len())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'));
    if !ok {
        return Err(Error::invalid_field("name", "name must be 1-64 characters of a-z, 0-9, `-`, `_`, `.`"));
    }
    Ok(())
}

fn parse_cidr(cidr: &str) -> Result<IpNet> {
    cidr.trim().parse::<IpNet>().map(|n| n.trunc()).map_err(|_| {
        Error::invalid_field(
            "cidr",
            format!("`{cidr}` is not a network in CIDR notation (e.g. 10.213.0.0/24 or fd00:1::/64)"),
        )
    })
}

fn vni_not_found(id: &str) -> Error {
    Error::not_found("VNI_NOT_FOUND", format!("VNI {id} not found"))
}

fn json_text<T: Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(Error::internal)
}

impl AppState {
    fn vni_view(&self, v: &VniRow, counts: VniCounts) -> Result<VniView> {
        let seg = Segment::from_row(v)?;
        Ok(VniView {
            id: v.id.clone(),
            name: v.name.clone(),
            cidr: seg.net.to_string(),
            vni: v.vni,
            description: v.description.clone(),
            status: v.status.clone(),
            capacity: seg.pool()?.capacity(),
            dhcp: seg.dhcp,
            gateway: seg.gateway,
            dns_servers: seg.dns,
            reserved: seg.reserved,
            domain: v.domain.clone(),
            allocation_count: counts.allocations,
            asset_count: counts.assets,
            device_count: counts.devices,
            created_at: v.created_at.clone(),
            updated_at: v.updated_at.clone(),
        })
    }

    /// A VNI whose network overlaps `net`, other than `except`.
    fn overlapping<'a>(all: &'a [VniRow], net: &IpNet, except: Option<&str>) -> Option<&'a VniRow> {
        all.iter()
            .filter(|v| Some(v.id.as_str()) != except)
            .find(|v| v.cidr.parse::<IpNet>().is_ok_and(|other| ipam::overlaps(&other, net)))
    }

    pub async fn vni_create(&self, actor: &Actor, req: CreateVni) -> Result<VniView> {
        actor.require(Scope::VnisWrite)?;
        validate_name(&req.name)?;
        let net = parse_cidr(&req.cidr)?;
        if !(1..=MAX_VNI).contains(&req.vni) {
            return Err(Error::invalid_field("vni", format!("vni must be 1-{MAX_VNI}, got {}", req.vni)));
        }
        let seg = Segment { net, dhcp: req.dhcp, gateway: req.gateway, dns: req.dns_servers, reserved: req.reserved };
        validate_segment(&seg)?;
        let domain = req.domain.map(|d| validate_domain(&d)).transpose()?;
        let now = now_rfc3339();
        let row = VniRow {
            domain,
            id: new_id(IdKind::Vni),
            name: req.name,
            cidr: net.to_string(),
            vni: req.vni,
            description: req.description.unwrap_or_default(),
            status: "active".into(),
            dhcp_start: seg.dhcp.map(|r| r.start.to_string()),
            dhcp_end: seg.dhcp.map(|r| r.end.to_string()),
            gateway: seg.gateway.map(|g| g.to_string()),
            dns_servers: json_text(&seg.dns)?,
            reserved: json_text(&seg.reserved)?,
            generation: 1,
            created_at: now.clone(),
            updated_at: now,
        };
        let mut tx = self.store.begin().await?;
        // Overlap is a rule across rows: serialise the check with other writers.
        Store::serialize_writes(&mut tx).await?;
        let all = Store::vni_all(&mut tx).await?;
        if let Some(other) = Self::overlapping(&all, &net, None) {
            return Err(Error::conflict(
                "CIDR_OVERLAP",
                format!("{net} overlaps VNI `{}` ({}, {})", other.name, other.id, other.cidr),
                Some(serde_json::json!({"field": "cidr", "vni_id": other.id, "name": other.name, "cidr": other.cidr})),
            ));
        }
        if let Some(other) = all.iter().find(|v| v.name == row.name) {
            return Err(Error::conflict(
                "DUPLICATE_NAME",
                format!("a VNI named `{}` exists", row.name),
                Some(serde_json::json!({"field": "name", "vni_id": other.id})),
            ));
        }
        if let Some(other) = all.iter().find(|v| v.vni == row.vni) {
            return Err(Error::conflict(
                "DUPLICATE_VNI",
                format!("VNI number {} is taken by `{}`", row.vni, other.name),
                Some(serde_json::json!({"field": "vni", "vni_id": other.id})),
            ));
        }
        Store::vni_insert(&mut tx, &row).await?;
        audit::append(
            &mut tx,
            actor,
            Event::new("vni.create", "vni", &row.id)
                .with_details(serde_json::json!({"name": row.name, "cidr": row.cidr, "vni": row.vni})),
        )
        .await?;
        tx.commit().await?;
        self.vni_view(&row, VniCounts::default())
    }

    pub async fn vni_get(&self, actor: &Actor, id: &str) -> Result<VniView> {
        actor.require(Scope::VnisRead)?;
        let row = self.load_vni(id).await?;
        self.vni_view(&row, self.store.vni_counts(id).await?)
    }

    async fn load_vni(&self, id: &str) -> Result<VniRow> {
        if !ids::looks_like(IdKind::Vni, id) {
            return Err(vni_not_found(id));
        }
        self.store.vni_get(id).await?.ok_or_else(|| vni_not_found(id))
    }

    pub async fn vni_list(&self, actor: &Actor, page: PageRequest) -> Result<Page<VniView>> {
        actor.require(Scope::VnisRead)?;
        let (rows, total) = self.store.vni_list(page.limit(), page.offset()).await?;
        let mut items = Vec::with_capacity(rows.len());
        for r in &rows {
            items.push(self.vni_view(r, self.store.vni_counts(&r.id).await?)?);
        }
        Ok(Page { items, page, total })
    }

    pub async fn vni_update(&self, actor: &Actor, id: &str, req: UpdateVni) -> Result<VniView> {
        actor.require(Scope::VnisWrite)?;
        for (field, v) in [("cidr", &req.cidr), ("vni", &req.vni)] {
            if v.is_some() {
                return Err(Error::Unprocessable {
                    code: "IMMUTABLE_FIELD",
                    message: format!("`{field}` cannot change: create a new VNI instead"),
                    details: Some(serde_json::json!({"field": field})),
                });
            }
        }
        if !ids::looks_like(IdKind::Vni, id) {
            return Err(vni_not_found(id));
        }
        let mut tx = self.store.begin().await?;
        Store::serialize_writes(&mut tx).await?;
        let mut row = Store::vni_get_in(&mut tx, id).await?.ok_or_else(|| vni_not_found(id))?;
        let mut seg = Segment::from_row(&row)?;
        let mut changed = Vec::new();
        if let Some(name) = req.name {
            validate_name(&name)?;
            let all = Store::vni_all(&mut tx).await?;
            if let Some(other) = all.iter().find(|v| v.name == name && v.id != row.id) {
                return Err(Error::conflict(
                    "DUPLICATE_NAME",
                    format!("a VNI named `{name}` exists"),
                    Some(serde_json::json!({"field": "name", "vni_id": other.id})),
                ));
            }
            row.name = name;
            changed.push("name");
        }
        if let Some(d) = req.description {
            row.description = d;
            changed.push("description");
        }
        if let Some(d) = req.dhcp {
            seg.dhcp = d;
            changed.push("dhcp");
        }
        if let Some(g) = req.gateway {
            seg.gateway = g;
            changed.push("gateway");
        }
        if let Some(d) = req.dns_servers {
            seg.dns = d;
            changed.push("dns_servers");
        }
        if let Some(r) = req.reserved {
            seg.reserved = r;
            changed.push("reserved");
        }
        if let Some(d) = req.domain {
            row.domain = d.map(|d| validate_domain(&d)).transpose()?;
            changed.push("domain");
        }
        validate_segment(&seg)?;
        row.dhcp_start = seg.dhcp.map(|r| r.start.to_string());
        row.dhcp_end = seg.dhcp.map(|r| r.end.to_string());
        row.gateway = seg.gateway.map(|g| g.to_string());
        row.dns_servers = json_text(&seg.dns)?;
        row.reserved = json_text(&seg.reserved)?;
        let now = now_rfc3339();
        if !Store::vni_update(&mut tx, &row, &now).await? {
            return Err(Error::conflict("VNI_CHANGED", "the VNI changed while this update ran: retry", None));
        }
        audit::append(
            &mut tx,
            actor,
            Event::new("vni.update", "vni", id).with_details(serde_json::json!({"changed": changed})),
        )
        .await?;
        tx.commit().await?;
        // Gateway, reserved ranges or the DHCP range may have moved: rescan from the start.
        self.store.set_allocation_hint(id, None);
        row.generation += 1;
        row.updated_at = now;
        self.vni_view(&row, self.store.vni_counts(id).await?)
    }

    pub async fn vni_delete(&self, actor: &Actor, id: &str) -> Result<()> {
        actor.require(Scope::VnisWrite)?;
        if !ids::looks_like(IdKind::Vni, id) {
            return Err(vni_not_found(id));
        }
        let mut tx = self.store.begin().await?;
        Store::serialize_writes(&mut tx).await?;
        let row = Store::vni_get_in(&mut tx, id).await?.ok_or_else(|| vni_not_found(id))?;
        let held = Store::allocation_count_in(&mut tx, id).await?;
        if held > 0 {
            return Err(Error::conflict(
                "VNI_IN_USE",
                format!("VNI `{}` still holds {held} address allocation(s): release them first", row.name),
                Some(serde_json::json!({"allocation_count": held})),
            ));
        }
        let devices = Store::vni_device_count_in(&mut tx, id).await?;
        if devices > 0 {
            return Err(Error::conflict(
                "VNI_IN_USE",
                format!("VNI `{}` still holds {devices} enrolled device(s): delete them first", row.name),
                Some(serde_json::json!({"device_count": devices})),
            ));
        }
        let psks = Store::psk_count_on_vlan(&mut tx, row.vni).await?;
        if psks > 0 {
            return Err(Error::conflict(
                "VNI_IN_USE",
                format!("VNI `{}` is the VLAN of {psks} PSK(s): move or delete them first", row.name),
                Some(serde_json::json!({"psk_count": psks, "vni": row.vni})),
            ));
        }
        Store::vni_delete(&mut tx, id).await?;
        audit::append(
            &mut tx,
            actor,
            Event::new("vni.delete", "vni", id).with_details(serde_json::json!({"name": row.name, "cidr": row.cidr})),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Whether the DHCP lease on `a` belongs to the asset the allocation is for (pinning a
    /// machine's current dynamic address is allowed).
    async fn lease_is_holders(
        &self,
        conn: &mut sqlx::AnyConnection,
        vni_id: &str,
        a: IpAddr,
        req: &AllocateRequest,
    ) -> Result<bool> {
        if req.holder_type != "asset" {
            return Ok(false);
        }
        let owner: Option<String> = sqlx::query_scalar(
            "SELECT m.asset_id FROM dhcp_leases l JOIN asset_macs m ON m.mac = l.mac \
             WHERE l.vni_id = $1 AND l.address = $2",
        )
        .bind(vni_id)
        .bind(a.to_string())
        .fetch_optional(&mut *conn)
        .await?;
        Ok(owner.as_deref() == Some(req.holder_id.as_str()))
    }

    /// Allocates an address: the requested one, or the lowest free one. Never hands out an
    /// address twice: the (vni, address) key decides races, and a lost race is retried.
    pub async fn vni_allocate(&self, actor: &Actor, id: &str, req: AllocateRequest) -> Result<AllocationRow> {
        actor.require(Scope::VnisWrite)?;
        if !HOLDER_TYPES.contains(&req.holder_type.as_str()) {
            return Err(Error::invalid_field("holder_type", "holder_type must be asset, device, cluster or other"));
        }
        if req.holder_id.is_empty() || req.holder_id.len() > 128 {
            return Err(Error::invalid_field("holder_id", "holder_id must be 1-128 characters"));
        }
        let row = self.load_vni(id).await?;
        let pool = Segment::from_row(&row)?.pool()?;
        if let Some(a) = req.address
            && let Err(why) = pool.check(a)
        {
            return Err(Error::Unprocessable {
                code: "ADDRESS_UNASSIGNABLE",
                message: why.to_string(),
                details: Some(serde_json::json!({"field": "address", "address": a, "reason": why.to_string()})),
            });
        }
        for _ in 0..ALLOCATION_ATTEMPTS {
            let mut tx = self.store.begin().await?;
            // Allocations queue instead of racing: with many callers on one segment, optimistic
            // retries could run out; the lock makes the next-free scan see every committed holder.
            Store::serialize_writes(&mut tx).await?;
            // Addresses DHCP has leased (or quarantined) are held too, by the lease.
            let now = chrono::Utc::now().timestamp();
            let leased: BTreeSet<IpAddr> =
                Store::dhcp_active_addresses(&mut tx, id, now).await?.iter().filter_map(|s| s.parse().ok()).collect();
            let address = match req.address {
                Some(a) => {
                    if let Some(held) = Store::allocation_get(&mut tx, id, &a.to_string()).await? {
                        return Err(taken(a, &held));
                    }
                    if leased.contains(&a) && !self.lease_is_holders(&mut tx, id, a, &req).await? {
                        return Err(Error::conflict(
                            "ADDRESS_TAKEN",
                            format!("{a} is leased by DHCP to another machine"),
                            Some(serde_json::json!({"address": a, "holder_type": "dhcp_lease"})),
                        ));
                    }
                    a
                }
                None => {
                    // From the last address this process handed out (everything assignable below
                    // it was taken then), else from the start; a miss from the hint (another
                    // appliance released something lower) falls back to the full scan.
                    let hint: Option<IpAddr> = self.store.allocation_hint(id).and_then(|a| a.parse().ok());
                    let mut found = None;
                    if let Some(h) = hint {
                        let held = Store::allocation_addresses_from(&mut tx, id, &ipam::sort_key(h)).await?;
                        let mut taken: BTreeSet<IpAddr> = held.iter().filter_map(|s| s.parse().ok()).collect();
                        taken.extend(leased.iter().copied());
                        found = pool.next_free_from(Some(h), &taken, SCAN_LIMIT);
                    }
                    if found.is_none() {
                        let held = Store::allocation_addresses(&mut tx, id).await?;
                        let mut taken: BTreeSet<IpAddr> = held.iter().filter_map(|s| s.parse().ok()).collect();
                        taken.extend(leased.iter().copied());
                        found = pool.next_free(&taken, SCAN_LIMIT);
                    }
                    found.ok_or_else(|| {
                        Error::conflict(
                            "POOL_EXHAUSTED",
                            format!("VNI `{}` has no free address left", row.name),
                            Some(serde_json::json!({"vni_id": id})),
                        )
                    })?
                }
            };
            let alloc = AllocationRow {
                vni_id: id.to_string(),
                address: address.to_string(),
                sort_key: ipam::sort_key(address),
                holder_type: req.holder_type.clone(),
                holder_id: req.holder_id.clone(),
                created_at: now_rfc3339(),
            };
            match Store::allocation_insert(&mut tx, &alloc).await {
                Err(e) if is_unique_violation(&e, "ip_allocations") || is_unique_violation(&e, "address") => {
                    // The transaction is spent (PostgreSQL aborts it): roll back, then name the
                    // winner, or retry if it was released meanwhile.
                    tx.rollback().await?;
                    if req.address.is_some() {
                        let mut conn = self.store.pool().acquire().await?;
                        if let Some(held) = Store::allocation_get(&mut conn, id, &address.to_string()).await? {
                            return Err(taken(address, &held));
                        }
                    }
                    continue;
                }
                other => other?,
            }
            audit::append(
                &mut tx,
                actor,
                Event::new("vni.allocate", "vni", id).with_details(serde_json::json!({
                    "address": alloc.address, "holder_type": alloc.holder_type, "holder_id": alloc.holder_id
                })),
            )
            .await?;
            tx.commit().await?;
            if req.address.is_none() {
                self.store.set_allocation_hint(id, Some(alloc.address.clone()));
            }
            return Ok(alloc);
        }
        Err(Error::conflict("ALLOCATION_CONTENDED", "too many concurrent allocations: retry", None))
    }

    pub async fn vni_allocations(&self, actor: &Actor, id: &str, page: PageRequest) -> Result<Page<AllocationRow>> {
        actor.require(Scope::VnisRead)?;
        self.load_vni(id).await?;
        let (items, total) = self.store.allocation_list(id, page.limit(), page.offset()).await?;
        Ok(Page { items, page, total })
    }

    pub async fn vni_release(&self, actor: &Actor, id: &str, address: &str) -> Result<()> {
        actor.require(Scope::VnisWrite)?;
        self.load_vni(id).await?;
        let not_found = || Error::not_found("ALLOCATION_NOT_FOUND", format!("{address} is not allocated in VNI {id}"));
        let ip: IpAddr = address.parse().map_err(|_| not_found())?;
        let mut tx = self.store.begin().await?;
        let held = Store::allocation_get(&mut tx, id, &ip.to_string()).await?.ok_or_else(not_found)?;
        Store::allocation_delete(&mut tx, id, &held.address).await?;
        audit::append(
            &mut tx,
            actor,
            Event::new("vni.release", "vni", id).with_details(serde_json::json!({
                "address": held.address, "holder_type": held.holder_type, "holder_id": held.holder_id
            })),
        )
        .await?;
        tx.commit().await?;
        // A lower address is free again: the next scan starts from the beginning.
        self.store.set_allocation_hint(id, None);
        Ok(())
    }
}

fn taken(a: IpAddr, held: &AllocationRow) -> Error {
    Error::conflict(
        "ADDRESS_TAKEN",
        format!("{a} is already allocated to {} {}", held.holder_type, held.holder_id),
        Some(serde_json::json!({"address": a, "holder_type": held.holder_type, "holder_id": held.holder_id})),
    )
}
