//! The boot timeline ("why didn't it boot?"): DHCP, TFTP and HTTP boot services `record` what a
//! client asked, what was answered and why. Recording never blocks a packet: events go through a
//! bounded channel to one writer task that inserts them in batches (dropping, and counting, what
//! does not fit when the store falls behind) and prunes the table to a bounded size.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::model::{Mac, now_rfc3339};
use crate::store::Store;
use crate::store::boot_events::BootEventRow;

/// Which service saw the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Dhcp,
    Tftp,
    Http,
}

impl Source {
    pub const fn as_str(self) -> &'static str {
        match self {
            Source::Dhcp => "dhcp",
            Source::Tftp => "tftp",
            Source::Http => "http",
        }
    }
}

/// One exchange with a client.
#[derive(Debug, Clone)]
pub struct BootEvent {
    pub source: Source,
    pub mac: Option<Mac>,
    pub ip: Option<IpAddr>,
    pub request: String,
    /// `none` when nothing was sent.
    pub response: String,
    pub reason: String,
}

/// Bounds: events kept per MAC and in all.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub per_mac: i64,
    pub total: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { per_mac: 200, total: 200_000 }
    }
}

const QUEUE: usize = 65_536;
/// Small enough that a batch holds the bulk-writer turn only briefly (DHCP commits wait on it).
const BATCH: usize = 256;
const PRUNE_EVERY: Duration = Duration::from_secs(15);

#[derive(Clone)]
pub struct BootJournal {
    tx: mpsc::Sender<BootEventRow>,
    dropped: Arc<AtomicU64>,
}

impl BootJournal {
    /// Starts the writer task on `store`.
    pub fn start(store: Store, limits: Limits) -> BootJournal {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(write_loop(store, rx, limits));
        BootJournal { tx, dropped: Arc::new(AtomicU64::new(0)) }
    }

    pub fn record(&self, e: BootEvent) {
        let row = BootEventRow {
            id: 0,
            mac: e.mac.map(|m| m.to_string()),
            ip: e.ip.map(|ip| ip.to_string()),
            at: now_rfc3339(),
            source: e.source.as_str().to_string(),
            request: e.request,
            response: e.response,
            reason: e.reason,
        };
        if self.tx.try_send(row).is_err() {
            let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_power_of_two() {
                tracing::warn!(dropped = n, "boot timeline: the store is behind; events dropped");
            }
        }
    }

    /// Events dropped because the writer was behind (reported in logs).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// A MAC is trimmed once it has this many events over the cap (so trimming is occasional).
const TRIM_SLACK: u32 = 50;
/// MACs tracked before the counts are dropped for one whole-table trim.
const MAX_TRACKED: usize = 100_000;

async fn write_loop(store: Store, mut rx: mpsc::Receiver<BootEventRow>, limits: Limits) {
    // What earlier runs left: every MAC down to its cap, once, in one statement.
    trim_all(&store, limits).await;
    // Events written per MAC since it was last trimmed (or since start: at most `per_mac` more
    // are on disk from before, trimmed at start).
    let mut counts: HashMap<String, u32> = HashMap::new();
    let mut last_prune = Instant::now();
    let mut batch = Vec::with_capacity(BATCH);
    let cap = u32::try_from(limits.per_mac).unwrap_or(u32::MAX);
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        for mac in batch.iter().filter_map(|e| e.mac.as_ref()) {
            *counts.entry(mac.clone()).or_default() += 1;
        }
        if let Err(e) = store.boot_events_insert(&batch).await {
            tracing::warn!(error = %e, events = batch.len(), "boot timeline: could not store events");
        }
        batch.clear();
        // Only chatty MACs are trimmed one by one: a flood of new MACs costs nothing here.
        let over: Vec<String> =
            counts.iter().filter(|(_, n)| **n >= cap.saturating_add(TRIM_SLACK)).map(|(m, _)| m.clone()).collect();
        for mac in over {
            if let Err(e) = store.boot_events_trim_mac(&mac, limits.per_mac).await {
                tracing::warn!(error = %e, "boot timeline: pruning failed");
            }
            counts.insert(mac, cap);
        }
        if counts.len() > MAX_TRACKED {
            trim_all(&store, limits).await;
            counts.clear();
        }
        if last_prune.elapsed() >= PRUNE_EVERY {
            if let Err(e) = store.boot_events_trim_total(limits.total).await {
                tracing::warn!(error = %e, "boot timeline: pruning failed");
            }
            last_prune = Instant::now();
        }
    }
}

async fn trim_all(store: &Store, limits: Limits) {
    if let Err(e) = store.boot_events_trim_every_mac(limits.per_mac).await {
        tracing::warn!(error = %e, "boot timeline: pruning failed");
    }
}
