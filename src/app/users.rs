//! Users CRUD (admins, with a user session only).

use serde::Deserialize;
use utoipa::ToSchema;

use super::auth::UserView;
use super::{AppState, Page, PageRequest};
use crate::audit::{self, Event};
use crate::auth::{Actor, password};
use crate::error::{Error, Result};
use crate::model::{IdKind, Role, Scope, ids, new_id, now_rfc3339};
use crate::secret::Secret;
use crate::store::users::NewUser;
use crate::store::{Store, is_unique_violation};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    pub username: String,
    #[schema(value_type = String, format = Password)]
    pub password: Secret<String>,
    pub role: Role,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    #[serde(default)]
    pub role: Option<Role>,
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Password)]
    pub password: Option<Secret<String>>,
    #[serde(default)]
    pub disabled: Option<bool>,
}

fn validate_username(u: &str) -> Result<()> {
    let ok_len = (1..=64).contains(&u.len());
    let ok_chars = u.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if !ok_len || !ok_chars {
        return Err(Error::invalid_field(
            "username",
            "username must be 1-64 characters of letters, digits, `.`, `_`, `-`, `@`",
        ));
    }
    Ok(())
}

fn user_not_found(id: &str) -> Error {
    Error::not_found("USER_NOT_FOUND", format!("User {id} not found"))
}

impl AppState {
    pub async fn user_create(&self, actor: &Actor, req: CreateUser) -> Result<UserView> {
        actor.require_session(Some(Scope::Admin))?;
        validate_username(&req.username)?;
        password::validate_new_password("password", req.password.expose())?;
        let hash = password::hash(req.password.expose().clone()).await?;
        let id = new_id(IdKind::User);
        let now = now_rfc3339();
        let mut tx = self.store.begin().await?;
        let inserted = Store::user_insert(
            &mut tx,
            &NewUser { id: &id, username: &req.username, password_hash: &hash, role: req.role, now: &now },
        )
        .await;
        match inserted {
            Err(e) if is_unique_violation(&e, "username") => {
                return Err(Error::conflict(
                    "USERNAME_TAKEN",
                    format!("a user named `{}` already exists", req.username),
                    Some(serde_json::json!({"field": "username"})),
                ));
            }
            other => other?,
        }
        audit::append(
            &mut tx,
            actor,
            Event::new("user.create", "user", &id)
                .with_details(serde_json::json!({"username": req.username, "role": req.role})),
        )
        .await?;
        tx.commit().await?;
        // Keys act with their owner's role: forget resolved keys.
        self.key_cache.clear();
        let user = self.store.user_get(&id).await?.ok_or_else(|| Error::internal("user vanished after insert"))?;
        Ok(UserView::from(&user))
    }

    pub async fn user_list(&self, actor: &Actor, page: PageRequest) -> Result<Page<UserView>> {
        actor.require_session(Some(Scope::Admin))?;
        let (rows, total) = self.store.user_list(page.limit(), page.offset()).await?;
        Ok(Page { items: rows.iter().map(UserView::from).collect(), page, total })
    }

    pub async fn user_get(&self, actor: &Actor, id: &str) -> Result<UserView> {
        actor.require_session(Some(Scope::Admin))?;
        if !ids::looks_like(IdKind::User, id) {
            return Err(user_not_found(id));
        }
        let user = self.store.user_get(id).await?.ok_or_else(|| user_not_found(id))?;
        Ok(UserView::from(&user))
    }

    pub async fn user_update(&self, actor: &Actor, id: &str, req: UpdateUser) -> Result<UserView> {
        actor.require_session(Some(Scope::Admin))?;
        if !ids::looks_like(IdKind::User, id) {
            return Err(user_not_found(id));
        }
        if let Some(pw) = &req.password {
            password::validate_new_password("password", pw.expose())?;
        }
        let new_hash = match &req.password {
            Some(pw) => Some(password::hash(pw.expose().clone()).await?),
            None => None,
        };
        let mut tx = self.store.begin().await?;
        let mut user = self.store.user_get(id).await?.ok_or_else(|| user_not_found(id))?;
        let was_active_admin = user.role == Role::Admin && !user.disabled;
        if let Some(role) = req.role {
            user.role = role;
        }
        if let Some(disabled) = req.disabled {
            user.disabled = disabled;
        }
        if let Some(h) = &new_hash {
            user.password_hash = h.clone();
        }
        let still_active_admin = user.role == Role::Admin && !user.disabled;
        if was_active_admin && !still_active_admin && Store::admin_count(&mut tx).await? <= 1 {
            return Err(Error::conflict(
                "LAST_ADMIN",
                "this is the last active admin: promote another user first",
                None,
            ));
        }
        let now = now_rfc3339();
        Store::user_update(&mut tx, &user, &now).await?;
        // A new password or a disabled account ends every existing session.
        if new_hash.is_some() || user.disabled {
            Store::sessions_revoke_for_user(&mut tx, &user.id, "credentials changed", &now).await?;
        }
        audit::append(
            &mut tx,
            actor,
            Event::new("user.update", "user", &user.id).with_details(serde_json::json!({
                "role": req.role, "disabled": req.disabled, "password_changed": new_hash.is_some()
            })),
        )
        .await?;
        tx.commit().await?;
        // Keys act with their owner's role: forget resolved keys.
        self.key_cache.clear();
        Ok(UserView::from(&user))
    }

    pub async fn user_delete(&self, actor: &Actor, id: &str) -> Result<()> {
        let p = actor.require_session(Some(Scope::Admin))?;
        if !ids::looks_like(IdKind::User, id) {
            return Err(user_not_found(id));
        }
        if p.user_id() == id {
            return Err(Error::conflict("CANNOT_DELETE_SELF", "you cannot delete your own user", None));
        }
        let mut tx = self.store.begin().await?;
        let user = self.store.user_get(id).await?.ok_or_else(|| user_not_found(id))?;
        if user.role == Role::Admin && !user.disabled && Store::admin_count(&mut tx).await? <= 1 {
            return Err(Error::conflict("LAST_ADMIN", "this is the last active admin", None));
        }
        Store::user_delete(&mut tx, id).await?;
        audit::append(
            &mut tx,
            actor,
            Event::new("user.delete", "user", id).with_details(serde_json::json!({"username": user.username})),
        )
        .await?;
        tx.commit().await?;
        // Keys act with their owner's role: forget resolved keys.
        self.key_cache.clear();
        Ok(())
    }
}
