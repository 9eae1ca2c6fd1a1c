//! The files TFTP may serve: everything under `boot.pxe_dir` and nothing else. A requested name
//! is checked lexically first (no `..`, no absolute path once one leading `/` is stripped, `\`
//! read as `/` because Windows-style PXE clients send it), then resolved with the symlinks
//! followed and checked again against the canonical root, so a symlink pointing out of the
//! directory is refused too. Contents are kept in memory keyed by path, modification time and
//! length (iPXE binaries are small and asked for by every booting machine); files larger than
//! `MAX_CACHED` are read from disk block by block instead.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// Files up to this size are served from memory.
pub const MAX_CACHED: u64 = 64 * 1024 * 1024;
/// Total bytes kept in memory; past it the cache starts over.
const CACHE_BUDGET: u64 = 512 * 1024 * 1024;

/// Why a name is not served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    NotFound,
    /// Outside the directory (or not a regular file, or unreadable): the reason is for the log.
    Forbidden(&'static str),
}

/// What a transfer reads from.
#[derive(Clone)]
pub enum Content {
    Memory(Arc<[u8]>),
    Disk { file: Arc<File>, len: u64 },
}

impl Content {
    pub fn len(&self) -> u64 {
        match self {
            Content::Memory(b) => b.len() as u64,
            Content::Disk { len, .. } => *len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends the bytes at `offset..offset+n` (fewer at the end of the file) to `out`.
    pub fn read_into(&self, offset: u64, n: usize, out: &mut Vec<u8>) -> io::Result<()> {
        match self {
            Content::Memory(b) => {
                let start = usize::try_from(offset).unwrap_or(usize::MAX).min(b.len());
                let end = start.saturating_add(n).min(b.len());
                out.extend_from_slice(&b[start..end]);
                Ok(())
            }
            Content::Disk { file, len } => {
                let n = usize::try_from(len.saturating_sub(offset)).unwrap_or(usize::MAX).min(n);
                let at = out.len();
                out.resize(at + n, 0);
                file.read_exact_at(&mut out[at..], offset)
            }
        }
    }
}

type Key = (PathBuf, SystemTime, u64);

/// Contents by canonical path, with the total bytes held.
#[derive(Default)]
struct Cache {
    entries: HashMap<PathBuf, (Key, Arc<[u8]>)>,
    total: u64,
}

/// The served directory with its cache.
pub struct PxeFiles {
    configured: PathBuf,
    /// Canonicalised once, when it first exists (the directory may be created after start).
    root: Mutex<Option<PathBuf>>,
    cache: Mutex<Cache>,
}

impl PxeFiles {
    pub fn new(dir: &Path) -> PxeFiles {
        let files = PxeFiles { configured: dir.to_path_buf(), root: Mutex::new(None), cache: Default::default() };
        if files.root().is_none() {
            tracing::warn!(pxe_dir = %dir.display(), "tftp: the pxe directory does not exist (yet); every request fails until it does");
        }
        files
    }

    fn root(&self) -> Option<PathBuf> {
        let mut root = self.root.lock().ok()?;
        if root.is_none() {
            *root = std::fs::canonicalize(&self.configured).ok().filter(|p| p.is_dir());
        }
        root.clone()
    }

    /// Opens `name` for reading (blocking: call from a blocking context).
    pub fn open(&self, name: &str) -> Result<Content, Refusal> {
        let relative = jail(name)?;
        let root = self.root().ok_or(Refusal::NotFound)?;
        let path = match std::fs::canonicalize(root.join(&relative)) {
            Ok(p) => p,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(Refusal::NotFound),
            Err(_) => return Err(Refusal::Forbidden("cannot resolve the path")),
        };
        if !path.starts_with(&root) {
            return Err(Refusal::Forbidden("a symlink leads out of the pxe directory"));
        }
        let file = File::open(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => Refusal::NotFound,
            _ => Refusal::Forbidden("cannot open the file"),
        })?;
        let meta = file.metadata().map_err(|_| Refusal::Forbidden("cannot stat the file"))?;
        if !meta.is_file() {
            return Err(Refusal::Forbidden("not a regular file"));
        }
        let len = meta.len();
        if len > MAX_CACHED {
            return Ok(Content::Disk { file: Arc::new(file), len });
        }
        let key: Key = (path.clone(), meta.modified().unwrap_or(SystemTime::UNIX_EPOCH), len);
        if let Some(bytes) = self.cached(&key) {
            return Ok(Content::Memory(bytes));
        }
        let mut bytes = Vec::with_capacity(len as usize);
        Content::Disk { file: Arc::new(file), len }
            .read_into(0, len as usize, &mut bytes)
            .map_err(|_| Refusal::Forbidden("cannot read the file"))?;
        let bytes: Arc<[u8]> = bytes.into();
        if let Ok(mut c) = self.cache.lock() {
            if c.total + len > CACHE_BUDGET {
                c.entries.clear();
                c.total = 0;
            }
            if let Some(((_, _, old), _)) = c.entries.insert(path, (key, bytes.clone())) {
                c.total -= old;
            }
            c.total += len;
        }
        Ok(Content::Memory(bytes))
    }

    fn cached(&self, key: &Key) -> Option<Arc<[u8]>> {
        let c = self.cache.lock().ok()?;
        c.entries.get(&key.0).filter(|(k, _)| k == key).map(|(_, b)| b.clone())
    }
}

/// The request's name as a path relative to the root, or why it may not be one.
pub fn jail(name: &str) -> Result<PathBuf, Refusal> {
    if name.contains('\0') {
        return Err(Refusal::Forbidden("NUL in the file name"));
    }
    let name = name.replace('\\', "/");
    let name = name.strip_prefix('/').unwrap_or(&name);
    let mut out = PathBuf::new();
    for c in Path::new(name).components() {
        match c {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            Component::ParentDir => return Err(Refusal::Forbidden("`..` in the file name")),
            Component::RootDir | Component::Prefix(_) => return Err(Refusal::Forbidden("absolute file name")),
        }
    }
    if out.as_os_str().is_empty() {
        return Err(Refusal::NotFound);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_stay_inside_the_directory() {
        assert_eq!(jail("ipxe.efi"), Ok(PathBuf::from("ipxe.efi")));
        assert_eq!(jail("/ipxe.efi"), Ok(PathBuf::from("ipxe.efi")));
        assert_eq!(jail("efi\\ipxe.efi"), Ok(PathBuf::from("efi/ipxe.efi")));
        assert_eq!(jail("./a//b"), Ok(PathBuf::from("a/b")));
        for bad in ["../../etc/passwd", "pxe/../../x", "a/..", "..\\..\\x", "//etc/passwd", "a\0b"] {
            assert!(matches!(jail(bad), Err(Refusal::Forbidden(_))), "{bad:?} must be refused");
        }
        assert_eq!(jail("/"), Err(Refusal::NotFound));
    }

    #[test]
    fn serves_files_refuses_symlink_escapes_and_sees_changes() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), b"secret").unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.bin"), b"one").unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), dir.path().join("leak")).unwrap();
        std::os::unix::fs::symlink("a.bin", dir.path().join("alias")).unwrap();
        let files = PxeFiles::new(dir.path());
        let read = |name: &str| {
            files.open(name).map(|c| {
                let mut v = Vec::new();
                c.read_into(0, 100, &mut v).unwrap();
                v
            })
        };
        assert_eq!(read("a.bin").unwrap(), b"one");
        assert_eq!(read("alias").unwrap(), b"one", "a symlink inside the directory is fine");
        assert!(matches!(read("leak"), Err(Refusal::Forbidden(_))));
        assert!(matches!(read("sub"), Err(Refusal::Forbidden(_))));
        assert_eq!(read("missing"), Err(Refusal::NotFound));
        std::fs::write(dir.path().join("a.bin"), b"changed").unwrap();
        assert_eq!(read("a.bin").unwrap(), b"changed", "a new length or mtime invalidates the cache");
    }
}
