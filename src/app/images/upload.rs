//! An image's upload: the body streamed to a staging file by `library::Writer` (never held in
//! memory), progress written to the store about every second, and the image made `ready` by one
//! transaction that renames the file into the library and appends `image.upload`.
//!
//! The upload holds the image by a claim (a random token and a lease renewed with each progress
//! write), so a second upload gets 409 `UPLOAD_IN_PROGRESS` and a killed appliance's claim runs out.
//! However the upload ends short of `ready` (a client gone, a hash mismatch, an error, the request
//! future dropped), `Claim` marks the image `failed` with the reason and removes its files, so a
//! half-written image is never served.

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use ironbay_wire::compression::Format;
use tokio::time::Instant;
use tokio_stream::{Stream, StreamExt};

use super::{ImageView, image_not_found, view};
use crate::app::AppState;
use crate::audit::{self, Event, Outcome};
use crate::auth::Actor;
use crate::error::{Error, Result};
use crate::library::{Library, Stored, WriteError, Writer};
use crate::model::{IdKind, Scope, ids, now_rfc3339};
use crate::store::Store;
use crate::store::images::{ImageRow, UploadedContent};

/// How long a claim outlives its last renewal (a killed appliance's upload can be retried then).
const LEASE: Duration = Duration::from_secs(30);
const PROGRESS_EVERY: Duration = Duration::from_secs(1);
/// A client that sends nothing for this long loses the upload.
const IDLE_LIMIT: Duration = Duration::from_secs(120);

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn lease_until() -> i64 {
    now_ms() + LEASE.as_millis() as i64
}

/// An upload holds this image now (its claim has not run out).
pub(super) fn held(row: &ImageRow) -> bool {
    row.status == "uploading" && row.upload_lease_until.is_some_and(|l| l >= now_ms())
}

pub(super) fn in_progress(row: &ImageRow) -> Error {
    Error::conflict(
        "UPLOAD_IN_PROGRESS",
        format!("image {} is being uploaded ({} bytes so far)", row.id, row.bytes_received),
        Some(serde_json::json!({"image_id": row.id, "bytes_received": row.bytes_received})),
    )
}

/// Why a claim could not be taken.
fn refusal(row: &ImageRow) -> Error {
    if row.source != "upload" {
        return Error::conflict(
            "IMAGE_READY",
            format!("image {} is a URL image: it has no content to upload", row.id),
            Some(serde_json::json!({"image_id": row.id, "source": row.source})),
        );
    }
    if row.status == "ready" {
        return Error::conflict(
            "IMAGE_READY",
            format!("image {} is ready: its content cannot be replaced (create a new image)", row.id),
            Some(serde_json::json!({"image_id": row.id, "status": row.status})),
        );
    }
    in_progress(row)
}

fn superseded(id: &str) -> Error {
    Error::conflict(
        "UPLOAD_SUPERSEDED",
        format!("image {id} was deleted or taken by another upload while this one ran"),
        Some(serde_json::json!({"image_id": id})),
    )
}

/// The format name the registry uses for what the bytes turned out to be.
fn format_name(f: Format) -> &'static str {
    match f {
        Format::Raw => "raw",
        Format::Gzip => "raw.gz",
        Format::Zstd => "raw.zst",
        Format::Xz => "raw.xz",
    }
}

/// One upload's hold on its image, and the cleanup owed while it is armed.
#[derive(Clone)]
struct Claim {
    store: Store,
    library: Library,
    actor: Actor,
    id: String,
    owner: String,
    part: PathBuf,
    armed: bool,
}

impl Claim {
    /// Marks the image `failed` with `reason` (if this upload still holds it) and removes its
    /// staging file, and its served file too when the image never became ready under this claim.
    async fn give_up(&mut self, reason: &str, received: u64) {
        self.armed = false;
        let held = match self.record_failure(reason, received).await {
            Ok(held) => held,
            Err(e) => {
                // The claim then runs out on its own; the files still go.
                tracing::error!(image = %self.id, error = %e, "recording a failed upload");
                true
            }
        };
        let (library, id, part) = (self.library.clone(), self.id.clone(), self.part.clone());
        let removed = tokio::task::spawn_blocking(move || {
            crate::library::remove_if_exists(&part)?;
            if held { crate::library::remove_if_exists(&library.file(&id)) } else { Ok(()) }
        })
        .await;
        if let Ok(Err(e)) = removed {
            tracing::error!(image = %self.id, error = %e, "removing a failed upload's files");
        }
    }

    async fn record_failure(&self, reason: &str, received: u64) -> Result<bool> {
        let mut tx = self.store.begin().await?;
        let held = Store::image_upload_failed(&mut tx, &self.id, &self.owner, reason, &now_rfc3339()).await?;
        if held {
            audit::append(
                &mut tx,
                &self.actor,
                Event::new("image.upload", "image", &self.id)
                    .with_outcome(Outcome::Failure)
                    .with_details(serde_json::json!({"reason": reason, "bytes_received": received})),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(held)
    }

    /// Forgets the upload without touching the image: another upload or a delete owns it now.
    async fn disown(&mut self) {
        self.armed = false;
        let part = self.part.clone();
        let _ = tokio::task::spawn_blocking(move || crate::library::remove_if_exists(&part)).await;
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        // The request future was dropped mid-upload (the client went away): clean up anyway.
        let mut claim = self.clone();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move { claim.give_up("the upload stopped before its end (connection closed)", 0).await });
        }
    }
}

