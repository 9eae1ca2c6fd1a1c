//! Talos machine configs: the YAML a node fetches from `talos.config=`. Pure: no I/O.
//!
//! The layout is the one Talos 1.13's own generator (`pkg/machinery/config/generate`, tag v1.13.9)
//! emits — the v1alpha1 document, then the documents the generator adds for 1.13
//! (`RegistryMirrorConfig` per mirror, `HostnameConfig`) — with the per-node settings an appliance
//! adds: install disk and image (`machine.install`), extra certificate SANs, discovery on/off, and
//! static addressing, nameservers and NTP as the 1.13 network documents (`LinkAliasConfig`,
//! `LinkConfig`, `Layer2VIPConfig`, `ResolverConfig`, `TimeSyncConfig`).
//!
//! Why documents rather than `machine.network` / `machine.time` / `machine.registries`: Talos 1.13
//! still decodes those legacy v1alpha1 fields, but they are deprecated — the 1.13 generator itself
//! writes registry mirrors and the hostname as documents (`MultidocNetworkConfigSupported()` is true
//! for contracts newer than 1.11), and the published 1.13 JSON schema no longer lists
//! `machine.network`, `machine.time` or `machine.registries`. Talos 1.14 drops them. The v1alpha1
//! document here therefore validates against the 1.13 schema (except `persist`, which the generator
//! always writes and the schema rejects).
//!
//! Which key paths each role carries matches the generator's fixtures (`tests/fixtures/talos/`):
//! workers get the CA certificates without keys and none of the aggregator / service-account / etcd
//! / secretbox secrets.

use std::collections::BTreeMap;
use std::net::IpAddr;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use yaml_serde::{Mapping, Value};

use super::TalosError;
use super::secrets::{CertAndKey, SecretsBundle};

/// The Talos release ironbay renders configs for unless a cluster pins another 1.13.x.
pub const DEFAULT_TALOS_VERSION: &str = "v1.13.9";
/// `constants.DefaultKubernetesVersion` of Talos v1.13.9 (`pkg/machinery/constants/constants.go`).
pub const DEFAULT_KUBERNETES_VERSION: &str = "v1.36.3";

/// The Kubernetes versions Talos 1.13 supports (`pkg/machinery/compatibility/talos113`): 1.31.0 to 1.36.x.
const MIN_KUBERNETES_MINOR: u64 = 31;
const MAX_KUBERNETES_MINOR: u64 = 36;

/// A node's role in the cluster: `machine.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MachineRole {
    Controlplane,
    Worker,
}

impl MachineRole {
    pub const fn as_str(self) -> &'static str {
        match self {
            MachineRole::Controlplane => "controlplane",
            MachineRole::Worker => "worker",
        }
    }
}

/// What every node of a cluster shares.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClusterSettings {
    pub name: String,
    /// `https://<vip or first control plane>:6443` -> `cluster.controlPlane.endpoint`.
    pub endpoint: String,
    /// When set, the control planes' interface gets `vip: {ip}` (Talos's layer-2 shared IP).
    pub vip: Option<IpAddr>,
    /// `v1.13.x`; other minors are refused (`TalosError::Invalid`).
    pub talos_version: String,
    /// `v1.xx.y`: the tag of the kubelet / apiserver / controller-manager / scheduler / proxy images.
    pub kubernetes_version: String,
    /// -> `machine.install.image`, e.g. `ghcr.io/siderolabs/installer:v1.13.9`.
    pub install_image: String,
    /// Empty: Talos's default (`time.cloudflare.com`, no `machine.time`).
    pub ntp_servers: Vec<String>,
    pub nameservers: Vec<IpAddr>,
    /// registry -> endpoint URLs (`http(s)://…`). Rendered as one `RegistryMirrorConfig` document per
    /// registry (`name: <registry>`, `endpoints: [{url}]`), the 1.13 form of
    /// `machine.registries.mirrors.<registry>.endpoints`.
    pub registry_mirrors: BTreeMap<String, Vec<String>>,
    /// false -> `cluster.discovery.enabled: false`.
    pub discovery: bool,
    /// -> `machine.certSANs` and (control planes) `cluster.apiServer.certSANs`.
    pub cert_sans: Vec<String>,
}

