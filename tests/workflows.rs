//! Workflows end to end without a VM: the real appliance process and a stand-in agent (the
//! agent's own enrollment, registration, heartbeats, SSH server and history, with a dispatch
//! that pretends to wipe and write: `support/standin_agent.rs`). The VM and BMC version of these
//! runs in the lab tests; here: the engine, the lifecycle, the guards, the certificate, and
//! crash safety (SIGKILL of the appliance mid-wipe) with the destructive step counted from the
//! agent's own history.

#[macro_use]
mod common;
#[path = "support/standin_agent.rs"]
mod standin_agent;

use std::sync::atomic::Ordering;

use common::{Appliance, Backend, Client, Options, eventually};
use serde_json::{Value, json};

const GOOD_SHA: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

fn opts() -> Options {
    Options::default()
        .env("IRONBAY_WORKFLOWS__LEASE_SECS", "2")
        .env("IRONBAY_WORKFLOWS__INSTALL_QUIET_SECS", "1")
        .env("IRONBAY_WORKFLOWS__POLL_MS", "100")
}

async fn workflow_done(admin: &Client, id: &str, want: &str) -> Value {
    eventually(&format!("workflow {id} {want}"), 60, || async {
        let w = admin.get(&format!("/api/v1/workflows/{id}")).await.json;
        match w["state"].as_str() {
            Some(s) if s == want => Ok(w),
            Some("failed" | "succeeded" | "cancelled") => panic!("workflow ended {}: {w}", w["state"]),
            _ => Err(w.to_string()),
        }
    })
    .await
}

async fn asset_state(admin: &Client, id: &str) -> String {
    admin.get(&format!("/api/v1/assets/{id}")).await.json["state"].as_str().unwrap_or_default().to_string()
}

async fn a_wipe_runs_once_and_signs_a_certificate(backend: Backend) {
    let app = Appliance::start_with(backend, opts()).await;
    let admin = app.admin().await;
    let agent = standin_agent::start(&app.base, "52:54:00:c7:00:01", GOOD_SHA).await;
    let asset = agent.asset.clone();
    let hostname = admin.get(&format!("/api/v1/assets/{asset}")).await.json["hostname"].as_str().unwrap().to_string();

    let r = admin.post(&format!("/api/v1/assets/{asset}/wipe"), json!({"method": "zero", "confirm": hostname})).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let id = r.json["id"].as_str().unwrap().to_string();
    assert_eq!(r.json["kind"], "wipe");
    assert_eq!(asset_state(&admin, &asset).await, "wiping");
    let w = workflow_done(&admin, &id, "succeeded").await;
    let steps = w["steps"].as_array().unwrap();
    let status = |t: &str| -> Vec<String> {
        steps.iter().filter(|s| s["type"] == t).map(|s| s["status"].as_str().unwrap().to_string()).collect()
    };
    // The agent was already up: no power cycle; no BMC: the final power-off is the agent's.
    assert_eq!(status("set_boot_pxe"), ["skipped"]);
    assert_eq!(status("wipe"), ["succeeded"]);
    assert_eq!(status("power_off"), ["skipped", "succeeded"]);
    assert_eq!(agent.counters.wipes.load(Ordering::SeqCst), 1);
    assert_eq!(standin_agent::history_count(&agent, "wipe"), 1);
    assert_eq!(agent.counters.poweroffs.load(Ordering::SeqCst), 1);
    assert_eq!(asset_state(&admin, &asset).await, "available");
    let wipe_log = steps.iter().find(|s| s["type"] == "wipe").unwrap()["log"].to_string();
    assert!(wipe_log.contains("\"step\":\"wipe\""), "agent progress in the step log: {wipe_log}");

    // The certificate verifies with openssl against the published key; a changed byte does not.
    let cert = admin.get(&format!("/api/v1/workflows/{id}/certificate")).await;
    assert_eq!(cert.status, 200, "{}", cert.text);
    assert_eq!(cert.json["content"]["asset"]["id"], asset.as_str());
    assert_eq!(cert.json["content"]["method"], "zero");
    assert_eq!(cert.json["content"]["disks"][0]["serial"], "STANDIN-A");
    let key = admin.get("/api/v1/wipe-certificates/public-key").await;
    assert_eq!(key.status, 200);
    let dir = tempfile::tempdir().unwrap();
    let b64 = |s: &Value| {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.decode(s.as_str().unwrap()).unwrap()
    };
    std::fs::write(dir.path().join("key.pem"), &key.text).unwrap();
    std::fs::write(dir.path().join("evidence.json"), b64(&cert.json["evidence"])).unwrap();
    std::fs::write(dir.path().join("sig"), b64(&cert.json["signature"])).unwrap();
    let verify = |file: &str| {
        std::process::Command::new("openssl")
            .args(["pkeyutl", "-verify", "-pubin", "-inkey", "key.pem", "-rawin", "-in", file, "-sigfile", "sig"])
            .current_dir(dir.path())
            .output()
            .expect("openssl")
    };
    let ok = verify("evidence.json");
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stdout));
    let mut forged = b64(&cert.json["evidence"]);
    forged[10] ^= 1;
    std::fs::write(dir.path().join("forged.json"), forged).unwrap();
    assert!(!verify("forged.json").status.success());

    // Webhook-visible events were written: step starts and ends, the asset's state changes.
    let audit = admin.get("/api/v1/audit?per_page=100").await.json.to_string();
    for action in
        ["workflow.create", "workflow.step_start", "workflow.step_finish", "workflow.finish", "asset.state_change"]
    {
        assert!(audit.contains(action), "{action} in the audit log");
    }
    // Listed by asset and state.
    let list = admin.get(&format!("/api/v1/workflows?asset_id={asset}&state=succeeded")).await;
    assert_eq!(list.json["data"].as_array().map(Vec::len), Some(1), "{}", list.text);
}

