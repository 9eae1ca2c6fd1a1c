//! Login sessions and their refresh tokens. A session is one refresh-token family: reuse of a
//! rotated refresh token revokes the session, and with it every token it issued.

use sqlx::{AnyConnection, FromRow};

use super::Store;

#[derive(Debug, Clone, FromRow)]
pub struct SessionRow {
    pub id: String,
    pub user_id: String,
    pub remember_me: i64,
    pub created_at: String,
    pub expires_at: String,
    pub revoked_at: Option<String>,
}

#[derive(Debug, Clone, FromRow)]
pub struct RefreshRow {
    pub id: String,
    pub session_id: String,
    pub expires_at: String,
    pub used_at: Option<String>,
}

pub struct NewSession<'a> {
    pub id: &'a str,
    pub user_id: &'a str,
    pub secret_hash: &'a str,
    pub remember_me: bool,
    pub source_ip: &'a str,
    pub now: &'a str,
    pub expires_at: &'a str,
}

impl Store {
    pub async fn session_insert(conn: &mut AnyConnection, s: &NewSession<'_>) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO sessions (id, user_id, secret_hash, remember_me, source_ip, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(s.id)
        .bind(s.user_id)
        .bind(s.secret_hash)
        .bind(i64::from(s.remember_me))
        .bind(s.source_ip)
        .bind(s.now)
        .bind(s.expires_at)
        .execute(conn)
        .await
        .map(|_| ())
    }

    pub async fn session_get(&self, id: &str) -> Result<Option<SessionRow>, sqlx::Error> {
        sqlx::query_as(
            "SELECT id, user_id, remember_me, created_at, expires_at, revoked_at FROM sessions WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
    }

    pub async fn session_by_secret_hash(&self, hash: &str) -> Result<Option<SessionRow>, sqlx::Error> {
        sqlx::query_as(
            "SELECT id, user_id, remember_me, created_at, expires_at, revoked_at FROM sessions \
             WHERE secret_hash = $1",
        )
        .bind(hash)
        .fetch_optional(&self.pool)
        .await
    }

    pub async fn session_revoke(
        conn: &mut AnyConnection,
        id: &str,
        reason: &str,
        now: &str,
    ) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(
            "UPDATE sessions SET revoked_at = $2, revoked_reason = $3 WHERE id = $1 AND revoked_at IS NULL",
        )
        .bind(id)
        .bind(now)
        .bind(reason)
        .execute(conn)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn sessions_revoke_for_user(
        conn: &mut AnyConnection,
        user_id: &str,
        reason: &str,
        now: &str,
    ) -> Result<u64, sqlx::Error> {
        let done = sqlx::query(
            "UPDATE sessions SET revoked_at = $2, revoked_reason = $3 WHERE user_id = $1 AND revoked_at IS NULL",
        )
        .bind(user_id)
        .bind(now)
        .bind(reason)
        .execute(conn)
        .await?;
        Ok(done.rows_affected())
    }

    pub async fn refresh_insert(
        conn: &mut AnyConnection,
        id: &str,
        session_id: &str,
        token_hash: &str,
        now: &str,
        expires_at: &str,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO refresh_tokens (id, session_id, token_hash, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(session_id)
        .bind(token_hash)
        .bind(now)
        .bind(expires_at)
        .execute(conn)
        .await
        .map(|_| ())
    }

    pub async fn refresh_by_hash(conn: &mut AnyConnection, hash: &str) -> Result<Option<RefreshRow>, sqlx::Error> {
        sqlx::query_as("SELECT id, session_id, expires_at, used_at FROM refresh_tokens WHERE token_hash = $1")
            .bind(hash)
            .fetch_optional(conn)
            .await
    }

    /// Marks a refresh token used. False when it already was: the caller has a reuse on its hands.
    pub async fn refresh_mark_used(conn: &mut AnyConnection, id: &str, now: &str) -> Result<bool, sqlx::Error> {
        let done = sqlx::query("UPDATE refresh_tokens SET used_at = $2 WHERE id = $1 AND used_at IS NULL")
            .bind(id)
            .bind(now)
            .execute(conn)
            .await?;
        Ok(done.rows_affected() == 1)
    }
}
