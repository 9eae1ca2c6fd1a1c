//! Workflows through the API: `provision` and `wipe` (202 with the workflow), list and read,
//! cancel, retry from the failed step, the wipe certificate; and the BMC actions an operator
//! takes by hand (`power`, `bmc/check`). Guards run in this order: permission, the asset, the
//! body, the policy guard, `confirm`, cluster membership, busy.

use std::time::{Duration, Instant};

use ironbay_wire::command::WipeMethod;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::assets::{asset_not_found, policy_subject};
use super::{AppState, Page, PageRequest, lifecycle};
use crate::audit::{self, Event};
use crate::auth::Actor;
use crate::bmc::{self, BmcError, BmcSettings, BmcTarget, PowerAction, PowerState};
use crate::error::{Error, Result};
use crate::model::lifecycle::LifecycleEvent;
use crate::model::{AssetState, IdKind, Scope, ids, new_id, now_rfc3339};
use crate::policy::{Action, GuardSubject};
use crate::store::Store;
use crate::store::assets::AssetRow;
use crate::store::workflows::{StepRow, WorkflowQuery, WorkflowRow};
use crate::workflow::certificate::WipeCertificate;
use crate::workflow::{DiskHint, ImageSource, Step, StepStatus, WorkflowKind, WorkflowState, plan};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImageRequest {
    /// An http:// URL the agent can download (raw, or gzip/zstd/xz compressed).
    #[serde(default)]
    pub url: Option<String>,
    /// An image of the registry (`/api/v1/images`).
    #[serde(default)]
    pub image_id: Option<String>,
    /// SHA-256 of the image as written to disk (decompressed). Required with `url`.
    #[serde(default)]
    pub sha256: Option<String>,
}