/// What is particular to one node.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeSettings {
    pub role: MachineRole,
    pub hostname: String,
    /// `aa:bb:cc:dd:ee:ff`: the interface is chosen by `deviceSelector.hardwareAddr`;
    /// None -> `deviceSelector: {physical: true}`.
    pub mac: Option<String>,
    pub address: IpAddr,
    pub prefix: u8,
    /// The default route (`0.0.0.0/0` or `::/0`) goes via this gateway.
    pub gateway: IpAddr,
    /// -> `machine.install.disk`, e.g. `/dev/sda`.
    pub install_disk: String,
}

/// The machine config Talos fetches from talos.config= : YAML text, the 1.13 layout (the v1alpha1
/// document, then the documents the 1.13 generator adds, like HostnameConfig), static addressing.
pub fn machine_config(
    cluster: &ClusterSettings,
    node: &NodeSettings,
    secrets: &SecretsBundle,
) -> Result<String, TalosError> {
    validate(cluster, node)?;
    let mut documents = vec![v1alpha1_document(cluster, node, secrets)];
    // The generator's order: registry mirrors, then the network documents.
    for (registry, endpoints) in &cluster.registry_mirrors {
        documents.push(
            document("RegistryMirrorConfig")
                .with("name", registry.as_str())
                .with(
                    "endpoints",
                    Value::Sequence(endpoints.iter().map(|e| Map::new().with("url", e.as_str()).into()).collect()),
                )
                .into(),
        );
    }
    documents.push(hostname_document(node));
    documents.extend(network_documents(cluster, node));
    let mut out = String::new();
    for (i, doc) in documents.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        let text = render(doc)?;
        // Quote `off` as Go's YAML encoder does (a YAML 1.1 reader would take a bare `off` for false).
        out.push_str(&text.replacen("\nauto: off\n", "\nauto: \"off\"\n", 1));
    }
    Ok(out)
}

/// The link the node's static address goes on, by its alias.
const LINK_ALIAS: &str = "net0";

/// A multi-doc config document header.
fn document(kind: &str) -> Map {
    Map::new().with("apiVersion", "v1alpha1").with("kind", kind)
}

/// Static addressing, Talos 1.13 style.
///
/// The link is picked by a `LinkAliasConfig` (CEL selector over the physical links) and named
/// `net0`; a `LinkConfig` for `net0` carries the address and the default route (a route without
/// `destination` is the default route of the gateway's family; `0.0.0.0/0` is refused by the
/// validation). With a MAC the selector matches that MAC, as permanent address or current address
/// (some drivers report no permanent address); a fixed alias name must match exactly one link.
/// Without a MAC every physical link is aliased `net0`, `net1`, … in MAC order and `net0` gets the
/// address (the counterpart of the legacy `deviceSelector: {physical: true}`, which also takes the
/// first physical link). A link with a `LinkConfig` gets no DHCP; other links keep Talos's default.
fn network_documents(cluster: &ClusterSettings, node: &NodeSettings) -> Vec<Value> {
    let mut docs = Vec::new();
    let (alias_name, selector) = match &node.mac {
        Some(mac) => {
            let mac = mac.to_ascii_lowercase();
            (
                LINK_ALIAS.to_string(),
                format!(r#"mac(link.permanent_addr) == "{mac}" || mac(link.hardware_addr) == "{mac}""#),
            )
        }
        None => ("net%d".to_string(), "true".to_string()),
    };
    docs.push(
        document("LinkAliasConfig")
            .with("name", alias_name)
            .with("selector", Map::new().with("match", selector))
            .into(),
    );
    docs.push(
        document("LinkConfig")
            .with("name", LINK_ALIAS)
            .with(
                "addresses",
                Value::Sequence(vec![Map::new().with("address", format!("{}/{}", node.address, node.prefix)).into()]),
            )
            .with("routes", Value::Sequence(vec![Map::new().with("gateway", node.gateway.to_string()).into()]))
            .into(),
    );
    // Talos refuses a shared IP on a non-control-plane node.
    if let (MachineRole::Controlplane, Some(vip)) = (node.role, cluster.vip) {
        docs.push(document("Layer2VIPConfig").with("name", vip.to_string()).with("link", LINK_ALIAS).into());
    }
    if !cluster.nameservers.is_empty() {
        docs.push(
            document("ResolverConfig")
                .with(
                    "nameservers",
                    Value::Sequence(
                        cluster.nameservers.iter().map(|n| Map::new().with("address", n.to_string()).into()).collect(),
                    ),
                )
                .into(),
        );
    }
    if !cluster.ntp_servers.is_empty() {
        docs.push(
            document("TimeSyncConfig").with("ntp", Map::new().with("servers", strings(&cluster.ntp_servers))).into(),
        );
    }
    docs
}

fn render(v: &Value) -> Result<String, TalosError> {
    yaml_serde::to_string(v).map_err(|e| TalosError::Render(e.to_string()))
}

/// An ordered YAML mapping under construction (Talos does not care about order, people reading
/// the config do: the order is the generator's).
struct Map(Mapping);

impl Map {
    fn new() -> Self {
        Map(Mapping::new())
    }
    fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.0.insert(Value::String(key.to_string()), value.into());
        self
    }
    fn with_if(self, cond: bool, key: &str, value: impl FnOnce() -> Value) -> Self {
        if cond { self.with(key, value()) } else { self }
    }
}

