//! The slice of a Talos v1alpha1 machine config the stand-in reads (TEST STAND-IN, not Talos):
//! the machine type, the OS CA (`machine.ca.crt` / `machine.ca.key`, base64 of PEM text; workers
//! have `key: ""`), the install disk and image, registry mirrors, the static network settings and
//! the hostname — in the Talos 1.13 documents ironbay writes (`RegistryMirrorConfig`,
//! `HostnameConfig`, `LinkAliasConfig` + `LinkConfig`) or the legacy v1alpha1 fields
//! (`machine.registries.mirrors`, `machine.network.{interfaces,hostname}`).
//!
//! Parsing is lenient: unlike Talos it does not reject unknown fields (ironbay's own tests check the
//! generated config against Talos's key set and schema).

use std::collections::BTreeMap;
use std::net::IpAddr;

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine as _;
use serde::Deserialize;
use yaml_serde::Value;

/// `machine.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MachineType {
    ControlPlane,
    Worker,
}

impl MachineType {
    pub fn as_str(self) -> &'static str {
        match self {
            MachineType::ControlPlane => "controlplane",
            MachineType::Worker => "worker",
        }
    }
}

/// How a `machine.network.interfaces[]` item picks its link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkSelector {
    /// `deviceSelector.hardwareAddr` (compared case-insensitively).
    HardwareAddr(String),
    /// `deviceSelector.physical: true`: the first physical NIC.
    Physical,
    /// `interface: eth0`.
    Name(String),
}

/// One `machine.network.interfaces[]` item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    pub selector: LinkSelector,
    /// CIDR strings, e.g. `10.0.0.5/24`.
    pub addresses: Vec<String>,
    /// `(network, gateway)` pairs, e.g. `("0.0.0.0/0", "10.0.0.1")`.
    pub routes: Vec<(String, String)>,
    pub dhcp: bool,
}

/// What the stand-in needs from a machine config.
#[derive(Debug, Clone)]
pub struct MachineConfig {
    pub machine_type: MachineType,
    /// PEM text of the OS CA certificate.
    pub ca_crt_pem: String,
    /// PEM text of the OS CA key; `None` on workers (`key: ""`).
    pub ca_key_pem: Option<String>,
    pub install_disk: Option<String>,
    pub install_image: Option<String>,
    /// registry host -> mirror endpoints.
    pub mirrors: BTreeMap<String, Vec<String>>,
    pub interfaces: Vec<Interface>,
    pub hostname: Option<String>,
}

#[derive(Deserialize)]
struct CaYaml {
    #[serde(default)]
    crt: String,
    #[serde(default)]
    key: String,
}

fn b64_pem(field: &str, value: &str) -> Result<String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .with_context(|| format!("{field} is not base64"))?;
    String::from_utf8(bytes).with_context(|| format!("{field} is not PEM text"))
}

fn get<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    let mut cur = v;
    for key in path {
        cur = cur.as_mapping()?.get(*key)?;
    }
    Some(cur)
}

fn get_str(v: &Value, path: &[&str]) -> Option<String> {
    get(v, path).and_then(Value::as_str).map(str::to_owned).filter(|s| !s.is_empty())
}

