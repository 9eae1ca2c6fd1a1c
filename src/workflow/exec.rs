//! What each step does. A step returns a `StepOutcome`; the engine records it (fenced by the
//! lease) and moves the workflow on. Destructive steps (wipe, write-image) follow one rule:
//! before running, ask the agent's history about this step's runs — a finished one is never run
//! again, a running one is waited for, and one that may have run on an agent that has since
//! restarted fails the workflow for an explicit retry instead of being repeated blindly.

use std::time::Duration;

use ironbay_wire::command::Command;
use ironbay_wire::inventory::Disk;
use ironbay_wire::progress::{Line, Outcome, Status};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::certificate::WipeCertificate;
use super::disk_choice::{self, ChosenDisk};
use super::log::StepLog;
use super::step::{DiskHint, ImageSource, Step, StepStatus, WorkflowKind};
use crate::agent::ssh::{self, SshError};
use crate::app::AppState;
use crate::app::agents::{AgentStatus, agent_target};
use crate::bmc::{self, BmcError, BmcTarget, BootDevice, BootOverride, PowerAction};
use crate::store::agents::AgentRow;
use crate::store::assets::AssetRow;
use crate::store::workflows::{StepRow, WorkflowRow};

const SSH_CONNECT: Duration = Duration::from_secs(10);
/// Why power-up steps are skipped when the machine is already in the agent.
const AGENT_RUNS: &str = "the agent already runs on the machine";
/// How often waiting steps look again.
const POLL: Duration = Duration::from_secs(2);

#[derive(Debug)]
pub enum StepOutcome {
    Done(Value),
    Skipped(String),
    /// Not yet: look again after the duration (the step keeps no lease meanwhile).
    Wait(Duration, String),
    Fail(Failure),
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Failure {
    pub code: String,
    pub message: String,
    /// Whether the engine may try again by itself (within `workflows.step_retries`).
    pub retryable: bool,
    pub details: Value,
}

impl Failure {
    pub fn new(code: &str, message: impl Into<String>, retryable: bool) -> Failure {
        Failure { code: code.into(), message: message.into(), retryable, details: Value::Null }
    }
}

impl From<BmcError> for Failure {
    fn from(e: BmcError) -> Failure {
        Failure::new(e.code(), e.to_string(), e.retryable())
    }
}

impl From<SshError> for Failure {
    fn from(e: SshError) -> Failure {
        // Reaching the agent can fail for a moment (it is booting, a link flaps); a key
        // mismatch is not something a retry mends.
        let retryable = !matches!(e, SshError::HostKeyMismatch(_) | SshError::AuthRefused(_));
        Failure::new(e.code(), e.to_string(), retryable)
    }
}

impl From<crate::error::Error> for Failure {
    fn from(e: crate::error::Error) -> Failure {
        Failure::new("INTERNAL", e.to_string(), true)
    }
}

impl From<sqlx::Error> for Failure {
    fn from(e: sqlx::Error) -> Failure {
        Failure::new("STORE_ERROR", e.to_string(), true)
    }
}

/// Everything a step needs to know.
pub struct Ctx<'a> {
    pub app: &'a AppState,
    pub wf: &'a WorkflowRow,
    pub kind: WorkflowKind,
    pub steps: &'a [StepRow],
    pub idx: usize,
    pub attempts: i64,
    /// The step's status before this claim: `pending` (a first or retried attempt), `waiting`
    /// (a poll), `running` (its appliance died while it ran: recovery).
    pub seen: StepStatus,
    pub started_at: String,
    pub log: &'a StepLog,
}

