//! The OpenAPI document is the API's contract: it must list exactly the routes the appliance
//! serves (no missing, no phantom ones), declare the security schemes clients use, and document
//! the error statuses each operation really produces.

mod common;

use std::collections::BTreeSet;

use common::{Appliance, Backend, Resp};
use reqwest::Method;
use serde_json::{Value, json};

/// How a route lets callers in.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Access {
    Public,
    /// Any authenticated caller, API keys included.
    Authenticated,
    /// Any authenticated caller; an API key is refused with 400 NOT_A_SESSION (logout).
    SessionToEnd,
    /// A user session; API keys get 403 SESSION_REQUIRED.
    Session,
    /// A user session holding this scope.
    SessionScope(&'static str),
    /// A session or API key holding this scope.
    Scope(&'static str),
    /// No credentials: the device proves itself with its key (a signature in the body).
    DeviceProof,
}

/// What `{id}` names in a route.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Id {
    None,
    Asset,
    User,
    Key,
    /// A VNI; an `{address}` beside it is one of its addresses.
    Vni,
    EnrollToken,
    Device,
    Policy,
    Psk,
    Webhook,
    Image,
    Workflow,
    Cluster,
}

struct Op {
    method: &'static str,
    path: &'static str,
    access: Access,
    id: Id,
    /// Takes a JSON body parsed with `deny_unknown_fields`.
    json_body: bool,
}

const fn op(method: &'static str, path: &'static str, access: Access, id: Id, json_body: bool) -> Op {
    Op { method, path, access, id, json_body }
}

