//! The console in a real browser: Debian's headless Chromium driven over WebDriver
//! (chromedriver) against the real binary. Logs in with and without MFA, drives the main flows,
//! checks live updates arrive without a reload, runs axe-core on the main pages and writes their
//! screenshots to `docs/screenshots/`.

#[path = "support/browser.rs"]
mod browser;
mod common;

use browser::Browser;
use common::{ADMIN_PASSWORD, Appliance, Backend};

fn screenshot_path(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots").join(format!("{name}.png"))
}

fn totp_code(secret_b32: &str, offset_secs: i64) -> String {
    let secret = totp_rs::Secret::try_from_base32(secret_b32).expect("base32 secret");
    let totp = totp_rs::Builder::new().with_secret(secret).build().expect("totp");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs() as i64;
    totp.generate((now + offset_secs) as u64).to_string()
}

async fn log_in(b: &Browser, username: &str, password: &str) {
    b.goto("/login").await;
    b.fill("#username", username).await;
    b.fill("#password", password).await;
    b.click_and_wait("form[action='/login'] button[type=submit]").await;
}

/// Checks the current page with axe-core and saves its screenshot.
async fn check_page(b: &Browser, name: &str) {
    let violations = b.accessibility_violations().await;
    assert!(
        violations.is_empty(),
        "accessibility violations on {name} ({}):\n{}",
        b.path().await,
        violations.join("\n")
    );
    b.screenshot(&screenshot_path(name)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_with_and_without_mfa() {
    let app = Appliance::start(Backend::Sqlite).await;
    let b = Browser::start(&app.base).await;

    // A wrong password shows the error on the form.
    b.goto("/login").await;
    check_page(&b, "login").await;
    b.fill("#username", "admin").await;
    b.fill("#password", "wrong-password").await;
    b.click_and_wait("form[action='/login'] button[type=submit]").await;
    assert!(b.text("#login-error").await.contains("Wrong username or password"));

    log_in(&b, "admin", ADMIN_PASSWORD).await;
    assert_eq!(b.path().await, "/");
    b.wait_for_text("Dashboard", 10).await;
    check_page(&b, "dashboard").await;

    // Logging out ends the session: the dashboard leads back to the login page.
    b.click_and_wait("form[action='/logout'] button").await;
    assert!(b.path().await.starts_with("/login"));
    b.goto("/").await;
    assert!(b.path().await.starts_with("/login?next="), "{}", b.path().await);

    // A user with TOTP on: password, then the code step.
    let admin = app.admin().await;
    app.user(&admin, "mia", "operator").await;
    let mia = app.client().login("mia", "mia-password-123").await;
    let setup = mia.post("/api/v1/auth/mfa/setup", serde_json::json!({})).await;
    let secret = setup.json["secret"].as_str().unwrap().to_string();
    let r = mia.post("/api/v1/auth/mfa/enable", serde_json::json!({"totp_code": totp_code(&secret, 0)})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    log_in(&b, "mia", "mia-password-123").await;
    assert!(b.exists("#totp_code").await, "the code step: {}", b.body_text().await);
    check_page(&b, "login-mfa").await;
    b.fill("#totp_code", &totp_code(&secret, 30)).await;
    b.click_and_wait("form[action='/login/mfa'] button[type=submit]").await;
    assert_eq!(b.path().await, "/");
    assert!(b.body_text().await.contains("mia"));
    b.close().await;
}
