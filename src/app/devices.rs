//! Devices (KairOS shape): enrollment with a token and a public key or CSR, certificate renewal
//! proven by the device's key, listing, revocation (a delete keeps a revoked tombstone, so the
//! history and the CRL entries outlive it), and the device CA's certificate and CRL. The in-RAM
//! agent enrolls through exactly this path.

use base64::Engine as _;
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::enroll_tokens::{TOKEN_PREFIX, TokenStatus};
use super::{AppState, Page, PageRequest};
use crate::audit::{self, Event, Outcome};
use crate::auth::Actor;
use crate::error::{Error, Result};
use crate::model::{IdKind, Scope, ids, new_id, now_rfc3339, to_rfc3339};
use crate::pki::{self, DeviceCa, DeviceCertSpec, DeviceKey, KeyError, SUPPORTED_KEY_TYPES};
use crate::secret::{MasterKey, Secret};
use crate::store::Store;
use crate::store::devices::{DeviceEventRow, DeviceQuery, DeviceRow, DeviceStatusFilter, EnrollTokenRow};

/// How far a renewal's timestamp may be from the appliance's clock.
pub const RENEW_WINDOW_SECS: i64 = 300;
const MAX_METADATA_BYTES: usize = 16 * 1024;
const CA_KEY_CONTEXT: &str = "device_ca.key_sealed:1";

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrollRequest {
    /// The enrollment token (`ibe_…`).
    #[schema(value_type = String, format = Password)]
    pub token: Secret<String>,
    /// 1-64 characters of letters, digits, `-`, `_`, `.`; the certificate's CN.
    pub name: String,
    /// The device's public key, PEM SubjectPublicKeyInfo, Ed25519 or ECDSA P-256. Exactly one
    /// of `public_key` and `csr`.
    #[serde(default)]
    pub public_key: Option<String>,
    /// A PEM PKCS#10 request signed by the device's key (proves possession).
    #[serde(default)]
    pub csr: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// Free-form JSON object (at most 16 KiB), e.g. `{"os": "linux", "arch": "x86_64"}`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenewRequest {
    /// RFC 3339, within ±5 minutes of the appliance's clock; each value is accepted once.
    pub timestamp: String,
    /// Base64 signature over `ironbay-renew:{device_id}:{timestamp}` by the device's current
    /// key (Ed25519, or ECDSA P-256 with SHA-256, DER or r‖s).
    pub signature: String,
    /// Optional: rotate to the key of this CSR (which must be signed by that new key).
    #[serde(default)]
    pub csr: Option<String>,
}

/// The stand-in token row for an agent enrolling with its boot token: tagged `agent`, no VNI,
/// `enroll_token_id` naming the asset (`boot:<asset id>`).
fn boot_token_row(claims: &crate::boot::token::BootClaims) -> EnrollTokenRow {
    EnrollTokenRow {
        id: format!("boot:{}", claims.asset),
        tags: "[\"agent\"]".into(),
        vni_id: None,
        ..EnrollTokenRow::default()
    }
}

