//! Configuration: the TOML file's serde shape (`FileConfig`, strict: unknown keys are errors) kept
//! apart from the validated `Config` the appliance runs on. Sources, weakest first: built-in
//! defaults, the file, `IRONBAY_*` environment variables, command-line flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// Environment variables with the `IRONBAY_` prefix that are not config keys.
const NON_CONFIG_ENV: &[&str] = &["IRONBAY_ADMIN_PASSWORD", "IRONBAY_CONFIG", "IRONBAY_LOG"];
const NON_CONFIG_ENV_PREFIXES: &[&str] = &["IRONBAY_TEST_"];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
    #[error("{origin}: key `{key}`{}: {message}", line.map(|l| format!(" (line {l})")).unwrap_or_default())]
    Invalid { origin: String, key: String, line: Option<usize>, message: String },
    #[error("environment variable {var}: {message}")]
    Env { var: String, message: String },
}

/// The file's shape. Every table denies unknown keys so a typo is an error, not a silent default.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<Listen>,
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub log: Option<String>,
    #[serde(default)]
    pub auth: AuthFile,
    #[serde(default)]
    pub rate_limit: RateLimitFile,
    #[serde(default)]
    pub api: ApiFile,
    #[serde(default)]
    pub boot: BootFile,
    #[serde(default)]
    pub dhcp: DhcpFile,
    #[serde(default)]
    pub devices: DevicesFile,
    #[serde(default)]
    pub psks: PsksFile,
    #[serde(default)]
    pub webhooks: WebhooksFile,
    #[serde(default)]
    pub workflows: WorkflowsFile,
    #[serde(default)]
    pub talos: TalosFile,
    #[serde(default)]
    pub tls: TlsFile,
}

/// `[tls]`: serve the API and console over HTTPS with this PEM certificate chain and key.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFile {
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// `Strict-Transport-Security: max-age` (default one year; 0 sends none).
    pub hsts_max_age_secs: Option<u64>,
}

/// HTTPS for the listeners (the boot routes too: iPXE fetches over HTTP from the boot URL, which
/// is configured separately).
#[derive(Debug, Clone)]
pub struct TlsConfig {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    pub hsts_max_age_secs: u64,
}

/// `listen = "127.0.0.1:8080"` or `listen = ["127.0.0.1:8080", "10.0.0.1:8080"]`; a string may
/// also hold a comma-separated list (handy in an environment variable).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Listen {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthFile {
    pub access_token_ttl_secs: Option<u64>,
    pub session_ttl_hours: Option<u64>,
    pub remember_me_days: Option<u64>,
    pub lockout_threshold: Option<u32>,
    pub lockout_base_secs: Option<u64>,
    pub lockout_max_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitFile {
    pub api_per_minute: Option<u32>,
    pub api_burst: Option<u32>,
    pub login_per_minute: Option<u32>,
    pub login_burst: Option<u32>,
    pub enroll_per_minute: Option<u32>,
    pub enroll_burst: Option<u32>,
}

/// Device enrollment (`[devices]`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DevicesFile {
    pub cert_lifetime_hours: Option<u64>,
    pub online_window_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiFile {
    pub max_body_bytes: Option<usize>,
}

