//! The in-RAM agent as the appliance knows it: registration (boot token + the enrolled device
//! key, which is also the SSH host key the appliance pins), heartbeats, the asset's inventory and
//! its hardware changes, and commands run on the agent over SSH.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use chrono::Utc;
use ironbay_wire::command::Command;
use ironbay_wire::inventory::Inventory;
use ironbay_wire::progress::{Line, Outcome, Status};
use ironbay_wire::register::{HeartbeatRequest, HeartbeatResponse, RegisterRequest, RegisterResponse};
use russh::keys::PublicKey;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use utoipa::ToSchema;

use super::assets::asset_not_found;
use super::lifecycle;
use super::{AppState, Page, PageRequest};
use crate::agent::diff;
use crate::agent::ssh::{self, Target};
use crate::audit::{self, Event};
use crate::auth::Actor;
use crate::boot::token::BootClaims;
use crate::error::{Error, Result};
use crate::model::lifecycle::LifecycleEvent;
use crate::model::{AssetState, IdKind, Scope, ids, new_id, now_rfc3339, to_rfc3339};
use crate::pki::DeviceKey;
use crate::policy::input::{Action, GuardSubject};
use crate::store::Store;
use crate::store::agents::{AgentRow, InventoryChangeRow};

/// How often agents heartbeat.
pub const HEARTBEAT_SECS: u64 = 10;
/// An agent silent for this many heartbeats is `lost`.
const LOST_AFTER_BEATS: i64 = 3;
const SSH_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AgentStatus {
    /// Heartbeats arrive.
    Online,
    /// No heartbeat for three intervals: the agent died, the machine rebooted or lost its network.
    Lost,
}

/// The agent last registered on an asset.
#[derive(Debug, Serialize, ToSchema)]
pub struct AgentView {
    pub asset_id: String,
    /// The device the agent's in-RAM key enrolled as (`dev_…`).
    pub device_id: String,
    pub status: AgentStatus,
    /// Where its SSH server is.
    pub address: String,
    pub ssh_port: u16,
    /// Its SSH host key (the enrolled key), OpenSSH format.
    pub host_key: String,
    pub agent_version: String,
    pub mac: Option<String>,
    pub registered_at: String,
    pub last_heartbeat: String,
    pub heartbeat_secs: u64,
    /// The command it runs now, as of its last heartbeat.
    pub busy: Option<String>,
    /// Admin keys allowed a rescue shell.
    pub rescue_keys: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InventoryView {
    pub asset_id: String,
    pub registered_at: String,
    /// The agent's full report: system, firmware, cpu, memory, disks, nics, bmc, kernel.
    #[schema(value_type = Object)]
    pub inventory: serde_json::Value,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InventoryChangeView {
    pub id: String,
    pub asset_id: String,
    pub at: String,
    /// `{kind, item, change, field?, before, after}` each.
    #[schema(value_type = Vec<Object>)]
    pub changes: serde_json::Value,
}

/// `POST /api/v1/assets/{id}/agent/commands`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandRequest {
    /// `inventory`, `lsblk`, `history`, `wipe`, `write-image`, `reboot` or `poweroff`.
    pub command: String,
    /// wipe: `quick`, `discard`, `zero` or `secure`.
    #[serde(default)]
    pub method: Option<String>,
    /// wipe: the disks (`/dev/vda` or `vda`); none means every disk that may be wiped.
    #[serde(default)]
    pub disks: Vec<String>,
    /// write-image: the image URL (http).
    #[serde(default)]
    pub url: Option<String>,
    /// write-image: hex SHA-256 of the image as written.
    #[serde(default)]
    pub sha256: Option<String>,
    /// write-image: the target disk.
    #[serde(default)]
    pub disk: Option<String>,
    /// Required for wipe, write-image, reboot and poweroff: the asset's hostname or id.
    #[serde(default)]
    pub confirm: Option<String>,
}

/// `POST /api/v1/assets/{id}/rescue`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RescueRequest {
    /// The admin's OpenSSH public key (`ssh-ed25519 AAAA… comment`).
    pub public_key: String,
}

/// A command accepted for running: the stream of its lines, then its outcome.
pub struct RunningCommand {
    pub lines: mpsc::Receiver<Line>,
    pub done: tokio::task::JoinHandle<Outcome>,
}

fn agent_not_registered(asset: &str) -> Error {
    Error::conflict(
        "AGENT_NOT_REGISTERED",
        format!("no agent has registered on asset {asset}: PXE-boot it into the agent first"),
        None,
    )
}

