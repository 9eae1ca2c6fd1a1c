//! The console's network pages over real HTTP: VNIs (create, edit, allocate/release, delete with
//! typed confirmation), PSKs (values only in the answers that make or reveal them, reveals
//! audited), enrollment tokens and devices, and clusters (create form over available assets,
//! per-node progress, config downloads). Each form's refusal is shown next to the form with the
//! input kept, and roles that may not act see no action and have their forged posts refused.

mod common;

use std::path::Path;
use std::process::Command;

use common::console::{Console, Page};
use common::{ADMIN_PASSWORD, Appliance, Backend, Client, Options};
use serde_json::json;

/// The text of the first `class="secret"` element labelled `label`.
fn secret_in(page: &Page, label: &str) -> String {
    let key = format!("class=\"secret\" aria-label=\"{label}\">");
    let at = page.html.find(&key).unwrap_or_else(|| panic!("no {label} in the page:\n{}", page.html)) + key.len();
    let end = page.html[at..].find('<').expect("end of the secret");
    page.html[at..at + end].to_string()
}

fn id_from_location(p: &Page, prefix: &str) -> String {
    let loc = p.location.clone().unwrap_or_else(|| panic!("expected a redirect, got {}: {}", p.status, p.html));
    loc.strip_prefix(prefix).unwrap_or_else(|| panic!("{loc} does not start with {prefix}")).to_string()
}