/// What enrollment and renewal answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct IssuedCertificate {
    /// The device's id (`dev_…`).
    pub id: String,
    /// PEM X.509 client certificate signed by the device CA.
    pub certificate: String,
    /// The CA's certificate (PEM), to verify it and the appliance's later answers.
    pub ca_certificate: String,
    /// Uppercase hex, as `openssl` prints it.
    pub serial_number: String,
    pub expires_at: String,
    pub name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeviceStatus {
    Online,
    Offline,
    Revoked,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceView {
    pub id: String,
    pub name: String,
    /// `online` when seen (enrolled or renewed) within `[devices] online_window_secs`.
    pub status: DeviceStatus,
    pub vni_id: Option<String>,
    /// KairOS shape: the VNIs the device is in (zero or one here).
    pub vni_ids: Vec<String>,
    pub tags: Vec<String>,
    /// `ed25519` or `ecdsa-p256`.
    pub key_type: String,
    /// PEM SubjectPublicKeyInfo.
    pub public_key: String,
    /// The newest certificate's serial (uppercase hex) and expiry.
    pub serial_number: String,
    pub cert_expires_at: String,
    pub enroll_token_id: String,
    pub created_at: String,
    pub last_seen: String,
    pub revoked_at: Option<String>,
    /// In single reads only.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceEventView {
    /// `enrolled`, `renewed` or `revoked`.
    pub event: String,
    pub at: String,
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
}

/// The CRL in the encoding asked for.
pub enum CrlFormat {
    Pem,
    Der,
}

fn device_not_found(id: &str) -> Error {
    Error::not_found("DEVICE_NOT_FOUND", format!("device {id} not found"))
}

fn invalid_enroll_token() -> Error {
    Error::unauthenticated("INVALID_ENROLL_TOKEN", "invalid enrollment token")
}

/// Why a known token cannot enroll (the unknown case is `invalid_enroll_token`, which says nothing).
fn token_refusal(status: TokenStatus) -> Option<Error> {
    match status {
        TokenStatus::Active => None,
        TokenStatus::Expired => {
            Some(Error::unauthenticated("ENROLL_TOKEN_EXPIRED", "this enrollment token has expired"))
        }
        TokenStatus::Exhausted => Some(Error::unauthenticated(
            "ENROLL_TOKEN_EXHAUSTED",
            "this enrollment token has been used as many times as it allows",
        )),
        TokenStatus::Revoked => {
            Some(Error::unauthenticated("ENROLL_TOKEN_REVOKED", "this enrollment token was revoked"))
        }
    }
}

fn key_error(field: &str, e: KeyError) -> Error {
    match e {
        KeyError::Unsupported(kind) => Error::Unprocessable {
            code: "UNSUPPORTED_KEY_TYPE",
            message: format!("{field}: unsupported key type {kind}: use an Ed25519 or ECDSA P-256 key"),
            details: Some(serde_json::json!({"field": field, "key_type": kind, "supported": SUPPORTED_KEY_TYPES})),
        },
        KeyError::Malformed(why) => Error::Unprocessable {
            code: "INVALID_FIELD",
            message: format!("{field} is not a valid {}: {why}", if field == "csr" { "CSR" } else { "public key" }),
            details: Some(serde_json::json!({"field": field, "reason": why})),
        },
    }
}

fn validate_name(name: &str) -> Result<()> {
    let ok = (1..=64).contains(&name.len())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid_field("name", "name must be 1-64 characters of letters, digits, `-`, `_`, `.`"))
    }
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc))
}

fn to_offset(t: DateTime<Utc>) -> Result<time::OffsetDateTime> {
    time::OffsetDateTime::from_unix_timestamp(t.timestamp()).map_err(Error::internal)
}

fn json_text<T: Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(Error::internal)
}

/// The message a renewal signs.
pub fn renew_message(device_id: &str, timestamp: &str) -> String {
    format!("ironbay-renew:{device_id}:{timestamp}")
}

/// Loads the device CA, creating it on the first start. The first appliance to store one wins
/// (an insert that does nothing on conflict), and every appliance then signs with the stored one.
pub async fn load_or_create_ca(store: &Store, keys: &MasterKey) -> anyhow::Result<DeviceCa> {
    use anyhow::Context;
    if store.device_ca_get().await?.is_none() {
        let now = Utc::now();
        let (ca, key_pem) = DeviceCa::generate(to_offset(now).map_err(|e| anyhow::anyhow!("{e}"))?)?;
        let sealed = keys.seal(CA_KEY_CONTEXT, key_pem.as_bytes())?;
        let mut tx = store.begin().await?;
        if Store::device_ca_insert(&mut tx, ca.cert_pem(), &sealed, &to_rfc3339(now)).await? {
            audit::append(&mut tx, &Actor::system(), Event::new("device_ca.create", "device_ca", "1")).await?;
            tracing::info!("created the device CA");
        }
        tx.commit().await?;
    }
    let (cert_pem, sealed) = store.device_ca_get().await?.context("the device CA vanished")?;
    let key = keys.unseal(CA_KEY_CONTEXT, &sealed).context(
        "the device CA's key does not open with this master key (appliances sharing a database must share master.key)",
    )?;
    let key_pem = String::from_utf8(key).context("the device CA's key is not PEM")?;
    Ok(DeviceCa::from_pem(&cert_pem, &key_pem)?)
}

impl AppState {
    fn device_status(&self, d: &DeviceRow, online_since: &str) -> DeviceStatus {
        if d.revoked_at.is_some() {
            DeviceStatus::Revoked
        } else if d.last_seen.as_str() >= online_since {
            DeviceStatus::Online
        } else {
            DeviceStatus::Offline
        }
    }

    fn online_since(&self) -> String {
        let window = ChronoDuration::from_std(self.config.devices.online_window).unwrap_or(ChronoDuration::zero());
        to_rfc3339(Utc::now() - window)
    }