/// Every route the appliance serves under /api/v1 except the document itself.
const OPS: &[Op] = &[
    op("GET", "/api/v1/health", Access::Public, Id::None, false),
    op("POST", "/api/v1/auth/login", Access::Public, Id::None, true),
    op("POST", "/api/v1/auth/refresh", Access::Public, Id::None, true),
    op("POST", "/api/v1/auth/logout", Access::SessionToEnd, Id::None, false),
    op("GET", "/api/v1/auth/me", Access::Authenticated, Id::None, false),
    op("POST", "/api/v1/auth/mfa/setup", Access::Session, Id::None, false),
    op("POST", "/api/v1/auth/mfa/enable", Access::Session, Id::None, true),
    op("POST", "/api/v1/auth/mfa/disable", Access::Session, Id::None, true),
    op("GET", "/api/v1/users", Access::SessionScope("admin"), Id::None, false),
    op("POST", "/api/v1/users", Access::SessionScope("admin"), Id::None, true),
    op("GET", "/api/v1/users/{id}", Access::SessionScope("admin"), Id::User, false),
    op("PATCH", "/api/v1/users/{id}", Access::SessionScope("admin"), Id::User, true),
    op("DELETE", "/api/v1/users/{id}", Access::SessionScope("admin"), Id::User, false),
    op("GET", "/api/v1/api-keys", Access::Session, Id::None, false),
    op("POST", "/api/v1/api-keys", Access::Session, Id::None, true),
    op("GET", "/api/v1/api-keys/{id}", Access::Session, Id::Key, false),
    op("DELETE", "/api/v1/api-keys/{id}", Access::Session, Id::Key, false),
    op("GET", "/api/v1/assets", Access::Scope("assets:read"), Id::None, false),
    op("POST", "/api/v1/assets", Access::Scope("assets:write"), Id::None, true),
    op("GET", "/api/v1/assets/{id}", Access::Scope("assets:read"), Id::Asset, false),
    op("PATCH", "/api/v1/assets/{id}", Access::Scope("assets:write"), Id::Asset, true),
    op("DELETE", "/api/v1/assets/{id}", Access::Scope("assets:write"), Id::Asset, false),
    op("GET", "/api/v1/assets/{id}/boot-events", Access::Scope("assets:read"), Id::Asset, false),
    op("GET", "/api/v1/boot-events", Access::Scope("assets:read"), Id::None, false),
    op("GET", "/api/v1/assets/{id}/agent", Access::Scope("assets:read"), Id::Asset, false),
    op("GET", "/api/v1/assets/{id}/inventory", Access::Scope("assets:read"), Id::Asset, false),
    op("GET", "/api/v1/assets/{id}/inventory/changes", Access::Scope("assets:read"), Id::Asset, false),
    op("POST", "/api/v1/assets/{id}/agent/commands", Access::Scope("assets:read"), Id::Asset, true),
    op("POST", "/api/v1/assets/{id}/rescue", Access::Scope("admin"), Id::Asset, true),
    op("GET", "/api/v1/audit", Access::Scope("audit:read"), Id::None, false),
    op("GET", "/api/v1/audit/export", Access::Scope("audit:read"), Id::None, false),
    op("GET", "/api/v1/audit/verify", Access::Scope("audit:read"), Id::None, false),
    op("GET", "/api/v1/vnis", Access::Scope("vnis:read"), Id::None, false),
    op("POST", "/api/v1/vnis", Access::Scope("vnis:write"), Id::None, true),
    op("GET", "/api/v1/vnis/{id}", Access::Scope("vnis:read"), Id::Vni, false),
    op("PATCH", "/api/v1/vnis/{id}", Access::Scope("vnis:write"), Id::Vni, true),
    op("DELETE", "/api/v1/vnis/{id}", Access::Scope("vnis:write"), Id::Vni, false),
    op("GET", "/api/v1/vnis/{id}/allocations", Access::Scope("vnis:read"), Id::Vni, false),
    op("POST", "/api/v1/vnis/{id}/allocations", Access::Scope("vnis:write"), Id::Vni, true),
    op("DELETE", "/api/v1/vnis/{id}/allocations/{address}", Access::Scope("vnis:write"), Id::Vni, false),
    op("GET", "/api/v1/enroll-tokens", Access::Scope("devices:read"), Id::None, false),
    op("POST", "/api/v1/enroll-tokens", Access::Scope("devices:write"), Id::None, true),
    op("GET", "/api/v1/enroll-tokens/{id}", Access::Scope("devices:read"), Id::EnrollToken, false),
    op("DELETE", "/api/v1/enroll-tokens/{id}", Access::Scope("devices:write"), Id::EnrollToken, false),
    op("POST", "/api/v1/devices/enroll", Access::Public, Id::None, true),
    op("GET", "/api/v1/devices", Access::Scope("devices:read"), Id::None, false),
    op("GET", "/api/v1/devices/{id}", Access::Scope("devices:read"), Id::Device, false),
    op("DELETE", "/api/v1/devices/{id}", Access::Scope("devices:write"), Id::Device, false),
    op("POST", "/api/v1/devices/{id}/renew", Access::DeviceProof, Id::Device, true),
    op("GET", "/api/v1/devices/{id}/history", Access::Scope("devices:read"), Id::Device, false),
    op("GET", "/api/v1/ca.pem", Access::Public, Id::None, false),
    op("GET", "/api/v1/ca/crl", Access::Public, Id::None, false),
    op("GET", "/api/v1/policies", Access::Scope("policies:read"), Id::None, false),
    op("POST", "/api/v1/policies", Access::Scope("policies:write"), Id::None, true),
    op("POST", "/api/v1/policies/evaluate", Access::Scope("policies:read"), Id::None, true),
    op("GET", "/api/v1/policies/{id}", Access::Scope("policies:read"), Id::Policy, false),
    op("PATCH", "/api/v1/policies/{id}", Access::Scope("policies:write"), Id::Policy, true),
    op("PUT", "/api/v1/policies/{id}", Access::Scope("policies:write"), Id::Policy, true),
    op("DELETE", "/api/v1/policies/{id}", Access::Scope("policies:write"), Id::Policy, false),
    op("GET", "/api/v1/psks", Access::Scope("psks:read"), Id::None, false),
    op("POST", "/api/v1/psks", Access::Scope("psks:write"), Id::None, true),
    op("GET", "/api/v1/psks/{id}", Access::Scope("psks:read"), Id::Psk, false),
    op("PUT", "/api/v1/psks/{id}", Access::Scope("psks:write"), Id::Psk, true),
    op("DELETE", "/api/v1/psks/{id}", Access::Scope("psks:delete"), Id::Psk, false),
    op("POST", "/api/v1/psks/{id}/rotate", Access::Scope("psks:write"), Id::Psk, true),
    op("GET", "/api/v1/webhooks", Access::Scope("webhooks:read"), Id::None, false),
    op("POST", "/api/v1/webhooks", Access::Scope("webhooks:write"), Id::None, true),
    op("GET", "/api/v1/webhooks/{id}", Access::Scope("webhooks:read"), Id::Webhook, false),
    op("PATCH", "/api/v1/webhooks/{id}", Access::Scope("webhooks:write"), Id::Webhook, true),
    op("DELETE", "/api/v1/webhooks/{id}", Access::Scope("webhooks:write"), Id::Webhook, false),
    op("GET", "/api/v1/webhooks/{id}/deliveries", Access::Scope("webhooks:read"), Id::Webhook, false),
    op("POST", "/api/v1/webhooks/{id}/test", Access::Scope("webhooks:write"), Id::Webhook, false),
    op("GET", "/api/v1/images", Access::Scope("assets:read"), Id::None, false),
    op("POST", "/api/v1/assets/{id}/provision", Access::Scope("assets:write"), Id::Asset, true),
    op("POST", "/api/v1/assets/{id}/wipe", Access::Scope("assets:write"), Id::Asset, true),
    op("POST", "/api/v1/assets/{id}/power", Access::Scope("assets:write"), Id::Asset, true),
    op("POST", "/api/v1/assets/{id}/bmc/check", Access::Scope("assets:read"), Id::Asset, false),
    op("GET", "/api/v1/workflows", Access::Scope("workflows:read"), Id::None, false),
    op("GET", "/api/v1/workflows/{id}", Access::Scope("workflows:read"), Id::Workflow, false),
    op("POST", "/api/v1/workflows/{id}/cancel", Access::Scope("assets:write"), Id::Workflow, false),
    op("POST", "/api/v1/workflows/{id}/retry", Access::Scope("assets:write"), Id::Workflow, false),
    op("GET", "/api/v1/workflows/{id}/certificate", Access::Scope("workflows:read"), Id::Workflow, false),
    op("GET", "/api/v1/wipe-certificates/public-key", Access::Scope("workflows:read"), Id::None, false),
    op("GET", "/api/v1/events", Access::Scope("workflows:read"), Id::None, false),
    op("POST", "/api/v1/images", Access::Scope("assets:write"), Id::None, true),
    op("GET", "/api/v1/images/{id}", Access::Scope("assets:read"), Id::Image, false),
    op("PATCH", "/api/v1/images/{id}", Access::Scope("assets:write"), Id::Image, true),
    op("DELETE", "/api/v1/images/{id}", Access::Scope("assets:write"), Id::Image, false),
    // The body is the image's raw bytes, not JSON.
    op("PUT", "/api/v1/images/{id}/content", Access::Scope("assets:write"), Id::Image, false),
    op("GET", "/api/v1/clusters", Access::Scope("clusters:read"), Id::None, false),
    op("POST", "/api/v1/clusters", Access::Scope("clusters:write"), Id::None, true),
    op("GET", "/api/v1/clusters/{id}", Access::Scope("clusters:read"), Id::Cluster, false),
    op("DELETE", "/api/v1/clusters/{id}", Access::Scope("clusters:write"), Id::Cluster, false),
    op("GET", "/api/v1/clusters/{id}/kubeconfig", Access::Scope("clusters:read"), Id::Cluster, false),
    op("GET", "/api/v1/clusters/{id}/talosconfig", Access::Scope("clusters:read"), Id::Cluster, false),
];

