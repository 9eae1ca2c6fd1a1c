//! Rate limits: every response carries X-RateLimit-*; a key that exceeds its budget gets 429
//! with Retry-After while other keys are unaffected; logins are limited per source address.

mod common;

use common::{ADMIN_PASSWORD, Appliance, Backend, Options};
use serde_json::json;

async fn per_key_budget_and_headers(backend: Backend) {
    let opts =
        Options::default().env("IRONBAY_RATE_LIMIT__API_PER_MINUTE", "6").env("IRONBAY_RATE_LIMIT__API_BURST", "6");
    let app = Appliance::start_with(backend, opts).await;
    let admin = app.admin().await;
    // The admin session has its own bucket: two calls to make keys.
    let k1 = admin.api_key(&["assets:read"]).await;
    let k2 = admin.api_key(&["assets:read"]).await;

    let mut remaining = Vec::new();
    for _ in 0..6 {
        let r = k1.get("/api/v1/assets").await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.header("x-ratelimit-limit").as_deref(), Some("6"));
        assert!(r.header("x-ratelimit-reset").unwrap().parse::<u64>().unwrap() <= 60);
        remaining.push(r.header("x-ratelimit-remaining").unwrap().parse::<u32>().unwrap());
    }
    assert_eq!(remaining, [5, 4, 3, 2, 1, 0]);
    let r = k1.get("/api/v1/assets").await;
    assert_eq!(r.status, 429);
    assert_eq!(r.error_code(), "RATE_LIMITED");
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=10).contains(&retry), "one token comes back every 10 s: {retry}");
    assert_eq!(r.header("x-ratelimit-remaining").as_deref(), Some("0"));

    // Another key has its own bucket.
    let r = k2.get("/api/v1/assets").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-ratelimit-remaining").as_deref(), Some("5"));

    // Headers are on errors and anonymous answers too.
    let anon = app.client().get("/api/v1/assets").await;
    assert_eq!(anon.status, 401);
    assert!(anon.header("x-ratelimit-limit").is_some());
    let missing = k2.get("/api/v1/nope").await;
    assert_eq!(missing.status, 404);
    assert!(missing.header("x-ratelimit-remaining").is_some());
}

async fn logins_are_limited_per_source(backend: Backend) {
    let opts = Options::default().env("IRONBAY_RATE_LIMIT__LOGIN_PER_MINUTE", "3");
    let app = Appliance::start_with(backend, opts).await;
    let c = app.client();
    for _ in 0..3 {
        let r = c.post("/api/v1/auth/login", json!({"username": "admin", "password": "wrong-password-1"})).await;
        assert_eq!(r.status, 401);
        assert_eq!(r.header("x-ratelimit-limit").as_deref(), Some("3"));
    }
    // The fourth attempt is refused before the password is even checked, right or wrong.
    let r = c.post("/api/v1/auth/login", json!({"username": "admin", "password": ADMIN_PASSWORD})).await;
    assert_eq!(r.status, 429, "{}", r.text);
    assert_eq!(r.error_code(), "RATE_LIMITED");
    assert!(r.header("retry-after").unwrap().parse::<u64>().unwrap() >= 1);
}

both_backends!(per_key_budget_and_headers, logins_are_limited_per_source);
