//! Wipe and write-image on real loop devices over sparse files (root and `losetup` required). Each
//! test makes its own devices, detached on drop even when the test panics, so tests run in
//! parallel. Results are checked on the backing file: the loop driver writes through to it.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use ironbay_agent::disk::{self, DiskError};
use ironbay_agent::report::Line;
use ironbay_wire::command::WipeMethod;
use ironbay_wire::progress::{DiskWipe, ImageWrite};
use sha2::{Digest, Sha256};

const MIB: u64 = 1024 * 1024;
const PATTERN: &[u8; 16] = b"ironbay-pattern.";

/// A loop device over a sparse file in its own temp dir; `losetup -d` on drop.
struct Loop {
    dev: PathBuf,
    file: PathBuf,
    _dir: tempfile::TempDir,
}

impl Loop {
    /// A `size`-byte device filled with [`PATTERN`] (or left sparse, reading as zeros).
    fn new(size: u64, patterned: bool) -> Loop {
        Loop::with(size, patterned, |_| {}, &[])
    }

    /// `prepare` runs on the backing file before it is attached; `args` go to losetup.
    fn with(size: u64, patterned: bool, prepare: impl FnOnce(&Path), args: &[&str]) -> Loop {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("disk.img");
        let f = File::create(&file).expect("backing file");
        f.set_len(size).expect("set_len");
        if patterned {
            let chunk: Vec<u8> = PATTERN.iter().copied().cycle().take(MIB as usize).collect();
            let mut at = 0;
            while at < size {
                let n = MIB.min(size - at) as usize;
                f.write_all_at(&chunk[..n], at).expect("pattern");
                at += n as u64;
            }
        }
        drop(f);
        prepare(&file);
        let out = Command::new("losetup")
            .args(["--find", "--show"])
            .args(args)
            .arg(&file)
            .output()
            .expect("losetup (util-linux) must be installed; the disk tests run as root");
        assert!(out.status.success(), "losetup: {}", String::from_utf8_lossy(&out.stderr));
        let dev = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        Loop { dev, file, _dir: dir }
    }

    fn disk(&self) -> ironbay_wire::inventory::Disk {
        disk::describe(&self.dev).expect("describe")
    }

    fn read(&self, offset: u64, len: u64) -> Vec<u8> {
        let mut buf = vec![0u8; len as usize];
        File::open(&self.file).expect("open backing file").read_exact_at(&mut buf, offset).expect("read backing file");
        buf
    }

    fn size(&self) -> u64 {
        std::fs::metadata(&self.file).expect("stat").len()
    }

    fn hash(&self) -> Vec<u8> {
        let mut f = File::open(&self.file).expect("open");
        let mut h = Sha256::new();
        let mut buf = vec![0u8; MIB as usize];
        loop {
            let n = f.read(&mut buf).expect("read");
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        h.finalize().to_vec()
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").arg("-d").arg(&self.dev).status();
    }
}

fn zeros(b: &[u8]) -> bool {
    b.iter().all(|&x| x == 0)
}

fn patterned(b: &[u8], offset: u64) -> bool {
    b.iter().enumerate().all(|(i, &x)| x == PATTERN[(offset as usize + i) % PATTERN.len()])
}

fn run(cmd: &str, args: &[&str], stdin: Option<&str>) -> (bool, String) {
    let mut child = Command::new(cmd)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd}: {e} (util-linux / e2fsprogs / fdisk must be installed)"));
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes()).expect("stdin");
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().expect("wait");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// What blkid (low-level probe) and wipefs see on the device: empty when it is clean.
fn probe(dev: &Path) -> String {
    let d = dev.to_str().expect("path");
    let (_, blkid) = run("blkid", &["-p", "-o", "export", d], None);
    let (_, wipefs) = run("wipefs", &["-n", "-i", d], None);
    format!("{}{}", blkid.trim(), wipefs.trim())
}

fn wipe(l: &Loop, method: WipeMethod) -> (DiskWipe, Vec<Line>) {
    let mut lines = Vec::new();
    let mut emit = |line: Line| lines.push(line);
    let r = disk::wipe(&l.disk(), method, &mut emit);
    (r, lines)
}

