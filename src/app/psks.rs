//! Pre-shared keys (NetKey shape): per-device or per-guest passphrases bound to a VLAN (a VNI's
//! number), with expiry, enable/disable and rotation with a grace period.
//!
//! What "valid" means (the one definition, `Validity::at`): a PSK's current value is valid while
//! the PSK is enabled and not expired; after a rotation the previous value is valid too, until
//! `previous_valid_until`, and only while the PSK itself is valid. `status` reports `disabled`
//! (wins over expiry), `expired` or `active`. Values are sealed at rest, never listed, and every
//! read of one is audited (`psk.read_value`).

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{AppState, Page, PageRequest, present};
use crate::audit::{self, Event};
use crate::auth::Actor;
use crate::error::{Error, Result};
use crate::model::{IdKind, Scope, ids, new_id, now_rfc3339, to_rfc3339};
use crate::secret::{Secret, random_token};
use crate::store::psks::{PskQuery, PskRow};
use crate::store::{Store, is_unique_violation};

/// Generated values: 24 characters of [A-Za-z0-9] from the OS CSPRNG, ~143 bits.
const GENERATED_LEN: usize = 24;
const MIN_VALUE_LEN: usize = 8;
/// WPA2 passphrases are 8-63 printable ASCII characters; 64 hex digits are a raw key.
const MAX_PASSPHRASE_LEN: usize = 63;
const MAX_VLAN: i64 = 16_777_215;
/// Ten years: longer is a typo, not a guest.
const MAX_HOURS: i64 = 24 * 365 * 10;
const NAME_ATTEMPTS: usize = 5;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePsk {
    /// Unique name; generated (`psk-xxxxxxxx`) when omitted.
    #[serde(default)]
    pub psk_id: Option<String>,
    /// Passphrase, 8-63 printable ASCII characters (or 64 hex digits); generated when omitted.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub psk_value: Option<Secret<String>>,
    #[serde(default)]
    pub description: Option<String>,
    /// A VNI's number (`vni` of `/api/v1/vnis`).
    #[serde(default)]
    pub vlan_id: Option<i64>,
    /// ISO 8601 time; without an offset it is UTC.
    #[serde(default)]
    pub expires: Option<String>,
    /// Hours from now (alternative to `expires`).
    #[serde(default)]
    pub expires_in_hours: Option<i64>,
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// PUT: every field optional; only those present change. `null` clears `vlan_id`, `expires`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdatePsk {
    #[serde(default)]
    pub psk_id: Option<String>,
    /// A new passphrase (no grace period for the old one: use rotate for that).
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub psk_value: Option<Secret<String>>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>)]
    pub vlan_id: Option<Option<i64>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub expires: Option<Option<String>>,
    #[serde(default)]
    pub expires_in_hours: Option<i64>,
    #[serde(default)]
    pub enabled: Option<bool>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotatePsk {
    /// The new passphrase; generated when omitted.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub psk_value: Option<Secret<String>>,
    /// How long the old value stays valid; default `[psks] rotation_grace_hours` (24). 0 ends it now.
    #[serde(default)]
    pub grace_hours: Option<i64>,
}

/// A PSK without its value (lists, updates).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PskView {
    pub id: String,
    pub psk_id: String,
    pub description: String,
    pub vlan_id: Option<i64>,
    pub enabled: bool,
    pub expires: Option<String>,
    /// `expires` has passed.
    pub expired: bool,
    /// `active`, `expired` or `disabled` (disabled wins).
    pub status: String,
    /// The previous value is still accepted until then (after a rotation); null otherwise.
    pub previous_valid_until: Option<String>,
    pub rotated_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// A PSK with its value: create, get, rotate.
#[derive(Debug, Serialize, ToSchema)]
pub struct PskWithValue {
    #[serde(flatten)]
    pub psk: PskView,
    pub psk_value: String,
    /// The value before the last rotation, while it is still valid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_psk_value: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PskDeleted {
    pub success: bool,
    pub deleted_id: String,
}

/// Status of a PSK at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PskStatus {
    Active,
    Expired,
    Disabled,
}

impl PskStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            PskStatus::Active => "active",
            PskStatus::Expired => "expired",
            PskStatus::Disabled => "disabled",
        }
    }
}

/// What is valid about a PSK at `now`.
struct Validity {
    status: PskStatus,
    expired: bool,
    /// The previous value is still accepted.
    previous_valid: bool,
}