impl From<Map> for Value {
    fn from(m: Map) -> Value {
        Value::Mapping(m.0)
    }
}

fn strings<S: ToString>(items: impl IntoIterator<Item = S>) -> Value {
    Value::Sequence(items.into_iter().map(|s| Value::String(s.to_string())).collect())
}

/// `crt`/`key` values in a Talos config are base64 of the PEM text.
fn b64(pem: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(pem.as_bytes())
}

fn cert_and_key(ck: &CertAndKey) -> Value {
    Map::new()
        .with("crt", b64(&ck.crt))
        .with("key", if ck.key.is_empty() { String::new() } else { b64(&ck.key) })
        .into()
}

/// The PodSecurity admission plugin config and the audit policy the generator writes for 1.13.
const API_SERVER_STATIC: &str = r#"
admissionControl:
    - name: PodSecurity
      configuration:
        apiVersion: pod-security.admission.config.k8s.io/v1alpha1
        defaults:
            audit: restricted
            audit-version: latest
            enforce: baseline
            enforce-version: latest
            warn: restricted
            warn-version: latest
        exemptions:
            namespaces:
                - kube-system
            runtimeClasses: []
            usernames: []
        kind: PodSecurityConfiguration
auditPolicy:
    apiVersion: audit.k8s.io/v1
    kind: Policy
    rules:
        - level: Metadata
"#;

fn v1alpha1_document(cluster: &ClusterSettings, node: &NodeSettings, secrets: &SecretsBundle) -> Value {
    let cp = node.role == MachineRole::Controlplane;
    let k8s = &cluster.kubernetes_version;
    let key_for_role = |ck: &CertAndKey| if cp { cert_and_key(ck) } else { cert_and_key(&ck.without_key()) };

    // --- machine ---
    let kubelet = Map::new()
        .with("image", format!("ghcr.io/siderolabs/kubelet:{k8s}"))
        .with("defaultRuntimeSeccompProfileEnabled", true)
        .with("disableManifestsDirectory", true);

    let install = Map::new()
        .with("disk", node.install_disk.as_str())
        .with("image", cluster.install_image.as_str())
        .with("wipe", false)
        .with("grubUseUKICmdline", true);

    let features = Map::new()
        .with("diskQuotaSupport", true)
        .with("kubePrism", Map::new().with("enabled", true).with("port", 7445))
        .with("hostDNS", Map::new().with("enabled", true).with("forwardKubeDNSToHost", true));

    let machine = Map::new()
        .with("type", node.role.as_str())
        .with("token", secrets.trustd_token.as_str())
        .with("ca", key_for_role(&secrets.os_ca))
        .with("certSANs", strings(&cluster.cert_sans))
        .with("kubelet", kubelet)
        .with("install", install)
        .with("features", features)
        .with_if(cp, "nodeLabels", || {
            Map::new().with("node.kubernetes.io/exclude-from-external-load-balancers", "").into()
        });

    // --- cluster ---
    let discovery = Map::new().with("enabled", cluster.discovery).with(
        "registries",
        Map::new().with("kubernetes", Map::new().with("disabled", true)).with("service", Mapping::new()),
    );
    let mut cl = Map::new()
        .with("id", secrets.cluster_id.as_str())
        .with("secret", secrets.cluster_secret.as_str())
        .with("controlPlane", Map::new().with("endpoint", cluster.endpoint.as_str()))
        .with("clusterName", cluster.name.as_str())
        .with(
            "network",
            Map::new()
                .with("dnsDomain", "cluster.local")
                .with("podSubnets", strings(["10.244.0.0/16"]))
                .with("serviceSubnets", strings(["10.96.0.0/12"])),
        )
        .with("token", secrets.bootstrap_token.as_str());
    if cp {
        let statics: Mapping = yaml_serde::from_str(API_SERVER_STATIC).expect("static apiServer YAML parses");
        let mut api_server = Map::new().with("image", format!("registry.k8s.io/kube-apiserver:{k8s}")).with_if(
            !cluster.cert_sans.is_empty(),
            "certSANs",
            || strings(&cluster.cert_sans),
        );
        for (k, v) in statics {
            api_server.0.insert(k, v);
        }
        cl = cl
            .with("secretboxEncryptionSecret", secrets.secretbox_encryption_secret.as_str())
            .with("ca", cert_and_key(&secrets.k8s_ca))
            .with("aggregatorCA", cert_and_key(&secrets.k8s_aggregator_ca))
            .with("serviceAccount", Map::new().with("key", b64(&secrets.k8s_service_account_key)))
            .with("apiServer", api_server)
            .with(
                "controllerManager",
                Map::new().with("image", format!("registry.k8s.io/kube-controller-manager:{k8s}")),
            )
            .with("proxy", Map::new().with("image", format!("registry.k8s.io/kube-proxy:{k8s}")))
            .with("scheduler", Map::new().with("image", format!("registry.k8s.io/kube-scheduler:{k8s}")))
            .with("discovery", discovery)
            .with("etcd", Map::new().with("ca", cert_and_key(&secrets.etcd_ca)));
    } else {
        cl = cl.with("ca", cert_and_key(&secrets.k8s_ca.without_key())).with("discovery", discovery);
    }

    Map::new()
        .with("version", "v1alpha1")
        .with("debug", false)
        // The generator always writes `persist: true` (the published JSON schema rejects it; Talos accepts it).
        .with("persist", true)
        .with("machine", machine)
        .with("cluster", cl)
        .into()
}

