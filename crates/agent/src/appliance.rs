//! Talking to the appliance over HTTP (blocking ureq, run off the async runtime): enrollment,
//! registration, heartbeats. Errors carry the appliance's own message and code.

use std::time::Duration;

use ironbay_wire::register::{HeartbeatRequest, HeartbeatResponse, RegisterRequest, RegisterResponse};
use serde::de::DeserializeOwned;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("cannot reach the appliance: {0}")]
    Unreachable(String),
    #[error("the appliance answered {status} {code}: {message}")]
    Refused { status: u16, code: String, message: String },
    #[error("the appliance's answer is not what was expected: {0}")]
    BadAnswer(String),
}

impl ApiError {
    /// Worth retrying (the appliance may come back); a refusal is not.
    pub fn is_transient(&self) -> bool {
        match self {
            ApiError::Unreachable(_) => true,
            ApiError::Refused { status, .. } => *status >= 500 || *status == 429,
            ApiError::BadAnswer(_) => false,
        }
    }
}

pub struct Appliance {
    base: String,
    http: ureq::Agent,
}

#[derive(serde::Deserialize)]
struct Enrolled {
    id: String,
}

impl Appliance {
    pub fn new(base: &str) -> Appliance {
        let http: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        Appliance { base: base.trim_end_matches('/').to_string(), http }
    }

    fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        bearer: Option<&str>,
        body: &serde_json::Value,
    ) -> Result<T, ApiError> {
        let mut req = self.http.post(format!("{}{path}", self.base));
        if let Some(t) = bearer {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        let mut resp = req.send_json(body).map_err(|e| ApiError::Unreachable(e.to_string()))?;
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().map_err(|e| ApiError::Unreachable(e.to_string()))?;
        if !(200..300).contains(&status) {
            let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
            let field = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
            return Err(ApiError::Refused { status, code: field("code"), message: field("error") });
        }
        serde_json::from_str(&text).map_err(|e| ApiError::BadAnswer(e.to_string()))
    }

    /// Enrolls the agent's key with its boot token; returns the device id.
    pub fn enroll(&self, boot_token: &str, name: &str, public_key_pem: &str) -> Result<String, ApiError> {
        let body = serde_json::json!({
            "token": boot_token,
            "name": name,
            "public_key": public_key_pem,
            "tags": ["agent"],
            "metadata": {"agent_version": env!("CARGO_PKG_VERSION")},
        });
        self.post::<Enrolled>("/api/v1/devices/enroll", None, &body).map(|e| e.id)
    }

    pub fn register(&self, token: &str, req: &RegisterRequest) -> Result<RegisterResponse, ApiError> {
        let body = serde_json::to_value(req).map_err(|e| ApiError::BadAnswer(e.to_string()))?;
        self.post("/agent/register", Some(token), &body)
    }

    pub fn heartbeat(&self, token: &str, req: &HeartbeatRequest) -> Result<HeartbeatResponse, ApiError> {
        let body = serde_json::to_value(req).map_err(|e| ApiError::BadAnswer(e.to_string()))?;
        self.post("/agent/heartbeat", Some(token), &body)
    }
}
