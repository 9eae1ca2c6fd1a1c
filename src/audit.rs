//! The audit chain: every change is recorded with who, what, target, when, from where and the
//! outcome, each entry holding the SHA-256 of the one before. Editing, deleting or reordering an
//! entry in the database breaks the chain, and `verify` names the first entry that no longer fits.
//!
//! Secrets never enter `details`: callers pass only what identifies the change.

use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::AnyConnection;

use crate::auth::Actor;
use crate::model::{IdKind, new_id, now_rfc3339};
use crate::store::Store;
use crate::store::audit::AuditRow;

pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What happened to the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// Refused for lack of permission, by a policy, or by lockout.
    Denied,
    /// Attempted and failed (bad credentials, conflict, invalid input).
    Failure,
}

impl Outcome {
    pub const fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Denied => "denied",
            Outcome::Failure => "failure",
        }
    }
}

/// One entry to append.
pub struct Event<'a> {
    pub action: &'a str,
    pub target_type: Option<&'a str>,
    pub target_id: Option<&'a str>,
    pub outcome: Outcome,
    pub details: Value,
}

impl<'a> Event<'a> {
    pub fn new(action: &'a str, target_type: &'a str, target_id: &'a str) -> Self {
        Event {
            action,
            target_type: Some(target_type),
            target_id: Some(target_id),
            outcome: Outcome::Success,
            details: Value::Null,
        }
    }

    pub fn with_outcome(mut self, outcome: Outcome) -> Self {
        self.outcome = outcome;
        self
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }
}

/// Appends `event` inside the caller's transaction.
pub async fn append(conn: &mut AnyConnection, actor: &Actor, event: Event<'_>) -> Result<(), sqlx::Error> {
    let (seq, prev_hash) = Store::audit_claim_head(conn).await?;
    let mut row = AuditRow {
        seq,
        id: new_id(IdKind::Audit),
        ts: now_rfc3339(),
        actor_type: actor.kind().to_string(),
        actor_id: actor.id().map(str::to_string),
        actor_name: actor.name().map(str::to_string),
        action: event.action.to_string(),
        target_type: event.target_type.map(str::to_string),
        target_id: event.target_id.map(str::to_string),
        source_ip: actor.source_ip.map(|ip| ip.to_string()),
        outcome: event.outcome.as_str().to_string(),
        details: if event.details.is_null() { "{}".into() } else { event.details.to_string() },
        prev_hash,
        hash: String::new(),
    };
    row.hash = entry_hash(&row);
    Store::audit_insert(conn, &row).await?;
    // The outbox: the change's webhook event commits (or rolls back) with it.
    crate::webhooks::enqueue_audit(conn, &row).await
}

/// Appends `event` in a transaction of its own (for outcomes of requests that changed nothing).
pub async fn record(store: &Store, actor: &Actor, event: Event<'_>) -> Result<(), sqlx::Error> {
    let mut tx = store.begin().await?;
    append(&mut tx, actor, event).await?;
    tx.commit().await
}

/// SHA-256 over every field but the hash itself, as a JSON array: unambiguous (no field can bleed
/// into the next) and stable across engines.
pub fn entry_hash(r: &AuditRow) -> String {
    let canonical = serde_json::json!([
        r.seq,
        r.id,
        r.ts,
        r.actor_type,
        r.actor_id,
        r.actor_name,
        r.action,
        r.target_type,
        r.target_id,
        r.source_ip,
        r.outcome,
        r.details,
        r.prev_hash
    ]);
    hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Verification {
    pub valid: bool,
    pub entries: u64,
    /// Id of the first entry that does not fit the chain (edited, reordered, or following a gap).
    pub first_broken: Option<String>,
    /// Why it is broken, when it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Walks the chain from the genesis hash and checks every link, then that the head points at the
/// last entry (so deleting the newest entries is caught too).
pub fn verify(rows: &[AuditRow], head_seq: i64, head_hash: &str) -> Verification {
    let broken = |r: &AuditRow, reason: String| Verification {
        valid: false,
        entries: rows.len() as u64,
        first_broken: Some(r.id.clone()),
        reason: Some(reason),
    };
    let mut prev = GENESIS_HASH.to_string();
    let mut expected_seq = 1;
    for r in rows {
        if r.seq != expected_seq {
            return broken(r, format!("sequence gap: expected entry {expected_seq}, found {}", r.seq));
        }
        if r.prev_hash != prev {
            return broken(r, "previous-hash link does not match the entry before".into());
        }
        if entry_hash(r) != r.hash {
            return broken(r, "entry content does not match its hash".into());
        }
        prev = r.hash.clone();
        expected_seq += 1;
    }
    if head_seq != expected_seq - 1 || head_hash != prev {
        return Verification {
            valid: false,
            entries: rows.len() as u64,
            first_broken: rows.last().map(|r| r.id.clone()),
            reason: Some("chain head does not match the last entry (entries removed from the end?)".into()),
        };
    }
    Verification { valid: true, entries: rows.len() as u64, first_broken: None, reason: None }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<AuditRow> {
        let mut prev = GENESIS_HASH.to_string();
        (1..=n)
            .map(|seq| {
                let mut r = AuditRow {
                    seq,
                    id: format!("aud_{seq}"),
                    ts: "2026-01-01T00:00:00.000000Z".into(),
                    actor_type: "user".into(),
                    actor_id: Some("usr_1".into()),
                    actor_name: Some("admin".into()),
                    action: "asset.create".into(),
                    target_type: Some("asset".into()),
                    target_id: Some(format!("ast_{seq}")),
                    source_ip: Some("127.0.0.1".into()),
                    outcome: "success".into(),
                    details: "{}".into(),
                    prev_hash: prev.clone(),
                    hash: String::new(),
                };
                r.hash = entry_hash(&r);
                prev = r.hash.clone();
                r
            })
            .collect()
    }

    #[test]
    fn intact_chain_verifies() {
        let rows = chain(5);
        let v = verify(&rows, 5, &rows[4].hash);
        assert!(v.valid && v.entries == 5 && v.first_broken.is_none());
    }

    #[test]
    fn an_edited_entry_is_named() {
        let mut rows = chain(5);
        rows[2].outcome = "failure".into();
        let v = verify(&rows, 5, &rows[4].hash.clone());
        assert_eq!(v.first_broken.as_deref(), Some("aud_3"));
    }

    #[test]
    fn deletions_are_caught_in_the_middle_and_at_the_end() {
        let mut rows = chain(5);
        let head = rows[4].hash.clone();
        rows.remove(1);
        assert_eq!(verify(&rows, 5, &head).first_broken.as_deref(), Some("aud_3"));
        let mut rows = chain(5);
        rows.pop();
        assert!(!verify(&rows, 5, &head).valid);
    }
}
