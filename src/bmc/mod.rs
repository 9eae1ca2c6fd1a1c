//! PLACEHOLDER until the BMC driver branch lands (same public surface).
pub use crate::model::BmcDriver as BmcKind;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PowerState {
    On,
    Off,
}
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PowerAction {
    On,
    Off,
    Soft,
    Cycle,
    Reset,
}
impl PowerAction {
    pub fn as_str(self) -> &'static str {
        match self {
            PowerAction::On => "on",
            PowerAction::Off => "off",
            PowerAction::Soft => "soft",
            PowerAction::Cycle => "cycle",
            PowerAction::Reset => "reset",
        }
    }
}
impl std::str::FromStr for PowerAction {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "on" => PowerAction::On,
            "off" => PowerAction::Off,
            "soft" => PowerAction::Soft,
            "cycle" => PowerAction::Cycle,
            "reset" => PowerAction::Reset,
            o => return Err(format!("`{o}`")),
        })
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
    pub efi: bool,
    pub persistent: bool,
}
#[derive(Clone)]
pub struct BmcTarget {
    pub kind: BmcKind,
    pub address: String,
    pub port: u16,
    pub username: String,
    pub password: crate::secret::Secret<String>,
    pub cipher_suite: u8,
}
#[derive(Debug, Clone, Copy)]
pub struct BmcSettings {
    pub timeout: std::time::Duration,
    pub retries: u32,
}
impl Default for BmcSettings {
    fn default() -> Self {
        BmcSettings { timeout: std::time::Duration::from_secs(2), retries: 2 }
    }
}
#[derive(Debug, thiserror::Error)]
pub enum BmcError {
    #[error("unreachable {address}: {detail}")]
    Unreachable { address: String, detail: String },
    #[error("auth {address}: {detail}")]
    AuthFailed { address: String, detail: String },
    #[error("unsupported {what}")]
    Unsupported { what: String },
    #[error("command {what} {completion_code}")]
    Command { what: String, completion_code: u8 },
    #[error("protocol {0}")]
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
    pub fn retryable(&self) -> bool {
        matches!(self, BmcError::Unreachable { .. } | BmcError::Protocol(_))
    }
}
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;
pub trait Bmc: Send + Sync {
    fn power_status<'a>(&'a self, t: &'a BmcTarget) -> BoxFuture<'a, Result<PowerState, BmcError>>;
    fn power<'a>(&'a self, t: &'a BmcTarget, action: PowerAction) -> BoxFuture<'a, Result<(), BmcError>>;
    fn set_boot<'a>(&'a self, t: &'a BmcTarget, boot: BootOverride) -> BoxFuture<'a, Result<(), BmcError>>;
}
struct Nothing;
impl Bmc for Nothing {
    fn power_status<'a>(&'a self, _t: &'a BmcTarget) -> BoxFuture<'a, Result<PowerState, BmcError>> {
        Box::pin(async { Err(BmcError::Unsupported { what: "placeholder".into() }) })
    }
    fn power<'a>(&'a self, _t: &'a BmcTarget, _a: PowerAction) -> BoxFuture<'a, Result<(), BmcError>> {
        Box::pin(async { Err(BmcError::Unsupported { what: "placeholder".into() }) })
    }
    fn set_boot<'a>(&'a self, _t: &'a BmcTarget, _b: BootOverride) -> BoxFuture<'a, Result<(), BmcError>> {
        Box::pin(async { Err(BmcError::Unsupported { what: "placeholder".into() }) })
    }
}
pub fn driver(_kind: BmcKind, _settings: BmcSettings) -> Arc<dyn Bmc> {
    Arc::new(Nothing)
}