impl Validity {
    fn at(p: &PskRow, now: &str) -> Self {
        // Timestamps are fixed-width RFC 3339 UTC text: text order is time order.
        let expired = p.expires.as_deref().is_some_and(|e| e <= now);
        let status = if !p.enabled {
            PskStatus::Disabled
        } else if expired {
            PskStatus::Expired
        } else {
            PskStatus::Active
        };
        let previous_valid = status == PskStatus::Active
            && p.previous_sealed.is_some()
            && p.previous_valid_until.as_deref().is_some_and(|u| u > now);
        Validity { status, expired, previous_valid }
    }
}

fn psk_not_found(id: &str) -> Error {
    Error::NotFound { code: "PSK_NOT_FOUND", message: format!("PSK {id} not found") }
}

fn value_context(id: &str) -> String {
    format!("psks.value:{id}")
}

fn previous_context(id: &str) -> String {
    format!("psks.previous_value:{id}")
}

/// Checks a passphrase; the message never repeats it.
fn check_value(field: &str, v: &str) -> Result<()> {
    let raw_key = v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit());
    if v.chars().count() < MIN_VALUE_LEN {
        return Err(Error::invalid_field(field, format!("{field} must be at least {MIN_VALUE_LEN} characters")));
    }
    if !raw_key && (v.len() > MAX_PASSPHRASE_LEN || !v.bytes().all(|b| (0x20..=0x7e).contains(&b))) {
        return Err(Error::invalid_field(
            field,
            format!("{field} must be {MIN_VALUE_LEN}-{MAX_PASSPHRASE_LEN} printable ASCII characters or 64 hex digits"),
        ));
    }
    Ok(())
}

fn check_name(name: &str) -> Result<()> {
    let ok = (1..=64).contains(&name.len())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@' | ':'));
    if !ok {
        return Err(Error::invalid_field("psk_id", "psk_id must be 1-64 characters of A-Z, a-z, 0-9, `-_.@:`"));
    }
    if ids::looks_like(IdKind::Psk, name) {
        return Err(Error::invalid_field("psk_id", "psk_id must not have the form of an id (`psk_` + 16 characters)"));
    }
    Ok(())
}

fn check_description(d: &str) -> Result<()> {
    if d.chars().count() > 1024 {
        return Err(Error::invalid_field("description", "description must be at most 1024 characters"));
    }
    Ok(())
}

/// ISO 8601 with an offset, or without one (read as UTC), or a date alone (its start, UTC).
pub fn parse_expires(s: &str) -> Result<DateTime<Utc>> {
    let s = s.trim();
    let bad = || {
        Error::invalid_field("expires", format!("expires: `{s}` is not an ISO 8601 time (e.g. 2026-12-31T23:59:59Z)"))
    };
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
            return Ok(t.and_utc());
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .ok_or_else(bad)
}

/// The expiry a request asks for: at most one of `expires` / `expires_in_hours`, in the future.
fn resolve_expiry(expires: Option<&str>, in_hours: Option<i64>) -> Result<Option<String>> {
    let now = Utc::now();
    let at = match (expires, in_hours) {
        (Some(_), Some(_)) => {
            return Err(Error::invalid_field("expires_in_hours", "give either expires or expires_in_hours, not both"));
        }
        (Some(e), None) => {
            let t = parse_expires(e)?;
            if t <= now {
                return Err(Error::invalid_field("expires", format!("expires ({}) is in the past", to_rfc3339(t))));
            }
            t
        }
        (None, Some(h)) => {
            if !(1..=MAX_HOURS).contains(&h) {
                return Err(Error::invalid_field(
                    "expires_in_hours",
                    format!("expires_in_hours must be 1-{MAX_HOURS}, got {h}"),
                ));
            }
            now + chrono::Duration::hours(h)
        }
        (None, None) => return Ok(None),
    };
    Ok(Some(to_rfc3339(at)))
}

fn check_vlan_range(v: i64) -> Result<()> {
    if !(1..=MAX_VLAN).contains(&v) {
        return Err(Error::invalid_field("vlan_id", format!("vlan_id must be 1-{MAX_VLAN}, got {v}")));
    }
    Ok(())
}