impl Ctx<'_> {
    fn run_id(&self) -> String {
        format!("{}:{}:{}", self.wf.id, self.idx, self.attempts)
    }
    fn run_prefix(&self) -> String {
        format!("{}:{}:", self.wf.id, self.idx)
    }

    async fn asset(&self) -> Result<AssetRow, Failure> {
        self.app
            .store
            .asset_get(&self.wf.asset_id)
            .await?
            .ok_or_else(|| Failure::new("ASSET_NOT_FOUND", format!("asset {} is gone", self.wf.asset_id), false))
    }

    async fn agent(&self) -> Result<Option<AgentRow>, Failure> {
        Ok(self.app.store.agent_get(&self.wf.asset_id).await?)
    }

    /// The result of an earlier step of this workflow, by kind.
    fn result_of(&self, kind: &str) -> Option<Value> {
        self.steps[..self.idx]
            .iter()
            .rev()
            .find(|s| s.kind == kind && s.status == "succeeded")
            .and_then(|s| s.result.as_deref())
            .and_then(|r| serde_json::from_str(r).ok())
    }

    fn step_finished_at(&self, kind: &str) -> Option<String> {
        self.steps[..self.idx].iter().rev().find(|s| s.kind == kind).and_then(|s| s.finished_at.clone())
    }

    fn bmc(&self, asset: &AssetRow) -> Result<Option<BmcTarget>, Failure> {
        Ok(self.app.bmc_target(asset)?)
    }

    fn bmc_driver(&self, target: &BmcTarget) -> std::sync::Arc<dyn bmc::Bmc> {
        self.app.bmc_driver(target)
    }

    /// Runs an agent command, its lines going to the step log.
    async fn ssh(&self, agent: &AgentRow, command: &Command) -> Result<Outcome, SshError> {
        let target = agent_target(agent).map_err(|e| SshError::BadLine(e.to_string()))?;
        let (tx, mut rx) = mpsc::channel::<Line>(256);
        let log = self.log.clone();
        // Progress lines also go to open consoles at once (the stored log follows lease renewals).
        let (live, wf_id, asset_id, idx) =
            (self.app.live.clone(), self.wf.id.clone(), self.wf.asset_id.clone(), self.idx as i64);
        let pump = tokio::spawn(async move {
            while let Some(line) = rx.recv().await {
                let value = serde_json::to_value(&line).unwrap_or(Value::Null);
                if value.get("bytes_total").is_some() {
                    live.progress(&wf_id, &asset_id, idx, &value);
                }
                log.agent(value);
            }
        });
        let out = ssh::run(self.app.agent_key.private(), &target, &command.to_exec(), Some(tx), SSH_CONNECT).await;
        let _ = pump.await;
        out
    }

    /// The agent answers now (heartbeats fresh and its SSH server runs commands).
    async fn agent_alive(&self) -> Result<Option<AgentRow>, Failure> {
        let Some(agent) = self.agent().await? else { return Ok(None) };
        if self.app.agent_view(&agent).status != AgentStatus::Online {
            return Ok(None);
        }
        let target = agent_target(&agent)?;
        let exec = Command::History.to_exec();
        let probe = ssh::run(self.app.agent_key.private(), &target, &exec, None, Duration::from_secs(5));
        match tokio::time::timeout(Duration::from_secs(8), probe).await {
            Ok(Ok(o)) if o.result == Status::Ok => Ok(Some(agent)),
            _ => Ok(None),
        }
    }

    /// Whether this step comes before the machine is in the agent (the power-up half).
    fn before_agent(&self) -> bool {
        self.steps[self.idx..].iter().any(|s| matches!(s.kind.as_str(), "wait_for_agent" | "wait_for_talos_install"))
    }
}

pub async fn run(ctx: &Ctx<'_>, step: &Step) -> StepOutcome {
    let out = match step {
        Step::PowerOff if !ctx.before_agent() => power_off_after(ctx).await,
        Step::PowerOff | Step::SetBootPxe | Step::PowerOn => power_up(ctx, step).await,
        Step::WaitForAgent => wait_for_agent(ctx).await,
        Step::Inventory => inventory(ctx).await,
        Step::Wipe { .. } | Step::WriteImage { .. } => destructive(ctx, step).await,
        Step::SetBootDisk => set_boot_disk(ctx).await,
        Step::Reboot => reboot(ctx).await,
        Step::WaitForInstall => wait_for_install(ctx).await,
        Step::WaitForTalosInstall => super::talos::wait_for_install(ctx).await,
        Step::WaitForClusterNodes => super::talos::wait_for_nodes(ctx).await,
        Step::Bootstrap => super::talos::bootstrap(ctx).await,
    };
    out.unwrap_or_else(StepOutcome::Fail)
}

