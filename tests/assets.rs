//! The asset registry over real HTTP on both backends: create (normalised MACs, sealed BMC
//! password), get, paginated and filtered lists, uniqueness of MAC and hostname (also under
//! concurrent creates), PATCH semantics and generations, delete, and the audit trail of each change.

mod common;

use std::collections::HashSet;
use std::sync::Arc;

use common::{Appliance, Backend, Client, Resp};
use serde_json::{Value, json};

const BMC_PASSWORD: &str = "bmc-secret-pw";

async fn create(c: &Client, body: Value) -> Value {
    let r = c.post("/api/v1/assets", body.clone()).await;
    assert_eq!(r.status, 201, "create {body}: {}", r.text);
    r.json
}

fn id_of(v: &Value) -> String {
    v["id"].as_str().unwrap_or_else(|| panic!("no id in {v}")).to_string()
}

async fn get(c: &Client, id: &str) -> Resp {
    c.get(&format!("/api/v1/assets/{id}")).await
}

/// The ids of a list answer, in order, after checking it is a 200 with `meta`.
async fn list(c: &Client, query: &str) -> (Vec<String>, Value) {
    let r = c.get(&format!("/api/v1/assets{query}")).await;
    assert_eq!(r.status, 200, "list {query}: {}", r.text);
    let ids = r.json["data"].as_array().unwrap_or_else(|| panic!("no data: {}", r.text)).iter().map(id_of).collect();
    (ids, r.json["meta"].clone())
}

async fn total(c: &Client, query: &str) -> i64 {
    list(c, query).await.1["total"].as_i64().expect("meta.total")
}

fn expect_code(label: &str, r: &Resp, status: u16, code: &str) {
    assert_eq!(r.status, status, "{label}: {}", r.text);
    assert_eq!(r.error_code(), code, "{label}: {}", r.text);
}

fn assert_no_password(label: &str, text: &str) {
    assert!(!text.contains(BMC_PASSWORD), "{label}: the BMC password leaked: {text}");
}

async fn create_and_get(backend: Backend) {
    let app = Appliance::start(backend).await;
    let admin = app.admin().await;
    let body = json!({
        "hostname": "Node-01.Example",
        "macs": ["52-54-00-AB-CD-EF", "5254.0012.3456", "AABBCCDDEEFF", "02:00:00:0A:0B:0C"],
        "tags": ["rack-a", "gpu", "rack-a"],
        "smbios_uuid": "4C4C4544-004C-4E10-804B-B4C04F4E4B31",
        "serial": "SN-0001",
        "bmc": {"driver": "ipmi", "address": "10.0.0.10", "username": "root", "password": BMC_PASSWORD}
    });
    let r = admin.post("/api/v1/assets", body).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_no_password("create response", &r.text);
    let a = &r.json;
    let id = id_of(a);
    assert!(id.starts_with("ast_") && id.len() > 4, "id {id}");
    assert_eq!(a["hostname"], "node-01.example");
    assert_eq!(a["state"], "available");
    assert_eq!(a["status"], "available");
    assert_eq!(a["macs"], json!(["52:54:00:ab:cd:ef", "52:54:00:12:34:56", "aa:bb:cc:dd:ee:ff", "02:00:00:0a:0b:0c"]));
    assert_eq!(a["tags"], json!(["rack-a", "gpu"]), "tags keep their order, duplicates dropped");
    assert_eq!(a["smbios_uuid"], "4c4c4544-004c-4e10-804b-b4c04f4e4b31");
    assert_eq!(a["serial"], "SN-0001");
    assert_eq!(a["generation"], 1);
    assert!(a["created_at"].is_string() && a["created_at"] == a["updated_at"], "{a}");
    // The BMC is described, its password only as a flag.
    assert_eq!(
        a["bmc"],
        json!({"driver": "ipmi", "address": "10.0.0.10", "port": 623, "username": "root", "password_set": true})
    );

    // GET answers the same representation.
    let g = get(&admin, &id).await;
    assert_eq!(g.status, 200, "{}", g.text);
    assert_eq!(g.json, r.json);
    assert_no_password("get", &g.text);
    let l = admin.get("/api/v1/assets").await;
    assert_eq!(l.json["data"], json!([r.json.clone()]));
    assert_no_password("list", &l.text);
    let audit = admin.get(&format!("/api/v1/audit?target_id={id}")).await;
    assert_eq!(audit.json["meta"]["total"], 1, "{}", audit.text);
    assert_no_password("audit", &audit.text);
    let export = admin.get("/api/v1/audit/export").await;
    assert_eq!(export.status, 200, "{}", export.text);
    assert_no_password("audit export", &export.text);

    // A second asset gets its own id; a Redfish BMC defaults to port 443, an explicit port stays.
    let b = create(&admin, json!({"hostname": "node-02", "bmc": {"driver": "redfish", "address": "bmc-2.example", "username": "admin", "password": "x"}})).await;
    assert_ne!(id_of(&b), id);
    assert_eq!(b["bmc"]["port"], 443);
    assert_eq!(b["macs"], json!([]));
    let c = create(&admin, json!({"hostname": "node-03", "bmc": {"driver": "ipmi", "address": "10.0.0.3", "port": 6230, "username": "admin", "password": "x"}})).await;
    assert_eq!(c["bmc"]["port"], 6230);
    assert_eq!(total(&admin, "").await, 3);
}

