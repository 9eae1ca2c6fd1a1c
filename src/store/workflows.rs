//! Workflows and their steps. The engine's claim is one conditional UPDATE on the step row that
//! compares the status and attempt count it read (compare-and-swap), so two appliances cannot
//! both take a step, and a finished or re-claimed step cannot be written by a stale owner: every
//! write by the executor is fenced by `lease_owner` and `attempts`.

use sqlx::{AnyConnection, FromRow};

use super::{Filter, Store};

#[derive(Debug, Clone, FromRow)]
pub struct WorkflowRow {
    pub id: String,
    pub asset_id: String,
    pub kind: String,
    pub state: String,
    pub params: String,
    pub current_step: i64,
    pub from_state: String,
    pub created_by: String,
    pub error: Option<String>,
    pub certificate: Option<String>,
    pub cancel_requested: i64,
    pub next_run_at: i64,
    pub created_at: String,
    pub updated_at: String,
    pub finished_at: Option<String>,
}

#[derive(Debug, Clone, FromRow)]
pub struct StepRow {
    pub workflow_id: String,
    pub idx: i64,
    pub kind: String,
    pub step: String,
    pub status: String,
    pub attempts: i64,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub log: String,
    pub result: Option<String>,
    pub error: Option<String>,
    pub lease_owner: Option<String>,
    pub lease_until: Option<i64>,
}

/// Filters of the workflow list.
#[derive(Debug, Default, Clone)]
pub struct WorkflowQuery {
    pub asset_id: Option<String>,
    pub state: Option<String>,
    pub kind: Option<String>,
}

/// How a step ends (or pauses) as recorded by its lease owner.
pub struct StepEnd<'a> {
    pub status: &'a str,
    pub result: Option<String>,
    pub error: Option<String>,
    pub log: &'a str,
    pub finished_at: Option<&'a str>,
}

const WF_COLUMNS: &str = "id, asset_id, kind, state, params, current_step, from_state, created_by, error, \
    certificate, cancel_requested, next_run_at, created_at, updated_at, finished_at";
const STEP_COLUMNS: &str = "workflow_id, idx, kind, step, status, attempts, started_at, finished_at, log, result, error, lease_owner, lease_until";

