//! Talos clusters through the API (Colony's shape): create (validate everything, then in one
//! transaction: addresses, members, one talos_install workflow per node and the cluster
//! workflow), list, read with per-node status, delete (members leave and are wiped, addresses
//! released, secrets destroyed), the admin kubeconfig and talosconfig, and the machine config a
//! node fetches at `/talos/config?uuid=`.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::IpAddr;
use std::path::Path;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::vnis::Segment;
use super::workflows::{WorkflowView, insert_workflow_in};
use super::{AppState, Page, PageRequest, lifecycle};
use crate::audit::{self, Event};
use crate::auth::Actor;
use crate::error::{Error, Result};
use crate::ipam;
use crate::model::lifecycle::LifecycleEvent;
use crate::model::{AssetState, IdKind, Scope, ids, new_id, now_rfc3339};
use crate::policy::{Action, GuardSubject};
use crate::store::Store;
use crate::store::assets::AssetRow;
use crate::store::clusters::{ClusterRow, MemberRow};
use crate::store::vnis::AllocationRow;
use crate::talos::config::{
    ClusterSettings, DEFAULT_KUBERNETES_VERSION, DEFAULT_TALOS_VERSION, MachineRole, NodeSettings, machine_config,
};
use crate::talos::secrets::SecretsBundle;
use crate::talos::{TalosError, access};
use crate::workflow::{WorkflowKind, plan};

/// The Talos release files a cluster's nodes boot, under `<images_dir>/talos/<version>/`.
pub const TALOS_ARTIFACTS: [&str; 2] = ["vmlinuz-amd64", "initramfs-amd64.xz"];

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NodeRequest {
    pub asset_id: String,
    /// The node's static address; omitted: the next free one of `vniId`.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub ip: Option<IpAddr>,
    /// Prefix length (`"24"`, `"/24"`) or netmask (`"255.255.255.0"`); default: the VNI's.
    #[serde(default)]
    pub subnet: Option<String>,
    /// Default: the asset's hostname.
    #[serde(default)]
    pub hostname: Option<String>,
    /// Overrides the cluster's `installDisk` for this node.
    #[serde(default)]
    pub install_disk: Option<String>,
}

/// A registry's mirror endpoints: one URL or a list.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum MirrorEndpoints {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateCluster {
    pub name: String,
    /// `bare_metal`: the one type ironbay builds.
    #[serde(rename = "type")]
    pub kind: String,
    /// `talos` (default).
    #[serde(default)]
    pub flavor: Option<String>,
    /// Default route of every node; default: the VNI's gateway.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub gateway: Option<IpAddr>,
    pub control_planes: Vec<NodeRequest>,
    #[serde(default)]
    pub workers: Vec<NodeRequest>,
    /// Talos 1.13.x (default v1.13.9); its artifacts must be in `images/talos/<version>/`.
    #[serde(default)]
    pub talos_version: Option<String>,
    #[serde(default)]
    pub kubernetes_version: Option<String>,
    /// The Kubernetes API endpoint: an address (a VIP shared by the control planes when it is
    /// none of theirs), `host:port` or `https://host:port`. Default: the first control plane.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Allocate node addresses (and check given ones) in this VNI.
    #[serde(default)]
    pub vni_id: Option<String>,
    /// The disk Talos installs to (`/dev/sda`); default: each asset's first disk from inventory.
    #[serde(default)]
    pub install_disk: Option<String>,
    /// Registry host → mirror endpoint(s), e.g. `{"ghcr.io": "http://10.0.0.1:5000"}`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub registry_mirrors: Option<BTreeMap<String, MirrorEndpoints>>,
    #[serde(default)]
    pub ntp_servers: Vec<String>,
    /// DNS servers; default: the VNI's.
    #[serde(default)]
    #[schema(value_type = Vec<String>)]
    pub nameservers: Vec<IpAddr>,
    /// Talos cluster discovery (default true; false for offline sites).
    #[serde(default)]
    pub discovery: Option<bool>,
    /// Extra SANs for the API server and apid certificates.
    #[serde(default, rename = "certSANs", alias = "extraCertSANs", alias = "certSans")]
    pub cert_sans: Vec<String>,
    /// Colony's cloud credentials: accepted for compatibility, not used (and never stored).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub credentials: Option<Value>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeView {
    pub asset_id: String,
    pub hostname: String,
    pub role: String,
    pub ip: String,
    pub subnet: String,
    pub vni_id: Option<String>,
    pub install_disk: String,
    pub workflow_id: String,
    pub workflow_state: Option<String>,
    /// pending | booting | config_served | installed | ready | failed | cancelled
    pub status: String,
    pub config_served_at: Option<String>,
    pub installed_at: Option<String>,
    pub apid_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterView {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub flavor: String,
    /// creating | ready | failed
    pub state: String,
    pub talos_version: String,
    pub kubernetes_version: String,
    pub endpoint: String,
    /// pending | bootstrapped | already_bootstrapped | failed
    pub bootstrap_state: String,
    pub workflow_id: String,
    pub control_planes: usize,
    pub workers: usize,
    pub nodes: Vec<NodeView>,
    pub warnings: Vec<String>,
    #[schema(value_type = Object)]
    pub settings: Value,
    pub created_by: String,
    pub created_at: String,
    pub updated_at: String,
    pub ready_at: Option<String>,
    /// The cluster workflow (in the create answer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workflow: Option<WorkflowView>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeletedCluster {
    pub id: String,
    pub name: String,
    pub state: String,
    /// One quick wipe per former member.
    #[schema(value_type = Vec<Object>)]
    pub wipe_workflows: Vec<Value>,
    pub released_addresses: Vec<String>,
}

/// A node of the plan: the asset, its resolved settings, where its address is held.
struct PlannedNode {
    asset: AssetRow,
    settings: NodeSettings,
    vni_id: Option<String>,
}

pub(crate) fn cluster_not_found(id: &str) -> Error {
    Error::not_found("CLUSTER_NOT_FOUND", format!("Cluster {id} not found"))
}

fn unprocessable(code: &'static str, message: impl Into<String>, details: Value) -> Error {
    Error::Unprocessable { code, message: message.into(), details: Some(details) }
}

fn talos_error(e: TalosError) -> Error {
    Error::internal(format_args!("talos: {e}"))
}

fn secrets_context(cluster_id: &str) -> String {
    format!("cluster:{cluster_id}:secrets")
}

