//! `/api/v1/auth/*`: login, refresh, logout, me, TOTP enrolment.

use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::app::App;
use crate::app::auth::{Issued, LoginOutcome, LoginRequest, MfaSetup, UserView};
use crate::error::Error;
use crate::http::error::ErrorBody;
use crate::http::extract::{ApiJson, ReqActor};
use crate::http::gate::{REFRESH_COOKIE, SESSION_COOKIE, cookie, set_cookie};

const REFRESH_PATH: &str = "/api/v1/auth";

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    /// Short-lived bearer access token (`ibt_…`).
    pub token: String,
    pub token_type: &'static str,
    /// Seconds until `token` expires.
    pub expires_in: u64,
    /// Single-use refresh token (`ibr_…`); also set as the httpOnly `ironbay_refresh` cookie.
    pub refresh_token: String,
    pub user: UserView,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MfaRequired {
    pub requires_mfa: bool,
    pub mfa_type: &'static str,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// Optional when the `ironbay_refresh` cookie is sent.
    #[serde(default)]
    pub refresh_token: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TotpCode {
    #[serde(alias = "code")]
    pub totp_code: String,
}

fn token_response(issued: Issued, set_session: bool) -> Response {
    let mut headers = HeaderMap::new();
    if let (true, Some(secret)) = (set_session, &issued.session_secret) {
        let age = issued.persistent_for.map(|d| d.as_secs());
        if let Some(v) = set_cookie(SESSION_COOKIE, secret, "/", "Lax", age) {
            headers.append(header::SET_COOKIE, v);
        }
    }
    if let Some(v) = set_cookie(
        REFRESH_COOKIE,
        &issued.refresh_token,
        REFRESH_PATH,
        "Strict",
        issued.persistent_for.map(|d| d.as_secs()),
    ) {
        headers.append(header::SET_COOKIE, v);
    }
    headers.insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
    let body = TokenResponse {
        token: issued.access_token,
        token_type: "Bearer",
        expires_in: issued.expires_in,
        refresh_token: issued.refresh_token,
        user: issued.user,
    };
    (StatusCode::OK, headers, Json(body)).into_response()
}

#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, description = "Logged in (or `requires_mfa` when a TOTP code is needed)", body = TokenResponse),
              (status = 401, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn login(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<Response, Error> {
    match app.login(Some(peer.ip()), req).await? {
        LoginOutcome::MfaRequired => Ok(Json(MfaRequired { requires_mfa: true, mfa_type: "totp" }).into_response()),
        LoginOutcome::LoggedIn(issued) => Ok(token_response(*issued, true)),
    }
}

#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", request_body(content = Option<RefreshRequest>),
    responses((status = 200, description = "New access and refresh tokens; the old refresh token is spent", body = TokenResponse),
              (status = 401, description = "Invalid, expired or reused (the session is then revoked)", body = ErrorBody)))]
pub async fn refresh(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, Error> {
    let from_body = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        crate::http::extract::parse_json::<RefreshRequest>(&body)?.refresh_token
    };
    let token = from_body.or_else(|| cookie(&headers, REFRESH_COOKIE)).ok_or_else(|| {
        Error::unauthenticated(
            "INVALID_REFRESH_TOKEN",
            "no refresh token: send `refresh_token` or the ironbay_refresh cookie",
        )
    })?;
    let issued = app.refresh(Some(peer.ip()), &token).await?;
    Ok(token_response(issued, false))
}

#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth",
    responses((status = 204, description = "Session revoked, cookies cleared"), (status = 401, body = ErrorBody)),
    security(("bearer" = []), ("session_cookie" = [])))]
pub async fn logout(State(app): State<App>, ReqActor(actor): ReqActor) -> Result<Response, Error> {
    app.logout(&actor).await?;
    let mut headers = HeaderMap::new();
    for (name, path) in [(SESSION_COOKIE, "/"), (REFRESH_COOKIE, REFRESH_PATH)] {
        if let Some(v) = set_cookie(name, "", path, "Lax", Some(0)) {
            headers.append(header::SET_COOKIE, v);
        }
    }
    Ok((StatusCode::NO_CONTENT, headers).into_response())
}

#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth",
    responses((status = 200, description = "The caller: user, scopes, and how it authenticated", body = Object), (status = 401, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session_cookie" = [])))]
pub async fn me(State(app): State<App>, ReqActor(actor): ReqActor) -> Result<Json<serde_json::Value>, Error> {
    Ok(Json(app.me(&actor).await?))
}

#[utoipa::path(post, path = "/api/v1/auth/mfa/setup", tag = "auth",
    responses((status = 200, description = "New TOTP secret; confirm it with /auth/mfa/enable", body = MfaSetup),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = []), ("session_cookie" = [])))]
pub async fn mfa_setup(State(app): State<App>, ReqActor(actor): ReqActor) -> Result<Json<MfaSetup>, Error> {
    Ok(Json(app.mfa_setup(&actor).await?))
}

#[utoipa::path(post, path = "/api/v1/auth/mfa/enable", tag = "auth", request_body = TotpCode,
    responses((status = 200, body = UserView), (status = 401, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("session_cookie" = [])))]
pub async fn mfa_enable(
    State(app): State<App>,
    ReqActor(actor): ReqActor,
    ApiJson(req): ApiJson<TotpCode>,
) -> Result<Json<UserView>, Error> {
    Ok(Json(app.mfa_set(&actor, &req.totp_code, true).await?))
}

#[utoipa::path(post, path = "/api/v1/auth/mfa/disable", tag = "auth", request_body = TotpCode,
    responses((status = 200, body = UserView), (status = 401, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("session_cookie" = [])))]
pub async fn mfa_disable(
    State(app): State<App>,
    ReqActor(actor): ReqActor,
    ApiJson(req): ApiJson<TotpCode>,
) -> Result<Json<UserView>, Error> {
    Ok(Json(app.mfa_set(&actor, &req.totp_code, false).await?))
}
