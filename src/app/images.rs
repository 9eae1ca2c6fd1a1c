//! The images registry: OS images the agent writes to disks. An image is known by URL (ready at
//! once; its SHA-256 is required) or uploaded to the appliance (`upload`: streamed to disk, hashed
//! on the way, then served by the boot routes at `/images/library/<id>`). `sha256` and
//! `size_bytes` always describe the image as written to disk, decompressed, which is what the
//! agent verifies; an upload also records `file_sha256` / `file_size_bytes` of its stored bytes.
//! The upload itself is `upload`.

mod upload;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{AppState, Page, PageRequest, present};
use crate::audit::{self, Event};
use crate::auth::Actor;
use crate::error::{Error, Result};
use crate::library::Library;
use crate::model::{IdKind, Scope, ids, new_id, now_rfc3339};
use crate::store::images::{ImageQuery, ImageRow};
use crate::store::{Store, is_unique_violation};

/// The formats an image may have: raw, or raw compressed (the agent decodes by magic).
pub const FORMATS: &[&str] = &["raw", "raw.gz", "raw.zst", "raw.xz"];
pub const STATUSES: &[&str] = &["pending", "uploading", "ready", "failed"];
const MAX_NAME: usize = 128;
const MAX_VERSION: usize = 64;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateImage {
    /// 1-128 characters of `A-Z a-z 0-9 . _ -`; (name, version) is unique.
    pub name: String,
    /// 1-64 characters of `A-Z a-z 0-9 . _ + -`.
    #[serde(default)]
    pub version: Option<String>,
    /// `http://` or `https://`: the agent downloads the image from there, and the image is ready
    /// at once. Omitted: an upload record (`PUT /api/v1/images/{id}/content`).
    #[serde(default)]
    pub url: Option<String>,
    /// SHA-256 (64 hex digits) of the image as written to disk, i.e. decompressed. Required with
    /// `url`; for an upload, the hash the uploaded image must have.
    #[serde(default)]
    pub sha256: Option<String>,
    /// `raw`, `raw.gz`, `raw.zst` or `raw.xz`; default from the URL's (else the name's) suffix,
    /// else `raw`. An upload's format is what its bytes turn out to be.
    #[serde(default)]
    pub format: Option<String>,
    /// Size of the image as written to disk (decompressed); for an upload, the size it must have.
    #[serde(default)]
    pub size_bytes: Option<i64>,
}

/// Renames only: content, URL and hashes never change (create another image instead).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateImage {
    #[serde(default)]
    pub name: Option<String>,
    /// `null` removes the version.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub version: Option<Option<String>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ImageView {
    pub id: String,
    pub name: String,
    pub version: Option<String>,
    /// `raw`, `raw.gz`, `raw.zst` or `raw.xz`.
    pub format: String,
    /// `url` or `upload`.
    pub source: String,
    /// Where a `url` image is downloaded from; null for uploads.
    pub url: Option<String>,
    /// For uploads: the path under the appliance's HTTP base the image is served at
    /// (`images/library/<id>`), once `ready`.
    pub library_path: Option<String>,
    /// Of the image as written to disk (decompressed).
    pub size_bytes: Option<i64>,
    /// SHA-256 of the image as written to disk (decompressed): what the agent verifies.
    pub sha256: Option<String>,
    /// Uploads: the stored (possibly compressed) bytes.
    pub file_size_bytes: Option<i64>,
    pub file_sha256: Option<String>,
    /// `pending` (waiting for its upload), `uploading`, `ready` or `failed`.
    pub status: String,
    /// Why it `failed`.
    pub status_reason: Option<String>,
    /// Stored bytes received by the current or last upload (updated about every second).
    pub bytes_received: i64,
    pub created_at: String,
    pub updated_at: String,
    /// The user or API key id that created it.
    pub created_by: Option<String>,
}

/// What a workflow needs to have the agent write a ready image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageRef {
    pub id: String,
    /// `url` images: the URL to download.
    pub url: Option<String>,
    /// Uploads: the path under the appliance's HTTP base (`images/library/<id>`).
    pub library_path: Option<String>,
    /// Of the decompressed image (the agent's `write-image --sha256`).
    pub sha256: String,
    pub size_bytes: Option<i64>,
    pub format: String,
}

