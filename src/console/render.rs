//! What every page shares: the layout's context (who is logged in, what they may do, the CSRF
//! token, a notice), the error page, and the redirect that leaves a notice for the next page.

use askama::Template;
use askama_web::WebTemplate;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

use super::session::{FLASH_COOKIE, Session};
use crate::error::Error;
use crate::model::Scope;

/// The base layout's context; every page template has it as `l`.
#[derive(Debug, Clone)]
pub struct Layout {
    pub title: String,
    /// The navigation entry to mark as current (`assets`, `vnis`, …).
    pub nav: &'static str,
    pub user: Option<Session>,
    pub csrf: String,
    pub flash: Option<String>,
}

impl Layout {
    pub fn new(session: &Session, title: impl Into<String>, nav: &'static str) -> Layout {
        Layout {
            title: title.into(),
            nav,
            csrf: session.csrf.clone(),
            flash: session.flash.clone(),
            user: Some(session.clone()),
        }
    }

    /// A page for someone not logged in (login, errors before a session exists).
    pub fn anonymous(title: impl Into<String>) -> Layout {
        Layout { title: title.into(), nav: "", user: None, csrf: String::new(), flash: None }
    }

    /// Whether the user holds `scope` (by name): templates show only the actions it allows.
    pub fn can(&self, scope: &str) -> bool {
        match (&self.user, scope.parse::<Scope>()) {
            (Some(u), Ok(s)) => u.can(s),
            _ => false,
        }
    }

    pub fn username(&self) -> &str {
        self.user.as_ref().map(|u| u.username.as_str()).unwrap_or_default()
    }

    pub fn role(&self) -> &str {
        self.user.as_ref().map(|u| u.role.as_str()).unwrap_or_default()
    }

    pub fn current(&self, nav: &str) -> bool {
        self.nav == nav
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "console/error.html")]
struct ErrorPage<'a> {
    l: Layout,
    status: u16,
    reason: &'a str,
    message: &'a str,
}

/// A whole page explaining a failure, with the navigation when someone is logged in.
pub fn error_page(session: Option<&Session>, status: StatusCode, message: &str) -> Response {
    let reason = status.canonical_reason().unwrap_or("Error");
    let l = match session {
        Some(s) => Layout::new(s, reason, ""),
        None => Layout::anonymous(reason),
    };
    let mut resp = ErrorPage { l, status: status.as_u16(), reason, message }.into_response();
    *resp.status_mut() = status;
    resp
}

/// The error page for a service-layer error.
pub fn error_response(session: &Session, e: &Error) -> Response {
    error_page(Some(session), crate::http::error::status(e), &message(e))
}

/// A service-layer error as a sentence for the page: its own message, except internal failures,
/// whose context goes to the log only.
pub fn message(e: &Error) -> String {
    match e {
        Error::Internal { context } => {
            tracing::error!(error = %context, "internal error (console)");
            "Something went wrong on the appliance; the details are in its log.".into()
        }
        other => format!("{other} ({})", other.code()),
    }
}

/// Redirects (303, so a reload does not resubmit) leaving `notice` for the next page.
pub fn done(to: &str, notice: &str) -> Response {
    let mut resp = Redirect::to(to).into_response();
    let value =
        format!("{FLASH_COOKIE}={}; Path=/; HttpOnly; SameSite=Lax; Max-Age=60", super::form::urlencode(notice));
    if let Ok(v) = HeaderValue::from_str(&value) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

/// Formats a byte count for people (`1.5 GiB`).
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{n} B") } else { format!("{v:.1} {}", UNITS[unit]) }
}

/// A percentage (0–100) of `part` in `whole`, 0 when `whole` is 0.
pub fn percent(part: u64, whole: u64) -> u64 {
    part.saturating_mul(100).checked_div(whole).unwrap_or(0).min(100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_percentages_read_well() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(3 * 1024 * 1024 * 1024), "3.0 GiB");
        assert_eq!(percent(1, 3), 33);
        assert_eq!(percent(5, 0), 0);
        assert_eq!(percent(7, 5), 100);
    }
}