async fn provision_ends_provisioned_and_boots_the_disk(backend: Backend) {
    let app = Appliance::start_with(backend, opts()).await;
    let admin = app.admin().await;
    let mac = "52:54:00:c7:00:02";
    let agent = standin_agent::start(&app.base, mac, GOOD_SHA).await;
    let asset = agent.asset.clone();
    // A registry image (served by the appliance itself) by its id.
    let img = admin.post("/api/v1/images", json!({"name": "tiny", "version": "1"})).await;
    assert_eq!(img.status, 201, "{}", img.text);
    let img_id = img.json["id"].as_str().unwrap().to_string();
    let up = admin
        .raw(
            reqwest::Method::PUT,
            &format!("/api/v1/images/{img_id}/content"),
            Some("application/octet-stream"),
            b"test".to_vec(),
        )
        .await;
    assert_eq!(up.status, 200, "{}", up.text);
    assert_eq!(up.json["sha256"], GOOD_SHA);

    let r = admin
        .post(
            &format!("/api/v1/assets/{asset}/provision"),
            json!({"image": {"image_id": img_id}, "disk": {"serial": "STANDIN-B"}, "wipe": "quick"}),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    let id = r.json["id"].as_str().unwrap().to_string();
    // An image in use cannot be deleted.
    assert_eq!(admin.delete(&format!("/api/v1/images/{img_id}")).await.error_code(), "IMAGE_IN_USE");
    let w = workflow_done(&admin, &id, "succeeded").await;
    let step = |t: &str| w["steps"].as_array().unwrap().iter().find(|s| s["type"] == t).unwrap().clone();
    assert_eq!(step("inventory")["result"]["target"]["path"], "/dev/vdb");
    assert_eq!(step("write_image")["status"], "succeeded");
    assert_eq!(asset_state(&admin, &asset).await, "provisioned");
    assert_eq!(agent.counters.writes.load(Ordering::SeqCst), 1);
    assert_eq!(agent.counters.wipes.load(Ordering::SeqCst), 1);
    assert_eq!(agent.counters.reboots.load(Ordering::SeqCst), 1);
    let script = reqwest::get(app.url(&format!("/boot.ipxe?mac={mac}"))).await.unwrap().text().await.unwrap();
    assert!(script.contains("exit"), "a provisioned machine boots its disk: {script}");
    assert!(!script.contains("ironbay.token"), "{script}");

    // Re-provisioning a provisioned machine needs `confirm`.
    let again = admin.post(&format!("/api/v1/assets/{asset}/provision"), json!({"image": {"image_id": img_id}})).await;
    assert_eq!(again.status, 422);
    assert_eq!(again.error_code(), "CONFIRMATION_REQUIRED");
}

async fn bad_requests_are_refused_and_change_nothing(backend: Backend) {
    let app = Appliance::start_with(backend, opts()).await;
    let admin = app.admin().await;
    let agent = standin_agent::start(&app.base, "52:54:00:c7:00:03", GOOD_SHA).await;
    let asset = agent.asset.clone();
    let wipe = |body: Value| {
        let admin = admin.clone();
        let asset = asset.clone();
        async move { admin.post(&format!("/api/v1/assets/{asset}/wipe"), body).await }
    };
    let unknown = admin.post("/api/v1/assets/ast_doesnotexist0000/wipe", json!({"confirm": "x"})).await;
    assert_eq!((unknown.status, unknown.error_code().as_str()), (404, "ASSET_NOT_FOUND"));
    let r = wipe(json!({"method": "quick"})).await;
    assert_eq!((r.status, r.error_code().as_str()), (422, "CONFIRMATION_REQUIRED"));
    let r = wipe(json!({"method": "quick", "confirm": "some-other-host"})).await;
    assert_eq!((r.status, r.error_code().as_str()), (422, "CONFIRMATION_REQUIRED"));
    let r = wipe(json!({"method": "shred", "confirm": asset})).await;
    assert_eq!(r.status, 422, "{}", r.text);
    let prov = |body: Value| {
        let admin = admin.clone();
        let asset = asset.clone();
        async move { admin.post(&format!("/api/v1/assets/{asset}/provision"), body).await }
    };
    let r = prov(json!({"image": {"url": "http://127.0.0.1:1/x.raw", "sha256": "abc"}})).await;
    assert_eq!((r.status, r.error_code().as_str()), (422, "INVALID_FIELD"));
    let missing = app.url("/images/library/no-such-image.raw");
    let r = prov(json!({"image": {"url": missing, "sha256": GOOD_SHA}})).await;
    assert_eq!((r.status, r.error_code().as_str()), (422, "IMAGE_URL_NOT_FOUND"), "{}", r.text);
    let r =
        prov(json!({"image": {"url": "http://x/y", "sha256": GOOD_SHA}, "disk": {"serial": "A", "path": "/dev/sda"}}))
            .await;
    assert_eq!(r.status, 422);
    assert_eq!(asset_state(&admin, &asset).await, "available");
    assert_eq!(admin.get("/api/v1/workflows").await.json["data"].as_array().map(Vec::len), Some(0));

    // Policy deny comes first (before confirm), audited, nothing started.
    let pol = admin
        .post("/api/v1/policies", json!({"name": "no-wipes", "rego": "package t\ndeny contains \"no wipes today\" if input.action == \"wipe\""}))
        .await;
    assert_eq!(pol.status, 201, "{}", pol.text);
    let r = wipe(json!({"method": "quick"})).await;
    assert_eq!((r.status, r.error_code().as_str()), (403, "POLICY_DENIED"));
    let pol_id = pol.json["id"].as_str().unwrap();
    assert_eq!(admin.delete(&format!("/api/v1/policies/{pol_id}")).await.status, 204);

    // Busy: a second workflow while one runs (the stand-in's wipe takes a while).
    agent.counters.work_ms.store(3000, Ordering::SeqCst);
    let first = wipe(json!({"method": "quick", "confirm": asset})).await;
    assert_eq!(first.status, 202, "{}", first.text);
    let r = wipe(json!({"method": "quick", "confirm": asset})).await;
    assert_eq!((r.status, r.error_code().as_str()), (409, "ASSET_BUSY"));
    let r = admin.post(&format!("/api/v1/assets/{asset}/power"), json!({"action": "off"})).await;
    assert_eq!((r.status, r.error_code().as_str()), (409, "ASSET_BUSY"));
    let id = first.json["id"].as_str().unwrap().to_string();
    eventually("the wipe running on the agent", 30, || async {
        if agent.counters.running.load(Ordering::SeqCst) > 0 { Ok(()) } else { Err("not yet".into()) }
    })
    .await;
    // Cancel while the wipe runs: it ends when the wipe step ends; the disks were touched, so
    // the asset is failed (never back to available with half-wiped disks).
    let c = admin.post(&format!("/api/v1/workflows/{id}/cancel"), json!({})).await;
    assert_eq!(c.status, 200, "{}", c.text);
    workflow_done(&admin, &id, "cancelled").await;
    assert_eq!(asset_state(&admin, &asset).await, "failed");
    let r = admin.post(&format!("/api/v1/workflows/{id}/cancel"), json!({})).await;
    assert_eq!(r.error_code(), "WORKFLOW_FINISHED");

    // An asset without BMC: power and bmc/check say so.
    let plain = admin.post("/api/v1/assets", json!({"hostname": "plain-1", "macs": ["52:54:00:c7:00:09"]})).await;
    let plain_id = plain.json["id"].as_str().unwrap();
    let r = admin.post(&format!("/api/v1/assets/{plain_id}/power"), json!({"action": "on"})).await;
    assert_eq!((r.status, r.error_code().as_str()), (409, "NO_BMC"));
    let r = admin.post(&format!("/api/v1/assets/{plain_id}/power"), json!({"action": "explode"})).await;
    assert_eq!(r.status, 422);
    // Viewers read workflows but start none.
    let viewer = app.user(&admin, "viewer1", "viewer").await;
    assert_eq!(viewer.get("/api/v1/workflows").await.status, 200);
    assert_eq!(
        viewer.post(&format!("/api/v1/assets/{plain_id}/wipe"), json!({"confirm": "plain-1"})).await.status,
        403
    );
}

/// The appliance is SIGKILLed while the agent wipes; restarted, it finds the step running under
/// an expired lease, asks the agent, waits for the run, and finishes: one wipe in the agent's
/// own history.
async fn a_killed_appliance_never_repeats_a_wipe(backend: Backend) {
    let app = Appliance::start_with(backend, opts()).await;
    let admin = app.admin().await;
    let agent = standin_agent::start(&app.base, "52:54:00:c7:00:04", GOOD_SHA).await;
    agent.counters.work_ms.store(4000, Ordering::SeqCst);
    let asset = agent.asset.clone();
    let r = admin.post(&format!("/api/v1/assets/{asset}/wipe"), json!({"method": "zero", "confirm": asset})).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let id = r.json["id"].as_str().unwrap().to_string();
    eventually("the wipe running on the agent", 30, || async {
        if agent.counters.running.load(Ordering::SeqCst) > 0 { Ok(()) } else { Err("not yet".into()) }
    })
    .await;
    let app = app.restart().await;
    let admin = app.admin().await;
    let w = workflow_done(&admin, &id, "succeeded").await;
    assert_eq!(
        agent.counters.wipes.load(Ordering::SeqCst),
        1,
        "the wipe ran exactly once: {w:#} {:?}",
        agent.shared.history.entries()
    );
    assert_eq!(standin_agent::history_count(&agent, "wipe"), 1);
    let wipe = w["steps"].as_array().unwrap().iter().find(|s| s["type"] == "wipe").unwrap().clone();
    assert!(wipe["log"].to_string().contains("recovering"), "{wipe}");
    assert_eq!(asset_state(&admin, &asset).await, "available");
    assert_eq!(admin.get(&format!("/api/v1/workflows/{id}/certificate")).await.status, 200);
}

/// Same, during an image write: the write is not repeated and the asset becomes provisioned only
/// after the agent's own record says the verified write finished.
async fn a_killed_appliance_never_repeats_an_image_write(backend: Backend) {
    let app = Appliance::start_with(backend, opts()).await;
    let admin = app.admin().await;
    let agent = standin_agent::start(&app.base, "52:54:00:c7:00:05", GOOD_SHA).await;
    agent.counters.work_ms.store(4000, Ordering::SeqCst);
    let asset = agent.asset.clone();
    let url = app.url("/api/v1/health");
    let r = admin
        .post(&format!("/api/v1/assets/{asset}/provision"), json!({"image": {"url": url, "sha256": GOOD_SHA}}))
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    let id = r.json["id"].as_str().unwrap().to_string();
    eventually("the write running on the agent", 30, || async {
        if agent.counters.running.load(Ordering::SeqCst) > 0 { Ok(()) } else { Err("not yet".into()) }
    })
    .await;
    let app = app.restart().await;
    let admin = app.admin().await;
    assert_ne!(asset_state(&admin, &asset).await, "provisioned", "not provisioned on a write still running");
    workflow_done(&admin, &id, "succeeded").await;
    assert_eq!(agent.counters.writes.load(Ordering::SeqCst), 1, "the image was written exactly once");
    assert_eq!(standin_agent::history_count(&agent, "write-image"), 1);
    assert_eq!(asset_state(&admin, &asset).await, "provisioned");
}

/// A write whose SHA-256 does not match fails the workflow and the asset, never provisioned;
/// a retry runs the failed step again.
async fn a_bad_image_fails_the_workflow_and_retry_runs_it_again(backend: Backend) {
    let app = Appliance::start_with(backend, opts()).await;
    let admin = app.admin().await;
    let agent = standin_agent::start(&app.base, "52:54:00:c7:00:06", GOOD_SHA).await;
    let asset = agent.asset.clone();
    let url = app.url("/api/v1/health");
    let bad = "0".repeat(64);
    let r =
        admin.post(&format!("/api/v1/assets/{asset}/provision"), json!({"image": {"url": url, "sha256": bad}})).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let id = r.json["id"].as_str().unwrap().to_string();
    let w = workflow_done(&admin, &id, "failed").await;
    assert_eq!(w["error"]["code"], "SHA256_MISMATCH", "{w}");
    assert_eq!(asset_state(&admin, &asset).await, "failed");
    let later: Vec<_> = w["steps"]
        .as_array()
        .unwrap()
        .iter()
        .skip_while(|s| s["type"] != "write_image")
        .skip(1)
        .map(|s| s["status"].clone())
        .collect();
    assert!(later.iter().all(|s| s == "cancelled"), "{later:?}");
    let r = admin.post(&format!("/api/v1/workflows/{id}/retry"), json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    workflow_done(&admin, &id, "failed").await;
    assert_eq!(agent.counters.writes.load(Ordering::SeqCst), 2, "the explicit retry ran the write again");
}

both_backends!(a_wipe_runs_once_and_signs_a_certificate, a_killed_appliance_never_repeats_a_wipe);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provision_sqlite() {
    provision_ends_provisioned_and_boots_the_disk(Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_sqlite() {
    bad_requests_are_refused_and_change_nothing(Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_write_crash_sqlite() {
    a_killed_appliance_never_repeats_an_image_write(Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_image_sqlite() {
    a_bad_image_fails_the_workflow_and_retry_runs_it_again(Backend::Sqlite).await
}

/// `GET /api/v1/events`: a viewer's stream carries asset and workflow events live (event name,
/// sequence id, the entry as data); a key without `workflows:read` is refused, and so is no one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_stream_is_scoped_and_live() {
    let app = Appliance::start_with(Backend::Sqlite, opts()).await;
    let admin = app.admin().await;
    assert_eq!(app.client().get("/api/v1/events").await.status, 401);
    let keyless = admin.api_key(&["assets:read"]).await;
    let r = keyless.get("/api/v1/events").await;
    assert_eq!((r.status, r.error_code().as_str()), (403, "INSUFFICIENT_SCOPE"));

    let viewer = app.user(&admin, "watcher", "viewer").await;
    let mut stream = viewer.request(reqwest::Method::GET, "/api/v1/events").send().await.expect("stream");
    assert_eq!(stream.status(), 200);
    assert!(stream.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    // Made after the stream opened, before the asset: a viewer's stream must not carry it.
    let u = admin
        .post("/api/v1/users", json!({"username": "hidden-1", "password": "hidden-password-123", "role": "viewer"}))
        .await;
    assert_eq!(u.status, 201, "{}", u.text);
    let created = admin.post("/api/v1/assets", json!({"hostname": "watched-1", "macs": ["52:54:00:c7:01:01"]})).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let id = created.json["id"].as_str().unwrap().to_string();
    let mut seen = String::new();
    let found = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        while let Some(chunk) = stream.chunk().await.expect("stream chunk") {
            seen.push_str(&String::from_utf8_lossy(&chunk));
            if seen.contains("event: asset.created") && seen.contains(&id) {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(found, Ok(true), "the stream so far: {seen}");
    assert!(seen.contains("\nid: "), "{seen}");
    // The user was created first, so its event would have come before the asset's.
    assert!(!seen.contains("user.created"), "{seen}");
}
