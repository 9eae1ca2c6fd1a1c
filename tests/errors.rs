//! Every class of malformed input is answered with the uniform `{"error", "code", "details"}` body
//! naming what is wrong, and a rejected write changes nothing (asset, user and key counts, the
//! audit chain, and the asset a failed PATCH aimed at).

mod common;

use common::{ADMIN_PASSWORD, Appliance, Backend, Client, Options, Resp};
use reqwest::Method;
use serde_json::{Value, json};

/// The write endpoints every body-level class is tried on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    CreateAsset,
    PatchAsset,
    CreateUser,
    CreateApiKey,
    Login,
}

const ALL_TARGETS: [Target; 5] =
    [Target::CreateAsset, Target::PatchAsset, Target::CreateUser, Target::CreateApiKey, Target::Login];

impl Target {
    fn method(self) -> Method {
        match self {
            Target::PatchAsset => Method::PATCH,
            _ => Method::POST,
        }
    }

    fn path(self, asset_id: &str) -> String {
        match self {
            Target::CreateAsset => "/api/v1/assets".into(),
            Target::PatchAsset => format!("/api/v1/assets/{asset_id}"),
            Target::CreateUser => "/api/v1/users".into(),
            Target::CreateApiKey => "/api/v1/api-keys".into(),
            Target::Login => "/api/v1/auth/login".into(),
        }
    }

    /// A body this endpoint accepts and acts on: every rejection below is caused by the one defect
    /// the case adds, and would otherwise have changed something.
    fn valid_body(self) -> Value {
        match self {
            Target::CreateAsset => common::asset_body("fresh-node", "52:54:00:99:99:99"),
            Target::PatchAsset => json!({"hostname": "renamed-node", "tags": ["changed"]}),
            Target::CreateUser => json!({"username": "newuser", "password": "newuser-password-1", "role": "viewer"}),
            Target::CreateApiKey => json!({"name": "automation", "scopes": ["assets:read"]}),
            Target::Login => json!({"username": "admin", "password": ADMIN_PASSWORD}),
        }
    }
}

/// `base` with the value at `path` (object keys, created as needed) set to `value`.
fn with(mut base: Value, path: &[&str], value: Value) -> Value {
    let (last, parents) = path.split_last().expect("non-empty path");
    let mut cur = &mut base;
    for p in parents {
        cur = cur.as_object_mut().expect("object").entry(p.to_string()).or_insert_with(|| json!({}));
    }
    cur.as_object_mut().expect("object").insert(last.to_string(), value);
    base
}

/// `base` without the value at `path`.
fn without(mut base: Value, path: &[&str]) -> Value {
    let (last, parents) = path.split_last().expect("non-empty path");
    let mut cur = &mut base;
    for p in parents {
        cur = cur.get_mut(*p).expect("parent exists");
    }
    assert!(cur.as_object_mut().expect("object").remove(*last).is_some(), "{path:?} was not in the body");
    base
}

fn bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).expect("serialise")
}

/// Everything a rejected write must leave as it was.
#[derive(Debug, PartialEq, Eq)]
struct Observed {
    assets: i64,
    users: i64,
    api_keys: i64,
    audit_entries: u64,
    /// The PATCH target, byte for byte.
    asset: String,
}

struct Fixture {
    app: Appliance,
    admin: Client,
    asset_id: String,
    before: Observed,
}

impl Fixture {
    async fn start(backend: Backend) -> Self {
        Self::start_with(backend, Options::default()).await
    }

    async fn start_with(backend: Backend, opts: Options) -> Self {
        // Several cases here post to the login endpoint; its per-address bucket (10 a minute by
        // default) is not what these tests are about.
        let opts = opts.env("IRONBAY_RATE_LIMIT__LOGIN_PER_MINUTE", "1000");
        let app = Appliance::start_with(backend, opts).await;
        let admin = app.admin().await;
        let r = admin.post("/api/v1/assets", common::asset_body("existing-node", "52:54:00:00:00:01")).await;
        assert_eq!(r.status, 201, "seed asset: {}", r.text);
        let asset_id = r.json["id"].as_str().expect("asset id").to_string();
        let mut f = Fixture {
            app,
            admin,
            asset_id,
            before: Observed { assets: 0, users: 0, api_keys: 0, audit_entries: 0, asset: String::new() },
        };
        f.before = f.observe().await;
        assert_eq!((f.before.assets, f.before.users), (1, 1), "fresh appliance: {:?}", f.before);
        assert!(f.before.audit_entries >= 2, "the admin login and the seed asset are audited: {:?}", f.before);
        f
    }

