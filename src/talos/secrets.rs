//! The cluster secrets bundle: what `talosctl gen secrets` makes (see the README of the Talos
//! reference): the OS CA (Ed25519), the Kubernetes, aggregator and etcd CAs (ECDSA P-256), the
//! service-account key (RSA-4096), the bootstrap and trustd tokens, the cluster id/secret and the
//! secretbox encryption secret. Pure: no I/O.

use std::fmt;

use base64::Engine as _;
use rand::RngExt as _;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SerialNumber, SignatureAlgorithm,
};
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use super::TalosError;

/// A certificate and its private key, both PEM text. `key` is `""` when the key is absent (what
/// workers receive for the CAs).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertAndKey {
    pub crt: String,
    pub key: String,
}

impl fmt::Debug for CertAndKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertAndKey")
            .field("crt", &self.crt)
            .field("key", &if self.key.is_empty() { "" } else { "<redacted>" })
            .finish()
    }
}

impl CertAndKey {
    /// The same certificate without its key (what a worker's config carries).
    pub fn without_key(&self) -> CertAndKey {
        CertAndKey { crt: self.crt.clone(), key: String::new() }
    }
}

/// Everything secret a Talos cluster needs; generated once per cluster and stored sealed.
#[derive(Clone, Serialize, Deserialize)]
pub struct SecretsBundle {
    /// `cluster.id`: URL-safe base64 (padded) of 32 random bytes.
    pub cluster_id: String,
    /// `cluster.secret`: standard base64 of 32 random bytes.
    pub cluster_secret: String,
    /// `cluster.token`: `[0-9a-z]{6}\.[0-9a-z]{16}`.
    pub bootstrap_token: String,
    /// `cluster.secretboxEncryptionSecret`: standard base64 of 32 random bytes.
    pub secretbox_encryption_secret: String,
    /// `machine.token`: `[0-9a-z]{6}\.[0-9a-z]{16}`.
    pub trustd_token: String,
    /// `machine.ca`: Ed25519, O=talos; key PEM label `ED25519 PRIVATE KEY`, PKCS#8 body.
    pub os_ca: CertAndKey,
    /// `cluster.ca`: ECDSA P-256, O=kubernetes; key `EC PRIVATE KEY` (SEC1).
    pub k8s_ca: CertAndKey,
    /// `cluster.aggregatorCA`: ECDSA P-256, empty subject.
    pub k8s_aggregator_ca: CertAndKey,
    /// `cluster.serviceAccount.key`: RSA-4096, `RSA PRIVATE KEY` (PKCS#1).
    pub k8s_service_account_key: String,
    /// `cluster.etcd.ca`: ECDSA P-256, O=etcd.
    pub etcd_ca: CertAndKey,
}

impl fmt::Debug for SecretsBundle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const R: &str = "<redacted>";
        f.debug_struct("SecretsBundle")
            .field("cluster_id", &self.cluster_id)
            .field("cluster_secret", &R)
            .field("bootstrap_token", &R)
            .field("secretbox_encryption_secret", &R)
            .field("trustd_token", &R)
            .field("os_ca", &self.os_ca)
            .field("k8s_ca", &self.k8s_ca)
            .field("k8s_aggregator_ca", &self.k8s_aggregator_ca)
            .field("k8s_service_account_key", &R)
            .field("etcd_ca", &self.etcd_ca)
            .finish()
    }
}

/// Validity of the CAs: Go's `x509.NewSelfSignedCertificateAuthority` default (87600h).
const CA_VALIDITY: Duration = Duration::hours(87_600);
/// NotBefore is backdated a little so that nodes whose clock lags slightly accept the CAs.
const BACKDATE: Duration = Duration::seconds(10);

pub(crate) const PEM_CERTIFICATE: &str = "CERTIFICATE";
pub(crate) const PEM_ED25519_KEY: &str = "ED25519 PRIVATE KEY";
pub(crate) const PEM_EC_KEY: &str = "EC PRIVATE KEY";
pub(crate) const PEM_RSA_KEY: &str = "RSA PRIVATE KEY";

/// The OID of the NIST P-256 curve (prime256v1).
const OID_P256: sec1::der::asn1::ObjectIdentifier =
    sec1::der::asn1::ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");

