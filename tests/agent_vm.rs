//! The agent image on a real (virtual) machine: a qemu VM with two virtio disks (serials set on
//! the qemu command line; one pre-filled with a pattern and a GPT) and SMBIOS strings PXE-boots
//! the real agent image (`images/build-agent.sh`) from ironbay, enrolls, registers an inventory
//! that must match the VM, then the appliance runs `wipe quick` and `write-image` over SSH and
//! powers it off; the disks are read from the host afterwards. TCG unless a hardware hypervisor
//! is loaded.

mod common;
#[path = "support/lab.rs"]
mod lab;
#[path = "support/vm.rs"]
mod vm;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use common::{Appliance, Backend, Client, Options, eventually};
use lab::Lab;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use vm::{Firmware, Vm};

const SERVER: &str = "10.214.0.1";
const MAC: &str = "52:54:00:14:00:01";
const BOOT_SECS: u64 = 300;
const SMBIOS_SERIAL: &str = "IB-LAB-SERIAL-0001";
const SMBIOS_UUID: &str = "2d3c9f0e-5b7a-4c1e-9a44-6b0f1e2d3c4b";
const MIB: u64 = 1 << 20;
const DISK_A: u64 = 96 * MIB;
const DISK_B: u64 = 160 * MIB;
const PATTERN: &[u8] = b"IRONBAY-PATTERN:";

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// The pxe/ dir, and images/ with the agent image and a zstd-compressed test image.
struct Files {
    _dir: tempfile::TempDir,
    pxe: PathBuf,
    images: PathBuf,
    disks: PathBuf,
    /// The raw test image and its SHA-256.
    image: Vec<u8>,
    image_sha256: String,
}

fn files() -> Files {
    let dir = tempfile::tempdir().expect("tmp");
    let pxe = dir.path().join("pxe");
    let images = dir.path().join("images");
    let disks = dir.path().join("disks");
    for d in [&pxe, &images.join("test"), &disks] {
        std::fs::create_dir_all(d).expect("dir");
    }
    for f in ["ipxe.efi", "snponly.efi", "undionly.kpxe"] {
        std::fs::copy(Path::new("/usr/lib/ipxe").join(f), pxe.join(f)).expect("iPXE binaries (package ipxe)");
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("images/build-agent.sh");
    run(Command::new("bash").arg(script).arg(images.join("agent")));

    // A 5 MiB + 123 B image: a GPT made by sfdisk, then bytes no wipe or zero-fill produces.
    let raw = images.join("test/disk.img");
    let mut image: Vec<u8> = (0..5 * MIB + 123).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8 | 1).collect();
    std::fs::write(&raw, &image).unwrap();
    let mut sfdisk =
        Command::new("sfdisk").arg("-q").arg(&raw).stdin(std::process::Stdio::piped()).spawn().expect("sfdisk");
    sfdisk.stdin.take().unwrap().write_all(b"label: gpt\nstart=2048, size=4096, type=linux\n").unwrap();
    assert!(sfdisk.wait().unwrap().success());
    image = std::fs::read(&raw).unwrap();
    run(Command::new("zstd").args(["-q", "-f", "-3"]).arg(&raw).arg("-o").arg(images.join("test/disk.img.zst")));
    std::fs::remove_file(&raw).unwrap();
    let image_sha256 = hex_of(&Sha256::digest(&image));

    // Disk A: empty. Disk B: the pattern everywhere, then a GPT over it.
    run(Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(disks.join("a.qcow2"))
        .arg(DISK_A.to_string()));
    let b_raw = disks.join("b.raw");
    let pattern: Vec<u8> = PATTERN.iter().copied().cycle().take(DISK_B as usize).collect();
    std::fs::write(&b_raw, pattern).unwrap();
    let mut sfdisk =
        Command::new("sfdisk").arg("-q").arg(&b_raw).stdin(std::process::Stdio::piped()).spawn().expect("sfdisk");
    sfdisk.stdin.take().unwrap().write_all(b"label: gpt\nsize=64MiB, type=linux\n").unwrap();
    assert!(sfdisk.wait().unwrap().success());
    run(Command::new("qemu-img").args(["convert", "-q", "-O", "qcow2"]).arg(&b_raw).arg(disks.join("b.qcow2")));
    std::fs::remove_file(&b_raw).unwrap();
    Files { _dir: dir, pxe, images, disks, image, image_sha256 }
}