async fn audit_count(admin: &Client, action: &str, target: &str) -> usize {
    let r = admin.get(&format!("/api/v1/audit?action={action}")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.json["data"].as_array().map(|a| a.iter().filter(|e| e["target_id"] == target).count()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vni_pages_create_edit_allocate_and_delete() {
    let app = Appliance::start(Backend::Sqlite).await;
    let admin = app.admin().await;
    let mut c = Console::login(&app.base, "admin", ADMIN_PASSWORD).await;

    let list = c.get("/vnis").await;
    assert_eq!(list.status, 200);
    list.has("<h1>VNIs</h1>").has("No VNIs yet.").has("Create VNI");

    // A bad network: the service's message next to the form, every field kept.
    let bad = c
        .post(
            "/vnis",
            &[
                ("name", "lab"),
                ("vni", "120"),
                ("cidr", "10.120.0.0/33"),
                ("gateway", "10.120.0.1"),
                ("dns_servers", "10.120.0.2, 10.120.0.3"),
                ("reserved", "10.120.0.200-10.120.0.210"),
                ("domain", "lab.example.net"),
                ("description", "the lab"),
            ],
        )
        .await;
    assert_eq!(bad.status, 422, "{}", bad.html);
    bad.has("class=\"error\"").has("INVALID_FIELD").has("value=\"10.120.0.0/33\"").has("value=\"lab\"");
    bad.has("value=\"10.120.0.2, 10.120.0.3\"").has(">10.120.0.200-10.120.0.210</textarea>").has("value=\"the lab\"");
    // An unparsable address is refused the same way, naming the field.
    let bad = c.post("/vnis", &[("name", "lab"), ("vni", "120"), ("cidr", "10.120.0.0/24"), ("gateway", "ten")]).await;
    assert_eq!(bad.status, 422);
    bad.has("gateway: `ten` is not an IP address").has("value=\"ten\"");
    assert_eq!(admin.get("/api/v1/vnis").await.json["meta"]["total"], 0, "nothing was created");

    let ok = c
        .post(
            "/vnis",
            &[
                ("name", "lab"),
                ("vni", "120"),
                ("cidr", "10.120.0.0/24"),
                ("gateway", "10.120.0.1"),
                ("dhcp_start", "10.120.0.100"),
                ("dhcp_end", "10.120.0.150"),
                ("dns_servers", "10.120.0.2 10.120.0.3"),
                ("reserved", "10.120.0.200-10.120.0.210\n10.120.0.250"),
                ("domain", "lab.example.net"),
                ("description", "the lab"),
            ],
        )
        .await;
    assert_eq!(ok.status, 303, "{}", ok.html);
    let id = id_from_location(&ok, "/vnis/");
    let api = admin.get(&format!("/api/v1/vnis/{id}")).await;
    assert_eq!(api.json["cidr"], "10.120.0.0/24");
    assert_eq!(api.json["dns_servers"], json!(["10.120.0.2", "10.120.0.3"]));
    assert_eq!(api.json["reserved"].as_array().map(Vec::len), Some(2));
    assert_eq!(api.json["dhcp"]["end"], "10.120.0.150");
    let detail = c.follow(&ok).await;
    assert_eq!(detail.status, 200);
    detail.has("Created VNI lab").has("<h1>VNI lab</h1>").has("data-live-topics=\"vni:").has("No address is allocated");
    let list = c.get("/vnis").await;
    list.has(&format!("href=\"/vnis/{id}\">lab</a>")).has("<meter").has("0 / ");

    // Edit: a refused change keeps what was typed; an accepted one is saved.
    let bad =
        c.post(&format!("/vnis/{id}"), &[("name", "lab"), ("gateway", "10.99.0.1"), ("description", "moved")]).await;
    assert_eq!(bad.status, 422, "{}", bad.html);
    bad.has("class=\"error\"").has("value=\"10.99.0.1\"").has("value=\"moved\"");
    let saved = c
        .post(
            &format!("/vnis/{id}"),
            &[("name", "lab-a"), ("gateway", "10.120.0.1"), ("description", "renamed"), ("dns_servers", "10.120.0.9")],
        )
        .await;
    assert_eq!(saved.status, 303, "{}", saved.html);
    let api = admin.get(&format!("/api/v1/vnis/{id}")).await;
    assert_eq!((api.json["name"].as_str(), api.json["description"].as_str()), (Some("lab-a"), Some("renamed")));
    assert_eq!(api.json["dhcp"], serde_json::Value::Null, "blank DHCP fields clear the range");

    // Allocate the lowest free address, a given one, and a refused one.
    let a = c.post(&format!("/vnis/{id}/allocations"), &[("holder_type", "other"), ("holder_id", "printer")]).await;
    assert_eq!(a.status, 303, "{}", a.html);
    let a = c
        .post(
            &format!("/vnis/{id}/allocations"),
            &[("holder_type", "other"), ("holder_id", "nas"), ("address", "10.120.0.50")],
        )
        .await;
    assert_eq!(a.status, 303, "{}", a.html);
    let taken = c
        .post(
            &format!("/vnis/{id}/allocations"),
            &[("holder_type", "other"), ("holder_id", "nas2"), ("address", "10.120.0.50")],
        )
        .await;
    assert_eq!(taken.status, 409, "{}", taken.html);
    taken.has("ADDRESS_TAKEN").has("value=\"nas2\"").has("value=\"10.120.0.50\"");
    // Answering a form at its POST address, the page still refreshes itself from the detail page.
    taken.has(&format!("data-live-url=\"/vnis/{id}?page=1\""));
    let allocs = admin.get(&format!("/api/v1/vnis/{id}/allocations")).await;
    assert_eq!(allocs.json["meta"]["total"], 2, "{}", allocs.text);
    let detail = c.get(&format!("/vnis/{id}")).await;
    detail.has("<code>10.120.0.50</code>").has("printer").has("2 of ");

    // Delete: refused while addresses are held, and without the typed name.
    let wrong = c.post(&format!("/vnis/{id}/delete"), &[("confirm", "lab")]).await;
    assert_eq!(wrong.status, 422);
    wrong.has("`lab-a` to confirm deleting it").has("value=\"lab\"");
    let busy = c.post(&format!("/vnis/{id}/delete"), &[("confirm", "lab-a")]).await;
    assert_eq!(busy.status, 409);
    busy.has("VNI_IN_USE");
    for addr in ["10.120.0.50", "10.120.0.2"] {
        let r = c.post(&format!("/vnis/{id}/release"), &[("address", addr)]).await;
        assert_eq!(r.status, 303, "release {addr}: {}", r.html);
    }
    let gone = c.post(&format!("/vnis/{id}/release"), &[("address", "10.120.0.77")]).await;
    assert_eq!(gone.status, 404);
    gone.has("ALLOCATION_NOT_FOUND");
    let del = c.post(&format!("/vnis/{id}/delete"), &[("confirm", "lab-a")]).await;
    assert_eq!(del.status, 303, "{}", del.html);
    assert_eq!(admin.get(&format!("/api/v1/vnis/{id}")).await.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_sees_vnis_without_actions_and_its_posts_are_refused() {
    let app = Appliance::start(Backend::Sqlite).await;
    let admin = app.admin().await;
    let r = admin.post("/api/v1/vnis", json!({"name": "lab", "cidr": "10.7.0.0/24", "vni": 7})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.json["id"].as_str().unwrap().to_string();
    app.user(&admin, "val", "viewer").await;
    let mut v = Console::login(&app.base, "val", "val-password-123").await;

    let list = v.get("/vnis").await;
    assert_eq!(list.status, 200);
    list.has("href=\"/vnis/").lacks("Create VNI").lacks("action=\"/vnis\"");
    let detail = v.get(&format!("/vnis/{id}")).await;
    assert_eq!(detail.status, 200);
    detail.has("<h1>VNI lab</h1>").lacks("Allocate").lacks("Delete VNI").lacks("Save changes").lacks("Release");

    // Allocations come 50 to a page.
    for n in 0..51 {
        let r = admin
            .post(
                &format!("/api/v1/vnis/{id}/allocations"),
                json!({"holder_type": "other", "holder_id": format!("h-{n}")}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    let first = v.get(&format!("/vnis/{id}")).await;
    first.has("Page 1 of 2").has(&format!("href=\"/vnis/{id}?page=2\"")).has(">10.7.0.50<").lacks(">10.7.0.51<");
    let second = v.get(&format!("/vnis/{id}?page=2")).await;
    second.has("Page 2 of 2").has(">10.7.0.51<").lacks(">10.7.0.1<").has("51 of ");

    for (path, fields) in [
        ("/vnis".to_string(), vec![("name", "x"), ("vni", "8"), ("cidr", "10.8.0.0/24")]),
        (format!("/vnis/{id}/delete"), vec![("confirm", "lab")]),
        (format!("/vnis/{id}/allocations"), vec![("holder_type", "other"), ("holder_id", "x")]),
    ] {
        let p = v.post(&path, &fields).await;
        assert_eq!(p.status, 403, "{path}: {}", p.html);
        p.has("missing permission").has("vnis:write");
    }
    assert_eq!(admin.get(&format!("/api/v1/vnis/{id}")).await.status, 200);
    assert_eq!(admin.get("/api/v1/vnis").await.json["meta"]["total"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psk_values_show_once_and_reveals_are_audited() {
    let app = Appliance::start(Backend::Sqlite).await;
    let admin = app.admin().await;
    let r = admin.post("/api/v1/vnis", json!({"name": "guests", "cidr": "10.9.0.0/24", "vni": 90})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    app.user(&admin, "opal", "operator").await;
    let mut op = Console::login(&app.base, "opal", "opal-password-123").await;

    // A bad value: the message next to the form, the other fields kept, the value not echoed.
    let bad = op
        .post(
            "/psks",
            &[
                ("psk_id", "guest-jane"),
                ("psk_value", "short1"),
                ("vlan_id", "90"),
                ("description", "Jane's phone"),
                ("enabled", "true"),
            ],
        )
        .await;
    assert_eq!(bad.status, 422, "{}", bad.html);
    bad.has("psk_value must be at least 8 characters").has("value=\"guest-jane\"").has("value=\"90\"").lacks("short1");
    let bad = op.post("/psks", &[("psk_id", "guest-jane"), ("vlan_id", "91"), ("enabled", "true")]).await;
    assert_eq!(bad.status, 422);
    bad.has("does not match any VNI").has("value=\"91\"");

    // Created with a generated value: shown in the answer, nowhere afterwards.
    let created = op.post("/psks", &[("psk_id", "guest-jane"), ("vlan_id", "90"), ("enabled", "true")]).await;
    assert_eq!(created.status, 201, "{}", created.html);
    created.has("shown once");
    let value = secret_in(&created, "PSK value");
    assert_eq!(value.len(), 24, "{value}");
    let listed = admin.get("/api/v1/psks").await;
    let id = listed.json["data"][0]["id"].as_str().unwrap().to_string();
    let list = op.get("/psks").await;
    list.has("guest-jane").lacks(&value);
    let detail = op.get(&format!("/psks/{id}")).await;
    assert_eq!(detail.status, 200);
    detail.has("<h1>PSK guest-jane</h1>").has("Reveal value").has("Rotate value").lacks(&value);
    // An operator may not delete PSKs: no form, and a forged one is refused.
    detail.lacks("Delete PSK");
    let forged = op.post(&format!("/psks/{id}/delete"), &[("confirm", "guest-jane")]).await;
    assert_eq!(forged.status, 403, "{}", forged.html);
    forged.has("psks:delete");
    assert_eq!(audit_count(&admin, "psk.read_value", &id).await, 0, "a detail page reads no value");

    // Reveal: the value, and an audit entry.
    let shown = op.post(&format!("/psks/{id}/reveal"), &[]).await;
    assert_eq!(shown.status, 200, "{}", shown.html);
    assert_eq!(secret_in(&shown, "PSK value"), value);
    shown.has("recorded in the audit log");
    assert_eq!(audit_count(&admin, "psk.read_value", &id).await, 1);

    // Rotate: a new value, the old one still accepted for the grace period.
    let bad = op.post(&format!("/psks/{id}/rotate"), &[("grace_hours", "99999")]).await;
    assert_eq!(bad.status, 422);
    bad.has("grace_hours must be").has("value=\"99999\"");
    let rotated = op.post(&format!("/psks/{id}/rotate"), &[("grace_hours", "2")]).await;
    assert_eq!(rotated.status, 200, "{}", rotated.html);
    let new_value = secret_in(&rotated, "PSK value");
    assert_ne!(new_value, value);
    rotated.has("The old value stays valid until");
    let api = admin.get(&format!("/api/v1/psks/{id}")).await;
    assert_eq!(api.json["psk_value"].as_str(), Some(new_value.as_str()));
    assert_eq!(api.json["previous_psk_value"].as_str(), Some(value.as_str()));

    // Edit and disable/enable through the update form.
    let bad = op.post(&format!("/psks/{id}"), &[("psk_id", "guest jane"), ("description", "kept")]).await;
    assert_eq!(bad.status, 422);
    bad.has("psk_id must be").has("value=\"guest jane\"").has("value=\"kept\"");
    let saved = op
        .post(&format!("/psks/{id}"), &[("psk_id", "guest-jane"), ("description", "Jane's phone"), ("vlan_id", "")])
        .await;
    assert_eq!(saved.status, 303, "{}", saved.html);
    let api = admin.get(&format!("/api/v1/psks/{id}")).await;
    assert_eq!(
        (api.json["description"].as_str(), &api.json["vlan_id"]),
        (Some("Jane's phone"), &serde_json::Value::Null)
    );
    let off = op.post(&format!("/psks/{id}"), &[("enabled", "false")]).await;
    assert_eq!(off.status, 303);
    op.follow(&off).await.has("PSK guest-jane is disabled").has("Enable");
    assert_eq!(admin.get(&format!("/api/v1/psks/{id}")).await.json["status"], "disabled");
    op.get("/psks?status=active").await.lacks("guest-jane").has("match this filter");
    op.get("/psks?status=disabled").await.has("guest-jane").has("<option value=\"disabled\" selected>");
    let refused = op.post(&format!("/psks/{id}/rotate"), &[]).await;
    assert_eq!(refused.status, 409);
    refused.has("PSK_NOT_ACTIVE");

    // An admin deletes it, after typing its name.
    let mut adm = Console::login(&app.base, "admin", ADMIN_PASSWORD).await;
    let detail = adm.get(&format!("/psks/{id}")).await;
    detail.has("Delete PSK guest-jane").has("data-confirm-match=\"guest-jane\"");
    let wrong = adm.post(&format!("/psks/{id}/delete"), &[("confirm", "guest")]).await;
    assert_eq!(wrong.status, 422);
    wrong.has("to confirm deleting it").has("value=\"guest\"");
    let del = adm.post(&format!("/psks/{id}/delete"), &[("confirm", "guest-jane")]).await;
    assert_eq!(del.status, 303, "{}", del.html);
    assert_eq!(admin.get(&format!("/api/v1/psks/{id}")).await.status, 404);

    // A viewer reads no PSKs: the page and a forged reveal are refused.
    app.user(&admin, "val", "viewer").await;
    let mut v = Console::login(&app.base, "val", "val-password-123").await;
    assert_eq!(v.get("/psks").await.status, 403);
    let r = op.post("/psks", &[("psk_id", "other"), ("enabled", "true")]).await;
    assert_eq!(r.status, 201);
    let other = admin.get("/api/v1/psks/other").await.json["id"].as_str().unwrap().to_string();
    let before = audit_count(&admin, "psk.read_value", &other).await;
    let forged = v.post(&format!("/psks/{other}/reveal"), &[]).await;
    assert_eq!(forged.status, 403, "{}", forged.html);
    assert_eq!(audit_count(&admin, "psk.read_value", &other).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrollment_tokens_show_once_and_devices_can_be_deleted() {
    let app = Appliance::start(Backend::Sqlite).await;
    let admin = app.admin().await;
    let mut c = Console::login(&app.base, "admin", ADMIN_PASSWORD).await;

    let page = c.get("/devices").await;
    assert_eq!(page.status, 200);
    page.has("<h1>Devices</h1>").has("No enrollment tokens.").has("No devices.").has("Create token");

    let bad =
        c.post("/enrollment-tokens", &[("max_uses", "0"), ("tags", "lab, edge"), ("description", "rack 4")]).await;
    assert_eq!(bad.status, 422, "{}", bad.html);
    bad.has("max_uses must be").has("value=\"lab, edge\"").has("value=\"rack 4\"");

    let made = c
        .post(
            "/enrollment-tokens",
            &[("max_uses", "2"), ("expires_in_hours", "1.5"), ("tags", "lab, edge"), ("description", "rack 4")],
        )
        .await;
    assert_eq!(made.status, 201, "{}", made.html);
    let token = secret_in(&made, "Enrollment token");
    assert!(token.starts_with("ibe_"), "{token}");
    let page = c.get("/devices").await;
    page.has("rack 4").has("0 / 2").lacks(&token);

    // A device enrolls with it (through the API, as devices do).
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).expect("key");
    let r = app
        .client()
        .post("/api/v1/devices/enroll", json!({"token": token, "name": "sensor-1", "public_key": key.public_key_pem()}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let dev = r.json["id"].as_str().unwrap().to_string();
    let page = c.get("/devices").await;
    page.has(&format!("href=\"/devices/{dev}\">sensor-1</a>")).has("1 / 2");
    let filtered = c.get("/devices?status=revoked").await;
    filtered.lacks("sensor-1").has("match this filter");
    let detail = c.get(&format!("/devices/{dev}")).await;
    assert_eq!(detail.status, 200);
    detail.has("<h1>Device sensor-1</h1>").has("enrolled").has("ed25519").has("Delete device sensor-1");

    let wrong = c.post(&format!("/devices/{dev}/delete"), &[("confirm", "sensor")]).await;
    assert_eq!(wrong.status, 422);
    wrong.has("to confirm deleting it").has("value=\"sensor\"");
    let del = c.post(&format!("/devices/{dev}/delete"), &[("confirm", "sensor-1")]).await;
    assert_eq!(del.status, 303, "{}", del.html);
    assert_eq!(admin.get(&format!("/api/v1/devices/{dev}")).await.json["status"], "revoked");
    c.follow(&del).await.has("revoked").has(">revoked<").lacks("Delete device sensor-1");

    // Revoke the token; revoking it again is refused with the reason shown.
    let tok_id = admin.get("/api/v1/enroll-tokens").await.json["data"][0]["id"].as_str().unwrap().to_string();
    let r = c.post(&format!("/enrollment-tokens/{tok_id}/revoke"), &[]).await;
    assert_eq!(r.status, 303, "{}", r.html);
    assert_eq!(admin.get(&format!("/api/v1/enroll-tokens/{tok_id}")).await.json["status"], "revoked");
    let again = c.post(&format!("/enrollment-tokens/{tok_id}/revoke"), &[]).await;
    assert_eq!(again.status, 409);
    again.has("ENROLL_TOKEN_REVOKED");

    // A viewer sees both lists but no action, and its forged posts are refused.
    app.user(&admin, "val", "viewer").await;
    let mut v = Console::login(&app.base, "val", "val-password-123").await;
    let page = v.get("/devices").await;
    assert_eq!(page.status, 200);
    page.has("sensor-1").lacks("Create token").lacks("/revoke");
    v.get(&format!("/devices/{dev}")).await.lacks("/delete");
    let forged = v.post("/enrollment-tokens", &[("max_uses", "1")]).await;
    assert_eq!(forged.status, 403, "{}", forged.html);
    forged.has("devices:write");
    let forged = v.post(&format!("/devices/{dev}/delete"), &[("confirm", "sensor-1")]).await;
    assert_eq!(forged.status, 403, "{}", forged.html);
    assert_eq!(admin.get("/api/v1/enroll-tokens").await.json["meta"]["total"], 1);
}

const TALOS: &str = "v1.13.9";

/// Fake Talos release files with a matching `sha256sum.txt` (checked at cluster create).
fn talos_artifacts(images: &Path) {
    let dir = images.join("talos").join(TALOS);
    std::fs::create_dir_all(&dir).unwrap();
    let mut sums = String::new();
    for (name, body) in
        [("vmlinuz-amd64", b"stand-in kernel".as_slice()), ("initramfs-amd64.xz", b"stand-in initramfs")]
    {
        std::fs::write(dir.join(name), body).unwrap();
        let out = Command::new("sha256sum").arg(dir.join(name)).output().unwrap();
        let hash = String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap().to_string();
        sums.push_str(&format!("{hash}  {name}\n"));
    }
    std::fs::write(dir.join("sha256sum.txt"), sums).unwrap();
}

async fn asset(admin: &Client, name: &str, n: u8) -> String {
    let mac = format!("52:54:00:c2:00:{n:02x}");
    let uuid = format!("5a1a2b3c-0000-4000-8000-0000000001{n:02x}");
    let r = admin.post("/api/v1/assets", json!({"hostname": name, "macs": [mac], "smbios_uuid": uuid})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.json["id"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clusters_are_created_from_available_assets() {
    let dir = tempfile::tempdir().unwrap();
    talos_artifacts(dir.path());
    let app = Appliance::start_with(
        Backend::Sqlite,
        Options::default().env("IRONBAY_BOOT__IMAGES_DIR", &dir.path().display().to_string()),
    )
    .await;
    let admin = app.admin().await;
    let r = admin
        .post("/api/v1/vnis", json!({"name": "nodes", "cidr": "10.30.0.0/24", "vni": 130, "gateway": "10.30.0.1"}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let vni = r.json["id"].as_str().unwrap().to_string();
    let a = asset(&admin, "n-a", 1).await;
    let b = asset(&admin, "n-b", 2).await;
    let mut c = Console::login(&app.base, "admin", ADMIN_PASSWORD).await;

    c.get("/clusters").await.has("No clusters yet.").has("href=\"/clusters/new\"");
    let form = c.get("/clusters/new").await;
    assert_eq!(form.status, 200);
    form.has(&format!("name=\"role_{a}\"")).has(&format!("name=\"role_{b}\"")).has(">n-a</a>").has(">n-b</a>");
    form.has(&format!("<option value=\"{vni}\">nodes (10.30.0.0/24, gateway 10.30.0.1)</option>"));

    let a_asset = a.as_str();
    let b_asset = b.as_str();
    let (role_a, role_b, ip_a, ip_b) = (format!("role_{a}"), format!("role_{b}"), format!("ip_{a}"), format!("ip_{b}"));
    // No control plane: the service's refusal, with the choices kept.
    let none = c
        .post(
            "/clusters",
            &[
                ("name", "c1"),
                ("vni_id", &vni),
                ("install_disk", "/dev/sda"),
                ("asset", a_asset),
                (&role_a, "none"),
                ("asset", b_asset),
                (&role_b, "worker"),
                (&ip_b, "10.30.0.11"),
            ],
        )
        .await;
    assert_eq!(none.status, 422, "{}", none.html);
    none.has("a cluster needs at least one control plane").has("value=\"c1\"").has("value=\"/dev/sda\"");
    none.has("<option value=\"worker\" selected>").has("value=\"10.30.0.11\"");
    none.has(&format!("<option value=\"{vni}\" selected>"));
    // An address outside the network: refused by the service, named.
    let outside = c
        .post(
            "/clusters",
            &[("name", "c1"), ("vni_id", &vni), ("asset", a_asset), (&role_a, "controlplane"), (&ip_a, "10.99.0.5")],
        )
        .await;
    assert!(outside.status == 422 || outside.status == 409, "{}: {}", outside.status, outside.html);
    outside.has("class=\"error\"").has("value=\"10.99.0.5\"").has("<option value=\"controlplane\" selected>");
    assert_eq!(admin.get("/api/v1/clusters").await.json["meta"]["total"], 0);

    // Created: one control plane addressed from the VNI, one worker with a given address.
    let ok = c
        .post(
            "/clusters",
            &[
                ("name", "c1"),
                ("vni_id", &vni),
                ("install_disk", "/dev/sda"),
                ("asset", a_asset),
                (&role_a, "controlplane"),
                (&ip_a, ""),
                ("asset", b_asset),
                (&role_b, "worker"),
                (&ip_b, "10.30.0.11"),
            ],
        )
        .await;
    assert_eq!(ok.status, 303, "{}", ok.html);
    let id = id_from_location(&ok, "/clusters/");
    let api = admin.get(&format!("/api/v1/clusters/{id}")).await;
    assert_eq!(api.json["controlPlanes"], 1, "{}", api.text);
    assert_eq!(api.json["nodes"].as_array().map(Vec::len), Some(2));
    let detail = c.follow(&ok).await;
    assert_eq!(detail.status, 200);
    detail
        .has("Creating cluster c1")
        .has("<h1>Cluster c1</h1>")
        .has(&format!("data-live-topics=\"cluster:{id} workflow\" data-live-url=\"/clusters/{id}\""));
    detail.has(">n-a</a>").has(">n-b</a>").has("10.30.0.11/24").has("<progress max=\"4\"");
    detail.has("Download talosconfig").lacks("Download kubeconfig").has("Delete cluster c1");
    c.get("/clusters").await.has(&format!("href=\"/clusters/{id}\">c1</a>")).has("1 control plane(s), 1 worker(s)");
    // The new form no longer offers the members.
    c.get("/clusters/new").await.lacks(&format!("name=\"role_{a}\""));

    // talosconfig: an audited download; kubeconfig: refused until ready, as a page.
    let r = c.http.get(format!("{}/clusters/{id}/talosconfig", app.base)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let disposition = r.headers()["content-disposition"].to_str().unwrap().to_string();
    assert!(disposition.starts_with("attachment;"), "{disposition}");
    assert!(r.text().await.unwrap().contains("context: c1"));
    assert_eq!(audit_count(&admin, "cluster.read_talosconfig", &id).await, 1);
    let k = c.get(&format!("/clusters/{id}/kubeconfig")).await;
    assert_eq!(k.status, 409);
    k.has("CLUSTER_NOT_READY");

    // Delete: the typed name is required; while it builds the service refuses (shown on the page).
    let wrong = c.post(&format!("/clusters/{id}/delete"), &[("confirm", "c2")]).await;
    assert_eq!(wrong.status, 422);
    wrong.has("to confirm deleting it").has("value=\"c2\"");
    let busy = c.post(&format!("/clusters/{id}/delete"), &[("confirm", "c1")]).await;
    assert_eq!(busy.status, 409, "{}", busy.html);
    busy.has("CLUSTER_BUSY").has("value=\"c1\"");

    // A viewer: no create link or delete form; the create page and forged posts are refused.
    app.user(&admin, "val", "viewer").await;
    let mut v = Console::login(&app.base, "val", "val-password-123").await;
    v.get("/clusters").await.has("c1").lacks("/clusters/new");
    v.get(&format!("/clusters/{id}")).await.has("<h1>Cluster c1</h1>").lacks("Delete cluster");
    assert_eq!(v.get("/clusters/new").await.status, 403);
    let forged = v.post("/clusters", &[("name", "c2"), ("asset", b_asset), (&role_b, "controlplane")]).await;
    assert_eq!(forged.status, 403, "{}", forged.html);
    forged.has("clusters:write").lacks("Create cluster</button>");
    let forged = v.post(&format!("/clusters/{id}/delete"), &[("confirm", "c1")]).await;
    assert_eq!(forged.status, 403, "{}", forged.html);
    assert_eq!(admin.get("/api/v1/clusters").await.json["meta"]["total"], 1);
}