/// `vlan_id` must name a VNI by its number; checked inside the write transaction (which holds
/// the write lock, so the VNI cannot be deleted before the PSK commits).
async fn check_vlan_exists(tx: &mut crate::store::Tx, v: i64) -> Result<()> {
    if !Store::vni_number_exists(tx, v).await? {
        return Err(Error::Unprocessable {
            code: "INVALID_FIELD",
            message: format!("vlan_id {v} does not match any VNI's number: create the VNI first (POST /api/v1/vnis)"),
            details: Some(serde_json::json!({"field": "vlan_id", "vlan_id": v})),
        });
    }
    Ok(())
}

fn generated_name() -> String {
    format!("psk-{}", ids::random_tail(8))
}

impl AppState {
    fn psk_view(&self, p: &PskRow, now: &str) -> PskView {
        let v = Validity::at(p, now);
        PskView {
            id: p.id.clone(),
            psk_id: p.psk_id.clone(),
            description: p.description.clone(),
            vlan_id: p.vlan_id,
            enabled: p.enabled,
            expires: p.expires.clone(),
            expired: v.expired,
            status: v.status.as_str().to_string(),
            previous_valid_until: if v.previous_valid { p.previous_valid_until.clone() } else { None },
            rotated_at: p.rotated_at.clone(),
            created_at: p.created_at.clone(),
            updated_at: p.updated_at.clone(),
        }
    }

    fn psk_with_value(&self, p: &PskRow, now: &str) -> Result<PskWithValue> {
        let open = |ctx: String, sealed: &[u8]| -> Result<String> {
            let bytes = self.keys.unseal(&ctx, sealed)?;
            String::from_utf8(bytes).map_err(|_| Error::internal(format_args!("{ctx} is not UTF-8")))
        };
        let psk_value = open(value_context(&p.id), &p.value_sealed)?;
        let previous_psk_value = match (&p.previous_sealed, Validity::at(p, now).previous_valid) {
            (Some(sealed), true) => Some(open(previous_context(&p.id), sealed)?),
            _ => None,
        };
        Ok(PskWithValue { psk: self.psk_view(p, now), psk_value, previous_psk_value })
    }

    fn seal_value(&self, id: &str, value: &str) -> Result<Vec<u8>> {
        Ok(self.keys.seal(&value_context(id), value.as_bytes())?)
    }

    /// The row a path names: the `psk_…` id, or else the `psk_id` name.
    async fn psk_find(conn: &mut sqlx::AnyConnection, key: &str) -> Result<PskRow> {
        let found = if ids::looks_like(IdKind::Psk, key) {
            Store::psk_get(conn, key).await?
        } else if key.is_empty() || key.len() > 64 {
            None
        } else {
            Store::psk_get_by_name(conn, key).await?
        };
        found.ok_or_else(|| psk_not_found(key))
    }

    pub async fn psk_create(&self, actor: &Actor, req: CreatePsk) -> Result<PskWithValue> {
        actor.require(Scope::PsksWrite)?;
        if let Some(n) = &req.psk_id {
            check_name(n)?;
        }
        let generated_value = req.psk_value.is_none();
        let value = match req.psk_value {
            Some(v) => {
                check_value("psk_value", v.expose())?;
                v
            }
            None => Secret::new(random_token("", GENERATED_LEN)),
        };
        let description = req.description.unwrap_or_default();
        check_description(&description)?;
        if let Some(v) = req.vlan_id {
            check_vlan_range(v)?;
        }
        let expires = resolve_expiry(req.expires.as_deref(), req.expires_in_hours)?;
        let id = new_id(IdKind::Psk);
        let now = now_rfc3339();
        let mut row = PskRow {
            value_sealed: self.seal_value(&id, value.expose())?,
            id,
            psk_id: req.psk_id.clone().unwrap_or_else(generated_name),
            description,
            vlan_id: req.vlan_id,
            expires,
            enabled: req.enabled.unwrap_or(true),
            previous_sealed: None,
            previous_valid_until: None,
            rotated_at: None,
            generation: 1,
            created_at: now.clone(),
            updated_at: now.clone(),
        };
        for attempt in 0..NAME_ATTEMPTS {
            let mut tx = self.store.begin().await?;
            if let Some(v) = row.vlan_id {
                check_vlan_exists(&mut tx, v).await?;
            }
            match Store::psk_insert(&mut tx, &row).await {
                Err(e) if is_unique_violation(&e, "psk_id") => {
                    tx.rollback().await?;
                    if req.psk_id.is_some() || attempt + 1 == NAME_ATTEMPTS {
                        return Err(Error::conflict(
                            "DUPLICATE_PSK_ID",
                            format!("a PSK with psk_id `{}` exists", row.psk_id),
                            Some(serde_json::json!({"field": "psk_id", "psk_id": row.psk_id})),
                        ));
                    }
                    row.psk_id = generated_name();
                    continue;
                }
                other => other?,
            }
            audit::append(
                &mut tx,
                actor,
                Event::new("psk.create", "psk", &row.id).with_details(serde_json::json!({
                    "psk_id": row.psk_id, "vlan_id": row.vlan_id, "expires": row.expires,
                    "enabled": row.enabled, "generated_value": generated_value
                })),
            )
            .await?;
            tx.commit().await?;
            return Ok(PskWithValue {
                psk: self.psk_view(&row, &now),
                psk_value: value.expose().clone(),
                previous_psk_value: None,
            });
        }
        Err(Error::internal("no free generated psk_id"))
    }

