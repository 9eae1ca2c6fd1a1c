//! The console's asset and workflow pages over real HTTP: the asset table (filters, sort, pages),
//! registering an asset, an asset's page (inventory, BMC, delete), the wipe and provision forms
//! (typed confirmation, policy verdict) and the workflow page, for an admin and a viewer.

mod common;
#[path = "support/standin_agent.rs"]
mod standin_agent;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use common::console::{Console, Page};
use common::{ADMIN_PASSWORD, Appliance, Backend, Client, Options, eventually, kernel_arg};
use ironbay_agent::appliance::Appliance as ApplianceApi;
use ironbay_agent::identity::Identity;
use ironbay_wire::inventory::{Disk, Inventory, Nic};
use ironbay_wire::register::RegisterRequest;
use serde_json::{Value, json};

/// An asset without a BMC (its pages then never wait for one).
async fn asset(admin: &Client, hostname: &str, mac: &str, tags: &[&str]) -> String {
    let r = admin.post("/api/v1/assets", json!({"hostname": hostname, "macs": [mac], "tags": tags})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.json["id"].as_str().expect("asset id").to_string()
}

/// Where `needle` is in the page (for order checks).
fn at(p: &Page, needle: &str) -> usize {
    p.html.find(needle).unwrap_or_else(|| panic!("{needle:?} not in the page:\n{}", p.html))
}

async fn workflows_of(admin: &Client, asset: &str) -> Vec<Value> {
    let r = admin.get(&format!("/api/v1/workflows?asset_id={asset}")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.json["data"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_asset_table_filters_sorts_and_pages() {
    let app = Appliance::start(Backend::Sqlite).await;
    let admin = app.admin().await;
    for i in 0..60 {
        let tag = if i % 2 == 0 { "rack-a" } else { "rack-b" };
        let mut body =
            json!({"hostname": format!("node-{i:03}"), "macs": [format!("52:54:00:00:01:{i:02x}")], "tags": [tag]});
        if i % 10 == 0 {
            body["bmc"] =
                json!({"driver": "ipmi", "address": format!("10.9.0.{i}"), "username": "root", "password": "pw"});
        }
        let r = admin.post("/api/v1/assets", body).await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    let mut c = Console::login(&app.base, "admin", ADMIN_PASSWORD).await;

    // Default: by hostname, 50 a page, with links to the other page; headers toggle the order.
    let p = c.get("/assets").await;
    assert_eq!(p.status, 200, "{}", p.html);
    p.has("<h1>Assets</h1>").has("Showing 1–50 of 60 assets.").has("node-049").lacks("node-050");
    p.has("aria-sort=\"ascending\"><a href=\"/assets?sort=hostname&#38;order=desc\"");
    p.has("href=\"/assets?sort=hostname&#38;order=asc&#38;page=2\"");
    p.has("10.9.0.20").has("Register an asset").has("data-live-topics=\"asset\"");
    assert!(at(&p, "node-000") < at(&p, "node-001"));
    let p2 = c.get("/assets?sort=hostname&order=asc&page=2").await;
    p2.has("Showing 51–60 of 60 assets.").has("node-050").has("node-059").lacks("node-049");
    c.get("/assets?page=9").await.has("No assets on page 9: there are 60").lacks(">node-0");

    // Descending, and by creation time newest first.
    let p = c.get("/assets?sort=hostname&order=desc").await;
    p.has("aria-sort=\"descending\"").has("node-059").lacks("node-009");
    assert!(at(&p, "node-059") < at(&p, "node-058"));
    let p = c.get("/assets?sort=created&order=desc").await;
    p.has("sort=created&#38;order=asc");
    assert!(at(&p, "node-059") < at(&p, "node-010"));
    assert_eq!(c.get("/assets?sort=updated&order=asc").await.status, 200);
    assert!(at(&c.get("/assets?sort=state").await, "node-000") > 0);

    // Filters narrow the table, stay in the form and in the page links.
    let p = c.get("/assets?tag=rack-b").await;
    p.has("of 30 assets").has("node-001").lacks(">node-000<").has("name=\"tag\" value=\"rack-b\"");
    let p = c.get("/assets?has_bmc=no").await;
    p.has("of 54 assets")
        .lacks(">node-010<")
        .has("href=\"/assets?has_bmc=no&#38;sort=hostname&#38;order=asc&#38;page=2\"");
    let p = c.get("/assets?has_bmc=yes&bmc=10.9.0.3").await;
    p.has("of 1 assets").has(">node-030<");
    let p = c.get("/assets?mac=52:54:00:00:01:07").await;
    p.has("of 1 assets").has(">node-007<").lacks(">node-008<");
    let p = c.get("/assets?hostname=node-05").await;
    p.has("of 10 assets").has(">node-055<").lacks(">node-045<");
    c.get("/assets?state=failed").await.has("No assets match.");
    c.get("/assets?cluster=member").await.has("No assets match.");
    c.get("/assets?cluster=none").await.has("of 60 assets");

    // A filter that does not parse: a readable message, the input kept.
    let p = c.get("/assets?mac=not-a-mac").await;
    assert_eq!(p.status, 400);
    p.has("is not a MAC address").has("value=\"not-a-mac\"");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registering_an_asset_and_a_duplicate_mac() {
    let app = Appliance::start(Backend::Sqlite).await;
    let admin = app.admin().await;
    let mut c = Console::login(&app.base, "admin", ADMIN_PASSWORD).await;
    let form = c.get("/assets/new").await;
    assert_eq!(form.status, 200);
    form.has("<label for=\"hostname\">").has("name=\"bmc_password\"").has("action=\"/assets\"");

    let p = c
        .post(
            "/assets",
            &[
                ("hostname", "web-01"),
                ("macs", "52:54:00:aa:00:01, 52:54:00:aa:00:02"),
                ("tags", "rack-a role=web"),
                ("bmc_driver", "ipmi"),
                ("bmc_address", "10.1.2.3"),
                ("bmc_username", "root"),
                ("bmc_password", "bmc-pass-1"),
            ],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.html);
    let to = p.location.clone().expect("redirect");
    assert!(to.starts_with("/assets/ast_"), "{to}");
    let id = to.trim_start_matches("/assets/").to_string();
    let a = admin.get(&format!("/api/v1/assets/{id}")).await.json;
    assert_eq!(a["hostname"], "web-01");
    assert_eq!(a["macs"], json!(["52:54:00:aa:00:01", "52:54:00:aa:00:02"]));
    assert_eq!(a["tags"], json!(["rack-a", "role=web"]));
    assert_eq!(a["bmc"]["address"], "10.1.2.3");
    assert_eq!(a["bmc"]["port"], 623);
    assert_eq!(a["bmc"]["password_set"], true);

    // The same MAC again: 409 next to the form, every input but the password kept.
    let p = c
        .post(
            "/assets",
            &[
                ("hostname", "web-02"),
                ("macs", "52:54:00:aa:00:02"),
                ("tags", "rack-b"),
                ("bmc_address", "10.1.2.4"),
                ("bmc_username", "admin"),
                ("bmc_password", "do-not-echo-me"),
            ],
        )
        .await;
    assert_eq!(p.status, 409, "{}", p.html);
    p.has("class=\"error\"").has("DUPLICATE_MAC").has(&id);
    p.has("value=\"web-02\"").has("value=\"52:54:00:aa:00:02\"").has("value=\"rack-b\"").has("value=\"10.1.2.4\"");
    p.lacks("do-not-echo-me");
    let r = admin.get("/api/v1/assets?hostname=web-02").await;
    assert_eq!(r.json["meta"]["total"], 0, "nothing registered: {}", r.text);

    // Input the API refuses (hostname) or the form cannot read (MAC): 422 with the message.
    let p = c.post("/assets", &[("hostname", "bad host"), ("macs", "52:54:00:aa:00:09")]).await;
    assert_eq!(p.status, 422, "{}", p.html);
    p.has("is not a valid hostname").has("value=\"bad host\"");
    let p = c.post("/assets", &[("hostname", "web-03"), ("macs", "zz:zz")]).await;
    assert_eq!(p.status, 422);
    p.has("`zz:zz` is not a MAC address").has("value=\"web-03\"");

    // The asset page after registering.
    let page =
        c.follow(&Page { status: reqwest::StatusCode::SEE_OTHER, location: Some(to), html: String::new() }).await;
    page.has("<h1>web-01").has("role=web").has("10.1.2.3").has(&format!("href=\"/assets/{id}/edit\""));

    // Editing: the form shows the asset as it is; a refused value keeps what was typed.
    let edit = c.get(&format!("/assets/{id}/edit")).await;
    assert_eq!(edit.status, 200, "{}", edit.html);
    edit.has("value=\"web-01\"").has("value=\"rack-a, role=web\"").has("value=\"10.1.2.3\"").has("Leave empty to keep");
    let fields = |hostname: &'static str, remove: bool| {
        let mut f = vec![
            ("hostname", hostname),
            ("macs", "52:54:00:aa:00:01"),
            ("tags", "rack-c"),
            ("bmc_driver", "ipmi"),
            ("bmc_address", "10.1.2.3"),
            ("bmc_username", "root"),
        ];
        if remove {
            f.push(("remove_bmc", "on"));
        }
        f
    };
    let p = c.post(&format!("/assets/{id}/edit"), &fields("web_01!", false)).await;
    assert_eq!(p.status, 422, "{}", p.html);
    p.has("is not a valid hostname").has("value=\"web_01!\"").has("value=\"rack-c\"");
    let p = c.post(&format!("/assets/{id}/edit"), &fields("web-01a", false)).await;
    assert_eq!(p.status, 303, "{}", p.html);
    let a = admin.get(&format!("/api/v1/assets/{id}")).await.json;
    assert_eq!(a["hostname"], "web-01a");
    assert_eq!(a["tags"], json!(["rack-c"]));
    assert_eq!(a["macs"], json!(["52:54:00:aa:00:01"]));
    assert_eq!(a["bmc"]["password_set"], true, "the password is kept: {a}");
    let p = c.post(&format!("/assets/{id}/edit"), &fields("web-01a", true)).await;
    assert_eq!(p.status, 303, "{}", p.html);
    assert_eq!(admin.get(&format!("/api/v1/assets/{id}")).await.json["bmc"], Value::Null);
}

/// Boots an agent for `mac` far enough to report `inventory` (enrolment and registration).
async fn register_inventory(app: &Appliance, mac: &str, inventory: Inventory) -> String {
    let text = reqwest::get(app.url(&format!("/boot.ipxe?mac={mac}"))).await.unwrap().text().await.unwrap();
    let (asset, token) = (kernel_arg(&text, "ironbay.asset"), kernel_arg(&text, "ironbay.token"));
    let identity = Identity::generate().unwrap();
    let api = Arc::new(ApplianceApi::new(&app.base));
    let (a, t, pem) = (api.clone(), token.clone(), identity.spki_pem());
    let device = tokio::task::spawn_blocking(move || a.enroll(&t, "console-test", &pem)).await.unwrap().expect("enrol");
    let req = RegisterRequest {
        protocol: ironbay_wire::PROTOCOL_VERSION,
        agent_version: "test".into(),
        device_id: device,
        ssh_host_key: identity.openssh_public(),
        ssh_port: 22,
        ip: Some("127.0.0.1".into()),
        mac: Some(mac.into()),
        inventory,
    };
    tokio::task::spawn_blocking(move || api.register(&token, &req)).await.unwrap().expect("registration");
    asset
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_asset_page_shows_inventory_bmc_state_and_deletes_with_confirmation() {
    let app = Appliance::start(Backend::Sqlite).await;
    let admin = app.admin().await;
    let mac = "52:54:00:c0:00:01";
    let mut inv = Inventory::default();
    inv.system.vendor = Some("QEMU".into());
    inv.cpu.model = Some("Test CPU 9000".into());
    inv.cpu.arch = "x86_64".into();
    (inv.cpu.sockets, inv.cpu.cores, inv.cpu.threads) = (2, 16, 64);
    inv.memory.total_bytes = 64 << 30;
    inv.disks = vec![Disk {
        name: "nvme0n1".into(),
        path: "/dev/nvme0n1".into(),
        model: Some("FastDisk 3000".into()),
        serial: Some("SER-DISK-1".into()),
        size_bytes: 960 << 30,
        ..Default::default()
    }];
    inv.nics = vec![Nic { name: "eno1".into(), mac: mac.into(), speed_mbps: Some(25000), ..Default::default() }];
    let id = register_inventory(&app, mac, inv).await;
    let hostname = admin.get(&format!("/api/v1/assets/{id}")).await.json["hostname"].as_str().unwrap().to_string();

    let mut c = Console::login(&app.base, "admin", ADMIN_PASSWORD).await;
    let p = c.get(&format!("/assets/{id}")).await;
    assert_eq!(p.status, 200, "{}", p.html);
    p.has("Test CPU 9000").has("64 threads").has("64.0 GiB");
    p.has("/dev/nvme0n1").has("FastDisk 3000").has("SER-DISK-1").has("960.0 GiB");
    p.has("eno1").has(mac).has("25 Gb/s");
    p.has("No BMC is configured").has(&format!("data-live-topics=\"asset:{id}\""));
    p.has(&format!("href=\"/assets/{id}/wipe\"")).has(&format!("href=\"/assets/{id}/provision\""));

    // A power action without a BMC: a readable error on the page, not a blank or JSON answer.
    let p = c.post(&format!("/assets/{id}/power"), &[("action", "cycle")]).await;
    assert_eq!(p.status, 409, "{}", p.html);
    p.has("class=\"error\"").has("has no BMC credentials").has("NO_BMC").has("<h1>");
    let p = c.post(&format!("/assets/{id}/pxe"), &[]).await;
    assert_eq!(p.status, 409);
    p.has("NO_BMC");

    // An unreachable BMC: the page says so (the BMC is asked, and does not answer).
    let r = admin
        .patch(
            &format!("/api/v1/assets/{id}"),
            json!({"bmc": {"driver": "ipmi", "address": "127.0.0.1", "port": 9, "username": "u", "password": "p"}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let p = c.post(&format!("/assets/{id}/bmc-check"), &[]).await;
    assert_eq!(p.status, 502, "{}", p.html);
    p.has("The BMC could not be read").has("BMC_UNREACHABLE");

    // Delete: a wrong hostname changes nothing; the right one deletes.
    let p = c.post(&format!("/assets/{id}/delete"), &[("confirm", "not-it")]).await;
    assert_eq!(p.status, 422);
    p.has(&format!("Type the hostname {hostname} to confirm")).has("value=\"not-it\"");
    assert_eq!(admin.get(&format!("/api/v1/assets/{id}")).await.status, 200);
    let p = c.post(&format!("/assets/{id}/delete"), &[("confirm", &hostname)]).await;
    assert_eq!(p.status, 303, "{}", p.html);
    assert_eq!(p.location.as_deref(), Some("/assets"));
    c.follow(&p).await.has(&format!("Deleted asset {hostname}"));
    assert_eq!(admin.get(&format!("/api/v1/assets/{id}")).await.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wipe_needs_the_hostname_shows_the_policy_verdict_and_leads_to_the_workflow() {
    let app = Appliance::start(Backend::Sqlite).await;
    let admin = app.admin().await;
    let id = asset(&admin, "web-01", "52:54:00:d0:00:01", &["rack-a"]).await;
    let mut c = Console::login(&app.base, "admin", ADMIN_PASSWORD).await;

    let form = c.get(&format!("/assets/{id}/wipe")).await;
    assert_eq!(form.status, 200, "{}", form.html);
    form.has("<h1>Wipe web-01</h1>").has("verdict-allow").has("data-confirm-match=\"web-01\"");
    form.has("data-confirm-button=\"start-button\"").has("id=\"start-button\"").has("name=\"preview\"");

    // A wrong confirmation: the form again with the message and the choices kept; nothing starts.
    let p = c.post(&format!("/assets/{id}/wipe"), &[("method", "zero"), ("confirm", "web-02")]).await;
    assert_eq!(p.status, 422, "{}", p.html);
    p.has("Type the hostname web-01 to confirm").has("value=\"web-02\"").has("<option value=\"zero\" selected>");
    assert!(workflows_of(&admin, &id).await.is_empty(), "no workflow after a wrong confirmation");

    // "Check policy" only renders the verdict.
    let p = c.post(&format!("/assets/{id}/wipe"), &[("method", "zero"), ("confirm", "web-01"), ("preview", "1")]).await;
    assert_eq!(p.status, 200);
    p.has("verdict-allow").has("<option value=\"zero\" selected>");
    assert!(workflows_of(&admin, &id).await.is_empty(), "a preview starts nothing");

    // The right confirmation starts the wipe and leads to its page.
    let p = c.post(&format!("/assets/{id}/wipe"), &[("method", "quick"), ("confirm", "web-01")]).await;
    assert_eq!(p.status, 303, "{}", p.html);
    let to = p.location.clone().expect("redirect");
    let wf = to.strip_prefix("/workflows/").unwrap_or_else(|| panic!("to a workflow: {to}")).to_string();
    let w = admin.get(&format!("/api/v1/workflows/{wf}")).await;
    assert_eq!(w.status, 200, "{}", w.text);
    assert_eq!(w.json["kind"], "wipe");
    assert_eq!(w.json["asset_id"], id.as_str());
    let page = c.follow(&p).await;
    assert_eq!(page.status, 200, "{}", page.html);
    page.has("Started wipe of web-01").has(&format!("data-live-topics=\"workflow:{wf}\"")).has("<ol class=\"steps\">");
    let first_step = w.json["steps"][0]["type"].as_str().unwrap().to_string();
    page.has(&format!("<h3>{first_step} "));

    // The asset page lists it.
    let p = c.get(&format!("/assets/{id}")).await;
    p.has(&format!("href=\"/workflows/{wf}\""));

    // Cancel while it is active, else retry once it failed: whichever its state allows.
    let state = admin.get(&format!("/api/v1/workflows/{wf}")).await.json["state"].as_str().unwrap().to_string();
    let page = c.get(&to).await;
    if state == "failed" {
        page.has("Retry from the failed step").lacks("Cancel workflow");
    } else if state == "pending" || state == "running" {
        page.has("Cancel workflow").lacks("Retry from the failed step");
        let p = c.post(&format!("/workflows/{wf}/cancel"), &[]).await;
        assert_eq!(p.status, 303, "{}", p.html);
        let w = admin.get(&format!("/api/v1/workflows/{wf}")).await.json;
        assert!(w["state"] == "cancelled" || w["cancel_requested"] == true, "{w}");
        c.follow(&p).await.has("ancel");
    }
    // Retrying a workflow that has not failed: the refusal on the workflow page.
    let w = admin.get(&format!("/api/v1/workflows/{wf}")).await.json;
    if w["state"] != "failed" {
        let p = c.post(&format!("/workflows/{wf}/retry"), &[]).await;
        assert_eq!(p.status, 409, "{}", p.html);
        p.has("WORKFLOW_NOT_FAILED").has(&format!("data-live-topics=\"workflow:{wf}\""));
    }

    // A policy that denies wipes: the form shows the verdict and its reason; submitting is refused.
    let id2 = asset(&admin, "web-02", "52:54:00:d0:00:02", &[]).await;
    let r = admin
        .post(
            "/api/v1/policies",
            json!({"name": "no-wipes", "rego": "package t\ndeny contains \"no wipes today\" if input.action == \"wipe\""}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let form = c.get(&format!("/assets/{id2}/wipe")).await;
    form.has("verdict-deny").has("deny:").has("no-wipes").has("no wipes today");
    let p = c.post(&format!("/assets/{id2}/wipe"), &[("method", "discard"), ("confirm", "web-02")]).await;
    assert_eq!(p.status, 403, "{}", p.html);
    p.has("POLICY_DENIED").has("no wipes today").has("<option value=\"discard\" selected>");
    assert!(workflows_of(&admin, &id2).await.is_empty());

    // Provision is not denied by it; a submit without an image is refused with the inputs kept.
    let form = c.get(&format!("/assets/{id2}/provision")).await;
    assert_eq!(form.status, 200, "{}", form.html);
    form.has("<h1>Provision web-02</h1>").has("verdict-allow").has("name=\"image_id\"").has("name=\"disk\"");
    let p = c
        .post(
            &format!("/assets/{id2}/provision"),
            &[("disk", "serial"), ("disk_value", "SER-9"), ("wipe_first", "quick"), ("confirm", "web-02")],
        )
        .await;
    assert_eq!(p.status, 422, "{}", p.html);
    p.has("is required").has("value=\"SER-9\"").has("<option value=\"serial\" selected>");
    let p = c.post(&format!("/assets/{id2}/provision"), &[("image_url", "http://x/y.raw"), ("confirm", "nope")]).await;
    assert_eq!(p.status, 422);
    p.has("Type the hostname web-02 to confirm").has("value=\"http://x/y.raw\"");
    assert!(workflows_of(&admin, &id2).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_sees_no_actions_and_its_posts_are_refused() {
    let app = Appliance::start(Backend::Sqlite).await;
    let admin = app.admin().await;
    let id = asset(&admin, "db-01", "52:54:00:e0:00:01", &[]).await;
    let r = admin.post(&format!("/api/v1/assets/{id}/wipe"), json!({"confirm": "db-01"})).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let wf = r.json["id"].as_str().unwrap().to_string();
    app.user(&admin, "val", "viewer").await;
    let mut v = Console::login(&app.base, "val", "val-password-123").await;

    let p = v.get("/assets").await;
    assert_eq!(p.status, 200);
    p.has("db-01").lacks("Register an asset");
    let p = v.get(&format!("/assets/{id}")).await;
    assert_eq!(p.status, 200, "{}", p.html);
    p.has("<h1>db-01")
        .lacks("/edit\"")
        .lacks("/wipe\"")
        .lacks("/provision\"")
        .lacks("/power\"")
        .lacks("/pxe\"")
        .lacks("delete-button");
    let p = v.get(&format!("/assets/{id}/wipe")).await;
    p.has("Policy verdict").lacks("id=\"start-button\"");
    let p = v.get(&format!("/workflows/{wf}")).await;
    assert_eq!(p.status, 200, "{}", p.html);
    p.lacks("Cancel workflow").lacks("Retry from the failed step");

    // Forged (no token): refused before anything; with the token: refused by the service layer.
    let p = v.post_fields(&format!("/assets/{id}/wipe"), &[("confirm", "db-01")]).await;
    assert_eq!(p.status, 403);
    p.has("CSRF");
    let p = v.post(&format!("/assets/{id}/delete"), &[("confirm", "db-01")]).await;
    assert_eq!(p.status, 403, "{}", p.html);
    p.has("INSUFFICIENT_SCOPE");
    let p = v.post(&format!("/assets/{id}/power"), &[("action", "off")]).await;
    assert_eq!(p.status, 403);
    p.has("INSUFFICIENT_SCOPE");
    let p = v.post(&format!("/workflows/{wf}/cancel"), &[]).await;
    assert_eq!(p.status, 403, "{}", p.html);
    p.has("INSUFFICIENT_SCOPE");
    let p = v.post("/assets", &[("hostname", "sneaky")]).await;
    assert_eq!(p.status, 403);
    p.has("INSUFFICIENT_SCOPE").has("value=\"sneaky\"");
    assert_eq!(admin.get(&format!("/api/v1/assets/{id}")).await.status, 200, "still there");
    let w = admin.get(&format!("/api/v1/workflows/{wf}")).await.json;
    assert_eq!(w["cancel_requested"], false, "{w}");

    // A wipe the viewer confirms correctly is still the service's to refuse.
    let wf_count = workflows_of(&admin, &id).await.len();
    let p = v.post(&format!("/assets/{id}/wipe"), &[("confirm", "db-01")]).await;
    assert_eq!(p.status, 403);
    p.has("INSUFFICIENT_SCOPE");
    assert_eq!(workflows_of(&admin, &id).await.len(), wf_count);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_workflow_page_shows_a_running_steps_progress_then_its_outcome() {
    let opts = Options::default().env("IRONBAY_WORKFLOWS__LEASE_SECS", "2").env("IRONBAY_WORKFLOWS__POLL_MS", "100");
    let app = Appliance::start_with(Backend::Sqlite, opts).await;
    let admin = app.admin().await;
    let agent = standin_agent::start(&app.base, "52:54:00:f0:00:01", &"0".repeat(64)).await;
    // The stand-in's wipe takes this long after its first progress line.
    agent.counters.work_ms.store(3000, Ordering::SeqCst);
    let id = agent.asset.clone();
    let hostname = admin.get(&format!("/api/v1/assets/{id}")).await.json["hostname"].as_str().unwrap().to_string();
    let mut c = Console::login(&app.base, "admin", ADMIN_PASSWORD).await;
    let p = c.post(&format!("/assets/{id}/wipe"), &[("method", "zero"), ("confirm", &hostname)]).await;
    assert_eq!(p.status, 303, "{}", p.html);
    let to = p.location.clone().expect("redirect");
    let wf = to.trim_start_matches("/workflows/").to_string();

    // While the wipe runs: its progress bar (from the agent's progress line) and a cancel button.
    let running = eventually("the running wipe's progress bar", 30, || {
        let (http, url) = (c.http.clone(), format!("{}{to}", app.base));
        async move {
            let html =
                http.get(url).send().await.map_err(|e| e.to_string())?.text().await.map_err(|e| e.to_string())?;
            if html.contains("<progress") { Ok(html) } else { Err("no progress bar yet".into()) }
        }
    })
    .await;
    assert!(running.contains("wipe /dev/vda"), "{running}");
    assert!(running.contains("0% · 0 B of 1.0 MiB"), "{running}");
    assert!(running.contains("Cancel workflow"), "{running}");

    // Once it has succeeded: no bar, the step log, the certificate link, no action.
    eventually("the wipe to succeed", 60, || {
        let admin = &admin;
        let wf = wf.clone();
        async move {
            let w = admin.get(&format!("/api/v1/workflows/{wf}")).await.json;
            if w["state"] == "succeeded" { Ok(()) } else { Err(w["state"].to_string()) }
        }
    })
    .await;
    let done = c.get(&to).await;
    done.has("state-succeeded").lacks("<progress").lacks("Cancel workflow").lacks("Retry from the failed step");
    done.has("<pre class=\"log\">")
        .has("wipe /dev/vda 0 B / 1.0 MiB")
        .has(&format!("/api/v1/workflows/{wf}/certificate"));
    // The asset page lists it as succeeded.
    let p = c.get(&format!("/assets/{id}")).await;
    p.has(&format!("href=\"/workflows/{wf}\"")).has("badge state-succeeded");
}
