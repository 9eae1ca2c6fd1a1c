//! Submitted forms: every POST carries the session's CSRF token (`_csrf`), checked before the
//! handler runs, and its fields are read by name (a form is not a fixed struct: checkboxes repeat,
//! empty inputs mean "not given").

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::response::Response;

use super::session::Session;
use crate::app::App;

pub const CSRF_FIELD: &str = "_csrf";

/// A form's fields in the order sent.
#[derive(Debug, Clone, Default)]
pub struct FormData {
    pairs: Vec<(String, String)>,
}

impl FormData {
    pub fn parse(body: &[u8]) -> FormData {
        FormData { pairs: serde_urlencoded::from_bytes(body).unwrap_or_default() }
    }

    /// The first value of `name`, trimmed; None when missing or blank.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.trim()).filter(|v| !v.is_empty())
    }

    /// The value of `name` as sent (not trimmed): passwords, policy source.
    pub fn raw(&self, name: &str) -> Option<&str> {
        self.pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// `get`, or "" when missing: for re-filling a form.
    pub fn text(&self, name: &str) -> String {
        self.get(name).unwrap_or_default().to_string()
    }

    /// Every non-blank value of a repeated field (checkboxes, multi-selects).
    pub fn all(&self, name: &str) -> Vec<String> {
        self.pairs
            .iter()
            .filter(|(k, v)| k == name && !v.trim().is_empty())
            .map(|(_, v)| v.trim().to_string())
            .collect()
    }

    /// A checkbox: sent (with any value but "false"/"off") means checked.
    pub fn checked(&self, name: &str) -> bool {
        self.get(name).is_some_and(|v| v != "false" && v != "off")
    }
}

/// A POSTed form from a logged-in session whose CSRF token checked out.
pub struct Posted {
    pub session: Session,
    pub form: FormData,
}

impl FromRequest<App> for Posted {
    type Rejection = Response;

    async fn from_request(req: Request, app: &App) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let session = Session::from_request_parts(&mut parts, app).await?;
        let limit = app.config.max_body_bytes;
        let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| {
            super::render::error_page(
                Some(&session),
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("The form is larger than the {limit}-byte limit."),
            )
        })?;
        let form = FormData::parse(&bytes);
        if !session.csrf_ok(form.raw(CSRF_FIELD)) {
            return Err(csrf_refused(&session));
        }
        Ok(Posted { session, form })
    }
}

/// The answer to a form without this session's token: forged, or from a page older than the
/// current login.
pub fn csrf_refused(session: &Session) -> Response {
    tracing::warn!(user = %session.username, "console form refused: CSRF token missing or wrong");
    super::render::error_page(
        Some(session),
        StatusCode::FORBIDDEN,
        "This form was refused: its security token (CSRF) is missing or does not match your session. \
         Reload the page and submit it again.",
    )
}

pub fn urlencode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

pub fn urldecode(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_read_by_name() {
        let f = FormData::parse(b"name=+web-1+&scopes=assets%3Aread&scopes=vnis%3Aread&empty=&flag=on");
        assert_eq!(f.get("name"), Some("web-1"));
        assert_eq!(f.raw("name"), Some(" web-1 "));
        assert_eq!(f.get("empty"), None);
        assert_eq!(f.all("scopes"), vec!["assets:read", "vnis:read"]);
        assert!(f.checked("flag"));
        assert!(!f.checked("missing"));
        assert_eq!(urldecode(&urlencode("a b/ü?")), "a b/ü?");
    }
}