/// `v1.13.9` from `1.13.9` or `v1.13.9`; only 1.13.x has the layout we render.
fn talos_version(v: Option<&str>) -> Result<String> {
    let Some(v) = v else { return Ok(DEFAULT_TALOS_VERSION.to_string()) };
    let bare = v.trim().trim_start_matches('v');
    let parts: Vec<&str> = bare.split('.').collect();
    let numeric = parts.len() == 3
        && parts.iter().all(|p| !p.is_empty() && p.len() <= 4 && p.bytes().all(|b| b.is_ascii_digit()));
    if !numeric {
        return Err(Error::invalid_field("talosVersion", format!("`{v}` is not a Talos version like v1.13.9")));
    }
    if parts[0] != "1" || parts[1] != "13" {
        return Err(unprocessable(
            "UNSUPPORTED_TALOS_VERSION",
            format!("Talos {v} is not supported: ironbay renders the Talos 1.13 config layout (1.13.x)"),
            json!({"field": "talosVersion", "supported": "1.13.x"}),
        ));
    }
    Ok(format!("v{bare}"))
}

fn kubernetes_version(v: Option<&str>) -> Result<String> {
    let Some(v) = v else { return Ok(DEFAULT_KUBERNETES_VERSION.to_string()) };
    let bare = v.trim().trim_start_matches('v');
    let parts: Vec<&str> = bare.split('.').collect();
    if parts.len() != 3 || parts.iter().any(|p| p.is_empty() || p.len() > 4 || !p.bytes().all(|b| b.is_ascii_digit())) {
        return Err(Error::invalid_field(
            "kubernetesVersion",
            format!("`{v}` is not a Kubernetes version like v1.35.0"),
        ));
    }
    Ok(format!("v{bare}"))
}

/// A cluster or host name: DNS labels of lowercase letters, digits and hyphens.
fn dns_name(field: &str, v: &str, max: usize) -> Result<String> {
    let v = v.trim().to_ascii_lowercase();
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if v.is_empty() || v.len() > max || !v.split('.').all(label_ok) {
        return Err(Error::invalid_field(
            field,
            format!("`{v}` must be 1-{max} characters of lowercase letters, digits, hyphens (and dots between labels)"),
        ));
    }
    Ok(v)
}

/// A value that goes into the machine config or a kernel argument verbatim: no spaces, quotes,
/// control characters.
fn plain(field: &str, v: &str, max: usize) -> Result<String> {
    let v = v.trim();
    if v.is_empty()
        || v.len() > max
        || v.chars().any(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '\'' | '\\'))
    {
        return Err(Error::invalid_field(field, format!("`{v}`: 1-{max} characters without spaces or quotes")));
    }
    Ok(v.to_string())
}

fn install_disk(field: &str, v: &str) -> Result<String> {
    let v = plain(field, v, 256)?;
    if !v.starts_with("/dev/") || v.contains("..") {
        return Err(Error::invalid_field(field, format!("`{v}` is not a device path like /dev/sda")));
    }
    Ok(v)
}

/// `"24"`, `"/24"` or `"255.255.255.0"` → prefix length.
fn prefix_of(field: &str, subnet: &str, ip: IpAddr) -> Result<u8> {
    let s = subnet.trim().trim_start_matches('/');
    let max = if ip.is_ipv4() { 32 } else { 128 };
    if let Ok(n) = s.parse::<u8>() {
        if (1..=max).contains(&n) {
            return Ok(n);
        }
    } else if let Ok(IpAddr::V4(mask)) = s.parse::<IpAddr>()
        && ip.is_ipv4()
    {
        let bits = u32::from(mask);
        if bits.leading_ones() + bits.trailing_zeros() == 32 && bits != 0 {
            return Ok(bits.leading_ones() as u8);
        }
    }
    Err(Error::invalid_field(field, format!("`{subnet}` is not a prefix length (1-{max}) or netmask")))
}

/// Parses `endpoint`: the URL Kubernetes clients use and, when it names an address, that address.
fn endpoint_of(v: &str) -> Result<(String, Option<IpAddr>)> {
    let v = plain("endpoint", v, 253)?;
    let rest = v.strip_prefix("https://").unwrap_or(&v).trim_end_matches('/');
    if rest.contains('/') || rest.contains("://") {
        return Err(Error::invalid_field("endpoint", "`endpoint` is an address, host:port or https://host:port"));
    }
    if let Ok(ip) = rest.parse::<IpAddr>() {
        return Ok((url_for(ip, 6443), Some(ip)));
    }
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') || h.starts_with('[') => {
            let port = p.parse::<u16>().map_err(|_| Error::invalid_field("endpoint", format!("bad port in `{v}`")))?;
            (h.trim_start_matches('[').trim_end_matches(']').to_string(), port)
        }
        _ => (rest.to_string(), 6443),
    };
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok((url_for(ip, port), Some(ip)));
    }
    let host = dns_name("endpoint", &host, 253)?;
    Ok((format!("https://{host}:{port}"), None))
}

fn url_for(ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V4(v4) => format!("https://{v4}:{port}"),
        IpAddr::V6(v6) => format!("https://[{v6}]:{port}"),
    }
}

/// The first non-removable disk the agent's inventory reported.
fn first_disk(asset: &AssetRow) -> Option<String> {
    asset.disks.as_array()?.iter().find_map(|d| {
        let removable = d.get("removable").and_then(Value::as_bool).unwrap_or(false);
        let path = d.get("path").and_then(Value::as_str)?;
        (!removable).then(|| path.to_string())
    })
}

/// Checks `images/talos/<version>/`: both artifacts listed in `sha256sum.txt` and matching it.
fn verify_artifacts(dir: &Path, version: &str) -> Result<()> {
    let missing = |what: String| {
        unprocessable(
            "TALOS_ARTIFACTS_MISSING",
            format!(
                "Talos {version} is not mirrored: {what}; run `bash images/fetch-talos.sh {version}` \
                 (or with --from a local copy)"
            ),
            json!({"field": "talosVersion", "dir": dir.display().to_string()}),
        )
    };
    let sums = std::fs::read_to_string(dir.join("sha256sum.txt"))
        .map_err(|_| missing(format!("{} has no sha256sum.txt", dir.display())))?;
    for name in TALOS_ARTIFACTS {
        let expected = sums
            .lines()
            .filter_map(|l| l.split_once(char::is_whitespace))
            .find(|(_, f)| f.trim().trim_start_matches('*') == name)
            .map(|(h, _)| h.trim().to_ascii_lowercase())
            .ok_or_else(|| missing(format!("sha256sum.txt does not list {name}")))?;
        let mut file = std::fs::File::open(dir.join(name))
            .map_err(|_| missing(format!("{} is missing", dir.join(name).display())))?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = std::io::Read::read(&mut file, &mut buf).map_err(Error::internal)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        let got = hex::encode(hasher.finalize());
        if got != expected {
            return Err(unprocessable(
                "TALOS_ARTIFACTS_CORRUPT",
                format!("{name} of Talos {version} does not match sha256sum.txt (got {got}, listed {expected})"),
                json!({"field": "talosVersion", "file": name}),
            ));
        }
    }
    Ok(())
}

