//! Secrets at rest and in memory. The master key (32 random bytes in the data dir, mode 0600) is
//! the root: every other key (sealing, token signing, API-key hashing) is derived from it by
//! HMAC-SHA256 with a purpose label, so one file backs everything and no two uses share a key.

use std::fmt;
use std::io::Write;
use std::path::Path;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac as _};
use sha2::Sha256;

const NONCE_LEN: usize = 24;
/// Version byte in front of every sealed value, so the format can change without guessing.
const SEAL_V1: u8 = 1;

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("master key file {path}: {source}")]
    KeyFile { path: String, source: std::io::Error },
    #[error("master key file {path} must hold exactly 32 bytes, found {len}")]
    KeyLength { path: String, len: usize },
    #[error("sealed value is corrupt or was sealed under another key or for another record")]
    Unseal,
    #[error("sealing failed")]
    Seal,
}

/// A value that must never be printed: `Debug` and `Display` show `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    pub fn new(value: T) -> Self {
        Secret(value)
    }
    /// The one deliberate way to read the value.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl<'de, T: serde::Deserialize<'de>> serde::Deserialize<'de> for Secret<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        T::deserialize(d).map(Secret)
    }
}

type HmacSha256 = Hmac<Sha256>;

/// HMAC-SHA256 of `data` under `key`.
pub fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC takes keys of any length: this cannot fail.
    let mut mac = <HmacSha256 as hmac::KeyInit>::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// The appliance's root key and the keys derived from it.
pub struct MasterKey {
    seal: XChaCha20Poly1305,
    token_signing: [u8; 32],
    api_key_hashing: [u8; 32],
}

impl MasterKey {
    /// Reads the key file, creating it (0600, 32 bytes from the OS CSPRNG) when absent.
    /// Returns the key and whether it was created now.
    pub fn load_or_create(path: &Path) -> Result<(Self, bool), CryptoError> {
        let display = path.display().to_string();
        let io = |source| CryptoError::KeyFile { path: display.clone(), source };
        match std::fs::read(path) {
            Ok(bytes) => {
                let key: [u8; 32] = bytes
                    .as_slice()
                    .try_into()
                    .map_err(|_| CryptoError::KeyLength { path: display.clone(), len: bytes.len() })?;
                Ok((Self::from_bytes(&key), false))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = [0u8; 32];
                rand::fill(&mut key);
                let mut file = create_private_file(path).map_err(io)?;
                file.write_all(&key).and_then(|_| file.sync_all()).map_err(io)?;
                Ok((Self::from_bytes(&key), true))
            }
            Err(e) => Err(io(e)),
        }
    }

    pub fn from_bytes(key: &[u8; 32]) -> Self {
        let derive = |label: &str| hmac_sha256(key, label.as_bytes());
        let seal_key = derive("ironbay seal v1");
        MasterKey {
            seal: XChaCha20Poly1305::new_from_slice(&seal_key).expect("32-byte key"),
            token_signing: derive("ironbay access-token v1"),
            api_key_hashing: derive("ironbay api-key hash v1"),
        }
    }

    /// Encrypts `plaintext`, binding it to `context` (e.g. `"assets.bmc_password:ast_…"`), so a
    /// sealed value copied onto another row or column does not open.
    pub fn seal(&self, context: &str, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::fill(&mut nonce);
        let ct = self
            .seal
            .encrypt(&XNonce::from(nonce), Payload { msg: plaintext, aad: context.as_bytes() })
            .map_err(|_| CryptoError::Seal)?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ct.len());
        out.push(SEAL_V1);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    pub fn unseal(&self, context: &str, sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let (&version, rest) = sealed.split_first().ok_or(CryptoError::Unseal)?;
        if version != SEAL_V1 || rest.len() < NONCE_LEN {
            return Err(CryptoError::Unseal);
        }
        let (nonce, ct) = rest.split_at(NONCE_LEN);
        let nonce = XNonce::try_from(nonce).map_err(|_| CryptoError::Unseal)?;
        self.seal.decrypt(&nonce, Payload { msg: ct, aad: context.as_bytes() }).map_err(|_| CryptoError::Unseal)
    }

    pub fn token_signing_key(&self) -> &[u8; 32] {
        &self.token_signing
    }

    /// Keyed hash for high-entropy secrets (API keys, session and refresh tokens): fast enough to
    /// run on every request, useless to someone holding only a copy of the database.
    pub fn hash_token(&self, token: &str) -> String {
        hex::encode(hmac_sha256(&self.api_key_hashing, token.as_bytes()))
    }
}

/// Creates a new file readable and writable by its owner only, failing if it exists.
pub fn create_private_file(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)
}

/// A random token: `prefix` followed by `len` alphanumeric characters (~5.95 bits each).
pub fn random_token(prefix: &str, len: usize) -> String {
    use rand::RngExt;
    const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let mut s = String::with_capacity(prefix.len() + len);
    s.push_str(prefix);
    s.extend((0..len).map(|_| ALNUM[rng.random_range(0..ALNUM.len())] as char));
    s
}

/// Constant-time equality for secrets and their hashes.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_in_their_context() {
        let key = MasterKey::from_bytes(&[7u8; 32]);
        let sealed = key.seal("assets.bmc_password:ast_1", b"hunter2").unwrap();
        assert!(!sealed.windows(7).any(|w| w == b"hunter2"));
        assert_eq!(key.unseal("assets.bmc_password:ast_1", &sealed).unwrap(), b"hunter2");
        assert!(key.unseal("assets.bmc_password:ast_2", &sealed).is_err());
        let other = MasterKey::from_bytes(&[8u8; 32]);
        assert!(other.unseal("assets.bmc_password:ast_1", &sealed).is_err());
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(key.unseal("assets.bmc_password:ast_1", &tampered).is_err());
    }

    #[test]
    fn secrets_do_not_print() {
        assert_eq!(format!("{:?}", Secret::new("pw")), "[redacted]");
    }
}
