//! TOTP (RFC 6238, SHA-1, 6 digits, 30 s, ±1 step) for optional MFA. The secret is sealed at rest.

use totp_rs::{Builder, Secret as TotpSecret, Totp};

use crate::error::{Error, Result};

pub const ISSUER: &str = "ironbay";

pub fn generate_secret() -> Vec<u8> {
    let mut s = vec![0u8; 20];
    rand::fill(s.as_mut_slice());
    s
}

fn totp(secret: &[u8], account: &str) -> Result<Totp> {
    Builder::new()
        .with_secret(TotpSecret::from(secret.to_vec()))
        .with_account_name(account)
        .with_issuer(Some(ISSUER))
        .build()
        .map_err(|e| Error::internal(format_args!("totp: {e}")))
}

/// Base32 secret and `otpauth://` URI for an authenticator app.
pub fn provisioning(secret: &[u8], account: &str) -> Result<(String, String)> {
    let t = totp(secret, account)?;
    let url = t.to_url().map_err(|e| Error::internal(format_args!("totp url: {e}")))?;
    Ok((TotpSecret::from(secret.to_vec()).to_base32(), url))
}

/// The matched time step when `code` is valid now (the caller refuses a step used before).
pub fn check(secret: &[u8], account: &str, code: &str) -> Result<Option<u64>> {
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    Ok(totp(secret, account)?.check_current(code))
}
