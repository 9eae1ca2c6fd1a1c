//! Device enrollment: the device CA row, enrollment tokens, devices (with a tag side table for
//! filters), every certificate issued, device history and used renewal proofs. Devices are never
//! deleted, only revoked, so history and revocations outlive them.

use sqlx::{AnyConnection, FromRow};

use super::{Filter, Store};

#[derive(Debug, Clone, Default, FromRow)]
pub struct EnrollTokenRow {
    pub id: String,
    pub token_hash: String,
    pub description: String,
    pub max_uses: i64,
    pub uses: i64,
    pub expires_at: Option<String>,
    /// JSON array.
    pub tags: String,
    pub vni_id: Option<String>,
    pub created_by: Option<String>,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

const TOKEN_COLUMNS: &str =
    "id, token_hash, description, max_uses, uses, expires_at, tags, vni_id, created_by, created_at, revoked_at";

#[derive(Debug, Clone, FromRow)]
pub struct DeviceRow {
    pub id: String,
    pub name: String,
    pub key_type: String,
    /// SubjectPublicKeyInfo PEM.
    pub public_key: String,
    /// JSON array.
    pub tags: String,
    /// JSON object.
    pub metadata: String,
    pub vni_id: Option<String>,
    pub enroll_token_id: String,
    /// The newest certificate's serial (uppercase hex) and expiry.
    pub cert_serial: String,
    pub cert_expires_at: String,
    pub last_seen: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

const DEVICE_COLUMNS: &str = "id, name, key_type, public_key, tags, metadata, vni_id, enroll_token_id, cert_serial, \
    cert_expires_at, last_seen, created_at, revoked_at";

#[derive(Debug, Clone, FromRow, serde::Serialize, utoipa::ToSchema)]
pub struct DeviceEventRow {
    #[serde(skip)]
    pub id: String,
    #[serde(skip)]
    pub device_id: String,
    /// `enrolled`, `renewed` or `revoked`.
    pub event: String,
    pub at: String,
    #[serde(skip)]
    pub details: String,
}

/// Which devices a list shows. `online_since`: the `last_seen` from which a device is online.
#[derive(Debug, Clone, Default)]
pub struct DeviceQuery {
    pub status: Option<DeviceStatusFilter>,
    pub vni_id: Option<String>,
    pub tag: Option<String>,
    pub online_since: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceStatusFilter {
    Online,
    Offline,
    Revoked,
    /// Every device not revoked (KairOS's `enrolled`).
    Enrolled,
}

impl DeviceQuery {
    fn filter(&self) -> Filter {
        let mut f = Filter::default();
        // `COALESCE(revoked_at, '') = ''` is "not revoked", written with a bound value because
        // `Filter` binds one per clause.
        match self.status {
            Some(DeviceStatusFilter::Online) => {
                f.push("COALESCE(revoked_at, '') = {}", "");
                f.push("last_seen >= {}", self.online_since.clone());
            }
            Some(DeviceStatusFilter::Offline) => {
                f.push("COALESCE(revoked_at, '') = {}", "");
                f.push("last_seen < {}", self.online_since.clone());
            }
            Some(DeviceStatusFilter::Revoked) => f.push("COALESCE(revoked_at, '') <> {}", ""),
            Some(DeviceStatusFilter::Enrolled) => f.push("COALESCE(revoked_at, '') = {}", ""),
            None => {}
        }
        if let Some(v) = &self.vni_id {
            f.push("vni_id = {}", v.clone());
        }
        if let Some(t) = &self.tag {
            f.push("id IN (SELECT device_id FROM device_tags WHERE tag = {})", t.clone());
        }
        f
    }
}

impl Store {
    /// The device CA's certificate PEM and sealed key, if one was created.
    pub async fn device_ca_get(&self) -> Result<Option<(String, Vec<u8>)>, sqlx::Error> {
        sqlx::query_as("SELECT cert_pem, key_sealed FROM device_ca WHERE id = 1").fetch_optional(&self.pool).await
    }

    /// Stores the CA unless another appliance got there first; true when this one won.
    pub async fn device_ca_insert(
        conn: &mut AnyConnection,
        cert_pem: &str,
        key_sealed: &[u8],
        now: &str,
    ) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(
            "INSERT INTO device_ca (id, cert_pem, key_sealed, created_at) VALUES (1, $1, $2, $3) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(cert_pem)
        .bind(key_sealed)
        .bind(now)
        .execute(conn)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn enroll_token_insert(conn: &mut AnyConnection, t: &EnrollTokenRow) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO enroll_tokens (id, token_hash, description, max_uses, uses, expires_at, tags, vni_id, \
             created_by, created_at, revoked_at) VALUES ($1, $2, $3, $4, 0, $5, $6, $7, $8, $9, NULL)",
        )
        .bind(&t.id)
        .bind(&t.token_hash)
        .bind(&t.description)
        .bind(t.max_uses)
        .bind(t.expires_at.as_deref())
        .bind(&t.tags)
        .bind(t.vni_id.as_deref())
        .bind(t.created_by.as_deref())
        .bind(&t.created_at)
        .execute(conn)
        .await
        .map(|_| ())
    }

