//! Webhook events: produced from the audit chain, kept in an outbox, delivered signed.
//!
//! - **Outbox.** `audit::append` calls `enqueue_audit` inside the caller's transaction: one event
//!   row (`evt_…`) and one delivery row per matching enabled webhook. If the change commits, its
//!   event is in the store; if it rolls back, nothing is sent.
//! - **Names.** An audit action `<resource>.<verb>` becomes the event `<resource>.<verb, past
//!   tense>` (`asset.create` → `asset.created`, `device.enroll` → `device.enrolled`); `EVENT_TABLE`
//!   holds the exceptions. Subscriptions are `*`, `<resource>.*` or an exact event name.
//! - **Delivery.** `run` (started by `server::serve`) claims due deliveries with a lease, POSTs the
//!   event's JSON with `X-Ironbay-Signature: sha256=<hex HMAC-SHA256(secret, "{timestamp}.{body}")>`,
//!   records every attempt, retries with exponential backoff persisted as `next_attempt_at`, and
//!   disables a webhook after `disable_after` consecutive failed deliveries. Delivery is at least
//!   once: a crash between the receiver's answer and the record means one more attempt, with the
//!   same `X-Ironbay-Event-Id` for the receiver to deduplicate on.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::AnyConnection;

use crate::app::App;
use crate::audit::{self, Event};
use crate::auth::Actor;
use crate::model::{IdKind, new_id, now_rfc3339, to_rfc3339};
use crate::secret::hmac_sha256;
use crate::store::Store;
use crate::store::audit::AuditRow;
use crate::store::webhooks::{AttemptOutcome, ClaimedDelivery};

pub const HEADER_EVENT: &str = "X-Ironbay-Event";
pub const HEADER_EVENT_ID: &str = "X-Ironbay-Event-Id";
pub const HEADER_DELIVERY: &str = "X-Ironbay-Delivery";
pub const HEADER_TIMESTAMP: &str = "X-Ironbay-Timestamp";
pub const HEADER_SIGNATURE: &str = "X-Ironbay-Signature";

/// The event `webhooks::test` sends to one webhook only.
pub const PING_EVENT: &str = "webhook.ping";
pub const CHAIN_BROKEN_EVENT: &str = "audit.chain_broken";

/// Audit actions whose event name is not the generic past tense. `None`: no event (logins and
/// token refreshes are noise; a test ping has its own event).
const EVENT_TABLE: &[(&str, Option<&str>)] = &[
    ("psk.read_value", Some("psk.value_read")),
    ("webhook.test", None),
    ("cluster.ready", Some("cluster.ready")),
    ("cluster.read_kubeconfig", Some("cluster.kubeconfig_read")),
    ("cluster.read_talosconfig", Some("cluster.talosconfig_read")),
    ("audit.chain_broken", Some("audit.chain_broken")),
];

/// Resources whose events can be subscribed to by name (`asset.*`): a typo in a subscription is
/// refused instead of silently matching nothing. `*` matches every resource, listed or not.
pub const RESOURCES: &[&str] = &[
    "asset",
    "workflow",
    "cluster",
    "device",
    "enrollment",
    "enroll_token",
    "psk",
    "policy",
    "vni",
    "audit",
    "user",
    "api_key",
    "webhook",
    "image",
];

/// Irregular past tenses of verbs the generic rule gets wrong.
const PAST: &[(&str, &str)] = &[("stop", "stopped"), ("bootstrap", "bootstrapped"), ("run", "ran"), ("set", "set")];

fn past_tense(verb: &str) -> String {
    if let Some((_, p)) = PAST.iter().find(|(v, _)| *v == verb) {
        return (*p).to_string();
    }
    if verb.ends_with("ed") || verb.ends_with("en") {
        verb.to_string()
    } else if verb.ends_with('e') {
        format!("{verb}d")
    } else if let Some(stem) = verb.strip_suffix('y')
        && !stem.ends_with(['a', 'e', 'i', 'o', 'u'])
    {
        format!("{stem}ied")
    } else {
        format!("{verb}ed")
    }
}

/// The event an audit action produces, if any.
pub fn event_name(action: &str) -> Option<String> {
    if let Some((_, mapped)) = EVENT_TABLE.iter().find(|(a, _)| *a == action) {
        return mapped.map(str::to_string);
    }
    let (resource, verb) = action.split_once('.')?;
    if resource == "auth" || resource.is_empty() || verb.is_empty() {
        return None;
    }
    Some(format!("{resource}.{}", past_tense(verb)))
}