async fn pagination(backend: Backend) {
    let app = Appliance::start(backend).await;
    let admin = app.admin().await;
    let mut created = Vec::new();
    for i in 0..25 {
        created.push(id_of(
            &create(&admin, common::asset_body(&format!("node-{i:02}"), &format!("52:54:00:00:01:{i:02x}"))).await,
        ));
    }
    let (first, meta) = list(&admin, "").await;
    assert_eq!(meta, json!({"page": 1, "per_page": 20, "total": 25}));
    assert_eq!(first.len(), 20);
    let (second, meta) = list(&admin, "?page=2").await;
    assert_eq!(meta, json!({"page": 2, "per_page": 20, "total": 25}));
    assert_eq!(second.len(), 5);
    let mut seen: HashSet<&String> = first.iter().collect();
    for id in &second {
        assert!(seen.insert(id), "{id} is on both pages");
    }
    assert_eq!(seen, created.iter().collect::<HashSet<_>>(), "the two pages are exactly the assets created");
    // Creation order, stable across pages.
    assert_eq!(first.iter().chain(&second).cloned().collect::<Vec<_>>(), created);

    let (third, meta) = list(&admin, "?page=3").await;
    assert!(third.is_empty());
    assert_eq!(meta["total"], 25);
    let (small, meta) = list(&admin, "?per_page=10&page=3").await;
    assert_eq!(meta, json!({"page": 3, "per_page": 10, "total": 25}));
    assert_eq!(small, created[20..]);
    let (all, meta) = list(&admin, "?per_page=1000").await;
    assert_eq!(meta["per_page"], 100);
    assert_eq!(all, created);
}

async fn filters(backend: Backend) {
    let app = Appliance::start(backend).await;
    let admin = app.admin().await;
    let a = id_of(
        &create(
            &admin,
            json!({"hostname": "alpha", "macs": ["52:54:00:aa:00:01", "52:54:00:aa:00:02"], "tags": ["rack-a", "gpu"]}),
        )
        .await,
    );
    let b = id_of(
        &create(&admin, json!({"hostname": "bravo", "macs": ["52:54:00:bb:00:01"], "tags": ["rack-b", "gpu"]})).await,
    );
    let c = id_of(&create(&admin, json!({"hostname": "charlie", "macs": [], "tags": ["rack-b"]})).await);

    assert_eq!(list(&admin, "?status=available").await.0, [a.as_str(), b.as_str(), c.as_str()]);
    assert_eq!(list(&admin, "?state=available").await.0, [a.as_str(), b.as_str(), c.as_str()]);
    for other in ["provisioned", "discovering", "failed"] {
        let (ids, meta) = list(&admin, &format!("?status={other}")).await;
        assert!(ids.is_empty() && meta["total"] == 0, "status={other}: {ids:?}");
    }
    let (ids, meta) = list(&admin, "?tag=gpu").await;
    assert_eq!((ids, meta["total"].clone()), (vec![a.clone(), b.clone()], json!(2)));
    assert_eq!(list(&admin, "?tag=rack-b").await.0, [b.as_str(), c.as_str()]);
    assert_eq!(list(&admin, "?tag=rack-a").await.0, [a.as_str()]);
    assert!(list(&admin, "?tag=rack").await.0.is_empty(), "tags match exactly, not by prefix");
    assert_eq!(list(&admin, "?tag=gpu&status=available").await.0, [a.as_str(), b.as_str()]);
    assert_eq!(list(&admin, "?tag=rack-b&hostname=charlie").await.0, [c.as_str()]);

    // A MAC in any spelling finds its asset, whichever of its MACs it is.
    for spelling in ["52:54:00:aa:00:02", "52:54:00:AA:00:02", "52-54-00-aa-00-02", "5254.00aa.0002", "525400AA0002"] {
        let (ids, meta) = list(&admin, &format!("?mac={spelling}")).await;
        assert_eq!(ids, [a.as_str()], "mac={spelling}");
        assert_eq!(meta["total"], 1, "mac={spelling}");
    }
    assert_eq!(list(&admin, "?mac=52-54-00-BB-00-01").await.0, [b.as_str()]);
    assert!(list(&admin, "?mac=52:54:00:cc:00:01").await.0.is_empty());
    assert!(list(&admin, "?mac=52:54:00:bb:00:01&tag=rack-a").await.0.is_empty(), "filters combine with AND");
}

