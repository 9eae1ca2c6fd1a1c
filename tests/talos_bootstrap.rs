//! The appliance's Talos bootstrap client (`ironbay::talos::bootstrap`) against the Talos node
//! stand-in's apid (`talos-standin`, a TEST STAND-IN that enforces apid's TLS and role rules),
//! in-process over loopback. The OS CA and client certificates are made here with rcgen the way
//! Talos makes them (Ed25519, O=os:admin, EKU exactly [ClientAuth]).

mod common;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use base64::Engine as _;
use ironbay::talos::bootstrap::{BootstrapError, BootstrapOutcome, ClientIdentity, apid_answers, bootstrap};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PKCS_ED25519,
};
use talos_standin::apid::{PreconditionFailures, Running, ServeOptions};
use talos_standin::config::MachineConfig;
use tokio::net::TcpListener;

const T: Duration = Duration::from_secs(10);

/// An OS CA as `talosctl gen secrets` makes it.
struct Ca {
    params: CertificateParams,
    key: KeyPair,
    cert_pem: String,
    /// Labelled `ED25519 PRIVATE KEY` like Talos's.
    key_pem: String,
}

fn os_ca() -> Ca {
    let key = KeyPair::generate_for(&PKCS_ED25519).unwrap();
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::OrganizationName, "talos");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
    let cert = params.self_signed(&key).unwrap();
    let key_pem = key.serialize_pem().replace("PRIVATE KEY", "ED25519 PRIVATE KEY");
    Ca { cert_pem: cert.pem(), params, key, key_pem }
}

struct ClientCert {
    cert_pem: String,
    key_pem: String,
}

impl ClientCert {
    fn identity(&self) -> ClientIdentity<'_> {
        ClientIdentity { cert_pem: &self.cert_pem, key_pem: &self.key_pem }
    }
}

fn client_cert(ca: &Ca, org: &str, eku: Vec<ExtendedKeyUsagePurpose>) -> ClientCert {
    let key = KeyPair::generate_for(&PKCS_ED25519).unwrap();
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::OrganizationName, org);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = eku;
    let issuer = Issuer::from_params(&ca.params, &ca.key);
    let cert = params.signed_by(&key, &issuer).unwrap();
    ClientCert { cert_pem: cert.pem(), key_pem: key.serialize_pem().replace("PRIVATE KEY", "ED25519 PRIVATE KEY") }
}

fn admin(ca: &Ca) -> ClientCert {
    client_cert(ca, "os:admin", vec![ExtendedKeyUsagePurpose::ClientAuth])
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// A machine config with the OS CA (workers: no key), a static address and a hostname.
fn config(ca: &Ca, worker: bool) -> MachineConfig {
    let (kind, key) = if worker { ("worker", String::new()) } else { ("controlplane", b64(&ca.key_pem)) };
    let yaml = format!(
        "version: v1alpha1\nmachine:\n  type: {kind}\n  ca:\n    crt: {}\n    key: \"{key}\"\n  network:\n    interfaces:\n      - deviceSelector: {{physical: true}}\n        addresses: [\"10.0.0.5/24\"]\n        routes: [{{network: 0.0.0.0/0, gateway: 10.0.0.1}}]\n        dhcp: false\n---\napiVersion: v1alpha1\nkind: HostnameConfig\nhostname: node-1\n",
        b64(&ca.cert_pem)
    );
    MachineConfig::parse(&yaml).unwrap()
}

async fn standin_on(cfg: &MachineConfig, bind: &str, failures: PreconditionFailures) -> Running {
    let listener = TcpListener::bind(bind).await.unwrap();
    talos_standin::apid::start(cfg, listener, ServeOptions { precondition_failures: failures, ..Default::default() })
        .await
        .unwrap()
}

async fn standin(cfg: &MachineConfig, failures: PreconditionFailures) -> Running {
    standin_on(cfg, "127.0.0.1:0", failures).await
}

fn codes(r: &Running) -> Vec<String> {
    r.calls.calls().into_iter().map(|c| c.code).collect()
}

fn assert_fatal(r: Result<BootstrapOutcome, BootstrapError>, what: &str) -> BootstrapError {
    match r {
        Err(e @ BootstrapError::Fatal { .. }) => e,
        other => panic!("{what}: expected a Fatal error, got {other:?}"),
    }
}

#[tokio::test]
async fn admin_cert_retries_then_bootstraps_once() {
    let ca = os_ca();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("calls.jsonl");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let node = talos_standin::apid::start(
        &config(&ca, false),
        listener,
        ServeOptions {
            precondition_failures: PreconditionFailures::Count(3),
            state_file: Some(state.clone()),
            extra_ips: vec![],
        },
    )
    .await
    .unwrap();
    let id = admin(&ca);
    for i in 1..=3 {
        match bootstrap(node.local_addr, &ca.cert_pem, id.identity(), T).await {
            Err(BootstrapError::Retryable { status, message }) => {
                assert_eq!(status, "FailedPrecondition", "call {i}");
                assert_eq!(message, "bootstrap is not available yet");
            }
            other => panic!("call {i}: {other:?}"),
        }
        assert_eq!(node.calls.len(), i);
    }
    assert_eq!(
        bootstrap(node.local_addr, &ca.cert_pem, id.identity(), T).await.unwrap(),
        BootstrapOutcome::Bootstrapped
    );
    assert_eq!(
        bootstrap(node.local_addr, &ca.cert_pem, id.identity(), T).await.unwrap(),
        BootstrapOutcome::AlreadyBootstrapped
    );
    assert_eq!(codes(&node), ["FailedPrecondition", "FailedPrecondition", "FailedPrecondition", "OK", "AlreadyExists"]);
    let calls = node.calls.calls();
    assert!(calls.iter().all(|c| c.org == ["os:admin"]));
    assert_eq!(calls.iter().map(|c| c.n).collect::<Vec<_>>(), [1, 2, 3, 4, 5]);
    let lines: Vec<serde_json::Value> =
        std::fs::read_to_string(&state).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 5);
    assert_eq!(lines[3], serde_json::json!({"n": 4, "code": "OK", "org": ["os:admin"]}));
    assert_eq!(node.refused_handshakes.load(Ordering::Relaxed), 0);
}