    async fn total(&self, path: &str) -> i64 {
        let r = self.admin.get(path).await;
        assert_eq!(r.status, 200, "GET {path}: {}", r.text);
        r.json["meta"]["total"].as_i64().unwrap_or_else(|| panic!("GET {path}: no meta.total: {}", r.text))
    }

    async fn observe(&self) -> Observed {
        let v = self.admin.get("/api/v1/audit/verify").await;
        assert_eq!(v.status, 200, "verify: {}", v.text);
        assert_eq!(v.json["valid"], true, "audit chain broken: {}", v.text);
        let asset = self.admin.get(&format!("/api/v1/assets/{}", self.asset_id)).await;
        assert_eq!(asset.status, 200, "GET seed asset: {}", asset.text);
        Observed {
            assets: self.total("/api/v1/assets").await,
            users: self.total("/api/v1/users").await,
            api_keys: self.total("/api/v1/api-keys").await,
            audit_entries: v.json["entries"].as_u64().expect("entries"),
            asset: asset.text,
        }
    }

    async fn assert_unchanged(&self, label: &str) {
        let now = self.observe().await;
        assert_eq!(now, self.before, "{label}: a rejected request changed state");
    }

    /// Logins go out anonymously; everything else as the admin.
    fn client_for(&self, target: Target) -> Client {
        if target == Target::Login { self.app.client() } else { self.admin.clone() }
    }

    async fn send(&self, target: Target, content_type: Option<&str>, body: Vec<u8>) -> Resp {
        self.client_for(target).raw(target.method(), &target.path(&self.asset_id), content_type, body).await
    }

    /// Sends `body` as JSON to `target`, expects the uniform error with `status` and `code`, checks
    /// nothing changed, and returns `details`.
    async fn reject(&self, label: &str, target: Target, body: Vec<u8>, status: u16, code: &str) -> Value {
        self.reject_as(label, target, Some("application/json"), body, status, code).await
    }

    async fn reject_as(
        &self,
        label: &str,
        target: Target,
        content_type: Option<&str>,
        body: Vec<u8>,
        status: u16,
        code: &str,
    ) -> Value {
        let label = format!("{label} on {target:?}");
        let r = self.send(target, content_type, body).await;
        let details = expect_error(&label, &r, status, code);
        self.assert_unchanged(&label).await;
        details
    }

    /// Like `reject`, and the error names `field`.
    async fn reject_field(&self, label: &str, target: Target, body: Value, status: u16, code: &str, field: &str) {
        let details = self.reject(label, target, bytes(&body), status, code).await;
        assert_eq!(details["field"], field, "{label} on {target:?}: wrong field named: {details}");
    }
}

/// Asserts `r` is the uniform error body with this status; returns its code and `details`.
fn expect_uniform(label: &str, r: &Resp, status: u16) -> (String, Value) {
    assert_eq!(r.status, status, "{label}: status: {}", r.text);
    assert!(
        r.header("content-type").is_some_and(|ct| ct.starts_with("application/json")),
        "{label}: error is not JSON: content-type {:?}, body {:?}",
        r.header("content-type"),
        r.text
    );
    let obj = r.json.as_object().unwrap_or_else(|| panic!("{label}: body is not a JSON object: {:?}", r.text));
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["code", "details", "error"], "{label}: not the uniform error body: {}", r.text);
    assert!(r.json["error"].as_str().is_some_and(|m| !m.trim().is_empty()), "{label}: empty message: {}", r.text);
    assert!(r.json["details"].is_object(), "{label}: details is not an object: {}", r.text);
    let code =
        r.json["code"].as_str().filter(|c| !c.is_empty()).unwrap_or_else(|| panic!("{label}: no code: {}", r.text));
    (code.to_string(), r.json["details"].clone())
}

/// Asserts `r` is the uniform error body with this status and code; returns `details`.
fn expect_error(label: &str, r: &Resp, status: u16, code: &str) -> Value {
    let (got, details) = expect_uniform(label, r, status);
    assert_eq!(got, code, "{label}: code: {}", r.text);
    details
}