/// `"auto"` or exactly one of `{"serial"}`, `{"wwn"}`, `{"path"}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum DiskRequest {
    Word(String),
    Named {
        #[serde(default)]
        serial: Option<String>,
        #[serde(default)]
        wwn: Option<String>,
        #[serde(default)]
        path: Option<String>,
    },
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProvisionRequest {
    pub image: ImageRequest,
    /// Default `auto`.
    #[serde(default)]
    pub disk: Option<DiskRequest>,
    /// Wipe every disk first with this method (quick, discard, zero, secure).
    #[serde(default)]
    pub wipe: Option<String>,
    /// The asset's hostname or id; required when the asset is already provisioned.
    #[serde(default)]
    pub confirm: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WipeRequest {
    /// quick (default), discard, zero or secure.
    #[serde(default)]
    pub method: Option<String>,
    /// The asset's hostname or id.
    #[serde(default)]
    pub confirm: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PowerRequest {
    /// on, off, soft (ACPI shutdown), cycle or reset.
    pub action: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PowerView {
    pub asset_id: String,
    pub action: Option<String>,
    /// The power state the BMC reports afterwards.
    #[schema(value_type = Option<String>)]
    pub power: Option<PowerState>,
    pub bmc: String,
    pub latency_ms: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StepView {
    pub index: i64,
    #[serde(rename = "type")]
    pub kind: String,
    pub step: Step,
    pub status: StepStatus,
    pub attempts: i64,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    #[schema(value_type = Object)]
    pub result: Option<Value>,
    #[schema(value_type = Object)]
    pub error: Option<Value>,
    /// The latest lines (agent progress and engine notes), at most 200.
    #[schema(value_type = Vec<Object>)]
    pub log: Value,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WorkflowView {
    pub id: String,
    pub asset_id: String,
    pub kind: WorkflowKind,
    pub state: WorkflowState,
    pub current_step: i64,
    #[schema(value_type = Object)]
    pub params: Value,
    #[schema(value_type = Object)]
    pub error: Option<Value>,
    pub cancel_requested: bool,
    /// Whether `GET /api/v1/workflows/{id}/certificate` has a wipe certificate.
    pub certificate_available: bool,
    pub created_by: String,
    pub created_at: String,
    pub updated_at: String,
    pub finished_at: Option<String>,
    pub steps: Vec<StepView>,
}

fn parse_json(text: Option<&str>) -> Option<Value> {
    text.and_then(|t| serde_json::from_str(t).ok())
}

pub(crate) fn view(w: WorkflowRow, steps: Vec<StepRow>) -> WorkflowView {
    WorkflowView {
        kind: w.kind.parse().unwrap_or(WorkflowKind::Wipe),
        state: w.state.parse().unwrap_or(WorkflowState::Failed),
        params: parse_json(Some(&w.params)).unwrap_or(Value::Null),
        error: parse_json(w.error.as_deref()),
        cancel_requested: w.cancel_requested != 0,
        certificate_available: w.certificate.is_some(),
        steps: steps
            .into_iter()
            .map(|s| StepView {
                index: s.idx,
                step: serde_json::from_str(&s.step).unwrap_or(Step::Inventory),
                status: s.status.parse().unwrap_or(StepStatus::Failed),
                attempts: s.attempts,
                result: parse_json(s.result.as_deref()),
                error: parse_json(s.error.as_deref()),
                log: parse_json(Some(&s.log)).unwrap_or(json!([])),
                started_at: s.started_at,
                finished_at: s.finished_at,
                kind: s.kind,
            })
            .collect(),
        id: w.id,
        asset_id: w.asset_id,
        current_step: w.current_step,
        created_by: w.created_by,
        created_at: w.created_at,
        updated_at: w.updated_at,
        finished_at: w.finished_at,
    }
}

/// Writes a new workflow and its pending steps (in the caller's transaction; the caller moves
/// the subject's state and audits). `subject` is the asset, or for a cluster workflow the cluster.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn insert_workflow_in(
    tx: &mut sqlx::AnyConnection,
    actor: &Actor,
    id: &str,
    subject: &str,
    from_state: &str,
    kind: WorkflowKind,
    params: &Value,
    steps: &[Step],
) -> std::result::Result<(WorkflowRow, Vec<StepRow>), sqlx::Error> {
    let now = now_rfc3339();
    let row = WorkflowRow {
        id: id.to_string(),
        asset_id: subject.to_string(),
        kind: kind.as_str().into(),
        state: WorkflowState::Pending.as_str().into(),
        params: params.to_string(),
        current_step: 0,
        from_state: from_state.into(),
        created_by: format!("{}:{}", actor.kind(), actor.name().unwrap_or("-")),
        error: None,
        certificate: None,
        cancel_requested: 0,
        next_run_at: 0,
        created_at: now.clone(),
        updated_at: now,
        finished_at: None,
    };
    let step_rows: Vec<StepRow> = steps
        .iter()
        .enumerate()
        .map(|(i, s)| StepRow {
            workflow_id: id.to_string(),
            idx: i as i64,
            kind: s.kind().into(),
            step: serde_json::to_string(s).unwrap_or_default(),
            status: StepStatus::Pending.as_str().into(),
            attempts: 0,
            started_at: None,
            finished_at: None,
            log: "[]".into(),
            result: None,
            error: None,
            lease_owner: None,
            lease_until: None,
        })
        .collect();
    Store::workflow_insert(tx, &row, &step_rows).await?;
    Ok((row, step_rows))
}

pub(crate) fn workflow_not_found(id: &str) -> Error {
    Error::not_found("WORKFLOW_NOT_FOUND", format!("Workflow {id} not found"))
}

fn check_confirm(asset: &AssetRow, confirm: Option<&str>, what: &str) -> Result<()> {
    let named = confirm.map(str::trim);
    if named == Some(asset.id.as_str()) || named == Some(asset.hostname.as_str()) {
        return Ok(());
    }
    Err(Error::Unprocessable {
        code: "CONFIRMATION_REQUIRED",
        message: format!("`confirm` must name the asset ({} or {}) to {what} it", asset.hostname, asset.id),
        details: Some(json!({"field": "confirm", "expected": [asset.hostname, asset.id]})),
    })
}

fn parse_method(field: &str, m: &str) -> Result<WipeMethod> {
    m.parse().map_err(|e: String| Error::invalid_field(field, e))
}

fn parse_sha256(s: &str) -> Result<String> {
    let s = s.trim().to_ascii_lowercase();
    if s.len() != 64 || !s.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(Error::invalid_field("image.sha256", "`sha256` must be 64 hex digits"));
    }
    Ok(s)
}

fn parse_disk(d: Option<DiskRequest>) -> Result<DiskHint> {
    let bad = |m: &str| Error::invalid_field("disk", m.to_string());
    let clean = |v: String| -> Result<String> {
        let v = v.trim().to_string();
        if v.is_empty() || v.len() > 256 || v.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("a disk identifier is 1-256 characters without spaces"));
        }
        Ok(v)
    };
    Ok(match d {
        None => DiskHint::Auto,
        Some(DiskRequest::Word(w)) if w == "auto" => DiskHint::Auto,
        Some(DiskRequest::Word(_)) => return Err(bad("`disk` is \"auto\" or {\"serial\"|\"wwn\"|\"path\": ...}")),
        Some(DiskRequest::Named { serial, wwn, path }) => match (serial, wwn, path) {
            (Some(s), None, None) => DiskHint::Serial(clean(s)?),
            (None, Some(w), None) => DiskHint::Wwn(clean(w)?),
            (None, None, Some(p)) => {
                let p = clean(p)?;
                if p.contains("..") {
                    return Err(bad("a disk path names a device such as /dev/sda"));
                }
                DiskHint::Path(p)
            }
            _ => return Err(bad("name the disk by exactly one of `serial`, `wwn` or `path`")),
        },
    })
}

fn bmc_error(e: BmcError) -> Error {
    let details = Some(json!({"retryable": e.retryable()}));
    match e {
        BmcError::Unsupported { .. } => Error::Conflict { code: e.code(), message: e.to_string(), details },
        _ => Error::Upstream { code: e.code(), message: e.to_string(), details },
    }
}

impl AppState {
    /// The asset, or 404; and its active workflow must not exist.
    async fn asset_for_work(&self, asset_id: &str) -> Result<AssetRow> {
        if !ids::looks_like(IdKind::Asset, asset_id) {
            return Err(asset_not_found(asset_id));
        }
        self.store.asset_get(asset_id).await?.ok_or_else(|| asset_not_found(asset_id))
    }

    async fn refuse_cluster_member(&self, asset: &AssetRow, what: &str) -> Result<()> {
        if let Some(cluster) = self.store.asset_cluster(&asset.id).await? {
            return Err(Error::conflict(
                "ASSET_IN_CLUSTER",
                format!(
                    "asset {} is a member of cluster {cluster}: remove it from the cluster before {what}",
                    asset.id
                ),
                Some(json!({"cluster_id": cluster})),
            ));
        }
        Ok(())
    }

    fn busy(asset: &AssetRow, active: Option<&WorkflowRow>) -> Error {
        Error::conflict(
            "ASSET_BUSY",
            match active {
                Some(w) => format!("asset {} is busy: workflow {} ({}) is {}", asset.id, w.id, w.kind, w.state),
                None => format!("asset {} is {}: wait for its workflow to finish or cancel it", asset.id, asset.state),
            },
            Some(json!({"workflow_id": active.map(|w| w.id.clone()), "state": asset.state})),
        )
    }

    /// Where the image comes from, checked before anything changes: a registry image must be
    /// ready; a URL must be http:// and answer (a 404 now is a clear error, not a failed step
    /// half an hour later).
    async fn resolve_image(&self, req: ImageRequest) -> Result<ImageSource> {
        match (req.url, req.image_id) {
            (Some(_), Some(_)) => Err(Error::invalid_field("image", "give `image.url` or `image.image_id`, not both")),
            (None, None) => Err(Error::invalid_field("image", "`image.url` or `image.image_id` is required")),
            (None, Some(id)) => {
                let img = self.image_for_workflow(&id).await?;
                if let Some(s) = &req.sha256
                    && parse_sha256(s)? != img.sha256
                {
                    return Err(Error::Unprocessable {
                        code: "SHA256_MISMATCH",
                        message: format!("image {id} has SHA-256 {}, not the one given", img.sha256),
                        details: Some(json!({"field": "image.sha256"})),
                    });
                }
                Ok(ImageSource {
                    url: img.url,
                    library_path: img.library_path,
                    image_id: Some(id),
                    sha256: img.sha256,
                    size_bytes: img.size_bytes.and_then(|n| u64::try_from(n).ok()),
                })
            }
            (Some(url), None) => {
                let sha256 =
                    parse_sha256(req.sha256.as_deref().ok_or_else(|| {
                        Error::invalid_field("image.sha256", "`image.sha256` is required with a URL")
                    })?)?;
                let url = url.trim().to_string();
                if !url.starts_with("http://")
                    || url.len() > 2048
                    || url.chars().any(|c| c.is_whitespace() || c.is_control())
                {
                    return Err(Error::invalid_field(
                        "image.url",
                        "the agent downloads images over http://: a URL without spaces, at most 2048 characters",
                    ));
                }
                let size = probe_url(&url).await?;
                Ok(ImageSource { url: Some(url), library_path: None, image_id: None, sha256, size_bytes: size })
            }
        }
    }

    /// `POST /api/v1/assets/{id}/provision`.
    pub async fn asset_provision(&self, actor: &Actor, asset_id: &str, req: ProvisionRequest) -> Result<WorkflowView> {
        actor.require(Scope::AssetsWrite)?;
        let asset = self.asset_for_work(asset_id).await?;
        let disk = parse_disk(req.disk)?;
        let wipe = req.wipe.as_deref().map(|m| parse_method("wipe", m)).transpose()?;
        self.guard(actor, Action::Provision, GuardSubject::Asset(policy_subject(&asset))).await?;
        if asset.state == AssetState::Provisioned || req.confirm.is_some() {
            check_confirm(&asset, req.confirm.as_deref(), "re-provision")?;
        }
        self.refuse_cluster_member(&asset, "re-provisioning it").await?;
        let image = self.resolve_image(req.image).await?;
        let params = json!({"image": image, "disk": disk, "wipe": wipe.map(WipeMethod::as_str)});
        let steps = plan::provision(image, wipe);
        self.start_workflow(actor, &asset, WorkflowKind::Provision, params, steps).await
    }

    /// `POST /api/v1/assets/{id}/wipe`.
    pub async fn asset_wipe(&self, actor: &Actor, asset_id: &str, req: WipeRequest) -> Result<WorkflowView> {
        actor.require(Scope::AssetsWrite)?;
        let asset = self.asset_for_work(asset_id).await?;
        let method = parse_method("method", req.method.as_deref().unwrap_or("quick"))?;
        self.guard(actor, Action::Wipe, GuardSubject::Asset(policy_subject(&asset))).await?;
        check_confirm(&asset, req.confirm.as_deref(), "wipe")?;
        self.refuse_cluster_member(&asset, "wiping it").await?;
        let params = json!({"method": method.as_str()});
        self.start_workflow(actor, &asset, WorkflowKind::Wipe, params, plan::wipe(method)).await
    }

    async fn start_workflow(
        &self,
        actor: &Actor,
        seen: &AssetRow,
        kind: WorkflowKind,
        params: Value,
        steps: Vec<Step>,
    ) -> Result<WorkflowView> {
        let id = new_id(IdKind::Workflow);
        let mut tx = self.store.begin().await?;
        let asset = Store::asset_get_in(&mut tx, &seen.id).await?.ok_or_else(|| asset_not_found(&seen.id))?;
        if let Some(active) = Store::workflow_active_for(&mut tx, &asset.id).await? {
            return Err(Self::busy(&asset, Some(&active)));
        }
        if matches!(asset.state, AssetState::Wiping | AssetState::Provisioning) {
            return Err(Self::busy(&asset, None));
        }
        let (row, step_rows) =
            insert_workflow_in(&mut tx, actor, &id, &asset.id, asset.state.as_str(), kind, &params, &steps)
                .await
                .map_err(|e| {
                    if crate::store::is_unique_violation(&e, "workflows") { Self::busy(&asset, None) } else { e.into() }
                })?;
        let event = match kind {
            WorkflowKind::Wipe => LifecycleEvent::WipeStarted,
            _ => LifecycleEvent::ProvisionStarted,
        };
        lifecycle::transition(&mut tx, actor, &asset, event, &format!("{kind} workflow {id} started"), Some(&id))
            .await?;
        audit::append(
            &mut tx,
            actor,
            Event::new("workflow.create", "workflow", &id).with_details(json!({
                "asset_id": asset.id, "hostname": asset.hostname, "kind": kind, "params": params,
                "steps": steps.iter().map(Step::kind).collect::<Vec<_>>(),
            })),
        )
        .await?;
        tx.commit().await?;
        self.workflow_wake.notify_one();
        Ok(view(row, step_rows))
    }

    pub async fn workflow_get(&self, actor: &Actor, id: &str) -> Result<WorkflowView> {
        actor.require(Scope::WorkflowsRead)?;
        let (w, steps) = self.workflow_rows(id).await?;
        Ok(view(w, steps))
    }

    async fn workflow_rows(&self, id: &str) -> Result<(WorkflowRow, Vec<StepRow>)> {
        if !ids::looks_like(IdKind::Workflow, id) {
            return Err(workflow_not_found(id));
        }
        let w = self.store.workflow_get(id).await?.ok_or_else(|| workflow_not_found(id))?;
        let steps = self.store.workflow_steps(id).await?;
        Ok((w, steps))
    }

    pub async fn workflow_list(
        &self,
        actor: &Actor,
        q: WorkflowQuery,
        page: PageRequest,
    ) -> Result<Page<WorkflowView>> {
        actor.require(Scope::WorkflowsRead)?;
        if let Some(s) = &q.state {
            s.parse::<WorkflowState>().map_err(|e| Error::bad_request("INVALID_QUERY", format!("state: {e}")))?;
        }
        if let Some(k) = &q.kind {
            k.parse::<WorkflowKind>().map_err(|e| Error::bad_request("INVALID_QUERY", format!("kind: {e}")))?;
        }
        let (rows, total) = self.store.workflow_list(&q, page.limit(), page.offset()).await?;
        let ids: Vec<String> = rows.iter().map(|w| w.id.clone()).collect();
        let mut steps: std::collections::HashMap<String, Vec<StepRow>> = std::collections::HashMap::new();
        for s in self.store.workflow_steps_of(&ids).await? {
            steps.entry(s.workflow_id.clone()).or_default().push(s);
        }
        let items = rows
            .into_iter()
            .map(|w| {
                let own = steps.remove(&w.id).unwrap_or_default();
                view(w, own)
            })
            .collect();
        Ok(Page { items, page, total })
    }

    /// Cancels a workflow: at once if its current step is not running, else when that step ends
    /// (a wipe is not cut off half way). The asset goes back to its state if nothing destructive
    /// ran, else to `failed`.
    pub async fn workflow_cancel(&self, actor: &Actor, id: &str) -> Result<WorkflowView> {
        actor.require(Scope::AssetsWrite)?;
        let (w, _) = self.workflow_rows(id).await?;
        let mut tx = self.store.begin().await?;
        let w = Store::workflow_get_in(&mut tx, &w.id).await?.ok_or_else(|| workflow_not_found(id))?;
        let state: WorkflowState = w.state.parse().map_err(Error::internal)?;
        if !state.is_active() {
            return Err(Error::conflict(
                "WORKFLOW_FINISHED",
                format!("workflow {id} is {state}: nothing to cancel"),
                Some(json!({"state": state})),
            ));
        }
        let steps = Store::workflow_steps_in(&mut tx, &w.id).await?;
        let current = steps.iter().find(|s| s.idx == w.current_step);
        let now = now_rfc3339();
        let running_now = current.is_some_and(|s| {
            s.status == "running" && s.lease_until.is_some_and(|u| u > crate::workflow::engine::now_ms())
        });
        Store::workflow_request_cancel(&mut tx, &w.id, &now).await?;
        audit::append(
            &mut tx,
            actor,
            Event::new("workflow.cancel", "workflow", &w.id)
                .with_details(json!({"asset_id": w.asset_id, "kind": w.kind, "at_step": w.current_step})),
        )
        .await?;
        if !running_now {
            crate::workflow::engine::finish_cancelled(&mut tx, &w, w.current_step).await?;
        }
        tx.commit().await?;
        self.workflow_wake.notify_one();
        let (w, steps) = self.workflow_rows(id).await?;
        Ok(view(w, steps))
    }

    /// Resumes a failed workflow from its failed step (which runs again: this is the explicit
    /// retry a destructive step whose outcome was unknown waits for).
    pub async fn workflow_retry(&self, actor: &Actor, id: &str) -> Result<WorkflowView> {
        // Every retry needs assets:write (a cluster's workflow drives assets too); a cluster's
        // also clusters:write (below).
        actor.require(Scope::AssetsWrite)?;
        let (w, _) = self.workflow_rows(id).await?;
        let kind: WorkflowKind = w.kind.parse().map_err(Error::internal)?;
        if kind == WorkflowKind::ClusterCreate {
            return self.cluster_workflow_retry(actor, w).await;
        }
        let asset = self.store.asset_get(&w.asset_id).await?.ok_or_else(|| asset_not_found(&w.asset_id))?;
        let action = if kind == WorkflowKind::Wipe { Action::Wipe } else { Action::Provision };
        self.guard(actor, action, GuardSubject::Asset(policy_subject(&asset))).await?;
        let mut tx = self.store.begin().await?;
        let w = Store::workflow_get_in(&mut tx, &w.id).await?.ok_or_else(|| workflow_not_found(id))?;
        if w.state != WorkflowState::Failed.as_str() {
            return Err(Error::conflict(
                "WORKFLOW_NOT_FAILED",
                format!("workflow {id} is {}: only a failed workflow can be retried", w.state),
                Some(json!({"state": w.state})),
            ));
        }
        let asset = Store::asset_get_in(&mut tx, &w.asset_id).await?.ok_or_else(|| asset_not_found(&w.asset_id))?;
        if let Some(active) = Store::workflow_active_for(&mut tx, &asset.id).await? {
            return Err(Self::busy(&asset, Some(&active)));
        }
        let now = now_rfc3339();
        if !Store::workflow_retry(&mut tx, &w.id, w.current_step, &now).await? {
            return Err(Error::conflict("WORKFLOW_CHANGED", "the workflow changed meanwhile: retry", None));
        }
        let to = if kind == WorkflowKind::Wipe { AssetState::Wiping } else { AssetState::Provisioning };
        lifecycle::transition(
            &mut tx,
            actor,
            &asset,
            LifecycleEvent::WorkflowRetried(to),
            &format!("workflow {} retried from step {}", w.id, w.current_step),
            Some(&w.id),
        )
        .await?;
        audit::append(
            &mut tx,
            actor,
            Event::new("workflow.retry", "workflow", &w.id)
                .with_details(json!({"asset_id": w.asset_id, "kind": w.kind, "from_step": w.current_step})),
        )
        .await?;
        tx.commit().await?;
        self.workflow_wake.notify_one();
        let (w, steps) = self.workflow_rows(id).await?;
        Ok(view(w, steps))
    }

    /// Retrying a cluster workflow (its subject is the cluster): the cluster is `creating` again.
    async fn cluster_workflow_retry(&self, actor: &Actor, w: WorkflowRow) -> Result<WorkflowView> {
        actor.require(Scope::ClustersWrite)?;
        let mut tx = self.store.begin().await?;
        let w = Store::workflow_get_in(&mut tx, &w.id).await?.ok_or_else(|| workflow_not_found(&w.id))?;
        if w.state != WorkflowState::Failed.as_str() {
            return Err(Error::conflict(
                "WORKFLOW_NOT_FAILED",
                format!("workflow {} is {}: only a failed workflow can be retried", w.id, w.state),
                Some(json!({"state": w.state})),
            ));
        }
        let now = now_rfc3339();
        if !Store::workflow_retry(&mut tx, &w.id, w.current_step, &now).await? {
            return Err(Error::conflict("WORKFLOW_CHANGED", "the workflow changed meanwhile: retry", None));
        }
        Store::cluster_set_state(&mut tx, &w.asset_id, "creating", Some("pending"), &now).await?;
        audit::append(
            &mut tx,
            actor,
            Event::new("workflow.retry", "workflow", &w.id)
                .with_details(json!({"cluster_id": w.asset_id, "kind": w.kind, "from_step": w.current_step})),
        )
        .await?;
        tx.commit().await?;
        self.workflow_wake.notify_one();
        let (w, steps) = self.workflow_rows(&w.id).await?;
        Ok(view(w, steps))
    }

    pub async fn workflow_certificate(&self, actor: &Actor, id: &str) -> Result<WipeCertificate> {
        actor.require(Scope::WorkflowsRead)?;
        let (w, _) = self.workflow_rows(id).await?;
        let text = w.certificate.ok_or_else(|| {
            Error::not_found("CERTIFICATE_NOT_FOUND", format!("workflow {id} has no finished wipe (yet)"))
        })?;
        serde_json::from_str(&text).map_err(Error::internal)
    }

    pub fn certificate_public_key(&self, actor: &Actor) -> Result<String> {
        actor.require(Scope::WorkflowsRead)?;
        Ok(self.certificate_key.public_pem())
    }

    /// Where and how to reach the asset's BMC (its password unsealed), if it has one.
    pub(crate) fn bmc_target(&self, asset: &AssetRow) -> Result<Option<BmcTarget>> {
        let (Some(b), Some(password)) = (&asset.bmc, self.asset_bmc_password(asset)?) else { return Ok(None) };
        Ok(Some(BmcTarget {
            kind: b.driver,
            address: b.address.clone(),
            port: b.port,
            username: b.username.clone(),
            password,
            cipher_suite: self.config.workflows.bmc_cipher_suite,
        }))
    }

    pub(crate) fn bmc_driver(&self, t: &BmcTarget) -> std::sync::Arc<dyn bmc::Bmc> {
        let w = &self.config.workflows;
        bmc::driver(t.kind, BmcSettings { timeout: w.bmc_timeout, retries: w.bmc_retries })
    }

    fn bmc_of(&self, asset: &AssetRow) -> Result<BmcTarget> {
        self.bmc_target(asset)?.ok_or_else(|| {
            Error::conflict("NO_BMC", format!("asset {} has no BMC credentials: add `bmc` to it first", asset.id), None)
        })
    }

    /// `POST /api/v1/assets/{id}/bmc/check`: logs in and reads the power state.
    pub async fn asset_bmc_check(&self, actor: &Actor, asset_id: &str) -> Result<PowerView> {
        actor.require(Scope::AssetsRead)?;
        let asset = self.asset_for_work(asset_id).await?;
        let target = self.bmc_of(&asset)?;
        let t0 = Instant::now();
        let power = self.bmc_driver(&target).power_status(&target).await.map_err(bmc_error)?;
        Ok(PowerView {
            asset_id: asset.id,
            action: None,
            power: Some(power),
            bmc: target.address,
            latency_ms: t0.elapsed().as_millis() as u64,
        })
    }

    /// `POST /api/v1/assets/{id}/power`: an operator's power action, policy-guarded and audited;
    /// refused while a workflow drives the machine.
    pub async fn asset_power(&self, actor: &Actor, asset_id: &str, req: PowerRequest) -> Result<PowerView> {
        actor.require(Scope::AssetsWrite)?;
        let asset = self.asset_for_work(asset_id).await?;
        let action: PowerAction = req.action.trim().parse().map_err(|_| {
            Error::invalid_field(
                "action",
                format!("`{}` is not a power action (on, off, soft, cycle, reset)", req.action),
            )
        })?;
        self.guard(actor, Action::Power, GuardSubject::Asset(policy_subject(&asset))).await?;
        let mut conn = self.store.pool().acquire().await?;
        if let Some(active) = Store::workflow_active_for(&mut conn, &asset.id).await? {
            return Err(Self::busy(&asset, Some(&active)));
        }
        drop(conn);
        let target = self.bmc_of(&asset)?;
        let driver = self.bmc_driver(&target);
        let t0 = Instant::now();
        let done = driver.power(&target, action).await;
        let outcome = match &done {
            Ok(()) => json!({"result": "ok"}),
            Err(e) => json!({"result": "error", "code": e.code(), "message": e.to_string()}),
        };
        audit::record(
            &self.store,
            actor,
            Event::new("asset.power", "asset", &asset.id)
                .with_details(json!({"action": action.as_str(), "bmc": target.address, "outcome": outcome})),
        )
        .await?;
        done.map_err(bmc_error)?;
        let latency_ms = t0.elapsed().as_millis() as u64;
        // Soft and cycle take their time; the state read now is what the BMC says now.
        let power =
            tokio::time::timeout(Duration::from_secs(5), driver.power_status(&target)).await.ok().and_then(|r| r.ok());
        Ok(PowerView {
            asset_id: asset.id,
            action: Some(action.as_str().into()),
            power,
            bmc: target.address,
            latency_ms,
        })
    }
}

/// Asks the image server about `url` (HEAD, else a one-byte GET): a 404 or an unreachable
/// server is refused now. Returns the size when it is the image's own (uncompressed) size.
async fn probe_url(url: &str) -> Result<Option<u64>> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::limited(5))
        .build()
        .map_err(Error::internal)?;
    let unreachable = |e: reqwest::Error| Error::Unprocessable {
        code: "IMAGE_URL_UNREACHABLE",
        message: format!("the image URL does not answer: {e}"),
        details: Some(json!({"field": "image.url"})),
    };
    let mut resp = client.head(url).send().await.map_err(unreachable)?;
    if resp.status() == reqwest::StatusCode::METHOD_NOT_ALLOWED {
        resp = client.get(url).header("Range", "bytes=0-0").send().await.map_err(unreachable)?;
    }
    let status = resp.status();
    if !status.is_success() {
        let code = if status == reqwest::StatusCode::NOT_FOUND || status == reqwest::StatusCode::GONE {
            "IMAGE_URL_NOT_FOUND"
        } else {
            "IMAGE_URL_ERROR"
        };
        return Err(Error::Unprocessable {
            code,
            message: format!("the image URL answers {status}"),
            details: Some(json!({"field": "image.url", "status": status.as_u16()})),
        });
    }
    let compressed = [".gz", ".zst", ".xz"].iter().any(|s| url.ends_with(s));
    Ok(if compressed || status == reqwest::StatusCode::PARTIAL_CONTENT { None } else { resp.content_length() })
}
