//! `/api/v1/assets`: the asset registry.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::Paged;
use crate::app::App;
use crate::app::assets::{AssetView, CreateAsset, UpdateAsset};
use crate::error::Error;
use crate::http::error::ErrorBody;
use crate::http::extract::{ApiJson, QueryMap, ReqActor};
use crate::model::{AssetState, Mac};
use crate::store::assets::AssetQuery;

#[utoipa::path(get, path = "/api/v1/assets", tag = "assets",
    params(("page" = Option<u32>, Query), ("per_page" = Option<u32>, Query),
           ("status" = Option<AssetState>, Query, description = "Filter by lifecycle state"),
           ("tag" = Option<String>, Query), ("mac" = Option<String>, Query), ("hostname" = Option<String>, Query)),
    responses((status = 200, body = Paged<AssetView>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session_cookie" = [])))]
pub async fn list(State(app): State<App>, ReqActor(actor): ReqActor, q: QueryMap) -> Result<Response, Error> {
    let state = match q.parse::<AssetState>("status")? {
        Some(s) => Some(s),
        None => q.parse::<AssetState>("state")?,
    };
    let query = AssetQuery {
        state,
        tag: q.get("tag").map(str::to_string),
        mac: q.parse::<Mac>("mac")?,
        hostname: q.get("hostname").map(str::to_ascii_lowercase),
    };
    let page = q.page()?;
    let list = app.asset_list_json(&actor, query, page).await?;
    let (data, total) = (&*list.data, list.total);
    // `data` is a JSON array rendered by the store: splice it in rather than parse and re-encode.
    let body = format!(
        "{{\"data\":{data},\"meta\":{{\"page\":{},\"per_page\":{},\"total\":{total}}}}}",
        page.page, page.per_page
    );
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

#[utoipa::path(post, path = "/api/v1/assets", tag = "assets", request_body = CreateAsset,
    responses((status = 201, body = AssetView), (status = 403, body = ErrorBody), (status = 409, description = "Duplicate MAC, hostname or SMBIOS UUID", body = ErrorBody),
              (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session_cookie" = [])))]
pub async fn create(
    State(app): State<App>,
    ReqActor(actor): ReqActor,
    ApiJson(req): ApiJson<CreateAsset>,
) -> Result<(StatusCode, Json<AssetView>), Error> {
    Ok((StatusCode::CREATED, Json(app.asset_create(&actor, req).await?)))
}

#[utoipa::path(get, path = "/api/v1/assets/{id}", tag = "assets", params(("id" = String, Path)),
    responses((status = 200, body = AssetView), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session_cookie" = [])))]
pub async fn get(
    State(app): State<App>,
    ReqActor(actor): ReqActor,
    Path(id): Path<String>,
) -> Result<Json<AssetView>, Error> {
    Ok(Json(app.asset_get(&actor, &id).await?))
}

#[utoipa::path(patch, path = "/api/v1/assets/{id}", tag = "assets", params(("id" = String, Path)), request_body = UpdateAsset,
    responses((status = 200, body = AssetView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session_cookie" = [])))]
pub async fn update(
    State(app): State<App>,
    ReqActor(actor): ReqActor,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<UpdateAsset>,
) -> Result<Json<AssetView>, Error> {
    Ok(Json(app.asset_update(&actor, &id, req).await?))
}

#[utoipa::path(delete, path = "/api/v1/assets/{id}", tag = "assets", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
              (status = 403, description = "Missing permission (`INSUFFICIENT_SCOPE`), or a policy denies the `delete` action (`POLICY_DENIED`, details: `policy`, `policy_id`, `reasons`)", body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session_cookie" = [])))]
pub async fn delete(
    State(app): State<App>,
    ReqActor(actor): ReqActor,
    Path(id): Path<String>,
) -> Result<StatusCode, Error> {
    app.asset_delete(&actor, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
