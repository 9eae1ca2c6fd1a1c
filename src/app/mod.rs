//! The application layer: the operations the API (and later the console) call, one file per
//! resource. Each operation checks permission, validates, changes the store and appends the audit
//! entry in the same transaction. Nothing here knows about HTTP.

pub mod agents;
pub mod api_keys;
pub mod assets;
pub mod audit;
pub mod auth;
pub mod boot;
pub mod boot_events;
pub mod clusters;
pub mod console_assets;
pub mod dashboard;
pub mod devices;
pub mod enroll_tokens;
pub mod images;
pub mod lifecycle;
pub mod policies;
pub mod psks;
pub mod settings;
pub mod setup;
pub mod users;
pub mod vnis;
pub mod webhooks;
pub mod workflows;

use std::sync::Arc;

use serde::Deserialize;
use std::time::Instant;

use crate::auth::ratelimit::RateLimits;
use crate::config::Config;
use crate::secret::MasterKey;
use crate::store::Store;

pub type App = Arc<AppState>;

pub struct AppState {
    pub store: Store,
    pub keys: MasterKey,
    pub config: Config,
    pub limits: RateLimits,
    /// Resolved API keys, briefly (see `auth::cache`).
    pub key_cache: crate::auth::cache::KeyCache,
    pub started: Instant,
    /// Compared against when a login names an unknown user (equal timing).
    pub dummy_password_hash: String,
    /// The device CA (loaded, or created on the first start, by `devices::load_or_create_ca`).
    pub device_ca: crate::pki::DeviceCa,
    /// Compiled policies, keyed on the store's policy revision (see `app::policies`).
    pub policies: crate::policy::PolicyCache,
    /// Boot timeline, discovery and the IP-to-MAC map the boot services share.
    pub boot: crate::boot::BootShared,
    /// The appliance's SSH key, the only one agents accept (derived from the master key).
    pub agent_key: Arc<crate::agent::key::ApplianceKey>,
    /// Signs wipe certificates (derived from the master key).
    pub certificate_key: Arc<crate::workflow::certificate::CertificateKey>,
    /// Wakes the workflow engine when a workflow is created, cancelled or retried here.
    pub workflow_wake: Arc<tokio::sync::Notify>,
    /// Changes fanned out to open consoles (see `live`).
    pub live: crate::live::Hub,
}

/// Page request, validated: `page` from 1, `per_page` 1..=100 (default 20).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub page: u32,
    pub per_page: u32,
}

impl Default for PageRequest {
    fn default() -> Self {
        PageRequest { page: 1, per_page: DEFAULT_PER_PAGE }
    }
}

pub const DEFAULT_PER_PAGE: u32 = 20;
pub const MAX_PER_PAGE: u32 = 100;

impl PageRequest {
    pub fn limit(&self) -> i64 {
        i64::from(self.per_page)
    }
    pub fn offset(&self) -> i64 {
        i64::from(self.page - 1) * i64::from(self.per_page)
    }
}

/// One page of results and the total count.
#[derive(Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub page: PageRequest,
    pub total: i64,
}

/// For PATCH bodies: tells `"field": null` (Some(None): clear it) from an absent field (None, via
/// `#[serde(default)]`: keep it).
pub(crate) fn present<'de, D: serde::Deserializer<'de>, T: serde::Deserialize<'de>>(
    d: D,
) -> std::result::Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}
