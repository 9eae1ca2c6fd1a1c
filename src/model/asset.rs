//! The asset's lifecycle state. Clients read it; only the lifecycle (workflows) changes it.

use std::fmt;

use super::Mac;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AssetState {
    Discovering,
    Available,
    Provisioning,
    Provisioned,
    Wiping,
    Failed,
}

impl AssetState {
    pub const ALL: [AssetState; 6] = [
        AssetState::Discovering,
        AssetState::Available,
        AssetState::Provisioning,
        AssetState::Provisioned,
        AssetState::Wiping,
        AssetState::Failed,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            AssetState::Discovering => "discovering",
            AssetState::Available => "available",
            AssetState::Provisioning => "provisioning",
            AssetState::Provisioned => "provisioned",
            AssetState::Wiping => "wiping",
            AssetState::Failed => "failed",
        }
    }
}

impl fmt::Display for AssetState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("`{0}` is not an asset state (one of discovering, available, provisioning, provisioned, wiping, failed)")]
pub struct UnknownState(pub String);

impl FromStr for AssetState {
    type Err = UnknownState;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AssetState::ALL.into_iter().find(|st| st.as_str() == s).ok_or_else(|| UnknownState(s.to_string()))
    }
}

/// The BMC protocols a driver exists (or will exist) for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BmcDriver {
    Ipmi,
    Redfish,
}

impl BmcDriver {
    pub const fn as_str(self) -> &'static str {
        match self {
            BmcDriver::Ipmi => "ipmi",
            BmcDriver::Redfish => "redfish",
        }
    }
    pub const fn default_port(self) -> u16 {
        match self {
            BmcDriver::Ipmi => 623,
            BmcDriver::Redfish => 443,
        }
    }
}

impl FromStr for BmcDriver {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ipmi" => Ok(BmcDriver::Ipmi),
            "redfish" => Ok(BmcDriver::Redfish),
            other => Err(format!("unknown BMC driver `{other}`")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct BmcView {
    pub driver: BmcDriver,
    pub address: String,
    pub port: u16,
    pub username: String,
    /// Whether a password is stored. The password itself is never returned.
    pub password_set: bool,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
/// An asset as the API shows it (never its BMC password). The store keeps this rendered on
/// the row (`assets.view`) so lists are served without per-row work.
pub struct AssetView {
    pub id: String,
    pub hostname: String,
    pub state: AssetState,
    /// Same as `state` (Colony's name for it).
    pub status: AssetState,
    #[schema(value_type = Vec<String>)]
    pub macs: Vec<Mac>,
    pub tags: Vec<String>,
    pub smbios_uuid: Option<String>,
    pub serial: Option<String>,
    /// Hardware facts reported by the agent.
    #[schema(value_type = Object)]
    pub specs: serde_json::Value,
    /// Disks the agent reported: name, path, size_bytes, model, serial, wwn, rotational,
    /// removable, read_only, transport, partition_table, ...
    #[schema(value_type = Vec<Object>)]
    pub disks: serde_json::Value,
    /// NICs the agent reported: name, mac, driver, link, speed_mbps, carrier.
    #[schema(value_type = Vec<Object>)]
    pub nics: serde_json::Value,
    pub bmc: Option<BmcView>,
    pub generation: i64,
    pub created_at: String,
    pub updated_at: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_through_their_names() {
        for st in AssetState::ALL {
            assert_eq!(st.as_str().parse::<AssetState>().unwrap(), st);
        }
        assert!("provisioned ".parse::<AssetState>().is_err());
    }
}