async fn malformed_json(backend: Backend) {
    let f = Fixture::start(backend).await;
    for t in ALL_TARGETS {
        // The defect comes before any key, so no target reads a field name first. A bare word
        // where a key belongs: line 3, column 3 (1-based, serde_json's convention).
        let d = f.reject("bare key", t, b"{\n\n  oops: 1\n}".to_vec(), 400, "MALFORMED_JSON").await;
        assert_eq!((d["line"].as_u64(), d["column"].as_u64()), (Some(3), Some(3)), "{t:?}: position of the error: {d}");
        // Cut off inside the first key: the parser runs out at the last character.
        let cut = br#"{"usern"#;
        let d = f.reject("truncated", t, cut.to_vec(), 400, "MALFORMED_JSON").await;
        assert_eq!(
            (d["line"].as_u64(), d["column"].as_u64()),
            (Some(1), Some(cut.len() as u64)),
            "{t:?}: position of the error: {d}"
        );
        let d = f.reject("single quotes", t, b"{'name': 'x'}".to_vec(), 400, "MALFORMED_JSON").await;
        assert_eq!((d["line"].as_u64(), d["column"].as_u64()), (Some(1), Some(2)), "{t:?}: position of the error: {d}");
        let d = f.reject("invalid UTF-8 in a key", t, b"{\"\xff\xfe\": 1}".to_vec(), 400, "MALFORMED_JSON").await;
        assert!(d["line"].is_u64() && d["column"].is_u64(), "{t:?}: no position: {d}");
    }
}

async fn trailing_garbage(backend: Backend) {
    let f = Fixture::start(backend).await;
    for t in ALL_TARGETS {
        // The object alone would be accepted and acted on; what follows it must spoil it.
        let valid = bytes(&t.valid_body());
        for (label, tail) in
            [("trailing word", &b" x"[..]), ("second object", &b"{}"[..]), ("trailing comma", &b","[..])]
        {
            let mut body = valid.clone();
            body.extend_from_slice(tail);
            let d = f.reject(label, t, body, 400, "MALFORMED_JSON").await;
            assert_eq!(d["line"], 1, "{label} on {t:?}: {d}");
            assert!(
                d["column"].as_u64().is_some_and(|c| c > valid.len() as u64),
                "{label} on {t:?}: the error is after the object: {d}"
            );
        }
    }
}

async fn empty_body(backend: Backend) {
    let f = Fixture::start(backend).await;
    for t in ALL_TARGETS {
        let d = f.reject("empty body", t, Vec::new(), 400, "MALFORMED_JSON").await;
        assert!(d["line"].is_u64() && d["column"].is_u64(), "{t:?}: no position: {d}");
        f.reject("whitespace only", t, b" \n\t ".to_vec(), 400, "MALFORMED_JSON").await;
    }
}

async fn unknown_fields(backend: Backend) {
    let f = Fixture::start(backend).await;
    for t in ALL_TARGETS {
        let body = with(t.valid_body(), &["foo"], json!(1));
        f.reject_field("unknown top-level field", t, body, 422, "UNKNOWN_FIELD", "foo").await;
        let body = with(t.valid_body(), &["Hostname"], json!("case-matters"));
        f.reject_field("field name in the wrong case", t, body, 422, "UNKNOWN_FIELD", "Hostname").await;
    }
    for t in [Target::CreateAsset, Target::PatchAsset] {
        let bmc =
            json!({"driver": "ipmi", "address": "10.0.0.20", "username": "root", "password": "pw-123", "foo": true});
        let body = with(t.valid_body(), &["bmc"], bmc);
        f.reject_field("unknown nested field", t, body, 422, "UNKNOWN_FIELD", "bmc.foo").await;
    }
}

async fn read_only_state(backend: Backend) {
    let f = Fixture::start(backend).await;
    for t in [Target::CreateAsset, Target::PatchAsset] {
        for field in ["state", "status"] {
            let body = with(t.valid_body(), &[field], json!("provisioned"));
            f.reject_field("read-only lifecycle field", t, body, 422, "READ_ONLY_FIELD", field).await;
        }
    }
}

