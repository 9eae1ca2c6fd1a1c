//! A TEST STAND-IN for Talos's apid + machined, as far as `machine.MachineService/Bootstrap` goes.
//! Not Talos. What it copies from Talos (siderolabs/talos, v1.13):
//!
//! - TLS (`internal/app/apid/service.go`, `pkg/grpc/...`): a client certificate is required and
//!   verified against the OS CA (`machine.ca.crt`); `verifyExtKeyUsage` then refuses any
//!   non-CA certificate in the chain whose EKU list is not exactly `[ClientAuth]` — at the
//!   handshake.
//! - Authorization (`pkg/grpc/middleware/authz`): roles are the client certificate's
//!   Organization values (`os:admin`, `os:operator`, `os:reader`, `os:etcd:backup`,
//!   `os:impersonator`, ...); a certificate with `os:impersonator` may pass roles in the
//!   `talos-role` metadata. `/machine.MachineService/Bootstrap` needs `os:admin`, else
//!   PermissionDenied "not authorized".
//! - Bootstrap (`internal/app/machined/internal/server/v1alpha1`): FailedPrecondition "bootstrap is
//!   not available yet" until machined allows it; on a worker, Unimplemented "bootstrap is only
//!   available on control plane nodes"; AlreadyExists "etcd data directory is not empty" once
//!   etcd has data. Here "until it allows it" is the first N authorized calls.
//! - Server certificate (`internal/app/machined/pkg/controllers/secrets/api.go`): on a control
//!   plane node a leaf signed by the OS CA with the node's IPs and hostname as SANs and EKU
//!   ServerAuth. A real worker gets its certificate from trustd on a control plane node; the
//!   stand-in worker has no CA key, so its certificate is self-signed.

use ironbay_talos_api::code_name;
use std::collections::BTreeSet;
use std::fmt;
use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use ironbay_talos_api::machine::machine_service_server::{MachineService, MachineServiceServer};
use ironbay_talos_api::machine::{Bootstrap, BootstrapRequest, BootstrapResponse, Metadata};
use rustls::DistinguishedName;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tonic::{Request, Response, Status};

use crate::config::{MachineConfig, MachineType};

/// The one crypto provider (aws-lc-rs), passed explicitly to every rustls builder.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// How many authorized Bootstrap calls answer FailedPrecondition before it is "available".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreconditionFailures {
    Count(u64),
    /// Always FailedPrecondition.
    Never,
}

impl FromStr for PreconditionFailures {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "never" {
            return Ok(PreconditionFailures::Never);
        }
        s.parse().map(PreconditionFailures::Count).map_err(|_| format!("{s:?} is not a number or `never`"))
    }
}

impl Default for PreconditionFailures {
    fn default() -> Self {
        PreconditionFailures::Count(3)
    }
}

impl fmt::Display for PreconditionFailures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PreconditionFailures::Count(n) => write!(f, "{n}"),
            PreconditionFailures::Never => f.write_str("never"),
        }
    }
}

/// Options of `serve`.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    pub precondition_failures: PreconditionFailures,
    /// Appends one JSON line per Bootstrap call: `{"n":1,"code":"FailedPrecondition","org":["os:admin"]}`.
    pub state_file: Option<PathBuf>,
    /// The node's IPs for the server certificate's SANs (besides the listen address and the
    /// config's static address).
    pub extra_ips: Vec<IpAddr>,
}

/// One Bootstrap call as the stand-in saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallRecord {
    /// 1-based, over all calls (authorized or not).
    pub n: u64,
    /// The gRPC code name as grpc-go prints it ("OK", "FailedPrecondition", ...).
    pub code: String,
    /// The client certificate's Organization values.
    pub org: Vec<String>,
}

/// The calls so far, shared with the server.
#[derive(Debug, Clone, Default)]
pub struct CallLog(Arc<Mutex<Vec<CallRecord>>>);

