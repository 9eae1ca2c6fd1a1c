//! Webhooks over real HTTP on both backends, delivering to a real HTTP receiver on loopback:
//! CRUD and validation, signed deliveries (the signature is verified here, independently), the
//! subscription filter, a rolled-back change sending nothing, retries with backoff recorded in the
//! delivery log, automatic disabling, and delivery surviving a kill and restart mid-retry with
//! exactly one successful receipt per event id.

mod common;

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use common::{Appliance, Backend, Client, Options, Resp, asset_body};
use hmac::{KeyInit, Mac};
use serde_json::{Value, json};

/// One request the receiver got, and what it answered.
#[derive(Clone, Debug)]
struct Receipt {
    headers: HeaderMap,
    body: Bytes,
    answered: u16,
}

impl Receipt {
    fn header(&self, name: &str) -> String {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string()
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
    fn event(&self) -> String {
        self.header("x-ironbay-event")
    }
    fn event_id(&self) -> String {
        self.header("x-ironbay-event-id")
    }
}

/// A tiny HTTP receiver on 127.0.0.1 that answers with a status the test sets.
struct Receiver {
    url: String,
    answer: Arc<AtomicU16>,
    got: Arc<Mutex<Vec<Receipt>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start(status: u16) -> Self {
        let answer = Arc::new(AtomicU16::new(status));
        let got = Arc::new(Mutex::new(Vec::new()));
        let (a, g) = (answer.clone(), got.clone());
        let handler = move |headers: HeaderMap, body: Bytes| {
            let (a, g) = (a.clone(), g.clone());
            async move {
                let answered = a.load(Ordering::SeqCst);
                g.lock().expect("receipts").push(Receipt { headers, body, answered });
                StatusCode::from_u16(answered).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            }
        };
        let router = axum::Router::new().route("/hook", axum::routing::post(handler));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind receiver");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Receiver { url, answer, got, task }
    }

    fn set(&self, status: u16) {
        self.answer.store(status, Ordering::SeqCst);
    }

    fn receipts(&self) -> Vec<Receipt> {
        self.got.lock().expect("receipts").clone()
    }

