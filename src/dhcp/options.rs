//! Reading what a client says in its options, and the PXE vendor options we send (dhcproto
//! carries option 43 as raw bytes, so the PXE sub-options are encoded here).

use dhcproto::v4::{DhcpOption, Message, MessageType, OptionCode};

use super::boot::ClientKind;
use crate::model::Mac;

/// Decodes a packet, refusing what dhcproto would decode but cannot safely hand out: a hardware
/// address length over 16 (its `chaddr()` slices by `hlen` and panics). dhcproto also has
/// `debug_assert!`s on option lengths (e.g. Rapid Commit with data); in debug builds those panic,
/// so decoding is fenced: whatever makes the decoder panic is a malformed packet, dropped.
pub fn decode(bytes: &[u8]) -> Option<Message> {
    use dhcproto::{Decodable, Decoder};
    let m = std::panic::catch_unwind(|| Message::decode(&mut Decoder::new(bytes))).ok()?.ok()?;
    (m.hlen() <= 16).then_some(m)
}

/// The client's MAC (chaddr), when it is an Ethernet address.
pub fn client_mac(m: &Message) -> Option<Mac> {
    if m.hlen() != 6 {
        return None;
    }
    let octets: [u8; 6] = m.chaddr().get(..6)?.try_into().ok()?;
    Some(Mac::from_octets(octets))
}

pub fn bytes(m: &Message, code: OptionCode) -> Option<&[u8]> {
    match m.opts().get(code)? {
        DhcpOption::ClassIdentifier(v)
        | DhcpOption::ClientIdentifier(v)
        | DhcpOption::UserClass(v)
        | DhcpOption::ClientMachineIdentifier(v) => Some(v),
        _ => None,
    }
}

/// Option 60, 77 and 93 as `dhcp::boot` reads them.
pub fn client_kind(m: &Message) -> ClientKind<'_> {
    let arch = match m.opts().get(OptionCode::ClientSystemArchitecture) {
        Some(DhcpOption::ClientSystemArchitecture(a)) => Some(a.0),
        _ => None,
    };
    ClientKind {
        arch,
        user_class: bytes(m, OptionCode::UserClass),
        vendor_class: bytes(m, OptionCode::ClassIdentifier),
    }
}

pub fn requested_ip(m: &Message) -> Option<std::net::Ipv4Addr> {
    match m.opts().get(OptionCode::RequestedIpAddress)? {
        DhcpOption::RequestedIpAddress(ip) => Some(*ip),
        _ => None,
    }
}

pub fn server_id(m: &Message) -> Option<std::net::Ipv4Addr> {
    match m.opts().get(OptionCode::ServerIdentifier)? {
        DhcpOption::ServerIdentifier(ip) => Some(*ip),
        _ => None,
    }
}

pub fn hostname(m: &Message) -> Option<String> {
    match m.opts().get(OptionCode::Hostname)? {
        DhcpOption::Hostname(h) => Some(h.chars().filter(|c| c.is_ascii_graphic()).take(63).collect()),
        _ => None,
    }
}

/// Option 97 (RFC 4578): type 0 then a 16-byte GUID, printed the way SMBIOS 2.6+ tools (and
/// iPXE's `${uuid}`) print it: the first three fields little-endian.
pub fn machine_uuid(m: &Message) -> Option<String> {
    let v = bytes(m, OptionCode::ClientMachineIdentifier)?;
    let (&kind, g) = v.split_first()?;
    if kind != 0 || g.len() != 16 || g.iter().all(|&b| b == 0) {
        return None;
    }
    Some(format!(
        "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
        g[3], g[2], g[1], g[0], g[5], g[4], g[7], g[6], g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15]
    ))
}

/// Option 43 for PXE clients: discovery control 0x08 (boot from the file in this packet, no
/// boot-server discovery) and a menu prompt with timeout 0. EDK2 takes a proxy offer as a BINL
/// offer (and goes to port 4011) unless option 43 is there (tianocore/edk2#6944).
pub fn pxe_vendor_options() -> Vec<u8> {
    vec![
        6, 1, 0x08, // PXE_DISCOVERY_CONTROL
        10, 4, 0, b'P', b'X', b'E', // PXE_MENU_PROMPT: timeout 0, "PXE"
        255,
    ]
}

pub fn msg_name(t: MessageType) -> &'static str {
    match t {
        MessageType::Discover => "DHCPDISCOVER",
        MessageType::Offer => "DHCPOFFER",
        MessageType::Request => "DHCPREQUEST",
        MessageType::Decline => "DHCPDECLINE",
        MessageType::Ack => "DHCPACK",
        MessageType::Nak => "DHCPNAK",
        MessageType::Release => "DHCPRELEASE",
        MessageType::Inform => "DHCPINFORM",
        _ => "DHCP(other)",
    }
}

/// One line for the boot timeline: the message and what the client said about itself.
pub fn describe_request(m: &Message, t: MessageType) -> String {
    let mut s = msg_name(t).to_string();
    let kind = client_kind(m);
    if let Some(a) = kind.arch {
        s.push_str(&format!(" arch={a}"));
    }
    if let Some(v) = kind.vendor_class {
        s.push_str(&format!(" vendor={}", String::from_utf8_lossy(v)));
    }
    if let Some(u) = kind.user_class {
        s.push_str(&format!(" user-class={}", String::from_utf8_lossy(u).replace(|c: char| c.is_control(), "")));
    }
    if let Some(ip) = requested_ip(m) {
        s.push_str(&format!(" requested={ip}"));
    }
    if !m.ciaddr().is_unspecified() {
        s.push_str(&format!(" ciaddr={}", m.ciaddr()));
    }
    if !m.giaddr().is_unspecified() {
        s.push_str(&format!(" giaddr={}", m.giaddr()));
    }
    if let Some(id) = server_id(m) {
        s.push_str(&format!(" server-id={id}"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_is_printed_in_smbios_order() {
        let mut m = Message::default();
        let mut v = vec![0u8];
        v.extend([0x33, 0x22, 0x11, 0x00, 0x55, 0x44, 0x77, 0x66, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff]);
        m.opts_mut().insert(DhcpOption::ClientMachineIdentifier(v));
        assert_eq!(machine_uuid(&m).as_deref(), Some("00112233-4455-6677-8899-aabbccddeeff"));
        m.opts_mut().insert(DhcpOption::ClientMachineIdentifier(vec![0; 17]));
        assert_eq!(machine_uuid(&m), None, "all-zero GUID means none");
        m.opts_mut().insert(DhcpOption::ClientMachineIdentifier(vec![0; 5]));
        assert_eq!(machine_uuid(&m), None);
    }

    #[test]
    fn pxe_vendor_options_are_well_formed_tlvs() {
        let v = pxe_vendor_options();
        let mut rest = &v[..];
        let mut codes = Vec::new();
        while let Some((&code, tail)) = rest.split_first() {
            if code == 255 {
                assert!(tail.is_empty());
                break;
            }
            let (&len, tail) = tail.split_first().unwrap();
            codes.push((code, tail[..usize::from(len)].to_vec()));
            rest = &tail[usize::from(len)..];
        }
        assert_eq!(codes[0], (6, vec![8]));
        assert_eq!(codes[1].0, 10);
    }
}
