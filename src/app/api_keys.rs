//! API keys for automation. The plaintext exists once, in the creation response; the store keeps a
//! keyed hash. A key's scopes must be ones its creator's role grants.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{AppState, Page, PageRequest};
use crate::audit::{self, Event};
use crate::auth::tokens::API_KEY_PREFIX;
use crate::auth::{Actor, Principal};
use crate::error::{Error, Result};
use crate::model::{IdKind, Scope, ids, now_rfc3339, to_rfc3339};
use crate::secret::random_token;
use crate::store::Store;
use crate::store::api_keys::ApiKeyRow;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKey {
    pub name: String,
    pub scopes: Vec<Scope>,
    /// RFC 3339; must be in the future.
    #[serde(default)]
    pub expires_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyView {
    pub id: String,
    pub name: String,
    pub user_id: String,
    pub scopes: Vec<Scope>,
    pub expires_at: Option<String>,
    pub last_used_at: Option<String>,
    pub revoked_at: Option<String>,
    pub created_at: String,
    /// The key itself: present only in the response that created it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

impl From<ApiKeyRow> for ApiKeyView {
    fn from(k: ApiKeyRow) -> Self {
        ApiKeyView {
            id: k.id,
            name: k.name,
            user_id: k.user_id,
            scopes: k.scopes,
            expires_at: k.expires_at,
            last_used_at: k.last_used_at,
            revoked_at: k.revoked_at,
            created_at: k.created_at,
            key: None,
        }
    }
}

fn key_not_found(id: &str) -> Error {
    Error::not_found("API_KEY_NOT_FOUND", format!("API key {id} not found"))
}

impl AppState {
    pub async fn api_key_create(&self, actor: &Actor, req: CreateApiKey) -> Result<ApiKeyView> {
        let p = actor.require_session(None)?;
        let Principal::User { role, user_id, .. } = p else {
            return Err(Error::internal("require_session admitted a non-user"));
        };
        let name = req.name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(Error::invalid_field("name", "name must be 1-100 characters"));
        }
        if req.scopes.is_empty() {
            return Err(Error::invalid_field("scopes", "a key needs at least one scope"));
        }
        if let Some(s) = req.scopes.iter().find(|s| !role.grants(**s)) {
            return Err(Error::Forbidden {
                code: "INSUFFICIENT_SCOPE",
                message: format!("missing permission: your role cannot grant the `{s}` scope"),
                details: Some(serde_json::json!({"missing_scope": s.as_str()})),
            });
        }
        let expires_at = match &req.expires_at {
            None => None,
            Some(s) => {
                let t = DateTime::parse_from_rfc3339(s)
                    .map_err(|_| Error::invalid_field("expires_at", "expires_at must be an RFC 3339 timestamp"))?
                    .with_timezone(&Utc);
                if t <= Utc::now() {
                    return Err(Error::invalid_field("expires_at", "expires_at must be in the future"));
                }
                Some(to_rfc3339(t))
            }
        };
        let mut scopes = req.scopes.clone();
        scopes.sort();
        scopes.dedup();
        let tail = ids::random_tail(16);
        let id = format!("{}_{tail}", IdKind::ApiKey.prefix());
        let key = random_token(&format!("{API_KEY_PREFIX}{tail}_"), 40);
        let row = ApiKeyRow {
            id: id.clone(),
            user_id: user_id.clone(),
            name: name.to_string(),
            secret_hash: self.keys.hash_token(&key),
            scopes,
            expires_at,
            last_used_at: None,
            revoked_at: None,
            created_at: now_rfc3339(),
        };
        let mut tx = self.store.begin().await?;
        Store::api_key_insert(&mut tx, &row).await?;
        audit::append(
            &mut tx,
            actor,
            Event::new("api_key.create", "api_key", &id).with_details(serde_json::json!({
                "name": row.name, "scopes": row.scopes, "expires_at": row.expires_at
            })),
        )
        .await?;
        tx.commit().await?;
        let mut view = ApiKeyView::from(row);
        view.key = Some(key);
        Ok(view)
    }

    /// A user's own keys; admins see everyone's.
    pub async fn api_key_list(&self, actor: &Actor, page: PageRequest) -> Result<Page<ApiKeyView>> {
        let p = actor.require_session(None)?;
        let owner = (!p.has(Scope::Admin)).then(|| p.user_id().to_string());
        let (rows, total) = self.store.api_key_list(owner.as_deref(), page.limit(), page.offset()).await?;
        Ok(Page { items: rows.into_iter().map(ApiKeyView::from).collect(), page, total })
    }

    pub async fn api_key_get(&self, actor: &Actor, id: &str) -> Result<ApiKeyView> {
        let p = actor.require_session(None)?;
        let key = self.store.api_key_get(id).await?.ok_or_else(|| key_not_found(id))?;
        if key.user_id != p.user_id() && !p.has(Scope::Admin) {
            return Err(key_not_found(id));
        }
        Ok(key.into())
    }

    pub async fn api_key_revoke(&self, actor: &Actor, id: &str) -> Result<()> {
        let p = actor.require_session(None)?;
        let key = self.store.api_key_get(id).await?.ok_or_else(|| key_not_found(id))?;
        if key.user_id != p.user_id() && !p.has(Scope::Admin) {
            return Err(key_not_found(id));
        }
        if key.revoked_at.is_some() {
            return Err(Error::conflict("API_KEY_REVOKED", format!("API key {id} is already revoked"), None));
        }
        let mut tx = self.store.begin().await?;
        Store::api_key_revoke(&mut tx, id, &now_rfc3339()).await?;
        audit::append(
            &mut tx,
            actor,
            Event::new("api_key.revoke", "api_key", id).with_details(serde_json::json!({"name": key.name})),
        )
        .await?;
        tx.commit().await?;
        self.key_cache.clear();
        Ok(())
    }
}