fn node_status(m: &MemberRow, wf_state: Option<&str>) -> &'static str {
    match wf_state {
        Some("failed") => return "failed",
        Some("cancelled") => return "cancelled",
        _ => {}
    }
    if m.apid_at.is_some() {
        "ready"
    } else if m.installed_at.is_some() {
        "installed"
    } else if m.config_served_at.is_some() {
        "config_served"
    } else if wf_state == Some("running") {
        "booting"
    } else {
        "pending"
    }
}

/// The two forms a SMBIOS UUID is written in: as Linux (and Talos) print it, and with the first
/// three fields byte-swapped (firmware and iPXE versions differ).
fn uuid_forms(uuid: &str) -> [String; 2] {
    let swap = |s: &str| -> String {
        let bytes: Vec<&str> = (0..s.len()).step_by(2).filter_map(|i| s.get(i..i + 2)).collect();
        bytes.into_iter().rev().collect()
    };
    let p: Vec<&str> = uuid.split('-').collect();
    let swapped = if p.len() == 5 {
        format!("{}-{}-{}-{}-{}", swap(p[0]), swap(p[1]), swap(p[2]), p[3], p[4])
    } else {
        uuid.to_string()
    };
    [uuid.to_string(), swapped]
}

impl AppState {
    /// The cluster's secrets bundle, unsealed.
    pub(crate) fn cluster_secrets(&self, c: &ClusterRow) -> Result<SecretsBundle> {
        let bytes = self.keys.unseal(&secrets_context(&c.id), &c.secrets_sealed)?;
        serde_json::from_slice(&bytes).map_err(Error::internal)
    }

    async fn load_cluster(&self, id: &str) -> Result<ClusterRow> {
        if !ids::looks_like(IdKind::Cluster, id) {
            return Err(cluster_not_found(id));
        }
        self.store.cluster_get(id).await?.ok_or_else(|| cluster_not_found(id))
    }

    async fn cluster_view(&self, c: ClusterRow, workflow: Option<WorkflowView>) -> Result<ClusterView> {
        let members = self.store.cluster_members(&c.id).await?;
        let ids: Vec<String> = members.iter().map(|m| m.workflow_id.clone()).collect();
        let states: std::collections::HashMap<String, String> =
            self.store.workflow_states_of(&ids).await?.into_iter().collect();
        let mut nodes = Vec::with_capacity(members.len());
        for m in members {
            let wf_state = states.get(&m.workflow_id).cloned();
            let node: Option<NodeSettings> = serde_json::from_str(&m.node).ok();
            nodes.push(NodeView {
                status: node_status(&m, wf_state.as_deref()).into(),
                hostname: node.as_ref().map(|n| n.hostname.clone()).unwrap_or_default(),
                subnet: node.as_ref().map(|n| n.prefix.to_string()).unwrap_or_default(),
                install_disk: node.as_ref().map(|n| n.install_disk.clone()).unwrap_or_default(),
                asset_id: m.asset_id,
                role: m.role,
                ip: m.address,
                vni_id: m.vni_id,
                workflow_id: m.workflow_id,
                workflow_state: wf_state,
                config_served_at: m.config_served_at,
                installed_at: m.installed_at,
                apid_at: m.apid_at,
            });
        }
        Ok(ClusterView {
            control_planes: nodes.iter().filter(|n| n.role == "controlplane").count(),
            workers: nodes.iter().filter(|n| n.role == "worker").count(),
            nodes,
            warnings: serde_json::from_str(&c.warnings).unwrap_or_default(),
            settings: serde_json::from_str(&c.settings).unwrap_or(Value::Null),
            id: c.id,
            name: c.name,
            kind: "bare_metal".into(),
            flavor: c.flavor,
            state: c.state,
            talos_version: c.talos_version,
            kubernetes_version: c.kubernetes_version,
            endpoint: c.endpoint,
            bootstrap_state: c.bootstrap_state,
            workflow_id: c.workflow_id,
            created_by: c.created_by,
            created_at: c.created_at,
            updated_at: c.updated_at,
            ready_at: c.ready_at,
            workflow,
        })
    }

