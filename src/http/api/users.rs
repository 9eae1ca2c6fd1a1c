//! `/api/v1/users`: admins with a user session only.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::{Paged, paged};
use crate::app::App;
use crate::app::auth::UserView;
use crate::app::users::{CreateUser, UpdateUser};
use crate::error::Error;
use crate::http::error::ErrorBody;
use crate::http::extract::{ApiJson, QueryMap, ReqActor};

#[utoipa::path(get, path = "/api/v1/users", tag = "users",
    params(("page" = Option<u32>, Query), ("per_page" = Option<u32>, Query)),
    responses((status = 200, body = Paged<UserView>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("session_cookie" = [])))]
pub async fn list(
    State(app): State<App>,
    ReqActor(actor): ReqActor,
    q: QueryMap,
) -> Result<Json<Paged<UserView>>, Error> {
    Ok(paged(app.user_list(&actor, q.page()?).await?))
}

#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = CreateUser,
    responses((status = 201, body = UserView), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("session_cookie" = [])))]
pub async fn create(
    State(app): State<App>,
    ReqActor(actor): ReqActor,
    ApiJson(req): ApiJson<CreateUser>,
) -> Result<(StatusCode, Json<UserView>), Error> {
    Ok((StatusCode::CREATED, Json(app.user_create(&actor, req).await?)))
}

#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users", params(("id" = String, Path)),
    responses((status = 200, body = UserView), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("session_cookie" = [])))]
pub async fn get(
    State(app): State<App>,
    ReqActor(actor): ReqActor,
    Path(id): Path<String>,
) -> Result<Json<UserView>, Error> {
    Ok(Json(app.user_get(&actor, &id).await?))
}

#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "users", params(("id" = String, Path)), request_body = UpdateUser,
    responses((status = 200, body = UserView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("session_cookie" = [])))]
pub async fn update(
    State(app): State<App>,
    ReqActor(actor): ReqActor,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<UpdateUser>,
) -> Result<Json<UserView>, Error> {
    Ok(Json(app.user_update(&actor, &id, req).await?))
}

#[utoipa::path(delete, path = "/api/v1/users/{id}", tag = "users", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = []), ("session_cookie" = [])))]
pub async fn delete(
    State(app): State<App>,
    ReqActor(actor): ReqActor,
    Path(id): Path<String>,
) -> Result<StatusCode, Error> {
    app.user_delete(&actor, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