    pub async fn enroll_token_get(&self, id: &str) -> Result<Option<EnrollTokenRow>, sqlx::Error> {
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM enroll_tokens WHERE id = $1");
        sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(&self.pool).await
    }

    pub async fn enroll_token_get_in(
        conn: &mut AnyConnection,
        id: &str,
    ) -> Result<Option<EnrollTokenRow>, sqlx::Error> {
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM enroll_tokens WHERE id = $1");
        sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(conn).await
    }

    pub async fn enroll_token_by_hash(&self, hash: &str) -> Result<Option<EnrollTokenRow>, sqlx::Error> {
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM enroll_tokens WHERE token_hash = $1");
        sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(hash).fetch_optional(&self.pool).await
    }

    pub async fn enroll_token_list(&self, limit: i64, offset: i64) -> Result<(Vec<EnrollTokenRow>, i64), sqlx::Error> {
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM enroll_tokens ORDER BY created_at, id LIMIT $1 OFFSET $2");
        let rows = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(limit).bind(offset).fetch_all(&self.pool).await?;
        let total = sqlx::query_scalar("SELECT COUNT(*) FROM enroll_tokens").fetch_one(&self.pool).await?;
        Ok((rows, total))
    }

    /// Takes one use of a token if it is still usable at `now`: one statement, so two concurrent
    /// enrollments cannot both take the last use (the row lock, or SQLite's write lock, orders
    /// them and the second re-checks `uses < max_uses`).
    pub async fn enroll_token_consume(conn: &mut AnyConnection, id: &str, now: &str) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(
            "UPDATE enroll_tokens SET uses = uses + 1 WHERE id = $1 AND revoked_at IS NULL AND uses < max_uses \
             AND (expires_at IS NULL OR expires_at > $2)",
        )
        .bind(id)
        .bind(now)
        .execute(conn)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn enroll_token_revoke(conn: &mut AnyConnection, id: &str, now: &str) -> Result<bool, sqlx::Error> {
        let done = sqlx::query("UPDATE enroll_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
            .bind(id)
            .bind(now)
            .execute(conn)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn device_insert(conn: &mut AnyConnection, d: &DeviceRow, tags: &[String]) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO devices (id, name, key_type, public_key, tags, metadata, vni_id, enroll_token_id, \
             cert_serial, cert_expires_at, last_seen, created_at, revoked_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, NULL)",
        )
        .bind(&d.id)
        .bind(&d.name)
        .bind(&d.key_type)
        .bind(&d.public_key)
        .bind(&d.tags)
        .bind(&d.metadata)
        .bind(d.vni_id.as_deref())
        .bind(&d.enroll_token_id)
        .bind(&d.cert_serial)
        .bind(&d.cert_expires_at)
        .bind(&d.last_seen)
        .bind(&d.created_at)
        .execute(&mut *conn)
        .await?;
        for tag in tags {
            sqlx::query("INSERT INTO device_tags (device_id, tag) VALUES ($1, $2)")
                .bind(&d.id)
                .bind(tag)
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }

    pub async fn device_get(&self, id: &str) -> Result<Option<DeviceRow>, sqlx::Error> {
        let sql = format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE id = $1");
        sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(&self.pool).await
    }

    pub async fn device_get_in(conn: &mut AnyConnection, id: &str) -> Result<Option<DeviceRow>, sqlx::Error> {
        let sql = format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE id = $1");
        sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(conn).await
    }

    pub async fn device_list(
        &self,
        q: &DeviceQuery,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<DeviceRow>, i64), sqlx::Error> {
        let filter = q.filter();
        let (w, n) = (filter.where_sql(), filter.next_placeholder());
        let sql =
            format!("SELECT {DEVICE_COLUMNS} FROM devices {w} ORDER BY created_at, id LIMIT ${n} OFFSET ${}", n + 1);
        let rows = filter.bind_all(sqlx::query_as(sqlx::AssertSqlSafe(sql))).bind(limit).bind(offset);
        let rows = rows.fetch_all(&self.pool).await?;
        let count = format!("SELECT COUNT(*) FROM devices {w}");
        let total = filter.bind_scalar(sqlx::query_scalar(sqlx::AssertSqlSafe(count))).fetch_one(&self.pool).await?;
        Ok((rows, total))
    }

    /// Records a renewal on the device row: its new certificate, key and `last_seen`. Only a
    /// device that is not revoked changes (a delete racing a renewal wins).
    pub async fn device_renewed(conn: &mut AnyConnection, d: &DeviceRow) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(
            "UPDATE devices SET key_type = $2, public_key = $3, cert_serial = $4, cert_expires_at = $5, last_seen = $6 \
             WHERE id = $1 AND revoked_at IS NULL",
        )
        .bind(&d.id)
        .bind(&d.key_type)
        .bind(&d.public_key)
        .bind(&d.cert_serial)
        .bind(&d.cert_expires_at)
        .bind(&d.last_seen)
        .execute(conn)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Marks the device and every certificate it holds revoked; false if it already was.
    pub async fn device_revoke(conn: &mut AnyConnection, id: &str, now: &str) -> Result<bool, sqlx::Error> {
        let done = sqlx::query("UPDATE devices SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
            .bind(id)
            .bind(now)
            .execute(&mut *conn)
            .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        sqlx::query("UPDATE device_certs SET revoked_at = $2 WHERE device_id = $1 AND revoked_at IS NULL")
            .bind(id)
            .bind(now)
            .execute(&mut *conn)
            .await?;
        Ok(true)
    }

    pub async fn device_cert_insert(
        conn: &mut AnyConnection,
        serial: &str,
        device_id: &str,
        not_after: &str,
        issued_at: &str,
    ) -> Result<(), sqlx::Error> {
        sqlx::query("INSERT INTO device_certs (serial, device_id, not_after, issued_at) VALUES ($1, $2, $3, $4)")
            .bind(serial)
            .bind(device_id)
            .bind(not_after)
            .bind(issued_at)
            .execute(conn)
            .await
            .map(|_| ())
    }

    /// Serials of a device's certificates, newest first.
    pub async fn device_cert_serials(&self, device_id: &str) -> Result<Vec<String>, sqlx::Error> {
        sqlx::query_scalar("SELECT serial FROM device_certs WHERE device_id = $1 ORDER BY issued_at DESC")
            .bind(device_id)
            .fetch_all(&self.pool)
            .await
    }

    /// Every revoked certificate: (serial, revoked_at).
    pub async fn device_certs_revoked(&self) -> Result<Vec<(String, String)>, sqlx::Error> {
        sqlx::query_as(
            "SELECT serial, revoked_at FROM device_certs WHERE revoked_at IS NOT NULL ORDER BY revoked_at, serial",
        )
        .fetch_all(&self.pool)
        .await
    }

    pub async fn device_event_insert(conn: &mut AnyConnection, e: &DeviceEventRow) -> Result<(), sqlx::Error> {
        sqlx::query("INSERT INTO device_events (id, device_id, event, at, details) VALUES ($1, $2, $3, $4, $5)")
            .bind(&e.id)
            .bind(&e.device_id)
            .bind(&e.event)
            .bind(&e.at)
            .bind(&e.details)
            .execute(conn)
            .await
            .map(|_| ())
    }

    /// A device's events, oldest first.
    pub async fn device_events(
        &self,
        device_id: &str,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<DeviceEventRow>, i64), sqlx::Error> {
        let rows = sqlx::query_as(
            "SELECT id, device_id, event, at, details FROM device_events WHERE device_id = $1 \
             ORDER BY at, id LIMIT $2 OFFSET $3",
        )
        .bind(device_id)
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        let total = sqlx::query_scalar("SELECT COUNT(*) FROM device_events WHERE device_id = $1")
            .bind(device_id)
            .fetch_one(&self.pool)
            .await?;
        Ok((rows, total))
    }

    /// Claims a renewal proof; false when this (device, timestamp) was used before. Proofs older
    /// than `forget_before` can no longer pass the clock check, so they are pruned here.
    pub async fn device_renewal_claim(
        conn: &mut AnyConnection,
        device_id: &str,
        ts: &str,
        now: &str,
        forget_before: &str,
    ) -> Result<bool, sqlx::Error> {
        sqlx::query("DELETE FROM device_renewals WHERE used_at < $1").bind(forget_before).execute(&mut *conn).await?;
        let done = sqlx::query(
            "INSERT INTO device_renewals (device_id, ts, used_at) VALUES ($1, $2, $3) \
             ON CONFLICT (device_id, ts) DO NOTHING",
        )
        .bind(device_id)
        .bind(ts)
        .bind(now)
        .execute(&mut *conn)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
