//! The asset registry: servers known by hostname, MACs, SMBIOS identity and BMC. Clients register
//! and edit them; the lifecycle state is read-only here.

use serde::Deserialize;
use utoipa::ToSchema;

use super::{AppState, PageRequest, present};
use crate::audit::{self, Event};
use crate::auth::Actor;
use crate::error::{Error, Result};
use crate::model::{AssetState, BmcDriver, IdKind, Mac, Scope, ids, new_id, now_rfc3339};
use crate::policy::{Action, AssetSubject, GuardSubject};
use crate::secret::Secret;
use crate::store::Store;
use crate::store::assets::{AssetConflict, AssetQuery, AssetRow, BmcRow};
use crate::store::page_cache::CachedPage;

const MAX_TAGS: usize = 50;
const MAX_MACS: usize = 32;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BmcInput {
    pub driver: BmcDriver,
    pub address: String,
    #[serde(default)]
    pub port: Option<u16>,
    pub username: String,
    /// Required on create; on update, omit it to keep the stored one.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Password)]
    pub password: Option<Secret<String>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAsset {
    pub hostname: String,
    #[serde(default)]
    #[schema(value_type = Vec<String>, example = json!(["52:54:00:12:34:56"]))]
    pub macs: Vec<Mac>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub smbios_uuid: Option<String>,
    #[serde(default)]
    pub serial: Option<String>,
    #[serde(default)]
    pub bmc: Option<BmcInput>,
}

/// Partial update: absent fields stay; `null` clears an optional one.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAsset {
    #[serde(default)]
    pub hostname: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<Vec<String>>)]
    pub macs: Option<Vec<Mac>>,
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub smbios_uuid: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub serial: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<BmcInput>)]
    pub bmc: Option<Option<BmcInput>>,
}

pub use crate::model::asset::{AssetView, BmcView};

pub(crate) fn asset_not_found(id: &str) -> Error {
    Error::not_found("ASSET_NOT_FOUND", format!("Asset {id} not found"))
}

fn validate_hostname(h: &str) -> Result<()> {
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if h.is_empty() || h.len() > 253 || !h.split('.').all(label_ok) {
        return Err(Error::invalid_field(
            "hostname",
            format!("`{h}` is not a valid hostname (letters, digits and `-` in dot-separated labels of 1-63)"),
        ));
    }
    Ok(())
}

fn normalise_macs(macs: Vec<Mac>) -> Result<Vec<Mac>> {
    if macs.len() > MAX_MACS {
        return Err(Error::invalid_field("macs", format!("at most {MAX_MACS} MACs")));
    }
    let mut seen = std::collections::HashSet::new();
    for m in &macs {
        if !seen.insert(*m) {
            return Err(Error::invalid_field("macs", format!("{m} is listed twice")));
        }
    }
    Ok(macs)
}

pub(crate) fn normalise_tags(tags: Vec<String>) -> Result<Vec<String>> {
    if tags.len() > MAX_TAGS {
        return Err(Error::invalid_field("tags", format!("at most {MAX_TAGS} tags")));
    }
    let mut out: Vec<String> = Vec::with_capacity(tags.len());
    for t in tags {
        let ok = (1..=64).contains(&t.len())
            && t.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '/' | '='));
        if !ok {
            return Err(Error::invalid_field(
                "tags",
                format!("tag `{t}` must be 1-64 characters of letters, digits and - _ . : / ="),
            ));
        }
        if !out.contains(&t) {
            out.push(t);
        }
    }
    Ok(out)
}

fn normalise_uuid(u: Option<String>) -> Result<Option<String>> {
    let Some(u) = u else { return Ok(None) };
    let hex: String = u.chars().filter(|c| *c != '-').collect();
    let shape_ok = u.len() == 36 && [8, 13, 18, 23].iter().all(|i| u.as_bytes()[*i] == b'-');
    if !shape_ok || hex.len() != 32 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(Error::invalid_field("smbios_uuid", format!("`{u}` is not a UUID (8-4-4-4-12 hex digits)")));
    }
    Ok(Some(u.to_ascii_lowercase()))
}

fn normalise_serial(s: Option<String>) -> Result<Option<String>> {
    match s {
        Some(s) if s.is_empty() || s.len() > 128 || s.chars().any(char::is_control) => {
            Err(Error::invalid_field("serial", "serial must be 1-128 printable characters"))
        }
        other => Ok(other),
    }
}