/// The path, under the appliance's HTTP base URL, that serves uploaded image `id`.
pub fn library_path(id: &str) -> String {
    format!("images/library/{id}")
}

pub(crate) fn image_not_found(id: &str) -> Error {
    Error::not_found("IMAGE_NOT_FOUND", format!("image {id} not found"))
}

fn view(r: &ImageRow) -> ImageView {
    let upload = r.source == "upload";
    ImageView {
        id: r.id.clone(),
        name: r.name.clone(),
        version: (!r.version.is_empty()).then(|| r.version.clone()),
        format: r.format.clone(),
        source: r.source.clone(),
        url: r.url.clone(),
        library_path: upload.then(|| library_path(&r.id)),
        size_bytes: r.size_bytes,
        sha256: r.sha256.clone(),
        file_size_bytes: r.file_size_bytes,
        file_sha256: r.file_sha256.clone(),
        status: r.status.clone(),
        status_reason: r.status_reason.clone(),
        bytes_received: r.bytes_received,
        created_at: r.created_at.clone(),
        updated_at: r.updated_at.clone(),
        created_by: r.created_by.clone(),
    }
}

fn check_chars(field: &str, value: &str, max: usize, extra: &[char]) -> Result<()> {
    let ok = (1..=max).contains(&value.len())
        && value.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') || extra.contains(&c));
    if !ok {
        let allowed = if extra.is_empty() { "A-Z a-z 0-9 . _ -" } else { "A-Z a-z 0-9 . _ + -" };
        return Err(Error::invalid_field(field, format!("{field} must be 1-{max} characters of {allowed}")));
    }
    Ok(())
}

fn check_name(name: &str) -> Result<()> {
    check_chars("name", name, MAX_NAME, &[])
}

fn check_version(version: &str) -> Result<()> {
    check_chars("version", version, MAX_VERSION, &['+'])
}

/// 64 hex digits, answered lowercase.
fn check_sha256(s: &str) -> Result<String> {
    if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::invalid_field(
            "sha256",
            "sha256 must be 64 hexadecimal digits (SHA-256 of the decompressed image)",
        ));
    }
    Ok(s.to_ascii_lowercase())
}

fn check_image_url(url: &str) -> Result<String> {
    if url.chars().any(char::is_whitespace) {
        return Err(Error::invalid_field("url", "url must not contain whitespace"));
    }
    super::webhooks::check_url(url)
}

fn check_format(f: &str) -> Result<()> {
    if !FORMATS.contains(&f) {
        return Err(Error::invalid_field("format", format!("format must be one of {}", FORMATS.join(", "))));
    }
    Ok(())
}

/// The format a file name (or a URL's path) suggests.
fn format_from_suffix(name: &str) -> &'static str {
    if name.ends_with(".gz") {
        "raw.gz"
    } else if name.ends_with(".zst") {
        "raw.zst"
    } else if name.ends_with(".xz") {
        "raw.xz"
    } else {
        "raw"
    }
}

fn duplicate(name: &str, version: &str, other: Option<String>) -> Error {
    let shown = if version.is_empty() { name.to_string() } else { format!("{name} {version}") };
    Error::conflict(
        "DUPLICATE_IMAGE",
        format!("an image `{shown}` exists"),
        Some(serde_json::json!({"name": name, "version": version, "image_id": other})),
    )
}

impl AppState {
    fn library(&self) -> Library {
        Library::new(&self.config.boot.images_dir)
    }

    async fn load_image(&self, conn: &mut sqlx::AnyConnection, id: &str) -> Result<ImageRow> {
        if !ids::looks_like(IdKind::Image, id) {
            return Err(image_not_found(id));
        }
        Store::image_get(conn, id).await?.ok_or_else(|| image_not_found(id))
    }

