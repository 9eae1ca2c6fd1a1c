//! Disk operations on real block devices: [`wipe`] (quick, discard, zero, secure), [`write_image`]
//! (an HTTP image streamed onto a disk, SHA-256 checked before the disk becomes bootable) and
//! [`describe`] (a [`Disk`] for any block device path, from sysfs).
//!
//! Every operation opens the device O_RDWR | O_EXCL, so a mounted or otherwise held device fails
//! at once with a clear reason instead of being written under a filesystem's feet.

mod blkdev;
mod image;
mod nvme;
mod signatures;
mod sysfs;
mod verify;
mod wipe;

// Shared with the appliance, which hashes uploaded images exactly as this side will.
use ironbay_wire::compression as decompress;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{SystemTime, UNIX_EPOCH};

use ironbay_wire::command::WipeMethod;
use ironbay_wire::inventory::Disk;
use ironbay_wire::progress::{DiskWipe, ImageWrite};

use crate::report::{Emit, log};

/// Why a disk operation failed; [`DiskError::code`] is the stable code the outcome line carries.
#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    #[error("{disk} is protected ({reason}): not written")]
    Protected { disk: String, reason: String },
    #[error("{path}: no such block device")]
    NotFound { path: String },
    #[error("cannot open {disk} exclusively: {source}{}", busy_hint(.source))]
    Open { disk: String, source: std::io::Error },
    #[error("{what}: {source}")]
    Io { what: String, source: std::io::Error },
    #[error("{0}")]
    Http(String),
    #[error("the image is larger than {disk} ({image_at_least} bytes or more, the disk has {disk_bytes})")]
    ImageTooLarge { disk: String, image_at_least: u64, disk_bytes: u64 },
    #[error(
        "SHA-256 mismatch: expected {expected}, the image written hashes to {actual}; the disk's first MiB stays zeroed"
    )]
    Sha256Mismatch { expected: String, actual: String },
    #[error("decompressing the {format} image failed: {message}")]
    Decompress { format: &'static str, message: String },
    #[error("`{0}` is not a SHA-256 (64 hex characters)")]
    BadSha256(String),
}

impl DiskError {
    pub fn code(&self) -> &'static str {
        match self {
            DiskError::Protected { .. } => "DISK_PROTECTED",
            DiskError::NotFound { .. } => "DISK_NOT_FOUND",
            DiskError::Open { .. } => "DISK_OPEN_FAILED",
            DiskError::Io { .. } => "IO_ERROR",
            DiskError::Http(_) => "HTTP_ERROR",
            DiskError::ImageTooLarge { .. } => "IMAGE_TOO_LARGE",
            DiskError::Sha256Mismatch { .. } => "SHA256_MISMATCH",
            DiskError::Decompress { .. } => "DECOMPRESS_FAILED",
            DiskError::BadSha256(_) => "BAD_SHA256",
        }
    }

    fn io(what: impl Into<String>, source: std::io::Error) -> DiskError {
        DiskError::Io { what: what.into(), source }
    }
}

/// Wipes one disk; never panics; a protected disk (Disk::protected_reason: read-only, removable,
/// virtual media) is returned with status "skipped" and the reason, untouched.
pub fn wipe(disk: &Disk, method: WipeMethod, emit: Emit<'_>) -> DiskWipe {
    let mut r = DiskWipe {
        disk: disk.path.clone(),
        method: method.as_str().into(),
        status: "failed".into(),
        reason: None,
        size_bytes: disk.size_bytes,
        model: disk.model.clone(),
        serial: disk.serial.clone(),
        bytes_wiped: 0,
        started_at_unix_ms: now_ms(),
        finished_at_unix_ms: 0,
        verification: None,
    };
    if let Some(why) = disk.protected_reason() {
        log(emit, format!("skipped {}: {why}", disk.path));
        r.status = "skipped".into();
        r.reason = Some(why.into());
    } else {
        // A bug must cost one disk's result, not the agent: the caller still gets a record.
        let ran = catch_unwind(AssertUnwindSafe(|| wipe::run(disk, method, &mut r, &mut *emit)));
        let failure = match ran {
            Ok(Ok(())) => match &r.verification {
                Some(v) if v.passed => None,
                Some(v) => Some(format!(
                    "verification failed: {} of {} samples (expect {}) at offsets {:?}",
                    v.failures.len(),
                    v.samples,
                    v.expect,
                    v.failures
                )),
                None => Some("no verification was recorded".into()),
            },
            Ok(Err(reason)) => Some(reason),
            Err(_) => Some("internal error (panic) during the wipe".into()),
        };
        match failure {
            None => r.status = "wiped".into(),
            Some(reason) => {
                log(emit, format!("wipe {} of {} failed: {reason}", method.as_str(), disk.path));
                r.status = "failed".into();
                r.reason = Some(match r.reason.take() {
                    Some(note) => format!("{reason}; {note}"),
                    None => reason,
                });
            }
        }
    }
    r.finished_at_unix_ms = now_ms();
    r
}

/// Streams the image at `url` onto `disk`, verifying `sha256` (hex, of the decompressed bytes).
pub fn write_image(url: &str, sha256: &str, disk: &Disk, emit: Emit<'_>) -> Result<ImageWrite, DiskError> {
    image::write(url, sha256, disk, emit)
}

/// Builds a `Disk` for any block device path from /sys/class/block/<name> (size, ro, removable,
/// rotational, logical/physical block size; model/serial when present). Works for loop devices.
pub fn describe(path: &std::path::Path) -> Result<Disk, DiskError> {
    sysfs::describe(path)
}

fn busy_hint(e: &std::io::Error) -> &'static str {
    if e.raw_os_error() == Some(libc::EBUSY) { " (mounted, or held by md, LVM or another program)" } else { "" }
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}
