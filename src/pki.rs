//! The device CA's cryptography, with no I/O: parsing and checking the public keys and CSRs devices
//! present, verifying their proofs of possession, issuing their certificates and signing the CRL.
//! The CA key and certificate live in the store (sealed); `app::devices` loads them into `DeviceCa`.

use aws_lc_rs::signature::{self as sig, ParsedPublicKey, UnparsedPublicKey};
use base64::Engine as _;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose, RevocationReason, RevokedCertParams,
    SanType, SerialNumber, SubjectPublicKeyInfo,
};
use time::OffsetDateTime;
use x509_parser::prelude::FromDer;

/// The key types a device may hold. Anything else (RSA, other curves, Ed448) is refused by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    Ed25519,
    EcdsaP256,
}

impl KeyType {
    pub const fn as_str(self) -> &'static str {
        match self {
            KeyType::Ed25519 => "ed25519",
            KeyType::EcdsaP256 => "ecdsa-p256",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ed25519" => Some(KeyType::Ed25519),
            "ecdsa-p256" => Some(KeyType::EcdsaP256),
            _ => None,
        }
    }
}

pub const SUPPORTED_KEY_TYPES: [&str; 2] = ["ed25519", "ecdsa-p256"];

/// Why a key or CSR was refused. `Unsupported` names the key type found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("{0}")]
    Malformed(String),
    #[error("unsupported key type {0}: use an Ed25519 or ECDSA P-256 key")]
    Unsupported(String),
}

/// A device's public key, checked: a supported type and a valid point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceKey {
    kind: KeyType,
    /// The DER SubjectPublicKeyInfo.
    spki: Vec<u8>,
    /// The key bytes inside it (Ed25519: 32 bytes; P-256: the SEC1 point).
    raw: Vec<u8>,
}

const OID_ED25519: &str = "1.3.101.112";
const OID_ED448: &str = "1.3.101.113";
const OID_EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const OID_P256: &str = "1.2.840.10045.3.1.7";
const OID_P384: &str = "1.3.132.0.34";
const OID_P521: &str = "1.3.132.0.35";
const OID_RSA: &str = "1.2.840.113549.1.1.1";
const OID_RSA_PSS: &str = "1.2.840.113549.1.1.10";

