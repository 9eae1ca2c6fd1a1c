//! `/api/v1/api-keys`: user sessions only (a key cannot mint keys).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::{Paged, paged};
use crate::app::App;
use crate::app::api_keys::{ApiKeyView, CreateApiKey};
use crate::error::Error;
use crate::http::error::ErrorBody;
use crate::http::extract::{ApiJson, QueryMap, ReqActor};

#[utoipa::path(get, path = "/api/v1/api-keys", tag = "api-keys",
    params(("page" = Option<u32>, Query), ("per_page" = Option<u32>, Query)),
    responses((status = 200, description = "Your keys (admins: all keys); never the key itself", body = Paged<ApiKeyView>), (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("session_cookie" = [])))]
pub async fn list(
    State(app): State<App>,
    ReqActor(actor): ReqActor,
    q: QueryMap,
) -> Result<Json<Paged<ApiKeyView>>, Error> {
    Ok(paged(app.api_key_list(&actor, q.page()?).await?))
}

#[utoipa::path(post, path = "/api/v1/api-keys", tag = "api-keys", request_body = CreateApiKey,
    responses((status = 201, description = "Created; `key` is shown this once", body = ApiKeyView),
              (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("session_cookie" = [])))]
pub async fn create(
    State(app): State<App>,
    ReqActor(actor): ReqActor,
    ApiJson(req): ApiJson<CreateApiKey>,
) -> Result<(StatusCode, Json<ApiKeyView>), Error> {
    Ok((StatusCode::CREATED, Json(app.api_key_create(&actor, req).await?)))
}

#[utoipa::path(get, path = "/api/v1/api-keys/{id}", tag = "api-keys", params(("id" = String, Path)),
    responses((status = 200, body = ApiKeyView), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("session_cookie" = [])))]
pub async fn get(
    State(app): State<App>,
    ReqActor(actor): ReqActor,
    Path(id): Path<String>,
) -> Result<Json<ApiKeyView>, Error> {
    Ok(Json(app.api_key_get(&actor, &id).await?))
}

#[utoipa::path(delete, path = "/api/v1/api-keys/{id}", tag = "api-keys", params(("id" = String, Path)),
    responses((status = 204, description = "Revoked"), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = []), ("session_cookie" = [])))]
pub async fn revoke(
    State(app): State<App>,
    ReqActor(actor): ReqActor,
    Path(id): Path<String>,
) -> Result<StatusCode, Error> {
    app.api_key_revoke(&actor, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