async fn wrong_types(backend: Backend) {
    let f = Fixture::start(backend).await;
    let cases: Vec<(Target, Value, &str)> = vec![
        (Target::CreateAsset, with(Target::CreateAsset.valid_body(), &["hostname"], json!(5)), "hostname"),
        (Target::CreateAsset, with(Target::CreateAsset.valid_body(), &["macs"], json!("52:54:00:00:00:05")), "macs"),
        (
            Target::CreateAsset,
            with(Target::CreateAsset.valid_body(), &["macs"], json!(["52:54:00:00:00:05", 6])),
            "macs[1]",
        ),
        (Target::CreateAsset, with(Target::CreateAsset.valid_body(), &["tags"], json!([true])), "tags[0]"),
        (Target::CreateAsset, with(Target::CreateAsset.valid_body(), &["bmc", "port"], json!("623")), "bmc.port"),
        (Target::CreateAsset, with(Target::CreateAsset.valid_body(), &["bmc"], json!("ipmi://10.0.0.1")), "bmc"),
        (Target::CreateAsset, with(Target::CreateAsset.valid_body(), &["serial"], json!(7)), "serial"),
        (Target::PatchAsset, with(Target::PatchAsset.valid_body(), &["hostname"], json!(["a"])), "hostname"),
        (
            Target::PatchAsset,
            with(Target::PatchAsset.valid_body(), &["macs"], json!(["52:54:00:00:00:05", {}])),
            "macs[1]",
        ),
        (Target::PatchAsset, with(Target::PatchAsset.valid_body(), &["tags"], json!("rack-a")), "tags"),
        (Target::PatchAsset, with(Target::PatchAsset.valid_body(), &["smbios_uuid"], json!(1)), "smbios_uuid"),
        (
            Target::PatchAsset,
            with(
                Target::PatchAsset.valid_body(),
                &["bmc"],
                json!({"driver": "ipmi", "address": "10.0.0.9", "username": "root", "port": -1}),
            ),
            "bmc.port",
        ),
        (Target::CreateUser, with(Target::CreateUser.valid_body(), &["password"], json!(true)), "password"),
        (Target::CreateUser, with(Target::CreateUser.valid_body(), &["username"], Value::Null), "username"),
        (Target::CreateApiKey, with(Target::CreateApiKey.valid_body(), &["scopes"], json!("assets:read")), "scopes"),
        (Target::CreateApiKey, with(Target::CreateApiKey.valid_body(), &["scopes"], json!([1])), "scopes[0]"),
        (Target::CreateApiKey, with(Target::CreateApiKey.valid_body(), &["name"], json!({})), "name"),
        (
            Target::CreateApiKey,
            with(Target::CreateApiKey.valid_body(), &["expires_at"], json!(1_900_000_000)),
            "expires_at",
        ),
        (Target::Login, with(Target::Login.valid_body(), &["password"], json!(1)), "password"),
        (Target::Login, with(Target::Login.valid_body(), &["username"], json!(["admin"])), "username"),
        (Target::Login, with(Target::Login.valid_body(), &["remember_me"], json!("yes")), "remember_me"),
    ];
    for (t, body, field) in cases {
        f.reject_field("wrong type", t, body, 422, "INVALID_FIELD", field).await;
    }
}

/// Enumerations (role, BMC driver) given a JSON value of the wrong type: still well-formed JSON,
/// so 422 naming the field, never 400 MALFORMED_JSON.
async fn wrong_enum_types(backend: Backend) {
    let f = Fixture::start(backend).await;
    let patch_bmc = json!({"driver": "ipmi", "address": "10.0.0.9", "username": "root"});
    let cases: Vec<(Target, Value, &str)> = vec![
        (Target::CreateUser, with(Target::CreateUser.valid_body(), &["role"], json!(1)), "role"),
        (Target::CreateUser, with(Target::CreateUser.valid_body(), &["role"], json!(["viewer"])), "role"),
        (Target::CreateAsset, with(Target::CreateAsset.valid_body(), &["bmc", "driver"], json!(5)), "bmc.driver"),
        (Target::PatchAsset, json!({"bmc": with(patch_bmc, &["driver"], json!(true))}), "bmc.driver"),
    ];
    for (t, body, field) in cases {
        f.reject_field("enum of the wrong type", t, body, 422, "INVALID_FIELD", field).await;
    }
}

