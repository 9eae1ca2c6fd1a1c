//! Workflows: `POST /api/v1/assets/{id}/provision` and `/wipe` (202 with the workflow), the
//! workflow list and detail, cancel, retry, the wipe certificate and its public key; the BMC
//! actions `POST /api/v1/assets/{id}/power` and `/bmc/check`; and `GET /api/v1/events`, the live
//! feed of asset and workflow events as server-sent events.

use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};

use super::{Paged, paged};
use crate::app::App;
use crate::app::workflows::{PowerRequest, PowerView, ProvisionRequest, WipeRequest, WorkflowView};
use crate::error::Error;
use crate::http::error::ErrorBody;
use crate::http::extract::{ApiJson, QueryMap, ReqActor};
use crate::model::Scope;
use crate::store::workflows::WorkflowQuery;
use crate::workflow::certificate::WipeCertificate;

#[utoipa::path(post, path = "/api/v1/assets/{id}/provision", tag = "workflows", params(("id" = String, Path)),
    request_body = ProvisionRequest,
    responses((status = 202, description = "The provision workflow, started", body = WorkflowView),
              (status = 403, description = "POLICY_DENIED", body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, description = "ASSET_BUSY, ASSET_IN_CLUSTER, ASSET_STATE", body = ErrorBody),
              (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session_cookie" = [])))]
pub async fn provision(
    State(app): State<App>,
    ReqActor(actor): ReqActor,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<ProvisionRequest>,
) -> Result<(StatusCode, Json<WorkflowView>), Error> {
    Ok((StatusCode::ACCEPTED, Json(app.asset_provision(&actor, &id, req).await?)))
}

#[utoipa::path(post, path = "/api/v1/assets/{id}/wipe", tag = "workflows", params(("id" = String, Path)),
    request_body = WipeRequest,
    responses((status = 202, description = "The wipe workflow, started", body = WorkflowView),
              (status = 403, description = "POLICY_DENIED", body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, description = "ASSET_BUSY, ASSET_IN_CLUSTER, ASSET_STATE", body = ErrorBody),
              (status = 422, description = "CONFIRMATION_REQUIRED, INVALID_FIELD", body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session_cookie" = [])))]
pub async fn wipe(
    State(app): State<App>,
    ReqActor(actor): ReqActor,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<WipeRequest>,
) -> Result<(StatusCode, Json<WorkflowView>), Error> {
    Ok((StatusCode::ACCEPTED, Json(app.asset_wipe(&actor, &id, req).await?)))
}

#[utoipa::path(get, path = "/api/v1/workflows", tag = "workflows",
    params(("asset_id" = Option<String>, Query), ("state" = Option<String>, Query), ("kind" = Option<String>, Query),
           ("page" = Option<u32>, Query), ("per_page" = Option<u32>, Query)),
    responses((status = 200, description = "Workflows, newest first", body = Paged<WorkflowView>)),
    security(("bearer" = []), ("api_key" = []), ("session_cookie" = [])))]
pub async fn list(
    State(app): State<App>,
    ReqActor(actor): ReqActor,
    q: QueryMap,
) -> Result<Json<Paged<WorkflowView>>, Error> {
    let filter = WorkflowQuery {
        asset_id: q.get("asset_id").map(str::to_string),
        state: q.get("state").map(str::to_string),
        kind: q.get("kind").map(str::to_string),
    };
    Ok(paged(app.workflow_list(&actor, filter, q.page()?).await?))
}

#[utoipa::path(get, path = "/api/v1/workflows/{id}", tag = "workflows", params(("id" = String, Path)),
    responses((status = 200, body = WorkflowView), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session_cookie" = [])))]
pub async fn get(
    State(app): State<App>,
    ReqActor(actor): ReqActor,
    Path(id): Path<String>,
) -> Result<Json<WorkflowView>, Error> {
    Ok(Json(app.workflow_get(&actor, &id).await?))
}

#[utoipa::path(post, path = "/api/v1/workflows/{id}/cancel", tag = "workflows", params(("id" = String, Path)),
    responses((status = 200, description = "Cancelled, or cancelling when its running step ends", body = WorkflowView),
              (status = 404, body = ErrorBody), (status = 409, description = "WORKFLOW_FINISHED", body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session_cookie" = [])))]
pub async fn cancel(
    State(app): State<App>,
    ReqActor(actor): ReqActor,
    Path(id): Path<String>,
) -> Result<Json<WorkflowView>, Error> {
    Ok(Json(app.workflow_cancel(&actor, &id).await?))
}

#[utoipa::path(post, path = "/api/v1/workflows/{id}/retry", tag = "workflows", params(("id" = String, Path)),
    responses((status = 200, description = "Running again from its failed step", body = WorkflowView),
              (status = 404, body = ErrorBody), (status = 409, description = "WORKFLOW_NOT_FAILED, ASSET_BUSY", body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session_cookie" = [])))]
pub async fn retry(
    State(app): State<App>,
    ReqActor(actor): ReqActor,
    Path(id): Path<String>,
) -> Result<Json<WorkflowView>, Error> {
    Ok(Json(app.workflow_retry(&actor, &id).await?))
}

#[utoipa::path(get, path = "/api/v1/workflows/{id}/certificate", tag = "workflows", params(("id" = String, Path)),
    responses((status = 200, description = "The signed wipe certificate (verify with the public key)", body = WipeCertificate),
              (status = 404, description = "WORKFLOW_NOT_FOUND, CERTIFICATE_NOT_FOUND", body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session_cookie" = [])))]
pub async fn certificate(
    State(app): State<App>,
    ReqActor(actor): ReqActor,
    Path(id): Path<String>,
) -> Result<Response, Error> {
    let cert = app.workflow_certificate(&actor, &id).await?;
    let disposition = format!("attachment; filename=\"wipe-certificate-{id}.json\"");
    Ok(([(header::CONTENT_DISPOSITION, disposition)], Json(cert)).into_response())
}

#[utoipa::path(get, path = "/api/v1/wipe-certificates/public-key", tag = "workflows",
    responses((status = 200, content_type = "application/x-pem-file",
               description = "The Ed25519 public key wipe certificates are signed with (PEM SubjectPublicKeyInfo)")),
    security(("bearer" = []), ("api_key" = []), ("session_cookie" = [])))]
pub async fn certificate_key(State(app): State<App>, ReqActor(actor): ReqActor) -> Result<Response, Error> {
    let pem = app.certificate_public_key(&actor)?;
    Ok(([(header::CONTENT_TYPE, "application/x-pem-file")], pem).into_response())
}

#[utoipa::path(post, path = "/api/v1/assets/{id}/power", tag = "workflows", params(("id" = String, Path)),
    request_body = PowerRequest,
    responses((status = 200, body = PowerView), (status = 403, description = "POLICY_DENIED", body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, description = "NO_BMC, ASSET_BUSY", body = ErrorBody),
              (status = 502, description = "BMC_UNREACHABLE, BMC_AUTH_FAILED, BMC_COMMAND_FAILED", body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session_cookie" = [])))]
pub async fn power(
    State(app): State<App>,
    ReqActor(actor): ReqActor,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<PowerRequest>,
) -> Result<Json<PowerView>, Error> {
    Ok(Json(app.asset_power(&actor, &id, req).await?))
}

#[utoipa::path(post, path = "/api/v1/assets/{id}/bmc/check", tag = "workflows", params(("id" = String, Path)),
    responses((status = 200, description = "Logged in; the power state", body = PowerView),
              (status = 404, body = ErrorBody), (status = 409, description = "NO_BMC", body = ErrorBody),
              (status = 502, description = "BMC_UNREACHABLE, BMC_AUTH_FAILED", body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session_cookie" = [])))]
pub async fn bmc_check(
    State(app): State<App>,
    ReqActor(actor): ReqActor,
    Path(id): Path<String>,
) -> Result<Json<PowerView>, Error> {
    Ok(Json(app.asset_bmc_check(&actor, &id).await?))
}

#[utoipa::path(get, path = "/api/v1/events", tag = "workflows",
    params(("since" = Option<i64>, Query, description = "Replay events after this sequence number (else only new ones)")),
    responses((status = 200, content_type = "text/event-stream",
               description = "Server-sent events: `event:` the event name (`workflow.step_finished`, `asset.state_changed`, …), `id:` its sequence number, `data:` the audit entry as JSON")),
    security(("bearer" = []), ("api_key" = []), ("session_cookie" = [])))]
pub async fn events(
    State(app): State<App>,
    ReqActor(actor): ReqActor,
    headers: HeaderMap,
    q: QueryMap,
) -> Result<Response, Error> {
    actor.require(Scope::WorkflowsRead)?;
    // Without audit:read only the lifecycle's events: assets and workflows.
    let everything = actor.require(Scope::AuditRead).is_ok();
    let resume = headers.get("last-event-id").and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<i64>().ok());
    let mut after = match (q.parse::<i64>("since")?, resume) {
        (_, Some(id)) | (Some(id), None) => id,
        (None, None) => app.store.audit_head_seq().await?,
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<SseEvent, Infallible>>(256);
    tokio::spawn(async move {
        loop {
            let rows = match app.store.audit_after(after, 200).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(error = %e, "event stream: reading the audit log");
                    Vec::new()
                }
            };
            let full = rows.len() == 200;
            for r in rows {
                after = r.seq;
                if r.outcome != "success" {
                    continue;
                }
                let Some(name) = crate::webhooks::event_name(&r.action) else { continue };
                if !(everything || name.starts_with("asset.") || name.starts_with("workflow.")) {
                    continue;
                }
                let data = serde_json::json!({
                    "event": name, "seq": r.seq, "at": r.ts, "action": r.action,
                    "target": {"type": r.target_type, "id": r.target_id},
                    "actor": {"type": r.actor_type, "id": r.actor_id, "name": r.actor_name},
                    "details": serde_json::from_str::<serde_json::Value>(&r.details).unwrap_or_default(),
                });
                let ev = SseEvent::default().event(name).id(r.seq.to_string()).data(data.to_string());
                if tx.send(Ok(ev)).await.is_err() {
                    return; // the client went away
                }
            }
            if !full {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    });
    let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))).into_response())
}
