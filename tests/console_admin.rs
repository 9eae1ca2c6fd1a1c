//! The console's admin pages over real HTTP, as a browser without JavaScript uses them (plus the
//! API call the upload script makes): policies (editor, compile errors, evaluate), OS images,
//! webhooks (secret once, deliveries), users, API keys (key once, scopes by role), the account's
//! MFA, the audit log (filters, export, verify), settings, and the API's CSRF check for
//! cookie-authenticated writes. Each area also checks what lesser roles see and that their
//! forged posts are refused.

mod common;

use common::console::{Console, Page};
use common::{ADMIN_PASSWORD, Appliance, Backend, eventually};
use serde_json::json;

fn totp_code(secret_b32: &str, offset_secs: i64) -> String {
    let secret = totp_rs::Secret::try_from_base32(secret_b32).expect("base32 secret");
    let totp = totp_rs::Builder::new().with_secret(secret).build().expect("totp");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs() as i64;
    totp.generate((now + offset_secs) as u64).to_string()
}

/// The text of the element whose opening tag ends with `marker` (e.g. `id="api-key">`).
fn text_after(page: &Page, marker: &str) -> String {
    let at =
        page.html.find(marker).unwrap_or_else(|| panic!("{marker} not in the page:\n{}", page.html)) + marker.len();
    let end = page.html[at..].find('<').expect("closing tag");
    page.html[at..at + end].trim().to_string()
}

/// The id in a redirect to `/<prefix>/<id>`.
fn id_from(location: &Option<String>, prefix: &str) -> String {
    let loc = location.as_deref().unwrap_or_else(|| panic!("expected a redirect to {prefix}"));
    loc.strip_prefix(prefix).unwrap_or_else(|| panic!("{loc} is not under {prefix}")).to_string()
}

