//! write-image: an HTTP stream, decompressed, hashed and written with O_DIRECT.
//!
//! The disk must never be left bootable with a half-written or wrong image: its first MiB
//! (MBR, GPT header and entries, boot code) is zeroed before anything else, the image's own first
//! MiB is held in memory, and it is written last, only once the rest is on the disk (fdatasync'd)
//! and the whole image's SHA-256 matched. Any failure leaves the first MiB zeroed.

use std::cell::Cell;
use std::io::{self, Read};
use std::path::Path;
use std::rc::Rc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ironbay_wire::inventory::Disk;
use ironbay_wire::progress::ImageWrite;
use sha2::{Digest, Sha256};

use super::DiskError;
use super::blkdev::{AlignedBuf, Device, errno_name};
use super::decompress::{self, Format, read_full};
use crate::report::{Emit, Meter, log};

const HEAD: usize = 1024 * 1024;
/// Write size: large enough that the device, not the syscalls, is the limit.
const CHUNK: usize = 8 * 1024 * 1024;
/// Buffers in flight between the reading (and hashing) thread and the writing one.
const BUFFERS: usize = 3;

pub fn write(url: &str, sha256: &str, disk: &Disk, emit: Emit<'_>) -> Result<ImageWrite, DiskError> {
    let expected = parse_sha256(sha256)?;
    if let Some(why) = disk.protected_reason() {
        return Err(DiskError::Protected { disk: disk.path.clone(), reason: why.into() });
    }
    let dev =
        Device::open_rw(Path::new(&disk.path)).map_err(|source| DiskError::Open { disk: disk.path.clone(), source })?;
    let started = Instant::now();
    let too_large = |at_least: u64| DiskError::ImageTooLarge {
        disk: disk.path.clone(),
        image_at_least: at_least,
        disk_bytes: dev.size,
    };

    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        // A stalled server must fail the write, not hang the agent.
        .timeout_per_read(Some(Duration::from_secs(120)))
        .build()
        .into();
    let response = agent.get(url).call().map_err(|e| DiskError::Http(format!("GET {url}: {e}")))?;
    let content_length = response.body().content_length();
    let body = response.into_body().into_reader();
    let received = Rc::new(Cell::new(0u64));
    let net_failed = Rc::new(Cell::new(false));
    let mut counted = Counted { inner: body, received: received.clone(), failed: net_failed.clone() };

    let mut magic = [0u8; decompress::MAGIC_LEN];
    let n = read_full(&mut counted, &mut magic).map_err(|e| DiskError::Http(format!("GET {url}: reading: {e}")))?;
    let format = decompress::detect(&magic[..n]);
    if format == Format::Raw
        && let Some(len) = content_length
        && len > dev.size
    {
        // Known before anything is written: the disk stays as it was.
        return Err(too_large(len));
    }
    let mut reader = decompress::decoder(format, io::Cursor::new(magic[..n].to_vec()).chain(counted))
        .map_err(|e| DiskError::Decompress { format: format.as_str(), message: e.to_string() })?;
    let read_error = |e: io::Error| {
        if net_failed.get() || format == Format::Raw {
            DiskError::Http(format!("GET {url}: reading the body: {e}"))
        } else {
            DiskError::Decompress { format: format.as_str(), message: e.to_string() }
        }
    };
    log(
        emit,
        format!(
            "writing {url} ({}, {}) to {} ({} bytes)",
            format.as_str(),
            content_length.map_or("length unknown".into(), |l| format!("{l} bytes")),
            disk.path,
            dev.size
        ),
    );

    // From here on the disk is not bootable until the very end.
    let mut head = AlignedBuf::new(HEAD);
    let head_zero = (HEAD as u64).min(dev.size) as usize;
    dev.write_at(&head.as_slice()[..head_zero], 0)
        .and_then(|()| dev.sync())
        .map_err(|e| DiskError::io(format!("zeroing the first MiB of {}", disk.path), e))?;

    let total = if format == Format::Raw { content_length.unwrap_or(0) } else { 0 };
    let mut meter = Meter::new("write", Some(&disk.path), total);
    let mut hasher = Sha256::new();
    let head_len = read_full(&mut reader, head.as_mut_slice()).map_err(read_error)?;
    if head_len as u64 > dev.size {
        return Err(too_large(head_len as u64));
    }
    hasher.update(&head.as_slice()[..head_len]);
    meter.advance(head_len as u64, emit);

    let mut end = head_len as u64;
    if head_len == HEAD {
        end = stream_rest(&dev, &mut reader, &mut hasher, &mut meter, emit, &read_error, &too_large, &disk.path)?;
    }
    dev.sync().map_err(|e| DiskError::io(format!("fdatasync {}", disk.path), e))?;
    let actual = hex(&hasher.finalize());
    if actual != expected {
        log(emit, format!("{}: SHA-256 mismatch; the first MiB stays zeroed", disk.path));
        return Err(DiskError::Sha256Mismatch { expected, actual });
    }

    // Verified: now the disk may become bootable.
    dev.write_any_at(&head, head_len, 0)
        .and_then(|()| dev.sync())
        .map_err(|e| DiskError::io(format!("writing the first MiB of {}", disk.path), e))?;
    meter.finish(emit);
    dev.flush_buffers();
    if let Err(e) = dev.reread_partitions() {
        log(emit, format!("{}: re-reading the partition table failed: {} ({e})", disk.path, errno_name(&e)));
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(ImageWrite {
        disk: disk.path.clone(),
        url: url.into(),
        format: format.as_str().into(),
        sha256: actual,
        bytes_written: end,
        bytes_received: received.get(),
        seconds,
        rate: if seconds > 0.0 { end as f64 / seconds } else { 0.0 },
    })
}

/// Everything after the first MiB: this thread reads and hashes, a second one writes, so the
/// network, the decompressor and the disk work at the same time. Returns the image's length.
#[allow(clippy::too_many_arguments)]
fn stream_rest(
    dev: &Device,
    reader: &mut dyn Read,
    hasher: &mut Sha256,
    meter: &mut Meter,
    emit: Emit<'_>,
    read_error: &dyn Fn(io::Error) -> DiskError,
    too_large: &dyn Fn(u64) -> DiskError,
    path: &str,
) -> Result<u64, DiskError> {
    std::thread::scope(|s| {
        let (to_writer, filled) = mpsc::sync_channel::<(AlignedBuf, usize, u64)>(BUFFERS);
        let (to_reader, free) = mpsc::channel::<AlignedBuf>();
        for _ in 0..BUFFERS {
            let _ = to_reader.send(AlignedBuf::new(CHUNK));
        }
        let writer = s.spawn(move || -> io::Result<()> {
            for (buf, len, offset) in filled {
                dev.write_any_at(&buf, len, offset)?;
                // The reader may have stopped already; then the buffer is simply dropped.
                let _ = to_reader.send(buf);
            }
            Ok(())
        });

        let mut offset = HEAD as u64;
        let read: Result<(), DiskError> = loop {
            // Fails only when the writer has stopped: its error is reported below.
            let Ok(mut buf) = free.recv() else { break Ok(()) };
            let n = match read_full(reader, buf.as_mut_slice()) {
                Ok(n) => n,
                Err(e) => break Err(read_error(e)),
            };
            if n == 0 {
                break Ok(());
            }
            if offset + n as u64 > dev.size {
                break Err(too_large(offset + n as u64));
            }
            hasher.update(&buf.as_slice()[..n]);
            meter.advance(n as u64, emit);
            if to_writer.send((buf, n, offset)).is_err() {
                break Ok(());
            }
            offset += n as u64;
            if n < CHUNK {
                // read_full only comes back short at the end of the stream.
                break Ok(());
            }
        };
        drop(to_writer);
        let wrote = match writer.join() {
            Ok(r) => r.map_err(|e| DiskError::io(format!("writing {path}"), e)),
            Err(_) => Err(DiskError::io(format!("writing {path}"), io::Error::other("the writer thread panicked"))),
        };
        // A write error explains a stopped reader; otherwise the reader's error stands.
        wrote?;
        read?;
        Ok(offset)
    })
}

/// Counts the bytes received and notes whether the connection (not the decoder) failed.
struct Counted<R> {
    inner: R,
    received: Rc<Cell<u64>>,
    failed: Rc<Cell<bool>>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.received.set(self.received.get() + n as u64);
                Ok(n)
            }
            Err(e) => {
                self.failed.set(true);
                Err(e)
            }
        }
    }
}

/// Lowercase hex of a valid SHA-256, else BAD_SHA256.
pub fn parse_sha256(s: &str) -> Result<String, DiskError> {
    if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(s.to_ascii_lowercase())
    } else {
        Err(DiskError::BadSha256(s.chars().take(80).collect()))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_must_be_64_hex_characters() {
        assert_eq!(parse_sha256(&"AB".repeat(32)).ok(), Some("ab".repeat(32)));
        for bad in ["", "abc", &"g".repeat(64), &"a".repeat(65)] {
            assert_eq!(parse_sha256(bad).err().map(|e| e.code()), Some("BAD_SHA256"), "{bad}");
        }
    }
}
