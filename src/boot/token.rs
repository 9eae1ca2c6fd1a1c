//! Boot tokens: what the boot script puts on the agent's kernel command line so the agent can
//! prove, later, which asset it runs on. A token is `base64url(payload).base64url(signature)`: the
//! payload is JSON claims (asset id, MAC, scope, issued-at, expiry), the signature Ed25519 over a
//! domain-separated copy of the encoded payload. Verifying needs only the public key and a clock,
//! never the database, so any appliance sharing the data dir (and so the master key) checks any
//! other's tokens. The signing key is derived from the master key: no secret file of its own.

use aws_lc_rs::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde::{Deserialize, Serialize};

use crate::model::Mac;
use crate::secret::hmac_sha256;

/// Purpose label for the seed derivation: a new label is a new key.
const SEED_LABEL: &[u8] = b"ironbay boot-token ed25519 v1";
/// Signed before the payload, so a signature made for anything else never verifies as a token.
const SIGNING_DOMAIN: &[u8] = b"ironbay-boot-token-v1.";
/// Longest token `verify` looks at (a real one is ~200 characters).
const MAX_TOKEN_LEN: usize = 1024;

/// What a token lets its bearer do. Boot tokens carry one scope today.
pub const SCOPE_AGENT: &str = "agent";

/// The claims a valid token carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootClaims {
    /// The asset the token is bound to.
    pub asset: String,
    /// The MAC that asked for the boot script.
    pub mac: Mac,
    pub scope: String,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// Expires at, Unix seconds (exclusive).
    pub exp: i64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("boot token is malformed")]
    Malformed,
    #[error("boot token signature does not verify")]
    BadSignature,
    #[error("boot token expired")]
    Expired,
    #[error("boot token is not valid yet")]
    NotYetValid,
    #[error("boot token has scope `{0}`, not `agent`")]
    WrongScope(String),
}

/// The appliance's boot-token key pair.
pub struct BootTokens {
    key: Ed25519KeyPair,
    ttl_secs: i64,
}

impl BootTokens {
    /// Derives the key pair from `token_signing_key` (`MasterKey::token_signing_key`), so every
    /// appliance with the same master key signs and verifies alike.
    pub fn new(token_signing_key: &[u8; 32], ttl: std::time::Duration) -> BootTokens {
        let seed = hmac_sha256(token_signing_key, SEED_LABEL);
        // Any 32 bytes are a valid Ed25519 seed.
        let key = Ed25519KeyPair::from_seed_unchecked(&seed).expect("a 32-byte seed is a valid Ed25519 key");
        BootTokens { key, ttl_secs: i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX) }
    }

    /// The verifying key (32 bytes), for whoever checks tokens without this key pair.
    pub fn public_key(&self) -> [u8; 32] {
        let mut pk = [0u8; 32];
        pk.copy_from_slice(self.key.public_key().as_ref());
        pk
    }

    /// A token for the agent on `asset`, booted from `mac`, valid from `now` for the configured TTL.
    pub fn issue(&self, asset: &str, mac: Mac, now: i64) -> String {
        self.sign(&BootClaims {
            asset: asset.to_string(),
            mac,
            scope: SCOPE_AGENT.to_string(),
            iat: now,
            exp: now.saturating_add(self.ttl_secs),
        })
    }

    fn sign(&self, claims: &BootClaims) -> String {
        let payload = B64.encode(serde_json::to_vec(claims).unwrap_or_default());
        let sig = self.key.sign(&signing_input(&payload));
        format!("{payload}.{}", B64.encode(sig.as_ref()))
    }

    /// Checks the signature, the scope and the validity window at `now` (Unix seconds).
    pub fn verify(&self, token: &str, now: i64) -> Result<BootClaims, TokenError> {
        verify_with(&self.public_key(), token, now)
    }
}

fn signing_input(payload_b64: &str) -> Vec<u8> {
    [SIGNING_DOMAIN, payload_b64.as_bytes()].concat()
}

