//! The IPMI commands ipmi-rs lacks, as `IpmiCommand`s: the session's privilege level and its
//! close, chassis status and control, and the boot-flags parameter of the system boot options.
//! Pure encodings (IPMI v2.0 rev 1.1: §22.18 / §22.19 sessions, §28.2 / §28.3 chassis, §28.12
//! boot options), unit-tested byte for byte.

use ipmi_rs::connection::{IpmiCommand, Message, NetFn, NotEnoughData};

use super::{BootDevice, BootOverride, PowerAction, PowerState};

/// An `IpmiCommand` whose success answer carries nothing we use.
macro_rules! answers_nothing {
    ($command:ty) => {
        impl IpmiCommand for $command {
            type Output = ();
            type Error = NotEnoughData;
            fn parse_success_response(_: &[u8]) -> Result<(), NotEnoughData> {
                Ok(())
            }
        }
    };
}

/// Set Session Privilege Level (App 0x3B): ipmi-rs opens sessions at User level, and chassis
/// control needs Administrator.
#[derive(Debug, Clone, Copy)]
pub struct SetSessionPrivilegeAdministrator;

impl From<SetSessionPrivilegeAdministrator> for Message {
    fn from(_: SetSessionPrivilegeAdministrator) -> Message {
        Message::new_request(NetFn::App, 0x3B, vec![0x04])
    }
}

answers_nothing!(SetSessionPrivilegeAdministrator);

/// Close Session (App 0x3C) by the BMC's session ID (ipmi_sim accepts no session handle).
#[derive(Debug, Clone, Copy)]
pub struct CloseSession(pub u32);

impl From<CloseSession> for Message {
    fn from(c: CloseSession) -> Message {
        Message::new_request(NetFn::App, 0x3C, c.0.to_le_bytes().to_vec())
    }
}

answers_nothing!(CloseSession);

/// Get Chassis Status (Chassis 0x01): bit 0 of the first data byte is "power is on".
#[derive(Debug, Clone, Copy)]
pub struct GetChassisStatus;

impl From<GetChassisStatus> for Message {
    fn from(_: GetChassisStatus) -> Message {
        Message::new_request(NetFn::Chassis, 0x01, Vec::new())
    }
}

impl IpmiCommand for GetChassisStatus {
    type Output = PowerState;
    type Error = NotEnoughData;
    fn parse_success_response(data: &[u8]) -> Result<PowerState, NotEnoughData> {
        // The spec makes three bytes mandatory; only the first one matters here.
        match data.first() {
            Some(b) if b & 0x01 != 0 => Ok(PowerState::On),
            Some(_) => Ok(PowerState::Off),
            None => Err(NotEnoughData),
        }
    }
}

/// Chassis Control (Chassis 0x02).
#[derive(Debug, Clone, Copy)]
pub struct ChassisControl(pub PowerAction);

impl ChassisControl {
    pub const fn code(self) -> u8 {
        match self.0 {
            PowerAction::Off => 0x00,
            PowerAction::On => 0x01,
            PowerAction::Cycle => 0x02,
            PowerAction::Reset => 0x03,
            // "Initiate a soft-shutdown of OS via ACPI by emulating a fatal overtemperature".
            PowerAction::Soft => 0x05,
        }
    }
}

impl From<ChassisControl> for Message {
    fn from(c: ChassisControl) -> Message {
        Message::new_request(NetFn::Chassis, 0x02, vec![c.code()])
    }
}

answers_nothing!(ChassisControl);

/// Set System Boot Options (Chassis 0x08), parameter 5 "boot flags". ipmi_sim needs neither the
/// set-in-progress parameter (0, which it refuses) nor the valid-bit clearing one (3, ignored).
#[derive(Debug, Clone, Copy)]
pub struct SetBootFlags(pub BootOverride);

impl SetBootFlags {
    pub fn data(self) -> [u8; 6] {
        let b = self.0;
        // Byte 1: valid, persistent (else next boot only), EFI (else legacy).
        let mut flags = 0x80;
        if b.persistent {
            flags |= 0x40;
        }
        if b.efi {
            flags |= 0x20;
        }
        // Byte 2 bits 5:2: 0001 force PXE, 0010 force default hard drive.
        let device = match b.device {
            BootDevice::Pxe => 0x04,
            BootDevice::Disk => 0x08,
        };
        [0x05, flags, device, 0x00, 0x00, 0x00]
    }
}