    pub async fn psk_list(&self, actor: &Actor, mut q: PskQuery, page: PageRequest) -> Result<Page<PskView>> {
        actor.require(Scope::PsksRead)?;
        if let Some(s) = &q.status
            && !["active", "expired", "disabled"].contains(&s.as_str())
        {
            return Err(Error::BadRequest {
                code: "INVALID_QUERY",
                message: format!("`status` must be active, expired or disabled, got `{s}`"),
                details: Some(serde_json::json!({"field": "status"})),
            });
        }
        q.now = now_rfc3339();
        let (rows, total) = self.store.psk_list(&q, page.limit(), page.offset()).await?;
        let items = rows.iter().map(|r| self.psk_view(r, &q.now)).collect();
        Ok(Page { items, page, total })
    }

    /// The PSK with its value. Reading a secret is itself recorded (`psk.read_value`), in the
    /// same transaction as the read: no audit entry, no value.
    pub async fn psk_get(&self, actor: &Actor, key: &str) -> Result<PskWithValue> {
        actor.require(Scope::PsksRead)?;
        let mut tx = self.store.begin().await?;
        let row = Self::psk_find(&mut tx, key).await?;
        let now = now_rfc3339();
        let out = self.psk_with_value(&row, &now)?;
        audit::append(
            &mut tx,
            actor,
            Event::new("psk.read_value", "psk", &row.id)
                .with_details(serde_json::json!({"psk_id": row.psk_id, "status": out.psk.status})),
        )
        .await?;
        tx.commit().await?;
        Ok(out)
    }

    /// The PSK without its value (the console's detail page): nothing secret is read, so
    /// nothing is audited; revealing the value goes through `psk_get`.
    pub async fn psk_summary(&self, actor: &Actor, key: &str) -> Result<PskView> {
        actor.require(Scope::PsksRead)?;
        let mut conn = self.store.pool().acquire().await?;
        let row = Self::psk_find(&mut conn, key).await?;
        Ok(self.psk_view(&row, &now_rfc3339()))
    }

