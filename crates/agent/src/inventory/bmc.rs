//! The BMC, through the kernel's IPMI system interface driver (`ipmi_si` + `ipmi_devintf`:
//! `/dev/ipmi0`, or `/dev/ipmi/0`, `/dev/ipmidev/0`). Two requests over the Linux IPMI ioctls
//! (`IPMICTL_SEND_COMMAND`, then `IPMICTL_RECEIVE_MSG_TRUNC` once `poll` says the answer is in):
//! - Get Device ID (NetFn App 0x06, cmd 0x01): firmware revision and IANA manufacturer id;
//! - Get LAN Configuration Parameters (NetFn Transport 0x0c, cmd 0x02) on LAN channel 1 (then 2
//!   to 8 when the BMC answers that a channel is not LAN, as Intel boards use 3): parameter 3
//!   (IP address) and 5 (MAC address).
//!
//! Every answer is awaited at most [`TIMEOUT`], and no new channel is tried 3 × [`TIMEOUT`] after
//! the search began: the whole read takes at most about 12 s on a BMC that stalls, milliseconds on
//! one that answers. A device node that exists but cannot be queried gives a [`Bmc`] whose fields
//! are all `None`: there is a BMC, its details are unknown.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use super::Bmc;

/// How long one request may wait for its answer.
pub const TIMEOUT: Duration = Duration::from_secs(2);

/// Where `ipmi_devintf` puts the first interface (devtmpfs names it `ipmi0`; older udev rules
/// `ipmi/0` or `ipmidev/0`).
const DEVICES: &[&str] = &["dev/ipmi0", "dev/ipmi/0", "dev/ipmidev/0"];

pub fn read(root: &Path) -> Option<Bmc> {
    let path = DEVICES.iter().map(|d| root.join(d)).find(|p| p.exists())?;
    let Ok(dev) = Ipmi::open(&path) else { return Some(Bmc::default()) };
    let mut bmc = Bmc::default();
    if let Some(id) = dev.request(NETFN_APP, CMD_GET_DEVICE_ID, &[]).ok().and_then(|r| parse_device_id(&r)) {
        bmc.firmware_version = Some(id.0);
        bmc.manufacturer_id = Some(id.1);
    }
    // However the BMC answers, the LAN channel search gives up after a few request timeouts.
    let give_up = Instant::now() + 3 * TIMEOUT;
    for channel in 1..=8u8 {
        if Instant::now() >= give_up {
            break;
        }
        match dev.request(NETFN_TRANSPORT, CMD_GET_LAN_CONFIG, &[channel, LAN_PARAM_IP, 0, 0]) {
            Ok(r) if r.first() == Some(&0) => {
                bmc.ip_address = parse_ip(&r);
                if let Ok(r) = dev.request(NETFN_TRANSPORT, CMD_GET_LAN_CONFIG, &[channel, LAN_PARAM_MAC, 0, 0]) {
                    bmc.mac = parse_mac(&r);
                }
                break;
            }
            // The BMC answered that this is not a LAN channel (or no such parameter): next one.
            Ok(_) => continue,
            // No answer at all: asking the next channel would only wait again.
            Err(_) => break,
        }
    }
    Some(bmc)
}

const NETFN_APP: u8 = 0x06;
const NETFN_TRANSPORT: u8 = 0x0c;
const CMD_GET_DEVICE_ID: u8 = 0x01;
const CMD_GET_LAN_CONFIG: u8 = 0x02;
const LAN_PARAM_IP: u8 = 3;
const LAN_PARAM_MAC: u8 = 5;

/// `(firmware version "major.minor", manufacturer id)` from a Get Device ID response (completion
/// code first). The minor revision is BCD, printed as ipmitool does (`2.61`).
fn parse_device_id(r: &[u8]) -> Option<(String, u32)> {
    if r.len() < 10 || r[0] != 0 {
        return None;
    }
    let version = format!("{}.{:02x}", r[3] & 0x7f, r[4]);
    let manufacturer = u32::from(r[7]) | u32::from(r[8]) << 8 | u32::from(r[9] & 0x0f) << 16;
    Some((version, manufacturer))
}

/// Get LAN Configuration Parameters response: completion code, parameter revision, data.
fn parse_ip(r: &[u8]) -> Option<String> {
    let ip = r.get(2..6).filter(|_| r[0] == 0)?;
    (ip != [0, 0, 0, 0]).then(|| format!("{}.{}.{}.{}", ip[0], ip[1], ip[2], ip[3]))
}

fn parse_mac(r: &[u8]) -> Option<String> {
    let mac = r.get(2..8).filter(|_| r[0] == 0)?;
    (mac != [0; 6]).then(|| mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":"))
}

// <linux/ipmi.h>
const IPMI_SYSTEM_INTERFACE_ADDR_TYPE: libc::c_int = 0x0c;
const IPMI_BMC_CHANNEL: libc::c_short = 0x0f;
const IPMI_RESPONSE_RECV_TYPE: libc::c_int = 1;
const IPMI_MAX_ADDR_SIZE: usize = 32;

#[repr(C)]
struct IpmiSystemInterfaceAddr {
    addr_type: libc::c_int,
    channel: libc::c_short,
    lun: libc::c_uchar,
}

#[repr(C)]
struct IpmiAddr {
    addr_type: libc::c_int,
    channel: libc::c_short,
    data: [libc::c_char; IPMI_MAX_ADDR_SIZE],
}

#[repr(C)]
struct IpmiMsg {
    netfn: libc::c_uchar,
    cmd: libc::c_uchar,
    data_len: libc::c_ushort,
    data: *mut libc::c_uchar,
}

#[repr(C)]
struct IpmiReq {
    addr: *mut libc::c_uchar,
    addr_len: libc::c_uint,
    msgid: libc::c_long,
    msg: IpmiMsg,
}

