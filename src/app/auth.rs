//! Authentication: resolving credentials to a principal, login with lockout and optional TOTP,
//! refresh-token rotation with reuse detection, logout, and MFA enrolment.

use std::net::IpAddr;

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use crate::audit::{self, Event, Outcome};
use crate::auth::tokens::{self, ACCESS_PREFIX, API_KEY_PREFIX, AccessClaims, REFRESH_PREFIX, SESSION_PREFIX};
use crate::auth::{Actor, Principal, password, totp};
use crate::error::{Error, Result};
use crate::model::{IdKind, Role, Scope, new_id, now_rfc3339, to_rfc3339};
use crate::secret::{Secret, ct_eq, random_token};
use crate::store::Store;
use crate::store::sessions::NewSession;
use crate::store::users::UserRow;

/// Credentials found on a request, before they are checked.
#[derive(Debug)]
pub enum Credential {
    /// `Authorization: Bearer …` or `X-API-Key: …`.
    Token(String),
    /// The session cookie.
    SessionCookie(String),
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub username: String,
    #[schema(value_type = String, format = Password)]
    pub password: Secret<String>,
    #[serde(default)]
    pub totp_code: Option<String>,
    #[serde(default)]
    pub remember_me: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    pub id: String,
    pub username: String,
    pub role: Role,
    pub mfa_enabled: bool,
    pub disabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locked_until: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&UserRow> for UserView {
    fn from(u: &UserRow) -> Self {
        UserView {
            id: u.id.clone(),
            username: u.username.clone(),
            role: u.role,
            mfa_enabled: u.totp_enabled,
            disabled: u.disabled,
            locked_until: u.locked_until.clone().filter(|t| *t > now_rfc3339()),
            created_at: u.created_at.clone(),
            updated_at: u.updated_at.clone(),
        }
    }
}

/// A successful login or refresh: what the HTTP layer puts in the body and the cookies.
pub struct Issued {
    pub access_token: String,
    pub expires_in: u64,
    pub refresh_token: String,
    /// Present on login only: the session cookie's value.
    pub session_secret: Option<String>,
    /// Cookie lifetime when the user asked to be remembered; `None` = browser-session cookie.
    pub persistent_for: Option<std::time::Duration>,
    pub user: UserView,
}

pub enum LoginOutcome {
    /// Password right, TOTP enabled, no code sent: ask for it.
    MfaRequired,
    LoggedIn(Box<Issued>),
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MfaSetup {
    /// Base32 secret for manual entry.
    pub secret: String,
    /// `otpauth://` URI for QR codes.
    pub otpauth_url: String,
}

fn invalid_credentials() -> Error {
    Error::unauthenticated("INVALID_CREDENTIALS", "invalid username or password")
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc))
}

impl AppState {
    /// Resolves credentials to a principal; the error is `(code, message)` for a 401.
    pub async fn authenticate(&self, cred: &Credential) -> Result<Principal, (&'static str, &'static str)> {
        let internal = |e: sqlx::Error| {
            tracing::error!(error = %e, "authentication lookup failed");
            ("INTERNAL_ERROR", "authentication is unavailable right now")
        };
        match cred {
            Credential::Token(t) if t.starts_with(ACCESS_PREFIX) => {
                let claims =
                    tokens::verify(self.keys.token_signing_key(), t, Utc::now().timestamp()).map_err(|e| match e {
                        tokens::TokenError::Expired => {
                            ("TOKEN_EXPIRED", "access token expired: refresh it or log in again")
                        }
                        _ => ("INVALID_TOKEN", "invalid access token"),
                    })?;
                self.session_principal(&claims.session_id, Some(&claims.user_id))
                    .await
                    .map_err(|e| e.unwrap_or(("INTERNAL_ERROR", "authentication is unavailable right now")))
            }
            Credential::Token(t) if t.starts_with(API_KEY_PREFIX) => {
                let hash = self.keys.hash_token(t);
                if let Some(p) = self.key_cache.get(&hash) {
                    return Ok(p);
                }
                let (p, expires_at) = self.api_key_principal(t, &hash).await.map_err(|e| match e {
                    Ok(reason) => reason,
                    Err(db) => internal(db),
                })?;
                let valid_for =
                    expires_at.as_deref().and_then(parse_time).map(|t| (t - Utc::now()).to_std().unwrap_or_default());
                self.key_cache.put(hash, p.clone(), valid_for);
                Ok(p)
            }
            Credential::Token(_) => {
                Err(("INVALID_TOKEN", "unrecognised credential: expected an `ib_…` API key or an `ibt_…` access token"))
            }
            Credential::SessionCookie(secret) => {
                if !secret.starts_with(SESSION_PREFIX) {
                    return Err(("INVALID_SESSION", "invalid session cookie"));
                }
                let hash = self.keys.hash_token(secret);
                let session = self.store.session_by_secret_hash(&hash).await.map_err(internal)?;
                let Some(session) = session else { return Err(("INVALID_SESSION", "invalid session cookie")) };
                self.session_principal(&session.id, None)
                    .await
                    .map_err(|e| e.unwrap_or(("INVALID_SESSION", "invalid session")))
            }
        }
    }

