//! `/api/v1/images`: the images registry, and the streamed upload of an image's content.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::{Paged, paged};
use crate::app::App;
use crate::app::images::{CreateImage, ImageView, UpdateImage};
use crate::error::Error;
use crate::http::error::ErrorBody;
use crate::http::extract::{ApiJson, QueryMap, ReqActor};

#[utoipa::path(get, path = "/api/v1/images", tag = "images",
    params(("page" = Option<u32>, Query), ("per_page" = Option<u32>, Query),
           ("name" = Option<String>, Query, description = "Exact name"),
           ("status" = Option<String>, Query, description = "`pending`, `uploading`, `ready` or `failed`")),
    responses((status = 200, description = "By name, then version", body = Paged<ImageView>)),
    security(("bearer" = []), ("api_key" = []), ("session_cookie" = [])))]
pub async fn list(
    State(app): State<App>,
    ReqActor(actor): ReqActor,
    q: QueryMap,
) -> Result<Json<Paged<ImageView>>, Error> {
    Ok(paged(app.image_list(&actor, q.get("name"), q.get("status"), q.page()?).await?))
}

/// With `url` (and its `sha256`) the image is `ready` at once; without, it is an upload record
/// (`pending`) waiting for `PUT /api/v1/images/{id}/content`.
#[utoipa::path(post, path = "/api/v1/images", tag = "images", request_body = CreateImage,
    responses((status = 201, body = ImageView),
              (status = 409, description = "`DUPLICATE_IMAGE`: the name and version exist", body = ErrorBody),
              (status = 422, description = "`INVALID_FIELD`: a bad name, version, URL, sha256 (required with `url`), format or size", body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session_cookie" = [])))]
pub async fn create(
    State(app): State<App>,
    ReqActor(actor): ReqActor,
    ApiJson(req): ApiJson<CreateImage>,
) -> Result<(StatusCode, Json<ImageView>), Error> {
    Ok((StatusCode::CREATED, Json(app.image_create(&actor, req).await?)))
}

#[utoipa::path(get, path = "/api/v1/images/{id}", tag = "images", params(("id" = String, Path)),
    responses((status = 200, description = "The image; while uploading, `bytes_received` grows about every second", body = ImageView),
              (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session_cookie" = [])))]
pub async fn get(
    State(app): State<App>,
    ReqActor(actor): ReqActor,
    Path(id): Path<String>,
) -> Result<Json<ImageView>, Error> {
    Ok(Json(app.image_get(&actor, &id).await?))
}

#[utoipa::path(patch, path = "/api/v1/images/{id}", tag = "images", params(("id" = String, Path)), request_body = UpdateImage,
    responses((status = 200, body = ImageView), (status = 404, body = ErrorBody),
              (status = 409, description = "`DUPLICATE_IMAGE`", body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session_cookie" = [])))]
pub async fn update(
    State(app): State<App>,
    ReqActor(actor): ReqActor,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<UpdateImage>,
) -> Result<Json<ImageView>, Error> {
    Ok(Json(app.image_update(&actor, &id, req).await?))
}

#[utoipa::path(delete, path = "/api/v1/images/{id}", tag = "images", params(("id" = String, Path)),
    responses((status = 204, description = "Deleted, with its file"), (status = 404, body = ErrorBody),
              (status = 409, description = "`IMAGE_IN_USE` (a workflow references it) or `UPLOAD_IN_PROGRESS`", body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session_cookie" = [])))]
pub async fn delete(
    State(app): State<App>,
    ReqActor(actor): ReqActor,
    Path(id): Path<String>,
) -> Result<StatusCode, Error> {
    app.image_delete(&actor, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The image's bytes as the raw body (any size: streamed to disk, never held in memory), raw or
/// gzip/zstd/xz-compressed (found by magic, as the agent does). `sha256` and `size_bytes` become
/// those of the decompressed image, `file_sha256` and `file_size_bytes` those of the bytes sent.
/// On success the image is `ready` and served at `/images/library/{id}`. A failed upload (hash or
/// size other than the record expects, a corrupt compressed stream, a cut-off body) leaves the image
/// `failed` with `status_reason`, no file, and may be retried.
#[utoipa::path(put, path = "/api/v1/images/{id}/content", tag = "images", params(("id" = String, Path)),
    request_body(content = String, content_type = "application/octet-stream", description = "The image's bytes"),
    responses((status = 200, description = "Stored and ready", body = ImageView),
              (status = 400, description = "`UPLOAD_INCOMPLETE`: the body was cut off or stalled", body = ErrorBody),
              (status = 404, body = ErrorBody),
              (status = 409, description = "`IMAGE_READY` (content cannot be replaced; URL images have none) or `UPLOAD_IN_PROGRESS`", body = ErrorBody),
              (status = 422, description = "`SHA256_MISMATCH`, `SIZE_MISMATCH` or `INVALID_IMAGE` (a corrupt compressed stream)", body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session_cookie" = [])))]
pub async fn upload(
    State(app): State<App>,
    ReqActor(actor): ReqActor,
    Path(id): Path<String>,
    body: Body,
) -> Result<Json<ImageView>, Error> {
    Ok(Json(app.image_upload(&actor, &id, body.into_data_stream()).await?))
}
