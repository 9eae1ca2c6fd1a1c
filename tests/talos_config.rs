//! The pure Talos module: the secrets bundle, machine configs (against Talos v1.13.9's own generator
//! output and published schema, in `tests/fixtures/talos/`), the admin kubeconfig and talosconfig.
//! Certificates and keys are also checked with the `openssl` and `kubectl` CLIs.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Instant;

use base64::Engine as _;
use ironbay::talos::TalosError;
use ironbay::talos::access::{admin_kubeconfig, os_admin_certificate, talosconfig};
use ironbay::talos::config::{
    ClusterSettings, DEFAULT_KUBERNETES_VERSION, DEFAULT_TALOS_VERSION, MachineRole, NodeSettings, machine_config,
};
use ironbay::talos::secrets::{CertAndKey, SecretsBundle};
use serde::Deserialize as _;
use x509_parser::prelude::*;
use yaml_serde::Value;

const FIXTURE_CP: &str = "talos-v1.13.9_stability-v1.13_base-controlplane.yaml";
const FIXTURE_WORKER: &str = "talos-v1.13.9_stability-v1.13_base-worker.yaml";
const SCHEMA: &str = "talos-config.schema.v1.13.9.json";

const OID_ED25519: &str = "1.3.101.112";
const OID_EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const OID_P256: &str = "1.2.840.10045.3.1.7";

fn fixture(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/talos").join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// One bundle for the whole test binary (RSA-4096 generation is the slow part).
fn secrets() -> &'static SecretsBundle {
    static S: OnceLock<SecretsBundle> = OnceLock::new();
    S.get_or_init(|| {
        let t = Instant::now();
        let s = SecretsBundle::generate().expect("generate secrets");
        println!("SecretsBundle::generate() took {:?}", t.elapsed());
        s
    })
}

fn cluster() -> ClusterSettings {
    ClusterSettings {
        name: "rack7".into(),
        endpoint: "https://10.20.0.5:6443".into(),
        vip: Some("10.20.0.5".parse().unwrap()),
        talos_version: DEFAULT_TALOS_VERSION.into(),
        kubernetes_version: DEFAULT_KUBERNETES_VERSION.into(),
        install_image: "ghcr.io/siderolabs/installer:v1.13.9".into(),
        ntp_servers: vec!["10.20.0.1".into(), "ntp.example.org".into()],
        nameservers: vec!["10.20.0.1".parse().unwrap(), "1.1.1.1".parse().unwrap()],
        registry_mirrors: BTreeMap::from([
            ("docker.io".to_string(), vec!["http://10.20.0.2:5000".to_string()]),
            ("ghcr.io".to_string(), vec!["http://10.20.0.2:5001".to_string(), "https://ghcr.io".to_string()]),
        ]),
        discovery: false,
        cert_sans: vec!["k8s.rack7.example.org".into(), "10.20.0.5".into()],
    }
}

fn node(role: MachineRole, n: u8) -> NodeSettings {
    NodeSettings {
        role,
        hostname: format!("{}-{n}", role_name(role)),
        mac: Some(format!("52:54:00:AA:BB:{n:02x}")),
        address: format!("10.20.0.{}", 10 + n).parse().unwrap(),
        prefix: 24,
        gateway: "10.20.0.1".parse().unwrap(),
        install_disk: "/dev/nvme0n1".into(),
    }
}

fn role_name(role: MachineRole) -> &'static str {
    match role {
        MachineRole::Controlplane => "cp",
        MachineRole::Worker => "worker",
    }
}

fn docs(yaml: &str) -> Vec<Value> {
    yaml_serde::Deserializer::from_str(yaml).map(|d| Value::deserialize(d).expect("YAML document")).collect()
}

/// The document's name in a key path: `v1alpha1` for the main document, else its `kind`.
fn doc_kind(doc: &Value) -> String {
    match doc.get("kind").and_then(Value::as_str) {
        Some(kind) => kind.to_string(),
        None => {
            assert_eq!(doc.get("version").and_then(Value::as_str), Some("v1alpha1"), "unknown document {doc:?}");
            "v1alpha1".into()
        }
    }
}

fn flatten(prefix: &str, v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Mapping(m) => {
            for (k, val) in m {
                let key = k.as_str().map(str::to_string).unwrap_or_else(|| format!("{k:?}"));
                let p = format!("{prefix}.{key}");
                out.insert(p.clone());
                flatten(&p, val, out);
            }
        }
        Value::Sequence(items) => {
            let p = format!("{prefix}[]");
            if !items.is_empty() {
                out.insert(p.clone());
            }
            for item in items {
                flatten(&p, item, out);
            }
        }
        _ => {}
    }
}

/// All key paths of all documents, each prefixed by its document's kind.
fn key_paths(yaml: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for doc in docs(yaml) {
        let kind = doc_kind(&doc);
        flatten(&kind, &doc, &mut out);
    }
    out
}

fn v1alpha1(yaml: &str) -> Value {
    docs(yaml).into_iter().find(|d| doc_kind(d) == "v1alpha1").expect("a v1alpha1 document")
}

fn docs_of_kind(yaml: &str, kind: &str) -> Vec<Value> {
    docs(yaml).into_iter().filter(|d| doc_kind(d) == kind).collect()
}