fn assert_ends_zero_middle_kept(l: &Loop, middle_before: &[u8]) {
    let size = l.size();
    assert!(zeros(&l.read(0, 32 * MIB)), "first 32 MiB not zeroed");
    assert!(zeros(&l.read(size - 32 * MIB, 32 * MIB)), "last 32 MiB not zeroed");
    assert!(l.read(32 * MIB, size - 64 * MIB) == middle_before, "quick touched the middle of the disk");
}

#[test]
fn quick_wipe_removes_gpt_and_ext4_and_keeps_the_middle() {
    let l = Loop::with(
        128 * MIB,
        true,
        |file| {
            let f = file.to_str().expect("path");
            // A GPT (both copies) with an ext4 in its first partition.
            let (ok, out) = run(
                "sfdisk",
                &["--wipe", "never", "-q", f],
                Some("label: gpt\nstart=2048, size=32768\nstart=65536, size=65536\n"),
            );
            assert!(ok, "sfdisk: {out}");
            let (ok, out) = run("mkfs.ext4", &["-F", "-q", "-E", "nodiscard,offset=1048576", f, "16M"], None);
            assert!(ok, "mkfs.ext4: {out}");
        },
        &[],
    );
    let before = probe(&l.dev);
    assert!(before.contains("PTTYPE=gpt"), "setup: {before}");
    let (ok, parts) = run("sfdisk", &["-d", l.dev.to_str().unwrap_or_default()], None);
    assert!(ok && parts.contains("start=") && parts.contains("2048"), "setup: {parts}");
    let size = l.size();
    let middle = l.read(32 * MIB, size - 64 * MIB);
    assert!(patterned(&middle, 32 * MIB));

    let (r, lines) = wipe(&l, WipeMethod::Quick);
    assert_eq!(r.status, "wiped", "{r:?}");
    let v = r.verification.as_ref().expect("verification");
    assert!(v.passed && v.expect == "signatures" && v.samples > 30, "{v:?}");
    assert!(r.bytes_wiped >= 64 * MIB && r.bytes_wiped < size, "{r:?}");
    assert!(lines.iter().any(|l| matches!(l, Line::Log(g) if g.log.contains("gpt"))), "{lines:?}");
    assert_eq!(probe(&l.dev), "");
    assert_ends_zero_middle_kept(&l, &middle);
    let (_, dump) = run("sfdisk", &["-d", l.dev.to_str().unwrap_or_default()], None);
    assert!(!dump.contains("start="), "partitions still readable: {dump}");
}

#[test]
fn quick_wipe_on_4k_sectors_clears_both_gpts_and_a_btrfs_mirror_in_the_middle() {
    let l = Loop::with(
        128 * MIB,
        true,
        |file| {
            // A btrfs superblock mirror in the middle: quick zeroes its block and nothing else there.
            let f = OpenOptions::new().write(true).open(file).expect("open");
            f.write_all_at(b"_BHRfS_M", 64 * MIB + 64).expect("btrfs magic");
        },
        &["--sector-size", "4096"],
    );
    assert_eq!(l.disk().logical_block_size, 4096);
    let dev = l.dev.to_str().unwrap_or_default();
    // 4096-byte sectors: the partition starts at 1 MiB, the GPT header is at 4096.
    let (ok, out) = run("sfdisk", &["--wipe", "never", "-q", dev], Some("label: gpt\nstart=256, size=4096\n"));
    assert!(ok, "sfdisk: {out}");
    let (ok, out) = run("mkfs.ext4", &["-F", "-q", "-E", "nodiscard,offset=1048576", dev, "16M"], None);
    assert!(ok, "mkfs.ext4: {out}");
    assert!(probe(&l.dev).contains("PTTYPE=gpt"));
    assert_eq!(l.disk().partition_table.as_deref(), Some("gpt"));
    let size = l.size();
    // The backup GPT header sits in the last 4096-byte sector.
    assert_eq!(&l.read(4096, 8), b"EFI PART");
    assert_eq!(&l.read(size - 4096, 8), b"EFI PART");
    let mut middle = l.read(32 * MIB, size - 64 * MIB);

    let (r, lines) = wipe(&l, WipeMethod::Quick);
    assert_eq!(r.status, "wiped", "{r:?}");
    assert!(r.verification.as_ref().is_some_and(|v| v.passed), "{r:?}");
    assert!(lines.iter().any(|l| matches!(l, Line::Log(g) if g.log.contains("btrfs"))), "{lines:?}");
    assert_eq!(probe(&l.dev), "");
    assert_eq!(l.disk().partition_table, None);
    // The mirror's 4 KiB block was zeroed; the rest of the middle is as it was.
    let at = (64 * MIB - 32 * MIB) as usize;
    middle[at..at + 4096].fill(0);
    assert_ends_zero_middle_kept(&l, &middle);
}

