//! Ed25519 public keys as SubjectPublicKeyInfo: how the agent enrolls its key, how the appliance
//! compares it with the SSH host key it presents, and how wipe certificates publish theirs (what
//! `openssl pkey -pubin` reads).

use base64::Engine as _;

/// SEQUENCE { SEQUENCE { OID 1.3.101.112 (Ed25519) } BIT STRING (32 bytes) }, before the key.
const ED25519_SPKI_PREFIX: [u8; 12] = [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];

pub fn ed25519_spki_der(raw: &[u8; 32]) -> Vec<u8> {
    let mut der = ED25519_SPKI_PREFIX.to_vec();
    der.extend_from_slice(raw);
    der
}

/// `-----BEGIN PUBLIC KEY-----` PEM of the key.
pub fn ed25519_spki_pem(raw: &[u8; 32]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(ed25519_spki_der(raw));
    format!("-----BEGIN PUBLIC KEY-----\n{b64}\n-----END PUBLIC KEY-----\n")
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_spki_of_a_key_is_44_bytes_with_its_key_last() {
        let der = super::ed25519_spki_der(&[7u8; 32]);
        assert_eq!(der.len(), 44);
        assert_eq!(&der[12..], &[7u8; 32]);
        assert!(super::ed25519_spki_pem(&[0u8; 32]).starts_with("-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA"));
    }
}