fn path<'a>(v: &'a Value, dotted: &str) -> Option<&'a Value> {
    dotted.split('.').try_fold(v, |v, k| v.get(k))
}

fn str_at<'a>(v: &'a Value, dotted: &str) -> &'a str {
    path(v, dotted).and_then(Value::as_str).unwrap_or_else(|| panic!("no string at {dotted}"))
}

fn b64_pem(v: &Value, dotted: &str) -> String {
    let raw = base64::engine::general_purpose::STANDARD.decode(str_at(v, dotted)).expect("base64");
    String::from_utf8(raw).expect("utf-8 PEM")
}

// ---------------------------------------------------------------------------------------------
// 1. Key paths against the generator's fixtures
// ---------------------------------------------------------------------------------------------

/// What ironbay adds to what the generator emits for the fixture (every node gets install, link,
/// hostname; the test cluster also has VIP, nameservers, NTP, mirrors and extra SANs).
const EXTRAS_COMMON: &[&str] = &[
    "v1alpha1.machine.certSANs[]",
    "v1alpha1.machine.install.disk",
    "v1alpha1.machine.install.image",
    "HostnameConfig.hostname",
    "LinkAliasConfig.apiVersion",
    "LinkAliasConfig.kind",
    "LinkAliasConfig.name",
    "LinkAliasConfig.selector",
    "LinkAliasConfig.selector.match",
    "LinkConfig.apiVersion",
    "LinkConfig.kind",
    "LinkConfig.name",
    "LinkConfig.addresses",
    "LinkConfig.addresses[]",
    "LinkConfig.addresses[].address",
    "LinkConfig.routes",
    "LinkConfig.routes[]",
    "LinkConfig.routes[].gateway",
    "ResolverConfig.apiVersion",
    "ResolverConfig.kind",
    "ResolverConfig.nameservers",
    "ResolverConfig.nameservers[]",
    "ResolverConfig.nameservers[].address",
    "TimeSyncConfig.apiVersion",
    "TimeSyncConfig.kind",
    "TimeSyncConfig.ntp",
    "TimeSyncConfig.ntp.servers",
    "TimeSyncConfig.ntp.servers[]",
    "RegistryMirrorConfig.apiVersion",
    "RegistryMirrorConfig.kind",
    "RegistryMirrorConfig.name",
    "RegistryMirrorConfig.endpoints",
    "RegistryMirrorConfig.endpoints[]",
    "RegistryMirrorConfig.endpoints[].url",
];
const EXTRAS_CONTROLPLANE: &[&str] = &[
    "v1alpha1.cluster.apiServer.certSANs",
    "v1alpha1.cluster.apiServer.certSANs[]",
    "Layer2VIPConfig.apiVersion",
    "Layer2VIPConfig.kind",
    "Layer2VIPConfig.name",
    "Layer2VIPConfig.link",
];

fn check_key_paths(role: MachineRole, fixture_name: &str) {
    let generated = machine_config(&cluster(), &node(role, 1), secrets()).unwrap();
    let want = key_paths(&fixture(fixture_name));
    let got = key_paths(&generated);
    let missing: Vec<_> = want.difference(&got).collect();
    assert!(missing.is_empty(), "{role:?}: key paths of the fixture missing from the generated config: {missing:#?}");
    let allowed: BTreeSet<&str> = EXTRAS_COMMON
        .iter()
        .chain(if role == MachineRole::Controlplane { EXTRAS_CONTROLPLANE } else { &[] })
        .copied()
        .collect();
    let unexpected: Vec<_> = got.difference(&want).filter(|p| !allowed.contains(p.as_str())).collect();
    assert!(unexpected.is_empty(), "{role:?}: unexpected key paths: {unexpected:#?}");
    // The extras list is not just slack: the cluster above exercises every entry.
    let unused: Vec<_> = allowed.iter().filter(|p| !got.contains(**p)).collect();
    assert!(unused.is_empty(), "{role:?}: allowed extras that were not generated: {unused:?}");
}

#[test]
fn controlplane_key_paths_match_the_generator() {
    check_key_paths(MachineRole::Controlplane, FIXTURE_CP);
}

#[test]
fn worker_key_paths_match_the_generator() {
    check_key_paths(MachineRole::Worker, FIXTURE_WORKER);
}

#[test]
fn key_paths_without_optional_settings_are_the_fixtures_plus_node_settings() {
    // No VIP, NTP, nameservers, mirrors, SANs, no MAC: only install, hostname and the link remain.
    let mut c = cluster();
    c.vip = None;
    c.ntp_servers.clear();
    c.nameservers.clear();
    c.registry_mirrors.clear();
    c.cert_sans.clear();
    c.discovery = true;
    let mut n = node(MachineRole::Controlplane, 1);
    n.mac = None;
    let got = key_paths(&machine_config(&c, &n, secrets()).unwrap());
    let want = key_paths(&fixture(FIXTURE_CP));
    let extra: BTreeSet<_> = got.difference(&want).map(String::as_str).collect();
    let expected: BTreeSet<&str> = EXTRAS_COMMON
        .iter()
        .copied()
        .filter(|p| {
            !p.starts_with("ResolverConfig")
                && !p.starts_with("TimeSyncConfig")
                && !p.starts_with("RegistryMirrorConfig")
                && !p.starts_with("v1alpha1.machine.certSANs")
        })
        .collect();
    assert_eq!(extra, expected);
    assert!(want.is_subset(&got));
    let links = machine_config(&c, &n, secrets()).unwrap();
    let alias = &docs_of_kind(&links, "LinkAliasConfig")[0];
    assert_eq!(str_at(alias, "name"), "net%d");
    assert_eq!(str_at(&docs_of_kind(&links, "LinkConfig")[0], "name"), "net0");
    assert_eq!(path(&v1alpha1(&links), "cluster.discovery.enabled").and_then(Value::as_bool), Some(true));
}