impl SecretsBundle {
    /// A fresh bundle. Takes a fraction of a second (the RSA-4096 key dominates).
    pub fn generate() -> Result<Self, TalosError> {
        let os_ca = new_ca(KeyKind::Ed25519, Some("talos"))?;
        let k8s_ca = new_ca(KeyKind::P256, Some("kubernetes"))?;
        let k8s_aggregator_ca = new_ca(KeyKind::P256, None)?;
        let etcd_ca = new_ca(KeyKind::P256, Some("etcd"))?;
        let k8s_service_account_key = rsa4096_pkcs1_pem()?;
        let std_b64 = base64::engine::general_purpose::STANDARD;
        Ok(SecretsBundle {
            cluster_id: base64::engine::general_purpose::URL_SAFE.encode(random_32()),
            cluster_secret: std_b64.encode(random_32()),
            bootstrap_token: token(),
            secretbox_encryption_secret: std_b64.encode(random_32()),
            trustd_token: token(),
            os_ca,
            k8s_ca,
            k8s_aggregator_ca,
            k8s_service_account_key,
            etcd_ca,
        })
    }
}

fn random_32() -> [u8; 32] {
    let mut b = [0u8; 32];
    rand::fill(&mut b);
    b
}

/// A kubeadm-style token: `[0-9a-z]{6}.[0-9a-z]{16}` (Talos's `GenerateToken`).
fn token() -> String {
    const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut rng = rand::rng();
    let mut part =
        |n: usize| -> String { (0..n).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect() };
    let a = part(6);
    let b = part(16);
    format!("{a}.{b}")
}

/// The key types the Talos artefacts use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyKind {
    Ed25519,
    P256,
}

impl KeyKind {
    fn alg(self) -> &'static SignatureAlgorithm {
        match self {
            KeyKind::Ed25519 => &rcgen::PKCS_ED25519,
            KeyKind::P256 => &rcgen::PKCS_ECDSA_P256_SHA256,
        }
    }
}

fn cert_err(e: impl fmt::Display) -> TalosError {
    TalosError::Certificate(e.to_string())
}

/// PEM text with LF line endings and 64-column lines (what Go's `pem.Encode` writes).
pub(crate) fn to_pem(label: &str, der: &[u8]) -> String {
    let p = pem::Pem::new(label, der.to_vec());
    pem::encode_config(&p, pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF))
}

/// A new key pair, and its private key as PEM in the form Talos writes: Ed25519 as PKCS#8 v1 under
/// `ED25519 PRIVATE KEY`, P-256 as SEC1 `EC PRIVATE KEY` with the named-curve parameters and the
/// public key (Go's `x509.ParseECPrivateKey` needs the parameters).
pub(crate) fn new_key(kind: KeyKind) -> Result<(KeyPair, String), TalosError> {
    match kind {
        KeyKind::Ed25519 => {
            let rng = aws_lc_rs::rand::SystemRandom::new();
            // PKCS#8 v1 (no public key inside), byte for byte what Go's MarshalPKCS8PrivateKey makes.
            let doc = aws_lc_rs::signature::Ed25519KeyPair::generate_pkcs8v1(&rng).map_err(cert_err)?;
            let der = doc.as_ref().to_vec();
            let kp = KeyPair::from_pkcs8_der_and_sign_algo(&der.as_slice().into(), &rcgen::PKCS_ED25519)
                .map_err(cert_err)?;
            Ok((kp, to_pem(PEM_ED25519_KEY, &der)))
        }
        KeyKind::P256 => {
            let kp = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(cert_err)?;
            let sec1 = p256_pkcs8_to_sec1(kp.serialized_der(), kp.public_key_raw())?;
            Ok((kp, to_pem(PEM_EC_KEY, &sec1)))
        }
    }
}

/// The SEC1 `ECPrivateKey` inside a P-256 PKCS#8 document, re-encoded with the curve OID and the
/// public point.
fn p256_pkcs8_to_sec1(pkcs8_der: &[u8], public_point: &[u8]) -> Result<Vec<u8>, TalosError> {
    use sec1::der::{Decode as _, Encode as _};
    let info = pkcs8::PrivateKeyInfoRef::from_der(pkcs8_der).map_err(cert_err)?;
    let inner = sec1::EcPrivateKey::from_der(info.private_key.as_bytes()).map_err(cert_err)?;
    let full = sec1::EcPrivateKey {
        private_key: inner.private_key,
        parameters: Some(sec1::EcParameters::NamedCurve(OID_P256)),
        public_key: Some(inner.public_key.unwrap_or(public_point)),
    };
    full.to_der().map_err(cert_err)
}

