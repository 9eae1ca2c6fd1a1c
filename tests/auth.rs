//! Identity: login, cookies, lockout, TOTP MFA, refresh-token rotation and reuse detection,
//! logout, and the users API's guard rails — against the real binary on both backends.

mod common;

use common::{ADMIN_PASSWORD, Appliance, Auth, Backend, Client, Options};
use serde_json::json;

fn totp_code(secret_b32: &str, offset_secs: i64) -> String {
    let secret = totp_rs::Secret::try_from_base32(secret_b32).expect("base32 secret");
    let totp = totp_rs::Builder::new().with_secret(secret).build().expect("totp");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs() as i64;
    totp.generate((now + offset_secs) as u64).to_string()
}

async fn login_sets_cookies_and_session_works(backend: Backend) {
    let app = Appliance::start(backend).await;
    let c = app.client();
    let r = c.post("/api/v1/auth/login", json!({"username": "admin", "password": ADMIN_PASSWORD})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.json["token"].as_str().unwrap().starts_with("ibt_"));
    assert!(r.json["expires_in"].as_u64().unwrap() > 0);
    assert_eq!(r.json["user"]["username"], "admin");
    assert!(r.json["user"].get("password_hash").is_none());
    let cookies: Vec<String> =
        r.headers.get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_string()).collect();
    let session = cookies.iter().find(|c| c.starts_with("ironbay_session=")).expect("session cookie");
    assert!(session.contains("HttpOnly") && session.contains("SameSite=Lax"), "{session}");
    assert!(!session.contains("Max-Age"), "no remember_me: browser-session cookie: {session}");
    let refresh = cookies.iter().find(|c| c.starts_with("ironbay_refresh=")).expect("refresh cookie");
    assert!(refresh.contains("HttpOnly"), "{refresh}");

    // The cookie alone authenticates (same cookie jar, no bearer).
    let me = c.get("/api/v1/auth/me").await;
    assert_eq!(me.status, 200, "{}", me.text);
    assert_eq!(me.json["auth"]["type"], "session");

    // remember_me makes the cookie persistent.
    let r = app
        .client()
        .post("/api/v1/auth/login", json!({"username": "admin", "password": ADMIN_PASSWORD, "remember_me": true}))
        .await;
    let session = r
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("ironbay_session="))
        .unwrap();
    assert!(session.contains("Max-Age=2592000"), "{session}");
}

async fn bad_credentials_are_refused_alike(backend: Backend) {
    let app = Appliance::start(backend).await;
    let c = app.client();
    let wrong = c.post("/api/v1/auth/login", json!({"username": "admin", "password": "not-the-password"})).await;
    let unknown = c.post("/api/v1/auth/login", json!({"username": "nobody", "password": "not-the-password"})).await;
    assert_eq!((wrong.status, unknown.status), (401, 401));
    assert_eq!(wrong.error_code(), "INVALID_CREDENTIALS");
    assert_eq!(wrong.json["error"], unknown.json["error"], "no user enumeration");
    // Both failures are in the audit log.
    let admin = app.admin().await;
    let audit = admin.get("/api/v1/audit?action=auth.login&outcome=failure").await;
    assert_eq!(audit.json["meta"]["total"], 2, "{}", audit.text);
}

async fn repeated_failures_lock_the_account(backend: Backend) {
    let opts = Options::default()
        .env("IRONBAY_AUTH__LOCKOUT_THRESHOLD", "3")
        .env("IRONBAY_AUTH__LOCKOUT_BASE_SECS", "60")
        .env("IRONBAY_RATE_LIMIT__LOGIN_PER_MINUTE", "1000");
    let app = Appliance::start_with(backend, opts).await;
    let c = app.client();
    for _ in 0..3 {
        let r = c.post("/api/v1/auth/login", json!({"username": "admin", "password": "wrong-password-x"})).await;
        assert_eq!(r.status, 401);
    }
    // Now even the right password is refused until the lock expires.
    let r = c.post("/api/v1/auth/login", json!({"username": "admin", "password": ADMIN_PASSWORD})).await;
    assert_eq!(r.status, 429, "{}", r.text);
    assert_eq!(r.error_code(), "ACCOUNT_LOCKED");
    let retry: u64 = r.header("retry-after").expect("Retry-After").parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
}

