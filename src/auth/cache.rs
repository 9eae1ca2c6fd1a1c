//! A short-lived cache of resolved API keys: automation calls arrive in bursts with the same key,
//! and resolving one costs two lookups. Entries live `TTL` at most; this process drops them at once
//! when a key is revoked or any user changes, so only another appliance sharing the database can
//! see a stale answer, and for at most `TTL`.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use super::Principal;

pub const TTL: Duration = Duration::from_secs(5);
/// Beyond this many keys the cache starts over: memory stays bounded whatever clients send.
const MAX_ENTRIES: usize = 10_000;

#[derive(Default)]
pub struct KeyCache {
    // Keyed by the keyed hash of the presented key, never by the key itself.
    // The instant is when the entry stops being usable.
    entries: RwLock<HashMap<String, (Principal, Instant)>>,
}

impl KeyCache {
    pub fn get(&self, token_hash: &str) -> Option<Principal> {
        let entries = self.entries.read().ok()?;
        let (p, until) = entries.get(token_hash)?;
        (Instant::now() < *until).then(|| p.clone())
    }

    /// Caches `p` for `TTL`, or less when the key itself expires sooner.
    pub fn put(&self, token_hash: String, p: Principal, key_valid_for: Option<Duration>) {
        let ttl = key_valid_for.map_or(TTL, |v| v.min(TTL));
        if let Ok(mut entries) = self.entries.write() {
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
            entries.insert(token_hash, (p, Instant::now() + ttl));
        }
    }

    /// Forgets everything (a user's role or status changed, a key was revoked).
    pub fn clear(&self) {
        if let Ok(mut entries) = self.entries.write() {
            entries.clear();
        }
    }
}
