//! The lab's bootable disk image (`tests/lab/build-disk-image.sh`), which end-to-end tests have
//! the agent write to a VM's disk before the VM reboots from it: small, the same bytes on every
//! build, and a BIOS VM with only that disk (no network boot) boots it to userspace, which takes
//! a DHCP lease and reports `booted from disk` with its MAC to a listener in the lab. TCG unless
//! a hardware hypervisor is loaded.

#[path = "support/lab.rs"]
mod lab;
#[path = "support/netns.rs"]
mod netns;
#[path = "support/reports.rs"]
mod reports;
#[path = "support/vm.rs"]
mod vm;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use lab::Lab;
use sha2::{Digest, Sha256};
use vm::Vm;

const SERVER: &str = "10.213.0.1";
const MAC: &str = "52:54:00:15:00:01";
const MAX_BYTES: u64 = 48 << 20;
/// A TCG boot of SeaBIOS, SYSLINUX and the kernel takes ~10-40 s; generous, but bounded.
const BOOT_SECS: u64 = 180;

/// Runs the build script: the image's path, the SHA-256 it printed last, and how long it took.
fn build(dir: &Path, name: &str, url: &str, compress: bool) -> (PathBuf, String, Duration) {
    let out = dir.join(name);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lab/build-disk-image.sh");
    let mut cmd = Command::new("bash");
    cmd.arg(script).arg(&out).arg(url);
    if compress {
        cmd.env("COMPRESS", "zst");
    }
    let started = Instant::now();
    let o = cmd.output().expect("bash");
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(o.status.success(), "build-disk-image.sh failed:\n{stdout}\n{}", String::from_utf8_lossy(&o.stderr));
    let last = stdout.lines().last().unwrap_or("");
    let sha = last.strip_prefix("sha256 ").unwrap_or_else(|| panic!("last line is not `sha256 <hex>`: {last:?}"));
    (out, sha.to_string(), took)
}

fn hex_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn the_disk_image_is_small_bootable_mbr_and_the_same_bytes_on_every_build() {
    let dir = tempfile::tempdir().expect("tmp");
    let url = format!("http://{SERVER}:8081/report");
    let (a, sha_a, took) = build(dir.path(), "a.img", &url, false);
    let (b, sha_b, _) = build(dir.path(), "b.img", &url, true);
    let bytes = std::fs::read(&a).expect("image a");
    assert_eq!(sha_a, hex_sha256(&bytes), "the printed sha256 is the image's");
    assert_eq!(sha_a, sha_b, "two builds from the same inputs");
    assert!(bytes == std::fs::read(&b).expect("image b"), "two builds give the same bytes");
    let size = bytes.len() as u64;
    assert!(size <= MAX_BYTES, "image is {size} bytes, over {MAX_BYTES}");
    // MBR: boot signature, SYSLINUX's boot code, one active FAT16 (LBA) partition at 1 MiB.
    assert_eq!(&bytes[510..512], &[0x55, 0xaa], "MBR signature");
    let mbr = std::fs::read("/usr/lib/syslinux/mbr/mbr.bin").expect("mbr.bin (package syslinux-common)");
    assert!(bytes[..mbr.len().min(440)] == mbr[..mbr.len().min(440)], "SYSLINUX's MBR boot code");
    let p = &bytes[446..462];
    assert_eq!((p[0], p[4]), (0x80, 0x0e), "partition 1: active, FAT16 LBA");
    assert_eq!(u32::from_le_bytes([p[8], p[9], p[10], p[11]]), 2048, "partition 1 starts at 1 MiB");
    assert!(bytes[462..510].iter().all(|&x| x == 0), "one partition only");
    // COMPRESS=zst: a zstd copy beside it that decompresses to the same bytes.
    let zst = dir.path().join("b.img.zst");
    let d = Command::new("zstd").args(["-q", "-d", "-c"]).arg(&zst).output().expect("zstd");
    assert!(d.status.success() && d.stdout == bytes, "b.img.zst decompresses to the image");
    // A URL the kernel command line cannot carry is refused.
    let o = Command::new("bash")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lab/build-disk-image.sh"))
        .arg(dir.path().join("c.img"))
        .arg("http://x/a b")
        .output()
        .expect("bash");
    assert!(!o.status.success() && !dir.path().join("c.img").exists(), "a URL with a space is refused");
    eprintln!(
        "disk image: {:.1} MiB ({:.1} MiB zstd), built in {:.1}s",
        size as f64 / (1 << 20) as f64,
        std::fs::metadata(&zst).map(|m| m.len()).unwrap_or(0) as f64 / (1 << 20) as f64,
        took.as_secs_f64()
    );
}

