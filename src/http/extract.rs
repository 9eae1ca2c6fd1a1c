//! Extractors that turn every malformed request into the uniform error body: JSON bodies (syntax,
//! unknown fields, wrong types, size), pagination and the requesting actor.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::app::{App, DEFAULT_PER_PAGE, MAX_PER_PAGE, PageRequest};
use crate::auth::Actor;
use crate::error::Error;

/// Routes that take a body without credentials.
const PUBLIC_BODY_ROUTES: &[&str] = &["/api/v1/auth/login", "/api/v1/auth/refresh"];

/// A JSON body. Errors: 415 without a JSON content type, 400 for an oversized body or broken JSON
/// (with line and column), 422 for a body of the wrong shape (with the field's path).
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<App> for ApiJson<T> {
    type Rejection = Error;

    async fn from_request(req: Request, app: &App) -> Result<Self, Error> {
        // Who is asking comes before what they sent: an anonymous caller of a protected route
        // learns it needs credentials, not what is wrong with its body.
        if let Some(actor) = req.extensions().get::<Actor>()
            && actor.principal.is_none()
            && !PUBLIC_BODY_ROUTES.contains(&req.uri().path())
        {
            actor.authenticated()?;
        }
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|v| {
                let v = v.trim().to_ascii_lowercase();
                v == "application/json" || (v.starts_with("application/") && v.ends_with("+json"))
            })
            .unwrap_or(false);
        if !is_json {
            return Err(Error::UnsupportedMediaType {
                message: "send the body as JSON with `Content-Type: application/json`".into(),
            });
        }
        let limit = app.config.max_body_bytes;
        let bytes = axum::body::to_bytes(req.into_body(), limit).await.map_err(|_| Error::BadRequest {
            code: "BODY_TOO_LARGE",
            message: format!("request body is larger than the {limit}-byte limit"),
            details: Some(serde_json::json!({"limit_bytes": limit})),
        })?;
        parse_json(&bytes).map(ApiJson)
    }
}

pub fn parse_json<T: DeserializeOwned>(bytes: &Bytes) -> Result<T, Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => data_error(&path, &inner.to_string()),
            _ => syntax_error(&inner),
        }
    })?;
    // Trailing garbage after the value is a syntax error too.
    de.end().map_err(|e| syntax_error(&e))?;
    Ok(value)
}

fn syntax_error(e: &serde_json::Error) -> Error {
    Error::BadRequest {
        code: "MALFORMED_JSON",
        message: format!("request body is not valid JSON: {e}"),
        details: Some(serde_json::json!({"line": e.line(), "column": e.column()})),
    }
}

/// Names the field at fault. serde reports unknown and missing fields in the message, not the
/// path, so those are read from it.
fn data_error(path: &str, message: &str) -> Error {
    let message = message.split(" at line ").next().unwrap_or(message).to_string();
    let quoted = message.split('`').nth(1).map(str::to_string);
    let parent = if path == "." { String::new() } else { path.to_string() };
    let join = |leaf: &str| if parent.is_empty() { leaf.to_string() } else { format!("{parent}.{leaf}") };
    if message.starts_with("unknown field") {
        let field = join(quoted.as_deref().unwrap_or("?"));
        let (code, text) = if field == "state" || field == "status" {
            ("READ_ONLY_FIELD", format!("`{field}` is read-only: the lifecycle sets it"))
        } else {
            ("UNKNOWN_FIELD", format!("unknown field `{field}`"))
        };
        return Error::Unprocessable {
            code,
            message: text,
            details: Some(serde_json::json!({"field": field, "reason": message})),
        };
    }
    if message.starts_with("missing field") {
        let field = join(quoted.as_deref().unwrap_or("?"));
        return Error::Unprocessable {
            code: "MISSING_FIELD",
            message: format!("missing required field `{field}`"),
            details: Some(serde_json::json!({"field": field})),
        };
    }
    let field = if parent.is_empty() { "body".to_string() } else { parent };
    Error::Unprocessable {
        code: "INVALID_FIELD",
        message: format!("invalid value for `{field}`: {message}"),
        details: Some(serde_json::json!({"field": field, "reason": message})),
    }
}

/// Query-string parameters as a map; each handler validates the ones it knows.
pub struct QueryMap(pub HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for QueryMap {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Error> {
        let q = parts.uri.query().unwrap_or("");
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(q)
            .map_err(|e| Error::bad_request("INVALID_QUERY", format!("malformed query string: {e}")))?;
        Ok(QueryMap(pairs.into_iter().collect()))
    }
}

impl QueryMap {
    pub fn page(&self) -> Result<PageRequest, Error> {
        let num = |name: &str, default: u32| -> Result<u32, Error> {
            match self.0.get(name) {
                None => Ok(default),
                Some(v) => v.trim().parse::<u32>().ok().filter(|n| *n >= 1).ok_or_else(|| Error::BadRequest {
                    code: "INVALID_QUERY",
                    message: format!("`{name}` must be a whole number of at least 1, got `{v}`"),
                    details: Some(serde_json::json!({"field": name})),
                }),
            }
        };
        let page = num("page", 1)?;
        // Above the maximum we serve the maximum, as the `meta.per_page` of the answer says.
        let per_page = num("per_page", DEFAULT_PER_PAGE)?.min(MAX_PER_PAGE);
        if u64::from(page) * u64::from(per_page) > i64::MAX as u64 / 2 {
            return Err(Error::BadRequest {
                code: "INVALID_QUERY",
                message: "`page` is too large".into(),
                details: Some(serde_json::json!({"field": "page"})),
            });
        }
        Ok(PageRequest { page, per_page })
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str).filter(|s| !s.is_empty())
    }

    /// A parameter parsed with `FromStr`, or 400 naming it.
    pub fn parse<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>, Error>
    where
        T::Err: std::fmt::Display,
    {
        self.get(name)
            .map(|v| {
                v.parse::<T>().map_err(|e| Error::BadRequest {
                    code: "INVALID_QUERY",
                    message: format!("invalid `{name}`: {e}"),
                    details: Some(serde_json::json!({"field": name})),
                })
            })
            .transpose()
    }
}

/// The requester, as resolved by the authentication middleware.
pub struct ReqActor(pub Actor);

impl<S: Send + Sync> FromRequestParts<S> for ReqActor {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Error> {
        Ok(ReqActor(parts.extensions.get::<Actor>().cloned().unwrap_or_else(|| Actor::anonymous(None))))
    }
}
