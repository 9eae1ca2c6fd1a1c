//! Whole boot chains with real firmware: qemu VMs on the lab's bridge network-boot against
//! ironbay (its DHCP, TFTP and HTTP), load the lab's kernel and test initramfs and reach
//! userspace, which reports back over HTTP. BIOS (SeaBIOS + the NIC's iPXE ROM), UEFI (OVMF with
//! EDK2's own PXE client: DHCP, then TFTP for ipxe.efi, then iPXE over HTTP), and proxy mode
//! beside dnsmasq. TCG unless a hardware hypervisor is loaded: each boot takes 30-60 s.

mod common;
#[path = "support/lab.rs"]
mod lab;
#[path = "support/vm.rs"]
mod vm;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Appliance, Backend, Client, Options, eventually};
use lab::Lab;
use serde_json::{Value, json};
use vm::{Firmware, Vm};

const SERVER: &str = "10.213.0.1";
/// TCG boots of firmware + kernel are slow; generous, but bounded.
const BOOT_SECS: u64 = 240;

/// The pxe/ dir (Debian's iPXE binaries) and images/agent/ (the lab's test kernel + initramfs).
fn boot_files() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().expect("tmp");
    let pxe = dir.path().join("pxe");
    let images = dir.path().join("images");
    let agent = images.join("agent");
    std::fs::create_dir_all(&pxe).expect("pxe dir");
    std::fs::create_dir_all(&agent).expect("images dir");
    for f in ["ipxe.efi", "snponly.efi", "undionly.kpxe"] {
        std::fs::copy(Path::new("/usr/lib/ipxe").join(f), pxe.join(f)).expect("iPXE binaries (package ipxe)");
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lab/build-test-initramfs.sh");
    let status = Command::new("bash").arg(script).arg(&agent).status().expect("build the test initramfs");
    assert!(status.success(), "building the test initramfs failed");
    (dir, pxe, images)
}

async fn appliance(lab: &Lab, interfaces: &str, pxe: &Path, images: &Path) -> Appliance {
    let opts = Options { netns: Some(lab.server_ns.clone()), ..Options::default() }
        .env("IRONBAY_LISTEN", &format!("{SERVER}:8080"))
        .env("IRONBAY_DHCP__INTERFACES", interfaces)
        .env("IRONBAY_BOOT__PXE_DIR", &pxe.display().to_string())
        .env("IRONBAY_BOOT__IMAGES_DIR", &images.display().to_string());
    Appliance::start_with(Backend::Sqlite, opts).await
}

