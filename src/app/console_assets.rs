//! What the console's asset pages need beyond the API's calls: the asset table (a page of the
//! columns it shows, with its filters and sort orders), the policy verdict an action would get
//! (a dry run of the guard: nothing audited, nothing started), an asset's cluster, and the BMC's
//! "PXE on next boot" as an operator action. Permissions are checked here, as everywhere.

use serde_json::json;

use super::assets::{asset_not_found, policy_subject};
use super::{AppState, Page, PageRequest};
use crate::audit::{self, Event};
use crate::auth::Actor;
use crate::bmc::{BootDevice, BootOverride};
use crate::error::{Error, Result};
use crate::model::{IdKind, Scope, ids};
use crate::policy::{self, Action, Evaluation, GuardSubject, Overall};
use crate::store::Store;
use crate::store::assets::AssetRow;
use crate::store::console_assets::AssetListQuery;

/// A row of the console's asset table.
#[derive(Debug, Clone)]
pub struct AssetListItem {
    pub id: String,
    pub hostname: String,
    pub state: String,
    pub macs: Vec<String>,
    pub tags: Vec<String>,
    pub bmc_address: Option<String>,
    pub cluster_id: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl AppState {
    /// One page of the asset table.
    pub async fn asset_table(
        &self,
        actor: &Actor,
        q: AssetListQuery,
        page: PageRequest,
    ) -> Result<Page<AssetListItem>> {
        actor.require(Scope::AssetsRead)?;
        let (rows, total) = self.store.console_asset_page(&q, page.limit(), page.offset()).await?;
        let items = rows
            .into_iter()
            .map(|r| AssetListItem {
                macs: serde_json::from_str(&r.macs).unwrap_or_default(),
                tags: serde_json::from_str(&r.tags).unwrap_or_default(),
                id: r.id,
                hostname: r.hostname,
                state: r.state,
                bmc_address: r.bmc_address,
                cluster_id: r.cluster_id,
                created_at: r.created_at,
                updated_at: r.updated_at,
            })
            .collect();
        Ok(Page { items, page, total })
    }

    async fn asset_row(&self, asset_id: &str) -> Result<AssetRow> {
        if !ids::looks_like(IdKind::Asset, asset_id) {
            return Err(asset_not_found(asset_id));
        }
        self.store.asset_get(asset_id).await?.ok_or_else(|| asset_not_found(asset_id))
    }

    /// What the enabled policies would answer if `actor` asked for `action` on the asset now:
    /// the same input the guard builds (`guard`), evaluated without auditing or acting.
    pub async fn asset_policy_preview(&self, actor: &Actor, asset_id: &str, action: Action) -> Result<Evaluation> {
        actor.require(Scope::AssetsRead)?;
        let asset = self.asset_row(asset_id).await?;
        let set = self.policy_set().await?;
        if set.policies.is_empty() {
            return Ok(Evaluation { result: Overall::Allow, decisions: Vec::new() });
        }
        let subject = GuardSubject::Asset(policy_subject(&asset));
        let input = policy::input::guard_input(actor, action, &subject, chrono::Utc::now());
        Ok(policy::evaluate(&set.policies, &input))
    }

    /// The cluster the asset is a member of, if any.
    pub async fn asset_cluster_of(&self, actor: &Actor, asset_id: &str) -> Result<Option<String>> {
        actor.require(Scope::AssetsRead)?;
        let asset = self.asset_row(asset_id).await?;
        Ok(self.store.asset_cluster(&asset.id).await?)
    }

    /// Asks the BMC to PXE-boot the machine once, at its next boot: an operator's BMC action
    /// like `asset_power` (same permission, policy action and busy rule), audited.
    pub async fn asset_pxe_next_boot(&self, actor: &Actor, asset_id: &str) -> Result<()> {
        actor.require(Scope::AssetsWrite)?;
        let asset = self.asset_row(asset_id).await?;
        self.guard(actor, Action::Power, GuardSubject::Asset(policy_subject(&asset))).await?;
        let mut conn = self.store.pool().acquire().await?;
        if let Some(active) = Store::workflow_active_for(&mut conn, &asset.id).await? {
            return Err(Error::conflict(
                "ASSET_BUSY",
                format!("asset {} is busy: workflow {} ({}) is {}", asset.id, active.id, active.kind, active.state),
                Some(json!({"workflow_id": active.id, "state": asset.state})),
            ));
        }
        drop(conn);
        let target = self.bmc_target(&asset)?.ok_or_else(|| {
            Error::conflict("NO_BMC", format!("asset {} has no BMC credentials: add `bmc` to it first", asset.id), None)
        })?;
        // The same firmware rule as the workflows' boot step.
        let efi = asset.specs.get("firmware").and_then(serde_json::Value::as_str) == Some("uefi");
        let boot = BootOverride { device: BootDevice::Pxe, efi, persistent: false };
        let done = self.bmc_driver(&target).set_boot(&target, boot).await;
        let outcome = match &done {
            Ok(()) => json!({"result": "ok"}),
            Err(e) => json!({"result": "error", "code": e.code(), "message": e.to_string()}),
        };
        audit::record(
            &self.store,
            actor,
            Event::new("asset.boot_override", "asset", &asset.id)
                .with_details(json!({"device": "pxe", "efi": efi, "bmc": target.address, "outcome": outcome})),
        )
        .await?;
        done.map_err(|e| {
            let details = Some(json!({"retryable": e.retryable()}));
            match e {
                crate::bmc::BmcError::Unsupported { .. } => {
                    Error::Conflict { code: e.code(), message: e.to_string(), details }
                }
                _ => Error::Upstream { code: e.code(), message: e.to_string(), details },
            }
        })
    }
}
