//! First run: the data directory (0700), the master key (0600) and the first admin. The admin's
//! password comes from `IRONBAY_ADMIN_PASSWORD` or is generated and handed back to be printed once;
//! a later start finds the admin and changes nothing.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::audit::{self, Event};
use crate::auth::{Actor, password};
use crate::model::{IdKind, Role, new_id, now_rfc3339};
use crate::secret::{MasterKey, Secret};
use crate::store::Store;
use crate::store::users::NewUser;

pub const MASTER_KEY_FILE: &str = "master.key";
pub const FIRST_ADMIN: &str = "admin";

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("data directory {path}: {source}")]
    DataDir { path: String, source: std::io::Error },
    #[error(transparent)]
    Key(#[from] crate::secret::CryptoError),
    #[error("IRONBAY_ADMIN_PASSWORD is too weak: {0}")]
    WeakPassword(String),
    #[error("creating the first admin: {0}")]
    Admin(String),
}

/// Creates the data dir if needed (0700) and loads or creates the master key.
pub fn prepare_data_dir(dir: &Path) -> Result<MasterKey, SetupError> {
    let io = |source| SetupError::DataDir { path: dir.display().to_string(), source };
    if !dir.exists() {
        std::fs::create_dir_all(dir).map_err(io)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io)?;
    }
    let (key, _created) = MasterKey::load_or_create(&dir.join(MASTER_KEY_FILE))?;
    Ok(key)
}

/// Creates the first admin when there are no users. Returns the generated password when one was
/// generated (the caller prints it once, to stdout, never to the log).
pub async fn ensure_first_admin(
    store: &Store,
    env_password: Option<Secret<String>>,
) -> Result<Option<Secret<String>>, SetupError> {
    let err = |e: sqlx::Error| SetupError::Admin(e.to_string());
    if store.user_count().await.map_err(err)? > 0 {
        return Ok(None);
    }
    let (pw, generated) = match env_password {
        Some(p) => {
            password::validate_new_password("IRONBAY_ADMIN_PASSWORD", p.expose())
                .map_err(|e| SetupError::WeakPassword(e.to_string()))?;
            (p, false)
        }
        None => (Secret::new(crate::secret::random_token("", 24)), true),
    };
    let hash = password::hash(pw.expose().clone()).await.map_err(|e| SetupError::Admin(e.to_string()))?;
    let id = new_id(IdKind::User);
    let now = now_rfc3339();
    let mut tx = store.begin().await.map_err(err)?;
    Store::user_insert(
        &mut tx,
        &NewUser { id: &id, username: FIRST_ADMIN, password_hash: &hash, role: Role::Admin, now: &now },
    )
    .await
    .map_err(err)?;
    audit::append(
        &mut tx,
        &Actor::system(),
        Event::new("user.create", "user", &id)
            .with_details(serde_json::json!({"username": FIRST_ADMIN, "role": "admin", "first_run": true})),
    )
    .await
    .map_err(err)?;
    tx.commit().await.map_err(err)?;
    Ok(generated.then_some(pw))
}