async fn duplicates_on_create(backend: Backend) {
    let app = Appliance::start(backend).await;
    let admin = app.admin().await;
    let owner = create(&admin, json!({"hostname": "owner", "macs": ["52:54:00:ab:cd:ef"], "smbios_uuid": "4c4c4544-004c-4e10-804b-b4c04f4e4b31"})).await;
    let owner_id = id_of(&owner);
    let audit_before = admin.get("/api/v1/audit/verify").await.json["entries"].clone();

    // The same MAC in another spelling, among fresh ones.
    let r = admin
        .post("/api/v1/assets", json!({"hostname": "intruder", "macs": ["52:54:00:00:00:09", "52-54-00-AB-CD-EF"]}))
        .await;
    expect_code("duplicate MAC", &r, 409, "DUPLICATE_MAC");
    assert_eq!(r.json["details"]["asset_id"], owner_id.as_str(), "names the owner: {}", r.text);
    assert_eq!(r.json["details"]["mac"], "52:54:00:ab:cd:ef", "{}", r.text);
    assert!(r.json["error"].as_str().is_some_and(|m| m.contains(&owner_id)), "{}", r.text);

    let r = admin.post("/api/v1/assets", json!({"hostname": "OWNER", "macs": ["52:54:00:00:00:10"]})).await;
    expect_code("duplicate hostname (other case)", &r, 409, "DUPLICATE_HOSTNAME");
    assert_eq!(r.json["details"]["field"], "hostname");

    let r = admin
        .post("/api/v1/assets", json!({"hostname": "twin", "smbios_uuid": "4C4C4544-004C-4E10-804B-B4C04F4E4B31"}))
        .await;
    expect_code("duplicate SMBIOS UUID", &r, 409, "DUPLICATE_SMBIOS_UUID");

    // None of them left anything behind: not the asset, not its other MAC, not an audit entry.
    assert_eq!(total(&admin, "").await, 1);
    assert!(list(&admin, "?mac=52:54:00:00:00:09").await.0.is_empty());
    assert!(list(&admin, "?hostname=intruder").await.0.is_empty());
    assert_eq!(admin.get("/api/v1/audit/verify").await.json["entries"], audit_before);
    let g = get(&admin, &owner_id).await;
    assert_eq!(g.json, owner, "the owner is untouched");
    // The fresh MAC of the rejected request is still free.
    create(&admin, json!({"hostname": "intruder", "macs": ["52:54:00:00:00:09"]})).await;
}

