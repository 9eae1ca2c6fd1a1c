//! Webhooks, their event outbox and delivery queue. Deliveries are claimed with a lease by a
//! conditional UPDATE: on PostgreSQL a second appliance's concurrent claim re-checks the lease
//! condition on the locked row and skips it, so a due delivery goes to one worker at a time; a
//! lease left behind by a killed process expires and the row is claimed again.

use sqlx::{AnyConnection, FromRow};

use super::Store;

#[derive(Debug, Clone)]
pub struct WebhookRow {
    pub id: String,
    pub url: String,
    pub description: String,
    /// JSON array of subscription patterns.
    pub events: String,
    pub secret_sealed: Vec<u8>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub consecutive_failures: i64,
    pub generation: i64,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(FromRow)]
struct RawWebhook {
    id: String,
    url: String,
    description: String,
    events: String,
    secret_sealed: Vec<u8>,
    enabled: i64,
    disabled_reason: Option<String>,
    consecutive_failures: i64,
    generation: i64,
    created_at: String,
    updated_at: String,
}

impl From<RawWebhook> for WebhookRow {
    fn from(r: RawWebhook) -> Self {
        WebhookRow {
            id: r.id,
            url: r.url,
            description: r.description,
            events: r.events,
            secret_sealed: r.secret_sealed,
            enabled: r.enabled != 0,
            disabled_reason: r.disabled_reason,
            consecutive_failures: r.consecutive_failures,
            generation: r.generation,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

const COLUMNS: &str = "id, url, description, events, secret_sealed, enabled, disabled_reason, consecutive_failures, \
    generation, created_at, updated_at";

#[derive(Debug, Clone, FromRow)]
pub struct DeliveryRow {
    pub id: String,
    pub webhook_id: String,
    pub event_id: String,
    pub event: String,
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: String,
    pub last_status_code: Option<i64>,
    pub last_error: Option<String>,
    pub delivered_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

const DELIVERY_COLUMNS: &str = "id, webhook_id, event_id, event, status, attempts, next_attempt_at, last_status_code, \
    last_error, delivered_at, created_at, updated_at";

#[derive(Debug, Clone, FromRow)]
pub struct AttemptRow {
    pub delivery_id: String,
    pub attempt: i64,
    pub at: String,
    pub status_code: Option<i64>,
    pub error: Option<String>,
    pub duration_ms: i64,
}

/// A claimed delivery with what sending it needs.
#[derive(Debug, Clone, FromRow)]
pub struct ClaimedDelivery {
    pub id: String,
    pub webhook_id: String,
    pub event_id: String,
    pub event: String,
    pub attempts: i64,
}

#[derive(Debug, Clone, FromRow)]
pub struct DeliveryTarget {
    pub url: String,
    pub secret_sealed: Vec<u8>,
    pub payload: String,
}

/// The outcome of one attempt, as recorded.
pub struct AttemptOutcome<'a> {
    pub status_code: Option<i64>,
    pub error: Option<&'a str>,
    pub duration_ms: i64,
    pub at: &'a str,
}

impl Store {
    pub async fn webhook_insert(conn: &mut AnyConnection, w: &WebhookRow) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO webhooks (id, url, description, events, secret_sealed, enabled, disabled_reason, \
             consecutive_failures, generation, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 0, 1, $8, $8)",
        )
        .bind(&w.id)
        .bind(&w.url)
        .bind(&w.description)
        .bind(&w.events)
        .bind(&w.secret_sealed)
        .bind(i64::from(w.enabled))
        .bind(w.disabled_reason.as_deref())
        .bind(&w.created_at)
        .execute(conn)
        .await
        .map(|_| ())
    }

    pub async fn webhook_get(conn: &mut AnyConnection, id: &str) -> Result<Option<WebhookRow>, sqlx::Error> {
        let sql = format!("SELECT {COLUMNS} FROM webhooks WHERE id = $1");
        let r: Option<RawWebhook> = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(conn).await?;
        Ok(r.map(WebhookRow::from))
    }

    pub async fn webhook_list(&self, limit: i64, offset: i64) -> Result<(Vec<WebhookRow>, i64), sqlx::Error> {
        let sql = format!("SELECT {COLUMNS} FROM webhooks ORDER BY created_at, id LIMIT $1 OFFSET $2");
        let rows: Vec<RawWebhook> =
            sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(limit).bind(offset).fetch_all(&self.pool).await?;
        let total = sqlx::query_scalar("SELECT COUNT(*) FROM webhooks").fetch_one(&self.pool).await?;
        Ok((rows.into_iter().map(WebhookRow::from).collect(), total))
    }

    /// Writes the editable columns if the row is still at `w.generation`.
    pub async fn webhook_update(conn: &mut AnyConnection, w: &WebhookRow, now: &str) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(
            "UPDATE webhooks SET url = $2, description = $3, events = $4, secret_sealed = $5, enabled = $6, \
             disabled_reason = $7, consecutive_failures = $8, generation = generation + 1, updated_at = $9 \
             WHERE id = $1 AND generation = $10",
        )
        .bind(&w.id)
        .bind(&w.url)
        .bind(&w.description)
        .bind(&w.events)
        .bind(&w.secret_sealed)
        .bind(i64::from(w.enabled))
        .bind(w.disabled_reason.as_deref())
        .bind(w.consecutive_failures)
        .bind(now)
        .bind(w.generation)
        .execute(conn)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn webhook_delete(conn: &mut AnyConnection, id: &str) -> Result<bool, sqlx::Error> {
        let done = sqlx::query("DELETE FROM webhooks WHERE id = $1").bind(id).execute(conn).await?;
        Ok(done.rows_affected() == 1)
    }

    /// (id, events JSON) of every enabled webhook: the subscriptions an event is matched against.
    pub async fn webhook_subscriptions(conn: &mut AnyConnection) -> Result<Vec<(String, String)>, sqlx::Error> {
        sqlx::query_as("SELECT id, events FROM webhooks WHERE enabled = 1 ORDER BY id").fetch_all(conn).await
    }

    pub async fn webhook_event_insert(
        conn: &mut AnyConnection,
        id: &str,
        event: &str,
        payload: &str,
        now: &str,
    ) -> Result<(), sqlx::Error> {
        sqlx::query("INSERT INTO webhook_events (id, event, payload, created_at) VALUES ($1, $2, $3, $4)")
            .bind(id)
            .bind(event)
            .bind(payload)
            .bind(now)
            .execute(conn)
            .await
            .map(|_| ())
    }

    pub async fn delivery_insert(
        conn: &mut AnyConnection,
        id: &str,
        webhook_id: &str,
        event_id: &str,
        event: &str,
        now: &str,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO webhook_deliveries (id, webhook_id, event_id, event, status, attempts, next_attempt_at, \
             created_at, updated_at) VALUES ($1, $2, $3, $4, 'pending', 0, $5, $5, $5)",
        )
        .bind(id)
        .bind(webhook_id)
        .bind(event_id)
        .bind(event)
        .bind(now)
        .execute(conn)
        .await
        .map(|_| ())
    }

