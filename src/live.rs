//! Live changes for open consoles: one feed per appliance, fanned out to every subscriber.
//!
//! Two sources feed it: the audit log (every state change is audited, so one poller reading new
//! entries sees changes made by any appliance sharing the database) and this process's workflow
//! engine (an agent's progress lines are not audited: they arrive twice a second during a wipe).
//! Subscribers get a `broadcast` receiver; a slow one misses events and is told to reload, it
//! never holds the feed back. The latest progress line of each running step is kept here too,
//! so a page rendered mid-wipe shows the bar where it is, not where the last lease renewal left it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use tokio::sync::broadcast;

use crate::store::Store;

/// How often the audit log is read for new entries: once for all consoles, not per console.
const POLL: Duration = Duration::from_millis(300);
const CAPACITY: usize = 1024;

/// One change, as consoles receive it.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    /// What changed: `asset`, `workflow`, `cluster`, `vni`, `psk`, … (the audit target type).
    pub topic: String,
    pub id: Option<String>,
    /// The audit action (`workflow.step_end`, …) or `progress` for an agent's progress line.
    pub action: String,
    /// The audit sequence number; None for progress lines.
    pub seq: Option<i64>,
    /// The asset a workflow change concerns, so an asset page can follow its workflows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub asset_id: Option<String>,
}

#[derive(Clone)]
pub struct Hub {
    tx: broadcast::Sender<Change>,
    /// Latest progress line per (workflow, step index).
    progress: Arc<Mutex<HashMap<(String, i64), Value>>>,
}

impl Default for Hub {
    fn default() -> Self {
        let (tx, _) = broadcast::channel(CAPACITY);
        Hub { tx, progress: Default::default() }
    }
}

impl Hub {
    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.tx.subscribe()
    }

    pub fn subscribers(&self) -> usize {
        self.tx.receiver_count()
    }

    pub fn publish(&self, change: Change) {
        // No subscriber is not an error: nobody is watching.
        let _ = self.tx.send(change);
    }

    /// An agent's progress line for a running step (`{"bytes_done", "bytes_total", …}`).
    pub fn progress(&self, workflow_id: &str, asset_id: &str, step: i64, line: &Value) {
        if let Ok(mut m) = self.progress.lock() {
            m.insert((workflow_id.to_string(), step), line.clone());
        }
        self.publish(Change {
            topic: "workflow".into(),
            id: Some(workflow_id.to_string()),
            action: "progress".into(),
            seq: None,
            asset_id: Some(asset_id.to_string()),
        });
    }

    /// The latest progress line this process saw for a step, if any.
    pub fn latest_progress(&self, workflow_id: &str, step: i64) -> Option<Value> {
        self.progress.lock().ok()?.get(&(workflow_id.to_string(), step)).cloned()
    }

    /// Forgets a workflow's progress once it has ended (the stored log has the rest).
    pub fn forget(&self, workflow_id: &str) {
        if let Ok(mut m) = self.progress.lock() {
            m.retain(|(w, _), _| w != workflow_id);
        }
    }

    /// Reads the audit log from its current head on, publishing each new entry. Runs for the
    /// appliance's lifetime.
    pub async fn follow_audit(self, store: Store) {
        let mut after = loop {
            match store.audit_head_seq().await {
                Ok(s) => break s,
                Err(e) => {
                    tracing::warn!(error = %e, "live feed: reading the audit head");
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
            }
        };
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let rows = match store.audit_after(after, 500).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(error = %e, "live feed: reading the audit log");
                    continue;
                }
            };
            for r in rows {
                after = r.seq;
                let details: Value = serde_json::from_str(&r.details).unwrap_or_default();
                let asset_id = details.get("asset_id").and_then(Value::as_str).map(str::to_string);
                if matches!(r.action.as_str(), "workflow.finish" | "workflow.fail" | "workflow.cancel")
                    && let Some(id) = &r.target_id
                {
                    self.forget(id);
                }
                self.publish(Change {
                    topic: r.target_type.clone().unwrap_or_default(),
                    id: r.target_id.clone(),
                    action: r.action.clone(),
                    seq: Some(r.seq),
                    asset_id,
                });
            }
        }
    }
}
