//! The agent on an asset: `GET /api/v1/assets/{id}/agent`, its inventory and hardware changes,
//! commands run on it (`POST …/agent/commands`, answered as a live NDJSON stream of the agent's
//! progress lines ending with its result line) and the admin rescue shell.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::{Paged, paged};
use crate::app::App;
use crate::app::agents::{AgentView, CommandRequest, InventoryChangeView, InventoryView, RescueRequest};
use crate::error::Error;
use crate::http::error::ErrorBody;
use crate::http::extract::{ApiJson, QueryMap, ReqActor};

#[utoipa::path(get, path = "/api/v1/assets/{id}/agent", tag = "agents", params(("id" = String, Path)),
    responses((status = 200, body = AgentView), (status = 404, body = ErrorBody),
              (status = 409, description = "No agent registered on the asset", body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session_cookie" = [])))]
pub async fn get(
    State(app): State<App>,
    ReqActor(actor): ReqActor,
    Path(id): Path<String>,
) -> Result<Json<AgentView>, Error> {
    Ok(Json(app.asset_agent(&actor, &id).await?))
}

#[utoipa::path(get, path = "/api/v1/assets/{id}/inventory", tag = "agents", params(("id" = String, Path)),
    responses((status = 200, body = InventoryView), (status = 404, body = ErrorBody),
              (status = 409, description = "No agent registered on the asset", body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session_cookie" = [])))]
pub async fn inventory(
    State(app): State<App>,
    ReqActor(actor): ReqActor,
    Path(id): Path<String>,
) -> Result<Json<InventoryView>, Error> {
    Ok(Json(app.asset_inventory(&actor, &id).await?))
}

#[utoipa::path(get, path = "/api/v1/assets/{id}/inventory/changes", tag = "agents",
    params(("id" = String, Path), ("page" = Option<u32>, Query), ("per_page" = Option<u32>, Query)),
    responses((status = 200, description = "Hardware changes between registrations, newest first", body = Paged<InventoryChangeView>),
              (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session_cookie" = [])))]
pub async fn inventory_changes(
    State(app): State<App>,
    ReqActor(actor): ReqActor,
    Path(id): Path<String>,
    q: QueryMap,
) -> Result<Json<Paged<InventoryChangeView>>, Error> {
    Ok(paged(app.asset_inventory_changes(&actor, &id, q.page()?).await?))
}

#[utoipa::path(post, path = "/api/v1/assets/{id}/agent/commands", tag = "agents", params(("id" = String, Path)),
    request_body = CommandRequest,
    responses((status = 200, content_type = "application/x-ndjson",
               description = "One JSON object a line as the agent sends it: progress `{step, disk, bytes_done, bytes_total, rate}` and log `{log}` lines, then the result `{result: ok|error, command, message?, code?, details}`"),
              (status = 404, body = ErrorBody),
              (status = 409, description = "No agent, or it stopped heartbeating", body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session_cookie" = [])))]
pub async fn command(
    State(app): State<App>,
    ReqActor(actor): ReqActor,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<CommandRequest>,
) -> Result<Response, Error> {
    let mut running = app.agent_command(&actor, &id, req).await?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<String, std::convert::Infallible>>(64);
    tokio::spawn(async move {
        while let Some(line) = running.lines.recv().await {
            let _ = tx.send(Ok(format!("{}\n", line.to_json()))).await;
        }
        let outcome = match running.done.await {
            Ok(o) => o,
            Err(e) => ironbay_wire::progress::Outcome::error(
                "unknown",
                "INTERNAL",
                format!("the command's task failed: {e}"),
                serde_json::Value::Null,
            ),
        };
        let line = ironbay_wire::progress::Line::Outcome(outcome);
        let _ = tx.send(Ok(format!("{}\n", line.to_json()))).await;
    });
    let body = Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx));
    Ok(([(header::CONTENT_TYPE, "application/x-ndjson"), (header::CACHE_CONTROL, "no-store")], body).into_response())
}

#[utoipa::path(post, path = "/api/v1/assets/{id}/rescue", tag = "agents", params(("id" = String, Path)),
    request_body = RescueRequest,
    responses((status = 200, description = "The agent accepts the key for a shell (`ssh root@<address>`) until it reboots", body = AgentView),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session_cookie" = [])))]
pub async fn rescue(
    State(app): State<App>,
    ReqActor(actor): ReqActor,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<RescueRequest>,
) -> Result<Json<AgentView>, Error> {
    Ok(Json(app.agent_rescue(&actor, &id, req).await?))
}