async fn totp_mfa_end_to_end(backend: Backend) {
    let app = Appliance::start(backend).await;
    let admin = app.admin().await;
    let op = app.user(&admin, "mfa-op", "operator").await;
    let setup = op.post("/api/v1/auth/mfa/setup", json!({})).await;
    assert_eq!(setup.status, 200, "{}", setup.text);
    let secret = setup.json["secret"].as_str().unwrap().to_string();
    assert!(setup.json["otpauth_url"].as_str().unwrap().starts_with("otpauth://totp/"));

    // A wrong code does not enable it.
    let bad = op.post("/api/v1/auth/mfa/enable", json!({"totp_code": "000000"})).await;
    assert_eq!(bad.status, 422, "{}", bad.text);
    let ok = op.post("/api/v1/auth/mfa/enable", json!({"totp_code": totp_code(&secret, 0)})).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_eq!(ok.json["mfa_enabled"], true);

    let c = app.client();
    let pw = "mfa-op-password-123";
    let r = c.post("/api/v1/auth/login", json!({"username": "mfa-op", "password": pw})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json, json!({"requires_mfa": true, "mfa_type": "totp"}));
    assert!(r.headers.get("set-cookie").is_none(), "no session before the second factor");

    let r = c.post("/api/v1/auth/login", json!({"username": "mfa-op", "password": pw, "totp_code": "123456"})).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.error_code(), "INVALID_TOTP");

    // The next step's code (within the accepted skew; the current step was spent on enabling).
    let code = totp_code(&secret, 30);
    let r = c.post("/api/v1/auth/login", json!({"username": "mfa-op", "password": pw, "totp_code": code})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.json["token"].as_str().unwrap().starts_with("ibt_"));
    // The same code never works twice.
    let r = c.post("/api/v1/auth/login", json!({"username": "mfa-op", "password": pw, "totp_code": code})).await;
    assert_eq!(r.status, 401, "replayed TOTP code accepted: {}", r.text);
}

