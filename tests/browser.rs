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

/// The id at the end of the current path (`/assets/ast_…` → `ast_…`).
async fn id_in_path(b: &Browser) -> String {
    let p = b.path().await;
    p.split('?').next().unwrap_or_default().rsplit('/').next().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_works_through_the_console() {
    let app = Appliance::start(Backend::Sqlite).await;
    let admin = app.admin().await;
    let b = Browser::start(&app.base).await;
    log_in(&b, "admin", ADMIN_PASSWORD).await;

    // A VNI: a bad network first (the error beside the form, the input kept), then a good one.
    b.goto("/vnis").await;
    b.fill("#vni-name", "rack-a").await;
    b.fill("#vni-number", "4100").await;
    b.fill("#vni-cidr", "10.41.0.0/33").await;
    b.click_and_wait("form[action='/vnis'][method=post] button[type=submit]").await;
    assert!(b.exists("[role=alert]").await, "no error shown: {}", b.body_text().await);
    let kept: serde_json::Value = b.js("return document.querySelector('#vni-name').value;", vec![]).await;
    assert_eq!(kept, "rack-a");
    b.fill("#vni-cidr", "10.41.0.0/24").await;
    b.fill("#vni-gateway", "10.41.0.1").await;
    b.fill("#vni-dhcp-start", "10.41.0.100").await;
    b.fill("#vni-dhcp-end", "10.41.0.199").await;
    b.click_and_wait("form[action='/vnis'][method=post] button[type=submit]").await;
    b.wait_for_text("rack-a", 10).await;
    let vnis = admin.get("/api/v1/vnis").await;
    assert_eq!(vnis.json["data"][0]["cidr"], "10.41.0.0/24", "{}", vnis.text);
    check_page(&b, "vnis").await;

    // An asset with BMC credentials (the password is sealed; the page never shows it).
    b.goto("/assets/new").await;
    b.fill("#hostname", "web-01").await;
    b.fill("#macs", "52:54:00:41:00:01").await;
    b.fill("#tags", "rack-a web").await;
    b.fill("#bmc_address", "127.0.0.1").await;
    b.fill("#bmc_port", "9").await;
    b.fill("#bmc_username", "ADMIN").await;
    b.fill("#bmc_password", "bmc-secret-pw").await;
    b.click_and_wait("form[action='/assets'] button[type=submit]").await;
    let asset_id = id_in_path(&b).await;
    assert!(asset_id.starts_with("ast_"), "after registering: {}", b.path().await);
    assert!(
        !b.js("return document.documentElement.outerHTML;", vec![]).await.as_str().unwrap().contains("bmc-secret-pw")
    );
    let a = admin.get(&format!("/api/v1/assets/{asset_id}")).await;
    assert_eq!(a.json["bmc"]["address"], "127.0.0.1", "{}", a.text);
    check_page(&b, "asset").await;
    b.goto("/assets").await;
    check_page(&b, "assets").await;

    // A wipe: the button stays disabled until the hostname is typed; a wrong one sent anyway is
    // refused by the server and starts nothing; the right one starts the workflow.
    b.goto(&format!("/assets/{asset_id}/wipe")).await;
    check_page(&b, "asset-wipe").await;
    b.fill("#confirm", "web-02").await;
    let disabled: serde_json::Value = b.js("return document.querySelector('#start-button').disabled;", vec![]).await;
    assert_eq!(disabled, true, "the start button must wait for the hostname");
    let marker: serde_json::Value = b.js("window.__ib_page = 'before'; return 1;", vec![]).await;
    assert_eq!(marker, 1);
    b.js("document.querySelector('#confirm').form.submit(); return 1;", vec![]).await;
    b.wait_for_text("to confirm", 10).await;
    assert!(b.exists("#form-error").await);
    let wfs = admin.get(&format!("/api/v1/workflows?asset_id={asset_id}")).await;
    assert_eq!(wfs.json["data"].as_array().map(Vec::len), Some(0), "a refused wipe started: {}", wfs.text);
    b.fill("#confirm", "web-01").await;
    b.click_and_wait("#start-button").await;
    let workflow_id = id_in_path(&b).await;
    assert!(workflow_id.starts_with("wf_"), "after the wipe: {}", b.path().await);

    // The step list updates live: the page subscribes to the event stream, the workflow is
    // cancelled through the API, and the page shows it without being reloaded.
    crate::common::eventually("the live event stream to connect", 20, || async {
        let s = b.js("return document.body.getAttribute('data-live');", vec![]).await;
        if s == "connected" { Ok(()) } else { Err(format!("data-live = {s}")) }
    })
    .await;
    b.js("window.__ib_same_page = 'yes'; return 1;", vec![]).await;
    let r = admin.post(&format!("/api/v1/workflows/{workflow_id}/cancel"), serde_json::json!({})).await;
    assert!(r.status == 200 || r.status == 202, "cancel: {} {}", r.status, r.text);
    crate::common::eventually("the workflow page to show the cancellation live", 30, || async {
        let state = b.text("#h-state").await;
        if state.contains("cancelled") { Ok(()) } else { Err(state) }
    })
    .await;
    let same = b.js("return window.__ib_same_page || null;", vec![]).await;
    assert_eq!(same, "yes", "the page was reloaded instead of updated in place");
    let updates = b.js("return Number(document.body.getAttribute('data-live-updates') || 0);", vec![]).await;
    assert!(updates.as_u64().unwrap_or(0) >= 1, "no live update was applied");
    check_page(&b, "workflow").await;

    // A PSK: its value shown once on creation, then revealed on demand (audited).
    b.goto("/psks").await;
    b.fill("#psk-name", "guest-wifi").await;
    b.click_and_wait("form[action='/psks'][method=post] button[type=submit]").await;
    b.wait_for_text("shown once", 10).await;
    let created = b.text(".secret").await;
    assert!(created.len() >= 8, "a generated value: {created:?}");
    b.click_and_wait("a[href^='/psks/psk_']").await;
    assert!(!b.body_text().await.contains(&created), "the PSK page shows the value without a reveal");
    check_page(&b, "psk").await;
    b.click_and_wait("form[action$='/reveal'] button").await;
    b.wait_for_text("This reading was recorded", 10).await;
    assert_eq!(b.text(".secret").await, created);
    let audit = admin.get("/api/v1/audit?action=psk.read_value").await;
    assert_eq!(audit.json["data"].as_array().map(Vec::len), Some(1), "{}", audit.text);

    // An API key: scopes as checkboxes, the key shown once, and it works.
    b.goto("/api-keys").await;
    b.fill("#k-name", "inventory-sync").await;
    b.click("input[name=scopes][value='assets:read']").await;
    b.click_and_wait("form[action='/api-keys'][method=post] button[type=submit]").await;
    let key = b.text("#api-key").await;
    assert!(key.starts_with("ib_"), "the key on its page: {key:?}");
    check_page(&b, "api-key-created").await;
    let me = common::Client::new(&app.base).with_auth(common::Auth::XApiKey(key.clone())).get("/api/v1/auth/me").await;
    assert_eq!(me.status, 200, "{}", me.text);
    b.goto("/api-keys").await;
    assert!(b.body_text().await.contains("inventory-sync"));
    assert!(
        !b.js("return document.documentElement.outerHTML;", vec![]).await.as_str().unwrap().contains(&key),
        "the key shown twice"
    );
    check_page(&b, "api-keys").await;

    // The audit log: verify the chain.
    b.goto("/audit").await;
    check_page(&b, "audit").await;
    b.click_and_wait("form[action='/audit/verify'] button").await;
    assert!(b.text("#verification").await.contains("intact"), "{}", b.text("#verification").await);

    // The other main pages render and pass the accessibility check.
    for (path, name) in [
        ("/", "dashboard-busy"),
        ("/clusters", "clusters"),
        ("/clusters/new", "cluster-new"),
        ("/devices", "devices"),
        ("/policies", "policies"),
        ("/os-images", "images"),
        ("/webhooks", "webhooks"),
        ("/users", "users"),
        ("/account", "account"),
        ("/settings", "settings"),
    ] {
        b.goto(path).await;
        check_page(&b, name).await;
    }
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_sees_no_action_buttons_and_forged_posts_are_refused() {
    let app = Appliance::start(Backend::Sqlite).await;
    let admin = app.admin().await;
    app.user(&admin, "val", "viewer").await;
    let a = admin.post("/api/v1/assets", common::asset_body("db-01", "52:54:00:42:00:01")).await;
    assert_eq!(a.status, 201, "{}", a.text);
    let asset_id = a.json["id"].as_str().unwrap().to_string();
    let v =
        admin.post("/api/v1/vnis", serde_json::json!({"name": "rack-b", "cidr": "10.42.0.0/24", "vni": 4200})).await;
    let vni_id = v.json["id"].as_str().unwrap().to_string();

    let b = Browser::start(&app.base).await;
    log_in(&b, "val", "val-password-123").await;
    for path in [
        "/".to_string(),
        "/assets".into(),
        format!("/assets/{asset_id}"),
        "/vnis".into(),
        format!("/vnis/{vni_id}"),
        "/clusters".into(),
        "/policies".into(),
    ] {
        b.goto(&path).await;
        assert!(!b.path().await.starts_with("/login"), "{path}: sent to login");
        // No action a viewer cannot take is offered (reading the BMC's power state is a read).
        let posting: serde_json::Value = b
            .js(
                "return Array.from(document.querySelectorAll('main form[method=post]'))
                    .map(f => f.getAttribute('action')).filter(a => !a.endsWith('/bmc-check'));",
                vec![],
            )
            .await;
        assert_eq!(posting, serde_json::json!([]), "{path} offers actions to a viewer");
        let danger: serde_json::Value =
            b.js("return document.querySelectorAll('main button.danger').length;", vec![]).await;
        assert_eq!(danger, 0, "{path}");
    }
    b.goto(&format!("/assets/{asset_id}")).await;
    check_page(&b, "asset-viewer").await;

    // A POST forged from the page's own origin but without the CSRF token is refused and changes
    // nothing; so is a cookie-authenticated API write without the token header.
    let status = b
        .js_async(
            "const done = arguments[arguments.length - 1];
             fetch(arguments[0], {method: 'POST', credentials: 'same-origin',
                   headers: {'Content-Type': 'application/x-www-form-urlencoded'}, body: 'confirm=db-01'})
               .then(r => done(r.status)).catch(e => done(String(e)));",
            vec![serde_json::json!(format!("/assets/{asset_id}/delete"))],
        )
        .await;
    assert_eq!(status, 403);
    let status = b
        .js_async(
            "const done = arguments[arguments.length - 1];
             fetch('/api/v1/vnis', {method: 'POST', credentials: 'same-origin', headers: {'Content-Type': 'application/json'},
                   body: JSON.stringify({name: 'forged', cidr: '10.43.0.0/24', vni: 4300})})
               .then(r => r.json().then(j => done([r.status, j.code]))).catch(e => done(String(e)));",
            vec![],
        )
        .await;
    assert_eq!(status, serde_json::json!([403, "CSRF_TOKEN_INVALID"]));
    assert_eq!(admin.get(&format!("/api/v1/assets/{asset_id}")).await.status, 200, "the asset survived");
    b.close().await;
}
