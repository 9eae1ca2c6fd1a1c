//! The images registry's rows. An upload holds its image with a claim (`upload_owner`, a random
//! token, and a lease it renews while the bytes flow): every write an upload makes is conditional
//! on still holding it, so a second upload, a delete or an expired claim can never be overwritten
//! by an upload that lost the image.

use sqlx::{AnyConnection, FromRow};

use super::{Filter, Store};

#[derive(Debug, Clone, Default, FromRow)]
pub struct ImageRow {
    pub id: String,
    pub name: String,
    /// '' when the image has no version.
    pub version: String,
    pub format: String,
    /// `url` or `upload`.
    pub source: String,
    pub url: Option<String>,
    pub size_bytes: Option<i64>,
    pub sha256: Option<String>,
    pub file_size_bytes: Option<i64>,
    pub file_sha256: Option<String>,
    pub status: String,
    pub status_reason: Option<String>,
    pub bytes_received: i64,
    pub upload_owner: Option<String>,
    /// Unix milliseconds.
    pub upload_lease_until: Option<i64>,
    pub generation: i64,
    pub created_at: String,
    pub updated_at: String,
    pub created_by: Option<String>,
}

const COLUMNS: &str = "id, name, version, format, source, url, size_bytes, sha256, file_size_bytes, file_sha256, \
     status, status_reason, bytes_received, upload_owner, upload_lease_until, generation, created_at, updated_at, \
     created_by";

/// Which images a list shows.
#[derive(Debug, Clone, Default)]
pub struct ImageQuery {
    pub name: Option<String>,
    pub status: Option<String>,
}

/// What a finished upload learned about its bytes.
#[derive(Debug, Clone)]
pub struct UploadedContent {
    pub format: String,
    pub size_bytes: i64,
    pub sha256: String,
    pub file_size_bytes: i64,
    pub file_sha256: String,
}

