//! Reading the audit log: list, export, verify. Reading is itself not audited (it changes nothing).

use super::{AppState, Page, PageRequest};
use crate::audit::{self, Verification};
use crate::auth::Actor;
use crate::error::Result;
use crate::model::Scope;
use crate::store::audit::{AuditQuery, AuditRow};

impl AppState {
    pub async fn audit_list(&self, actor: &Actor, q: AuditQuery, page: PageRequest) -> Result<Page<AuditRow>> {
        actor.require(Scope::AuditRead)?;
        let (items, total) = self.store.audit_list(&q, page.limit(), page.offset()).await?;
        Ok(Page { items, page, total })
    }

    pub async fn audit_export(&self, actor: &Actor, q: AuditQuery) -> Result<Vec<AuditRow>> {
        actor.require(Scope::AuditRead)?;
        Ok(self.store.audit_all(&q).await?)
    }

    pub async fn audit_verify(&self, actor: &Actor) -> Result<Verification> {
        actor.require(Scope::AuditRead)?;
        let (rows, head_seq, head_hash) = self.store.audit_chain().await?;
        let v = audit::verify(&rows, head_seq, &head_hash);
        if !v.valid {
            tracing::error!(first_broken = ?v.first_broken, reason = ?v.reason, "audit chain verification failed");
            // Not through the chain (it is what is broken); a failure to enqueue must not hide the
            // verification result.
            if let Err(e) =
                crate::webhooks::enqueue_chain_broken(&self.store, v.first_broken.as_deref(), v.reason.as_deref()).await
            {
                tracing::error!(error = %e, "could not enqueue audit.chain_broken");
            }
        }
        Ok(v)
    }
}
