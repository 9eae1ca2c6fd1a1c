//! An open block device: exclusive open, the block-layer ioctls, positioned reads and writes, and
//! the aligned buffers O_DIRECT needs.

use std::alloc::{Layout, alloc_zeroed, dealloc};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

// Linux's generic ioctl encoding (x86_64, aarch64, riscv64: the agent's targets).
const BLKRRPART: libc::c_ulong = 0x125f;
const BLKFLSBUF: libc::c_ulong = 0x1261;
const BLKSSZGET: libc::c_ulong = 0x1268;
const BLKDISCARD: libc::c_ulong = 0x1277;
const BLKSECDISCARD: libc::c_ulong = 0x127d;
const BLKGETSIZE64: libc::c_ulong = 0x8008_1272;

/// Alignment of every O_DIRECT buffer: the largest logical block size in use.
pub const ALIGN: usize = 4096;

/// A zero-initialised heap buffer aligned to [`ALIGN`], as O_DIRECT requires.
pub struct AlignedBuf {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: the buffer is plain owned memory: moving it to another thread is fine, and shared
// references only ever read it (writing needs `&mut`).
unsafe impl Send for AlignedBuf {}
unsafe impl Sync for AlignedBuf {}

impl AlignedBuf {
    /// `len` is rounded up to a multiple of [`ALIGN`].
    pub fn new(len: usize) -> AlignedBuf {
        let len = len.max(ALIGN).next_multiple_of(ALIGN);
        let layout =
            Layout::from_size_align(len, ALIGN).unwrap_or_else(|_| std::alloc::handle_alloc_error(Layout::new::<u8>()));
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { alloc_zeroed(layout) };
        if ptr.is_null() {
            std::alloc::handle_alloc_error(layout);
        }
        AlignedBuf { ptr, len }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: ptr is valid for len initialised bytes for the buffer's whole life.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as above, and &mut self makes the access unique.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with exactly this layout.
        unsafe { dealloc(self.ptr, Layout::from_size_align_unchecked(self.len, ALIGN)) }
    }
}

/// A block device opened for a wipe or a write.
pub struct Device {
    file: File,
    pub size: u64,
    /// Logical block size: the unit of O_DIRECT offsets and lengths.
    pub lbs: u64,
}

impl Device {
    /// Opens read-write, O_EXCL (fails with EBUSY while mounted, part of an md/LVM/dm stack, or
    /// held by another exclusive opener) and O_DIRECT (writes reach the device, not the cache).
    pub fn open_rw(path: &Path) -> io::Result<Device> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_EXCL | libc::O_DIRECT | libc::O_CLOEXEC)
            .open(path)?;
        Device::from_file(file)
    }

    /// Opens read-only without O_EXCL (for a look that must not disturb anyone).
    pub fn open_ro(path: &Path) -> io::Result<Device> {
        let file = OpenOptions::new().read(true).custom_flags(libc::O_DIRECT | libc::O_CLOEXEC).open(path)?;
        Device::from_file(file)
    }

    fn from_file(file: File) -> io::Result<Device> {
        let mut size: u64 = 0;
        // SAFETY: BLKGETSIZE64 writes one u64 through the pointer.
        cvt(unsafe { libc::ioctl(file.as_raw_fd(), BLKGETSIZE64, &mut size as *mut u64) })?;
        let mut lbs: libc::c_int = 0;
        // SAFETY: BLKSSZGET writes one int through the pointer.
        cvt(unsafe { libc::ioctl(file.as_raw_fd(), BLKSSZGET, &mut lbs as *mut libc::c_int) })?;
        let lbs = if lbs > 0 { lbs as u64 } else { 512 };
        Ok(Device { file, size, lbs })
    }

    pub fn fd(&self) -> libc::c_int {
        self.file.as_raw_fd()
    }

    /// Reads exactly `buf.len()` bytes at `offset` (both multiples of the logical block size).
    pub fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.file.read_exact_at(buf, offset)
    }

    /// Writes all of `buf` at `offset` through O_DIRECT (aligned offset, length and memory).
    pub fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.file.write_all_at(buf, offset)
    }

    /// Writes `buf` at an aligned `offset` whatever its length: the block-aligned prefix through
    /// O_DIRECT, a ragged tail through the page cache (O_DIRECT cannot write part of a block, and
    /// padding would overwrite bytes past the data). The caller syncs afterwards.
    pub fn write_any_at(&self, buf: &AlignedBuf, len: usize, offset: u64) -> io::Result<()> {
        let aligned = len - len % self.lbs as usize;
        if aligned > 0 {
            self.write_at(&buf.as_slice()[..aligned], offset)?;
        }
        if aligned < len {
            self.set_direct(false)?;
            let tail = self.file.write_all_at(&buf.as_slice()[aligned..len], offset + aligned as u64);
            let back = self.set_direct(true);
            tail?;
            back?;
        }
        Ok(())
    }

    /// Turns O_DIRECT on or off on this open file (Linux allows it through F_SETFL).
    fn set_direct(&self, on: bool) -> io::Result<()> {
        // SAFETY: plain fcntl calls on an fd this struct owns.
        let flags = cvt(unsafe { libc::fcntl(self.fd(), libc::F_GETFL) })?;
        let flags = if on { flags | libc::O_DIRECT } else { flags & !libc::O_DIRECT };
        cvt(unsafe { libc::fcntl(self.fd(), libc::F_SETFL, flags) })?;
        Ok(())
    }

    pub fn sync(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    /// Asks the kernel to re-read the partition table. EINVAL means the device cannot have
    /// partitions (a loop device without partscan, a partition): nothing to re-read.
    pub fn reread_partitions(&self) -> io::Result<()> {
        // SAFETY: BLKRRPART takes no argument.
        match cvt(unsafe { libc::ioctl(self.fd(), BLKRRPART) }) {
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok(()),
            other => other.map(drop),
        }
    }

    /// Drops the device's page cache so later buffered readers (blkid, the kernel's partition
    /// scan) see what is on the device. Best effort.
    pub fn flush_buffers(&self) {
        // SAFETY: BLKFLSBUF takes no argument.
        let _ = unsafe { libc::ioctl(self.fd(), BLKFLSBUF) };
    }

    /// BLKDISCARD (or BLKSECDISCARD when `secure`) over `[offset, offset + len)`.
    pub fn discard(&self, offset: u64, len: u64, secure: bool) -> io::Result<()> {
        let range: [u64; 2] = [offset, len];
        let req = if secure { BLKSECDISCARD } else { BLKDISCARD };
        // SAFETY: both ioctls read a [u64; 2] (start, length) through the pointer.
        cvt(unsafe { libc::ioctl(self.fd(), req, range.as_ptr()) }).map(drop)
    }
}

fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 { Err(io::Error::last_os_error()) } else { Ok(ret) }
}

/// A short name for an errno, for reasons a human reads (`EOPNOTSUPP`, `EBUSY`).
pub fn errno_name(e: &io::Error) -> String {
    let name = match e.raw_os_error() {
        Some(libc::EOPNOTSUPP) => "EOPNOTSUPP",
        Some(libc::EINVAL) => "EINVAL",
        Some(libc::EBUSY) => "EBUSY",
        Some(libc::EPERM) => "EPERM",
        Some(libc::EACCES) => "EACCES",
        Some(libc::EIO) => "EIO",
        Some(libc::ENOTTY) => "ENOTTY",
        Some(libc::ENOSPC) => "ENOSPC",
        Some(libc::EROFS) => "EROFS",
        Some(libc::ENODEV) => "ENODEV",
        Some(libc::ENXIO) => "ENXIO",
        Some(n) => return format!("errno {n}"),
        None => return e.to_string(),
    };
    name.into()
}
