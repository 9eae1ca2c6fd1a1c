//! The agent's identity: an Ed25519 key made in RAM at boot (never written anywhere). It is
//! enrolled as a device (SPKI PEM) and serves as the SSH host key (OpenSSH form).

use russh::keys::PrivateKey;
use russh::keys::ssh_key::private::Ed25519Keypair;

pub struct Identity {
    pub key: PrivateKey,
}

impl Identity {
    pub fn generate() -> std::io::Result<Identity> {
        let mut seed = [0u8; 32];
        let mut filled = 0;
        while filled < seed.len() {
            // SAFETY: writes at most the remaining bytes of `seed`.
            let n = unsafe { libc::getrandom(seed[filled..].as_mut_ptr().cast(), seed.len() - filled, 0) };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            filled += n as usize;
        }
        Ok(Self::from_seed(&seed))
    }

    pub fn from_seed(seed: &[u8; 32]) -> Identity {
        Identity { key: PrivateKey::from(Ed25519Keypair::from_seed(seed)) }
    }

    fn raw_public(&self) -> [u8; 32] {
        self.key.public_key().key_data().ed25519().map(|k| k.0).unwrap_or([0; 32])
    }

    /// `-----BEGIN PUBLIC KEY-----` (SubjectPublicKeyInfo), what the enrollment API takes.
    pub fn spki_pem(&self) -> String {
        ironbay_wire::keys::ed25519_spki_pem(&self.raw_public())
    }

    /// `ssh-ed25519 AAAA…`.
    pub fn openssh_public(&self) -> String {
        self.key.public_key().to_openssh().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_forms_carry_the_same_key() {
        let id = Identity::from_seed(&[9; 32]);
        let pem = id.spki_pem();
        let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let der = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b64).unwrap();
        assert_eq!(der.len(), 44);
        assert_eq!(&der[12..], &id.raw_public());
        assert!(id.openssh_public().starts_with("ssh-ed25519 "));
        assert_ne!(Identity::generate().unwrap().openssh_public(), Identity::generate().unwrap().openssh_public());
    }
}
