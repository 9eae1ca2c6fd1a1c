//! The whole product on two virtual machines, nothing powered on by hand: each qemu VM sits
//! behind its own OpenIPMI `ipmi_sim` BMC (whose chassis control starts and kills the VM, and
//! passes the boot device it was set to). Both are registered with their BMC credentials; one is
//! wiped, the other provisioned with a small bootable disk image the test builds. The appliance
//! powers them on over IPMI, they PXE-boot the real agent, the steps run, the provisioned VM
//! reboots into its disk and reports from there; the disks are checked from the host. TCG unless
//! a hardware hypervisor is loaded.

#[path = "support/bmc.rs"]
mod bmc_sim;
mod common;
#[path = "support/lab.rs"]
mod lab;
#[path = "support/reports.rs"]
mod reports;
#[path = "support/vm.rs"]
mod vm;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use bmc_sim::SimBmc;
use common::{Appliance, Backend, Client, Options, eventually, netns};
use lab::Lab;
use serde_json::{Value, json};

const SERVER: &str = "10.215.0.1";
const MIB: u64 = 1 << 20;
const DISK: u64 = 64 * MIB;
const PATTERN: &[u8] = b"IRONBAY-WF-PATTERN:";
const BMC_PASSWORD: &str = "lab-bmc-pw";
/// How much of a serial console a failure message shows.
const CONSOLE_TAIL: usize = 3000;