async fn duplicates_on_patch(backend: Backend) {
    let app = Appliance::start(backend).await;
    let admin = app.admin().await;
    let a = create(&admin, common::asset_body("node-a", "52:54:00:00:00:0a")).await;
    let b = create(&admin, common::asset_body("node-b", "52:54:00:00:00:0b")).await;
    let (a_id, b_id) = (id_of(&a), id_of(&b));
    let b_path = format!("/api/v1/assets/{b_id}");
    let b_before = get(&admin, &b_id).await.text;

    let r = admin.patch(&b_path, json!({"macs": ["52:54:00:00:00:0b", "52-54-00-00-00-0A"], "tags": ["moved"]})).await;
    expect_code("PATCH to another asset's MAC", &r, 409, "DUPLICATE_MAC");
    assert_eq!(r.json["details"]["asset_id"], a_id.as_str(), "{}", r.text);
    assert_eq!(get(&admin, &b_id).await.text, b_before, "the failed PATCH changed nothing, tags included");

    let r = admin.patch(&b_path, json!({"hostname": "NODE-A"})).await;
    expect_code("PATCH to another asset's hostname", &r, 409, "DUPLICATE_HOSTNAME");
    assert_eq!(get(&admin, &b_id).await.text, b_before);
    assert_eq!(list(&admin, "?mac=52:54:00:00:00:0a").await.0, [a_id.as_str()], "the MAC still belongs to A");

    // An asset does not conflict with itself: its own MACs in another spelling and its own name.
    let r = admin.patch(&b_path, json!({"macs": ["52-54-00-00-00-0B"], "hostname": "node-b"})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["macs"], json!(["52:54:00:00:00:0b"]));
}

async fn patch_fields_and_generation(backend: Backend) {
    let app = Appliance::start(backend).await;
    let admin = app.admin().await;
    let created = create(&admin, common::asset_body("node-p", "52:54:00:00:00:0c")).await;
    let id = id_of(&created);
    let path = format!("/api/v1/assets/{id}");

    let r = admin.patch(&path, json!({"tags": ["rack-z", "gpu"]})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["tags"], json!(["rack-z", "gpu"]));
    assert_eq!(r.json["generation"], 2);
    for field in ["hostname", "macs", "bmc", "smbios_uuid", "serial", "state", "created_at"] {
        assert_eq!(r.json[field], created[field], "{field} was not in the PATCH");
    }
    assert!(r.json["updated_at"].as_str() > created["updated_at"].as_str(), "updated_at moves: {}", r.text);
    assert_eq!(get(&admin, &id).await.json, r.json, "GET shows what PATCH answered");
    // The tag index follows.
    assert!(list(&admin, "?tag=rack-a").await.0.is_empty());
    assert_eq!(list(&admin, "?tag=rack-z").await.0, [id.as_str()]);

    let r = admin.patch(&path, json!({"hostname": "Node-Renamed"})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["hostname"], "node-renamed");
    assert_eq!(r.json["generation"], 3);
    assert_eq!(r.json["tags"], json!(["rack-z", "gpu"]));

    // New MACs: the old one is released, the new one indexed.
    let r = admin.patch(&path, json!({"macs": ["52-54-00-00-00-DD"], "serial": "SN-9", "smbios_uuid": "4c4c4544-004c-4e10-804b-b4c04f4e4b32"})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["macs"], json!(["52:54:00:00:00:dd"]));
    assert_eq!((r.json["serial"].clone(), r.json["generation"].clone()), (json!("SN-9"), json!(4)));
    assert_eq!(list(&admin, "?mac=52:54:00:00:00:dd").await.0, [id.as_str()]);
    assert!(list(&admin, "?mac=52:54:00:00:00:0c").await.0.is_empty());
    create(&admin, json!({"hostname": "reuses-old-mac", "macs": ["52:54:00:00:00:0c"]})).await;

    // `null` clears an optional field.
    let r = admin.patch(&path, json!({"serial": null, "smbios_uuid": null})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.json["serial"].is_null() && r.json["smbios_uuid"].is_null(), "{}", r.text);
    assert_eq!(r.json["generation"], 5);
    let g = get(&admin, &id).await;
    assert_eq!(g.json, r.json);
}

