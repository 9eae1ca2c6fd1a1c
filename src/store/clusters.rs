//! Talos clusters and their members. A member row is the node's plan (settings JSON, address)
//! plus the milestones of its install: config served, installed (the PXE boot after that), apid up.

use sqlx::{AnyConnection, FromRow};

use super::Store;

#[derive(Debug, Clone, FromRow)]
pub struct ClusterRow {
    pub id: String,
    pub name: String,
    pub state: String,
    pub flavor: String,
    pub talos_version: String,
    pub kubernetes_version: String,
    pub endpoint: String,
    pub settings: String,
    pub secrets_sealed: Vec<u8>,
    pub bootstrap_state: String,
    pub workflow_id: String,
    pub warnings: String,
    pub created_by: String,
    pub created_at: String,
    pub updated_at: String,
    pub ready_at: Option<String>,
}

#[derive(Debug, Clone, FromRow)]
pub struct MemberRow {
    pub asset_id: String,
    pub cluster_id: String,
    pub role: String,
    pub ordinal: i64,
    pub node: String,
    pub address: String,
    pub vni_id: Option<String>,
    pub workflow_id: String,
    pub config_served_at: Option<String>,
    pub installed_at: Option<String>,
    pub apid_at: Option<String>,
}

const CLUSTER_COLUMNS: &str = "id, name, state, flavor, talos_version, kubernetes_version, endpoint, settings, \
    secrets_sealed, bootstrap_state, workflow_id, warnings, created_by, created_at, updated_at, ready_at";
const MEMBER_COLUMNS: &str = "asset_id, cluster_id, role, ordinal, node, address, vni_id, workflow_id, \
    config_served_at, installed_at, apid_at";

impl Store {
    pub async fn cluster_insert(conn: &mut AnyConnection, c: &ClusterRow) -> Result<(), sqlx::Error> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO clusters ({CLUSTER_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
        )))
        .bind(&c.id)
        .bind(&c.name)
        .bind(&c.state)
        .bind(&c.flavor)
        .bind(&c.talos_version)
        .bind(&c.kubernetes_version)
        .bind(&c.endpoint)
        .bind(&c.settings)
        .bind(&c.secrets_sealed)
        .bind(&c.bootstrap_state)
        .bind(&c.workflow_id)
        .bind(&c.warnings)
        .bind(&c.created_by)
        .bind(&c.created_at)
        .bind(&c.updated_at)
        .bind(c.ready_at.as_deref())
        .execute(conn)
        .await?;
        Ok(())
    }

    pub async fn member_insert(conn: &mut AnyConnection, m: &MemberRow) -> Result<(), sqlx::Error> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO cluster_members ({MEMBER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        )))
        .bind(&m.asset_id)
        .bind(&m.cluster_id)
        .bind(&m.role)
        .bind(m.ordinal)
        .bind(&m.node)
        .bind(&m.address)
        .bind(m.vni_id.as_deref())
        .bind(&m.workflow_id)
        .bind(m.config_served_at.as_deref())
        .bind(m.installed_at.as_deref())
        .bind(m.apid_at.as_deref())
        .execute(conn)
        .await?;
        Ok(())
    }

    pub async fn cluster_get(&self, id: &str) -> Result<Option<ClusterRow>, sqlx::Error> {
        let mut conn = self.pool.acquire().await?;
        Self::cluster_get_in(&mut conn, id).await
    }

    pub async fn cluster_get_in(conn: &mut AnyConnection, id: &str) -> Result<Option<ClusterRow>, sqlx::Error> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {CLUSTER_COLUMNS} FROM clusters WHERE id = $1")))
            .bind(id)
            .fetch_optional(conn)
            .await
    }

    pub async fn cluster_list(&self, limit: i64, offset: i64) -> Result<(Vec<ClusterRow>, i64), sqlx::Error> {
        let rows = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {CLUSTER_COLUMNS} FROM clusters ORDER BY created_at, id LIMIT $1 OFFSET $2"
        )))
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        let total = sqlx::query_scalar("SELECT COUNT(*) FROM clusters").fetch_one(&self.pool).await?;
        Ok((rows, total))
    }

    pub async fn cluster_members(&self, cluster_id: &str) -> Result<Vec<MemberRow>, sqlx::Error> {
        let mut conn = self.pool.acquire().await?;
        Self::cluster_members_in(&mut conn, cluster_id).await
    }

    pub async fn cluster_members_in(conn: &mut AnyConnection, cluster_id: &str) -> Result<Vec<MemberRow>, sqlx::Error> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {MEMBER_COLUMNS} FROM cluster_members WHERE cluster_id = $1 ORDER BY ordinal"
        )))
        .bind(cluster_id)
        .fetch_all(conn)
        .await
    }

    pub async fn member_of_asset(&self, asset_id: &str) -> Result<Option<MemberRow>, sqlx::Error> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {MEMBER_COLUMNS} FROM cluster_members WHERE asset_id = $1")))
            .bind(asset_id)
            .fetch_optional(&self.pool)
            .await
    }

    /// The node fetched its config (each fetch moves the mark: the install is after the last one).
    pub async fn member_config_served(&self, asset_id: &str, now: &str) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE cluster_members SET config_served_at = $2 WHERE asset_id = $1 AND installed_at IS NULL")
            .bind(asset_id)
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The node PXE-booted after its config was served: Talos installed itself and rebooted.
    /// True when this call made the mark.
    pub async fn member_installed(&self, asset_id: &str, now: &str) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(
            "UPDATE cluster_members SET installed_at = $2 \
             WHERE asset_id = $1 AND installed_at IS NULL AND config_served_at IS NOT NULL",
        )
        .bind(asset_id)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn member_apid_up(&self, asset_id: &str, now: &str) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE cluster_members SET apid_at = $2 WHERE asset_id = $1 AND apid_at IS NULL")
            .bind(asset_id)
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn cluster_set_state(
        conn: &mut AnyConnection,
        id: &str,
        state: &str,
        bootstrap_state: Option<&str>,
        now: &str,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE clusters SET state = $2, bootstrap_state = COALESCE($3, bootstrap_state), updated_at = $4, \
             ready_at = CASE WHEN $2 = 'ready' THEN $4 ELSE ready_at END WHERE id = $1",
        )
        .bind(id)
        .bind(state)
        .bind(bootstrap_state)
        .bind(now)
        .execute(conn)
        .await?;
        Ok(())
    }

    pub async fn cluster_set_bootstrap(&self, id: &str, bootstrap_state: &str, now: &str) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE clusters SET bootstrap_state = $2, updated_at = $3 WHERE id = $1")
            .bind(id)
            .bind(bootstrap_state)
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Removes the cluster, its members and (with them) its secrets.
    pub async fn cluster_delete(conn: &mut AnyConnection, id: &str) -> Result<bool, sqlx::Error> {
        sqlx::query("DELETE FROM cluster_members WHERE cluster_id = $1").bind(id).execute(&mut *conn).await?;
        let done = sqlx::query("DELETE FROM clusters WHERE id = $1").bind(id).execute(&mut *conn).await?;
        Ok(done.rows_affected() == 1)
    }

    /// Addresses held by a cluster in any VNI (released when it is deleted).
    pub async fn allocations_of_holder(
        conn: &mut AnyConnection,
        holder_type: &str,
        holder_id: &str,
    ) -> Result<Vec<(String, String)>, sqlx::Error> {
        sqlx::query_as("SELECT vni_id, address FROM ip_allocations WHERE holder_type = $1 AND holder_id = $2")
            .bind(holder_type)
            .bind(holder_id)
            .fetch_all(conn)
            .await
    }
}