async fn create_rack_a(admin: &Client) {
    let r = admin
        .post(
            "/api/v1/vnis",
            json!({"name": "rack-a", "cidr": "10.213.0.0/24", "vni": 100,
                   "dhcp": {"start": "10.213.0.100", "end": "10.213.0.199"}, "gateway": SERVER}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
}

async fn events(admin: &Client, mac: &str) -> Vec<Value> {
    let r = admin.get(&format!("/api/v1/boot-events?mac={mac}&limit=500")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let mut ev = r.json["data"].as_array().cloned().unwrap_or_default();
    ev.reverse();
    ev
}

fn timeline(ev: &[Value]) -> String {
    ev.iter()
        .map(|e| format!("{} {} | {} | {} | {}", e["at"], e["source"], e["request"], e["response"], e["reason"]))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Boots `vm` until its initramfs reported; returns the asset.
async fn boot_to_report(admin: &Client, vm: &mut Vm) -> Value {
    let mac = vm.mac.clone();
    eventually("the VM's userspace report", BOOT_SECS, || {
        let exited = vm.exited();
        let console = vm.console();
        let mac = mac.clone();
        async move {
            let ev = events(admin, &mac).await;
            if ev.iter().any(|e| e["request"].as_str().is_some_and(|r| r.starts_with("POST /boot/report"))) {
                return Ok(());
            }
            let tail: String = console.chars().rev().take(3000).collect::<Vec<_>>().into_iter().rev().collect();
            let state = if exited { "qemu EXITED" } else { "running" };
            Err(format!("{state}\n--- timeline ---\n{}\n--- console tail ---\n{tail}", timeline(&ev)))
        }
    })
    .await;
    let r = admin.get(&format!("/api/v1/assets?mac={mac}")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.json["data"][0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bios_vm_boots_through_ironbay_to_userspace() {
    let (asset, ev) = boot(Mode::Full, Firmware::Bios, "52:54:00:13:00:01").await;
    assert_eq!(asset["macs"], json!(["52:54:00:13:00:01"]), "{asset:#}");
    assert_eq!(asset["specs"]["firmware"], "bios", "{asset:#}");
    let line = timeline(&ev);
    // iPXE (the NIC's ROM) asked DHCP and was sent to the script, not to another iPXE.
    assert!(line.contains("user-class=iPXE") && line.contains("/boot.ipxe"), "{line}");
    for step in ["GET /boot.ipxe", "GET /images/agent/vmlinuz", "GET /images/agent/initrd.img", "POST /boot/report"] {
        assert!(ev.iter().any(|e| e["request"].as_str().is_some_and(|r| r.starts_with(step))), "{step}:\n{line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_uefi_vm_with_firmware_pxe_boots_through_dhcp_tftp_and_http() {
    let (asset, ev) = boot(Mode::Full, Firmware::UefiFirmwarePxe, "52:54:00:13:01:01").await;
    assert_eq!(asset["specs"]["firmware"], "uefi", "{asset:#}");
    assert_eq!(asset["specs"]["arch"], "x86_64", "{asset:#}");
    let line = timeline(&ev);
    // EDK2 PXE (arch 7) → ipxe.efi over TFTP → iPXE → the script over HTTP.
    assert!(line.contains("arch=7") && line.contains("file=ipxe.efi"), "{line}");
    assert!(
        ev.iter().any(|e| e["source"] == "tftp" && e["request"].as_str().is_some_and(|r| r.contains("ipxe.efi"))),
        "{line}"
    );
    assert!(line.contains("GET /boot.ipxe"), "{line}");
}

/// Who hands out addresses on the lab's segment.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// ironbay, from VNI rack-a.
    Full,
    /// dnsmasq (10.213.0.150-160, no boot options); ironbay in proxy mode only adds the boot
    /// program, so the VM must get its address from dnsmasq and its boot from ironbay.
    ProxyBesideDnsmasq,
}

/// Boots one VM with `mac` through ironbay until its userspace reported: the asset and the MAC's
/// boot timeline, oldest first.
async fn boot(mode: Mode, firmware: Firmware, mac: &str) -> (Value, Vec<Value>) {
    let (_files, pxe, images) = boot_files();
    let mut lab = Lab::new();
    let tap = lab.add_tap();
    let leases = tempfile::NamedTempFile::new().expect("lease file");
    let mut dnsmasq = (mode == Mode::ProxyBesideDnsmasq).then(|| {
        let ns = lab.add_client();
        lab.set_address(&ns, "10.213.0.2");
        lab.command(&ns.ns, "dnsmasq")
            .args(["--no-daemon", "--port=0", "--no-resolv", "--no-hosts", "--bind-interfaces"])
            .arg(format!("--interface={}", ns.ifname))
            .arg("--dhcp-range=10.213.0.150,10.213.0.160,255.255.255.0,1h")
            .arg(format!("--dhcp-leasefile={}", leases.path().display()))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("dnsmasq (package dnsmasq-base)")
    });
    let interfaces = match mode {
        Mode::Full => r#"[{name="ibbr0",mode="full",vni="rack-a"}]"#,
        Mode::ProxyBesideDnsmasq => r#"[{name="ibbr0",mode="proxy"}]"#,
    };
    let app = appliance(&lab, interfaces, &pxe, &images).await;
    let admin = app.admin().await;
    if mode == Mode::Full {
        create_rack_a(&admin).await;
    }
    let mut vm = Vm::start(&lab, &tap, mac, firmware);
    let asset = boot_to_report(&admin, &mut vm).await;
    let ev = events(&admin, mac).await;
    if let Some(d) = dnsmasq.as_mut() {
        let _ = d.kill();
        let _ = d.wait();
    }
    (asset, ev)
}

/// iPXE fetched the script once for this machine (after at most one bare request that re-chains
/// with its MAC) and never loaded iPXE again over HTTP.
fn assert_one_script_and_no_ipxe_reload(ev: &[Value], line: &str) {
    let req = |e: &Value| e["request"].as_str().unwrap_or("").to_string();
    let with_mac = ev.iter().filter(|e| req(e).starts_with("GET /boot.ipxe?mac=")).count();
    let bare = ev.iter().filter(|e| req(e) == "GET /boot.ipxe").count();
    assert_eq!((with_mac, bare <= 1), (1, true), "{line}");
    assert!(!ev.iter().any(|e| req(e).starts_with("GET /pxe/")), "{line}");
}

fn reported_ip(ev: &[Value]) -> String {
    let report = ev.iter().find(|e| e["request"] == "POST /boot/report").expect("a report");
    let reason = report["reason"].as_str().unwrap_or("");
    reason.split("ip ").nth(1).and_then(|s| s.split(',').next()).unwrap_or("").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_mode_beside_dnsmasq_boots_ipxe_without_a_chain_load_loop() {
    let (asset, ev) = boot(Mode::ProxyBesideDnsmasq, Firmware::Bios, "52:54:00:13:02:01").await;
    let line = timeline(&ev);
    let ip = reported_ip(&ev);
    assert!(ip.starts_with("10.213.0.15") || ip == "10.213.0.160", "address from dnsmasq's range, got {ip}:\n{line}");
    // ironbay answered as a proxy (no address), pointing iPXE at the script: exactly one script fetch
    // per boot, no iPXE loading iPXE.
    assert!(line.contains("(proxy, no address) file=http://10.213.0.1:8080/boot.ipxe"), "{line}");
    assert_one_script_and_no_ipxe_reload(&ev, &line);
    assert_eq!(asset["specs"]["firmware"], "bios", "{asset:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_mode_beside_dnsmasq_boots_uefi_firmware_pxe() {
    // OVMF without the NIC's iPXE ROM: EDK2's own PXE client, which takes a proxy offer only when it
    // carries option 43 (edk2#6944), then TFTP ipxe.efi, then iPXE and the script.
    let (asset, ev) = boot(Mode::ProxyBesideDnsmasq, Firmware::UefiFirmwarePxe, "52:54:00:13:02:02").await;
    let line = timeline(&ev);
    let ip = reported_ip(&ev);
    assert!(ip.starts_with("10.213.0.15") || ip == "10.213.0.160", "address from dnsmasq's range, got {ip}:\n{line}");
    assert!(line.contains("arch=7") && line.contains("(proxy, no address) file=ipxe.efi"), "{line}");
    assert!(
        ev.iter().any(|e| e["source"] == "tftp" && e["request"].as_str().is_some_and(|r| r.contains("ipxe.efi"))),
        "{line}"
    );
    assert_one_script_and_no_ipxe_reload(&ev, &line);
    assert_eq!(asset["specs"]["firmware"], "uefi", "{asset:#}");
}
