//! The permission matrix: every protected API route, called with no credentials, bad credentials,
//! each role's session and API keys with and without the scope it needs, must answer 401, 403
//! (naming the missing scope, or SESSION_REQUIRED) or succeed exactly as `model::access` says.

mod common;

use std::collections::HashMap;

use common::{Appliance, Auth, Backend, Client, Options, Resp, asset_body};
use reqwest::Method;
use serde_json::{Value, json};

/// Every scope, as `model::access::Scope` names it.
const ALL_SCOPES: [&str; 18] = [
    "assets:read",
    "assets:write",
    "clusters:read",
    "clusters:write",
    "workflows:read",
    "vnis:read",
    "vnis:write",
    "psks:read",
    "psks:write",
    "psks:delete",
    "devices:read",
    "devices:write",
    "policies:read",
    "policies:write",
    "audit:read",
    "webhooks:read",
    "webhooks:write",
    "admin",
];

const VIEWER_SCOPES: &[&str] =
    &["assets:read", "clusters:read", "workflows:read", "vnis:read", "devices:read", "policies:read"];

const OPERATOR_SCOPES: &[&str] = &[
    "assets:read",
    "assets:write",
    "clusters:read",
    "clusters:write",
    "workflows:read",
    "vnis:read",
    "vnis:write",
    "psks:read",
    "psks:write",
    "devices:read",
    "devices:write",
    "policies:read",
    "audit:read",
    "webhooks:read",
];

fn role_scopes(role: &str) -> &'static [&'static str] {
    match role {
        "viewer" => VIEWER_SCOPES,
        "operator" => OPERATOR_SCOPES,
        "admin" => &ALL_SCOPES,
        other => panic!("unknown role {other}"),
    }
}

/// Public routes: no credentials needed, so not part of the matrix.
const PUBLIC: &[(&str, &str)] = &[
    ("GET", "/api/v1/health"),
    ("GET", "/api/v1/openapi.json"),
    ("POST", "/api/v1/auth/login"),
    ("POST", "/api/v1/auth/refresh"),
    // A device proves itself with its enrollment token or its key; the CA is public material.
    ("POST", "/api/v1/devices/enroll"),
    ("POST", "/api/v1/devices/{id}/renew"),
    ("GET", "/api/v1/ca.pem"),
    ("GET", "/api/v1/ca/crl"),
];

/// Streaming routes (server-sent events) never end, so a matrix call would never return; their
/// permissions are checked in tests/workflows.rs (`the_event_stream_is_scoped_and_live`).
const STREAMS: &[(&str, &str)] = &[("GET", "/api/v1/events")];

/// What the `{id}` of a route names.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Target {
    None,
    Asset,
    User,
    /// An API key owned by the caller (admins could read anyone's; others only their own).
    OwnKey,
    /// A VNI holding no allocations, so a DELETE that slipped through would really delete it.
    Vni,
    /// The VNI that holds allocations; `{address}` is one of them.
    Allocation,
    /// An enrollment token (DELETE revokes it).
    EnrollToken,
    /// An enrolled device (DELETE revokes it).
    Device,
    /// A policy that allows everything (so it never interferes with other rows).
    Policy,
    /// A PSK (rotations keep it active).
    Psk,
    /// A webhook that never gets disabled during the matrix.
    Webhook,
    /// An id that names nothing (routes whose real targets would need a machine: a BMC, a
    /// running workflow): a permitted caller gets 404 after the permission check passed.
    Missing(&'static str),
    /// A URL image (ready: an upload to it is refused with 409 IMAGE_READY once permitted).
    Image,
}

/// One protected route and what each kind of caller must get from it.
struct Route {
    method: Method,
    /// The documented path, `{id}` (and `{address}`) substituted per call.
    path: &'static str,
    target: Target,
    /// The body for call number `n` (unique names, MACs...).
    body: fn(u32) -> Option<Value>,
    /// The scope it needs; `None` when any authenticated caller (of the right kind) may call it.
    scope: Option<&'static str>,
    /// API keys are refused with SESSION_REQUIRED whatever their scopes.
    session_only: bool,
    /// The call ends the caller's session (logout): each permitted role call logs in afresh.
    ends_session: bool,
    /// The status a permitted user session gets.
    ok: u16,
    /// The status a permitted API key gets (routes that are not session-only).
    key_ok: u16,
}

