//! Network segments (VNIs) and their address allocations. Addresses are stored as canonical text
//! with a fixed-width sort key; `(vni_id, address)` is the primary key, so two holders of one
//! address cannot both commit.

use sqlx::{AnyConnection, FromRow};

use super::Store;

#[derive(Debug, Clone, FromRow)]
pub struct VniRow {
    pub id: String,
    pub name: String,
    pub cidr: String,
    pub vni: i64,
    pub description: String,
    pub status: String,
    pub dhcp_start: Option<String>,
    pub dhcp_end: Option<String>,
    pub gateway: Option<String>,
    /// JSON array of addresses.
    pub dns_servers: String,
    /// JSON array of `{"start","end"}`.
    pub reserved: String,
    /// DHCP option 15.
    pub domain: Option<String>,
    pub generation: i64,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, FromRow, serde::Serialize, utoipa::ToSchema)]
pub struct AllocationRow {
    pub vni_id: String,
    pub address: String,
    #[serde(skip)]
    pub sort_key: String,
    pub holder_type: String,
    pub holder_id: String,
    pub created_at: String,
}

const COLUMNS: &str = "id, name, cidr, vni, description, status, dhcp_start, dhcp_end, gateway, dns_servers, \
    reserved, domain, generation, created_at, updated_at";

/// Counts shown with a VNI.
#[derive(Debug, Clone, Copy, Default)]
pub struct VniCounts {
    pub allocations: i64,
    pub assets: i64,
    pub devices: i64,
}

impl Store {
    pub async fn vni_get(&self, id: &str) -> Result<Option<VniRow>, sqlx::Error> {
        let sql = format!("SELECT {COLUMNS} FROM vnis WHERE id = $1");
        sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(&self.pool).await
    }

    pub async fn vni_get_in(conn: &mut AnyConnection, id: &str) -> Result<Option<VniRow>, sqlx::Error> {
        let sql = format!("SELECT {COLUMNS} FROM vnis WHERE id = $1");
        sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(conn).await
    }

    /// Every VNI (for overlap checks: a site has tens to hundreds, not millions).
    pub async fn vni_all(conn: &mut AnyConnection) -> Result<Vec<VniRow>, sqlx::Error> {
        let sql = format!("SELECT {COLUMNS} FROM vnis ORDER BY created_at, id");
        sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_all(conn).await
    }

    pub async fn vni_list(&self, limit: i64, offset: i64) -> Result<(Vec<VniRow>, i64), sqlx::Error> {
        let sql = format!("SELECT {COLUMNS} FROM vnis ORDER BY created_at, id LIMIT $1 OFFSET $2");
        let rows = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(limit).bind(offset).fetch_all(&self.pool).await?;
        let total = sqlx::query_scalar("SELECT COUNT(*) FROM vnis").fetch_one(&self.pool).await?;
        Ok((rows, total))
    }

    pub async fn vni_counts(&self, id: &str) -> Result<VniCounts, sqlx::Error> {
        let (allocations, assets, devices): (i64, i64, i64) = sqlx::query_as(
            "SELECT COUNT(*), \
             COALESCE(SUM(CASE WHEN holder_type = 'asset' THEN 1 ELSE 0 END), 0), \
             (SELECT COUNT(*) FROM devices WHERE vni_id = $1 AND revoked_at IS NULL) \
             FROM ip_allocations WHERE vni_id = $1",
        )
        .bind(id)
        .fetch_one(&self.pool)
        .await?;
        Ok(VniCounts { allocations, assets, devices })
    }

    /// Bumps the `vnis` generation when a write `changed` something; returns `changed`.
    async fn bumped_if(conn: &mut AnyConnection, changed: bool) -> Result<bool, sqlx::Error> {
        if changed {
            Store::bump_generation(conn, "vnis").await?;
        }
        Ok(changed)
    }

