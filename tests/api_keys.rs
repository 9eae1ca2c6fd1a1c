//! API keys: shown once, stored hashed, accepted as Bearer and X-API-Key, revocable, expiring,
//! never able to mint keys or users.

mod common;

use common::{Appliance, Auth, Backend, eventually};
use serde_json::json;

async fn key_is_shown_once_and_works_both_ways(backend: Backend) {
    let app = Appliance::start(backend).await;
    let admin = app.admin().await;
    let r = admin.post("/api/v1/api-keys", json!({"name": "ci", "scopes": ["assets:read", "assets:write"]})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let key = r.json["key"].as_str().unwrap().to_string();
    let id = r.json["id"].as_str().unwrap().to_string();
    assert!(key.starts_with("ib_") && id.starts_with("key_"));
    assert_eq!(r.json["scopes"], json!(["assets:read", "assets:write"]));

    // Never again: not in the list, not in the single read.
    let list = admin.get("/api/v1/api-keys").await;
    assert_eq!(list.json["meta"]["total"], 1);
    assert!(!list.text.contains(&key) && list.json["data"][0].get("key").is_none());
    let one = admin.get(&format!("/api/v1/api-keys/{id}")).await;
    assert_eq!(one.status, 200);
    assert!(!one.text.contains(&key));

    for auth in [Auth::Bearer(key.clone()), Auth::XApiKey(key.clone())] {
        let c = admin.with_auth(auth.clone());
        let r = c.get("/api/v1/assets").await;
        assert_eq!(r.status, 200, "{auth:?}: {}", r.text);
        let me = c.get("/api/v1/auth/me").await;
        assert_eq!(me.json["auth"]["type"], "api_key");
        assert_eq!(me.json["auth"]["key_id"], id.as_str());
    }
    // A tampered key is refused.
    let mut tampered = key.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'a' { 'b' } else { 'a' });
    let r = admin.with_auth(Auth::Bearer(tampered)).get("/api/v1/assets").await;
    assert_eq!(r.status, 401);
    assert_eq!(r.error_code(), "INVALID_API_KEY");

    // last_used_at is recorded (asynchronously).
    eventually("last_used_at to be set", 5, || async {
        let key = admin.get(&format!("/api/v1/api-keys/{id}")).await;
        if key.json["last_used_at"].is_string() { Ok(()) } else { Err(key.text) }
    })
    .await;

    // Revocation is immediate.
    let r = admin.delete(&format!("/api/v1/api-keys/{id}")).await;
    assert_eq!(r.status, 204);
    let r = admin.with_auth(Auth::XApiKey(key)).get("/api/v1/assets").await;
    assert_eq!(r.status, 401);
    assert_eq!(r.error_code(), "API_KEY_REVOKED");
    let again = admin.delete(&format!("/api/v1/api-keys/{id}")).await;
    assert_eq!(again.status, 409);
}

async fn keys_cannot_manage_users_or_keys(backend: Backend) {
    let app = Appliance::start(backend).await;
    let admin = app.admin().await;
    let key = admin.api_key(&["admin", "assets:read"]).await;
    let r = key.post("/api/v1/api-keys", json!({"name": "child", "scopes": ["assets:read"]})).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.error_code(), "SESSION_REQUIRED");
    let r =
        key.post("/api/v1/users", json!({"username": "x", "password": "long-enough-password", "role": "admin"})).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.error_code(), "SESSION_REQUIRED");
    let r = key.get("/api/v1/users").await;
    assert_eq!(r.status, 403);
    let total = admin.get("/api/v1/users").await.json["meta"]["total"].clone();
    assert_eq!(total, 1, "nothing was created");
}

async fn expiry_is_enforced(backend: Backend) {
    let app = Appliance::start(backend).await;
    let admin = app.admin().await;
    let past = admin
        .post(
            "/api/v1/api-keys",
            json!({"name": "old", "scopes": ["assets:read"], "expires_at": "2020-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(past.status, 422);
    assert_eq!(past.json["details"]["field"], "expires_at");

    let soon = (chrono::Utc::now() + chrono::Duration::seconds(2)).to_rfc3339();
    let r =
        admin.post("/api/v1/api-keys", json!({"name": "short", "scopes": ["assets:read"], "expires_at": soon})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let c = admin.with_auth(Auth::Bearer(r.json["key"].as_str().unwrap().to_string()));
    assert_eq!(c.get("/api/v1/assets").await.status, 200);
    let expired = eventually("the key to expire", 10, || async {
        let r = c.get("/api/v1/assets").await;
        if r.status == 401 { Ok(r.error_code()) } else { Err(format!("{} {}", r.status, r.text)) }
    })
    .await;
    assert_eq!(expired, "API_KEY_EXPIRED");
}

async fn users_see_only_their_keys(backend: Backend) {
    let app = Appliance::start(backend).await;
    let admin = app.admin().await;
    let op = app.user(&admin, "op1", "operator").await;
    let _admin_key = admin.api_key(&["assets:read"]).await;
    let r = op.post("/api/v1/api-keys", json!({"name": "mine", "scopes": ["assets:write"]})).await;
    assert_eq!(r.status, 201);
    let admin_list = admin.get("/api/v1/api-keys").await;
    assert_eq!(admin_list.json["meta"]["total"], 2);
    let op_list = op.get("/api/v1/api-keys").await;
    assert_eq!(op_list.json["meta"]["total"], 1);
    let admin_key_id =
        admin_list.json["data"].as_array().unwrap().iter().find(|k| k["name"] == "test key").unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
    assert_eq!(op.delete(&format!("/api/v1/api-keys/{admin_key_id}")).await.status, 404);
    let r = op.post("/api/v1/api-keys", json!({"name": "escalate", "scopes": ["admin"]})).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.json["details"]["missing_scope"], "admin");
}

both_backends!(
    key_is_shown_once_and_works_both_ways,
    keys_cannot_manage_users_or_keys,
    expiry_is_enforced,
    users_see_only_their_keys
);