// ---------------------------------------------------------------------------------------------
// 2. The published JSON schema
// ---------------------------------------------------------------------------------------------

#[test]
fn generated_documents_validate_against_the_1_13_schema() {
    let schema: serde_json::Value = serde_json::from_str(&fixture(SCHEMA)).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    for role in [MachineRole::Controlplane, MachineRole::Worker] {
        let yaml = machine_config(&cluster(), &node(role, 2), secrets()).unwrap();
        let all = docs(&yaml);
        assert!(all.len() >= 2);
        for doc in all {
            let kind = doc_kind(&doc);
            let mut json = serde_json::to_value(&doc).unwrap();
            if kind == "v1alpha1" {
                // The documented exception: the generator always writes `persist`, the schema rejects it.
                assert_eq!(json.as_object_mut().unwrap().remove("persist"), Some(serde_json::Value::Bool(true)));
            }
            let errors: Vec<String> =
                validator.iter_errors(&json).map(|e| format!("{} at {}", e, e.instance_path())).collect();
            assert!(errors.is_empty(), "{role:?} {kind}: schema errors:\n{}", errors.join("\n"));
        }
    }
    // And the validator is not vacuous: a typo'd key is caught.
    let mut bad =
        serde_json::to_value(v1alpha1(&machine_config(&cluster(), &node(MachineRole::Worker, 3), secrets()).unwrap()))
            .unwrap();
    bad.as_object_mut().unwrap().remove("persist");
    bad["machine"]["instal"] = serde_json::json!({"disk": "/dev/sda"});
    assert!(!validator.is_valid(&bad));
}

// ---------------------------------------------------------------------------------------------
// 3. The secrets bundle
// ---------------------------------------------------------------------------------------------

fn openssl(args: &[&str]) -> String {
    let out = Command::new("openssl").args(args).output().expect("the openssl CLI is installed");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "openssl {args:?} failed:\n{text}");
    text
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn pem_label(text: &str) -> String {
    ::pem::parse(text).expect("PEM").tag().to_string()
}

fn parse_cert(pem_text: &str) -> (Vec<u8>, ()) {
    let p = ::pem::parse(pem_text).expect("certificate PEM");
    assert_eq!(p.tag(), "CERTIFICATE");
    (p.contents().to_vec(), ())
}

struct CaExpect {
    key_oid: &'static str,
    organization: Option<&'static str>,
}

