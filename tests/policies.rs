//! Policies over real HTTP on both backends: CRUD with defaults and order, every validation class
//! (Rego syntax error with its line, a module without decision rules, size, names, priorities, VNI
//! bindings) with nothing changed after a refusal, the evaluate route (the example policy inside and
//! outside its maintenance window, one named policy, v0 syntax, deny wins, disabled and VNI-bound
//! policies), the guard on `DELETE /api/v1/assets/{id}` (403 POLICY_DENIED naming the policy,
//! audited), the audit trail, and a change through one appliance seen at once by another.

mod common;

use common::{Appliance, Backend, Client, Options, Resp, asset_body};
use serde_json::{Value, json};

const EXAMPLE: &str = include_str!("../policies/examples/production-maintenance-window.rego");

/// Denies deleting an asset tagged `production` (the guarded action that exists today).
const NO_PROD_DELETE: &str = r#"package ironbay.no_prod_delete

deny contains msg if {
	input.action == "delete"
	"production" in input.asset.tags
	msg := sprintf("asset %v is tagged production", [input.asset.name])
}
"#;

async fn start(backend: Backend) -> Appliance {
    let opts = Options::default()
        .env("IRONBAY_RATE_LIMIT__API_PER_MINUTE", "100000")
        .env("IRONBAY_RATE_LIMIT__API_BURST", "100000");
    Appliance::start_with(backend, opts).await
}

fn path(id: &str) -> String {
    format!("/api/v1/policies/{id}")
}

fn id_of(v: &Value) -> String {
    v["id"].as_str().unwrap_or_else(|| panic!("no id in {v}")).to_string()
}

async fn create(c: &Client, body: Value) -> Value {
    let r = c.post("/api/v1/policies", body.clone()).await;
    assert_eq!(r.status, 201, "create {body}: {}", r.text);
    r.json
}

async fn names(c: &Client) -> Vec<String> {
    let r = c.get("/api/v1/policies?per_page=100").await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.json["data"]
        .as_array()
        .unwrap_or_else(|| panic!("no data: {}", r.text))
        .iter()
        .map(|p| p["name"].as_str().unwrap_or("").to_string())
        .collect()
}

async fn evaluate(c: &Client, body: Value) -> Value {
    let r = c.post("/api/v1/policies/evaluate", body.clone()).await;
    assert_eq!(r.status, 200, "evaluate {body}: {}", r.text);
    r.json
}

/// The number of entries in the whole audit chain.
async fn audit_entries(c: &Client) -> u64 {
    let r = c.get("/api/v1/audit/verify").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["valid"], true, "{}", r.text);
    r.json["entries"].as_u64().unwrap_or_else(|| panic!("no entries: {}", r.text))
}