    pub async fn image_create(&self, actor: &Actor, req: CreateImage) -> Result<ImageView> {
        actor.require(Scope::AssetsWrite)?;
        check_name(&req.name)?;
        let version = req.version.unwrap_or_default();
        if !version.is_empty() {
            check_version(&version)?;
        }
        let url = req.url.as_deref().map(check_image_url).transpose()?;
        let sha256 = req.sha256.as_deref().map(check_sha256).transpose()?;
        if url.is_some() && sha256.is_none() {
            return Err(Error::invalid_field(
                "sha256",
                "sha256 is required for a URL image: the SHA-256 of the image as written to disk (decompressed)",
            ));
        }
        if let Some(f) = &req.format {
            check_format(f)?;
        }
        if req.size_bytes.is_some_and(|s| s < 1) {
            return Err(Error::invalid_field("size_bytes", "size_bytes must be at least 1"));
        }
        let format = match (&req.format, &url) {
            (Some(f), _) => f.clone(),
            (None, Some(u)) => {
                let path = reqwest::Url::parse(u).map(|p| p.path().to_string()).unwrap_or_default();
                format_from_suffix(&path).to_string()
            }
            (None, None) => format_from_suffix(&req.name).to_string(),
        };
        let now = now_rfc3339();
        let row = ImageRow {
            id: new_id(IdKind::Image),
            name: req.name,
            version,
            format,
            source: if url.is_some() { "url" } else { "upload" }.into(),
            status: if url.is_some() { "ready" } else { "pending" }.into(),
            url,
            size_bytes: req.size_bytes,
            sha256,
            generation: 1,
            created_at: now.clone(),
            updated_at: now,
            created_by: actor.id().map(str::to_string),
            ..ImageRow::default()
        };
        let mut tx = self.store.begin().await?;
        if let Some(other) = Store::image_by_name(&mut tx, &row.name, &row.version).await? {
            return Err(duplicate(&row.name, &row.version, Some(other)));
        }
        Store::image_insert(&mut tx, &row).await.map_err(|e| {
            if is_unique_violation(&e, "name") { duplicate(&row.name, &row.version, None) } else { e.into() }
        })?;
        audit::append(
            &mut tx,
            actor,
            Event::new("image.create", "image", &row.id).with_details(serde_json::json!({
                "name": row.name, "version": row.version, "source": row.source, "url": row.url,
                "sha256": row.sha256, "format": row.format
            })),
        )
        .await?;
        tx.commit().await?;
        Ok(view(&row))
    }

    pub async fn image_get(&self, actor: &Actor, id: &str) -> Result<ImageView> {
        actor.require(Scope::AssetsRead)?;
        let mut conn = self.store.pool().acquire().await?;
        Ok(view(&self.load_image(&mut conn, id).await?))
    }

    /// Images by name, then version; `name` and `status` filter exactly.
    pub async fn image_list(
        &self,
        actor: &Actor,
        name: Option<&str>,
        status: Option<&str>,
        page: PageRequest,
    ) -> Result<Page<ImageView>> {
        actor.require(Scope::AssetsRead)?;
        if let Some(s) = status
            && !STATUSES.contains(&s)
        {
            return Err(Error::BadRequest {
                code: "INVALID_QUERY",
                message: format!("`status` must be one of {}, got `{s}`", STATUSES.join(", ")),
                details: Some(serde_json::json!({"field": "status"})),
            });
        }
        let q = ImageQuery { name: name.map(str::to_string), status: status.map(str::to_string) };
        let (rows, total) = self.store.image_list(&q, page.limit(), page.offset()).await?;
        Ok(Page { items: rows.iter().map(view).collect(), page, total })
    }

    pub async fn image_update(&self, actor: &Actor, id: &str, req: UpdateImage) -> Result<ImageView> {
        actor.require(Scope::AssetsWrite)?;
        if let Some(n) = &req.name {
            check_name(n)?;
        }
        if let Some(Some(v)) = &req.version {
            check_version(v)?;
        }
        let mut tx = self.store.begin().await?;
        let mut row = self.load_image(&mut tx, id).await?;
        let before = (row.name.clone(), row.version.clone());
        if let Some(n) = req.name {
            row.name = n;
        }
        if let Some(v) = req.version {
            row.version = v.unwrap_or_default();
        }
        if (row.name.clone(), row.version.clone()) != before
            && let Some(other) = Store::image_by_name(&mut tx, &row.name, &row.version).await?
        {
            return Err(duplicate(&row.name, &row.version, Some(other)));
        }
        let now = now_rfc3339();
        let renamed = Store::image_rename(&mut tx, &row, &now).await.map_err(|e| {
            if is_unique_violation(&e, "name") { duplicate(&row.name, &row.version, None) } else { e.into() }
        })?;
        if !renamed {
            return Err(Error::conflict("IMAGE_CHANGED", "the image changed while this update ran: retry", None));
        }
        audit::append(
            &mut tx,
            actor,
            Event::new("image.update", "image", id).with_details(serde_json::json!({
                "from": {"name": before.0, "version": before.1}, "to": {"name": row.name, "version": row.version}
            })),
        )
        .await?;
        tx.commit().await?;
        row.generation += 1;
        row.updated_at = now;
        Ok(view(&row))
    }