    /// `Err(None)` means a database failure already logged.
    async fn session_principal(
        &self,
        session_id: &str,
        expect_user: Option<&str>,
    ) -> Result<Principal, Option<(&'static str, &'static str)>> {
        let session = self.store.session_get(session_id).await.map_err(|e| {
            tracing::error!(error = %e, "session lookup failed");
            None
        })?;
        let Some(session) = session else { return Err(Some(("INVALID_TOKEN", "unknown session"))) };
        if session.revoked_at.is_some() {
            return Err(Some(("SESSION_REVOKED", "this session was logged out or revoked: log in again")));
        }
        if session.expires_at <= now_rfc3339() {
            return Err(Some(("SESSION_EXPIRED", "session expired: log in again")));
        }
        if expect_user.is_some_and(|u| u != session.user_id) {
            return Err(Some(("INVALID_TOKEN", "invalid access token")));
        }
        let user = self.store.user_get(&session.user_id).await.map_err(|e| {
            tracing::error!(error = %e, "user lookup failed");
            None
        })?;
        match user {
            Some(u) if !u.disabled => {
                Ok(Principal::User { user_id: u.id, username: u.username, role: u.role, session_id: session.id })
            }
            _ => Err(Some(("USER_DISABLED", "this user is disabled"))),
        }
    }

    async fn api_key_principal(
        &self,
        token: &str,
        token_hash: &str,
    ) -> Result<(Principal, Option<String>), Result<(&'static str, &'static str), sqlx::Error>> {
        const INVALID: (&str, &str) = ("INVALID_API_KEY", "invalid API key");
        let id = tokens::api_key_id(token).ok_or(Ok(INVALID))?;
        let key = self.store.api_key_get(&id).await.map_err(Err)?.ok_or(Ok(INVALID))?;
        if !ct_eq(token_hash.as_bytes(), key.secret_hash.as_bytes()) {
            return Err(Ok(INVALID));
        }
        if key.revoked_at.is_some() {
            return Err(Ok(("API_KEY_REVOKED", "this API key was revoked")));
        }
        let now = now_rfc3339();
        if key.expires_at.as_deref().is_some_and(|e| e <= now.as_str()) {
            return Err(Ok(("API_KEY_EXPIRED", "this API key has expired")));
        }
        let owner = self.store.user_get(&key.user_id).await.map_err(Err)?;
        let Some(owner) = owner.filter(|u| !u.disabled) else {
            return Err(Ok(("USER_DISABLED", "the owner of this API key is disabled")));
        };
        // Record use at most once a minute per key: keeps the hot path free of writes.
        let stale = key
            .last_used_at
            .as_deref()
            .and_then(parse_time)
            .is_none_or(|t| Utc::now() - t > ChronoDuration::seconds(60));
        if stale {
            let store = self.store.clone();
            let id = key.id.clone();
            tokio::spawn(async move {
                if let Err(e) = store.api_key_touch(&id, &now_rfc3339()).await {
                    tracing::warn!(error = %e, key = %id, "could not record API key use");
                }
            });
        }
        let scopes: Vec<Scope> = key.scopes.into_iter().filter(|s| owner.role.grants(*s)).collect();
        let principal = Principal::ApiKey {
            key_id: key.id,
            key_name: key.name,
            user_id: owner.id,
            username: owner.username,
            scopes,
        };
        Ok((principal, key.expires_at))
    }

