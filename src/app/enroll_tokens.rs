//! Enrollment tokens: what a device presents, once, to be enrolled. Single- or multi-use, expiring,
//! revocable; the tags and VNI they carry are applied to the devices they enroll. The value is
//! shown once at creation and stored only as its keyed hash.

use chrono::{Duration as ChronoDuration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{AppState, Page, PageRequest};
use crate::audit::{self, Event};
use crate::auth::Actor;
use crate::error::{Error, Result};
use crate::model::{IdKind, Scope, ids, new_id, now_rfc3339, to_rfc3339};
use crate::secret::random_token;
use crate::store::Store;
use crate::store::devices::EnrollTokenRow;

/// Enrollment token values start with this; anything else is not a token.
pub const TOKEN_PREFIX: &str = "ibe_";
/// Random characters after the prefix (~238 bits).
const TOKEN_LEN: usize = 40;
pub const MAX_TOKEN_USES: i64 = 1_000_000;
/// Ten years.
const MAX_EXPIRES_IN_HOURS: f64 = 87_600.0;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEnrollToken {
    /// How many devices may enroll with it (default 1: single-use).
    #[serde(default = "one")]
    pub max_uses: i64,
    /// Lifetime in hours from now (fractions allowed); omitted: it never expires.
    #[serde(default)]
    pub expires_in_hours: Option<f64>,
    /// Tags given to every device it enrolls.
    #[serde(default)]
    pub tags: Vec<String>,
    /// The VNI every device it enrolls is placed in (must exist).
    #[serde(default)]
    pub vni_id: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
}

fn one() -> i64 {
    1
}

/// A token's state, derived from its row at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TokenStatus {
    Active,
    Expired,
    Exhausted,
    Revoked,
}

