//! Ground types every layer shares: ids, MACs, roles and scopes, asset states. Pure; no I/O.

pub mod access;
pub mod asset;
pub mod ids;
pub mod lifecycle;
pub mod mac;

pub use access::{Role, Scope};
pub use asset::{AssetState, BmcDriver};
pub use ids::{IdKind, new_id};
pub use mac::Mac;

/// Now, as the RFC 3339 UTC string every table stores (fixed width, so text order is time order).
pub fn now_rfc3339() -> String {
    to_rfc3339(chrono::Utc::now())
}

pub fn to_rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}
