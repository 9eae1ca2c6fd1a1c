//! The engine: claims due steps with a lease, runs them, records their ends.
//!
//! Each round reads the current steps of due workflows and claims each with one conditional
//! UPDATE (`Store::step_claim`); a claimed step runs on a task of its own while a ticker renews its
//! lease (and saves its log). The end is written only if this appliance still holds the lease, in
//! one transaction with the workflow's advance, the asset's lifecycle move and the audit entries
//! (`workflow.step_start` / `workflow.step_finish` / `workflow.finish` / `workflow.fail`, which
//! become webhook events). A step found `running` under an expired lease is recovery: its
//! appliance died, and the step itself decides what that means (`exec::destructive`).

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::sync::Semaphore;

use super::exec::{self, Ctx, Failure, StepOutcome};
use super::log::StepLog;
use super::step::{Step, StepStatus, WorkflowKind, WorkflowState};
use crate::app::{App, AppState, lifecycle};
use crate::audit::{self, Event};
use crate::auth::Actor;
use crate::model::lifecycle::LifecycleEvent;
use crate::model::{AssetState, IdKind, new_id, now_rfc3339};
use crate::store::Store;
use crate::store::workflows::{StepEnd, StepRow, WorkflowRow};

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Runs until the process ends.
pub async fn run(app: App) {
    let owner = new_id(IdKind::Event).replace("evt_", "engine_");
    let w = app.config.workflows.clone();
    let slots = Arc::new(Semaphore::new(w.max_concurrent as usize));
    let lease_ms = w.lease.as_millis() as i64;
    loop {
        let free = slots.available_permits();
        let mut claimed = 0usize;
        let mut seen = 0usize;
        if free > 0 {
            match app.store.workflow_due(now_ms(), free as i64).await {
                Ok(due) => {
                    seen = due.len();
                    for step in due {
                        let now = now_ms();
                        match app.store.step_claim(&step, &owner, now, now + lease_ms, &now_rfc3339()).await {
                            Ok(true) => {
                                let Ok(permit) = slots.clone().acquire_owned().await else { return };
                                claimed += 1;
                                let (app, owner) = (app.clone(), owner.clone());
                                tokio::spawn(async move {
                                    let _permit = permit;
                                    let (wf, idx) = (step.workflow_id.clone(), step.idx);
                                    if let Err(e) = execute(&app, &owner, step).await {
                                        tracing::error!(workflow = %wf, step = idx, error = %e, "workflow step");
                                    }
                                    app.workflow_wake.notify_one();
                                });
                            }
                            Ok(false) => {}
                            Err(e) => tracing::warn!(error = %e, "claiming a workflow step"),
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "looking for due workflow steps"),
            }
        }
        // A full round may have left more due: go again at once. Otherwise sleep until woken.
        if claimed == 0 || seen < free {
            tokio::select! {
                _ = app.workflow_wake.notified() => {}
                _ = tokio::time::sleep(w.poll) => {}
            }
        }
    }
}

/// How long a step may take in all (first start to end, waits included).
fn step_deadline(app: &AppState, step: &Step) -> Duration {
    match step {
        Step::WaitForAgent => app.config.workflows.agent_timeout + Duration::from_secs(60),
        Step::Wipe { .. } | Step::WriteImage { .. } => Duration::from_secs(24 * 3600),
        Step::WaitForInstall => Duration::from_secs(45 * 60),
        // These end themselves at their configured limits, with what they last saw.
        Step::WaitForTalosInstall => app.config.talos.install_timeout + Duration::from_secs(60),
        Step::Bootstrap => app.config.talos.bootstrap_timeout + Duration::from_secs(60),
        Step::WaitForClusterNodes => Duration::from_secs(24 * 3600),
        _ => Duration::from_secs(15 * 60),
    }
}

fn backoff(attempts: i64) -> Duration {
    Duration::from_secs(1u64 << attempts.clamp(0, 6) as u32)
}

async fn execute(app: &AppState, owner: &str, seen: StepRow) -> Result<(), crate::error::Error> {
    let seen_status: StepStatus = seen.status.parse().map_err(crate::error::Error::internal)?;
    let attempts = seen.attempts + i64::from(seen_status != StepStatus::Waiting);
    let wf = app.store.workflow_get(&seen.workflow_id).await?.ok_or_else(|| crate::error::Error::internal("gone"))?;
    let steps = app.store.workflow_steps(&wf.id).await?;
    let step: Step = serde_json::from_str(&seen.step).map_err(crate::error::Error::internal)?;
    let kind: WorkflowKind = wf.kind.parse().map_err(crate::error::Error::internal)?;
    let log = StepLog::from_json(&seen.log);
    let started_at = seen.started_at.clone().unwrap_or_else(now_rfc3339);
    let mut holder = Holder { app, owner, wf: &wf, idx: seen.idx, attempts, log: &log, steps: &steps, step: &step };

    if wf.cancel_requested != 0 {
        return holder.cancel().await;
    }
    if seen_status == StepStatus::Pending {
        let _ = audit::record(
            &app.store,
            &Actor::system(),
            Event::new("workflow.step_start", "workflow", &wf.id).with_details(json!({
                "asset_id": wf.asset_id, "step": seen.idx, "type": step.kind(), "attempt": attempts,
            })),
        )
        .await;
    }
    if seen_status == StepStatus::Running {
        log.note(format!("recovering: the appliance that ran this step (attempt {}) stopped", seen.attempts));
    }

    let renew = {
        let (store, owner, wf_id, log) = (app.store.clone(), owner.to_string(), wf.id.clone(), log.clone());
        let lease = app.config.workflows.lease;
        let idx = seen.idx;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(lease / 3).await;
                let until = now_ms() + lease.as_millis() as i64;
                match store.step_renew(&wf_id, idx, &owner, attempts, until, &log.to_json()).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!(workflow = %wf_id, step = idx, "lost the lease of a running step");
                        return;
                    }
                    Err(e) => tracing::warn!(error = %e, "renewing a step lease"),
                }
            }
        })
    };
    let ctx = Ctx {
        app,
        wf: &wf,
        kind,
        steps: &steps,
        idx: seen.idx as usize,
        attempts,
        seen: seen_status,
        started_at: started_at.clone(),
        log: &log,
    };
    let outcome = exec::run(&ctx, &step).await;
    renew.abort();

    // Out of time: a poll that would go on, or a failure, past the step's deadline ends it.
    let elapsed = super::elapsed_since(&started_at);
    let outcome = match outcome {
        StepOutcome::Wait(..) if elapsed > step_deadline(app, &step) => StepOutcome::Fail(Failure::new(
            "STEP_TIMEOUT",
            format!("step {} did not finish within {} s", step.kind(), step_deadline(app, &step).as_secs()),
            false,
        )),
        other => other,
    };
    holder.record(outcome).await
}