    pub async fn login(&self, source_ip: Option<IpAddr>, req: LoginRequest) -> Result<LoginOutcome> {
        let anon = Actor::anonymous(source_ip);
        let fail = |outcome: Outcome, user_id: Option<String>, reason: &'static str| {
            let store = self.store.clone();
            let anon = anon.clone();
            let username = req.username.clone();
            async move {
                let target = user_id.unwrap_or_default();
                let mut ev = Event::new("auth.login", "user", &target)
                    .with_outcome(outcome)
                    .with_details(serde_json::json!({"username": username, "reason": reason}));
                if target.is_empty() {
                    ev.target_id = None;
                }
                audit::record(&store, &anon, ev).await
            }
        };

        let Some(user) = self.store.user_by_username(&req.username).await? else {
            let _ = password::verify(req.password.expose().clone(), self.dummy_password_hash.clone()).await?;
            fail(Outcome::Failure, None, "unknown user").await?;
            return Err(invalid_credentials());
        };

        let now = Utc::now();
        if let Some(until) = user.locked_until.as_deref().and_then(parse_time).filter(|t| *t > now) {
            fail(Outcome::Denied, Some(user.id.clone()), "locked").await?;
            let secs = (until - now).num_seconds().max(1) as u64;
            return Err(Error::TooManyRequests {
                code: "ACCOUNT_LOCKED",
                message: format!("too many failed logins: this account is locked for {secs} more seconds"),
                retry_after_secs: secs,
            });
        }

        if !password::verify(req.password.expose().clone(), user.password_hash.clone()).await? {
            self.count_failed_login(&user).await?;
            fail(Outcome::Failure, Some(user.id.clone()), "wrong password").await?;
            return Err(invalid_credentials());
        }
        if user.disabled {
            fail(Outcome::Denied, Some(user.id.clone()), "disabled").await?;
            return Err(Error::forbidden("USER_DISABLED", "this user is disabled"));
        }
        if user.totp_enabled {
            let Some(code) = req.totp_code.as_deref().filter(|c| !c.is_empty()) else {
                return Ok(LoginOutcome::MfaRequired);
            };
            let secret = self.totp_secret(&user)?;
            let step = totp::check(&secret, &user.username, code)?;
            let fresh = match step {
                Some(step) => self.store.user_advance_totp_step(&user.id, step as i64).await?,
                None => false,
            };
            if !fresh {
                self.count_failed_login(&user).await?;
                fail(Outcome::Failure, Some(user.id.clone()), "wrong TOTP code").await?;
                return Err(Error::unauthenticated("INVALID_TOTP", "invalid or already used TOTP code"));
            }
        }
        if user.failed_logins > 0 || user.locked_until.is_some() {
            self.store.user_set_login_state(&user.id, 0, None).await?;
        }

        let ttl = if req.remember_me { self.config.auth.remember_me_ttl } else { self.config.auth.session_ttl };
        let session_id = new_id(IdKind::Session);
        let session_secret = random_token(SESSION_PREFIX, 40);
        let refresh = random_token(REFRESH_PREFIX, 40);
        let now_s = to_rfc3339(now);
        let expires = to_rfc3339(now + ChronoDuration::from_std(ttl).map_err(Error::internal)?);
        let ip = source_ip.map(|i| i.to_string()).unwrap_or_default();
        let mut tx = self.store.begin().await?;
        Store::session_insert(
            &mut tx,
            &NewSession {
                id: &session_id,
                user_id: &user.id,
                secret_hash: &self.keys.hash_token(&session_secret),
                remember_me: req.remember_me,
                source_ip: &ip,
                now: &now_s,
                expires_at: &expires,
            },
        )
        .await?;
        Store::refresh_insert(
            &mut tx,
            &new_id(IdKind::RefreshToken),
            &session_id,
            &self.keys.hash_token(&refresh),
            &now_s,
            &expires,
        )
        .await?;
        let actor = Actor {
            principal: Some(Principal::User {
                user_id: user.id.clone(),
                username: user.username.clone(),
                role: user.role,
                session_id: session_id.clone(),
            }),
            source_ip,
            rejected: None,
        };
        audit::append(
            &mut tx,
            &actor,
            Event::new("auth.login", "user", &user.id)
                .with_details(serde_json::json!({"session_id": session_id, "mfa": user.totp_enabled})),
        )
        .await?;
        tx.commit().await?;

