//! (placeholder until the talos-config branch lands)
use super::TalosError;
use super::secrets::CertAndKey;
pub fn admin_kubeconfig(_cluster_name: &str, _endpoint: &str, _k8s_ca: &CertAndKey) -> Result<String, TalosError> {
    Err(TalosError::Invalid("unimplemented".into()))
}
pub fn os_admin_certificate(_os_ca: &CertAndKey) -> Result<CertAndKey, TalosError> {
    Err(TalosError::Invalid("unimplemented".into()))
}
pub fn talosconfig(_context: &str, _endpoints: &[String], _nodes: &[String], _os_ca: &CertAndKey) -> Result<String, TalosError> {
    Err(TalosError::Invalid("unimplemented".into()))
}
