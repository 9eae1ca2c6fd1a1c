//! Discovery: a machine that PXE-boots with a MAC no asset has becomes an asset in `discovering`
//! as soon as its first DHCP packet or boot-script request arrives, and `asset.discovered` fires
//! (audit, so webhooks deliver it). Facts learnt later (the SMBIOS UUID from the boot script's
//! query, the architecture) are filled in when the asset lacks them.
//!
//! Packet handlers only `observe`; one task does the store work, so a flood of packets from one
//! machine costs one lookup, and a DHCP reply never waits for the database.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use crate::audit::{self, Event};
use crate::auth::Actor;
use crate::model::{AssetState, IdKind, Mac, new_id, now_rfc3339};
use crate::store::Store;
use crate::store::assets::AssetRow;

/// What a boot service learnt about a machine.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Sighting {
    pub mac: Option<Mac>,
    /// Firmware family: `bios`, `uefi`, `uefi-http` (see `dhcp::boot::firmware`).
    pub firmware: Option<String>,
    /// CPU architecture as iPXE names it (`x86_64`, `i386`, `arm64`) or the DHCP arch code's name.
    pub arch: Option<String>,
    /// SMBIOS UUID, lowercase.
    pub uuid: Option<String>,
    /// `dhcp` or `http`: which service saw it first.
    pub via: &'static str,
}

const MAX_REMEMBERED: usize = 100_000;

#[derive(Clone)]
pub struct Discovery {
    tx: mpsc::Sender<Sighting>,
    /// What was last sent per MAC: a repeat with nothing new is not sent again.
    sent: Arc<Mutex<HashMap<Mac, Sighting>>>,
}

impl Discovery {
    pub fn start(store: Store) -> Discovery {
        let (tx, rx) = mpsc::channel(4096);
        let sent: Arc<Mutex<HashMap<Mac, Sighting>>> = Default::default();
        tokio::spawn(run(store, rx, sent.clone()));
        Discovery { tx, sent }
    }

    pub fn observe(&self, s: Sighting) {
        let Some(mac) = s.mac else { return };
        if let Ok(mut sent) = self.sent.lock() {
            if let Some(prev) = sent.get(&mac)
                && !adds_facts(prev, &s)
            {
                return;
            }
            if sent.len() >= MAX_REMEMBERED {
                sent.clear();
            }
            let merged = merge(sent.get(&mac), &s);
            sent.insert(mac, merged);
        }
        // Full queue: forget it so the next packet from this machine tries again.
        if self.tx.try_send(s).is_err()
            && let Ok(mut sent) = self.sent.lock()
        {
            sent.remove(&mac);
        }
    }

    /// Records `s` now and returns the asset that owns its MAC, created in `discovering` (with
    /// `asset.discovered`) if none did: for a caller that needs the asset at once, as the boot
    /// script does to bind its token to the asset's id. None: no MAC, or the asset vanished in
    /// between (deleted by a concurrent request).
    pub async fn ensure(&self, store: &Store, s: Sighting) -> Result<Option<AssetRow>, sqlx::Error> {
        let Some(mac) = s.mac else { return Ok(None) };
        record(store, mac, &s).await?;
        if let Ok(mut sent) = self.sent.lock() {
            let merged = merge(sent.get(&mac), &s);
            sent.insert(mac, merged);
        }
        store.asset_by_mac(&mac).await
    }

    /// Forgets what was sent for `mac` (after the asset was deleted, say).
    pub fn forget(&self, mac: &Mac) {
        if let Ok(mut sent) = self.sent.lock() {
            sent.remove(mac);
        }
    }
}

fn adds_facts(prev: &Sighting, new: &Sighting) -> bool {
    (new.uuid.is_some() && new.uuid != prev.uuid)
        || (new.arch.is_some() && new.arch != prev.arch)
        || (new.firmware.is_some() && new.firmware != prev.firmware)
}

fn merge(prev: Option<&Sighting>, new: &Sighting) -> Sighting {
    let mut m = new.clone();
    if let Some(p) = prev {
        m.uuid = m.uuid.or_else(|| p.uuid.clone());
        m.arch = m.arch.or_else(|| p.arch.clone());
        m.firmware = m.firmware.or_else(|| p.firmware.clone());
    }
    m
}

async fn run(store: Store, mut rx: mpsc::Receiver<Sighting>, sent: Arc<Mutex<HashMap<Mac, Sighting>>>) {
    while let Some(s) = rx.recv().await {
        let Some(mac) = s.mac else { continue };
        if let Err(e) = record(&store, mac, &s).await {
            tracing::warn!(error = %e, %mac, "discovery: could not record the machine");
            if let Ok(mut sent) = sent.lock() {
                sent.remove(&mac);
            }
        }
    }
}

