//! `/api/v1/vnis`: network segments and their address allocations.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::{Paged, paged};
use crate::app::App;
use crate::app::vnis::{AllocateRequest, CreateVni, UpdateVni, VniView};
use crate::error::Error;
use crate::http::error::ErrorBody;
use crate::http::extract::{ApiJson, QueryMap, ReqActor};
use crate::store::vnis::AllocationRow;

#[utoipa::path(get, path = "/api/v1/vnis", tag = "vnis",
    params(("page" = Option<u32>, Query), ("per_page" = Option<u32>, Query)),
    responses((status = 200, body = Paged<VniView>)),
    security(("bearer" = []), ("api_key" = []), ("session_cookie" = [])))]
pub async fn list(
    State(app): State<App>,
    ReqActor(actor): ReqActor,
    q: QueryMap,
) -> Result<Json<Paged<VniView>>, Error> {
    Ok(paged(app.vni_list(&actor, q.page()?).await?))
}

#[utoipa::path(post, path = "/api/v1/vnis", tag = "vnis", request_body = CreateVni,
    responses((status = 201, body = VniView), (status = 409, description = "Overlapping CIDR, duplicate name or number", body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session_cookie" = [])))]
pub async fn create(
    State(app): State<App>,
    ReqActor(actor): ReqActor,
    ApiJson(req): ApiJson<CreateVni>,
) -> Result<(StatusCode, Json<VniView>), Error> {
    Ok((StatusCode::CREATED, Json(app.vni_create(&actor, req).await?)))
}

#[utoipa::path(get, path = "/api/v1/vnis/{id}", tag = "vnis", params(("id" = String, Path)),
    responses((status = 200, body = VniView), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session_cookie" = [])))]
pub async fn get(
    State(app): State<App>,
    ReqActor(actor): ReqActor,
    Path(id): Path<String>,
) -> Result<Json<VniView>, Error> {
    Ok(Json(app.vni_get(&actor, &id).await?))
}

#[utoipa::path(patch, path = "/api/v1/vnis/{id}", tag = "vnis", params(("id" = String, Path)), request_body = UpdateVni,
    responses((status = 200, body = VniView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session_cookie" = [])))]
pub async fn update(
    State(app): State<App>,
    ReqActor(actor): ReqActor,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<UpdateVni>,
) -> Result<Json<VniView>, Error> {
    Ok(Json(app.vni_update(&actor, &id, req).await?))
}

#[utoipa::path(delete, path = "/api/v1/vnis/{id}", tag = "vnis", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, description = "Still holds allocations", body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session_cookie" = [])))]
pub async fn delete(
    State(app): State<App>,
    ReqActor(actor): ReqActor,
    Path(id): Path<String>,
) -> Result<StatusCode, Error> {
    app.vni_delete(&actor, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/vnis/{id}/allocations", tag = "vnis",
    params(("id" = String, Path), ("page" = Option<u32>, Query), ("per_page" = Option<u32>, Query)),
    responses((status = 200, description = "Ordered by address", body = Paged<AllocationRow>), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session_cookie" = [])))]
pub async fn allocations(
    State(app): State<App>,
    ReqActor(actor): ReqActor,
    Path(id): Path<String>,
    q: QueryMap,
) -> Result<Json<Paged<AllocationRow>>, Error> {
    Ok(paged(app.vni_allocations(&actor, &id, q.page()?).await?))
}

#[utoipa::path(post, path = "/api/v1/vnis/{id}/allocations", tag = "vnis", params(("id" = String, Path)), request_body = AllocateRequest,
    responses((status = 201, body = AllocationRow), (status = 404, body = ErrorBody),
              (status = 409, description = "Address taken or pool exhausted", body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session_cookie" = [])))]
pub async fn allocate(
    State(app): State<App>,
    ReqActor(actor): ReqActor,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<AllocateRequest>,
) -> Result<(StatusCode, Json<AllocationRow>), Error> {
    Ok((StatusCode::CREATED, Json(app.vni_allocate(&actor, &id, req).await?)))
}

#[utoipa::path(delete, path = "/api/v1/vnis/{id}/allocations/{address}", tag = "vnis",
    params(("id" = String, Path), ("address" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session_cookie" = [])))]
pub async fn release(
    State(app): State<App>,
    ReqActor(actor): ReqActor,
    Path((id, address)): Path<(String, String)>,
) -> Result<StatusCode, Error> {
    app.vni_release(&actor, &id, &address).await?;
    Ok(StatusCode::NO_CONTENT)
}