    /// `POST /api/v1/clusters`.
    pub async fn cluster_create(&self, actor: &Actor, req: CreateCluster) -> Result<ClusterView> {
        actor.require(Scope::ClustersWrite)?;
        let name = dns_name("name", &req.name, 63)?;
        if req.kind.trim() != "bare_metal" {
            return Err(unprocessable(
                "UNSUPPORTED_CLUSTER_TYPE",
                format!("cluster type `{}` is not built here: ironbay builds `bare_metal` clusters", req.kind),
                json!({"field": "type", "supported": ["bare_metal"]}),
            ));
        }
        let flavor = req.flavor.as_deref().unwrap_or("talos").trim().to_string();
        if flavor != "talos" {
            return Err(unprocessable(
                "UNSUPPORTED_FLAVOR",
                format!("flavor `{flavor}` is not supported: ironbay builds Talos clusters (`talos`)"),
                json!({"field": "flavor", "supported": ["talos"]}),
            ));
        }
        if req.control_planes.is_empty() {
            return Err(Error::invalid_field("controlPlanes", "a cluster needs at least one control plane"));
        }
        if req.control_planes.len() + req.workers.len() > 1000 {
            return Err(Error::invalid_field("workers", "at most 1000 nodes per cluster"));
        }
        let mut warnings = Vec::new();
        if req.control_planes.len().is_multiple_of(2) {
            warnings.push(format!(
                "{} control planes: an odd number is recommended (etcd needs a majority; an even count adds no fault tolerance)",
                req.control_planes.len()
            ));
        }
        if req.credentials.is_some() {
            warnings.push("`credentials` is ignored: bare-metal clusters need no cloud credentials".into());
        }
        let talos_version = talos_version(req.talos_version.as_deref())?;
        let kubernetes_version = kubernetes_version(req.kubernetes_version.as_deref())?;
        let default_disk = req.install_disk.as_deref().map(|d| install_disk("installDisk", d)).transpose()?;
        let ntp_servers = req.ntp_servers.iter().map(|s| plain("ntpServers", s, 253)).collect::<Result<Vec<_>>>()?;
        let cert_sans = req.cert_sans.iter().map(|s| plain("certSANs", s, 253)).collect::<Result<Vec<_>>>()?;
        let mut registry_mirrors = BTreeMap::new();
        for (registry, endpoints) in req.registry_mirrors.unwrap_or_default() {
            let registry = plain("registryMirrors", &registry, 253)?;
            let list = match endpoints {
                MirrorEndpoints::One(e) => vec![e],
                MirrorEndpoints::Many(l) => l,
            };
            if list.is_empty() {
                return Err(Error::invalid_field("registryMirrors", format!("mirror of `{registry}` has no endpoint")));
            }
            let mut urls = Vec::new();
            for e in list {
                let e = plain("registryMirrors", &e, 2048)?;
                if !(e.starts_with("http://") || e.starts_with("https://")) {
                    return Err(Error::invalid_field(
                        "registryMirrors",
                        format!("mirror endpoint `{e}` must be an http:// or https:// URL"),
                    ));
                }
                urls.push(e);
            }
            registry_mirrors.insert(registry, urls);
        }

        // The VNI, when given, is the segment addresses come from.
        let vni = match &req.vni_id {
            Some(id) => {
                let row = self.store.vni_get(id).await?.ok_or_else(|| {
                    unprocessable("VNI_NOT_FOUND", format!("VNI {id} does not exist"), json!({"field": "vniId"}))
                })?;
                let seg = Segment::from_row(&row)?;
                let pool = seg.pool()?;
                Some((row, seg, pool))
            }
            None => None,
        };
        let gateway = req.gateway.or_else(|| vni.as_ref().and_then(|(_, s, _)| s.gateway)).ok_or_else(|| {
            Error::invalid_field("gateway", "`gateway` is required (or give `vniId` of a VNI that has one)")
        })?;
        let nameservers = if req.nameservers.is_empty() {
            vni.as_ref().map(|(_, s, _)| s.dns.clone()).unwrap_or_default()
        } else {
            req.nameservers.clone()
        };

        // Assets: exist, distinct, available, in no cluster, not busy.
        let mut seen_assets = HashSet::new();
        let mut nodes: Vec<(MachineRole, &NodeRequest, AssetRow)> = Vec::new();
        let roles = req
            .control_planes
            .iter()
            .map(|n| (MachineRole::Controlplane, n))
            .chain(req.workers.iter().map(|n| (MachineRole::Worker, n)));
        for (role, n) in roles {
            let field = if role == MachineRole::Controlplane { "controlPlanes" } else { "workers" };
            if !seen_assets.insert(n.asset_id.clone()) {
                return Err(unprocessable(
                    "DUPLICATE_ASSET",
                    format!("asset {} is listed twice", n.asset_id),
                    json!({"field": field, "asset_id": n.asset_id}),
                ));
            }
            let asset = match ids::looks_like(IdKind::Asset, &n.asset_id) {
                true => self.store.asset_get(&n.asset_id).await?,
                false => None,
            }
            .ok_or_else(|| {
                unprocessable(
                    "ASSET_NOT_FOUND",
                    format!("asset {} does not exist", n.asset_id),
                    json!({"field": field, "asset_id": n.asset_id}),
                )
            })?;
            nodes.push((role, n, asset));
        }
        for (_, _, asset) in &nodes {
            self.check_member_candidate(asset).await?;
            self.guard(actor, Action::Provision, GuardSubject::Asset(super::assets::policy_subject(asset))).await?;
        }

        // Addresses: given or allocated, inside their subnet, distinct, free.
        let mut planned = Vec::with_capacity(nodes.len());
        let mut seen_ips: BTreeSet<IpAddr> = BTreeSet::new();
        for (i, (role, n, asset)) in nodes.into_iter().enumerate() {
            let hostname = dns_name("hostname", n.hostname.as_deref().unwrap_or(&asset.hostname), 63)?;
            let disk = match (&n.install_disk, &default_disk) {
                (Some(d), _) => install_disk("installDisk", d)?,
                (None, Some(d)) => d.clone(),
                (None, None) => first_disk(&asset).ok_or_else(|| {
                    unprocessable(
                        "INSTALL_DISK_REQUIRED",
                        format!("asset {} has no disk in its inventory: give `installDisk`", asset.id),
                        json!({"field": "installDisk", "asset_id": asset.id}),
                    )
                })?,
            };
            let (address, prefix) = match (n.ip, &vni) {
                (Some(ip), _) => {
                    let prefix = match (&n.subnet, &vni) {
                        (Some(s), _) => prefix_of("subnet", s, ip)?,
                        (None, Some((_, seg, _))) => seg.net.prefix_len(),
                        (None, None) => {
                            return Err(Error::invalid_field(
                                "subnet",
                                format!("node {i}: `subnet` is required with `ip`"),
                            ));
                        }
                    };
                    (ip, prefix)
                }
                (None, Some((_, seg, _))) => (IpAddr::from([0, 0, 0, 0]), seg.net.prefix_len()),
                (None, None) => {
                    return Err(Error::invalid_field(
                        "ip",
                        format!("asset {}: give `ip` (and `subnet`), or `vniId` to allocate addresses", asset.id),
                    ));
                }
            };
            if n.ip.is_some() {
                let net = IpNet::new(address, prefix).map_err(Error::internal)?.trunc();
                if !net.contains(&gateway) {
                    return Err(unprocessable(
                        "GATEWAY_OUTSIDE_SUBNET",
                        format!("gateway {gateway} is not inside {net}, the subnet of {address}"),
                        json!({"field": "gateway", "asset_id": asset.id}),
                    ));
                }
                if address == net.network()
                    || (address.is_ipv4() && address == net.broadcast() && prefix < 31)
                    || address == gateway
                {
                    return Err(unprocessable(
                        "IP_UNASSIGNABLE",
                        format!("{address} is the network, broadcast or gateway address of {net}"),
                        json!({"field": "ip", "asset_id": asset.id}),
                    ));
                }
                if let Some((row, seg, pool)) = &vni {
                    if !seg.net.contains(&address) {
                        return Err(unprocessable(
                            "IP_OUTSIDE_SUBNET",
                            format!("{address} is not inside VNI {} ({})", row.name, seg.net),
                            json!({"field": "ip", "asset_id": asset.id, "vni_id": row.id}),
                        ));
                    }
                    // A static address may sit outside the DHCP range (the usual place for
                    // it); network, broadcast, gateway and reserved addresses are never given.
                    match pool.check(address) {
                        Ok(()) | Err(ipam::Unassignable::OutsideRange(..)) => {}
                        Err(why) => {
                            return Err(unprocessable(
                                "ADDRESS_UNASSIGNABLE",
                                why.to_string(),
                                json!({"field": "ip", "asset_id": asset.id, "address": address}),
                            ));
                        }
                    }
                }
                if !seen_ips.insert(address) {
                    return Err(unprocessable(
                        "DUPLICATE_IP",
                        format!("{address} is given to more than one node"),
                        json!({"field": "ip", "address": address}),
                    ));
                }
            }
            let mac = asset.macs.first().map(|m| m.to_string());
            planned.push(PlannedNode {
                settings: NodeSettings { role, hostname, mac, address, prefix, gateway, install_disk: disk },
                vni_id: vni.as_ref().map(|(r, _, _)| r.id.clone()),
                asset,
            });
        }
        let (endpoint, named_ip) = match &req.endpoint {
            Some(e) => endpoint_of(e)?,
            None => (String::new(), None),
        };
        // An endpoint address that is no control plane's own is a VIP the control planes share.
        let vip = named_ip.filter(|ip| {
            !planned.iter().any(|p| p.settings.role == MachineRole::Controlplane && p.settings.address == *ip)
        });
        if let Some(v) = vip
            && seen_ips.contains(&v)
        {
            return Err(unprocessable(
                "DUPLICATE_IP",
                format!("the endpoint VIP {v} is a worker's address"),
                json!({"field": "endpoint", "address": v}),
            ));
        }
        if let Some(v) = vip {
            // The VIP lives in the control planes' subnet: the VNI's, or the first one's own.
            let net = match (&vni, planned.first()) {
                (Some((_, seg, _)), _) => Some(seg.net),
                (None, Some(p)) => IpNet::new(p.settings.address, p.settings.prefix).ok().map(|n| n.trunc()),
                (None, None) => None,
            };
            if let Some(net) = net
                && !net.contains(&v)
            {
                return Err(unprocessable(
                    "IP_OUTSIDE_SUBNET",
                    format!("the endpoint VIP {v} is not inside {net}"),
                    json!({"field": "endpoint"}),
                ));
            }
        }

        let mut settings = ClusterSettings {
            name: name.clone(),
            endpoint,
            vip,
            talos_version: talos_version.clone(),
            kubernetes_version: kubernetes_version.clone(),
            install_image: format!("ghcr.io/siderolabs/installer:{talos_version}"),
            ntp_servers,
            nameservers,
            registry_mirrors,
            discovery: req.discovery.unwrap_or(true),
            cert_sans,
        };

        let artifacts = self.config.boot.images_dir.join("talos").join(&talos_version);
        let v = talos_version.clone();
        tokio::task::spawn_blocking(move || verify_artifacts(&artifacts, &v)).await.map_err(Error::internal)??;
        // RSA-4096 takes a while: off the async threads.
        let secrets = tokio::task::spawn_blocking(SecretsBundle::generate)
            .await
            .map_err(Error::internal)?
            .map_err(talos_error)?;

        let id = new_id(IdKind::Cluster);
        let workflow_id = new_id(IdKind::Workflow);
        let now = now_rfc3339();
        let mut tx = self.store.begin().await?;
        Store::serialize_writes(&mut tx).await?;
        // Again inside the transaction: what was checked above may have changed.
        for p in &planned {
            let asset = Store::asset_get_in(&mut tx, &p.asset.id).await?.ok_or_else(|| {
                unprocessable("ASSET_NOT_FOUND", format!("asset {} was deleted", p.asset.id), json!({}))
            })?;
            Self::check_candidate_in(&mut tx, &asset).await?;
        }
        // Addresses: held in their VNI (explicit ones checked free, omitted ones the next free).
        let mut held: BTreeSet<IpAddr> = seen_ips.clone();
        let now_secs = chrono::Utc::now().timestamp();
        for p in planned.iter_mut() {
            let explicit = p.settings.address != IpAddr::from([0, 0, 0, 0]);
            let vni_id = match (&p.vni_id, explicit) {
                (Some(v), _) => Some(v.clone()),
                (None, true) => self.vni_containing(&mut tx, p.settings.address).await?,
                (None, false) => None,
            };
            p.vni_id = vni_id.clone();
            let Some(vni_id) = vni_id else { continue };
            let row = Store::vni_get_in(&mut tx, &vni_id).await?.ok_or_else(|| Error::internal("VNI vanished"))?;
            let pool = Segment::from_row(&row)?.pool()?;
            let leased: BTreeSet<IpAddr> = Store::dhcp_active_addresses(&mut tx, &vni_id, now_secs)
                .await?
                .iter()
                .filter_map(|s| s.parse().ok())
                .collect();
            let allocated: BTreeSet<IpAddr> =
                Store::allocation_addresses(&mut tx, &vni_id).await?.iter().filter_map(|s| s.parse().ok()).collect();
            if explicit {
                let a = p.settings.address;
                // The segment's own rules too (its gateway, reserved ranges), when the address
                // was matched to a VNI by its network rather than named by `vniId`.
                match pool.check(a) {
                    Ok(()) | Err(ipam::Unassignable::OutsideRange(..)) => {}
                    Err(why) => {
                        return Err(unprocessable(
                            "ADDRESS_UNASSIGNABLE",
                            format!("{why} (VNI {})", row.name),
                            json!({"field": "ip", "asset_id": p.asset.id, "address": a, "vni_id": vni_id}),
                        ));
                    }
                }
                if allocated.contains(&a) || leased.contains(&a) {
                    let holder = Store::allocation_get(&mut tx, &vni_id, &a.to_string()).await?;
                    return Err(Error::conflict(
                        "ADDRESS_TAKEN",
                        format!(
                            "{a} is already in use in VNI {}{}",
                            row.name,
                            holder
                                .map(|h| format!(" (held by {} {})", h.holder_type, h.holder_id))
                                .unwrap_or_else(|| " (leased by DHCP)".into())
                        ),
                        Some(json!({"field": "ip", "address": a, "asset_id": p.asset.id})),
                    ));
                }
            } else {
                let mut taken = allocated.clone();
                taken.extend(leased.iter().copied());
                taken.extend(held.iter().copied());
                if let Some(v) = vip {
                    taken.insert(v);
                }
                let a = pool.next_free(&taken, 1 << 20).ok_or_else(|| {
                    Error::conflict(
                        "POOL_EXHAUSTED",
                        format!("VNI `{}` has no free address left for the cluster", row.name),
                        Some(json!({"vni_id": vni_id})),
                    )
                })?;
                p.settings.address = a;
                held.insert(a);
            }
            Store::allocation_insert(
                &mut tx,
                &AllocationRow {
                    vni_id: vni_id.clone(),
                    address: p.settings.address.to_string(),
                    sort_key: ipam::sort_key(p.settings.address),
                    holder_type: "cluster".into(),
                    holder_id: id.clone(),
                    created_at: now.clone(),
                },
            )
            .await
            .map_err(|e| {
                if crate::store::is_unique_violation(&e, "ip_allocations") {
                    Error::conflict("ADDRESS_TAKEN", format!("{} was just taken", p.settings.address), None)
                } else {
                    e.into()
                }
            })?;
        }
        if let Some(v) = vip
            && let Some(vni_id) = self.vni_containing(&mut tx, v).await?
        {
            if Store::allocation_get(&mut tx, &vni_id, &v.to_string()).await?.is_some() {
                return Err(Error::conflict(
                    "ADDRESS_TAKEN",
                    format!("the endpoint VIP {v} is already in use"),
                    Some(json!({"field": "endpoint", "address": v})),
                ));
            }
            Store::allocation_insert(
                &mut tx,
                &AllocationRow {
                    vni_id,
                    address: v.to_string(),
                    sort_key: ipam::sort_key(v),
                    holder_type: "cluster".into(),
                    holder_id: id.clone(),
                    created_at: now.clone(),
                },
            )
            .await?;
        }
        if settings.endpoint.is_empty() {
            let first =
                planned.iter().find(|p| p.settings.role == MachineRole::Controlplane).map(|p| p.settings.address);
            settings.endpoint = url_for(first.unwrap_or(gateway), 6443);
        }
        // Every node's config renders (the plan is complete) before anything is committed.
        for p in &planned {
            machine_config(&settings, &p.settings, &secrets).map_err(|e| match e {
                TalosError::Invalid(m) => unprocessable(
                    "INVALID_CLUSTER_SPEC",
                    format!("the machine config of {} cannot be made: {m}", p.asset.id),
                    json!({"asset_id": p.asset.id, "reason": m}),
                ),
                other => talos_error(other),
            })?;
        }
        let sealed = self.keys.seal(&secrets_context(&id), &serde_json::to_vec(&secrets).map_err(Error::internal)?)?;
        let settings_json = serde_json::to_string(&settings).map_err(Error::internal)?;
        let row = ClusterRow {
            id: id.clone(),
            name: name.clone(),
            state: "creating".into(),
            flavor,
            talos_version: talos_version.clone(),
            kubernetes_version: kubernetes_version.clone(),
            endpoint: settings.endpoint.clone(),
            settings: settings_json,
            secrets_sealed: sealed,
            bootstrap_state: "pending".into(),
            workflow_id: workflow_id.clone(),
            warnings: serde_json::to_string(&warnings).map_err(Error::internal)?,
            created_by: format!("{}:{}", actor.kind(), actor.name().unwrap_or("-")),
            created_at: now.clone(),
            updated_at: now.clone(),
            ready_at: None,
        };
        Store::cluster_insert(&mut tx, &row).await.map_err(|e| {
            if crate::store::is_unique_violation(&e, "clusters") || crate::store::is_unique_violation(&e, "name") {
                Error::conflict(
                    "CLUSTER_EXISTS",
                    format!("a cluster named `{name}` exists"),
                    Some(json!({"field": "name"})),
                )
            } else {
                e.into()
            }
        })?;
        for (ordinal, p) in planned.iter().enumerate() {
            let node_wf = new_id(IdKind::Workflow);
            let steps = plan::talos_install();
            let params = json!({"cluster_id": id, "role": p.settings.role, "address": p.settings.address.to_string(),
                                "talos_version": talos_version});
            insert_workflow_in(
                &mut tx,
                actor,
                &node_wf,
                &p.asset.id,
                p.asset.state.as_str(),
                WorkflowKind::TalosInstall,
                &params,
                &steps,
            )
            .await
            .map_err(|e| {
                if crate::store::is_unique_violation(&e, "workflows") {
                    Error::conflict("ASSET_BUSY", format!("asset {} is busy", p.asset.id), None)
                } else {
                    e.into()
                }
            })?;
            Store::member_insert(
                &mut tx,
                &MemberRow {
                    asset_id: p.asset.id.clone(),
                    cluster_id: id.clone(),
                    role: match p.settings.role {
                        MachineRole::Controlplane => "controlplane".into(),
                        MachineRole::Worker => "worker".into(),
                    },
                    ordinal: ordinal as i64,
                    node: serde_json::to_string(&p.settings).map_err(Error::internal)?,
                    address: p.settings.address.to_string(),
                    vni_id: p.vni_id.clone(),
                    workflow_id: node_wf.clone(),
                    config_served_at: None,
                    installed_at: None,
                    apid_at: None,
                },
            )
            .await?;
            let asset =
                Store::asset_get_in(&mut tx, &p.asset.id).await?.ok_or_else(|| Error::internal("asset vanished"))?;
            lifecycle::transition(
                &mut tx,
                actor,
                &asset,
                LifecycleEvent::ProvisionStarted,
                &format!("installing Talos {talos_version} as a node of cluster {name} (workflow {node_wf})"),
                Some(&node_wf),
            )
            .await?;
        }
        let (wf_row, wf_steps) = insert_workflow_in(
            &mut tx,
            actor,
            &workflow_id,
            &id,
            "creating",
            WorkflowKind::ClusterCreate,
            &json!({"cluster_id": id}),
            &plan::cluster_create(),
        )
        .await?;
        audit::append(
            &mut tx,
            actor,
            Event::new("cluster.create", "cluster", &id).with_details(json!({
                "name": name, "talos_version": talos_version, "kubernetes_version": kubernetes_version,
                "endpoint": settings.endpoint, "workflow_id": workflow_id,
                "nodes": planned.iter().map(|p| json!({"asset_id": p.asset.id, "role": p.settings.role,
                    "ip": p.settings.address.to_string()})).collect::<Vec<_>>(),
                "warnings": warnings,
            })),
        )
        .await?;
        tx.commit().await?;
        self.workflow_wake.notify_one();
        let workflow = super::workflows::view(wf_row, wf_steps);
        self.cluster_view(row, Some(workflow)).await
    }