/// How the body's stream ended, short of success.
enum Cut {
    Failed { reason: String, error: Error },
    Superseded,
}

impl AppState {
    /// Streams `body` into image `id` (an upload image that is `pending` or `failed`) and makes it
    /// `ready`. Refusals: 404 `IMAGE_NOT_FOUND`, 409 `IMAGE_READY` / `UPLOAD_IN_PROGRESS`; a failed
    /// upload leaves the image `failed` and answers 422 `SHA256_MISMATCH` / `SIZE_MISMATCH` /
    /// `INVALID_IMAGE`, 400 `UPLOAD_INCOMPLETE`, or 500 (storage).
    pub async fn image_upload<S, E>(&self, actor: &Actor, id: &str, body: S) -> Result<ImageView>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        actor.require(Scope::AssetsWrite)?;
        if !ids::looks_like(IdKind::Image, id) {
            return Err(image_not_found(id));
        }
        let owner = ids::random_tail(24);
        let mut conn = self.store.pool().acquire().await?;
        if !Store::image_claim_upload(&mut conn, id, &owner, now_ms(), lease_until(), &now_rfc3339()).await? {
            return Err(refusal(&self.load_image(&mut conn, id).await?));
        }
        let expected = self.load_image(&mut conn, id).await?;
        drop(conn);
        let library = self.library();
        let mut claim = Claim {
            store: self.store.clone(),
            part: library.part(id, &owner),
            library,
            actor: actor.clone(),
            id: id.to_string(),
            owner,
            armed: true,
        };
        let (library, part, id_owned) = (claim.library.clone(), claim.part.clone(), id.to_string());
        let file = tokio::task::spawn_blocking(move || {
            library.prepare(&id_owned)?;
            std::fs::File::create(&part)
        })
        .await
        .map_err(Error::internal)
        .and_then(|r| r.map_err(|e| Error::internal(format_args!("image library: {e}"))));
        let file = match file {
            Ok(f) => f,
            Err(e) => {
                claim.give_up("the image library is not writable (see the appliance log)", 0).await;
                return Err(e);
            }
        };
        let (stored, received) = match self.receive(&claim, Writer::start(file), body).await {
            Ok(done) => done,
            Err((Cut::Superseded, _)) => {
                claim.disown().await;
                return Err(superseded(id));
            }
            Err((Cut::Failed { reason, error }, received)) => {
                claim.give_up(&reason, received).await;
                return Err(error);
            }
        };
        if let Err(error) = check_expected(&expected, &stored) {
            let reason = error.to_string();
            claim.give_up(&reason, received).await;
            return Err(error);
        }
        self.publish(&mut claim, &stored).await?;
        let mut conn = self.store.pool().acquire().await?;
        Ok(view(&self.load_image(&mut conn, id).await?))
    }

    /// Feeds the body to the writer, renewing the claim and recording progress every second.
    async fn receive<S, E>(
        &self,
        claim: &Claim,
        writer: Writer,
        mut body: S,
    ) -> std::result::Result<(Stored, u64), (Cut, u64)>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let mut received = 0u64;
        let mut last_data = Instant::now();
        let mut ticker = tokio::time::interval_at(Instant::now() + PROGRESS_EVERY, PROGRESS_EVERY);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let incomplete =
            |reason: String| Cut::Failed { error: Error::bad_request("UPLOAD_INCOMPLETE", reason.clone()), reason };
        loop {
            tokio::select! {
                next = body.next() => match next {
                    Some(Ok(chunk)) => {
                        received += chunk.len() as u64;
                        last_data = Instant::now();
                        if writer.send(chunk).await.is_err() {
                            // The writer stopped: `finish` says why.
                            break;
                        }
                    }
                    Some(Err(e)) => {
                        let reason = format!("the upload was cut off after {received} bytes: {e}");
                        return Err((incomplete(reason), received));
                    }
                    None => break,
                },
                _ = ticker.tick() => {
                    if last_data.elapsed() > IDLE_LIMIT {
                        let reason = format!("no data for {} s after {received} bytes", IDLE_LIMIT.as_secs());
                        return Err((incomplete(reason), received));
                    }
                    let at = i64::try_from(received).unwrap_or(i64::MAX);
                    match self.store.image_upload_progress(&claim.id, &claim.owner, at, lease_until()).await {
                        Ok(true) => {}
                        Ok(false) => return Err((Cut::Superseded, received)),
                        // A lost write is only a stale progress figure; the final step checks the claim.
                        Err(e) => tracing::warn!(image = %claim.id, error = %e, "recording upload progress"),
                    }
                }
            }
        }
        match writer.finish().await {
            Ok(stored) => Ok((stored, received)),
            Err(e @ WriteError::Decode { .. }) => {
                let reason = e.to_string();
                let error = Error::Unprocessable {
                    code: "INVALID_IMAGE",
                    message: reason.clone(),
                    details: Some(serde_json::json!({"image_id": claim.id})),
                };
                Err((Cut::Failed { reason, error }, received))
            }
            Err(e) => {
                let reason = e.to_string();
                Err((Cut::Failed { error: Error::internal(format_args!("image {}: {e}", claim.id)), reason }, received))
            }
        }
    }

    /// Makes the image `ready`: in one transaction the conditional update, the rename into the
    /// library and the audit entry. Any failure leaves the claim armed, so `Claim` cleans up.
    async fn publish(&self, claim: &mut Claim, stored: &Stored) -> Result<()> {
        let size = |n: u64| i64::try_from(n).map_err(Error::internal);
        let content = UploadedContent {
            format: format_name(stored.format).to_string(),
            size_bytes: size(stored.image_size)?,
            sha256: stored.image_sha256.clone(),
            file_size_bytes: size(stored.file_size)?,
            file_sha256: stored.file_sha256.clone(),
        };
        let mut tx = self.store.begin().await?;
        if !Store::image_upload_ready(&mut tx, &claim.id, &claim.owner, &content, &now_rfc3339()).await? {
            drop(tx);
            claim.disown().await;
            return Err(superseded(&claim.id));
        }
        let (library, part, id) = (claim.library.clone(), claim.part.clone(), claim.id.clone());
        tokio::task::spawn_blocking(move || library.publish(&part, &id)).await.map_err(Error::internal)?.map_err(
            |e| Error::internal(format_args!("image {}: moving the upload into the library: {e}", claim.id)),
        )?;
        audit::append(
            &mut tx,
            &claim.actor,
            Event::new("image.upload", "image", &claim.id).with_details(serde_json::json!({
                "format": content.format, "size_bytes": content.size_bytes, "sha256": content.sha256,
                "file_size_bytes": content.file_size_bytes, "file_sha256": content.file_sha256
            })),
        )
        .await?;
        tx.commit().await?;
        claim.armed = false;
        Ok(())
    }
}