/// The hostname, Talos 1.13 style. The 1.13 generator emits a `HostnameConfig` document with
/// `auto: stable`; its validation (`pkg/machinery/config/types/network/hostname.go`) forbids
/// `hostname` together with any `auto` other than `off` ("'auto' and 'hostname' cannot be set at the
/// same time"), and its conflict check with the v1alpha1 document refuses a HostnameConfig when
/// `machine.network.hostname` is set ("static hostname is already set in v1alpha1 config"). So the
/// static hostname goes into this document, with `auto: off` (no generated hostname; the static one
/// has the highest priority anyway), and `machine.network.hostname` stays unset. `auto: off` is
/// exactly what an absent `auto` means (the zero value), so the document keeps the generator's keys.
fn hostname_document(node: &NodeSettings) -> Value {
    document("HostnameConfig").with("auto", "off").with("hostname", node.hostname.as_str()).into()
}

fn invalid(msg: impl Into<String>) -> TalosError {
    TalosError::Invalid(msg.into())
}

/// `vMAJOR.MINOR.PATCH` with an optional `-pre` suffix -> (major, minor, patch).
fn parse_version(v: &str) -> Option<(u64, u64, u64)> {
    let rest = v.strip_prefix('v')?;
    let core = rest.split_once(['-', '+']).map_or(rest, |(c, _)| c);
    let mut parts = core.split('.');
    let mut num = || parts.next().filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))?.parse().ok();
    let out = (num()?, num()?, num()?);
    if parts.next().is_some() {
        return None;
    }
    Some(out)
}

