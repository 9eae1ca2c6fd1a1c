//! Webhook subscriptions and their delivery logs. The secret that signs deliveries is shown once
//! (in the create answer) and kept sealed with the master key, because signing needs it back.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{AppState, Page, PageRequest};
use crate::audit::{self, Event};
use crate::auth::Actor;
use crate::error::{Error, Result};
use crate::model::{IdKind, Scope, ids, new_id, now_rfc3339};
use crate::secret::{Secret, random_token};
use crate::store::Store;
use crate::store::webhooks::{AttemptRow, DeliveryRow, WebhookRow};
use crate::webhooks;

const MIN_SECRET_LEN: usize = 16;
const MAX_SECRET_LEN: usize = 256;
const MAX_URL_LEN: usize = 2048;
const MAX_PATTERNS: usize = 64;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    /// `http://` or `https://` URL with a host.
    pub url: String,
    /// Subscriptions: `*`, `<resource>.*` (e.g. `asset.*`) or exact event names (`psk.rotated`).
    pub events: Vec<String>,
    /// HMAC key, at least 16 characters; generated (`whsec_…`) when omitted. Shown only in this answer.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub secret: Option<Secret<String>>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub enabled: Option<bool>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateWebhook {
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub events: Option<Vec<String>>,
    /// A new secret (not echoed back).
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub secret: Option<Secret<String>>,
    #[serde(default)]
    pub description: Option<String>,
    /// `true` re-enables a disabled webhook and clears its failure streak.
    #[serde(default)]
    pub enabled: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookView {
    pub id: String,
    pub url: String,
    pub description: String,
    pub events: Vec<String>,
    pub enabled: bool,
    /// Why it is disabled (automatically after repeated failures, or by hand).
    pub disabled_reason: Option<String>,
    /// Failed deliveries in a row (reset by a delivered one).
    pub consecutive_failures: i64,
    pub created_at: String,
    pub updated_at: String,
    /// The signing secret: only in the create answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptView {
    pub attempt: i64,
    pub at: String,
    /// The receiver's HTTP status; null when there was no answer.
    pub status_code: Option<i64>,
    pub error: Option<String>,
    pub duration_ms: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryView {
    pub id: String,
    pub event_id: String,
    pub event: String,
    /// `pending` (waiting for `next_attempt_at`), `delivered` or `failed` (attempts exhausted).
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: Option<String>,
    pub last_status_code: Option<i64>,
    pub last_error: Option<String>,
    pub delivered_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// Every attempt, oldest first.
    pub attempt_log: Vec<AttemptView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PingQueued {
    pub event_id: String,
    pub event: String,
}

fn webhook_not_found(id: &str) -> Error {
    Error::not_found("WEBHOOK_NOT_FOUND", format!("webhook {id} not found"))
}

fn secret_context(id: &str) -> String {
    format!("webhooks.secret:{id}")
}

pub(crate) fn check_url(url: &str) -> Result<String> {
    let bad = |why: &str| Error::invalid_field("url", format!("url {why}"));
    if url.len() > MAX_URL_LEN {
        return Err(bad(&format!("must be at most {MAX_URL_LEN} characters")));
    }
    let parsed = reqwest::Url::parse(url.trim()).map_err(|e| bad(&format!("is not a URL ({e})")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(bad(&format!("must use http or https, not `{}`", parsed.scheme())));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(bad("must name a host"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        // They would be stored and shown in plain text: use the signature, or a token in the path.
        return Err(bad("must not carry credentials (user:password@)"));
    }
    Ok(parsed.to_string())
}

fn check_events(events: &[String]) -> Result<()> {
    if events.is_empty() || events.len() > MAX_PATTERNS {
        return Err(Error::invalid_field(
            "events",
            format!("events must list 1-{MAX_PATTERNS} subscriptions (`*`, `asset.*`, `psk.rotated`…)"),
        ));
    }
    for e in events {
        webhooks::check_pattern(e).map_err(|why| Error::invalid_field("events", why))?;
    }
    Ok(())
}

fn check_secret(s: &str) -> Result<()> {
    if !(MIN_SECRET_LEN..=MAX_SECRET_LEN).contains(&s.chars().count()) {
        return Err(Error::invalid_field(
            "secret",
            format!("secret must be {MIN_SECRET_LEN}-{MAX_SECRET_LEN} characters"),
        ));
    }
    Ok(())
}

fn check_description(d: &str) -> Result<()> {
    if d.chars().count() > 1024 {
        return Err(Error::invalid_field("description", "description must be at most 1024 characters"));
    }
    Ok(())
}

fn view(w: &WebhookRow) -> Result<WebhookView> {
    Ok(WebhookView {
        id: w.id.clone(),
        url: w.url.clone(),
        description: w.description.clone(),
        events: serde_json::from_str(&w.events)
            .map_err(|_| Error::internal(format_args!("webhooks.events of {} is unreadable", w.id)))?,
        enabled: w.enabled,
        disabled_reason: w.disabled_reason.clone(),
        consecutive_failures: w.consecutive_failures,
        created_at: w.created_at.clone(),
        updated_at: w.updated_at.clone(),
        secret: None,
    })
}

impl AppState {
    async fn load_webhook(&self, conn: &mut sqlx::AnyConnection, id: &str) -> Result<WebhookRow> {
        if !ids::looks_like(IdKind::Webhook, id) {
            return Err(webhook_not_found(id));
        }
        Store::webhook_get(conn, id).await?.ok_or_else(|| webhook_not_found(id))
    }

    pub async fn webhook_create(&self, actor: &Actor, req: CreateWebhook) -> Result<WebhookView> {
        actor.require(Scope::WebhooksWrite)?;
        let url = check_url(&req.url)?;
        check_events(&req.events)?;
        let description = req.description.unwrap_or_default();
        check_description(&description)?;
        let secret = match req.secret {
            Some(s) => {
                check_secret(s.expose())?;
                s
            }
            None => Secret::new(random_token("whsec_", 32)),
        };
        let id = new_id(IdKind::Webhook);
        let now = now_rfc3339();
        let enabled = req.enabled.unwrap_or(true);
        let row = WebhookRow {
            secret_sealed: self.keys.seal(&secret_context(&id), secret.expose().as_bytes())?,
            id,
            url,
            description,
            events: serde_json::to_string(&req.events).map_err(Error::internal)?,
            enabled,
            disabled_reason: (!enabled).then(|| "created disabled".to_string()),
            consecutive_failures: 0,
            generation: 1,
            created_at: now.clone(),
            updated_at: now,
        };
        let mut tx = self.store.begin().await?;
        Store::webhook_insert(&mut tx, &row).await?;
        audit::append(
            &mut tx,
            actor,
            Event::new("webhook.create", "webhook", &row.id)
                .with_details(serde_json::json!({"url": row.url, "events": req.events, "enabled": enabled})),
        )
        .await?;
        tx.commit().await?;
        let mut out = view(&row)?;
        out.secret = Some(secret.expose().clone());
        Ok(out)
    }

    pub async fn webhook_list(&self, actor: &Actor, page: PageRequest) -> Result<Page<WebhookView>> {
        actor.require(Scope::WebhooksRead)?;
        let (rows, total) = self.store.webhook_list(page.limit(), page.offset()).await?;
        let items = rows.iter().map(view).collect::<Result<Vec<_>>>()?;
        Ok(Page { items, page, total })
    }

    pub async fn webhook_get(&self, actor: &Actor, id: &str) -> Result<WebhookView> {
        actor.require(Scope::WebhooksRead)?;
        let mut conn = self.store.pool().acquire().await?;
        view(&self.load_webhook(&mut conn, id).await?)
    }

    pub async fn webhook_update(&self, actor: &Actor, id: &str, req: UpdateWebhook) -> Result<WebhookView> {
        actor.require(Scope::WebhooksWrite)?;
        let url = req.url.as_deref().map(check_url).transpose()?;
        if let Some(e) = &req.events {
            check_events(e)?;
        }
        if let Some(s) = &req.secret {
            check_secret(s.expose())?;
        }
        if let Some(d) = &req.description {
            check_description(d)?;
        }
        let mut tx = self.store.begin().await?;
        let mut row = self.load_webhook(&mut tx, id).await?;
        let mut changed = Vec::new();
        if let Some(u) = url {
            row.url = u;
            changed.push("url");
        }
        if let Some(e) = &req.events {
            row.events = serde_json::to_string(e).map_err(Error::internal)?;
            changed.push("events");
        }
        if let Some(s) = &req.secret {
            row.secret_sealed = self.keys.seal(&secret_context(&row.id), s.expose().as_bytes())?;
            changed.push("secret");
        }
        if let Some(d) = req.description {
            row.description = d;
            changed.push("description");
        }
        match req.enabled {
            Some(true) => {
                // A fresh start: the streak that disabled it is forgiven; pending deliveries resume.
                row.enabled = true;
                row.disabled_reason = None;
                row.consecutive_failures = 0;
                changed.push("enabled");
            }
            Some(false) if row.enabled => {
                row.enabled = false;
                row.disabled_reason = Some(format!("disabled by {}", actor.name().unwrap_or("an operator")));
                changed.push("enabled");
            }
            _ => {}
        }
        let now = now_rfc3339();
        if !Store::webhook_update(&mut tx, &row, &now).await? {
            return Err(Error::conflict("WEBHOOK_CHANGED", "the webhook changed while this update ran: retry", None));
        }
        audit::append(
            &mut tx,
            actor,
            Event::new("webhook.update", "webhook", id).with_details(serde_json::json!({"changed": changed})),
        )
        .await?;
        tx.commit().await?;
        row.generation += 1;
        row.updated_at = now;
        view(&row)
    }

    pub async fn webhook_delete(&self, actor: &Actor, id: &str) -> Result<()> {
        actor.require(Scope::WebhooksWrite)?;
        let mut tx = self.store.begin().await?;
        let row = self.load_webhook(&mut tx, id).await?;
        Store::webhook_delete(&mut tx, id).await?;
        audit::append(
            &mut tx,
            actor,
            Event::new("webhook.delete", "webhook", id).with_details(serde_json::json!({"url": row.url})),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The delivery log, newest first, each delivery with its attempts.
    pub async fn webhook_deliveries(
        &self,
        actor: &Actor,
        id: &str,
        status: Option<&str>,
        page: PageRequest,
    ) -> Result<Page<DeliveryView>> {
        actor.require(Scope::WebhooksRead)?;
        if let Some(s) = status
            && !["pending", "delivered", "failed"].contains(&s)
        {
            return Err(Error::BadRequest {
                code: "INVALID_QUERY",
                message: format!("`status` must be pending, delivered or failed, got `{s}`"),
                details: Some(serde_json::json!({"field": "status"})),
            });
        }
        {
            let mut conn = self.store.pool().acquire().await?;
            self.load_webhook(&mut conn, id).await?;
        }
        let (rows, total) = self.store.delivery_list(id, status, page.limit(), page.offset()).await?;
        let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
        let mut attempts = self.store.attempts_of(&ids).await?;
        let items = rows
            .into_iter()
            .map(|r: DeliveryRow| {
                let log: Vec<AttemptView> = attempts
                    .extract_if(.., |a: &mut AttemptRow| a.delivery_id == r.id)
                    .map(|a| AttemptView {
                        attempt: a.attempt,
                        at: a.at,
                        status_code: a.status_code,
                        error: a.error,
                        duration_ms: a.duration_ms,
                    })
                    .collect();
                DeliveryView {
                    next_attempt_at: (r.status == "pending").then_some(r.next_attempt_at),
                    id: r.id,
                    event_id: r.event_id,
                    event: r.event,
                    status: r.status,
                    attempts: r.attempts,
                    last_status_code: r.last_status_code,
                    last_error: r.last_error,
                    delivered_at: r.delivered_at,
                    created_at: r.created_at,
                    updated_at: r.updated_at,
                    attempt_log: log,
                }
            })
            .collect();
        Ok(Page { items, page, total })
    }

    /// Queues a `webhook.ping` event for this webhook alone (whatever it subscribes to).
    pub async fn webhook_test(&self, actor: &Actor, id: &str) -> Result<PingQueued> {
        actor.require(Scope::WebhooksWrite)?;
        let mut tx = self.store.begin().await?;
        let row = self.load_webhook(&mut tx, id).await?;
        if !row.enabled {
            return Err(Error::conflict(
                "WEBHOOK_DISABLED",
                "the webhook is disabled: enable it (PATCH `enabled: true`) to send events",
                Some(serde_json::json!({"disabled_reason": row.disabled_reason})),
            ));
        }
        let data = serde_json::json!({"webhook_id": row.id, "message": "ping from ironbay"});
        let event_id = webhooks::enqueue(&mut tx, webhooks::PING_EVENT, data, std::slice::from_ref(&row.id))
            .await?
            .ok_or_else(|| Error::internal("ping enqueued nothing"))?;
        audit::append(
            &mut tx,
            actor,
            Event::new("webhook.test", "webhook", id).with_details(serde_json::json!({"event_id": event_id})),
        )
        .await?;
        tx.commit().await?;
        Ok(PingQueued { event_id, event: webhooks::PING_EVENT.to_string() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_need_http_and_a_host() {
        assert!(check_url("http://127.0.0.1:9000/hook").is_ok());
        assert!(check_url("https://hooks.example.com/x?y=1").is_ok());
        for bad in ["ftp://example.com/", "not a url", "http://", "file:///etc/passwd", "https://u:p@example.com/"] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
    }
}