impl AppState {
    fn bmc_row(&self, asset_id: &str, input: BmcInput, existing: Option<&BmcRow>) -> Result<BmcRow> {
        let address = input.address.trim().to_string();
        let addr_ok = !address.is_empty()
            && address.len() <= 253
            && address.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
        if !addr_ok {
            return Err(Error::invalid_field(
                "bmc.address",
                format!("`{}` is not an IP address or hostname", input.address),
            ));
        }
        if input.port == Some(0) {
            return Err(Error::invalid_field("bmc.port", "port must be 1-65535"));
        }
        if input.username.is_empty() || input.username.len() > 64 {
            return Err(Error::invalid_field("bmc.username", "username must be 1-64 characters"));
        }
        let password_sealed = match (input.password, existing) {
            (Some(pw), _) if pw.expose().is_empty() || pw.expose().len() > 256 => {
                return Err(Error::invalid_field("bmc.password", "password must be 1-256 characters"));
            }
            (Some(pw), _) => Some(self.keys.seal(&bmc_context(asset_id), pw.expose().as_bytes())?),
            (None, Some(old)) => old.password_sealed.clone(),
            (None, None) => return Err(Error::invalid_field("bmc.password", "bmc.password is required")),
        };
        Ok(BmcRow {
            port: input.port.unwrap_or(input.driver.default_port()),
            driver: input.driver,
            address,
            username: input.username,
            password_sealed,
        })
    }

    /// The BMC password in clear, for the BMC driver only.
    pub fn asset_bmc_password(&self, asset: &AssetRow) -> Result<Option<Secret<String>>> {
        let Some(sealed) = asset.bmc.as_ref().and_then(|b| b.password_sealed.as_deref()) else { return Ok(None) };
        let bytes = self.keys.unseal(&bmc_context(&asset.id), sealed)?;
        Ok(Some(Secret::new(String::from_utf8(bytes).map_err(Error::internal)?)))
    }

    pub async fn asset_create(&self, actor: &Actor, req: CreateAsset) -> Result<AssetView> {
        actor.require(Scope::AssetsWrite)?;
        validate_hostname(&req.hostname)?;
        let id = new_id(IdKind::Asset);
        let now = now_rfc3339();
        let row = AssetRow {
            hostname: req.hostname.to_ascii_lowercase(),
            state: AssetState::Available,
            macs: normalise_macs(req.macs)?,
            tags: normalise_tags(req.tags)?,
            specs: serde_json::json!({}),
            disks: serde_json::json!([]),
            nics: serde_json::json!([]),
            smbios_uuid: normalise_uuid(req.smbios_uuid)?,
            serial: normalise_serial(req.serial)?,
            bmc: req.bmc.map(|b| self.bmc_row(&id, b, None)).transpose()?,
            generation: 1,
            created_at: now.clone(),
            updated_at: now,
            id,
        };
        let mut tx = self.store.begin().await?;
        if let Some(c) = Store::asset_find_conflict(&mut tx, &row).await? {
            return Err(conflict_error(c, &row));
        }
        Store::asset_insert(&mut tx, &row).await.map_err(|e| race_conflict(e, &row))?;
        audit::append(
            &mut tx,
            actor,
            Event::new("asset.create", "asset", &row.id).with_details(serde_json::json!({
                "hostname": row.hostname, "macs": row.macs, "tags": row.tags, "bmc_address": row.bmc.as_ref().map(|b| &b.address)
            })),
        )
        .await?;
        tx.commit().await?;
        Ok(row.into())
    }

    pub async fn asset_get(&self, actor: &Actor, id: &str) -> Result<AssetView> {
        actor.require(Scope::AssetsRead)?;
        if !ids::looks_like(IdKind::Asset, id) {
            return Err(asset_not_found(id));
        }
        Ok(self.store.asset_get(id).await?.ok_or_else(|| asset_not_found(id))?.into())
    }

    /// The list page as the API's JSON array text (same shape as `AssetView`), rendered by the store.
    pub async fn asset_list_json(&self, actor: &Actor, q: AssetQuery, page: PageRequest) -> Result<CachedPage> {
        actor.require(Scope::AssetsRead)?;
        Ok(self.store.asset_list_json(&q, page.limit(), page.offset()).await?)
    }

