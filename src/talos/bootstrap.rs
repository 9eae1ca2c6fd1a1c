//! The one gRPC call ironbay makes to Talos: `machine.MachineService/Bootstrap`, sent once to one
//! control plane node at `<ip>:50000`, plus a probe for "apid answers TLS" (install completion).
//!
//! TLS as Talos's apid expects it: TLS 1.2/1.3, ALPN `h2` (grpc-go servers insist on it), the
//! `os:admin` client certificate, the server certificate verified against the OS CA and the
//! node's IP (apid's certificate carries the node IPs as SANs). The handshake is done here with
//! rustls (aws-lc-rs, chosen explicitly) and the established stream handed to tonic, so TLS
//! failures can be told apart: the node refusing our certificate, or its certificate not being
//! signed by the OS CA, is [`BootstrapError::Fatal`]; refused/reset connections, timeouts and
//! handshakes cut short are [`BootstrapError::Retryable`].
//!
//! The retry loop is the caller's: each call here is one attempt.

use hyper_util::rt::TokioIo;
use ironbay_talos_api::code_name;
use ironbay_talos_api::machine::BootstrapRequest;
use ironbay_talos_api::machine::machine_service_client::MachineServiceClient;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{AlertDescription, CertificateError, DigitallySignedStruct, SignatureScheme};
use std::error::Error as StdError;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// The `os:admin` client certificate and key (PEM; the key may be labelled
/// `ED25519 PRIVATE KEY` as Talos writes it, or `PRIVATE KEY` / `EC PRIVATE KEY`).
pub struct ClientIdentity<'a> {
    pub cert_pem: &'a str,
    pub key_pem: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BootstrapOutcome {
    Bootstrapped,
    /// AlreadyExists "etcd data directory is not empty".
    AlreadyBootstrapped,
}

#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    /// Worth retrying: FailedPrecondition, Unavailable, DeadlineExceeded, connection refused/reset, TLS not up yet.
    #[error("{status}: {message}")]
    Retryable { status: String, message: String },
    /// Not: PermissionDenied, Unauthenticated, bad certificate (server not signed by the OS CA), invalid argument, ...
    #[error("{status}: {message}")]
    Fatal { status: String, message: String },
}

impl BootstrapError {
    fn retryable(status: &str, message: impl Into<String>) -> Self {
        BootstrapError::Retryable { status: status.to_owned(), message: message.into() }
    }
    fn fatal(status: &str, message: impl Into<String>) -> Self {
        BootstrapError::Fatal { status: status.to_owned(), message: message.into() }
    }
    pub fn is_retryable(&self) -> bool {
        matches!(self, BootstrapError::Retryable { .. })
    }
    /// The gRPC code name ("FailedPrecondition", "Unavailable", ...).
    pub fn status(&self) -> &str {
        match self {
            BootstrapError::Retryable { status, .. } | BootstrapError::Fatal { status, .. } => status,
        }
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// TLS 1.3 and 1.2, as apid offers.
static VERSIONS: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13, &rustls::version::TLS12];

fn versions() -> &'static [&'static rustls::SupportedProtocolVersion] {
    VERSIONS
}

/// Talos labels Ed25519 PKCS#8 keys `ED25519 PRIVATE KEY`; rustls knows `PRIVATE KEY`.
fn parse_key(pem: &str) -> Result<PrivateKeyDer<'static>, String> {
    let text = pem.replace("ED25519 PRIVATE KEY", "PRIVATE KEY");
    PrivateKeyDer::from_pem_slice(text.as_bytes()).map_err(|e| format!("client key is not a PEM private key: {e:?}"))
}

fn client_config(os_ca_pem: &str, identity: &ClientIdentity<'_>) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    for der in CertificateDer::pem_slice_iter(os_ca_pem.as_bytes()) {
        let der = der.map_err(|e| format!("OS CA is not PEM: {e:?}"))?;
        roots.add(der).map_err(|e| format!("OS CA certificate is unusable: {e}"))?;
    }
    if roots.is_empty() {
        return Err("OS CA PEM holds no certificate".into());
    }
    let chain = CertificateDer::pem_slice_iter(identity.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("client certificate is not PEM: {e:?}"))?;
    if chain.is_empty() {
        return Err("client certificate PEM holds no certificate".into());
    }
    let key = parse_key(identity.key_pem)?;
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(versions())
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map_err(|e| format!("client certificate/key: {e}"))?;
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    Ok(cfg)
}