/// Power off, PXE once, power on — unless the agent already runs (nothing to boot) or there is
/// no BMC (someone powers the machine on by hand; `WaitForAgent` waits for it).
async fn power_up(ctx: &Ctx<'_>, step: &Step) -> Result<StepOutcome, Failure> {
    // One SSH probe per power-up, not one per step: the steps after the first follow its finding.
    let earlier = ctx.steps[..ctx.idx].iter().rev().find(|s| matches!(s.kind.as_str(), "power_off" | "set_boot_pxe"));
    if let Some(prev) = earlier
        && prev.status == StepStatus::Skipped.as_str()
        && let Some(why) = prev.result.as_deref().and_then(|r| serde_json::from_str::<Value>(r).ok())
        && why["skipped"].as_str().is_some_and(|w| w.starts_with(AGENT_RUNS))
    {
        return Ok(StepOutcome::Skipped(why["skipped"].as_str().unwrap_or(AGENT_RUNS).to_string()));
    }
    // A Talos install must reboot into the Talos PXE boot even when the agent runs.
    if earlier.is_none()
        && ctx.kind != WorkflowKind::TalosInstall
        && let Some(agent) = ctx.agent_alive().await?
    {
        return Ok(StepOutcome::Skipped(format!("{AGENT_RUNS} ({})", agent.address)));
    }
    let asset = ctx.asset().await?;
    let Some(target) = ctx.bmc(&asset)? else {
        return Ok(StepOutcome::Skipped("no BMC: power the machine on to PXE-boot it into the agent".into()));
    };
    let driver = ctx.bmc_driver(&target);
    match step {
        Step::PowerOff => {
            driver.power(&target, PowerAction::Off).await?;
            ctx.log.note(format!("BMC {}: power off", target.address));
        }
        Step::SetBootPxe => {
            let efi = asset.specs.get("firmware").and_then(Value::as_str) == Some("uefi");
            driver.set_boot(&target, BootOverride { device: BootDevice::Pxe, efi, persistent: false }).await?;
            ctx.log.note(format!("BMC {}: next boot PXE, once{}", target.address, if efi { ", EFI" } else { "" }));
        }
        _ => {
            driver.power(&target, PowerAction::On).await?;
            ctx.log.note(format!("BMC {}: power on", target.address));
        }
    }
    let state = driver.power_status(&target).await.ok();
    Ok(StepOutcome::Done(json!({"bmc": target.address, "power": state})))
}

/// The last step of a wipe: the agent powers the machine off cleanly; the BMC makes sure.
async fn power_off_after(ctx: &Ctx<'_>) -> Result<StepOutcome, Failure> {
    let mut how = Vec::new();
    if let Some(agent) = ctx.agent().await?
        && ctx.app.agent_view(&agent).status == AgentStatus::Online
        && let Ok(o) = ctx.ssh(&agent, &Command::Poweroff).await
        && o.result == Status::Ok
    {
        how.push("agent poweroff");
    }
    let asset = ctx.asset().await?;
    if let Some(target) = ctx.bmc(&asset)? {
        let driver = ctx.bmc_driver(&target);
        driver.power(&target, PowerAction::Off).await?;
        how.push("BMC power off");
    }
    if how.is_empty() {
        return Ok(StepOutcome::Skipped("no BMC and no agent to power the machine off".into()));
    }
    Ok(StepOutcome::Done(json!({"powered_off_by": how})))
}

async fn wait_for_agent(ctx: &Ctx<'_>) -> Result<StepOutcome, Failure> {
    let powered_here = ctx.steps[..ctx.idx].iter().any(|s| s.kind == "power_on" && s.status == "succeeded");
    if let Some(agent) = ctx.agent().await?
        && ctx.app.agent_view(&agent).status == AgentStatus::Online
        && (!powered_here || agent.registered_at >= ctx.wf.created_at)
    {
        return Ok(StepOutcome::Done(json!({
            "address": agent.address, "device_id": agent.device_id, "registered_at": agent.registered_at,
        })));
    }
    let limit = ctx.app.config.workflows.agent_timeout;
    if super::elapsed_since(&ctx.started_at) > limit {
        return Err(Failure::new(
            "AGENT_TIMEOUT",
            format!(
                "the machine's agent did not register within {} s: check that it PXE-boots from this appliance",
                limit.as_secs()
            ),
            false,
        ));
    }
    Ok(StepOutcome::Wait(POLL, "waiting for the agent to register".into()))
}

async fn current_disks(ctx: &Ctx<'_>, agent: &AgentRow) -> Result<Vec<Disk>, Failure> {
    let o = ctx.ssh(agent, &Command::Lsblk).await?;
    if o.result != Status::Ok {
        return Err(Failure::new(o.code.as_deref().unwrap_or("AGENT_ERROR"), o.message.unwrap_or_default(), true));
    }
    serde_json::from_value(o.details).map_err(|e| Failure::new("AGENT_PROTOCOL_ERROR", e.to_string(), false))
}