        let (access_token, expires_in) = self.access_token(&session_id, &user.id);
        Ok(LoginOutcome::LoggedIn(Box::new(Issued {
            access_token,
            expires_in,
            refresh_token: refresh,
            session_secret: Some(session_secret),
            persistent_for: req.remember_me.then_some(ttl),
            user: UserView::from(&user),
        })))
    }

    fn access_token(&self, session_id: &str, user_id: &str) -> (String, u64) {
        let ttl = self.config.auth.access_token_ttl.as_secs();
        let claims = AccessClaims {
            session_id: session_id.to_string(),
            user_id: user_id.to_string(),
            expires_unix: Utc::now().timestamp() + ttl as i64,
        };
        (tokens::sign(self.keys.token_signing_key(), &claims), ttl)
    }

    /// Failed password or TOTP: count it, and lock the account with exponential backoff once the
    /// threshold is reached (base, 2×base, 4×base … capped).
    async fn count_failed_login(&self, user: &UserRow) -> Result<()> {
        let failed = user.failed_logins + 1;
        let a = &self.config.auth;
        let locked_until = if failed >= i64::from(a.lockout_threshold) {
            let exp = (failed - i64::from(a.lockout_threshold)).min(20) as u32;
            let secs = a.lockout_base.as_secs().saturating_mul(1u64 << exp).min(a.lockout_max.as_secs());
            Some(to_rfc3339(Utc::now() + ChronoDuration::seconds(secs as i64)))
        } else {
            None
        };
        self.store.user_set_login_state(&user.id, failed, locked_until.as_deref()).await?;
        Ok(())
    }

    fn totp_secret(&self, user: &UserRow) -> Result<Vec<u8>> {
        let sealed = user.totp_secret.as_deref().ok_or_else(|| Error::internal("TOTP enabled without a secret"))?;
        Ok(self.keys.unseal(&totp_context(&user.id), sealed)?)
    }

    /// Rotates a refresh token: the old one is spent, a new one and a new access token are issued.
    /// Presenting a spent token again revokes the whole session (someone copied it).
    pub async fn refresh(&self, source_ip: Option<IpAddr>, refresh_token: &str) -> Result<Issued> {
        let invalid = || Error::unauthenticated("INVALID_REFRESH_TOKEN", "invalid refresh token: log in again");
        if !refresh_token.starts_with(REFRESH_PREFIX) {
            return Err(invalid());
        }
        let hash = self.keys.hash_token(refresh_token);
        let now = now_rfc3339();
        let mut tx = self.store.begin().await?;
        let Some(row) = Store::refresh_by_hash(&mut tx, &hash).await? else {
            return Err(invalid());
        };
        let session = self.store.session_get(&row.session_id).await?.ok_or_else(invalid)?;
        let user = self.store.user_get(&session.user_id).await?.ok_or_else(invalid)?;
        let actor = Actor {
            principal: Some(Principal::User {
                user_id: user.id.clone(),
                username: user.username.clone(),
                role: user.role,
                session_id: session.id.clone(),
            }),
            source_ip,
            rejected: None,
        };
        if row.used_at.is_some() || !Store::refresh_mark_used(&mut tx, &row.id, &now).await? {
            Store::session_revoke(&mut tx, &session.id, "refresh_token_reuse", &now).await?;
            audit::append(
                &mut tx,
                &actor,
                Event::new("auth.refresh_reuse", "session", &session.id)
                    .with_outcome(Outcome::Denied)
                    .with_details(serde_json::json!({"revoked": "session"})),
            )
            .await?;
            tx.commit().await?;
            return Err(Error::unauthenticated(
                "REFRESH_TOKEN_REUSED",
                "this refresh token was already used: the session has been revoked, log in again",
            ));
        }
        if session.revoked_at.is_some() {
            return Err(Error::unauthenticated("SESSION_REVOKED", "this session was revoked: log in again"));
        }
        if session.expires_at <= now || row.expires_at <= now {
            return Err(Error::unauthenticated("SESSION_EXPIRED", "session expired: log in again"));
        }
        if user.disabled {
            return Err(Error::forbidden("USER_DISABLED", "this user is disabled"));
        }
        let next = random_token(REFRESH_PREFIX, 40);
        Store::refresh_insert(
            &mut tx,
            &new_id(IdKind::RefreshToken),
            &session.id,
            &self.keys.hash_token(&next),
            &now,
            &session.expires_at,
        )
        .await?;
        audit::append(&mut tx, &actor, Event::new("auth.refresh", "session", &session.id)).await?;
        tx.commit().await?;
        let (access_token, expires_in) = self.access_token(&session.id, &user.id);
        Ok(Issued {
            access_token,
            expires_in,
            refresh_token: next,
            session_secret: None,
            persistent_for: None,
            user: UserView::from(&user),
        })
    }

    pub async fn logout(&self, actor: &Actor) -> Result<()> {
        let p = actor.authenticated()?;
        let Principal::User { session_id, .. } = p else {
            return Err(Error::bad_request(
                "NOT_A_SESSION",
                "API keys have no session to log out of: revoke the key instead",
            ));
        };
        let mut tx = self.store.begin().await?;
        Store::session_revoke(&mut tx, session_id, "logout", &now_rfc3339()).await?;
        audit::append(&mut tx, actor, Event::new("auth.logout", "session", session_id)).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn me(&self, actor: &Actor) -> Result<serde_json::Value> {
        let p = actor.authenticated()?;
        let user = self
            .store
            .user_get(p.user_id())
            .await?
            .ok_or_else(|| Error::unauthenticated("INVALID_TOKEN", "user no longer exists"))?;
        let scopes: Vec<&str> = Scope::ALL.iter().filter(|s| p.has(**s)).map(|s| s.as_str()).collect();
        let mut v = serde_json::to_value(UserView::from(&user)).map_err(Error::internal)?;
        v["scopes"] = serde_json::json!(scopes);
        v["auth"] = serde_json::json!(match p {
            Principal::User { session_id, .. } => serde_json::json!({"type": "session", "session_id": session_id}),
            Principal::ApiKey { key_id, key_name, .. } =>
                serde_json::json!({"type": "api_key", "key_id": key_id, "key_name": key_name}),
        });
        Ok(v)
    }

    /// Starts (or restarts) TOTP enrolment: a new secret, not active until confirmed.
    pub async fn mfa_setup(&self, actor: &Actor) -> Result<MfaSetup> {
        let p = actor.require_session(None)?;
        let mut user =
            self.store.user_get(p.user_id()).await?.ok_or_else(|| Error::internal("session user vanished"))?;
        if user.totp_enabled {
            return Err(Error::conflict(
                "MFA_ALREADY_ENABLED",
                "TOTP is already enabled: disable it first to enrol a new device",
                None,
            ));
        }
        let secret = totp::generate_secret();
        let (base32, url) = totp::provisioning(&secret, &user.username)?;
        user.totp_secret = Some(self.keys.seal(&totp_context(&user.id), &secret)?);
        let mut tx = self.store.begin().await?;
        Store::user_update(&mut tx, &user, &now_rfc3339()).await?;
        audit::append(&mut tx, actor, Event::new("user.mfa_setup", "user", &user.id)).await?;
        tx.commit().await?;
        Ok(MfaSetup { secret: base32, otpauth_url: url })
    }

    /// Confirms enrolment with a current code (`enable`) or turns TOTP off with one (`disable`).
    pub async fn mfa_set(&self, actor: &Actor, code: &str, enable: bool) -> Result<UserView> {
        let p = actor.require_session(None)?;
        let mut user =
            self.store.user_get(p.user_id()).await?.ok_or_else(|| Error::internal("session user vanished"))?;
        if enable && user.totp_enabled {
            return Err(Error::conflict("MFA_ALREADY_ENABLED", "TOTP is already enabled", None));
        }
        if !enable && !user.totp_enabled {
            return Err(Error::conflict("MFA_NOT_ENABLED", "TOTP is not enabled", None));
        }
        if user.totp_secret.is_none() {
            return Err(Error::conflict("MFA_NOT_SET_UP", "start with POST /api/v1/auth/mfa/setup", None));
        }
        let secret = self.totp_secret(&user)?;
        let ok = match totp::check(&secret, &user.username, code)? {
            Some(step) => self.store.user_advance_totp_step(&user.id, step as i64).await?,
            None => false,
        };
        if !ok {
            return Err(Error::invalid_field("totp_code", "invalid or already used TOTP code"));
        }
        user.totp_enabled = enable;
        if !enable {
            user.totp_secret = None;
        }
        user.totp_last_step = self.store.user_get(&user.id).await?.map_or(0, |u| u.totp_last_step);
        let mut tx = self.store.begin().await?;
        Store::user_update(&mut tx, &user, &now_rfc3339()).await?;
        let action = if enable { "user.mfa_enable" } else { "user.mfa_disable" };
        audit::append(&mut tx, actor, Event::new(action, "user", &user.id)).await?;
        tx.commit().await?;
        Ok(UserView::from(&user))
    }
}

/// The AEAD context of a user's TOTP secret.
fn totp_context(user_id: &str) -> String {
    format!("users.totp_secret:{user_id}")
}
