//! Users: credentials, role, TOTP secret (sealed), failed-login counter and lockout.

use sqlx::{AnyConnection, FromRow};

use super::{Store, parse_column};
use crate::model::Role;

#[derive(Debug, Clone)]
pub struct UserRow {
    pub id: String,
    pub username: String,
    pub password_hash: String,
    pub role: Role,
    pub disabled: bool,
    /// Sealed with the master key; `None` until MFA setup starts.
    pub totp_secret: Option<Vec<u8>>,
    pub totp_enabled: bool,
    /// The last TOTP time step accepted: a code is never accepted twice.
    pub totp_last_step: i64,
    pub failed_logins: i64,
    pub locked_until: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(FromRow)]
struct RawUser {
    id: String,
    username: String,
    password_hash: String,
    role: String,
    disabled: i64,
    totp_secret: Option<Vec<u8>>,
    totp_enabled: i64,
    totp_last_step: i64,
    failed_logins: i64,
    locked_until: Option<String>,
    created_at: String,
    updated_at: String,
}

impl TryFrom<RawUser> for UserRow {
    type Error = sqlx::Error;
    fn try_from(r: RawUser) -> Result<Self, sqlx::Error> {
        Ok(UserRow {
            role: parse_column("users.role", &r.role)?,
            id: r.id,
            username: r.username,
            password_hash: r.password_hash,
            disabled: r.disabled != 0,
            totp_secret: r.totp_secret,
            totp_enabled: r.totp_enabled != 0,
            totp_last_step: r.totp_last_step,
            failed_logins: r.failed_logins,
            locked_until: r.locked_until,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

const COLUMNS: &str = "id, username, password_hash, role, disabled, totp_secret, totp_enabled, \
    totp_last_step, failed_logins, locked_until, created_at, updated_at";

pub struct NewUser<'a> {
    pub id: &'a str,
    pub username: &'a str,
    pub password_hash: &'a str,
    pub role: Role,
    pub now: &'a str,
}

impl Store {
    pub async fn user_get(&self, id: &str) -> Result<Option<UserRow>, sqlx::Error> {
        let sql = format!("SELECT {COLUMNS} FROM users WHERE id = $1");
        sqlx::query_as::<_, RawUser>(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .map(UserRow::try_from)
            .transpose()
    }

    pub async fn user_by_username(&self, username: &str) -> Result<Option<UserRow>, sqlx::Error> {
        let sql = format!("SELECT {COLUMNS} FROM users WHERE username = $1");
        sqlx::query_as::<_, RawUser>(sqlx::AssertSqlSafe(sql))
            .bind(username)
            .fetch_optional(&self.pool)
            .await?
            .map(UserRow::try_from)
            .transpose()
    }

    pub async fn user_list(&self, limit: i64, offset: i64) -> Result<(Vec<UserRow>, i64), sqlx::Error> {
        let sql = format!("SELECT {COLUMNS} FROM users ORDER BY created_at, id LIMIT $1 OFFSET $2");
        let rows = sqlx::query_as::<_, RawUser>(sqlx::AssertSqlSafe(sql))
            .bind(limit)
            .bind(offset)
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(UserRow::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(&self.pool).await?;
        Ok((rows, total))
    }

    pub async fn user_count(&self) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(&self.pool).await
    }

    pub async fn user_insert(conn: &mut AnyConnection, u: &NewUser<'_>) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO users (id, username, password_hash, role, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $5)",
        )
        .bind(u.id)
        .bind(u.username)
        .bind(u.password_hash)
        .bind(u.role.as_str())
        .bind(u.now)
        .execute(conn)
        .await
        .map(|_| ())
    }

    /// Writes the mutable fields back.
    pub async fn user_update(conn: &mut AnyConnection, u: &UserRow, now: &str) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE users SET password_hash = $2, role = $3, disabled = $4, totp_secret = $5, \
             totp_enabled = $6, totp_last_step = $7, updated_at = $8 WHERE id = $1",
        )
        .bind(&u.id)
        .bind(&u.password_hash)
        .bind(u.role.as_str())
        .bind(i64::from(u.disabled))
        .bind(u.totp_secret.clone())
        .bind(i64::from(u.totp_enabled))
        .bind(u.totp_last_step)
        .bind(now)
        .execute(conn)
        .await
        .map(|_| ())
    }

    /// Records the outcome of a login attempt for lockout: `failed_logins` and `locked_until`.
    pub async fn user_set_login_state(
        &self,
        id: &str,
        failed_logins: i64,
        locked_until: Option<&str>,
    ) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE users SET failed_logins = $2, locked_until = $3 WHERE id = $1")
            .bind(id)
            .bind(failed_logins)
            .bind(locked_until)
            .execute(&self.pool)
            .await
            .map(|_| ())
    }

    /// Accepts a TOTP step only if it is newer than the last accepted one (no replay), atomically.
    pub async fn user_advance_totp_step(&self, id: &str, step: i64) -> Result<bool, sqlx::Error> {
        let done = sqlx::query("UPDATE users SET totp_last_step = $2 WHERE id = $1 AND totp_last_step < $2")
            .bind(id)
            .bind(step)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn user_delete(conn: &mut AnyConnection, id: &str) -> Result<bool, sqlx::Error> {
        let done = sqlx::query("DELETE FROM users WHERE id = $1").bind(id).execute(conn).await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn admin_count(conn: &mut AnyConnection) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE role = 'admin' AND disabled = 0").fetch_one(conn).await
    }
}
