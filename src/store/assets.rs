//! Assets. MACs and tags live on the row (JSON, for one-query reads) and in side tables (MAC
//! uniqueness, tag filters); only these functions write either, always both in one transaction.

use sqlx::{AnyConnection, FromRow};

use super::page_cache::CachedPage;
use super::{Backend, Filter, Store, json_column, parse_column};
use crate::model::asset::{AssetView, BmcView};
use crate::model::{AssetState, BmcDriver, Mac};

#[derive(Debug, Clone)]
pub struct AssetRow {
    pub id: String,
    pub hostname: String,
    pub state: AssetState,
    pub macs: Vec<Mac>,
    pub tags: Vec<String>,
    pub specs: serde_json::Value,
    /// The agent's last report (JSON arrays of `ironbay_wire::inventory::Disk` / `Nic`); only
    /// registration writes them.
    pub disks: serde_json::Value,
    pub nics: serde_json::Value,
    pub smbios_uuid: Option<String>,
    pub serial: Option<String>,
    pub bmc: Option<BmcRow>,
    pub generation: i64,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone)]
pub struct BmcRow {
    pub driver: BmcDriver,
    pub address: String,
    pub port: u16,
    pub username: String,
    /// Sealed with the master key, bound to the asset id.
    pub password_sealed: Option<Vec<u8>>,
}

impl From<&AssetRow> for AssetView {
    fn from(a: &AssetRow) -> Self {
        AssetView {
            id: a.id.clone(),
            hostname: a.hostname.clone(),
            state: a.state,
            status: a.state,
            macs: a.macs.clone(),
            tags: a.tags.clone(),
            smbios_uuid: a.smbios_uuid.clone(),
            serial: a.serial.clone(),
            specs: a.specs.clone(),
            disks: a.disks.clone(),
            nics: a.nics.clone(),
            bmc: a.bmc.as_ref().map(|b| BmcView {
                driver: b.driver,
                address: b.address.clone(),
                port: b.port,
                username: b.username.clone(),
                password_set: b.password_sealed.is_some(),
            }),
            generation: a.generation,
            created_at: a.created_at.clone(),
            updated_at: a.updated_at.clone(),
        }
    }
}

impl From<AssetRow> for AssetView {
    fn from(a: AssetRow) -> Self {
        AssetView::from(&a)
    }
}

/// The `view` column: the row as the API shows it.
fn render_view(a: &AssetRow) -> String {
    json(&AssetView::from(a))
}

#[derive(FromRow)]
struct RawAsset {
    id: String,
    hostname: String,
    state: String,
    macs: String,
    tags: String,
    specs: String,
    disks: String,
    nics: String,
    smbios_uuid: Option<String>,
    serial: Option<String>,
    bmc_driver: Option<String>,
    bmc_address: Option<String>,
    bmc_port: Option<i64>,
    bmc_username: Option<String>,
    bmc_password: Option<Vec<u8>>,
    generation: i64,
    created_at: String,
    updated_at: String,
}

