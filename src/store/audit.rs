//! The audit chain's rows. Appends happen inside the caller's transaction, so a change and its
//! audit entry commit together or not at all.

use sqlx::{AnyConnection, FromRow};

use super::{Filter, Store};

/// One audit entry, as stored and as served.
#[derive(Debug, Clone, FromRow, serde::Serialize, utoipa::ToSchema)]
pub struct AuditRow {
    pub seq: i64,
    pub id: String,
    pub ts: String,
    pub actor_type: String,
    pub actor_id: Option<String>,
    pub actor_name: Option<String>,
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub source_ip: Option<String>,
    pub outcome: String,
    pub details: String,
    pub prev_hash: String,
    pub hash: String,
}

const COLUMNS: &str = "seq, id, ts, actor_type, actor_id, actor_name, action, target_type, target_id, \
    source_ip, outcome, details, prev_hash, hash";

/// Filters for listing and export.
#[derive(Debug, Default, Clone)]
pub struct AuditQuery {
    pub action: Option<String>,
    pub actor: Option<String>,
    pub target_id: Option<String>,
    pub target_type: Option<String>,
    pub outcome: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
}

impl AuditQuery {
    fn filter(&self) -> Filter {
        let mut f = Filter::default();
        if let Some(a) = &self.action {
            // `asset.*` matches a family of actions.
            match a.strip_suffix('*') {
                Some(prefix) => f.push("action LIKE {}", format!("{prefix}%")),
                None => f.push("action = {}", a.clone()),
            }
        }
        if let Some(a) = &self.actor {
            let n = f.next_placeholder();
            f.push(&format!("(actor_id = {{}} OR actor_name = ${n})"), a.clone());
        }
        if let Some(t) = &self.target_id {
            f.push("target_id = {}", t.clone());
        }
        if let Some(t) = &self.target_type {
            f.push("target_type = {}", t.clone());
        }
        if let Some(o) = &self.outcome {
            f.push("outcome = {}", o.clone());
        }
        if let Some(s) = &self.since {
            f.push("ts >= {}", s.clone());
        }
        if let Some(u) = &self.until {
            f.push("ts <= {}", u.clone());
        }
        f
    }
}

impl Store {
    /// Takes the chain head for this transaction: increments its sequence and returns the new
    /// sequence number and the previous entry's hash. Being an UPDATE, it locks the head row until
    /// commit, which serialises appends.
    pub async fn audit_claim_head(conn: &mut AnyConnection) -> Result<(i64, String), sqlx::Error> {
        sqlx::query_as("UPDATE audit_head SET seq = seq + 1 WHERE id = 1 RETURNING seq, hash").fetch_one(conn).await
    }

    /// Takes the chain head's lock now, at the start of a transaction, for writes whose rule
    /// spans rows (no two overlapping VNIs): concurrent such transactions then run one at a time,
    /// on PostgreSQL as on SQLite.
    pub async fn serialize_writes(conn: &mut AnyConnection) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE audit_head SET seq = seq WHERE id = 1").execute(conn).await.map(|_| ())
    }

    pub async fn audit_insert(conn: &mut AnyConnection, row: &AuditRow) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO audit_log (seq, id, ts, actor_type, actor_id, actor_name, action, target_type, \
             target_id, source_ip, outcome, details, prev_hash, hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(row.seq)
        .bind(&row.id)
        .bind(&row.ts)
        .bind(&row.actor_type)
        .bind(row.actor_id.as_deref())
        .bind(row.actor_name.as_deref())
        .bind(&row.action)
        .bind(row.target_type.as_deref())
        .bind(row.target_id.as_deref())
        .bind(row.source_ip.as_deref())
        .bind(&row.outcome)
        .bind(&row.details)
        .bind(&row.prev_hash)
        .bind(&row.hash)
        .execute(&mut *conn)
        .await?;
        sqlx::query("UPDATE audit_head SET hash = $1 WHERE id = 1").bind(&row.hash).execute(conn).await.map(|_| ())
    }

    pub async fn audit_list(
        &self,
        q: &AuditQuery,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<AuditRow>, i64), sqlx::Error> {
        let filter = q.filter();
        let n = filter.next_placeholder();
        let sql = format!(
            "SELECT {COLUMNS} FROM audit_log {} ORDER BY seq DESC LIMIT ${n} OFFSET ${}",
            filter.where_sql(),
            n + 1
        );
        let rows = filter
            .bind_all(sqlx::query_as::<_, AuditRow>(sqlx::AssertSqlSafe(sql)))
            .bind(limit)
            .bind(offset)
            .fetch_all(&self.pool)
            .await?;
        let count_sql = format!("SELECT COUNT(*) FROM audit_log {}", filter.where_sql());
        let total =
            filter.bind_scalar(sqlx::query_scalar(sqlx::AssertSqlSafe(count_sql))).fetch_one(&self.pool).await?;
        Ok((rows, total))
    }

    /// Every matching entry, oldest first (export).
    pub async fn audit_all(&self, q: &AuditQuery) -> Result<Vec<AuditRow>, sqlx::Error> {
        let filter = q.filter();
        let sql = format!("SELECT {COLUMNS} FROM audit_log {} ORDER BY seq", filter.where_sql());
        filter.bind_all(sqlx::query_as::<_, AuditRow>(sqlx::AssertSqlSafe(sql))).fetch_all(&self.pool).await
    }

    /// The whole chain in order, and the head, read in one snapshot for verification.
    pub async fn audit_chain(&self) -> Result<(Vec<AuditRow>, i64, String), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let (head_seq, head_hash): (i64, String) =
            sqlx::query_as("SELECT seq, hash FROM audit_head WHERE id = 1").fetch_one(&mut *tx).await?;
        let sql = format!("SELECT {COLUMNS} FROM audit_log ORDER BY seq");
        let rows = sqlx::query_as::<_, AuditRow>(sqlx::AssertSqlSafe(sql)).fetch_all(&mut *tx).await?;
        tx.commit().await?;
        Ok((rows, head_seq, head_hash))
    }
}