impl Store {
    /// Whether a workflow references image `id` (deleting it is then refused with 409
    /// `IMAGE_IN_USE`): an active (pending or running) workflow writes it.
    pub async fn image_in_use(&self, id: &str) -> Result<bool, sqlx::Error> {
        // Active workflows name their image in `params` (`"image_id":"img_…"`; ids are [a-z0-9_]).
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM workflows WHERE state IN ('pending', 'running') AND params LIKE $1",
        )
        .bind(format!("%\"image_id\":\"{id}\"%"))
        .fetch_one(&self.pool)
        .await?;
        Ok(n > 0)
    }

    pub async fn image_get(conn: &mut AnyConnection, id: &str) -> Result<Option<ImageRow>, sqlx::Error> {
        let sql = format!("SELECT {COLUMNS} FROM images WHERE id = $1");
        sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(conn).await
    }

    /// The id of the image called (`name`, `version`), if any.
    pub async fn image_by_name(
        conn: &mut AnyConnection,
        name: &str,
        version: &str,
    ) -> Result<Option<String>, sqlx::Error> {
        sqlx::query_scalar("SELECT id FROM images WHERE name = $1 AND version = $2")
            .bind(name)
            .bind(version)
            .fetch_optional(conn)
            .await
    }

    /// By name, then version, then id: a stable order.
    pub async fn image_list(
        &self,
        q: &ImageQuery,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<ImageRow>, i64), sqlx::Error> {
        let mut filter = Filter::default();
        if let Some(n) = &q.name {
            filter.push("name = {}", n.clone());
        }
        if let Some(s) = &q.status {
            filter.push("status = {}", s.clone());
        }
        let (w, n) = (filter.where_sql(), filter.next_placeholder());
        let sql = format!("SELECT {COLUMNS} FROM images {w} ORDER BY name, version, id LIMIT ${n} OFFSET ${}", n + 1);
        let rows = filter.bind_all(sqlx::query_as(sqlx::AssertSqlSafe(sql))).bind(limit).bind(offset);
        let rows = rows.fetch_all(&self.pool).await?;
        let count = format!("SELECT COUNT(*) FROM images {w}");
        let total = filter.bind_scalar(sqlx::query_scalar(sqlx::AssertSqlSafe(count))).fetch_one(&self.pool).await?;
        Ok((rows, total))
    }

    pub async fn image_insert(conn: &mut AnyConnection, r: &ImageRow) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO images (id, name, version, format, source, url, size_bytes, sha256, status, bytes_received, \
             generation, created_at, updated_at, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0, 1, $10, \
             $10, $11)",
        )
        .bind(&r.id)
        .bind(&r.name)
        .bind(&r.version)
        .bind(&r.format)
        .bind(&r.source)
        .bind(r.url.as_deref())
        .bind(r.size_bytes)
        .bind(r.sha256.as_deref())
        .bind(&r.status)
        .bind(&r.created_at)
        .bind(r.created_by.as_deref())
        .execute(conn)
        .await
        .map(|_| ())
    }

    /// Renames (name, version) if the row is still at `r.generation`.
    pub async fn image_rename(conn: &mut AnyConnection, r: &ImageRow, now: &str) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(
            "UPDATE images SET name = $2, version = $3, generation = generation + 1, updated_at = $4 \
             WHERE id = $1 AND generation = $5",
        )
        .bind(&r.id)
        .bind(&r.name)
        .bind(&r.version)
        .bind(now)
        .bind(r.generation)
        .execute(conn)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn image_delete(conn: &mut AnyConnection, id: &str) -> Result<bool, sqlx::Error> {
        let done = sqlx::query("DELETE FROM images WHERE id = $1").bind(id).execute(conn).await?;
        Ok(done.rows_affected() == 1)
    }

    /// Takes an upload image for an upload: it must be `pending` or `failed`, or `uploading` under
    /// a claim whose lease ran out (its uploader died). One conditional `UPDATE`, so of two
    /// uploads starting together exactly one wins.
    pub async fn image_claim_upload(
        conn: &mut AnyConnection,
        id: &str,
        owner: &str,
        now_ms: i64,
        lease_until_ms: i64,
        now: &str,
    ) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(
            "UPDATE images SET status = 'uploading', status_reason = NULL, bytes_received = 0, upload_owner = $2, \
             upload_lease_until = $3, generation = generation + 1, updated_at = $4 \
             WHERE id = $1 AND source = 'upload' \
             AND (status IN ('pending', 'failed') OR (status = 'uploading' AND upload_lease_until < $5))",
        )
        .bind(id)
        .bind(owner)
        .bind(lease_until_ms)
        .bind(now)
        .bind(now_ms)
        .execute(conn)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records the bytes received so far and renews the lease; false when the claim is lost.
    pub async fn image_upload_progress(
        &self,
        id: &str,
        owner: &str,
        bytes_received: i64,
        lease_until_ms: i64,
    ) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(
            "UPDATE images SET bytes_received = $3, upload_lease_until = $4 WHERE id = $1 AND upload_owner = $2",
        )
        .bind(id)
        .bind(owner)
        .bind(bytes_received)
        .bind(lease_until_ms)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The upload succeeded: the image is `ready`. False when the claim is lost.
    pub async fn image_upload_ready(
        conn: &mut AnyConnection,
        id: &str,
        owner: &str,
        c: &UploadedContent,
        now: &str,
    ) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(
            "UPDATE images SET status = 'ready', status_reason = NULL, format = $3, size_bytes = $4, sha256 = $5, \
             file_size_bytes = $6, file_sha256 = $7, bytes_received = $6, upload_owner = NULL, \
             upload_lease_until = NULL, generation = generation + 1, updated_at = $8 \
             WHERE id = $1 AND upload_owner = $2",
        )
        .bind(id)
        .bind(owner)
        .bind(&c.format)
        .bind(c.size_bytes)
        .bind(&c.sha256)
        .bind(c.file_size_bytes)
        .bind(&c.file_sha256)
        .bind(now)
        .execute(conn)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The upload failed: the image is `failed` with `reason` and may be uploaded again. False when
    /// the claim is lost.
    pub async fn image_upload_failed(
        conn: &mut AnyConnection,
        id: &str,
        owner: &str,
        reason: &str,
        now: &str,
    ) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(
            "UPDATE images SET status = 'failed', status_reason = $3, upload_owner = NULL, upload_lease_until = NULL, \
             generation = generation + 1, updated_at = $4 WHERE id = $1 AND upload_owner = $2",
        )
        .bind(id)
        .bind(owner)
        .bind(reason)
        .bind(now)
        .execute(conn)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
