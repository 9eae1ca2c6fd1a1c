//! The agent protocol end to end without a VM: the real agent code (enrollment with the boot token,
//! registration, heartbeats, its SSH server and command dispatch) against a real appliance
//! process, on loopback. The VM test (`agent_vm.rs`) does the same from a PXE boot.

mod common;

use std::sync::{Arc, Mutex};

use common::{Appliance, Backend, Client, eventually, kernel_arg};
use ironbay_agent::appliance::{ApiError, Appliance as ApplianceApi};
use ironbay_agent::identity::Identity;
use ironbay_agent::sshd::{self, Shared};
use ironbay_wire::inventory::{Disk, Inventory, Nic};
use ironbay_wire::register::{HeartbeatRequest, RegisterRequest, RegisterResponse};
use russh::keys::PublicKey;
use serde_json::{Value, json};

const MAC: &str = "52:54:00:a6:00:01";

/// PXE-boots `mac` as far as the boot script: the asset (discovered) and its boot token.
async fn boot_script(app: &Appliance, mac: &str) -> (String, String) {
    let text = reqwest::get(app.url(&format!("/boot.ipxe?mac={mac}"))).await.unwrap().text().await.unwrap();
    (kernel_arg(&text, "ironbay.asset"), kernel_arg(&text, "ironbay.token"))
}

fn machine(serial: &str, disks: &[(&str, &str, u64)]) -> Inventory {
    let mut inv = Inventory::default();
    inv.system.vendor = Some("QEMU".into());
    inv.system.product = Some("Standard PC".into());
    inv.system.serial = Some(serial.into());
    inv.system.uuid = Some("6f1c2a52-8a0e-4a55-9d55-0c7d2b1e0a11".into());
    inv.cpu.model = Some("Test CPU".into());
    inv.cpu.arch = "x86_64".into();
    (inv.cpu.sockets, inv.cpu.cores, inv.cpu.threads) = (1, 2, 4);
    inv.memory.total_bytes = 2 << 30;
    inv.disks = disks
        .iter()
        .map(|(name, serial, size)| Disk {
            name: (*name).into(),
            path: format!("/dev/{name}"),
            serial: Some((*serial).into()),
            size_bytes: *size,
            transport: Some("virtio".into()),
            logical_block_size: 512,
            physical_block_size: 512,
            ..Default::default()
        })
        .collect();
    inv.nics =
        vec![Nic { name: "ens3".into(), mac: MAC.into(), driver: Some("virtio_net".into()), ..Default::default() }];
    inv
}

