//! Who is asking and what they may do. `Actor` is the requester as the application layer sees it
//! (a user session, an API key, or nobody), with its source address; `require` and
//! `require_session` are the only permission checks, so every refusal reads the same.

pub mod cache;
pub mod password;
pub mod ratelimit;
pub mod tokens;
pub mod totp;

use std::net::IpAddr;

use crate::error::Error;
use crate::model::{Role, Scope};

#[derive(Debug, Clone)]
pub enum Principal {
    /// A logged-in user: by session cookie or by an access token of that session.
    User { user_id: String, username: String, role: Role, session_id: String },
    /// An API key, acting with the intersection of its scopes and its owner's current role.
    ApiKey { key_id: String, key_name: String, user_id: String, username: String, scopes: Vec<Scope> },
}

impl Principal {
    pub fn has(&self, scope: Scope) -> bool {
        match self {
            Principal::User { role, .. } => role.grants(scope),
            Principal::ApiKey { scopes, .. } => scopes.contains(&scope),
        }
    }

    pub fn user_id(&self) -> &str {
        match self {
            Principal::User { user_id, .. } | Principal::ApiKey { user_id, .. } => user_id,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Actor {
    pub principal: Option<Principal>,
    pub source_ip: Option<IpAddr>,
    /// Set when the request carried credentials that did not check out: the reason it is
    /// anonymous, reported instead of a generic 401.
    pub rejected: Option<(&'static str, &'static str)>,
}

impl Actor {
    pub fn anonymous(source_ip: Option<IpAddr>) -> Self {
        Actor { principal: None, source_ip, rejected: None }
    }

    /// The appliance itself (first-run setup, background work).
    pub fn system() -> Self {
        Actor { principal: None, source_ip: None, rejected: None }
    }

    pub fn kind(&self) -> &'static str {
        match &self.principal {
            Some(Principal::User { .. }) => "user",
            Some(Principal::ApiKey { .. }) => "api_key",
            None if self.source_ip.is_none() => "system",
            None => "anonymous",
        }
    }

    pub fn id(&self) -> Option<&str> {
        match &self.principal {
            Some(Principal::User { user_id, .. }) => Some(user_id),
            Some(Principal::ApiKey { key_id, .. }) => Some(key_id),
            None => None,
        }
    }

    pub fn name(&self) -> Option<&str> {
        match &self.principal {
            Some(Principal::User { username, .. }) => Some(username),
            Some(Principal::ApiKey { key_name, .. }) => Some(key_name),
            None => None,
        }
    }

    /// The authenticated principal, or 401.
    pub fn authenticated(&self) -> Result<&Principal, Error> {
        match (&self.principal, self.rejected) {
            (Some(p), _) => Ok(p),
            (None, Some((code, message))) => Err(Error::unauthenticated(code, message)),
            (None, None) => Err(Error::unauthenticated(
                "UNAUTHENTICATED",
                "authentication required: send `Authorization: Bearer <token or API key>`, `X-API-Key`, or log in",
            )),
        }
    }

    /// The principal if it holds `scope`; 401 without credentials, 403 naming the scope otherwise.
    pub fn require(&self, scope: Scope) -> Result<&Principal, Error> {
        let p = self.authenticated()?;
        if p.has(scope) { Ok(p) } else { Err(missing_scope(scope)) }
    }

    /// Like `require`, and the caller must be a user session: API keys can never manage users or
    /// keys, whatever their scopes.
    pub fn require_session(&self, scope: Option<Scope>) -> Result<&Principal, Error> {
        let p = self.authenticated()?;
        if matches!(p, Principal::ApiKey { .. }) {
            return Err(Error::Forbidden {
                code: "SESSION_REQUIRED",
                message: "API keys cannot manage users or API keys: log in as a user".into(),
                details: Some(serde_json::json!({ "required": "user_session" })),
            });
        }
        match scope {
            Some(s) if !p.has(s) => Err(missing_scope(s)),
            _ => Ok(p),
        }
    }
}

pub fn missing_scope(scope: Scope) -> Error {
    Error::Forbidden {
        code: "INSUFFICIENT_SCOPE",
        message: format!("missing permission: this action needs the `{scope}` scope"),
        details: Some(serde_json::json!({ "missing_scope": scope.as_str() })),
    }
}
