//! Which boot program a PXE client is offered, from what it says about itself: option 93 (client
//! architecture, RFC 4578), option 77 (user class: `iPXE` once iPXE runs) and option 60 (vendor
//! class: `PXEClient…` for firmware PXE, `HTTPClient…` for UEFI HTTP boot). Pure: the DHCP server
//! turns the answer into `siaddr`/`file`/option 60, and the boot timeline records `reason`.

use std::net::Ipv4Addr;

/// The x86-64 UEFI binary firmware PXE gets over TFTP (`boot.efi_binary` in config).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
pub enum EfiBinary {
    /// Full iPXE with its own drivers.
    #[default]
    #[serde(rename = "ipxe.efi")]
    Ipxe,
    /// iPXE on the firmware's network stack (SNP): for NICs iPXE has no driver for.
    #[serde(rename = "snponly.efi")]
    SnpOnly,
}

impl EfiBinary {
    pub const fn file_name(self) -> &'static str {
        match self {
            EfiBinary::Ipxe => "ipxe.efi",
            EfiBinary::SnpOnly => "snponly.efi",
        }
    }
}

pub const BIOS_BINARY: &str = "undionly.kpxe";

/// What a client told us about itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientKind<'a> {
    /// Option 93, the first architecture listed.
    pub arch: Option<u16>,
    /// Option 77, raw.
    pub user_class: Option<&'a [u8]>,
    /// Option 60, raw.
    pub vendor_class: Option<&'a [u8]>,
}

impl ClientKind<'_> {
    pub fn is_pxe(&self) -> bool {
        self.vendor_class.is_some_and(|v| v.starts_with(b"PXEClient"))
    }

    pub fn is_http_client(&self) -> bool {
        self.vendor_class.is_some_and(|v| v.starts_with(b"HTTPClient"))
    }

    /// iPXE sends its user class as the bare string `iPXE`; RFC 3004 clients length-prefix each
    /// class. Either counts.
    pub fn is_ipxe(&self) -> bool {
        let Some(uc) = self.user_class else { return false };
        if uc == b"iPXE" {
            return true;
        }
        let mut rest = uc;
        while let Some((&len, tail)) = rest.split_first() {
            let len = usize::from(len);
            if len > tail.len() {
                return false;
            }
            if &tail[..len] == b"iPXE" {
                return true;
            }
            rest = &tail[len..];
        }
        false
    }
}

/// Where the boot files live, as clients must be told.
#[derive(Debug, Clone)]
pub struct BootServer {
    /// The TFTP server's address on the client's segment (`siaddr`, option 66 semantics).
    pub tftp: Ipv4Addr,
    /// The appliance's HTTP base URL as clients reach it, without a trailing slash.
    pub http_base: String,
    pub efi_binary: EfiBinary,
}

/// The boot answer for one client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BootOffer {
    /// Fetch `file` from `server` over TFTP.
    Tftp { server: Ipv4Addr, file: &'static str },
    /// UEFI HTTP boot: `url` as the boot file; the reply must carry option 60 `HTTPClient`.
    Http { url: String },
    /// iPXE is already running: hand it the boot script, not another iPXE (no chain-load loop).
    Script { url: String },
    /// No boot program for this client (not PXE, or an architecture we have no binary for).
    None { reason: &'static str },
}

impl BootOffer {
    /// One line for the boot timeline: what was chosen and why.
    pub fn describe(&self, kind: &ClientKind<'_>) -> String {
        let arch = kind.arch.map_or_else(|| "no arch option".to_string(), |a| format!("arch {a} ({})", arch_name(a)));
        match self {
            BootOffer::Tftp { file, .. } => format!("{arch}: TFTP {file}"),
            BootOffer::Http { url } => format!("{arch}, HTTPClient: {url}"),
            BootOffer::Script { url } => format!("iPXE user class: boot script {url}"),
            BootOffer::None { reason } => format!("{arch}: no boot offer ({reason})"),
        }
    }
}

/// Chooses the boot program: iPXE first (whatever firmware it runs on, it wants the script), then
/// UEFI HTTP boot, then firmware PXE by architecture.
pub fn choose(kind: &ClientKind<'_>, server: &BootServer) -> BootOffer {
    if kind.is_ipxe() {
        return BootOffer::Script { url: format!("{}/boot.ipxe", server.http_base) };
    }
    match kind.arch {
        // x86-64 UEFI HTTP boot (RFC 4578 registry: 16).
        Some(16) if kind.is_http_client() => {
            BootOffer::Http { url: format!("{}/pxe/{}", server.http_base, EfiBinary::Ipxe.file_name()) }
        }
        Some(16) => BootOffer::None { reason: "HTTP boot architecture without the HTTPClient vendor class" },
        _ if !kind.is_pxe() => BootOffer::None { reason: "not a PXE client (no PXEClient vendor class)" },
        None | Some(0) => BootOffer::Tftp { server: server.tftp, file: BIOS_BINARY },
        // x86-64 UEFI (7), and EFI BC (9), which firmware of that era uses for the same thing.
        Some(7 | 9) => BootOffer::Tftp { server: server.tftp, file: server.efi_binary.file_name() },
        Some(_) => BootOffer::None { reason: "no boot program for this architecture" },
    }
}

/// The RFC 4578 / IANA name of an architecture code, for humans.
pub fn arch_name(arch: u16) -> &'static str {
    match arch {
        0 => "x86 BIOS",
        6 => "x86 UEFI",
        7 => "x64 UEFI",
        9 => "EFI BC",
        10 => "ARM32 UEFI",
        11 => "ARM64 UEFI",
        15 => "x86 UEFI HTTP",
        16 => "x64 UEFI HTTP",
        18 => "ARM32 UEFI HTTP",
        19 => "ARM64 UEFI HTTP",
        _ => "other",
    }
}