impl Op {
    fn name(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    fn method(&self) -> Method {
        Method::from_bytes(self.method.as_bytes()).expect("method")
    }

    /// Well-formed ids that name nothing.
    fn missing_path(&self) -> String {
        let id = match self.id {
            Id::None => return self.path.to_string(),
            Id::Asset => "ast_0000000000000000",
            Id::User => "usr_0000000000000000",
            Id::Key => "key_0000000000000000",
            Id::Vni => "vni_0000000000000000",
            Id::EnrollToken => "enr_0000000000000000",
            Id::Device => "dev_0000000000000000",
            Id::Policy => "pol_0000000000000000",
            Id::Psk => "psk_0000000000000000",
            Id::Webhook => "whk_0000000000000000",
            Id::Image => "img_0000000000000000",
            Id::Workflow => "wf_0000000000000000",
            Id::Cluster => "cls_0000000000000000",
        };
        self.path.replace("{id}", id).replace("{address}", "10.213.0.10")
    }

    /// A valid-enough body, so a refusal is about who asks, not what they sent.
    fn body(&self) -> Option<Value> {
        let body = match (self.method, self.path) {
            ("POST", "/api/v1/auth/login") => json!({"username": "nobody-here", "password": "wrong-password-123"}),
            ("POST", "/api/v1/auth/refresh") => json!({}),
            ("POST", "/api/v1/auth/mfa/enable" | "/api/v1/auth/mfa/disable") => json!({"totp_code": "abcdef"}),
            ("POST", "/api/v1/users") => {
                json!({"username": "doc-user", "password": "doc-password-1234", "role": "viewer"})
            }
            ("PATCH", "/api/v1/users/{id}") => json!({"role": "viewer"}),
            ("POST", "/api/v1/api-keys") => json!({"name": "doc key", "scopes": ["assets:read"]}),
            ("POST", "/api/v1/assets") => common::asset_body("doc-asset", "52:54:00:0d:0c:01"),
            ("PATCH", "/api/v1/assets/{id}") => json!({"tags": ["doc"]}),
            ("POST", "/api/v1/vnis") => json!({"name": "doc-net", "cidr": "10.213.0.0/24", "vni": 4242}),
            ("PATCH", "/api/v1/vnis/{id}") => json!({"description": "doc"}),
            ("POST", "/api/v1/vnis/{id}/allocations") => json!({"holder_type": "other", "holder_id": "doc"}),
            ("POST", "/api/v1/enroll-tokens") => json!({}),
            ("POST", "/api/v1/devices/enroll") => json!({"token": "ibe_doc", "name": "doc-device", "public_key": "x"}),
            ("POST", "/api/v1/devices/{id}/renew") => json!({"timestamp": "2026-01-01T00:00:00Z", "signature": "AAAA"}),
            ("POST", "/api/v1/policies") => json!({"name": "doc-policy", "rego": "package doc\nallow := true\n"}),
            ("PATCH" | "PUT", "/api/v1/policies/{id}") => json!({"description": "doc"}),
            ("POST", "/api/v1/policies/evaluate") => json!({"input": {"action": "wipe"}}),
            ("POST", "/api/v1/psks") => json!({"description": "doc"}),
            ("PUT", "/api/v1/psks/{id}") => json!({"description": "doc"}),
            ("POST", "/api/v1/psks/{id}/rotate") => json!({}),
            ("POST", "/api/v1/webhooks") => json!({"url": "http://127.0.0.1:9/doc", "events": ["cluster.*"]}),
            ("PATCH", "/api/v1/webhooks/{id}") => json!({"description": "doc"}),
            ("POST", "/api/v1/images") => json!({"name": "doc-image"}),
            ("PATCH", "/api/v1/images/{id}") => json!({"version": "doc"}),
            ("POST", "/api/v1/assets/{id}/agent/commands") => json!({"command": "inventory"}),
            ("POST", "/api/v1/assets/{id}/provision") => {
                json!({"image": {"url": "http://127.0.0.1:9/a.raw", "sha256": "0".repeat(64)}})
            }
            ("POST", "/api/v1/assets/{id}/wipe") => json!({"method": "quick", "confirm": "doc"}),
            ("POST", "/api/v1/clusters") => json!({"name": "doc", "type": "bare_metal", "gateway": "10.213.0.1",
                "controlPlanes": [{"assetId": "ast_0000000000000000", "ip": "10.213.0.10", "subnet": "24"}]}),
            ("POST", "/api/v1/assets/{id}/power") => json!({"action": "status-please"}),
            ("POST", "/api/v1/assets/{id}/rescue") => {
                json!({"public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJL4FLRQ5xdLCFKIvos7U7kqC4bflgoFiVbWk6XVEF+e doc"})
            }
            _ if self.json_body => panic!("no body for {}", self.name()),
            _ => return None,
        };
        Some(body)
    }

    fn protected(&self) -> bool {
        !matches!(self.access, Access::Public | Access::DeviceProof)
    }

    /// Answers anyone, whatever credentials they send: nothing to refuse.
    fn answers_anyone(&self) -> bool {
        matches!(self.path, "/api/v1/health" | "/api/v1/ca.pem" | "/api/v1/ca/crl")
    }

    fn accepts_api_keys(&self) -> bool {
        matches!(self.access, Access::Authenticated | Access::Scope(_))
    }
}

async fn document(app: &Appliance) -> Value {
    let r = app.client().get("/api/v1/openapi.json").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(
        r.header("content-type").is_some_and(|c| c.starts_with("application/json")),
        "content type: {:?}",
        r.header("content-type")
    );
    assert!(r.json.is_object(), "not JSON: {}", r.text);
    r.json
}

/// The operation object of `op`, if documented.
fn operation<'a>(doc: &'a Value, op: &Op) -> Option<&'a Value> {
    doc["paths"].get(op.path)?.get(op.method.to_ascii_lowercase())
}

