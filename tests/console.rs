//! The console's frame over real HTTP: login (with and without TOTP), the session cookie, CSRF on
//! every form, logout, the role-aware navigation, security headers and the live event stream.

mod common;

use common::console::{Console, csrf_of};
use common::{ADMIN_PASSWORD, Appliance, Backend};

fn totp_code(secret_b32: &str, offset_secs: i64) -> String {
    let secret = totp_rs::Secret::try_from_base32(secret_b32).expect("base32 secret");
    let totp = totp_rs::Builder::new().with_secret(secret).build().expect("totp");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs() as i64;
    totp.generate((now + offset_secs) as u64).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_logout_and_csrf() {
    let app = Appliance::start(Backend::Sqlite).await;

    // Not logged in: every page leads to the login form, remembering where it was going.
    let mut anon = Console::anonymous(&app.base);
    let p = anon.get("/?view=compact").await;
    assert_eq!(p.status, 303);
    assert_eq!(p.location.as_deref(), Some("/login?next=%2F%3Fview%3Dcompact"));

    // A wrong password: the form again, with a readable message and the username kept.
    let p = anon.login_form("admin", "not-the-password").await;
    assert_eq!(p.status, 401);
    p.has("Wrong username or password.").has("value=\"admin\"");

    // A login form without its token (cross-site) is refused before the password is checked.
    let p = anon.post_fields("/login", &[("username", "admin"), ("password", ADMIN_PASSWORD)]).await;
    assert_eq!(p.status, 403, "{}", p.html);

    let mut c = Console::login(&app.base, "admin", ADMIN_PASSWORD).await;
    let home = c.get("/").await;
    home.has("<h1>Dashboard</h1>").has("href=\"/users\"");
    assert!(!c.csrf.is_empty());
    let r = c.http.get(format!("{}/", app.base)).send().await.unwrap();
    let csp = r.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert_eq!(r.headers()["cache-control"], "no-store");

    // A forged POST (no token, or another session's token) is refused and changes nothing.
    let p = c.post_fields("/logout", &[]).await;
    assert_eq!(p.status, 403);
    p.has("CSRF");
    let p = c.post_fields("/logout", &[("_csrf", "0123456789abcdef")]).await;
    assert_eq!(p.status, 403);
    assert_eq!(c.get("/").await.status, 200, "the session survives a refused forgery");

    // Logout ends the session server-side: the old cookie no longer opens pages.
    let p = c.post("/logout", &[]).await;
    assert_eq!(p.status, 303);
    assert_eq!(p.location.as_deref(), Some("/login?reason=logout"));
    let p = c.get("/").await;
    assert_eq!(p.status, 303, "after logout: {}", p.html);

    // Unknown pages: the console's 404, not the API's JSON; the API keeps its JSON.
    let r = reqwest::Client::new()
        .get(format!("{}/no-such-page", app.base))
        .header("accept", "text/html,application/xhtml+xml")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.text().await.unwrap().contains("There is no page at this address."));
    let r = reqwest::get(format!("{}/no-such-page", app.base)).await.unwrap();
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["code"], "ROUTE_NOT_FOUND");
    let r = reqwest::get(format!("{}/api/v1/no-such-route", app.base)).await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["code"], "ROUTE_NOT_FOUND");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_with_totp_never_puts_the_password_in_the_page() {
    let app = Appliance::start(Backend::Sqlite).await;
    let admin = app.admin().await;
    let setup = admin.post("/api/v1/auth/mfa/setup", serde_json::json!({})).await;
    assert_eq!(setup.status, 200, "{}", setup.text);
    let secret = setup.json["secret"].as_str().unwrap().to_string();
    let code = totp_code(&secret, 0);
    let r = admin.post("/api/v1/auth/mfa/enable", serde_json::json!({"totp_code": code})).await;
    assert_eq!(r.status, 200, "{}", r.text);

    let mut c = Console::anonymous(&app.base);
    let step2 = c.login_form("admin", ADMIN_PASSWORD).await;
    assert_eq!(step2.status, 200);
    step2.has("Enter your authentication code").lacks(ADMIN_PASSWORD);
    let token = common::console::input_value(&step2.html, "mfa_token").expect("mfa token");
    let csrf = csrf_of(&step2.html).unwrap();

    // A wrong code: asked again (a fresh token), still no password in the page.
    let wrong = c.post_fields("/login/mfa", &[("_csrf", &csrf), ("mfa_token", &token), ("totp_code", "000000")]).await;
    assert_eq!(wrong.status, 401);
    wrong.has("That code is not valid").lacks(ADMIN_PASSWORD);
    let token2 = common::console::input_value(&wrong.html, "mfa_token").unwrap();
    assert_ne!(token, token2, "a token is used once");
    // The spent token no longer stands for the password.
    let csrf = csrf_of(&wrong.html).unwrap();
    // The enable call spent the current step's code: log in with the next step's (accepted by the
    // one-step clock-skew window).
    let code = totp_code(&secret, 30);
    let spent = c.post_fields("/login/mfa", &[("_csrf", &csrf), ("mfa_token", &token), ("totp_code", &code)]).await;
    assert_eq!(spent.status, 401);
    spent.has("took too long");

    // The right code on a fresh password step logs in. (The code just tried was refused without
    // being used, so it still counts.)
    let step2 = c.login_form("admin", ADMIN_PASSWORD).await;
    let token = common::console::input_value(&step2.html, "mfa_token").unwrap();
    let csrf = csrf_of(&step2.html).unwrap();
    let ok = c.post_fields("/login/mfa", &[("_csrf", &csrf), ("mfa_token", &token), ("totp_code", &code)]).await;
    assert_eq!(ok.status, 303, "{}", ok.html);
    assert_eq!(c.get("/").await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_sees_only_what_it_may_read() {
    let app = Appliance::start(Backend::Sqlite).await;
    let admin = app.admin().await;
    app.user(&admin, "val", "viewer").await;
    let mut v = Console::login(&app.base, "val", "val-password-123").await;
    let home = v.get("/").await;
    home.has("href=\"/assets\"").lacks("href=\"/users\"").lacks("href=\"/audit\"").lacks("href=\"/psks\"");
    home.lacks("Recent activity");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_stream_needs_a_session_and_reports_changes() {
    let app = Appliance::start(Backend::Sqlite).await;
    let mut anon = Console::anonymous(&app.base);
    assert_eq!(anon.get("/console/events").await.status, 303);

    let c = Console::login(&app.base, "admin", ADMIN_PASSWORD).await;
    let mut stream = c.http.get(format!("{}/console/events", app.base)).send().await.unwrap();
    assert_eq!(stream.status(), 200);
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    // A change made through the API reaches the open stream.
    let admin = app.admin().await;
    let r = admin.post("/api/v1/vnis", serde_json::json!({"name": "lab", "cidr": "10.77.0.0/24", "vni": 77})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let vni_id = r.json["id"].as_str().unwrap().to_string();
    let mut seen = String::new();
    let found = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        while let Ok(Some(chunk)) = stream.chunk().await {
            seen.push_str(&String::from_utf8_lossy(&chunk));
            if seen.contains(&vni_id) {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(found, Ok(true), "stream so far: {seen}");
    assert!(seen.contains("event: change") && seen.contains("\"topic\":\"vni\""), "{seen}");
}