/// The raw key an OpenSSH Ed25519 line holds, as the SPKI PEM the device registry stores.
fn ssh_key_as_spki_pem(key: &PublicKey) -> Option<String> {
    let raw = key.key_data().ed25519()?.0;
    DeviceKey::from_spki_der(&ironbay_wire::keys::ed25519_spki_der(&raw)).ok().map(|k| k.pem())
}

/// The specs an inventory gives an asset (merged over what discovery filled in).
fn specs_from(current: &serde_json::Value, inv: &Inventory) -> serde_json::Value {
    let mut specs = current.as_object().cloned().unwrap_or_default();
    let put = |specs: &mut serde_json::Map<String, serde_json::Value>, k: &str, v: serde_json::Value| {
        specs.insert(k.to_string(), v);
    };
    put(&mut specs, "cpu", serde_json::json!(inv.cpu));
    put(&mut specs, "memory_bytes", serde_json::json!(inv.memory.total_bytes));
    put(&mut specs, "system", serde_json::json!(inv.system));
    put(&mut specs, "firmware", serde_json::json!(inv.firmware.kind));
    put(&mut specs, "bios", serde_json::json!(inv.firmware));
    put(&mut specs, "arch", serde_json::json!(inv.cpu.arch));
    put(&mut specs, "bmc", serde_json::json!(inv.bmc));
    put(&mut specs, "disk_count", serde_json::json!(inv.disks.len()));
    put(&mut specs, "disk_bytes", serde_json::json!(inv.disks.iter().map(|d| d.size_bytes).sum::<u64>()));
    serde_json::Value::Object(specs)
}

/// Puts the asset in `failed` (its boot script then holds it off the network boot and away from
/// its disk) with the reason audited.
/// Where the agent's SSH server is and the host key it must present.
pub(crate) fn agent_target(agent: &AgentRow) -> Result<Target> {
    let ip: IpAddr = agent.address.parse().map_err(Error::internal)?;
    Ok(Target {
        addr: SocketAddr::new(ip, u16::try_from(agent.ssh_port).unwrap_or(22)),
        host_key: PublicKey::from_openssh(&agent.host_key).map_err(Error::internal)?,
    })
}

async fn mark_failed(store: &Store, asset_id: &str, why: &str) -> Result<()> {
    let mut tx = store.begin().await?;
    let Some(asset) = Store::asset_get_in(&mut tx, asset_id).await? else { return Ok(()) };
    if asset.state == AssetState::Failed {
        return Ok(());
    }
    lifecycle::transition(&mut tx, &Actor::system(), &asset, LifecycleEvent::ImageWriteFailed, why, None).await?;
    tx.commit().await?;
    Ok(())
}

impl AppState {
    fn verify_agent_token(&self, bearer: Option<&str>) -> Result<BootClaims> {
        let token = bearer.ok_or_else(|| {
            Error::unauthenticated("BOOT_TOKEN_MISSING", "a boot token is required (Authorization: Bearer)")
        })?;
        self.boot
            .tokens
            .verify(token.trim(), Utc::now().timestamp())
            .map_err(|e| Error::unauthenticated("BOOT_TOKEN_INVALID", e.to_string()))
    }