/// Verifies `token` against `public_key` alone (no database, no private key).
pub fn verify_with(public_key: &[u8; 32], token: &str, now: i64) -> Result<BootClaims, TokenError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Malformed);
    }
    let (payload, sig) = token.split_once('.').ok_or(TokenError::Malformed)?;
    let sig = B64.decode(sig).map_err(|_| TokenError::Malformed)?;
    UnparsedPublicKey::new(&ED25519, public_key)
        .verify(&signing_input(payload), &sig)
        .map_err(|_| TokenError::BadSignature)?;
    let claims = decode_claims(token)?;
    if claims.scope != SCOPE_AGENT {
        return Err(TokenError::WrongScope(claims.scope));
    }
    if now >= claims.exp {
        return Err(TokenError::Expired);
    }
    // A minute of slack for clocks of appliances sharing a database.
    if claims.iat > now.saturating_add(60) {
        return Err(TokenError::NotYetValid);
    }
    Ok(claims)
}

/// The claims of a token WITHOUT checking it: for display and tests only, never for a decision.
pub fn decode_claims(token: &str) -> Result<BootClaims, TokenError> {
    let (payload, _) = token.split_once('.').ok_or(TokenError::Malformed)?;
    let json = B64.decode(payload).map_err(|_| TokenError::Malformed)?;
    serde_json::from_slice(&json).map_err(|_| TokenError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const NOW: i64 = 1_800_000_000;

    fn tokens() -> BootTokens {
        BootTokens::new(&[7u8; 32], Duration::from_secs(3600))
    }

    fn mac() -> Mac {
        "52:54:00:12:34:56".parse().unwrap()
    }

    #[test]
    fn a_fresh_token_verifies_and_carries_its_claims() {
        let t = tokens();
        let token = t.issue("ast_abc", mac(), NOW);
        assert!(token.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')), "{token}");
        let claims = t.verify(&token, NOW + 10).unwrap();
        assert_eq!(claims.asset, "ast_abc");
        assert_eq!(claims.mac, mac());
        assert_eq!(claims.scope, "agent");
        assert_eq!(claims.exp - claims.iat, 3600);
        // Same master key, another process: same key pair.
        assert_eq!(BootTokens::new(&[7u8; 32], Duration::from_secs(60)).verify(&token, NOW), Ok(claims));
    }

    #[test]
    fn expired_and_future_tokens_are_refused() {
        let t = tokens();
        let token = t.issue("ast_abc", mac(), NOW);
        assert_eq!(t.verify(&token, NOW + 3600), Err(TokenError::Expired));
        assert_eq!(t.verify(&token, NOW - 3600), Err(TokenError::NotYetValid));
    }

    #[test]
    fn tampered_payloads_and_signatures_are_refused() {
        let t = tokens();
        let token = t.issue("ast_abc", mac(), NOW);
        let (payload, sig) = token.split_once('.').unwrap();
        // Another asset's claims under this signature.
        let mut claims = decode_claims(&token).unwrap();
        claims.asset = "ast_other".into();
        let forged = format!("{}.{sig}", B64.encode(serde_json::to_vec(&claims).unwrap()));
        assert_eq!(t.verify(&forged, NOW), Err(TokenError::BadSignature));
        // One flipped bit in the signature.
        let mut raw = B64.decode(sig).unwrap();
        raw[0] ^= 1;
        assert_eq!(t.verify(&format!("{payload}.{}", B64.encode(&raw)), NOW), Err(TokenError::BadSignature));
        // Another master key.
        let other = BootTokens::new(&[8u8; 32], Duration::from_secs(3600));
        assert_eq!(other.verify(&token, NOW), Err(TokenError::BadSignature));
        for junk in ["", "abc", "a.b", &format!("{payload}."), &"A".repeat(MAX_TOKEN_LEN + 1)] {
            assert!(t.verify(junk, NOW).is_err(), "{junk}");
        }
    }

    #[test]
    fn a_token_of_another_scope_is_refused() {
        let t = tokens();
        let token =
            t.sign(&BootClaims { asset: "ast_abc".into(), mac: mac(), scope: "admin".into(), iat: NOW, exp: NOW + 60 });
        assert_eq!(t.verify(&token, NOW), Err(TokenError::WrongScope("admin".into())));
    }
}
