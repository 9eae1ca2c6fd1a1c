//! Where a DHCP reply goes (RFC 2131 §4.1): to the relay when there is one, to the client's own
//! address when it has one (RENEW), broadcast when it asked for it or cannot take unicast yet, else
//! unicast to the offered address.

use std::net::{Ipv4Addr, SocketAddrV4};

pub const SERVER_PORT: u16 = 67;
pub const CLIENT_PORT: u16 = 68;

/// What kind of reply is being sent: a NAK without a relay is always broadcast.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyKind {
    Offer,
    Ack,
    Nak,
}

/// The fields of the request that decide the destination.
#[derive(Debug, Clone, Copy)]
pub struct RequestAddressing {
    pub giaddr: Ipv4Addr,
    pub ciaddr: Ipv4Addr,
    /// The client set the broadcast flag: it cannot receive unicast before it is configured.
    pub broadcast_flag: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// To the relay agent's server port; it forwards to the client.
    Relay(SocketAddrV4),
    /// To an address the client already has (renewing, INFORM).
    Unicast(SocketAddrV4),
    /// To 255.255.255.255:68 on the interface.
    Broadcast,
    /// To the address being offered, which the client does not answer ARP for yet: the sender must
    /// seed the ARP cache with the client's MAC first, or fall back to broadcast.
    Offered(Ipv4Addr),
}

pub fn destination(req: RequestAddressing, kind: ReplyKind, yiaddr: Ipv4Addr) -> Destination {
    if !req.giaddr.is_unspecified() {
        return Destination::Relay(SocketAddrV4::new(req.giaddr, SERVER_PORT));
    }
    if kind == ReplyKind::Nak {
        return Destination::Broadcast;
    }
    if !req.ciaddr.is_unspecified() {
        return Destination::Unicast(SocketAddrV4::new(req.ciaddr, CLIENT_PORT));
    }
    if req.broadcast_flag || yiaddr.is_unspecified() {
        return Destination::Broadcast;
    }
    Destination::Offered(yiaddr)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ZERO: Ipv4Addr = Ipv4Addr::UNSPECIFIED;
    const YI: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 50);

    fn req(giaddr: Ipv4Addr, ciaddr: Ipv4Addr, broadcast_flag: bool) -> RequestAddressing {
        RequestAddressing { giaddr, ciaddr, broadcast_flag }
    }

    #[test]
    fn relayed_requests_go_back_to_the_relay_whatever_else_is_set() {
        let relay = Ipv4Addr::new(10, 1, 0, 1);
        for kind in [ReplyKind::Offer, ReplyKind::Ack, ReplyKind::Nak] {
            assert_eq!(destination(req(relay, YI, true), kind, YI), Destination::Relay(SocketAddrV4::new(relay, 67)));
        }
    }

    #[test]
    fn a_nak_without_relay_is_broadcast() {
        assert_eq!(destination(req(ZERO, YI, false), ReplyKind::Nak, ZERO), Destination::Broadcast);
    }

    #[test]
    fn a_configured_client_gets_unicast_to_its_address() {
        assert_eq!(
            destination(req(ZERO, YI, false), ReplyKind::Ack, YI),
            Destination::Unicast(SocketAddrV4::new(YI, 68))
        );
    }

    #[test]
    fn an_unconfigured_client_gets_broadcast_if_it_asks_else_the_offered_address() {
        assert_eq!(destination(req(ZERO, ZERO, true), ReplyKind::Offer, YI), Destination::Broadcast);
        assert_eq!(destination(req(ZERO, ZERO, false), ReplyKind::Offer, YI), Destination::Offered(YI));
        // Proxy offers carry no address: broadcast.
        assert_eq!(destination(req(ZERO, ZERO, false), ReplyKind::Offer, ZERO), Destination::Broadcast);
    }
}