    /// Whether an asset may join a cluster (read outside the transaction, for clear errors early).
    async fn check_member_candidate(&self, asset: &AssetRow) -> Result<()> {
        let mut conn = self.store.pool().acquire().await?;
        Self::check_candidate_in(&mut conn, asset).await
    }

    async fn check_candidate_in(conn: &mut sqlx::AnyConnection, asset: &AssetRow) -> Result<()> {
        if let Some(cluster) = Store::asset_cluster_in(conn, &asset.id).await? {
            return Err(Error::conflict(
                "ASSET_IN_CLUSTER",
                format!("asset {} is already a member of cluster {cluster}", asset.id),
                Some(json!({"asset_id": asset.id, "cluster_id": cluster})),
            ));
        }
        if let Some(w) = Store::workflow_active_for(conn, &asset.id).await? {
            return Err(Error::conflict(
                "ASSET_BUSY",
                format!("asset {} is busy: workflow {} ({}) is {}", asset.id, w.id, w.kind, w.state),
                Some(json!({"asset_id": asset.id, "workflow_id": w.id})),
            ));
        }
        if asset.state != AssetState::Available {
            return Err(Error::conflict(
                "ASSET_NOT_AVAILABLE",
                format!("asset {} is {}: only available assets can join a cluster", asset.id, asset.state),
                Some(json!({"asset_id": asset.id, "state": asset.state})),
            ));
        }
        Ok(())
    }