async fn live_agent(ctx: &Ctx<'_>) -> Result<AgentRow, Failure> {
    match ctx.agent().await? {
        Some(a) if ctx.app.agent_view(&a).status == AgentStatus::Online => Ok(a),
        Some(a) => Err(Failure::new(
            "AGENT_LOST",
            format!("the agent has not sent a heartbeat since {}", a.last_heartbeat),
            true,
        )),
        None => Err(Failure::new("AGENT_NOT_REGISTERED", "no agent has registered on this machine", true)),
    }
}

fn image_of(ctx: &Ctx<'_>) -> Option<ImageSource> {
    ctx.steps.iter().find_map(|s| match serde_json::from_str::<Step>(&s.step) {
        Ok(Step::WriteImage { image }) => Some(image),
        _ => None,
    })
}

async fn inventory(ctx: &Ctx<'_>) -> Result<StepOutcome, Failure> {
    let agent = live_agent(ctx).await?;
    let disks = current_disks(ctx, &agent).await?;
    ctx.log.note(format!(
        "{} disks: {}",
        disks.len(),
        disks.iter().map(|d| d.path.as_str()).collect::<Vec<_>>().join(", ")
    ));
    if ctx.kind != WorkflowKind::Provision {
        return Ok(StepOutcome::Done(json!({"disks": disks})));
    }
    let params: Value = serde_json::from_str(&ctx.wf.params).unwrap_or(Value::Null);
    let hint: DiskHint = serde_json::from_value(params["disk"].clone()).unwrap_or(DiskHint::Auto);
    let size = image_of(ctx).and_then(|i| i.size_bytes);
    match disk_choice::choose(&disks, &hint, size) {
        Ok(target) => {
            ctx.log.note(format!("target disk: {}", target.reason));
            Ok(StepOutcome::Done(json!({"disks": disks, "target": target})))
        }
        Err(e) => Err(Failure {
            code: e.code().into(),
            message: e.to_string(),
            retryable: false,
            details: json!({"disks": disks, "disk": hint}),
        }),
    }
}

/// This step's runs as the agent remembers them (oldest first).
async fn runs_of(ctx: &Ctx<'_>, agent: &AgentRow) -> Result<Vec<Value>, Failure> {
    let o = ctx.ssh(agent, &Command::History).await?;
    let prefix = ctx.run_prefix();
    Ok(o.details
        .as_array()
        .map(|a| a.iter().filter(|e| e["run"].as_str().is_some_and(|r| r.starts_with(&prefix))).cloned().collect())
        .unwrap_or_default())
}

fn outcome_of(entry: &Value) -> Outcome {
    Outcome {
        result: if entry["result"] == "ok" { Status::Ok } else { Status::Error },
        command: entry["command"].as_str().unwrap_or_default().split(' ').next().unwrap_or_default().to_string(),
        message: entry["message"].as_str().map(str::to_string),
        code: entry["code"].as_str().map(str::to_string),
        details: entry["details"].clone(),
    }
}

