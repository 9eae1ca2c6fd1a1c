//! `/api/v1/enroll-tokens`, `/api/v1/devices` and the device CA (`/api/v1/ca.pem`,
//! `/api/v1/ca/crl`). Enrollment, renewal and the CA routes take no API credentials: a token, the
//! device's key, or nothing (public material) stands in for them.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{Paged, paged};
use crate::app::App;
use crate::app::devices::{CrlFormat, DeviceEventView, DeviceView, EnrollRequest, IssuedCertificate, RenewRequest};
use crate::app::enroll_tokens::{CreateEnrollToken, EnrollTokenView};
use crate::error::Error;
use crate::http::error::ErrorBody;
use crate::http::extract::{ApiJson, QueryMap, ReqActor};
use crate::store::devices::DeviceStatusFilter;

#[utoipa::path(get, path = "/api/v1/enroll-tokens", tag = "devices",
    params(("page" = Option<u32>, Query), ("per_page" = Option<u32>, Query)),
    responses((status = 200, description = "Tokens, never their values", body = Paged<EnrollTokenView>)),
    security(("bearer" = []), ("api_key" = []), ("session_cookie" = [])))]
pub async fn token_list(
    State(app): State<App>,
    ReqActor(actor): ReqActor,
    q: QueryMap,
) -> Result<Json<Paged<EnrollTokenView>>, Error> {
    Ok(paged(app.enroll_token_list(&actor, q.page()?).await?))
}

#[utoipa::path(post, path = "/api/v1/enroll-tokens", tag = "devices", request_body = CreateEnrollToken,
    responses((status = 201, description = "The token; `token` is shown this once", body = EnrollTokenView)),
    security(("bearer" = []), ("api_key" = []), ("session_cookie" = [])))]
pub async fn token_create(
    State(app): State<App>,
    ReqActor(actor): ReqActor,
    ApiJson(req): ApiJson<CreateEnrollToken>,
) -> Result<(StatusCode, Json<EnrollTokenView>), Error> {
    Ok((StatusCode::CREATED, Json(app.enroll_token_create(&actor, req).await?)))
}