    async fn vni_containing(&self, conn: &mut sqlx::AnyConnection, ip: IpAddr) -> Result<Option<String>> {
        for v in Store::vni_all(conn).await? {
            if v.cidr.parse::<IpNet>().is_ok_and(|n| n.contains(&ip)) {
                return Ok(Some(v.id));
            }
        }
        Ok(None)
    }

    pub async fn cluster_get(&self, actor: &Actor, id: &str) -> Result<ClusterView> {
        actor.require(Scope::ClustersRead)?;
        let c = self.load_cluster(id).await?;
        self.cluster_view(c, None).await
    }

    pub async fn cluster_list(&self, actor: &Actor, page: PageRequest) -> Result<Page<ClusterView>> {
        actor.require(Scope::ClustersRead)?;
        let (rows, total) = self.store.cluster_list(page.limit(), page.offset()).await?;
        let mut items = Vec::with_capacity(rows.len());
        for r in rows {
            items.push(self.cluster_view(r, None).await?);
        }
        Ok(Page { items, page, total })
    }

    /// `DELETE /api/v1/clusters/{id}`: members leave and get a quick wipe each, the addresses
    /// go back to their VNIs, the cluster (and its secrets) is gone. Refused while its workflows
    /// run: cancel them first.
    pub async fn cluster_delete(&self, actor: &Actor, id: &str) -> Result<DeletedCluster> {
        actor.require(Scope::ClustersWrite)?;
        let c = self.load_cluster(id).await?;
        let members = self.store.cluster_members(&c.id).await?;
        for m in &members {
            if let Some(asset) = self.store.asset_get(&m.asset_id).await? {
                self.guard(actor, Action::Wipe, GuardSubject::Asset(super::assets::policy_subject(&asset))).await?;
            }
        }
        let mut tx = self.store.begin().await?;
        Store::serialize_writes(&mut tx).await?;
        let mut active = Vec::new();
        for wid in members.iter().map(|m| m.workflow_id.as_str()).chain([c.workflow_id.as_str()]) {
            if let Some(w) = Store::workflow_get_in(&mut tx, wid).await?
                && matches!(w.state.as_str(), "pending" | "running")
            {
                active.push(w.id);
            }
        }
        if !active.is_empty() {
            return Err(Error::conflict(
                "CLUSTER_BUSY",
                format!(
                    "cluster {} has running workflows ({}): cancel them (POST /api/v1/workflows/{{id}}/cancel), then delete",
                    c.name,
                    active.join(", ")
                ),
                Some(json!({"workflow_ids": active})),
            ));
        }
        let mut released = Vec::new();
        for (vni_id, address) in Store::allocations_of_holder(&mut tx, "cluster", &c.id).await? {
            Store::allocation_delete(&mut tx, &vni_id, &address).await?;
            released.push(address);
        }
        Store::cluster_delete(&mut tx, &c.id).await?;
        let mut wipes = Vec::new();
        for m in &members {
            let Some(asset) = Store::asset_get_in(&mut tx, &m.asset_id).await? else { continue };
            if Store::workflow_active_for(&mut tx, &asset.id).await?.is_some()
                || matches!(asset.state, AssetState::Wiping | AssetState::Provisioning)
            {
                continue;
            }
            let wid = new_id(IdKind::Workflow);
            let method = ironbay_wire::command::WipeMethod::Quick;
            insert_workflow_in(
                &mut tx,
                actor,
                &wid,
                &asset.id,
                asset.state.as_str(),
                WorkflowKind::Wipe,
                &json!({"method": method.as_str(), "cluster_id": c.id}),
                &plan::wipe(method),
            )
            .await?;
            lifecycle::transition(
                &mut tx,
                actor,
                &asset,
                LifecycleEvent::WipeStarted,
                &format!("left cluster {} (deleted): wiped by workflow {wid}", c.name),
                Some(&wid),
            )
            .await?;
            wipes.push(json!({"assetId": asset.id, "workflowId": wid}));
        }
        audit::append(
            &mut tx,
            actor,
            Event::new("cluster.delete", "cluster", &c.id).with_details(json!({
                "name": c.name, "wipe_workflows": wipes, "released_addresses": released,
            })),
        )
        .await?;
        tx.commit().await?;
        self.workflow_wake.notify_one();
        Ok(DeletedCluster {
            id: c.id,
            name: c.name,
            state: "deleted".into(),
            wipe_workflows: wipes,
            released_addresses: released,
        })
    }

