//! Pre-shared keys. Values are stored sealed (the application seals and opens them); the rows
//! carry a generation so concurrent updates cannot silently overwrite each other.

use sqlx::{AnyConnection, FromRow};

use super::{Filter, Store};

#[derive(Debug, Clone)]
pub struct PskRow {
    pub id: String,
    pub psk_id: String,
    pub value_sealed: Vec<u8>,
    pub description: String,
    pub vlan_id: Option<i64>,
    pub expires: Option<String>,
    pub enabled: bool,
    pub previous_sealed: Option<Vec<u8>>,
    pub previous_valid_until: Option<String>,
    pub rotated_at: Option<String>,
    pub generation: i64,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(FromRow)]
struct RawPsk {
    id: String,
    psk_id: String,
    value_sealed: Vec<u8>,
    description: String,
    vlan_id: Option<i64>,
    expires: Option<String>,
    enabled: i64,
    previous_sealed: Option<Vec<u8>>,
    previous_valid_until: Option<String>,
    rotated_at: Option<String>,
    generation: i64,
    created_at: String,
    updated_at: String,
}

impl From<RawPsk> for PskRow {
    fn from(r: RawPsk) -> Self {
        PskRow {
            id: r.id,
            psk_id: r.psk_id,
            value_sealed: r.value_sealed,
            description: r.description,
            vlan_id: r.vlan_id,
            expires: r.expires,
            enabled: r.enabled != 0,
            previous_sealed: r.previous_sealed,
            previous_valid_until: r.previous_valid_until,
            rotated_at: r.rotated_at,
            generation: r.generation,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

const COLUMNS: &str = "id, psk_id, value_sealed, description, vlan_id, expires, enabled, previous_sealed, \
    previous_valid_until, rotated_at, generation, created_at, updated_at";

/// List filters. `status` is derived from `enabled` and `expires` at `now`.
#[derive(Debug, Default, Clone)]
pub struct PskQuery {
    pub vlan_id: Option<i64>,
    pub enabled: Option<bool>,
    /// `active`, `expired` or `disabled`, evaluated at `now`.
    pub status: Option<String>,
    pub now: String,
}

impl PskQuery {
    fn filter(&self) -> Filter {
        let mut f = Filter::default();
        if let Some(v) = self.vlan_id {
            // Filter binds text; the cast keeps one SQL text for both engines.
            f.push("CAST(vlan_id AS TEXT) = {}", v.to_string());
        }
        if let Some(e) = self.enabled {
            f.push("CAST(enabled AS TEXT) = {}", if e { "1" } else { "0" });
        }
        match self.status.as_deref() {
            Some("disabled") => f.push("CAST(enabled AS TEXT) = {}", "0"),
            Some("expired") => {
                f.push("CAST(enabled AS TEXT) = {}", "1");
                f.push("expires IS NOT NULL AND expires <= {}", self.now.clone());
            }
            Some("active") => {
                f.push("CAST(enabled AS TEXT) = {}", "1");
                f.push("(expires IS NULL OR expires > {})", self.now.clone());
            }
            _ => {}
        }
        f
    }
}

impl Store {
    pub async fn psk_get(conn: &mut AnyConnection, id: &str) -> Result<Option<PskRow>, sqlx::Error> {
        let sql = format!("SELECT {COLUMNS} FROM psks WHERE id = $1");
        let row: Option<RawPsk> = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(conn).await?;
        Ok(row.map(PskRow::from))
    }

    pub async fn psk_get_by_name(conn: &mut AnyConnection, psk_id: &str) -> Result<Option<PskRow>, sqlx::Error> {
        let sql = format!("SELECT {COLUMNS} FROM psks WHERE psk_id = $1");
        let row: Option<RawPsk> = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(psk_id).fetch_optional(conn).await?;
        Ok(row.map(PskRow::from))
    }

    pub async fn psk_list(&self, q: &PskQuery, limit: i64, offset: i64) -> Result<(Vec<PskRow>, i64), sqlx::Error> {
        let filter = q.filter();
        let n = filter.next_placeholder();
        let sql = format!(
            "SELECT {COLUMNS} FROM psks {} ORDER BY created_at, id LIMIT ${n} OFFSET ${}",
            filter.where_sql(),
            n + 1
        );
        let rows: Vec<RawPsk> = filter
            .bind_all(sqlx::query_as::<_, RawPsk>(sqlx::AssertSqlSafe(sql)))
            .bind(limit)
            .bind(offset)
            .fetch_all(&self.pool)
            .await?;
        let count_sql = format!("SELECT COUNT(*) FROM psks {}", filter.where_sql());
        let total =
            filter.bind_scalar(sqlx::query_scalar(sqlx::AssertSqlSafe(count_sql))).fetch_one(&self.pool).await?;
        Ok((rows.into_iter().map(PskRow::from).collect(), total))
    }

    pub async fn psk_insert(conn: &mut AnyConnection, p: &PskRow) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO psks (id, psk_id, value_sealed, description, vlan_id, expires, enabled, previous_sealed, \
             previous_valid_until, rotated_at, generation, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, NULL, NULL, 1, $8, $8)",
        )
        .bind(&p.id)
        .bind(&p.psk_id)
        .bind(&p.value_sealed)
        .bind(&p.description)
        .bind(p.vlan_id)
        .bind(p.expires.as_deref())
        .bind(i64::from(p.enabled))
        .bind(&p.created_at)
        .execute(conn)
        .await
        .map(|_| ())
    }

    /// Writes every mutable column if the row is still at `p.generation`.
    pub async fn psk_update(conn: &mut AnyConnection, p: &PskRow, now: &str) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(
            "UPDATE psks SET psk_id = $2, value_sealed = $3, description = $4, vlan_id = $5, expires = $6, \
             enabled = $7, previous_sealed = $8, previous_valid_until = $9, rotated_at = $10, \
             generation = generation + 1, updated_at = $11 WHERE id = $1 AND generation = $12",
        )
        .bind(&p.id)
        .bind(&p.psk_id)
        .bind(&p.value_sealed)
        .bind(&p.description)
        .bind(p.vlan_id)
        .bind(p.expires.as_deref())
        .bind(i64::from(p.enabled))
        .bind(p.previous_sealed.as_deref())
        .bind(p.previous_valid_until.as_deref())
        .bind(p.rotated_at.as_deref())
        .bind(now)
        .bind(p.generation)
        .execute(conn)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn psk_delete(conn: &mut AnyConnection, id: &str) -> Result<bool, sqlx::Error> {
        let done = sqlx::query("DELETE FROM psks WHERE id = $1").bind(id).execute(conn).await?;
        Ok(done.rows_affected() == 1)
    }

    /// Is `vni` the number of some VNI?
    pub async fn vni_number_exists(conn: &mut AnyConnection, vni: i64) -> Result<bool, sqlx::Error> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM vnis WHERE vni = $1").bind(vni).fetch_one(conn).await?;
        Ok(n > 0)
    }

    /// How many PSKs are bound to VLAN/VNI number `vni`.
    pub async fn psk_count_on_vlan(conn: &mut AnyConnection, vni: i64) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar("SELECT COUNT(*) FROM psks WHERE vlan_id = $1").bind(vni).fetch_one(conn).await
    }
}