    pub async fn psk_update(&self, actor: &Actor, key: &str, req: UpdatePsk) -> Result<PskView> {
        actor.require(Scope::PsksWrite)?;
        if let Some(n) = &req.psk_id {
            check_name(n)?;
        }
        if let Some(v) = &req.psk_value {
            check_value("psk_value", v.expose())?;
        }
        if let Some(d) = &req.description {
            check_description(d)?;
        }
        if let Some(Some(v)) = req.vlan_id {
            check_vlan_range(v)?;
        }
        // `expires: null` clears the expiry; a time or hours set a new one (in the future).
        let expires = match (&req.expires, req.expires_in_hours) {
            (Some(None), None) => Some(None),
            (Some(None), Some(_)) => {
                return Err(Error::invalid_field(
                    "expires_in_hours",
                    "give either expires or expires_in_hours, not both",
                ));
            }
            (e, h) => resolve_expiry(e.as_ref().and_then(|e| e.as_deref()), h)?.map(Some),
        };
        let mut tx = self.store.begin().await?;
        let mut row = Self::psk_find(&mut tx, key).await?;
        let mut changed = Vec::new();
        if let Some(n) = req.psk_id
            && n != row.psk_id
        {
            row.psk_id = n;
            changed.push("psk_id");
        }
        if let Some(v) = req.psk_value {
            row.value_sealed = self.seal_value(&row.id, v.expose())?;
            // A value set by hand replaces both: the old one is not kept in grace.
            row.previous_sealed = None;
            row.previous_valid_until = None;
            changed.push("psk_value");
        }
        if let Some(d) = req.description {
            row.description = d;
            changed.push("description");
        }
        if let Some(v) = req.vlan_id {
            if let Some(n) = v {
                check_vlan_exists(&mut tx, n).await?;
            }
            row.vlan_id = v;
            changed.push("vlan_id");
        }
        if let Some(e) = expires {
            row.expires = e;
            changed.push("expires");
        }
        if let Some(e) = req.enabled {
            row.enabled = e;
            changed.push("enabled");
        }
        let now = now_rfc3339();
        match Store::psk_update(&mut tx, &row, &now).await {
            Err(e) if is_unique_violation(&e, "psk_id") => {
                return Err(Error::conflict(
                    "DUPLICATE_PSK_ID",
                    format!("a PSK with psk_id `{}` exists", row.psk_id),
                    Some(serde_json::json!({"field": "psk_id", "psk_id": row.psk_id})),
                ));
            }
            Ok(false) => {
                return Err(Error::conflict("PSK_CHANGED", "the PSK changed while this update ran: retry", None));
            }
            other => {
                other?;
            }
        }
        audit::append(
            &mut tx,
            actor,
            Event::new("psk.update", "psk", &row.id)
                .with_details(serde_json::json!({"psk_id": row.psk_id, "changed": changed})),
        )
        .await?;
        tx.commit().await?;
        row.generation += 1;
        row.updated_at = now.clone();
        Ok(self.psk_view(&row, &now))
    }

    pub async fn psk_delete(&self, actor: &Actor, key: &str) -> Result<PskDeleted> {
        actor.require(Scope::PsksDelete)?;
        let mut tx = self.store.begin().await?;
        let row = Self::psk_find(&mut tx, key).await?;
        Store::psk_delete(&mut tx, &row.id).await?;
        audit::append(
            &mut tx,
            actor,
            Event::new("psk.delete", "psk", &row.id).with_details(serde_json::json!({"psk_id": row.psk_id})),
        )
        .await?;
        tx.commit().await?;
        Ok(PskDeleted { success: true, deleted_id: row.id })
    }