/// Audit entries about one target, newest first.
async fn audit_of(c: &Client, target_id: &str) -> Vec<Value> {
    let r = c.get(&format!("/api/v1/audit?target_id={target_id}&per_page=100")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.json["data"].as_array().unwrap_or_else(|| panic!("no data: {}", r.text)).clone()
}

fn expect_error(r: &Resp, status: u16, code: &str, label: &str) {
    assert_eq!(r.status, status, "{label}: {}", r.text);
    assert_eq!(r.error_code(), code, "{label}: {}", r.text);
}

fn wipe_input(tags: &[&str], weekday: &str, hour: u32) -> Value {
    json!({
        "action": "wipe",
        "asset": {"id": "ast_0000000000000001", "name": "node-1", "tags": tags, "state": "provisioned"},
        "actor": {"type": "user", "id": "usr_1", "name": "admin", "role": "admin"},
        "time": {"now": "2026-11-21T03:00:00Z", "weekday": weekday, "hour": hour, "minute": 0}
    })
}

/// Create with defaults, read, list in priority order, partial updates (PATCH and PUT), delete; each
/// change audited with its action.
async fn crud_round_trip(backend: Backend) {
    let app = start(backend).await;
    let admin = app.admin().await;
    let p = create(&admin, json!({"name": "prod-window", "description": "example", "rego": EXAMPLE})).await;
    let id = id_of(&p);
    assert!(id.starts_with("pol_"), "{id}");
    assert_eq!(p["name"], "prod-window");
    assert_eq!(p["description"], "example");
    assert_eq!(p["rego"], EXAMPLE);
    assert_eq!(p["enabled"], true);
    assert_eq!(p["priority"], 100);
    assert_eq!(p["vni_ids"], json!([]));
    assert_eq!(p["rego_version"], "v1");
    assert!(p["created_at"].is_string() && p["updated_at"].is_string(), "{p}");

    let r = admin.get(&path(&id)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json, p);

    let first =
        create(&admin, json!({"name": "first", "rego": "package a\nallow := true\n", "priority": 5, "enabled": false}))
            .await;
    assert_eq!(first["enabled"], false);
    create(&admin, json!({"name": "last", "rego": "package z\nallow := true\n", "priority": 10000})).await;
    assert_eq!(names(&admin).await, ["first", "prod-window", "last"]);
    let r = admin.get("/api/v1/policies?per_page=1&page=2").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["meta"], json!({"page": 2, "per_page": 1, "total": 3}));
    assert_eq!(r.json["data"][0]["name"], "prod-window");

    let r = admin.patch(&path(&id), json!({"description": "changed", "priority": 7, "enabled": false})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["description"], "changed");
    assert_eq!(r.json["priority"], 7);
    assert_eq!(r.json["enabled"], false);
    assert_eq!(r.json["rego"], EXAMPLE, "absent fields stay");
    assert_eq!(r.json["created_at"], p["created_at"]);
    let new_rego = "package prod\ndeny contains \"x\" if input.action == \"never\"\n";
    let r = admin.call(reqwest::Method::PUT, &path(&id), Some(json!({"rego": new_rego, "name": "renamed"}))).await;
    assert_eq!(r.status, 200, "PUT: {}", r.text);
    assert_eq!(r.json["rego"], new_rego);
    assert_eq!(r.json["name"], "renamed");
    assert_eq!(r.json["priority"], 7, "PUT is the same partial update");
    assert_eq!(admin.get(&path(&id)).await.json, r.json);

    let r = admin.delete(&path(&id)).await;
    assert_eq!(r.status, 204, "{}", r.text);
    expect_error(&admin.get(&path(&id)).await, 404, "POLICY_NOT_FOUND", "after delete");
    expect_error(&admin.delete(&path(&id)).await, 404, "POLICY_NOT_FOUND", "second delete");
    assert_eq!(names(&admin).await, ["first", "last"]);

    let trail: Vec<String> =
        audit_of(&admin, &id).await.iter().map(|e| e["action"].as_str().unwrap_or("").to_string()).collect();
    assert_eq!(trail, ["policy.delete", "policy.update", "policy.update", "policy.create"]);
    let entries = audit_of(&admin, &id).await;
    assert!(entries.iter().all(|e| e["outcome"] == "success" && e["target_type"] == "policy"), "{entries:?}");
    let created: Value = serde_json::from_str(entries[3]["details"].as_str().unwrap_or("{}")).unwrap_or(Value::Null);
    assert_eq!(created["name"], "prod-window", "{created}");
}