    /// `GET /api/v1/clusters/{id}/kubeconfig`: the admin kubeconfig, made now from the cluster's
    /// Kubernetes CA (a fresh client certificate each time), once the cluster is ready. Audited.
    pub async fn cluster_kubeconfig(&self, actor: &Actor, id: &str) -> Result<String> {
        actor.require(Scope::ClustersRead)?;
        let c = self.load_cluster(id).await?;
        if c.state != "ready" {
            return Err(Error::conflict(
                "CLUSTER_NOT_READY",
                format!("cluster {} is {}: its kubeconfig is served once it is ready", c.name, c.state),
                Some(json!({"state": c.state, "workflow_id": c.workflow_id})),
            ));
        }
        let secrets = self.cluster_secrets(&c)?;
        let text = access::admin_kubeconfig(&c.name, &c.endpoint, &secrets.k8s_ca).map_err(talos_error)?;
        audit::record(
            &self.store,
            actor,
            Event::new("cluster.read_kubeconfig", "cluster", &c.id).with_details(json!({"name": c.name})),
        )
        .await?;
        Ok(text)
    }

    /// `GET /api/v1/clusters/{id}/talosconfig`: talosctl's config (endpoints: the control planes),
    /// with a fresh os:admin certificate. Served from creation on (it is what debugs a stuck
    /// install). Audited.
    pub async fn cluster_talosconfig(&self, actor: &Actor, id: &str) -> Result<String> {
        actor.require(Scope::ClustersRead)?;
        let c = self.load_cluster(id).await?;
        let members = self.store.cluster_members(&c.id).await?;
        let endpoints: Vec<String> =
            members.iter().filter(|m| m.role == "controlplane").map(|m| m.address.clone()).collect();
        let nodes: Vec<String> = members.iter().map(|m| m.address.clone()).collect();
        let secrets = self.cluster_secrets(&c)?;
        let text = access::talosconfig(&c.name, &endpoints, &nodes, &secrets.os_ca).map_err(talos_error)?;
        audit::record(
            &self.store,
            actor,
            Event::new("cluster.read_talosconfig", "cluster", &c.id).with_details(json!({"name": c.name})),
        )
        .await?;
        Ok(text)
    }

