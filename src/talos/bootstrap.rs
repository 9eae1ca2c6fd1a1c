//! (placeholder until the talos-grpc branch lands)
pub struct ClientIdentity<'a> { pub cert_pem: &'a str, pub key_pem: &'a str }
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BootstrapOutcome { Bootstrapped, AlreadyBootstrapped }
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error("{status}: {message}")] Retryable { status: String, message: String },
    #[error("{status}: {message}")] Fatal { status: String, message: String },
}
pub async fn bootstrap(_addr: std::net::SocketAddr, _os_ca_pem: &str, _identity: ClientIdentity<'_>, _timeout: std::time::Duration) -> Result<BootstrapOutcome, BootstrapError> {
    Err(BootstrapError::Fatal { status: "Unimplemented".into(), message: String::new() })
}
pub async fn apid_answers(_addr: std::net::SocketAddr, _timeout: std::time::Duration) -> bool { false }