/// Every (METHOD, path) the document lists.
fn documented_operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("`paths` is an object") {
        for method in item.as_object().expect("path item").keys() {
            if ["get", "put", "post", "delete", "options", "head", "patch", "trace"].contains(&method.as_str()) {
                out.insert((method.to_ascii_uppercase(), path.clone()));
            }
        }
    }
    out
}

fn documented_statuses(doc: &Value, op: &Op) -> BTreeSet<String> {
    operation(doc, op).and_then(|o| o["responses"].as_object()).map(|r| r.keys().cloned().collect()).unwrap_or_default()
}

/// OpenAPI 3.1, the appliance's version, and every route with its method; nothing undocumented.
async fn document_lists_every_route(backend: Backend) {
    let app = Appliance::start(backend).await;
    let doc = document(&app).await;
    let version = doc["openapi"].as_str().expect("`openapi` field");
    assert!(version.starts_with("3.1."), "OpenAPI version {version}, expected 3.1.x");
    assert_eq!(doc["info"]["title"], "ironbay");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    for op in OPS {
        let o = operation(&doc, op).unwrap_or_else(|| panic!("{} is not documented", op.name()));
        let responses = o["responses"].as_object().unwrap_or_else(|| panic!("{}: no responses", op.name()));
        assert!(
            responses.keys().any(|s| s.starts_with('2')),
            "{}: no success response documented: {:?}",
            op.name(),
            responses.keys()
        );
    }
    // The reverse: an operation the list above does not know is a route nobody checked.
    for (method, path) in documented_operations(&doc) {
        assert!(
            OPS.iter().any(|o| o.method == method && o.path == path),
            "{method} {path} is documented but unknown to this test: add it here and to tests/scopes.rs"
        );
    }
}