impl DeviceKey {
    /// A `-----BEGIN PUBLIC KEY-----` PEM (SubjectPublicKeyInfo).
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let block = pem_block(pem, &["PUBLIC KEY"]).map_err(|e| KeyError::Malformed(format!("public_key: {e}")))?;
        Self::from_spki_der(&block)
    }

    pub fn from_spki_der(der: &[u8]) -> Result<Self, KeyError> {
        let (rest, spki) = x509_parser::x509::SubjectPublicKeyInfo::from_der(der)
            .map_err(|_| KeyError::Malformed("not a DER SubjectPublicKeyInfo".into()))?;
        if !rest.is_empty() {
            return Err(KeyError::Malformed("trailing bytes after the SubjectPublicKeyInfo".into()));
        }
        let alg = spki.algorithm.algorithm.to_id_string();
        let curve = spki.algorithm.parameters.as_ref().and_then(|p| p.as_oid().ok()).map(|o| o.to_id_string());
        let kind = match (alg.as_str(), curve.as_deref()) {
            (OID_ED25519, _) => KeyType::Ed25519,
            (OID_EC_PUBLIC_KEY, Some(OID_P256)) => KeyType::EcdsaP256,
            (OID_EC_PUBLIC_KEY, Some(OID_P384)) => return Err(KeyError::Unsupported("ecdsa-p384".into())),
            (OID_EC_PUBLIC_KEY, Some(OID_P521)) => return Err(KeyError::Unsupported("ecdsa-p521".into())),
            (OID_EC_PUBLIC_KEY, Some(other)) => return Err(KeyError::Unsupported(format!("ecdsa (curve {other})"))),
            (OID_EC_PUBLIC_KEY, None) => return Err(KeyError::Malformed("EC key without a named curve".into())),
            (OID_RSA | OID_RSA_PSS, _) => return Err(KeyError::Unsupported("rsa".into())),
            (OID_ED448, _) => return Err(KeyError::Unsupported("ed448".into())),
            (other, _) => return Err(KeyError::Unsupported(format!("with algorithm {other}"))),
        };
        let raw = spki.subject_public_key.data.to_vec();
        let valid = match kind {
            KeyType::Ed25519 => raw.len() == 32 && ParsedPublicKey::new(&sig::ED25519, &raw).is_ok(),
            KeyType::EcdsaP256 => ParsedPublicKey::new(&sig::ECDSA_P256_SHA256_ASN1, &raw).is_ok(),
        };
        if !valid {
            return Err(KeyError::Malformed(format!("the {} key is not a valid point", kind.as_str())));
        }
        Ok(DeviceKey { kind, spki: der.to_vec(), raw })
    }

    /// A PKCS#10 CSR (PEM): its self-signature must verify (proof that the sender holds the key).
    pub fn from_csr_pem(pem: &str) -> Result<Self, KeyError> {
        let der = pem_block(pem, &["CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"])
            .map_err(|e| KeyError::Malformed(format!("csr: {e}")))?;
        let (rest, csr) = x509_parser::certification_request::X509CertificationRequest::from_der(&der)
            .map_err(|_| KeyError::Malformed("csr: not a DER PKCS#10 certification request".into()))?;
        if !rest.is_empty() {
            return Err(KeyError::Malformed("csr: trailing bytes after the request".into()));
        }
        // The key type first: an RSA CSR should say "unsupported", not fail on its signature.
        let key = Self::from_spki_der(csr.certification_request_info.subject_pki.raw)?;
        csr.verify_signature()
            .map_err(|_| KeyError::Malformed("csr: its signature does not verify with its own key".into()))?;
        Ok(key)
    }

    pub fn kind(&self) -> KeyType {
        self.kind
    }

    pub fn spki_der(&self) -> &[u8] {
        &self.spki
    }

    /// The key as `-----BEGIN PUBLIC KEY-----` PEM.
    pub fn pem(&self) -> String {
        to_pem("PUBLIC KEY", &self.spki)
    }

    /// Does `signature` over `message` verify with this key? ECDSA signatures may be DER (what
    /// `openssl dgst -sign` writes) or the fixed 64-byte r‖s form.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        let alg: &'static dyn sig::VerificationAlgorithm = match (self.kind, signature.len()) {
            (KeyType::Ed25519, _) => &sig::ED25519,
            (KeyType::EcdsaP256, 64) => &sig::ECDSA_P256_SHA256_FIXED,
            (KeyType::EcdsaP256, _) => &sig::ECDSA_P256_SHA256_ASN1,
        };
        UnparsedPublicKey::new(alg, &self.raw).verify(message, signature).is_ok()
    }
}

/// The DER inside the first PEM block of `text`, which must carry one of `labels`.
fn pem_block(text: &str, labels: &[&str]) -> Result<Vec<u8>, String> {
    let text = text.trim();
    let begin = text.find("-----BEGIN ").ok_or("not PEM (no -----BEGIN line)")?;
    let after = &text[begin + 11..];
    let label_end = after.find("-----").ok_or("malformed PEM header")?;
    let label = &after[..label_end];
    if !labels.contains(&label) {
        return Err(format!("expected a PEM `{}` block, found `{label}`", labels[0]));
    }
    let body_start = begin + 11 + label_end + 5;
    let end_marker = format!("-----END {label}-----");
    let body_end = text[body_start..].find(&end_marker).ok_or("PEM block without its END line")? + body_start;
    let b64: String = text[body_start..body_end].chars().filter(|c| !c.is_whitespace()).collect();
    let der = base64::engine::general_purpose::STANDARD.decode(b64).map_err(|_| "PEM body is not base64")?;
    if der.is_empty() {
        return Err("empty PEM block".into());
    }
    Ok(der)
}

