//! The agent last registered per asset, and the hardware changes seen between registrations.

use sqlx::{AnyConnection, FromRow};

use super::Store;

#[derive(Debug, Clone, FromRow)]
pub struct AgentRow {
    pub asset_id: String,
    pub device_id: String,
    pub address: String,
    pub ssh_port: i64,
    pub host_key: String,
    pub agent_version: String,
    pub mac: Option<String>,
    /// JSON `ironbay_wire::inventory::Inventory`.
    pub inventory: String,
    pub heartbeat_secs: i64,
    pub registered_at: String,
    pub last_heartbeat: String,
    pub busy: Option<String>,
    /// JSON array of OpenSSH public key lines.
    pub rescue_keys: String,
    /// The appliance's base URL as the agent reached it (images are served to it from there).
    pub appliance_url: Option<String>,
}

#[derive(Debug, Clone, FromRow)]
pub struct InventoryChangeRow {
    pub id: String,
    pub asset_id: String,
    pub at: String,
    /// JSON array of changes.
    pub changes: String,
}

const COLUMNS: &str = "asset_id, device_id, address, ssh_port, host_key, agent_version, mac, inventory, \
    heartbeat_secs, registered_at, last_heartbeat, busy, rescue_keys, appliance_url";

impl Store {
    pub async fn agent_get(&self, asset_id: &str) -> Result<Option<AgentRow>, sqlx::Error> {
        let mut conn = self.pool.acquire().await?;
        Self::agent_get_in(&mut conn, asset_id).await
    }

    pub async fn agent_get_in(conn: &mut AnyConnection, asset_id: &str) -> Result<Option<AgentRow>, sqlx::Error> {
        sqlx::query_as::<_, AgentRow>(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM agents WHERE asset_id = $1")))
            .bind(asset_id)
            .fetch_optional(&mut *conn)
            .await
    }

    /// A registration: the agent that runs on the asset now (replacing any earlier one; its
    /// rescue keys do not carry over to a new boot).
    pub async fn agent_upsert(conn: &mut AnyConnection, a: &AgentRow) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM agents WHERE asset_id = $1").bind(&a.asset_id).execute(&mut *conn).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO agents ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
        )))
        .bind(&a.asset_id)
        .bind(&a.device_id)
        .bind(&a.address)
        .bind(a.ssh_port)
        .bind(&a.host_key)
        .bind(&a.agent_version)
        .bind(a.mac.as_deref())
        .bind(&a.inventory)
        .bind(a.heartbeat_secs)
        .bind(&a.registered_at)
        .bind(&a.last_heartbeat)
        .bind(a.busy.as_deref())
        .bind(&a.rescue_keys)
        .bind(a.appliance_url.as_deref())
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// Records a heartbeat from the agent enrolled as `device_id`; false if that agent is no
    /// longer the asset's (a newer boot registered since).
    pub async fn agent_heartbeat(
        &self,
        asset_id: &str,
        device_id: &str,
        at: &str,
        busy: Option<&str>,
    ) -> Result<bool, sqlx::Error> {
        let mut conn = self.pool.acquire().await?;
        let done =
            sqlx::query("UPDATE agents SET last_heartbeat = $3, busy = $4 WHERE asset_id = $1 AND device_id = $2")
                .bind(asset_id)
                .bind(device_id)
                .bind(at)
                .bind(busy)
                .execute(&mut *conn)
                .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn agent_set_rescue_keys(
        conn: &mut AnyConnection,
        asset_id: &str,
        keys: &str,
    ) -> Result<bool, sqlx::Error> {
        let done = sqlx::query("UPDATE agents SET rescue_keys = $2 WHERE asset_id = $1")
            .bind(asset_id)
            .bind(keys)
            .execute(&mut *conn)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn inventory_change_insert(conn: &mut AnyConnection, c: &InventoryChangeRow) -> Result<(), sqlx::Error> {
        sqlx::query("INSERT INTO inventory_changes (id, asset_id, at, changes) VALUES ($1, $2, $3, $4)")
            .bind(&c.id)
            .bind(&c.asset_id)
            .bind(&c.at)
            .bind(&c.changes)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    /// Newest first.
    pub async fn inventory_changes(
        &self,
        asset_id: &str,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<InventoryChangeRow>, i64), sqlx::Error> {
        let mut conn = self.pool.acquire().await?;
        let rows = sqlx::query_as::<_, InventoryChangeRow>(
            "SELECT id, asset_id, at, changes FROM inventory_changes WHERE asset_id = $1 \
             ORDER BY at DESC, id DESC LIMIT $2 OFFSET $3",
        )
        .bind(asset_id)
        .bind(limit)
        .bind(offset)
        .fetch_all(&mut *conn)
        .await?;
        let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM inventory_changes WHERE asset_id = $1")
            .bind(asset_id)
            .fetch_one(&mut *conn)
            .await?;
        Ok((rows, total))
    }
}
