//! The dashboard's summary: what an admin checks first. Each part is included only when the
//! caller may read it.

use super::{AppState, PageRequest};
use crate::auth::Actor;
use crate::error::Result;
use crate::model::Scope;
use crate::store::audit::{AuditQuery, AuditRow};
use crate::store::dashboard::FailedWorkflow;

use super::vnis::VniView;

#[derive(Debug, Default)]
pub struct Dashboard {
    /// `(state, count)`, every state present.
    pub assets: Option<Vec<(String, i64)>>,
    pub workflows: Option<Vec<(String, i64)>>,
    pub needing_attention: Vec<FailedWorkflow>,
    pub clusters: Option<Vec<(String, i64)>>,
    pub vnis: Option<Vec<VniView>>,
    pub recent_audit: Option<Vec<AuditRow>>,
}

const VNIS_SHOWN: u32 = 50;

impl AppState {
    pub async fn dashboard(&self, actor: &Actor) -> Result<Dashboard> {
        let p = actor.authenticated()?;
        let mut d = Dashboard::default();
        if p.has(Scope::AssetsRead) {
            d.assets = Some(self.store.asset_state_counts().await?);
        }
        if p.has(Scope::WorkflowsRead) {
            d.workflows = Some(self.store.workflow_state_counts().await?);
            d.needing_attention = self.store.workflows_needing_attention(10).await?;
        }
        if p.has(Scope::ClustersRead) {
            d.clusters = Some(self.store.cluster_state_counts().await?);
        }
        if p.has(Scope::VnisRead) {
            let page = PageRequest { page: 1, per_page: VNIS_SHOWN.min(super::MAX_PER_PAGE) };
            d.vnis = Some(self.vni_list(actor, page).await?.items);
        }
        if p.has(Scope::AuditRead) {
            let page = PageRequest { page: 1, per_page: 10 };
            d.recent_audit = Some(self.audit_list(actor, AuditQuery::default(), page).await?.items);
        }
        Ok(d)
    }
}