async fn finished(admin: &Client, id: &str, dir: &Path, idx: u32) -> Value {
    eventually(&format!("workflow {id}"), 420, || {
        let admin = admin.clone();
        let tail = vm::console_tail(dir, idx, CONSOLE_TAIL);
        async move {
            let w = admin.get(&format!("/api/v1/workflows/{id}")).await.json;
            match w["state"].as_str() {
                Some("succeeded") => Ok(w),
                Some("failed" | "cancelled") => panic!("workflow ended {}: {w:#}\n--- console ---\n{tail}", w["state"]),
                _ => {
                    let cur = w["current_step"].as_u64().unwrap_or(0) as usize;
                    Err(format!("at step {}\n--- console ---\n{tail}", w["steps"][cur]["type"]))
                }
            }
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_machines_are_wiped_and_provisioned_through_their_bmcs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (pxe, images) = (d.join("pxe"), d.join("images"));
    for p in [&pxe, &images.join("lab")] {
        std::fs::create_dir_all(p).unwrap();
    }
    for f in ["ipxe.efi", "snponly.efi", "undionly.kpxe"] {
        std::fs::copy(Path::new("/usr/lib/ipxe").join(f), pxe.join(f)).expect("iPXE binaries (package ipxe)");
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    vm::run(Command::new("bash").arg(root.join("images/build-agent.sh")).arg(images.join("agent")));

    let mut lab = Lab::with_subnet(SERVER, 24);
    let listener = netns::bind_tcp(&lab.server_ns, SocketAddr::from(([10, 215, 0, 1], 0))).expect("report listener");
    let report_url = format!("http://{SERVER}:{}/report", listener.local_addr().unwrap().port());
    let reports = reports::serve_reports(listener);
    let image = images.join("lab/disk.img");
    let built =
        vm::run(Command::new("bash").arg(root.join("tests/lab/build-disk-image.sh")).arg(&image).arg(&report_url));
    let sha256 = built.lines().last().and_then(|l| l.strip_prefix("sha256 ")).expect("sha256 line").to_string();
    let image_bytes = std::fs::read(&image).unwrap();

    // Disk 0 (to be wiped): a GPT over a pattern. Disk 1 (to be provisioned): empty.
    let raw0 = d.join("disk0.raw");
    std::fs::write(&raw0, PATTERN.iter().copied().cycle().take(DISK as usize).collect::<Vec<u8>>()).unwrap();
    let mut sf = Command::new("sfdisk").arg("-q").arg(&raw0).stdin(std::process::Stdio::piped()).spawn().unwrap();
    std::io::Write::write_all(&mut sf.stdin.take().unwrap(), b"label: gpt\nsize=32MiB, type=linux\n").unwrap();
    assert!(sf.wait().unwrap().success());
    vm::run(Command::new("qemu-img").args(["convert", "-q", "-O", "qcow2"]).arg(&raw0).arg(d.join("disk0.qcow2")));
    vm::run(
        Command::new("qemu-img").args(["create", "-q", "-f", "qcow2"]).arg(d.join("disk1.qcow2")).arg(DISK.to_string()),
    );

    let opts = Options { netns: Some(lab.server_ns.clone()), ..Options::default() }
        .env("IRONBAY_LISTEN", &format!("{SERVER}:8080"))
        .env("IRONBAY_DHCP__INTERFACES", r#"[{name="ibbr0",mode="full",vni="rack-w"}]"#)
        .env("IRONBAY_BOOT__PXE_DIR", &pxe.display().to_string())
        .env("IRONBAY_BOOT__IMAGES_DIR", &images.display().to_string())
        .env("IRONBAY_WORKFLOWS__INSTALL_QUIET_SECS", "120");
    let app = Appliance::start_with(Backend::Sqlite, opts).await;
    let admin = app.admin().await;
    let r = admin
        .post(
            "/api/v1/vnis",
            json!({"name": "rack-w", "cidr": "10.215.0.0/24", "vni": 215,
                   "dhcp": {"start": "10.215.0.100", "end": "10.215.0.199"}, "gateway": SERVER}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);

    // Two machines, each behind its own BMC; registered with their credentials, all powered off.
    let mut bmcs = Vec::new();
    let mut assets = Vec::new();
    for idx in 0..2u32 {
        let tap = lab.add_tap();
        let mac = format!("52:54:00:15:0e:{idx:02x}");
        let bmc_ip = format!("10.215.0.{}", 20 + idx);
        let bmc = SimBmc::start(&lab, &bmc_ip, BMC_PASSWORD, &vm::bmc_machine(d, idx, &tap, &mac, "IB-WF-DISK", ""));
        assert!(!bmc.power_is_on());
        let r = admin
            .post(
                "/api/v1/assets",
                json!({"hostname": format!("wf-node-{idx}"), "macs": [mac],
                       "bmc": {"driver": "ipmi", "address": bmc_ip, "username": bmc.username, "password": BMC_PASSWORD}}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        let id = r.json["id"].as_str().unwrap().to_string();
        let check = admin.post(&format!("/api/v1/assets/{id}/bmc/check"), json!({})).await;
        assert_eq!((check.status, check.json["power"].as_str()), (200, Some("off")), "{}", check.text);
        bmcs.push(bmc);
        assets.push(id);
    }

    let started = Instant::now();
    let wipe = admin
        .post(&format!("/api/v1/assets/{}/wipe", assets[0]), json!({"method": "quick", "confirm": "wf-node-0"}))
        .await;
    assert_eq!(wipe.status, 202, "{}", wipe.text);
    let url = format!("http://{SERVER}:8080/images/lab/disk.img");
    let prov = admin
        .post(
            &format!("/api/v1/assets/{}/provision", assets[1]),
            json!({"image": {"url": url, "sha256": sha256}, "disk": {"serial": "IB-WF-DISK-1"}}),
        )
        .await;
    assert_eq!(prov.status, 202, "{}", prov.text);

    let w = finished(&admin, wipe.json["id"].as_str().unwrap(), d, 0).await;
    eprintln!("wipe finished {:.1}s after the request", started.elapsed().as_secs_f64());
    let p = finished(&admin, prov.json["id"].as_str().unwrap(), d, 1).await;
    eprintln!("provision finished {:.1}s after the request", started.elapsed().as_secs_f64());
    for s in p["steps"].as_array().unwrap() {
        eprintln!(
            "  {:<16} {:<9} {} → {}",
            s["type"].as_str().unwrap(),
            s["status"].as_str().unwrap(),
            s["started_at"],
            s["finished_at"]
        );
    }
    let step_status =
        |w: &Value, t: &str| w["steps"].as_array().unwrap().iter().find(|s| s["type"] == t).unwrap()["status"].clone();
    assert_eq!(step_status(&w, "power_on"), "succeeded", "powered on over IPMI: {w:#}");
    assert_eq!(step_status(&p, "set_boot_disk"), "succeeded");
    assert_eq!(admin.get(&format!("/api/v1/assets/{}", assets[0])).await.json["state"], "available");
    assert_eq!(admin.get(&format!("/api/v1/assets/{}", assets[1])).await.json["state"], "provisioned");
    assert!(bmcs[0].log().contains("boot pxe") && bmcs[1].log().contains("boot pxe"));
    assert!(bmcs[1].log().contains("boot default"), "disk boot set: {}", bmcs[1].log());

    // The provisioned machine runs its disk: the image's own userspace reports.
    let report = reports.recv_timeout(Duration::from_secs(240)).expect("a report from the installed system");
    assert!(report.contains("booted from disk") && report.contains("52:54:00:15:0e:01"), "{report}");
    // The wiped machine is off; the certificate names its disk.
    eventually("the wiped machine off", 60, || async {
        if bmcs[0].power_is_on() { Err("on".to_string()) } else { Ok(()) }
    })
    .await;
    let cert = admin.get(&format!("/api/v1/workflows/{}/certificate", wipe.json["id"].as_str().unwrap())).await;
    assert_eq!(cert.status, 200, "{}", cert.text);
    assert!(cert.text.contains("IB-WF-DISK-0"), "{}", cert.text);

    // From the host: disk 0's GPT and the pattern at its start are gone; disk 1 starts with the image.
    let b0 = vm::disk_bytes(&d.join("disk0.qcow2"));
    assert!(b0[..32 * MIB as usize].iter().all(|&b| b == 0), "the wiped disk's first 32 MiB are zero");
    assert!(!b0.windows(8).any(|w| w == b"EFI PART"), "no GPT header is left on the wiped disk");
    bmcs[1].stop();
    drop(bmcs);
    let b1 = vm::disk_bytes(&d.join("disk1.qcow2"));
    assert_eq!(&b1[..image_bytes.len()], &image_bytes[..], "the provisioned disk holds the image");
}