#[utoipa::path(get, path = "/api/v1/enroll-tokens/{id}", tag = "devices", params(("id" = String, Path)),
    responses((status = 200, body = EnrollTokenView), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session_cookie" = [])))]
pub async fn token_get(
    State(app): State<App>,
    ReqActor(actor): ReqActor,
    Path(id): Path<String>,
) -> Result<Json<EnrollTokenView>, Error> {
    Ok(Json(app.enroll_token_get(&actor, &id).await?))
}

#[utoipa::path(delete, path = "/api/v1/enroll-tokens/{id}", tag = "devices", params(("id" = String, Path)),
    responses((status = 204, description = "Revoked (the record stays, with `revoked_at`)"), (status = 404, body = ErrorBody),
              (status = 409, description = "Already revoked", body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session_cookie" = [])))]
pub async fn token_revoke(
    State(app): State<App>,
    ReqActor(actor): ReqActor,
    Path(id): Path<String>,
) -> Result<StatusCode, Error> {
    app.enroll_token_revoke(&actor, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/devices/enroll", tag = "devices", request_body = EnrollRequest,
    responses((status = 201, body = IssuedCertificate),
              (status = 401, description = "INVALID_ENROLL_TOKEN, ENROLL_TOKEN_EXPIRED, ENROLL_TOKEN_EXHAUSTED or ENROLL_TOKEN_REVOKED", body = ErrorBody),
              (status = 409, description = "The token's VNI no longer exists", body = ErrorBody),
              (status = 422, description = "Bad name, tags or metadata; malformed key or CSR; UNSUPPORTED_KEY_TYPE", body = ErrorBody)))]
pub async fn enroll(
    State(app): State<App>,
    ReqActor(actor): ReqActor,
    ApiJson(req): ApiJson<EnrollRequest>,
) -> Result<(StatusCode, Json<IssuedCertificate>), Error> {
    Ok((StatusCode::CREATED, Json(app.device_enroll(&actor, req).await?)))
}

#[utoipa::path(post, path = "/api/v1/devices/{id}/renew", tag = "devices", params(("id" = String, Path)),
    request_body = RenewRequest,
    responses((status = 200, body = IssuedCertificate), (status = 404, body = ErrorBody),
              (status = 401, description = "INVALID_DEVICE_SIGNATURE, RENEW_TIMESTAMP_SKEW, RENEW_REPLAYED or DEVICE_REVOKED", body = ErrorBody),
              (status = 422, description = "Malformed timestamp, signature or CSR", body = ErrorBody)))]
pub async fn renew(
    State(app): State<App>,
    ReqActor(actor): ReqActor,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<RenewRequest>,
) -> Result<Json<IssuedCertificate>, Error> {
    Ok(Json(app.device_renew(&actor, &id, req).await?))
}

#[utoipa::path(get, path = "/api/v1/devices", tag = "devices",
    params(("page" = Option<u32>, Query), ("per_page" = Option<u32>, Query),
           ("status" = Option<String>, Query, description = "online, offline, revoked or enrolled (= not revoked)"),
           ("vni_id" = Option<String>, Query), ("tag" = Option<String>, Query)),
    responses((status = 200, body = Paged<DeviceView>), (status = 400, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session_cookie" = [])))]
pub async fn list(
    State(app): State<App>,
    ReqActor(actor): ReqActor,
    q: QueryMap,
) -> Result<Json<Paged<DeviceView>>, Error> {
    let status = match q.get("status") {
        None => None,
        Some("online") => Some(DeviceStatusFilter::Online),
        Some("offline") => Some(DeviceStatusFilter::Offline),
        Some("revoked") => Some(DeviceStatusFilter::Revoked),
        Some("enrolled") => Some(DeviceStatusFilter::Enrolled),
        Some(other) => {
            return Err(Error::BadRequest {
                code: "INVALID_QUERY",
                message: format!("invalid `status` `{other}`: use online, offline, revoked or enrolled"),
                details: Some(serde_json::json!({"field": "status"})),
            });
        }
    };
    let page = q.page()?;
    let vni_id = q.get("vni_id").map(str::to_string);
    let tag = q.get("tag").map(str::to_string);
    Ok(paged(app.device_list(&actor, status, vni_id, tag, page).await?))
}

#[utoipa::path(get, path = "/api/v1/devices/{id}", tag = "devices", params(("id" = String, Path)),
    responses((status = 200, description = "With `metadata`", body = DeviceView), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session_cookie" = [])))]
pub async fn get(
    State(app): State<App>,
    ReqActor(actor): ReqActor,
    Path(id): Path<String>,
) -> Result<Json<DeviceView>, Error> {
    Ok(Json(app.device_get(&actor, &id).await?))
}

#[utoipa::path(delete, path = "/api/v1/devices/{id}", tag = "devices", params(("id" = String, Path)),
    responses((status = 204, description = "Revoked: its certificates join the CRL; the record stays with status `revoked`"),
              (status = 404, body = ErrorBody), (status = 409, description = "Already deleted", body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session_cookie" = [])))]
pub async fn delete(
    State(app): State<App>,
    ReqActor(actor): ReqActor,
    Path(id): Path<String>,
) -> Result<StatusCode, Error> {
    app.device_delete(&actor, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/devices/{id}/history", tag = "devices",
    params(("id" = String, Path), ("page" = Option<u32>, Query), ("per_page" = Option<u32>, Query)),
    responses((status = 200, description = "Oldest first", body = Paged<DeviceEventView>), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session_cookie" = [])))]
pub async fn history(
    State(app): State<App>,
    ReqActor(actor): ReqActor,
    Path(id): Path<String>,
    q: QueryMap,
) -> Result<Json<Paged<DeviceEventView>>, Error> {
    Ok(paged(app.device_history(&actor, &id, q.page()?).await?))
}

#[utoipa::path(get, path = "/api/v1/ca.pem", tag = "devices",
    responses((status = 200, description = "The device CA certificate", content_type = "application/x-pem-file", body = String)))]
pub async fn ca_pem(State(app): State<App>) -> Response {
    ([(header::CONTENT_TYPE, "application/x-pem-file")], app.device_ca_pem().to_string()).into_response()
}

#[utoipa::path(get, path = "/api/v1/ca/crl", tag = "devices",
    params(("format" = Option<String>, Query, description = "`pem` (default) or `der`; `Accept: application/pkix-crl` also selects DER")),
    responses((status = 200, description = "The CRL of every revoked device certificate, signed now",
               content_type = "application/x-pem-file", body = String), (status = 400, body = ErrorBody)))]
pub async fn ca_crl(State(app): State<App>, headers: HeaderMap, q: QueryMap) -> Result<Response, Error> {
    let accept_der =
        headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("application/pkix-crl"));
    let format = match q.get("format") {
        Some("pem") => CrlFormat::Pem,
        Some("der") => CrlFormat::Der,
        None if accept_der => CrlFormat::Der,
        None => CrlFormat::Pem,
        Some(other) => {
            return Err(Error::BadRequest {
                code: "INVALID_QUERY",
                message: format!("invalid `format` `{other}`: use pem or der"),
                details: Some(serde_json::json!({"field": "format"})),
            });
        }
    };
    let content_type = match format {
        CrlFormat::Pem => "application/x-pem-file",
        CrlFormat::Der => "application/pkix-crl",
    };
    let body = app.device_crl(format).await?;
    Ok(([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "no-store")], body).into_response())
}
