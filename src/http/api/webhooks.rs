//! `/api/v1/webhooks`: subscriptions, their delivery logs and a test ping. The signing scheme is
//! described on the `webhooks` tag of the OpenAPI document.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::{Paged, paged};
use crate::app::App;
use crate::app::webhooks::{CreateWebhook, DeliveryView, PingQueued, UpdateWebhook, WebhookView};
use crate::error::Error;
use crate::http::error::ErrorBody;
use crate::http::extract::{ApiJson, QueryMap, ReqActor};

#[utoipa::path(get, path = "/api/v1/webhooks", tag = "webhooks",
    params(("page" = Option<u32>, Query), ("per_page" = Option<u32>, Query)),
    responses((status = 200, body = Paged<WebhookView>)),
    security(("bearer" = []), ("api_key" = []), ("session_cookie" = [])))]
pub async fn list(
    State(app): State<App>,
    ReqActor(actor): ReqActor,
    q: QueryMap,
) -> Result<Json<Paged<WebhookView>>, Error> {
    Ok(paged(app.webhook_list(&actor, q.page()?).await?))
}

#[utoipa::path(post, path = "/api/v1/webhooks", tag = "webhooks", request_body = CreateWebhook,
    responses((status = 201, description = "The webhook with its `secret`, shown only here", body = WebhookView)),
    security(("bearer" = []), ("api_key" = []), ("session_cookie" = [])))]
pub async fn create(
    State(app): State<App>,
    ReqActor(actor): ReqActor,
    ApiJson(req): ApiJson<CreateWebhook>,
) -> Result<(StatusCode, Json<WebhookView>), Error> {
    Ok((StatusCode::CREATED, Json(app.webhook_create(&actor, req).await?)))
}

#[utoipa::path(get, path = "/api/v1/webhooks/{id}", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 200, body = WebhookView), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session_cookie" = [])))]
pub async fn get(
    State(app): State<App>,
    ReqActor(actor): ReqActor,
    Path(id): Path<String>,
) -> Result<Json<WebhookView>, Error> {
    Ok(Json(app.webhook_get(&actor, &id).await?))
}

#[utoipa::path(patch, path = "/api/v1/webhooks/{id}", tag = "webhooks", params(("id" = String, Path)), request_body = UpdateWebhook,
    responses((status = 200, body = WebhookView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session_cookie" = [])))]
pub async fn update(
    State(app): State<App>,
    ReqActor(actor): ReqActor,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<UpdateWebhook>,
) -> Result<Json<WebhookView>, Error> {
    Ok(Json(app.webhook_update(&actor, &id, req).await?))
}

#[utoipa::path(delete, path = "/api/v1/webhooks/{id}", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 204, description = "Deleted, with its pending deliveries"), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session_cookie" = [])))]
pub async fn delete(
    State(app): State<App>,
    ReqActor(actor): ReqActor,
    Path(id): Path<String>,
) -> Result<StatusCode, Error> {
    app.webhook_delete(&actor, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/webhooks/{id}/deliveries", tag = "webhooks",
    params(("id" = String, Path), ("page" = Option<u32>, Query), ("per_page" = Option<u32>, Query),
           ("status" = Option<String>, Query, description = "pending, delivered or failed")),
    responses((status = 200, description = "Newest first, each with its attempts", body = Paged<DeliveryView>),
              (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session_cookie" = [])))]
pub async fn deliveries(
    State(app): State<App>,
    ReqActor(actor): ReqActor,
    Path(id): Path<String>,
    q: QueryMap,
) -> Result<Json<Paged<DeliveryView>>, Error> {
    Ok(paged(app.webhook_deliveries(&actor, &id, q.get("status"), q.page()?).await?))
}

#[utoipa::path(post, path = "/api/v1/webhooks/{id}/test", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 202, description = "A `webhook.ping` event queued for this webhook", body = PingQueued),
              (status = 404, body = ErrorBody), (status = 409, description = "The webhook is disabled", body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session_cookie" = [])))]
pub async fn test(
    State(app): State<App>,
    ReqActor(actor): ReqActor,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<PingQueued>), Error> {
    Ok((StatusCode::ACCEPTED, Json(app.webhook_test(&actor, &id).await?)))
}