impl From<SetBootFlags> for Message {
    fn from(c: SetBootFlags) -> Message {
        Message::new_request(NetFn::Chassis, 0x08, c.data().to_vec())
    }
}

answers_nothing!(SetBootFlags);

/// The name the spec gives a completion code (§5.2), for error messages.
pub fn completion_code_meaning(cc: u8) -> &'static str {
    match cc {
        0xC0 => "node busy",
        0xC1 => "invalid command",
        0xC2 => "command invalid for this LUN",
        0xC3 => "timeout while processing",
        0xC4 => "out of space",
        0xC5 => "reservation cancelled or invalid",
        0xC6 => "request data truncated",
        0xC7 => "request data length invalid",
        0xC8 => "request data field length limit exceeded",
        0xC9 => "parameter out of range",
        0xCA => "cannot return the requested number of bytes",
        0xCB => "requested sensor, data or record not present",
        0xCC => "invalid data field in request",
        0xCD => "command illegal for this sensor or record type",
        0xCE => "response could not be provided",
        0xCF => "duplicated request",
        0xD0 => "SDR repository in update mode",
        0xD1 => "device in firmware update mode",
        0xD2 => "BMC initialization in progress",
        0xD3 => "destination unavailable",
        0xD4 => "insufficient privilege",
        0xD5 => "not supported in present state",
        0xD6 => "sub-function disabled",
        0xFF => "unspecified error",
        0x01..=0x7E => "OEM code",
        0x80..=0xBE => "command-specific code",
        _ => "reserved code",
    }
}

/// Completion codes that say "not now" rather than "never".
pub fn completion_code_is_transient(cc: u8) -> bool {
    matches!(cc, 0xC0 | 0xC3 | 0xCE | 0xD2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(m: Message) -> (u8, u8, Vec<u8>) {
        (m.netfn_raw(), m.cmd(), m.data().to_vec())
    }

    #[test]
    fn session_commands() {
        assert_eq!(bytes(SetSessionPrivilegeAdministrator.into()), (0x06, 0x3B, vec![0x04]));
        assert_eq!(bytes(CloseSession(0x1234_5678).into()), (0x06, 0x3C, vec![0x78, 0x56, 0x34, 0x12]));
    }

    #[test]
    fn chassis_status_and_its_power_bit() {
        assert_eq!(bytes(GetChassisStatus.into()), (0x00, 0x01, vec![]));
        assert_eq!(GetChassisStatus::parse_success_response(&[0x01, 0, 0]), Ok(PowerState::On));
        // Other bits of byte 1 (overload, interlock, policy) do not make it "on".
        assert_eq!(GetChassisStatus::parse_success_response(&[0x60, 0, 0]), Ok(PowerState::Off));
        assert_eq!(GetChassisStatus::parse_success_response(&[0x61]), Ok(PowerState::On));
        assert_eq!(GetChassisStatus::parse_success_response(&[]), Err(NotEnoughData));
    }

    #[test]
    fn chassis_control_codes() {
        let cases = [
            (PowerAction::Off, 0x00),
            (PowerAction::On, 0x01),
            (PowerAction::Cycle, 0x02),
            (PowerAction::Reset, 0x03),
            (PowerAction::Soft, 0x05),
        ];
        for (action, code) in cases {
            assert_eq!(bytes(ChassisControl(action).into()), (0x00, 0x02, vec![code]), "{action:?}");
        }
    }

    #[test]
    fn boot_flags() {
        let set = |device, efi, persistent| bytes(SetBootFlags(BootOverride { device, efi, persistent }).into());
        assert_eq!(set(BootDevice::Pxe, false, false), (0x00, 0x08, vec![0x05, 0x80, 0x04, 0, 0, 0]));
        assert_eq!(set(BootDevice::Pxe, true, false), (0x00, 0x08, vec![0x05, 0xA0, 0x04, 0, 0, 0]));
        assert_eq!(set(BootDevice::Disk, false, true), (0x00, 0x08, vec![0x05, 0xC0, 0x08, 0, 0, 0]));
        assert_eq!(set(BootDevice::Disk, true, true), (0x00, 0x08, vec![0x05, 0xE0, 0x08, 0, 0, 0]));
    }

    #[test]
    fn completion_codes() {
        assert_eq!(completion_code_meaning(0xD4), "insufficient privilege");
        assert_eq!(completion_code_meaning(0x81), "command-specific code");
        assert!(completion_code_is_transient(0xC0) && !completion_code_is_transient(0xC1));
    }
}