    pub async fn vni_insert(conn: &mut AnyConnection, v: &VniRow) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO vnis (id, name, cidr, vni, description, status, dhcp_start, dhcp_end, gateway, dns_servers, \
             reserved, generation, created_at, updated_at, domain) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 1, $12, $12, $13)",
        )
        .bind(&v.id)
        .bind(&v.name)
        .bind(&v.cidr)
        .bind(v.vni)
        .bind(&v.description)
        .bind(&v.status)
        .bind(v.dhcp_start.as_deref())
        .bind(v.dhcp_end.as_deref())
        .bind(v.gateway.as_deref())
        .bind(&v.dns_servers)
        .bind(&v.reserved)
        .bind(&v.created_at)
        .bind(v.domain.as_deref())
        .execute(&mut *conn)
        .await?;
        // The DHCP server re-reads segments when this moves (`dhcp::segments`).
        Store::bump_generation(conn, "vnis").await
    }

    /// Writes the editable fields if the row is still at `v.generation`.
    pub async fn vni_update(conn: &mut AnyConnection, v: &VniRow, now: &str) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(
            "UPDATE vnis SET name = $2, description = $3, dhcp_start = $4, dhcp_end = $5, gateway = $6, \
             dns_servers = $7, reserved = $8, generation = generation + 1, updated_at = $9, domain = $11 \
             WHERE id = $1 AND generation = $10",
        )
        .bind(&v.id)
        .bind(&v.name)
        .bind(&v.description)
        .bind(v.dhcp_start.as_deref())
        .bind(v.dhcp_end.as_deref())
        .bind(v.gateway.as_deref())
        .bind(&v.dns_servers)
        .bind(&v.reserved)
        .bind(now)
        .bind(v.generation)
        .bind(v.domain.as_deref())
        .execute(&mut *conn)
        .await?;
        Self::bumped_if(conn, done.rows_affected() == 1).await
    }

    pub async fn vni_delete(conn: &mut AnyConnection, id: &str) -> Result<bool, sqlx::Error> {
        let done = sqlx::query("DELETE FROM vnis WHERE id = $1").bind(id).execute(&mut *conn).await?;
        Self::bumped_if(conn, done.rows_affected() == 1).await
    }

    /// Enrolled (not revoked) devices placed in the VNI by their enrollment token.
    pub async fn vni_device_count_in(conn: &mut AnyConnection, vni_id: &str) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar("SELECT COUNT(*) FROM devices WHERE vni_id = $1 AND revoked_at IS NULL")
            .bind(vni_id)
            .fetch_one(conn)
            .await
    }

    pub async fn allocation_count_in(conn: &mut AnyConnection, vni_id: &str) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar("SELECT COUNT(*) FROM ip_allocations WHERE vni_id = $1").bind(vni_id).fetch_one(conn).await
    }

    /// Every address held in a VNI (to find the next free one).
    pub async fn allocation_addresses(conn: &mut AnyConnection, vni_id: &str) -> Result<Vec<String>, sqlx::Error> {
        sqlx::query_scalar("SELECT address FROM ip_allocations WHERE vni_id = $1").bind(vni_id).fetch_all(conn).await
    }

    /// The addresses held at or above `sort_key` (see `ipam::sort_key`), for a next-free scan that
    /// starts there.
    pub async fn allocation_addresses_from(
        conn: &mut AnyConnection,
        vni_id: &str,
        sort_key: &str,
    ) -> Result<Vec<String>, sqlx::Error> {
        sqlx::query_scalar("SELECT address FROM ip_allocations WHERE vni_id = $1 AND sort_key >= $2")
            .bind(vni_id)
            .bind(sort_key)
            .fetch_all(conn)
            .await
    }

    /// Where this process's next-free scan of `vni_id` may start: every assignable address below
    /// it was taken when it was recorded. Only a shortcut: the scan still reads what is held from
    /// there, and the unique key stays the last word.
    pub fn allocation_hint(&self, vni_id: &str) -> Option<String> {
        self.alloc_hints.lock().unwrap_or_else(|p| p.into_inner()).get(vni_id).cloned()
    }

    pub fn set_allocation_hint(&self, vni_id: &str, address: Option<String>) {
        let mut hints = self.alloc_hints.lock().unwrap_or_else(|p| p.into_inner());
        match address {
            Some(a) => {
                hints.insert(vni_id.to_string(), a);
            }
            None => {
                hints.remove(vni_id);
            }
        }
    }

    pub async fn allocation_get(
        conn: &mut AnyConnection,
        vni_id: &str,
        address: &str,
    ) -> Result<Option<AllocationRow>, sqlx::Error> {
        sqlx::query_as(
            "SELECT vni_id, address, sort_key, holder_type, holder_id, created_at FROM ip_allocations \
             WHERE vni_id = $1 AND address = $2",
        )
        .bind(vni_id)
        .bind(address)
        .fetch_optional(conn)
        .await
    }

    pub async fn allocation_insert(conn: &mut AnyConnection, a: &AllocationRow) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO ip_allocations (vni_id, address, sort_key, holder_type, holder_id, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&a.vni_id)
        .bind(&a.address)
        .bind(&a.sort_key)
        .bind(&a.holder_type)
        .bind(&a.holder_id)
        .bind(&a.created_at)
        .execute(&mut *conn)
        .await?;
        // The DHCP server re-reads segments when this moves (`dhcp::segments`).
        Store::bump_generation(conn, "vnis").await
    }

    pub async fn allocation_delete(conn: &mut AnyConnection, vni_id: &str, address: &str) -> Result<bool, sqlx::Error> {
        let done = sqlx::query("DELETE FROM ip_allocations WHERE vni_id = $1 AND address = $2")
            .bind(vni_id)
            .bind(address)
            .execute(&mut *conn)
            .await?;
        Self::bumped_if(conn, done.rows_affected() == 1).await
    }

    pub async fn allocation_list(
        &self,
        vni_id: &str,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<AllocationRow>, i64), sqlx::Error> {
        let rows = sqlx::query_as(
            "SELECT vni_id, address, sort_key, holder_type, holder_id, created_at FROM ip_allocations \
             WHERE vni_id = $1 ORDER BY sort_key LIMIT $2 OFFSET $3",
        )
        .bind(vni_id)
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        let total = sqlx::query_scalar("SELECT COUNT(*) FROM ip_allocations WHERE vni_id = $1")
            .bind(vni_id)
            .fetch_one(&self.pool)
            .await?;
        Ok((rows, total))
    }
}
