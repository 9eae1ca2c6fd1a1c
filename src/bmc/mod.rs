//! Talking to BMCs: power status, power actions and the next boot device. The only module that
//! talks to BMCs. `Bmc` is the object-safe face the workflow engine and the API use; `driver`
//! picks the implementation for a BMC kind (IPMI over RMCP+ today, Redfish later).

pub mod chassis;
pub mod cli;
mod ipmi;
mod session;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

pub use crate::model::BmcDriver as BmcKind;
use crate::secret::Secret;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PowerState {
    On,
    Off,
}

impl PowerState {
    pub const fn as_str(self) -> &'static str {
        match self {
            PowerState::On => "on",
            PowerState::Off => "off",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PowerAction {
    On,
    Off,
    /// ACPI soft shutdown (the OS is asked to power off).
    Soft,
    Cycle,
    /// Hard reset.
    Reset,
}

impl PowerAction {
    pub const fn as_str(self) -> &'static str {
        match self {
            PowerAction::On => "on",
            PowerAction::Off => "off",
            PowerAction::Soft => "soft",
            PowerAction::Cycle => "cycle",
            PowerAction::Reset => "reset",
        }
    }
}

impl FromStr for PowerAction {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "on" => Ok(PowerAction::On),
            "off" => Ok(PowerAction::Off),
            "soft" => Ok(PowerAction::Soft),
            "cycle" => Ok(PowerAction::Cycle),
            "reset" => Ok(PowerAction::Reset),
            other => Err(format!("unknown power action `{other}` (on, off, soft, cycle, reset)")),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BootDevice {
    Pxe,
    Disk,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BootOverride {
    pub device: BootDevice,
    /// Boot the device in UEFI mode (else legacy BIOS).
    pub efi: bool,
    /// Keep the override for every boot (else the next boot only).
    pub persistent: bool,
}

/// Where a BMC is and how to log in. `Debug` shows the password as `[redacted]`.
#[derive(Debug, Clone)]
pub struct BmcTarget {
    pub kind: BmcKind,
    pub address: String,
    pub port: u16,
    pub username: String,
    pub password: Secret<String>,
    /// RMCP+ cipher suite; only 3 (RAKP-HMAC-SHA1, HMAC-SHA1-96, AES-CBC-128) is implemented.
    pub cipher_suite: u8,
}

#[derive(Debug, Clone, Copy)]
pub struct BmcSettings {
    /// How long one attempt waits for each answer of the BMC: a BMC silent that long fails the
    /// attempt (an attempt is also abandoned after 4 × timeout in all, so a BMC answering each
    /// packet just in time cannot stretch it).
    pub timeout: Duration,
    /// Further attempts after a failed one (each with a fresh session); only for failures that
    /// may pass (unreachable, protocol, busy), never for wrong credentials.
    pub retries: u32,
}

impl Default for BmcSettings {
    fn default() -> Self {
        BmcSettings { timeout: Duration::from_secs(2), retries: 2 }
    }
}

/// What went wrong talking to a BMC. Messages are fit for an operator and never carry the password.
#[derive(Debug, thiserror::Error)]
pub enum BmcError {
    #[error("BMC {address} unreachable: {detail}")]
    Unreachable { address: String, detail: String },
    #[error("BMC {address} refused the login: {detail}")]
    AuthFailed { address: String, detail: String },
    #[error("not supported: {what}")]
    Unsupported { what: String },
    #[error("{what} failed: completion code 0x{completion_code:02X} ({})", chassis::completion_code_meaning(*completion_code))]
    Command { what: String, completion_code: u8 },
    #[error("BMC protocol error: {0}")]
    Protocol(String),
}

impl BmcError {
    pub fn code(&self) -> &'static str {
        match self {
            BmcError::Unreachable { .. } => "BMC_UNREACHABLE",
            BmcError::AuthFailed { .. } => "BMC_AUTH_FAILED",
            BmcError::Unsupported { .. } => "BMC_UNSUPPORTED",
            BmcError::Command { .. } => "BMC_COMMAND_FAILED",
            BmcError::Protocol(_) => "BMC_PROTOCOL_ERROR",
        }
    }

    /// Whether trying again (with a fresh session) may succeed.
    pub fn retryable(&self) -> bool {
        match self {
            BmcError::Unreachable { .. } | BmcError::Protocol(_) => true,
            BmcError::AuthFailed { .. } | BmcError::Unsupported { .. } => false,
            BmcError::Command { completion_code, .. } => chassis::completion_code_is_transient(*completion_code),
        }
    }
}

pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// Everything a BMC can be asked. Object-safe so Redfish can be added later.
pub trait Bmc: Send + Sync {
    fn power_status<'a>(&'a self, t: &'a BmcTarget) -> BoxFuture<'a, Result<PowerState, BmcError>>;
    /// Idempotent for `On`, `Off` and `Soft`: when the BMC refuses the command and its power is
    /// already as asked, that is success. `Soft`, `Cycle` and `Reset` are never sent twice.
    fn power<'a>(&'a self, t: &'a BmcTarget, action: PowerAction) -> BoxFuture<'a, Result<(), BmcError>>;
    fn set_boot<'a>(&'a self, t: &'a BmcTarget, boot: BootOverride) -> BoxFuture<'a, Result<(), BmcError>>;
}

/// The driver for a BMC kind (Redfish: a driver whose every call is `BmcError::Unsupported` for now).
pub fn driver(kind: BmcKind, settings: BmcSettings) -> Arc<dyn Bmc> {
    match kind {
        BmcKind::Ipmi => Arc::new(ipmi::IpmiDriver::new(settings)),
        BmcKind::Redfish => Arc::new(Unimplemented(kind)),
    }
}

/// A BMC kind without an implementation yet.
struct Unimplemented(BmcKind);

impl Unimplemented {
    fn error(&self) -> BmcError {
        BmcError::Unsupported { what: format!("the {} BMC driver is not implemented yet", self.0.as_str()) }
    }
}

impl Bmc for Unimplemented {
    fn power_status<'a>(&'a self, _: &'a BmcTarget) -> BoxFuture<'a, Result<PowerState, BmcError>> {
        Box::pin(std::future::ready(Err(self.error())))
    }
    fn power<'a>(&'a self, _: &'a BmcTarget, _: PowerAction) -> BoxFuture<'a, Result<(), BmcError>> {
        Box::pin(std::future::ready(Err(self.error())))
    }
    fn set_boot<'a>(&'a self, _: &'a BmcTarget, _: BootOverride) -> BoxFuture<'a, Result<(), BmcError>> {
        Box::pin(std::future::ready(Err(self.error())))
    }
}

impl fmt::Display for PowerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> BmcTarget {
        BmcTarget {
            kind: BmcKind::Ipmi,
            address: "10.0.0.5".into(),
            port: 623,
            username: "admin".into(),
            password: Secret::new("hunter2-secret".into()),
            cipher_suite: 3,
        }
    }

