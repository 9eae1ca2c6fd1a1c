//! PSKs (NetKey shape) over real HTTP on both backends: create (given and generated values and
//! names), list without values, get with value (audited), PUT update, delete, rotation with a
//! grace period, expiry, the VLAN ↔ VNI rule, each bad-input class, values sealed at rest, and
//! the scopes that guard reading values and deleting.

mod common;

use common::{Appliance, Backend, Client, Options, Resp};
use serde_json::{Value, json};

async fn start_with(backend: Backend, extra: &[(&str, &str)]) -> Appliance {
    let mut opts = Options::default()
        .env("IRONBAY_RATE_LIMIT__API_PER_MINUTE", "100000")
        .env("IRONBAY_RATE_LIMIT__API_BURST", "100000");
    for (k, v) in extra {
        opts = opts.env(k, v);
    }
    Appliance::start_with(backend, opts).await
}

async fn vni(c: &Client, name: &str, cidr: &str, number: i64) -> String {
    let r = c.post("/api/v1/vnis", json!({"name": name, "cidr": cidr, "vni": number})).await;
    assert_eq!(r.status, 201, "VNI: {}", r.text);
    r.json["id"].as_str().expect("id").to_string()
}

async fn create(c: &Client, body: Value) -> Value {
    let r = c.post("/api/v1/psks", body.clone()).await;
    assert_eq!(r.status, 201, "create {body}: {}", r.text);
    r.json
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str().unwrap_or_else(|| panic!("no string `{k}` in {v}"))
}

fn expect_field(label: &str, r: &Resp, status: u16, code: &str, field: &str) {
    assert_eq!(r.status, status, "{label}: {}", r.text);
    assert_eq!(r.error_code(), code, "{label}: {}", r.text);
    assert_eq!(r.json["details"]["field"], field, "{label}: {}", r.text);
}

async fn list(c: &Client, query: &str) -> Resp {
    let r = c.get(&format!("/api/v1/psks{query}")).await;
    assert_eq!(r.status, 200, "list {query}: {}", r.text);
    r
}

async fn total(c: &Client) -> i64 {
    list(c, "").await.json["total"].as_i64().expect("total")
}

