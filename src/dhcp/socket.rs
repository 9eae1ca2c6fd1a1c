//! DHCP sockets: UDP bound to one named interface (SO_BINDTODEVICE), so only that interface is
//! ever answered, and replies sent where RFC 2131 §4.1 says (`reply::destination`).

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::AsRawFd;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;

use super::reply::{CLIENT_PORT, Destination};
use crate::model::Mac;

/// A socket on one interface.
pub struct IfaceSocket {
    pub ifname: String,
    pub socket: UdpSocket,
}

/// Binds `addr` on interface `ifname` only. Several interfaces may each bind 0.0.0.0:67
/// (SO_REUSEADDR + distinct devices).
pub fn bind(ifname: &str, addr: SocketAddrV4) -> io::Result<IfaceSocket> {
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    s.set_reuse_address(true)?;
    s.set_broadcast(true)?;
    s.bind_device(Some(ifname.as_bytes()))?;
    // Bursts of DISCOVERs (a rack powering on, perfdhcp) must not overflow the default buffer.
    let _ = s.set_recv_buffer_size(4 << 20);
    let _ = s.set_send_buffer_size(4 << 20);
    s.set_nonblocking(true)?;
    s.bind(&SocketAddr::V4(addr).into())?;
    let socket = UdpSocket::from_std(s.into())?;
    Ok(IfaceSocket { ifname: ifname.to_string(), socket })
}

impl IfaceSocket {
    /// Sends `bytes` to `dest`. An `Offered` destination (a client without its address yet, no
    /// broadcast flag) gets unicast after we put its MAC in the ARP cache, as the RFC asks;
    /// when that is refused, broadcast.
    pub async fn send(&self, bytes: &[u8], dest: Destination, mac: Option<Mac>) -> io::Result<()> {
        let to = match dest {
            Destination::Relay(a) | Destination::Unicast(a) => a,
            Destination::Broadcast => SocketAddrV4::new(Ipv4Addr::BROADCAST, CLIENT_PORT),
            Destination::Offered(ip) => match mac {
                Some(mac) if self.seed_arp(ip, mac).is_ok() => SocketAddrV4::new(ip, CLIENT_PORT),
                _ => SocketAddrV4::new(Ipv4Addr::BROADCAST, CLIENT_PORT),
            },
        };
        self.socket.send_to(bytes, to).await.map(|_| ())
    }

    /// Adds `ip → mac` to the kernel's ARP table for this interface (SIOCSARP), so a unicast to
    /// an address the client does not answer ARP for yet can leave.
    fn seed_arp(&self, ip: Ipv4Addr, mac: Mac) -> io::Result<()> {
        // SAFETY: an all-zero arpreq is a valid starting value for every field.
        let mut req: libc::arpreq = unsafe { std::mem::zeroed() };
        // SAFETY: sockaddr_in fits in sockaddr (both 16 bytes); we write through the right type.
        unsafe {
            let pa = &mut req.arp_pa as *mut libc::sockaddr as *mut libc::sockaddr_in;
            (*pa).sin_family = libc::AF_INET as libc::sa_family_t;
            (*pa).sin_addr = libc::in_addr { s_addr: u32::from(ip).to_be() };
        }
        req.arp_ha.sa_family = libc::ARPHRD_ETHER;
        for (dst, src) in req.arp_ha.sa_data.iter_mut().zip(mac.octets()) {
            *dst = src as libc::c_char;
        }
        req.arp_flags = libc::ATF_COM;
        let name = self.ifname.as_bytes();
        if name.len() >= req.arp_dev.len() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "interface name too long"));
        }
        for (dst, &src) in req.arp_dev.iter_mut().zip(name) {
            *dst = src as libc::c_char;
        }
        // SAFETY: SIOCSARP reads a valid arpreq; the fd is our open socket.
        let rc = unsafe { libc::ioctl(self.socket.as_raw_fd(), libc::SIOCSARP, &req) };
        if rc == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
    }
}