/// The three ways to authenticate are declared, and each operation names the ones it accepts.
async fn security_schemes_are_declared(backend: Backend) {
    let app = Appliance::start(backend).await;
    let doc = document(&app).await;
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["type"], "http", "{schemes}");
    assert_eq!(
        schemes["bearer"]["scheme"].as_str().map(str::to_ascii_lowercase).as_deref(),
        Some("bearer"),
        "{schemes}"
    );
    assert_eq!(schemes["api_key"]["type"], "apiKey", "{schemes}");
    assert_eq!(schemes["api_key"]["in"], "header", "{schemes}");
    assert_eq!(schemes["api_key"]["name"], "X-API-Key", "{schemes}");
    assert_eq!(schemes["session_cookie"]["type"], "apiKey", "{schemes}");
    assert_eq!(schemes["session_cookie"]["in"], "cookie", "{schemes}");
    assert_eq!(schemes["session_cookie"]["name"], "ironbay_session", "{schemes}");

    for op in OPS {
        let o = operation(&doc, op).unwrap_or_else(|| panic!("{} is not documented", op.name()));
        let names: BTreeSet<String> = o["security"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_object)
            .flat_map(|req| req.keys().cloned())
            .collect();
        for n in &names {
            assert!(schemes.get(n).is_some(), "{}: security names undeclared scheme {n}", op.name());
        }
        if !op.protected() {
            assert!(names.is_empty(), "{} is public but documents security {names:?}", op.name());
            continue;
        }
        assert!(
            names.contains("bearer") && names.contains("session_cookie"),
            "{}: security {names:?} lacks bearer or session_cookie",
            op.name()
        );
        assert_eq!(
            names.contains("api_key"),
            op.accepts_api_keys(),
            "{}: api_key in security {names:?}, but API keys accepted: {}",
            op.name(),
            op.accepts_api_keys()
        );
    }
}

