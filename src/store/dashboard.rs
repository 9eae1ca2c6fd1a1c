//! Aggregates for the console's dashboard: counts by state, in one query per table.

use super::Store;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct FailedWorkflow {
    pub id: String,
    pub asset_id: String,
    pub kind: String,
    pub error: Option<String>,
    pub finished_at: Option<String>,
}

impl Store {
    /// `(state, count)` of a table with a `state` column.
    async fn counts_by_state(&self, table: &'static str) -> Result<Vec<(String, i64)>, sqlx::Error> {
        let sql = format!("SELECT state, COUNT(*) FROM {table} GROUP BY state ORDER BY state");
        sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_all(&self.pool).await
    }

    pub async fn asset_state_counts(&self) -> Result<Vec<(String, i64)>, sqlx::Error> {
        self.counts_by_state("assets").await
    }

    pub async fn workflow_state_counts(&self) -> Result<Vec<(String, i64)>, sqlx::Error> {
        self.counts_by_state("workflows").await
    }

    pub async fn cluster_state_counts(&self) -> Result<Vec<(String, i64)>, sqlx::Error> {
        self.counts_by_state("clusters").await
    }

    /// Failed workflows that nothing has followed up yet: the latest workflow of their subject
    /// (a retry reuses the workflow, a new wipe supersedes it).
    pub async fn workflows_needing_attention(&self, limit: i64) -> Result<Vec<FailedWorkflow>, sqlx::Error> {
        sqlx::query_as(
            "SELECT w.id, w.asset_id, w.kind, w.error, w.finished_at FROM workflows w \
             WHERE w.state = 'failed' AND NOT EXISTS \
               (SELECT 1 FROM workflows later WHERE later.asset_id = w.asset_id AND later.created_at > w.created_at) \
             ORDER BY w.finished_at DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await
    }
}