impl CallLog {
    pub fn calls(&self) -> Vec<CallRecord> {
        self.0.lock().unwrap().clone()
    }
    pub fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A running stand-in apid (stops when dropped).
pub struct Running {
    pub local_addr: SocketAddr,
    pub calls: CallLog,
    /// TLS handshakes refused (no, bad or foreign client certificate, wrong EKU, ...).
    pub refused_handshakes: Arc<AtomicU64>,
    /// The server's certificate (DER).
    pub server_cert_der: Vec<u8>,
    task: JoinHandle<()>,
}

impl Running {
    /// Waits until the server stops (it does not on its own).
    pub async fn wait(mut self) -> Result<()> {
        (&mut self.task).await.context("apid task")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Loads the OS CA certificate (first PEM block) as DER.
fn ca_der(config: &MachineConfig) -> Result<CertificateDer<'static>> {
    CertificateDer::from_pem_slice(config.ca_crt_pem.as_bytes()).map_err(|e| anyhow!("machine.ca.crt: {e:?}"))
}

/// Talos writes the OS CA key as `ED25519 PRIVATE KEY` with a PKCS#8 body; `PRIVATE KEY` too.
pub fn ca_key_pkcs8(pem_text: &str) -> Result<Vec<u8>> {
    let text = pem_text.replace("ED25519 PRIVATE KEY", "PRIVATE KEY");
    let key = PrivatePkcs8KeyDer::from_pem_slice(text.as_bytes())
        .map_err(|e| anyhow!("machine.ca.key is not a PKCS#8 PEM key: {e:?}"))?;
    Ok(key.secret_pkcs8_der().to_vec())
}

/// The server certificate chain and key: signed by the OS CA on a control plane node (the
/// config has the CA key), self-signed on a worker (real workers get theirs from trustd).
pub fn server_certificate(
    config: &MachineConfig,
    ips: &[IpAddr],
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    use rcgen::{
        CertificateParams, DnType, ExtendedKeyUsagePurpose, Issuer, KeyPair, KeyUsagePurpose, PKCS_ED25519, SanType,
    };
    let key = KeyPair::generate_for(&PKCS_ED25519)?;
    let mut params = CertificateParams::default();
    // No rcgen default CN; Talos puts the node's FQDN there.
    params.distinguished_name = rcgen::DistinguishedName::new();
    let mut ips: Vec<IpAddr> = ips.iter().copied().filter(|i| !i.is_unspecified()).collect();
    ips.sort();
    ips.dedup();
    for ip in ips {
        params.subject_alt_names.push(SanType::IpAddress(ip));
    }
    if let Some(h) = &config.hostname {
        params.subject_alt_names.push(SanType::DnsName(h.clone().try_into()?));
        params.distinguished_name.push(DnType::CommonName, h.clone());
    }
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = match &config.ca_key_pem {
        Some(ca_key_pem) => {
            let ca_key = KeyPair::try_from(ca_key_pkcs8(ca_key_pem)?.as_slice()).context("machine.ca.key")?;
            let issuer = Issuer::from_ca_cert_pem(&config.ca_crt_pem, ca_key).context("machine.ca.crt")?;
            params.signed_by(&key, &issuer)?
        }
        None => params.self_signed(&key)?,
    };
    Ok((vec![cert.der().clone()], PrivateKeyDer::Pkcs8(key.serialize_der().into())))
}

/// apid's client verifier: the chain must verify to the OS CA (webpki), then
/// `verifyExtKeyUsage`: every non-CA certificate presented has EKU exactly `[ClientAuth]`.
#[derive(Debug)]
pub struct ApidClientVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    refused: Arc<AtomicU64>,
}

/// Whether the DER certificate is a non-CA cert whose EKU list is not exactly [ClientAuth].
fn eku_refused(der: &[u8]) -> Result<bool, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| e.to_string())?;
    if cert.is_ca() {
        return Ok(false);
    }
    let eku = cert.extended_key_usage().map_err(|e| e.to_string())?;
    let Some(eku) = eku else { return Ok(true) };
    let e = eku.value;
    let only_client = e.client_auth
        && !e.any
        && !e.server_auth
        && !e.code_signing
        && !e.email_protection
        && !e.time_stamping
        && !e.ocsp_signing
        && e.other.is_empty();
    Ok(!only_client)
}