/// The agent as the image runs it, minus the network bring-up: its own enrollment, registration
/// and SSH server, on loopback.
struct TestAgent {
    device_id: String,
    reg: RegisterResponse,
    ssh_port: u16,
    api: Arc<ApplianceApi>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Drop for TestAgent {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn enroll(api: &Arc<ApplianceApi>, token: &str, identity: &Identity) -> Result<String, ApiError> {
    let (api, token, pem) = (api.clone(), token.to_string(), identity.spki_pem());
    tokio::task::spawn_blocking(move || api.enroll(&token, "agent-test", &pem)).await.unwrap()
}

async fn register(
    api: &Arc<ApplianceApi>,
    token: &str,
    device_id: &str,
    host_key: &str,
    port: u16,
    inventory: Inventory,
) -> Result<RegisterResponse, ApiError> {
    let req = RegisterRequest {
        protocol: ironbay_wire::PROTOCOL_VERSION,
        agent_version: "test".into(),
        device_id: device_id.into(),
        ssh_host_key: host_key.into(),
        ssh_port: port,
        ip: Some("127.0.0.1".into()),
        mac: Some(MAC.into()),
        inventory,
    };
    let (api, token) = (api.clone(), token.to_string());
    tokio::task::spawn_blocking(move || api.register(&token, &req)).await.unwrap()
}

/// Boots an agent: `serve_with` is the key its SSH server presents (normally its own identity).
async fn start_agent(app: &Appliance, token: &str, inventory: Inventory, serve_with: Option<Identity>) -> TestAgent {
    let identity = Identity::generate().unwrap();
    let api = Arc::new(ApplianceApi::new(&app.base));
    let device_id = enroll(&api, token, &identity).await.expect("enrollment with the boot token");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ssh_port = listener.local_addr().unwrap().port();
    let reg =
        register(&api, token, &device_id, &identity.openssh_public(), ssh_port, inventory).await.expect("registration");
    let shared = Shared {
        appliance_key: PublicKey::from_openssh(&reg.appliance_ssh_key).unwrap(),
        rescue_keys: Default::default(),
        history: Default::default(),
        busy: Arc::new(Mutex::new(None)),
        dispatch: None,
    };
    let host_key = serve_with.unwrap_or(identity).key;
    let server = tokio::spawn(sshd::serve(listener, host_key, shared));
    TestAgent { device_id, reg, ssh_port, api, server }
}

/// Runs a command through the API; returns the NDJSON lines (the outcome last).
async fn command(admin: &Client, asset: &str, body: Value) -> (u16, Vec<Value>) {
    let r = admin.post(&format!("/api/v1/assets/{asset}/agent/commands"), body).await;
    if r.status != 200 {
        return (r.status, vec![r.json.clone()]);
    }
    assert_eq!(r.header("content-type").as_deref(), Some("application/x-ndjson"));
    let lines = r.text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect();
    (r.status, lines)
}

async fn a_pxe_booted_agent_registers_and_the_asset_shows_its_hardware(backend: Backend) {
    let app = Appliance::start(backend).await;
    let admin = app.admin().await;
    let (asset, token) = boot_script(&app, MAC).await;
    assert_eq!(admin.get(&format!("/api/v1/assets/{asset}")).await.json["state"], "discovering");
    let inv = machine("SN-0001", &[("vda", "disk-a", 8 << 30), ("vdb", "disk-b", 4 << 30)]);
    let agent = start_agent(&app, &token, inv.clone(), None).await;
    assert_eq!(agent.reg.asset, asset);
    assert!(agent.reg.appliance_ssh_key.starts_with("ssh-ed25519 "), "{}", agent.reg.appliance_ssh_key);

    let a = admin.get(&format!("/api/v1/assets/{asset}")).await.json;
    assert_eq!(a["state"], "available", "{a}");
    assert_eq!(a["serial"], "SN-0001");
    assert_eq!(a["smbios_uuid"], "6f1c2a52-8a0e-4a55-9d55-0c7d2b1e0a11");
    assert_eq!(a["disks"].as_array().unwrap().len(), 2, "{a}");
    assert_eq!(a["disks"][0]["serial"], "disk-a");
    assert_eq!(a["disks"][1]["size_bytes"], 4u64 << 30);
    assert_eq!(a["nics"][0]["mac"], MAC);
    assert_eq!(a["specs"]["cpu"]["threads"], 4);
    assert_eq!(a["specs"]["memory_bytes"], 2u64 << 30);

    let ag = admin.get(&format!("/api/v1/assets/{asset}/agent")).await;
    assert_eq!(ag.status, 200, "{}", ag.text);
    assert_eq!(ag.json["status"], "online");
    assert_eq!(ag.json["device_id"], agent.device_id);
    assert_eq!(ag.json["ssh_port"], agent.ssh_port);
    let inv_view = admin.get(&format!("/api/v1/assets/{asset}/inventory")).await.json;
    assert_eq!(inv_view["inventory"], serde_json::to_value(&inv).unwrap());

    // The agent's key is an enrolled device, bound to the asset.
    let dev = admin.get(&format!("/api/v1/devices/{}", agent.device_id)).await.json;
    assert_eq!(dev["key_type"], "ed25519", "{dev}");
    assert_eq!(dev["metadata"]["asset"], asset.as_str());
    assert_eq!(dev["enroll_token_id"], format!("boot:{asset}"));

    // Heartbeats keep it online and hand back a fresh token.
    let beat = HeartbeatRequest { device_id: agent.device_id.clone(), uptime_secs: 5, busy: None };
    let (api, t) = (agent.api.clone(), agent.reg.token.clone());
    let resp = tokio::task::spawn_blocking(move || api.heartbeat(&t, &beat)).await.unwrap().expect("heartbeat");
    assert!(!resp.token.is_empty());

    // Nothing changed: no hardware change was recorded.
    let changes = admin.get(&format!("/api/v1/assets/{asset}/inventory/changes")).await.json;
    assert_eq!(changes["meta"]["total"], 0, "{changes}");
}

async fn commands_run_over_ssh_and_stream_their_lines(backend: Backend) {
    let app = Appliance::start(backend).await;
    let admin = app.admin().await;
    let (asset, token) = boot_script(&app, MAC).await;
    let agent = start_agent(&app, &token, machine("SN-1", &[("vda", "d1", 1 << 30)]), None).await;

    // `inventory` runs the agent's real collection on this machine.
    let (status, lines) = command(&admin, &asset, json!({"command": "inventory"})).await;
    assert_eq!(status, 200, "{lines:?}");
    let outcome = lines.last().unwrap();
    assert_eq!(outcome["result"], "ok", "{outcome}");
    assert_eq!(outcome["command"], "inventory");
    let here = ironbay_agent::inventory::collect();
    assert_eq!(outcome["details"], serde_json::to_value(&here).unwrap());

    let (_, lines) = command(&admin, &asset, json!({"command": "history"})).await;
    assert_eq!(lines.last().unwrap()["details"], json!([]), "nothing destructive ran yet");

    // Bad requests never reach the agent.
    let cases = [
        (json!({"command": "format-c"}), 422, "command"),
        (json!({"command": "wipe"}), 422, "method"),
        (json!({"command": "wipe", "method": "shred", "confirm": asset}), 422, "method"),
        (json!({"command": "wipe", "method": "quick"}), 422, "confirm"),
        (json!({"command": "wipe", "method": "quick", "confirm": "someone-else"}), 422, "confirm"),
        (json!({"command": "reboot"}), 422, "confirm"),
        (
            json!({"command": "write-image", "url": "http://x/a.raw", "sha256": "12", "disk": "vda", "confirm": asset}),
            422,
            "sha256",
        ),
        (
            json!({"command": "write-image", "url": "ftp://x/a.raw", "sha256": "a".repeat(64), "disk": "vda", "confirm": asset}),
            422,
            "url",
        ),
        (json!({"command": "wipe", "method": "quick", "disks": ["vda; rm -rf /"], "confirm": asset}), 422, "disks"),
    ];
    for (body, want, field) in cases {
        let r = admin.post(&format!("/api/v1/assets/{asset}/agent/commands"), body.clone()).await;
        assert_eq!(r.status, want, "{body}: {}", r.text);
        assert_eq!(r.json["details"]["field"], field, "{body}: {}", r.text);
    }
    let r = admin.post("/api/v1/assets/ast_nope/agent/commands", json!({"command": "inventory"})).await;
    assert_eq!((r.status, r.error_code().as_str()), (404, "ASSET_NOT_FOUND"));

    // A viewer may read the inventory but not change the machine.
    let viewer = app.user(&admin, "vera", "viewer").await;
    let (status, _) = command(&viewer, &asset, json!({"command": "lsblk"})).await;
    assert_eq!(status, 200);
    let r = viewer
        .post(&format!("/api/v1/assets/{asset}/agent/commands"), json!({"command": "poweroff", "confirm": asset}))
        .await;
    assert_eq!(r.status, 403, "{}", r.text);

    // A destructive command on a disk that does not exist fails on the agent, with its reason,
    // and is audited.
    let (status, lines) = command(
        &admin,
        &asset,
        json!({"command": "wipe", "method": "quick", "disks": ["/dev/ironbay-nope"], "confirm": asset}),
    )
    .await;
    assert_eq!(status, 200);
    let o = lines.last().unwrap();
    assert_eq!((o["result"].as_str(), o["code"].as_str()), (Some("error"), Some("DISK_NOT_FOUND")), "{o}");
    let audit = admin.get("/api/v1/audit?action=asset.agent_command_finish").await.json;
    assert!(audit.to_string().contains("DISK_NOT_FOUND"), "{audit}");
    drop(agent);
}

async fn hardware_drift_between_registrations_is_recorded(backend: Backend) {
    let app = Appliance::start(backend).await;
    let admin = app.admin().await;
    let (asset, token) = boot_script(&app, MAC).await;
    let first =
        start_agent(&app, &token, machine("SN-1", &[("vda", "d1", 1 << 30), ("vdb", "d2", 2 << 30)]), None).await;
    drop(first);
    // Next boot: a disk swapped, memory grown.
    let mut inv = machine("SN-1", &[("vda", "d1", 1 << 30), ("vdb", "d3", 2 << 30)]);
    inv.memory.total_bytes = 4 << 30;
    let (_, token2) = boot_script(&app, MAC).await;
    let second = start_agent(&app, &token2, inv, None).await;
    let changes = admin.get(&format!("/api/v1/assets/{asset}/inventory/changes")).await.json;
    assert_eq!(changes["meta"]["total"], 1, "{changes}");
    let list = &changes["data"][0]["changes"];
    let summary: Vec<String> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|c| format!("{} {} {}", c["kind"], c["item"], c["change"]).replace('"', ""))
        .collect();
    assert_eq!(summary, vec!["memory total_bytes changed", "disk d2 removed", "disk d3 added"], "{list}");
    let a = admin.get(&format!("/api/v1/assets/{asset}")).await.json;
    assert_eq!(a["disks"][1]["serial"], "d3", "the asset shows the new hardware");
    let audit = admin.get("/api/v1/audit?action=asset.hardware_changed").await.json;
    assert_eq!(audit["data"].as_array().map(Vec::len), Some(1), "{audit}");

    // The first boot's agent is superseded: its heartbeats are refused.
    let beat = HeartbeatRequest { device_id: "dev_old".into(), uptime_secs: 1, busy: None };
    let (api, t) = (second.api.clone(), second.reg.token.clone());
    let err = tokio::task::spawn_blocking(move || api.heartbeat(&t, &beat)).await.unwrap().unwrap_err();
    assert!(matches!(&err, ApiError::Refused { status: 409, code, .. } if code == "AGENT_SUPERSEDED"), "{err}");
}

async fn an_agent_must_be_who_it_enrolled_as(backend: Backend) {
    let app = Appliance::start(backend).await;
    let admin = app.admin().await;
    let (asset, token) = boot_script(&app, MAC).await;
    let api = Arc::new(ApplianceApi::new(&app.base));

    // Enrollment needs a valid token.
    let err = enroll(&api, "not-a-token", &Identity::generate().unwrap()).await.unwrap_err();
    assert!(matches!(&err, ApiError::Refused { status: 401, .. }), "{err}");

    let enrolled = Identity::generate().unwrap();
    let device = enroll(&api, &token, &enrolled).await.unwrap();
    let inv = machine("SN-1", &[("vda", "d1", 1 << 30)]);
    // Registering a host key other than the enrolled one is refused.
    let other = Identity::generate().unwrap();
    let err = register(&api, &token, &device, &other.openssh_public(), 22, inv.clone()).await.unwrap_err();
    assert!(matches!(&err, ApiError::Refused { status: 403, code, .. } if code == "AGENT_IDENTITY_MISMATCH"), "{err}");
    // A device enrolled for another asset cannot register on this one.
    let (_, other_token) = boot_script(&app, "52:54:00:a6:00:99").await;
    let err = register(&api, &other_token, &device, &enrolled.openssh_public(), 22, inv.clone()).await.unwrap_err();
    assert!(matches!(&err, ApiError::Refused { status: 403, .. }), "{err}");
    // Without a token: 401.
    let err = register(&api, "", &device, &enrolled.openssh_public(), 22, inv.clone()).await.unwrap_err();
    assert!(matches!(&err, ApiError::Refused { status: 401, .. }), "{err}");
    assert_eq!(admin.get(&format!("/api/v1/assets/{asset}")).await.json["state"], "discovering", "nothing registered");

    // An agent whose SSH server presents a key other than the one it registered is refused by
    // the appliance's client (the host key is pinned).
    let agent = start_agent(&app, &token, inv, Some(Identity::generate().unwrap())).await;
    let (status, lines) = command(&admin, &asset, json!({"command": "inventory"})).await;
    assert_eq!(status, 200);
    assert_eq!(lines.last().unwrap()["code"], "AGENT_HOST_KEY_MISMATCH", "{lines:?}");
    drop(agent);
}

async fn an_admin_gets_a_rescue_shell_with_their_key(backend: Backend) {
    let app = Appliance::start(backend).await;
    let admin = app.admin().await;
    let (asset, token) = boot_script(&app, MAC).await;
    let agent = start_agent(&app, &token, machine("SN-1", &[("vda", "d1", 1 << 30)]), None).await;
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("id");
    let ok = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "admin@test", "-f"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(ok.success());
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    let ssh = |key: std::path::PathBuf, port: u16| async move {
        tokio::task::spawn_blocking(move || {
            std::process::Command::new("ssh")
                .args(["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"])
                .args(["-o", "ConnectTimeout=10", "-i"])
                .arg(&key)
                .args(["-p", &port.to_string(), "root@127.0.0.1", "echo rescued-$((6*7))"])
                .output()
                .unwrap()
        })
        .await
        .unwrap()
    };
    let before = ssh(key.clone(), agent.ssh_port).await;
    assert!(!before.status.success(), "no shell before an admin asked for one");

    let operator = app.user(&admin, "olga", "operator").await;
    let r = operator.post(&format!("/api/v1/assets/{asset}/rescue"), json!({"public_key": public})).await;
    assert_eq!(r.status, 403, "{}", r.text);
    let r = admin.post(&format!("/api/v1/assets/{asset}/rescue"), json!({"public_key": "ssh-ed25519 nonsense"})).await;
    assert_eq!(r.status, 422, "{}", r.text);
    let r = admin.post(&format!("/api/v1/assets/{asset}/rescue"), json!({"public_key": public})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["rescue_keys"].as_array().map(Vec::len), Some(1), "{}", r.text);

    let after = ssh(key, agent.ssh_port).await;
    assert!(after.status.success(), "{}", String::from_utf8_lossy(&after.stderr));
    assert_eq!(String::from_utf8_lossy(&after.stdout).trim(), "rescued-42");
    let audit = admin.get("/api/v1/audit?action=asset.rescue_enable").await.json;
    assert_eq!(audit["data"].as_array().map(Vec::len), Some(1), "{audit}");
    eventually("the agent stays online", 5, || async {
        let s = admin.get(&format!("/api/v1/assets/{asset}/agent")).await.json["status"].clone();
        if s == "online" { Ok(()) } else { Err(s.to_string()) }
    })
    .await;
}

both_backends!(
    a_pxe_booted_agent_registers_and_the_asset_shows_its_hardware,
    commands_run_over_ssh_and_stream_their_lines,
    hardware_drift_between_registrations_is_recorded,
    an_agent_must_be_who_it_enrolled_as,
    an_admin_gets_a_rescue_shell_with_their_key,
);
