//! Who is using the console: the session cookie, checked on every request exactly as the API
//! checks it (`App::authenticate`), and the CSRF token bound to that session.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};

use crate::app::App;
use crate::app::auth::Credential;
use crate::auth::{Actor, Principal};
use crate::model::{Role, Scope};
use crate::secret::ct_eq;

/// The short-lived cookie carrying a one-line notice to the next page (set after a redirect).
pub const FLASH_COOKIE: &str = "ironbay_flash";

/// A logged-in console user. Extracting it redirects to the login page when there is no valid
/// session; API keys and access tokens are not console credentials.
#[derive(Debug, Clone)]
pub struct Session {
    pub actor: Actor,
    pub user_id: String,
    pub username: String,
    pub role: Role,
    /// The token every form of this session carries (`_csrf`).
    pub csrf: String,
    /// A notice left by the previous request (see `FLASH_COOKIE`).
    pub flash: Option<String>,
}

impl Session {
    pub fn can(&self, scope: Scope) -> bool {
        self.role.grants(scope)
    }

    /// Compares a submitted token with this session's, in constant time.
    pub fn csrf_ok(&self, submitted: Option<&str>) -> bool {
        submitted.is_some_and(|t| ct_eq(t.as_bytes(), self.csrf.as_bytes()))
    }
}

/// The CSRF token of a session: a keyed hash of its id, so it needs no storage, differs per
/// session and cannot be computed without the appliance's key.
pub fn csrf_token(app: &App, session_id: &str) -> String {
    app.keys.hash_token(&format!("console-csrf:{session_id}"))
}

/// Where a request without a valid session is sent: the login page, remembering the page asked
/// for (GET only: a form cannot be replayed after login).
fn to_login(parts: &Parts, reason: Option<&str>) -> Response {
    let mut q = Vec::new();
    if parts.method == axum::http::Method::GET {
        let next = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        q.push(format!("next={}", super::form::urlencode(next)));
    }
    if let Some(r) = reason {
        q.push(format!("reason={r}"));
    }
    let target = if q.is_empty() { "/login".to_string() } else { format!("/login?{}", q.join("&")) };
    Redirect::to(&target).into_response()
}

impl FromRequestParts<App> for Session {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Response> {
        let ip = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
        let Some(cookie) = crate::http::gate::cookie(&parts.headers, crate::http::gate::SESSION_COOKIE) else {
            return Err(to_login(parts, None));
        };
        let principal = match app.authenticate(&Credential::SessionCookie(cookie)).await {
            Ok(p) => p,
            Err(("INTERNAL_ERROR", _)) => {
                return Err(super::render::error_page(
                    None,
                    axum::http::StatusCode::SERVICE_UNAVAILABLE,
                    "The appliance cannot check your session right now (its database is unavailable). Try again shortly.",
                ));
            }
            Err((code, _)) => {
                let reason = match code {
                    "SESSION_EXPIRED" => "expired",
                    "SESSION_REVOKED" => "revoked",
                    "USER_DISABLED" => "disabled",
                    _ => "invalid",
                };
                return Err(to_login(parts, Some(reason)));
            }
        };
        let Principal::User { user_id, username, role, session_id } = principal.clone() else {
            return Err(to_login(parts, None));
        };
        let flash = crate::http::gate::cookie(&parts.headers, FLASH_COOKIE)
            .map(|v| super::form::urldecode(&v))
            .filter(|v| !v.is_empty());
        Ok(Session {
            actor: Actor { principal: Some(principal), source_ip: ip, rejected: None },
            csrf: csrf_token(app, &session_id),
            user_id,
            username,
            role,
            flash,
        })
    }
}
