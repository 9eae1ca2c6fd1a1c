//! `/api/v1/psks`: pre-shared keys in NetKey's shape (list, get with value, create, PUT update,
//! delete answering `{"success": true, "deleted_id": …}`), plus rotation.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use super::PageMeta;
use crate::app::App;
use crate::app::psks::{CreatePsk, PskDeleted, PskView, PskWithValue, RotatePsk, UpdatePsk};
use crate::error::Error;
use crate::http::error::ErrorBody;
use crate::http::extract::{ApiJson, MaybeJson, QueryMap, ReqActor};
use crate::store::psks::PskQuery;

/// NetKey's list shape (`psks`, `total`) beside the appliance's uniform one (`data`, `meta`):
/// both carry the same page. Values are never listed.
#[derive(Debug, Serialize, ToSchema)]
pub struct PskList {
    pub psks: Vec<PskView>,
    pub total: i64,
    pub data: Vec<PskView>,
    pub meta: PageMeta,
}

#[utoipa::path(get, path = "/api/v1/psks", tag = "psks",
    params(("page" = Option<u32>, Query), ("per_page" = Option<u32>, Query),
           ("vlan_id" = Option<i64>, Query), ("enabled" = Option<bool>, Query),
           ("status" = Option<String>, Query, description = "active, expired or disabled")),
    responses((status = 200, description = "PSKs without their values", body = PskList), (status = 400, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session_cookie" = [])))]
pub async fn list(State(app): State<App>, ReqActor(actor): ReqActor, q: QueryMap) -> Result<Json<PskList>, Error> {
    let query = PskQuery {
        vlan_id: q.parse("vlan_id")?,
        enabled: q.parse("enabled")?,
        status: q.get("status").map(str::to_string),
        now: String::new(),
    };
    let page = app.psk_list(&actor, query, q.page()?).await?;
    let meta = PageMeta { page: page.page.page, per_page: page.page.per_page, total: page.total };
    Ok(Json(PskList { psks: page.items.clone(), total: page.total, data: page.items, meta }))
}

#[utoipa::path(post, path = "/api/v1/psks", tag = "psks", request_body = CreatePsk,
    responses((status = 201, description = "The PSK with its value (generated when omitted)", body = PskWithValue),
              (status = 409, description = "psk_id taken", body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session_cookie" = [])))]
pub async fn create(
    State(app): State<App>,
    ReqActor(actor): ReqActor,
    ApiJson(req): ApiJson<CreatePsk>,
) -> Result<(StatusCode, Json<PskWithValue>), Error> {
    Ok((StatusCode::CREATED, Json(app.psk_create(&actor, req).await?)))
}

#[utoipa::path(get, path = "/api/v1/psks/{id}", tag = "psks",
    params(("id" = String, Path, description = "The `psk_…` id or the `psk_id` name")),
    responses((status = 200, description = "The PSK with its value (the read is audited as `psk.read_value`)", body = PskWithValue),
              (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session_cookie" = [])))]
pub async fn get(
    State(app): State<App>,
    ReqActor(actor): ReqActor,
    Path(id): Path<String>,
) -> Result<Json<PskWithValue>, Error> {
    Ok(Json(app.psk_get(&actor, &id).await?))
}

#[utoipa::path(put, path = "/api/v1/psks/{id}", tag = "psks",
    params(("id" = String, Path, description = "The `psk_…` id or the `psk_id` name")), request_body = UpdatePsk,
    responses((status = 200, description = "The PSK, without its value", body = PskView), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session_cookie" = [])))]
pub async fn update(
    State(app): State<App>,
    ReqActor(actor): ReqActor,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<UpdatePsk>,
) -> Result<Json<PskView>, Error> {
    Ok(Json(app.psk_update(&actor, &id, req).await?))
}

#[utoipa::path(delete, path = "/api/v1/psks/{id}", tag = "psks",
    params(("id" = String, Path, description = "The `psk_…` id or the `psk_id` name")),
    responses((status = 200, body = PskDeleted), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session_cookie" = [])))]
pub async fn delete(
    State(app): State<App>,
    ReqActor(actor): ReqActor,
    Path(id): Path<String>,
) -> Result<Json<PskDeleted>, Error> {
    Ok(Json(app.psk_delete(&actor, &id).await?))
}

#[utoipa::path(post, path = "/api/v1/psks/{id}/rotate", tag = "psks",
    params(("id" = String, Path, description = "The `psk_…` id or the `psk_id` name")), request_body(content = Option<RotatePsk>, description = "Optional"),
    responses((status = 200, description = "The new value, once, and until when the old one stays valid (`previous_valid_until`)", body = PskWithValue),
              (status = 404, body = ErrorBody), (status = 409, description = "The PSK is expired or disabled", body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session_cookie" = [])))]
pub async fn rotate(
    State(app): State<App>,
    ReqActor(actor): ReqActor,
    Path(id): Path<String>,
    MaybeJson(req): MaybeJson<RotatePsk>,
) -> Result<Json<PskWithValue>, Error> {
    Ok(Json(app.psk_rotate(&actor, &id, req).await?))
}
