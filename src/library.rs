//! The image library on disk: uploaded images live at `<boot.images_dir>/library/<id>`, where the
//! boot routes serve them (`/images/library/<id>`), and are staged in `library/.partial/` on the
//! same filesystem, so finishing an upload is one atomic rename and a half-written image is never
//! under a name the boot routes serve (they refuse hidden path components: `boot::files`).
//!
//! `Writer` stores an upload's bytes on a blocking thread fed through a bounded channel (so memory
//! stays bounded whatever the image's size) and hashes them twice on the way: the stored bytes, and
//! the image they decompress to (by magic, with the agent's own decoders from
//! `ironbay_wire::compression`), which is the SHA-256 the agent verifies after writing a disk.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use bytes::{Buf, Bytes};
use ironbay_wire::compression::{self, Format};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

const LIBRARY: &str = "library";
const PARTIAL: &str = ".partial";
/// Chunks in flight between the request and the writing thread.
const CHANNEL_CHUNKS: usize = 16;
const WRITE_BUFFER: usize = 1024 * 1024;
const DECODE_BUFFER: usize = 256 * 1024;

/// Where the library's files are, under one images directory.
#[derive(Debug, Clone)]
pub struct Library {
    root: PathBuf,
}

impl Library {
    pub fn new(images_dir: &Path) -> Self {
        Library { root: images_dir.join(LIBRARY) }
    }

    /// The served file of image `id`.
    pub fn file(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    /// The staging file of one upload (`owner` is the upload's claim token, so an upload that lost
    /// its claim never touches its successor's file).
    pub fn part(&self, id: &str, owner: &str) -> PathBuf {
        self.root.join(PARTIAL).join(format!("{id}.{owner}.part"))
    }

    /// Creates the directories and removes what an earlier upload of `id` may have left behind
    /// (a process killed mid-upload, or between its rename and its commit): an image being
    /// uploaded is never ready, so it has no file to serve yet. Blocking.
    pub fn prepare(&self, id: &str) -> io::Result<()> {
        std::fs::create_dir_all(self.root.join(PARTIAL))?;
        self.remove(id)
    }

    /// Removes every staging file of `id`. Blocking.
    pub fn remove_parts(&self, id: &str) -> io::Result<()> {
        let dir = match std::fs::read_dir(self.root.join(PARTIAL)) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        let prefix = format!("{id}.");
        for entry in dir {
            let entry = entry?;
            if entry.file_name().to_str().is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".part")) {
                remove_if_exists(&entry.path())?;
            }
        }
        Ok(())
    }

    /// Moves a finished staging file to its served name, atomically, and makes the rename durable.
    /// Blocking.
    pub fn publish(&self, part: &Path, id: &str) -> io::Result<()> {
        std::fs::rename(part, self.file(id))?;
        File::open(&self.root)?.sync_all()
    }

    /// Removes image `id`'s served file and staging files. Blocking.
    pub fn remove(&self, id: &str) -> io::Result<()> {
        remove_if_exists(&self.file(id))?;
        self.remove_parts(id)
    }
}