    fn device_view(&self, d: &DeviceRow, online_since: &str, with_metadata: bool) -> Result<DeviceView> {
        let bad = |what: &str| Error::internal(format_args!("devices.{what} of {} is unreadable", d.id));
        Ok(DeviceView {
            id: d.id.clone(),
            name: d.name.clone(),
            status: self.device_status(d, online_since),
            vni_id: d.vni_id.clone(),
            vni_ids: d.vni_id.iter().cloned().collect(),
            tags: serde_json::from_str(&d.tags).map_err(|_| bad("tags"))?,
            key_type: d.key_type.clone(),
            public_key: d.public_key.clone(),
            serial_number: d.cert_serial.clone(),
            cert_expires_at: d.cert_expires_at.clone(),
            enroll_token_id: d.enroll_token_id.clone(),
            created_at: d.created_at.clone(),
            last_seen: d.last_seen.clone(),
            revoked_at: d.revoked_at.clone(),
            metadata: if with_metadata {
                Some(serde_json::from_str(&d.metadata).map_err(|_| bad("metadata"))?)
            } else {
                None
            },
        })
    }

    /// Signs a certificate for `device` (id, name) and key, valid from a minute ago (clock skew)
    /// for the configured lifetime. Returns (PEM, serial hex, expiry).
    fn issue_cert(&self, device_id: &str, name: &str, key: &DeviceKey) -> Result<(String, String, String)> {
        let now = Utc::now();
        let lifetime = ChronoDuration::from_std(self.config.devices.cert_lifetime).map_err(Error::internal)?;
        let not_after = now + lifetime;
        let serial = pki::random_serial();
        let spec = DeviceCertSpec {
            device_id,
            name,
            serial: &serial,
            not_before: to_offset(now - ChronoDuration::minutes(1))?,
            not_after: to_offset(not_after)?,
        };
        let pem = self.device_ca.issue(&spec, key).map_err(Error::internal)?;
        // The certificate holds whole seconds; so does the recorded expiry.
        let expires = to_rfc3339(DateTime::from_timestamp(not_after.timestamp(), 0).unwrap_or(not_after));
        Ok((pem, pki::serial_hex(&serial), expires))
    }

    /// A refused enrollment changes nothing but is recorded: guessing tokens, or reusing a
    /// single-use one (a sign it leaked), should be visible in the audit log.
    async fn enroll_refused(&self, actor: &Actor, token: Option<&EnrollTokenRow>, e: Error) -> Error {
        let target = token.map(|t| t.id.as_str()).unwrap_or("unknown");
        let event = Event::new("device.enroll_refused", "enroll_token", target)
            .with_outcome(Outcome::Denied)
            .with_details(serde_json::json!({"code": e.code()}));
        if let Err(db) = audit::record(&self.store, actor, event).await {
            tracing::error!(error = %db, "recording a refused enrollment failed");
        }
        e
    }

    /// Checks an enrollment token and returns its row, or the refusal.
    async fn usable_token(&self, actor: &Actor, token: &str) -> Result<EnrollTokenRow> {
        if !token.starts_with(TOKEN_PREFIX) || token.len() > 128 {
            return Err(self.enroll_refused(actor, None, invalid_enroll_token()).await);
        }
        let Some(row) = self.store.enroll_token_by_hash(&self.keys.hash_token(token)).await? else {
            return Err(self.enroll_refused(actor, None, invalid_enroll_token()).await);
        };
        match token_refusal(TokenStatus::of(&row, &now_rfc3339())) {
            Some(e) => Err(self.enroll_refused(actor, Some(&row), e).await),
            None => Ok(row),
        }
    }

