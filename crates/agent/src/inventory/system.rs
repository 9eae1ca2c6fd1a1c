//! SMBIOS identity and firmware, from `/sys/class/dmi/id` (the kernel's DMI decode, readable
//! without dmidecode). Firmware is UEFI iff `/sys/firmware/efi` exists.
//!
//! Vendors leave template strings in unset SMBIOS fields ("To Be Filled By O.E.M.", "Default
//! string", "Not Specified", a UUID of 03000200-0400-0500-0006-000700080009...). They are read as
//! `None`: a placeholder is not an identity, and hundreds of boards share it.

use std::path::Path;

use super::{Firmware, FirmwareKind, System, read_str};

/// SMBIOS strings that mean "not set" (compared case-insensitively).
const PLACEHOLDERS: &[&str] = &[
    "to be filled by o.e.m.",
    "to be filled by oem",
    "default string",
    "not specified",
    "not applicable",
    "not available",
    "system serial number",
    "system product name",
    "system manufacturer",
    "chassis serial number",
    "base board serial number",
    "none",
    "n/a",
    "na",
    "unknown",
    "0123456789",
    "123456789",
    "0",
    "00000000",
    "xxxxxxxxxxxx",
];

/// UUIDs that mean "not set".
const PLACEHOLDER_UUIDS: &[&str] = &[
    "00000000-0000-0000-0000-000000000000",
    "ffffffff-ffff-ffff-ffff-ffffffffffff",
    "03000200-0400-0500-0006-000700080009",
];

pub fn read(root: &Path) -> (System, Firmware) {
    let dmi = root.join("sys/class/dmi/id");
    let get = |name: &str| read_str(&dmi.join(name)).filter(|v| !is_placeholder(v));
    let system = System {
        vendor: get("sys_vendor"),
        product: get("product_name"),
        serial: get("product_serial"),
        uuid: get("product_uuid").map(|u| u.to_ascii_lowercase()).filter(|u| !PLACEHOLDER_UUIDS.contains(&u.as_str())),
        board_vendor: get("board_vendor"),
        board_product: get("board_name"),
        board_serial: get("board_serial"),
        chassis_serial: get("chassis_serial"),
    };
    let kind = if root.join("sys/firmware/efi").exists() { FirmwareKind::Uefi } else { FirmwareKind::Bios };
    let firmware = Firmware { kind, vendor: get("bios_vendor"), version: get("bios_version"), date: get("bios_date") };
    (system, firmware)
}

fn is_placeholder(value: &str) -> bool {
    let v = value.to_ascii_lowercase();
    PLACEHOLDERS.contains(&v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_not_values() {
        assert!(is_placeholder("To Be Filled By O.E.M."));
        assert!(is_placeholder("Default string"));
        assert!(!is_placeholder("PowerEdge R650"));
        assert!(!is_placeholder("CZ2D1234XY"));
    }
}