    /// `POST /agent/register`: the agent on `claims.asset` reports its inventory and where its SSH
    /// server is. Its host key must be the key it enrolled (as a device bound to the same asset).
    pub async fn agent_register(
        &self,
        bearer: Option<&str>,
        peer: IpAddr,
        appliance_url: Option<String>,
        req: RegisterRequest,
    ) -> Result<RegisterResponse> {
        let claims = self.verify_agent_token(bearer)?;
        if req.protocol != ironbay_wire::PROTOCOL_VERSION {
            return Err(Error::bad_request(
                "AGENT_PROTOCOL_UNSUPPORTED",
                format!(
                    "agent protocol {} is not spoken here (this appliance speaks {}): rebuild the agent image",
                    req.protocol,
                    ironbay_wire::PROTOCOL_VERSION
                ),
            ));
        }
        let host_key = PublicKey::from_openssh(req.ssh_host_key.trim())
            .map_err(|e| Error::invalid_field("ssh_host_key", format!("not an OpenSSH public key: {e}")))?;
        let host_pem = ssh_key_as_spki_pem(&host_key)
            .ok_or_else(|| Error::invalid_field("ssh_host_key", "the host key must be ssh-ed25519"))?;
        if !ids::looks_like(IdKind::Device, &req.device_id) {
            return Err(Error::invalid_field("device_id", "not a device id"));
        }
        let device = self
            .store
            .device_get(&req.device_id)
            .await?
            .ok_or_else(|| Error::invalid_field("device_id", "no such device: enroll first"))?;
        let bound_asset = serde_json::from_str::<serde_json::Value>(&device.metadata)
            .ok()
            .and_then(|m| m.get("asset").and_then(|a| a.as_str()).map(str::to_string));
        if device.revoked_at.is_some()
            || bound_asset.as_deref() != Some(claims.asset.as_str())
            || device.public_key.trim() != host_pem.trim()
        {
            return Err(Error::forbidden(
                "AGENT_IDENTITY_MISMATCH",
                "the device is revoked, enrolled for another asset, or its key is not this SSH host key",
            ));
        }
        let inventory_text = serde_json::to_string(&req.inventory).map_err(Error::internal)?;
        let now = now_rfc3339();
        let mut tx = self.store.begin().await?;
        let asset = Store::asset_get_in(&mut tx, &claims.asset).await?.ok_or_else(|| asset_not_found(&claims.asset))?;
        let previous = Store::agent_get_in(&mut tx, &claims.asset).await?;
        let changes = match previous.as_ref().map(|p| serde_json::from_str::<Inventory>(&p.inventory)) {
            Some(Ok(before)) => diff::diff(&before, &req.inventory),
            _ => Vec::new(),
        };
        let row = AgentRow {
            asset_id: claims.asset.clone(),
            device_id: req.device_id.clone(),
            address: peer.to_string(),
            ssh_port: i64::from(req.ssh_port),
            host_key: host_key.to_openssh().map_err(Error::internal)?,
            agent_version: req.agent_version.chars().take(64).collect(),
            mac: req.mac.as_ref().map(|m| m.chars().take(17).collect()),
            inventory: inventory_text,
            heartbeat_secs: HEARTBEAT_SECS as i64,
            registered_at: now.clone(),
            last_heartbeat: now.clone(),
            busy: None,
            rescue_keys: "[]".into(),
            appliance_url,
        };
        Store::agent_upsert(&mut tx, &row).await?;

        let mut next = asset.clone();
        next.specs = specs_from(&asset.specs, &req.inventory);
        next.disks = serde_json::to_value(&req.inventory.disks).map_err(Error::internal)?;
        next.nics = serde_json::to_value(&req.inventory.nics).map_err(Error::internal)?;
        if next.serial.is_none() {
            next.serial = req.inventory.system.serial.clone();
        }
        if next.smbios_uuid.is_none() && req.inventory.system.uuid.is_some() {
            // Taken only if no other asset claims it (the column is unique).
            next.smbios_uuid = req.inventory.system.uuid.clone();
            if Store::asset_find_conflict(&mut tx, &next).await?.is_some() {
                next.smbios_uuid = None;
            }
        }
        if !Store::asset_set_hardware(&mut tx, &next, &now).await? {
            return Err(Error::conflict("ASSET_CHANGED", "the asset changed during registration: retry", None));
        }
        next.generation += 1;
        audit::append(
            &mut tx,
            &Actor::system(),
            Event::new("asset.agent_register", "asset", &claims.asset).with_details(serde_json::json!({
                "device_id": req.device_id, "address": row.address, "agent_version": row.agent_version,
                "disks": req.inventory.disks.len(), "nics": req.inventory.nics.len(),
            })),
        )
        .await?;
        if !changes.is_empty() {
            let changes_json = serde_json::to_value(&changes).map_err(Error::internal)?;
            let change = InventoryChangeRow {
                id: new_id(IdKind::Event),
                asset_id: claims.asset.clone(),
                at: now.clone(),
                changes: changes_json.to_string(),
            };
            Store::inventory_change_insert(&mut tx, &change).await?;
            audit::append(
                &mut tx,
                &Actor::system(),
                Event::new("asset.hardware_changed", "asset", &claims.asset)
                    .with_details(serde_json::json!({"change_id": change.id, "changes": changes_json})),
            )
            .await?;
        }
        if next.state == AssetState::Discovering {
            lifecycle::transition(
                &mut tx,
                &Actor::system(),
                &next,
                LifecycleEvent::AgentRegistered,
                "agent registered its inventory",
                None,
            )
            .await?;
        }
        tx.commit().await?;
        tracing::info!(asset = %claims.asset, address = %row.address, changes = changes.len(), "agent registered");
        Ok(RegisterResponse {
            asset: claims.asset.clone(),
            appliance_ssh_key: self.agent_key.public_openssh().to_string(),
            heartbeat_secs: HEARTBEAT_SECS,
            token: self.boot.tokens.issue(&claims.asset, claims.mac, Utc::now().timestamp()),
        })
    }