impl TryFrom<RawAsset> for AssetRow {
    type Error = sqlx::Error;
    fn try_from(r: RawAsset) -> Result<Self, sqlx::Error> {
        let bmc = match (r.bmc_driver, r.bmc_address) {
            (Some(driver), Some(address)) => Some(BmcRow {
                driver: parse_column("assets.bmc_driver", &driver)?,
                address,
                port: r
                    .bmc_port
                    .and_then(|p| u16::try_from(p).ok())
                    .ok_or_else(|| sqlx::Error::Decode("column assets.bmc_port out of range".into()))?,
                username: r.bmc_username.unwrap_or_default(),
                password_sealed: r.bmc_password,
            }),
            _ => None,
        };
        Ok(AssetRow {
            state: parse_column("assets.state", &r.state)?,
            macs: json_column("assets.macs", &r.macs)?,
            tags: json_column("assets.tags", &r.tags)?,
            specs: json_column("assets.specs", &r.specs)?,
            disks: json_column("assets.disks", &r.disks)?,
            nics: json_column("assets.nics", &r.nics)?,
            id: r.id,
            hostname: r.hostname,
            smbios_uuid: r.smbios_uuid,
            serial: r.serial,
            bmc,
            generation: r.generation,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

const COLUMNS: &str = "id, hostname, state, macs, tags, specs, disks, nics, smbios_uuid, serial, bmc_driver, bmc_address, \
    bmc_port, bmc_username, bmc_password, generation, created_at, updated_at";

#[derive(Debug, Default, Clone)]
pub struct AssetQuery {
    pub state: Option<AssetState>,
    pub tag: Option<String>,
    pub mac: Option<Mac>,
    pub hostname: Option<String>,
}

impl AssetQuery {
    fn filter(&self) -> Filter {
        let mut f = Filter::default();
        if let Some(s) = self.state {
            f.push("state = {}", s.as_str());
        }
        if let Some(t) = &self.tag {
            f.push("id IN (SELECT asset_id FROM asset_tags WHERE tag = {})", t.clone());
        }
        if let Some(m) = self.mac {
            f.push("id IN (SELECT asset_id FROM asset_macs WHERE mac = {})", m.to_string());
        }
        if let Some(h) = &self.hostname {
            f.push("hostname = {}", h.clone());
        }
        f
    }
}

/// Which uniqueness rule a write broke.
#[derive(Debug)]
pub enum AssetConflict {
    Mac(Mac, String),
    Hostname,
    SmbiosUuid,
}

impl Store {
    pub async fn asset_get(&self, id: &str) -> Result<Option<AssetRow>, sqlx::Error> {
        let sql = format!("SELECT {COLUMNS} FROM assets WHERE id = $1");
        sqlx::query_as::<_, RawAsset>(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .map(AssetRow::try_from)
            .transpose()
    }

    /// The asset that owns `mac`, if any.
    pub async fn asset_by_mac(&self, mac: &Mac) -> Result<Option<AssetRow>, sqlx::Error> {
        let owner: Option<String> = sqlx::query_scalar("SELECT asset_id FROM asset_macs WHERE mac = $1")
            .bind(mac.to_string())
            .fetch_optional(&self.pool)
            .await?;
        match owner {
            Some(id) => self.asset_get(&id).await,
            None => Ok(None),
        }
    }

    /// The asset with this SMBIOS UUID (lowercase, as stored).
    pub async fn asset_by_uuid(&self, uuid: &str) -> Result<Option<AssetRow>, sqlx::Error> {
        let owner: Option<String> = sqlx::query_scalar("SELECT id FROM assets WHERE smbios_uuid = $1")
            .bind(uuid)
            .fetch_optional(&self.pool)
            .await?;
        match owner {
            Some(id) => self.asset_get(&id).await,
            None => Ok(None),
        }
    }

    pub async fn asset_get_in(conn: &mut AnyConnection, id: &str) -> Result<Option<AssetRow>, sqlx::Error> {
        let sql = format!("SELECT {COLUMNS} FROM assets WHERE id = $1");
        sqlx::query_as::<_, RawAsset>(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(conn)
            .await?
            .map(AssetRow::try_from)
            .transpose()
    }

    /// One page of assets as the API's JSON array, joined by the database from the rows' `view`
    /// column in one result row: the list endpoint's hot path, with no per-row decode or encode.
    /// The page as a JSON array and the filter's total. Pages are rendered by the database in one
    /// statement and reused while the assets' generation is unchanged (`page_cache`).
    pub async fn asset_list_json(&self, q: &AssetQuery, limit: i64, offset: i64) -> Result<CachedPage, sqlx::Error> {
        let key = format!("{q:?}/{limit}/{offset}");
        let seq: i64 =
            sqlx::query_scalar("SELECT seq FROM generations WHERE name = 'assets'").fetch_one(&self.pool).await?;
        if let Some(page) = self.pages.get(&key, seq) {
            return Ok(page);
        }
        let filter = q.filter();
        let (w, n) = (filter.where_sql(), filter.next_placeholder());
        // One statement for the generation, the page and the total, so all three come from one
        // snapshot. The filter's placeholders appear twice; both engines bind a numbered
        // placeholder by its number.
        let page =
            format!("SELECT view, created_at, id FROM assets {w} ORDER BY created_at, id LIMIT ${n} OFFSET ${}", n + 1);
        let concat = match self.backend {
            Backend::Sqlite => "group_concat(view, ',' ORDER BY created_at, id)",
            Backend::Postgres => "string_agg(view, ',' ORDER BY created_at, id)",
        };
        let sql = format!(
            "SELECT (SELECT seq FROM generations WHERE name = 'assets'), \
             (SELECT '[' || COALESCE({concat}, '') || ']' FROM ({page}) AS page), \
             (SELECT COUNT(*) FROM assets {w})"
        );
        let (seq, data, total) = filter
            .bind_all(sqlx::query_as::<_, (i64, String, i64)>(sqlx::AssertSqlSafe(sql)))
            .bind(limit)
            .bind(offset)
            .fetch_one(&self.pool)
            .await?;
        let page = CachedPage { data: data.into(), total };
        self.pages.put(key, seq, page.clone());
        Ok(page)
    }

    /// Finds the first uniqueness rule `a` would break against other assets, so the caller can
    /// answer with a precise 409 (the constraints remain the last word under races).
    pub async fn asset_find_conflict(
        conn: &mut AnyConnection,
        a: &AssetRow,
    ) -> Result<Option<AssetConflict>, sqlx::Error> {
        for mac in &a.macs {
            let owner: Option<String> = sqlx::query_scalar("SELECT asset_id FROM asset_macs WHERE mac = $1")
                .bind(mac.to_string())
                .fetch_optional(&mut *conn)
                .await?;
            if let Some(owner) = owner.filter(|o| *o != a.id) {
                return Ok(Some(AssetConflict::Mac(*mac, owner)));
            }
        }
        let same_name: Option<String> = sqlx::query_scalar("SELECT id FROM assets WHERE hostname = $1 AND id <> $2")
            .bind(&a.hostname)
            .bind(&a.id)
            .fetch_optional(&mut *conn)
            .await?;
        if same_name.is_some() {
            return Ok(Some(AssetConflict::Hostname));
        }
        if let Some(uuid) = &a.smbios_uuid {
            let same: Option<String> = sqlx::query_scalar("SELECT id FROM assets WHERE smbios_uuid = $1 AND id <> $2")
                .bind(uuid)
                .bind(&a.id)
                .fetch_optional(&mut *conn)
                .await?;
            if same.is_some() {
                return Ok(Some(AssetConflict::SmbiosUuid));
            }
        }
        Ok(None)
    }

    pub async fn asset_insert(conn: &mut AnyConnection, a: &AssetRow) -> Result<(), sqlx::Error> {
        let bmc = a.bmc.as_ref();
        sqlx::query(
            "INSERT INTO assets (id, hostname, state, macs, tags, specs, smbios_uuid, serial, bmc_driver, \
             bmc_address, bmc_port, bmc_username, bmc_password, generation, created_at, updated_at, view) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 1, $14, $14, $15)",
        )
        .bind(&a.id)
        .bind(&a.hostname)
        .bind(a.state.as_str())
        .bind(json(&a.macs))
        .bind(json(&a.tags))
        .bind(a.specs.to_string())
        .bind(a.smbios_uuid.as_deref())
        .bind(a.serial.as_deref())
        .bind(bmc.map(|b| b.driver.as_str()))
        .bind(bmc.map(|b| b.address.clone()))
        .bind(bmc.map(|b| i64::from(b.port)))
        .bind(bmc.map(|b| b.username.clone()))
        .bind(bmc.and_then(|b| b.password_sealed.clone()))
        .bind(&a.created_at)
        .bind(render_view(&AssetRow { generation: 1, updated_at: a.created_at.clone(), ..a.clone() }))
        .execute(&mut *conn)
        .await?;
        Store::bump_generation(conn, "assets").await?;
        Self::asset_write_side_tables(conn, a).await
    }

    /// Writes the client-editable fields if the row is still at `a.generation`; returns false when
    /// someone else changed it first. The state column is not touched here: only the lifecycle
    /// writes it.
    pub async fn asset_update(conn: &mut AnyConnection, a: &AssetRow, now: &str) -> Result<bool, sqlx::Error> {
        let bmc = a.bmc.as_ref();
        let done = sqlx::query(
            "UPDATE assets SET hostname = $2, macs = $3, tags = $4, smbios_uuid = $5, serial = $6, \
             bmc_driver = $7, bmc_address = $8, bmc_port = $9, bmc_username = $10, bmc_password = $11, \
             generation = generation + 1, updated_at = $12, view = $14, specs = $15 WHERE id = $1 AND generation = $13",
        )
        .bind(&a.id)
        .bind(&a.hostname)
        .bind(json(&a.macs))
        .bind(json(&a.tags))
        .bind(a.smbios_uuid.as_deref())
        .bind(a.serial.as_deref())
        .bind(bmc.map(|b| b.driver.as_str()))
        .bind(bmc.map(|b| b.address.clone()))
        .bind(bmc.map(|b| i64::from(b.port)))
        .bind(bmc.map(|b| b.username.clone()))
        .bind(bmc.and_then(|b| b.password_sealed.clone()))
        .bind(now)
        .bind(a.generation)
        .bind(render_view(&AssetRow { generation: a.generation + 1, updated_at: now.to_string(), ..a.clone() }))
        .bind(a.specs.to_string())
        .execute(&mut *conn)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        Store::bump_generation(conn, "assets").await?;
        sqlx::query("DELETE FROM asset_macs WHERE asset_id = $1").bind(&a.id).execute(&mut *conn).await?;
        sqlx::query("DELETE FROM asset_tags WHERE asset_id = $1").bind(&a.id).execute(&mut *conn).await?;
        Self::asset_write_side_tables(conn, a).await?;
        Ok(true)
    }

    /// The lifecycle's write of an asset's state (nothing else calls it), if the row is still at
    /// `a.generation`; returns false when someone else changed it first.
    pub async fn asset_set_state(
        conn: &mut AnyConnection,
        a: &AssetRow,
        state: AssetState,
        now: &str,
    ) -> Result<bool, sqlx::Error> {
        let next = AssetRow { state, generation: a.generation + 1, updated_at: now.to_string(), ..a.clone() };
        let done = sqlx::query(
            "UPDATE assets SET state = $2, generation = generation + 1, updated_at = $3, view = $4 \
             WHERE id = $1 AND generation = $5",
        )
        .bind(&a.id)
        .bind(state.as_str())
        .bind(now)
        .bind(render_view(&next))
        .bind(a.generation)
        .execute(&mut *conn)
        .await?;
        generation_write_landed(conn, done.rows_affected()).await
    }

    /// Registration's write of what the agent reported (specs, disks, NICs, and the serial and
    /// SMBIOS UUID when they were unknown), if the row is still at `a.generation`.
    pub async fn asset_set_hardware(conn: &mut AnyConnection, a: &AssetRow, now: &str) -> Result<bool, sqlx::Error> {
        let next = AssetRow { generation: a.generation + 1, updated_at: now.to_string(), ..a.clone() };
        let done = sqlx::query(
            "UPDATE assets SET specs = $2, disks = $3, nics = $4, serial = $5, smbios_uuid = $6, \
             generation = generation + 1, updated_at = $7, view = $8 WHERE id = $1 AND generation = $9",
        )
        .bind(&a.id)
        .bind(a.specs.to_string())
        .bind(a.disks.to_string())
        .bind(a.nics.to_string())
        .bind(a.serial.as_deref())
        .bind(a.smbios_uuid.as_deref())
        .bind(now)
        .bind(render_view(&next))
        .bind(a.generation)
        .execute(&mut *conn)
        .await?;
        generation_write_landed(conn, done.rows_affected()).await
    }

    async fn asset_write_side_tables(conn: &mut AnyConnection, a: &AssetRow) -> Result<(), sqlx::Error> {
        for mac in &a.macs {
            sqlx::query("INSERT INTO asset_macs (mac, asset_id) VALUES ($1, $2)")
                .bind(mac.to_string())
                .bind(&a.id)
                .execute(&mut *conn)
                .await?;
        }
        for tag in &a.tags {
            sqlx::query("INSERT INTO asset_tags (asset_id, tag) VALUES ($1, $2)")
                .bind(&a.id)
                .bind(tag)
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }

    pub async fn asset_delete(conn: &mut AnyConnection, id: &str) -> Result<bool, sqlx::Error> {
        // Side tables go by ON DELETE CASCADE.
        let done = sqlx::query("DELETE FROM assets WHERE id = $1").bind(id).execute(&mut *conn).await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        Store::bump_generation(conn, "assets").await?;
        Ok(true)
    }
}

/// Whether a write guarded by `generation = <seen>` hit its row; if it did, the assets generation
/// moves in the same transaction (cached pages and DHCP's segments re-read).
async fn generation_write_landed(conn: &mut AnyConnection, rows: u64) -> Result<bool, sqlx::Error> {
    if rows != 1 {
        return Ok(false);
    }
    Store::bump_generation(conn, "assets").await?;
    Ok(true)
}

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}