#[test]
fn quick_wipe_of_a_small_disk_with_a_whole_disk_ext4_zeroes_all_of_it() {
    let l = Loop::with(
        40 * MIB,
        true,
        |file| {
            let (ok, out) = run("mkfs.ext4", &["-F", "-q", "-E", "nodiscard", file.to_str().expect("path")], None);
            assert!(ok, "mkfs.ext4: {out}");
        },
        &[],
    );
    assert!(probe(&l.dev).contains("TYPE=ext4"), "setup: {}", probe(&l.dev));
    let (r, _) = wipe(&l, WipeMethod::Quick);
    assert_eq!(r.status, "wiped", "{r:?}");
    assert_eq!(r.bytes_wiped, 40 * MIB);
    assert_eq!(probe(&l.dev), "");
    assert!(zeros(&l.read(0, 40 * MIB)));
}

#[test]
fn zero_wipe_overwrites_the_whole_device() {
    // Not a multiple of the 8 MiB write size: the last write is short.
    let size = 72 * MIB + 3 * 4096;
    let l = Loop::new(size, true);
    let (r, lines) = wipe(&l, WipeMethod::Zero);
    assert_eq!(r.status, "wiped", "{r:?}");
    assert_eq!((r.bytes_wiped, r.size_bytes), (size, size));
    let v = r.verification.as_ref().expect("verification");
    assert!(v.passed && v.expect == "zeros" && v.samples >= 60, "{v:?}");
    assert!(zeros(&l.read(0, size)));
    let last = lines.iter().rev().find_map(|l| match l {
        Line::Progress(p) if p.step == "zero" => Some((p.bytes_done, p.bytes_total)),
        _ => None,
    });
    assert_eq!(last, Some((size, size)));
    assert!(r.started_at_unix_ms <= r.finished_at_unix_ms && r.started_at_unix_ms > 1_600_000_000_000);
}

#[test]
fn discard_on_loop_falls_back_from_secure_discard_and_says_so() {
    let l = Loop::new(64 * MIB, true);
    let (r, lines) = wipe(&l, WipeMethod::Discard);
    assert_eq!(r.status, "wiped", "{r:?}");
    let reason = r.reason.as_deref().unwrap_or_default();
    assert!(reason.contains("secure discard unsupported") && reason.contains("BLKDISCARD"), "{reason}");
    assert!(lines.iter().any(|l| matches!(l, Line::Log(g) if g.log.contains("secure discard unsupported"))));
    assert_eq!(r.bytes_wiped, 64 * MIB);
    let v = r.verification.as_ref().expect("verification");
    assert!(v.passed && v.expect == "zeros", "{v:?}");
    // The loop driver punches holes in its file: the whole device reads as zeros.
    assert!(zeros(&l.read(0, 64 * MIB)));
}

#[test]
fn secure_erase_on_a_loop_device_fails_and_touches_nothing() {
    let l = Loop::new(16 * MIB, true);
    let before = l.hash();
    let (r, _) = wipe(&l, WipeMethod::Secure);
    assert_eq!(r.status, "failed");
    let name = l.dev.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    assert_eq!(
        r.reason.as_deref(),
        Some(format!("secure erase is not supported by loop device {name}; choose quick, discard or zero").as_str())
    );
    assert_eq!((r.bytes_wiped, r.verification.is_none()), (0, true));
    assert_eq!(l.hash(), before);
}

