//! What the machine is: SMBIOS identity and firmware ([`system`]), CPUs ([`cpu`]), memory
//! ([`memory`]), disks ([`disks`]), network interfaces ([`nics`]) and the BMC ([`bmc`]), read from
//! /sys, /proc and /dev. Every reader works under a root directory so tests run it on fixture
//! trees; [`collect`] is the same with `/`.
//!
//! Collecting blocks (file reads, and IPMI requests that may wait up to a few seconds on a slow
//! BMC): from async code, call it in `spawn_blocking`.
//!
//! Nothing here fails: what cannot be read is `None` (or 0 for counts), never a guess and never
//! an empty string.

pub mod bmc;
pub mod cpu;
pub mod disks;
pub mod memory;
pub mod nics;
pub mod system;

use std::path::Path;

pub use ironbay_wire::inventory::{Bmc, Cpu, Disk, Firmware, FirmwareKind, Inventory, Memory, Nic, System};

/// The running machine's inventory (reads the real /sys, /proc and /dev).
pub fn collect() -> Inventory {
    collect_from(Path::new("/"))
}

/// The inventory of the tree under `root` (`<root>/sys`, `<root>/proc`, `<root>/dev`).
pub fn collect_from(root: &Path) -> Inventory {
    let (system, firmware) = system::read(root);
    Inventory {
        system,
        firmware,
        cpu: cpu::read(root),
        memory: memory::read(root),
        disks: disks::read(root),
        nics: nics::read(root),
        bmc: bmc::read(root),
        kernel: read_str(&root.join("proc/sys/kernel/osrelease")),
    }
}

/// The disks under `root` (`<root>/sys/block`), sorted by name.
pub fn disks_from(root: &Path) -> Vec<Disk> {
    disks::read(root)
}

/// A sysfs/procfs attribute as a string: trimmed (whitespace and NULs), `None` when the file
/// cannot be read or holds nothing.
pub(crate) fn read_str(path: &Path) -> Option<String> {
    let bytes = std::fs::read(path).ok()?;
    non_empty(&String::from_utf8_lossy(&bytes))
}

/// A trimmed string, `None` when nothing is left.
pub(crate) fn non_empty(s: &str) -> Option<String> {
    let t = s.trim_matches(|c: char| c.is_whitespace() || c == '\0');
    (!t.is_empty()).then(|| t.to_string())
}

/// A numeric attribute (`None` when unreadable, e.g. `speed` of a down link fails with EINVAL).
pub(crate) fn read_num<T: std::str::FromStr>(path: &Path) -> Option<T> {
    read_str(path)?.parse().ok()
}

/// A 0/1 attribute.
pub(crate) fn read_bool(path: &Path) -> Option<bool> {
    match read_str(path)?.as_str() {
        "0" => Some(false),
        "1" => Some(true),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
