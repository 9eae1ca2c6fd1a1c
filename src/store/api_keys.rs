//! API keys: only a keyed hash of the secret is stored; scopes as a space-separated list.

use sqlx::{AnyConnection, FromRow};

use super::{Filter, Store, parse_column};
use crate::model::Scope;

#[derive(Debug, Clone)]
pub struct ApiKeyRow {
    pub id: String,
    pub user_id: String,
    pub name: String,
    pub secret_hash: String,
    pub scopes: Vec<Scope>,
    pub expires_at: Option<String>,
    pub last_used_at: Option<String>,
    pub revoked_at: Option<String>,
    pub created_at: String,
}

#[derive(FromRow)]
struct RawKey {
    id: String,
    user_id: String,
    name: String,
    secret_hash: String,
    scopes: String,
    expires_at: Option<String>,
    last_used_at: Option<String>,
    revoked_at: Option<String>,
    created_at: String,
}

impl TryFrom<RawKey> for ApiKeyRow {
    type Error = sqlx::Error;
    fn try_from(r: RawKey) -> Result<Self, sqlx::Error> {
        Ok(ApiKeyRow {
            scopes: r
                .scopes
                .split_whitespace()
                .map(|s| parse_column("api_keys.scopes", s))
                .collect::<Result<_, _>>()?,
            id: r.id,
            user_id: r.user_id,
            name: r.name,
            secret_hash: r.secret_hash,
            expires_at: r.expires_at,
            last_used_at: r.last_used_at,
            revoked_at: r.revoked_at,
            created_at: r.created_at,
        })
    }
}

const COLUMNS: &str = "id, user_id, name, secret_hash, scopes, expires_at, last_used_at, revoked_at, created_at";

impl Store {
    pub async fn api_key_insert(conn: &mut AnyConnection, k: &ApiKeyRow) -> Result<(), sqlx::Error> {
        let scopes: Vec<&str> = k.scopes.iter().map(|s| s.as_str()).collect();
        sqlx::query(
            "INSERT INTO api_keys (id, user_id, name, secret_hash, scopes, expires_at, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&k.id)
        .bind(&k.user_id)
        .bind(&k.name)
        .bind(&k.secret_hash)
        .bind(scopes.join(" "))
        .bind(k.expires_at.as_deref())
        .bind(&k.created_at)
        .execute(conn)
        .await
        .map(|_| ())
    }

    pub async fn api_key_get(&self, id: &str) -> Result<Option<ApiKeyRow>, sqlx::Error> {
        let sql = format!("SELECT {COLUMNS} FROM api_keys WHERE id = $1");
        sqlx::query_as::<_, RawKey>(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .map(ApiKeyRow::try_from)
            .transpose()
    }

    /// Keys, newest first; `user_id` limits the list to one owner.
    pub async fn api_key_list(
        &self,
        user_id: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<ApiKeyRow>, i64), sqlx::Error> {
        let mut filter = Filter::default();
        if let Some(user_id) = user_id {
            filter.push("user_id = {}", user_id);
        }
        let n = filter.next_placeholder();
        let sql = format!(
            "SELECT {COLUMNS} FROM api_keys {} ORDER BY created_at DESC, id LIMIT ${n} OFFSET ${}",
            filter.where_sql(),
            n + 1
        );
        let rows = filter
            .bind_all(sqlx::query_as::<_, RawKey>(sqlx::AssertSqlSafe(sql)))
            .bind(limit)
            .bind(offset)
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(ApiKeyRow::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        let count_sql = format!("SELECT COUNT(*) FROM api_keys {}", filter.where_sql());
        let total =
            filter.bind_scalar(sqlx::query_scalar(sqlx::AssertSqlSafe(count_sql))).fetch_one(&self.pool).await?;
        Ok((rows, total))
    }

    pub async fn api_key_revoke(conn: &mut AnyConnection, id: &str, now: &str) -> Result<bool, sqlx::Error> {
        let done = sqlx::query("UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
            .bind(id)
            .bind(now)
            .execute(conn)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn api_key_touch(&self, id: &str, now: &str) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE api_keys SET last_used_at = $2 WHERE id = $1")
            .bind(id)
            .bind(now)
            .execute(&self.pool)
            .await
            .map(|_| ())
    }
}