    /// `POST /agent/heartbeat`.
    pub async fn agent_heartbeat(&self, bearer: Option<&str>, req: HeartbeatRequest) -> Result<HeartbeatResponse> {
        let claims = self.verify_agent_token(bearer)?;
        let busy: Option<String> = req.busy.map(|b| b.chars().take(64).collect());
        if !self.store.agent_heartbeat(&claims.asset, &req.device_id, &now_rfc3339(), busy.as_deref()).await? {
            return Err(Error::conflict(
                "AGENT_SUPERSEDED",
                "another agent registered on this asset since: this one should stop",
                None,
            ));
        }
        Ok(HeartbeatResponse {
            token: self.boot.tokens.issue(&claims.asset, claims.mac, Utc::now().timestamp()),
            heartbeat_secs: HEARTBEAT_SECS,
        })
    }

    pub(crate) fn agent_view(&self, row: &AgentRow) -> AgentView {
        let lost_after = chrono::Duration::seconds(row.heartbeat_secs.max(1) * LOST_AFTER_BEATS);
        let online_since = to_rfc3339(Utc::now() - lost_after);
        AgentView {
            asset_id: row.asset_id.clone(),
            device_id: row.device_id.clone(),
            status: if row.last_heartbeat >= online_since { AgentStatus::Online } else { AgentStatus::Lost },
            address: row.address.clone(),
            ssh_port: u16::try_from(row.ssh_port).unwrap_or(22),
            host_key: row.host_key.clone(),
            agent_version: row.agent_version.clone(),
            mac: row.mac.clone(),
            registered_at: row.registered_at.clone(),
            last_heartbeat: row.last_heartbeat.clone(),
            heartbeat_secs: u64::try_from(row.heartbeat_secs).unwrap_or(HEARTBEAT_SECS),
            busy: row.busy.clone(),
            rescue_keys: serde_json::from_str(&row.rescue_keys).unwrap_or_default(),
        }
    }

    async fn agent_row(&self, actor: &Actor, asset_id: &str) -> Result<AgentRow> {
        actor.require(Scope::AssetsRead)?;
        self.registered_agent(asset_id).await
    }

    /// The asset's agent, for a caller whose permission was checked already.
    async fn registered_agent(&self, asset_id: &str) -> Result<AgentRow> {
        if !ids::looks_like(IdKind::Asset, asset_id) {
            return Err(asset_not_found(asset_id));
        }
        if self.store.asset_get(asset_id).await?.is_none() {
            return Err(asset_not_found(asset_id));
        }
        self.store.agent_get(asset_id).await?.ok_or_else(|| agent_not_registered(asset_id))
    }

    pub async fn asset_agent(&self, actor: &Actor, asset_id: &str) -> Result<AgentView> {
        let row = self.agent_row(actor, asset_id).await?;
        Ok(self.agent_view(&row))
    }

    pub async fn asset_inventory(&self, actor: &Actor, asset_id: &str) -> Result<InventoryView> {
        let row = self.agent_row(actor, asset_id).await?;
        Ok(InventoryView {
            asset_id: row.asset_id,
            registered_at: row.registered_at,
            inventory: serde_json::from_str(&row.inventory).map_err(Error::internal)?,
        })
    }

