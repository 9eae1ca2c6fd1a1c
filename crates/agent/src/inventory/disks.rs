//! Disks: every `/sys/block` entry but the kernel's virtual devices (loop, ram, zram, dm-, md,
//! nbd, anything under `/sys/devices/virtual` but multipath NVMe namespaces). An optical drive or card reader with no medium
//! (size 0) is still listed: it is removable, so it is reported and protected.
//!
//! - size: `size` is in 512-byte sectors whatever the logical block size;
//! - model / serial: `device/model`; `device/serial` (NVMe, MMC), `serial` (virtio-blk) or the
//!   unit serial number VPD page `device/vpd_pg80` (SCSI, SATA behind libata, SAS, USB storage);
//! - wwn: `device/wwid`, `wwid` (NVMe namespaces) or `device/wwn`;
//! - transport: from the device's sysfs path (see [`transport`]);
//! - partition table: the first sectors of `<root>/dev/<name>` (see [`partition_table`]);
//! - virtual media: see [`is_virtual_media`].

use std::fs;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::{Disk, non_empty, read_bool, read_num, read_str};

/// Kernel name prefixes of virtual block devices.
const VIRTUAL: &[&str] = &["loop", "ram", "zram", "dm-", "md", "nbd"];

pub fn read(root: &Path) -> Vec<Disk> {
    let Ok(entries) = fs::read_dir(root.join("sys/block")) else { return Vec::new() };
    let mut names: Vec<String> = entries.flatten().filter_map(|e| e.file_name().into_string().ok()).collect();
    names.sort();
    names.iter().filter_map(|name| read_disk(root, name)).collect()
}

fn read_disk(root: &Path, name: &str) -> Option<Disk> {
    if VIRTUAL.iter().any(|p| name.starts_with(p)) {
        return None;
    }
    let sys = root.join("sys/block").join(name);
    let real = sysfs_path(root, &sys).unwrap_or_default();
    // NVMe namespaces under native multipath (Debian's default) live under
    // /sys/devices/virtual/nvme-subsystem/ and are real disks.
    if real.contains("/devices/virtual/") && !real.contains("/nvme-subsystem/") {
        return None;
    }
    let dev = sys.join("device");
    let size_bytes = read_num::<u64>(&sys.join("size")).unwrap_or(0).saturating_mul(512);
    let removable = read_bool(&sys.join("removable")).unwrap_or(false);
    let vendor = read_str(&dev.join("vendor"));
    let model = read_str(&dev.join("model"));
    let serial = read_str(&dev.join("serial"))
        .or_else(|| read_str(&sys.join("serial")))
        .or_else(|| fs::read(dev.join("vpd_pg80")).ok().and_then(|b| vpd_serial(&b)));
    let wwn =
        read_str(&dev.join("wwid")).or_else(|| read_str(&sys.join("wwid"))).or_else(|| read_str(&dev.join("wwn")));
    let logical_block_size = read_num(&sys.join("queue/logical_block_size")).unwrap_or(512);
    let physical_block_size = read_num(&sys.join("queue/physical_block_size")).unwrap_or(logical_block_size);
    // The device's own path (the `device` link) says more than the block node's; a disk without
    // one (rare) falls back to the block node's.
    let dev_path = sysfs_path(root, &dev).unwrap_or(real);
    let transport = transport(&dev_path, &dev);
    let virtual_media = transport.as_deref() == Some("usb") && is_virtual_media(vendor.as_deref(), model.as_deref());
    let partition_table =
        if size_bytes > 0 { partition_table(&root.join("dev").join(name), logical_block_size) } else { None };
    Some(Disk {
        name: name.to_string(),
        path: format!("/dev/{name}"),
        size_bytes,
        model,
        serial,
        wwn,
        rotational: read_bool(&sys.join("queue/rotational")).unwrap_or(false),
        removable,
        read_only: read_bool(&sys.join("ro")).unwrap_or(false),
        transport,
        partition_table,
        virtual_media,
        logical_block_size,
        physical_block_size,
    })
}

/// `path` with its symlinks resolved, relative to `root` (`/sys/devices/...`).
fn sysfs_path(root: &Path, path: &Path) -> Option<String> {
    let real = fs::canonicalize(path).ok()?;
    let root = fs::canonicalize(root).ok()?;
    let rel = real.strip_prefix(&root).ok()?;
    Some(format!("/{}", rel.to_string_lossy()))
}

/// The bus a disk hangs off, from its sysfs device path: `.../virtio3/...` is virtio (virtio-blk
/// and virtio-scsi), `.../nvme/...` NVMe, `.../usb2/...` USB, `.../ata1/...` SATA (libata),
/// `.../host0/port-0:0/end_device-0:0/...` (or a `sas_address`) SAS, `.../mmc_host/...` MMC, any
/// other device with `scsi_*` attributes SCSI.
pub fn transport(dev_path: &str, dev: &Path) -> Option<String> {
    let t = if dev_path.contains("/virtio") {
        "virtio"
    } else if dev_path.contains("/nvme") {
        "nvme"
    } else if dev_path.contains("/usb") {
        "usb"
    } else if dev_path.contains("/ata") {
        "sata"
    } else if dev_path.contains("/end_device-") || dev_path.contains("/sas_") || dev.join("sas_address").exists() {
        "sas"
    } else if dev_path.contains("/mmc_host/") || dev_path.contains("/mmc") {
        "mmc"
    } else if has_scsi_attributes(dev) {
        "scsi"
    } else {
        return None;
    };
    Some(t.to_string())
}

fn has_scsi_attributes(dev: &Path) -> bool {
    fs::read_dir(dev)
        .map(|d| d.flatten().any(|e| e.file_name().to_string_lossy().starts_with("scsi_")))
        .unwrap_or(false)
}

