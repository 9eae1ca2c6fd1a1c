//! Group commit: an ACK leaves only after its lease is durable, but leases are not written one
//! transaction each. The packet loops hand (lease rows, reply) pairs to one committer; it writes
//! everything that queued up while the previous commit was in flight in one transaction, then
//! sends those replies. Under load batches grow, so the cost of a commit (an fsync) is shared.
//! A failed commit sends none of its replies: clients retry, and no one holds an address the
//! store does not know about.

use std::sync::Arc;
use std::time::Instant;

use sqlx::{Connection, Executor};
use tokio::sync::mpsc;

use super::reply::Destination;
use super::socket::IfaceSocket;
use crate::model::Mac;
use crate::store::dhcp_leases::LeaseRow;
use crate::store::{Backend, Store};

/// A reply waiting for its lease to be durable.
pub struct Outgoing {
    pub socket: Arc<IfaceSocket>,
    pub bytes: Vec<u8>,
    pub dest: Destination,
    pub mac: Option<Mac>,
}

pub struct Pending {
    pub rows: Vec<LeaseRow>,
    pub reply: Option<Outgoing>,
}

const QUEUE: usize = 65_536;
const MAX_BATCH: usize = 4_096;

#[derive(Clone)]
pub struct Committer {
    tx: mpsc::Sender<Pending>,
}

impl Committer {
    /// `fsync`: commit with `synchronous = FULL` on SQLite (see `open`).
    pub fn start(store: Store, fsync: bool) -> Committer {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(store, rx, fsync));
        Committer { tx }
    }

    /// Queues `p`; false when the committer is far behind (the reply is dropped; the client
    /// retries).
    pub fn submit(&self, p: Pending) -> bool {
        self.tx.try_send(p).is_ok()
    }
}

async fn run(store: Store, mut rx: mpsc::Receiver<Pending>, fsync: bool) {
    let mut conn: Option<sqlx::pool::PoolConnection<sqlx::Any>> = None;
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut rows = Vec::new();
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        rows.clear();
        rows.extend(batch.iter().flat_map(|p| p.rows.iter().cloned()));
        let started = Instant::now();
        let turn = store.bulk_write_turn().await;
        let result = match conn.as_mut() {
            Some(c) => commit(c, &rows, store.backend()).await,
            None => match open(&store, fsync).await {
                Ok(mut c) => {
                    let r = commit(&mut c, &rows, store.backend()).await;
                    conn = Some(c);
                    r
                }
                Err(e) => Err(e),
            },
        };
        drop(turn);
        match result {
            Ok(()) => {
                tracing::trace!(leases = rows.len(), replies = batch.len(), took = ?started.elapsed(), "dhcp: committed");
                for p in batch.drain(..) {
                    if let Some(out) = p.reply
                        && let Err(e) = out.socket.send(&out.bytes, out.dest, out.mac).await
                    {
                        tracing::debug!(error = %e, "dhcp: could not send a reply");
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = %e, leases = rows.len(), "dhcp: could not persist leases; their ACKs are not sent");
                conn = None;
                batch.clear();
            }
        }
    }
}

/// A connection of its own. SQLite in WAL mode with `synchronous = NORMAL` (the store's default)
/// makes a committed lease survive a crash or kill of ironbay, which is what a restart must not
/// forget; with `dhcp.lease_fsync` every commit is also fsynced (`synchronous = FULL`), so it
/// survives a power cut, at the disk's fsync latency per group. PostgreSQL commits durably.
async fn open(store: &Store, fsync: bool) -> Result<sqlx::pool::PoolConnection<sqlx::Any>, sqlx::Error> {
    let mut c = store.pool().acquire().await?;
    if store.backend() == Backend::Sqlite {
        c.execute(if fsync { "PRAGMA synchronous = FULL" } else { "PRAGMA synchronous = NORMAL" }).await?;
    }
    Ok(c)
}

async fn commit(
    conn: &mut sqlx::pool::PoolConnection<sqlx::Any>,
    rows: &[LeaseRow],
    backend: Backend,
) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut tx = match backend {
        Backend::Sqlite => conn.begin_with("BEGIN IMMEDIATE").await?,
        Backend::Postgres => conn.begin().await?,
    };
    Store::dhcp_leases_upsert(&mut tx, rows).await?;
    tx.commit().await
}
