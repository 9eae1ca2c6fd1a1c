//! Enrollment tokens and devices over real HTTP on both backends: token create/list/get/revoke and
//! validation; enrollment with a public key or CSR (Ed25519, P-256) and every refusal class (unknown,
//! expired, exhausted, revoked token; malformed or unsupported key or CSR); the issued certificate
//! checked with the real `openssl verify` against `/api/v1/ca.pem`; exactly one winner for a
//! single-use token under concurrency; renewal by proof of possession (replay, clock skew, wrong
//! key, key rotation); delete = revoke, with the serial in the CRL (`openssl crl`); status from
//! `last_seen`; VNI device counts; history; audit; the enrollment rate limit.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::{Appliance, Backend, Client, Options, Resp};
use rcgen::{CertificateParams, KeyPair, SigningKey};
use serde_json::{Value, json};

fn options() -> Options {
    Options::default()
        .env("IRONBAY_RATE_LIMIT__API_PER_MINUTE", "100000")
        .env("IRONBAY_RATE_LIMIT__API_BURST", "100000")
        .env("IRONBAY_RATE_LIMIT__ENROLL_PER_MINUTE", "100000")
        .env("IRONBAY_RATE_LIMIT__ENROLL_BURST", "100000")
}

async fn start(backend: Backend) -> Appliance {
    Appliance::start_with(backend, options()).await
}

fn expect_code(label: &str, r: &Resp, status: u16, code: &str) {
    assert_eq!(r.status, status, "{label}: {}", r.text);
    assert_eq!(r.error_code(), code, "{label}: {}", r.text);
}

fn expect_field(label: &str, r: &Resp, status: u16, code: &str, field: &str) {
    expect_code(label, r, status, code);
    assert_eq!(r.json["details"]["field"], field, "{label}: details.field: {}", r.text);
}

fn s(v: &Value) -> String {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}")).to_string()
}

/// Creates a token and returns (id, value).
async fn token(admin: &Client, body: Value) -> (String, String) {
    let r = admin.post("/api/v1/enroll-tokens", body.clone()).await;
    assert_eq!(r.status, 201, "create token {body}: {}", r.text);
    (s(&r.json["id"]), s(&r.json["token"]))
}

fn ed25519() -> KeyPair {
    KeyPair::generate_for(&rcgen::PKCS_ED25519).expect("ed25519 key")
}

fn p256() -> KeyPair {
    KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("p256 key")
}

fn enroll_body(token: &str, name: &str, key: &KeyPair) -> Value {
    json!({"token": token, "name": name, "public_key": key.public_key_pem()})
}

async fn enroll(c: &Client, body: Value) -> Resp {
    c.post("/api/v1/devices/enroll", body).await
}

/// Enrolls and asserts the 201.
async fn enrolled(c: &Client, body: Value) -> Value {
    let r = enroll(c, body.clone()).await;
    assert_eq!(r.status, 201, "enroll {}: {}", body["name"], r.text);
    r.json
}

/// A renewal body signed by `key` at `ts`.
fn renew_body(id: &str, key: &KeyPair, ts: &str) -> Value {
    use base64::Engine as _;
    let sig = key.sign(format!("ironbay-renew:{id}:{ts}").as_bytes()).expect("sign");
    json!({"timestamp": ts, "signature": base64::engine::general_purpose::STANDARD.encode(sig)})
}

fn now_ts() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Runs the real `openssl` with `args` in `dir`; returns (success, stdout + stderr).
fn openssl(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl").args(args).current_dir(dir).output().expect("run openssl");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

async fn ca_pem(app: &Appliance) -> String {
    let r = app.client().get("/api/v1/ca.pem").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.text.starts_with("-----BEGIN CERTIFICATE-----"), "{}", r.text);
    r.text
}

/// `openssl verify` of `cert` against the appliance's CA (and CRL when given).
fn verify(dir: &Path, ca: &str, cert: &str, crl: Option<&str>) -> (bool, String) {
    std::fs::write(dir.join("ca.pem"), ca).expect("write ca");
    std::fs::write(dir.join("cert.pem"), cert).expect("write cert");
    let mut args = vec!["verify", "-CAfile", "ca.pem"];
    if let Some(crl) = crl {
        std::fs::write(dir.join("crl.pem"), crl).expect("write crl");
        args.extend(["-crl_check", "-CRLfile", "crl.pem"]);
    }
    args.push("cert.pem");
    openssl(dir, &args)
}

async fn device(c: &Client, id: &str) -> Value {
    let r = c.get(&format!("/api/v1/devices/{id}")).await;
    assert_eq!(r.status, 200, "GET device {id}: {}", r.text);
    r.json
}

async fn token_view(c: &Client, id: &str) -> Value {
    let r = c.get(&format!("/api/v1/enroll-tokens/{id}")).await;
    assert_eq!(r.status, 200, "GET token {id}: {}", r.text);
    r.json
}

async fn device_ids(c: &Client, query: &str) -> Vec<String> {
    let r = c.get(&format!("/api/v1/devices{query}")).await;
    assert_eq!(r.status, 200, "list {query}: {}", r.text);
    r.json["data"].as_array().unwrap_or_else(|| panic!("no data: {}", r.text)).iter().map(|d| s(&d["id"])).collect()
}

