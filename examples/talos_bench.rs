//! What generating a cluster costs: the secrets bundle (RSA-4096 for the service-account key
//! dominates: reported apart), then every machine config of a 3 control plane + 50 worker
//! cluster, and the admin credentials. Prints one JSON object (bench/talos.sh records it).
//! Usage: cargo run --release --example talos_bench [ROUNDS=5]

use std::net::IpAddr;
use std::time::Instant;

use ironbay::talos::access::{admin_kubeconfig, talosconfig};
use ironbay::talos::config::{ClusterSettings, MachineRole, NodeSettings, machine_config};
use ironbay::talos::secrets::SecretsBundle;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let rounds: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(5);
    let cluster = ClusterSettings {
        name: "bench".into(),
        endpoint: "https://10.40.0.10:6443".into(),
        vip: None,
        talos_version: "v1.13.9".into(),
        kubernetes_version: ironbay::talos::config::DEFAULT_KUBERNETES_VERSION.into(),
        install_image: "ghcr.io/siderolabs/installer:v1.13.9".into(),
        ntp_servers: vec!["10.40.0.1".into()],
        nameservers: vec!["10.40.0.1".parse().unwrap()],
        registry_mirrors: [("ghcr.io".to_string(), vec!["http://10.40.0.1:5000".to_string()])].into(),
        discovery: false,
        cert_sans: vec![],
    };
    let nodes: Vec<NodeSettings> = (0..53u8)
        .map(|i| NodeSettings {
            role: if i < 3 { MachineRole::Controlplane } else { MachineRole::Worker },
            hostname: format!("node-{i}"),
            mac: Some(format!("52:54:00:40:00:{i:02x}")),
            address: IpAddr::from([10, 40, 0, 10 + i]),
            prefix: 24,
            gateway: IpAddr::from([10, 40, 0, 1]),
            install_disk: "/dev/sda".into(),
        })
        .collect();
    let (mut secrets_ms, mut rsa_ms, mut configs_ms, mut creds_ms, mut bytes) = (vec![], vec![], vec![], vec![], 0);
    for _ in 0..rounds {
        let t = Instant::now();
        let kp = rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_4096).unwrap();
        rsa_ms.push(t.elapsed().as_secs_f64() * 1e3);
        drop(kp);
        let t = Instant::now();
        let secrets = SecretsBundle::generate().unwrap();
        secrets_ms.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        bytes = 0;
        for n in &nodes {
            bytes += machine_config(&cluster, n, &secrets).unwrap().len();
        }
        configs_ms.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        admin_kubeconfig("bench", &cluster.endpoint, &secrets.k8s_ca).unwrap();
        talosconfig("bench", &["10.40.0.10".into()], &["10.40.0.10".into()], &secrets.os_ca).unwrap();
        creds_ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let (s, r, c, k) = (median(secrets_ms), median(rsa_ms), median(configs_ms), median(creds_ms));
    println!(
        "{{\"rounds\": {rounds}, \"secrets_ms\": {s:.1}, \"rsa4096_keygen_ms\": {r:.1}, \"configs_53_ms\": {c:.1}, \
         \"config_ms_each\": {:.3}, \"config_bytes_total\": {bytes}, \"credentials_ms\": {k:.2}, \"total_ms\": {:.1}}}",
        c / 53.0,
        s + c
    );
}