async fn destructive(ctx: &Ctx<'_>, step: &Step) -> Result<StepOutcome, Failure> {
    let agent = live_agent(ctx).await?;
    let runs = runs_of(ctx, &agent).await?;
    if !runs.is_empty() || ctx.seen != StepStatus::Pending {
        ctx.log.note(format!("the agent's history holds {} run(s) of this step", runs.len()));
    }
    let last = runs.last();
    if let Some(done) = runs.iter().find(|e| e["status"] == "finished" && e["result"] == "ok") {
        ctx.log.note(format!("the agent already finished run {} of this step: not running it again", done["run"]));
        return finished(ctx, step, outcome_of(done)).await;
    }
    if let Some(running) = runs.iter().find(|e| e["status"] == "running") {
        return Ok(StepOutcome::Wait(POLL, format!("the agent is still running {}", running["run"])));
    }
    let continuing = matches!(ctx.seen, StepStatus::Running | StepStatus::Waiting);
    if continuing && let Some(failed) = last {
        // The run this step was waiting for (or running when its appliance died) ended badly.
        return finished(ctx, step, outcome_of(failed)).await;
    }
    if ctx.seen == StepStatus::Running && agent.registered_at > ctx.started_at {
        return Err(Failure::new(
            "OUTCOME_UNKNOWN",
            format!(
                "the agent restarted (registered {}) after this {} step started ({}): whether it ran is unknown, so it \
                 is not repeated; retry the workflow to run it again",
                agent.registered_at,
                step.kind(),
                ctx.started_at
            ),
            false,
        ));
    }
    let command = match step {
        Step::Wipe { method } => Command::Wipe { method: *method, disks: vec![], run: Some(ctx.run_id()) },
        Step::WriteImage { image } => {
            let target = target_disk(ctx, &agent).await?;
            let url = match (&image.url, &image.library_path, &agent.appliance_url) {
                (Some(u), _, _) => u.clone(),
                (None, Some(p), Some(base)) => format!("{}/{}", base.trim_end_matches('/'), p.trim_start_matches('/')),
                _ => {
                    return Err(Failure::new(
                        "IMAGE_URL_UNKNOWN",
                        "the image has no URL and the agent did not say how it reaches the appliance",
                        false,
                    ));
                }
            };
            ctx.log.note(format!("writing {url} to {} ({})", target.path, target.reason));
            Command::WriteImage { url, sha256: image.sha256.clone(), disk: target.path, run: Some(ctx.run_id()) }
        }
        _ => unreachable!("only wipe and write-image are destructive"),
    };
    ctx.log.note(format!("running `{}` as run {}", command.name(), ctx.run_id()));
    match ctx.ssh(&agent, &command).await {
        Ok(o) => finished(ctx, step, o).await,
        // The command may go on without us (the agent keeps it in its history): watch it.
        Err(e @ (SshError::NoOutcome(_) | SshError::Protocol(_))) => {
            ctx.log.note(format!("lost the connection to the agent while it ran: {e}; asking its history"));
            Ok(StepOutcome::Wait(POLL, "the connection dropped: asking the agent what became of the run".into()))
        }
        Err(e) => Err(e.into()),
    }
}

/// The disk the Inventory step chose, found again among the agent's disks now by its stable
/// identifier (a path can change across boots; a serial or WWN does not).
async fn target_disk(ctx: &Ctx<'_>, agent: &AgentRow) -> Result<ChosenDisk, Failure> {
    let chosen: ChosenDisk = ctx
        .result_of("inventory")
        .and_then(|r| serde_json::from_value(r["target"].clone()).ok())
        .ok_or_else(|| Failure::new("DISK_NOT_CHOSEN", "the inventory step chose no disk", false))?;
    let hint = match (&chosen.serial, &chosen.wwn) {
        (Some(s), _) => DiskHint::Serial(s.clone()),
        (None, Some(w)) => DiskHint::Wwn(w.clone()),
        _ => DiskHint::Path(chosen.path.clone()),
    };
    let disks = current_disks(ctx, agent).await?;
    let now = disk_choice::choose(&disks, &hint, None).map_err(|e| Failure::new(e.code(), e.to_string(), false))?;
    Ok(ChosenDisk { reason: chosen.reason, ..now })
}

async fn finished(ctx: &Ctx<'_>, step: &Step, o: Outcome) -> Result<StepOutcome, Failure> {
    if o.result != Status::Ok {
        return Err(Failure {
            code: o.code.unwrap_or_else(|| "AGENT_ERROR".into()),
            message: o.message.unwrap_or_else(|| format!("{} failed", step.kind())),
            // A destructive command that ran and failed is never repeated by itself.
            retryable: false,
            details: o.details,
        });
    }
    if let Step::Wipe { method } = step {
        let cert = certificate(ctx, method.as_str(), &o.details).await?;
        return Ok(StepOutcome::Done(json!({"wipe": o.details, "certificate_key_id": cert.key_id})));
    }
    Ok(StepOutcome::Done(o.details))
}