/// A refusal or failure the caller can provoke, and that the document must therefore list.
fn expect_documented(missing: &mut Vec<String>, doc: &Value, op: &Op, how: &str, r: &Resp, status: u16) {
    assert_eq!(r.status, status, "{} {how}: provoking {status} failed: {}", op.name(), r.text);
    assert!(
        r.json["code"].is_string() && r.json["error"].is_string(),
        "{} {how}: not the error body: {}",
        op.name(),
        r.text
    );
    if !documented_statuses(doc, op).contains(&status.to_string()) {
        missing.push(format!(
            "{}: answers {status} {} ({how}) but documents only {:?}",
            op.name(),
            r.json["code"],
            documented_statuses(doc, op)
        ));
    }
}

/// Protected operations answer 401 without credentials and 403 to a caller lacking the scope or
/// the session; each status actually produced must be in the operation's documented responses.
async fn auth_errors_are_documented(backend: Backend) {
    let app = Appliance::start(backend).await;
    let doc = document(&app).await;
    let admin = app.admin().await;
    let viewer = app.user(&admin, "doc-viewer", "viewer").await;
    let anon = app.client();
    // A key lacking every scope a viewer holds (the routes a viewer may call refuse it).
    let keyless = admin.api_key(&["webhooks:read"]).await;
    let mut missing = Vec::new();
    // Health answers everyone; every other operation refuses (or fails) an unknown caller with 401.
    // A device-proof route refuses a bad proof with 401 (tests/devices.rs); for an id that names
    // nothing it answers 404, checked below with the other ids.
    for op in OPS.iter().filter(|o| !o.answers_anyone() && o.access != Access::DeviceProof) {
        let r = anon.call(op.method(), &op.missing_path(), op.body()).await;
        match op.access {
            Access::Public => expect_documented(&mut missing, &doc, op, "with bad or no credentials", &r, 401),
            _ => expect_documented(&mut missing, &doc, op, "with no credentials", &r, 401),
        }
        let refused = match op.access {
            Access::Public | Access::Authenticated | Access::SessionToEnd | Access::DeviceProof => None,
            Access::Session => Some(("with an API key", keyless.clone(), "SESSION_REQUIRED")),
            Access::SessionScope(_) => Some(("as a viewer", viewer.clone(), "INSUFFICIENT_SCOPE")),
            // Viewers hold these: only a key can lack them.
            Access::Scope(
                "assets:read" | "vnis:read" | "devices:read" | "policies:read" | "workflows:read" | "clusters:read",
            ) => Some(("with a key lacking the scope", keyless.clone(), "INSUFFICIENT_SCOPE")),
            Access::Scope(_) => Some(("as a viewer", viewer.clone(), "INSUFFICIENT_SCOPE")),
        };
        if let Some((how, caller, code)) = refused {
            let r = caller.call(op.method(), &op.missing_path(), op.body()).await;
            assert_eq!(r.json["code"], code, "{} {how}: {}", op.name(), r.text);
            expect_documented(&mut missing, &doc, op, how, &r, 403);
        }
    }
    assert!(missing.is_empty(), "{} undocumented auth error response(s):\n{}", missing.len(), missing.join("\n"));
}

