//! The single mapping from `Error` to an HTTP response: `{"error", "code", "details"}` with the
//! status the variant implies. Internal errors are logged with their context and shown as a bare
//! "internal error".

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::Error;

/// The error body every failing API call answers with.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Human-readable message.
    pub error: String,
    /// Stable machine-readable code, e.g. `ASSET_NOT_FOUND`.
    pub code: String,
    /// Structured context: the field at fault, the missing scope, the conflicting id...
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
}

/// The status an error answers with, for the API and the console alike.
pub fn status(e: &Error) -> StatusCode {
    match e {
        Error::BadRequest { .. } => StatusCode::BAD_REQUEST,
        Error::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        Error::Unauthenticated { .. } => StatusCode::UNAUTHORIZED,
        Error::Forbidden { .. } => StatusCode::FORBIDDEN,
        Error::NotFound { .. } => StatusCode::NOT_FOUND,
        Error::Conflict { .. } => StatusCode::CONFLICT,
        Error::Upstream { .. } => StatusCode::BAD_GATEWAY,
        Error::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        Error::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
        Error::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let code = self.code();
        let (status, message, details, retry_after) = match self {
            Error::BadRequest { message, details, .. } => (StatusCode::BAD_REQUEST, message, details, None),
            Error::Unprocessable { message, details, .. } => (StatusCode::UNPROCESSABLE_ENTITY, message, details, None),
            Error::Unauthenticated { message, .. } => (StatusCode::UNAUTHORIZED, message, None, None),
            Error::Forbidden { message, details, .. } => (StatusCode::FORBIDDEN, message, details, None),
            Error::NotFound { message, .. } => (StatusCode::NOT_FOUND, message, None, None),
            Error::Conflict { message, details, .. } => (StatusCode::CONFLICT, message, details, None),
            Error::Upstream { message, details, .. } => (StatusCode::BAD_GATEWAY, message, details, None),
            Error::UnsupportedMediaType { message } => (StatusCode::UNSUPPORTED_MEDIA_TYPE, message, None, None),
            Error::TooManyRequests { message, retry_after_secs, .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                message,
                Some(serde_json::json!({"retry_after": retry_after_secs})),
                Some(retry_after_secs),
            ),
            Error::Internal { context } => {
                tracing::error!(error = %context, "internal error");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal error".to_string(), None, None)
            }
        };
        let body = ErrorBody {
            error: message,
            code: code.to_string(),
            details: details.unwrap_or_else(|| serde_json::json!({})),
        };
        let mut resp = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"ironbay\""));
        }
        if let Some(secs) = retry_after
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        resp
    }
}