    /// Polls until `pred` holds over the receipts (deadline 30 s).
    async fn wait_for(&self, what: &str, pred: impl Fn(&[Receipt]) -> bool) -> Vec<Receipt> {
        common::eventually(what, 30, || async {
            let got = self.receipts();
            if pred(&got) {
                Ok(got)
            } else {
                Err(format!("{:?}", got.iter().map(|r| (r.event(), r.answered)).collect::<Vec<_>>()))
            }
        })
        .await
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Verifies the signature the way a receiver would: HMAC-SHA256(secret, "{timestamp}.{body}"),
/// compared in constant time, and a timestamp within 5 minutes.
fn verify_signature(r: &Receipt, secret: &str) {
    let ts = r.header("x-ironbay-timestamp");
    let t: i64 = ts.parse().unwrap_or_else(|_| panic!("timestamp header `{ts}`"));
    assert!((chrono::Utc::now().timestamp() - t).abs() < 300, "stale timestamp {t}");
    let sig = r.header("x-ironbay-signature");
    let hex_sig = sig.strip_prefix("sha256=").unwrap_or_else(|| panic!("signature `{sig}`"));
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(ts.as_bytes());
    mac.update(b".");
    mac.update(&r.body);
    let bytes = hex::decode(hex_sig).expect("hex signature");
    mac.verify_slice(&bytes).unwrap_or_else(|_| panic!("bad signature on {}", r.event()));
    // And a signature over another timestamp does not verify (replay with a fresh timestamp).
    let mut other = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).expect("key");
    other.update(format!("{}.", t + 1).as_bytes());
    other.update(&r.body);
    assert!(other.verify_slice(&bytes).is_err());
}

fn options(extra: &[(&str, &str)]) -> Options {
    let mut o = Options::default()
        .env("IRONBAY_RATE_LIMIT__API_PER_MINUTE", "100000")
        .env("IRONBAY_RATE_LIMIT__API_BURST", "100000")
        .env("IRONBAY_WEBHOOKS__POLL_MS", "50");
    for (k, v) in extra {
        o = o.env(k, v);
    }
    o
}

async fn create_hook(c: &Client, body: Value) -> Value {
    let r = c.post("/api/v1/webhooks", body.clone()).await;
    assert_eq!(r.status, 201, "create webhook {body}: {}", r.text);
    r.json
}

fn expect_field(label: &str, r: &Resp, code: &str, field: &str) {
    assert_eq!(r.status, 422, "{label}: {}", r.text);
    assert_eq!(r.error_code(), code, "{label}: {}", r.text);
    assert_eq!(r.json["details"]["field"], field, "{label}: {}", r.text);
}

async fn deliveries(c: &Client, hook: &str) -> Vec<Value> {
    let r = c.get(&format!("/api/v1/webhooks/{hook}/deliveries?per_page=100")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.json["data"].as_array().expect("data").clone()
}

/// Polls the delivery log until `pred` holds (deadline 30 s).
async fn wait_log(c: &Client, hook: &str, pred: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    common::eventually("the delivery log", 30, || async {
        let log = deliveries(c, hook).await;
        if pred(&log) { Ok(log) } else { Err(format!("{log:?}")) }
    })
    .await
}

async fn webhook_crud_and_validation(backend: Backend) {
    let app = Appliance::start_with(backend, options(&[])).await;
    let admin = app.admin().await;
    let w = create_hook(&admin, json!({"url": "http://127.0.0.1:9/hook", "events": ["asset.*", "psk.rotated"]})).await;
    let id = w["id"].as_str().expect("id").to_string();
    assert!(id.starts_with("whk_"), "{w}");
    let secret = w["secret"].as_str().expect("the secret is shown at creation").to_string();
    assert!(secret.starts_with("whsec_") && secret.len() >= 32, "{w}");
    assert_eq!(w["events"], json!(["asset.*", "psk.rotated"]));
    assert_eq!((w["enabled"].clone(), w["consecutive_failures"].clone()), (json!(true), json!(0)));

    // Never again: not by get, list, or the audit log.
    let r = admin.get(&format!("/api/v1/webhooks/{id}")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.json.get("secret").is_none() && !r.text.contains(&secret), "{}", r.text);
    let r = admin.get("/api/v1/webhooks").await;
    assert_eq!(r.json["meta"]["total"], 1, "{}", r.text);
    assert!(!r.text.contains(&secret), "{}", r.text);
    let r = admin.get("/api/v1/audit?per_page=100").await;
    assert!(!r.text.contains(&secret), "{}", r.text);

    // A given secret; patching.
    let w2 = create_hook(
        &admin,
        json!({"url": "http://127.0.0.1:9/all", "events": ["*"], "secret": "a-given-secret-of-24ch", "description": "all"}),
    )
    .await;
    assert_eq!(w2["secret"], "a-given-secret-of-24ch");
    let r = admin
        .patch(
            &format!("/api/v1/webhooks/{id}"),
            json!({"events": ["device.enrolled", "audit.chain_broken"], "enabled": false}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["events"], json!(["device.enrolled", "audit.chain_broken"]));
    assert_eq!(r.json["enabled"], false);
    assert!(r.json["disabled_reason"].as_str().is_some_and(|s| s.contains("admin")), "{}", r.text);
    let r = admin.post(&format!("/api/v1/webhooks/{id}/test"), json!({})).await;
    assert_eq!((r.status, r.error_code()), (409, "WEBHOOK_DISABLED".to_string()), "{}", r.text);
    let r = admin.patch(&format!("/api/v1/webhooks/{id}"), json!({"enabled": true})).await;
    assert!(r.json["disabled_reason"].is_null() && r.json["enabled"] == true, "{}", r.text);

    // Bad input, by field; nothing created.
    let cases = [
        ("ftp URL", json!({"url": "ftp://example.com/x", "events": ["*"]}), "INVALID_FIELD", "url"),
        ("no host", json!({"url": "http://", "events": ["*"]}), "INVALID_FIELD", "url"),
        ("not a URL", json!({"url": "hooks", "events": ["*"]}), "INVALID_FIELD", "url"),
        ("credentials in URL", json!({"url": "https://u:p@example.com/", "events": ["*"]}), "INVALID_FIELD", "url"),
        ("no events", json!({"url": "http://127.0.0.1/x", "events": []}), "INVALID_FIELD", "events"),
        ("unknown resource", json!({"url": "http://127.0.0.1/x", "events": ["assets.*"]}), "INVALID_FIELD", "events"),
        (
            "short secret",
            json!({"url": "http://127.0.0.1/x", "events": ["*"], "secret": "short"}),
            "INVALID_FIELD",
            "secret",
        ),
        ("missing url", json!({"events": ["*"]}), "MISSING_FIELD", "url"),
        (
            "unknown field",
            json!({"url": "http://127.0.0.1/x", "events": ["*"], "topics": []}),
            "UNKNOWN_FIELD",
            "topics",
        ),
    ];
    for (label, body, code, field) in cases {
        let r = admin.post("/api/v1/webhooks", body).await;
        expect_field(label, &r, code, field);
    }
    let r = admin.patch(&format!("/api/v1/webhooks/{id}"), json!({"url": "gopher://x"})).await;
    expect_field("PATCH bad url", &r, "INVALID_FIELD", "url");
    assert_eq!(admin.get("/api/v1/webhooks").await.json["meta"]["total"], 2);

    // Scopes: operators read (webhooks:read), only admins write (webhooks:write).
    let operator = app.user(&admin, "hook-operator", "operator").await;
    assert_eq!(operator.get(&format!("/api/v1/webhooks/{id}")).await.status, 200);
    let r = operator.post("/api/v1/webhooks", json!({"url": "http://127.0.0.1/x", "events": ["*"]})).await;
    assert_eq!((r.status, r.json["details"]["missing_scope"].clone()), (403, json!("webhooks:write")), "{}", r.text);
    let r = operator.delete(&format!("/api/v1/webhooks/{id}")).await;
    assert_eq!(r.status, 403, "{}", r.text);

    let r = admin.delete(&format!("/api/v1/webhooks/{id}")).await;
    assert_eq!(r.status, 204, "{}", r.text);
    for r in [
        admin.get(&format!("/api/v1/webhooks/{id}")).await,
        admin.get(&format!("/api/v1/webhooks/{id}/deliveries")).await,
    ] {
        assert_eq!((r.status, r.error_code()), (404, "WEBHOOK_NOT_FOUND".to_string()), "{}", r.text);
    }
    let actions: Vec<String> = admin.get(&format!("/api/v1/audit?target_id={id}")).await.json["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|e| e["action"].as_str().unwrap_or("").to_string())
        .collect();
    for a in ["webhook.create", "webhook.update", "webhook.delete"] {
        assert!(actions.contains(&a.to_string()), "{a} not audited: {actions:?}");
    }
}

async fn signed_deliveries_follow_subscriptions(backend: Backend) {
    let app = Appliance::start_with(backend, options(&[])).await;
    let admin = app.admin().await;
    let rx = Receiver::start(200).await;
    let secret = "receiver-shared-secret-1";
    let hook = create_hook(&admin, json!({"url": rx.url, "events": ["asset.*", "psk.*"], "secret": secret})).await;
    let hook_id = hook["id"].as_str().expect("id").to_string();
    // A second subscriber to asset creations, on its own receiver.
    let rx2 = Receiver::start(200).await;
    create_hook(&admin, json!({"url": rx2.url, "events": ["asset.created"], "secret": "second-receiver-secret"})).await;

    // Not subscribed: VNIs. Subscribed: assets and PSKs.
    let r = admin.post("/api/v1/vnis", json!({"name": "n1", "cidr": "10.9.0.0/24", "vni": 9})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = admin.post("/api/v1/assets", asset_body("hooked-1", "52:54:00:77:00:01")).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let asset_id = r.json["id"].as_str().expect("id").to_string();
    // A refused change (duplicate hostname) rolls back: no event.
    let r = admin.post("/api/v1/assets", asset_body("hooked-1", "52:54:00:77:00:02")).await;
    assert_eq!(r.status, 409, "{}", r.text);
    let r = admin.post("/api/v1/psks", json!({"psk_value": "never-in-an-event"})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = admin.patch(&format!("/api/v1/assets/{asset_id}"), json!({"tags": ["x"]})).await;
    assert_eq!(r.status, 200, "{}", r.text);

    let got = rx.wait_for("three events", |g| g.len() >= 3).await;
    let events: Vec<String> = got.iter().map(Receipt::event).collect();
    let mut sorted = events.clone();
    sorted.sort();
    assert_eq!(sorted, ["asset.created", "asset.updated", "psk.created"], "exactly the subscribed, committed events");
    for r in &got {
        verify_signature(r, secret);
        let body = r.json();
        assert_eq!(body["event"], r.event().as_str());
        assert_eq!(body["id"], r.event_id().as_str());
        assert!(r.event_id().starts_with("evt_"), "{}", r.event_id());
        assert!(r.header("x-ironbay-delivery").starts_with("dlv_"));
        assert_eq!(r.header("content-type"), "application/json");
        assert!(!String::from_utf8_lossy(&r.body).contains("never-in-an-event"), "a PSK value in an event");
    }
    // One event, one id, whichever webhook it goes to (each delivery has its own id).
    let second = rx2.wait_for("asset.created at the second receiver", |g| !g.is_empty()).await;
    assert_eq!(second.len(), 1, "the second webhook subscribes to asset.created only");
    verify_signature(&second[0], "second-receiver-secret");
    let first = got.iter().find(|r| r.event() == "asset.created").expect("asset.created");
    assert_eq!(second[0].event_id(), first.event_id());
    assert_ne!(second[0].header("x-ironbay-delivery"), first.header("x-ironbay-delivery"));
    let created = first.json();
    assert_eq!(created["data"]["target"], json!({"type": "asset", "id": asset_id}));
    assert_eq!(created["data"]["action"], "asset.create");
    assert_eq!(created["data"]["actor"]["name"], "admin");
    assert!(created["data"]["audit_id"].as_str().is_some_and(|a| a.starts_with("aud_")));

    // The delivery log: one delivered attempt each, answered 200 (recorded just after the answer).
    let log = wait_log(&admin, &hook_id, |log| log.iter().all(|d| d["status"] == "delivered")).await;
    assert_eq!(log.len(), 3, "{log:?}");
    for d in &log {
        assert_eq!(d["status"], "delivered", "{d}");
        assert_eq!(d["attempts"], 1, "{d}");
        assert_eq!(d["attempt_log"].as_array().map(Vec::len), Some(1), "{d}");
        assert_eq!(d["attempt_log"][0]["status_code"], 200, "{d}");
        assert!(d["delivered_at"].is_string() && d["next_attempt_at"].is_null(), "{d}");
    }
    let r = admin.get(&format!("/api/v1/webhooks/{hook_id}/deliveries?status=pending")).await;
    assert_eq!(r.json["meta"]["total"], 0, "{}", r.text);

    // The test ping goes to this webhook whatever it subscribes to.
    let r = admin.post(&format!("/api/v1/webhooks/{hook_id}/test"), json!({})).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let ping_id = r.json["event_id"].as_str().expect("event_id").to_string();
    let got = rx.wait_for("the ping", |g| g.iter().any(|r| r.event_id() == ping_id)).await;
    let ping = got.iter().find(|r| r.event_id() == ping_id).expect("ping");
    assert_eq!(ping.event(), "webhook.ping");
    verify_signature(ping, secret);
    assert_eq!(got.len(), 4, "nothing else was sent");
}

async fn retries_back_off_then_disable(backend: Backend) {
    let app = Appliance::start_with(
        backend,
        options(&[
            ("IRONBAY_WEBHOOKS__RETRY_BASE_MS", "200"),
            ("IRONBAY_WEBHOOKS__MAX_ATTEMPTS", "3"),
            ("IRONBAY_WEBHOOKS__DISABLE_AFTER", "2"),
        ]),
    )
    .await;
    let admin = app.admin().await;
    let rx = Receiver::start(500).await;
    let hook = create_hook(&admin, json!({"url": rx.url, "events": ["asset.created"]})).await;
    let hook_id = hook["id"].as_str().expect("id").to_string();
    for n in 1..=2 {
        let r =
            admin.post("/api/v1/assets", asset_body(&format!("failing-{n}"), &format!("52:54:00:78:00:0{n}"))).await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    // 2 events × 3 attempts, then the webhook is disabled.
    let w = common::eventually("the webhook to be disabled", 30, || async {
        let r = admin.get(&format!("/api/v1/webhooks/{hook_id}")).await;
        if r.json["enabled"] == false { Ok(r.json) } else { Err(r.text) }
    })
    .await;
    let reason = w["disabled_reason"].as_str().unwrap_or_default();
    assert!(reason.contains("2 consecutive failed deliveries") && reason.contains("500"), "{w}");
    assert_eq!(w["consecutive_failures"], 2, "{w}");
    let got = rx.receipts();
    assert_eq!(got.len(), 6, "3 attempts per event: {got:?}");
    let log = deliveries(&admin, &hook_id).await;
    assert_eq!(log.len(), 2);
    for d in &log {
        assert_eq!((d["status"].clone(), d["attempts"].clone()), (json!("failed"), json!(3)), "{d}");
        assert_eq!(d["last_status_code"], 500, "{d}");
        let attempts = d["attempt_log"].as_array().expect("attempt_log");
        assert_eq!(attempts.iter().map(|a| a["attempt"].as_i64().unwrap_or(0)).collect::<Vec<_>>(), [1, 2, 3]);
        let at: Vec<chrono::DateTime<chrono::Utc>> = attempts
            .iter()
            .map(|a| a["at"].as_str().and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("at: {a}")))
            .collect();
        // Backoff: at least 200 ms, then at least 400 ms between attempts.
        assert!((at[1] - at[0]).num_milliseconds() >= 200, "{d}");
        assert!((at[2] - at[1]).num_milliseconds() >= 400, "{d}");
        assert!(attempts.iter().all(|a| a["status_code"] == 500 && a["error"].is_string()), "{d}");
    }
    let r = admin.get(&format!("/api/v1/audit?target_id={hook_id}&action=webhook.disable")).await;
    assert_eq!(r.json["meta"]["total"], 1, "{}", r.text);
    assert_eq!(r.json["data"][0]["actor_type"], "system", "{}", r.text);

    // Disabled: new events are not queued for it. Re-enabled: a fresh streak, deliveries resume.
    let r = admin.post("/api/v1/assets", asset_body("failing-3", "52:54:00:78:00:03")).await;
    assert_eq!(r.status, 201);
    assert_eq!(deliveries(&admin, &hook_id).await.len(), 2);
    rx.set(200);
    let r = admin.patch(&format!("/api/v1/webhooks/{hook_id}"), json!({"enabled": true})).await;
    assert_eq!((r.json["consecutive_failures"].clone(), r.json["disabled_reason"].clone()), (json!(0), Value::Null));
    let r = admin.post("/api/v1/assets", asset_body("failing-4", "52:54:00:78:00:04")).await;
    assert_eq!(r.status, 201);
    rx.wait_for("a delivery after re-enabling", |g| g.iter().any(|r| r.answered == 200)).await;
}

async fn delivery_survives_a_restart_mid_retry(backend: Backend) {
    // A 3 s first backoff: the failed delivery is surely still waiting when the appliance dies.
    let mut app = Appliance::start_with(
        backend,
        options(&[("IRONBAY_WEBHOOKS__RETRY_BASE_MS", "3000"), ("IRONBAY_WEBHOOKS__TIMEOUT_MS", "2000")]),
    )
    .await;
    let admin = app.admin().await;
    let rx = Receiver::start(500).await;
    let secret = "restart-test-secret-123";
    let hook = create_hook(&admin, json!({"url": rx.url, "events": ["asset.*"], "secret": secret})).await;
    let hook_id = hook["id"].as_str().expect("id").to_string();
    let r = admin.post("/api/v1/assets", asset_body("restart-1", "52:54:00:79:00:01")).await;
    assert_eq!(r.status, 201, "{}", r.text);
    rx.wait_for("the first (failing) attempt", |g| !g.is_empty()).await;
    let log = common::eventually("the first attempt to be recorded", 20, || async {
        let log = deliveries(&admin, &hook_id).await;
        let recorded =
            log.len() == 1 && log[0]["attempts"] == 1 && log[0]["attempt_log"].as_array().is_some_and(|a| a.len() == 1);
        if recorded { Ok(log) } else { Err(format!("{log:?}")) }
    })
    .await;
    assert_eq!(log[0]["status"], "pending", "{log:?}");
    assert!(log[0]["next_attempt_at"].is_string(), "{log:?}");
    // A second event committed just before the kill: in the outbox, maybe not yet attempted.
    let r =
        admin.patch(&format!("/api/v1/assets/{}", r.json["id"].as_str().expect("id")), json!({"tags": ["b"]})).await;
    assert_eq!(r.status, 200, "{}", r.text);

    app.kill();
    rx.set(200);
    let app = app.restart().await;
    let admin = app.admin().await;

    let got = rx
        .wait_for("both events delivered after the restart", |g| {
            ["asset.created", "asset.updated"].iter().all(|e| g.iter().any(|r| r.event() == *e && r.answered == 200))
        })
        .await;
    // Once every delivery is recorded as delivered nothing is left to send, and each receipt was
    // taken before its 200 went back: from here the receipts are final. Count one success per id.
    let log = wait_log(&admin, &hook_id, |log| log.iter().all(|d| d["status"] == "delivered")).await;
    let got_after = rx.receipts();
    assert!(got_after.len() >= got.len());
    let mut ids: Vec<String> = got_after.iter().map(Receipt::event_id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 2, "two events: {ids:?}");
    for id in &ids {
        let ok = got_after.iter().filter(|r| &r.event_id() == id && r.answered == 200).count();
        assert_eq!(ok, 1, "event {id} was delivered successfully {ok} times");
    }
    for r in &got_after {
        verify_signature(r, secret);
    }
    let created: Vec<&Receipt> = got_after.iter().filter(|r| r.event() == "asset.created").collect();
    assert_eq!(created.iter().map(|r| r.answered).collect::<Vec<_>>(), [500, 200], "one retry after the restart");
    assert_eq!(created[0].body, created[1].body, "a retry sends the same event");
    let first = log.iter().find(|d| d["event"] == "asset.created").expect("asset.created delivery");
    assert_eq!(first["attempts"], 2, "{first}");
}

/// A broken audit chain is reported to subscribers of `audit.chain_broken`, once per break,
/// without the report itself going through the (broken) chain.
async fn broken_chain_is_reported(backend: Backend) {
    let app = Appliance::start_with(backend, options(&[])).await;
    let admin = app.admin().await;
    let rx = Receiver::start(200).await;
    create_hook(&admin, json!({"url": rx.url, "events": ["audit.chain_broken"], "secret": "chain-watch-secret"})).await;
    for n in 1..=3 {
        let r = admin.post("/api/v1/assets", asset_body(&format!("chain-{n}"), &format!("52:54:00:7a:00:0{n}"))).await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    let r = admin.get("/api/v1/audit/verify").await;
    assert_eq!(r.json["valid"], true, "{}", r.text);

    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&app.database_url).await.expect("connect to the appliance's database");
    let victim: String = sqlx::query_scalar("SELECT id FROM audit_log WHERE seq = 2").fetch_one(&pool).await.unwrap();
    sqlx::query("UPDATE audit_log SET actor_name = 'mallory' WHERE seq = 2").execute(&pool).await.unwrap();
    pool.close().await;

    let before = admin.get("/api/v1/audit/verify").await.json["entries"].clone();
    for _ in 0..2 {
        let r = admin.get("/api/v1/audit/verify").await;
        assert_eq!((r.json["valid"].clone(), r.json["first_broken"].clone()), (json!(false), json!(victim)));
    }
    let got = rx.wait_for("audit.chain_broken", |g| !g.is_empty()).await;
    let body = got[0].json();
    assert_eq!(got[0].event(), "audit.chain_broken");
    assert_eq!(body["data"]["first_broken"], victim.as_str(), "{body}");
    assert!(body["data"]["reason"].is_string(), "{body}");
    verify_signature(&got[0], "chain-watch-secret");
    // Reporting did not append to the chain.
    assert_eq!(admin.get("/api/v1/audit/verify").await.json["entries"], before);
    // The same break is reported once: a later event (a ping) arrives, no second report.
    let hook = admin.get("/api/v1/webhooks").await.json["data"][0]["id"].as_str().expect("id").to_string();
    let r = admin.post(&format!("/api/v1/webhooks/{hook}/test"), json!({})).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let got = rx.wait_for("the ping", |g| g.iter().any(|r| r.event() == "webhook.ping")).await;
    assert_eq!(got.iter().filter(|r| r.event() == "audit.chain_broken").count(), 1);
}

both_backends!(
    broken_chain_is_reported,
    webhook_crud_and_validation,
    signed_deliveries_follow_subscriptions,
    retries_back_off_then_disable,
    delivery_survives_a_restart_mid_retry
);
