//! Registration (`POST /agent/register`) and heartbeats (`POST /agent/heartbeat`), both with
//! `Authorization: Bearer <token>`: the boot token from the kernel command line at first, then the
//! token each answer hands back (so an agent outlives its boot token's expiry while it heartbeats).

use serde::{Deserialize, Serialize};

use crate::inventory::Inventory;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegisterRequest {
    pub protocol: u32,
    pub agent_version: String,
    /// The device id the enrollment API gave the agent's key (`dev_…`).
    pub device_id: String,
    /// The agent's SSH host key, OpenSSH format (`ssh-ed25519 AAAA…`): the enrolled key itself,
    /// so the appliance pins the host it connects to.
    pub ssh_host_key: String,
    /// The port its SSH server listens on.
    pub ssh_port: u16,
    /// The address the agent got by DHCP, on the interface it booted from.
    pub ip: Option<String>,
    /// The MAC of that interface.
    pub mac: Option<String>,
    pub inventory: Inventory,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegisterResponse {
    pub asset: String,
    /// The appliance's SSH public key, OpenSSH format: the only key the agent's server accepts.
    pub appliance_ssh_key: String,
    /// How often to heartbeat.
    pub heartbeat_secs: u64,
    /// Bearer token for the next heartbeat.
    pub token: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeartbeatRequest {
    /// The device id the agent registered with: a heartbeat from an older boot's agent is refused.
    pub device_id: String,
    /// Seconds since the agent started.
    pub uptime_secs: u64,
    /// The command running now, if any (`wipe`, `write-image`, ...).
    pub busy: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeartbeatResponse {
    pub token: String,
    pub heartbeat_secs: u64,
}