#[test]
fn a_read_only_disk_is_skipped_untouched() {
    let l = Loop::with(16 * MIB, true, |_| {}, &["-r"]);
    let d = l.disk();
    assert!(d.read_only, "{d:?}");
    let before = l.hash();
    for method in [WipeMethod::Quick, WipeMethod::Zero, WipeMethod::Discard, WipeMethod::Secure] {
        let (r, lines) = wipe(&l, method);
        assert_eq!((r.status.as_str(), r.reason.as_deref()), ("skipped", Some("read-only")), "{r:?}");
        assert!(lines.iter().any(|l| matches!(l, Line::Log(g) if g.log.contains("read-only"))));
    }
    let mut emit = |_: Line| {};
    let err = disk::write_image("http://127.0.0.1:9/x", &"0".repeat(64), &d, &mut emit).expect_err("protected");
    assert_eq!(err.code(), "DISK_PROTECTED");
    assert_eq!(l.hash(), before);
}

#[test]
fn a_device_held_by_someone_else_fails_clearly() {
    let l = Loop::new(16 * MIB, true);
    // Holding it O_EXCL is what a mount or an md/LVM member does.
    let _held = OpenOptions::new().read(true).custom_flags(libc::O_EXCL).open(&l.dev).expect("hold");
    let (r, _) = wipe(&l, WipeMethod::Zero);
    assert_eq!(r.status, "failed");
    assert!(r.reason.as_deref().unwrap_or_default().contains("EBUSY"), "{r:?}");
    let mut emit = |_: Line| {};
    let err = disk::write_image("http://127.0.0.1:9/x", &"0".repeat(64), &l.disk(), &mut emit).expect_err("busy");
    assert_eq!(err.code(), "DISK_OPEN_FAILED");
    assert!(err.to_string().contains("mounted"), "{err}");
    assert!(patterned(&l.read(0, MIB), 0));
}

#[test]
fn describe_reads_a_loop_device_from_sysfs() {
    let l = Loop::new(16 * MIB, false);
    let d = l.disk();
    assert_eq!(d.path, l.dev.to_string_lossy());
    assert_eq!((d.size_bytes, d.read_only, d.removable, d.virtual_media), (16 * MIB, false, false, false));
    assert_eq!((d.logical_block_size, d.transport.as_deref(), d.partition_table.as_deref()), (512, Some("loop"), None));
    let err = disk::describe(Path::new("/dev/ironbay-no-such-disk")).expect_err("missing");
    assert_eq!(err.code(), "DISK_NOT_FOUND");
}

// ---- write-image ----

/// A tiny HTTP/1.1 server on 127.0.0.1: GET /<name> answers the file with its Content-Length,
/// anything else 404. Stops accepting on drop.
struct Server {
    base: String,
    stop: Arc<AtomicBool>,
    addr: std::net::SocketAddr,
}

impl Server {
    fn new(files: HashMap<String, Vec<u8>>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let stop = Arc::new(AtomicBool::new(false));
        let files = Arc::new(files);
        let s = stop.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let files = files.clone();
                std::thread::spawn(move || serve(conn, &files));
            }
        });
        Server { base: format!("http://{addr}"), stop, addr }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

fn serve(mut conn: TcpStream, files: &HashMap<String, Vec<u8>>) {
    let mut req = Vec::new();
    let mut byte = [0u8; 1];
    while !req.ends_with(b"\r\n\r\n") {
        match conn.read(&mut byte) {
            Ok(1) => req.push(byte[0]),
            _ => return,
        }
    }
    let req = String::from_utf8_lossy(&req);
    let path = req.split_whitespace().nth(1).unwrap_or("/").trim_start_matches('/').to_string();
    // `<name>.truncated`: the file announced at twice its length, then the connection closes.
    if let Some(body) = path.strip_suffix(".truncated").and_then(|p| files.get(p)) {
        let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", 2 * body.len());
        let _ = conn.write_all(head.as_bytes()).and_then(|()| conn.write_all(body));
        return;
    }
    let _ = match files.get(&path) {
        Some(body) => conn
            .write_all(
                format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len()).as_bytes(),
            )
            .and_then(|()| conn.write_all(body)),
        None => conn.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
    };
}