impl Store {
    /// Inserts a workflow and its steps. A second active workflow for the asset fails on the
    /// `workflows_one_active` index (`is_unique_violation(e, "workflows")`).
    pub async fn workflow_insert(
        conn: &mut AnyConnection,
        w: &WorkflowRow,
        steps: &[StepRow],
    ) -> Result<(), sqlx::Error> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO workflows ({WF_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
        )))
        .bind(&w.id)
        .bind(&w.asset_id)
        .bind(&w.kind)
        .bind(&w.state)
        .bind(&w.params)
        .bind(w.current_step)
        .bind(&w.from_state)
        .bind(&w.created_by)
        .bind(w.error.as_deref())
        .bind(w.certificate.as_deref())
        .bind(w.cancel_requested)
        .bind(w.next_run_at)
        .bind(&w.created_at)
        .bind(&w.updated_at)
        .bind(w.finished_at.as_deref())
        .execute(&mut *conn)
        .await?;
        for s in steps {
            sqlx::query(
                "INSERT INTO workflow_steps (workflow_id, idx, kind, step, status, attempts, log) \
                 VALUES ($1, $2, $3, $4, $5, 0, '[]')",
            )
            .bind(&s.workflow_id)
            .bind(s.idx)
            .bind(&s.kind)
            .bind(&s.step)
            .bind(&s.status)
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }

    pub async fn workflow_get(&self, id: &str) -> Result<Option<WorkflowRow>, sqlx::Error> {
        let mut conn = self.pool.acquire().await?;
        Self::workflow_get_in(&mut conn, id).await
    }

    pub async fn workflow_get_in(conn: &mut AnyConnection, id: &str) -> Result<Option<WorkflowRow>, sqlx::Error> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {WF_COLUMNS} FROM workflows WHERE id = $1")))
            .bind(id)
            .fetch_optional(&mut *conn)
            .await
    }

    pub async fn workflow_steps(&self, id: &str) -> Result<Vec<StepRow>, sqlx::Error> {
        let mut conn = self.pool.acquire().await?;
        Self::workflow_steps_in(&mut conn, id).await
    }

    pub async fn workflow_steps_in(conn: &mut AnyConnection, id: &str) -> Result<Vec<StepRow>, sqlx::Error> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {STEP_COLUMNS} FROM workflow_steps WHERE workflow_id = $1 ORDER BY idx"
        )))
        .bind(id)
        .fetch_all(&mut *conn)
        .await
    }

    /// The steps of several workflows in one query (a list page), in workflow then step order.
    pub async fn workflow_steps_of(&self, ids: &[String]) -> Result<Vec<StepRow>, sqlx::Error> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT {STEP_COLUMNS} FROM workflow_steps WHERE workflow_id IN ({}) ORDER BY workflow_id, idx",
            placeholders.join(", ")
        );
        let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql));
        for id in ids {
            q = q.bind(id.clone());
        }
        q.fetch_all(&self.pool).await
    }

    /// `(id, state)` of each of these workflows that exists, in one query.
    pub async fn workflow_states_of(&self, ids: &[String]) -> Result<Vec<(String, String)>, sqlx::Error> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
        let sql = format!("SELECT id, state FROM workflows WHERE id IN ({})", placeholders.join(", "));
        let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql));
        for id in ids {
            q = q.bind(id.clone());
        }
        q.fetch_all(&self.pool).await
    }

    pub async fn workflow_active_for(
        conn: &mut AnyConnection,
        asset_id: &str,
    ) -> Result<Option<WorkflowRow>, sqlx::Error> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {WF_COLUMNS} FROM workflows WHERE asset_id = $1 AND state IN ('pending', 'running')"
        )))
        .bind(asset_id)
        .fetch_optional(&mut *conn)
        .await
    }

    pub async fn workflow_list(
        &self,
        q: &WorkflowQuery,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<WorkflowRow>, i64), sqlx::Error> {
        let mut f = Filter::default();
        if let Some(a) = &q.asset_id {
            f.push("asset_id = {}", a.clone());
        }
        if let Some(s) = &q.state {
            f.push("state = {}", s.clone());
        }
        if let Some(k) = &q.kind {
            f.push("kind = {}", k.clone());
        }
        let w = f.where_sql();
        let n = f.next_placeholder();
        let total: i64 = f
            .bind_scalar(sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM workflows {w}"))))
            .fetch_one(&self.pool)
            .await?;
        let rows = f
            .bind_all(sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {WF_COLUMNS} FROM workflows {w} ORDER BY created_at DESC, id DESC LIMIT ${n} OFFSET ${}",
                n + 1
            ))))
            .bind(limit)
            .bind(offset)
            .fetch_all(&self.pool)
            .await?;
        Ok((rows, total))
    }

    /// Current steps that may be claimed now: of running (or pending) workflows that are due,
    /// pending or waiting, or running under a lease that expired (their appliance died).
    pub async fn workflow_due(&self, now_ms: i64, limit: i64) -> Result<Vec<StepRow>, sqlx::Error> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM workflow_steps s JOIN workflows w ON w.id = s.workflow_id AND s.idx = w.current_step \
             WHERE w.state IN ('pending', 'running') AND w.next_run_at <= $1 \
             AND s.status IN ('pending', 'waiting', 'running') AND (s.lease_until IS NULL OR s.lease_until < $1) \
             ORDER BY w.next_run_at, w.id LIMIT $2",
            STEP_COLUMNS.split(", ").map(|c| format!("s.{c}")).collect::<Vec<_>>().join(", ")
        )))
        .bind(now_ms)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
    }

    /// Takes the step if it is still as `seen` (status and attempts) and unleased or expired.
    /// Counts an attempt unless the step was `waiting` (a poll is not a new attempt).
    pub async fn step_claim(
        &self,
        seen: &StepRow,
        owner: &str,
        now_ms: i64,
        until_ms: i64,
        now: &str,
    ) -> Result<bool, sqlx::Error> {
        let bump = i64::from(seen.status != "waiting");
        let done = sqlx::query(
            "UPDATE workflow_steps SET status = 'running', lease_owner = $1, lease_until = $2, \
             attempts = attempts + $3, started_at = COALESCE(started_at, $4) \
             WHERE workflow_id = $5 AND idx = $6 AND status = $7 AND attempts = $8 \
             AND (lease_until IS NULL OR lease_until < $9)",
        )
        .bind(owner)
        .bind(until_ms)
        .bind(bump)
        .bind(now)
        .bind(&seen.workflow_id)
        .bind(seen.idx)
        .bind(&seen.status)
        .bind(seen.attempts)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 1 {
            sqlx::query("UPDATE workflows SET state = 'running', updated_at = $2 WHERE id = $1 AND state = 'pending'")
                .bind(&seen.workflow_id)
                .bind(now)
                .execute(&self.pool)
                .await?;
        }
        Ok(done.rows_affected() == 1)
    }

    /// Extends the lease (and saves the log so far); false when it is no longer ours.
    pub async fn step_renew(
        &self,
        workflow_id: &str,
        idx: i64,
        owner: &str,
        attempts: i64,
        until_ms: i64,
        log: &str,
    ) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(
            "UPDATE workflow_steps SET lease_until = $1, log = $2 \
             WHERE workflow_id = $3 AND idx = $4 AND lease_owner = $5 AND attempts = $6 AND status = 'running'",
        )
        .bind(until_ms)
        .bind(log)
        .bind(workflow_id)
        .bind(idx)
        .bind(owner)
        .bind(attempts)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records the step's end (or pause) and releases the lease, if `owner` still holds it at
    /// `attempts`. False: someone else owns the step now, and nothing was written.
    pub async fn step_end(
        conn: &mut AnyConnection,
        workflow_id: &str,
        idx: i64,
        owner: &str,
        attempts: i64,
        end: &StepEnd<'_>,
    ) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(
            "UPDATE workflow_steps SET status = $1, result = COALESCE($2, result), error = $3, log = $4, \
             finished_at = $5, lease_owner = NULL, lease_until = NULL \
             WHERE workflow_id = $6 AND idx = $7 AND lease_owner = $8 AND attempts = $9 AND status = 'running'",
        )
        .bind(end.status)
        .bind(end.result.as_deref())
        .bind(end.error.as_deref())
        .bind(end.log)
        .bind(end.finished_at)
        .bind(workflow_id)
        .bind(idx)
        .bind(owner)
        .bind(attempts)
        .execute(&mut *conn)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Moves the workflow on: its current step, state, when it is next due, its error.
    pub async fn workflow_advance(
        conn: &mut AnyConnection,
        id: &str,
        current_step: i64,
        state: &str,
        next_run_at: i64,
        error: Option<&str>,
        now: &str,
    ) -> Result<(), sqlx::Error> {
        let finished = matches!(state, "succeeded" | "failed" | "cancelled").then_some(now);
        sqlx::query(
            "UPDATE workflows SET current_step = $2, state = $3, next_run_at = $4, error = $5, updated_at = $6, \
             finished_at = $7 WHERE id = $1",
        )
        .bind(id)
        .bind(current_step)
        .bind(state)
        .bind(next_run_at)
        .bind(error)
        .bind(now)
        .bind(finished)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    pub async fn workflow_set_certificate(conn: &mut AnyConnection, id: &str, cert: &str) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE workflows SET certificate = $2 WHERE id = $1")
            .bind(id)
            .bind(cert)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    pub async fn workflow_request_cancel(conn: &mut AnyConnection, id: &str, now: &str) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE workflows SET cancel_requested = 1, next_run_at = 0, updated_at = $2 WHERE id = $1")
            .bind(id)
            .bind(now)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    /// Marks every step from `from_idx` on that has not ended with `status` (a cancel or a failure).
    pub async fn steps_close_rest(
        conn: &mut AnyConnection,
        id: &str,
        from_idx: i64,
        status: &str,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE workflow_steps SET status = $3, lease_owner = NULL, lease_until = NULL \
             WHERE workflow_id = $1 AND idx >= $2 AND status IN ('pending', 'waiting')",
        )
        .bind(id)
        .bind(from_idx)
        .bind(status)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// A retry: the failed step is pending again (its attempts stay counted), the workflow running.
    pub async fn workflow_retry(conn: &mut AnyConnection, id: &str, idx: i64, now: &str) -> Result<bool, sqlx::Error> {
        let step = sqlx::query(
            // The retried step starts its time (and its deadline) again.
            "UPDATE workflow_steps SET status = 'pending', error = NULL, finished_at = NULL, started_at = NULL \
             WHERE workflow_id = $1 AND idx = $2 AND status = 'failed'",
        )
        .bind(id)
        .bind(idx)
        .execute(&mut *conn)
        .await?;
        sqlx::query(
            "UPDATE workflow_steps SET status = 'pending' WHERE workflow_id = $1 AND idx > $2 AND status = 'cancelled'",
        )
        .bind(id)
        .bind(idx)
        .execute(&mut *conn)
        .await?;
        sqlx::query(
            "UPDATE workflows SET state = 'running', error = NULL, finished_at = NULL, cancel_requested = 0, \
             next_run_at = 0, updated_at = $2 WHERE id = $1 AND state = 'failed'",
        )
        .bind(id)
        .bind(now)
        .execute(&mut *conn)
        .await?;
        Ok(step.rows_affected() == 1)
    }

    /// Whether the asset's active provision has written its image: its PXE boots then get `exit`
    /// (boot from the disk), never the agent again.
    pub async fn workflow_image_written(&self, asset_id: &str) -> Result<bool, sqlx::Error> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM workflows w JOIN workflow_steps s ON s.workflow_id = w.id \
             WHERE w.asset_id = $1 AND w.state IN ('pending', 'running') AND s.kind = 'write_image' \
             AND s.status = 'succeeded'",
        )
        .bind(asset_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(n > 0)
    }

    /// A DHCP request from `mac` after `since` that no PXE ROM or iPXE sent: the installed system
    /// asking for an address. Returns the request's description.
    pub async fn os_dhcp_since(&self, mac: &str, since: &str) -> Result<Option<String>, sqlx::Error> {
        sqlx::query_scalar(
            "SELECT request FROM boot_events WHERE mac = $1 AND source = 'dhcp' AND at > $2 \
             AND request NOT LIKE '%PXEClient%' AND request NOT LIKE '%iPXE%' ORDER BY id LIMIT 1",
        )
        .bind(mac)
        .bind(since)
        .fetch_optional(&self.pool)
        .await
    }

    /// The cluster an asset belongs to, if any.
    pub async fn asset_cluster_in(conn: &mut AnyConnection, asset_id: &str) -> Result<Option<String>, sqlx::Error> {
        sqlx::query_scalar("SELECT cluster_id FROM cluster_members WHERE asset_id = $1")
            .bind(asset_id)
            .fetch_optional(conn)
            .await
    }

    pub async fn asset_cluster(&self, asset_id: &str) -> Result<Option<String>, sqlx::Error> {
        sqlx::query_scalar("SELECT cluster_id FROM cluster_members WHERE asset_id = $1")
            .bind(asset_id)
            .fetch_optional(&self.pool)
            .await
    }
}

/// The live feed: audit entries after `seq` (the console and `GET /api/v1/events` stream them).
impl Store {
    pub async fn audit_after(&self, seq: i64, limit: i64) -> Result<Vec<super::audit::AuditRow>, sqlx::Error> {
        sqlx::query_as(
            "SELECT seq, id, ts, actor_type, actor_id, actor_name, action, target_type, target_id, source_ip, outcome, \
             details, prev_hash, hash FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(seq)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
    }

    pub async fn audit_head_seq(&self) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar("SELECT seq FROM audit_head WHERE id = 1").fetch_one(&self.pool).await
    }
}
