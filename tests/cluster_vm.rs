//! A Talos cluster (one control plane, one worker) over two qemu VMs, each behind its own
//! OpenIPMI `ipmi_sim` BMC, from the API call to `ready` and back.
//!
//! Talos itself cannot run here, so the VMs PXE-boot the Talos node STAND-IN
//! (`tests/talos-standin`, built into Talos-shaped release artifacts by
//! `tests/lab/build-talos-standin.sh`): with the Talos kernel arguments the appliance's script
//! gives, it fetches `talos.config` with its SMBIOS UUID filled in, "installs" (writes the
//! installer image it pulls through the configured registry mirror, and its config, to the
//! install disk), reboots; the appliance sees that PXE boot, answers `exit`; the disk boots the
//! stand-in again, which takes the static address from its config and serves apid's
//! `machine.MachineService` over TLS on :50000. The appliance bootstraps it there and serves the
//! kubeconfig. Deleting the cluster wipes both disks with the real agent. TCG unless a hardware
//! hypervisor is loaded.

#[path = "support/bmc.rs"]
mod bmc_sim;
mod common;
#[path = "support/lab.rs"]
mod lab;
#[path = "support/vm.rs"]
mod vm;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use bmc_sim::SimBmc;
use common::{Appliance, Backend, Client, Options, eventually};
use lab::Lab;
use serde_json::{Value, json};

const SERVER: &str = "10.216.0.1";
const MIB: u64 = 1 << 20;
const DISK: u64 = 64 * MIB;
const BMC_PASSWORD: &str = "lab-bmc-pw";
/// How much of a serial console a failure message shows.
const CONSOLE_TAIL: usize = 3000;
const RECORD_MAGIC: &[u8] = b"TALOS-STANDIN-CONFIG-V1";

fn uuid(idx: u32) -> String {
    format!("1b0c4a2e-5d6f-4a8b-9c0d-00000000000{idx}")
}