/// `len` bytes that compress a little (so every format is exercised for real), with an MBR boot
/// signature like a real disk image.
fn image(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut v: Vec<u8> = (0..len)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if i % 4 == 0 { 0 } else { x as u8 }
        })
        .collect();
    if len >= 512 {
        v[510] = 0x55;
        v[511] = 0xaa;
    }
    v
}

fn sha_hex(b: &[u8]) -> String {
    Sha256::digest(b).iter().map(|b| format!("{b:02x}")).collect()
}

/// The image compressed by the real CLI (`gzip`, `zstd`, `xz`), or by the crate when the CLI is
/// not installed.
fn compress(format: &str, data: &[u8]) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("img");
    std::fs::write(&src, data).expect("write");
    let src = src.to_str().expect("path");
    let cli = match format {
        "gzip" => Command::new("gzip").args(["-c", "-1", src]).output(),
        "zstd" => Command::new("zstd").args(["-q", "-c", "-1", src]).output(),
        "xz" => Command::new("xz").args(["-c", "-0", "-T1", src]).output(),
        _ => return data.to_vec(),
    };
    if let Ok(out) = cli
        && out.status.success()
    {
        return out.stdout;
    }
    match format {
        "gzip" => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(data).expect("gzip");
            e.finish().expect("gzip")
        }
        "zstd" => zstd::encode_all(data, 1).expect("zstd"),
        _ => {
            let mut out = Vec::new();
            liblzma::read::XzEncoder::new(data, 0).read_to_end(&mut out).expect("xz");
            out
        }
    }
}

fn write(l: &Loop, url: &str, sha: &str) -> (Result<ImageWrite, DiskError>, Vec<Line>) {
    let mut lines = Vec::new();
    let mut emit = |line: Line| lines.push(line);
    let r = disk::write_image(url, sha, &l.disk(), &mut emit);
    (r, lines)
}

fn write_format(format: &str, len: usize, loop_args: &[&str]) {
    let img = image(len, len as u64);
    let served = compress(format, &img);
    let server = Server::new(HashMap::from([("img".to_string(), served.clone())]));
    let l = Loop::with(16 * MIB, true, |_| {}, loop_args);
    let (r, lines) = write(&l, &format!("{}/img", server.base), &sha_hex(&img).to_uppercase());
    let w = r.unwrap_or_else(|e| panic!("{format}: {} {e}", e.code()));
    assert_eq!(w.format, format);
    assert_eq!((w.bytes_written, w.bytes_received), (len as u64, served.len() as u64));
    assert_eq!(w.sha256, sha_hex(&img));
    assert!(w.seconds > 0.0 && w.rate > 0.0);
    assert!(l.read(0, len as u64) == img, "{format}: the disk does not hold the image");
    // Past the image (and the zeroed first MiB) the disk is as it was: nothing padded over it.
    let past = (len as u64).max(MIB);
    assert!(patterned(&l.read(past, 2 * MIB), past));
    let last = lines.iter().rev().find_map(|l| match l {
        Line::Progress(p) if p.step == "write" => Some((p.bytes_done, p.bytes_total)),
        _ => None,
    });
    let total = if format == "raw" { len as u64 } else { 0 };
    assert_eq!(last, Some((len as u64, total)));
}

const ODD: usize = 3 * MIB as usize + 777;

#[test]
fn write_image_raw() {
    write_format("raw", ODD, &[]);
}

#[test]
fn write_image_gzip() {
    write_format("gzip", ODD, &[]);
}

#[test]
fn write_image_zstd() {
    write_format("zstd", ODD, &[]);
}

#[test]
fn write_image_xz() {
    write_format("xz", ODD, &[]);
}

#[test]
fn write_image_smaller_than_the_held_back_mib_on_4k_sectors() {
    write_format("raw", 1000, &["--sector-size", "4096"]);
    write_format("zstd", MIB as usize + 5000, &["--sector-size", "4096"]);
}

fn assert_head_zeroed(l: &Loop) {
    assert!(zeros(&l.read(0, MIB)), "the first MiB must stay zeroed");
}