/// Boot services: where boot files live and what clients are told.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BootFile {
    pub http_url: Option<String>,
    /// iPXE binaries served over TFTP and at `/pxe/*` (default `pxe`, relative to the working dir).
    pub pxe_dir: Option<PathBuf>,
    /// Kernels, initrds and OS images served at `/images/*` (default `images`).
    pub images_dir: Option<PathBuf>,
    /// `ipxe.efi` (default) or `snponly.efi` for UEFI firmware PXE.
    pub efi_binary: Option<crate::dhcp::boot::EfiBinary>,
    /// TFTP port on the DHCP interfaces' addresses (default 69).
    pub tftp_port: Option<u16>,
    /// Lifetime of the boot token a boot script gives the agent (default 3600 s).
    pub token_ttl_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DhcpFile {
    #[serde(default)]
    pub interfaces: Vec<DhcpInterfaceFile>,
    /// Lease time handed to clients in full mode (default 3600 s).
    pub lease_secs: Option<u32>,
    /// How long a declined address stays out of the pool (default 3600 s).
    pub decline_quarantine_secs: Option<u32>,
    /// fsync every lease commit (SQLite `synchronous = FULL`): ACKed leases survive a power cut,
    /// not only a crash of ironbay. Default false.
    pub lease_fsync: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DhcpInterfaceFile {
    pub name: String,
    pub mode: DhcpMode,
    pub vni: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DhcpMode {
    Full,
    Proxy,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PsksFile {
    pub rotation_grace_hours: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhooksFile {
    pub retry_base_ms: Option<u64>,
    pub retry_max_ms: Option<u64>,
    pub max_attempts: Option<u32>,
    pub disable_after: Option<u32>,
    pub timeout_ms: Option<u64>,
    pub poll_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TalosFile {
    pub kernel_args: Option<String>,
    pub install_timeout_secs: Option<u64>,
    pub bootstrap_timeout_secs: Option<u64>,
}

/// Talos clusters (`[talos]`). The release artifacts live in `<boot.images_dir>/talos/<version>/`
/// (`images/fetch-talos.sh`).
#[derive(Debug, Clone)]
pub struct TalosConfig {
    /// Appended to the Talos kernel command line (e.g. `console=ttyS0,115200n8` for serial-over-LAN).
    pub kernel_args: String,
    /// Power-on to apid answering at the node's static address (default 45 min).
    pub install_timeout: Duration,
    /// How long the bootstrap call is retried while the node is not ready for it (default 20 min).
    pub bootstrap_timeout: Duration,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkflowsFile {
    pub lease_secs: Option<u64>,
    pub max_concurrent: Option<u32>,
    pub poll_ms: Option<u64>,
    pub agent_timeout_secs: Option<u64>,
    pub install_quiet_secs: Option<u64>,
    pub step_retries: Option<u32>,
    pub bmc_timeout_ms: Option<u64>,
    pub bmc_retries: Option<u32>,
    pub bmc_cipher_suite: Option<u8>,
}

/// The workflow engine (`[workflows]`).
#[derive(Debug, Clone)]
pub struct WorkflowsConfig {
    /// How long a claimed step stays claimed without renewal; a step whose appliance died is
    /// re-examined after this (default 30 s).
    pub lease: Duration,
    /// Steps executing at once in this appliance (default 256).
    pub max_concurrent: u32,
    /// How often the engine looks for due steps when nothing wakes it (default 500 ms).
    pub poll: Duration,
    /// How long `WaitForAgent` waits for the machine's agent after power-on (default 15 min).
    pub agent_timeout: Duration,
    /// After the reboot into the installed system: how long without the agent coming back counts
    /// as booted from disk when nothing faster proves it (default 30 s).
    pub install_quiet: Duration,
    /// Automatic retries of a step that failed in a retryable way (default 3; destructive steps
    /// are never retried automatically once they ran).
    pub step_retries: u32,
    pub bmc_timeout: Duration,
    pub bmc_retries: u32,
    pub bmc_cipher_suite: u8,
}

/// Webhook delivery: retry schedule, automatic disabling, HTTP timeout.
#[derive(Debug, Clone)]
pub struct WebhooksConfig {
    /// First retry delay; each further retry doubles it, up to `retry_max`.
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// Attempts per delivery before it is marked failed.
    pub max_attempts: u32,
    /// Consecutive failed deliveries after which a webhook is disabled.
    pub disable_after: u32,
    pub timeout: Duration,
    /// How often the worker looks for due deliveries.
    pub poll: Duration,
}

/// The validated configuration the appliance runs on.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: Vec<SocketAddr>,
    pub data_dir: PathBuf,
    pub database_url: String,
    pub log: String,
    pub auth: AuthConfig,
    pub rate_limit: RateLimitConfig,
    pub max_body_bytes: usize,
    pub boot: BootConfig,
    pub dhcp: DhcpConfig,
    /// How long the previous value of a rotated PSK stays valid (default 24 h).
    pub psk_rotation_grace: Duration,
    pub webhooks: WebhooksConfig,
    pub devices: DevicesConfig,
    pub workflows: WorkflowsConfig,
    pub talos: TalosConfig,
    pub tls: Option<TlsConfig>,
}

/// Boot services (`[boot]`).
#[derive(Debug, Clone)]
pub struct BootConfig {
    /// What PXE clients are told; None: `http://<the DHCP interface's address>:<listen port>`.
    pub http_url: Option<String>,
    pub pxe_dir: PathBuf,
    pub images_dir: PathBuf,
    pub efi_binary: crate::dhcp::boot::EfiBinary,
    pub tftp_port: u16,
    /// Lifetime of a boot token (`boot::token`).
    pub token_ttl: Duration,
}

/// DHCP (`[dhcp]`): only named interfaces get a socket.
#[derive(Debug, Clone)]
pub struct DhcpConfig {
    pub interfaces: Vec<DhcpInterface>,
    pub lease_time: Duration,
    pub decline_quarantine: Duration,
    pub lease_fsync: bool,
}

#[derive(Debug, Clone)]
pub struct DevicesConfig {
    /// Lifetime of an issued device certificate.
    pub cert_lifetime: Duration,
    /// A device seen (enrolled or renewed) within this window is `online`.
    pub online_window: Duration,
}

#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub access_token_ttl: Duration,
    pub session_ttl: Duration,
    pub remember_me_ttl: Duration,
    pub lockout_threshold: u32,
    pub lockout_base: Duration,
    pub lockout_max: Duration,
}

#[derive(Debug, Clone)]
pub struct RateLimitConfig {
    pub api_per_minute: u32,
    pub api_burst: u32,
    pub login_per_minute: u32,
    pub login_burst: u32,
    pub enroll_per_minute: u32,
    pub enroll_burst: u32,
}

#[derive(Debug, Clone)]
pub struct DhcpInterface {
    pub name: String,
    pub mode: DhcpMode,
    pub vni: Option<String>,
}

/// Overrides from command-line flags (strongest source).
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
}

/// Where the configuration came from, for error messages.
struct Source {
    origin: String,
    text: String,
}

/// Loads the configuration: `path` if given (it must exist), else `./ironbay.toml` if present,
/// else built-in defaults; then environment and flag overrides; then validation.
pub fn load(path: Option<&Path>, overrides: &Overrides) -> Result<Config, ConfigError> {
    let source = read_source(path)?;
    let mut table: toml::Table = match &source {
        Some(src) => toml::from_str(&src.text).map_err(|e| parse_error(&src.origin, &e))?,
        None => toml::Table::new(),
    };
    apply_env(&mut table, std::env::vars())?;
    apply_overrides(&mut table, overrides);
    let origin = source.as_ref().map_or_else(|| "configuration".to_string(), |s| s.origin.clone());
    let file: FileConfig = table
        .try_into()
        .map_err(|e: toml::de::Error| ConfigError::Parse { path: origin.clone(), message: e.message().to_string() })?;
    validate(file).map_err(|(key, message)| ConfigError::Invalid {
        line: source.as_ref().and_then(|s| locate_key(&s.text, &key)),
        origin,
        key,
        message,
    })
}

/// `ironbay config check`: the file alone must parse and validate (env and flags are not applied,
/// so the answer is about the file).
pub fn check_file(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| ConfigError::Read { path: path.display().to_string(), source })?;
    let origin = path.display().to_string();
    let file: FileConfig = toml::from_str(&text).map_err(|e| parse_error(&origin, &e))?;
    validate(file).map_err(|(key, message)| ConfigError::Invalid {
        line: locate_key(&text, &key),
        origin,
        key,
        message,
    })
}

fn read_source(path: Option<&Path>) -> Result<Option<Source>, ConfigError> {
    let (path, required) = match path {
        Some(p) => (p.to_path_buf(), true),
        None => (PathBuf::from("ironbay.toml"), false),
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Some(Source { origin: path.display().to_string(), text })),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => Ok(None),
        Err(source) => Err(ConfigError::Read { path: path.display().to_string(), source }),
    }
}

fn parse_error(origin: &str, e: &toml::de::Error) -> ConfigError {
    // toml's Display already names the line and column and quotes the offending text.
    ConfigError::Parse { path: origin.to_string(), message: e.to_string().trim_end().to_string() }
}

/// `IRONBAY_RATE_LIMIT__API_PER_MINUTE=100` sets `rate_limit.api_per_minute`: the name after the
/// prefix, lowercased, with `__` between table and key. Values parse as TOML (numbers, booleans)
/// and fall back to strings.
fn apply_env(table: &mut toml::Table, vars: impl Iterator<Item = (String, String)>) -> Result<(), ConfigError> {
    for (var, value) in vars {
        let Some(rest) = var.strip_prefix("IRONBAY_") else { continue };
        if NON_CONFIG_ENV.contains(&var.as_str()) || NON_CONFIG_ENV_PREFIXES.iter().any(|p| var.starts_with(p)) {
            continue;
        }
        let path: Vec<String> = rest.to_ascii_lowercase().split("__").map(str::to_string).collect();
        if path.iter().any(String::is_empty) {
            return Err(ConfigError::Env { var, message: "malformed name".into() });
        }
        let parsed = format!("v = {value}")
            .parse::<toml::Table>()
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or(toml::Value::String(value));
        set_path(table, &path, parsed).map_err(|message| ConfigError::Env { var, message })?;
    }
    Ok(())
}

fn apply_overrides(table: &mut toml::Table, o: &Overrides) {
    if let Some(listen) = &o.listen {
        table.insert("listen".into(), toml::Value::String(listen.clone()));
    }
    if let Some(dir) = &o.data_dir {
        table.insert("data_dir".into(), toml::Value::String(dir.display().to_string()));
    }
    if let Some(url) = &o.database_url {
        table.insert("database_url".into(), toml::Value::String(url.clone()));
    }
}

fn set_path(table: &mut toml::Table, path: &[String], value: toml::Value) -> Result<(), String> {
    match path {
        [] => Err("empty key".into()),
        [key] => {
            table.insert(key.clone(), value);
            Ok(())
        }
        [head, rest @ ..] => {
            let entry = table.entry(head.clone()).or_insert_with(|| toml::Value::Table(Default::default()));
            match entry {
                toml::Value::Table(t) => set_path(t, rest, value),
                _ => Err(format!("`{head}` is not a table")),
            }
        }
    }
}

type Invalid = (String, String);

fn invalid(key: &str, message: impl Into<String>) -> Invalid {
    (key.to_string(), message.into())
}

fn validate(f: FileConfig) -> Result<Config, Invalid> {
    let listen_raw: Vec<String> = match f.listen {
        None => vec!["127.0.0.1:8080".into()],
        Some(Listen::One(s)) => s.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect(),
        Some(Listen::Many(v)) => v,
    };
    if listen_raw.is_empty() {
        return Err(invalid("listen", "needs at least one address"));
    }
    let listen = listen_raw
        .iter()
        .map(|s| {
            s.parse::<SocketAddr>()
                .map_err(|_| invalid("listen", format!("`{s}` is not an address:port (e.g. 127.0.0.1:8080)")))
        })
        .collect::<Result<Vec<_>, _>>()?;

    let data_dir = f.data_dir.unwrap_or_else(|| PathBuf::from("./ironbay-data"));
    let database_url = match f.database_url {
        None => format!("sqlite://{}", data_dir.join("ironbay.db").display()),
        Some(url)
            if url.starts_with("sqlite:") || url.starts_with("postgres://") || url.starts_with("postgresql://") =>
        {
            url
        }
        Some(url) => {
            let scheme = url.split(':').next().unwrap_or_default().to_string();
            return Err(invalid(
                "database_url",
                format!("unsupported scheme `{scheme}` (use sqlite:// or postgres://)"),
            ));
        }
    };

    let a = f.auth;
    let positive = |key: &str, v: Option<u64>, default: u64| -> Result<u64, Invalid> {
        match v {
            Some(0) => Err(invalid(key, "must be greater than 0")),
            Some(v) => Ok(v),
            None => Ok(default),
        }
    };
    let auth = AuthConfig {
        access_token_ttl: Duration::from_secs(positive("auth.access_token_ttl_secs", a.access_token_ttl_secs, 900)?),
        session_ttl: Duration::from_secs(3600 * positive("auth.session_ttl_hours", a.session_ttl_hours, 12)?),
        remember_me_ttl: Duration::from_secs(86_400 * positive("auth.remember_me_days", a.remember_me_days, 30)?),
        lockout_threshold: positive("auth.lockout_threshold", a.lockout_threshold.map(u64::from), 5)? as u32,
        lockout_base: Duration::from_secs(positive("auth.lockout_base_secs", a.lockout_base_secs, 30)?),
        lockout_max: Duration::from_secs(positive("auth.lockout_max_secs", a.lockout_max_secs, 900)?),
    };

    let r = f.rate_limit;
    let per_min = |key: &str, v: Option<u32>, default: u32| -> Result<u32, Invalid> {
        match v {
            Some(0) => Err(invalid(key, "must be greater than 0")),
            Some(v) => Ok(v),
            None => Ok(default),
        }
    };
    let api_per_minute = per_min("rate_limit.api_per_minute", r.api_per_minute, 1200)?;
    let login_per_minute = per_min("rate_limit.login_per_minute", r.login_per_minute, 10)?;
    // Enrollment and renewal are per source address like logins, but a rack enrolls many
    // devices at once, so the default is higher.
    let enroll_per_minute = per_min("rate_limit.enroll_per_minute", r.enroll_per_minute, 120)?;
    let rate_limit = RateLimitConfig {
        api_per_minute,
        api_burst: per_min("rate_limit.api_burst", r.api_burst, api_per_minute)?,
        login_per_minute,
        login_burst: per_min("rate_limit.login_burst", r.login_burst, login_per_minute)?,
        enroll_per_minute,
        enroll_burst: per_min("rate_limit.enroll_burst", r.enroll_burst, enroll_per_minute)?,
    };

    let max_body_bytes = match f.api.max_body_bytes {
        Some(0) => return Err(invalid("api.max_body_bytes", "must be greater than 0")),
        Some(n) => n,
        None => 1024 * 1024,
    };

    if let Some(url) = &f.boot.http_url
        && !(url.starts_with("http://") || url.starts_with("https://"))
    {
        return Err(invalid("boot.http_url", "must start with http:// or https://"));
    }
    let mut dhcp_interfaces = Vec::new();
    for (i, iface) in f.dhcp.interfaces.into_iter().enumerate() {
        if iface.name.is_empty() || iface.name.len() > 15 || iface.name.contains('/') {
            return Err(invalid("name", format!("dhcp.interfaces[{i}]: `{}` is not an interface name", iface.name)));
        }
        if iface.mode == DhcpMode::Full && iface.vni.is_none() {
            return Err(invalid("mode", format!("dhcp.interfaces[{i}]: full mode needs `vni` (the pool's VNI)")));
        }
        if dhcp_interfaces.iter().any(|d: &DhcpInterface| d.name == iface.name) {
            return Err(invalid("name", format!("dhcp.interfaces[{i}]: `{}` is named twice", iface.name)));
        }
        dhcp_interfaces.push(DhcpInterface { name: iface.name, mode: iface.mode, vni: iface.vni });
    }
    let lease_secs = f.dhcp.lease_secs.unwrap_or(3600);
    if !(60..=7 * 86_400).contains(&lease_secs) {
        return Err(invalid("dhcp.lease_secs", "must be between 60 and 604800 (a week)"));
    }
    let quarantine = f.dhcp.decline_quarantine_secs.unwrap_or(3600);
    if quarantine > 7 * 86_400 {
        return Err(invalid("dhcp.decline_quarantine_secs", "must be at most 604800 (a week)"));
    }
    let dhcp = DhcpConfig {
        interfaces: dhcp_interfaces,
        lease_time: Duration::from_secs(lease_secs.into()),
        decline_quarantine: Duration::from_secs(quarantine.into()),
        lease_fsync: f.dhcp.lease_fsync.unwrap_or(false),
    };
    let boot = BootConfig {
        http_url: f.boot.http_url.map(|u| u.trim_end_matches('/').to_string()),
        pxe_dir: f.boot.pxe_dir.unwrap_or_else(|| PathBuf::from("pxe")),
        images_dir: f.boot.images_dir.unwrap_or_else(|| PathBuf::from("images")),
        efi_binary: f.boot.efi_binary.unwrap_or_default(),
        tftp_port: match f.boot.tftp_port {
            Some(0) => return Err(invalid("boot.tftp_port", "must be a port number (1-65535)")),
            p => p.unwrap_or(69),
        },
        token_ttl: match f.boot.token_ttl_secs {
            Some(t) if !(60..=86_400).contains(&t) => {
                return Err(invalid("boot.token_ttl_secs", "must be 60-86400 (one minute to one day)"));
            }
            t => Duration::from_secs(t.unwrap_or(3600)),
        },
    };

    let grace_hours = f.psks.rotation_grace_hours.unwrap_or(24);
    if grace_hours > 24 * 365 {
        return Err(invalid("psks.rotation_grace_hours", "must be at most 8760 (one year)"));
    }
    let w = f.webhooks;
    let ms = |key: &str, v: Option<u64>, default: u64| -> Result<Duration, Invalid> {
        match v {
            Some(0) => Err(invalid(key, "must be greater than 0")),
            Some(v) if v > 86_400_000 => Err(invalid(key, "must be at most 86400000 (one day)")),
            Some(v) => Ok(Duration::from_millis(v)),
            None => Ok(Duration::from_millis(default)),
        }
    };
    let count = |key: &str, v: Option<u32>, default: u32| -> Result<u32, Invalid> {
        match v {
            Some(0) => Err(invalid(key, "must be greater than 0")),
            Some(v) if v > 1000 => Err(invalid(key, "must be at most 1000")),
            Some(v) => Ok(v),
            None => Ok(default),
        }
    };
    let webhooks = WebhooksConfig {
        retry_base: ms("webhooks.retry_base_ms", w.retry_base_ms, 1000)?,
        retry_max: ms("webhooks.retry_max_ms", w.retry_max_ms, 3_600_000)?,
        max_attempts: count("webhooks.max_attempts", w.max_attempts, 8)?,
        disable_after: count("webhooks.disable_after", w.disable_after, 10)?,
        timeout: ms("webhooks.timeout_ms", w.timeout_ms, 10_000)?,
        poll: ms("webhooks.poll_ms", w.poll_ms, 250)?,
    };

    let wf = f.workflows;
    let secs = |key: &str, v: Option<u64>, default: u64| ms(key, v.map(|s| s.saturating_mul(1000)), default * 1000);
    let cipher_suite = wf.bmc_cipher_suite.unwrap_or(3);
    if cipher_suite != 3 {
        return Err(invalid(
            "workflows.bmc_cipher_suite",
            "only cipher suite 3 (RAKP-HMAC-SHA1, HMAC-SHA1-96, AES-CBC-128) is supported",
        ));
    }
    let workflows = WorkflowsConfig {
        lease: secs("workflows.lease_secs", wf.lease_secs, 30)?,
        max_concurrent: count("workflows.max_concurrent", wf.max_concurrent, 256)?,
        poll: ms("workflows.poll_ms", wf.poll_ms, 500)?,
        agent_timeout: secs("workflows.agent_timeout_secs", wf.agent_timeout_secs, 900)?,
        install_quiet: secs("workflows.install_quiet_secs", wf.install_quiet_secs, 30)?,
        step_retries: wf.step_retries.unwrap_or(3).min(20),
        bmc_timeout: ms("workflows.bmc_timeout_ms", wf.bmc_timeout_ms, 2000)?,
        bmc_retries: wf.bmc_retries.unwrap_or(2).min(10),
        bmc_cipher_suite: cipher_suite,
    };

    let t = f.talos;
    let kernel_args = t.kernel_args.unwrap_or_default().trim().to_string();
    if kernel_args.len() > 1024 || kernel_args.chars().any(|c| c.is_control() || matches!(c, '"' | '$' | '\\')) {
        return Err(invalid(
            "talos.kernel_args",
            "at most 1024 characters, no quotes, `$`, backslashes or control characters",
        ));
    }
    let talos = TalosConfig {
        kernel_args,
        install_timeout: secs("talos.install_timeout_secs", t.install_timeout_secs, 2700)?,
        bootstrap_timeout: secs("talos.bootstrap_timeout_secs", t.bootstrap_timeout_secs, 1200)?,
    };

    let d = f.devices;
    let cert_lifetime_hours = positive("devices.cert_lifetime_hours", d.cert_lifetime_hours, 24)?;
    if cert_lifetime_hours > 24 * 366 {
        return Err(invalid(
            "devices.cert_lifetime_hours",
            "at most 8784 (a year): device certificates are short-lived",
        ));
    }
    let devices = DevicesConfig {
        cert_lifetime: Duration::from_secs(3600 * cert_lifetime_hours),
        online_window: Duration::from_secs(positive("devices.online_window_secs", d.online_window_secs, 300)?),
    };

    let tls = match (f.tls.cert_file, f.tls.key_file) {
        (Some(cert_file), Some(key_file)) => {
            Some(TlsConfig { cert_file, key_file, hsts_max_age_secs: f.tls.hsts_max_age_secs.unwrap_or(31_536_000) })
        }
        (None, None) if f.tls.hsts_max_age_secs.is_none() => None,
        (None, None) => return Err(invalid("tls.hsts_max_age_secs", "needs tls.cert_file and tls.key_file")),
        (Some(_), None) => return Err(invalid("tls.key_file", "is needed with tls.cert_file (PEM private key)")),
        (None, Some(_)) => return Err(invalid("tls.cert_file", "is needed with tls.key_file (PEM certificate chain)")),
    };

    Ok(Config {
        listen,
        data_dir,
        database_url,
        log: f.log.unwrap_or_else(|| "info".into()),
        auth,
        rate_limit,
        max_body_bytes,
        boot,
        dhcp,
        devices,
        psk_rotation_grace: Duration::from_secs(3600 * grace_hours),
        webhooks,
        workflows,
        talos,
        tls,
    })
}

/// The 1-based line where dotted `key` is set in `text`, found by walking table headers. Good
/// enough for error messages; the TOML parser itself reports syntax errors with exact positions.
fn locate_key(text: &str, key: &str) -> Option<usize> {
    let (table, leaf) = match key.rsplit_once('.') {
        Some((t, l)) => (t, l),
        None => ("", key),
    };
    let mut current = String::new();
    for (n, line) in text.lines().enumerate() {
        let t = line.trim();
        if let Some(h) = t.strip_prefix("[[").and_then(|h| h.split("]]").next()) {
            current = h.trim().to_string();
        } else if let Some(h) = t.strip_prefix('[').and_then(|h| h.split(']').next()) {
            current = h.trim().to_string();
        } else if let Some((k, _)) = t.split_once('=')
            && k.trim() == leaf
            && (current == table || (table.is_empty() && current.is_empty()) || current.ends_with(table))
        {
            return Some(n + 1);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, (String, String)> {
        validate(toml::from_str(text).map_err(|e: toml::de::Error| ("<parse>".to_string(), e.to_string()))?)
    }

    #[test]
    fn defaults_are_a_working_appliance() {
        let c = parse("").unwrap();
        assert_eq!(c.listen, vec!["127.0.0.1:8080".parse().unwrap()]);
        assert_eq!(c.database_url, "sqlite://./ironbay-data/ironbay.db");
        assert!(c.dhcp.interfaces.is_empty());
    }

    #[test]
    fn unknown_keys_are_errors_with_a_line() {
        let err = toml::from_str::<FileConfig>("listen = \"127.0.0.1:1\"\n[auth]\nsesion_ttl_hours = 3\n").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("sesion_ttl_hours") && msg.contains("line 3"), "{msg}");
    }

    #[test]
    fn semantic_errors_name_key_and_line() {
        let text = "data_dir = \"/tmp/x\"\n\n[rate_limit]\napi_per_minute = 0\n";
        let (key, _) = parse(text).unwrap_err();
        assert_eq!(key, "rate_limit.api_per_minute");
        assert_eq!(locate_key(text, &key), Some(4));
    }

    #[test]
    fn env_overrides_nested_keys_and_types() {
        let mut t = toml::Table::new();
        let vars = [
            ("IRONBAY_RATE_LIMIT__API_PER_MINUTE".to_string(), "99".to_string()),
            ("IRONBAY_LISTEN".to_string(), "127.0.0.1:0".to_string()),
            ("IRONBAY_ADMIN_PASSWORD".to_string(), "not config".to_string()),
        ];
        apply_env(&mut t, vars.into_iter()).unwrap();
        let c = validate(t.try_into().unwrap()).unwrap();
        assert_eq!(c.rate_limit.api_per_minute, 99);
        assert_eq!(c.listen[0].port(), 0);
    }
}