async fn non_object_bodies(backend: Backend) {
    let f = Fixture::start(backend).await;
    // The body must be an object. An array is not one, even when its elements line up with the
    // fields in declaration order (serde's derive would otherwise read it positionally).
    let positional: [(Target, Value); 5] = [
        (Target::CreateAsset, json!(["positional-node"])),
        (Target::PatchAsset, json!(["positional-node"])),
        (Target::CreateUser, json!(["positional", "positional-password-1", "viewer"])),
        (Target::CreateApiKey, json!(["positional", ["assets:read"]])),
        (Target::Login, json!(["admin", ADMIN_PASSWORD])),
    ];
    for (t, body) in positional {
        for top in [Value::Null, json!("text"), json!(42), json!(true)] {
            f.reject_field("body of the wrong type", t, top, 422, "INVALID_FIELD", "body").await;
        }
        f.reject_field("array instead of object", t, body, 422, "INVALID_FIELD", "body").await;
    }
    // The same holds for a nested object.
    for t in [Target::CreateAsset, Target::PatchAsset] {
        let body = with(t.valid_body(), &["bmc"], json!(["ipmi", "10.0.0.9", 623, "root", "pw-123"]));
        f.reject_field("nested array instead of object", t, body, 422, "INVALID_FIELD", "bmc").await;
    }
}

async fn missing_fields(backend: Backend) {
    let f = Fixture::start(backend).await;
    let patch_bmc = json!({"driver": "ipmi", "address": "10.0.0.9", "username": "root"});
    let cases: Vec<(Target, Value, &str)> = vec![
        (Target::CreateAsset, without(Target::CreateAsset.valid_body(), &["hostname"]), "hostname"),
        (Target::CreateAsset, without(Target::CreateAsset.valid_body(), &["bmc", "driver"]), "bmc.driver"),
        (Target::CreateAsset, without(Target::CreateAsset.valid_body(), &["bmc", "address"]), "bmc.address"),
        (Target::CreateAsset, without(Target::CreateAsset.valid_body(), &["bmc", "username"]), "bmc.username"),
        (Target::PatchAsset, json!({"bmc": without(patch_bmc.clone(), &["driver"])}), "bmc.driver"),
        (Target::PatchAsset, json!({"bmc": without(patch_bmc, &["username"])}), "bmc.username"),
        (Target::CreateUser, without(Target::CreateUser.valid_body(), &["username"]), "username"),
        (Target::CreateUser, without(Target::CreateUser.valid_body(), &["password"]), "password"),
        (Target::CreateUser, without(Target::CreateUser.valid_body(), &["role"]), "role"),
        (Target::CreateApiKey, without(Target::CreateApiKey.valid_body(), &["name"]), "name"),
        (Target::CreateApiKey, without(Target::CreateApiKey.valid_body(), &["scopes"]), "scopes"),
        (Target::Login, without(Target::Login.valid_body(), &["username"]), "username"),
        (Target::Login, without(Target::Login.valid_body(), &["password"]), "password"),
    ];
    for (t, body, field) in cases {
        f.reject_field("missing field", t, body, 422, "MISSING_FIELD", field).await;
    }
}

