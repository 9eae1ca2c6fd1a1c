//! (placeholder until the talos-config branch lands)
use serde::{Deserialize, Serialize};
use super::TalosError;
use super::secrets::SecretsBundle;
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MachineRole { Controlplane, Worker }
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClusterSettings {
    pub name: String, pub endpoint: String, pub vip: Option<std::net::IpAddr>, pub talos_version: String,
    pub kubernetes_version: String, pub install_image: String, pub ntp_servers: Vec<String>,
    pub nameservers: Vec<std::net::IpAddr>, pub registry_mirrors: std::collections::BTreeMap<String, Vec<String>>,
    pub discovery: bool, pub cert_sans: Vec<String>,
}
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeSettings {
    pub role: MachineRole, pub hostname: String, pub mac: Option<String>, pub address: std::net::IpAddr,
    pub prefix: u8, pub gateway: std::net::IpAddr, pub install_disk: String,
}
pub fn machine_config(_c: &ClusterSettings, _n: &NodeSettings, _s: &SecretsBundle) -> Result<String, TalosError> {
    Err(TalosError::Invalid("unimplemented".into()))
}
pub const DEFAULT_TALOS_VERSION: &str = "v1.13.9";
pub const DEFAULT_KUBERNETES_VERSION: &str = "v1.36.0";