/// The serial number in a Unit Serial Number VPD page (0x80): a 4-byte header whose bytes 2-3
/// are the length, then ASCII.
fn vpd_serial(page: &[u8]) -> Option<String> {
    if page.len() < 4 || page[1] != 0x80 {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([page[2], page[3]]));
    let body = page.get(4..4 + len).unwrap_or(&page[4..]);
    non_empty(&String::from_utf8_lossy(body))
}

/// Whether a USB disk is a BMC's virtual media (an ISO or image the BMC presents over its
/// virtual USB hub). A heuristic on the SCSI vendor and model strings the BMCs are known to use:
/// - anything with "virtual" or "vmedia"/"v-media" in vendor or model (AMI/Supermicro "Virtual
///   CDROM0"/"Virtual Floppy0"/"Virtual HDisk0", iLO "Virtual DVD-ROM", Lenovo XCC
///   "Virtual Media", Cisco CIMC "Virtual CD/DVD"),
/// - or a vendor that is a BMC's name: "AMI", "ATEN" (Supermicro), "iDRAC" (Dell, including its
///   "LCDRIVE"), "iLO"/"HP iLO"/"HPE iLO", "IMM"/"IMM2" (Lenovo), "Cisco vKVM".
///
/// Only USB disks are considered: a BMC's media never sit on SATA, SAS or NVMe. A false positive
/// protects a real USB disk from wiping, which is the safe way to be wrong.
pub fn is_virtual_media(vendor: Option<&str>, model: Option<&str>) -> bool {
    let vendor = vendor.unwrap_or("").to_ascii_lowercase();
    let model = model.unwrap_or("").to_ascii_lowercase();
    let says_virtual = |s: &str| s.contains("virtual") || s.contains("vmedia") || s.contains("v-media");
    const BMC_VENDORS: &[&str] = &["ami", "aten", "idrac", "ilo", "hp ilo", "hpe ilo", "imm", "imm2", "cisco vkvm"];
    says_virtual(&vendor) || says_virtual(&model) || BMC_VENDORS.contains(&vendor.as_str())
}

/// The partition table on the device file `path`, from its first sectors: `gpt` when the GPT
/// header signature "EFI PART" is at LBA 1 (at the logical block size; 512 and 4096 are tried
/// too), else `dos` when the MBR boot signature 0x55AA is at 510 and the table looks like one
/// (boot flags 0x00/0x80, at least one used entry, not only the 0xEE protective entry of a GPT
/// whose header is gone), else `None`. A device that cannot be opened or read is `None`.
pub fn partition_table(path: &Path, logical_block_size: u32) -> Option<String> {
    let mut buf = Vec::with_capacity(8192);
    // O_NONBLOCK: an empty optical drive or a card reader must not make opening wait.
    let file = fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC).open(path).ok()?;
    file.take(8192).read_to_end(&mut buf).ok()?;
    let lbs = logical_block_size as usize;
    for at in [lbs, 512, 4096] {
        if buf.get(at..at + 8) == Some(b"EFI PART") {
            return Some("gpt".into());
        }
    }
    if buf.get(510..512) != Some(&[0x55, 0xAA]) {
        return None;
    }
    let entries: Vec<(u8, u8)> = (0..4).map(|i| 446 + 16 * i).map(|e| (buf[e], buf[e + 4])).collect();
    let flags_ok = entries.iter().all(|&(boot, _)| boot == 0 || boot == 0x80);
    let used: Vec<u8> = entries.iter().map(|&(_, kind)| kind).filter(|&k| k != 0).collect();
    let protective_only = used.iter().all(|&k| k == 0xEE);
    (flags_ok && !used.is_empty() && !protective_only).then(|| "dos".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bmc_virtual_media_strings_are_recognised() {
        assert!(is_virtual_media(Some("AMI"), Some("Virtual CDROM0")));
        assert!(is_virtual_media(Some("iDRAC"), Some("LCDRIVE")));
        assert!(is_virtual_media(Some("HP iLO"), Some("Virtual DVD-ROM")));
        assert!(is_virtual_media(Some("Linux"), Some("vmedia")));
        assert!(!is_virtual_media(Some("SanDisk"), Some("Ultra")));
        assert!(!is_virtual_media(None, None));
    }

    #[test]
    fn vpd_page_80_holds_the_serial() {
        let mut page = vec![0x00, 0x80, 0x00, 0x0a];
        page.extend_from_slice(b"  S3Z9NB0K");
        assert_eq!(vpd_serial(&page).as_deref(), Some("S3Z9NB0K"));
        assert_eq!(vpd_serial(&[0, 0x83, 0, 0]), None);
        assert_eq!(vpd_serial(&[0, 0x80, 0, 4, b' ', b' ', 0, 0]), None);
    }

    #[test]
    fn a_protective_mbr_alone_or_a_boot_sector_is_no_dos_table() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d");
        let mut sector = vec![0u8; 1024];
        sector[510] = 0x55;
        sector[511] = 0xAA;
        sector[446 + 4] = 0xEE;
        fs::write(&path, &sector).unwrap();
        assert_eq!(partition_table(&path, 512), None, "protective MBR without a GPT header");
        sector[446 + 4] = 0x83;
        sector[446] = 0x80;
        fs::write(&path, &sector).unwrap();
        assert_eq!(partition_table(&path, 512).as_deref(), Some("dos"));
        sector[446] = 0x3c; // a FAT boot sector's code where the table would be
        fs::write(&path, &sector).unwrap();
        assert_eq!(partition_table(&path, 512), None);
        assert_eq!(partition_table(&dir.path().join("missing"), 512), None);
        fs::write(&path, b"short").unwrap();
        assert_eq!(partition_table(&path, 512), None);
    }
}
