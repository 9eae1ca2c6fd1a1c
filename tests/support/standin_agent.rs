//! A stand-in for a machine's agent, for engine tests and benchmarks that must not touch this
//! host's disks: the real agent code for enrollment (boot token), registration, heartbeats, the
//! SSH server and its history, with a `Dispatch` that only pretends to wipe and write (it counts
//! the runs, takes `work_ms` per destructive command, and checks an image's SHA-256 against the
//! one it was told is right). Named a stand-in wherever it is used.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ironbay_agent::appliance::Appliance as ApplianceApi;
use ironbay_agent::identity::Identity;
use ironbay_agent::sshd::{self, Shared};
use ironbay_wire::command::Command;
use ironbay_wire::inventory::{Disk, Inventory, Nic};
use ironbay_wire::progress::{Line, Outcome, Progress};
use ironbay_wire::register::{HeartbeatRequest, RegisterRequest};
use russh::keys::PublicKey;
use serde_json::json;

#[derive(Default)]
pub struct Counters {
    pub wipes: AtomicUsize,
    pub writes: AtomicUsize,
    pub reboots: AtomicUsize,
    pub poweroffs: AtomicUsize,
    /// Milliseconds each wipe / write takes.
    pub work_ms: AtomicU64,
    /// Set while a destructive command runs.
    pub running: AtomicUsize,
}