    /// Enrolls a device: the token decides whether (and gives tags and VNI), the key or CSR
    /// whose certificate it gets. Every check that can fail runs before the token's use is taken,
    /// so a rejected request never costs a use; the use, the device and its audit entry commit
    /// together.
    pub async fn device_enroll(&self, actor: &Actor, req: EnrollRequest) -> Result<IssuedCertificate> {
        // An enrollment token (`ibe_…`), or the boot token an agent's kernel command line carries:
        // the agent enrolls its in-RAM key with it, bound to the token's asset.
        let (token, boot) = if req.token.expose().starts_with(TOKEN_PREFIX) {
            (self.usable_token(actor, req.token.expose()).await?, None)
        } else {
            match self.boot.tokens.verify(req.token.expose().trim(), Utc::now().timestamp()) {
                Ok(claims) => (boot_token_row(&claims), Some(claims)),
                Err(_) => return Err(self.enroll_refused(actor, None, invalid_enroll_token()).await),
            }
        };
        validate_name(&req.name)?;
        let key = match (&req.public_key, &req.csr) {
            (Some(pem), None) => DeviceKey::from_pem(pem).map_err(|e| key_error("public_key", e))?,
            (None, Some(csr)) => DeviceKey::from_csr_pem(csr).map_err(|e| key_error("csr", e))?,
            (Some(_), Some(_)) => {
                return Err(Error::invalid_field("public_key", "send either `public_key` or `csr`, not both"));
            }
            (None, None) => {
                return Err(Error::Unprocessable {
                    code: "MISSING_FIELD",
                    message: "missing required field `public_key` (or `csr`)".into(),
                    details: Some(serde_json::json!({"field": "public_key"})),
                });
            }
        };
        let mut tags: Vec<String> = serde_json::from_str(&token.tags).map_err(Error::internal)?;
        tags.extend(req.tags);
        let tags = super::assets::normalise_tags(tags)?;
        let mut metadata = match req.metadata {
            None | Some(serde_json::Value::Null) => serde_json::json!({}),
            Some(m @ serde_json::Value::Object(_)) => m,
            Some(_) => return Err(Error::invalid_field("metadata", "metadata must be a JSON object")),
        };
        if let (Some(claims), Some(obj)) = (&boot, metadata.as_object_mut()) {
            // What the token proves, not what the agent says.
            obj.insert("asset".into(), serde_json::json!(claims.asset));
            obj.insert("mac".into(), serde_json::json!(claims.mac.to_string()));
        }
        let metadata_text = json_text(&metadata)?;
        if metadata_text.len() > MAX_METADATA_BYTES {
            return Err(Error::invalid_field(
                "metadata",
                format!("metadata must be at most {MAX_METADATA_BYTES} bytes"),
            ));
        }

        // A device joining a segment is the `connect` action: policies bound to it may refuse.
        if let Some(vni_id) = &token.vni_id {
            let subject = crate::policy::input::GuardSubject::Vni { vni_id: vni_id.clone() };
            self.guard(actor, crate::policy::input::Action::Connect, subject).await?;
        }
        let id = new_id(IdKind::Device);
        let (certificate, serial, expires) = self.issue_cert(&id, &req.name, &key)?;
        let now = now_rfc3339();
        let row = DeviceRow {
            id: id.clone(),
            name: req.name,
            key_type: key.kind().as_str().to_string(),
            public_key: key.pem(),
            tags: json_text(&tags)?,
            metadata: metadata_text,
            vni_id: token.vni_id.clone(),
            enroll_token_id: token.id.clone(),
            cert_serial: serial.clone(),
            cert_expires_at: expires.clone(),
            last_seen: now.clone(),
            created_at: now.clone(),
            revoked_at: None,
        };
        let mut tx = self.store.begin().await?;
        if boot.is_none() && !Store::enroll_token_consume(&mut tx, &token.id, &now).await? {
            // Lost a race (the last use went to another device) or it changed meanwhile.
            tx.rollback().await?;
            let current = self.store.enroll_token_get(&token.id).await?.ok_or_else(invalid_enroll_token)?;
            let e = token_refusal(TokenStatus::of(&current, &now_rfc3339())).unwrap_or_else(|| {
                Error::conflict("ENROLL_TOKEN_CONTENDED", "the token changed meanwhile: retry", None)
            });
            return Err(self.enroll_refused(actor, Some(&current), e).await);
        }
        if let Some(vni) = &token.vni_id
            && Store::vni_get_in(&mut tx, vni).await?.is_none()
        {
            return Err(Error::conflict(
                "VNI_NOT_FOUND",
                format!("the token's VNI {vni} no longer exists: ask for a new token"),
                Some(serde_json::json!({"vni_id": vni})),
            ));
        }
        Store::device_insert(&mut tx, &row, &tags).await?;
        Store::device_cert_insert(&mut tx, &serial, &id, &expires, &now).await?;
        self.device_event(
            &mut tx,
            &id,
            "enrolled",
            &now,
            serde_json::json!({"serial_number": serial, "enroll_token_id": token.id}),
        )
        .await?;
        audit::append(
            &mut tx,
            actor,
            Event::new("device.enroll", "device", &id).with_details(serde_json::json!({
                "name": row.name, "enroll_token_id": token.id, "serial_number": serial,
                "key_type": row.key_type, "vni_id": row.vni_id, "tags": tags
            })),
        )
        .await?;
        tx.commit().await?;
        Ok(IssuedCertificate {
            id,
            certificate,
            ca_certificate: self.device_ca.cert_pem().to_string(),
            serial_number: serial,
            expires_at: expires,
            name: row.name,
        })
    }