fn check_ca(name: &str, ca: &CertAndKey, expect: CaExpect, dir: &Path) {
    let (der, ()) = parse_cert(&ca.crt);
    let (_, cert) = X509Certificate::from_der(&der).expect("x509");
    assert_eq!(cert.public_key().algorithm.algorithm.to_id_string(), expect.key_oid, "{name}: key algorithm");
    if expect.key_oid == OID_EC_PUBLIC_KEY {
        let curve =
            cert.public_key().algorithm.parameters.as_ref().and_then(|p| p.as_oid().ok()).map(|o| o.to_id_string());
        assert_eq!(curve.as_deref(), Some(OID_P256), "{name}: curve");
        assert_eq!(
            cert.signature_algorithm.algorithm.to_id_string(),
            "1.2.840.10045.4.3.2",
            "{name}: ecdsa-with-SHA256"
        );
    }
    let orgs: Vec<_> = cert.subject().iter_organization().filter_map(|o| o.as_str().ok()).collect();
    match expect.organization {
        Some(o) => assert_eq!(orgs, vec![o], "{name}: subject O"),
        None => assert_eq!(cert.subject().iter().count(), 0, "{name}: empty subject"),
    }
    assert_eq!(cert.subject(), cert.issuer(), "{name}: self-signed");
    assert!(cert.is_ca(), "{name}: IsCA");
    let ku = cert.key_usage().unwrap().expect("key usage");
    assert!(ku.critical, "{name}: KU critical");
    assert!(ku.value.key_cert_sign() && ku.value.digital_signature(), "{name}: KU");
    let eku = cert.extended_key_usage().unwrap().expect("EKU");
    assert!(eku.value.server_auth && eku.value.client_auth, "{name}: EKU");
    let bc = cert.basic_constraints().unwrap().expect("basic constraints");
    assert!(bc.critical && bc.value.ca);
    assert!(cert.raw_serial().len() >= 8, "{name}: random serial");
    let now = ::time::OffsetDateTime::now_utc();
    let nb = cert.validity().not_before.to_datetime();
    let na = cert.validity().not_after.to_datetime();
    assert!(nb <= now && now - nb < ::time::Duration::minutes(5), "{name}: NotBefore {nb}");
    let years = (na - nb).whole_days();
    assert!((3649..=3652).contains(&years), "{name}: {years} days of validity");
    cert.verify_signature(None).expect("self-signature verifies");

    let crt = write(dir, &format!("{name}.crt"), &ca.crt);
    let text = openssl(&["x509", "-noout", "-text", "-in", crt.to_str().unwrap()]);
    assert!(text.contains("CA:TRUE"), "{name}: {text}");
    assert!(text.contains("Digital Signature, Certificate Sign"), "{name}: {text}");
    assert!(text.contains("TLS Web Server Authentication, TLS Web Client Authentication"), "{name}: {text}");

    // The key matches the certificate.
    let cert_pub = openssl(&["x509", "-noout", "-pubkey", "-in", crt.to_str().unwrap()]);
    let key_path = if expect.key_oid == OID_ED25519 {
        assert_eq!(pem_label(&ca.key), "ED25519 PRIVATE KEY", "{name}: key label");
        // openssl knows only PKCS#8's own label; the body is PKCS#8.
        let relabeled = ca.key.replace("ED25519 PRIVATE KEY", "PRIVATE KEY");
        let k = write(dir, &format!("{name}.key"), &relabeled);
        let t = openssl(&["pkey", "-noout", "-text", "-in", k.to_str().unwrap()]);
        assert!(t.contains("ED25519 Private-Key"), "{name}: {t}");
        k
    } else {
        assert_eq!(pem_label(&ca.key), "EC PRIVATE KEY", "{name}: key label");
        let k = write(dir, &format!("{name}.key"), &ca.key);
        let t = openssl(&["ec", "-noout", "-text", "-in", k.to_str().unwrap()]);
        assert!(t.contains("ASN1 OID: prime256v1"), "{name}: {t}");
        // SEC1 with the named-curve parameters inside (Go's ParseECPrivateKey needs them).
        let asn1 = openssl(&["asn1parse", "-in", k.to_str().unwrap()]);
        assert!(asn1.contains("prime256v1") && asn1.contains("cont [ 0 ]"), "{name}: {asn1}");
        k
    };
    let key_pub = openssl(&["pkey", "-pubout", "-in", key_path.to_str().unwrap()]);
    assert_eq!(cert_pub.trim(), key_pub.trim(), "{name}: key does not match the certificate");
}

#[test]
fn secrets_bundle_has_the_talos_shapes() {
    let s = secrets();
    let dir = tempfile::tempdir().unwrap();
    check_ca("os", &s.os_ca, CaExpect { key_oid: OID_ED25519, organization: Some("talos") }, dir.path());
    check_ca("k8s", &s.k8s_ca, CaExpect { key_oid: OID_EC_PUBLIC_KEY, organization: Some("kubernetes") }, dir.path());
    check_ca(
        "aggregator",
        &s.k8s_aggregator_ca,
        CaExpect { key_oid: OID_EC_PUBLIC_KEY, organization: None },
        dir.path(),
    );
    check_ca("etcd", &s.etcd_ca, CaExpect { key_oid: OID_EC_PUBLIC_KEY, organization: Some("etcd") }, dir.path());

    assert_eq!(pem_label(&s.k8s_service_account_key), "RSA PRIVATE KEY");
    let sa = write(dir.path(), "sa.key", &s.k8s_service_account_key);
    let check = openssl(&["rsa", "-check", "-noout", "-in", sa.to_str().unwrap()]);
    assert!(check.contains("RSA key ok"), "{check}");
    let text = openssl(&["rsa", "-noout", "-text", "-in", sa.to_str().unwrap()]);
    assert!(text.contains("Private-Key: (4096 bit"), "{}", &text[..80.min(text.len())]);

    for (what, t) in [("bootstrap", &s.bootstrap_token), ("trustd", &s.trustd_token)] {
        let (a, b) = t.split_once('.').unwrap_or_else(|| panic!("{what} token {t}"));
        let ok = |p: &str, n| p.len() == n && p.bytes().all(|c| c.is_ascii_digit() || c.is_ascii_lowercase());
        assert!(ok(a, 6) && ok(b, 16), "{what} token {t}");
    }
    assert_ne!(s.bootstrap_token, s.trustd_token);

    let std = base64::engine::general_purpose::STANDARD;
    assert_eq!(std.decode(&s.cluster_secret).unwrap().len(), 32);
    assert_eq!(std.decode(&s.secretbox_encryption_secret).unwrap().len(), 32);
    assert_ne!(s.cluster_secret, s.secretbox_encryption_secret);
    assert_eq!(s.cluster_id.len(), 44);
    assert!(s.cluster_id.ends_with('='), "padded: {}", s.cluster_id);
    assert!(!s.cluster_id.contains(['+', '/']), "URL-safe: {}", s.cluster_id);
    assert_eq!(base64::engine::general_purpose::URL_SAFE.decode(&s.cluster_id).unwrap().len(), 32);

    // Debug never shows keys or secrets.
    let dbg = format!("{s:?}");
    for secret in
        [&s.os_ca.key, &s.k8s_ca.key, &s.etcd_ca.key, &s.k8s_service_account_key, &s.cluster_secret, &s.bootstrap_token]
    {
        assert!(!dbg.contains(secret.as_str()), "Debug leaks a secret");
    }

    // Serde round trip (the bundle is stored).
    let json = serde_json::to_string(s).unwrap();
    let back: SecretsBundle = serde_json::from_str(&json).unwrap();
    assert_eq!(back.os_ca, s.os_ca);
    assert_eq!(back.k8s_service_account_key, s.k8s_service_account_key);

    // Two bundles share nothing.
    let other = SecretsBundle::generate().unwrap();
    assert_ne!(other.cluster_id, s.cluster_id);
    assert_ne!(other.os_ca, s.os_ca);
}