fn hex_of(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A qcow2 disk's bytes, as the host reads it after the VM stopped.
fn disk_bytes(qcow2: &Path) -> Vec<u8> {
    let raw = qcow2.with_extension("out.raw");
    run(Command::new("qemu-img").args(["convert", "-q", "-O", "raw"]).arg(qcow2).arg(&raw));
    let bytes = std::fs::read(&raw).unwrap();
    let _ = std::fs::remove_file(raw);
    bytes
}

async fn command(admin: &Client, asset: &str, body: Value) -> Vec<Value> {
    let r = admin.post(&format!("/api/v1/assets/{asset}/agent/commands"), body.clone()).await;
    assert_eq!(r.status, 200, "{body}: {}", r.text);
    let lines: Vec<Value> = r.text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let last = lines.last().cloned().unwrap_or_default();
    assert_eq!(last["result"], "ok", "{body}:\n{}", r.text);
    lines
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vm_boots_the_agent_which_registers_wipes_and_writes_an_image() {
    let f = files();
    let mut lab = Lab::with_subnet(SERVER, 24);
    let tap = lab.add_tap();
    let opts = Options { netns: Some(lab.server_ns.clone()), ..Options::default() }
        .env("IRONBAY_LISTEN", &format!("{SERVER}:8080"))
        .env("IRONBAY_DHCP__INTERFACES", r#"[{name="ibbr0",mode="full",vni="rack-a"}]"#)
        .env("IRONBAY_BOOT__PXE_DIR", &f.pxe.display().to_string())
        .env("IRONBAY_BOOT__IMAGES_DIR", &f.images.display().to_string());
    let app = Appliance::start_with(Backend::Sqlite, opts).await;
    let admin = app.admin().await;
    let r = admin
        .post(
            "/api/v1/vnis",
            json!({"name": "rack-a", "cidr": "10.214.0.0/24", "vni": 214,
                   "dhcp": {"start": "10.214.0.100", "end": "10.214.0.199"}, "gateway": SERVER}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);

    let drive = |name: &str, serial: &str| {
        [
            "-drive".to_string(),
            format!("file={},if=none,id={name},format=qcow2", f.disks.join(format!("{name}.qcow2")).display()),
            "-device".to_string(),
            format!("virtio-blk-pci,drive={name},serial={serial}"),
        ]
    };
    let mut extra: Vec<String> = Vec::new();
    extra.extend(drive("a", "IB-DISK-A"));
    extra.extend(drive("b", "IB-DISK-B"));
    extra.extend([
        "-smbios".to_string(),
        format!("type=1,manufacturer=ironbay-lab,product=lab-vm,serial={SMBIOS_SERIAL},uuid={SMBIOS_UUID}"),
    ]);
    let started = Instant::now();
    let mut vm = Vm::start_with(&lab, &tap, MAC, Firmware::Bios, &extra);

    // Registered: the asset exists and is available.
    let asset: Value = eventually("the agent's registration", BOOT_SECS, || {
        let exited = vm.exited();
        let console = vm.console();
        let admin = &admin;
        async move {
            let r = admin.get(&format!("/api/v1/assets?mac={MAC}")).await;
            let a = r.json["data"][0].clone();
            if a["state"] == "available" {
                return Ok(a);
            }
            let tail: String = console.chars().rev().take(3000).collect::<Vec<_>>().into_iter().rev().collect();
            Err(format!("qemu {}; asset {a}\n--- console tail ---\n{tail}", if exited { "EXITED" } else { "running" }))
        }
    })
    .await;
    let registered_after = started.elapsed();
    eprintln!("agent registered {:.1}s after qemu started", registered_after.as_secs_f64());
    let id = asset["id"].as_str().unwrap().to_string();
    let hostname = asset["hostname"].as_str().unwrap().to_string();

    // The inventory matches the VM.
    assert_eq!(asset["macs"], json!([MAC]), "{asset:#}");
    assert_eq!(asset["serial"], SMBIOS_SERIAL, "{asset:#}");
    assert_eq!(asset["smbios_uuid"], SMBIOS_UUID, "{asset:#}");
    assert_eq!(asset["specs"]["system"]["vendor"], "ironbay-lab", "{asset:#}");
    assert_eq!(asset["specs"]["system"]["product"], "lab-vm", "{asset:#}");
    assert_eq!(asset["specs"]["firmware"], "bios", "{asset:#}");
    let disks = asset["disks"].as_array().cloned().unwrap_or_default();
    let by_serial =
        |s: &str| disks.iter().find(|d| d["serial"] == s).cloned().unwrap_or_else(|| panic!("{s}: {asset:#}"));
    let (a, b) = (by_serial("IB-DISK-A"), by_serial("IB-DISK-B"));
    assert_eq!((a["size_bytes"].as_u64(), b["size_bytes"].as_u64()), (Some(DISK_A), Some(DISK_B)), "{asset:#}");
    assert_eq!((a["transport"].as_str(), b["transport"].as_str()), (Some("virtio"), Some("virtio")));
    assert_eq!((a["partition_table"].clone(), b["partition_table"].as_str()), (Value::Null, Some("gpt")), "{asset:#}");
    let nic = asset["nics"].as_array().and_then(|n| n.iter().find(|n| n["mac"] == MAC).cloned());
    assert!(nic.is_some_and(|n| n["driver"] == "virtio_net"), "{asset:#}");
    let agent = admin.get(&format!("/api/v1/assets/{id}/agent")).await.json;
    assert_eq!(agent["status"], "online", "{agent}");
    assert!(agent["address"].as_str().unwrap_or("").starts_with("10.214.0.1"), "{agent}");

    // wipe quick (every disk), then write-image onto disk A, over SSH.
    let wipe = command(&admin, &id, json!({"command": "wipe", "method": "quick", "confirm": hostname})).await;
    let result = &wipe.last().unwrap()["details"]["disks"];
    for d in result.as_array().unwrap() {
        if d["disk"] == a["path"] || d["disk"] == b["path"] {
            assert_eq!(d["status"], "wiped", "{d}");
            assert_eq!(d["verification"]["passed"], true, "{d}");
        } else {
            // qemu's own CD-ROM drive: protected, reported, untouched.
            assert_eq!((d["status"].as_str(), d["reason"].as_str()), (Some("skipped"), Some("read-only")), "{d}");
        }
    }
    assert_eq!(result.as_array().map(|r| r.iter().filter(|d| d["status"] == "wiped").count()), Some(2), "{result}");
    assert!(wipe.iter().any(|l| l["step"].is_string()), "progress lines streamed: {wipe:?}");
    let url = format!("http://{SERVER}:8080/images/test/disk.img.zst");
    let write = command(
        &admin,
        &id,
        json!({"command": "write-image", "url": url, "sha256": f.image_sha256, "disk": a["path"], "confirm": id}),
    )
    .await;
    let w = &write.last().unwrap()["details"];
    assert_eq!((w["format"].as_str(), w["sha256"].as_str()), (Some("zstd"), Some(f.image_sha256.as_str())), "{w}");
    assert_eq!(w["bytes_written"].as_u64(), Some(f.image.len() as u64), "{w}");
    // A corrupted expectation is refused and reported, never "ok".
    let r = admin
        .post(
            &format!("/api/v1/assets/{id}/agent/commands"),
            json!({"command": "write-image", "url": url, "sha256": "0".repeat(64), "disk": b["path"], "confirm": id}),
        )
        .await;
    let last: Value = serde_json::from_str(r.text.lines().last().unwrap()).unwrap();
    assert_eq!(last["code"], "SHA256_MISMATCH", "{}", r.text);
    let state = admin.get(&format!("/api/v1/assets/{id}")).await.json["state"].clone();
    assert_eq!(state, "failed", "a failed image write holds the asset off its disk");
    let history = command(&admin, &id, json!({"command": "history"})).await;
    assert_eq!(history.last().unwrap()["details"].as_array().map(Vec::len), Some(3), "{history:?}");

    command(&admin, &id, json!({"command": "poweroff", "confirm": id})).await;
    eventually("the VM to power off", 60, || {
        let exited = vm.exited();
        async move { if exited { Ok(()) } else { Err("still running".to_string()) } }
    })
    .await;

    // From the host: disk A holds the image byte for byte. Disk B was wiped (first and last
    // 32 MiB zero, no GPT, its pattern untouched in between), then got the refused write: its
    // body landed but the first MiB (boot sector, GPT) was held back, so nothing on B can boot.
    let a_bytes = disk_bytes(&f.disks.join("a.qcow2"));
    assert!(a_bytes[..f.image.len()] == f.image[..], "disk A holds the image");
    let b_bytes = disk_bytes(&f.disks.join("b.qcow2"));
    let mib = MIB as usize;
    let (head, tail) = (32 * mib, b_bytes.len() - 32 * mib);
    assert!(b_bytes[..mib].iter().all(|&x| x == 0), "disk B's first MiB stays zero after the refused write");
    assert!(b_bytes[mib..f.image.len()] == f.image[mib..], "the refused write's body");
    assert!(b_bytes[f.image.len()..head].iter().all(|&x| x == 0), "the rest of disk B's first 32 MiB is zero");
    assert!(b_bytes[tail..].iter().all(|&x| x == 0), "disk B's last 32 MiB are zero");
    let middle = &b_bytes[head..tail];
    assert!(middle.chunks(PATTERN.len()).all(|c| c == &PATTERN[..c.len()]), "quick leaves the middle alone");
    let (lba1, last) = (&b_bytes[512..520], &b_bytes[b_bytes.len() - 512..b_bytes.len() - 504]);
    assert!(lba1 != b"EFI PART" && last != b"EFI PART", "no GPT header where a GPT is looked for");
    eprintln!(
        "agent VM: registered {:.1}s after start; wipe {} lines, write {:.1} MB/s",
        registered_after.as_secs_f64(),
        wipe.len(),
        w["rate"].as_f64().unwrap_or(0.0) / 1e6
    );
}
