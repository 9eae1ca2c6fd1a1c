//! Password hashing with argon2id (PHC string format). Hashing is deliberately slow, so it runs on
//! the blocking pool, never on an async worker.

use argon2::{Argon2, PasswordHasher, PasswordVerifier};

use crate::error::{Error, Result};

pub const MIN_PASSWORD_LEN: usize = 12;
pub const MAX_PASSWORD_LEN: usize = 1024;

pub fn validate_new_password(field: &str, password: &str) -> Result<()> {
    let n = password.chars().count();
    if n < MIN_PASSWORD_LEN {
        return Err(Error::invalid_field(field, format!("password must be at least {MIN_PASSWORD_LEN} characters")));
    }
    if password.len() > MAX_PASSWORD_LEN {
        return Err(Error::invalid_field(field, format!("password must be at most {MAX_PASSWORD_LEN} bytes")));
    }
    Ok(())
}

pub async fn hash(password: String) -> Result<String> {
    tokio::task::spawn_blocking(move || {
        let mut salt = [0u8; 16];
        rand::fill(&mut salt);
        Argon2::default()
            .hash_password_with_salt(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| Error::internal(format_args!("argon2 hash: {e}")))
    })
    .await
    .map_err(Error::internal)?
}

/// True when `password` matches `phc`. A malformed stored hash counts as no match (and is logged).
pub async fn verify(password: String, phc: String) -> Result<bool> {
    if password.len() > MAX_PASSWORD_LEN {
        return Ok(false);
    }
    tokio::task::spawn_blocking(move || match Argon2::default().verify_password(password.as_bytes(), phc.as_str()) {
        Ok(()) => true,
        Err(argon2::password_hash::Error::PasswordInvalid) => false,
        Err(e) => {
            tracing::error!(error = %e, "stored password hash is malformed");
            false
        }
    })
    .await
    .map_err(Error::internal)
}

/// A hash of a random password, compared against when the username does not exist, so a login
/// takes as long for an unknown user as for a wrong password.
pub async fn dummy_hash() -> Result<String> {
    hash(crate::secret::random_token("", 24)).await
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn hashes_verify_and_are_argon2id() {
        let h = super::hash("correct horse battery".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(super::verify("correct horse battery".into(), h.clone()).await.unwrap());
        assert!(!super::verify("wrong horse battery".into(), h).await.unwrap());
    }
}