pub fn to_pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// A random positive certificate serial of 16 bytes, never starting with a zero byte, so its hex
/// form (as `openssl` prints it) is always 32 digits.
pub fn random_serial() -> [u8; 16] {
    let mut s = [0u8; 16];
    rand::fill(&mut s);
    s[0] = (s[0] & 0x7f) | 0x40;
    s
}

/// Serial bytes as uppercase hex, the way `openssl x509 -serial` and `openssl crl -text` show it.
pub fn serial_hex(serial: &[u8]) -> String {
    hex::encode_upper(serial)
}

#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("certificate authority: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error("certificate authority: {0}")]
    Invalid(String),
}

/// What goes into a device certificate.
pub struct DeviceCertSpec<'a> {
    pub device_id: &'a str,
    pub name: &'a str,
    pub serial: &'a [u8],
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

/// The URI SAN that ties a certificate to its device record.
pub fn device_uri(device_id: &str) -> String {
    format!("urn:ironbay:device:{device_id}")
}

/// The appliance's device CA, ready to sign.
pub struct DeviceCa {
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
    cert_der: Vec<u8>,
}

impl DeviceCa {
    /// A new CA: an ECDSA P-256 key (chosen over Ed25519 because every TLS stack a device may run
    /// verifies P-256, while Ed25519 certificate support is still missing from some) and a
    /// self-signed certificate valid for 20 years. Returns the CA and its key as PKCS#8 PEM.
    pub fn generate(now: OffsetDateTime) -> Result<(Self, String), CaError> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "ironbay");
        // A random suffix: two appliances (or a re-created CA) never issue under the same name.
        dn.push(DnType::CommonName, format!("ironbay device CA {}", crate::model::ids::random_tail(8)));
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        params.not_before = now - time::Duration::hours(1);
        params.not_after = now + time::Duration::days(365 * 20);
        params.serial_number = Some(SerialNumber::from_slice(&random_serial()));
        params.key_identifier_method = KeyIdMethod::Sha256;
        let cert = params.self_signed(&key)?;
        let key_pem = key.serialize_pem();
        let ca = Self::from_pem(&cert.pem(), &key_pem)?;
        Ok((ca, key_pem))
    }

    /// The CA from its stored certificate and (unsealed) PKCS#8 key.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, CaError> {
        let key = KeyPair::from_pem(key_pem)?;
        let cert_der = pem_block(cert_pem, &["CERTIFICATE"]).map_err(CaError::Invalid)?;
        let issuer = Issuer::from_ca_cert_der(&cert_der.clone().into(), key)?;
        Ok(DeviceCa { issuer, cert_pem: cert_pem.to_string(), cert_der })
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// A client certificate for a device: CN = its name, a URI SAN with its id, clientAuth only.
    pub fn issue(&self, spec: &DeviceCertSpec<'_>, key: &DeviceKey) -> Result<String, CaError> {
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, spec.name);
        dn.push(DnType::OrganizationalUnitName, "ironbay devices");
        params.distinguished_name = dn;
        let uri = device_uri(spec.device_id).try_into().map_err(|e: rcgen::Error| CaError::Rcgen(e))?;
        params.subject_alt_names = vec![SanType::URI(uri)];
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.not_before = spec.not_before;
        params.not_after = spec.not_after;
        params.serial_number = Some(SerialNumber::from_slice(spec.serial));
        params.use_authority_key_identifier_extension = true;
        params.key_identifier_method = KeyIdMethod::Sha256;
        let spki = SubjectPublicKeyInfo::from_der(key.spki_der())?;
        Ok(params.signed_by(&spki, &self.issuer)?.pem())
    }

    /// The CRL listing `revoked` (serial, revocation time), as DER. `number` must grow with every
    /// new CRL; callers pass the generation time in milliseconds.
    pub fn crl(
        &self,
        revoked: &[(Vec<u8>, OffsetDateTime)],
        now: OffsetDateTime,
        next_update: OffsetDateTime,
        number: u64,
    ) -> Result<Vec<u8>, CaError> {
        let params = CertificateRevocationListParams {
            this_update: now,
            next_update,
            crl_number: SerialNumber::from(number),
            issuing_distribution_point: None,
            revoked_certs: revoked
                .iter()
                .map(|(serial, at)| RevokedCertParams {
                    serial_number: SerialNumber::from_slice(serial),
                    revocation_time: *at,
                    reason_code: Some(RevocationReason::CessationOfOperation),
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        };
        Ok(params.signed_by(&self.issuer)?.der().to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::SigningKey;

    fn spki_pem(k: &KeyPair) -> String {
        k.public_key_pem()
    }

    #[test]
    fn supported_keys_parse_and_verify_their_signatures() {
        for alg in [&rcgen::PKCS_ED25519, &rcgen::PKCS_ECDSA_P256_SHA256] {
            let kp = KeyPair::generate_for(alg).unwrap();
            let key = DeviceKey::from_pem(&spki_pem(&kp)).unwrap();
            let sig = kp.sign(b"hello").unwrap();
            assert!(key.verify(b"hello", &sig), "{alg:?}");
            assert!(!key.verify(b"hellO", &sig), "{alg:?}");
            assert_eq!(DeviceKey::from_pem(&key.pem()).unwrap(), key);
        }
    }

    #[test]
    fn other_key_types_are_named() {
        let p384 = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
        assert_eq!(DeviceKey::from_pem(&spki_pem(&p384)), Err(KeyError::Unsupported("ecdsa-p384".into())));
        assert!(matches!(DeviceKey::from_pem("hello"), Err(KeyError::Malformed(_))));
        assert!(matches!(
            DeviceKey::from_pem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"),
            Err(KeyError::Malformed(_))
        ));
    }

    #[test]
    fn csrs_prove_their_key() {
        let kp = KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        let csr = CertificateParams::new(vec!["x".to_string()]).unwrap().serialize_request(&kp).unwrap();
        let key = DeviceKey::from_csr_pem(&csr.pem().unwrap()).unwrap();
        assert_eq!(key, DeviceKey::from_pem(&spki_pem(&kp)).unwrap());
        // A flipped bit in the signature: the CSR no longer proves anything.
        let mut der = csr.der().to_vec();
        let last = der.len() - 1;
        der[last] ^= 1;
        assert!(DeviceKey::from_csr_pem(&to_pem("CERTIFICATE REQUEST", &der)).is_err());
    }

    #[test]
    fn the_ca_issues_and_revokes() {
        let now = OffsetDateTime::now_utc();
        let (ca, key_pem) = DeviceCa::generate(now).unwrap();
        let again = DeviceCa::from_pem(ca.cert_pem(), &key_pem).unwrap();
        let kp = KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        let key = DeviceKey::from_pem(&spki_pem(&kp)).unwrap();
        let serial = random_serial();
        let spec = DeviceCertSpec {
            device_id: "dev_0123456789abcdef",
            name: "rack1-node1",
            serial: &serial,
            not_before: now,
            not_after: now + time::Duration::hours(24),
        };
        let pem = again.issue(&spec, &key).unwrap();
        let der = pem_block(&pem, &["CERTIFICATE"]).unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
        assert_eq!(cert.raw_serial(), &serial);
        assert_eq!(hex::encode_upper(serial).len(), 32);
        let crl = ca.crl(&[(serial.to_vec(), now)], now, now + time::Duration::hours(1), 1).unwrap();
        let (_, crl) = x509_parser::revocation_list::CertificateRevocationList::from_der(&crl).unwrap();
        assert_eq!(crl.iter_revoked_certificates().next().unwrap().raw_serial(), &serial);
    }
}
