//! First run and configuration: data dir and master key created with tight permissions, the admin
//! password printed once (never logged, never reprinted), and `ironbay config check` naming the
//! bad key and its line.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use common::{Appliance, Backend, Options};
use serde_json::json;

fn generated_password(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.split("with password: ").nth(1))
        .unwrap_or_else(|| panic!("no generated password in stdout: {stdout:?}"))
        .trim()
        .to_string()
}

async fn first_run_creates_key_and_admin_once(backend: Backend) {
    // The data dir must not exist yet: the appliance creates it.
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("data");
    let opts =
        Options { admin_password: Some(None), ..Options::default() }.env("IRONBAY_DATA_DIR", dir.to_str().unwrap());
    let app = Appliance::start_with(backend, opts).await;

    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    let key_path = dir.join("master.key");
    assert_eq!(mode(&key_path), 0o600);
    let key = std::fs::read(&key_path).unwrap();
    assert_eq!(key.len(), 32);
    assert_ne!(key, vec![0u8; 32]);

    let password = generated_password(&app.stdout());
    assert!(password.len() >= 16);
    assert!(!app.logs().contains(&password), "the password is printed to stdout, never logged");
    let admin = app.client().login("admin", &password).await;
    assert_eq!(admin.get("/api/v1/auth/me").await.json["role"], "admin");

    // A second start changes nothing and prints nothing.
    let app = app.restart().await;
    assert!(!app.stdout().contains("password"), "reprinted: {}", app.stdout());
    assert_eq!(std::fs::read(&key_path).unwrap(), key, "master key rotated");
    let admin = app.client().login("admin", &password).await;
    assert_eq!(admin.get("/api/v1/users").await.json["meta"]["total"], 1);
}

async fn data_survives_restart(backend: Backend) {
    let app = Appliance::start(backend).await;
    let admin = app.admin().await;
    let mut body = common::asset_body("keep-me", "52:54:00:10:20:30");
    body["bmc"]["password"] = json!("persisted-bmc-pw");
    let id = admin.post("/api/v1/assets", body).await.json["id"].as_str().unwrap().to_string();
    let key = admin.api_key(&["assets:read"]).await;
    let app = app.restart().await;
    let key = key.with_auth(common::Auth::Bearer(key.token()));
    let key = common::Client { base: app.base.clone(), ..key };
    let r = key.get(&format!("/api/v1/assets/{id}")).await;
    assert_eq!(r.status, 200, "API keys and assets survive a restart: {}", r.text);
    assert_eq!(r.json["bmc"]["password_set"], true);
    assert_eq!(app.admin().await.get("/api/v1/audit/verify").await.json["valid"], true);
}

both_backends!(first_run_creates_key_and_admin_once, data_survives_restart);

fn ironbay(args: &[&str], dir: &std::path::Path) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ironbay"))
        .args(args)
        .current_dir(dir)
        .env_remove("IRONBAY_CONFIG")
        .output()
        .expect("run ironbay");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn config_check_names_the_bad_key_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(&good, "listen = [\"127.0.0.1:8080\"]\ndata_dir = \"/var/lib/ironbay\"\n\n[rate_limit]\napi_per_minute = 600\n\n[[dhcp.interfaces]]\nname = \"ibbr0\"\nmode = \"full\"\nvni = \"rack-a\"\n").unwrap();
    let (code, out, err) = ironbay(&["config", "check", good.to_str().unwrap()], dir.path());
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("OK"));

    let typo = dir.path().join("typo.toml");
    std::fs::write(&typo, "listen = \"127.0.0.1:8080\"\n\n[auth]\nsesion_ttl_hours = 4\n").unwrap();
    let (code, _, err) = ironbay(&["config", "check", typo.to_str().unwrap()], dir.path());
    assert_eq!(code, 2);
    assert!(err.contains("sesion_ttl_hours") && err.contains("line 4"), "{err}");

    let bad_value = dir.path().join("bad.toml");
    std::fs::write(&bad_value, "data_dir = \"/tmp/x\"\nlisten = \"localhost-8080\"\n").unwrap();
    let (code, _, err) = ironbay(&["config", "check", bad_value.to_str().unwrap()], dir.path());
    assert_eq!(code, 2);
    assert!(err.contains("`listen`") && err.contains("line 2") && err.contains("localhost-8080"), "{err}");

    let zero = dir.path().join("zero.toml");
    std::fs::write(&zero, "[rate_limit]\n# comment\napi_per_minute = 0\n").unwrap();
    let (code, _, err) = ironbay(&["config", "check", zero.to_str().unwrap()], dir.path());
    assert_eq!(code, 2);
    assert!(err.contains("rate_limit.api_per_minute") && err.contains("line 3"), "{err}");

    let syntax = dir.path().join("syntax.toml");
    std::fs::write(&syntax, "listen = [\"127.0.0.1:8080\"\n").unwrap();
    let (code, _, err) = ironbay(&["config", "check", syntax.to_str().unwrap()], dir.path());
    assert_eq!(code, 2);
    assert!(err.contains("line"), "{err}");

    let (code, _, err) = ironbay(&["config", "check", "/nonexistent/ironbay.toml"], dir.path());
    assert_eq!(code, 2);
    assert!(err.contains("/nonexistent/ironbay.toml"), "{err}");
}

#[test]
fn serve_refuses_a_bad_config_and_a_bad_env_var() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ironbay.toml"), "[api]\nmax_body_bytes = 0\n").unwrap();
    let (code, _, err) = ironbay(&["serve"], dir.path());
    assert_eq!(code, 2);
    assert!(err.contains("api.max_body_bytes"), "{err}");
    std::fs::remove_file(dir.path().join("ironbay.toml")).unwrap();

    let out = Command::new(env!("CARGO_BIN_EXE_ironbay"))
        .args(["serve"])
        .current_dir(dir.path())
        .env("IRONBAY_DATABASE_URL", "mysql://nope")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("database_url"));
    assert!(!dir.path().join("ironbay-data").exists(), "nothing created for a refused config");
}
