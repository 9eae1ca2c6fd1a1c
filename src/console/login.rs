//! `/login` (password, then a TOTP code when the user has MFA on), `/logout`.
//!
//! The password step and the code step are two forms; between them the password waits in memory
//! for a few minutes under a random one-time token, so it is never written into the page.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};

use super::form::{FormData, Posted};
use super::render::{self, Layout};
use crate::app::App;
use crate::app::auth::{LoginOutcome, LoginRequest};
use crate::error::Error;
use crate::http::gate::{SESSION_COOKIE, cookie};
use crate::secret::{Secret, ct_eq, random_token};

/// The pre-login CSRF cookie (double submit): a login form must come from this console.
const LOGIN_CSRF_COOKIE: &str = "ironbay_login_csrf";
const MFA_WAIT: Duration = Duration::from_secs(300);

struct PendingMfa {
    username: String,
    password: Secret<String>,
    remember_me: bool,
    next: String,
    since: Instant,
}

/// Logins waiting for their TOTP code.
#[derive(Default)]
pub struct PendingLogins(Mutex<HashMap<String, PendingMfa>>);

impl PendingLogins {
    fn put(&self, p: PendingMfa) -> String {
        let token = random_token("", 24);
        if let Ok(mut m) = self.0.lock() {
            m.retain(|_, v| v.since.elapsed() < MFA_WAIT);
            m.insert(token.clone(), p);
        }
        token
    }

    fn take(&self, token: &str) -> Option<PendingMfa> {
        let mut m = self.0.lock().ok()?;
        m.remove(token).filter(|p| p.since.elapsed() < MFA_WAIT)
    }
}

pub fn routes() -> Router<App> {
    Router::new()
        .route("/login", get(login_page).post(login_submit))
        .route("/login/mfa", post(mfa_submit))
        .route("/logout", post(logout))
        .layer(Extension(Arc::new(PendingLogins::default())))
}

#[derive(Template, WebTemplate)]
#[template(path = "console/login.html")]
struct LoginPage {
    l: Layout,
    csrf: String,
    username: String,
    next: String,
    error: Option<String>,
    notice: Option<String>,
    /// Set on the second step: the one-time token standing for the checked password.
    mfa_token: Option<String>,
}

#[derive(serde::Deserialize, Default)]
struct LoginQuery {
    next: Option<String>,
    reason: Option<String>,
}

/// Only local paths: a login link must not send the user elsewhere after logging in.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.starts_with("/\\") => n.to_string(),
        _ => "/".to_string(),
    }
}

fn with_login_csrf(page: LoginPage, status: axum::http::StatusCode) -> Response {
    let value = format!("{LOGIN_CSRF_COOKIE}={}; Path=/login; HttpOnly; SameSite=Strict", page.csrf);
    let mut resp = page.into_response();
    *resp.status_mut() = status;
    if let Ok(v) = HeaderValue::from_str(&value) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

fn page(
    username: String,
    next: String,
    error: Option<String>,
    notice: Option<String>,
    mfa: Option<String>,
) -> LoginPage {
    LoginPage {
        l: Layout::anonymous(if mfa.is_some() { "Authentication code" } else { "Log in" }),
        csrf: random_token("", 24),
        username,
        next,
        error,
        notice,
        mfa_token: mfa,
    }
}

async fn login_page(Query(q): Query<LoginQuery>) -> Response {
    let notice = match q.reason.as_deref() {
        Some("expired") => Some("Your session expired. Log in again to continue.".to_string()),
        Some("revoked") => Some("Your session was ended (logged out or revoked). Log in again.".to_string()),
        Some("disabled") => Some("This user is disabled.".to_string()),
        Some("invalid") => Some("Your session is no longer valid. Log in again.".to_string()),
        Some("logout") => Some("You are logged out.".to_string()),
        _ => None,
    };
    with_login_csrf(page(String::new(), safe_next(q.next.as_deref()), None, notice, None), axum::http::StatusCode::OK)
}

/// Reads a pre-session form and checks its double-submit token.
async fn login_form(app: &App, req: Request) -> Result<(HeaderMap, FormData), Response> {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, app.config.max_body_bytes).await.unwrap_or_default();
    let form = FormData::parse(&bytes);
    let sent = form.raw(super::form::CSRF_FIELD).unwrap_or_default();
    let expected = cookie(&parts.headers, LOGIN_CSRF_COOKIE).unwrap_or_default();
    if sent.is_empty() || !ct_eq(sent.as_bytes(), expected.as_bytes()) {
        let p = page(
            form.text("username"),
            safe_next(form.get("next")),
            Some("The login form expired or did not come from this page. Try again.".into()),
            None,
            None,
        );
        return Err(with_login_csrf(p, axum::http::StatusCode::FORBIDDEN));
    }
    Ok((parts.headers, form))
}