async fn record(store: &Store, mac: Mac, s: &Sighting) -> Result<(), sqlx::Error> {
    // Two attempts: a concurrent writer (the API, another appliance) may win the first.
    for _ in 0..2 {
        let mut tx = store.begin().await?;
        let owner: Option<String> = sqlx::query_scalar("SELECT asset_id FROM asset_macs WHERE mac = $1")
            .bind(mac.to_string())
            .fetch_optional(&mut *tx)
            .await?;
        let done = match owner {
            None => create(&mut tx, mac, s).await?,
            Some(id) => fill_in(&mut tx, &id, s).await?,
        };
        if done {
            tx.commit().await?;
            return Ok(());
        }
    }
    Ok(())
}

async fn create(tx: &mut sqlx::AnyConnection, mac: Mac, s: &Sighting) -> Result<bool, sqlx::Error> {
    let id = new_id(IdKind::Asset);
    let now = now_rfc3339();
    let hex: String = mac.octets().iter().map(|b| format!("{b:02x}")).collect();
    let mut row = AssetRow {
        hostname: format!("node-{hex}"),
        state: AssetState::Discovering,
        macs: vec![mac],
        tags: Vec::new(),
        specs: specs(&serde_json::json!({}), s),
        disks: serde_json::json!([]),
        nics: serde_json::json!([]),
        smbios_uuid: s.uuid.clone(),
        serial: None,
        bmc: None,
        generation: 1,
        created_at: now.clone(),
        updated_at: now,
        id,
    };
    if let Some(uuid) = &row.smbios_uuid {
        let taken: Option<String> = sqlx::query_scalar("SELECT id FROM assets WHERE smbios_uuid = $1")
            .bind(uuid)
            .fetch_optional(&mut *tx)
            .await?;
        if taken.is_some() {
            // Another asset has this UUID (a re-cabled NIC?): do not guess, leave it off.
            row.smbios_uuid = None;
        }
    }
    let name_taken: Option<String> = sqlx::query_scalar("SELECT id FROM assets WHERE hostname = $1")
        .bind(&row.hostname)
        .fetch_optional(&mut *tx)
        .await?;
    if name_taken.is_some() {
        row.hostname = format!("node-{hex}-{}", &row.id[row.id.len().saturating_sub(6)..]).to_ascii_lowercase();
    }
    if Store::asset_insert(tx, &row).await.is_err() {
        return Ok(false);
    }
    audit::append(
        tx,
        &Actor::system(),
        Event::new("asset.discovered", "asset", &row.id).with_details(serde_json::json!({
            "mac": mac, "hostname": row.hostname, "arch": s.arch, "firmware": s.firmware,
            "smbios_uuid": row.smbios_uuid, "via": s.via,
        })),
    )
    .await?;
    tracing::info!(asset = %row.id, %mac, via = s.via, "discovered a new machine");
    Ok(true)
}

async fn fill_in(tx: &mut sqlx::AnyConnection, id: &str, s: &Sighting) -> Result<bool, sqlx::Error> {
    let Some(mut row) = Store::asset_get_in(tx, id).await? else { return Ok(false) };
    let new_specs = specs(&row.specs, s);
    let mut changed = new_specs != row.specs;
    row.specs = new_specs;
    if row.smbios_uuid.is_none()
        && let Some(uuid) = &s.uuid
    {
        let taken: Option<String> = sqlx::query_scalar("SELECT id FROM assets WHERE smbios_uuid = $1")
            .bind(uuid)
            .fetch_optional(&mut *tx)
            .await?;
        if taken.is_none() {
            row.smbios_uuid = Some(uuid.clone());
            changed = true;
        }
    }
    if !changed {
        return Ok(true);
    }
    Store::asset_update(tx, &row, &now_rfc3339()).await
}

/// The asset's `specs` with the boot facts filled in where missing (inventory from the agent
/// later overrides them; discovery never overwrites).
fn specs(current: &serde_json::Value, s: &Sighting) -> serde_json::Value {
    let mut specs = current.clone();
    let Some(obj) = specs.as_object_mut() else { return specs };
    for (key, value) in [("arch", &s.arch), ("firmware", &s.firmware)] {
        if let Some(v) = value
            && !obj.contains_key(key)
        {
            obj.insert(key.to_string(), serde_json::Value::String(v.clone()));
        }
    }
    specs
}
