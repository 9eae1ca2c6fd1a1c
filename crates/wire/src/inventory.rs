//! The machine as the agent sees it (from /sys, /proc and SMBIOS). Every field an agent cannot
//! read is `None`, never a guess: a missing serial is not an empty one.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Inventory {
    pub system: System,
    pub firmware: Firmware,
    pub cpu: Cpu,
    pub memory: Memory,
    /// Every block device that is a disk (no partitions, loop, ram or zram devices), by name.
    pub disks: Vec<Disk>,
    /// Every network interface but loopback, by name.
    pub nics: Vec<Nic>,
    /// The BMC seen through `ipmi_si` (`/dev/ipmi0`), when there is one.
    pub bmc: Option<Bmc>,
    /// `uname -r` of the agent's kernel.
    pub kernel: Option<String>,
}

/// SMBIOS system information (`/sys/class/dmi/id`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct System {
    pub vendor: Option<String>,
    pub product: Option<String>,
    pub serial: Option<String>,
    /// Lowercase.
    pub uuid: Option<String>,
    pub board_vendor: Option<String>,
    pub board_product: Option<String>,
    pub board_serial: Option<String>,
    pub chassis_serial: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FirmwareKind {
    #[default]
    Bios,
    Uefi,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Firmware {
    /// `uefi` when `/sys/firmware/efi` exists, else `bios`.
    pub kind: FirmwareKind,
    pub vendor: Option<String>,
    pub version: Option<String>,
    pub date: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Cpu {
    pub model: Option<String>,
    /// `x86_64`, `aarch64`, ...
    pub arch: String,
    pub sockets: u32,
    /// Physical cores, all sockets.
    pub cores: u32,
    /// Logical CPUs (hardware threads), all sockets.
    pub threads: u32,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Memory {
    /// `MemTotal` from /proc/meminfo, in bytes.
    pub total_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Disk {
    /// Kernel name: `sda`, `nvme0n1`, `vda`.
    pub name: String,
    /// `/dev/<name>`.
    pub path: String,
    pub size_bytes: u64,
    pub model: Option<String>,
    pub serial: Option<String>,
    /// World wide name (`/sys/block/<name>/device/wwid` or `wwn`), when the device has one.
    pub wwn: Option<String>,
    pub rotational: bool,
    pub removable: bool,
    pub read_only: bool,
    /// `sata`, `sas`, `nvme`, `virtio`, `usb`, `scsi`, ... (None when unknown).
    pub transport: Option<String>,
    /// `gpt`, `dos` (MBR), or None when the disk has no partition table.
    pub partition_table: Option<String>,
    /// Virtual media a BMC presents (an ISO or floppy image over USB): never wiped or written.
    pub virtual_media: bool,
    pub logical_block_size: u32,
    pub physical_block_size: u32,
}

impl Disk {
    /// Why the agent must not wipe or write this disk, if it must not.
    pub fn protected_reason(&self) -> Option<&'static str> {
        if self.read_only {
            Some("read-only")
        } else if self.virtual_media {
            Some("virtual media")
        } else if self.removable {
            Some("removable")
        } else {
            None
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Nic {
    pub name: String,
    /// Lowercase, colon-separated.
    pub mac: String,
    pub driver: Option<String>,
    /// `operstate`: `up`, `down`, `unknown`, ...
    pub link: Option<String>,
    /// Mbit/s, when the link reports one.
    pub speed_mbps: Option<u32>,
    pub carrier: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Bmc {
    /// The BMC's LAN address, when the agent could read it.
    pub ip_address: Option<String>,
    pub mac: Option<String>,
    pub firmware_version: Option<String>,
    pub manufacturer_id: Option<u32>,
}