/// The CPU architecture an arch code implies (BIOS does not say 32 or 64 bit: `x86`).
pub fn cpu_arch(arch: u16) -> &'static str {
    match arch {
        0 | 6 | 15 => "x86",
        7 | 9 | 16 => "x86_64",
        10 | 18 => "arm",
        11 | 19 => "arm64",
        _ => "other",
    }
}

/// The short arch name recorded on an asset (`bios`, `uefi`, ...).
pub fn firmware(arch: u16) -> &'static str {
    match arch {
        0 => "bios",
        6 | 7 | 9 | 10 | 11 => "uefi",
        15 | 16 | 18 | 19 => "uefi-http",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server() -> BootServer {
        BootServer {
            tftp: Ipv4Addr::new(10, 213, 0, 1),
            http_base: "http://10.213.0.1:8080".into(),
            efi_binary: EfiBinary::Ipxe,
        }
    }

    fn pxe(arch: u16) -> ClientKind<'static> {
        ClientKind { arch: Some(arch), user_class: None, vendor_class: Some(b"PXEClient:Arch:00000:UNDI:002001") }
    }

    #[test]
    fn firmware_pxe_gets_the_binary_for_its_architecture() {
        let s = server();
        assert_eq!(choose(&pxe(0), &s), BootOffer::Tftp { server: s.tftp, file: "undionly.kpxe" });
        assert_eq!(choose(&pxe(7), &s), BootOffer::Tftp { server: s.tftp, file: "ipxe.efi" });
        assert_eq!(choose(&pxe(9), &s), BootOffer::Tftp { server: s.tftp, file: "ipxe.efi" });
        let snp = BootServer { efi_binary: EfiBinary::SnpOnly, ..server() };
        assert_eq!(choose(&pxe(7), &snp), BootOffer::Tftp { server: s.tftp, file: "snponly.efi" });
        assert!(matches!(choose(&pxe(11), &s), BootOffer::None { .. }), "no ARM64 binary is shipped");
    }

    #[test]
    fn ipxe_gets_the_script_not_itself_again() {
        let s = server();
        for user_class in [&b"iPXE"[..], &b"\x04iPXE"[..], &b"\x03abc\x04iPXE"[..]] {
            let kind = ClientKind { user_class: Some(user_class), ..pxe(0) };
            assert_eq!(choose(&kind, &s), BootOffer::Script { url: "http://10.213.0.1:8080/boot.ipxe".into() });
        }
        let not_ipxe = ClientKind { user_class: Some(b"\x09iPXE-like"), ..pxe(0) };
        assert_eq!(choose(&not_ipxe, &s), BootOffer::Tftp { server: s.tftp, file: "undionly.kpxe" });
        let truncated = ClientKind { user_class: Some(b"\x09iPXE"), ..pxe(0) };
        assert!(!truncated.is_ipxe());
    }

    #[test]
    fn uefi_http_boot_gets_a_url_only_with_the_http_vendor_class() {
        let s = server();
        let http = ClientKind { arch: Some(16), user_class: None, vendor_class: Some(b"HTTPClient:Arch:00016") };
        assert_eq!(choose(&http, &s), BootOffer::Http { url: "http://10.213.0.1:8080/pxe/ipxe.efi".into() });
        assert!(matches!(choose(&pxe(16), &s), BootOffer::None { .. }));
    }

    #[test]
    fn non_pxe_clients_get_no_boot_offer_and_a_reason() {
        let plain = ClientKind { arch: None, user_class: None, vendor_class: Some(b"udhcp 1.35.0") };
        let offer = choose(&plain, &server());
        assert_eq!(offer, BootOffer::None { reason: "not a PXE client (no PXEClient vendor class)" });
        assert!(offer.describe(&plain).contains("no PXEClient vendor class"));
    }
}