/// A tonic connector that hands out one already-established TLS stream.
#[derive(Clone)]
struct OneStream(Arc<Mutex<Option<TlsStream<TcpStream>>>>);

impl tower::Service<http::Uri> for OneStream {
    type Response = TokioIo<TlsStream<TcpStream>>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _uri: http::Uri) -> Self::Future {
        let stream = self.0.lock().unwrap().take();
        Box::pin(async move {
            stream
                .map(TokioIo::new)
                .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotConnected, "connection to the node was lost"))
        })
    }
}

/// The rustls error somewhere in an error chain (io::Error hides its inner error from `source`).
fn find_rustls(err: &(dyn StdError + 'static)) -> Option<rustls::Error> {
    let mut cur = Some(err);
    while let Some(e) = cur {
        if let Some(r) = e.downcast_ref::<rustls::Error>() {
            return Some(r.clone());
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && let Some(r) = io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>())
        {
            return Some(r.clone());
        }
        cur = e.source();
    }
    None
}

/// The whole chain as text ("a: b: c").
fn chain_text(err: &(dyn StdError + 'static)) -> String {
    let mut parts = vec![err.to_string()];
    let mut cur = err.source();
    while let Some(e) = cur {
        let s = e.to_string();
        if !parts.last().is_some_and(|p| p.contains(&s)) {
            parts.push(s);
        }
        cur = e.source();
    }
    parts.join(": ")
}

/// Alerts a server sends when it refuses the client's certificate.
const CLIENT_CERT_ALERTS: &[AlertDescription] = &[
    AlertDescription::BadCertificate,
    AlertDescription::UnsupportedCertificate,
    AlertDescription::CertificateRevoked,
    AlertDescription::CertificateUnknown,
    AlertDescription::UnknownCA,
    AlertDescription::AccessDenied,
    AlertDescription::CertificateRequired,
    // rustls servers answer a certificate signed by a same-named foreign CA (every Talos OS CA
    // is O=talos) with decrypt_error.
    AlertDescription::DecryptError,
];

/// Classifies a TLS-level failure. `None`: not a TLS failure we can name.
fn classify_tls(err: &rustls::Error, addr: SocketAddr) -> Option<BootstrapError> {
    let msg = |what: &str| format!("authentication handshake failed with {addr}: {what}: {err}");
    Some(match err {
        rustls::Error::AlertReceived(AlertDescription::CertificateExpired) => {
            // The node's clock may not be in sync yet (a fresh node), like "time is not in sync yet".
            BootstrapError::retryable(
                "Unavailable",
                msg("the node finds our client certificate expired or not yet valid (clock not in sync?)"),
            )
        }
        rustls::Error::AlertReceived(a) if CLIENT_CERT_ALERTS.contains(a) => {
            BootstrapError::fatal("Unavailable", msg("the node refused our client certificate"))
        }
        rustls::Error::InvalidCertificate(
            CertificateError::Expired
            | CertificateError::NotValidYet
            | CertificateError::ExpiredContext { .. }
            | CertificateError::NotValidYetContext { .. },
        ) => BootstrapError::retryable(
            "Unavailable",
            msg("the node's certificate is expired or not yet valid (clock not in sync?)"),
        ),
        rustls::Error::InvalidCertificate(_) => BootstrapError::fatal(
            "Unavailable",
            msg("the node's certificate does not verify against the OS CA for its IP"),
        ),
        rustls::Error::PeerIncompatible(_) | rustls::Error::NoApplicationProtocol => {
            BootstrapError::fatal("Unavailable", msg("no common TLS parameters"))
        }
        _ => return None,
    })
}

/// Text fallback for failures whose chain hides the rustls error (h2 does not expose its
/// io::Error as `source`): `received fatal alert: BadCertificate`.
fn classify_text(text: &str, addr: SocketAddr) -> Option<BootstrapError> {
    let alert = text.split("received fatal alert: ").nth(1)?;
    let alert = alert.split(|c: char| !c.is_ascii_alphanumeric()).next().unwrap_or("");
    let desc =
        CLIENT_CERT_ALERTS.iter().chain([&AlertDescription::CertificateExpired]).find(|a| format!("{a:?}") == alert)?;
    classify_tls(&rustls::Error::AlertReceived(*desc), addr).map(|e| match e {
        BootstrapError::Fatal { status, .. } => BootstrapError::Fatal {
            status,
            message: format!(
                "authentication handshake failed with {addr}: the node refused our client certificate: {text}"
            ),
        },
        BootstrapError::Retryable { status, .. } => BootstrapError::Retryable {
            status,
            message: format!("authentication handshake failed with {addr}: {text}"),
        },
    })
}

/// Connection-level failures (TCP, TLS, HTTP/2): the TLS ones we can name, else retryable.
fn classify_transport(err: &(dyn StdError + 'static), addr: SocketAddr) -> BootstrapError {
    let text = chain_text(err);
    if let Some(e) = find_rustls(err).and_then(|r| classify_tls(&r, addr)) {
        return e;
    }
    if let Some(e) = classify_text(&text, addr) {
        return e;
    }
    BootstrapError::retryable("Unavailable", format!("connection to {addr}: {text}"))
}

fn classify_status(status: &tonic::Status, addr: SocketAddr) -> BootstrapError {
    // A transport failure surfaces as a Status with a source (Unavailable/Unknown/Internal).
    if let Some(src) = status.source() {
        let text = chain_text(src);
        if let Some(e) = find_rustls(src).and_then(|r| classify_tls(&r, addr)) {
            return e;
        }
        if let Some(e) = classify_text(&text, addr).or_else(|| classify_text(status.message(), addr)) {
            return e;
        }
        if status.code() != tonic::Code::Ok {
            // hyper/h2 errors: the connection broke mid-call.
            let code = code_name(status.code());
            let code = if matches!(status.code(), tonic::Code::Unknown | tonic::Code::Internal) {
                "Unavailable"
            } else {
                code
            };
            if code == "Unavailable" || code == "DeadlineExceeded" || code == "Canceled" {
                return BootstrapError::retryable(code, format!("{addr}: {}: {text}", status.message()));
            }
        }
    }
    if let Some(e) = classify_text(status.message(), addr) {
        return e;
    }
    let name = code_name(status.code());
    let message = status.message().to_owned();
    match status.code() {
        tonic::Code::FailedPrecondition
        | tonic::Code::Unavailable
        | tonic::Code::DeadlineExceeded
        | tonic::Code::Aborted
        | tonic::Code::ResourceExhausted
        | tonic::Code::Cancelled => BootstrapError::retryable(name, message),
        _ => BootstrapError::fatal(name, message),
    }
}

async fn connect_tls(addr: SocketAddr, cfg: rustls::ClientConfig) -> Result<TlsStream<TcpStream>, BootstrapError> {
    let tcp = TcpStream::connect(addr)
        .await
        .map_err(|e| BootstrapError::retryable("Unavailable", format!("connect {addr}: {e}")))?;
    let _ = tcp.set_nodelay(true);
    TlsConnector::from(Arc::new(cfg))
        .connect(ServerName::IpAddress(addr.ip().into()), tcp)
        .await
        .map_err(|e| classify_transport(&e, addr))
}

async fn call(addr: SocketAddr, cfg: rustls::ClientConfig) -> Result<BootstrapOutcome, BootstrapError> {
    let tls = connect_tls(addr, cfg).await?;
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| BootstrapError::fatal("InvalidArgument", e.to_string()))?;
    let channel = endpoint
        .connect_with_connector(OneStream(Arc::new(Mutex::new(Some(tls)))))
        .await
        .map_err(|e| classify_transport(&e, addr))?;
    let mut client = MachineServiceClient::new(channel);
    match client.bootstrap(BootstrapRequest::default()).await {
        Ok(_) => Ok(BootstrapOutcome::Bootstrapped),
        Err(s) if s.code() == tonic::Code::AlreadyExists => Ok(BootstrapOutcome::AlreadyBootstrapped),
        Err(s) => Err(classify_status(&s, addr)),
    }
}

/// One Bootstrap call to `https://<addr>` (addr = "<ip>:50000"), TLS 1.2/1.3, client cert =
/// identity, server cert verified against `os_ca_pem` and the node IP, with `timeout` for
/// connect+call. AlreadyExists -> Ok(AlreadyBootstrapped).
pub async fn bootstrap(
    addr: std::net::SocketAddr,
    os_ca_pem: &str,
    identity: ClientIdentity<'_>,
    timeout: std::time::Duration,
) -> Result<BootstrapOutcome, BootstrapError> {
    let cfg = client_config(os_ca_pem, &identity).map_err(|e| BootstrapError::fatal("InvalidArgument", e))?;
    match tokio::time::timeout(timeout, call(addr, cfg)).await {
        Ok(r) => r,
        Err(_) => {
            Err(BootstrapError::retryable("DeadlineExceeded", format!("no answer from {addr} within {timeout:?}")))
        }
    }
}

/// Accepts any server certificate: the probe only asks whether something speaks TLS.
#[derive(Debug)]
struct AnyServerCert(Vec<SignatureScheme>);

impl ServerCertVerifier for AnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.clone()
    }
}

