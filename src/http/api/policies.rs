//! `/api/v1/policies`: Rego policies and their evaluation.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::{Paged, paged};
use crate::app::App;
use crate::app::policies::{CreatePolicy, EvaluateRequest, PolicyView, UpdatePolicy};
use crate::error::Error;
use crate::http::error::ErrorBody;
use crate::http::extract::{ApiJson, QueryMap, ReqActor};
use crate::policy::Evaluation;

#[utoipa::path(get, path = "/api/v1/policies", tag = "policies",
    params(("page" = Option<u32>, Query), ("per_page" = Option<u32>, Query)),
    responses((status = 200, description = "In evaluation order: priority (lower first), then name", body = Paged<PolicyView>)),
    security(("bearer" = []), ("api_key" = []), ("session_cookie" = [])))]
pub async fn list(
    State(app): State<App>,
    ReqActor(actor): ReqActor,
    q: QueryMap,
) -> Result<Json<Paged<PolicyView>>, Error> {
    Ok(paged(app.policy_list(&actor, q.page()?).await?))
}

#[utoipa::path(post, path = "/api/v1/policies", tag = "policies", request_body = CreatePolicy,
    responses((status = 201, body = PolicyView),
              (status = 409, description = "Duplicate name", body = ErrorBody),
              (status = 422, description = "`INVALID_REGO` (details: `line`, `column`, `message`), a module defining neither `deny` nor `allow`, an unknown VNI or another invalid field", body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session_cookie" = [])))]
pub async fn create(
    State(app): State<App>,
    ReqActor(actor): ReqActor,
    ApiJson(req): ApiJson<CreatePolicy>,
) -> Result<(StatusCode, Json<PolicyView>), Error> {
    Ok((StatusCode::CREATED, Json(app.policy_create(&actor, req).await?)))
}

#[utoipa::path(get, path = "/api/v1/policies/{id}", tag = "policies", params(("id" = String, Path)),
    responses((status = 200, body = PolicyView), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session_cookie" = [])))]
pub async fn get(
    State(app): State<App>,
    ReqActor(actor): ReqActor,
    Path(id): Path<String>,
) -> Result<Json<PolicyView>, Error> {
    Ok(Json(app.policy_get(&actor, &id).await?))
}

#[utoipa::path(patch, path = "/api/v1/policies/{id}", tag = "policies", params(("id" = String, Path)), request_body = UpdatePolicy,
    responses((status = 200, body = PolicyView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
              (status = 422, description = "`INVALID_REGO` or another invalid field", body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session_cookie" = [])))]
pub async fn update(
    State(app): State<App>,
    ReqActor(actor): ReqActor,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<UpdatePolicy>,
) -> Result<Json<PolicyView>, Error> {
    Ok(Json(app.policy_update(&actor, &id, req).await?))
}

/// The same partial update as PATCH, for clients that update with PUT.
#[utoipa::path(put, path = "/api/v1/policies/{id}", tag = "policies", params(("id" = String, Path)), request_body = UpdatePolicy,
    responses((status = 200, body = PolicyView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
              (status = 422, description = "`INVALID_REGO` or another invalid field", body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session_cookie" = [])))]
pub async fn replace(
    State(app): State<App>,
    ReqActor(actor): ReqActor,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<UpdatePolicy>,
) -> Result<Json<PolicyView>, Error> {
    Ok(Json(app.policy_update(&actor, &id, req).await?))
}

#[utoipa::path(delete, path = "/api/v1/policies/{id}", tag = "policies", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session_cookie" = [])))]
pub async fn delete(
    State(app): State<App>,
    ReqActor(actor): ReqActor,
    Path(id): Path<String>,
) -> Result<StatusCode, Error> {
    app.policy_delete(&actor, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Evaluates the input document against one policy (`policy_id`: enabled or not, VNI binding
/// ignored) or against every enabled policy, as the guard does before an action.
///
/// Each policy is a Rego module; the appliance reads the rules `deny` (a set of reasons) and
/// `allow` (a boolean) in its package. A policy denies when `deny` is non-empty or `allow` is
/// defined and not true; `result` is `deny` when any policy denies (deny wins), otherwise `allow`
/// (also when no policy applies). `decisions` has one entry per evaluated rule, in evaluation
/// order (priority, lower first, then name), with `decision` `allow`, `deny` or `not_applicable`
/// (the rule is undefined for this input, or the policy is bound to VNIs the input does not name).
/// A policy whose evaluation fails (time limit) denies.
///
/// The input document the guard builds before an action, which policies are written against:
///
/// ```json
/// {"action": "wipe",
///  "asset": {"id": "ast_…", "name": "node-1", "tags": ["production"], "state": "provisioned", "vni_id": "vni_…"},
///  "vni_id": "vni_…",
///  "actor": {"type": "user", "id": "usr_…", "name": "admin", "role": "admin"},
///  "time": {"now": "2026-11-21T03:00:00Z", "weekday": "saturday", "hour": 3, "minute": 0}}
/// ```
///
/// `action` is one of `wipe`, `provision`, `power`, `connect`, `delete`; `vni_id` fields appear
/// when known; `actor.type` is `user`, `api_key` or `system` (`role` is set for users); `time` is
/// UTC with a lowercase English `weekday`. Here `input` may be any JSON object: a missing `time`
/// is filled in with now, a given one is never overwritten (its missing fields are derived from
/// its `now`).
#[utoipa::path(post, path = "/api/v1/policies/evaluate", tag = "policies", request_body = EvaluateRequest,
    responses((status = 200, body = Evaluation), (status = 404, description = "`policy_id` names no policy", body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session_cookie" = [])))]
pub async fn evaluate(
    State(app): State<App>,
    ReqActor(actor): ReqActor,
    ApiJson(req): ApiJson<EvaluateRequest>,
) -> Result<Json<Evaluation>, Error> {
    Ok(Json(app.policy_evaluate(&actor, req).await?))
}