// ---------------------------------------------------------------------------------------------
// 4. Admin kubeconfig
// ---------------------------------------------------------------------------------------------

fn kubectl(args: &[&str]) -> String {
    let out = Command::new("kubectl").args(args).output().expect("kubectl is installed");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "kubectl {args:?} failed:\n{text}");
    text
}

#[test]
fn admin_kubeconfig_is_usable_and_signed_by_the_kubernetes_ca() {
    let s = secrets();
    let kc = admin_kubeconfig("rack7", "https://10.20.0.5:6443", &s.k8s_ca).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "kubeconfig", &kc);
    let fs = f.to_str().unwrap();
    let view = kubectl(&["--kubeconfig", fs, "config", "view"]);
    assert!(view.contains("admin@rack7") && view.contains("server: https://10.20.0.5:6443"), "{view}");
    let contexts = kubectl(&["--kubeconfig", fs, "config", "get-contexts"]);
    assert!(contexts.lines().any(|l| l.starts_with('*') && l.contains("admin@rack7")), "{contexts}");
    let current = kubectl(&["--kubeconfig", fs, "config", "current-context"]);
    assert_eq!(current.trim(), "admin@rack7");

    let doc: Value = yaml_serde::from_str(&kc).unwrap();
    assert_eq!(str_at(&doc, "apiVersion"), "v1");
    assert_eq!(str_at(&doc, "kind"), "Config");
    let cluster = &doc["clusters"][0];
    assert_eq!(str_at(cluster, "name"), "rack7");
    assert_eq!(b64_pem(cluster, "cluster.certificate-authority-data"), s.k8s_ca.crt);
    let ctx = &doc["contexts"][0];
    assert_eq!(str_at(ctx, "name"), "admin@rack7");
    assert_eq!(str_at(ctx, "context.namespace"), "default");
    assert_eq!(str_at(ctx, "context.cluster"), "rack7");
    assert_eq!(str_at(ctx, "context.user"), "admin@rack7");
    let user = &doc["users"][0];
    assert_eq!(str_at(user, "name"), "admin@rack7");
    let client_crt = b64_pem(user, "user.client-certificate-data");
    let client_key = b64_pem(user, "user.client-key-data");
    assert_eq!(pem_label(&client_key), "EC PRIVATE KEY");

    let ca = write(dir.path(), "ca.pem", &s.k8s_ca.crt);
    let client = write(dir.path(), "client.pem", &client_crt);
    let key = write(dir.path(), "client.key", &client_key);
    let verify = openssl(&["verify", "-CAfile", ca.to_str().unwrap(), client.to_str().unwrap()]);
    assert!(verify.contains(": OK"), "{verify}");
    // The key is the certificate's.
    let a = openssl(&["x509", "-noout", "-pubkey", "-in", client.to_str().unwrap()]);
    let b = openssl(&["pkey", "-pubout", "-in", key.to_str().unwrap()]);
    assert_eq!(a.trim(), b.trim());

    let (der, ()) = parse_cert(&client_crt);
    let (_, cert) = X509Certificate::from_der(&der).unwrap();
    let cns: Vec<_> = cert.subject().iter_common_name().filter_map(|c| c.as_str().ok()).collect();
    let orgs: Vec<_> = cert.subject().iter_organization().filter_map(|c| c.as_str().ok()).collect();
    assert_eq!(cns, ["admin"]);
    assert_eq!(orgs, ["system:masters"]);
    assert_eq!(cert.public_key().algorithm.algorithm.to_id_string(), OID_EC_PUBLIC_KEY);
    assert!(!cert.is_ca());
    let eku = cert.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.client_auth && !eku.server_auth && !eku.any && eku.other.is_empty(), "EKU clientAuth only");
    let ku = cert.key_usage().unwrap().unwrap().value;
    assert!(ku.digital_signature() && ku.key_encipherment() && !ku.key_cert_sign());
    let now = ::time::OffsetDateTime::now_utc();
    let nb = cert.validity().not_before.to_datetime();
    assert!(nb <= now - ::time::Duration::seconds(9) && now - nb < ::time::Duration::minutes(2), "NotBefore {nb}");
    let days = (cert.validity().not_after.to_datetime() - nb).whole_days();
    assert!((364..=366).contains(&days), "{days} days");

    // A CA without its key (a worker's copy) cannot sign.
    assert!(matches!(
        admin_kubeconfig("rack7", "https://x:6443", &s.k8s_ca.without_key()),
        Err(TalosError::Invalid(_))
    ));
}

