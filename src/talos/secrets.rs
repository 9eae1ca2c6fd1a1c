//! (placeholder until the talos-config branch lands)
use serde::{Deserialize, Serialize};
use super::TalosError;
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertAndKey { pub crt: String, pub key: String }
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SecretsBundle {
    pub cluster_id: String, pub cluster_secret: String, pub bootstrap_token: String, pub secretbox_encryption_secret: String,
    pub trustd_token: String, pub os_ca: CertAndKey, pub k8s_ca: CertAndKey, pub k8s_aggregator_ca: CertAndKey,
    pub k8s_service_account_key: String, pub etcd_ca: CertAndKey,
}
impl SecretsBundle { pub fn generate() -> Result<Self, TalosError> { Err(TalosError::Invalid("unimplemented".into())) } }