pub fn remove_if_exists(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// What the writer learned about a complete upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// The compression found by magic.
    pub format: Format,
    /// The decompressed image: what the agent writes and verifies.
    pub image_size: u64,
    pub image_sha256: String,
    /// The stored bytes.
    pub file_size: u64,
    pub file_sha256: String,
}

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The request side went away before saying the body was complete.
    #[error("the upload stopped before its end")]
    Aborted,
    #[error("storing the image failed: {0}")]
    Storage(#[source] io::Error),
    /// The bytes carry a compression's magic but do not decode as it.
    #[error("the upload is not a valid {format} stream: {message}")]
    Decode { format: &'static str, message: String },
}

enum Chunk {
    Data(Bytes),
    End,
}

/// The request side of one upload: chunks go to a thread that stores and hashes them.
pub struct Writer {
    tx: mpsc::Sender<Chunk>,
    done: tokio::task::JoinHandle<Result<Stored, WriteError>>,
}

impl Writer {
    /// Starts storing into `file` (a new staging file: created by the caller, so it exists
    /// before any cleanup can run).
    pub fn start(file: File) -> Self {
        let (tx, rx) = mpsc::channel(CHANNEL_CHUNKS);
        let done = tokio::task::spawn_blocking(move || store(file, rx));
        Writer { tx, done }
    }

    /// Hands one chunk over; waits while the thread is behind. Err: the thread stopped (its
    /// error comes from `finish`).
    pub async fn send(&self, data: Bytes) -> Result<(), ()> {
        self.tx.send(Chunk::Data(data)).await.map_err(|_| ())
    }

    /// Marks the end of the body and waits for the file to be synced and both hashes.
    pub async fn finish(self) -> Result<Stored, WriteError> {
        // A send failure means the thread already stopped: its result says why.
        let _ = self.tx.send(Chunk::End).await;
        match self.done.await {
            Ok(r) => r,
            Err(e) => Err(WriteError::Storage(io::Error::other(format!("the writer thread failed: {e}")))),
        }
    }
}

/// The channel as a byte stream. A channel closed without `End` is an aborted upload.
struct ChannelReader {
    rx: mpsc::Receiver<Chunk>,
    current: Bytes,
    ended: bool,
    aborted: bool,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            if self.ended {
                return Ok(0);
            }
            match self.rx.blocking_recv() {
                Some(Chunk::Data(b)) => self.current = b,
                Some(Chunk::End) => self.ended = true,
                None => {
                    self.aborted = true;
                    return Err(io::Error::new(io::ErrorKind::ConnectionAborted, "upload aborted"));
                }
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current.advance(n);
        Ok(n)
    }
}

/// Everything read through it is written to the file and hashed as stored bytes.
struct Tee {
    inner: ChannelReader,
    file: BufWriter<File>,
    hasher: Sha256,
    len: u64,
    storage: Option<io::Error>,
}

impl Read for Tee {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Err(e) = self.file.write_all(&buf[..n]) {
            let kind = e.kind();
            self.storage = Some(e);
            return Err(io::Error::new(kind, "storing the upload failed"));
        }
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
}

fn store(file: File, rx: mpsc::Receiver<Chunk>) -> Result<Stored, WriteError> {
    let inner = ChannelReader { rx, current: Bytes::new(), ended: false, aborted: false };
    let mut tee =
        Tee { inner, file: BufWriter::with_capacity(WRITE_BUFFER, file), hasher: Sha256::new(), len: 0, storage: None };
    let decoded = decode(&mut tee);
    let classify = |tee: &mut Tee, format: Format, e: io::Error| {
        if tee.inner.aborted {
            WriteError::Aborted
        } else if let Some(s) = tee.storage.take() {
            WriteError::Storage(s)
        } else {
            WriteError::Decode { format: format.as_str(), message: e.to_string() }
        }
    };
    let (format, image) = match decoded {
        Ok(d) => d,
        Err((format, e)) => return Err(classify(&mut tee, format, e)),
    };
    // Whatever follows the compressed stream's end is stored too (and counted in file_sha256).
    if let Err(e) = io::copy(&mut tee, &mut io::sink()) {
        return Err(classify(&mut tee, format, e));
    }
    let file = tee.file.into_inner().map_err(|e| WriteError::Storage(e.into_error()))?;
    file.sync_all().map_err(WriteError::Storage)?;
    let file_sha256 = hex::encode(tee.hasher.finalize());
    let (image_size, image_sha256) = image.unwrap_or((tee.len, file_sha256.clone()));
    Ok(Stored { format, image_size, image_sha256, file_size: tee.len, file_sha256 })
}

/// Reads the magic, then the decompressed image to its end, hashing it. A raw image is its stored
/// bytes: `None`, and the stored bytes' hash stands for both (one SHA-256 pass, not two).
#[allow(clippy::type_complexity)]
fn decode(tee: &mut Tee) -> Result<(Format, Option<(u64, String)>), (Format, io::Error)> {
    let mut head = [0u8; compression::MAGIC_LEN];
    let n = compression::read_full(tee, &mut head).map_err(|e| (Format::Raw, e))?;
    let format = compression::detect(&head[..n]);
    if format == Format::Raw {
        return Ok((format, None));
    }
    let fail = |e| (format, e);
    let mut decoder = compression::decoder(format, Read::chain(&head[..n], &mut *tee)).map_err(fail)?;
    let mut hasher = Sha256::new();
    let mut len = 0u64;
    let mut buf = vec![0u8; DECODE_BUFFER];
    loop {
        let got = match decoder.read(&mut buf) {
            Ok(0) => break,
            Ok(got) => got,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(fail(e)),
        };
        hasher.update(&buf[..got]);
        len += got as u64;
    }
    Ok((format, Some((len, hex::encode(hasher.finalize())))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(b: &[u8]) -> String {
        hex::encode(Sha256::digest(b))
    }

    async fn upload(dir: &Path, chunks: Vec<Vec<u8>>) -> Result<Stored, WriteError> {
        let w = Writer::start(File::create(dir.join("x.part")).unwrap());
        for c in chunks {
            w.send(Bytes::from(c)).await.map_err(|()| WriteError::Aborted)?;
        }
        w.finish().await
    }

    #[tokio::test]
    async fn raw_and_compressed_uploads_hash_the_image_and_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let image: Vec<u8> = (0..3_000_000u32).map(|i| (i * 31 % 253) as u8).collect();
        let stored = upload(dir.path(), image.chunks(70_000).map(<[u8]>::to_vec).collect()).await.unwrap();
        assert_eq!(stored.format, Format::Raw);
        assert_eq!((stored.image_size, stored.file_size), (image.len() as u64, image.len() as u64));
        assert_eq!(stored.image_sha256, sha(&image));
        assert_eq!(stored.file_sha256, sha(&image));
        assert_eq!(std::fs::read(dir.path().join("x.part")).unwrap(), image);

        let zst = zstd::encode_all(&image[..], 3).unwrap();
        let stored = upload(dir.path(), zst.chunks(1000).map(<[u8]>::to_vec).collect()).await.unwrap();
        assert_eq!(stored.format, Format::Zstd);
        assert_eq!(stored.image_size, image.len() as u64);
        assert_eq!(stored.image_sha256, sha(&image));
        assert_eq!(stored.file_sha256, sha(&zst));
        assert_eq!(stored.file_size, zst.len() as u64);
        assert_eq!(std::fs::read(dir.path().join("x.part")).unwrap(), zst);
    }

    #[tokio::test]
    async fn a_corrupt_stream_and_an_abort_are_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        let mut bad = vec![0x28, 0xb5, 0x2f, 0xfd];
        bad.extend_from_slice(&[0xff; 64]);
        let err = upload(dir.path(), vec![bad]).await.unwrap_err();
        assert!(matches!(err, WriteError::Decode { format: "zstd", .. }), "{err:?}");

        let w = Writer::start(File::create(dir.path().join("y.part")).unwrap());
        w.send(Bytes::from_static(b"some bytes")).await.unwrap();
        let Writer { tx, done } = w;
        drop(tx);
        assert!(matches!(done.await.unwrap(), Err(WriteError::Aborted)));
    }
}