    pub async fn asset_inventory_changes(
        &self,
        actor: &Actor,
        asset_id: &str,
        page: PageRequest,
    ) -> Result<Page<InventoryChangeView>> {
        actor.require(Scope::AssetsRead)?;
        if !ids::looks_like(IdKind::Asset, asset_id) || self.store.asset_get(asset_id).await?.is_none() {
            return Err(asset_not_found(asset_id));
        }
        let (rows, total) = self.store.inventory_changes(asset_id, page.limit(), page.offset()).await?;
        let items = rows
            .into_iter()
            .map(|r| {
                Ok(InventoryChangeView {
                    changes: serde_json::from_str(&r.changes).map_err(Error::internal)?,
                    id: r.id,
                    asset_id: r.asset_id,
                    at: r.at,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Page { items, page, total })
    }

    /// Validates a command request into the agent command it names.
    fn command_from(req: &CommandRequest) -> Result<Command> {
        let no_space = |field: &str, v: &str| -> Result<()> {
            if v.is_empty() || v.len() > 2048 || v.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(Error::invalid_field(field, format!("`{field}` must be 1-2048 characters without spaces")));
            }
            Ok(())
        };
        let cmd = match req.command.as_str() {
            "inventory" => Command::Inventory,
            "lsblk" => Command::Lsblk,
            "history" => Command::History,
            "reboot" => Command::Reboot,
            "poweroff" => Command::Poweroff,
            "wipe" => {
                let method = req
                    .method
                    .as_deref()
                    .ok_or_else(|| {
                        Error::invalid_field("method", "wipe needs `method`: quick, discard, zero or secure")
                    })?
                    .parse()
                    .map_err(|e: String| Error::invalid_field("method", e))?;
                for d in &req.disks {
                    no_space("disks", d)?;
                }
                Command::Wipe { method, disks: req.disks.clone(), run: None }
            }
            "write-image" => {
                let url = req.url.clone().ok_or_else(|| Error::invalid_field("url", "write-image needs `url`"))?;
                no_space("url", &url)?;
                if !url.starts_with("http://") {
                    return Err(Error::invalid_field("url", "the agent fetches images over http://"));
                }
                let sha256 = req
                    .sha256
                    .clone()
                    .ok_or_else(|| Error::invalid_field("sha256", "write-image needs `sha256`"))?
                    .to_ascii_lowercase();
                if sha256.len() != 64 || !sha256.chars().all(|c| c.is_ascii_hexdigit()) {
                    return Err(Error::invalid_field("sha256", "`sha256` must be 64 hex digits"));
                }
                let disk = req.disk.clone().ok_or_else(|| Error::invalid_field("disk", "write-image needs `disk`"))?;
                no_space("disk", &disk)?;
                Command::WriteImage { url, sha256, disk, run: None }
            }
            other => {
                return Err(Error::invalid_field(
                    "command",
                    format!(
                        "`{}` is not an agent command (inventory, lsblk, history, wipe, write-image, reboot, poweroff)",
                        other.chars().take(40).collect::<String>()
                    ),
                ));
            }
        };
        Ok(cmd)
    }

    /// Runs a command on the asset's agent. Destructive ones (and reboot/poweroff) need the asset
    /// named in `confirm`, pass the policy guard first and are audited when they start and end.
    pub async fn agent_command(&self, actor: &Actor, asset_id: &str, req: CommandRequest) -> Result<RunningCommand> {
        let command = Self::command_from(&req)?;
        let changes_machine = !matches!(command, Command::Inventory | Command::Lsblk | Command::History);
        actor.require(if changes_machine { Scope::AssetsWrite } else { Scope::AssetsRead })?;
        if !ids::looks_like(IdKind::Asset, asset_id) {
            return Err(asset_not_found(asset_id));
        }
        let asset = self.store.asset_get(asset_id).await?.ok_or_else(|| asset_not_found(asset_id))?;
        if changes_machine {
            let named = req.confirm.as_deref().map(str::trim);
            if named != Some(asset.id.as_str()) && named != Some(asset.hostname.as_str()) {
                return Err(Error::invalid_field(
                    "confirm",
                    format!(
                        "`confirm` must name the asset ({} or {}) for {}",
                        asset.hostname,
                        asset.id,
                        command.name()
                    ),
                ));
            }
            if command.is_destructive() {
                let action = if matches!(command, Command::Wipe { .. }) { Action::Wipe } else { Action::Provision };
                self.guard(actor, action, GuardSubject::Asset(super::assets::policy_subject(&asset))).await?;
            }
        }
        let agent = self.store.agent_get(asset_id).await?.ok_or_else(|| agent_not_registered(asset_id))?;
        let view = self.agent_view(&agent);
        if view.status == AgentStatus::Lost {
            return Err(Error::conflict(
                "AGENT_LOST",
                format!("the agent on {asset_id} has not sent a heartbeat since {}", agent.last_heartbeat),
                Some(serde_json::json!({"last_heartbeat": agent.last_heartbeat})),
            ));
        }
        let target = agent_target(&agent)?;
        let exec = command.to_exec();
        if changes_machine {
            audit::record(
                &self.store,
                actor,
                Event::new("asset.agent_command", "asset", asset_id)
                    .with_details(serde_json::json!({"command": exec, "device_id": agent.device_id})),
            )
            .await?;
        }
        let (tx, rx) = mpsc::channel(256);
        let key = self.agent_key.private();
        let store = self.store.clone();
        let actor = actor.clone();
        let asset_id = asset_id.to_string();
        let done = tokio::spawn(async move {
            let outcome = match ssh::run(key, &target, &exec, Some(tx), SSH_CONNECT_TIMEOUT).await {
                Ok(o) => o,
                Err(e) => Outcome::error(command.name(), e.code(), e.to_string(), serde_json::Value::Null),
            };
            if changes_machine {
                let event = Event::new("asset.agent_command_finish", "asset", &asset_id).with_details(serde_json::json!({
                    "command": command.name(),
                    "result": outcome.result,
                    "code": outcome.code,
                    "message": outcome.message,
                    "details": if outcome.result == Status::Ok { outcome.details.clone() } else { serde_json::Value::Null },
                }));
                if let Err(e) = audit::record(&store, &actor, event).await {
                    tracing::error!(error = %e, "recording an agent command's end failed");
                }
            }
            // A write that did not finish (refused, failed, or cut off with no result) may have left
            // part of an image: the asset is held as failed, never booted from that disk.
            if matches!(command, Command::WriteImage { .. }) && outcome.result != Status::Ok {
                let why = format!("image write failed: {}", outcome.message.as_deref().unwrap_or("no result"));
                if let Err(e) = mark_failed(&store, &asset_id, &why).await {
                    tracing::error!(error = %e, asset = %asset_id, "marking the asset failed did not work");
                }
            }
            outcome
        });
        Ok(RunningCommand { lines: rx, done })
    }

    /// Allows an admin's key a rescue shell on the asset's agent: recorded, audited, and handed to
    /// the running agent (which accepts it until it reboots).
    pub async fn agent_rescue(&self, actor: &Actor, asset_id: &str, req: RescueRequest) -> Result<AgentView> {
        // A shell on a machine's agent can read and write every disk: admins only.
        actor.require(Scope::Admin)?;
        let key = PublicKey::from_openssh(req.public_key.trim())
            .map_err(|e| Error::invalid_field("public_key", format!("not an OpenSSH public key: {e}")))?;
        if key.key_data().ed25519().is_none() && key.key_data().ecdsa().is_none() {
            return Err(Error::invalid_field("public_key", "use an ssh-ed25519 or ecdsa-sha2-nistp256 key"));
        }
        let agent = self.registered_agent(asset_id).await?;
        let line = key.to_openssh().map_err(Error::internal)?;
        let mut parts = line.split_whitespace();
        let (Some(kind), Some(b64)) = (parts.next(), parts.next()) else {
            return Err(Error::invalid_field("public_key", "not an OpenSSH public key"));
        };
        let command = Command::RescueKey { key_type: kind.to_string(), key_base64: b64.to_string() };
        let target = agent_target(&agent)?;
        let outcome = ssh::run(self.agent_key.private(), &target, &command.to_exec(), None, SSH_CONNECT_TIMEOUT)
            .await
            .map_err(|e| Error::conflict(e.code(), e.to_string(), None))?;
        if outcome.result != Status::Ok {
            return Err(Error::conflict(
                "AGENT_REFUSED",
                outcome.message.unwrap_or_else(|| "the agent refused the key".into()),
                None,
            ));
        }
        let mut keys: Vec<String> = serde_json::from_str(&agent.rescue_keys).unwrap_or_default();
        let short = format!("{kind} {b64}");
        if !keys.contains(&short) {
            keys.push(short);
        }
        let mut tx = self.store.begin().await?;
        Store::agent_set_rescue_keys(&mut tx, asset_id, &serde_json::to_string(&keys).map_err(Error::internal)?)
            .await?;
        audit::append(
            &mut tx,
            actor,
            Event::new("asset.rescue_enable", "asset", asset_id).with_details(serde_json::json!({
                "key_type": kind, "fingerprint": key.fingerprint(Default::default()).to_string(),
            })),
        )
        .await?;
        tx.commit().await?;
        let row = self.store.agent_get(asset_id).await?.ok_or_else(|| agent_not_registered(asset_id))?;
        Ok(self.agent_view(&row))
    }
}
