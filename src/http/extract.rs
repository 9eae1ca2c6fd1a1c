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
            && !crate::http::gate::is_device_path(req.uri().path())
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

/// An optional JSON body (e.g. `POST …/rotate`): an empty body means `T::default()`; a non-empty
/// one is checked exactly as `ApiJson` checks it.
pub struct MaybeJson<T>(pub T);

impl<T: DeserializeOwned + Default> FromRequest<App> for MaybeJson<T> {
    type Rejection = Error;

    async fn from_request(req: Request, app: &App) -> Result<Self, Error> {
        let (parts, body) = req.into_parts();
        let limit = app.config.max_body_bytes;
        if let Some(actor) = parts.extensions.get::<Actor>()
            && actor.principal.is_none()
        {
            actor.authenticated()?;
        }
        let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| Error::BadRequest {
            code: "BODY_TOO_LARGE",
            message: format!("request body is larger than the {limit}-byte limit"),
            details: Some(serde_json::json!({"limit_bytes": limit})),
        })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(MaybeJson(T::default()));
        }
        let req = Request::from_parts(parts, axum::body::Body::from(bytes));
        ApiJson::<T>::from_request(req, app).await.map(|ApiJson(v)| MaybeJson(v))
    }
}

pub fn parse_json<T: DeserializeOwned>(bytes: &Bytes) -> Result<T, Error> {
    // Syntax first (trailing garbage included): a well-formed body of the wrong shape must never
    // be reported as malformed JSON, whatever serde_json's typed path would classify it as.
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| syntax_error(&e))?;
    if !value.is_object() {
        return Err(Error::Unprocessable {
            code: "INVALID_FIELD",
            message: "the request body must be a JSON object".into(),
            details: Some(serde_json::json!({"field": "body"})),
        });
    }
    serde_path_to_error::deserialize(Strict(value)).map_err(|e| {
        let path = e.path().to_string();
        data_error(&path, &e.into_inner().to_string())
    })
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
        // serde_path_to_error's path already ends with the unknown key itself.
        let field = if parent.is_empty() { quoted.unwrap_or_else(|| "?".into()) } else { parent };
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

/// A `serde_json::Value` deserializer that refuses a JSON array where a struct is expected (serde's
/// derive would otherwise read the array positionally, field by field).
struct Strict(serde_json::Value);

impl<'de> serde::Deserializer<'de> for Strict {
    type Error = serde_json::Error;

    fn deserialize_any<V: serde::de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        use serde::de::IntoDeserializer;
        match self.0 {
            serde_json::Value::Object(m) => visitor.visit_map(StrictMap { iter: m.into_iter(), value: None }),
            serde_json::Value::Array(a) => visitor.visit_seq(StrictSeq(a.into_iter())),
            serde_json::Value::Null => visitor.visit_unit(),
            other => other.into_deserializer().deserialize_any(visitor),
        }
    }

    fn deserialize_option<V: serde::de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        if self.0.is_null() { visitor.visit_none() } else { visitor.visit_some(self) }
    }

    fn deserialize_struct<V: serde::de::Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        if self.0.is_array() {
            return Err(serde::de::Error::invalid_type(serde::de::Unexpected::Seq, &visitor));
        }
        self.deserialize_any(visitor)
    }

    fn deserialize_enum<V: serde::de::Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_enum(name, variants, visitor)
    }

    fn deserialize_newtype_struct<V: serde::de::Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_newtype_struct(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf unit unit_struct
        seq tuple tuple_struct map identifier ignored_any
    }
}

struct StrictSeq(std::vec::IntoIter<serde_json::Value>);

impl<'de> serde::de::SeqAccess<'de> for StrictSeq {
    type Error = serde_json::Error;
    fn next_element_seed<S: serde::de::DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, Self::Error> {
        self.0.next().map(|v| seed.deserialize(Strict(v))).transpose()
    }
}

struct StrictMap {
    iter: serde_json::map::IntoIter,
    value: Option<serde_json::Value>,
}

impl<'de> serde::de::MapAccess<'de> for StrictMap {
    type Error = serde_json::Error;
    fn next_key_seed<K: serde::de::DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, Self::Error> {
        use serde::de::IntoDeserializer;
        let Some((k, v)) = self.iter.next() else { return Ok(None) };
        self.value = Some(v);
        seed.deserialize(k.into_deserializer()).map(Some)
    }
    fn next_value_seed<V: serde::de::DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Self::Error> {
        seed.deserialize(Strict(self.value.take().unwrap_or(serde_json::Value::Null)))
    }
}
