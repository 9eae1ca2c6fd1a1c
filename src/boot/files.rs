//! The boot-file jail: which file under `pxe_dir` or `images_dir` a client's path names, if any.
//! A path is refused when it could leave the directory (`..`, an absolute path, NUL, a backslash),
//! and after resolving symlinks the file must still be inside the directory's own canonical path,
//! so a symlink pointing out is never followed out. Directories are not files. Hidden names (a
//! component starting with `.`) are never served: the image library stages unfinished uploads
//! under `library/.partial/` (`crate::library`). Blocking: run it on the blocking pool.

use std::fs::{File, Metadata};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

const MAX_PATH: usize = 1024;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FileRefusal {
    /// The path itself is unacceptable (answered 400).
    #[error("path refused: {0}")]
    BadPath(&'static str),
    /// No such regular file inside the directory (answered 404).
    #[error("no such file")]
    NotFound,
    /// It resolves outside the directory (a symlink pointing out); answered 404, like a missing file.
    #[error("path resolves outside the served directory")]
    Outside,
    /// A component starts with `.` (an unfinished upload, say); answered 404, like a missing file.
    #[error("hidden path (a component starts with `.`)")]
    Hidden,
}

/// An open file inside the jail.
#[derive(Debug)]
pub struct BootFile {
    pub path: PathBuf,
    pub file: File,
    pub meta: Metadata,
}

impl BootFile {
    pub fn len(&self) -> u64 {
        self.meta.len()
    }

    pub fn is_empty(&self) -> bool {
        self.meta.len() == 0
    }

    /// A strong validator: size, modification time (ns) and inode change when the file does.
    pub fn etag(&self) -> String {
        let m = &self.meta;
        let mtime_ns = m.mtime().wrapping_mul(1_000_000_000).wrapping_add(m.mtime_nsec());
        format!("\"{:x}-{:x}-{:x}\"", m.len(), mtime_ns, m.ino())
    }

    pub fn modified(&self) -> Option<std::time::SystemTime> {
        self.meta.modified().ok()
    }
}

/// Checks the shape of a (percent-decoded) path relative to the served directory.
pub fn check_relative(rel: &str) -> Result<(), FileRefusal> {
    if rel.is_empty() {
        return Err(FileRefusal::NotFound);
    }
    if rel.len() > MAX_PATH {
        return Err(FileRefusal::BadPath("too long"));
    }
    if rel.contains('\0') {
        return Err(FileRefusal::BadPath("NUL in path"));
    }
    if rel.contains('\\') {
        return Err(FileRefusal::BadPath("backslash in path"));
    }
    if rel.starts_with('/') {
        return Err(FileRefusal::BadPath("absolute path"));
    }
    if rel.split('/').any(|c| c == "..") {
        return Err(FileRefusal::BadPath("`..` in path"));
    }
    if rel.split('/').any(|c| c.starts_with('.')) {
        return Err(FileRefusal::Hidden);
    }
    Ok(())
}

/// Opens `rel` under `root`, or says why not.
pub fn open(root: &Path, rel: &str) -> Result<BootFile, FileRefusal> {
    check_relative(rel)?;
    let root = root.canonicalize().map_err(|_| FileRefusal::NotFound)?;
    let path = root.join(rel).canonicalize().map_err(|_| FileRefusal::NotFound)?;
    if !path.starts_with(&root) {
        return Err(FileRefusal::Outside);
    }
    let file = File::open(&path).map_err(|_| FileRefusal::NotFound)?;
    let meta = file.metadata().map_err(|_| FileRefusal::NotFound)?;
    if !meta.is_file() {
        return Err(FileRefusal::NotFound);
    }
    Ok(BootFile { path, file, meta })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_paths_that_could_leave_the_directory() {
        for (p, why) in [
            ("../x", "`..` in path"),
            ("a/../../x", "`..` in path"),
            ("a/..", "`..` in path"),
            ("/etc/passwd", "absolute path"),
            ("a\0b", "NUL in path"),
            ("..\\x", "backslash in path"),
        ] {
            assert_eq!(check_relative(p), Err(FileRefusal::BadPath(why)), "{p}");
        }
        assert_eq!(check_relative("agent/vmlinuz"), Ok(()));
        assert_eq!(check_relative("a..b/c"), Ok(()));
        assert_eq!(check_relative("library/.partial/img_x.part"), Err(FileRefusal::Hidden));
        assert_eq!(check_relative(".hidden"), Err(FileRefusal::Hidden));
        assert_eq!(check_relative("./agent/vmlinuz"), Err(FileRefusal::Hidden));
    }

    #[test]
    fn symlinks_out_and_directories_are_not_served() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), b"s").unwrap();
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("sub")).unwrap();
        std::fs::write(root.path().join("sub/f"), b"hello").unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), root.path().join("out")).unwrap();
        std::os::unix::fs::symlink("sub/f", root.path().join("in")).unwrap();
        assert_eq!(open(root.path(), "sub/f").unwrap().len(), 5);
        assert_eq!(open(root.path(), "in").unwrap().len(), 5);
        assert_eq!(open(root.path(), "out").unwrap_err(), FileRefusal::Outside);
        assert_eq!(open(root.path(), "sub").unwrap_err(), FileRefusal::NotFound);
        assert_eq!(open(root.path(), "nope").unwrap_err(), FileRefusal::NotFound);
        assert_eq!(open(&root.path().join("missing-dir"), "f").unwrap_err(), FileRefusal::NotFound);
    }
}