    async fn device_event(
        &self,
        conn: &mut sqlx::AnyConnection,
        device_id: &str,
        event: &str,
        at: &str,
        details: serde_json::Value,
    ) -> Result<()> {
        let e = DeviceEventRow {
            id: new_id(IdKind::Event),
            device_id: device_id.to_string(),
            event: event.to_string(),
            at: at.to_string(),
            details: details.to_string(),
        };
        Ok(Store::device_event_insert(conn, &e).await?)
    }

    /// Issues a fresh certificate to a device that proves it holds its current key: a signature
    /// over `ironbay-renew:{id}:{timestamp}`, the timestamp near now and never used before.
    pub async fn device_renew(&self, actor: &Actor, id: &str, req: RenewRequest) -> Result<IssuedCertificate> {
        if !ids::looks_like(IdKind::Device, id) {
            return Err(device_not_found(id));
        }
        let device = self.store.device_get(id).await?.ok_or_else(|| device_not_found(id))?;
        if device.revoked_at.is_some() {
            return Err(Error::unauthenticated("DEVICE_REVOKED", "this device was revoked: enroll it again"));
        }
        let ts = parse_time(&req.timestamp).ok_or_else(|| {
            Error::invalid_field("timestamp", "timestamp must be RFC 3339, e.g. 2026-05-28T15:45:00Z")
        })?;
        let signature = decode_base64(&req.signature)
            .ok_or_else(|| Error::invalid_field("signature", "signature must be base64"))?;
        let new_key = req.csr.as_deref().map(DeviceKey::from_csr_pem).transpose().map_err(|e| key_error("csr", e))?;
        let skew = (Utc::now() - ts).num_seconds().abs();
        if skew > RENEW_WINDOW_SECS {
            return Err(Error::unauthenticated(
                "RENEW_TIMESTAMP_SKEW",
                format!(
                    "timestamp is {skew} s away from the appliance's clock (at most {RENEW_WINDOW_SECS} s allowed)"
                ),
            ));
        }
        let current = DeviceKey::from_pem(&device.public_key)
            .map_err(|e| Error::internal(format_args!("devices.public_key of {id}: {e}")))?;
        if !current.verify(renew_message(id, &req.timestamp).as_bytes(), &signature) {
            return Err(Error::unauthenticated(
                "INVALID_DEVICE_SIGNATURE",
                "the signature does not verify with the device's registered key",
            ));
        }
        let rotated = new_key.is_some();
        let key = new_key.unwrap_or(current);
        let (certificate, serial, expires) = self.issue_cert(id, &device.name, &key)?;
        let now = now_rfc3339();
        let forget_before = to_rfc3339(Utc::now() - ChronoDuration::seconds(3 * RENEW_WINDOW_SECS));
        let mut tx = self.store.begin().await?;
        // Keyed by the instant, not the text: `Z` and `+00:00` spellings are one proof.
        if !Store::device_renewal_claim(&mut tx, id, &to_rfc3339(ts), &now, &forget_before).await? {
            return Err(Error::unauthenticated("RENEW_REPLAYED", "this renewal proof (timestamp) was already used"));
        }
        let updated = DeviceRow {
            key_type: key.kind().as_str().to_string(),
            public_key: key.pem(),
            cert_serial: serial.clone(),
            cert_expires_at: expires.clone(),
            last_seen: now.clone(),
            ..device
        };
        if !Store::device_renewed(&mut tx, &updated).await? {
            return Err(Error::unauthenticated("DEVICE_REVOKED", "this device was revoked: enroll it again"));
        }
        Store::device_cert_insert(&mut tx, &serial, id, &expires, &now).await?;
        self.device_event(
            &mut tx,
            id,
            "renewed",
            &now,
            serde_json::json!({"serial_number": serial, "key_rotated": rotated}),
        )
        .await?;
        audit::append(
            &mut tx,
            actor,
            Event::new("device.renew", "device", id)
                .with_details(serde_json::json!({"serial_number": serial, "key_rotated": rotated})),
        )
        .await?;
        tx.commit().await?;
        Ok(IssuedCertificate {
            id: id.to_string(),
            certificate,
            ca_certificate: self.device_ca.cert_pem().to_string(),
            serial_number: serial,
            expires_at: expires,
            name: updated.name,
        })
    }

