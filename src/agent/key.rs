//! The appliance's SSH key: the only key an agent's SSH server accepts. Derived from the master
//! key (like the boot-token key), so every appliance sharing a data dir has the same one and there
//! is no secret file of its own to lose or leak.

use russh::keys::ssh_key::private::Ed25519Keypair;
use russh::keys::{PrivateKey, PublicKey};

use crate::secret::{MasterKey, hmac_sha256};

const SEED_LABEL: &[u8] = b"ironbay appliance ssh ed25519 v1";

pub struct ApplianceKey {
    private: std::sync::Arc<PrivateKey>,
    public_openssh: String,
}

impl ApplianceKey {
    pub fn derive(keys: &MasterKey) -> ApplianceKey {
        Self::from_seed(&hmac_sha256(keys.token_signing_key(), SEED_LABEL))
    }

    pub fn from_seed(seed: &[u8; 32]) -> ApplianceKey {
        let mut private = PrivateKey::from(Ed25519Keypair::from_seed(seed));
        private.set_comment("ironbay-appliance");
        let public_openssh = private.public_key().to_openssh().unwrap_or_default();
        ApplianceKey { private: std::sync::Arc::new(private), public_openssh }
    }

    pub fn private(&self) -> std::sync::Arc<PrivateKey> {
        self.private.clone()
    }

    pub fn public(&self) -> &PublicKey {
        self.private.public_key()
    }

    /// `ssh-ed25519 AAAA… ironbay-appliance`.
    pub fn public_openssh(&self) -> &str {
        &self.public_openssh
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_a_function_of_the_master_key() {
        let a = ApplianceKey::from_seed(&[1; 32]);
        let b = ApplianceKey::from_seed(&[1; 32]);
        let c = ApplianceKey::from_seed(&[2; 32]);
        assert_eq!(a.public_openssh(), b.public_openssh());
        assert_ne!(a.public_openssh(), c.public_openssh());
        assert!(a.public_openssh().starts_with("ssh-ed25519 AAAA"), "{}", a.public_openssh());
        assert_eq!(PublicKey::from_openssh(a.public_openssh()).unwrap().key_data(), a.public().key_data());
    }
}