    /// A cheap read first: is anything due? Keeps an idle appliance from taking the write lock
    /// every poll.
    pub async fn delivery_due(&self, now: &str) -> Result<bool, sqlx::Error> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= $1 \
             AND (lease_until IS NULL OR lease_until < $1)",
        )
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        Ok(n > 0)
    }

    /// Claims up to `limit` due deliveries of enabled webhooks for `owner` until `lease_until`,
    /// counting the attempt now (an attempt cut short by a crash still counts).
    pub async fn delivery_claim(
        &self,
        owner: &str,
        now: &str,
        lease_until: &str,
        limit: i64,
    ) -> Result<Vec<ClaimedDelivery>, sqlx::Error> {
        sqlx::query_as(
            "UPDATE webhook_deliveries SET lease_until = $1, lease_owner = $2, attempts = attempts + 1, \
             updated_at = $3 \
             WHERE id IN (SELECT d.id FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id \
                          WHERE d.status = 'pending' AND d.next_attempt_at <= $3 \
                          AND (d.lease_until IS NULL OR d.lease_until < $3) AND w.enabled = 1 \
                          ORDER BY d.next_attempt_at, d.id LIMIT $4) \
             AND status = 'pending' AND (lease_until IS NULL OR lease_until < $3) \
             RETURNING id, webhook_id, event_id, event, attempts",
        )
        .bind(lease_until)
        .bind(owner)
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
    }

    pub async fn delivery_target(&self, delivery_id: &str) -> Result<Option<DeliveryTarget>, sqlx::Error> {
        sqlx::query_as(
            "SELECT w.url, w.secret_sealed, e.payload FROM webhook_deliveries d \
             JOIN webhooks w ON w.id = d.webhook_id JOIN webhook_events e ON e.id = d.event_id WHERE d.id = $1",
        )
        .bind(delivery_id)
        .fetch_optional(&self.pool)
        .await
    }

    /// Records an attempt's end if `owner` still holds the lease: `status` becomes the new state
    /// (`pending` with `next_attempt_at`, `delivered` or `failed`). False when the lease was lost.
    pub async fn delivery_finish(
        conn: &mut AnyConnection,
        id: &str,
        owner: &str,
        status: &str,
        next_attempt_at: &str,
        o: &AttemptOutcome<'_>,
    ) -> Result<bool, sqlx::Error> {
        let delivered_at = (status == "delivered").then_some(o.at);
        let done = sqlx::query(
            "UPDATE webhook_deliveries SET status = $3, next_attempt_at = $4, lease_until = NULL, lease_owner = NULL, \
             last_status_code = $5, last_error = $6, delivered_at = $7, updated_at = $8 \
             WHERE id = $1 AND lease_owner = $2 AND status = 'pending'",
        )
        .bind(id)
        .bind(owner)
        .bind(status)
        .bind(next_attempt_at)
        .bind(o.status_code)
        .bind(o.error)
        .bind(delivered_at)
        .bind(o.at)
        .execute(conn)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn attempt_insert(
        conn: &mut AnyConnection,
        delivery_id: &str,
        attempt: i64,
        o: &AttemptOutcome<'_>,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO webhook_attempts (delivery_id, attempt, at, status_code, error, duration_ms) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(delivery_id)
        .bind(attempt)
        .bind(o.at)
        .bind(o.status_code)
        .bind(o.error)
        .bind(o.duration_ms)
        .execute(conn)
        .await
        .map(|_| ())
    }

    /// A delivered event resets the webhook's failure streak.
    pub async fn webhook_reset_failures(conn: &mut AnyConnection, id: &str) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE webhooks SET consecutive_failures = 0 WHERE id = $1 AND consecutive_failures <> 0")
            .bind(id)
            .execute(conn)
            .await
            .map(|_| ())
    }

    /// One more failed delivery; returns the new streak length.
    pub async fn webhook_count_failure(conn: &mut AnyConnection, id: &str) -> Result<Option<i64>, sqlx::Error> {
        sqlx::query_scalar(
            "UPDATE webhooks SET consecutive_failures = consecutive_failures + 1 WHERE id = $1 \
             RETURNING consecutive_failures",
        )
        .bind(id)
        .fetch_optional(conn)
        .await
    }

    /// Disables a webhook for `reason` unless it is disabled already; true when this call did.
    pub async fn webhook_auto_disable(
        conn: &mut AnyConnection,
        id: &str,
        reason: &str,
        now: &str,
    ) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(
            "UPDATE webhooks SET enabled = 0, disabled_reason = $2, generation = generation + 1, updated_at = $3 \
             WHERE id = $1 AND enabled = 1",
        )
        .bind(id)
        .bind(reason)
        .bind(now)
        .execute(conn)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn delivery_list(
        &self,
        webhook_id: &str,
        status: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<DeliveryRow>, i64), sqlx::Error> {
        let (clause, extra) = match status {
            Some(s) => ("AND status = $4", Some(s.to_string())),
            None => ("", None),
        };
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE webhook_id = $1 {clause} \
             ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3"
        );
        let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(webhook_id).bind(limit).bind(offset);
        if let Some(s) = &extra {
            q = q.bind(s.clone());
        }
        let rows = q.fetch_all(&self.pool).await?;
        let count_sql = format!(
            "SELECT COUNT(*) FROM webhook_deliveries WHERE webhook_id = $1 {}",
            if extra.is_some() { "AND status = $2" } else { "" }
        );
        let mut c = sqlx::query_scalar(sqlx::AssertSqlSafe(count_sql)).bind(webhook_id);
        if let Some(s) = extra {
            c = c.bind(s);
        }
        let total = c.fetch_one(&self.pool).await?;
        Ok((rows, total))
    }

    /// The attempts of the given deliveries, in order.
    pub async fn attempts_of(&self, delivery_ids: &[String]) -> Result<Vec<AttemptRow>, sqlx::Error> {
        if delivery_ids.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders: Vec<String> = (1..=delivery_ids.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT delivery_id, attempt, at, status_code, error, duration_ms FROM webhook_attempts \
             WHERE delivery_id IN ({}) ORDER BY delivery_id, attempt",
            placeholders.join(", ")
        );
        let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql));
        for id in delivery_ids {
            q = q.bind(id.clone());
        }
        q.fetch_all(&self.pool).await
    }
}
