//! Secrets stay secret: BMC passwords, API keys, session and refresh tokens, TOTP seeds and the
//! admin password never appear in plaintext in the database (file bytes for SQLite, a full
//! pg_dump for PostgreSQL), in the log, or in any API response after the one that hands them out.

mod common;

use common::{ADMIN_PASSWORD, Appliance, Backend};
use serde_json::json;

const BMC_PASSWORD: &str = "Bmc-Pa55word-DoNotLeak";

fn pg_dump(url: &str) -> String {
    let bin = std::fs::read_dir("/usr/lib/postgresql")
        .expect("postgresql installed")
        .filter_map(Result::ok)
        .map(|e| e.path().join("bin/pg_dump"))
        .filter(|p| p.exists())
        .max()
        .expect("pg_dump");
    let out =
        std::process::Command::new(bin).arg("--data-only").arg("--inserts").arg(url).output().expect("run pg_dump");
    assert!(out.status.success(), "pg_dump: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every byte the store holds, as lossy text.
fn store_contents(app: &Appliance) -> String {
    match app.backend {
        Backend::Sqlite => {
            let mut all = String::new();
            for entry in std::fs::read_dir(app.data_dir.path()).unwrap().filter_map(Result::ok) {
                let name = entry.file_name().to_string_lossy().to_string();
                if name.starts_with("ironbay.db") {
                    all.push_str(&String::from_utf8_lossy(&std::fs::read(entry.path()).unwrap()));
                }
            }
            assert!(all.contains("node-secret"), "sanity: the dump does hold the data");
            all
        }
        Backend::Postgres => {
            let dump = pg_dump(&app.database_url);
            assert!(dump.contains("node-secret"), "sanity: the dump does hold the data");
            dump
        }
    }
}

async fn no_plaintext_secrets_at_rest_or_in_logs(backend: Backend) {
    let app = Appliance::start(backend).await;
    let c = app.client();
    let login = c.post("/api/v1/auth/login", json!({"username": "admin", "password": ADMIN_PASSWORD})).await;
    let refresh = login.json["refresh_token"].as_str().unwrap().to_string();
    let session_cookie = login
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|v| v.starts_with("ironbay_session="))
        .unwrap()
        .trim_start_matches("ironbay_session=")
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let admin = c.login("admin", ADMIN_PASSWORD).await;

    let mut body = common::asset_body("node-secret", "52:54:00:aa:bb:cc");
    body["bmc"]["password"] = json!(BMC_PASSWORD);
    let asset = admin.post("/api/v1/assets", body).await;
    assert_eq!(asset.status, 201);
    assert!(!asset.text.contains(BMC_PASSWORD), "never returned, even on create");
    assert_eq!(asset.json["bmc"]["password_set"], true);
    let id = asset.json["id"].as_str().unwrap();
    assert!(!admin.get(&format!("/api/v1/assets/{id}")).await.text.contains(BMC_PASSWORD));
    assert!(!admin.get("/api/v1/assets").await.text.contains(BMC_PASSWORD));

    let key = admin.post("/api/v1/api-keys", json!({"name": "k", "scopes": ["assets:read"]})).await.json["key"]
        .as_str()
        .unwrap()
        .to_string();
    let mfa = admin.post("/api/v1/auth/mfa/setup", json!({})).await;
    let totp_seed = mfa.json["secret"].as_str().unwrap().to_string();
    // Use the key once so its use is logged (if anything were to log it).
    assert_eq!(admin.with_auth(common::Auth::XApiKey(key.clone())).get("/api/v1/assets").await.status, 200);
    let export = admin.get("/api/v1/audit/export?format=json").await.text;

    let stored = store_contents(&app);
    let logs = app.logs();
    for (what, secret) in [
        ("BMC password", BMC_PASSWORD),
        ("admin password", ADMIN_PASSWORD),
        ("API key", key.as_str()),
        ("refresh token", refresh.as_str()),
        ("session cookie", session_cookie.as_str()),
        ("TOTP seed", totp_seed.as_str()),
    ] {
        assert!(!stored.contains(secret), "{what} found in plaintext in the store");
        assert!(!logs.contains(secret), "{what} found in the log");
        assert!(!export.contains(secret), "{what} found in the audit export");
    }
    assert!(stored.contains("$argon2id$"), "passwords are stored as argon2id hashes");
}

both_backends!(no_plaintext_secrets_at_rest_or_in_logs);