/// A syntax error answers 422 INVALID_REGO with the line it is on; nothing is created or changed.
async fn rego_syntax_error_names_its_line(backend: Backend) {
    let app = start(backend).await;
    let admin = app.admin().await;
    let before = audit_entries(&admin).await;
    // Line 6 holds the error: a comparison with no right-hand side, closed by `}` on line 7.
    let broken = "package broken\n\nimport rego.v1\n\ndeny contains msg if {\n\tinput.action == == \"wipe\"\n\tmsg := \"no\"\n}\n";
    let r = admin.post("/api/v1/policies", json!({"name": "broken", "rego": broken})).await;
    expect_error(&r, 422, "INVALID_REGO", "syntax error");
    assert_eq!(r.json["details"]["line"], 6, "{}", r.text);
    assert!(r.json["details"]["column"].as_u64().is_some_and(|c| c > 1), "{}", r.text);
    assert!(r.json["details"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{}", r.text);
    assert!(r.json["error"].as_str().unwrap_or("").contains("line 6"), "{}", r.text);

    // An error further down: the line follows it.
    let later =
        "package later\n\ndefault allow := false\n\nallow if {\n\tinput.x == 1\n}\n\nallow if {\n\tinput.y ==\n}\n";
    let r = admin.post("/api/v1/policies", json!({"name": "later", "rego": later})).await;
    expect_error(&r, 422, "INVALID_REGO", "later error");
    let line = r.json["details"]["line"].as_u64().unwrap_or(0);
    assert!((10..=11).contains(&line), "line {line}: {}", r.text);

    let r = admin.post("/api/v1/policies", json!({"name": "no-rules", "rego": "package p\n\nfoo := 1\n"})).await;
    expect_error(&r, 422, "INVALID_REGO", "no decision rule");
    assert_eq!(r.json["details"]["field"], "rego");
    assert!(r.json["error"].as_str().unwrap_or("").contains("deny"), "{}", r.text);

    let r = admin
        .post(
            "/api/v1/policies",
            json!({"name": "unknown-fn", "rego": "package p\ndeny contains m if { m := no_such_function(1) }\n"}),
        )
        .await;
    expect_error(&r, 422, "INVALID_REGO", "unknown function");

    let huge = format!("package p\n# {}\nallow := true\n", "x".repeat(64 * 1024));
    let r = admin.post("/api/v1/policies", json!({"name": "huge", "rego": huge})).await;
    expect_error(&r, 422, "INVALID_FIELD", "oversized source");
    assert_eq!(r.json["details"]["field"], "rego");

    assert!(names(&admin).await.is_empty(), "a refused policy was stored");
    assert_eq!(audit_entries(&admin).await, before, "a refused create was audited as a change");

    // Updates are checked the same way and leave the policy as it was.
    let p = create(&admin, json!({"name": "good", "rego": NO_PROD_DELETE})).await;
    let r = admin.patch(&path(&id_of(&p)), json!({"rego": broken, "description": "x"})).await;
    expect_error(&r, 422, "INVALID_REGO", "update with a syntax error");
    assert_eq!(r.json["details"]["line"], 6, "{}", r.text);
    assert_eq!(admin.get(&path(&id_of(&p))).await.json, p, "a refused update changed the policy");
}

/// Names are unique, fields are checked and named, ids that name nothing are 404.
async fn validation_and_conflicts(backend: Backend) {
    let app = start(backend).await;
    let admin = app.admin().await;
    let a = create(&admin, json!({"name": "alpha", "rego": NO_PROD_DELETE})).await;
    let b = create(&admin, json!({"name": "beta", "rego": NO_PROD_DELETE})).await;
    let r = admin.post("/api/v1/policies", json!({"name": "alpha", "rego": NO_PROD_DELETE})).await;
    expect_error(&r, 409, "DUPLICATE_NAME", "duplicate name");
    assert_eq!(r.json["details"]["policy_id"], a["id"]);
    let r = admin.patch(&path(&id_of(&b)), json!({"name": "alpha"})).await;
    expect_error(&r, 409, "DUPLICATE_NAME", "rename onto another");
    let r = admin.patch(&path(&id_of(&a)), json!({"name": "alpha"})).await;
    assert_eq!(r.status, 200, "renaming to its own name: {}", r.text);

    for (body, field) in [
        (json!({"name": "", "rego": NO_PROD_DELETE}), "name"),
        (json!({"name": " padded", "rego": NO_PROD_DELETE}), "name"),
        (json!({"name": "x".repeat(129), "rego": NO_PROD_DELETE}), "name"),
        (json!({"name": "p", "rego": NO_PROD_DELETE, "priority": -1}), "priority"),
        (json!({"name": "p", "rego": NO_PROD_DELETE, "priority": 10001}), "priority"),
        (json!({"name": "p", "rego": NO_PROD_DELETE, "description": "d".repeat(1025)}), "description"),
        (json!({"name": "p", "rego": NO_PROD_DELETE, "vni_ids": ["vni_0000000000000000"]}), "vni_ids"),
        (json!({"name": "p", "rego": NO_PROD_DELETE, "vni_ids": ["not-an-id"]}), "vni_ids"),
        (json!({"name": "p", "rego": NO_PROD_DELETE, "enabled": "yes"}), "enabled"),
        (json!({"name": "p", "rego": 42}), "rego"),
        (json!({"name": "p", "rego": NO_PROD_DELETE, "surprise": 1}), "surprise"),
    ] {
        let r = admin.post("/api/v1/policies", body.clone()).await;
        assert_eq!(r.status, 422, "{body}: {}", r.text);
        assert_eq!(r.json["details"]["field"], field, "{body}: {}", r.text);
    }
    let r = admin.post("/api/v1/policies", json!({"name": "p"})).await;
    expect_error(&r, 422, "MISSING_FIELD", "no rego");
    let r = admin
        .post("/api/v1/policies", json!({"name": "p", "rego": NO_PROD_DELETE, "vni_ids": ["vni_0000000000000000"]}))
        .await;
    assert!(r.json["error"].as_str().unwrap_or("").contains("vni_0000000000000000"), "{}", r.text);
    let r = admin.patch(&path(&id_of(&a)), json!({"priority": 20000})).await;
    expect_error(&r, 422, "INVALID_FIELD", "patch priority");
    assert_eq!(names(&admin).await, ["alpha", "beta"]);

    for p in ["pol_0000000000000000", "nonsense", "vni_0000000000000000"] {
        expect_error(&admin.get(&path(p)).await, 404, "POLICY_NOT_FOUND", p);
        expect_error(&admin.patch(&path(p), json!({"priority": 1})).await, 404, "POLICY_NOT_FOUND", p);
        expect_error(&admin.delete(&path(p)).await, 404, "POLICY_NOT_FOUND", p);
    }
    let r = admin.post("/api/v1/policies/evaluate", json!({"policy_id": "pol_0000000000000000", "input": {}})).await;
    expect_error(&r, 404, "POLICY_NOT_FOUND", "evaluate an unknown policy");
    let r = admin.post("/api/v1/policies/evaluate", json!({"input": [1, 2]})).await;
    expect_error(&r, 422, "INVALID_FIELD", "input not an object");
    assert_eq!(r.json["details"]["field"], "input");
    let r = admin.post("/api/v1/policies/evaluate", json!({})).await;
    expect_error(&r, 422, "MISSING_FIELD", "no input");
}

/// The shipped example through the evaluate route: production wipes only inside the window, with
/// explicit `time` inputs that the appliance must not overwrite.
async fn example_policy_maintenance_window(backend: Backend) {
    let app = start(backend).await;
    let admin = app.admin().await;
    let viewer = app.user(&admin, "policy-viewer", "viewer").await;
    let p = create(&admin, json!({"name": "production-maintenance-window", "rego": EXAMPLE})).await;
    let id = id_of(&p);

    // Monday 14:00 UTC: outside the window.
    let e = evaluate(&viewer, json!({"input": wipe_input(&["production", "rack-a"], "monday", 14)})).await;
    assert_eq!(e["result"], "deny", "{e}");
    let d = &e["decisions"][0];
    assert_eq!(d["policy_id"], id.as_str());
    assert_eq!(d["policy_name"], "production-maintenance-window");
    assert_eq!(d["rule"], "deny");
    assert_eq!(d["decision"], "deny");
    assert!(d["reasons"][0].as_str().is_some_and(|r| r.contains("maintenance window")), "{e}");
    assert_eq!(e["decisions"].as_array().map(Vec::len), Some(1), "{e}");

    // Saturday 03:00 UTC: inside; 06:00 is the end (exclusive); 01:59 is before it.
    let inside = evaluate(&viewer, json!({"input": wipe_input(&["production"], "saturday", 3)})).await;
    assert_eq!(inside["result"], "allow", "{inside}");
    assert_eq!(inside["decisions"][0]["decision"], "allow", "{inside}");
    assert_eq!(inside["decisions"][0]["reasons"], json!([]), "{inside}");
    let end = evaluate(&viewer, json!({"input": wipe_input(&["production"], "saturday", 6)})).await;
    assert_eq!(end["result"], "deny", "{end}");
    let mut early = wipe_input(&["production"], "saturday", 1);
    early["time"]["minute"] = 59.into();
    assert_eq!(evaluate(&viewer, json!({"input": early})).await["result"], "deny");

    // Not production, or not a wipe: allowed at any time.
    assert_eq!(evaluate(&viewer, json!({"input": wipe_input(&["staging"], "monday", 14)})).await["result"], "allow");
    let mut provision = wipe_input(&["production"], "monday", 14);
    provision["action"] = "provision".into();
    assert_eq!(evaluate(&viewer, json!({"input": provision})).await["result"], "allow");

    // Naming the policy gives the same answers.
    let named = evaluate(&viewer, json!({"policy_id": id, "input": wipe_input(&["production"], "monday", 14)})).await;
    assert_eq!(named["result"], "deny", "{named}");
    let named = evaluate(&viewer, json!({"policy_id": id, "input": wipe_input(&["production"], "saturday", 2)})).await;
    assert_eq!(named["result"], "allow", "{named}");

    // A `time` with only `now` is completed from it (2026-11-21 is a Saturday), not from the clock.
    let mut from_now = wipe_input(&["production"], "x", 0);
    from_now["time"] = json!({"now": "2026-11-21T04:30:00Z"});
    assert_eq!(evaluate(&viewer, json!({"input": from_now})).await["result"], "allow");
    from_now["time"] = json!({"now": "2026-11-23T04:30:00Z"});
    assert_eq!(evaluate(&viewer, json!({"input": from_now})).await["result"], "deny");
    // No `time` at all: filled from the clock, so the policy still decides (deny or allow).
    let mut no_time = wipe_input(&["production"], "x", 0);
    no_time.as_object_mut().map(|m| m.remove("time"));
    let e = evaluate(&viewer, json!({"input": no_time})).await;
    assert!(e["result"] == "deny" || e["result"] == "allow", "{e}");
    assert_eq!(e["decisions"][0]["rule"], "deny", "{e}");

    // Disabled: the set no longer applies it, while naming it still evaluates it.
    let r = admin.patch(&path(&id), json!({"enabled": false})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let e = evaluate(&viewer, json!({"input": wipe_input(&["production"], "monday", 14)})).await;
    assert_eq!(e, json!({"result": "allow", "decisions": []}));
    let e = evaluate(&viewer, json!({"policy_id": id, "input": wipe_input(&["production"], "monday", 14)})).await;
    assert_eq!(e["result"], "deny", "{e}");
}

/// Deny wins over allow, evaluation follows priority, `allow` false denies, v0 syntax works, and
/// VNI-bound policies apply only to inputs naming their VNIs.
async fn evaluation_semantics(backend: Backend) {
    let app = start(backend).await;
    let admin = app.admin().await;
    let r = admin.post("/api/v1/vnis", json!({"name": "corporate", "cidr": "10.50.0.0/24", "vni": 50})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let vni = id_of(&r.json);

    // The KairOS example, in the older (v0) syntax, bound to a VNI.
    let kairos = "package kairos\n\ndefault allow = false\n\nallow {\n input.vni == \"corporate\"\n input.action == \"connect\"\n}\n";
    let k = create(&admin, json!({"name": "allow-corporate-access", "rego": kairos, "vni_ids": [vni], "priority": 50}))
        .await;
    assert_eq!(k["rego_version"], "v0");
    assert_eq!(k["vni_ids"], json!([vni]));
    let open = create(&admin, json!({"name": "open", "rego": "package open\nallow := true\n", "priority": 10})).await;

    let connect = json!({"vni": "corporate", "action": "connect", "vni_id": vni});
    let e = evaluate(&admin, json!({"input": connect})).await;
    assert_eq!(e["result"], "allow", "{e}");
    let order: Vec<&str> =
        e["decisions"].as_array().into_iter().flatten().filter_map(|d| d["policy_name"].as_str()).collect();
    assert_eq!(order, ["open", "allow-corporate-access"], "priority order: {e}");

    let wrong = json!({"vni": "guest", "action": "connect", "vni_id": vni});
    let e = evaluate(&admin, json!({"input": wrong})).await;
    assert_eq!(e["result"], "deny", "allow false denies, and deny wins over `open`: {e}");
    assert_eq!(
        e["decisions"][1],
        json!({
            "policy_id": id_of(&k), "policy_name": "allow-corporate-access", "rule": "allow", "decision": "deny",
            "reasons": ["allow is false"]
        })
    );

    // Another VNI, or none: the bound policy does not apply.
    for input in
        [json!({"vni": "guest", "action": "connect", "vni_id": "vni_zzzzzzzzzzzzzzzz"}), json!({"vni": "guest"})]
    {
        let e = evaluate(&admin, json!({"input": input})).await;
        assert_eq!(e["result"], "allow", "{e}");
        assert_eq!(e["decisions"][1]["decision"], "not_applicable", "{e}");
    }
    // `asset.vni_id` names the VNI too.
    let e = evaluate(&admin, json!({"input": {"vni": "guest", "asset": {"vni_id": vni}}})).await;
    assert_eq!(e["result"], "deny", "{e}");
    // Naming the policy evaluates it whatever its binding.
    let e = evaluate(&admin, json!({"policy_id": id_of(&k), "input": {"vni": "guest"}})).await;
    assert_eq!(e["result"], "deny", "{e}");
    assert_eq!(e["decisions"].as_array().map(Vec::len), Some(1), "{e}");

    // Unbinding makes it apply everywhere.
    let r = admin.patch(&path(&id_of(&k)), json!({"vni_ids": []})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(evaluate(&admin, json!({"input": {"vni": "guest"}})).await["result"], "deny");
    // No policy at all: allow, with no decisions.
    for p in [&k, &open] {
        assert_eq!(admin.delete(&path(&id_of(p))).await.status, 204);
    }
    assert_eq!(
        evaluate(&admin, json!({"input": {"action": "wipe"}})).await,
        json!({"result": "allow", "decisions": []})
    );
}

/// The guard on asset deletion: a deny is 403 POLICY_DENIED naming the policy, audited as
/// `policy.deny` with outcome denied, and the asset stays; other assets, or a disabled policy, pass.
async fn guard_denies_asset_delete(backend: Backend) {
    let app = start(backend).await;
    let admin = app.admin().await;
    let operator = app.user(&admin, "guard-operator", "operator").await;
    let prod = admin
        .post("/api/v1/assets", json!({"hostname": "prod-1", "macs": ["52:54:00:00:10:01"], "tags": ["production"]}))
        .await;
    assert_eq!(prod.status, 201, "{}", prod.text);
    let prod_id = id_of(&prod.json);
    let lab = admin.post("/api/v1/assets", asset_body("lab-1", "52:54:00:00:10:02")).await;
    assert_eq!(lab.status, 201, "{}", lab.text);
    let policy = create(&admin, json!({"name": "no-production-delete", "rego": NO_PROD_DELETE})).await;

    let r = operator.delete(&format!("/api/v1/assets/{prod_id}")).await;
    expect_error(&r, 403, "POLICY_DENIED", "deleting a production asset");
    let message = r.json["error"].as_str().unwrap_or("");
    assert!(message.contains("no-production-delete"), "the message names the policy: {}", r.text);
    assert!(message.contains("tagged production"), "and its reason: {}", r.text);
    assert_eq!(r.json["details"]["policy"], "no-production-delete");
    assert_eq!(r.json["details"]["policy_id"], policy["id"]);
    assert_eq!(r.json["details"]["reasons"], json!(["asset prod-1 is tagged production"]));
    assert_eq!(admin.get(&format!("/api/v1/assets/{prod_id}")).await.status, 200, "the asset was deleted anyway");

    let denied = audit_of(&admin, &prod_id).await;
    let entry =
        denied.iter().find(|e| e["action"] == "policy.deny").unwrap_or_else(|| panic!("no policy.deny: {denied:?}"));
    assert_eq!(entry["outcome"], "denied");
    assert_eq!(entry["actor_name"], "guard-operator");
    let details: Value = serde_json::from_str(entry["details"].as_str().unwrap_or("{}")).unwrap_or(Value::Null);
    assert_eq!(details["policy"], "no-production-delete", "{details}");
    assert_eq!(details["action"], "delete", "{details}");
    assert!(!denied.iter().any(|e| e["action"] == "asset.delete"), "{denied:?}");

    // The guard's input document: action, asset (tags, state), actor and time are all there.
    let shape = r#"package shape
deny contains "shape" if {
	input.action == "delete"
	input.asset.id != ""
	input.asset.name == "lab-1"
	input.asset.state == "available"
	input.asset.tags == ["rack-a"]
	input.actor.type == "api_key"
	input.actor.name == "test key"
	is_string(input.time.now)
	input.time.weekday in {"monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"}
	input.time.hour >= 0
	input.time.minute >= 0
}
"#;
    let s = create(&admin, json!({"name": "input-shape", "rego": shape})).await;
    let key = operator.api_key(&["assets:write", "assets:read"]).await;
    let lab_id = id_of(&lab.json);
    let r = key.delete(&format!("/api/v1/assets/{lab_id}")).await;
    expect_error(&r, 403, "POLICY_DENIED", "the shape probe");
    assert_eq!(r.json["details"]["policy"], "input-shape", "{}", r.text);
    assert_eq!(admin.delete(&path(&id_of(&s))).await.status, 204);

    // Assets the policy says nothing about go; a disabled policy stops guarding.
    let r = operator.delete(&format!("/api/v1/assets/{lab_id}")).await;
    assert_eq!(r.status, 204, "{}", r.text);
    let r = admin.patch(&path(&id_of(&policy)), json!({"enabled": false})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = operator.delete(&format!("/api/v1/assets/{prod_id}")).await;
    assert_eq!(r.status, 204, "{}", r.text);
    let trail = audit_of(&admin, &prod_id).await;
    assert_eq!(trail[0]["action"], "asset.delete", "{trail:?}");
    assert_eq!(trail[0]["outcome"], "success", "{trail:?}");
}

/// Policies are guard rails: operators and viewers read and evaluate them, only admins change
/// them (the full matrix is in tests/scopes.rs).
async fn only_admins_change_policies(backend: Backend) {
    let app = start(backend).await;
    let admin = app.admin().await;
    let operator = app.user(&admin, "pol-operator", "operator").await;
    let p = create(&admin, json!({"name": "guard", "rego": NO_PROD_DELETE})).await;
    let r = operator.post("/api/v1/policies", json!({"name": "mine", "rego": NO_PROD_DELETE})).await;
    expect_error(&r, 403, "INSUFFICIENT_SCOPE", "operator create");
    assert_eq!(r.json["details"]["missing_scope"], "policies:write");
    expect_error(&operator.delete(&path(&id_of(&p))).await, 403, "INSUFFICIENT_SCOPE", "operator delete");
    assert_eq!(operator.get(&path(&id_of(&p))).await.status, 200);
    assert_eq!(evaluate(&operator, json!({"input": {}})).await["result"], "allow");
    let key = admin.api_key(&["policies:write"]).await;
    let r = key.post("/api/v1/policies", json!({"name": "by-key", "rego": NO_PROD_DELETE})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = key.post("/api/v1/policies/evaluate", json!({"input": {}})).await;
    expect_error(&r, 403, "INSUFFICIENT_SCOPE", "evaluate needs policies:read");
}

/// A policy created through one appliance applies at once on another sharing the store, and the
/// compiled set survives a restart.
async fn change_applies_across_appliances(backend: Backend) {
    let a = start(backend).await;
    let b = a.sibling().await;
    let on_a = a.admin().await;
    let on_b = b.admin().await;
    let input = json!({"input": wipe_input(&["production"], "monday", 14)});
    assert_eq!(evaluate(&on_a, input.clone()).await["result"], "allow", "no policy yet (and A caches that)");
    let p = create(&on_b, json!({"name": "production-maintenance-window", "rego": EXAMPLE})).await;
    assert_eq!(evaluate(&on_a, input.clone()).await["result"], "deny", "A saw B's new policy");
    let r = on_b.patch(&path(&id_of(&p)), json!({"enabled": false})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(evaluate(&on_a, input.clone()).await["result"], "allow", "A saw B's change");
    assert_eq!(on_b.delete(&path(&id_of(&p))).await.status, 204);
    create(&on_b, json!({"name": "again", "rego": EXAMPLE})).await;
    drop(b);
    let a = a.restart().await;
    let on_a = a.admin().await;
    assert_eq!(evaluate(&on_a, input).await["result"], "deny", "after a restart");
}

both_backends!(
    crud_round_trip,
    rego_syntax_error_names_its_line,
    validation_and_conflicts,
    example_policy_maintenance_window,
    evaluation_semantics,
    guard_denies_asset_delete,
    only_admins_change_policies,
    change_applies_across_appliances
);
