//! Wipe certificates: the evidence of a finished wipe (asset, disks, method, verification, times,
//! workflow) signed with the appliance's Ed25519 certificate key, derived from the master key so
//! every appliance sharing it signs alike. The signature covers the exact bytes of `evidence`
//! (base64 in the certificate), so anyone can check it offline with the published public key:
//!
//! ```sh
//! curl -s …/api/v1/wipe-certificates/public-key > key.pem
//! jq -r .evidence certificate.json | base64 -d > evidence.json
//! jq -r .signature certificate.json | base64 -d > evidence.sig
//! openssl pkeyutl -verify -pubin -inkey key.pem -rawin -in evidence.json -sigfile evidence.sig
//! ```

use aws_lc_rs::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::secret::hmac_sha256;

/// Purpose label of the seed: a new label is a new key.
const SEED_LABEL: &[u8] = b"ironbay wipe-certificate ed25519 v1";

/// A signed wipe certificate as served.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WipeCertificate {
    /// `ironbay-wipe-certificate-v1`.
    pub format: String,
    pub algorithm: String,
    /// Base64 of the evidence JSON exactly as signed.
    pub evidence: String,
    /// Base64 Ed25519 signature over the decoded `evidence` bytes.
    pub signature: String,
    /// SHA-256 (hex) of the raw 32-byte public key, to pick the right key.
    pub key_id: String,
    /// The evidence again, decoded, for reading (the signed bytes are `evidence`).
    #[schema(value_type = Object)]
    pub content: serde_json::Value,
}

pub struct CertificateKey {
    key: Ed25519KeyPair,
}

impl CertificateKey {
    pub fn new(token_signing_key: &[u8; 32]) -> CertificateKey {
        let seed = hmac_sha256(token_signing_key, SEED_LABEL);
        // Any 32 bytes are a valid Ed25519 seed.
        let key = Ed25519KeyPair::from_seed_unchecked(&seed).expect("a 32-byte seed is a valid Ed25519 key");
        CertificateKey { key }
    }

    fn raw_public(&self) -> [u8; 32] {
        let mut raw = [0u8; 32];
        raw.copy_from_slice(self.key.public_key().as_ref());
        raw
    }

    pub fn key_id(&self) -> String {
        hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &self.raw_public()))
    }

    /// The public key as a PEM SubjectPublicKeyInfo (what `openssl pkeyutl -pubin` reads).
    pub fn public_pem(&self) -> String {
        ironbay_wire::keys::ed25519_spki_pem(&self.raw_public())
    }

    pub fn sign(&self, evidence: &serde_json::Value) -> WipeCertificate {
        let bytes = serde_json::to_vec_pretty(evidence).unwrap_or_default();
        let sig = self.key.sign(&bytes);
        WipeCertificate {
            format: "ironbay-wipe-certificate-v1".into(),
            algorithm: "ed25519".into(),
            evidence: B64.encode(&bytes),
            signature: B64.encode(sig.as_ref()),
            key_id: self.key_id(),
            content: evidence.clone(),
        }
    }

    /// Whether `cert` was signed by this key over its own evidence bytes.
    pub fn verify(&self, cert: &WipeCertificate) -> bool {
        let (Ok(bytes), Ok(sig)) = (B64.decode(&cert.evidence), B64.decode(&cert.signature)) else { return false };
        UnparsedPublicKey::new(&ED25519, &self.raw_public()).verify(&bytes, &sig).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_certificate_verifies_and_a_changed_one_does_not() {
        let key = CertificateKey::new(&[7u8; 32]);
        let cert = key.sign(&serde_json::json!({"asset": {"id": "ast_1"}, "method": "zero"}));
        assert!(key.verify(&cert));
        let mut forged = cert.clone();
        forged.evidence = B64.encode(br#"{"asset":{"id":"ast_2"},"method":"zero"}"#);
        assert!(!key.verify(&forged));
        assert!(key.public_pem().starts_with("-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA"));
        assert_ne!(CertificateKey::new(&[8u8; 32]).key_id(), key.key_id());
    }
}