    /// Deletes the record, then its file. Refused while a workflow uses the image or an upload
    /// holds it.
    pub async fn image_delete(&self, actor: &Actor, id: &str) -> Result<()> {
        actor.require(Scope::AssetsWrite)?;
        if ids::looks_like(IdKind::Image, id) && self.store.image_in_use(id).await? {
            return Err(Error::conflict(
                "IMAGE_IN_USE",
                format!("image {id} is used by a workflow"),
                Some(serde_json::json!({"image_id": id})),
            ));
        }
        let mut tx = self.store.begin().await?;
        let row = self.load_image(&mut tx, id).await?;
        if upload::held(&row) {
            return Err(upload::in_progress(&row));
        }
        Store::image_delete(&mut tx, id).await?;
        audit::append(
            &mut tx,
            actor,
            Event::new("image.delete", "image", id).with_details(serde_json::json!({
                "name": row.name, "version": row.version, "source": row.source
            })),
        )
        .await?;
        tx.commit().await?;
        // The record is gone first: a file left by a failed removal is an orphan (logged), never
        // an image that is listed without its file.
        let library = self.library();
        let id_owned = id.to_string();
        match tokio::task::spawn_blocking(move || library.remove(&id_owned)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(image = %id, error = %e, "deleting the image's file failed"),
            Err(e) => tracing::error!(image = %id, error = %e, "deleting the image's file failed"),
        }
        Ok(())
    }

    /// A ready image as a workflow hands it to the agent: 404 `IMAGE_NOT_FOUND`, 409
    /// `IMAGE_NOT_READY`. No permission check: the caller (the workflow engine) made its own.
    pub async fn image_for_workflow(&self, id: &str) -> Result<ImageRef> {
        let mut conn = self.store.pool().acquire().await?;
        let row = self.load_image(&mut conn, id).await?;
        let sha256 = match (&row.status[..], row.sha256) {
            ("ready", Some(s)) => s,
            _ => {
                return Err(Error::conflict(
                    "IMAGE_NOT_READY",
                    format!("image {id} is {}, not ready", row.status),
                    Some(serde_json::json!({"image_id": id, "status": row.status})),
                ));
            }
        };
        let upload = row.source == "upload";
        Ok(ImageRef {
            library_path: upload.then(|| library_path(&row.id)),
            id: row.id,
            url: row.url,
            sha256,
            size_bytes: row.size_bytes,
            format: row.format,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_versions_hashes_and_formats() {
        assert!(check_name("debian-12.raw.zst").is_ok());
        for bad in ["", "a b", "a/b", "é", &"x".repeat(129)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_version("1.2.3+build.4").is_ok());
        assert!(check_version("1 2").is_err());
        let h = "AB".repeat(32);
        assert_eq!(check_sha256(&h).unwrap(), "ab".repeat(32));
        assert!(check_sha256(&"g".repeat(64)).is_err());
        assert!(check_sha256("abc").is_err());
        assert_eq!(format_from_suffix("/os/debian.img.zst"), "raw.zst");
        assert_eq!(format_from_suffix("debian.raw.gz"), "raw.gz");
        assert_eq!(format_from_suffix("debian.xz"), "raw.xz");
        assert_eq!(format_from_suffix("debian.img"), "raw");
        assert!(check_image_url("https://example.com/a b.img").is_err());
        assert!(check_image_url("ftp://example.com/a.img").is_err());
        assert!(check_image_url("http://10.0.0.1:8080/a.img").is_ok());
        assert_eq!(library_path("img_x"), "images/library/img_x");
    }
}