#[repr(C)]
struct IpmiRecv {
    recv_type: libc::c_int,
    addr: *mut libc::c_uchar,
    addr_len: libc::c_uint,
    msgid: libc::c_long,
    msg: IpmiMsg,
}

/// `_IOC(dir, 'i', nr, size)` as <asm-generic/ioctl.h> encodes it.
const fn ioc(dir: u64, nr: u64, size: usize) -> u64 {
    (dir << 30) | ((size as u64) << 16) | ((b'i' as u64) << 8) | nr
}
const IOC_WRITE: u64 = 1;
const IOC_READ: u64 = 2;
/// `_IOR('i', 13, struct ipmi_req)`.
const IPMICTL_SEND_COMMAND: u64 = ioc(IOC_READ, 13, size_of::<IpmiReq>());
/// `_IOWR('i', 11, struct ipmi_recv)`.
const IPMICTL_RECEIVE_MSG_TRUNC: u64 = ioc(IOC_READ | IOC_WRITE, 11, size_of::<IpmiRecv>());

struct Ipmi {
    file: File,
}

impl Ipmi {
    fn open(path: &Path) -> std::io::Result<Ipmi> {
        let file =
            OpenOptions::new().read(true).write(true).custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC).open(path)?;
        Ok(Ipmi { file })
    }

    /// Sends one request to the BMC and returns its response data (completion code first).
    fn request(&self, netfn: u8, cmd: u8, data: &[u8]) -> std::io::Result<Vec<u8>> {
        static NEXT_ID: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(1);
        let msgid = NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed) as libc::c_long;
        let fd = self.file.as_raw_fd();
        let mut addr =
            IpmiSystemInterfaceAddr { addr_type: IPMI_SYSTEM_INTERFACE_ADDR_TYPE, channel: IPMI_BMC_CHANNEL, lun: 0 };
        let mut body = data.to_vec();
        let mut req = IpmiReq {
            addr: (&raw mut addr).cast(),
            addr_len: size_of::<IpmiSystemInterfaceAddr>() as libc::c_uint,
            msgid,
            msg: IpmiMsg { netfn, cmd, data_len: body.len() as libc::c_ushort, data: body.as_mut_ptr() },
        };
        // SAFETY: `req` and the buffers it points to outlive the call; the kernel copies them.
        if unsafe { libc::ioctl(fd, IPMICTL_SEND_COMMAND as _, &raw mut req) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(std::io::ErrorKind::TimedOut.into());
            }
            let mut pfd = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
            // SAFETY: one valid pollfd.
            let n = unsafe { libc::poll(&raw mut pfd, 1, left.as_millis().max(1) as libc::c_int) };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if n == 0 {
                return Err(std::io::ErrorKind::TimedOut.into());
            }
            let mut raddr = IpmiAddr { addr_type: 0, channel: 0, data: [0; IPMI_MAX_ADDR_SIZE] };
            let mut buf = [0u8; 256];
            let mut recv = IpmiRecv {
                recv_type: 0,
                addr: (&raw mut raddr).cast(),
                addr_len: size_of::<IpmiAddr>() as libc::c_uint,
                msgid: 0,
                msg: IpmiMsg { netfn: 0, cmd: 0, data_len: buf.len() as libc::c_ushort, data: buf.as_mut_ptr() },
            };
            // SAFETY: `recv` points at `raddr` and `buf`, sized as `addr_len` and `data_len` say.
            if unsafe { libc::ioctl(fd, IPMICTL_RECEIVE_MSG_TRUNC as _, &raw mut recv) } < 0 {
                let e = std::io::Error::last_os_error();
                // EMSGSIZE: truncated, the data is still there.
                if e.raw_os_error() != Some(libc::EMSGSIZE) {
                    if e.kind() == std::io::ErrorKind::WouldBlock {
                        continue;
                    }
                    return Err(e);
                }
            }
            // Anything else (an event, an answer to an earlier request that timed out) is dropped.
            if recv.recv_type == IPMI_RESPONSE_RECV_TYPE && recv.msgid == msgid {
                let len = usize::from(recv.msg.data_len).min(buf.len());
                return Ok(buf[..len].to_vec());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(all(target_os = "linux", target_pointer_width = "64"))]
    #[test]
    fn ioctl_numbers_are_the_kernels() {
        // As <linux/ipmi.h> gives them on 64-bit Linux.
        assert_eq!(IPMICTL_SEND_COMMAND, 0x8028_690d);
        assert_eq!(IPMICTL_RECEIVE_MSG_TRUNC, 0xc030_690b);
    }

    #[test]
    fn device_id_and_lan_answers_parse() {
        // Completion 0, device id 0x20, revision 1, firmware 2.61 (BCD), IPMI 2.0, support,
        // manufacturer 674 (Dell: 0x0002a2), product id.
        let id = [0x00, 0x20, 0x01, 0x02, 0x61, 0x02, 0xbf, 0xa2, 0x02, 0x00, 0x00, 0x01];
        assert_eq!(parse_device_id(&id), Some(("2.61".to_string(), 674)));
        assert_eq!(parse_device_id(&[0xc1]), None);
        assert_eq!(parse_ip(&[0, 0x11, 10, 0, 0, 7]).as_deref(), Some("10.0.0.7"));
        assert_eq!(parse_ip(&[0, 0x11, 0, 0, 0, 0]), None);
        assert_eq!(parse_ip(&[0xcc]), None);
        assert_eq!(parse_mac(&[0, 0x11, 0xd0, 0x94, 0x66, 0x0a, 0x0b, 0x0c]).as_deref(), Some("d0:94:66:0a:0b:0c"));
    }
}