    /// A new value; the old one stays valid for the grace period (`previous_valid_until`). The
    /// new value is answered once here (and by GET, audited).
    pub async fn psk_rotate(&self, actor: &Actor, key: &str, req: RotatePsk) -> Result<PskWithValue> {
        actor.require(Scope::PsksWrite)?;
        if let Some(v) = &req.psk_value {
            check_value("psk_value", v.expose())?;
        }
        let grace = match req.grace_hours {
            None => chrono::Duration::from_std(self.config.psk_rotation_grace).map_err(Error::internal)?,
            Some(h) if (0..=24 * 365).contains(&h) => chrono::Duration::hours(h),
            Some(h) => return Err(Error::invalid_field("grace_hours", format!("grace_hours must be 0-8760, got {h}"))),
        };
        let value = req.psk_value.unwrap_or_else(|| Secret::new(random_token("", GENERATED_LEN)));
        let mut tx = self.store.begin().await?;
        let mut row = Self::psk_find(&mut tx, key).await?;
        let now_t = Utc::now();
        let now = to_rfc3339(now_t);
        let status = Validity::at(&row, &now).status;
        if status != PskStatus::Active {
            // Rotating an expired or disabled PSK would hand out a value nobody can use, and the
            // grace period would revive nothing: say so instead.
            return Err(Error::conflict(
                "PSK_NOT_ACTIVE",
                format!("PSK `{}` is {}: enable it or extend its expiry before rotating", row.psk_id, status.as_str()),
                Some(serde_json::json!({"status": status.as_str()})),
            ));
        }
        let old = self.keys.unseal(&value_context(&row.id), &row.value_sealed)?;
        if old == value.expose().as_bytes() {
            return Err(Error::invalid_field("psk_value", "the new psk_value must differ from the current one"));
        }
        let until = to_rfc3339(now_t + grace);
        row.previous_sealed = Some(self.keys.seal(&previous_context(&row.id), &old)?);
        row.previous_valid_until = Some(until.clone());
        row.value_sealed = self.seal_value(&row.id, value.expose())?;
        row.rotated_at = Some(now.clone());
        if !Store::psk_update(&mut tx, &row, &now).await? {
            return Err(Error::conflict("PSK_CHANGED", "the PSK changed while this rotation ran: retry", None));
        }
        audit::append(
            &mut tx,
            actor,
            Event::new("psk.rotate", "psk", &row.id).with_details(serde_json::json!({
                "psk_id": row.psk_id, "previous_valid_until": until, "generated_value": true
            })),
        )
        .await?;
        tx.commit().await?;
        row.generation += 1;
        row.updated_at = now.clone();
        // The caller holds the previous value already: answer only the new one.
        let mut out = PskWithValue {
            psk: self.psk_view(&row, &now),
            psk_value: value.expose().clone(),
            previous_psk_value: None,
        };
        // Grace 0 ends now: report when it ended rather than null, so the answer always says.
        out.psk.previous_valid_until = Some(until);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(enabled: bool, expires: Option<&str>, prev_until: Option<&str>) -> PskRow {
        PskRow {
            id: "psk_0000000000000000".into(),
            psk_id: "guest".into(),
            value_sealed: vec![1],
            description: String::new(),
            vlan_id: None,
            expires: expires.map(str::to_string),
            enabled,
            previous_sealed: prev_until.map(|_| vec![2]),
            previous_valid_until: prev_until.map(str::to_string),
            rotated_at: None,
            generation: 1,
            created_at: String::new(),
            updated_at: String::new(),
        }
    }

    const NOW: &str = "2026-06-01T12:00:00.000000Z";
    const PAST: &str = "2026-06-01T11:59:59.999999Z";
    const FUTURE: &str = "2026-06-01T12:00:00.000001Z";

    #[test]
    fn validity_rules() {
        let v = Validity::at(&row(true, None, None), NOW);
        assert_eq!((v.status, v.expired, v.previous_valid), (PskStatus::Active, false, false));
        let v = Validity::at(&row(true, Some(NOW), Some(FUTURE)), NOW);
        assert_eq!((v.status, v.expired, v.previous_valid), (PskStatus::Expired, true, false), "expiry is inclusive");
        let v = Validity::at(&row(false, Some(PAST), None), NOW);
        assert_eq!((v.status, v.expired), (PskStatus::Disabled, true), "disabled wins, expiry still reported");
        assert!(Validity::at(&row(true, Some(FUTURE), Some(FUTURE)), NOW).previous_valid);
        assert!(!Validity::at(&row(true, None, Some(PAST)), NOW).previous_valid, "grace over");
        assert!(!Validity::at(&row(false, None, Some(FUTURE)), NOW).previous_valid, "disabled: nothing valid");
    }

    #[test]
    fn values_and_names_are_checked() {
        assert!(check_value("psk_value", "1234567").is_err());
        assert!(check_value("psk_value", "12345678").is_ok());
        assert!(check_value("psk_value", &"a".repeat(63)).is_ok());
        assert!(check_value("psk_value", &"a".repeat(64)).is_ok(), "64 hex digits: a raw key");
        assert!(check_value("psk_value", &"g".repeat(64)).is_err());
        assert!(check_value("psk_value", "tab\there!").is_err());
        assert!(check_name("guest-jane-doe").is_ok());
        assert!(check_name("psk_0123456789abcdef").is_err());
        assert!(check_name("has space").is_err());
        let generated = random_token("", GENERATED_LEN);
        assert!(check_value("psk_value", &generated).is_ok());
    }

    #[test]
    fn expiry_forms() {
        assert_eq!(to_rfc3339(parse_expires("2030-12-31T23:59:59").unwrap()), "2030-12-31T23:59:59.000000Z");
        assert_eq!(to_rfc3339(parse_expires("2030-12-31T23:59:59+01:00").unwrap()), "2030-12-31T22:59:59.000000Z");
        assert_eq!(to_rfc3339(parse_expires("2030-12-31").unwrap()), "2030-12-31T00:00:00.000000Z");
        assert!(parse_expires("tomorrow").is_err());
        assert!(resolve_expiry(Some("2001-01-01T00:00:00Z"), None).is_err());
        assert!(resolve_expiry(Some("2099-01-01T00:00:00Z"), Some(3)).is_err());
        assert!(resolve_expiry(None, Some(0)).is_err());
        assert!(resolve_expiry(None, Some(24)).unwrap().is_some());
    }
}
