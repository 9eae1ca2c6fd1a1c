//! `talos-standin`: a TEST STAND-IN for a Talos node (not Talos). See the library docs.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use talos_standin::apid::{PreconditionFailures, ServeOptions};
use talos_standin::config::MachineConfig;

/// TEST STAND-IN for a Talos node, for ironbay's tests. NOT Talos: it serves only
/// machine.MachineService/Bootstrap (with apid's TLS client-certificate and role rules) and
/// fakes the install (a raw image from the registry mirror plus the config in the disk's last MiB).
#[derive(Parser)]
#[command(name = "talos-standin", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve machine.MachineService over TLS like apid (client cert required, verified against
    /// the config's OS CA, EKU exactly [ClientAuth]; Bootstrap needs O=os:admin).
    Serve {
        /// A Talos v1alpha1 machine config (YAML, may be multi-document).
        #[arg(long)]
        config: PathBuf,
        /// Address to listen on, e.g. 127.0.0.1:50000.
        #[arg(long)]
        listen: SocketAddr,
        /// Authorized Bootstrap calls answered FailedPrecondition before one succeeds; `never`
        /// keeps answering FailedPrecondition.
        #[arg(long, default_value = "3")]
        precondition_failures: PreconditionFailures,
        /// Append one JSON line per Bootstrap call: {"n":..,"code":..,"org":[..]}.
        #[arg(long)]
        state_file: Option<PathBuf>,
    },
    /// Run as the node inside a lab VM (started by /init): PXE boot -> fetch talos.config=,
    /// install, reboot; booted with talos.standin.installed -> static address, serve on :50000.
    Node,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        match cli.command {
            Command::Serve { config, listen, precondition_failures, state_file } => {
                let text = std::fs::read_to_string(&config).with_context(|| format!("reading {}", config.display()))?;
                let config = MachineConfig::parse(&text)?;
                let opts = ServeOptions { precondition_failures, state_file, extra_ips: Vec::new() };
                talos_standin::apid::serve(&config, listen, opts).await
            }
            Command::Node => talos_standin::node::run().await,
        }
    })
}