fn rate_limited(app: &App, ip: std::net::IpAddr) -> Option<String> {
    let v = app.limits.login.check(&format!("ip:{ip}"));
    (!v.allowed).then(|| format!("Too many login attempts from your address. Try again in {} seconds.", v.reset_secs))
}

async fn login_submit(
    State(app): State<App>,
    Extension(logins): Extension<Arc<PendingLogins>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let (_, form) = match login_form(&app, req).await {
        Ok(f) => f,
        Err(resp) => return resp,
    };
    let username = form.text("username");
    let next = safe_next(form.get("next"));
    if let Some(msg) = rate_limited(&app, peer.ip()) {
        return with_login_csrf(page(username, next, Some(msg), None, None), axum::http::StatusCode::TOO_MANY_REQUESTS);
    }
    let password = Secret::new(form.raw("password").unwrap_or_default().to_string());
    let remember_me = form.checked("remember_me");
    let req = LoginRequest { username: username.clone(), password: password.clone(), totp_code: None, remember_me };
    match app.login(Some(peer.ip()), req).await {
        Ok(LoginOutcome::LoggedIn(issued)) => logged_in(&issued, &next),
        Ok(LoginOutcome::MfaRequired) => {
            let pending = logins.put(PendingMfa {
                username: username.clone(),
                password,
                remember_me,
                next: next.clone(),
                since: Instant::now(),
            });
            with_login_csrf(page(username, next, None, None, Some(pending)), axum::http::StatusCode::OK)
        }
        Err(e) => failed(username, next, &e, None),
    }
}

async fn mfa_submit(
    State(app): State<App>,
    Extension(logins): Extension<Arc<PendingLogins>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let (_, form) = match login_form(&app, req).await {
        Ok(f) => f,
        Err(resp) => return resp,
    };
    let token = form.text("mfa_token");
    let Some(pending) = logins.take(&token) else {
        return with_login_csrf(
            page(
                form.text("username"),
                safe_next(form.get("next")),
                Some("That login took too long. Enter your password again.".into()),
                None,
                None,
            ),
            axum::http::StatusCode::UNAUTHORIZED,
        );
    };
    if let Some(msg) = rate_limited(&app, peer.ip()) {
        return with_login_csrf(
            page(pending.username, pending.next, Some(msg), None, None),
            axum::http::StatusCode::TOO_MANY_REQUESTS,
        );
    }
    let req = LoginRequest {
        username: pending.username.clone(),
        password: pending.password.clone(),
        totp_code: Some(form.text("totp_code")),
        remember_me: pending.remember_me,
    };
    match app.login(Some(peer.ip()), req).await {
        Ok(LoginOutcome::LoggedIn(issued)) => logged_in(&issued, &pending.next),
        Ok(LoginOutcome::MfaRequired) | Err(Error::Unauthenticated { code: "INVALID_TOTP", .. }) => {
            // A wrong or empty code: ask again, with a fresh token for the same checked password.
            let (username, next) = (pending.username.clone(), pending.next.clone());
            let again = logins.put(PendingMfa { since: Instant::now(), ..pending });
            let msg =
                "That code is not valid (or was already used). Enter the current code from your authenticator app.";
            with_login_csrf(
                page(username, next, Some(msg.into()), None, Some(again)),
                axum::http::StatusCode::UNAUTHORIZED,
            )
        }
        Err(e) => failed(pending.username, pending.next, &e, None),
    }
}

fn failed(username: String, next: String, e: &Error, mfa: Option<String>) -> Response {
    let status = crate::http::error::status(e);
    let msg = match e {
        Error::Unauthenticated { code: "INVALID_CREDENTIALS", .. } => "Wrong username or password.".to_string(),
        other => render::message(other),
    };
    with_login_csrf(page(username, next, Some(msg), None, mfa), status)
}

fn logged_in(issued: &crate::app::auth::Issued, next: &str) -> Response {
    let mut resp = Redirect::to(next).into_response();
    let Some(secret) = &issued.session_secret else { return resp };
    let age = issued.persistent_for.map(|d| format!("; Max-Age={}", d.as_secs())).unwrap_or_default();
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&format!("{SESSION_COOKIE}={secret}; Path=/; HttpOnly; SameSite=Lax{age}")) {
        h.append(header::SET_COOKIE, v);
    }
    if let Ok(v) =
        HeaderValue::from_str(&format!("{LOGIN_CSRF_COOKIE}=; Path=/login; HttpOnly; SameSite=Strict; Max-Age=0"))
    {
        h.append(header::SET_COOKIE, v);
    }
    resp
}

async fn logout(State(app): State<App>, posted: Posted) -> Response {
    if let Err(e) = app.logout(&posted.session.actor).await {
        return render::error_response(&posted.session, &e);
    }
    let mut resp = Redirect::to("/login?reason=logout").into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0")) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}