async fn patch_bmc(backend: Backend) {
    let app = Appliance::start(backend).await;
    let admin = app.admin().await;
    let id = id_of(&create(&admin, common::asset_body("node-bmc", "52:54:00:00:00:0e")).await);
    let path = format!("/api/v1/assets/{id}");

    // A new BMC description without a password keeps the stored password.
    let r =
        admin.patch(&path, json!({"bmc": {"driver": "redfish", "address": "bmc.example", "username": "ops"}})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.json["bmc"],
        json!({"driver": "redfish", "address": "bmc.example", "port": 443, "username": "ops", "password_set": true})
    );
    assert_eq!(get(&admin, &id).await.json["bmc"], r.json["bmc"]);
    assert_no_password("PATCH bmc", &r.text);

    // `null` removes the BMC altogether.
    let r = admin.patch(&path, json!({"bmc": null})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.json["bmc"].is_null(), "{}", r.text);
    let g = get(&admin, &id).await;
    assert!(g.json["bmc"].is_null(), "{}", g.text);

    // With nothing stored, a BMC without a password is refused, and nothing changes.
    let before = g.text;
    let r = admin.patch(&path, json!({"bmc": {"driver": "ipmi", "address": "10.0.0.1", "username": "root"}})).await;
    expect_code("BMC without password and none stored", &r, 422, "INVALID_FIELD");
    assert_eq!(r.json["details"]["field"], "bmc.password", "{}", r.text);
    assert_eq!(get(&admin, &id).await.text, before);

    let r = admin
        .patch(
            &path,
            json!({"bmc": {"driver": "ipmi", "address": "10.0.0.1", "username": "root", "password": BMC_PASSWORD}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["bmc"]["password_set"], true);
    assert_no_password("PATCH bmc with password", &r.text);

    // Other fields leave the BMC alone.
    let r = admin.patch(&path, json!({"tags": ["x"]})).await;
    assert_eq!(
        r.json["bmc"],
        json!({"driver": "ipmi", "address": "10.0.0.1", "port": 623, "username": "root", "password_set": true})
    );
}

async fn delete_frees_mac(backend: Backend) {
    let app = Appliance::start(backend).await;
    let admin = app.admin().await;
    let keep = id_of(&create(&admin, common::asset_body("keeper", "52:54:00:00:00:0f")).await);
    let id = id_of(&create(&admin, common::asset_body("doomed", "52:54:00:00:00:10")).await);
    let path = format!("/api/v1/assets/{id}");

    let r = admin.delete(&path).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert!(r.text.is_empty(), "204 has no body: {:?}", r.text);
    expect_code("GET after delete", &get(&admin, &id).await, 404, "ASSET_NOT_FOUND");
    expect_code("DELETE twice", &admin.delete(&path).await, 404, "ASSET_NOT_FOUND");
    expect_code("PATCH after delete", &admin.patch(&path, json!({"tags": ["x"]})).await, 404, "ASSET_NOT_FOUND");
    assert_eq!(list(&admin, "").await.0, [keep.as_str()]);
    assert!(list(&admin, "?mac=52:54:00:00:00:10").await.0.is_empty());

    // Its MAC and hostname are free again.
    let again = create(&admin, common::asset_body("doomed", "52-54-00-00-00-10")).await;
    assert_ne!(id_of(&again), id);
    assert_eq!(again["generation"], 1);
    assert_eq!(list(&admin, "?mac=52:54:00:00:00:10").await.0, [id_of(&again).as_str()]);
    assert_eq!(get(&admin, &keep).await.status, 200, "the other asset is untouched");
}

async fn changes_are_audited(backend: Backend) {
    let app = Appliance::start(backend).await;
    let admin = app.admin().await;
    let id = id_of(&create(&admin, common::asset_body("audited", "52:54:00:00:00:11")).await);
    let other = id_of(&create(&admin, common::asset_body("bystander", "52:54:00:00:00:12")).await);
    let path = format!("/api/v1/assets/{id}");
    assert_eq!(admin.patch(&path, json!({"tags": ["t1"]})).await.status, 200);
    assert_eq!(admin.patch(&path, json!({"hostname": "audited-2", "bmc": null})).await.status, 200);
    // A rejected change is not recorded as one.
    assert_eq!(admin.patch(&path, json!({"hostname": "bystander"})).await.status, 409);
    assert_eq!(admin.delete(&path).await.status, 204);

    let r = admin.get(&format!("/api/v1/audit?target_id={id}")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["meta"]["total"], 4, "{}", r.text);
    let entries = r.json["data"].as_array().expect("data");
    let actions: Vec<&str> = entries.iter().map(|e| e["action"].as_str().unwrap_or("")).collect();
    assert_eq!(actions, ["asset.delete", "asset.update", "asset.update", "asset.create"], "newest first");
    for e in entries {
        assert_eq!(e["target_id"], id.as_str());
        assert_eq!(e["target_type"], "asset");
        assert_eq!(e["outcome"], "success");
        assert_eq!(e["actor_name"], "admin");
        assert_eq!(e["actor_type"], "user");
    }
    let changed = |i: usize| -> Value {
        serde_json::from_str::<Value>(entries[i]["details"].as_str().unwrap_or("{}")).unwrap_or_default()["changed"]
            .clone()
    };
    assert_eq!(changed(2), json!(["tags"]));
    assert_eq!(changed(1), json!(["hostname", "bmc"]));
    let seqs: Vec<i64> = entries.iter().map(|e| e["seq"].as_i64().expect("seq")).collect();
    assert!(seqs.windows(2).all(|w| w[0] > w[1]), "{seqs:?}");
    assert_no_password("audit", &r.text);

    let fam = admin.get(&format!("/api/v1/audit?action=asset.*&target_id={id}")).await;
    assert_eq!(fam.json["meta"]["total"], 4, "{}", fam.text);
    let upd = admin.get(&format!("/api/v1/audit?action=asset.update&target_id={id}")).await;
    assert_eq!(upd.json["meta"]["total"], 2, "{}", upd.text);
    let by = admin.get(&format!("/api/v1/audit?target_id={other}")).await;
    assert_eq!(by.json["meta"]["total"], 1, "only the bystander's creation: {}", by.text);
    assert_eq!(by.json["data"][0]["action"], "asset.create");

    let v = admin.get("/api/v1/audit/verify").await;
    assert_eq!(v.json["valid"], true, "{}", v.text);
}

async fn concurrent_creates_one_mac(backend: Backend) {
    const N: usize = 20;
    let app = Appliance::start(backend).await;
    let admin = app.admin().await;
    let spellings = ["52:54:00:12:34:56", "52-54-00-12-34-56", "5254.0012.3456", "525400123456", "52:54:00:12:34:56"];
    let gate = Arc::new(tokio::sync::Barrier::new(N));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..N {
        let (c, gate) = (admin.clone(), gate.clone());
        let body = json!({"hostname": format!("racer-{i:02}"), "macs": [format!("52:54:00:00:ff:{i:02x}"), spellings[i % spellings.len()]]});
        tasks.spawn(async move {
            gate.wait().await;
            c.post("/api/v1/assets", body).await
        });
    }
    let mut winners = Vec::new();
    let mut losers = 0;
    while let Some(r) = tasks.join_next().await {
        let r = r.expect("task");
        match r.status {
            201 => winners.push(r.json),
            409 => {
                assert_eq!(r.error_code(), "DUPLICATE_MAC", "{}", r.text);
                assert_eq!(r.json["details"]["field"], "macs", "{}", r.text);
                losers += 1;
            }
            s => panic!("unexpected {s}: {}", r.text),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one create wins: {winners:?}");
    assert_eq!(losers, N - 1);
    let winner = id_of(&winners[0]);
    // The losers left nothing: one asset, one MAC owner, one audit entry for one creation.
    let (all, meta) = list(&admin, "").await;
    assert_eq!((all, meta["total"].clone()), (vec![winner.clone()], json!(1)));
    assert_eq!(list(&admin, "?mac=52:54:00:12:34:56").await.0, [winner.as_str()]);
    for i in 0..N {
        let owned = list(&admin, &format!("?mac=52:54:00:00:ff:{i:02x}")).await.0;
        let expected: Vec<&str> =
            if winners[0]["hostname"] == format!("racer-{i:02}") { vec![winner.as_str()] } else { vec![] };
        assert_eq!(owned, expected, "MAC {i} of a losing request must stay free");
    }
    let audit = admin.get("/api/v1/audit?action=asset.create").await;
    assert_eq!(audit.json["meta"]["total"], 1, "{}", audit.text);
    let v = admin.get("/api/v1/audit/verify").await;
    assert_eq!(v.json["valid"], true, "{}", v.text);
}

/// The list is rendered by the database (one JSON row per page); every item must be exactly what
/// GET /assets/{id} renders in Rust, field for field, for every shape an asset can take.
async fn list_items_equal_single_reads(backend: Backend) {
    let app = Appliance::start(backend).await;
    let admin = app.admin().await;
    let bodies = [
        json!({"hostname": "bare"}),
        json!({"hostname": "full", "macs": ["52:54:00:00:09:01", "52:54:00:00:09:02"], "tags": ["a", "b/c"],
               "smbios_uuid": "4C4C4544-0042-3010-8057-B7C04F333231", "serial": "SN \"quoted\" \\ 1",
               "bmc": {"driver": "redfish", "address": "bmc.example", "port": 8443, "username": "u", "password": "p-123"}}),
        json!({"hostname": "ipmi", "macs": ["52:54:00:00:09:03"], "bmc": {"driver": "ipmi", "address": "10.1.1.1", "username": "root", "password": "x"}}),
    ];
    for b in bodies {
        assert_eq!(admin.post("/api/v1/assets", b).await.status, 201);
    }
    let list = admin.get("/api/v1/assets?per_page=100").await;
    assert_eq!(list.status, 200, "{}", list.text);
    assert_eq!(list.header("content-type").as_deref(), Some("application/json"));
    let items = list.json["data"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    for item in items {
        let one = admin.get(&format!("/api/v1/assets/{}", item["id"].as_str().unwrap())).await;
        assert_eq!(&one.json, item, "list and single read disagree");
    }
    let empty = admin.get("/api/v1/assets?tag=none-such").await;
    assert_eq!(empty.json["data"], json!([]));
    assert_eq!(empty.json["meta"], json!({"page": 1, "per_page": 20, "total": 0}));
}

/// List pages are reused while nothing changed (`store::page_cache`): every kind of write must
/// show in the next list at once, from this appliance and (PostgreSQL) from a second one sharing
/// the database, which never saw the write happen.
async fn list_pages_follow_every_change(backend: Backend) {
    let app = Appliance::start(backend).await;
    let admin = app.admin().await;
    let other = match backend {
        Backend::Postgres => Some(app.sibling().await),
        Backend::Sqlite => None,
    };
    let other_admin = match &other {
        Some(o) => Some(o.admin().await),
        None => None,
    };
    let readers: Vec<&Client> = std::iter::once(&admin).chain(other_admin.as_ref()).collect();
    let a = create(&admin, common::asset_body("cache-a", "52:54:00:00:0a:01")).await;
    let b = create(&admin, common::asset_body("cache-b", "52:54:00:00:0a:02")).await;
    let page = "/api/v1/assets?per_page=100";
    for r in &readers {
        // Twice: the second read is served from the cache where there is one.
        for _ in 0..2 {
            let l = r.get(page).await;
            assert_eq!(l.json["meta"]["total"], 2, "{}", l.text);
        }
    }
    let r = admin.patch(&format!("/api/v1/assets/{}", id_of(&a)), json!({"tags": ["fresh"]})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    for r in &readers {
        let l = r.get(page).await;
        let item = l.json["data"].as_array().unwrap().iter().find(|i| i["id"] == a["id"]).cloned().unwrap();
        assert_eq!(item["tags"], json!(["fresh"]), "a patched tag shows in the next list: {}", l.text);
        assert_eq!(r.get("/api/v1/assets?tag=fresh").await.json["meta"]["total"], 1);
    }
    create(&admin, common::asset_body("cache-c", "52:54:00:00:0a:03")).await;
    for r in &readers {
        assert_eq!(r.get(page).await.json["meta"]["total"], 3, "a created asset shows");
    }
    assert_eq!(admin.delete(&format!("/api/v1/assets/{}", id_of(&b))).await.status, 204);
    for r in &readers {
        let l = r.get(page).await;
        assert_eq!(l.json["meta"]["total"], 2, "a deleted asset is gone: {}", l.text);
        assert!(!l.text.contains(id_of(&b).as_str()));
    }
    // A rejected write (duplicate MAC) changes nothing and must not disturb the pages either.
    let dup = admin.post("/api/v1/assets", common::asset_body("cache-d", "52:54:00:00:0a:01")).await;
    assert_eq!(dup.status, 409, "{}", dup.text);
    assert_eq!(admin.get(page).await.json["meta"]["total"], 2);
}

both_backends!(
    list_pages_follow_every_change,
    list_items_equal_single_reads,
    create_and_get,
    pagination,
    filters,
    duplicates_on_create,
    duplicates_on_patch,
    patch_fields_and_generation,
    patch_bmc,
    delete_frees_mac,
    changes_are_audited,
    concurrent_creates_one_mac,
);