async fn invalid_values(backend: Backend) {
    let f = Fixture::start(backend).await;
    let asset = || Target::CreateAsset.valid_body();
    let patch = || json!({"tags": ["changed"]});
    let bmc = |k: &str, v: Value| {
        with(json!({"driver": "ipmi", "address": "10.0.0.9", "username": "root", "password": "pw-123"}), &[k], v)
    };
    let mut cases: Vec<(&str, Target, Value, &str)> = Vec::new();
    for (t, base) in [(Target::CreateAsset, asset()), (Target::PatchAsset, patch())] {
        let w = |path: &[&str], v: Value| with(base.clone(), path, v);
        cases.extend([
            ("bad MAC", t, w(&["macs"], json!(["52:54:00:zz:00:01"])), "macs[0]"),
            ("MAC with five octets", t, w(&["macs"], json!(["52:54:00:00:00"])), "macs[0]"),
            ("MAC with seven octets", t, w(&["macs"], json!(["52:54:00:00:00:01:02"])), "macs[0]"),
            ("second MAC bad", t, w(&["macs"], json!(["52:54:00:00:00:07", "not-a-mac"])), "macs[1]"),
            ("one MAC listed twice", t, w(&["macs"], json!(["52:54:00:00:00:08", "52-54-00-00-00-08"])), "macs"),
            ("hostname with underscore", t, w(&["hostname"], json!("bad_host")), "hostname"),
            ("hostname with space", t, w(&["hostname"], json!("bad host")), "hostname"),
            ("hostname with leading dash", t, w(&["hostname"], json!("-node")), "hostname"),
            ("empty hostname", t, w(&["hostname"], json!("")), "hostname"),
            ("empty hostname label", t, w(&["hostname"], json!("node..example")), "hostname"),
            ("hostname label over 63", t, w(&["hostname"], json!("a".repeat(64))), "hostname"),
            ("tag with space", t, w(&["tags"], json!(["ok", "bad tag"])), "tags"),
            ("empty tag", t, w(&["tags"], json!([""])), "tags"),
            ("tag over 64", t, w(&["tags"], json!(["t".repeat(65)])), "tags"),
            ("smbios_uuid not a UUID", t, w(&["smbios_uuid"], json!("not-a-uuid")), "smbios_uuid"),
            (
                "smbios_uuid without dashes",
                t,
                w(&["smbios_uuid"], json!("4c4c4544004c4e10804bb4c04f4e4b31")),
                "smbios_uuid",
            ),
            (
                "smbios_uuid with non-hex",
                t,
                w(&["smbios_uuid"], json!("4c4c4544-004c-4e10-804b-b4c04f4e4bzz")),
                "smbios_uuid",
            ),
            ("empty serial", t, w(&["serial"], json!("")), "serial"),
            ("BMC port 0", t, w(&["bmc"], bmc("port", json!(0))), "bmc.port"),
            ("BMC port over 65535", t, w(&["bmc"], bmc("port", json!(65536))), "bmc.port"),
            ("unknown BMC driver", t, w(&["bmc"], bmc("driver", json!("telnet"))), "bmc.driver"),
            ("empty BMC address", t, w(&["bmc"], bmc("address", json!(""))), "bmc.address"),
            ("BMC address with a space", t, w(&["bmc"], bmc("address", json!("10.0.0.1 ; reboot"))), "bmc.address"),
            ("empty BMC username", t, w(&["bmc"], bmc("username", json!(""))), "bmc.username"),
            ("empty BMC password", t, w(&["bmc"], bmc("password", json!(""))), "bmc.password"),
        ]);
    }
    cases.extend([
        (
            "BMC without a password on create",
            Target::CreateAsset,
            without(asset(), &["bmc", "password"]),
            "bmc.password",
        ),
        ("bad role", Target::CreateUser, with(Target::CreateUser.valid_body(), &["role"], json!("superuser")), "role"),
        (
            "role in the wrong case",
            Target::CreateUser,
            with(Target::CreateUser.valid_body(), &["role"], json!("Admin")),
            "role",
        ),
        (
            "too-short password",
            Target::CreateUser,
            with(Target::CreateUser.valid_body(), &["password"], json!("short-pw")),
            "password",
        ),
        (
            "bad username",
            Target::CreateUser,
            with(Target::CreateUser.valid_body(), &["username"], json!("no spaces please")),
            "username",
        ),
        (
            "empty username",
            Target::CreateUser,
            with(Target::CreateUser.valid_body(), &["username"], json!("")),
            "username",
        ),
        (
            "unknown scope",
            Target::CreateApiKey,
            with(Target::CreateApiKey.valid_body(), &["scopes"], json!(["assets:read", "nuke:all"])),
            "scopes[1]",
        ),
        ("no scopes", Target::CreateApiKey, with(Target::CreateApiKey.valid_body(), &["scopes"], json!([])), "scopes"),
        (
            "blank key name",
            Target::CreateApiKey,
            with(Target::CreateApiKey.valid_body(), &["name"], json!("   ")),
            "name",
        ),
        (
            "expiry not a timestamp",
            Target::CreateApiKey,
            with(Target::CreateApiKey.valid_body(), &["expires_at"], json!("tomorrow")),
            "expires_at",
        ),
        (
            "expiry in the past",
            Target::CreateApiKey,
            with(Target::CreateApiKey.valid_body(), &["expires_at"], json!("2001-01-01T00:00:00Z")),
            "expires_at",
        ),
    ]);
    for (label, t, body, field) in cases {
        f.reject_field(label, t, body, 422, "INVALID_FIELD", field).await;
    }
}