    /// `GET /talos/config?uuid=`: the machine config of the member whose SMBIOS UUID this is,
    /// while its install runs; `None` (404) for anyone else. Unauthenticated, as Talos fetches it.
    /// An asset whose UUID was never recorded (registered by hand, never inventoried) is matched by
    /// the asking machine's MAC instead.
    pub async fn talos_machine_config(
        &self,
        uuid: &str,
        peer: Option<IpAddr>,
        peer_mac: Option<crate::model::Mac>,
    ) -> Result<Option<String>> {
        let Some(uuid) = crate::boot::script::parse_uuid(uuid) else { return Ok(None) };
        let mut found = None;
        for form in uuid_forms(&uuid) {
            if let Some(a) = self.store.asset_by_uuid(&form).await? {
                found = Some(a);
                break;
            }
        }
        if found.is_none()
            && let Some(mac) = peer_mac
            && let Some(a) = self.store.asset_by_mac(&mac).await?
            && a.smbios_uuid.is_none()
        {
            found = Some(a);
        }
        let Some(asset) = found else {
            tracing::info!(%uuid, peer = ?peer, "talos config asked for an unknown UUID");
            return Ok(None);
        };
        let Some(member) = self.store.member_of_asset(&asset.id).await? else { return Ok(None) };
        let active = self
            .store
            .workflow_get(&member.workflow_id)
            .await?
            .is_some_and(|w| matches!(w.state.as_str(), "pending" | "running"));
        if !active || member.installed_at.is_some() {
            return Ok(None);
        }
        let Some(cluster) = self.store.cluster_get(&member.cluster_id).await? else { return Ok(None) };
        let settings: ClusterSettings = serde_json::from_str(&cluster.settings).map_err(Error::internal)?;
        let node: NodeSettings = serde_json::from_str(&member.node).map_err(Error::internal)?;
        let secrets = self.cluster_secrets(&cluster)?;
        let text = machine_config(&settings, &node, &secrets).map_err(talos_error)?;
        self.store.member_config_served(&asset.id, &now_rfc3339()).await?;
        let _ = audit::record(
            &self.store,
            &Actor::system(),
            Event::new("cluster.serve_config", "cluster", &cluster.id).with_details(json!({
                "asset_id": asset.id, "role": member.role, "peer": peer.map(|p| p.to_string()),
            })),
        )
        .await;
        self.workflow_wake.notify_one();
        Ok(Some(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_normalised_and_only_1_13_is_rendered() {
        assert_eq!(talos_version(Some("1.13.2")).unwrap(), "v1.13.2");
        assert_eq!(talos_version(None).unwrap(), DEFAULT_TALOS_VERSION);
        assert!(matches!(
            talos_version(Some("v1.14.0")),
            Err(Error::Unprocessable { code: "UNSUPPORTED_TALOS_VERSION", .. })
        ));
        assert!(talos_version(Some("latest")).is_err());
        assert_eq!(kubernetes_version(Some("1.35.0")).unwrap(), "v1.35.0");
    }

    #[test]
    fn subnets_and_endpoints_parse() {
        let ip: IpAddr = "10.0.0.5".parse().unwrap();
        assert_eq!(prefix_of("subnet", "24", ip).unwrap(), 24);
        assert_eq!(prefix_of("subnet", "/26", ip).unwrap(), 26);
        assert_eq!(prefix_of("subnet", "255.255.255.0", ip).unwrap(), 24);
        assert!(prefix_of("subnet", "255.0.255.0", ip).is_err());
        assert!(prefix_of("subnet", "33", ip).is_err());
        assert_eq!(
            endpoint_of("10.0.0.50").unwrap(),
            ("https://10.0.0.50:6443".into(), Some("10.0.0.50".parse().unwrap()))
        );
        assert_eq!(endpoint_of("https://k8s.example:443").unwrap(), ("https://k8s.example:443".into(), None));
        assert!(endpoint_of("https://x/y").is_err());
    }

    #[test]
    fn uuids_match_in_both_byte_orders() {
        let [a, b] = uuid_forms("03020100-0504-0706-0809-0a0b0c0d0e0f");
        assert_eq!(a, "03020100-0504-0706-0809-0a0b0c0d0e0f");
        assert_eq!(b, "00010203-0405-0607-0809-0a0b0c0d0e0f");
    }
}