async fn workflow_done(admin: &Client, id: &str, dir: &Path) -> Value {
    eventually(&format!("workflow {id}"), 420, || {
        let admin = admin.clone();
        let tail = format!(
            "--- vm0 ---\n{}\n--- vm1 ---\n{}",
            vm::console_tail(dir, 0, CONSOLE_TAIL),
            vm::console_tail(dir, 1, CONSOLE_TAIL)
        );
        async move {
            let w = admin.get(&format!("/api/v1/workflows/{id}")).await.json;
            match w["state"].as_str() {
                Some("succeeded") => Ok(w),
                Some("failed" | "cancelled") => panic!("workflow ended {}: {w:#}\n{tail}", w["state"]),
                _ => {
                    let cur = w["current_step"].as_u64().unwrap_or(0) as usize;
                    Err(format!("at step {}: {}\n{tail}", w["steps"][cur]["type"], w["steps"][cur]["log"]))
                }
            }
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_talos_cluster_over_two_vms_becomes_ready_and_is_wiped_on_delete() {
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
    // The stand-in's "release" goes where images/fetch-talos.sh puts a real one; the installer
    // image is pulled through the registry mirror the cluster names (here: the appliance's /images).
    let standin = d.join("standin");
    vm::run(Command::new("bash").arg(root.join("tests/lab/build-talos-standin.sh")).arg(&standin));
    vm::run(
        Command::new("bash")
            .arg(root.join("images/fetch-talos.sh"))
            .arg("v1.13.9")
            .arg("--from")
            .arg(standin.join("v1.13.9"))
            .env("IRONBAY_TALOS_DIR", images.join("talos")),
    );
    std::fs::copy(standin.join("talos-standin-installer.img"), images.join("lab/talos-standin-installer.img")).unwrap();

    let mut lab = Lab::with_subnet(SERVER, 24);
    for idx in 0..2 {
        vm::run(
            Command::new("qemu-img")
                .args(["create", "-q", "-f", "qcow2"])
                .arg(d.join(format!("disk{idx}.qcow2")))
                .arg(DISK.to_string()),
        );
    }
    let opts = Options { netns: Some(lab.server_ns.clone()), ..Options::default() }
        .env("IRONBAY_LISTEN", &format!("{SERVER}:8080"))
        .env("IRONBAY_DHCP__INTERFACES", r#"[{name="ibbr0",mode="full",vni="rack-k"}]"#)
        .env("IRONBAY_BOOT__PXE_DIR", &pxe.display().to_string())
        .env("IRONBAY_BOOT__IMAGES_DIR", &images.display().to_string())
        .env("IRONBAY_TALOS__KERNEL_ARGS", "console=ttyS0,115200n8");
    let app = Appliance::start_with(Backend::Sqlite, opts).await;
    let admin = app.admin().await;
    let r = admin
        .post(
            "/api/v1/vnis",
            json!({"name": "rack-k", "cidr": "10.216.0.0/24", "vni": 216,
                   "dhcp": {"start": "10.216.0.100", "end": "10.216.0.199"}, "gateway": SERVER}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let vni_id = r.json["id"].as_str().unwrap().to_string();

    let mut bmcs = Vec::new();
    let mut assets = Vec::new();
    for idx in 0..2u32 {
        let tap = lab.add_tap();
        let mac = format!("52:54:00:16:0e:{idx:02x}");
        let bmc_ip = format!("10.216.0.{}", 20 + idx);
        let bmc = SimBmc::start(
            &lab,
            &bmc_ip,
            BMC_PASSWORD,
            &vm::bmc_machine(d, idx, &tap, &mac, "IB-K8S-DISK", &format!("-uuid {}", uuid(idx))),
        );
        let r = admin
            .post(
                "/api/v1/assets",
                json!({"hostname": format!("k8s-{idx}"), "macs": [mac], "smbios_uuid": uuid(idx),
                       "bmc": {"driver": "ipmi", "address": bmc_ip, "username": bmc.username, "password": BMC_PASSWORD}}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        bmcs.push(bmc);
        assets.push(r.json["id"].as_str().unwrap().to_string());
    }

    let started = Instant::now();
    let r = admin
        .post(
            "/api/v1/clusters",
            json!({"name": "lab-k8s", "type": "bare_metal", "flavor": "talos", "gateway": SERVER, "vniId": vni_id,
                   "controlPlanes": [{"assetId": assets[0], "ip": "10.216.0.10", "subnet": "24"}],
                   "workers": [{"assetId": assets[1], "ip": "10.216.0.11", "subnet": "24"}],
                   "installDisk": "/dev/vda", "discovery": false, "ntpServers": [SERVER],
                   "registryMirrors": {"ghcr.io": format!("http://{SERVER}:8080/images/lab")}}),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    let id = r.json["id"].as_str().unwrap().to_string();
    let cluster_wf = r.json["workflowId"].as_str().unwrap().to_string();
    for n in r.json["nodes"].as_array().unwrap() {
        let w = workflow_done(&admin, n["workflowId"].as_str().unwrap(), d).await;
        eprintln!("node {} installed {:.1}s after the request", n["ip"], started.elapsed().as_secs_f64());
        for s in w["steps"].as_array().unwrap() {
            eprintln!(
                "  {:<24} {:<9} {} → {}",
                s["type"].as_str().unwrap(),
                s["status"].as_str().unwrap(),
                s["started_at"],
                s["finished_at"]
            );
        }
    }
    let w = workflow_done(&admin, &cluster_wf, d).await;
    eprintln!("cluster ready {:.1}s after the request", started.elapsed().as_secs_f64());
    assert_eq!(w["steps"][1]["result"]["address"], "10.216.0.10:50000", "bootstrapped at the static address: {w:#}");
    let c = admin.get(&format!("/api/v1/clusters/{id}")).await.json;
    assert_eq!((c["state"].as_str(), c["bootstrapState"].as_str()), (Some("ready"), Some("bootstrapped")), "{c:#}");
    for (idx, ip) in [(0, "10.216.0.10"), (1, "10.216.0.11")] {
        assert!(
            vm::console_tail(d, idx, CONSOLE_TAIL).contains(&format!("TALOS-STANDIN-UP {ip}")),
            "vm{idx} serves at {ip}:\n{}",
            vm::console_tail(d, idx, CONSOLE_TAIL)
        );
    }
    let kc = admin.get(&format!("/api/v1/clusters/{id}/kubeconfig")).await;
    assert_eq!(kc.status, 200, "{}", kc.text);
    assert!(kc.text.contains("server: https://10.216.0.10:6443"), "{}", kc.text);
    let installed = vm::disk_bytes(&d.join("disk0.qcow2"));
    assert!(installed.windows(RECORD_MAGIC.len()).any(|w| w == RECORD_MAGIC), "the install wrote the config to disk");

    // Delete: both members leave and are wiped by the agent; the addresses go back.
    let del = admin.delete(&format!("/api/v1/clusters/{id}")).await;
    assert_eq!(del.status, 202, "{}", del.text);
    for w in del.json["wipeWorkflows"].as_array().unwrap() {
        workflow_done(&admin, w["workflowId"].as_str().unwrap(), d).await;
    }
    eprintln!("wiped {:.1}s after the request", started.elapsed().as_secs_f64());
    for a in &assets {
        assert_eq!(admin.get(&format!("/api/v1/assets/{a}")).await.json["state"], "available");
    }
    let held = admin.get(&format!("/api/v1/vnis/{vni_id}/allocations")).await;
    assert!(!held.text.contains("10.216.0.10") && !held.text.contains("10.216.0.11"), "{}", held.text);
    for b in &mut bmcs {
        b.stop();
    }
    drop(bmcs);
    for idx in 0..2 {
        let bytes = vm::disk_bytes(&d.join(format!("disk{idx}.qcow2")));
        assert!(bytes[..MIB as usize].iter().all(|&b| b == 0), "disk {idx}: the MBR and first MiB are gone");
        assert!(bytes[bytes.len() - MIB as usize..].iter().all(|&b| b == 0), "disk {idx}: the config record is gone");
        assert!(!bytes.windows(RECORD_MAGIC.len()).any(|w| w == RECORD_MAGIC), "disk {idx}: no config left");
    }
}
