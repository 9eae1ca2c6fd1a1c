//! The one error type of the application layer. It knows nothing about HTTP: each variant says
//! what kind of failure it is, a stable machine code and a message fit for the client. `Internal`
//! carries context for the log only; `http::error` is the single place that turns it into a response.

use serde_json::Value;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed (bad JSON, bad query parameter).
    #[error("{message}")]
    BadRequest { code: &'static str, message: String, details: Option<Value> },
    /// Well-formed but semantically invalid input.
    #[error("{message}")]
    Unprocessable { code: &'static str, message: String, details: Option<Value> },
    #[error("{message}")]
    Unauthenticated { code: &'static str, message: String },
    #[error("{message}")]
    Forbidden { code: &'static str, message: String, details: Option<Value> },
    #[error("{message}")]
    NotFound { code: &'static str, message: String },
    #[error("{message}")]
    Conflict { code: &'static str, message: String, details: Option<Value> },
    #[error("{message}")]
    UnsupportedMediaType { message: String },
    /// Something the appliance depends on (a BMC, an image server) failed or did not answer.
    #[error("{message}")]
    Upstream { code: &'static str, message: String, details: Option<Value> },
    #[error("{message}")]
    TooManyRequests { code: &'static str, message: String, retry_after_secs: u64 },
    /// Something broke on our side. The context is logged, never shown.
    #[error("internal error: {context}")]
    Internal { context: String },
}

impl Error {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Error::BadRequest { code, message: message.into(), details: None }
    }

    /// Invalid value of one named field.
    pub fn invalid_field(field: &str, message: impl Into<String>) -> Self {
        Error::Unprocessable {
            code: "INVALID_FIELD",
            message: message.into(),
            details: Some(serde_json::json!({ "field": field })),
        }
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Error::NotFound { code, message: message.into() }
    }

    pub fn conflict(code: &'static str, message: impl Into<String>, details: Option<Value>) -> Self {
        Error::Conflict { code, message: message.into(), details }
    }

    pub fn unauthenticated(code: &'static str, message: impl Into<String>) -> Self {
        Error::Unauthenticated { code, message: message.into() }
    }

    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Error::Forbidden { code, message: message.into(), details: None }
    }

    pub fn internal(context: impl std::fmt::Display) -> Self {
        Error::Internal { context: context.to_string() }
    }

    /// The stable code clients match on.
    pub fn code(&self) -> &'static str {
        match self {
            Error::BadRequest { code, .. }
            | Error::Unprocessable { code, .. }
            | Error::Unauthenticated { code, .. }
            | Error::Forbidden { code, .. }
            | Error::NotFound { code, .. }
            | Error::Conflict { code, .. }
            | Error::Upstream { code, .. }
            | Error::TooManyRequests { code, .. } => code,
            Error::UnsupportedMediaType { .. } => "UNSUPPORTED_MEDIA_TYPE",
            Error::Internal { .. } => "INTERNAL_ERROR",
        }
    }
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        Error::internal(format_args!("database: {e}"))
    }
}

impl From<crate::secret::CryptoError> for Error {
    fn from(e: crate::secret::CryptoError) -> Self {
        Error::internal(e)
    }
}