// ---------------------------------------------------------------------------------------------
// 5. os:admin certificate and talosconfig
// ---------------------------------------------------------------------------------------------

fn check_os_admin(admin: &CertAndKey, os_ca: &CertAndKey, dir: &Path) {
    let (der, ()) = parse_cert(&admin.crt);
    let (_, cert) = X509Certificate::from_der(&der).unwrap();
    assert_eq!(cert.public_key().algorithm.algorithm.to_id_string(), OID_ED25519);
    assert_eq!(cert.signature_algorithm.algorithm.to_id_string(), OID_ED25519);
    let orgs: Vec<_> = cert.subject().iter_organization().filter_map(|c| c.as_str().ok()).collect();
    assert_eq!(orgs, ["os:admin"]);
    assert_eq!(cert.subject().iter_common_name().count(), 0, "no CN");
    assert_eq!(cert.subject().iter().count(), 1, "only O");
    let eku = cert.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.client_auth && !eku.server_auth && !eku.any && eku.other.is_empty(), "EKU exactly [ClientAuth]");
    assert!(!eku.code_signing && !eku.email_protection && !eku.time_stamping && !eku.ocsp_signing);
    let ku = cert.key_usage().unwrap().unwrap().value;
    assert!(ku.digital_signature() && !ku.key_cert_sign() && !ku.key_encipherment());
    assert!(!cert.is_ca());
    let days = (cert.validity().not_after.to_datetime() - cert.validity().not_before.to_datetime()).whole_days();
    assert!((364..=366).contains(&days), "{days} days");
    assert_eq!(pem_label(&admin.key), "ED25519 PRIVATE KEY");

    let ca = write(dir, "os-ca.pem", &os_ca.crt);
    let leaf = write(dir, "os-admin.pem", &admin.crt);
    let verify = openssl(&["verify", "-CAfile", ca.to_str().unwrap(), leaf.to_str().unwrap()]);
    assert!(verify.contains(": OK"), "{verify}");
    let key = write(dir, "os-admin.key", &admin.key.replace("ED25519 PRIVATE KEY", "PRIVATE KEY"));
    let a = openssl(&["x509", "-noout", "-pubkey", "-in", leaf.to_str().unwrap()]);
    let b = openssl(&["pkey", "-pubout", "-in", key.to_str().unwrap()]);
    assert_eq!(a.trim(), b.trim());
}