fn valid_mac(mac: &str) -> bool {
    let parts: Vec<&str> = mac.split(':').collect();
    parts.len() == 6 && parts.iter().all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn validate(cluster: &ClusterSettings, node: &NodeSettings) -> Result<(), TalosError> {
    match parse_version(&cluster.talos_version) {
        Some((1, 13, _)) => {}
        Some(_) => {
            return Err(invalid(format!(
                "Talos {} is not supported: only the v1.13.x config layout is rendered",
                cluster.talos_version
            )));
        }
        None => return Err(invalid(format!("talos_version {:?} is not vMAJOR.MINOR.PATCH", cluster.talos_version))),
    }
    match parse_version(&cluster.kubernetes_version) {
        Some((1, minor, _)) if (MIN_KUBERNETES_MINOR..=MAX_KUBERNETES_MINOR).contains(&minor) => {}
        Some(_) => {
            return Err(invalid(format!(
                "Kubernetes {} is not supported by Talos 1.13 (v1.{MIN_KUBERNETES_MINOR}.0 to v1.{MAX_KUBERNETES_MINOR}.x)",
                cluster.kubernetes_version
            )));
        }
        None => {
            return Err(invalid(format!(
                "kubernetes_version {:?} is not vMAJOR.MINOR.PATCH",
                cluster.kubernetes_version
            )));
        }
    }
    if cluster.name.is_empty() {
        return Err(invalid("the cluster name is empty"));
    }
    if !cluster.endpoint.starts_with("https://") || cluster.endpoint.len() <= "https://".len() {
        return Err(invalid(format!("the control plane endpoint {:?} is not an https:// URL", cluster.endpoint)));
    }
    if let Some(vip) = cluster.vip
        && vip.is_unspecified()
    {
        return Err(invalid("the VIP is an unspecified address"));
    }
    if cluster.ntp_servers.iter().any(|s| s.trim().is_empty()) {
        return Err(invalid("an NTP server is empty"));
    }
    if cluster.install_image.trim().is_empty() {
        return Err(invalid("the install image is empty"));
    }
    for (registry, endpoints) in &cluster.registry_mirrors {
        if registry.is_empty() || endpoints.is_empty() {
            return Err(invalid(format!("registry mirror {registry:?} needs a name and at least one endpoint")));
        }
        if let Some(bad) = endpoints.iter().find(|e| !(e.starts_with("http://") || e.starts_with("https://"))) {
            return Err(invalid(format!("registry mirror endpoint {bad:?} is not an http(s):// URL")));
        }
    }
    // HostnameConfig's own rules: FQDN at most 253 characters, first label 1 to 63.
    let first_label = node.hostname.split('.').next().unwrap_or("");
    if node.hostname.len() > 253 || first_label.is_empty() || first_label.len() > 63 {
        return Err(invalid(format!("invalid hostname {:?}", node.hostname)));
    }
    if let Some(mac) = &node.mac
        && !valid_mac(mac)
    {
        return Err(invalid(format!("invalid MAC address {mac:?}")));
    }
    let max_prefix = if node.address.is_ipv4() { 32 } else { 128 };
    if node.prefix > max_prefix {
        return Err(invalid(format!("prefix /{} is too long for {}", node.prefix, node.address)));
    }
    if node.address.is_unspecified() || node.gateway.is_unspecified() {
        return Err(invalid("the node address and gateway must be real addresses"));
    }
    if node.address.is_ipv4() != node.gateway.is_ipv4() {
        return Err(invalid(format!("gateway {} and address {} are not the same family", node.gateway, node.address)));
    }
    if node.install_disk.trim().is_empty() {
        return Err(invalid("the install disk is empty"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse() {
        assert_eq!(parse_version("v1.13.9"), Some((1, 13, 9)));
        assert_eq!(parse_version("v1.36.3"), Some((1, 36, 3)));
        assert_eq!(parse_version("v1.13.0-beta.1"), Some((1, 13, 0)));
        assert_eq!(parse_version("1.13.9"), None);
        assert_eq!(parse_version("v1.13"), None);
        assert_eq!(parse_version("v1.13.9.1"), None);
        assert_eq!(parse_version("v1.x.9"), None);
    }

    #[test]
    fn default_versions_are_accepted() {
        assert_eq!(parse_version(DEFAULT_TALOS_VERSION).map(|v| (v.0, v.1)), Some((1, 13)));
        let (_, minor, _) = parse_version(DEFAULT_KUBERNETES_VERSION).unwrap();
        assert!((MIN_KUBERNETES_MINOR..=MAX_KUBERNETES_MINOR).contains(&minor));
    }

    #[test]
    fn hostname_auto_off_is_quoted() {
        let doc = render(&hostname_document(&NodeSettings {
            role: MachineRole::Worker,
            hostname: "w1".into(),
            mac: None,
            address: "10.0.0.2".parse().unwrap(),
            prefix: 24,
            gateway: "10.0.0.1".parse().unwrap(),
            install_disk: "/dev/sda".into(),
        }))
        .unwrap();
        assert!(doc.contains("\nauto: off\n"), "{doc}");
        let quoted = doc.replacen("\nauto: off\n", "\nauto: \"off\"\n", 1);
        let v: Value = yaml_serde::from_str(&quoted).unwrap();
        assert_eq!(v.get("auto").and_then(Value::as_str), Some("off"));
        assert_eq!(v.get("hostname").and_then(Value::as_str), Some("w1"));
    }

    #[test]
    fn macs() {
        assert!(valid_mac("aa:bb:cc:dd:ee:ff"));
        assert!(valid_mac("AA:BB:CC:00:11:22"));
        assert!(!valid_mac("aa:bb:cc:dd:ee"));
        assert!(!valid_mac("aa-bb-cc-dd-ee-ff"));
        assert!(!valid_mac("aa:bb:cc:dd:ee:fg"));
    }
}
