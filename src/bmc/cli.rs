//! `ironbay bmc <action> --host H[:port]...`: one BMC action on many hosts at once, for operators
//! and the benchmark. The password comes from `IRONBAY_BMC_PASSWORD` only, never from a flag (a
//! flag shows in `ps` and shell history). One line per host, in the order given; exit code 1 if
//! any host failed.

use std::process::ExitCode;
use std::time::Duration;

use super::{BmcKind, BmcSettings, BmcTarget, BootDevice, BootOverride, PowerAction, driver};
use crate::secret::Secret;

pub const PASSWORD_ENV: &str = "IRONBAY_BMC_PASSWORD";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Action {
    Status,
    On,
    Off,
    Soft,
    Cycle,
    Reset,
    BootdevPxe,
    BootdevDisk,
}

#[derive(Debug, clap::Args)]
pub struct BmcArgs {
    /// What to do.
    #[arg(value_enum)]
    pub action: Action,
    /// A BMC, `address` or `address:port` (`[v6]:port`); repeat for more. Default port 623.
    #[arg(long = "host", required = true)]
    pub hosts: Vec<String>,
    /// BMC user (the password is read from IRONBAY_BMC_PASSWORD).
    #[arg(long)]
    pub username: String,
    /// How long to wait for each answer of a BMC.
    #[arg(long, default_value_t = 2000)]
    pub timeout_ms: u64,
    /// Further attempts after a failure that may pass.
    #[arg(long, default_value_t = 2)]
    pub retries: u32,
    /// bootdev-*: boot in UEFI mode (else legacy BIOS).
    #[arg(long)]
    pub efi: bool,
    /// bootdev-*: keep the device for every boot (else the next boot only).
    #[arg(long)]
    pub persistent: bool,
}

/// Runs the subcommand; prints one line per host.
pub fn run(args: BmcArgs) -> ExitCode {
    let Ok(password) = std::env::var(PASSWORD_ENV) else {
        eprintln!("error: set the BMC password in {PASSWORD_ENV}");
        return ExitCode::from(2);
    };
    let mut targets = Vec::with_capacity(args.hosts.len());
    for host in &args.hosts {
        match parse_host(host) {
            Ok((address, port)) => targets.push(BmcTarget {
                kind: BmcKind::Ipmi,
                address,
                port,
                username: args.username.clone(),
                password: Secret::new(password.clone()),
                cipher_suite: 3,
            }),
            Err(e) => {
                eprintln!("error: --host {host}: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let settings = BmcSettings { timeout: Duration::from_millis(args.timeout_ms), retries: args.retries };
    let lines = rt.block_on(run_all(args.action, args.efi, args.persistent, settings, targets));
    let mut failed = false;
    for (host, line) in args.hosts.iter().zip(lines) {
        failed |= line.is_err();
        match line {
            Ok(s) | Err(s) => println!("{host}: {s}"),
        }
    }
    if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}

/// Every target concurrently; per target `Ok(on|off|ok)` or `Err("<code>: <message>")`.
async fn run_all(
    action: Action,
    efi: bool,
    persistent: bool,
    settings: BmcSettings,
    targets: Vec<BmcTarget>,
) -> Vec<Result<String, String>> {
    let bmc = driver(BmcKind::Ipmi, settings);
    let tasks: Vec<_> = targets
        .into_iter()
        .map(|t| {
            let bmc = bmc.clone();
            tokio::spawn(async move {
                let boot = |device| BootOverride { device, efi, persistent };
                let result = match action {
                    Action::Status => bmc.power_status(&t).await.map(|s| s.as_str()),
                    Action::On => bmc.power(&t, PowerAction::On).await.map(|_| "ok"),
                    Action::Off => bmc.power(&t, PowerAction::Off).await.map(|_| "ok"),
                    Action::Soft => bmc.power(&t, PowerAction::Soft).await.map(|_| "ok"),
                    Action::Cycle => bmc.power(&t, PowerAction::Cycle).await.map(|_| "ok"),
                    Action::Reset => bmc.power(&t, PowerAction::Reset).await.map(|_| "ok"),
                    Action::BootdevPxe => bmc.set_boot(&t, boot(BootDevice::Pxe)).await.map(|_| "ok"),
                    Action::BootdevDisk => bmc.set_boot(&t, boot(BootDevice::Disk)).await.map(|_| "ok"),
                };
                result.map(str::to_string).map_err(|e| format!("{}: {e}", e.code()))
            })
        })
        .collect();
    let mut lines = Vec::with_capacity(tasks.len());
    for task in tasks {
        lines.push(task.await.unwrap_or_else(|e| Err(format!("BMC_PROTOCOL_ERROR: the call failed: {e}"))));
    }
    lines
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`; a bare IPv6 address has no port.
fn parse_host(s: &str) -> Result<(String, u16), String> {
    let default = BmcKind::Ipmi.default_port();
    let port = |p: &str| p.parse::<u16>().map_err(|_| format!("bad port `{p}`"));
    if let Some(rest) = s.strip_prefix('[') {
        let (addr, tail) = rest.split_once(']').ok_or("missing `]`")?;
        return match tail {
            "" => Ok((addr.to_string(), default)),
            t => Ok((addr.to_string(), port(t.strip_prefix(':').ok_or("expected `:port` after `]`")?)?)),
        };
    }
    match s.split_once(':') {
        Some((addr, p)) if !p.contains(':') && !addr.is_empty() => Ok((addr.to_string(), port(p)?)),
        _ if s.is_empty() => Err("empty host".into()),
        _ => Ok((s.to_string(), default)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_with_and_without_ports() {
        assert_eq!(parse_host("10.0.0.1"), Ok(("10.0.0.1".into(), 623)));
        assert_eq!(parse_host("10.0.0.1:6230"), Ok(("10.0.0.1".into(), 6230)));
        assert_eq!(parse_host("bmc-7.rack"), Ok(("bmc-7.rack".into(), 623)));
        assert_eq!(parse_host("[fd00::5]:700"), Ok(("fd00::5".into(), 700)));
        assert_eq!(parse_host("[fd00::5]"), Ok(("fd00::5".into(), 623)));
        assert_eq!(parse_host("fd00::5"), Ok(("fd00::5".into(), 623)));
        assert!(parse_host("10.0.0.1:x").is_err());
        assert!(parse_host("[fd00::5").is_err());
        assert!(parse_host("").is_err());
    }
}