async fn refresh_rotates_and_reuse_revokes_the_family(backend: Backend) {
    let app = Appliance::start(backend).await;
    let c = app.client();
    let r = c.post("/api/v1/auth/login", json!({"username": "admin", "password": ADMIN_PASSWORD})).await;
    let t1 = r.json["token"].as_str().unwrap().to_string();
    let r1 = r.json["refresh_token"].as_str().unwrap().to_string();

    let bare = Client::new(&app.base);
    let r = bare.post("/api/v1/auth/refresh", json!({"refresh_token": r1})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let t2 = r.json["token"].as_str().unwrap().to_string();
    let r2 = r.json["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(r1, r2);
    assert_ne!(t1, t2);
    let with_t2 = bare.with_auth(Auth::Bearer(t2.clone()));
    assert_eq!(with_t2.get("/api/v1/auth/me").await.status, 200);

    // The refresh cookie works on its own too (the jar of the client that logged in).
    let r = c.call(reqwest::Method::POST, "/api/v1/auth/refresh", None).await;
    assert_eq!(r.status, 401, "the cookie still holds the spent r1, which is a reuse: {}", r.text);
    assert_eq!(r.error_code(), "REFRESH_TOKEN_REUSED");

    // The whole family is gone: the access token from the rotation and the newest refresh token.
    let me = with_t2.get("/api/v1/auth/me").await;
    assert_eq!(me.status, 401);
    assert_eq!(me.error_code(), "SESSION_REVOKED");
    let r = bare.post("/api/v1/auth/refresh", json!({"refresh_token": r2})).await;
    assert_eq!(r.status, 401);
    let session_cookie = c.get("/api/v1/auth/me").await;
    assert_eq!(session_cookie.status, 401, "the session cookie is revoked with the family");

    // A fresh login rotates through the cookie path.
    let c2 = app.client();
    let _ = c2.post("/api/v1/auth/login", json!({"username": "admin", "password": ADMIN_PASSWORD})).await;
    let r = c2.call(reqwest::Method::POST, "/api/v1/auth/refresh", None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = c2.call(reqwest::Method::POST, "/api/v1/auth/refresh", None).await;
    assert_eq!(r.status, 200, "the jar now holds the rotated token: {}", r.text);

    let audit = app.admin().await.get("/api/v1/audit?action=auth.refresh_reuse").await;
    assert_eq!(audit.json["meta"]["total"], 1, "{}", audit.text);
}

async fn logout_revokes_the_session(backend: Backend) {
    let app = Appliance::start(backend).await;
    let admin = app.admin().await;
    let r = admin.call(reqwest::Method::POST, "/api/v1/auth/logout", None).await;
    assert_eq!(r.status, 204, "{}", r.text);
    let me = admin.get("/api/v1/auth/me").await;
    assert_eq!(me.status, 401);
    assert_eq!(me.error_code(), "SESSION_REVOKED");
    let anon = app.client().get("/api/v1/auth/me").await;
    assert_eq!(anon.status, 401);
    assert_eq!(anon.error_code(), "UNAUTHENTICATED");
    assert!(anon.header("www-authenticate").is_some());
}

async fn users_guard_rails(backend: Backend) {
    let app = Appliance::start(backend).await;
    let admin = app.admin().await;
    let me = admin.get("/api/v1/auth/me").await;
    let admin_id = me.json["id"].as_str().unwrap().to_string();

    let dup = admin
        .post("/api/v1/users", json!({"username": "admin", "password": "another-password-1", "role": "viewer"}))
        .await;
    assert_eq!(dup.status, 409);
    assert_eq!(dup.error_code(), "USERNAME_TAKEN");
    let weak = admin.post("/api/v1/users", json!({"username": "weak", "password": "short", "role": "viewer"})).await;
    assert_eq!(weak.status, 422);
    assert_eq!(weak.json["details"]["field"], "password");

    let r = admin.delete(&format!("/api/v1/users/{admin_id}")).await;
    assert_eq!(r.status, 409);
    assert_eq!(r.error_code(), "CANNOT_DELETE_SELF");
    let r = admin.patch(&format!("/api/v1/users/{admin_id}"), json!({"role": "viewer"})).await;
    assert_eq!(r.status, 409);
    assert_eq!(r.error_code(), "LAST_ADMIN");

    // A password change ends the user's sessions.
    let v = app.user(&admin, "viewer1", "viewer").await;
    let vid = v.get("/api/v1/auth/me").await.json["id"].as_str().unwrap().to_string();
    let r = admin.patch(&format!("/api/v1/users/{vid}"), json!({"password": "a-brand-new-password"})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(v.get("/api/v1/auth/me").await.status, 401);
    let v2 = app.client().login("viewer1", "a-brand-new-password").await;
    assert_eq!(v2.get("/api/v1/auth/me").await.json["role"], "viewer");

    // Disabled users cannot log in.
    let r = admin.patch(&format!("/api/v1/users/{vid}"), json!({"disabled": true})).await;
    assert_eq!(r.status, 200);
    let r = app
        .client()
        .post("/api/v1/auth/login", json!({"username": "viewer1", "password": "a-brand-new-password"}))
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(r.error_code(), "USER_DISABLED");

    let r = admin.delete(&format!("/api/v1/users/{vid}")).await;
    assert_eq!(r.status, 204);
    assert_eq!(admin.get(&format!("/api/v1/users/{vid}")).await.status, 404);
}

both_backends!(
    login_sets_cookies_and_session_works,
    bad_credentials_are_refused_alike,
    repeated_failures_lock_the_account,
    totp_mfa_end_to_end,
    refresh_rotates_and_reuse_revokes_the_family,
    logout_revokes_the_session,
    users_guard_rails,
);