impl ClientCertVerifier for ApidClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }
    fn client_auth_mandatory(&self) -> bool {
        true
    }
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }
    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        // The alerts Go's crypto/tls sends (processCertsFromClient): unknown_ca for an unknown
        // authority (webpki's BadSignature is a same-named foreign CA: every OS CA is O=talos),
        // certificate_expired when expired, bad_certificate otherwise and when apid's
        // verifyExtKeyUsage refuses.
        let res = match self.inner.verify_client_cert(end_entity, intermediates, now) {
            Err(rustls::Error::InvalidCertificate(e)) => {
                eprintln!("talos-standin: refused client certificate: {e}");
                Err(match e {
                    CertificateError::UnknownIssuer | CertificateError::BadSignature => CertificateError::UnknownIssuer,
                    CertificateError::Expired
                    | CertificateError::ExpiredContext { .. }
                    | CertificateError::NotValidYet
                    | CertificateError::NotValidYetContext { .. } => CertificateError::Expired,
                    _ => CertificateError::BadEncoding,
                })
            }
            Err(e) => {
                eprintln!("talos-standin: refused client certificate: {e}");
                Err(CertificateError::BadEncoding)
            }
            Ok(ok) => {
                let mut res = Ok(ok);
                for der in std::iter::once(end_entity).chain(intermediates) {
                    match eku_refused(der) {
                        Ok(false) => {}
                        Ok(true) => {
                            eprintln!(
                                "talos-standin: refused client certificate: its extended key usage is not exactly [ClientAuth]"
                            );
                            res = Err(CertificateError::BadEncoding);
                        }
                        Err(e) => {
                            eprintln!("talos-standin: refused client certificate: {e}");
                            res = Err(CertificateError::BadEncoding);
                        }
                    }
                }
                res
            }
        };
        if res.is_err() {
            self.refused.fetch_add(1, Ordering::Relaxed);
        }
        res.map_err(rustls::Error::InvalidCertificate)
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The server's rustls config: TLS 1.2/1.3, ALPN h2, the apid client verifier.
pub fn server_tls_config(
    config: &MachineConfig,
    ips: &[IpAddr],
    refused: Arc<AtomicU64>,
) -> Result<(rustls::ServerConfig, Vec<u8>)> {
    let provider = provider();
    let mut roots = RootCertStore::empty();
    roots.add(ca_der(config)?).context("machine.ca.crt is not a usable CA certificate")?;
    let inner = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .context("client verifier")?;
    let verifier = Arc::new(ApidClientVerifier { inner, refused });
    let (chain, key) = server_certificate(config, ips)?;
    let cert_der = chain[0].to_vec();
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)?;
    tls.alpn_protocols = vec![b"h2".to_vec()];
    Ok((tls, cert_der))
}

struct State {
    machine_type: MachineType,
    failures: PreconditionFailures,
    hostname: String,
    /// (all calls, authorized calls, bootstrapped)
    counters: Mutex<(u64, u64, bool)>,
    log: CallLog,
    state_file: Option<PathBuf>,
}

struct Machine(Arc<State>);

/// The Organization values of the client's leaf certificate.
fn peer_orgs<T>(req: &Request<T>) -> Vec<String> {
    let Some(certs) = req.peer_certs() else {
        return Vec::new();
    };
    let Some(leaf) = certs.first() else {
        return Vec::new();
    };
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(leaf) else {
        return Vec::new();
    };
    cert.subject().iter_organization().filter_map(|o| o.as_str().ok()).map(str::to_owned).collect()
}

/// `role.Parse`: trimmed, empty values skipped, unknown roles kept.
fn parse_roles<'a>(values: impl IntoIterator<Item = &'a str>) -> BTreeSet<String> {
    values.into_iter().map(str::trim).filter(|r| !r.is_empty()).map(str::to_owned).collect()
}

#[tonic::async_trait]
impl MachineService for Machine {
    async fn bootstrap(&self, request: Request<BootstrapRequest>) -> Result<Response<BootstrapResponse>, Status> {
        let st = &self.0;
        let orgs = peer_orgs(&request);
        let mut roles = parse_roles(orgs.iter().map(String::as_str));
        if roles.contains("os:impersonator") {
            let md: Vec<&str> =
                request.metadata().get_all("talos-role").iter().filter_map(|v| v.to_str().ok()).collect();
            if !md.is_empty() {
                roles = parse_roles(md);
            }
        }
        let result: Result<Response<BootstrapResponse>, Status>;
        let n;
        {
            let mut c = st.counters.lock().unwrap();
            c.0 += 1;
            n = c.0;
            result = if !roles.contains("os:admin") {
                Err(Status::permission_denied("not authorized"))
            } else {
                c.1 += 1;
                let available = match st.failures {
                    PreconditionFailures::Never => false,
                    PreconditionFailures::Count(k) => c.1 > k,
                };
                if !available {
                    Err(Status::failed_precondition("bootstrap is not available yet"))
                } else if st.machine_type != MachineType::ControlPlane {
                    Err(Status::unimplemented("bootstrap is only available on control plane nodes"))
                } else if c.2 {
                    Err(Status::already_exists("etcd data directory is not empty"))
                } else {
                    c.2 = true;
                    Ok(Response::new(BootstrapResponse {
                        messages: vec![Bootstrap {
                            metadata: Some(Metadata { hostname: st.hostname.clone(), error: String::new() }),
                        }],
                    }))
                }
            };
        }
        let code = match &result {
            Ok(_) => "OK",
            Err(s) => code_name(s.code()),
        };
        let record = CallRecord { n, code: code.to_owned(), org: orgs };
        eprintln!("talos-standin: Bootstrap call {n} from {:?} orgs {:?} -> {code}", request.remote_addr(), record.org);
        if let Some(path) = &st.state_file {
            let line = serde_json::to_string(&record).expect("record serializes");
            if let Err(e) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .and_then(|mut f| f.write_all(format!("{line}\n").as_bytes()))
            {
                eprintln!("talos-standin: state file {}: {e}", path.display());
            }
        }
        st.log.0.lock().unwrap().push(record);
        result
    }
}

