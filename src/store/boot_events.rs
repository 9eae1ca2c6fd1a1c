//! The boot timeline's rows. Inserted in batches by `boot::journal`; read newest first.

use sqlx::FromRow;

use super::Store;

const ROWS_PER_STATEMENT: usize = 100;

#[derive(Debug, Clone, FromRow, serde::Serialize, utoipa::ToSchema)]
pub struct BootEventRow {
    #[serde(skip)]
    pub id: i64,
    /// The client's MAC, when known.
    pub mac: Option<String>,
    /// The client's IP address, when it had one.
    pub ip: Option<String>,
    /// RFC 3339, UTC, with microseconds.
    pub at: String,
    /// `dhcp`, `tftp` or `http`.
    pub source: String,
    /// What the client asked, e.g. `DHCPDISCOVER arch=7 vendor=PXEClient:Arch:00007`.
    pub request: String,
    /// What ironbay answered, e.g. `DHCPOFFER 10.213.0.50 file=ipxe.efi`, or `none`.
    pub response: String,
    /// Why: the rule that chose the answer, or why there was none.
    pub reason: String,
}

impl Store {
    /// Inserts events in one transaction, many rows per statement (a round trip per row would
    /// cost more than the rows).
    pub async fn boot_events_insert(&self, events: &[BootEventRow]) -> Result<(), sqlx::Error> {
        let _turn = self.bulk_write_turn().await;
        let mut tx = self.begin().await?;
        for chunk in events.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "INSERT INTO boot_events (mac, ip, at, source, request, response, reason) VALUES {}",
                super::values_placeholders(chunk.len(), 7)
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for e in chunk {
                q = q
                    .bind(&e.mac)
                    .bind(&e.ip)
                    .bind(&e.at)
                    .bind(&e.source)
                    .bind(&e.request)
                    .bind(&e.response)
                    .bind(&e.reason);
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await
    }

    /// The newest `limit` events of any of `macs`, newest first.
    pub async fn boot_events_for(&self, macs: &[String], limit: i64) -> Result<Vec<BootEventRow>, sqlx::Error> {
        if macs.is_empty() {
            return Ok(Vec::new());
        }
        let marks: Vec<String> = (1..=macs.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT id, mac, ip, at, source, request, response, reason FROM boot_events \
             WHERE mac IN ({}) ORDER BY id DESC LIMIT {limit}",
            marks.join(", ")
        );
        let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql));
        for m in macs {
            q = q.bind(m);
        }
        q.fetch_all(&self.pool).await
    }

    /// The newest `limit` events of all clients, newest first.
    pub async fn boot_events_recent(&self, limit: i64) -> Result<Vec<BootEventRow>, sqlx::Error> {
        let sql = format!(
            "SELECT id, mac, ip, at, source, request, response, reason FROM boot_events ORDER BY id DESC LIMIT {limit}"
        );
        sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_all(&self.pool).await
    }

    /// Keeps at most `per_mac` events for every MAC, in one statement (window function; both
    /// engines have them).
    pub async fn boot_events_trim_every_mac(&self, per_mac: i64) -> Result<u64, sqlx::Error> {
        let _turn = self.bulk_write_turn().await;
        let sql = format!(
            "DELETE FROM boot_events WHERE id IN (SELECT id FROM (SELECT id, ROW_NUMBER() OVER \
             (PARTITION BY mac ORDER BY id DESC) AS rn FROM boot_events WHERE mac IS NOT NULL) ranked \
             WHERE rn > {per_mac})"
        );
        Ok(sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&self.pool).await?.rows_affected())
    }

    /// Keeps at most `per_mac` events for `mac`.
    pub async fn boot_events_trim_mac(&self, mac: &str, per_mac: i64) -> Result<u64, sqlx::Error> {
        let _turn = self.bulk_write_turn().await;
        let sql = format!(
            "DELETE FROM boot_events WHERE mac = $1 AND id < \
             (SELECT id FROM boot_events WHERE mac = $1 ORDER BY id DESC LIMIT 1 OFFSET {})",
            per_mac - 1
        );
        Ok(sqlx::query(sqlx::AssertSqlSafe(sql)).bind(mac).execute(&self.pool).await?.rows_affected())
    }

    /// Keeps at most `total` events overall (the newest).
    pub async fn boot_events_trim_total(&self, total: i64) -> Result<u64, sqlx::Error> {
        let _turn = self.bulk_write_turn().await;
        let max: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM boot_events").fetch_one(&self.pool).await?;
        let Some(max) = max else { return Ok(0) };
        Ok(sqlx::query("DELETE FROM boot_events WHERE id <= $1")
            .bind(max - total)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }
}