const NO_PROD_WIPE: &str = "package ironbay.no_prod_wipe\n\ndeny contains msg if {\n\tinput.action == \"wipe\"\n\t\"production\" in input.asset.tags\n\tmsg := sprintf(\"%v is a production machine\", [input.asset.name])\n}\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policies_editor_compile_errors_evaluate_and_roles() {
    let app = Appliance::start(Backend::Sqlite).await;
    let admin_api = app.admin().await;
    app.user(&admin_api, "val", "viewer").await;
    let mut c = Console::login(&app.base, "admin", ADMIN_PASSWORD).await;

    let p = c.get("/policies/new").await;
    assert_eq!(p.status, 200);
    p.has("<label for=\"p-rego\">").has("<textarea id=\"p-rego\" name=\"rego\"").has("package ironbay.example");

    // A syntax error: the editor again, with the compiler's message and the source as typed.
    let broken = "package broken\n\ndeny contains msg if {\n\tinput.action == == 1\n\tmsg := \"no\"\n}\n";
    let p = c.post("/policies/new", &[("name", "broken-one"), ("priority", "50"), ("rego", broken)]).await;
    assert_eq!(p.status, 422, "{}", p.html);
    p.has("INVALID_REGO").has("does not compile").has("input.action == == 1").has("value=\"broken-one\"");
    p.has("value=\"50\"");
    assert_eq!(admin_api.get("/api/v1/policies").await.json["meta"]["total"], 0);

    // A priority that is no number is refused next to the form too.
    let p = c.post("/policies/new", &[("name", "x"), ("priority", "soon"), ("rego", NO_PROD_WIPE)]).await;
    assert_eq!(p.status, 422);
    p.has("priority must be a whole number").has("ironbay.no_prod_wipe");

    let p = c
        .post(
            "/policies/new",
            &[("name", "no-prod-wipe"), ("priority", "10"), ("enabled", "on"), ("rego", NO_PROD_WIPE)],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.html);
    let id = id_from(&p.location, "/policies/");
    let p = c.follow(&p).await;
    p.has("Created policy no-prod-wipe").has("<h1>Policy no-prod-wipe</h1>").has("Delete policy");
    let api = admin_api.get(&format!("/api/v1/policies/{id}")).await;
    assert_eq!((api.json["priority"].as_i64(), api.json["enabled"].as_bool()), (Some(10), Some(true)));
    c.get("/policies").await.has(&format!("href=\"/policies/{id}\"")).has("no-prod-wipe");

    // The evaluate panel starts from an example input for the action the policy names.
    let detail = c.get(&format!("/policies/{id}")).await;
    detail.has("<label for=\"eval-input\">").has("&#34;action&#34;: &#34;wipe&#34;");
    let input = json!({"action": "wipe", "asset": {"name": "db-1", "tags": ["production"]}}).to_string();
    let p = c.post(&format!("/policies/{id}/evaluate"), &[("input", &input)]).await;
    assert_eq!(p.status, 200, "{}", p.html);
    p.has("Decision: <span class=\"verdict-deny\">deny</span>").has("db-1 is a production machine").has("no-prod-wipe");
    let input = json!({"action": "wipe", "asset": {"name": "web-1", "tags": []}}).to_string();
    let p = c.post(&format!("/policies/{id}/evaluate"), &[("input", &input), ("all", "on")]).await;
    p.has("Decision: <span class=\"verdict-allow\">allow</span>");
    let p = c.post(&format!("/policies/{id}/evaluate"), &[("input", "{\"action\": ")]).await;
    assert_eq!(p.status, 422);
    p.has("The input is not valid JSON").has("{&#34;action&#34;: </textarea>");

    // An update with a broken source keeps it; the stored one is unchanged.
    let p = c.post(&format!("/policies/{id}"), &[("name", "no-prod-wipe"), ("priority", "10"), ("rego", broken)]).await;
    assert_eq!(p.status, 422);
    p.has("INVALID_REGO").has("input.action == == 1");
    assert!(
        admin_api.get(&format!("/api/v1/policies/{id}")).await.json["rego"].as_str().unwrap().contains("no_prod_wipe")
    );
    let p = c
        .post(&format!("/policies/{id}"), &[("name", "no-prod-wipe-2"), ("priority", "20"), ("rego", NO_PROD_WIPE)])
        .await;
    assert_eq!(p.status, 303, "{}", p.html);
    assert_eq!(admin_api.get(&format!("/api/v1/policies/{id}")).await.json["name"], "no-prod-wipe-2");

    let p = c.post(&format!("/policies/{id}/enabled"), &[("enabled", "false")]).await;
    assert_eq!(p.status, 303);
    assert_eq!(admin_api.get(&format!("/api/v1/policies/{id}")).await.json["enabled"], false);
    c.follow(&p).await.has("Disabled policy no-prod-wipe-2").has("Enable policy");

    // A viewer reads the policy and may evaluate, but sees no editor or buttons and cannot change it.
    let mut v = Console::login(&app.base, "val", "val-password-123").await;
    let p = v.get(&format!("/policies/{id}")).await;
    assert_eq!(p.status, 200);
    p.lacks("Delete policy").lacks("Enable policy").lacks("name=\"rego\"").has("ironbay.no_prod_wipe");
    v.get("/policies").await.lacks("/policies/new");
    let p = v.post(&format!("/policies/{id}/delete"), &[]).await;
    assert_eq!(p.status, 403, "{}", p.html);
    let p = v.post("/policies/new", &[("name", "sneaky"), ("rego", NO_PROD_WIPE)]).await;
    assert_eq!(p.status, 403);
    assert_eq!(v.get("/policies/new").await.status, 403);
    assert_eq!(admin_api.get(&format!("/api/v1/policies/{id}")).await.status, 200);

    let p = c.post(&format!("/policies/{id}/delete"), &[]).await;
    assert_eq!((p.status.as_u16(), p.location.as_deref()), (303, Some("/policies")));
    assert_eq!(admin_api.get(&format!("/api/v1/policies/{id}")).await.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_create_upload_through_the_api_with_csrf_and_delete() {
    let app = Appliance::start(Backend::Sqlite).await;
    let admin_api = app.admin().await;
    app.user(&admin_api, "val", "viewer").await;
    let mut c = Console::login(&app.base, "admin", ADMIN_PASSWORD).await;
    c.get("/os-images/new").await.has("<label for=\"i-sha\">");

    // A URL image needs its hash: refused next to the form, the input kept.
    let p = c
        .post(
            "/os-images/new",
            &[("name", "debian-12"), ("source", "url"), ("url", "https://mirror.example/d.raw.zst")],
        )
        .await;
    assert_eq!(p.status, 422, "{}", p.html);
    p.has("sha256 is required").has("value=\"debian-12\"").has("value=\"https://mirror.example/d.raw.zst\"");

    let sha = "ab".repeat(32);
    let p = c
        .post(
            "/os-images/new",
            &[
                ("name", "debian-12"),
                ("version", "1"),
                ("source", "url"),
                ("url", "https://mirror.example/d.raw.zst"),
                ("sha256", &sha),
            ],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.html);
    let url_id = id_from(&p.location, "/os-images/");
    c.follow(&p)
        .await
        .has("Created image debian-12")
        .has("https://mirror.example/d.raw.zst")
        .has("raw.zst")
        .lacks("upload-file");

    // An upload record: its page carries the upload form wired to the API.
    let p = c
        .post("/os-images/new", &[("name", "tiny.raw"), ("source", "upload"), ("url", "https://ignored.example/")])
        .await;
    assert_eq!(p.status, 303, "{}", p.html);
    let id = id_from(&p.location, "/os-images/");
    let page = c.follow(&p).await;
    page.has(&format!("data-upload-url=\"/api/v1/images/{id}/content\""))
        .has("<label for=\"upload-file\">")
        .has("<progress");
    let list = c.get("/os-images?status=pending").await;
    list.has("tiny.raw").lacks("debian-12");
    c.get("/os-images?name=debian-12").await.has("debian-12").lacks("tiny.raw");

    // The script's PUT: from a browser, the session cookie alone is refused (cross-site forgery),
    // with the page's token it is stored.
    let body = b"a very small disk image".to_vec();
    let url = format!("{}/api/v1/images/{id}/content", app.base);
    let r = c
        .http
        .put(&url)
        .header("content-type", "application/octet-stream")
        .header("sec-fetch-site", "same-origin")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["code"], "CSRF_TOKEN_INVALID");
    let r = c
        .http
        .put(&url)
        .header("content-type", "application/octet-stream")
        .header("x-csrf-token", "0123456789abcdef")
        .header("sec-fetch-site", "same-origin")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "a wrong token is no token");
    let r = c
        .http
        .put(&url)
        .header("content-type", "application/octet-stream")
        .header("x-csrf-token", &c.csrf)
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    c.get(&format!("/os-images/{id}")).await.has("state-ready").lacks("upload-file");
    // Reads with the cookie need no token.
    let r = c.http.get(format!("{}/api/v1/images/{id}", app.base)).send().await.unwrap();
    assert_eq!(r.status(), 200);

    // A viewer sees images but no actions, and its forged posts are refused.
    let mut v = Console::login(&app.base, "val", "val-password-123").await;
    v.get("/os-images").await.has("debian-12").lacks("/os-images/new");
    v.get(&format!("/os-images/{url_id}")).await.lacks("Delete image");
    let p = v.post(&format!("/os-images/{url_id}/delete"), &[]).await;
    assert_eq!(p.status, 403);
    let p = v.post("/os-images/new", &[("name", "x"), ("source", "upload")]).await;
    assert_eq!(p.status, 403);

    let p = c.post(&format!("/os-images/{url_id}/delete"), &[]).await;
    assert_eq!(p.status, 303);
    assert_eq!(admin_api.get(&format!("/api/v1/images/{url_id}")).await.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_secret_once_test_send_deliveries_and_roles() {
    let app = Appliance::start(Backend::Sqlite).await;
    let admin_api = app.admin().await;
    app.user(&admin_api, "otto", "operator").await;
    let mut c = Console::login(&app.base, "admin", ADMIN_PASSWORD).await;
    c.get("/webhooks/new").await.has("<label for=\"w-url\">");

    let p =
        c.post("/webhooks/new", &[("url", "ftp://hooks.example/x"), ("events", "asset.*"), ("enabled", "on")]).await;
    assert_eq!(p.status, 422, "{}", p.html);
    p.has("url must use http or https").has("value=\"ftp://hooks.example/x\"").has("value=\"asset.*\"");

    // Nothing listens on port 9: deliveries fail, which the log shows.
    let p = c
        .post(
            "/webhooks/new",
            &[("url", "http://127.0.0.1:9/hook"), ("events", "*"), ("description", "ops"), ("enabled", "on")],
        )
        .await;
    assert_eq!(p.status, 201, "{}", p.html);
    let secret = text_after(&p, "id=\"webhook-secret\">");
    assert!(secret.starts_with("whsec_"), "{secret}");
    p.has("class=\"secret\"");
    let list = c.get("/webhooks").await;
    list.has("http://127.0.0.1:9/hook").lacks(&secret);
    let id = admin_api.get("/api/v1/webhooks").await.json["data"][0]["id"].as_str().unwrap().to_string();
    c.get(&format!("/webhooks/{id}")).await.lacks(&secret).has("Send a test event");

    let p = c.post(&format!("/webhooks/{id}/test"), &[]).await;
    assert_eq!(p.status, 303, "{}", p.html);
    c.follow(&p).await.has("Queued a test event");
    eventually("the ping's failed attempt in the delivery log", 30, || {
        let mut c2 = Console { http: c.http.clone(), base: c.base.clone(), csrf: c.csrf.clone() };
        let id = id.clone();
        async move {
            let p = c2.get(&format!("/webhooks/{id}")).await;
            if p.html.contains("webhook.ping") && p.html.contains("no answer") { Ok(()) } else { Err(p.html) }
        }
    })
    .await;
    c.get(&format!("/webhooks/{id}?status=delivered"))
        .await
        .lacks("<code>webhook.ping</code>")
        .has("No deliveries with this status");

    let p = c.post(&format!("/webhooks/{id}/enabled"), &[("enabled", "false")]).await;
    assert_eq!(p.status, 303);
    c.follow(&p).await.has("state-disabled").lacks("Send a test event").has("Enable webhook");
    assert_eq!(admin_api.get(&format!("/api/v1/webhooks/{id}")).await.json["enabled"], false);
    // Testing a disabled webhook is refused next to the buttons.
    let p = c.post(&format!("/webhooks/{id}/test"), &[]).await;
    assert_eq!(p.status, 409);
    p.has("WEBHOOK_DISABLED");

    // An operator reads webhooks but changes nothing.
    let mut o = Console::login(&app.base, "otto", "otto-password-123").await;
    o.get("/webhooks").await.has("http://127.0.0.1:9/hook").lacks("/webhooks/new");
    o.get(&format!("/webhooks/{id}")).await.lacks("Delete webhook").lacks("Enable webhook");
    assert_eq!(o.post(&format!("/webhooks/{id}/delete"), &[]).await.status, 403);
    assert_eq!(o.post("/webhooks/new", &[("url", "http://127.0.0.1:9/x"), ("events", "*")]).await.status, 403);

    let p = c.post(&format!("/webhooks/{id}/delete"), &[]).await;
    assert_eq!(p.status, 303);
    assert_eq!(admin_api.get(&format!("/api/v1/webhooks/{id}")).await.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_and_api_keys_by_role() {
    let app = Appliance::start(Backend::Sqlite).await;
    let admin_api = app.admin().await;
    let mut c = Console::login(&app.base, "admin", ADMIN_PASSWORD).await;
    c.get("/users").await.has("<label for=\"u-username\">").has("href=\"/users/");

    let p = c.post("/users", &[("username", "olga"), ("password", "short"), ("role", "operator")]).await;
    assert_eq!(p.status, 422, "{}", p.html);
    p.has("INVALID_FIELD").has("value=\"olga\"").lacks("value=\"short\"");
    let p = c.post("/users", &[("username", "olga"), ("password", "olga-password-123"), ("role", "operator")]).await;
    assert_eq!(p.status, 303, "{}", p.html);
    let uid = id_from(&p.location, "/users/");
    c.follow(&p).await.has("Created user olga (operator)").has("Set a new password");
    let p = c.post("/users", &[("username", "olga"), ("password", "olga-password-123"), ("role", "viewer")]).await;
    assert_eq!(p.status, 409);
    p.has("USERNAME_TAKEN");

    // Role and disable; the last admin cannot demote themselves.
    let p = c.post(&format!("/users/{uid}"), &[("role", "viewer"), ("disabled", "on")]).await;
    assert_eq!(p.status, 303);
    let u = admin_api.get(&format!("/api/v1/users/{uid}")).await;
    assert_eq!((u.json["role"].as_str(), u.json["disabled"].as_bool()), (Some("viewer"), Some(true)));
    let p = c.post(&format!("/users/{uid}"), &[("role", "operator")]).await;
    assert_eq!(p.status, 303);
    let me = c.get("/users").await;
    let admin_id = admin_api.get("/api/v1/auth/me").await.json["id"].as_str().unwrap().to_string();
    me.has(&admin_id);
    let p = c.post(&format!("/users/{admin_id}"), &[("role", "viewer")]).await;
    assert_eq!(p.status, 409);
    p.has("LAST_ADMIN");
    c.get(&format!("/users/{admin_id}")).await.lacks("Delete user");

    // A new password: both fields must agree.
    let p = c.post(&format!("/users/{uid}/password"), &[("password", "olga-password-456"), ("confirm", "other")]).await;
    assert_eq!(p.status, 422);
    p.has("the two passwords differ");
    let p = c
        .post(&format!("/users/{uid}/password"), &[("password", "olga-password-456"), ("confirm", "olga-password-456")])
        .await;
    assert_eq!(p.status, 303, "{}", p.html);

    // The operator's own API keys: only its role's scopes are offered.
    let mut o = Console::login(&app.base, "olga", "olga-password-456").await;
    let keys = o.get("/api-keys").await;
    keys.has("value=\"assets:write\"")
        .has("value=\"audit:read\"")
        .lacks("value=\"admin\"")
        .lacks("value=\"webhooks:write\"");
    let p = o.post("/api-keys", &[("name", "sync"), ("expires_in_days", "30")]).await;
    assert_eq!(p.status, 422, "{}", p.html);
    p.has("a key needs at least one scope").has("value=\"sync\"");
    // A forged scope beyond the role is refused.
    let p = o.post("/api-keys", &[("name", "root"), ("scopes", "admin")]).await;
    assert_eq!(p.status, 403);
    p.has("INSUFFICIENT_SCOPE");
    let p = o
        .post(
            "/api-keys",
            &[("name", "sync"), ("scopes", "assets:read"), ("scopes", "vnis:read"), ("expires_in_days", "30")],
        )
        .await;
    assert_eq!(p.status, 201, "{}", p.html);
    let key = text_after(&p, "id=\"api-key\">");
    assert!(key.len() > 20, "{key}");
    let me = reqwest::Client::new()
        .get(format!("{}/api/v1/auth/me", app.base))
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    let me: serde_json::Value = me.json().await.unwrap();
    assert_eq!((me["username"].as_str(), me["scopes"].as_array().map(Vec::len)), (Some("olga"), Some(2)));
    let list = o.get("/api-keys").await;
    list.has("sync").has("assets:read, vnis:read").lacks(&key);
    let key_id = me["auth"]["key_id"].as_str().unwrap().to_string();
    let p = o.post(&format!("/api-keys/{key_id}/revoke"), &[]).await;
    assert_eq!(p.status, 303);
    let me = reqwest::Client::new()
        .get(format!("{}/api/v1/auth/me", app.base))
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 401);

    // An operator has no user administration.
    assert_eq!(o.get("/users").await.status, 403);
    let p = o.post("/users", &[("username", "mallory"), ("password", "mallory-password-1"), ("role", "admin")]).await;
    assert_eq!(p.status, 403);
    assert_eq!(o.post(&format!("/users/{uid}"), &[("role", "admin")]).await.status, 403);
    assert_eq!(admin_api.get(&format!("/api/v1/users/{uid}")).await.json["role"], "operator");
    // The admin sees everyone's keys.
    c.get("/api-keys").await.has("Every user's API keys").has(&uid);

    let p = c.post(&format!("/users/{uid}/delete"), &[]).await;
    assert_eq!(p.status, 303);
    assert_eq!(admin_api.get(&format!("/api/v1/users/{uid}")).await.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_mfa_enable_then_login_asks_for_a_code() {
    let app = Appliance::start(Backend::Sqlite).await;
    let admin_api = app.admin().await;
    app.user(&admin_api, "mia", "operator").await;
    let mut c = Console::login(&app.base, "mia", "mia-password-123").await;
    c.get("/account").await.has("<h1>Your account</h1>").has("Set up two-factor authentication");

    let p = c.post("/account/mfa/setup", &[]).await;
    assert_eq!(p.status, 200, "{}", p.html);
    let secret = text_after(&p, "id=\"mfa-secret\">");
    p.has("otpauth://totp/").has("<label for=\"mfa-on-code\">");
    let p = c.post("/account/mfa/enable", &[("secret", &secret), ("totp_code", "000000")]).await;
    assert_eq!(p.status, 422, "{}", p.html);
    p.has("invalid or already used TOTP code").has(&secret);
    let p = c.post("/account/mfa/enable", &[("totp_code", &totp_code(&secret, 0))]).await;
    assert_eq!(p.status, 303, "{}", p.html);
    c.follow(&p).await.has("Two-factor authentication is on").has("Turn off two-factor authentication");
    let users = admin_api.get("/api/v1/users?per_page=100").await.json;
    let mia = users["data"].as_array().unwrap().iter().find(|u| u["username"] == "mia").expect("mia listed").clone();
    assert_eq!(mia["mfa_enabled"], true, "{mia}");

    // Logging in now asks for a code.
    let mut fresh = Console::anonymous(&app.base);
    let step2 = fresh.login_form("mia", "mia-password-123").await;
    assert_eq!(step2.status, 200);
    step2.has("Enter your authentication code");

    // Turning it off takes a (fresh) code; a wrong one is refused.
    let p = c.post("/account/mfa/disable", &[("totp_code", "000000")]).await;
    assert_eq!(p.status, 422);
    p.has("invalid or already used TOTP code");
    let p = c.post("/account/mfa/disable", &[("totp_code", &totp_code(&secret, 30))]).await;
    assert_eq!(p.status, 303, "{}", p.html);
    c.follow(&p).await.has("Two-factor authentication is off");
    Console::login(&app.base, "mia", "mia-password-123").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_export_verify_settings_and_api_csrf() {
    let app = Appliance::start(Backend::Sqlite).await;
    let admin_api = app.admin().await;
    app.user(&admin_api, "val", "viewer").await;
    app.user(&admin_api, "otto", "operator").await;
    let mut c = Console::login(&app.base, "admin", ADMIN_PASSWORD).await;

    // A cookie-authenticated API write from a browser (it says so: Origin, Sec-Fetch-Site) needs
    // the session's token.
    let vni = json!({"name": "lab", "cidr": "10.77.0.0/24", "vni": 77});
    for (h, v) in [("origin", "http://evil.example"), ("sec-fetch-site", "cross-site")] {
        let r = c.http.post(format!("{}/api/v1/vnis", app.base)).header(h, v).json(&vni).send().await.unwrap();
        assert_eq!(r.status(), 403, "{h}");
        assert_eq!(r.json::<serde_json::Value>().await.unwrap()["code"], "CSRF_TOKEN_INVALID");
    }
    let r = c
        .http
        .post(format!("{}/api/v1/vnis", app.base))
        .header("origin", &app.base)
        .header("x-csrf-token", &c.csrf)
        .json(&vni)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    // A script holding the cookie itself (no browser headers) cannot be forged into anything.
    let r = c
        .http
        .post(format!("{}/api/v1/vnis", app.base))
        .json(&json!({"name": "lab3", "cidr": "10.79.0.0/24", "vni": 79}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    // Bearer clients are not affected.
    let r = admin_api.post("/api/v1/vnis", json!({"name": "lab2", "cidr": "10.78.0.0/24", "vni": 78})).await;
    assert_eq!(r.status, 201, "{}", r.text);

    let p = c.get("/audit?action=vni.*").await;
    assert_eq!(p.status, 200);
    p.has("<code>vni.create</code>")
        .lacks("<code>auth.login</code>")
        .has("value=\"vni.*\"")
        .has("<th scope=\"col\">Action</th>");
    c.get("/audit?outcome=failure").await.lacks("<code>vni.create</code>");
    let p = c.get("/audit?since=last+tuesday&action=vni.*").await;
    assert_eq!(p.status, 400);
    p.has("`since` must be a date").has("value=\"last tuesday\"");
    c.get("/audit?since=2000-01-01&until=2000-01-02").await.has("No audit entries match");

    // The export is what the API's export answers, as a download.
    let r = c.http.get(format!("{}/audit/export?format=csv&action=vni.*", app.base)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-disposition"].to_str().unwrap().starts_with("attachment"));
    let console_csv = r.text().await.unwrap();
    let api_csv = admin_api.get("/api/v1/audit/export?format=csv&action=vni.*").await.text;
    assert_eq!(console_csv, api_csv);
    assert_eq!(console_csv.lines().count(), 4, "{console_csv}");
    let r = c.http.get(format!("{}/audit/export?format=json&action=vni.*", app.base)).send().await.unwrap();
    assert_eq!(r.json::<serde_json::Value>().await.unwrap().as_array().map(Vec::len), Some(3));

    let p = c.post("/audit/verify", &[]).await;
    assert_eq!(p.status, 200, "{}", p.html);
    p.has("<strong>intact</strong>");

    // Settings: the warning, the configuration, no secret.
    let p = c.get("/settings").await;
    assert_eq!(p.status, 200);
    p.has("id=\"dhcp-warning\"").has("answers broadcast requests").has("SQLite").has("Listen addresses");
    let key = std::fs::read(app.data_dir.path().join("master.key")).expect("master key");
    p.lacks(&hex::encode(&key)).lacks("master.key").lacks(ADMIN_PASSWORD);

    // Lesser roles: no settings, no users; viewers have no audit; forged posts refused.
    let mut o = Console::login(&app.base, "otto", "otto-password-123").await;
    assert_eq!(o.get("/settings").await.status, 403);
    o.get("/audit").await.has("<code>vni.create</code>");
    let mut v = Console::login(&app.base, "val", "val-password-123").await;
    assert_eq!(v.get("/audit").await.status, 403);
    assert_eq!(v.post("/audit/verify", &[]).await.status, 403);
    assert_eq!(v.post_fields("/audit/verify", &[]).await.status, 403);
    let r = v.http.get(format!("{}/audit/export?format=csv", app.base)).send().await.unwrap();
    assert_eq!(r.status(), 403);
}