/// Starts serving on `listener`. The server certificate names the listen IP, the config's static
/// address, `opts.extra_ips` and the hostname.
pub async fn start(config: &MachineConfig, listener: TcpListener, opts: ServeOptions) -> Result<Running> {
    let local_addr = listener.local_addr()?;
    let mut ips = vec![local_addr.ip()];
    ips.extend(config.static_address().map(|(ip, _)| ip));
    ips.extend(opts.extra_ips.iter().copied());
    let refused = Arc::new(AtomicU64::new(0));
    let (tls, server_cert_der) = server_tls_config(config, &ips, refused.clone())?;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    let log = CallLog::default();
    let state = Arc::new(State {
        machine_type: config.machine_type,
        failures: opts.precondition_failures,
        hostname: config.hostname.clone().unwrap_or_default(),
        counters: Mutex::new((0, 0, false)),
        log: log.clone(),
        state_file: opts.state_file.clone(),
    });

    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let refused_accept = refused.clone();
    let accept = async move {
        loop {
            let (tcp, peer) = match listener.accept().await {
                Ok(x) => x,
                Err(e) => {
                    eprintln!("talos-standin: accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let acceptor = acceptor.clone();
            let tx = tx.clone();
            let refused = refused_accept.clone();
            tokio::spawn(async move {
                match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                    Ok(Ok(tls)) => {
                        let _ = tx.send(Ok::<_, std::io::Error>(tls)).await;
                    }
                    Ok(Err(e)) => {
                        // Verifier refusals are counted in the verifier; count the rest here
                        // (no certificate at all, protocol errors).
                        if !e.to_string().contains("invalid peer certificate") {
                            refused.fetch_add(1, Ordering::Relaxed);
                        }
                        eprintln!("talos-standin: TLS handshake with {peer} failed: {e}");
                    }
                    Err(_) => eprintln!("talos-standin: TLS handshake with {peer} timed out"),
                }
            });
        }
    };
    let incoming = tokio_stream::wrappers::ReceiverStream::new(rx);
    let server = tonic::transport::Server::builder()
        .add_service(MachineServiceServer::new(Machine(state)))
        .serve_with_incoming(incoming);
    let task = tokio::spawn(async move {
        tokio::select! {
            _ = accept => {}
            r = server => if let Err(e) = r { eprintln!("talos-standin: gRPC server: {e}") },
        }
    });
    Ok(Running { local_addr, calls: log, refused_handshakes: refused, server_cert_der, task })
}

/// `talos-standin serve`: binds `listen` and serves until killed.
pub async fn serve(config: &MachineConfig, listen: SocketAddr, opts: ServeOptions) -> Result<()> {
    let listener = TcpListener::bind(listen).await.with_context(|| format!("bind {listen}"))?;
    let running = start(config, listener, opts).await?;
    eprintln!(
        "talos-standin: TEST STAND-IN apid ({}) serving machine.MachineService on {}",
        config.machine_type.as_str(),
        running.local_addr
    );
    running.wait().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precondition_failures_parse() {
        assert_eq!("never".parse(), Ok(PreconditionFailures::Never));
        assert_eq!("0".parse(), Ok(PreconditionFailures::Count(0)));
        assert!("x".parse::<PreconditionFailures>().is_err());
    }

    #[test]
    fn roles_like_role_parse() {
        let r = parse_roles([" os:admin ", "", "os:reader"]);
        assert!(r.contains("os:admin") && r.contains("os:reader") && r.len() == 2);
    }

    fn cert_with_eku(eku: Vec<rcgen::ExtendedKeyUsagePurpose>) -> Vec<u8> {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        let mut p = rcgen::CertificateParams::default();
        p.extended_key_usages = eku;
        p.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn eku_must_be_exactly_client_auth() {
        use rcgen::ExtendedKeyUsagePurpose::*;
        assert!(!eku_refused(&cert_with_eku(vec![ClientAuth])).unwrap());
        assert!(eku_refused(&cert_with_eku(vec![ClientAuth, ServerAuth])).unwrap());
        assert!(eku_refused(&cert_with_eku(vec![ServerAuth])).unwrap());
        assert!(eku_refused(&cert_with_eku(vec![])).unwrap());
    }
}