    pub async fn asset_update(&self, actor: &Actor, id: &str, req: UpdateAsset) -> Result<AssetView> {
        actor.require(Scope::AssetsWrite)?;
        if !ids::looks_like(IdKind::Asset, id) {
            return Err(asset_not_found(id));
        }
        let mut tx = self.store.begin().await?;
        let mut row = Store::asset_get_in(&mut tx, id).await?.ok_or_else(|| asset_not_found(id))?;
        let mut changed = Vec::new();
        if let Some(h) = req.hostname {
            validate_hostname(&h)?;
            row.hostname = h.to_ascii_lowercase();
            changed.push("hostname");
        }
        if let Some(m) = req.macs {
            row.macs = normalise_macs(m)?;
            changed.push("macs");
        }
        if let Some(t) = req.tags {
            row.tags = normalise_tags(t)?;
            changed.push("tags");
        }
        if let Some(u) = req.smbios_uuid {
            row.smbios_uuid = normalise_uuid(u)?;
            changed.push("smbios_uuid");
        }
        if let Some(s) = req.serial {
            row.serial = normalise_serial(s)?;
            changed.push("serial");
        }
        if let Some(b) = req.bmc {
            row.bmc = b.map(|b| self.bmc_row(id, b, row.bmc.as_ref())).transpose()?;
            changed.push("bmc");
        }
        if let Some(c) = Store::asset_find_conflict(&mut tx, &row).await? {
            return Err(conflict_error(c, &row));
        }
        let now = now_rfc3339();
        if !Store::asset_update(&mut tx, &row, &now).await.map_err(|e| race_conflict(e, &row))? {
            return Err(Error::conflict("ASSET_CHANGED", "the asset changed while this update ran: retry", None));
        }
        audit::append(
            &mut tx,
            actor,
            Event::new("asset.update", "asset", id).with_details(serde_json::json!({"changed": changed})),
        )
        .await?;
        tx.commit().await?;
        row.generation += 1;
        row.updated_at = now;
        Ok(row.into())
    }

    pub async fn asset_delete(&self, actor: &Actor, id: &str) -> Result<()> {
        actor.require(Scope::AssetsWrite)?;
        if !ids::looks_like(IdKind::Asset, id) {
            return Err(asset_not_found(id));
        }
        // Policies decide on the asset as it is now; the generation check below makes sure it is
        // still that asset when it goes (the guard runs outside the write transaction because a
        // denial is audited in a transaction of its own).
        let seen = self.store.asset_get(id).await?.ok_or_else(|| asset_not_found(id))?;
        self.guard(actor, Action::Delete, GuardSubject::Asset(policy_subject(&seen))).await?;
        let mut tx = self.store.begin().await?;
        let row = Store::asset_get_in(&mut tx, id).await?.ok_or_else(|| asset_not_found(id))?;
        if row.generation != seen.generation {
            return Err(Error::conflict("ASSET_CHANGED", "the asset changed while this delete ran: retry", None));
        }
        if matches!(row.state, AssetState::Provisioning | AssetState::Wiping) {
            return Err(Error::conflict(
                "ASSET_BUSY",
                format!("asset {id} is {}: wait for its workflow to finish or cancel it", row.state),
                Some(serde_json::json!({"state": row.state})),
            ));
        }
        if let Some(cluster) = Store::asset_cluster_in(&mut tx, id).await? {
            return Err(Error::conflict(
                "ASSET_IN_CLUSTER",
                format!("asset {id} is a member of cluster {cluster}: delete the cluster first"),
                Some(serde_json::json!({"cluster_id": cluster})),
            ));
        }
        Store::asset_delete(&mut tx, id).await?;
        audit::append(
            &mut tx,
            actor,
            Event::new("asset.delete", "asset", id).with_details(serde_json::json!({"hostname": row.hostname})),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// The asset as policies see it (`input.asset`).
pub fn policy_subject(row: &AssetRow) -> AssetSubject {
    AssetSubject {
        id: row.id.clone(),
        name: row.hostname.clone(),
        tags: row.tags.clone(),
        state: row.state.as_str().to_string(),
        vni_id: None,
    }
}

fn bmc_context(asset_id: &str) -> String {
    format!("assets.bmc_password:{asset_id}")
}

fn conflict_error(c: AssetConflict, row: &AssetRow) -> Error {
    match c {
        AssetConflict::Mac(mac, owner) => Error::conflict(
            "DUPLICATE_MAC",
            format!("MAC {mac} already belongs to asset {owner}"),
            Some(serde_json::json!({"field": "macs", "mac": mac, "asset_id": owner})),
        ),
        AssetConflict::Hostname => Error::conflict(
            "DUPLICATE_HOSTNAME",
            format!("an asset named `{}` already exists", row.hostname),
            Some(serde_json::json!({"field": "hostname"})),
        ),
        AssetConflict::SmbiosUuid => Error::conflict(
            "DUPLICATE_SMBIOS_UUID",
            "another asset has this SMBIOS UUID",
            Some(serde_json::json!({"field": "smbios_uuid"})),
        ),
    }
}

/// A unique constraint that fired despite the pre-check (a concurrent write won the race).
fn race_conflict(e: sqlx::Error, row: &AssetRow) -> Error {
    use crate::store::is_unique_violation;
    if is_unique_violation(&e, "mac") {
        Error::conflict(
            "DUPLICATE_MAC",
            "one of these MACs was just registered to another asset",
            Some(serde_json::json!({"field": "macs"})),
        )
    } else if is_unique_violation(&e, "hostname") {
        conflict_error(AssetConflict::Hostname, row)
    } else if is_unique_violation(&e, "smbios_uuid") {
        conflict_error(AssetConflict::SmbiosUuid, row)
    } else {
        e.into()
    }
}