/// Does subscription `pattern` cover `event`?
pub fn matches(pattern: &str, event: &str) -> bool {
    match pattern.strip_suffix(".*") {
        _ if pattern == "*" => true,
        Some(resource) => event.strip_prefix(resource).is_some_and(|rest| rest.starts_with('.')),
        None => pattern == event,
    }
}

/// Checks a subscription pattern; the error says what is accepted.
pub fn check_pattern(p: &str) -> Result<(), String> {
    if p == "*" {
        return Ok(());
    }
    let word = |s: &str| !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
    let Some((resource, name)) = p.split_once('.') else {
        return Err(format!("`{p}` is not `*`, `<resource>.*` or `<resource>.<event>`"));
    };
    if !RESOURCES.contains(&resource) {
        return Err(format!("`{p}`: unknown resource `{resource}` (known: {})", RESOURCES.join(", ")));
    }
    if name != "*" && !word(name) {
        return Err(format!("`{p}`: the event name must be lowercase letters and `_`, or `*`"));
    }
    Ok(())
}

/// `sha256=<hex>` of HMAC-SHA256 under `secret` over `"{timestamp}.{body}"`.
pub fn signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut signed = Vec::with_capacity(body.len() + 24);
    signed.extend_from_slice(timestamp.to_string().as_bytes());
    signed.push(b'.');
    signed.extend_from_slice(body);
    format!("sha256={}", hex::encode(hmac_sha256(secret, &signed)))
}

/// Delay before retry number `attempts` (1 = after the first failure): base · 2^(attempts-1),
/// at most `max`.
pub fn backoff(base: Duration, max: Duration, attempts: u32) -> Duration {
    let factor = 1u32.checked_shl(attempts.saturating_sub(1).min(30)).unwrap_or(u32::MAX);
    base.checked_mul(factor).unwrap_or(max).min(max)
}

/// Writes one event and a delivery per webhook in `targets` (ids), inside the caller's
/// transaction. Returns the event id, or None when nobody subscribes.
pub async fn enqueue(
    conn: &mut AnyConnection,
    event: &str,
    data: Value,
    targets: &[String],
) -> Result<Option<String>, sqlx::Error> {
    if targets.is_empty() {
        return Ok(None);
    }
    let id = new_id(IdKind::Event);
    let now = now_rfc3339();
    let payload = json!({"id": id, "event": event, "created_at": now, "data": data});
    Store::webhook_event_insert(conn, &id, event, &payload.to_string(), &now).await?;
    for w in targets {
        Store::delivery_insert(conn, &new_id(IdKind::WebhookDelivery), w, &id, event, &now).await?;
    }
    Ok(Some(id))
}

/// The enabled webhooks subscribed to `event`.
pub async fn subscribers(conn: &mut AnyConnection, event: &str) -> Result<Vec<String>, sqlx::Error> {
    let subs = Store::webhook_subscriptions(conn).await?;
    Ok(subs
        .into_iter()
        .filter(|(_, events)| {
            serde_json::from_str::<Vec<String>>(events).is_ok_and(|ps| ps.iter().any(|p| matches(p, event)))
        })
        .map(|(id, _)| id)
        .collect())
}

/// The event of a successful audit entry (called by `audit::append`, same transaction).
pub async fn enqueue_audit(conn: &mut AnyConnection, row: &AuditRow) -> Result<(), sqlx::Error> {
    if row.outcome != audit::Outcome::Success.as_str() {
        return Ok(());
    }
    let Some(event) = event_name(&row.action) else { return Ok(()) };
    let targets = subscribers(conn, &event).await?;
    if targets.is_empty() {
        return Ok(());
    }
    let details: Value = serde_json::from_str(&row.details).unwrap_or(Value::Null);
    let data = json!({
        "audit_id": row.id,
        "action": row.action,
        "target": {"type": row.target_type, "id": row.target_id},
        "actor": {"type": row.actor_type, "id": row.actor_id, "name": row.actor_name},
        "source_ip": row.source_ip,
        "details": details,
    });
    enqueue(conn, &event, data, &targets).await.map(|_| ())
}

/// `audit.chain_broken`, enqueued in a transaction of its own without an audit entry (the chain
/// is what is broken). Sent once per distinct break, remembered in `meta`.
pub async fn enqueue_chain_broken(
    store: &Store,
    first_broken: Option<&str>,
    reason: Option<&str>,
) -> Result<(), sqlx::Error> {
    const KEY: &str = "webhooks.chain_broken_reported";
    let fingerprint = format!("{}|{}", first_broken.unwrap_or(""), reason.unwrap_or(""));
    if store.meta_get(KEY).await?.as_deref() == Some(fingerprint.as_str()) {
        return Ok(());
    }
    let mut tx = store.begin().await?;
    let targets = subscribers(&mut tx, CHAIN_BROKEN_EVENT).await?;
    enqueue(
        &mut tx,
        CHAIN_BROKEN_EVENT,
        json!({"first_broken": first_broken, "reason": reason, "detected_at": now_rfc3339()}),
        &targets,
    )
    .await?;
    Store::meta_set(&mut tx, KEY, &fingerprint).await?;
    tx.commit().await
}