async fn audit_actions(c: &Client, target_id: &str) -> Vec<String> {
    let r = c.get(&format!("/api/v1/audit?target_id={target_id}&per_page=100")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.json["data"].as_array().expect("data").iter().map(|e| s(&e["action"])).collect()
}

async fn token_lifecycle(backend: Backend) {
    let app = start(backend).await;
    let admin = app.admin().await;

    // Defaults: single use, no expiry, no tags or VNI; the value is shown once.
    let r = admin.post("/api/v1/enroll-tokens", json!({})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let t = r.json.clone();
    let id = s(&t["id"]);
    let value = s(&t["token"]);
    assert!(id.starts_with("enr_"), "{t}");
    assert!(value.starts_with("ibe_") && value.len() > 30, "{t}");
    assert_eq!(t["max_uses"], 1);
    assert_eq!(t["uses"], 0);
    assert_eq!(t["status"], "active");
    assert!(t["expires_at"].is_null() && t["revoked_at"].is_null() && t["vni_id"].is_null(), "{t}");
    assert_eq!(t["tags"], json!([]));

    // List and get never show the value.
    let got = token_view(&admin, &id).await;
    assert!(got.get("token").is_none(), "{got}");
    assert_eq!(got["status"], "active");
    let r = admin.get("/api/v1/enroll-tokens").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["meta"]["total"], 1);
    assert!(!r.text.contains(&value), "the list leaks the token: {}", r.text);
    assert!(r.json["data"][0].get("token").is_none());

    // A full token.
    let vni = admin.post("/api/v1/vnis", json!({"name": "enroll-net", "cidr": "10.50.0.0/24", "vni": 50})).await;
    assert_eq!(vni.status, 201, "{}", vni.text);
    let vni_id = s(&vni.json["id"]);
    let r = admin
        .post(
            "/api/v1/enroll-tokens",
            json!({"max_uses": 5, "expires_in_hours": 2, "tags": ["rack-a", "rack-a", "edge"], "vni_id": vni_id, "description": "rack A"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json["max_uses"], 5);
    assert_eq!(r.json["tags"], json!(["rack-a", "edge"]));
    assert_eq!(r.json["vni_id"], vni_id.as_str());
    assert_eq!(r.json["description"], "rack A");
    let expires = chrono::DateTime::parse_from_rfc3339(r.json["expires_at"].as_str().expect("expires_at")).unwrap();
    let in_secs = (expires.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_seconds();
    assert!((7100..=7200).contains(&in_secs), "expires in {in_secs} s");

    // Validation: each bad field named, nothing created.
    for (body, field) in [
        (json!({"max_uses": 0}), "max_uses"),
        (json!({"max_uses": -3}), "max_uses"),
        (json!({"max_uses": 2000000}), "max_uses"),
        (json!({"max_uses": 1.5}), "max_uses"),
        (json!({"expires_in_hours": 0}), "expires_in_hours"),
        (json!({"expires_in_hours": -1}), "expires_in_hours"),
        (json!({"expires_in_hours": "soon"}), "expires_in_hours"),
        (json!({"tags": ["has space"]}), "tags"),
        (json!({"tags": "rack-a"}), "tags"),
        (json!({"vni_id": "vni_0000000000000000"}), "vni_id"),
        (json!({"vni_id": "nonsense"}), "vni_id"),
    ] {
        let r = admin.post("/api/v1/enroll-tokens", body.clone()).await;
        expect_field(&format!("create {body}"), &r, 422, "INVALID_FIELD", field);
    }
    let r = admin.post("/api/v1/enroll-tokens", json!({"token": "ibe_chosen"})).await;
    expect_field("a chosen value", &r, 422, "UNKNOWN_FIELD", "token");
    assert_eq!(admin.get("/api/v1/enroll-tokens").await.json["meta"]["total"], 2);

    // Revoke: 204, kept with `revoked_at`, refused for enrollment, twice is a conflict.
    let r = admin.delete(&format!("/api/v1/enroll-tokens/{id}")).await;
    assert_eq!(r.status, 204, "{}", r.text);
    let got = token_view(&admin, &id).await;
    assert_eq!(got["status"], "revoked");
    assert!(got["revoked_at"].is_string(), "{got}");
    let r = enroll(&app.client(), enroll_body(&value, "after-revoke", &ed25519())).await;
    expect_code("revoked token", &r, 401, "ENROLL_TOKEN_REVOKED");
    let r = admin.delete(&format!("/api/v1/enroll-tokens/{id}")).await;
    expect_code("revoke twice", &r, 409, "ENROLL_TOKEN_REVOKED");

    for path in ["/api/v1/enroll-tokens/enr_0000000000000000", "/api/v1/enroll-tokens/whatever"] {
        expect_code(path, &admin.get(path).await, 404, "ENROLL_TOKEN_NOT_FOUND");
        expect_code(path, &admin.delete(path).await, 404, "ENROLL_TOKEN_NOT_FOUND");
    }

    let actions = audit_actions(&admin, &id).await;
    assert!(actions.contains(&"enroll_token.create".to_string()), "{actions:?}");
    assert!(actions.contains(&"enroll_token.revoke".to_string()), "{actions:?}");
    // The value appears nowhere but in the creation answer.
    let export = admin.get("/api/v1/audit/export?format=json").await;
    assert_eq!(export.status, 200, "{}", export.text);
    assert!(!export.text.contains(&value), "the audit log holds the token value");
    assert!(!app.logs().contains(&value), "the log holds the token value");
}

async fn enrollment_issues_a_verifiable_certificate(backend: Backend) {
    let app = start(backend).await;
    let admin = app.admin().await;
    let anon = app.client();
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = ca_pem(&app).await;

    let vni = admin.post("/api/v1/vnis", json!({"name": "dev-net", "cidr": "10.60.0.0/24", "vni": 60})).await;
    let vni_id = s(&vni.json["id"]);
    let (tid, value) = token(&admin, json!({"tags": ["from-token"], "vni_id": vni_id})).await;
    let key = ed25519();
    let mut body = enroll_body(&value, "edge-01", &key);
    body["tags"] = json!(["own-tag"]);
    body["metadata"] = json!({"os": "linux", "arch": "x86_64"});
    // No credentials at all: the token is the credential.
    let r = enroll(&anon, body).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = s(&r.json["id"]);
    let cert = s(&r.json["certificate"]);
    assert!(id.starts_with("dev_"), "{}", r.text);
    assert!(cert.starts_with("-----BEGIN CERTIFICATE-----"), "{}", r.text);
    assert_eq!(r.json["ca_certificate"], ca.as_str());
    let serial = s(&r.json["serial_number"]);

    let (ok, out) = verify(dir.path(), &ca, &cert, None);
    assert!(ok, "openssl verify refused the device certificate: {out}");
    let (ok, text) = openssl(dir.path(), &["x509", "-in", "cert.pem", "-noout", "-text", "-serial"]);
    assert!(ok, "{text}");
    assert!(text.contains("CN = edge-01") || text.contains("CN=edge-01"), "subject: {text}");
    assert!(text.contains(&format!("URI:urn:ironbay:device:{id}")), "SAN: {text}");
    assert!(text.contains("TLS Web Client Authentication"), "EKU: {text}");
    assert!(!text.contains("TLS Web Server Authentication"), "EKU: {text}");
    assert!(text.contains("ED25519"), "key type: {text}");
    assert!(text.contains(&format!("serial={serial}")), "serial {serial}: {text}");

    // The device record.
    let d = device(&admin, &id).await;
    assert_eq!(d["name"], "edge-01");
    assert_eq!(d["status"], "online");
    assert_eq!(d["key_type"], "ed25519");
    assert_eq!(d["tags"], json!(["from-token", "own-tag"]));
    assert_eq!(d["vni_id"], vni_id.as_str());
    assert_eq!(d["vni_ids"], json!([vni_id]));
    assert_eq!(d["metadata"], json!({"os": "linux", "arch": "x86_64"}));
    assert_eq!(d["serial_number"], serial.as_str());
    assert_eq!(d["enroll_token_id"], tid.as_str());
    assert!(d["public_key"].as_str().is_some_and(|p| p.contains("BEGIN PUBLIC KEY")), "{d}");
    assert!(d["last_seen"].is_string() && d["revoked_at"].is_null(), "{d}");
    // The single-use token is spent.
    let t = token_view(&admin, &tid).await;
    assert_eq!((t["uses"].as_i64(), t["status"].as_str()), (Some(1), Some("exhausted")), "{t}");
    // The VNI counts it.
    let v = admin.get(&format!("/api/v1/vnis/{vni_id}")).await;
    assert_eq!(v.json["device_count"], 1, "{}", v.text);

    // P-256 by public key, and by CSR.
    let (_, multi) = token(&admin, json!({"max_uses": 2})).await;
    let ec = p256();
    let r = enrolled(&anon, enroll_body(&multi, "edge-02", &ec)).await;
    let (ok, out) = verify(dir.path(), &ca, &s(&r["certificate"]), None);
    assert!(ok, "P-256 certificate: {out}");
    assert_eq!(device(&admin, &s(&r["id"])).await["key_type"], "ecdsa-p256");
    let csr_key = ed25519();
    let csr = CertificateParams::new(vec!["ignored.example".to_string()]).unwrap().serialize_request(&csr_key).unwrap();
    let r = enrolled(&anon, json!({"token": multi, "name": "edge-03", "csr": csr.pem().unwrap()})).await;
    let (ok, out) = verify(dir.path(), &ca, &s(&r["certificate"]), None);
    assert!(ok, "CSR certificate: {out}");
    let csr_dev = device(&admin, &s(&r["id"])).await;
    assert_eq!(csr_dev["public_key"], csr_key.public_key_pem().as_str());
    assert_eq!(csr_dev["metadata"], json!({}));

    // List: filters by VNI, tag and status; the list carries no metadata.
    let r = admin.get("/api/v1/devices").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["meta"]["total"], 3);
    assert!(r.json["data"][0].get("metadata").is_none(), "{}", r.text);
    assert_eq!(device_ids(&admin, &format!("?vni_id={vni_id}")).await, vec![id.clone()]);
    assert_eq!(device_ids(&admin, "?tag=own-tag").await, vec![id.clone()]);
    assert_eq!(device_ids(&admin, "?tag=nothing").await, Vec::<String>::new());
    assert_eq!(device_ids(&admin, "?status=online").await.len(), 3);
    assert_eq!(device_ids(&admin, "?status=enrolled").await.len(), 3);
    assert!(device_ids(&admin, "?status=offline").await.is_empty());
    assert!(device_ids(&admin, "?status=revoked").await.is_empty());
    expect_code("bad status filter", &admin.get("/api/v1/devices?status=asleep").await, 400, "INVALID_QUERY");
    assert_eq!(device_ids(&admin, "?per_page=2&page=2").await.len(), 1);

    // History and audit.
    let h = admin.get(&format!("/api/v1/devices/{id}/history")).await;
    assert_eq!(h.status, 200, "{}", h.text);
    assert_eq!(h.json["data"][0]["event"], "enrolled", "{}", h.text);
    assert_eq!(h.json["data"][0]["details"]["serial_number"], serial.as_str());
    assert!(audit_actions(&admin, &id).await.contains(&"device.enroll".to_string()));
    for path in ["/api/v1/devices/dev_0000000000000000", "/api/v1/devices/nope"] {
        expect_code(path, &admin.get(path).await, 404, "DEVICE_NOT_FOUND");
        expect_code(path, &admin.get(&format!("{path}/history")).await, 404, "DEVICE_NOT_FOUND");
    }
}

async fn bad_tokens_are_refused(backend: Backend) {
    let app = start(backend).await;
    let admin = app.admin().await;
    let anon = app.client();
    let key = ed25519();

    // Unknown tokens all read the same: nothing tells a guesser how close it came.
    for bad in ["ibe_doesnotexist0000000000000000000000000000", "not-a-token", "", "ibe_"] {
        let r = enroll(&anon, enroll_body(bad, "guess", &key)).await;
        expect_code(&format!("token {bad:?}"), &r, 401, "INVALID_ENROLL_TOKEN");
        assert_eq!(r.json["error"], "invalid enrollment token");
    }
    let r = enroll(&anon, json!({"name": "x", "public_key": key.public_key_pem()})).await;
    expect_field("no token", &r, 422, "MISSING_FIELD", "token");

    // A reused single-use token.
    let (tid, single) = token(&admin, json!({})).await;
    enrolled(&anon, enroll_body(&single, "first", &key)).await;
    let r = enroll(&anon, enroll_body(&single, "second", &ed25519())).await;
    expect_code("reused single-use token", &r, 401, "ENROLL_TOKEN_EXHAUSTED");
    assert_eq!(token_view(&admin, &tid).await["uses"], 1);

    // An expired token: about a second of life, then refused.
    let (eid, short) = token(&admin, json!({"expires_in_hours": 0.0003, "max_uses": 10})).await;
    common::eventually("the token to expire", 30, || {
        let admin = admin.clone();
        let eid = eid.clone();
        async move {
            let t = token_view(&admin, &eid).await;
            if t["status"] == "expired" { Ok(()) } else { Err(t.to_string()) }
        }
    })
    .await;
    let r = enroll(&anon, enroll_body(&short, "late", &key)).await;
    expect_code("expired token", &r, 401, "ENROLL_TOKEN_EXPIRED");
    assert_eq!(token_view(&admin, &eid).await["uses"], 0);

    // The refusals are audited, without the token values.
    let r = admin.get("/api/v1/audit?action=device.enroll_refused&per_page=100").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.json["meta"]["total"].as_i64().unwrap_or(0) >= 6, "{}", r.text);
    assert!(!r.text.contains(&short) && !r.text.contains(&single), "{}", r.text);
    assert_eq!(device_ids(&admin, "").await.len(), 1);
}

async fn bad_keys_and_bodies_are_refused(backend: Backend) {
    let app = start(backend).await;
    let admin = app.admin().await;
    let anon = app.client();
    let dir = tempfile::tempdir().expect("temp dir");
    let (tid, value) = token(&admin, json!({})).await;
    let good = ed25519();

    let (ok, out) =
        openssl(dir.path(), &["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "rsa.key"]);
    assert!(ok, "{out}");
    let (ok, out) = openssl(dir.path(), &["pkey", "-in", "rsa.key", "-pubout", "-out", "rsa.pub"]);
    assert!(ok, "{out}");
    let (ok, out) =
        openssl(dir.path(), &["req", "-new", "-key", "rsa.key", "-subj", "/CN=rsa-device", "-out", "rsa.csr"]);
    assert!(ok, "{out}");
    let rsa_pub = std::fs::read_to_string(dir.path().join("rsa.pub")).expect("rsa pub");
    let rsa_csr = std::fs::read_to_string(dir.path().join("rsa.csr")).expect("rsa csr");
    let p384 = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).expect("p384");
    let p384_csr = CertificateParams::new(vec![]).unwrap().serialize_request(&p384).unwrap().pem().unwrap();
    let csr_key = ed25519();
    let csr = CertificateParams::new(vec![]).unwrap().serialize_request(&csr_key).unwrap();
    let mut forged = csr.der().to_vec();
    let last = forged.len() - 1;
    forged[last] ^= 0x01;
    let forged = {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode(&forged);
        format!("-----BEGIN CERTIFICATE REQUEST-----\n{b64}\n-----END CERTIFICATE REQUEST-----\n")
    };

    let with = |k: &str, v: Value| {
        let mut b = json!({"token": value, "name": "dev-1"});
        b[k] = v;
        b
    };
    let unsupported = [
        ("RSA public key", with("public_key", json!(rsa_pub)), "public_key", "rsa"),
        ("P-384 public key", with("public_key", json!(p384.public_key_pem())), "public_key", "ecdsa-p384"),
        ("RSA CSR", with("csr", json!(rsa_csr)), "csr", "rsa"),
        ("P-384 CSR", with("csr", json!(p384_csr)), "csr", "ecdsa-p384"),
    ];
    for (label, body, field, kind) in unsupported {
        let r = enroll(&anon, body).await;
        expect_field(label, &r, 422, "UNSUPPORTED_KEY_TYPE", field);
        assert_eq!(r.json["details"]["key_type"], kind, "{label}: {}", r.text);
        assert_eq!(r.json["details"]["supported"], json!(["ed25519", "ecdsa-p256"]), "{label}");
        assert!(r.json["error"].as_str().unwrap_or("").contains("Ed25519"), "{label}: {}", r.text);
    }
    let malformed = [
        ("not PEM", with("public_key", json!("hello")), "public_key"),
        (
            "bad base64",
            with("public_key", json!("-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----")),
            "public_key",
        ),
        (
            "truncated key",
            with("public_key", json!("-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----")),
            "public_key",
        ),
        ("a private key", with("public_key", json!(good.serialize_pem())), "public_key"),
        ("a CSR as public_key", with("public_key", json!(csr.pem().unwrap())), "public_key"),
        (
            "not a CSR",
            with("csr", json!("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----")),
            "csr",
        ),
        ("a key as csr", with("csr", json!(good.public_key_pem())), "csr"),
        ("forged CSR signature", with("csr", json!(forged)), "csr"),
        ("key of the wrong JSON type", with("public_key", json!(42)), "public_key"),
    ];
    for (label, body, field) in malformed {
        let r = enroll(&anon, body).await;
        expect_field(label, &r, 422, "INVALID_FIELD", field);
    }
    let mut both = with("public_key", json!(good.public_key_pem()));
    both["csr"] = json!(csr.pem().unwrap());
    expect_field("both key and CSR", &enroll(&anon, both).await, 422, "INVALID_FIELD", "public_key");
    let r = enroll(&anon, json!({"token": value, "name": "dev-1"})).await;
    expect_field("neither key nor CSR", &r, 422, "MISSING_FIELD", "public_key");
    for (label, name) in [("empty name", ""), ("space", "a b"), ("slash", "a/b"), ("long", &"a".repeat(65))] {
        let r = enroll(&anon, enroll_body(&value, name, &good)).await;
        expect_field(label, &r, 422, "INVALID_FIELD", "name");
    }
    let mut b = enroll_body(&value, "dev-1", &good);
    b["metadata"] = json!(["not", "an", "object"]);
    expect_field("metadata array", &enroll(&anon, b.clone()).await, 422, "INVALID_FIELD", "metadata");
    b["metadata"] = json!({"blob": "x".repeat(20_000)});
    expect_field("huge metadata", &enroll(&anon, b.clone()).await, 422, "INVALID_FIELD", "metadata");
    b["metadata"] = json!({});
    b["tags"] = json!(["bad tag"]);
    expect_field("bad tag", &enroll(&anon, b.clone()).await, 422, "INVALID_FIELD", "tags");
    b["extra"] = json!(1);
    expect_field("unknown field", &enroll(&anon, b).await, 422, "UNKNOWN_FIELD", "extra");
    let r = anon
        .raw(reqwest::Method::POST, "/api/v1/devices/enroll", Some("application/json"), b"{not json".to_vec())
        .await;
    expect_code("broken JSON", &r, 400, "MALFORMED_JSON");

    // None of that spent the single use, created a device or a certificate.
    assert_eq!(token_view(&admin, &tid).await["uses"], 0);
    assert!(device_ids(&admin, "").await.is_empty());
    enrolled(&anon, enroll_body(&value, "dev-1", &good)).await;
}

async fn a_single_use_token_enrolls_exactly_one_of_many(backend: Backend) {
    let app = start(backend).await;
    let admin = app.admin().await;
    let (tid, value) = token(&admin, json!({})).await;
    let anon = Arc::new(app.client());
    let mut tasks = Vec::new();
    for n in 0..12 {
        let anon = anon.clone();
        let body = enroll_body(&value, &format!("racer-{n}"), &ed25519());
        tasks.push(tokio::spawn(async move { enroll(&anon, body).await }));
    }
    let mut won = 0;
    for t in tasks {
        let r = t.await.expect("task");
        match r.status {
            201 => won += 1,
            401 => assert_eq!(r.error_code(), "ENROLL_TOKEN_EXHAUSTED", "{}", r.text),
            other => panic!("unexpected {other}: {}", r.text),
        }
    }
    assert_eq!(won, 1, "exactly one concurrent enrollment wins a single-use token");
    assert_eq!(token_view(&admin, &tid).await["uses"], 1);
    assert_eq!(device_ids(&admin, "").await.len(), 1);

    // A multi-use token under the same pressure hands out exactly max_uses.
    let (mid, multi) = token(&admin, json!({"max_uses": 5})).await;
    let mut tasks = Vec::new();
    for n in 0..12 {
        let anon = anon.clone();
        let body = enroll_body(&multi, &format!("multi-{n}"), &p256());
        tasks.push(tokio::spawn(async move { enroll(&anon, body).await.status }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.expect("task"));
    }
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 5, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 401).count(), 7, "{statuses:?}");
    let t = token_view(&admin, &mid).await;
    assert_eq!((t["uses"].as_i64(), t["status"].as_str()), (Some(5), Some("exhausted")));
}

async fn renewal_proves_possession(backend: Backend) {
    let app = start(backend).await;
    let admin = app.admin().await;
    let anon = app.client();
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = ca_pem(&app).await;
    let (_, value) = token(&admin, json!({"max_uses": 2})).await;
    let key = ed25519();
    let e = enrolled(&anon, enroll_body(&value, "renewer", &key)).await;
    let id = s(&e["id"]);
    let first_serial = s(&e["serial_number"]);
    let path = format!("/api/v1/devices/{id}/renew");

    let ts = now_ts();
    let r = anon.post(&path, renew_body(&id, &key, &ts)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["id"], id.as_str());
    let serial = s(&r.json["serial_number"]);
    assert_ne!(serial, first_serial, "a renewal issues a new certificate");
    let (ok, out) = verify(dir.path(), &ca, &s(&r.json["certificate"]), None);
    assert!(ok, "renewed certificate: {out}");
    assert_eq!(device(&admin, &id).await["serial_number"], serial.as_str());

    // The same proof twice: refused.
    expect_code("replay", &anon.post(&path, renew_body(&id, &key, &ts)).await, 401, "RENEW_REPLAYED");
    // Another key's signature.
    expect_code(
        "wrong key",
        &anon.post(&path, renew_body(&id, &ed25519(), &now_ts())).await,
        401,
        "INVALID_DEVICE_SIGNATURE",
    );
    // A signature for another device or another timestamp.
    let mut b = renew_body(&id, &key, &now_ts());
    b["timestamp"] = json!(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true));
    expect_code("signature over another timestamp", &anon.post(&path, b).await, 401, "INVALID_DEVICE_SIGNATURE");
    // Outside the clock window, either way.
    for offset in [-600, 600] {
        let ts = (chrono::Utc::now() + chrono::Duration::seconds(offset)).to_rfc3339();
        let r = anon.post(&path, renew_body(&id, &key, &ts)).await;
        expect_code(&format!("skew {offset}"), &r, 401, "RENEW_TIMESTAMP_SKEW");
    }
    let r = anon.post(&path, json!({"timestamp": "yesterday", "signature": "AAAA"})).await;
    expect_field("bad timestamp", &r, 422, "INVALID_FIELD", "timestamp");
    let r = anon.post(&path, json!({"timestamp": now_ts(), "signature": "not base64 !!"})).await;
    expect_field("bad signature encoding", &r, 422, "INVALID_FIELD", "signature");
    let r = anon.post(&path, json!({"timestamp": now_ts()})).await;
    expect_field("no signature", &r, 422, "MISSING_FIELD", "signature");
    let r = anon
        .post("/api/v1/devices/dev_0000000000000000/renew", renew_body("dev_0000000000000000", &key, &now_ts()))
        .await;
    expect_code("unknown device", &r, 404, "DEVICE_NOT_FOUND");

    // Key rotation: a CSR signed by the new key, the request signed by the old one.
    let new_key = p256();
    let csr = CertificateParams::new(vec![]).unwrap().serialize_request(&new_key).unwrap().pem().unwrap();
    let mut b = renew_body(&id, &key, &now_ts());
    b["csr"] = json!(csr);
    let r = anon.post(&path, b).await;
    assert_eq!(r.status, 200, "rotation: {}", r.text);
    let d = device(&admin, &id).await;
    assert_eq!(d["key_type"], "ecdsa-p256");
    assert_eq!(d["public_key"], new_key.public_key_pem().as_str());
    // From now on only the new key proves anything (an ECDSA DER signature here).
    expect_code(
        "old key after rotation",
        &anon.post(&path, renew_body(&id, &key, &now_ts())).await,
        401,
        "INVALID_DEVICE_SIGNATURE",
    );
    let r = anon.post(&path, renew_body(&id, &new_key, &now_ts())).await;
    assert_eq!(r.status, 200, "new key: {}", r.text);
    let mut b = renew_body(&id, &new_key, &now_ts());
    b["csr"] = json!("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----");
    expect_field("bad rotation CSR", &anon.post(&path, b).await, 422, "INVALID_FIELD", "csr");

    let h = admin.get(&format!("/api/v1/devices/{id}/history")).await;
    let events: Vec<String> = h.json["data"].as_array().expect("data").iter().map(|e| s(&e["event"])).collect();
    assert_eq!(events, ["enrolled", "renewed", "renewed", "renewed"], "{}", h.text);
    let actions = audit_actions(&admin, &id).await;
    assert_eq!(actions.iter().filter(|a| *a == "device.renew").count(), 3, "{actions:?}");
}

async fn delete_revokes_into_the_crl(backend: Backend) {
    let app = start(backend).await;
    let admin = app.admin().await;
    let anon = app.client();
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = ca_pem(&app).await;
    let vni = admin.post("/api/v1/vnis", json!({"name": "crl-net", "cidr": "10.70.0.0/24", "vni": 70})).await;
    let vni_id = s(&vni.json["id"]);
    let (_, value) = token(&admin, json!({"max_uses": 3, "vni_id": vni_id})).await;
    let key = ed25519();
    let e = enrolled(&anon, enroll_body(&value, "doomed", &key)).await;
    let keeper = enrolled(&anon, enroll_body(&value, "keeper", &ed25519())).await;
    let id = s(&e["id"]);
    let cert = s(&e["certificate"]);
    let renewed = anon.post(&format!("/api/v1/devices/{id}/renew"), renew_body(&id, &key, &now_ts())).await;
    assert_eq!(renewed.status, 200, "{}", renewed.text);
    assert_eq!(admin.get(&format!("/api/v1/vnis/{vni_id}")).await.json["device_count"], 2);

    // An empty CRL verifies the certificate.
    let crl = anon.get("/api/v1/ca/crl").await;
    assert_eq!(crl.status, 200, "{}", crl.text);
    assert!(crl.text.starts_with("-----BEGIN X509 CRL-----"), "{}", crl.text);
    let (ok, out) = verify(dir.path(), &ca, &cert, Some(&crl.text));
    assert!(ok, "before revocation: {out}");

    let r = admin.delete(&format!("/api/v1/devices/{id}")).await;
    assert_eq!(r.status, 204, "{}", r.text);
    let d = device(&admin, &id).await;
    assert_eq!(d["status"], "revoked");
    assert!(d["revoked_at"].is_string(), "{d}");
    assert_eq!(admin.get(&format!("/api/v1/vnis/{vni_id}")).await.json["device_count"], 1);

    // Both of its certificates are in the CRL; the other device's is not.
    let crl = anon.get("/api/v1/ca/crl").await;
    assert_eq!(crl.status, 200, "{}", crl.text);
    std::fs::write(dir.path().join("crl.pem"), &crl.text).expect("write crl");
    let (ok, text) = openssl(dir.path(), &["crl", "-in", "crl.pem", "-text", "-noout"]);
    assert!(ok, "{text}");
    for serial in [s(&e["serial_number"]), s(&renewed.json["serial_number"])] {
        assert!(text.contains(&serial), "serial {serial} not in the CRL: {text}");
    }
    assert!(!text.contains(&s(&keeper["serial_number"])), "a live certificate is in the CRL: {text}");
    std::fs::write(dir.path().join("ca.pem"), &ca).expect("write ca");
    let (ok, out) = openssl(dir.path(), &["crl", "-in", "crl.pem", "-CAfile", "ca.pem", "-noout"]);
    assert!(ok && out.contains("verify OK"), "the CRL's signature: {out}");
    let (ok, out) = verify(dir.path(), &ca, &cert, Some(&crl.text));
    assert!(!ok && out.contains("revoked"), "openssl still accepts a revoked certificate: {out}");
    let (ok, out) = verify(dir.path(), &ca, &s(&keeper["certificate"]), Some(&crl.text));
    assert!(ok, "the other device: {out}");

    // DER on request.
    let der = anon.get("/api/v1/ca/crl?format=der").await;
    assert_eq!(der.status, 200);
    assert_eq!(der.header("content-type").as_deref(), Some("application/pkix-crl"));
    let mut rb = anon.http.get(anon.base.clone() + "/api/v1/ca/crl").header("accept", "application/pkix-crl");
    rb = rb.timeout(Duration::from_secs(10));
    let via_accept = rb.send().await.expect("crl");
    assert_eq!(via_accept.headers()["content-type"], "application/pkix-crl");
    let bytes = via_accept.bytes().await.expect("body");
    std::fs::write(dir.path().join("crl.der"), &bytes).expect("write der");
    let (ok, text) = openssl(dir.path(), &["crl", "-inform", "DER", "-in", "crl.der", "-text", "-noout"]);
    assert!(ok && text.contains(&s(&e["serial_number"])), "{text}");
    expect_code("bad format", &anon.get("/api/v1/ca/crl?format=xml").await, 400, "INVALID_QUERY");

    // A revoked device cannot renew; deleting twice is a conflict; history and audit keep it all.
    let r = anon.post(&format!("/api/v1/devices/{id}/renew"), renew_body(&id, &key, &now_ts())).await;
    expect_code("renew after delete", &r, 401, "DEVICE_REVOKED");
    expect_code("delete twice", &admin.delete(&format!("/api/v1/devices/{id}")).await, 409, "DEVICE_REVOKED");
    expect_code("delete unknown", &admin.delete("/api/v1/devices/dev_0000000000000000").await, 404, "DEVICE_NOT_FOUND");
    let h = admin.get(&format!("/api/v1/devices/{id}/history")).await;
    let events: Vec<String> = h.json["data"].as_array().expect("data").iter().map(|e| s(&e["event"])).collect();
    assert_eq!(events, ["enrolled", "renewed", "revoked"], "{}", h.text);
    assert!(audit_actions(&admin, &id).await.contains(&"device.revoke".to_string()));
    assert_eq!(device_ids(&admin, "?status=revoked").await, vec![id.clone()]);
    assert!(!device_ids(&admin, "?status=online").await.contains(&id));

    // A VNI with enrolled devices cannot be deleted.
    let r = admin.delete(&format!("/api/v1/vnis/{vni_id}")).await;
    expect_code("VNI with devices", &r, 409, "VNI_IN_USE");
    assert_eq!(r.json["details"]["device_count"], 1);
}

async fn status_follows_last_seen(backend: Backend) {
    let app = Appliance::start_with(backend, options().env("IRONBAY_DEVICES__ONLINE_WINDOW_SECS", "1")).await;
    let admin = app.admin().await;
    let anon = app.client();
    let (_, value) = token(&admin, json!({})).await;
    let key = ed25519();
    let id = s(&enrolled(&anon, enroll_body(&value, "sleepy", &key)).await["id"]);
    common::eventually("the device to go offline", 30, || {
        let admin = admin.clone();
        let id = id.clone();
        async move {
            let d = device(&admin, &id).await;
            if d["status"] == "offline" { Ok(()) } else { Err(d.to_string()) }
        }
    })
    .await;
    assert_eq!(device_ids(&admin, "?status=offline").await, vec![id.clone()]);
    let before = s(&device(&admin, &id).await["last_seen"]);
    let r = anon.post(&format!("/api/v1/devices/{id}/renew"), renew_body(&id, &key, &now_ts())).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let d = device(&admin, &id).await;
    assert!(s(&d["last_seen"]) > before, "renewal updates last_seen: {d}");
}

async fn ca_is_public_and_persistent(backend: Backend) {
    let app = start(backend).await;
    let ca = ca_pem(&app).await;
    let r = app.client().get("/api/v1/ca.pem").await;
    assert_eq!(r.header("content-type").as_deref(), Some("application/x-pem-file"));
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("ca.pem"), &ca).expect("write");
    let (ok, text) = openssl(dir.path(), &["x509", "-in", "ca.pem", "-noout", "-text"]);
    assert!(ok, "{text}");
    assert!(text.contains("CA:TRUE"), "{text}");
    assert!(text.contains("Certificate Sign, CRL Sign"), "{text}");
    assert!(text.contains("prime256v1"), "a P-256 CA: {text}");
    // Credentials are not needed, and bad ones do not get in the way.
    let bad = app.client().with_auth(common::Auth::Bearer("garbage".into()));
    assert_eq!(bad.get("/api/v1/ca.pem").await.status, 200);
    assert_eq!(bad.get("/api/v1/ca/crl").await.status, 200);
    // The CA was created once, audited, and survives a restart; its key is sealed at rest.
    let admin = app.admin().await;
    let r = admin.get("/api/v1/audit?action=device_ca.create").await;
    assert_eq!(r.json["meta"]["total"], 1, "{}", r.text);
    let app = app.restart().await;
    assert_eq!(ca_pem(&app).await, ca, "the CA changed across a restart");
    if backend == Backend::Sqlite {
        let db = std::fs::read(app.data_dir.path().join("ironbay.db")).expect("db file");
        let needle = b"PRIVATE KEY";
        assert!(!db.windows(needle.len()).any(|w| w == needle), "the CA key is stored in the clear");
    }
}

