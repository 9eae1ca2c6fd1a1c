//! A [`Disk`] for any block device path, read from /sys/class/block/<name>: what the inventory
//! reports for disks, also for devices it leaves out (loop devices, partitions).

use std::fs;
use std::path::{Path, PathBuf};

use ironbay_wire::inventory::Disk;

use super::DiskError;
use super::blkdev::{ALIGN, AlignedBuf, Device};
use super::signatures;

fn read(p: &Path) -> Option<String> {
    let s = fs::read_to_string(p).ok()?;
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

fn flag(p: &Path) -> bool {
    read(p).as_deref() == Some("1")
}

pub fn describe(path: &Path) -> Result<Disk, DiskError> {
    let not_found = || DiskError::NotFound { path: path.display().to_string() };
    // `/dev/disk/by-id/...` and other links resolve to the kernel name.
    let real = fs::canonicalize(path).map_err(|_| not_found())?;
    let name = real.file_name().and_then(|n| n.to_str()).ok_or_else(not_found)?.to_string();
    let sys = fs::canonicalize(Path::new("/sys/class/block").join(&name)).map_err(|_| not_found())?;
    // A partition has no queue/ or device/ of its own: its disk's apply.
    let whole: PathBuf = if sys.join("partition").exists() {
        sys.parent().map(Path::to_path_buf).unwrap_or(sys.clone())
    } else {
        sys.clone()
    };
    let queue = whole.join("queue");
    let device = whole.join("device");

    let size_bytes = read(&sys.join("size")).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0) * 512;
    let model = read(&device.join("model"));
    let vendor = read(&device.join("vendor"));
    let transport = transport(&name, &whole);
    let virtual_media = is_virtual_media(vendor.as_deref(), model.as_deref());
    let partition_table = Device::open_ro(&real).ok().and_then(|dev| {
        let len = (2 * ALIGN as u64).min(dev.size) as usize;
        let mut buf = AlignedBuf::new(2 * ALIGN);
        dev.read_at(&mut buf.as_mut_slice()[..len], 0).ok()?;
        signatures::partition_table(&buf.as_slice()[..len])
    });
    Ok(Disk {
        path: format!("/dev/{name}"),
        size_bytes,
        model,
        serial: read(&device.join("serial")).or_else(|| read(&whole.join("serial"))),
        wwn: read(&device.join("wwid")).or_else(|| read(&whole.join("wwid"))).or_else(|| read(&device.join("wwn"))),
        rotational: flag(&queue.join("rotational")),
        removable: flag(&whole.join("removable")),
        read_only: flag(&sys.join("ro")),
        transport,
        partition_table,
        virtual_media,
        logical_block_size: read(&queue.join("logical_block_size")).and_then(|s| s.parse().ok()).unwrap_or(512),
        physical_block_size: read(&queue.join("physical_block_size")).and_then(|s| s.parse().ok()).unwrap_or(512),
        name,
    })
}

/// The bus, from the kernel name and the device's sysfs path.
fn transport(name: &str, whole: &Path) -> Option<String> {
    let t = if name.starts_with("nvme") {
        "nvme"
    } else if name.starts_with("vd") {
        "virtio"
    } else if name.starts_with("loop") {
        "loop"
    } else if name.starts_with("sd") || name.starts_with("sr") {
        let dev = fs::canonicalize(whole.join("device")).ok()?;
        let p = dev.to_string_lossy();
        if p.contains("/usb") {
            "usb"
        } else if p.contains("/ata") {
            "sata"
        } else if p.contains("/host") && fs::read_dir("/sys/class/sas_device").is_ok_and(|mut d| d.next().is_some()) {
            "sas"
        } else {
            "scsi"
        }
    } else {
        return None;
    };
    Some(t.into())
}

/// What BMCs call the media they present (iDRAC, iLO, AMI/Supermicro, Lenovo XCC).
fn is_virtual_media(vendor: Option<&str>, model: Option<&str>) -> bool {
    let text = format!("{} {}", vendor.unwrap_or(""), model.unwrap_or("")).to_ascii_lowercase();
    [
        "virtual cd",
        "virtual floppy",
        "virtual hdisk",
        "virtual media",
        "virtualmedia",
        "vmedia",
        "idrac",
        "ilo virtual",
        "virtual_cdrom",
    ]
    .iter()
    .any(|m| text.contains(m))
}

#[cfg(test)]
mod tests {
    #[test]
    fn bmc_virtual_media_is_recognised() {
        assert!(
            super::is_virtual_media(Some("AMI"), Some("Virtual CDROM0"))
                || super::is_virtual_media(Some("AMI"), Some("Virtual CD"))
        );
        assert!(super::is_virtual_media(Some("iDRAC"), Some("LCDRIVE")));
        assert!(!super::is_virtual_media(Some("ATA"), Some("Samsung SSD 870")));
    }
}