#[tokio::test]
async fn never_available_stays_retryable() {
    let ca = os_ca();
    let node = standin(&config(&ca, false), PreconditionFailures::Never).await;
    for _ in 0..5 {
        let e = bootstrap(node.local_addr, &ca.cert_pem, admin(&ca).identity(), T).await.unwrap_err();
        assert!(e.is_retryable() && e.status() == "FailedPrecondition", "{e}");
    }
}

#[tokio::test]
async fn client_cert_with_server_auth_eku_is_refused_at_the_handshake() {
    let ca = os_ca();
    // Zero precondition failures: one accepted call would bootstrap at once.
    let node = standin(&config(&ca, false), PreconditionFailures::Count(0)).await;
    let bad =
        client_cert(&ca, "os:admin", vec![ExtendedKeyUsagePurpose::ClientAuth, ExtendedKeyUsagePurpose::ServerAuth]);
    let e =
        assert_fatal(bootstrap(node.local_addr, &ca.cert_pem, bad.identity(), T).await, "EKU [ClientAuth, ServerAuth]");
    assert!(e.to_string().contains("refused our client certificate"), "{e}");
    assert!(node.calls.is_empty(), "the call reached the service");
    assert!(node.refused_handshakes.load(Ordering::Relaxed) >= 1);
    // So it did not bootstrap: the first good call does.
    assert_eq!(
        bootstrap(node.local_addr, &ca.cert_pem, admin(&ca).identity(), T).await.unwrap(),
        BootstrapOutcome::Bootstrapped
    );
}

#[tokio::test]
async fn client_cert_from_another_ca_is_refused() {
    let ca = os_ca();
    let other = os_ca();
    let node = standin(&config(&ca, false), PreconditionFailures::Count(0)).await;
    let e = assert_fatal(bootstrap(node.local_addr, &ca.cert_pem, admin(&other).identity(), T).await, "foreign CA");
    assert!(e.to_string().contains("refused our client certificate"), "{e}");
    assert!(node.calls.is_empty());
    assert!(node.refused_handshakes.load(Ordering::Relaxed) >= 1);
}

#[tokio::test]
async fn reader_role_is_permission_denied() {
    let ca = os_ca();
    let node = standin(&config(&ca, false), PreconditionFailures::Count(0)).await;
    let reader = client_cert(&ca, "os:reader", vec![ExtendedKeyUsagePurpose::ClientAuth]);
    match bootstrap(node.local_addr, &ca.cert_pem, reader.identity(), T).await {
        Err(BootstrapError::Fatal { status, message }) => {
            assert_eq!(status, "PermissionDenied");
            assert_eq!(message, "not authorized");
        }
        other => panic!("{other:?}"),
    }
    let calls = node.calls.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].code, "PermissionDenied");
    assert_eq!(calls[0].org, ["os:reader"]);
    // It did not use up the node's bootstrap either.
    assert_eq!(
        bootstrap(node.local_addr, &ca.cert_pem, admin(&ca).identity(), T).await.unwrap(),
        BootstrapOutcome::Bootstrapped
    );
}