async fn enrollment_is_rate_limited_per_address(backend: Backend) {
    let opts = Options::default()
        .env("IRONBAY_RATE_LIMIT__ENROLL_PER_MINUTE", "3")
        .env("IRONBAY_RATE_LIMIT__ENROLL_BURST", "3");
    let app = Appliance::start_with(backend, opts).await;
    let anon = app.client();
    let key = ed25519();
    let mut last = None;
    for n in 0..4 {
        let r = enroll(&anon, enroll_body("ibe_nope", &format!("n{n}"), &key)).await;
        assert!(r.header("x-ratelimit-limit").is_some(), "{:?}", r.headers);
        last = Some(r);
    }
    let r = last.expect("responses");
    expect_code("4th enrollment in a minute", &r, 429, "RATE_LIMITED");
    assert!(r.header("retry-after").is_some());
    // Renewals share the device bucket; the API's own bucket is untouched.
    let r = anon.post("/api/v1/devices/dev_0000000000000000/renew", json!({})).await;
    assert_eq!(r.status, 429, "{}", r.text);
    assert_eq!(anon.get("/api/v1/health").await.status, 200);
}

/// Joining a VNI is the `connect` action: a policy bound to that VNI refuses the enrollment with
/// 403 POLICY_DENIED naming it, the token's use is not spent, and other VNIs are unaffected.
async fn a_policy_can_refuse_connecting_to_a_vni(backend: Backend) {
    let app = start(backend).await;
    let admin = app.admin().await;
    let mut vnis = Vec::new();
    for (name, cidr, number) in [("lab-closed", "10.77.0.0/24", 77), ("lab-open", "10.78.0.0/24", 78)] {
        let r = admin.post("/api/v1/vnis", json!({"name": name, "cidr": cidr, "vni": number})).await;
        assert_eq!(r.status, 201, "{}", r.text);
        vnis.push(s(&r.json["id"]));
    }
    let rego = "package closed\n\nimport rego.v1\n\ndeny contains \"segment closed for devices\" if input.action == \"connect\"\n";
    let r = admin.post("/api/v1/policies", json!({"name": "closed-segment", "rego": rego, "vni_ids": [vnis[0]]})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let anon = app.client();
    let (closed_id, closed) = token(&admin, json!({"vni_id": vnis[0]})).await;
    let r = enroll(&anon, enroll_body(&closed, "blocked-1", &ed25519())).await;
    expect_code("connect to the closed VNI", &r, 403, "POLICY_DENIED");
    assert!(r.text.contains("closed-segment"), "the refusal names the policy: {}", r.text);
    assert_eq!(token_view(&admin, &closed_id).await["uses"], 0, "a refused enrollment spends no use");
    assert!(device_ids(&admin, "").await.is_empty());
    let (_, open) = token(&admin, json!({"vni_id": vnis[1]})).await;
    enrolled(&anon, enroll_body(&open, "allowed-1", &ed25519())).await;
}

both_backends!(
    a_policy_can_refuse_connecting_to_a_vni,
    token_lifecycle,
    enrollment_issues_a_verifiable_certificate,
    bad_tokens_are_refused,
    bad_keys_and_bodies_are_refused,
    a_single_use_token_enrolls_exactly_one_of_many,
    renewal_proves_possession,
    delete_revokes_into_the_crl,
    status_follows_last_seen,
    ca_is_public_and_persistent,
    enrollment_is_rate_limited_per_address,
);