/// How many deliveries one worker sends at once.
const BATCH: i64 = 16;

/// The delivery worker: runs until the process ends.
pub async fn run(app: App) {
    let cfg = app.config.webhooks.clone();
    let client = match reqwest::Client::builder()
        .timeout(cfg.timeout)
        .connect_timeout(cfg.timeout.min(Duration::from_secs(5)))
        // A receiver that redirects could point a signed event anywhere: a redirect is a failure.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("ironbay-webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "webhook delivery disabled: cannot build the HTTP client");
            return;
        }
    };
    // Leases name this process so a late answer after a lost lease is not recorded twice.
    let owner = new_id(IdKind::WebhookDelivery).replacen("dlv_", "wrk_", 1);
    loop {
        tokio::time::sleep(cfg.poll).await;
        if let Err(e) = run_once(&app, &client, &owner).await {
            tracing::warn!(error = %e, "webhook delivery round failed");
        }
    }
}

async fn run_once(app: &App, client: &reqwest::Client, owner: &str) -> Result<(), sqlx::Error> {
    let cfg = &app.config.webhooks;
    let now_t = chrono::Utc::now();
    let now = to_rfc3339(now_t);
    if !app.store.delivery_due(&now).await? {
        return Ok(());
    }
    // The lease outlives the request timeout twice over, so a live worker never loses it
    // mid-attempt; a dead one's deliveries are retried soon after.
    let lease =
        chrono::Duration::from_std(cfg.timeout * 2 + Duration::from_secs(1)).unwrap_or(chrono::Duration::minutes(1));
    let claimed = app.store.delivery_claim(owner, &now, &to_rfc3339(now_t + lease), BATCH).await?;
    let mut set = tokio::task::JoinSet::new();
    for d in claimed {
        let (app, client, owner) = (app.clone(), client.clone(), owner.to_string());
        set.spawn(async move {
            if let Err(e) = deliver(&app, &client, &owner, &d).await {
                tracing::warn!(delivery = %d.id, error = %e, "recording a webhook delivery failed");
            }
        });
    }
    while set.join_next().await.is_some() {}
    Ok(())
}

/// One attempt of one delivery, and its record.
async fn deliver(app: &App, client: &reqwest::Client, owner: &str, d: &ClaimedDelivery) -> Result<(), sqlx::Error> {
    let Some(target) = app.store.delivery_target(&d.id).await? else { return Ok(()) };
    let started = Instant::now();
    let sent = match app.keys.unseal(&format!("webhooks.secret:{}", d.webhook_id), &target.secret_sealed) {
        Err(_) => Err("the webhook's secret cannot be opened with this appliance's master key".to_string()),
        Ok(secret) => send(client, &target.url, &secret, d, target.payload.into_bytes()).await,
    };
    let duration_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    let at = now_rfc3339();
    let (status_code, error) = match &sent {
        Ok(code) if (200..300).contains(code) => (Some(i64::from(*code)), None),
        Ok(code) => (Some(i64::from(*code)), Some(format!("receiver answered HTTP {code}"))),
        Err(e) => (None, Some(e.clone())),
    };
    let success = error.is_none();
    let outcome = AttemptOutcome { status_code, error: error.as_deref(), duration_ms, at: &at };
    let cfg = &app.config.webhooks;
    let attempts = u32::try_from(d.attempts).unwrap_or(u32::MAX);
    let (status, next) = if success {
        ("delivered", at.clone())
    } else if attempts >= cfg.max_attempts {
        ("failed", at.clone())
    } else {
        let delay = chrono::Duration::from_std(backoff(cfg.retry_base, cfg.retry_max, attempts))
            .unwrap_or(chrono::Duration::hours(1));
        ("pending", to_rfc3339(chrono::Utc::now() + delay))
    };
    let mut tx = app.store.begin().await?;
    if !Store::delivery_finish(&mut tx, &d.id, owner, status, &next, &outcome).await? {
        // Lease lost (or the webhook deleted): someone else owns the row now.
        return Ok(());
    }
    Store::attempt_insert(&mut tx, &d.id, d.attempts, &outcome).await?;
    match status {
        "delivered" => Store::webhook_reset_failures(&mut tx, &d.webhook_id).await?,
        "failed" => {
            let streak = Store::webhook_count_failure(&mut tx, &d.webhook_id).await?.unwrap_or(0);
            if streak >= i64::from(cfg.disable_after) {
                let reason = format!(
                    "disabled after {streak} consecutive failed deliveries (last: {})",
                    error.as_deref().unwrap_or("unknown")
                );
                if Store::webhook_auto_disable(&mut tx, &d.webhook_id, &reason, &at).await? {
                    tracing::warn!(webhook = %d.webhook_id, %reason, "webhook disabled");
                    audit::append(
                        &mut tx,
                        &Actor::system(),
                        Event::new("webhook.disable", "webhook", &d.webhook_id)
                            .with_details(json!({"reason": reason, "automatic": true})),
                    )
                    .await?;
                }
            }
        }
        _ => {}
    }
    tx.commit().await
}

