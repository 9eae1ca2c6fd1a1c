//! DHCP leases' durable copy. Written by the group committer (`dhcp::persist`) in batches, read
//! once per segment when the DHCP server starts serving it.

use sqlx::{AnyConnection, FromRow};

use super::Store;

const ROWS_PER_STATEMENT: usize = 100;

#[derive(Debug, Clone, FromRow)]
pub struct LeaseRow {
    pub vni_id: String,
    pub address: String,
    pub mac: String,
    /// Hex.
    pub client_id: Option<String>,
    pub hostname: Option<String>,
    pub state: String,
    /// Unix seconds.
    pub expires_at: i64,
    pub updated_at: String,
}

impl Store {
    pub async fn dhcp_leases_of(&self, vni_id: &str) -> Result<Vec<LeaseRow>, sqlx::Error> {
        sqlx::query_as(
            "SELECT vni_id, address, mac, client_id, hostname, state, expires_at, updated_at \
             FROM dhcp_leases WHERE vni_id = $1",
        )
        .bind(vni_id)
        .fetch_all(&self.pool)
        .await
    }

    /// Writes `rows` (insert or replace per segment and address; for a key given twice, the last
    /// row wins) on `conn`, in the caller's transaction, many rows per statement.
    pub async fn dhcp_leases_upsert(conn: &mut AnyConnection, rows: &[LeaseRow]) -> Result<(), sqlx::Error> {
        // One statement must not touch a row twice (PostgreSQL refuses): keep each key's last row.
        let mut last: std::collections::HashMap<(&str, &str), &LeaseRow> = std::collections::HashMap::new();
        for r in rows {
            last.insert((r.vni_id.as_str(), r.address.as_str()), r);
        }
        let unique: Vec<&LeaseRow> = last.into_values().collect();
        for chunk in unique.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "INSERT INTO dhcp_leases (vni_id, address, mac, client_id, hostname, state, expires_at, updated_at) \
                 VALUES {} \
                 ON CONFLICT (vni_id, address) DO UPDATE SET mac = excluded.mac, client_id = excluded.client_id, \
                 hostname = excluded.hostname, state = excluded.state, expires_at = excluded.expires_at, \
                 updated_at = excluded.updated_at",
                super::values_placeholders(chunk.len(), 8)
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for r in chunk {
                q = q
                    .bind(&r.vni_id)
                    .bind(&r.address)
                    .bind(&r.mac)
                    .bind(&r.client_id)
                    .bind(&r.hostname)
                    .bind(&r.state)
                    .bind(r.expires_at)
                    .bind(&r.updated_at);
            }
            q.execute(&mut *conn).await?;
        }
        Ok(())
    }

    /// Active, unexpired leases of a segment at `now` (Unix seconds): addresses IPAM must not
    /// hand out.
    pub async fn dhcp_active_addresses(
        conn: &mut AnyConnection,
        vni_id: &str,
        now: i64,
    ) -> Result<Vec<String>, sqlx::Error> {
        sqlx::query_scalar(
            "SELECT address FROM dhcp_leases WHERE vni_id = $1 AND state IN ('active', 'declined') AND expires_at > $2",
        )
        .bind(vni_id)
        .bind(now)
        .fetch_all(conn)
        .await
    }
}