/// The hash and size the image was created with, if any, must be what arrived.
fn check_expected(expected: &ImageRow, stored: &Stored) -> Result<()> {
    if let Some(want) = &expected.sha256
        && *want != stored.image_sha256
    {
        return Err(Error::Unprocessable {
            code: "SHA256_MISMATCH",
            message: format!(
                "SHA-256 mismatch: the image's record expects {want}, the upload decompresses to {}",
                stored.image_sha256
            ),
            details: Some(serde_json::json!({
                "field": "sha256", "expected": want, "actual": stored.image_sha256, "file_sha256": stored.file_sha256
            })),
        });
    }
    if let Some(want) = expected.size_bytes
        && u64::try_from(want).ok() != Some(stored.image_size)
    {
        return Err(Error::Unprocessable {
            code: "SIZE_MISMATCH",
            message: format!(
                "size mismatch: the image's record expects {want} bytes, the upload has {}",
                stored.image_size
            ),
            details: Some(serde_json::json!({"field": "size_bytes", "expected": want, "actual": stored.image_size})),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request future dropped mid-upload (hyper drops it when the connection goes) still
    /// leaves the image `failed` and its staging file removed.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dropped_upload_is_cleaned_up() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&format!("sqlite://{}/t.db", dir.path().display())).await.unwrap();
        let now = now_rfc3339();
        let row = ImageRow {
            id: crate::model::new_id(IdKind::Image),
            name: "dropped".into(),
            format: "raw".into(),
            source: "upload".into(),
            status: "pending".into(),
            created_at: now.clone(),
            updated_at: now.clone(),
            ..ImageRow::default()
        };
        let mut conn = store.pool().acquire().await.unwrap();
        Store::image_insert(&mut conn, &row).await.unwrap();
        assert!(Store::image_claim_upload(&mut conn, &row.id, "owner", now_ms(), lease_until(), &now).await.unwrap());
        assert!(
            !Store::image_claim_upload(&mut conn, &row.id, "other", now_ms(), lease_until(), &now).await.unwrap(),
            "a held image cannot be claimed twice"
        );
        let library = Library::new(dir.path());
        library.prepare(&row.id).unwrap();
        let part = library.part(&row.id, "owner");
        std::fs::write(&part, b"half an image").unwrap();
        let claim = Claim {
            store: store.clone(),
            library,
            actor: Actor::system(),
            id: row.id.clone(),
            owner: "owner".into(),
            part: part.clone(),
            armed: true,
        };
        drop(claim);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let now = Store::image_get(&mut conn, &row.id).await.unwrap().unwrap();
            if now.status == "failed" && !part.exists() {
                assert!(now.upload_owner.is_none());
                break;
            }
            assert!(std::time::Instant::now() < deadline, "not cleaned up: {} {}", now.status, part.exists());
            // Only the polling interval: the condition ends the wait.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