#[test]
fn a_wrong_sha256_leaves_the_first_mib_zeroed() {
    let img = image(ODD, 1);
    let server = Server::new(HashMap::from([("img".to_string(), img.clone())]));
    let l = Loop::new(16 * MIB, true);
    let wrong = sha_hex(b"something else");
    let (r, _) = write(&l, &format!("{}/img", server.base), &wrong);
    let e = r.expect_err("mismatch");
    assert_eq!(e.code(), "SHA256_MISMATCH");
    match e {
        DiskError::Sha256Mismatch { expected, actual } => assert_eq!((expected, actual), (wrong, sha_hex(&img))),
        other => panic!("{other:?}"),
    }
    assert_head_zeroed(&l);
}

#[test]
fn flipped_bytes_in_the_served_image_are_caught() {
    let img = image(ODD, 2);
    let mut corrupt = img.clone();
    corrupt[2 * MIB as usize + 17] ^= 0x40;
    let server = Server::new(HashMap::from([("img".to_string(), corrupt)]));
    let l = Loop::new(16 * MIB, true);
    let (r, _) = write(&l, &format!("{}/img", server.base), &sha_hex(&img));
    assert_eq!(r.expect_err("mismatch").code(), "SHA256_MISMATCH");
    assert_head_zeroed(&l);
}

#[test]
fn an_image_larger_than_the_disk_is_refused() {
    let img = image(20 * MIB as usize, 3);
    let zst = compress("zstd", &img);
    let server = Server::new(HashMap::from([("raw".to_string(), img.clone()), ("zst".to_string(), zst)]));
    // Raw with a Content-Length: refused before the disk is touched.
    let l = Loop::new(16 * MIB, true);
    let before = l.hash();
    let (r, _) = write(&l, &format!("{}/raw", server.base), &sha_hex(&img));
    assert_eq!(r.expect_err("too large").code(), "IMAGE_TOO_LARGE");
    assert_eq!(l.hash(), before);
    // Compressed: found out while writing; the first MiB stays zeroed.
    let (r, _) = write(&l, &format!("{}/zst", server.base), &sha_hex(&img));
    assert_eq!(r.expect_err("too large").code(), "IMAGE_TOO_LARGE");
    assert_head_zeroed(&l);
}

#[test]
fn http_and_argument_errors_have_their_codes() {
    let server = Server::new(HashMap::new());
    let l = Loop::new(4 * MIB, true);
    let sha = "0".repeat(64);
    let (r, _) = write(&l, &format!("{}/missing", server.base), &sha);
    let e = r.expect_err("404");
    assert_eq!(e.code(), "HTTP_ERROR");
    assert!(e.to_string().contains("404"), "{e}");
    let (r, _) = write(&l, &format!("{}/x", server.base), "xyz");
    assert_eq!(r.expect_err("bad sha").code(), "BAD_SHA256");
    // Nothing listens on the discard port.
    let (r, _) = write(&l, "http://127.0.0.1:9/x", &sha);
    assert_eq!(r.expect_err("refused").code(), "HTTP_ERROR");
    assert!(patterned(&l.read(0, 4 * MIB), 0), "failed requests must not touch the disk");
}

#[test]
fn a_corrupt_compressed_stream_is_a_decompress_error() {
    let img = image(ODD, 4);
    let mut gz = compress("gzip", &img);
    let mid = gz.len() / 2;
    gz[mid..mid + 64].fill(0xff);
    let server = Server::new(HashMap::from([("img".to_string(), gz)]));
    let l = Loop::new(16 * MIB, true);
    let (r, _) = write(&l, &format!("{}/img", server.base), &sha_hex(&img));
    assert_eq!(r.expect_err("corrupt").code(), "DECOMPRESS_FAILED");
    assert_head_zeroed(&l);
}

#[test]
fn a_connection_that_ends_early_is_an_http_error_and_leaves_the_first_mib_zeroed() {
    let img = image(ODD, 5);
    let server = Server::new(HashMap::from([("img".to_string(), img.clone())]));
    let l = Loop::new(16 * MIB, true);
    let (r, _) = write(&l, &format!("{}/img.truncated", server.base), &sha_hex(&img));
    assert_eq!(r.expect_err("truncated").code(), "HTTP_ERROR");
    assert_head_zeroed(&l);
}