/// Twelve hex digits with the separators in the wrong places are not a MAC: only `aa:bb:…`,
/// `aa-bb-…`, `aabb.ccdd.eeff` and bare `aabbccddeeff` are spellings of one.
async fn misplaced_mac_separators(backend: Backend) {
    let f = Fixture::start(backend).await;
    for mac in ["5:2:5:4:0:0abcdef", "525400:ab:cd:ef::", "52.5400abcd.ef", "52:54-00:ab-cd:ef"] {
        for t in [Target::CreateAsset, Target::PatchAsset] {
            let body = with(t.valid_body(), &["macs"], json!([mac]));
            f.reject_field(&format!("MAC {mac:?}"), t, body, 422, "INVALID_FIELD", "macs[0]").await;
        }
        let r = f.admin.get(&format!("/api/v1/assets?mac={mac}")).await;
        let d = expect_error(&format!("?mac={mac}"), &r, 400, "INVALID_QUERY");
        assert_eq!(d["field"], "mac", "{d}");
    }
}

async fn oversized_bodies(backend: Backend) {
    const LIMIT: usize = 4096;
    let f =
        Fixture::start_with(backend, Options::default().env("IRONBAY_API__MAX_BODY_BYTES", &LIMIT.to_string())).await;
    // A valid body padded with whitespace to `len` bytes: still valid JSON, only too big.
    let padded = |t: Target, len: usize| {
        let mut b = bytes(&t.valid_body());
        assert!(b.len() < len);
        b.resize(len, b' ');
        b
    };
    for t in ALL_TARGETS {
        for len in [LIMIT + 1, 3 * LIMIT] {
            let d = f.reject(&format!("{len}-byte body"), t, padded(t, len), 400, "BODY_TOO_LARGE").await;
            assert_eq!(d["limit_bytes"], LIMIT, "{t:?}: {d}");
        }
    }
    // Exactly at the limit is allowed: the bound is the configured one, not off by one.
    let r = f.send(Target::CreateAsset, Some("application/json"), padded(Target::CreateAsset, LIMIT)).await;
    assert_eq!(r.status, 201, "a body of exactly the limit: {}", r.text);
    assert_eq!(f.total("/api/v1/assets").await, f.before.assets + 1);
}

async fn content_type(backend: Backend) {
    let f = Fixture::start(backend).await;
    for t in ALL_TARGETS {
        let body = bytes(&t.valid_body());
        for ct in [
            None,
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
            Some("multipart/form-data; boundary=x"),
            Some("application/jsonp"),
            Some(""),
        ] {
            f.reject_as(&format!("content type {ct:?}"), t, ct, body.clone(), 415, "UNSUPPORTED_MEDIA_TYPE").await;
        }
    }
    // The same bytes with a JSON media type (parameters allowed) go through.
    let r = f
        .send(Target::CreateAsset, Some("application/json; charset=utf-8"), bytes(&Target::CreateAsset.valid_body()))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(f.total("/api/v1/assets").await, f.before.assets + 1);
}

async fn bad_queries(backend: Backend) {
    let f = Fixture::start(backend).await;
    let lists = ["/api/v1/assets", "/api/v1/users", "/api/v1/api-keys", "/api/v1/audit"];
    for list in lists {
        for (query, field) in [
            ("page=0", "page"),
            ("page=-1", "page"),
            ("page=abc", "page"),
            ("per_page=abc", "per_page"),
            ("per_page=0", "per_page"),
            ("per_page=1.5", "per_page"),
        ] {
            let r = f.admin.get(&format!("{list}?{query}")).await;
            let d = expect_error(&format!("{list}?{query}"), &r, 400, "INVALID_QUERY");
            assert_eq!(d["field"], field, "{list}?{query}: {d}");
        }
        let r = f.admin.get(&format!("{list}?per_page=1000")).await;
        assert_eq!(r.status, 200, "{list}: {}", r.text);
        assert_eq!(r.json["meta"]["per_page"], 100, "{list}: per_page is clamped: {}", r.text);
        assert_eq!(r.json["meta"]["page"], 1, "{list}: {}", r.text);
        let r = f.admin.get(list).await;
        assert_eq!(r.json["meta"]["per_page"], 20, "{list}: default per_page: {}", r.text);
    }
    for (query, field) in
        [("status=bogus", "status"), ("state=bogus", "state"), ("mac=zz", "mac"), ("mac=52:54:00:00:00", "mac")]
    {
        let r = f.admin.get(&format!("/api/v1/assets?{query}")).await;
        let d = expect_error(query, &r, 400, "INVALID_QUERY");
        assert_eq!(d["field"], field, "{query}: {d}");
    }
    for (query, field) in [("since=yesterday", "since"), ("until=2026-13-01T00:00:00Z", "until")] {
        let r = f.admin.get(&format!("/api/v1/audit?{query}")).await;
        let d = expect_error(query, &r, 400, "INVALID_QUERY");
        assert_eq!(d["field"], field, "{query}: {d}");
    }
    f.assert_unchanged("queries").await;
}

