//! Network interfaces: every `/sys/class/net` entry with a `device` link (a physical or
//! paravirtual NIC), so neither loopback nor bridges, bonds, veths, tunnels or VLANs.
//!
//! `speed` and `carrier` fail with EINVAL while the interface is down and `speed` is -1 when the
//! driver does not know it: all of those are `None`.

use std::fs;
use std::path::Path;

use super::{Nic, read_bool, read_num, read_str};

pub fn read(root: &Path) -> Vec<Nic> {
    let dir = root.join("sys/class/net");
    let Ok(entries) = fs::read_dir(&dir) else { return Vec::new() };
    let mut names: Vec<String> = entries.flatten().filter_map(|e| e.file_name().into_string().ok()).collect();
    names.sort();
    names.iter().filter(|n| n.as_str() != "lo").filter_map(|n| read_nic(&dir.join(n), n)).collect()
}

fn read_nic(sys: &Path, name: &str) -> Option<Nic> {
    if fs::symlink_metadata(sys.join("device")).is_err() {
        return None;
    }
    // An interface without an address cannot be told apart from another: not one to report.
    let mac = read_str(&sys.join("address"))?.to_ascii_lowercase();
    let driver = fs::read_link(sys.join("device/driver"))
        .ok()
        .and_then(|t| t.file_name().map(|n| n.to_string_lossy().into_owned()))
        .filter(|d| !d.is_empty());
    let speed_mbps = read_num::<i64>(&sys.join("speed")).filter(|&s| s > 0).and_then(|s| u32::try_from(s).ok());
    Some(Nic {
        name: name.to_string(),
        mac,
        driver,
        link: read_str(&sys.join("operstate")),
        speed_mbps,
        carrier: read_bool(&sys.join("carrier")),
    })
}