fn tail(s: &str, n: usize) -> String {
    s.chars().rev().take(n).collect::<Vec<_>>().into_iter().rev().collect()
}

#[test]
fn a_bios_vm_boots_the_disk_image_from_its_virtio_disk_and_reports() {
    let mut lab = Lab::new();
    let tap = lab.add_tap();
    let listener =
        netns::bind_tcp(&lab.server_ns, SocketAddr::from(([10, 213, 0, 1], 0))).expect("listener in the lab");
    let port = listener.local_addr().expect("port").port();
    let reports = reports::serve_reports(listener);

    let dir = tempfile::tempdir().expect("tmp");
    let url = format!("http://{SERVER}:{port}/report");
    let (image, _, _) = build(dir.path(), "disk.img", &url, false);
    // The VM writes to a qcow2 overlay, never to the image itself.
    let disk = dir.path().join("vm.qcow2");
    let o = Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2", "-F", "raw", "-b"])
        .arg(&image)
        .arg(&disk)
        .output()
        .expect("qemu-img (package qemu-utils)");
    assert!(o.status.success(), "qemu-img: {}", String::from_utf8_lossy(&o.stderr));

    let leases = dir.path().join("leases");
    let mut dnsmasq = lab
        .command(&lab.server_ns, "dnsmasq")
        .args(["--no-daemon", "--port=0", "--no-resolv", "--no-hosts", "--bind-interfaces", "--interface=ibbr0"])
        .arg("--dhcp-range=10.213.0.100,10.213.0.199,255.255.255.0,1h")
        .arg(format!("--dhcp-leasefile={}", leases.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("dnsmasq (package dnsmasq-base)");

    let started = Instant::now();
    let mut vm = Vm::start_disk(&lab, &tap, MAC, &disk, "qcow2");
    let deadline = started + Duration::from_secs(BOOT_SECS);
    let body = loop {
        match reports.recv_timeout(Duration::from_millis(500)) {
            Ok(body) => break body,
            Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() < deadline && !vm.exited() => {}
            Err(e) => panic!(
                "no report from the VM ({e:?}, qemu {})\n--- console tail ---\n{}",
                if vm.exited() { "EXITED" } else { "running" },
                tail(&vm.console(), 4000)
            ),
        }
    };
    let reported_after = started.elapsed();
    let mut lines = body.lines();
    assert_eq!(lines.next(), Some("booted from disk"), "{body}");
    assert_eq!(lines.next(), Some(format!("mac {MAC}").as_str()), "{body}");
    let cmdline = lines.next().and_then(|l| l.strip_prefix("cmdline ")).unwrap_or_else(|| panic!("{body}"));
    assert!(cmdline.split(' ').any(|a| a == format!("ironbay.report={url}")), "{body}");
    // The firmware booted the disk (SYSLINUX ran), not the network: qemu was given `-boot c`.
    let console = vm.console();
    assert!(console.contains("SYSLINUX"), "{}", tail(&console, 4000));
    assert!(console.contains(&format!("IRONBAY-DISK-BOOTED mac={MAC}")), "{}", tail(&console, 4000));
    assert!(!vm.exited(), "the image stays up after reporting");
    let _ = dnsmasq.kill();
    let _ = dnsmasq.wait();
    eprintln!("disk image VM: reported {:.1}s after qemu started", reported_after.as_secs_f64());
}