/// Signs the evidence of a finished wipe and stores it on the workflow.
async fn certificate(ctx: &Ctx<'_>, method: &str, details: &Value) -> Result<WipeCertificate, Failure> {
    let asset = ctx.asset().await?;
    let inventory = ctx.result_of("inventory").unwrap_or(Value::Null);
    let disks: Vec<Value> = details["disks"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|d| {
            let path = d["disk"].as_str().unwrap_or_default().to_string();
            let known = inventory["disks"]
                .as_array()
                .and_then(|a| a.iter().find(|x| x["path"] == path.as_str()).cloned())
                .unwrap_or(Value::Null);
            json!({
                "path": path,
                "model": d["model"].as_str().or(known["model"].as_str()),
                "serial": d["serial"].as_str().or(known["serial"].as_str()),
                "wwn": known["wwn"],
                "size_bytes": d["size_bytes"],
                "status": d["status"],
                "reason": d["reason"],
                "bytes_wiped": d["bytes_wiped"],
                "started_at_unix_ms": d["started_at_unix_ms"],
                "finished_at_unix_ms": d["finished_at_unix_ms"],
                "verification": d["verification"],
            })
        })
        .collect();
    let evidence = json!({
        "certificate": "wipe",
        "workflow_id": ctx.wf.id,
        "asset": {"id": asset.id, "hostname": asset.hostname, "serial": asset.serial, "smbios_uuid": asset.smbios_uuid},
        "method": method,
        "disks": disks,
        "verified": disks.iter().all(|d| d["status"] != "wiped" || d["verification"]["passed"] != false),
        "started_at": ctx.started_at,
        "finished_at": crate::model::now_rfc3339(),
        "issued_by": "ironbay",
    });
    let cert = ctx.app.certificate_key.sign(&evidence);
    let text = serde_json::to_string(&cert).map_err(|e| Failure::new("INTERNAL", e.to_string(), true))?;
    let mut tx = ctx.app.store.begin().await?;
    crate::store::Store::workflow_set_certificate(&mut tx, &ctx.wf.id, &text).await?;
    tx.commit().await?;
    Ok(cert)
}

async fn set_boot_disk(ctx: &Ctx<'_>) -> Result<StepOutcome, Failure> {
    let asset = ctx.asset().await?;
    let Some(target) = ctx.bmc(&asset)? else {
        return Ok(StepOutcome::Skipped(
            "no BMC: the machine's PXE boots are answered `exit`, so it boots its disk".into(),
        ));
    };
    let efi = asset.specs.get("firmware").and_then(Value::as_str) == Some("uefi");
    ctx.bmc_driver(&target)
        .set_boot(&target, BootOverride { device: BootDevice::Disk, efi, persistent: false })
        .await?;
    Ok(StepOutcome::Done(json!({"bmc": target.address, "boot": "disk", "efi": efi})))
}

async fn reboot(ctx: &Ctx<'_>) -> Result<StepOutcome, Failure> {
    let agent = live_agent(ctx).await?;
    let o = ctx.ssh(&agent, &Command::Reboot).await?;
    if o.result != Status::Ok {
        return Err(Failure::new(o.code.as_deref().unwrap_or("AGENT_ERROR"), o.message.unwrap_or_default(), true));
    }
    Ok(StepOutcome::Done(json!({"rebooted_at": crate::model::now_rfc3339()})))
}

/// The machine left the agent for its disk: it asked for an address as an ordinary DHCP client
/// (not a PXE ROM), or the agent stayed away for `install_quiet`. The agent registering again
/// means the disk did not boot.
async fn wait_for_install(ctx: &Ctx<'_>) -> Result<StepOutcome, Failure> {
    let since = ctx.step_finished_at("reboot").unwrap_or_else(|| ctx.started_at.clone());
    if let Some(agent) = ctx.agent().await?
        && agent.registered_at > since
    {
        return Err(Failure::new(
            "DISK_DID_NOT_BOOT",
            format!("the machine booted the agent again at {} instead of its disk", agent.registered_at),
            false,
        ));
    }
    let asset = ctx.asset().await?;
    for mac in &asset.macs {
        if let Some(ev) = ctx.app.store.os_dhcp_since(&mac.to_string(), &since).await? {
            return Ok(StepOutcome::Done(json!({"booted_from_disk": true, "evidence": ev})));
        }
    }
    let quiet = ctx.app.config.workflows.install_quiet;
    if super::elapsed_since(&since) >= quiet {
        return Ok(StepOutcome::Done(json!({
            "booted_from_disk": true,
            "evidence": format!("no agent for {} s after the reboot", quiet.as_secs()),
        })));
    }
    if super::elapsed_since(&ctx.started_at) > Duration::from_secs(30 * 60) {
        return Err(Failure::new("INSTALL_TIMEOUT", "the installed system did not come up in 30 minutes", false));
    }
    Ok(StepOutcome::Wait(POLL, "waiting for the installed system".into()))
}