impl MachineConfig {
    /// Parses a (possibly multi-document) machine config.
    pub fn parse(text: &str) -> Result<MachineConfig> {
        let mut docs = Vec::new();
        for doc in yaml_serde::Deserializer::from_str(text) {
            let v = Value::deserialize(doc).context("machine config is not valid YAML")?;
            if !v.is_null() {
                docs.push(v);
            }
        }
        let main = docs
            .iter()
            .find(|d| get(d, &["machine"]).is_some())
            .ok_or_else(|| anyhow!("no v1alpha1 document with a `machine` section"))?;

        let machine_type = match get_str(main, &["machine", "type"]).as_deref() {
            Some("controlplane") | Some("init") => MachineType::ControlPlane,
            Some("worker") => MachineType::Worker,
            other => bail!("machine.type {other:?} is not controlplane or worker"),
        };
        let ca: CaYaml = yaml_serde::from_value(
            get(main, &["machine", "ca"]).cloned().ok_or_else(|| anyhow!("machine.ca is missing"))?,
        )
        .context("machine.ca")?;
        if ca.crt.is_empty() {
            bail!("machine.ca.crt is empty");
        }
        let ca_crt_pem = b64_pem("machine.ca.crt", &ca.crt)?;
        let ca_key_pem = if ca.key.trim().is_empty() { None } else { Some(b64_pem("machine.ca.key", &ca.key)?) };

        let mut mirrors = BTreeMap::new();
        if let Some(m) = get(main, &["machine", "registries", "mirrors"]).and_then(Value::as_mapping) {
            for (k, v) in m {
                let Some(reg) = k.as_str() else { continue };
                let endpoints = get(v, &["endpoints"])
                    .and_then(Value::as_sequence)
                    .map(|s| s.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                    .unwrap_or_default();
                mirrors.insert(reg.to_owned(), endpoints);
            }
        }

        let mut interfaces = Vec::new();
        if let Some(items) = get(main, &["machine", "network", "interfaces"]).and_then(Value::as_sequence) {
            for item in items {
                interfaces.push(parse_interface(item)?);
            }
        }

        let of_kind = |kind: &'static str| docs.iter().filter(move |d| get_str(d, &["kind"]).as_deref() == Some(kind));
        for d in of_kind("RegistryMirrorConfig") {
            let Some(reg) = get_str(d, &["name"]) else { continue };
            let endpoints: Vec<String> = get(d, &["endpoints"])
                .and_then(Value::as_sequence)
                .map(|s| s.iter().filter_map(|e| get_str(e, &["url"])).collect())
                .unwrap_or_default();
            mirrors.insert(reg, endpoints);
        }
        // LinkAliasConfig names a link by a CEL selector; the stand-in understands the MAC
        // comparison ironbay writes (`mac(link.permanent_addr) == "aa:…"`).
        for link in of_kind("LinkConfig") {
            let name = get_str(link, &["name"]).unwrap_or_default();
            let alias = of_kind("LinkAliasConfig").find(|a| get_str(a, &["name"]).as_deref() == Some(name.as_str()));
            let selector = match alias.and_then(|a| get_str(a, &["selector", "match"])) {
                Some(expr) => match expr.split('"').nth(1) {
                    Some(mac) if mac.len() == 17 => LinkSelector::HardwareAddr(mac.to_owned()),
                    _ => LinkSelector::Physical,
                },
                None if alias.is_some() => LinkSelector::Physical,
                None => LinkSelector::Name(name.clone()),
            };
            let addresses = get(link, &["addresses"])
                .and_then(Value::as_sequence)
                .map(|s| s.iter().filter_map(|a| get_str(a, &["address"])).collect())
                .unwrap_or_default();
            let routes = get(link, &["routes"])
                .and_then(Value::as_sequence)
                .map(|rs| {
                    rs.iter()
                        .filter_map(|r| {
                            let gw = get_str(r, &["gateway"])?;
                            Some((get_str(r, &["destination"]).unwrap_or_else(|| "0.0.0.0/0".to_owned()), gw))
                        })
                        .collect()
                })
                .unwrap_or_default();
            interfaces.push(Interface { selector, addresses, routes, dhcp: false });
        }

        let hostname = docs
            .iter()
            .filter(|d| get_str(d, &["kind"]).as_deref() == Some("HostnameConfig"))
            .find_map(|d| get_str(d, &["hostname"]))
            .or_else(|| get_str(main, &["machine", "network", "hostname"]));

        Ok(MachineConfig {
            machine_type,
            ca_crt_pem,
            ca_key_pem,
            install_disk: get_str(main, &["machine", "install", "disk"]),
            install_image: get_str(main, &["machine", "install", "image"]),
            mirrors,
            interfaces,
            hostname,
        })
    }

    /// The first static address (`addresses[0]` of the first interface that has one), as
    /// `(ip, prefix length)`.
    pub fn static_address(&self) -> Option<(IpAddr, u8)> {
        self.interfaces.iter().flat_map(|i| i.addresses.iter()).find_map(|a| parse_cidr(a).ok())
    }
}

fn parse_interface(item: &Value) -> Result<Interface> {
    let selector = if let Some(mac) = get_str(item, &["deviceSelector", "hardwareAddr"]) {
        LinkSelector::HardwareAddr(mac)
    } else if get(item, &["deviceSelector", "physical"]).and_then(Value::as_bool) == Some(true) {
        LinkSelector::Physical
    } else if let Some(name) = get_str(item, &["interface"]) {
        LinkSelector::Name(name)
    } else {
        bail!("machine.network.interfaces item has no deviceSelector or interface");
    };
    let addresses = get(item, &["addresses"])
        .and_then(Value::as_sequence)
        .map(|s| s.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default();
    let mut routes = Vec::new();
    if let Some(rs) = get(item, &["routes"]).and_then(Value::as_sequence) {
        for r in rs {
            let network = get_str(r, &["network"]).unwrap_or_else(|| "0.0.0.0/0".to_owned());
            if let Some(gw) = get_str(r, &["gateway"]) {
                routes.push((network, gw));
            }
        }
    }
    Ok(Interface { selector, addresses, routes, dhcp: get(item, &["dhcp"]).and_then(Value::as_bool).unwrap_or(false) })
}

/// `10.0.0.5/24` -> (10.0.0.5, 24).
pub fn parse_cidr(s: &str) -> Result<(IpAddr, u8)> {
    let (ip, prefix) = s.split_once('/').ok_or_else(|| anyhow!("{s:?} is not address/prefix"))?;
    let ip: IpAddr = ip.parse().with_context(|| format!("{s:?}: bad address"))?;
    let prefix: u8 = prefix.parse().with_context(|| format!("{s:?}: bad prefix"))?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    if prefix > max {
        bail!("{s:?}: prefix too long");
    }
    Ok((ip, prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    pub(crate) fn sample(kind: &str, key: &str) -> String {
        format!(
            "version: v1alpha1\nmachine:\n  type: {kind}\n  ca:\n    crt: {}\n    key: \"{}\"\n  install:\n    disk: /dev/vda\n    image: ghcr.io/siderolabs/installer:v1.13.9\n  registries:\n    mirrors:\n      ghcr.io:\n        endpoints: [\"http://10.0.0.1:8080/v2/ghcr\"]\n  network:\n    interfaces:\n      - deviceSelector: {{hardwareAddr: \"52:54:00:AA:bb:01\"}}\n        addresses: [\"10.0.0.5/24\"]\n        routes: [{{network: 0.0.0.0/0, gateway: 10.0.0.1}}]\n        dhcp: false\n---\napiVersion: v1alpha1\nkind: HostnameConfig\nhostname: cp-1\n",
            b64("-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n"),
            key
        )
    }

    #[test]
    fn parses_multi_document_controlplane() {
        let c = MachineConfig::parse(&sample("controlplane", &b64("KEY"))).unwrap();
        assert_eq!(c.machine_type, MachineType::ControlPlane);
        assert!(c.ca_crt_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert_eq!(c.ca_key_pem.as_deref(), Some("KEY"));
        assert_eq!(c.install_disk.as_deref(), Some("/dev/vda"));
        assert_eq!(c.hostname.as_deref(), Some("cp-1"));
        assert_eq!(c.mirrors["ghcr.io"], vec!["http://10.0.0.1:8080/v2/ghcr".to_owned()]);
        assert_eq!(c.interfaces[0].selector, LinkSelector::HardwareAddr("52:54:00:AA:bb:01".into()));
        assert_eq!(c.interfaces[0].routes, vec![("0.0.0.0/0".to_owned(), "10.0.0.1".to_owned())]);
        assert_eq!(c.static_address(), Some(("10.0.0.5".parse().unwrap(), 24)));
    }

    #[test]
    fn worker_has_no_ca_key() {
        let c = MachineConfig::parse(&sample("worker", "")).unwrap();
        assert_eq!(c.machine_type, MachineType::Worker);
        assert!(c.ca_key_pem.is_none());
    }

    #[test]
    fn hostname_from_network_section() {
        let text = sample("worker", "")
            .replace("    interfaces:", "    hostname: w-9\n    interfaces:")
            .replace("hostname: cp-1\n", "auto: stable\n");
        let c = MachineConfig::parse(&text).unwrap();
        assert_eq!(c.hostname.as_deref(), Some("w-9"));
    }

    #[test]
    fn rejects_bad_type_and_missing_machine() {
        assert!(MachineConfig::parse(&sample("banana", "")).is_err());
        assert!(MachineConfig::parse("kind: HostnameConfig\nhostname: x\n").is_err());
    }

    /// The Talos 1.13 layout ironbay writes: mirrors, hostname, link alias and link as documents.
    #[test]
    fn reads_the_1_13_documents() {
        let base = sample("controlplane", "");
        let main = base.split("\n---").next().unwrap();
        let text = format!(
            "{main}\n---\napiVersion: v1alpha1\nkind: RegistryMirrorConfig\nname: ghcr.io\nendpoints:\n- url: http://10.9.0.1:5000\n\
             ---\napiVersion: v1alpha1\nkind: HostnameConfig\nauto: \"off\"\nhostname: cp-7\n\
             ---\napiVersion: v1alpha1\nkind: LinkAliasConfig\nname: net0\nselector:\n  match: mac(link.permanent_addr) == \"52:54:00:aa:bb:07\" || mac(link.hardware_addr) == \"52:54:00:aa:bb:07\"\n\
             ---\napiVersion: v1alpha1\nkind: LinkConfig\nname: net0\naddresses:\n- address: 10.9.0.17/24\nroutes:\n- gateway: 10.9.0.1\n"
        );
        let c = MachineConfig::parse(&text).unwrap();
        assert_eq!(c.hostname.as_deref(), Some("cp-7"));
        assert_eq!(c.mirrors.get("ghcr.io").map(Vec::as_slice), Some(&["http://10.9.0.1:5000".to_string()][..]));
        let link = c.interfaces.iter().find(|i| i.addresses == ["10.9.0.17/24"]).expect("the LinkConfig");
        assert_eq!(link.selector, LinkSelector::HardwareAddr("52:54:00:aa:bb:07".into()));
        assert_eq!(link.routes, [("0.0.0.0/0".to_string(), "10.9.0.1".to_string())]);
    }
}
