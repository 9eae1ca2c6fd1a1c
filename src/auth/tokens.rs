//! Bearer access tokens: `ibt_<session>.<user>.<expiry>.<nonce>.<mac>`, HMAC-SHA256 signed with a key
//! derived from the master key. Short-lived; checking one needs no password hashing and only the
//! session row (so logout and refresh-token reuse revoke them at once).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::secret::{ct_eq, hmac_sha256};

pub const ACCESS_PREFIX: &str = "ibt_";
pub const API_KEY_PREFIX: &str = "ib_";
pub const SESSION_PREFIX: &str = "ibs_";
pub const REFRESH_PREFIX: &str = "ibr_";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessClaims {
    pub session_id: String,
    pub user_id: String,
    pub expires_unix: i64,
}

pub fn sign(key: &[u8; 32], claims: &AccessClaims) -> String {
    // The nonce makes every token distinct, even two issued for one session in the same second.
    let nonce = crate::model::ids::random_tail(8);
    let body = format!("{}.{}.{}.{nonce}", claims.session_id, claims.user_id, claims.expires_unix);
    let mac = URL_SAFE_NO_PAD.encode(hmac_sha256(key, body.as_bytes()));
    format!("{ACCESS_PREFIX}{body}.{mac}")
}

#[derive(Debug, PartialEq, Eq)]
pub enum TokenError {
    Malformed,
    BadSignature,
    Expired,
}

pub fn verify(key: &[u8; 32], token: &str, now_unix: i64) -> Result<AccessClaims, TokenError> {
    let rest = token.strip_prefix(ACCESS_PREFIX).ok_or(TokenError::Malformed)?;
    let (body, mac) = rest.rsplit_once('.').ok_or(TokenError::Malformed)?;
    let given = URL_SAFE_NO_PAD.decode(mac).map_err(|_| TokenError::Malformed)?;
    if !ct_eq(&given, &hmac_sha256(key, body.as_bytes())) {
        return Err(TokenError::BadSignature);
    }
    let mut parts = body.split('.');
    let (Some(sid), Some(uid), Some(exp), Some(_nonce), None) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };
    let expires_unix: i64 = exp.parse().map_err(|_| TokenError::Malformed)?;
    if expires_unix <= now_unix {
        return Err(TokenError::Expired);
    }
    Ok(AccessClaims { session_id: sid.to_string(), user_id: uid.to_string(), expires_unix })
}

/// Splits an API key `ib_<id tail>_<secret>` into the key's id (`key_<tail>`); the whole string
/// is what gets hashed.
pub fn api_key_id(token: &str) -> Option<String> {
    let rest = token.strip_prefix(API_KEY_PREFIX)?;
    let (tail, secret) = rest.split_once('_')?;
    let id = format!("key_{tail}");
    (crate::model::ids::looks_like(crate::model::IdKind::ApiKey, &id) && secret.len() >= 32).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_tokens_verify_until_they_expire() {
        let key = [3u8; 32];
        let c = AccessClaims { session_id: "ses_a".into(), user_id: "usr_b".into(), expires_unix: 1000 };
        let t = sign(&key, &c);
        assert_eq!(verify(&key, &t, 999), Ok(c));
        assert_eq!(verify(&key, &t, 1000), Err(TokenError::Expired));
        assert_eq!(verify(&[4u8; 32], &t, 999), Err(TokenError::BadSignature));
        let forged = t.replace("usr_b", "usr_c");
        assert_eq!(verify(&key, &forged, 999), Err(TokenError::BadSignature));
    }

    #[test]
    fn api_key_ids_parse() {
        let tok = format!("ib_{}_{}", "0123456789abcdef", "x".repeat(40));
        assert_eq!(api_key_id(&tok).as_deref(), Some("key_0123456789abcdef"));
        assert_eq!(api_key_id("ib_short_x"), None);
    }
}
