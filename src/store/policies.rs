//! Policies (Rego source and how it applies) and their revision (the `policies` generation) the
//! policy cache is keyed on.
//! Every change bumps the revision in the same transaction, so a reader that sees the new
//! revision is guaranteed to see the rows it stands for.

use sqlx::{AnyConnection, FromRow};

use super::Store;

#[derive(Debug, Clone, FromRow)]
pub struct PolicyRow {
    pub id: String,
    pub name: String,
    pub description: String,
    pub rego: String,
    /// `v1` or `v0`: the dialect the source parsed as when it was saved.
    pub rego_version: String,
    /// 0/1.
    pub enabled: i64,
    pub priority: i64,
    /// JSON array of VNI ids.
    pub vni_ids: String,
    pub generation: i64,
    pub created_at: String,
    pub updated_at: String,
}

const COLUMNS: &str =
    "id, name, description, rego, rego_version, enabled, priority, vni_ids, generation, created_at, updated_at";

impl Store {
    pub async fn policy_get(&self, id: &str) -> Result<Option<PolicyRow>, sqlx::Error> {
        let sql = format!("SELECT {COLUMNS} FROM policies WHERE id = $1");
        sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(&self.pool).await
    }

    pub async fn policy_get_in(conn: &mut AnyConnection, id: &str) -> Result<Option<PolicyRow>, sqlx::Error> {
        let sql = format!("SELECT {COLUMNS} FROM policies WHERE id = $1");
        sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(conn).await
    }

    pub async fn policy_by_name(conn: &mut AnyConnection, name: &str) -> Result<Option<String>, sqlx::Error> {
        sqlx::query_scalar("SELECT id FROM policies WHERE name = $1").bind(name).fetch_optional(conn).await
    }

    /// Evaluation order: priority (lower first), then name, so the order is total and stable.
    pub async fn policy_list(&self, limit: i64, offset: i64) -> Result<(Vec<PolicyRow>, i64), sqlx::Error> {
        let sql = format!("SELECT {COLUMNS} FROM policies ORDER BY priority, name LIMIT $1 OFFSET $2");
        let rows = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(limit).bind(offset).fetch_all(&self.pool).await?;
        let total = sqlx::query_scalar("SELECT COUNT(*) FROM policies").fetch_one(&self.pool).await?;
        Ok((rows, total))
    }

    /// The enabled policies in evaluation order, with the revision they belong to. The revision is
    /// read first: rows newer than the revision only cost one extra reload later, whereas rows
    /// older than the revision they were cached under would stay stale.
    pub async fn policy_snapshot(&self) -> Result<(i64, Vec<PolicyRow>), sqlx::Error> {
        let revision = self.policy_revision().await?;
        let sql = format!("SELECT {COLUMNS} FROM policies WHERE enabled = 1 ORDER BY priority, name");
        let rows = sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_all(&self.pool).await?;
        Ok((revision, rows))
    }

    /// The current policy revision (one primary-key read).
    pub async fn policy_revision(&self) -> Result<i64, sqlx::Error> {
        self.generation("policies").await
    }

    /// Bumps the revision. Also serialises policy writers on the counter row.
    pub async fn policy_revision_bump(conn: &mut AnyConnection) -> Result<(), sqlx::Error> {
        Store::bump_generation(conn, "policies").await
    }

    pub async fn policy_insert(conn: &mut AnyConnection, p: &PolicyRow) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO policies (id, name, description, rego, rego_version, enabled, priority, vni_ids, \
             generation, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1, $9, $9)",
        )
        .bind(&p.id)
        .bind(&p.name)
        .bind(&p.description)
        .bind(&p.rego)
        .bind(&p.rego_version)
        .bind(p.enabled)
        .bind(p.priority)
        .bind(&p.vni_ids)
        .bind(&p.created_at)
        .execute(conn)
        .await
        .map(|_| ())
    }

    /// Writes the editable fields if the row is still at `p.generation`.
    pub async fn policy_update(conn: &mut AnyConnection, p: &PolicyRow, now: &str) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(
            "UPDATE policies SET name = $2, description = $3, rego = $4, rego_version = $5, enabled = $6, \
             priority = $7, vni_ids = $8, generation = generation + 1, updated_at = $9 \
             WHERE id = $1 AND generation = $10",
        )
        .bind(&p.id)
        .bind(&p.name)
        .bind(&p.description)
        .bind(&p.rego)
        .bind(&p.rego_version)
        .bind(p.enabled)
        .bind(p.priority)
        .bind(&p.vni_ids)
        .bind(now)
        .bind(p.generation)
        .execute(conn)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn policy_delete(conn: &mut AnyConnection, id: &str) -> Result<bool, sqlx::Error> {
        let done = sqlx::query("DELETE FROM policies WHERE id = $1").bind(id).execute(conn).await?;
        Ok(done.rows_affected() == 1)
    }

    /// Which of `ids` name no VNI (for binding checks).
    pub async fn vni_missing(conn: &mut AnyConnection, ids: &[String]) -> Result<Vec<String>, sqlx::Error> {
        let mut missing = Vec::new();
        for id in ids {
            let found: Option<String> =
                sqlx::query_scalar("SELECT id FROM vnis WHERE id = $1").bind(id).fetch_optional(&mut *conn).await?;
            if found.is_none() {
                missing.push(id.clone());
            }
        }
        Ok(missing)
    }
}