/// Operations on `{id}` answer 404 for an id that names nothing, and operations with a JSON body
/// answer 422 for an unknown field; both must be documented.
async fn input_errors_are_documented(backend: Backend) {
    let app = Appliance::start(backend).await;
    let doc = document(&app).await;
    let admin = app.admin().await;
    let mut missing = Vec::new();
    for op in OPS {
        if op.id != Id::None {
            let r = admin.call(op.method(), &op.missing_path(), op.body()).await;
            expect_documented(&mut missing, &doc, op, "for an id that names nothing", &r, 404);
        }
        if op.json_body {
            let r = admin.call(op.method(), &op.missing_path(), Some(json!({"no_such_field": 1}))).await;
            expect_documented(&mut missing, &doc, op, "for a body with an unknown field", &r, 422);
        }
    }
    assert!(missing.is_empty(), "{} undocumented input error response(s):\n{}", missing.len(), missing.join("\n"));
}

/// Every documented operation is served: calling it never lands on the 404 ROUTE_NOT_FOUND
/// fallback or a 405, so the document lists no phantom routes or methods.
async fn documented_routes_exist(backend: Backend) {
    let app = Appliance::start(backend).await;
    let doc = document(&app).await;
    let anon = app.client();
    let admin = app.admin().await;
    let ops = documented_operations(&doc);
    assert!(ops.len() >= OPS.len(), "only {} documented operations", ops.len());
    for (method, path) in &ops {
        let concrete = path
            .split('/')
            .map(|seg| if seg.starts_with('{') { "x0000000000000000" } else { seg })
            .collect::<Vec<_>>()
            .join("/");
        let m = Method::from_bytes(method.as_bytes()).expect("method");
        let body = matches!(method.as_str(), "POST" | "PUT" | "PATCH").then(|| json!({}));
        for (who, c) in [("anonymous", &anon), ("admin", &admin)] {
            // Logging the admin out would spoil later calls.
            if who == "admin" && path == "/api/v1/auth/logout" {
                continue;
            }
            let r = c.call(m.clone(), &concrete, body.clone()).await;
            assert_ne!(r.status, 405, "{method} {path} ({who}): documented method not allowed");
            assert!(
                !(r.status == 404 && r.json["code"] == "ROUTE_NOT_FOUND"),
                "{method} {path} ({who}): documented but not served: {}",
                r.text
            );
        }
    }
    // The check can fail: an undocumented route does land on the fallback, and a wrong method on a
    // real path is refused.
    let r = anon.get("/api/v1/no-such-route").await;
    assert_eq!(r.status, 404, "{}", r.text);
    assert_eq!(r.error_code(), "ROUTE_NOT_FOUND");
    assert!(
        !ops.contains(&("PUT".to_string(), "/api/v1/assets".to_string())),
        "test premise: PUT /api/v1/assets is undocumented"
    );
    let r = anon.call(Method::PUT, "/api/v1/assets", Some(json!({}))).await;
    assert!(
        r.status == 405 || (r.status == 404 && r.json["code"] == "ROUTE_NOT_FOUND"),
        "an undocumented method answered {}: {}",
        r.status,
        r.text
    );
}

both_backends!(
    document_lists_every_route,
    security_schemes_are_declared,
    auth_errors_are_documented,
    input_errors_are_documented,
    documented_routes_exist
);