/// POSTs the body; the HTTP status, or why there is none. Errors name the failure kind, not the
/// URL's query (which may hold a token).
async fn send(
    client: &reqwest::Client,
    url: &str,
    secret: &[u8],
    d: &ClaimedDelivery,
    body: Vec<u8>,
) -> Result<u16, String> {
    let ts = chrono::Utc::now().timestamp();
    let sig = signature(secret, ts, &body);
    let resp = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(HEADER_EVENT, &d.event)
        .header(HEADER_EVENT_ID, &d.event_id)
        .header(HEADER_DELIVERY, &d.id)
        .header(HEADER_TIMESTAMP, ts.to_string())
        .header(HEADER_SIGNATURE, sig)
        .body(body)
        .send()
        .await
        .map_err(|e| {
            if e.is_timeout() {
                "timed out".to_string()
            } else if e.is_connect() {
                "connection failed".to_string()
            } else {
                "request failed".to_string()
            }
        })?;
    Ok(resp.status().as_u16())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_become_past_tense_events() {
        let cases = [
            ("asset.create", Some("asset.created")),
            ("asset.update", Some("asset.updated")),
            ("asset.delete", Some("asset.deleted")),
            ("vni.allocate", Some("vni.allocated")),
            ("vni.release", Some("vni.released")),
            ("psk.rotate", Some("psk.rotated")),
            ("psk.read_value", Some("psk.value_read")),
            ("device.enroll", Some("device.enrolled")),
            ("device.revoke", Some("device.revoked")),
            ("workflow.start", Some("workflow.started")),
            ("workflow.retry", Some("workflow.retried")),
            ("cluster.bootstrap", Some("cluster.bootstrapped")),
            ("policy.deploy", Some("policy.deployed")),
            ("image.create", Some("image.created")),
            ("image.upload", Some("image.uploaded")),
            ("audit.chain_broken", Some("audit.chain_broken")),
            ("auth.login", None),
            ("webhook.test", None),
            ("nodot", None),
        ];
        for (action, event) in cases {
            assert_eq!(event_name(action).as_deref(), event, "{action}");
        }
    }

    #[test]
    fn patterns_match_families_exactly() {
        assert!(matches("*", "asset.created"));
        assert!(matches("asset.*", "asset.created"));
        assert!(!matches("asset.*", "assets.created"));
        assert!(!matches("asset.*", "asset"));
        assert!(matches("psk.rotated", "psk.rotated"));
        assert!(!matches("psk.rotated", "psk.created"));
        assert!(check_pattern("asset.*").is_ok() && check_pattern("*").is_ok());
        assert!(check_pattern("device.enrolled").is_ok());
        assert!(check_pattern("assets.*").is_err());
        assert!(check_pattern("asset").is_err());
        assert!(check_pattern("asset.Created").is_err());
    }

    #[test]
    fn signature_is_hmac_over_timestamp_and_body() {
        // RFC 4231-style check against an independent computation of the same construction.
        let sig = signature(b"secret", 1700000000, b"{\"a\":1}");
        assert_eq!(sig, format!("sha256={}", hex::encode(hmac_sha256(b"secret", b"1700000000.{\"a\":1}"))));
        assert_ne!(sig, signature(b"secret", 1700000001, b"{\"a\":1}"), "the timestamp is signed");
        assert_ne!(sig, signature(b"other", 1700000000, b"{\"a\":1}"));
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let (b, m) = (Duration::from_millis(1000), Duration::from_secs(60));
        assert_eq!(backoff(b, m, 1), Duration::from_millis(1000));
        assert_eq!(backoff(b, m, 2), Duration::from_millis(2000));
        assert_eq!(backoff(b, m, 4), Duration::from_millis(8000));
        assert_eq!(backoff(b, m, 10), m);
        assert_eq!(backoff(b, m, 1000), m);
    }
}