impl TokenStatus {
    /// Revoked wins over expired, which wins over exhausted: the most deliberate reason first.
    pub fn of(t: &EnrollTokenRow, now: &str) -> Self {
        if t.revoked_at.is_some() {
            TokenStatus::Revoked
        } else if t.expires_at.as_deref().is_some_and(|e| e <= now) {
            TokenStatus::Expired
        } else if t.uses >= t.max_uses {
            TokenStatus::Exhausted
        } else {
            TokenStatus::Active
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EnrollTokenView {
    pub id: String,
    /// The token itself: in the creation answer only, never again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    pub description: String,
    pub status: TokenStatus,
    pub max_uses: i64,
    pub uses: i64,
    pub expires_at: Option<String>,
    pub tags: Vec<String>,
    pub vni_id: Option<String>,
    pub created_by: Option<String>,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

impl EnrollTokenView {
    fn new(t: &EnrollTokenRow, now: &str) -> Result<Self> {
        Ok(EnrollTokenView {
            id: t.id.clone(),
            token: None,
            description: t.description.clone(),
            status: TokenStatus::of(t, now),
            max_uses: t.max_uses,
            uses: t.uses,
            expires_at: t.expires_at.clone(),
            tags: serde_json::from_str(&t.tags)
                .map_err(|e| Error::internal(format_args!("enroll_tokens.tags of {}: {e}", t.id)))?,
            vni_id: t.vni_id.clone(),
            created_by: t.created_by.clone(),
            created_at: t.created_at.clone(),
            revoked_at: t.revoked_at.clone(),
        })
    }
}

pub fn token_not_found(id: &str) -> Error {
    Error::not_found("ENROLL_TOKEN_NOT_FOUND", format!("enrollment token {id} not found"))
}

impl AppState {
    pub async fn enroll_token_create(&self, actor: &Actor, req: CreateEnrollToken) -> Result<EnrollTokenView> {
        actor.require(Scope::DevicesWrite)?;
        if !(1..=MAX_TOKEN_USES).contains(&req.max_uses) {
            return Err(Error::invalid_field("max_uses", format!("max_uses must be 1-{MAX_TOKEN_USES}")));
        }
        let expires_at = match req.expires_in_hours {
            None => None,
            Some(h) if h.is_finite() && h > 0.0 && h <= MAX_EXPIRES_IN_HOURS => {
                let ms = (h * 3_600_000.0).round() as i64;
                Some(to_rfc3339(Utc::now() + ChronoDuration::milliseconds(ms.max(1))))
            }
            Some(_) => {
                return Err(Error::invalid_field(
                    "expires_in_hours",
                    format!("expires_in_hours must be more than 0 and at most {MAX_EXPIRES_IN_HOURS}"),
                ));
            }
        };
        let tags = super::assets::normalise_tags(req.tags)?;
        let description = req.description.unwrap_or_default();
        if description.chars().count() > 256 {
            return Err(Error::invalid_field("description", "description must be at most 256 characters"));
        }
        let token = random_token(TOKEN_PREFIX, TOKEN_LEN);
        let now = now_rfc3339();
        let row = EnrollTokenRow {
            id: new_id(IdKind::EnrollToken),
            token_hash: self.keys.hash_token(&token),
            description,
            max_uses: req.max_uses,
            uses: 0,
            expires_at,
            tags: serde_json::to_string(&tags).map_err(Error::internal)?,
            vni_id: req.vni_id,
            created_by: actor.id().map(str::to_string),
            created_at: now.clone(),
            revoked_at: None,
        };
        let mut tx = self.store.begin().await?;
        if let Some(vni) = &row.vni_id {
            let exists = ids::looks_like(IdKind::Vni, vni) && Store::vni_get_in(&mut tx, vni).await?.is_some();
            if !exists {
                return Err(Error::Unprocessable {
                    code: "INVALID_FIELD",
                    message: format!("vni_id `{vni}` names no VNI"),
                    details: Some(serde_json::json!({"field": "vni_id", "vni_id": vni})),
                });
            }
        }
        Store::enroll_token_insert(&mut tx, &row).await?;
        audit::append(
            &mut tx,
            actor,
            Event::new("enroll_token.create", "enroll_token", &row.id).with_details(serde_json::json!({
                "max_uses": row.max_uses, "expires_at": row.expires_at, "tags": tags, "vni_id": row.vni_id
            })),
        )
        .await?;
        tx.commit().await?;
        let mut view = EnrollTokenView::new(&row, &now)?;
        view.token = Some(token);
        Ok(view)
    }

    pub async fn enroll_token_list(&self, actor: &Actor, page: PageRequest) -> Result<Page<EnrollTokenView>> {
        actor.require(Scope::DevicesRead)?;
        let (rows, total) = self.store.enroll_token_list(page.limit(), page.offset()).await?;
        let now = now_rfc3339();
        let items = rows.iter().map(|r| EnrollTokenView::new(r, &now)).collect::<Result<_>>()?;
        Ok(Page { items, page, total })
    }

    pub async fn enroll_token_get(&self, actor: &Actor, id: &str) -> Result<EnrollTokenView> {
        actor.require(Scope::DevicesRead)?;
        if !ids::looks_like(IdKind::EnrollToken, id) {
            return Err(token_not_found(id));
        }
        let row = self.store.enroll_token_get(id).await?.ok_or_else(|| token_not_found(id))?;
        EnrollTokenView::new(&row, &now_rfc3339())
    }

    /// Revokes a token: no device can enroll with it from now on (devices it enrolled stay).
    pub async fn enroll_token_revoke(&self, actor: &Actor, id: &str) -> Result<()> {
        actor.require(Scope::DevicesWrite)?;
        if !ids::looks_like(IdKind::EnrollToken, id) {
            return Err(token_not_found(id));
        }
        let mut tx = self.store.begin().await?;
        let row = Store::enroll_token_get_in(&mut tx, id).await?.ok_or_else(|| token_not_found(id))?;
        let now = now_rfc3339();
        if !Store::enroll_token_revoke(&mut tx, id, &now).await? {
            return Err(Error::conflict(
                "ENROLL_TOKEN_REVOKED",
                format!("enrollment token {id} is already revoked"),
                Some(serde_json::json!({"revoked_at": row.revoked_at})),
            ));
        }
        audit::append(
            &mut tx,
            actor,
            Event::new("enroll_token.revoke", "enroll_token", id)
                .with_details(serde_json::json!({"uses": row.uses, "max_uses": row.max_uses})),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
