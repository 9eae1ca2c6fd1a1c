//! The commands the appliance runs on the agent over SSH `exec`. The exec string is an argv joined
//! by single spaces (no value may contain whitespace); both ends use this one definition: the
//! appliance renders it with [`Command::to_exec`], the agent parses it with [`Command::parse_exec`]
//! (and its command line with the same clap derive), so a field cannot mean two things.

use clap::{Subcommand, ValueEnum};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WipeMethod {
    /// Every signature gone (wipefs-style), the first and last 32 MiB zeroed, GPT backup cleared.
    Quick,
    /// BLKSECDISCARD, else BLKDISCARD, where the device supports it.
    Discard,
    /// The whole device overwritten with zeros.
    Zero,
    /// The drive's own secure erase (NVMe format, ATA security erase); never silently downgraded.
    Secure,
}

impl WipeMethod {
    pub const fn as_str(self) -> &'static str {
        match self {
            WipeMethod::Quick => "quick",
            WipeMethod::Discard => "discard",
            WipeMethod::Zero => "zero",
            WipeMethod::Secure => "secure",
        }
    }
}

impl std::str::FromStr for WipeMethod {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        <WipeMethod as ValueEnum>::from_str(s, false)
            .map_err(|_| format!("`{s}` is not a wipe method (quick, discard, zero, secure)"))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// Collect and print the machine's inventory.
    Inventory,
    /// List the block devices (the inventory's disks).
    Lsblk,
    /// Wipe disks. Read-only, removable and virtual-media disks are skipped and reported.
    Wipe {
        #[arg(long, value_enum)]
        method: WipeMethod,
        /// A disk to wipe (`/dev/vda`, `vda`); repeat for more. None: every disk that may be wiped.
        #[arg(long = "disk")]
        disks: Vec<String>,
        /// The appliance's name for this run (its workflow step): the history keeps it, so after
        /// a lost connection the appliance can ask what became of exactly this run.
        #[arg(long)]
        run: Option<String>,
    },
    /// Stream an image over HTTP onto a disk, verifying its SHA-256.
    WriteImage {
        #[arg(long)]
        url: String,
        /// Hex SHA-256 of the image as written (after decompression).
        #[arg(long)]
        sha256: String,
        #[arg(long)]
        disk: String,
        /// As for `wipe`.
        #[arg(long)]
        run: Option<String>,
    },
    /// What this agent ran since it started (commands with their outcomes).
    History,
    Reboot,
    Poweroff,
    /// Allow an admin's public key to open a rescue shell (`ssh-ed25519 <base64>`).
    RescueKey {
        key_type: String,
        key_base64: String,
    },
}

#[derive(clap::Parser)]
#[command(name = "ironbay-agent", no_binary_name = true, disable_help_subcommand = true)]
struct ExecLine {
    #[command(subcommand)]
    command: Command,
}

impl Command {
    /// The command's name as the exec string starts with it.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Inventory => "inventory",
            Command::Lsblk => "lsblk",
            Command::Wipe { .. } => "wipe",
            Command::WriteImage { .. } => "write-image",
            Command::History => "history",
            Command::Reboot => "reboot",
            Command::Poweroff => "poweroff",
            Command::RescueKey { .. } => "rescue-key",
        }
    }

    /// Whether the command changes disks (the appliance audits and guards these).
    pub fn is_destructive(&self) -> bool {
        matches!(self, Command::Wipe { .. } | Command::WriteImage { .. })
    }

    /// The run name a destructive command carries, if any.
    pub fn run_id(&self) -> Option<&str> {
        match self {
            Command::Wipe { run, .. } | Command::WriteImage { run, .. } => run.as_deref(),
            _ => None,
        }
    }

    /// The exec string. Values containing whitespace would split: callers validate them first
    /// (`parse_exec` of the result fails loudly if they did not).
    pub fn to_exec(&self) -> String {
        let mut argv: Vec<String> = vec![self.name().into()];
        match self {
            Command::Wipe { method, disks, run } => {
                argv.extend(["--method".into(), method.as_str().into()]);
                for d in disks {
                    argv.extend(["--disk".into(), d.clone()]);
                }
                if let Some(r) = run {
                    argv.extend(["--run".into(), r.clone()]);
                }
            }
            Command::WriteImage { url, sha256, disk, run } => {
                argv.extend([
                    "--url".into(),
                    url.clone(),
                    "--sha256".into(),
                    sha256.clone(),
                    "--disk".into(),
                    disk.clone(),
                ]);
                if let Some(r) = run {
                    argv.extend(["--run".into(), r.clone()]);
                }
            }
            Command::RescueKey { key_type, key_base64 } => argv.extend([key_type.clone(), key_base64.clone()]),
            Command::Inventory | Command::Lsblk | Command::History | Command::Reboot | Command::Poweroff => {}
        }
        argv.join(" ")
    }

    /// Parses an exec string; the error is clap's readable message.
    pub fn parse_exec(line: &str) -> Result<Command, String> {
        use clap::Parser;
        ExecLine::try_parse_from(line.split_whitespace()).map(|l| l.command).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_survives_its_exec_string() {
        let all = [
            Command::Inventory,
            Command::Lsblk,
            Command::Wipe { method: WipeMethod::Quick, disks: vec![], run: None },
            Command::Wipe {
                method: WipeMethod::Secure,
                disks: vec!["/dev/vda".into(), "vdb".into()],
                run: Some("wf_1:5:2".into()),
            },
            Command::WriteImage {
                url: "http://10.0.0.1:8080/images/a.raw.zst".into(),
                sha256: "ab".repeat(32),
                disk: "/dev/vda".into(),
                run: Some("wf_1:6:1".into()),
            },
            Command::History,
            Command::Reboot,
            Command::Poweroff,
            Command::RescueKey { key_type: "ssh-ed25519".into(), key_base64: "AAAAC3Nz".into() },
        ];
        for c in all {
            assert_eq!(Command::parse_exec(&c.to_exec()).unwrap(), c, "{}", c.to_exec());
        }
    }

    #[test]
    fn bad_exec_strings_are_refused_with_a_reason() {
        assert!(Command::parse_exec("").is_err());
        assert!(Command::parse_exec("format-everything").unwrap_err().contains("format-everything"));
        assert!(Command::parse_exec("wipe --method shred").unwrap_err().contains("shred"));
        assert!(Command::parse_exec("write-image --url x").is_err());
    }
}