async fn unknown_routes_and_ids(backend: Backend) {
    let f = Fixture::start(backend).await;
    let anon = f.app.client();
    for (c, who) in [(&f.admin, "admin"), (&anon, "anonymous")] {
        for (method, path) in [
            (Method::GET, "/api/v1/nope"),
            (Method::POST, "/api/v1/nope"),
            (Method::GET, "/api/v2/assets"),
            (Method::GET, "/api/v1/assets/ast_0000000000000000/extra"),
            (Method::DELETE, "/api/v1/users/x/y"),
            (Method::GET, "/nope"),
        ] {
            let r = c.raw(method.clone(), path, Some("application/json"), b"{}".to_vec()).await;
            expect_error(&format!("{who} {method} {path}"), &r, 404, "ROUTE_NOT_FOUND");
        }
    }
    f.assert_unchanged("unknown routes").await;
    let real = &f.asset_id;
    let bad_ids = [
        "ast_0000000000000000".to_string(),      // well-formed, no such asset
        "garbage".to_string(),                   // not an id at all
        "ast_".to_string(),                      // prefix only
        real.to_uppercase(),                     // a real id in the wrong case
        format!("{real}0"),                      // a real id, one character longer
        real.replacen("ast_", "usr_", 1),        // the right tail with another kind's prefix
        "ast_%2e%2e%2f%2e%2e%2fetc".to_string(), // path traversal, percent-encoded
    ];
    for id in &bad_ids {
        let path = format!("/api/v1/assets/{id}");
        let r = f.admin.get(&path).await;
        expect_error(&format!("GET {path}"), &r, 404, "ASSET_NOT_FOUND");
        let r = f.admin.patch(&path, json!({"tags": ["changed"]})).await;
        expect_error(&format!("PATCH {path}"), &r, 404, "ASSET_NOT_FOUND");
        f.assert_unchanged(&format!("PATCH {path}")).await;
        let r = f.admin.delete(&path).await;
        expect_error(&format!("DELETE {path}"), &r, 404, "ASSET_NOT_FOUND");
        f.assert_unchanged(&format!("DELETE {path}")).await;
    }
}

async fn wrong_method(backend: Backend) {
    let f = Fixture::start(backend).await;
    let asset = format!("/api/v1/assets/{}", f.asset_id);
    for (method, path) in [
        (Method::PUT, "/api/v1/assets"),
        (Method::DELETE, "/api/v1/assets"),
        (Method::POST, asset.as_str()),
        (Method::PUT, "/api/v1/auth/login"),
    ] {
        let r =
            f.admin.raw(method.clone(), path, Some("application/json"), bytes(&Target::CreateAsset.valid_body())).await;
        let d = expect_error(&format!("{method} {path}"), &r, 405, "METHOD_NOT_ALLOWED");
        assert_eq!(d["method"], method.as_str(), "{method} {path}: {d}");
        assert!(r.header("allow").is_some(), "{method} {path}: no Allow header");
        f.assert_unchanged(&format!("{method} {path}")).await;
    }
}

both_backends!(
    malformed_json,
    trailing_garbage,
    empty_body,
    unknown_fields,
    read_only_state,
    wrong_types,
    wrong_enum_types,
    non_object_bodies,
    missing_fields,
    invalid_values,
    misplaced_mac_separators,
    oversized_bodies,
    content_type,
    bad_queries,
    unknown_routes_and_ids,
    wrong_method,
);