impl Route {
    fn new(method: Method, path: &'static str, scope: Option<&'static str>, session_only: bool, ok: u16) -> Self {
        Route {
            method,
            path,
            target: Target::None,
            body: |_| None,
            scope,
            session_only,
            ends_session: false,
            ok,
            key_ok: ok,
        }
    }
    fn target(mut self, t: Target) -> Self {
        self.target = t;
        self
    }
    fn body(mut self, f: fn(u32) -> Option<Value>) -> Self {
        self.body = f;
        self
    }
    fn key_ok(mut self, s: u16) -> Self {
        self.key_ok = s;
        self
    }
    fn ends_session(mut self) -> Self {
        self.ends_session = true;
        self
    }
    /// DELETE destroys its target: a permitted call gets a fresh one.
    fn destroys(&self) -> bool {
        self.method == Method::DELETE && self.target != Target::None
    }
    fn name(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

fn mac(n: u32) -> String {
    format!("52:54:01:{:02x}:{:02x}:{:02x}", (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff)
}

/// A VNI of its own for call number `n`: unique name and number, a /24 under 10.0.0.0/8 that no
/// other call's overlaps (the fixtures live under 192.168.0.0/16).
fn vni_body(n: u32) -> Value {
    assert!(n < 1 << 16, "call number {n} has no /24 of its own left");
    json!({"name": format!("matrix-net-{n}"), "cidr": format!("10.{}.{}.0/24", n >> 8, n & 0xff), "vni": 100_000 + n})
}

/// A policy of its own for call number `n`, allowing everything.
fn policy_body(n: u32) -> Value {
    json!({"name": format!("matrix-policy-{n}"), "rego": format!("package matrix.p{n}\nallow := true\n")})
}

/// A webhook to a closed loopback port, subscribed to events the matrix never produces.
fn webhook_body() -> Value {
    json!({"url": "http://127.0.0.1:9/matrix", "events": ["cluster.*"]})
}

/// A URL image of its own for call number `n`.
fn image_body(n: u32) -> Value {
    json!({"name": format!("matrix-image-{n}"), "url": "http://127.0.0.1:9/matrix.img", "sha256": "0".repeat(64)})
}

/// The table: every route under /api/v1 except the public ones. Order matters for two rows only:
/// mfa/setup runs before mfa/enable, so a bad code there is 422 (not 409 MFA_NOT_SET_UP).
fn routes() -> Vec<Route> {
    use Method as M;
    vec![
        Route::new(M::GET, "/api/v1/auth/me", None, false, 200),
        // An API key has no session to end: 400 NOT_A_SESSION, by design.
        Route::new(M::POST, "/api/v1/auth/logout", None, false, 204).key_ok(400).ends_session(),
        Route::new(M::POST, "/api/v1/auth/mfa/setup", None, true, 200),
        Route::new(M::POST, "/api/v1/auth/mfa/enable", None, true, 422).body(|_| Some(json!({"totp_code": "abcdef"}))),
        Route::new(M::POST, "/api/v1/auth/mfa/disable", None, true, 409).body(|_| Some(json!({"totp_code": "abcdef"}))),
        Route::new(M::GET, "/api/v1/users", Some("admin"), true, 200),
        Route::new(M::POST, "/api/v1/users", Some("admin"), true, 201).body(|n| {
            Some(json!({"username": format!("matrix-user-{n}"), "password": "matrix-password-123", "role": "viewer"}))
        }),
        Route::new(M::GET, "/api/v1/users/{id}", Some("admin"), true, 200).target(Target::User),
        Route::new(M::PATCH, "/api/v1/users/{id}", Some("admin"), true, 200)
            .target(Target::User)
            .body(|_| Some(json!({"role": "viewer"}))),
        Route::new(M::DELETE, "/api/v1/users/{id}", Some("admin"), true, 204).target(Target::User),
        Route::new(M::GET, "/api/v1/api-keys", None, true, 200),
        Route::new(M::POST, "/api/v1/api-keys", None, true, 201)
            .body(|n| Some(json!({"name": format!("matrix-key-{n}"), "scopes": ["assets:read"]}))),
        Route::new(M::GET, "/api/v1/api-keys/{id}", None, true, 200).target(Target::OwnKey),
        Route::new(M::DELETE, "/api/v1/api-keys/{id}", None, true, 204).target(Target::OwnKey),
        Route::new(M::GET, "/api/v1/assets", Some("assets:read"), false, 200),
        Route::new(M::POST, "/api/v1/assets", Some("assets:write"), false, 201)
            .body(|n| Some(asset_body(&format!("matrix-{n}"), &mac(n)))),
        Route::new(M::GET, "/api/v1/assets/{id}", Some("assets:read"), false, 200).target(Target::Asset),
        Route::new(M::PATCH, "/api/v1/assets/{id}", Some("assets:write"), false, 200)
            .target(Target::Asset)
            .body(|_| Some(json!({"tags": ["rack-b"]}))),
        Route::new(M::DELETE, "/api/v1/assets/{id}", Some("assets:write"), false, 204).target(Target::Asset),
        Route::new(M::GET, "/api/v1/assets/{id}/boot-events", Some("assets:read"), false, 200).target(Target::Asset),
        Route::new(M::GET, "/api/v1/boot-events", Some("assets:read"), false, 200),
        // No agent ever registered on the matrix's assets: 409 AGENT_NOT_REGISTERED once permitted.
        Route::new(M::GET, "/api/v1/assets/{id}/agent", Some("assets:read"), false, 409).target(Target::Asset),
        Route::new(M::GET, "/api/v1/assets/{id}/inventory", Some("assets:read"), false, 409).target(Target::Asset),
        Route::new(M::GET, "/api/v1/assets/{id}/inventory/changes", Some("assets:read"), false, 200).target(Target::Asset),
        Route::new(M::POST, "/api/v1/assets/{id}/agent/commands", Some("assets:read"), false, 409)
            .target(Target::Asset)
            .body(|_| Some(json!({"command": "inventory"}))),
        Route::new(M::POST, "/api/v1/assets/{id}/rescue", Some("admin"), false, 409).target(Target::Asset).body(|_| {
            Some(json!({"public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJL4FLRQ5xdLCFKIvos7U7kqC4bflgoFiVbWk6XVEF+e matrix"}))
        }),
        Route::new(M::GET, "/api/v1/audit", Some("audit:read"), false, 200),
        Route::new(M::GET, "/api/v1/audit/export", Some("audit:read"), false, 200),
        Route::new(M::GET, "/api/v1/audit/verify", Some("audit:read"), false, 200),
        Route::new(M::GET, "/api/v1/vnis", Some("vnis:read"), false, 200),
        Route::new(M::POST, "/api/v1/vnis", Some("vnis:write"), false, 201).body(|n| Some(vni_body(n))),
        Route::new(M::GET, "/api/v1/vnis/{id}", Some("vnis:read"), false, 200).target(Target::Vni),
        Route::new(M::PATCH, "/api/v1/vnis/{id}", Some("vnis:write"), false, 200)
            .target(Target::Vni)
            .body(|_| Some(json!({"description": "x"}))),
        Route::new(M::DELETE, "/api/v1/vnis/{id}", Some("vnis:write"), false, 204).target(Target::Vni),
        Route::new(M::GET, "/api/v1/vnis/{id}/allocations", Some("vnis:read"), false, 200).target(Target::Allocation),
        Route::new(M::POST, "/api/v1/vnis/{id}/allocations", Some("vnis:write"), false, 201)
            .target(Target::Allocation)
            .body(|n| Some(json!({"holder_type": "other", "holder_id": format!("matrix-holder-{n}")}))),
        Route::new(M::DELETE, "/api/v1/vnis/{id}/allocations/{address}", Some("vnis:write"), false, 204)
            .target(Target::Allocation),
        Route::new(M::GET, "/api/v1/enroll-tokens", Some("devices:read"), false, 200),
        Route::new(M::POST, "/api/v1/enroll-tokens", Some("devices:write"), false, 201).body(|_| Some(json!({}))),
        Route::new(M::GET, "/api/v1/enroll-tokens/{id}", Some("devices:read"), false, 200).target(Target::EnrollToken),
        Route::new(M::DELETE, "/api/v1/enroll-tokens/{id}", Some("devices:write"), false, 204)
            .target(Target::EnrollToken),
        Route::new(M::GET, "/api/v1/devices", Some("devices:read"), false, 200),
        Route::new(M::GET, "/api/v1/devices/{id}", Some("devices:read"), false, 200).target(Target::Device),
        Route::new(M::DELETE, "/api/v1/devices/{id}", Some("devices:write"), false, 204).target(Target::Device),
        Route::new(M::GET, "/api/v1/devices/{id}/history", Some("devices:read"), false, 200).target(Target::Device),
        Route::new(M::GET, "/api/v1/policies", Some("policies:read"), false, 200),
        Route::new(M::POST, "/api/v1/policies", Some("policies:write"), false, 201).body(|n| Some(policy_body(n))),
        Route::new(M::POST, "/api/v1/policies/evaluate", Some("policies:read"), false, 200)
            .body(|_| Some(json!({"input": {"action": "wipe", "asset": {"tags": ["production"]}}}))),
        Route::new(M::GET, "/api/v1/policies/{id}", Some("policies:read"), false, 200).target(Target::Policy),
        Route::new(M::PATCH, "/api/v1/policies/{id}", Some("policies:write"), false, 200)
            .target(Target::Policy)
            .body(|_| Some(json!({"description": "x"}))),
        Route::new(M::PUT, "/api/v1/policies/{id}", Some("policies:write"), false, 200)
            .target(Target::Policy)
            .body(|_| Some(json!({"priority": 7}))),
        Route::new(M::DELETE, "/api/v1/policies/{id}", Some("policies:write"), false, 204).target(Target::Policy),
        Route::new(M::GET, "/api/v1/psks", Some("psks:read"), false, 200),
        Route::new(M::POST, "/api/v1/psks", Some("psks:write"), false, 201).body(|_| Some(json!({}))),
        Route::new(M::GET, "/api/v1/psks/{id}", Some("psks:read"), false, 200).target(Target::Psk),
        Route::new(M::PUT, "/api/v1/psks/{id}", Some("psks:write"), false, 200)
            .target(Target::Psk)
            .body(|_| Some(json!({"description": "x"}))),
        Route::new(M::DELETE, "/api/v1/psks/{id}", Some("psks:delete"), false, 200).target(Target::Psk),
        Route::new(M::POST, "/api/v1/psks/{id}/rotate", Some("psks:write"), false, 200)
            .target(Target::Psk)
            .body(|_| Some(json!({}))),
        Route::new(M::GET, "/api/v1/webhooks", Some("webhooks:read"), false, 200),
        Route::new(M::POST, "/api/v1/webhooks", Some("webhooks:write"), false, 201).body(|_| Some(webhook_body())),
        Route::new(M::GET, "/api/v1/webhooks/{id}", Some("webhooks:read"), false, 200).target(Target::Webhook),
        Route::new(M::PATCH, "/api/v1/webhooks/{id}", Some("webhooks:write"), false, 200)
            .target(Target::Webhook)
            .body(|_| Some(json!({"description": "x"}))),
        Route::new(M::DELETE, "/api/v1/webhooks/{id}", Some("webhooks:write"), false, 204).target(Target::Webhook),
        Route::new(M::GET, "/api/v1/webhooks/{id}/deliveries", Some("webhooks:read"), false, 200)
            .target(Target::Webhook),
        Route::new(M::POST, "/api/v1/webhooks/{id}/test", Some("webhooks:write"), false, 202).target(Target::Webhook),
        Route::new(M::GET, "/api/v1/images", Some("assets:read"), false, 200),
        Route::new(M::POST, "/api/v1/images", Some("assets:write"), false, 201).body(|n| Some(image_body(n))),
        Route::new(M::GET, "/api/v1/images/{id}", Some("assets:read"), false, 200).target(Target::Image),
        Route::new(M::PATCH, "/api/v1/images/{id}", Some("assets:write"), false, 200)
            .target(Target::Image)
            .body(|_| Some(json!({"version": "matrix"}))),
        Route::new(M::DELETE, "/api/v1/images/{id}", Some("assets:write"), false, 204).target(Target::Image),
        Route::new(M::PUT, "/api/v1/images/{id}/content", Some("assets:write"), false, 409).target(Target::Image),
        // Workflows: bodies that fail validation after the permission check, so nothing starts
        // and nothing is sent to the fixture's (unreachable, outside) BMC address.
        Route::new(M::POST, "/api/v1/assets/{id}/provision", Some("assets:write"), false, 422)
            .target(Target::Asset)
            .body(|_| Some(json!({"image": {"url": "http://127.0.0.1:9/a.raw", "sha256": "not-hex"}}))),
        Route::new(M::POST, "/api/v1/assets/{id}/wipe", Some("assets:write"), false, 422)
            .target(Target::Asset)
            .body(|_| Some(json!({"method": "quick", "confirm": "some-other-asset"}))),
        Route::new(M::POST, "/api/v1/assets/{id}/power", Some("assets:write"), false, 422)
            .target(Target::Asset)
            .body(|_| Some(json!({"action": "explode"}))),
        Route::new(M::POST, "/api/v1/assets/{id}/bmc/check", Some("assets:read"), false, 404)
            .target(Target::Missing("ast_0000000000000000")),
        Route::new(M::GET, "/api/v1/workflows", Some("workflows:read"), false, 200),
        Route::new(M::GET, "/api/v1/workflows/{id}", Some("workflows:read"), false, 404)
            .target(Target::Missing("wf_0000000000000000")),
        Route::new(M::POST, "/api/v1/workflows/{id}/cancel", Some("assets:write"), false, 404)
            .target(Target::Missing("wf_0000000000000000")),
        Route::new(M::POST, "/api/v1/workflows/{id}/retry", Some("assets:write"), false, 404)
            .target(Target::Missing("wf_0000000000000000")),
        Route::new(M::GET, "/api/v1/workflows/{id}/certificate", Some("workflows:read"), false, 404)
            .target(Target::Missing("wf_0000000000000000")),
        Route::new(M::GET, "/api/v1/wipe-certificates/public-key", Some("workflows:read"), false, 200),
        // Clusters: a body that fails validation after the permission check (nothing is built).
        Route::new(M::POST, "/api/v1/clusters", Some("clusters:write"), false, 422)
            .body(|_| Some(json!({"name": "matrix", "type": "civo_stack", "controlPlanes": []}))),
        Route::new(M::GET, "/api/v1/clusters", Some("clusters:read"), false, 200),
        Route::new(M::GET, "/api/v1/clusters/{id}", Some("clusters:read"), false, 404)
            .target(Target::Missing("cls_0000000000000000")),
        Route::new(M::DELETE, "/api/v1/clusters/{id}", Some("clusters:write"), false, 404)
            .target(Target::Missing("cls_0000000000000000")),
        Route::new(M::GET, "/api/v1/clusters/{id}/kubeconfig", Some("clusters:read"), false, 404)
            .target(Target::Missing("cls_0000000000000000")),
        Route::new(M::GET, "/api/v1/clusters/{id}/talosconfig", Some("clusters:read"), false, 404)
            .target(Target::Missing("cls_0000000000000000")),
    ]
}

fn options() -> Options {
    Options::default()
        .env("IRONBAY_RATE_LIMIT__API_PER_MINUTE", "100000")
        .env("IRONBAY_RATE_LIMIT__API_BURST", "100000")
        // The matrix logs in afresh for every logout it makes.
        .env("IRONBAY_RATE_LIMIT__LOGIN_PER_MINUTE", "100000")
        .env("IRONBAY_RATE_LIMIT__LOGIN_BURST", "100000")
        .env("IRONBAY_RATE_LIMIT__ENROLL_PER_MINUTE", "100000")
        .env("IRONBAY_RATE_LIMIT__ENROLL_BURST", "100000")
        // Test pings fail (nobody listens): the fixture webhook must stay enabled throughout.
        .env("IRONBAY_WEBHOOKS__DISABLE_AFTER", "1000")
}

/// Checks the uniform error body `{"error": non-empty string, "code": string, "details": object}`
/// and returns the code.
fn uniform_error(r: &Resp) -> Result<String, String> {
    let msg_ok = r.json["error"].as_str().is_some_and(|s| !s.is_empty());
    let details_ok = r.json["details"].is_object();
    match r.json["code"].as_str() {
        Some(code) if msg_ok && details_ok => Ok(code.to_string()),
        _ => Err(format!("not the uniform error body: {}", r.text)),
    }
}

/// Collects every mismatch so one run reports the whole matrix, not just the first hole.
#[derive(Default)]
struct Findings(Vec<String>);

impl Findings {
    fn fail(&mut self, what: String) {
        self.0.push(what);
    }

    fn unauthenticated(&mut self, ctx: &str, r: &Resp, code: &str) {
        if r.status != 401 {
            return self.fail(format!("{ctx}: expected 401 {code}, got {} {}", r.status, r.text));
        }
        match uniform_error(r) {
            Err(e) => self.fail(format!("{ctx}: {e}")),
            Ok(c) if c != code => self.fail(format!("{ctx}: expected code {code}, got {c}")),
            Ok(_) => {}
        }
        if !r.header("www-authenticate").is_some_and(|h| h.starts_with("Bearer")) {
            self.fail(format!("{ctx}: 401 without a `WWW-Authenticate: Bearer` header"));
        }
    }

    fn missing_scope(&mut self, ctx: &str, r: &Resp, scope: &str) {
        if r.status != 403 {
            return self.fail(format!("{ctx}: expected 403 INSUFFICIENT_SCOPE ({scope}), got {} {}", r.status, r.text));
        }
        match uniform_error(r) {
            Err(e) => return self.fail(format!("{ctx}: {e}")),
            Ok(c) if c != "INSUFFICIENT_SCOPE" => self.fail(format!("{ctx}: expected INSUFFICIENT_SCOPE, got {c}")),
            Ok(_) => {}
        }
        if r.json["details"]["missing_scope"] != scope {
            self.fail(format!("{ctx}: details.missing_scope should be {scope}: {}", r.text));
        }
        if !r.json["error"].as_str().unwrap_or("").contains(scope) {
            self.fail(format!("{ctx}: the message does not name `{scope}`: {}", r.text));
        }
    }

    fn session_required(&mut self, ctx: &str, r: &Resp) {
        if r.status != 403 {
            return self.fail(format!("{ctx}: expected 403 SESSION_REQUIRED, got {} {}", r.status, r.text));
        }
        match uniform_error(r) {
            Err(e) => self.fail(format!("{ctx}: {e}")),
            Ok(c) if c != "SESSION_REQUIRED" => {
                self.fail(format!("{ctx}: expected SESSION_REQUIRED, got {c}: {}", r.text))
            }
            Ok(_) => {}
        }
    }

    fn allowed(&mut self, ctx: &str, r: &Resp, status: u16) {
        // `status` is never 401 or 403: a permitted caller is neither unauthenticated nor refused.
        if r.status != status {
            self.fail(format!("{ctx}: permitted caller expected {status}, got {} {}", r.status, r.text));
        }
    }

    fn finish(self, what: &str) {
        assert!(self.0.is_empty(), "{what}: {} failure(s):\n{}", self.0.len(), self.0.join("\n"));
    }
}

/// A user of one role: its password (for fresh logins) and a bearer-token session.
struct RoleUser {
    role: &'static str,
    username: String,
    session: Client,
}

/// The appliance, its admin, the role users and the fixtures the rows point at.
struct Matrix {
    app: Appliance,
    admin: Client,
    roles: Vec<RoleUser>,
    asset_id: String,
    user_id: String,
    /// An empty VNI.
    vni_id: String,
    /// A VNI with one long-lived allocation at `address` (permitted calls add and release others).
    pool_id: String,
    address: String,
    /// A token nobody revokes, and a many-use token's value that enrolls fresh devices.
    token_id: String,
    enroll_value: String,
    /// A device nobody deletes.
    device_id: String,
    /// A policy that allows everything.
    policy_id: String,
    psk_id: String,
    webhook_id: String,
    image_id: String,
    /// One long-lived key per owner (by username), for the rows that only read it.
    own_keys: HashMap<String, String>,
    /// API keys by label, created by the admin (who may grant every scope).
    keys: HashMap<String, Client>,
    n: u32,
}

impl Matrix {
    async fn start(backend: Backend) -> Self {
        let app = Appliance::start_with(backend, options()).await;
        let admin = app.admin().await;
        let mut roles = Vec::new();
        for role in ["viewer", "operator"] {
            let username = format!("matrix-{role}");
            let session = app.user(&admin, &username, role).await;
            roles.push(RoleUser { role, username, session });
        }
        roles.push(RoleUser { role: "admin", username: "admin".into(), session: admin.clone() });
        let r = admin.post("/api/v1/assets", asset_body("matrix-fixture", "52:54:00:aa:bb:01")).await;
        assert_eq!(r.status, 201, "fixture asset: {}", r.text);
        let asset_id = r.json["id"].as_str().expect("asset id").to_string();
        let r = admin
            .post(
                "/api/v1/users",
                json!({"username": "matrix-target", "password": "matrix-password-123", "role": "viewer"}),
            )
            .await;
        assert_eq!(r.status, 201, "fixture user: {}", r.text);
        let user_id = r.json["id"].as_str().expect("user id").to_string();
        let vni_id = Self::new_vni(&admin, json!({"name": "matrix-fixture", "cidr": "192.168.0.0/24", "vni": 1})).await;
        let pool_id = Self::new_vni(&admin, json!({"name": "matrix-pool", "cidr": "192.168.1.0/24", "vni": 2})).await;
        let address = Self::new_allocation(&admin, &pool_id, 0).await;
        let token_id = Self::new_token(&admin, json!({})).await.0;
        let enroll_value = Self::new_token(&admin, json!({"max_uses": 1_000_000})).await.1;
        let device_id = Self::new_device(&app, &enroll_value, 0).await;
        let policy_id = Self::new_policy(&admin, 0).await;
        let psk_id = Self::new_psk(&admin).await;
        let webhook_id = Self::new_webhook(&admin).await;
        let image_id = Self::new_image(&admin, 0).await;
        Matrix {
            token_id,
            enroll_value,
            device_id,
            app,
            admin,
            roles,
            asset_id,
            user_id,
            vni_id,
            pool_id,
            address,
            policy_id,
            psk_id,
            webhook_id,
            image_id,
            own_keys: HashMap::new(),
            keys: HashMap::new(),
            n: 0,
        }
    }

    fn next(&mut self) -> u32 {
        self.n += 1;
        self.n
    }

    /// An admin-made API key holding exactly `scopes`, cached by `label`.
    async fn key(&mut self, label: &str, scopes: &[&str]) -> Client {
        if let Some(k) = self.keys.get(label) {
            return k.clone();
        }
        let k = self.admin.api_key(scopes).await;
        self.keys.insert(label.to_string(), k.clone());
        k
    }

    async fn new_key_id(owner: &Client, n: u32) -> String {
        let r =
            owner.post("/api/v1/api-keys", json!({"name": format!("matrix-own-{n}"), "scopes": ["assets:read"]})).await;
        assert_eq!(r.status, 201, "fixture key: {}", r.text);
        r.json["id"].as_str().expect("key id").to_string()
    }

    async fn new_vni(admin: &Client, body: Value) -> String {
        let r = admin.post("/api/v1/vnis", body).await;
        assert_eq!(r.status, 201, "fixture VNI: {}", r.text);
        r.json["id"].as_str().expect("vni id").to_string()
    }

    /// Creates an enrollment token; returns (id, value).
    async fn new_token(admin: &Client, body: Value) -> (String, String) {
        let r = admin.post("/api/v1/enroll-tokens", body).await;
        assert_eq!(r.status, 201, "fixture token: {}", r.text);
        (r.json["id"].as_str().expect("token id").to_string(), r.json["token"].as_str().expect("token").to_string())
    }

    /// Enrolls a device with the token `value` and returns its id.
    async fn new_device(app: &Appliance, value: &str, n: u32) -> String {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).expect("key");
        let body = json!({"token": value, "name": format!("matrix-device-{n}"), "public_key": key.public_key_pem()});
        let r = app.client().post("/api/v1/devices/enroll", body).await;
        assert_eq!(r.status, 201, "fixture device: {}", r.text);
        r.json["id"].as_str().expect("device id").to_string()
    }

    async fn new_policy(admin: &Client, n: u32) -> String {
        let r = admin.post("/api/v1/policies", policy_body(1_000_000 + n)).await;
        assert_eq!(r.status, 201, "fixture policy: {}", r.text);
        r.json["id"].as_str().expect("policy id").to_string()
    }

    async fn new_psk(admin: &Client) -> String {
        let r = admin.post("/api/v1/psks", json!({})).await;
        assert_eq!(r.status, 201, "fixture PSK: {}", r.text);
        r.json["id"].as_str().expect("psk id").to_string()
    }

    async fn new_webhook(admin: &Client) -> String {
        let r = admin.post("/api/v1/webhooks", webhook_body()).await;
        assert_eq!(r.status, 201, "fixture webhook: {}", r.text);
        r.json["id"].as_str().expect("webhook id").to_string()
    }

    async fn new_image(admin: &Client, n: u32) -> String {
        let r = admin.post("/api/v1/images", image_body(1_000_000 + n)).await;
        assert_eq!(r.status, 201, "fixture image: {}", r.text);
        r.json["id"].as_str().expect("image id").to_string()
    }

    /// Allocates the next free address of `vni_id` and returns it.
    async fn new_allocation(admin: &Client, vni_id: &str, n: u32) -> String {
        let r = admin
            .post(
                &format!("/api/v1/vnis/{vni_id}/allocations"),
                json!({"holder_type": "other", "holder_id": format!("matrix-fixture-{n}")}),
            )
            .await;
        assert_eq!(r.status, 201, "fixture allocation: {}", r.text);
        r.json["address"].as_str().expect("address").to_string()
    }

    /// The id (and address) a call on `route` should name. A call expected to succeed on a route
    /// that destroys its target gets a fresh target; every other call uses the shared one (and a
    /// refused DELETE must leave it in place, which `still_there` checks).
    async fn target_id(
        &mut self,
        route: &Route,
        owner: Option<(&str, &Client)>,
        fresh: bool,
    ) -> Vec<(&'static str, String)> {
        let one = |id: String| vec![("{id}", id)];
        let n = self.next();
        let fresh = fresh && route.destroys();
        match route.target {
            Target::None => Vec::new(),
            Target::Vni if fresh => one(Self::new_vni(&self.admin, vni_body(n)).await),
            Target::Vni => one(self.vni_id.clone()),
            Target::Policy if fresh => one(Self::new_policy(&self.admin, n).await),
            Target::Policy => one(self.policy_id.clone()),
            Target::Psk if fresh => one(Self::new_psk(&self.admin).await),
            Target::Psk => one(self.psk_id.clone()),
            Target::Webhook if fresh => one(Self::new_webhook(&self.admin).await),
            Target::Webhook => one(self.webhook_id.clone()),
            Target::Image if fresh => one(Self::new_image(&self.admin, n).await),
            Target::Image => one(self.image_id.clone()),
            Target::Missing(id) => one(id.to_string()),
            Target::Allocation => {
                let address = if fresh {
                    Self::new_allocation(&self.admin, &self.pool_id, n).await
                } else {
                    self.address.clone()
                };
                vec![("{id}", self.pool_id.clone()), ("{address}", address)]
            }
            Target::EnrollToken if fresh => one(Self::new_token(&self.admin, json!({})).await.0),
            Target::EnrollToken => one(self.token_id.clone()),
            Target::Device if fresh => one(Self::new_device(&self.app, &self.enroll_value, n).await),
            Target::Device => one(self.device_id.clone()),
            Target::Asset if fresh => {
                let r = self.admin.post("/api/v1/assets", asset_body(&format!("matrix-victim-{n}"), &mac(n))).await;
                assert_eq!(r.status, 201, "fresh asset: {}", r.text);
                one(r.json["id"].as_str().expect("asset id").to_string())
            }
            Target::Asset => one(self.asset_id.clone()),
            Target::User if fresh => {
                let r = self.admin.post("/api/v1/users", json!({"username": format!("matrix-victim-{n}"), "password": "matrix-password-123", "role": "viewer"})).await;
                assert_eq!(r.status, 201, "fresh user: {}", r.text);
                one(r.json["id"].as_str().expect("user id").to_string())
            }
            Target::User => one(self.user_id.clone()),
            Target::OwnKey => {
                let (name, client) = match owner {
                    Some((name, client)) => (name.to_string(), client.clone()),
                    None => ("admin".to_string(), self.admin.clone()),
                };
                if fresh {
                    return one(Self::new_key_id(&client, n).await);
                }
                if let Some(id) = self.own_keys.get(&name) {
                    return one(id.clone());
                }
                let id = Self::new_key_id(&client, n).await;
                self.own_keys.insert(name, id.clone());
                one(id)
            }
        }
    }

    /// The request for one call: path with the id (and address) substituted, and the body.
    async fn request(&mut self, route: &Route, owner: Option<(&str, &Client)>, fresh: bool) -> (String, Option<Value>) {
        let mut path = route.path.to_string();
        for (placeholder, value) in self.target_id(route, owner, fresh).await {
            path = path.replace(placeholder, &value);
        }
        let n = self.next();
        (path, (route.body)(n))
    }

    /// After a refused call: the shared target must be untouched (a refused DELETE deleted nothing).
    async fn still_there(&self, f: &mut Findings, route: &Route, ctx: &str) {
        let path = match route.target {
            Target::None | Target::Missing(_) => return,
            Target::Asset => format!("/api/v1/assets/{}", self.asset_id),
            Target::User => format!("/api/v1/users/{}", self.user_id),
            Target::OwnKey => {
                let Some(id) = self.own_keys.get("admin") else { return };
                format!("/api/v1/api-keys/{id}")
            }
            Target::Vni => format!("/api/v1/vnis/{}", self.vni_id),
            Target::EnrollToken => format!("/api/v1/enroll-tokens/{}", self.token_id),
            Target::Device => format!("/api/v1/devices/{}", self.device_id),
            Target::Policy => format!("/api/v1/policies/{}", self.policy_id),
            Target::Psk => format!("/api/v1/psks/{}", self.psk_id),
            Target::Webhook => format!("/api/v1/webhooks/{}", self.webhook_id),
            Target::Image => format!("/api/v1/images/{}", self.image_id),
            Target::Allocation => {
                // Ordered by address: the fixture's, allocated first, is on the first page.
                let path = format!("/api/v1/vnis/{}/allocations?per_page=100", self.pool_id);
                let r = self.admin.get(&path).await;
                let held = r.json["data"]
                    .as_array()
                    .is_some_and(|items| items.iter().any(|a| a["address"] == self.address.as_str()));
                if r.status != 200 || !held {
                    f.fail(format!("{ctx}: the refused call released {}: {} {}", self.address, r.status, r.text));
                }
                return;
            }
        };
        let r = self.admin.get(&path).await;
        if r.status != 200 || !r.json["revoked_at"].is_null() {
            f.fail(format!("{ctx}: the refused call changed its target {path}: {} {}", r.status, r.text));
        }
    }

    async fn call(client: &Client, route: &Route, path: &str, body: Option<Value>) -> Resp {
        client.call(route.method.clone(), path, body).await
    }

    /// (a) and (b): no credentials, and credentials that do not check out.
    async fn unauthenticated_rows(&mut self, f: &mut Findings, route: &Route) {
        let anon = self.app.client();
        let (path, body) = self.request(route, None, false).await;
        let r = Self::call(&anon, route, &path, body).await;
        f.unauthenticated(&format!("{} with no credentials", route.name()), &r, "UNAUTHENTICATED");
        self.still_there(f, route, &route.name()).await;

        // A real access token and a real API key with one character changed.
        let real_token = self.admin.token();
        let real_key = self.key("assets:read only", &["assets:read"]).await.token();
        let tamper = |t: &str| {
            let mut s = t.to_string();
            let last = s.pop().expect("non-empty");
            s.push(if last == 'A' { 'B' } else { 'A' });
            s
        };
        let bad: Vec<(String, Auth, &str)> = vec![
            ("garbage bearer".into(), Auth::Bearer("not-a-real-token".into()), "INVALID_TOKEN"),
            ("garbage X-API-Key".into(), Auth::XApiKey("not-a-real-token".into()), "INVALID_TOKEN"),
            ("tampered access token".into(), Auth::Bearer(tamper(&real_token)), "INVALID_TOKEN"),
            ("tampered API key (bearer)".into(), Auth::Bearer(tamper(&real_key)), "INVALID_API_KEY"),
            ("tampered API key (X-API-Key)".into(), Auth::XApiKey(tamper(&real_key)), "INVALID_API_KEY"),
        ];
        for (what, auth, code) in bad {
            let client = anon.with_auth(auth);
            let (path, body) = self.request(route, None, false).await;
            let r = Self::call(&client, route, &path, body).await;
            let ctx = format!("{} with a {what}", route.name());
            f.unauthenticated(&ctx, &r, code);
            self.still_there(f, route, &ctx).await;
        }
    }

    /// (c): each role's session, by bearer access token and by session cookie.
    async fn role_rows(&mut self, f: &mut Findings, route: &Route) {
        for i in 0..self.roles.len() {
            let (role, username, session) = {
                let u = &self.roles[i];
                (u.role, u.username.clone(), u.session.clone())
            };
            let permitted = route.scope.is_none_or(|s| role_scopes(role).contains(&s));
            for via in ["bearer token", "session cookie"] {
                let owner = if route.ends_session {
                    let pw = if role == "admin" {
                        common::ADMIN_PASSWORD.to_string()
                    } else {
                        format!("{username}-password-123")
                    };
                    self.app.client().login(&username, &pw).await
                } else {
                    session.clone()
                };
                let caller = if via == "bearer token" {
                    owner.clone()
                } else {
                    // Same cookie jar, no Authorization header: the session cookie alone.
                    let mut c = owner.clone();
                    c.auth = Auth::None;
                    c
                };
                let (path, body) = self.request(route, Some((&username, &owner)), permitted).await;
                let r = Self::call(&caller, route, &path, body).await;
                let ctx = format!("{} as {role} ({via})", route.name());
                match route.scope {
                    Some(scope) if !permitted => {
                        f.missing_scope(&ctx, &r, scope);
                        self.still_there(f, route, &ctx).await;
                    }
                    _ => f.allowed(&ctx, &r, route.ok),
                }
            }
        }
    }

    /// (d): API keys with every scope but the one needed, and with only that one; by both headers.
    async fn key_rows(&mut self, f: &mut Findings, route: &Route) {
        let mut cases: Vec<(String, Client, bool)> = Vec::new();
        match route.scope {
            Some(scope) => {
                let all_but: Vec<&str> = ALL_SCOPES.iter().copied().filter(|s| *s != scope).collect();
                cases.push((
                    format!("key with every scope but {scope}"),
                    self.key(&format!("all but {scope}"), &all_but).await,
                    false,
                ));
                cases.push((
                    format!("key with only {scope}"),
                    self.key(&format!("{scope} only"), &[scope]).await,
                    true,
                ));
            }
            None => {
                cases.push(("key with every scope".into(), self.key("every scope", &ALL_SCOPES).await, true));
                cases.push((
                    "key with only assets:read".into(),
                    self.key("assets:read only", &["assets:read"]).await,
                    true,
                ));
            }
        }
        for (what, bearer, holds) in cases {
            let x_api_key = bearer.with_auth(Auth::XApiKey(bearer.token()));
            for (via, client) in [("Authorization: Bearer", bearer.clone()), ("X-API-Key", x_api_key)] {
                let permitted = holds && !route.session_only;
                let (path, body) = self.request(route, None, permitted).await;
                let r = Self::call(&client, route, &path, body).await;
                let ctx = format!("{} with a {what} ({via})", route.name());
                if route.session_only {
                    f.session_required(&ctx, &r);
                    self.still_there(f, route, &ctx).await;
                } else if permitted {
                    f.allowed(&ctx, &r, route.key_ok);
                } else {
                    f.missing_scope(&ctx, &r, route.scope.expect("a key without the scope"));
                    self.still_there(f, route, &ctx).await;
                }
            }
        }
    }
}

/// The whole route × caller matrix.
async fn route_permission_matrix(backend: Backend) {
    let mut m = Matrix::start(backend).await;
    let mut f = Findings::default();
    let table = routes();
    for route in &table {
        m.unauthenticated_rows(&mut f, route).await;
        m.role_rows(&mut f, route).await;
        m.key_rows(&mut f, route).await;
    }
    f.finish("permission matrix");
}

/// The matrix is only a proof if it names every route the appliance documents.
async fn matrix_covers_every_documented_route(backend: Backend) {
    let app = Appliance::start_with(backend, options()).await;
    let doc = app.client().get("/api/v1/openapi.json").await;
    assert_eq!(doc.status, 200, "{}", doc.text);
    let paths = doc.json["paths"].as_object().expect("paths");
    let table = routes();
    let mut documented = Vec::new();
    for (path, item) in paths {
        for method in item.as_object().expect("path item").keys() {
            let method = method.to_ascii_uppercase();
            if ["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&method.as_str()) {
                documented.push((method, path.clone()));
            }
        }
    }
    assert!(documented.len() >= table.len(), "the document lists {} operations", documented.len());
    for (method, path) in &documented {
        let public = PUBLIC.iter().chain(STREAMS).any(|(m, p)| m == method && p == path);
        let in_table = table.iter().any(|r| r.method.as_str() == method && r.path == path);
        assert!(public || in_table, "{method} {path} is documented but not in the permission matrix: add a row");
    }
    for r in &table {
        assert!(
            documented.iter().any(|(m, p)| m == r.method.as_str() && p == r.path),
            "{} is in the matrix but not documented",
            r.name()
        );
    }
}

/// A key can only carry scopes its creator's role grants; anything else is refused by name.
async fn keys_cannot_exceed_the_creators_role(backend: Backend) {
    let app = Appliance::start_with(backend, options()).await;
    let admin = app.admin().await;
    let operator = app.user(&admin, "key-operator", "operator").await;
    let viewer = app.user(&admin, "key-viewer", "viewer").await;
    let refused = |r: &Resp, scope: &str, who: &str| {
        assert_eq!(r.status, 403, "{who} asking for {scope}: {}", r.text);
        assert_eq!(r.error_code(), "INSUFFICIENT_SCOPE", "{who} asking for {scope}");
        assert_eq!(r.json["details"]["missing_scope"], scope, "{who}: {}", r.text);
        assert!(
            r.json["error"].as_str().unwrap_or("").contains(scope),
            "{who}: message does not name {scope}: {}",
            r.text
        );
    };
    for scope in ALL_SCOPES.iter().filter(|s| !OPERATOR_SCOPES.contains(s)) {
        let r = operator.post("/api/v1/api-keys", json!({"name": "too much", "scopes": ["assets:read", scope]})).await;
        refused(&r, scope, "operator");
    }
    for scope in OPERATOR_SCOPES.iter().filter(|s| !VIEWER_SCOPES.contains(s)) {
        let r = viewer.post("/api/v1/api-keys", json!({"name": "too much", "scopes": [scope]})).await;
        refused(&r, scope, "viewer");
    }
    // Refusals created nothing.
    for (who, c) in [("operator", &operator), ("viewer", &viewer)] {
        let r = c.get("/api/v1/api-keys").await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.json["meta"]["total"], 0, "{who} has keys after refusals: {}", r.text);
    }
    // Everything the role grants is fine.
    let r = operator.post("/api/v1/api-keys", json!({"name": "all operator scopes", "scopes": OPERATOR_SCOPES})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = viewer.post("/api/v1/api-keys", json!({"name": "all viewer scopes", "scopes": VIEWER_SCOPES})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    // An API key cannot mint keys, not even with every scope.
    let key = admin.api_key(&ALL_SCOPES).await;
    let r = key.post("/api/v1/api-keys", json!({"name": "from a key", "scopes": ["assets:read"]})).await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(r.error_code(), "SESSION_REQUIRED");
}

/// A key acts with the intersection of its scopes and its owner's current role: demoting the owner
/// takes scopes away from the key at once, promoting gives them back.
async fn key_scopes_follow_the_owners_role(backend: Backend) {
    let app = Appliance::start_with(backend, options()).await;
    let admin = app.admin().await;
    let operator = app.user(&admin, "demoted-operator", "operator").await;
    let me = operator.get("/api/v1/auth/me").await;
    let op_id = me.json["id"].as_str().expect("user id").to_string();
    let key = operator.api_key(&["assets:read", "assets:write", "audit:read"]).await;
    let key_x = key.with_auth(Auth::XApiKey(key.token()));

    let r = key.post("/api/v1/assets", asset_body("before-demotion", "52:54:00:dd:00:01")).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(key_x.get("/api/v1/audit").await.status, 200);

    let r = admin.patch(&format!("/api/v1/users/{op_id}"), json!({"role": "viewer"})).await;
    assert_eq!(r.status, 200, "demote: {}", r.text);
    assert_eq!(r.json["role"], "viewer");

    for (via, c) in [("bearer", &key), ("X-API-Key", &key_x)] {
        let r = c.post("/api/v1/assets", asset_body("after-demotion", "52:54:00:dd:00:02")).await;
        assert_eq!(r.status, 403, "{via}: write after demotion: {}", r.text);
        assert_eq!(r.error_code(), "INSUFFICIENT_SCOPE");
        assert_eq!(r.json["details"]["missing_scope"], "assets:write", "{}", r.text);
        let r = c.get("/api/v1/audit").await;
        assert_eq!(r.status, 403, "{via}: audit after demotion: {}", r.text);
        assert_eq!(r.json["details"]["missing_scope"], "audit:read", "{}", r.text);
        // What the viewer role still grants, the key keeps.
        let r = c.get("/api/v1/assets").await;
        assert_eq!(r.status, 200, "{via}: read after demotion: {}", r.text);
        let r = c.get("/api/v1/auth/me").await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.json["scopes"], json!(["assets:read"]), "{via}: effective scopes after demotion: {}", r.text);
    }
    // The owner's own session lost the scope too.
    let r = operator.post("/api/v1/assets", asset_body("after-demotion", "52:54:00:dd:00:02")).await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(r.json["details"]["missing_scope"], "assets:write");

    let r = admin.patch(&format!("/api/v1/users/{op_id}"), json!({"role": "operator"})).await;
    assert_eq!(r.status, 200, "promote: {}", r.text);
    let r = key.post("/api/v1/assets", asset_body("after-promotion", "52:54:00:dd:00:03")).await;
    assert_eq!(r.status, 201, "write after promotion: {}", r.text);
    assert_eq!(key_x.get("/api/v1/audit").await.status, 200);
}

both_backends!(
    route_permission_matrix,
    matrix_covers_every_documented_route,
    keys_cannot_exceed_the_creators_role,
    key_scopes_follow_the_owners_role
);