pub struct StandinAgent {
    pub asset: String,
    pub device_id: String,
    pub counters: Arc<Counters>,
    pub shared: Shared,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for StandinAgent {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

pub fn inventory(mac: &str) -> Inventory {
    let mut inv = Inventory::default();
    inv.system.serial = Some(format!("SN-{}", mac.replace(':', "")));
    inv.cpu.arch = "x86_64".into();
    inv.memory.total_bytes = 1 << 30;
    inv.disks = [("vda", "STANDIN-A", 8u64 << 30), ("vdb", "STANDIN-B", 16u64 << 30)]
        .iter()
        .map(|(name, serial, size)| Disk {
            name: (*name).into(),
            path: format!("/dev/{name}"),
            serial: Some((*serial).into()),
            model: Some("Stand-in disk".into()),
            size_bytes: *size,
            transport: Some("virtio".into()),
            logical_block_size: 512,
            physical_block_size: 512,
            ..Default::default()
        })
        .collect();
    inv.nics = vec![Nic { name: "eth0".into(), mac: mac.into(), ..Default::default() }];
    inv
}

fn pretend(counters: Arc<Counters>, good_sha256: String, disks: Vec<Disk>) -> ironbay_agent::exec::Dispatch {
    Arc::new(move |command: &Command, emit| {
        let work = Duration::from_millis(counters.work_ms.load(Ordering::SeqCst));
        let busy = |emit: &mut (dyn FnMut(Line) + Send), what: &str| {
            counters.running.fetch_add(1, Ordering::SeqCst);
            emit(Line::Progress(Progress {
                step: what.into(),
                disk: Some("/dev/vda".into()),
                bytes_done: 0,
                bytes_total: 1 << 20,
                rate: 0.0,
            }));
            std::thread::sleep(work);
            counters.running.fetch_sub(1, Ordering::SeqCst);
        };
        match command {
            Command::Lsblk => Outcome::ok("lsblk", json!(disks)),
            Command::Inventory => Outcome::ok("inventory", json!({"disks": disks})),
            Command::Wipe { method, .. } => {
                busy(emit, "wipe");
                counters.wipes.fetch_add(1, Ordering::SeqCst);
                let results: Vec<_> = disks
                    .iter()
                    .map(|d| {
                        json!({"disk": d.path, "method": method.as_str(), "status": "wiped", "size_bytes": d.size_bytes,
                               "model": d.model, "serial": d.serial, "bytes_wiped": 64u64 << 20,
                               "started_at_unix_ms": 0, "finished_at_unix_ms": 1,
                               "verification": {"samples": 64, "passed": true}})
                    })
                    .collect();
                Outcome::ok("wipe", json!({"method": method.as_str(), "disks": results}))
            }
            Command::WriteImage { sha256, disk, url, .. } => {
                busy(emit, "write-image");
                counters.writes.fetch_add(1, Ordering::SeqCst);
                if *sha256 != good_sha256 {
                    return Outcome::error(
                        "write-image",
                        "SHA256_MISMATCH",
                        "the image's SHA-256 is not the one given (stand-in)",
                        json!({"disk": disk, "url": url}),
                    );
                }
                Outcome::ok("write-image", json!({"disk": disk, "sha256": sha256, "bytes": 1 << 20}))
            }
            Command::Reboot => {
                counters.reboots.fetch_add(1, Ordering::SeqCst);
                Outcome::ok("reboot", json!({"rebooting": true}))
            }
            Command::Poweroff => {
                counters.poweroffs.fetch_add(1, Ordering::SeqCst);
                Outcome::ok("poweroff", json!({"powering_off": true}))
            }
            other => Outcome::error(other.name(), "NOT_IN_STANDIN", "the stand-in does not do this", json!(null)),
        }
    })
}

/// Boots a stand-in agent for the asset whose boot script `base/boot.ipxe?mac=` gives: enrolls,
/// registers on loopback, serves SSH, heartbeats every second.
pub async fn start(base: &str, mac: &str, good_sha256: &str) -> StandinAgent {
    start_beating(base, mac, good_sha256, Duration::from_secs(1)).await
}

/// Same, heartbeating every `beat` (benchmarks use the real agent's 10 s).
pub async fn start_beating(base: &str, mac: &str, good_sha256: &str, beat: Duration) -> StandinAgent {
    let script = reqwest::get(format!("{base}/boot.ipxe?mac={mac}")).await.unwrap().text().await.unwrap();
    let arg = |name: &str| -> String {
        script
            .split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("no {name}= in the boot script: {script}"))
            .to_string()
    };
    let (asset, token) = (arg("ironbay.asset"), arg("ironbay.token"));
    let identity = Identity::generate().unwrap();
    let api = Arc::new(ApplianceApi::new(base));
    let (a, t, pem) = (api.clone(), token.clone(), identity.spki_pem());
    let device_id = tokio::task::spawn_blocking(move || a.enroll(&t, "standin", &pem)).await.unwrap().expect("enroll");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let inv = inventory(mac);
    let req = RegisterRequest {
        protocol: ironbay_wire::PROTOCOL_VERSION,
        agent_version: "standin".into(),
        device_id: device_id.clone(),
        ssh_host_key: identity.openssh_public(),
        ssh_port: listener.local_addr().unwrap().port(),
        ip: Some("127.0.0.1".into()),
        mac: Some(mac.into()),
        inventory: inv.clone(),
    };
    let (a, t) = (api.clone(), token.clone());
    let reg = tokio::task::spawn_blocking(move || a.register(&t, &req)).await.unwrap().expect("register");
    let counters = Arc::new(Counters::default());
    let shared = Shared {
        appliance_key: PublicKey::from_openssh(&reg.appliance_ssh_key).unwrap(),
        rescue_keys: Default::default(),
        history: Default::default(),
        busy: Arc::new(Mutex::new(None)),
        dispatch: Some(pretend(counters.clone(), good_sha256.to_string(), inv.disks.clone())),
    };
    let server = {
        let shared = shared.clone();
        let key = identity.key;
        tokio::spawn(async move {
            let _ = sshd::serve(listener, key, shared).await;
        })
    };
    let beats = {
        let (api, dev) = (api.clone(), device_id.clone());
        let mut token = reg.token.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(beat).await;
                let (a, t) = (api.clone(), token.clone());
                let beat = HeartbeatRequest { device_id: dev.clone(), uptime_secs: 1, busy: None };
                if let Ok(Ok(r)) = tokio::task::spawn_blocking(move || a.heartbeat(&t, &beat)).await {
                    token = r.token;
                }
            }
        })
    };
    StandinAgent { asset, device_id, counters, shared, tasks: vec![server, beats] }
}

/// How many runs of destructive commands the agent's own history holds, by command name.
pub fn history_count(agent: &StandinAgent, name: &str) -> usize {
    agent.shared.history.entries().iter().filter(|e| e["command"].as_str().is_some_and(|c| c.starts_with(name))).count()
}