async fn audit_actions(c: &Client, target_id: &str) -> Vec<String> {
    let r = c.get(&format!("/api/v1/audit?target_id={target_id}&per_page=100")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.json["data"].as_array().expect("data").iter().map(|e| e["action"].as_str().unwrap_or("").to_string()).collect()
}

fn hours_from_now(ts: &str) -> f64 {
    let t = chrono::DateTime::parse_from_rfc3339(ts).unwrap_or_else(|e| panic!("{ts}: {e}"));
    (t.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_seconds() as f64 / 3600.0
}

async fn crud_values_and_audit(backend: Backend) {
    let app = start_with(backend, &[]).await;
    let admin = app.admin().await;
    vni(&admin, "guests", "10.100.0.0/24", 100).await;
    vni(&admin, "staff", "10.200.0.0/24", 200).await;

    // Given name and value (NetKey's example), bound to VLAN 100, expiring in 24 h.
    let a = create(
        &admin,
        json!({"psk_id": "guest-jane-doe", "psk_value": "SecureGuest123", "description": "Guest - Jane Doe",
               "vlan_id": 100, "expires_in_hours": 24}),
    )
    .await;
    let a_id = s(&a, "id").to_string();
    assert!(a_id.starts_with("psk_"), "{a}");
    assert_eq!(a["psk_id"], "guest-jane-doe");
    assert_eq!(a["psk_value"], "SecureGuest123");
    assert_eq!(a["description"], "Guest - Jane Doe");
    assert_eq!(a["vlan_id"], 100);
    assert_eq!(a["enabled"], true);
    assert_eq!(a["status"], "active");
    assert_eq!(a["expired"], false);
    let h = hours_from_now(s(&a, "expires"));
    assert!((23.9..=24.0).contains(&h), "expires in {h} h: {a}");

    // Everything generated: a unique name and a CSPRNG value of >= 128 bits (24 alphanumerics).
    let b = create(&admin, json!({})).await;
    let b_value = s(&b, "psk_value").to_string();
    assert!(b_value.len() >= 22 && b_value.chars().all(|c| c.is_ascii_alphanumeric()), "{b}");
    assert!(s(&b, "psk_id").starts_with("psk-"), "{b}");
    assert!(b["vlan_id"].is_null() && b["expires"].is_null() && b["expired"] == false, "{b}");
    let c = create(&admin, json!({"description": "second generated"})).await;
    assert_ne!(c["psk_value"], b["psk_value"]);
    assert_ne!(c["psk_id"], b["psk_id"]);

    // Lists never carry values, in either shape.
    let r = list(&admin, "").await;
    assert_eq!(r.json["total"], 3, "{}", r.text);
    assert_eq!(r.json["meta"]["total"], 3, "{}", r.text);
    assert_eq!(r.json["psks"].as_array().map(Vec::len), Some(3), "{}", r.text);
    assert_eq!(r.json["psks"], r.json["data"]);
    for v in ["SecureGuest123", &b_value, s(&c, "psk_value")] {
        assert!(!r.text.contains(v), "a value is listed: {}", r.text);
    }
    assert!(r.json["psks"].as_array().unwrap().iter().all(|p| p.get("psk_value").is_none()));
    let r = list(&admin, "?vlan_id=100").await;
    assert_eq!(r.json["total"], 1, "{}", r.text);
    assert_eq!(r.json["psks"][0]["id"], a_id.as_str());
    let r = admin.get("/api/v1/psks?status=nonsense").await;
    assert_eq!(r.status, 400, "{}", r.text);

    // GET answers the value, by id or by psk_id, and each read is audited.
    let r = admin.get(&format!("/api/v1/psks/{a_id}")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["psk_value"], "SecureGuest123");
    assert_eq!(r.json["psk_id"], "guest-jane-doe");
    let r = admin.get("/api/v1/psks/guest-jane-doe").await;
    assert_eq!((r.status, r.json["id"].clone()), (200, json!(a_id)), "{}", r.text);
    let actions = audit_actions(&admin, &a_id).await;
    assert_eq!(actions.iter().filter(|a| *a == "psk.read_value").count(), 2, "{actions:?}");
    assert!(actions.contains(&"psk.create".to_string()), "{actions:?}");
    let r = admin.get(&format!("/api/v1/audit?target_id={a_id}&per_page=100")).await;
    assert!(!r.text.contains("SecureGuest123"), "the audit log holds a value: {}", r.text);

    // PUT changes only what it names; the answer carries no value.
    let r = admin
        .call(
            reqwest::Method::PUT,
            &format!("/api/v1/psks/{a_id}"),
            Some(json!({"description": "Updated guest", "vlan_id": 200})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["description"], "Updated guest");
    assert_eq!(r.json["vlan_id"], 200);
    assert_eq!(r.json["psk_id"], "guest-jane-doe");
    assert!(r.json.get("psk_value").is_none(), "{}", r.text);
    let put = |body: Value| {
        let admin = admin.clone();
        let path = format!("/api/v1/psks/{a_id}");
        async move { admin.call(reqwest::Method::PUT, &path, Some(body)).await }
    };
    let r = put(json!({"enabled": false})).await;
    assert_eq!((r.json["enabled"].clone(), r.json["status"].clone()), (json!(false), json!("disabled")), "{}", r.text);
    let r =
        put(json!({"enabled": true, "psk_value": "NewPassphrase-99", "psk_id": "guest-jane", "expires": null})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!((r.json["status"].clone(), r.json["expires"].clone()), (json!("active"), Value::Null), "{}", r.text);
    let r = admin.get("/api/v1/psks/guest-jane").await;
    assert_eq!(r.json["psk_value"], "NewPassphrase-99", "{}", r.text);
    let r = put(json!({"expires": "2099-12-31T23:59:59"})).await;
    assert_eq!(r.json["expires"], "2099-12-31T23:59:59.000000Z", "{}", r.text);
    assert!(audit_actions(&admin, &a_id).await.contains(&"psk.update".to_string()));

    // Values are sealed at rest: no stored column holds one, on either engine...
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&app.database_url).await.expect("connect to the appliance's database");
    let sealed: Vec<Vec<u8>> = sqlx::query_scalar("SELECT value_sealed FROM psks").fetch_all(&pool).await.unwrap();
    assert_eq!(sealed.len(), 3);
    for s in &sealed {
        for v in ["NewPassphrase-99", &b_value, "SecureGuest123"] {
            assert!(!s.windows(v.len()).any(|w| w == v.as_bytes()), "{v} stored in plain text");
        }
    }
    pool.close().await;
    // ...and no SQLite file does (WAL included).
    if backend == Backend::Sqlite {
        for entry in std::fs::read_dir(app.data_dir.path()).expect("data dir").flatten() {
            let bytes = std::fs::read(entry.path()).unwrap_or_default();
            for v in ["NewPassphrase-99", &b_value, "SecureGuest123"] {
                assert!(!bytes.windows(v.len()).any(|w| w == v.as_bytes()), "{v} in plain text in {:?}", entry.path());
            }
        }
    }

    // A VNI that PSKs use as VLAN cannot be deleted under them.
    let staff = admin.get("/api/v1/vnis?per_page=100").await;
    let staff_id = staff.json["data"].as_array().unwrap().iter().find(|v| v["vni"] == 200).unwrap()["id"].clone();
    let r = admin.delete(&format!("/api/v1/vnis/{}", staff_id.as_str().unwrap())).await;
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(r.error_code(), "VNI_IN_USE");

    // Delete answers NetKey's shape; afterwards the PSK is gone.
    let r = admin.delete(&format!("/api/v1/psks/{a_id}")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json, json!({"success": true, "deleted_id": a_id}));
    for path in [format!("/api/v1/psks/{a_id}"), "/api/v1/psks/guest-jane".to_string()] {
        let r = admin.get(&path).await;
        assert_eq!((r.status, r.error_code()), (404, "PSK_NOT_FOUND".to_string()), "{}", r.text);
    }
    let r = admin.delete(&format!("/api/v1/psks/{a_id}")).await;
    assert_eq!(r.status, 404, "{}", r.text);
    assert_eq!(total(&admin).await, 2);
    assert!(audit_actions(&admin, &a_id).await.contains(&"psk.delete".to_string()));
    let r = admin.delete(&format!("/api/v1/vnis/{}", staff_id.as_str().unwrap())).await;
    assert_eq!(r.status, 204, "no PSK left on VLAN 200: {}", r.text);
}

async fn bad_input_is_refused_by_field(backend: Backend) {
    let app = start_with(backend, &[]).await;
    let admin = app.admin().await;
    vni(&admin, "guests", "10.100.0.0/24", 100).await;
    let ok = create(&admin, json!({"psk_id": "taken", "vlan_id": 100})).await;
    let ok_id = s(&ok, "id").to_string();
    let before = admin.get("/api/v1/audit/verify").await.json["entries"].clone();

    let cases: Vec<(&str, Value, u16, &str, &str)> = vec![
        ("VLAN without a VNI", json!({"vlan_id": 300}), 422, "INVALID_FIELD", "vlan_id"),
        ("VLAN out of range", json!({"vlan_id": 0}), 422, "INVALID_FIELD", "vlan_id"),
        ("VLAN of the wrong type", json!({"vlan_id": "100"}), 422, "INVALID_FIELD", "vlan_id"),
        ("value too short", json!({"psk_value": "short7!"}), 422, "INVALID_FIELD", "psk_value"),
        ("value too long", json!({"psk_value": "x".repeat(65)}), 422, "INVALID_FIELD", "psk_value"),
        ("value with a control character", json!({"psk_value": "abc\ndefgh"}), 422, "INVALID_FIELD", "psk_value"),
        ("expiry in the past", json!({"expires": "2001-01-01T00:00:00Z"}), 422, "INVALID_FIELD", "expires"),
        ("expiry unreadable", json!({"expires": "next tuesday"}), 422, "INVALID_FIELD", "expires"),
        (
            "both expiry forms",
            json!({"expires": "2099-01-01T00:00:00", "expires_in_hours": 2}),
            422,
            "INVALID_FIELD",
            "expires_in_hours",
        ),
        ("zero hours", json!({"expires_in_hours": 0}), 422, "INVALID_FIELD", "expires_in_hours"),
        ("bad psk_id", json!({"psk_id": "has space"}), 422, "INVALID_FIELD", "psk_id"),
        ("psk_id shaped like an id", json!({"psk_id": "psk_0123456789abcdef"}), 422, "INVALID_FIELD", "psk_id"),
        ("unknown field", json!({"vlan": 100}), 422, "UNKNOWN_FIELD", "vlan"),
        ("duplicate psk_id", json!({"psk_id": "taken"}), 409, "DUPLICATE_PSK_ID", "psk_id"),
    ];
    for (label, body, status, code, field) in cases {
        let r = admin.post("/api/v1/psks", body).await;
        expect_field(label, &r, status, code, field);
        assert!(r.json["error"].as_str().unwrap_or("").contains(field), "{label}: message names {field}: {}", r.text);
        if label == "value too short" {
            assert!(!r.text.contains("short7!"), "the error echoes the value: {}", r.text);
        }
    }
    let path = format!("/api/v1/psks/{ok_id}");
    for (label, body, field) in [
        ("PUT VLAN without a VNI", json!({"vlan_id": 4094}), "vlan_id"),
        ("PUT value too short", json!({"psk_value": "1234"}), "psk_value"),
        ("PUT expiry in the past", json!({"expires": "2000-01-01"}), "expires"),
    ] {
        let r = admin.call(reqwest::Method::PUT, &path, Some(body)).await;
        expect_field(label, &r, 422, "INVALID_FIELD", field);
    }
    let r = admin.call(reqwest::Method::PUT, "/api/v1/psks/psk_0000000000000000", Some(json!({}))).await;
    assert_eq!((r.status, r.error_code()), (404, "PSK_NOT_FOUND".to_string()), "{}", r.text);
    let r = admin.post(&format!("{path}/rotate"), json!({"psk_value": "1234567"})).await;
    expect_field("rotate to a short value", &r, 422, "INVALID_FIELD", "psk_value");
    let r = admin.post(&format!("{path}/rotate"), json!({"grace_hours": -1})).await;
    expect_field("negative grace", &r, 422, "INVALID_FIELD", "grace_hours");

    // Nothing changed: one PSK, as it was, and no audit entry for the refusals.
    assert_eq!(total(&admin).await, 1);
    let r = admin.get(&path).await;
    assert_eq!((r.json["vlan_id"].clone(), r.json["psk_value"].clone()), (json!(100), ok["psk_value"].clone()));
    let after = admin.get("/api/v1/audit/verify").await.json["entries"].clone();
    assert_eq!(after.as_u64(), before.as_u64().map(|n| n + 1), "only the GET above was audited");
}

async fn rotation_and_expiry(backend: Backend) {
    let app = start_with(backend, &[("IRONBAY_PSKS__ROTATION_GRACE_HOURS", "2")]).await;
    let admin = app.admin().await;
    let p = create(&admin, json!({"psk_id": "rotating", "psk_value": "first-value-1"})).await;
    let id = s(&p, "id").to_string();

    // Rotate with no body: a generated value, the old one valid for the configured 2 h.
    let r = admin.raw(reqwest::Method::POST, &format!("/api/v1/psks/{id}/rotate"), None, Vec::new()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let second = s(&r.json, "psk_value").to_string();
    assert!(second.len() >= 22 && second != "first-value-1", "{}", r.text);
    let h = hours_from_now(s(&r.json, "previous_valid_until"));
    assert!((1.9..=2.0).contains(&h), "grace {h} h: {}", r.text);
    assert!(r.json.get("previous_psk_value").is_none(), "rotate answers only the new value: {}", r.text);
    let g = admin.get(&format!("/api/v1/psks/{id}")).await;
    assert_eq!(g.json["psk_value"], second.as_str(), "{}", g.text);
    assert_eq!(g.json["previous_psk_value"], "first-value-1", "the old value is valid in grace: {}", g.text);
    assert_eq!(g.json["previous_valid_until"], r.json["previous_valid_until"]);

    // A given value and a per-request grace of 0: the previous value is no longer valid at all.
    let r =
        admin.post(&format!("/api/v1/psks/{id}/rotate"), json!({"psk_value": "third-value-3", "grace_hours": 0})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["psk_value"], "third-value-3");
    let g = admin.get("/api/v1/psks/rotating").await;
    assert_eq!(g.json["psk_value"], "third-value-3");
    assert!(g.json.get("previous_psk_value").is_none() && g.json["previous_valid_until"].is_null(), "{}", g.text);
    let r = admin.post(&format!("/api/v1/psks/{id}/rotate"), json!({"grace_hours": 48})).await;
    assert!((47.9..=48.0).contains(&hours_from_now(s(&r.json, "previous_valid_until"))), "{}", r.text);
    let actions = audit_actions(&admin, &id).await;
    assert_eq!(actions.iter().filter(|a| *a == "psk.rotate").count(), 3, "{actions:?}");
    assert!(!admin.get(&format!("/api/v1/audit?target_id={id}")).await.text.contains("third-value-3"));

    // Expiry: a PSK that expires in two seconds is reported expired once the time passes, by list
    // and get, and cannot be rotated (its values are not valid).
    let soon = chrono::Utc::now() + chrono::Duration::seconds(2);
    let e = create(&admin, json!({"psk_id": "short-lived", "expires": soon.to_rfc3339()})).await;
    assert_eq!(e["status"], "active", "{e}");
    let r = common::eventually("the PSK to report expired", 20, || async {
        let r = admin.get("/api/v1/psks/short-lived").await;
        if r.json["expired"] == true { Ok(r) } else { Err(r.text) }
    })
    .await;
    assert_eq!(r.json["status"], "expired", "{}", r.text);
    let r = list(&admin, "?status=expired").await;
    assert_eq!((r.json["total"].clone(), r.json["psks"][0]["psk_id"].clone()), (json!(1), json!("short-lived")));
    let r = list(&admin, "?status=active").await;
    assert_eq!((r.json["total"].clone(), r.json["psks"][0]["psk_id"].clone()), (json!(1), json!("rotating")));
    let r = admin.post("/api/v1/psks/short-lived/rotate", json!({})).await;
    assert_eq!((r.status, r.error_code()), (409, "PSK_NOT_ACTIVE".to_string()), "{}", r.text);
    // Extending the expiry makes it active again; disabling wins over everything.
    let r = admin.call(reqwest::Method::PUT, "/api/v1/psks/short-lived", Some(json!({"expires_in_hours": 1}))).await;
    assert_eq!((r.json["status"].clone(), r.json["expired"].clone()), (json!("active"), json!(false)), "{}", r.text);
    let r = admin.call(reqwest::Method::PUT, "/api/v1/psks/short-lived", Some(json!({"enabled": false}))).await;
    assert_eq!(r.json["status"], "disabled", "{}", r.text);
    let r = list(&admin, "?enabled=false").await;
    assert_eq!(r.json["total"], 1, "{}", r.text);
}

async fn scopes_guard_values_and_deletion(backend: Backend) {
    let app = start_with(backend, &[]).await;
    let admin = app.admin().await;
    let operator = app.user(&admin, "psk-operator", "operator").await;
    let viewer = app.user(&admin, "psk-viewer", "viewer").await;
    let p = create(&operator, json!({"psk_value": "operator-made-1"})).await;
    let path = format!("/api/v1/psks/{}", s(&p, "id"));
    let r = operator.get(&path).await;
    assert_eq!(r.json["psk_value"], "operator-made-1", "operators read values (psks:read): {}", r.text);
    for (who, c, method, scope) in [
        ("viewer", &viewer, reqwest::Method::GET, "psks:read"),
        ("viewer", &viewer, reqwest::Method::DELETE, "psks:delete"),
        ("operator", &operator, reqwest::Method::DELETE, "psks:delete"),
    ] {
        let r = c.call(method.clone(), &path, None).await;
        assert_eq!((r.status, r.error_code()), (403, "INSUFFICIENT_SCOPE".to_string()), "{who} {method}: {}", r.text);
        assert_eq!(r.json["details"]["missing_scope"], scope, "{}", r.text);
    }
    // A key with psks:read alone reads the value (audited under the key) but cannot write.
    let key = admin.api_key(&["psks:read"]).await;
    let r = key.get(&path).await;
    assert_eq!(r.json["psk_value"], "operator-made-1", "{}", r.text);
    let r = key.post("/api/v1/psks", json!({})).await;
    assert_eq!(r.json["details"]["missing_scope"], "psks:write", "{}", r.text);
    let r = admin.get("/api/v1/audit?action=psk.read_value&actor=test%20key").await;
    assert_eq!(r.json["meta"]["total"], 1, "{}", r.text);
    let r = admin.delete(&path).await;
    assert_eq!(r.status, 200, "admins hold psks:delete: {}", r.text);
}

both_backends!(
    crud_values_and_audit,
    bad_input_is_refused_by_field,
    rotation_and_expiry,
    scopes_guard_values_and_deletion
);