    #[test]
    fn power_actions_round_trip_through_their_names() {
        for a in [PowerAction::On, PowerAction::Off, PowerAction::Soft, PowerAction::Cycle, PowerAction::Reset] {
            assert_eq!(a.as_str().parse::<PowerAction>(), Ok(a));
            assert_eq!(serde_json::to_string(&a).expect("json"), format!("\"{}\"", a.as_str()));
        }
        assert!("restart".parse::<PowerAction>().is_err());
    }

    #[test]
    fn debug_of_a_target_hides_the_password() {
        let shown = format!("{:?}", target());
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("[redacted]") && shown.contains("10.0.0.5"), "{shown}");
    }

    #[test]
    fn error_codes_and_retryability() {
        let unreachable = BmcError::Unreachable { address: "a".into(), detail: "d".into() };
        let auth = BmcError::AuthFailed { address: "a".into(), detail: "d".into() };
        let busy = BmcError::Command { what: "Chassis Control".into(), completion_code: 0xC0 };
        let invalid = BmcError::Command { what: "Chassis Control".into(), completion_code: 0xCC };
        let unsupported = BmcError::Unsupported { what: "x".into() };
        let protocol = BmcError::Protocol("x".into());
        assert_eq!(
            [&unreachable, &auth, &busy, &unsupported, &protocol].map(BmcError::code),
            ["BMC_UNREACHABLE", "BMC_AUTH_FAILED", "BMC_COMMAND_FAILED", "BMC_UNSUPPORTED", "BMC_PROTOCOL_ERROR"]
        );
        assert!(unreachable.retryable() && protocol.retryable() && busy.retryable());
        assert!(!auth.retryable() && !unsupported.retryable() && !invalid.retryable());
        assert_eq!(invalid.to_string(), "Chassis Control failed: completion code 0xCC (invalid data field in request)");
    }

    #[tokio::test]
    async fn the_redfish_driver_answers_unsupported() {
        let d = driver(BmcKind::Redfish, BmcSettings::default());
        let t = BmcTarget { kind: BmcKind::Redfish, ..target() };
        let e = d.power_status(&t).await.expect_err("unsupported");
        assert_eq!(e.code(), "BMC_UNSUPPORTED");
        assert!(d.power(&t, PowerAction::On).await.is_err());
    }
}
