//! Admin credentials made offline from the cluster's CAs: the Kubernetes admin kubeconfig (like
//! Talos's `pkg/kubeconfig.Generate`) and the `os:admin` client certificate / talosconfig for apid.
//! Pure: no I/O.

use base64::Engine as _;
use rcgen::{CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyUsagePurpose};
use time::{Duration, OffsetDateTime};
use yaml_serde::{Mapping, Value};

use super::TalosError;
use super::secrets::{CertAndKey, KeyKind, load_key, new_key, random_serial, to_pem};

/// Client certificates live one year (Talos's admin kubeconfig and talosconfig default).
const CLIENT_VALIDITY: Duration = Duration::days(365);
/// Talos's `allowedTimeSkew`: NotBefore is backdated by this much.
const TIME_SKEW: Duration = Duration::seconds(10);

fn cert_err(e: impl std::fmt::Display) -> TalosError {
    TalosError::Certificate(e.to_string())
}

/// A client certificate signed by `ca` (whose key is of `ca_kind`), with a fresh key of `kind`.
fn client_cert(
    ca: &CertAndKey,
    ca_kind: KeyKind,
    kind: KeyKind,
    dn: DistinguishedName,
    key_usages: Vec<KeyUsagePurpose>,
) -> Result<CertAndKey, TalosError> {
    let ca_key = load_key(&ca.key, ca_kind)?;
    let issuer = Issuer::from_ca_cert_pem(&ca.crt, &ca_key).map_err(|e| cert_err(format!("CA certificate: {e}")))?;
    let (key, key_pem) = new_key(kind)?;
    let mut params = CertificateParams::default();
    params.distinguished_name = dn;
    params.is_ca = IsCa::NoCa;
    params.key_usages = key_usages;
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.serial_number = Some(random_serial());
    params.use_authority_key_identifier_extension = true;
    let now = OffsetDateTime::now_utc();
    params.not_before = now - TIME_SKEW;
    params.not_after = now + CLIENT_VALIDITY;
    let cert = params.signed_by(&key, &issuer).map_err(cert_err)?;
    Ok(CertAndKey { crt: to_pem(super::secrets::PEM_CERTIFICATE, cert.der()), key: key_pem })
}

fn map(pairs: Vec<(&str, Value)>) -> Value {
    let mut m = Mapping::new();
    for (k, v) in pairs {
        m.insert(Value::String(k.to_string()), v);
    }
    Value::Mapping(m)
}

fn s(v: impl Into<String>) -> Value {
    Value::String(v.into())
}

fn b64(text: &str) -> Value {
    s(base64::engine::general_purpose::STANDARD.encode(text.as_bytes()))
}

/// Admin kubeconfig generated offline from the Kubernetes CA (README: ECDSA P-256 client cert, CN=admin, O=system:masters, NotBefore now-10s, NotAfter +1y, KU DigitalSignature|KeyEncipherment, EKU ClientAuth; kubeconfig layout as the README says).
pub fn admin_kubeconfig(cluster_name: &str, endpoint: &str, k8s_ca: &CertAndKey) -> Result<String, TalosError> {
    if cluster_name.is_empty() {
        return Err(TalosError::Invalid("the cluster name is empty".into()));
    }
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "system:masters");
    dn.push(DnType::CommonName, "admin");
    let client = client_cert(
        k8s_ca,
        KeyKind::P256,
        KeyKind::P256,
        dn,
        vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment],
    )?;
    let user = format!("admin@{cluster_name}");
    let doc = map(vec![
        ("apiVersion", s("v1")),
        ("kind", s("Config")),
        (
            "clusters",
            Value::Sequence(vec![map(vec![
                ("name", s(cluster_name)),
                ("cluster", map(vec![("server", s(endpoint)), ("certificate-authority-data", b64(&k8s_ca.crt))])),
            ])]),
        ),
        (
            "users",
            Value::Sequence(vec![map(vec![
                ("name", s(&user)),
                (
                    "user",
                    map(vec![("client-certificate-data", b64(&client.crt)), ("client-key-data", b64(&client.key))]),
                ),
            ])]),
        ),
        (
            "contexts",
            Value::Sequence(vec![map(vec![
                ("name", s(&user)),
                ("context", map(vec![("cluster", s(cluster_name)), ("namespace", s("default")), ("user", s(&user))])),
            ])]),
        ),
        ("current-context", s(&user)),
    ]);
    yaml_serde::to_string(&doc).map_err(|e| TalosError::Render(e.to_string()))
}

/// The os:admin client certificate for apid: Ed25519, signed by the OS CA, subject O=os:admin and NO CN, KU DigitalSignature, EKU exactly [ClientAuth], valid 1 year.
pub fn os_admin_certificate(os_ca: &CertAndKey) -> Result<CertAndKey, TalosError> {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "os:admin");
    client_cert(os_ca, KeyKind::Ed25519, KeyKind::Ed25519, dn, vec![KeyUsagePurpose::DigitalSignature])
}

/// talosconfig YAML: `context: <name>`, `contexts.<name>.{endpoints, nodes, ca, crt, key}` (base64 of PEM), a fresh os:admin cert.
pub fn talosconfig(
    context: &str,
    endpoints: &[String],
    nodes: &[String],
    os_ca: &CertAndKey,
) -> Result<String, TalosError> {
    if context.is_empty() {
        return Err(TalosError::Invalid("the talosconfig context name is empty".into()));
    }
    let admin = os_admin_certificate(os_ca)?;
    let list = |items: &[String]| Value::Sequence(items.iter().map(|i| s(i.as_str())).collect());
    let ctx = map(vec![
        ("endpoints", list(endpoints)),
        ("nodes", list(nodes)),
        ("ca", b64(&os_ca.crt)),
        ("crt", b64(&admin.crt)),
        ("key", b64(&admin.key)),
    ]);
    let doc = map(vec![("context", s(context)), ("contexts", map(vec![(context, ctx)]))]);
    yaml_serde::to_string(&doc).map_err(|e| TalosError::Render(e.to_string()))
}
