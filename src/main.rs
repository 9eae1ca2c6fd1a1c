//! The `ironbay` command: `serve` runs the appliance, `config check` validates a config file,
//! `bmc` drives BMCs directly.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ironbay::config::{self, Overrides};

#[derive(Parser)]
#[command(name = "ironbay", version, about = "Bare-metal provisioning appliance")]
struct Cli {
    /// Config file (TOML). Default: ./ironbay.toml if present.
    #[arg(long, global = true, env = "IRONBAY_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the appliance.
    Serve {
        /// API/console listen address(es), comma-separated (config `listen`).
        #[arg(long)]
        listen: Option<String>,
        /// Data directory (config `data_dir`).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// sqlite://… or postgres://… (config `database_url`).
        #[arg(long)]
        database_url: Option<String>,
    },
    /// Power and boot device of BMCs (IPMI), several at once; password in IRONBAY_BMC_PASSWORD.
    Bmc(ironbay::bmc::cli::BmcArgs),
    /// Configuration tools.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate a config file; names the bad key and its line.
    Check {
        /// The file to check (default: --config, else ./ironbay.toml).
        file: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Bmc(args) => ironbay::bmc::cli::run(args),
        Command::Config { command: ConfigCommand::Check { file } } => {
            let path = file.or(cli.config).unwrap_or_else(|| PathBuf::from("ironbay.toml"));
            match config::check_file(&path) {
                Ok(_) => {
                    println!("{}: OK", path.display());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(2)
                }
            }
        }
        Command::Serve { listen, data_dir, database_url } => {
            let overrides = Overrides { listen, data_dir, database_url };
            let cfg = match config::load(cli.config.as_deref(), &overrides) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            init_logging(&cfg.log);
            let rt = match tokio::runtime::Runtime::new() {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("error: starting the runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match rt.block_on(ironbay::server::serve(cfg)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn init_logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("IRONBAY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("{default},sqlx=warn,tower_http=warn")));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(std::io::stderr).init();
}