#[tokio::test]
async fn server_cert_from_another_ca_is_refused_by_the_client() {
    let ours = os_ca();
    let theirs = os_ca();
    let node = standin(&config(&theirs, false), PreconditionFailures::Count(0)).await;
    // A client certificate the node would accept, but we trust only our OS CA.
    let id = admin(&theirs);
    let e =
        assert_fatal(bootstrap(node.local_addr, &ours.cert_pem, id.identity(), T).await, "server cert from another CA");
    assert!(e.to_string().contains("does not verify"), "{e}");
    assert!(node.calls.is_empty());
}

#[tokio::test]
async fn server_cert_must_name_the_ip_we_dial() {
    let ca = os_ca();
    // Listening on 0.0.0.0: the certificate names 10.0.0.5 (the static address), not 127.0.0.1.
    let node = standin_on(&config(&ca, false), "0.0.0.0:0", PreconditionFailures::Count(0)).await;
    let addr = SocketAddr::from(([127, 0, 0, 1], node.local_addr.port()));
    let e =
        assert_fatal(bootstrap(addr, &ca.cert_pem, admin(&ca).identity(), T).await, "IP not in the server certificate");
    assert!(e.to_string().contains("does not verify"), "{e}");
    assert!(node.calls.is_empty());
}

#[tokio::test]
async fn worker_answers_tls_but_its_self_signed_cert_does_not_verify() {
    let ca = os_ca();
    let node = standin(&config(&ca, true), PreconditionFailures::Count(0)).await;
    assert!(apid_answers(node.local_addr, T).await);
    assert_fatal(bootstrap(node.local_addr, &ca.cert_pem, admin(&ca).identity(), T).await, "worker's self-signed cert");
}

#[tokio::test]
async fn apid_answers_for_the_standin_not_for_a_closed_port() {
    let ca = os_ca();
    let node = standin(&config(&ca, false), PreconditionFailures::Count(3)).await;
    assert!(apid_answers(node.local_addr, T).await);
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    assert!(!apid_answers(closed, Duration::from_secs(2)).await);
    // Something that accepts TCP but never speaks TLS.
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_addr = silent.local_addr().unwrap();
    let _hold = tokio::spawn(async move {
        let mut conns = Vec::new();
        while let Ok((c, _)) = silent.accept().await {
            conns.push(c);
        }
    });
    assert!(!apid_answers(silent_addr, Duration::from_millis(500)).await);
    // The probe is not a Bootstrap call.
    assert!(node.calls.is_empty());
}

#[tokio::test]
async fn nothing_listening_is_retryable() {
    let ca = os_ca();
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    match bootstrap(closed, &ca.cert_pem, admin(&ca).identity(), T).await {
        Err(BootstrapError::Retryable { status, .. }) => assert_eq!(status, "Unavailable"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn silent_server_is_deadline_exceeded() {
    let ca = os_ca();
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap();
    let _hold = tokio::spawn(async move {
        let mut conns = Vec::new();
        while let Ok((c, _)) = silent.accept().await {
            conns.push(c);
        }
    });
    match bootstrap(addr, &ca.cert_pem, admin(&ca).identity(), Duration::from_millis(500)).await {
        Err(BootstrapError::Retryable { status, .. }) => assert_eq!(status, "DeadlineExceeded"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn standin_refuses_a_client_without_a_certificate() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let ca = os_ca();
    let node = standin(&config(&ca, false), PreconditionFailures::Count(0)).await;
    let mut roots = rustls::RootCertStore::empty();
    for der in rustls::pki_types::pem::PemObject::pem_slice_iter(ca.cert_pem.as_bytes()) {
        roots.add(der.unwrap()).unwrap();
    }
    let cfg =
        rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(node.local_addr).await.unwrap();
    let res = async {
        let mut tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(cfg))
            .connect(rustls::pki_types::ServerName::IpAddress(node.local_addr.ip().into()), tcp)
            .await?;
        // TLS 1.3: the refusal arrives after the client's side of the handshake.
        tls.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await?;
        let mut buf = [0u8; 64];
        let n = tls.read(&mut buf).await?;
        Ok::<usize, std::io::Error>(n)
    }
    .await;
    match res {
        Err(e) => assert!(e.to_string().contains("CertificateRequired") || e.to_string().contains("alert"), "{e}"),
        Ok(n) => assert_eq!(n, 0, "the server talked to a client without a certificate"),
    }
    // The server counts the refusal when its side of the handshake ends, maybe after ours.
    common::eventually("the refused handshake counted", 10, || async {
        match node.refused_handshakes.load(Ordering::Relaxed) {
            0 => Err("no refusal counted yet".to_string()),
            _ => Ok(()),
        }
    })
    .await;
    assert!(node.calls.is_empty());
}
