//! NVMe secure erase: Format NVM with Secure Erase Settings = 1 (user data erase) through the
//! kernel's admin passthrough, keeping the namespace's current LBA format and protection settings.

use ironbay_wire::inventory::Disk;
use ironbay_wire::progress::Progress;

use super::blkdev::{AlignedBuf, Device, errno_name};
use crate::report::{Emit, Line, log};

/// `struct nvme_passthru_cmd` (linux/nvme_ioctl.h), 72 bytes.
#[repr(C)]
#[derive(Default)]
struct PassthruCmd {
    opcode: u8,
    flags: u8,
    rsvd1: u16,
    nsid: u32,
    cdw2: u32,
    cdw3: u32,
    metadata: u64,
    addr: u64,
    metadata_len: u32,
    data_len: u32,
    cdw10: u32,
    cdw11: u32,
    cdw12: u32,
    cdw13: u32,
    cdw14: u32,
    cdw15: u32,
    timeout_ms: u32,
    result: u32,
}

const _: () = assert!(std::mem::size_of::<PassthruCmd>() == 72);

/// `_IO('N', 0x40)`: the namespace id of this block device.
const NVME_IOCTL_ID: libc::c_ulong = 0x4e40;
/// `_IOWR('N', 0x41, struct nvme_admin_cmd)`.
const NVME_IOCTL_ADMIN_CMD: libc::c_ulong = 0xc048_4e41;

const OP_IDENTIFY: u8 = 0x06;
const OP_FORMAT_NVM: u8 = 0x80;
/// A format's duration is the drive's business; the kernel's default (60 s) is far too short.
const FORMAT_TIMEOUT_MS: u32 = 4 * 3600 * 1000;

fn admin(dev: &Device, cmd: &mut PassthruCmd) -> Result<(), String> {
    // SAFETY: the struct matches the kernel's layout; `addr` points to a live buffer of data_len.
    let ret = unsafe { libc::ioctl(dev.fd(), NVME_IOCTL_ADMIN_CMD, cmd as *mut PassthruCmd) };
    if ret < 0 {
        let e = std::io::Error::last_os_error();
        return Err(format!("admin command 0x{:02x} failed: {} ({e})", cmd.opcode, errno_name(&e)));
    }
    if ret > 0 {
        // A positive return is the NVMe status field (status code type and code).
        return Err(format!("admin command 0x{:02x} failed with NVMe status 0x{ret:x}", cmd.opcode));
    }
    Ok(())
}

fn identify(dev: &Device, nsid: u32, cns: u32, buf: &mut AlignedBuf) -> Result<(), String> {
    let mut cmd = PassthruCmd {
        opcode: OP_IDENTIFY,
        nsid,
        addr: buf.as_mut_slice().as_mut_ptr() as u64,
        data_len: 4096,
        cdw10: cns,
        ..Default::default()
    };
    admin(dev, &mut cmd)
}

/// Format NVM's CDW10 for a user-data erase that keeps the namespace as it is: the current LBA
/// format (FLBAS bits 3:0, high bits 6:5 since NVMe 2.0), metadata placement (FLBAS bit 4), and the
/// protection type and location (DPS bits 2:0 and 3). SES (bits 11:9) = 1: user data erase.
fn format_cdw10(flbas: u8, dps: u8) -> u32 {
    let lbaf_lo = u32::from(flbas & 0x0f);
    let lbaf_hi = u32::from((flbas >> 5) & 0x03);
    let mset = u32::from((flbas >> 4) & 1);
    let pi = u32::from(dps & 0x07);
    let pil = u32::from((dps >> 3) & 1);
    let ses = 1u32;
    lbaf_lo | (mset << 4) | (pi << 5) | (pil << 8) | (ses << 9) | (lbaf_hi << 12)
}

/// Format NVM, SES=1, on this namespace. `Err` reasons start with SECURE_ERASE_UNSUPPORTED when
/// the controller cannot do it.
pub fn secure_erase(dev: &Device, disk: &Disk, emit: Emit<'_>) -> Result<(), String> {
    let unsupported = |why: String| format!("SECURE_ERASE_UNSUPPORTED: {why}");
    // SAFETY: NVME_IOCTL_ID takes no argument and returns the nsid.
    let nsid = unsafe { libc::ioctl(dev.fd(), NVME_IOCTL_ID) };
    if nsid <= 0 {
        let e = std::io::Error::last_os_error();
        return Err(unsupported(format!("{} is not an NVMe namespace ({})", disk.path, errno_name(&e))));
    }
    let nsid = nsid as u32;

    let mut ctrl = AlignedBuf::new(4096);
    identify(dev, 0, 1, &mut ctrl).map_err(|e| unsupported(format!("Identify Controller: {e}")))?;
    let c = ctrl.as_slice();
    let oacs = u16::from_le_bytes([c[256], c[257]]);
    if oacs & 0x2 == 0 {
        return Err(unsupported("the controller does not support Format NVM (OACS bit 1 clear)".into()));
    }
    let fna = c[524];
    if fna & 0x2 != 0 {
        log(emit, format!("{}: this controller's secure erase applies to all its namespaces (FNA bit 1)", disk.path));
    }

    let mut ns = AlignedBuf::new(4096);
    identify(dev, nsid, 0, &mut ns).map_err(|e| unsupported(format!("Identify Namespace {nsid}: {e}")))?;
    let n = ns.as_slice();
    let cdw10 = format_cdw10(n[26], n[29]);

    log(emit, format!("{}: NVMe Format NVM with secure erase (user data erase) on namespace {nsid}", disk.path));
    let progress = |done: u64| {
        Line::Progress(Progress {
            step: "secure-erase".into(),
            disk: Some(disk.path.clone()),
            bytes_done: done,
            bytes_total: dev.size,
            rate: 0.0,
        })
    };
    emit(progress(0));
    let mut cmd =
        PassthruCmd { opcode: OP_FORMAT_NVM, nsid, cdw10, timeout_ms: FORMAT_TIMEOUT_MS, ..Default::default() };
    admin(dev, &mut cmd).map_err(|e| format!("NVMe Format NVM (secure erase) of {}: {e}", disk.path))?;
    emit(progress(dev.size));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_keeps_the_namespace_format_and_asks_for_user_data_erase() {
        assert_eq!(format_cdw10(0x00, 0x00), 0x200);
        assert_eq!(format_cdw10(0x01, 0x00), 0x201);
        // LBA format 2 with extended metadata, PI type 1 in the first bytes of metadata.
        assert_eq!(format_cdw10(0x12, 0x09), 0x2 | 0x10 | 0x20 | 0x100 | 0x200);
        // LBA format 17 (0x11): low nibble 1, high bits 01 in FLBAS 6:5.
        assert_eq!(format_cdw10(0x21, 0x00), 0x1 | 0x200 | 0x1000);
    }
}