#[test]
fn os_admin_certificate_is_what_apid_wants() {
    let s = secrets();
    let dir = tempfile::tempdir().unwrap();
    let admin = os_admin_certificate(&s.os_ca).unwrap();
    check_os_admin(&admin, &s.os_ca, dir.path());
    // Signed by another cluster's CA it does not verify.
    let other = SecretsBundle::generate().unwrap();
    let ca = write(dir.path(), "other-ca.pem", &other.os_ca.crt);
    let leaf = write(dir.path(), "leaf.pem", &admin.crt);
    let out = Command::new("openssl")
        .args(["verify", "-CAfile", ca.to_str().unwrap(), leaf.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn talosconfig_has_the_documented_layout() {
    let s = secrets();
    let endpoints = vec!["10.20.0.11".to_string(), "10.20.0.12".to_string()];
    let nodes = vec!["10.20.0.11".to_string()];
    let text = talosconfig("rack7", &endpoints, &nodes, &s.os_ca).unwrap();
    let doc: Value = yaml_serde::from_str(&text).unwrap();
    let top: BTreeSet<_> = doc.as_mapping().unwrap().keys().filter_map(Value::as_str).collect();
    assert_eq!(top, BTreeSet::from(["context", "contexts"]));
    assert_eq!(str_at(&doc, "context"), "rack7");
    let ctx = path(&doc, "contexts.rack7").expect("contexts.rack7");
    let keys: BTreeSet<_> = ctx.as_mapping().unwrap().keys().filter_map(Value::as_str).collect();
    assert_eq!(keys, BTreeSet::from(["endpoints", "nodes", "ca", "crt", "key"]));
    let list = |k: &str| -> Vec<String> {
        ctx[k].as_sequence().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect()
    };
    assert_eq!(list("endpoints"), endpoints);
    assert_eq!(list("nodes"), nodes);
    assert_eq!(b64_pem(ctx, "ca"), s.os_ca.crt);
    let admin = CertAndKey { crt: b64_pem(ctx, "crt"), key: b64_pem(ctx, "key") };
    let dir = tempfile::tempdir().unwrap();
    check_os_admin(&admin, &s.os_ca, dir.path());
}

// ---------------------------------------------------------------------------------------------
// 6. Role contents and per-node values
// ---------------------------------------------------------------------------------------------

#[test]
fn worker_config_carries_no_ca_keys_or_control_plane_secrets() {
    let s = secrets();
    let yaml = machine_config(&cluster(), &node(MachineRole::Worker, 4), s).unwrap();
    let v = v1alpha1(&yaml);
    assert_eq!(str_at(&v, "machine.type"), "worker");
    assert_eq!(str_at(&v, "machine.ca.key"), "");
    assert_eq!(str_at(&v, "cluster.ca.key"), "");
    assert_eq!(b64_pem(&v, "machine.ca.crt"), s.os_ca.crt);
    assert_eq!(b64_pem(&v, "cluster.ca.crt"), s.k8s_ca.crt);
    for absent in [
        "cluster.etcd",
        "cluster.aggregatorCA",
        "cluster.serviceAccount",
        "cluster.secretboxEncryptionSecret",
        "cluster.apiServer",
        "machine.nodeLabels",
    ] {
        assert!(path(&v, absent).is_none(), "worker has {absent}");
    }
    assert!(docs_of_kind(&yaml, "Layer2VIPConfig").is_empty(), "a VIP on a worker");
    // No private key of any kind anywhere in the text.
    let std = base64::engine::general_purpose::STANDARD;
    for secret in [&s.os_ca.key, &s.k8s_ca.key, &s.etcd_ca.key, &s.k8s_aggregator_ca.key, &s.k8s_service_account_key] {
        assert!(!yaml.contains(&std.encode(secret.as_bytes())));
    }
    assert!(!yaml.contains(&s.secretbox_encryption_secret));
    // Tokens and ids a worker does need.
    assert_eq!(str_at(&v, "machine.token"), s.trustd_token);
    assert_eq!(str_at(&v, "cluster.token"), s.bootstrap_token);
    assert_eq!(str_at(&v, "cluster.id"), s.cluster_id);
    assert_eq!(str_at(&v, "cluster.secret"), s.cluster_secret);
}

#[test]
fn controlplane_config_has_the_values_passed_in() {
    let s = secrets();
    let c = cluster();
    let n = node(MachineRole::Controlplane, 7);
    let yaml = machine_config(&c, &n, s).unwrap();
    let v = v1alpha1(&yaml);
    assert_eq!(str_at(&v, "machine.type"), "controlplane");
    assert_eq!(path(&v, "persist").and_then(Value::as_bool), Some(true));
    assert_eq!(str_at(&v, "machine.install.disk"), "/dev/nvme0n1");
    assert_eq!(str_at(&v, "machine.install.image"), "ghcr.io/siderolabs/installer:v1.13.9");
    assert_eq!(str_at(&v, "machine.kubelet.image"), format!("ghcr.io/siderolabs/kubelet:{DEFAULT_KUBERNETES_VERSION}"));
    assert_eq!(
        str_at(&v, "cluster.apiServer.image"),
        format!("registry.k8s.io/kube-apiserver:{DEFAULT_KUBERNETES_VERSION}")
    );
    assert_eq!(
        str_at(&v, "cluster.scheduler.image"),
        format!("registry.k8s.io/kube-scheduler:{DEFAULT_KUBERNETES_VERSION}")
    );
    assert_eq!(str_at(&v, "cluster.controlPlane.endpoint"), "https://10.20.0.5:6443");
    assert_eq!(str_at(&v, "cluster.clusterName"), "rack7");
    assert_eq!(path(&v, "cluster.discovery.enabled").and_then(Value::as_bool), Some(false));
    let sans: Vec<_> =
        v["cluster"]["apiServer"]["certSANs"].as_sequence().unwrap().iter().map(|x| x.as_str().unwrap()).collect();
    assert_eq!(sans, ["k8s.rack7.example.org", "10.20.0.5"]);
    let msans: Vec<_> = v["machine"]["certSANs"].as_sequence().unwrap().iter().map(|x| x.as_str().unwrap()).collect();
    assert_eq!(msans, sans);
    assert_eq!(b64_pem(&v, "machine.ca.key"), s.os_ca.key);
    assert_eq!(b64_pem(&v, "cluster.ca.key"), s.k8s_ca.key);
    assert_eq!(b64_pem(&v, "cluster.etcd.ca.key"), s.etcd_ca.key);
    assert_eq!(b64_pem(&v, "cluster.aggregatorCA.crt"), s.k8s_aggregator_ca.crt);
    assert_eq!(b64_pem(&v, "cluster.serviceAccount.key"), s.k8s_service_account_key);
    assert_eq!(str_at(&v, "cluster.secretboxEncryptionSecret"), s.secretbox_encryption_secret);

    let hostname = &docs_of_kind(&yaml, "HostnameConfig")[0];
    assert_eq!(str_at(hostname, "hostname"), "cp-7");
    assert_eq!(str_at(hostname, "auto"), "off", "the only `auto` compatible with a static hostname");
    assert!(yaml.contains("\nauto: \"off\"\n"), "`off` quoted, as Go writes it");
    assert!(path(&v, "machine.network").is_none(), "the hostname must not also be in v1alpha1");

    let alias = &docs_of_kind(&yaml, "LinkAliasConfig")[0];
    assert_eq!(str_at(alias, "name"), "net0");
    let m = str_at(alias, "selector.match");
    assert!(m.contains(r#"mac(link.permanent_addr) == "52:54:00:aa:bb:07""#), "{m}");
    let link = &docs_of_kind(&yaml, "LinkConfig")[0];
    assert_eq!(str_at(link, "name"), "net0");
    assert_eq!(str_at(&link["addresses"][0], "address"), "10.20.0.17/24");
    assert_eq!(str_at(&link["routes"][0], "gateway"), "10.20.0.1");
    assert!(link["routes"][0].get("destination").is_none(), "no destination = the default route");
    let vip = &docs_of_kind(&yaml, "Layer2VIPConfig")[0];
    assert_eq!(str_at(vip, "name"), "10.20.0.5");
    assert_eq!(str_at(vip, "link"), "net0");

    let resolver = &docs_of_kind(&yaml, "ResolverConfig")[0];
    let ns: Vec<_> = resolver["nameservers"].as_sequence().unwrap().iter().map(|x| str_at(x, "address")).collect();
    assert_eq!(ns, ["10.20.0.1", "1.1.1.1"]);
    let time = &docs_of_kind(&yaml, "TimeSyncConfig")[0];
    let ntp: Vec<_> = time["ntp"]["servers"].as_sequence().unwrap().iter().map(|x| x.as_str().unwrap()).collect();
    assert_eq!(ntp, ["10.20.0.1", "ntp.example.org"]);
    let mirrors: BTreeMap<String, Vec<String>> = docs_of_kind(&yaml, "RegistryMirrorConfig")
        .iter()
        .map(|d| {
            let eps = d["endpoints"].as_sequence().unwrap().iter().map(|e| str_at(e, "url").to_string()).collect();
            (str_at(d, "name").to_string(), eps)
        })
        .collect();
    assert_eq!(mirrors, c.registry_mirrors);
}

#[test]
fn ipv6_node_gets_an_ipv6_address_and_route() {
    let mut n = node(MachineRole::Worker, 1);
    n.address = "fd00:20::11".parse().unwrap();
    n.prefix = 64;
    n.gateway = "fd00:20::1".parse().unwrap();
    let yaml = machine_config(&cluster(), &n, secrets()).unwrap();
    let link = &docs_of_kind(&yaml, "LinkConfig")[0];
    assert_eq!(str_at(&link["addresses"][0], "address"), "fd00:20::11/64");
    assert_eq!(str_at(&link["routes"][0], "gateway"), "fd00:20::1");
}

#[test]
fn bad_settings_are_refused() {
    let s = secrets();
    let ok_node = node(MachineRole::Controlplane, 1);
    let refuse = |c: ClusterSettings, n: NodeSettings, why: &str| match machine_config(&c, &n, s) {
        Err(TalosError::Invalid(_)) => {}
        other => panic!("{why}: expected Invalid, got {:?}", other.map(|_| "a config")),
    };
    let mut c = cluster();
    c.talos_version = "v1.12.4".into();
    refuse(c, ok_node.clone(), "Talos 1.12");
    let mut c = cluster();
    c.talos_version = "v1.14.0".into();
    refuse(c, ok_node.clone(), "Talos 1.14");
    let mut c = cluster();
    c.kubernetes_version = "1.36.3".into();
    refuse(c, ok_node.clone(), "no v prefix");
    let mut c = cluster();
    c.kubernetes_version = "v1.30.2".into();
    refuse(c, ok_node.clone(), "Kubernetes too old for 1.13");
    let mut c = cluster();
    c.registry_mirrors.insert("quay.io".into(), vec!["10.0.0.1:5000".into()]);
    refuse(c, ok_node.clone(), "mirror without scheme");
    let mut n = ok_node.clone();
    n.mac = Some("52:54:00:aa:bb".into());
    refuse(cluster(), n, "short MAC");
    let mut n = ok_node.clone();
    n.gateway = "fd00::1".parse::<IpAddr>().unwrap();
    refuse(cluster(), n, "mixed families");
    let mut n = ok_node.clone();
    n.prefix = 33;
    refuse(cluster(), n, "prefix");
    let mut n = ok_node.clone();
    n.hostname = String::new();
    refuse(cluster(), n, "empty hostname");
    let mut n = ok_node.clone();
    n.hostname = "x".repeat(64);
    refuse(cluster(), n, "label too long");
    // A 1.13 patch release other than the default is fine.
    let mut c = cluster();
    c.talos_version = "v1.13.2".into();
    c.kubernetes_version = "v1.31.0".into();
    assert!(machine_config(&c, &ok_node, s).is_ok());
}

// ---------------------------------------------------------------------------------------------
// Timing
// ---------------------------------------------------------------------------------------------

#[test]
fn timing_secrets_and_53_configs() {
    let t = Instant::now();
    let s = SecretsBundle::generate().unwrap();
    let generate = t.elapsed();
    let c = cluster();
    let t = Instant::now();
    let mut total = 0;
    for i in 0..53u8 {
        let role = if i < 3 { MachineRole::Controlplane } else { MachineRole::Worker };
        total += machine_config(&c, &node(role, i), &s).unwrap().len();
    }
    let render = t.elapsed();
    let profile = if cfg!(debug_assertions) { "debug" } else { "release" };
    // TALOS_DUMP=1 prints one control-plane config (with --nocapture), for eyeballing.
    if std::env::var("TALOS_DUMP").is_ok() {
        println!("{}", machine_config(&c, &node(MachineRole::Controlplane, 1), &s).unwrap());
    }
    println!(
        "[{profile}] SecretsBundle::generate(): {generate:?}; 53 machine configs (3 cp + 50 workers, {total} bytes): {render:?}"
    );
}
