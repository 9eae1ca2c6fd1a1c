//! The middleware every API request passes: find and check credentials (the result goes into the
//! request as an `Actor`), charge the request to its rate-limit bucket, and stamp the bucket's
//! state on the response.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::app::App;
use crate::app::auth::Credential;
use crate::auth::ratelimit::Verdict;
use crate::auth::{Actor, Principal};
use crate::error::Error;

pub const SESSION_COOKIE: &str = "ironbay_session";
pub const REFRESH_COOKIE: &str = "ironbay_refresh";
pub const LOGIN_PATH: &str = "/api/v1/auth/login";
pub const REFRESH_PATH: &str = "/api/v1/auth/refresh";
pub const ENROLL_PATH: &str = "/api/v1/devices/enroll";

pub async fn gate(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut req: Request,
    next: Next,
) -> Response {
    let ip = peer.ip();
    let mut actor = Actor::anonymous(Some(ip));
    let mut csrf_missing = false;
    if let Some(cred) = credential(req.headers()) {
        match app.authenticate(&cred).await {
            Ok(p) => {
                csrf_missing = !cookie_write_has_csrf(&app, &cred, &p, &req);
                actor.principal = Some(p);
            }
            Err(reason) => actor.rejected = Some(reason),
        }
    }
    // Logins are limited per source address (guessing passwords); everything else per key or
    // session, falling back to the source address for anonymous callers.
    let (bucket, key) = if req.uri().path() == LOGIN_PATH {
        (&app.limits.login, format!("ip:{ip}"))
    } else if is_device_path(req.uri().path()) {
        (&app.limits.enroll, format!("ip:{ip}"))
    } else {
        let key = match &actor.principal {
            Some(Principal::ApiKey { key_id, .. }) => format!("key:{key_id}"),
            Some(Principal::User { session_id, .. }) => format!("session:{session_id}"),
            None => format!("ip:{ip}"),
        };
        (&app.limits.api, key)
    };
    let verdict = bucket.check(&key);
    let mut resp = if verdict.allowed && csrf_missing {
        Error::Forbidden {
            code: "CSRF_TOKEN_INVALID",
            message: "a write authenticated by the session cookie needs the session's X-CSRF-Token header".into(),
            details: None,
        }
        .into_response()
    } else if verdict.allowed {
        req.extensions_mut().insert(actor);
        next.run(req).await
    } else {
        Error::TooManyRequests {
            code: "RATE_LIMITED",
            message: format!("rate limit of {} requests exceeded: retry in {} s", verdict.limit, verdict.reset_secs),
            retry_after_secs: verdict.reset_secs,
        }
        .into_response()
    };
    stamp(resp.headers_mut(), verdict);
    resp
}

/// Whether a request is safe from cross-site forgery: a browser sends the session cookie with any
/// request, so a cookie-authenticated write from a browser must also carry the session's CSRF token
/// (the console puts it in `X-CSRF-Token`). Bearer tokens and API keys are never sent by a browser
/// on its own. Only a browser can be made to send a request its user did not mean, and browsers say
/// so (`Sec-Fetch-Site` on every request, `Origin` on every cross-origin write): a script or CLI that
/// holds the cookie itself keeps working without the token. Login and refresh act on their own
/// credentials, not the session's authority.
fn cookie_write_has_csrf(app: &App, cred: &Credential, p: &Principal, req: &Request) -> bool {
    use axum::http::Method;
    let (Credential::SessionCookie(_), Principal::User { session_id, .. }) = (cred, p) else { return true };
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS)
        || matches!(req.uri().path(), LOGIN_PATH | REFRESH_PATH)
    {
        return true;
    }
    let from_browser = req.headers().contains_key("sec-fetch-site") || req.headers().contains_key(header::ORIGIN);
    if !from_browser {
        return true;
    }
    let expected = crate::console::session::csrf_token(app, session_id);
    req.headers()
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|sent| crate::secret::ct_eq(sent.as_bytes(), expected.as_bytes()))
}

/// Routes a device calls with no API credentials (its enrollment token or its key prove who it
/// is): limited per source address, like logins.
pub fn is_device_path(path: &str) -> bool {
    path == ENROLL_PATH
        || path
            .strip_prefix("/api/v1/devices/")
            .and_then(|rest| rest.strip_suffix("/renew"))
            .is_some_and(|id| !id.contains('/'))
}

fn stamp(h: &mut HeaderMap, v: Verdict) {
    for (name, value) in [
        ("x-ratelimit-limit", v.limit as u64),
        ("x-ratelimit-remaining", v.remaining as u64),
        ("x-ratelimit-reset", v.reset_secs),
    ] {
        if let Ok(val) = HeaderValue::from_str(&value.to_string()) {
            h.insert(name, val);
        }
    }
}

/// `Authorization: Bearer`, then `X-API-Key`, then the session cookie.
fn credential(h: &HeaderMap) -> Option<Credential> {
    if let Some(v) = h.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let token = v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")).unwrap_or(v).trim();
        return Some(Credential::Token(token.to_string()));
    }
    if let Some(v) = h.get("x-api-key").and_then(|v| v.to_str().ok()) {
        return Some(Credential::Token(v.trim().to_string()));
    }
    cookie(h, SESSION_COOKIE).map(Credential::SessionCookie)
}

/// The value of cookie `name`, if sent.
pub fn cookie(h: &HeaderMap, name: &str) -> Option<String> {
    h.get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// A `Set-Cookie` value: httpOnly always; `max_age` None = browser-session cookie, Some(0) clears.
pub fn set_cookie(name: &str, value: &str, path: &str, same_site: &str, max_age: Option<u64>) -> Option<HeaderValue> {
    let age = max_age.map(|s| format!("; Max-Age={s}")).unwrap_or_default();
    HeaderValue::from_str(&format!("{name}={value}; Path={path}; HttpOnly; SameSite={same_site}{age}")).ok()
}