    pub async fn device_list(
        &self,
        actor: &Actor,
        status: Option<DeviceStatusFilter>,
        vni_id: Option<String>,
        tag: Option<String>,
        page: PageRequest,
    ) -> Result<Page<DeviceView>> {
        actor.require(Scope::DevicesRead)?;
        let online_since = self.online_since();
        let q = DeviceQuery { status, vni_id, tag, online_since: online_since.clone() };
        let (rows, total) = self.store.device_list(&q, page.limit(), page.offset()).await?;
        let items = rows.iter().map(|d| self.device_view(d, &online_since, false)).collect::<Result<_>>()?;
        Ok(Page { items, page, total })
    }

    async fn load_device(&self, id: &str) -> Result<DeviceRow> {
        if !ids::looks_like(IdKind::Device, id) {
            return Err(device_not_found(id));
        }
        self.store.device_get(id).await?.ok_or_else(|| device_not_found(id))
    }

    pub async fn device_get(&self, actor: &Actor, id: &str) -> Result<DeviceView> {
        actor.require(Scope::DevicesRead)?;
        let d = self.load_device(id).await?;
        self.device_view(&d, &self.online_since(), true)
    }

    /// Deletes a device: its row stays as a revoked tombstone (history, CRL), every certificate
    /// it holds goes into the CRL, and it can no longer renew.
    pub async fn device_delete(&self, actor: &Actor, id: &str) -> Result<()> {
        actor.require(Scope::DevicesWrite)?;
        if !ids::looks_like(IdKind::Device, id) {
            return Err(device_not_found(id));
        }
        let mut tx = self.store.begin().await?;
        let d = Store::device_get_in(&mut tx, id).await?.ok_or_else(|| device_not_found(id))?;
        let now = now_rfc3339();
        if !Store::device_revoke(&mut tx, id, &now).await? {
            return Err(Error::conflict(
                "DEVICE_REVOKED",
                format!("device {id} is already deleted (revoked)"),
                Some(serde_json::json!({"revoked_at": d.revoked_at})),
            ));
        }
        self.device_event(&mut tx, id, "revoked", &now, serde_json::json!({"serial_number": d.cert_serial})).await?;
        audit::append(
            &mut tx,
            actor,
            Event::new("device.revoke", "device", id)
                .with_details(serde_json::json!({"name": d.name, "serial_number": d.cert_serial})),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn device_history(&self, actor: &Actor, id: &str, page: PageRequest) -> Result<Page<DeviceEventView>> {
        actor.require(Scope::DevicesRead)?;
        self.load_device(id).await?;
        let (rows, total) = self.store.device_events(id, page.limit(), page.offset()).await?;
        let items = rows
            .into_iter()
            .map(|e| DeviceEventView {
                details: serde_json::from_str(&e.details).unwrap_or_else(|_| serde_json::json!({})),
                event: e.event,
                at: e.at,
            })
            .collect();
        Ok(Page { items, page, total })
    }

    /// The CA certificate (PEM): public, so devices and verifiers can fetch it.
    pub fn device_ca_pem(&self) -> &str {
        self.device_ca.cert_pem()
    }

    /// A fresh CRL of every revoked device certificate, signed now. Built on each request from
    /// the store, so a revocation made by any appliance sharing the database shows at once.
    pub async fn device_crl(&self, format: CrlFormat) -> Result<Vec<u8>> {
        let revoked = self.store.device_certs_revoked().await?;
        let mut entries = Vec::with_capacity(revoked.len());
        for (serial, at) in revoked {
            let bytes =
                hex::decode(&serial).map_err(|_| Error::internal(format_args!("device_certs.serial {serial}")))?;
            let at = parse_time(&at).ok_or_else(|| Error::internal(format_args!("device_certs.revoked_at {at}")))?;
            entries.push((bytes, to_offset(at)?));
        }
        let now = Utc::now();
        let der = self
            .device_ca
            .crl(&entries, to_offset(now)?, to_offset(now + ChronoDuration::hours(1))?, now.timestamp_millis() as u64)
            .map_err(Error::internal)?;
        Ok(match format {
            CrlFormat::Der => der,
            CrlFormat::Pem => pki::to_pem("X509 CRL", &der).into_bytes(),
        })
    }
}

/// Standard or URL-safe base64, padded or not.
fn decode_base64(s: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let s = s.trim();
    [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|e| e.decode(s).ok())
        .filter(|b| !b.is_empty())
}
