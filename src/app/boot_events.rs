//! Reading the boot timeline (written by `boot::journal`).

use super::AppState;
use crate::auth::Actor;
use crate::error::{Error, Result};
use crate::model::Mac;
use crate::model::Scope;
use crate::model::ids::{self, IdKind};
use crate::store::boot_events::BootEventRow;

pub const DEFAULT_LIMIT: i64 = 100;
pub const MAX_LIMIT: i64 = 500;

impl AppState {
    /// The newest events of every MAC the asset has, newest first.
    pub async fn boot_events_of_asset(&self, actor: &Actor, id: &str, limit: i64) -> Result<Vec<BootEventRow>> {
        actor.require(Scope::AssetsRead)?;
        let not_found = || Error::not_found("ASSET_NOT_FOUND", format!("Asset {id} not found"));
        if !ids::looks_like(IdKind::Asset, id) {
            return Err(not_found());
        }
        let asset = self.store.asset_get(id).await?.ok_or_else(not_found)?;
        let macs: Vec<String> = asset.macs.iter().map(Mac::to_string).collect();
        Ok(self.store.boot_events_for(&macs, limit).await?)
    }

    /// The newest events of one MAC (asset or not), or of every client, newest first.
    pub async fn boot_events_of_mac(&self, actor: &Actor, mac: Option<Mac>, limit: i64) -> Result<Vec<BootEventRow>> {
        actor.require(Scope::AssetsRead)?;
        Ok(match mac {
            Some(mac) => self.store.boot_events_for(&[mac.to_string()], limit).await?,
            None => self.store.boot_events_recent(limit).await?,
        })
    }
}