/// An RSA-4096 private key, PKCS#1 `RSA PRIVATE KEY` PEM.
fn rsa4096_pkcs1_pem() -> Result<String, TalosError> {
    use aws_lc_rs::encoding::AsDer as _;
    use sec1::der::Decode as _;
    let kp = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa4096).map_err(cert_err)?;
    let pkcs8 = kp.as_der().map_err(cert_err)?;
    let info = pkcs8::PrivateKeyInfoRef::from_der(pkcs8.as_ref()).map_err(cert_err)?;
    // In PKCS#8 the RSA privateKey OCTET STRING is exactly the PKCS#1 RSAPrivateKey.
    Ok(to_pem(PEM_RSA_KEY, info.private_key.as_bytes()))
}

/// A random positive 128-bit serial (Go: `rand.Int(rand.Reader, 2^128)`).
pub(crate) fn random_serial() -> SerialNumber {
    let mut b = [0u8; 16];
    rand::fill(&mut b);
    b[0] &= 0x7f;
    if b[0] == 0 {
        b[0] = 0x01;
    }
    SerialNumber::from_slice(&b)
}

/// A self-signed CA like siderolabs/crypto's `NewSelfSignedCertificateAuthority`: IsCA, KeyUsage
/// CertSign|DigitalSignature (critical), EKU ServerAuth+ClientAuth, random serial, 10 years.
fn new_ca(kind: KeyKind, organization: Option<&str>) -> Result<CertAndKey, TalosError> {
    let (kp, key_pem) = new_key(kind)?;
    debug_assert!(kp.is_compatible(kind.alg()));
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    if let Some(o) = organization {
        dn.push(DnType::OrganizationName, o);
    }
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyCertSign];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
    params.serial_number = Some(random_serial());
    let now = OffsetDateTime::now_utc();
    params.not_before = now - BACKDATE;
    params.not_after = now + CA_VALIDITY;
    let cert = params.self_signed(&kp).map_err(cert_err)?;
    Ok(CertAndKey { crt: to_pem(PEM_CERTIFICATE, cert.der()), key: key_pem })
}

/// Load a CA's key pair from its PEM (any of the labels above; the DER decides the format).
pub(crate) fn load_key(key_pem: &str, kind: KeyKind) -> Result<KeyPair, TalosError> {
    if key_pem.is_empty() {
        return Err(TalosError::Invalid("the CA has no private key".into()));
    }
    KeyPair::from_pem_and_sign_algo(key_pem, kind.alg()).map_err(|e| TalosError::Certificate(format!("CA key: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_have_the_kubeadm_shape() {
        for _ in 0..50 {
            let t = token();
            let (a, b) = t.split_once('.').unwrap();
            assert_eq!(a.len(), 6);
            assert_eq!(b.len(), 16);
            assert!(a.bytes().chain(b.bytes()).all(|c| c.is_ascii_digit() || c.is_ascii_lowercase()), "{t}");
        }
    }

    #[test]
    fn p256_key_is_sec1_with_named_curve() {
        let (_kp, pem_text) = new_key(KeyKind::P256).unwrap();
        let p = pem::parse(&pem_text).unwrap();
        assert_eq!(p.tag(), PEM_EC_KEY);
        use sec1::der::Decode as _;
        let k = sec1::EcPrivateKey::from_der(p.contents()).unwrap();
        assert_eq!(k.parameters, Some(sec1::EcParameters::NamedCurve(OID_P256)));
        assert!(k.public_key.is_some());
        // And it loads back for signing.
        load_key(&pem_text, KeyKind::P256).unwrap();
    }

    #[test]
    fn ed25519_key_is_pkcs8_v1_under_the_talos_label() {
        let (_kp, pem_text) = new_key(KeyKind::Ed25519).unwrap();
        let p = pem::parse(&pem_text).unwrap();
        assert_eq!(p.tag(), PEM_ED25519_KEY);
        // Go's MarshalPKCS8PrivateKey for Ed25519: 48 bytes, version 0.
        assert_eq!(p.contents().len(), 48);
        assert!(pem_text.starts_with("-----BEGIN ED25519 PRIVATE KEY-----\n"));
        load_key(&pem_text, KeyKind::Ed25519).unwrap();
    }

    #[test]
    fn debug_redacts_secrets() {
        let ck = CertAndKey { crt: "CRT".into(), key: "SECRET-KEY".into() };
        let s = format!("{ck:?}");
        assert!(!s.contains("SECRET-KEY"), "{s}");
        assert!(s.contains("CRT"));
    }
}
