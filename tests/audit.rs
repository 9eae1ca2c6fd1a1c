//! The audit chain: changes are recorded with who/what/target/where/outcome, filters and export
//! work, and an entry edited or deleted directly in the database is detected and named.

mod common;

use common::{Appliance, Backend, asset_body};
use serde_json::json;

async fn db(app: &Appliance) -> sqlx::AnyPool {
    sqlx::any::install_default_drivers();
    sqlx::AnyPool::connect(&app.database_url).await.expect("connect to the appliance's database")
}

async fn changes_are_recorded_and_filterable(backend: Backend) {
    let app = Appliance::start(backend).await;
    let admin = app.admin().await;
    let a = admin.post("/api/v1/assets", asset_body("node-1", "52:54:00:00:00:01")).await;
    let id = a.json["id"].as_str().unwrap().to_string();
    admin.patch(&format!("/api/v1/assets/{id}"), json!({"tags": ["x"]})).await;
    let dup = admin.post("/api/v1/assets", asset_body("node-2", "52:54:00:00:00:01")).await;
    assert_eq!(dup.status, 409);

    let r = admin.get(&format!("/api/v1/audit?target_id={id}")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let actions: Vec<&str> = r.json["data"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["asset.update", "asset.create"], "newest first");
    let e = &r.json["data"][1];
    assert_eq!(e["actor_type"], "user");
    assert_eq!(e["actor_name"], "admin");
    assert_eq!(e["source_ip"], "127.0.0.1");
    assert_eq!(e["outcome"], "success");
    assert_eq!(e["target_type"], "asset");
    assert!(chrono::DateTime::parse_from_rfc3339(e["ts"].as_str().unwrap()).is_ok());
    assert_eq!(e["hash"].as_str().unwrap().len(), 64);
    assert!(!r.text.contains("bmc-secret-pw"), "secrets never in the audit log");

    let fam = admin.get("/api/v1/audit?action=asset.*").await;
    assert_eq!(fam.json["meta"]["total"], 2);
    let by_actor = admin.get("/api/v1/audit?actor=admin&action=auth.login").await;
    assert!(by_actor.json["meta"]["total"].as_i64().unwrap() >= 1);
    let bad = admin.get("/api/v1/audit?since=yesterday").await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json["details"]["field"], "since");

    // Export: JSON (oldest first) and CSV with the same entries.
    let j = admin.get("/api/v1/audit/export?format=json").await;
    assert_eq!(j.status, 200);
    let entries = j.json.as_array().unwrap();
    let csv = admin.get("/api/v1/audit/export?format=csv").await;
    assert_eq!(csv.status, 200);
    assert!(csv.header("content-type").unwrap().starts_with("text/csv"));
    let lines: Vec<&str> = csv.text.lines().collect();
    assert!(lines[0].starts_with("seq,id,ts,actor_type"));
    assert_eq!(lines.len(), entries.len() + 1);
    assert!(lines[1].starts_with(&format!("1,{},", entries[0]["id"].as_str().unwrap())));
    let bad = admin.get("/api/v1/audit/export?format=xml").await;
    assert_eq!(bad.status, 400);
}

async fn verify_detects_direct_edits(backend: Backend) {
    let app = Appliance::start(backend).await;
    let admin = app.admin().await;
    for i in 0..5 {
        let r = admin.post("/api/v1/assets", asset_body(&format!("n{i}"), &format!("52:54:00:00:01:0{i}"))).await;
        assert_eq!(r.status, 201);
    }
    let v = admin.get("/api/v1/audit/verify").await;
    assert_eq!(v.status, 200, "{}", v.text);
    assert_eq!(v.json["valid"], true);
    let n = v.json["entries"].as_u64().unwrap();
    assert!(n >= 7, "first-run user, login, five creates: {n}");
    assert!(v.json["first_broken"].is_null());

    // Someone with database access rewrites history.
    let pool = db(&app).await;
    let victim: String = sqlx::query_scalar("SELECT id FROM audit_log WHERE seq = 4").fetch_one(&pool).await.unwrap();
    sqlx::query("UPDATE audit_log SET actor_name = 'mallory' WHERE seq = 4").execute(&pool).await.unwrap();
    let v = admin.get("/api/v1/audit/verify").await;
    assert_eq!(v.json["valid"], false, "{}", v.text);
    assert_eq!(v.json["first_broken"], victim.as_str());

    // Recomputing that entry's hash does not help: the next link breaks instead.
    let restored: (i64,) = sqlx::query_as("SELECT seq FROM audit_log WHERE seq = 4").fetch_one(&pool).await.unwrap();
    assert_eq!(restored.0, 4);
    sqlx::query("UPDATE audit_log SET actor_name = 'admin' WHERE seq = 4").execute(&pool).await.unwrap();
    assert_eq!(admin.get("/api/v1/audit/verify").await.json["valid"], true);

    // Deleting an entry in the middle is named too.
    let after: String = sqlx::query_scalar("SELECT id FROM audit_log WHERE seq = 3").fetch_one(&pool).await.unwrap();
    sqlx::query("DELETE FROM audit_log WHERE seq = 2").execute(&pool).await.unwrap();
    let v = admin.get("/api/v1/audit/verify").await;
    assert_eq!(v.json["valid"], false);
    assert_eq!(v.json["first_broken"], after.as_str());
    pool.close().await;
}

async fn truncating_the_newest_entries_is_detected(backend: Backend) {
    let app = Appliance::start(backend).await;
    let admin = app.admin().await;
    admin.post("/api/v1/assets", asset_body("t1", "52:54:00:00:02:01")).await;
    let pool = db(&app).await;
    let max: i64 = sqlx::query_scalar("SELECT MAX(seq) FROM audit_log").fetch_one(&pool).await.unwrap();
    sqlx::query("DELETE FROM audit_log WHERE seq = $1").bind(max).execute(&pool).await.unwrap();
    let v = admin.get("/api/v1/audit/verify").await;
    assert_eq!(v.json["valid"], false, "{}", v.text);
    pool.close().await;
}

async fn concurrent_writes_keep_one_chain(backend: Backend) {
    let app = Appliance::start(backend).await;
    let admin = app.admin().await;
    let mut tasks = Vec::new();
    for i in 0..30 {
        let c = admin.clone();
        tasks.push(tokio::spawn(async move {
            c.post("/api/v1/assets", asset_body(&format!("c{i}"), &format!("52:54:00:00:03:{i:02x}"))).await.status
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 201);
    }
    let v = admin.get("/api/v1/audit/verify").await;
    assert_eq!(v.json["valid"], true, "{}", v.text);
    assert!(v.json["entries"].as_u64().unwrap() >= 32);
}

both_backends!(
    changes_are_recorded_and_filterable,
    verify_detects_direct_edits,
    truncating_the_newest_entries_is_detected,
    concurrent_writes_keep_one_chain
);