/// Whether something answers a TLS handshake on addr (apid is up): TCP connect + TLS
/// ClientHello/ServerHello; the server cert need not verify (workers' apid certs come from
/// trustd); true if a handshake completes or the server asks for a client cert (it then refuses
/// our certificate-less handshake with an alert, which still proves a TLS server is there).
pub async fn apid_answers(addr: std::net::SocketAddr, timeout: std::time::Duration) -> bool {
    let provider = provider();
    let schemes = provider.signature_verification_algorithms.supported_schemes();
    let Ok(builder) = rustls::ClientConfig::builder_with_provider(provider).with_protocol_versions(versions()) else {
        return false;
    };
    let mut cfg =
        builder.dangerous().with_custom_certificate_verifier(Arc::new(AnyServerCert(schemes))).with_no_client_auth();
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    let probe = async {
        let tcp = TcpStream::connect(addr).await.ok()?;
        match TlsConnector::from(Arc::new(cfg)).connect(ServerName::IpAddress(addr.ip().into()), tcp).await {
            Ok(_) => Some(true),
            Err(e) => Some(matches!(find_rustls(&e), Some(rustls::Error::AlertReceived(_)))),
        }
    };
    matches!(tokio::time::timeout(timeout, probe).await, Ok(Some(true)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr() -> SocketAddr {
        "10.0.0.5:50000".parse().unwrap()
    }

    #[test]
    fn grpc_codes_classify() {
        let c = |code, msg: &str| classify_status(&tonic::Status::new(code, msg), addr());
        let e = c(tonic::Code::FailedPrecondition, "bootstrap is not available yet");
        assert!(e.is_retryable());
        assert_eq!(e.to_string(), "FailedPrecondition: bootstrap is not available yet");
        assert!(c(tonic::Code::Unavailable, "x").is_retryable());
        assert!(c(tonic::Code::DeadlineExceeded, "x").is_retryable());
        for code in [
            tonic::Code::PermissionDenied,
            tonic::Code::Unauthenticated,
            tonic::Code::InvalidArgument,
            tonic::Code::Unimplemented,
        ] {
            assert!(!c(code, "x").is_retryable(), "{code:?}");
        }
        assert_eq!(c(tonic::Code::PermissionDenied, "not authorized").status(), "PermissionDenied");
    }

    #[test]
    fn tls_alerts_classify() {
        let e = classify_text("h2 protocol error: received fatal alert: BadCertificate", addr()).unwrap();
        assert!(!e.is_retryable());
        let e = classify_text("received fatal alert: CertificateExpired", addr()).unwrap();
        assert!(e.is_retryable());
        assert!(classify_text("connection reset", addr()).is_none());
        let e = classify_tls(&rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer), addr()).unwrap();
        assert!(!e.is_retryable());
    }

    #[test]
    fn ed25519_key_label_accepted() {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        let pem = key.serialize_pem().replace("PRIVATE KEY", "ED25519 PRIVATE KEY");
        assert!(matches!(parse_key(&pem), Ok(PrivateKeyDer::Pkcs8(_))));
        assert!(parse_key("nope").is_err());
    }
}
