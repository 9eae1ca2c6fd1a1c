//! The one writer of an asset's state: every change goes through `transition`, which asks the
//! lifecycle (`model::lifecycle::next`) whether the move is allowed, writes it generation-checked
//! and appends `asset.state_change` in the caller's transaction.

use sqlx::AnyConnection;

use crate::audit::{self, Event};
use crate::auth::Actor;
use crate::error::{Error, Result};
use crate::model::lifecycle::{LifecycleEvent, next};
use crate::model::now_rfc3339;
use crate::store::Store;
use crate::store::assets::AssetRow;

/// Moves `asset` (as read in this transaction) by `event`; returns the row as written.
pub async fn transition(
    conn: &mut AnyConnection,
    actor: &Actor,
    asset: &AssetRow,
    event: LifecycleEvent,
    reason: &str,
    workflow_id: Option<&str>,
) -> Result<AssetRow> {
    let to = next(asset.state, event).map_err(|r| {
        Error::conflict(
            "ASSET_STATE",
            format!("asset {}: {r}", asset.id),
            Some(serde_json::json!({"state": asset.state})),
        )
    })?;
    if to == asset.state {
        return Ok(asset.clone());
    }
    let now = now_rfc3339();
    if !Store::asset_set_state(conn, asset, to, &now).await? {
        return Err(Error::conflict("ASSET_CHANGED", "the asset changed meanwhile: retry", None));
    }
    audit::append(
        conn,
        actor,
        Event::new("asset.state_change", "asset", &asset.id).with_details(serde_json::json!({
            "from": asset.state, "to": to, "reason": reason, "workflow_id": workflow_id,
        })),
    )
    .await?;
    Ok(AssetRow { state: to, generation: asset.generation + 1, updated_at: now, ..asset.clone() })
}