/// A claimed step and what is needed to write its end.
struct Holder<'a> {
    app: &'a AppState,
    owner: &'a str,
    wf: &'a WorkflowRow,
    idx: i64,
    attempts: i64,
    log: &'a StepLog,
    steps: &'a [StepRow],
    step: &'a Step,
}

impl Holder<'_> {
    /// Writes the step's end (or pause) with its log, if the lease is still this engine's.
    async fn end(
        &self,
        tx: &mut sqlx::AnyConnection,
        status: StepStatus,
        result: Option<String>,
        error: Option<String>,
        finished_at: Option<&str>,
    ) -> Result<bool, crate::error::Error> {
        let log = self.log.to_json();
        let end = StepEnd { status: status.as_str(), result, error, log: &log, finished_at };
        Ok(Store::step_end(tx, &self.wf.id, self.idx, self.owner, self.attempts, &end).await?)
    }

    fn step_event(&self, status: &str, extra: serde_json::Value) -> Event<'_> {
        let mut details = json!({
            "asset_id": self.wf.asset_id, "step": self.idx, "type": self.step.kind(), "status": status,
            "attempt": self.attempts,
        });
        if let (Some(d), Some(e)) = (details.as_object_mut(), extra.as_object()) {
            d.extend(e.clone());
        }
        Event::new("workflow.step_finish", "workflow", &self.wf.id).with_details(details)
    }

    async fn record(&mut self, outcome: StepOutcome) -> Result<(), crate::error::Error> {
        let now = now_rfc3339();
        let mut tx = self.app.store.begin().await?;
        match outcome {
            StepOutcome::Done(_) | StepOutcome::Skipped(_) => {
                let (status, result) = match outcome {
                    StepOutcome::Done(r) => (StepStatus::Succeeded, r),
                    StepOutcome::Skipped(why) => {
                        self.log.note(format!("skipped: {why}"));
                        (StepStatus::Skipped, json!({"skipped": why}))
                    }
                    _ => unreachable!(),
                };
                if !self.end(&mut tx, status, Some(result.to_string()), None, Some(&now)).await? {
                    return Ok(()); // the lease went to someone else: their record counts
                }
                audit::append(&mut tx, &Actor::system(), self.step_event(status.as_str(), json!({}))).await?;
                let current = Store::workflow_get_in(&mut tx, &self.wf.id).await?;
                let cancel = current.as_ref().is_some_and(|w| w.cancel_requested != 0);
                let next = self.idx + 1;
                if next as usize >= self.steps.len() {
                    self.complete(&mut tx, &now).await?;
                } else if cancel {
                    tx.commit().await?;
                    return self.cancel_from(next).await;
                } else {
                    Store::workflow_advance(&mut tx, &self.wf.id, next, WorkflowState::Running.as_str(), 0, None, &now)
                        .await?;
                }
            }
            StepOutcome::Wait(after, note) => {
                self.log.note(note);
                if !self.end(&mut tx, StepStatus::Waiting, None, None, None).await? {
                    return Ok(());
                }
                let due = now_ms() + after.as_millis() as i64;
                Store::workflow_advance(
                    &mut tx,
                    &self.wf.id,
                    self.idx,
                    WorkflowState::Running.as_str(),
                    due,
                    None,
                    &now,
                )
                .await?;
            }
            StepOutcome::Fail(f) => {
                let error = serde_json::to_string(&f).unwrap_or_default();
                if f.retryable && self.attempts <= i64::from(self.app.config.workflows.step_retries) {
                    let wait = backoff(self.attempts);
                    self.log.note(format!(
                        "attempt {} failed ({}: {}); retrying in {} s",
                        self.attempts,
                        f.code,
                        f.message,
                        wait.as_secs()
                    ));
                    if !self.end(&mut tx, StepStatus::Pending, None, Some(error), None).await? {
                        return Ok(());
                    }
                    let due = now_ms() + wait.as_millis() as i64;
                    Store::workflow_advance(
                        &mut tx,
                        &self.wf.id,
                        self.idx,
                        WorkflowState::Running.as_str(),
                        due,
                        None,
                        &now,
                    )
                    .await?;
                } else {
                    self.log.note(format!("failed: {}: {}", f.code, f.message));
                    if !self.end(&mut tx, StepStatus::Failed, None, Some(error), Some(&now)).await? {
                        return Ok(());
                    }
                    self.fail(&mut tx, &f, &now).await?;
                }
            }
        }
        tx.commit().await?;
        self.app.workflow_wake.notify_one();
        Ok(())
    }

    async fn complete(&self, tx: &mut sqlx::AnyConnection, now: &str) -> Result<(), crate::error::Error> {
        Store::workflow_advance(tx, &self.wf.id, self.idx, WorkflowState::Succeeded.as_str(), 0, None, now).await?;
        let event = match self.wf.kind.as_str() {
            "wipe" => LifecycleEvent::WipeFinished,
            _ => LifecycleEvent::ProvisionFinished,
        };
        if let Some(asset) = Store::asset_get_in(tx, &self.wf.asset_id).await? {
            lifecycle::transition(tx, &Actor::system(), &asset, event, "workflow finished", Some(&self.wf.id)).await?;
        }
        if self.wf.kind == WorkflowKind::ClusterCreate.as_str() {
            Store::cluster_set_state(tx, &self.wf.asset_id, "ready", None, now).await?;
            cluster_event(tx, &self.wf.asset_id, "cluster.ready", json!({"workflow_id": self.wf.id})).await?;
        }
        audit::append(
            tx,
            &Actor::system(),
            Event::new("workflow.finish", "workflow", &self.wf.id)
                .with_details(json!({"asset_id": self.wf.asset_id, "kind": self.wf.kind, "state": "succeeded"})),
        )
        .await?;
        Ok(())
    }

    async fn fail(&self, tx: &mut sqlx::AnyConnection, f: &Failure, now: &str) -> Result<(), crate::error::Error> {
        let error = json!({"code": f.code, "message": f.message, "step": self.idx, "type": self.step.kind(), "details": f.details});
        Store::steps_close_rest(tx, &self.wf.id, self.idx + 1, StepStatus::Cancelled.as_str()).await?;
        Store::workflow_advance(
            tx,
            &self.wf.id,
            self.idx,
            WorkflowState::Failed.as_str(),
            0,
            Some(&error.to_string()),
            now,
        )
        .await?;
        audit::append(tx, &Actor::system(), self.step_event("failed", json!({"code": f.code, "message": f.message})))
            .await?;
        if let Some(asset) = Store::asset_get_in(tx, &self.wf.asset_id).await?
            && matches!(asset.state, AssetState::Wiping | AssetState::Provisioning)
        {
            let why = format!("workflow {} failed at {}: {}", self.wf.id, self.step.kind(), f.message);
            lifecycle::transition(
                tx,
                &Actor::system(),
                &asset,
                LifecycleEvent::WorkflowFailed,
                &why,
                Some(&self.wf.id),
            )
            .await?;
        }
        if self.wf.kind == WorkflowKind::ClusterCreate.as_str() {
            Store::cluster_set_state(tx, &self.wf.asset_id, "failed", None, now).await?;
            cluster_event(tx, &self.wf.asset_id, "cluster.fail", json!({"workflow_id": self.wf.id, "error": error}))
                .await?;
        }
        audit::append(
            tx,
            &Actor::system(),
            Event::new("workflow.fail", "workflow", &self.wf.id)
                .with_details(json!({"asset_id": self.wf.asset_id, "kind": self.wf.kind, "error": error})),
        )
        .await?;
        Ok(())
    }

    /// The claimed step is cancelled before it ran (a cancel arrived while it was due).
    async fn cancel(&mut self) -> Result<(), crate::error::Error> {
        let now = now_rfc3339();
        let mut tx = self.app.store.begin().await?;
        if !self.end(&mut tx, StepStatus::Cancelled, None, None, Some(&now)).await? {
            return Ok(());
        }
        tx.commit().await?;
        self.cancel_from(self.idx + 1).await
    }

    async fn cancel_from(&self, from: i64) -> Result<(), crate::error::Error> {
        let mut tx = self.app.store.begin().await?;
        finish_cancelled(&mut tx, self.wf, from).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Ends a workflow as cancelled: its remaining steps, its state, the asset's state (back where
/// it was if nothing destructive ran, else `failed`: its disks may be half done).
pub async fn finish_cancelled(
    tx: &mut sqlx::AnyConnection,
    wf: &WorkflowRow,
    from: i64,
) -> Result<(), crate::error::Error> {
    let now = now_rfc3339();
    Store::steps_close_rest(tx, &wf.id, from, StepStatus::Cancelled.as_str()).await?;
    Store::workflow_advance(tx, &wf.id, from, WorkflowState::Cancelled.as_str(), 0, None, &now).await?;
    let steps = Store::workflow_steps_in(tx, &wf.id).await?;
    // A Talos node that got as far as waiting for its install may have written its disk.
    let touched_disks = steps
        .iter()
        .any(|s| matches!(s.kind.as_str(), "wipe" | "write_image" | "wait_for_talos_install") && s.attempts > 0);
    let back: Option<AssetState> = if touched_disks { None } else { wf.from_state.parse().ok() };
    if let Some(asset) = Store::asset_get_in(tx, &wf.asset_id).await?
        && matches!(asset.state, AssetState::Wiping | AssetState::Provisioning)
    {
        let why = if touched_disks {
            "workflow cancelled after it started changing disks"
        } else {
            "workflow cancelled before it changed anything"
        };
        lifecycle::transition(tx, &Actor::system(), &asset, LifecycleEvent::WorkflowCancelled(back), why, Some(&wf.id))
            .await?;
    }
    if wf.kind == WorkflowKind::ClusterCreate.as_str() {
        Store::cluster_set_state(tx, &wf.asset_id, "failed", None, &now).await?;
        cluster_event(tx, &wf.asset_id, "cluster.fail", json!({"workflow_id": wf.id, "cancelled": true})).await?;
    }
    audit::append(
        tx,
        &Actor::system(),
        Event::new("workflow.finish", "workflow", &wf.id)
            .with_details(json!({"asset_id": wf.asset_id, "kind": wf.kind, "state": "cancelled"})),
    )
    .await?;
    Ok(())
}

/// A cluster's state change, in the audit log (and so on the event stream and to webhooks).
async fn cluster_event(
    tx: &mut sqlx::AnyConnection,
    cluster_id: &str,
    action: &str,
    details: serde_json::Value,
) -> Result<(), crate::error::Error> {
    audit::append(tx, &Actor::system(), Event::new(action, "cluster", cluster_id).with_details(details)).await?;
    Ok(())
}
