//! Bringing up the network at boot: busybox `udhcpc` on each wired interface in turn until one
//! gets a lease. The image's `/etc/udhcpc.script` configures the address and writes `ip=`,
//! `mask=`, `router=` and `interface=` lines to `/run/dhcp.env`.

use std::path::Path;
use std::process::Command;

const LEASE_FILE: &str = "/run/dhcp.env";
const SCRIPT: &str = "/etc/udhcpc.script";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub interface: String,
    pub ip: String,
    pub mac: Option<String>,
}

/// Interfaces backed by a device (not lo, bridges or tunnels), by name.
pub fn wired_interfaces(sys_class_net: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(sys_class_net)
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().join("device").exists())
                .map(|e| e.file_name().to_string_lossy().to_string())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Parses `/run/dhcp.env`.
pub fn parse_lease(text: &str, interface: &str) -> Option<Lease> {
    let ip = text.lines().find_map(|l| l.strip_prefix("ip="))?.trim().to_string();
    (!ip.is_empty()).then(|| Lease { interface: interface.to_string(), ip, mac: None })
}

pub fn bring_up() -> Result<Lease, String> {
    let _ = Command::new("ip").args(["link", "set", "lo", "up"]).status();
    let interfaces = wired_interfaces(Path::new("/sys/class/net"));
    if interfaces.is_empty() {
        return Err("no network interface (is its driver in the image?)".into());
    }
    for ifname in &interfaces {
        let _ = std::fs::remove_file(LEASE_FILE);
        let _ = Command::new("ip").args(["link", "set", ifname, "up"]).status();
        eprintln!("ironbay-agent: DHCP on {ifname}");
        let ok = Command::new("udhcpc")
            .args(["-i", ifname, "-s", SCRIPT, "-n", "-q", "-t", "10", "-T", "2"])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok {
            continue;
        }
        if let Some(mut lease) = std::fs::read_to_string(LEASE_FILE).ok().and_then(|t| parse_lease(&t, ifname)) {
            lease.mac =
                std::fs::read_to_string(format!("/sys/class/net/{ifname}/address")).ok().map(|m| m.trim().to_string());
            return Ok(lease);
        }
    }
    Err(format!("no DHCP lease on any of {}", interfaces.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_file_gives_the_address() {
        let l = parse_lease("ip=10.9.0.50\nmask=24\nrouter=10.9.0.1\n", "ens3").unwrap();
        assert_eq!((l.interface.as_str(), l.ip.as_str()), ("ens3", "10.9.0.50"));
        assert_eq!(parse_lease("mask=24\n", "x"), None);
    }
}
