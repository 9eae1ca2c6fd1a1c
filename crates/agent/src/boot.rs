//! `ironbay-agent boot`: what the agent does when the initramfs starts it. Network, identity,
//! enrollment, registration with the inventory, then the SSH server and heartbeats until the
//! machine reboots. Every step that talks to the appliance retries while the failure is
//! transient (the appliance restarting, a link still coming up), and says on the console why.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ironbay_wire::register::{HeartbeatRequest, RegisterRequest};
use russh::keys::PublicKey;

use crate::appliance::{ApiError, Appliance};
use crate::cmdline::{self, BootArgs};
use crate::identity::Identity;
use crate::sshd::{self, Shared};
use crate::{inventory, net};

fn say(msg: impl std::fmt::Display) {
    eprintln!("ironbay-agent: {msg}");
}

/// Retries `f` with backoff (1 s doubling to 30 s) while its error is transient.
fn with_retry<T>(what: &str, mut f: impl FnMut() -> Result<T, ApiError>) -> Result<T, ApiError> {
    let mut wait = Duration::from_secs(1);
    loop {
        match f() {
            Ok(v) => return Ok(v),
            Err(e) if e.is_transient() => {
                say(format!("{what}: {e}; retrying in {}s", wait.as_secs()));
                std::thread::sleep(wait);
                wait = (wait * 2).min(Duration::from_secs(30));
            }
            Err(e) => return Err(e),
        }
    }
}

pub async fn run() -> Result<(), String> {
    let started = Instant::now();
    let text = std::fs::read_to_string("/proc/cmdline").map_err(|e| format!("reading /proc/cmdline: {e}"))?;
    let args = cmdline::parse(&text)?;
    let lease = tokio::task::spawn_blocking(net::bring_up).await.map_err(|e| e.to_string())??;
    say(format!("{} has {} ({:.1}s after start)", lease.interface, lease.ip, started.elapsed().as_secs_f64()));
    // Bound before registering, so the port registered is one that already answers.
    let listener = tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, args.ssh_port)))
        .await
        .map_err(|e| format!("binding SSH port {}: {e}", args.ssh_port))?;
    let identity = Identity::generate().map_err(|e| format!("generating the agent key: {e}"))?;
    let appliance = Arc::new(Appliance::new(&args.url));
    let registered = {
        let (appliance, args, lease) = (appliance.clone(), args.clone(), lease.clone());
        let pem = identity.spki_pem();
        let host_key = identity.openssh_public();
        tokio::task::spawn_blocking(move || enroll_and_register(&appliance, &args, &lease, &pem, &host_key))
            .await
            .map_err(|e| e.to_string())??
    };
    let (device_id, reg) = registered;
    say(format!(
        "registered as {device_id} on asset {} ({:.1}s after start)",
        reg.asset,
        started.elapsed().as_secs_f64()
    ));
    let appliance_key = PublicKey::from_openssh(&reg.appliance_ssh_key)
        .map_err(|e| format!("the appliance's SSH key does not parse: {e}"))?;
    let shared = Shared {
        appliance_key,
        rescue_keys: Default::default(),
        history: Default::default(),
        busy: Arc::new(Mutex::new(None)),
        dispatch: None,
    };
    let ssh = tokio::spawn(sshd::serve(listener, identity.key, shared.clone()));
    say(format!("SSH on port {}", args.ssh_port));
    let beats =
        tokio::spawn(heartbeats(appliance, device_id, reg.token, reg.heartbeat_secs, shared.busy.clone(), started));
    tokio::select! {
        r = ssh => Err(format!("the SSH server stopped: {r:?}")),
        r = beats => Err(format!("heartbeats stopped: {r:?}")),
    }
}

fn enroll_and_register(
    appliance: &Appliance,
    args: &BootArgs,
    lease: &net::Lease,
    pem: &str,
    host_key: &str,
) -> Result<(String, ironbay_wire::register::RegisterResponse), String> {
    let name: String = format!("agent-{}", args.asset.as_deref().unwrap_or("unknown"))
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .take(64)
        .collect();
    let device_id =
        with_retry("enrolling", || appliance.enroll(&args.token, &name, pem)).map_err(|e| format!("enrolling: {e}"))?;
    let inventory = inventory::collect();
    say(format!(
        "inventory: {} disk(s), {} NIC(s), {} MiB memory",
        inventory.disks.len(),
        inventory.nics.len(),
        inventory.memory.total_bytes >> 20
    ));
    let req = RegisterRequest {
        protocol: ironbay_wire::PROTOCOL_VERSION,
        agent_version: env!("CARGO_PKG_VERSION").into(),
        device_id: device_id.clone(),
        ssh_host_key: host_key.to_string(),
        ssh_port: args.ssh_port,
        ip: Some(lease.ip.clone()),
        mac: lease.mac.clone(),
        inventory,
    };
    let reg =
        with_retry("registering", || appliance.register(&args.token, &req)).map_err(|e| format!("registering: {e}"))?;
    Ok((device_id, reg))
}

async fn heartbeats(
    appliance: Arc<Appliance>,
    device_id: String,
    mut token: String,
    mut every: u64,
    busy: Arc<Mutex<Option<String>>>,
    started: Instant,
) -> Result<(), String> {
    loop {
        tokio::time::sleep(Duration::from_secs(every.clamp(1, 3600))).await;
        let req = HeartbeatRequest {
            device_id: device_id.clone(),
            uptime_secs: started.elapsed().as_secs(),
            busy: busy.lock().ok().and_then(|b| b.clone()),
        };
        let (a, t) = (appliance.clone(), token.clone());
        match tokio::task::spawn_blocking(move || a.heartbeat(&t, &req)).await {
            Ok(Ok(resp)) => {
                token = resp.token;
                every = resp.heartbeat_secs;
            }
            Ok(Err(ApiError::Refused { code, message, .. })) if code == "AGENT_SUPERSEDED" => {
                return Err(format!("superseded: {message}"));
            }
            Ok(Err(e)) => say(format!("heartbeat failed: {e}")),
            Err(e) => say(format!("heartbeat task failed: {e}")),
        }
    }
}
