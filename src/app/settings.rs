//! The running configuration as an admin may read it (the console's settings page): every value
//! that shapes the appliance's behaviour, with secrets masked. The master key is never part of
//! it (it lives in the data directory, not in the configuration); a password inside a URL is
//! replaced by `****`.

use serde::Serialize;

use super::AppState;
use crate::auth::Actor;
use crate::config::DhcpMode;
use crate::error::Result;
use crate::model::Scope;

/// One group of settings, in display order.
#[derive(Debug, Clone, Serialize)]
pub struct SettingsSection {
    pub title: &'static str,
    pub entries: Vec<(&'static str, String)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DhcpInterfaceView {
    pub name: String,
    /// `full` (hands out addresses) or `proxy` (boot options only).
    pub mode: &'static str,
    pub vni: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SettingsView {
    pub sections: Vec<SettingsSection>,
    /// Interfaces the DHCP server answers on: empty when it is off.
    pub dhcp_interfaces: Vec<DhcpInterfaceView>,
    pub tftp_port: u16,
}

/// A URL with any password (user info or a `password`-like query parameter) replaced by `****`.
pub fn mask_url(url: &str) -> String {
    let Ok(mut u) = reqwest::Url::parse(url) else {
        return "(not shown: the URL could not be read to hide its secrets)".into();
    };
    if u.password().is_some() {
        let _ = u.set_password(Some("****"));
    }
    if u.query().is_some() {
        let pairs: Vec<(String, String)> = u
            .query_pairs()
            .map(|(k, v)| {
                let secret =
                    ["password", "pass", "secret", "token", "key"].iter().any(|s| k.to_lowercase().contains(s));
                (k.into_owned(), if secret { "****".to_string() } else { v.into_owned() })
            })
            .collect();
        u.query_pairs_mut().clear().extend_pairs(pairs);
    }
    u.to_string()
}

fn secs(d: std::time::Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 && s.is_multiple_of(3600) {
        format!("{} h", s / 3600)
    } else if s >= 60 && s.is_multiple_of(60) {
        format!("{} min", s / 60)
    } else if s == 0 && d.as_millis() > 0 {
        format!("{} ms", d.as_millis())
    } else {
        format!("{s} s")
    }
}

impl AppState {
    /// The running configuration, masked (admins only).
    pub async fn settings_view(&self, actor: &Actor) -> Result<SettingsView> {
        actor.require(Scope::Admin)?;
        let c = &self.config;
        let backend = if c.database_url.starts_with("sqlite:") { "SQLite" } else { "PostgreSQL" };
        let listen = c.listen.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
        let sections = vec![
            SettingsSection {
                title: "Appliance",
                entries: vec![
                    ("Listen addresses", listen),
                    ("Data directory", c.data_dir.display().to_string()),
                    ("Database backend", backend.into()),
                    ("Database URL", mask_url(&c.database_url)),
                    ("Log filter", c.log.clone()),
                    ("Largest request body", format!("{} bytes", c.max_body_bytes)),
                ],
            },
            SettingsSection {
                title: "Boot",
                entries: vec![
                    (
                        "HTTP base URL",
                        c.boot
                            .http_url
                            .as_deref()
                            .map(mask_url)
                            .unwrap_or_else(|| "(derived from each request)".into()),
                    ),
                    ("iPXE binaries directory", c.boot.pxe_dir.display().to_string()),
                    ("Images directory", c.boot.images_dir.display().to_string()),
                    ("UEFI binary", c.boot.efi_binary.file_name().into()),
                    ("TFTP port", c.boot.tftp_port.to_string()),
                    ("Boot token lifetime", secs(c.boot.token_ttl)),
                ],
            },
            SettingsSection {
                title: "DHCP",
                entries: vec![
                    ("Lease time", secs(c.dhcp.lease_time)),
                    ("Declined address quarantine", secs(c.dhcp.decline_quarantine)),
                    ("fsync every lease", if c.dhcp.lease_fsync { "yes" } else { "no" }.into()),
                ],
            },
            SettingsSection {
                title: "Talos",
                entries: vec![
                    (
                        "Extra kernel arguments",
                        if c.talos.kernel_args.is_empty() { "(none)".into() } else { c.talos.kernel_args.clone() },
                    ),
                    ("Install timeout", secs(c.talos.install_timeout)),
                    ("Bootstrap timeout", secs(c.talos.bootstrap_timeout)),
                ],
            },
            SettingsSection {
                title: "Authentication",
                entries: vec![
                    ("Access token lifetime", secs(c.auth.access_token_ttl)),
                    ("Session lifetime", secs(c.auth.session_ttl)),
                    ("“Keep me logged in” lifetime", secs(c.auth.remember_me_ttl)),
                    ("Lockout after failed logins", c.auth.lockout_threshold.to_string()),
                    (
                        "Lockout duration",
                        format!("{} doubling up to {}", secs(c.auth.lockout_base), secs(c.auth.lockout_max)),
                    ),
                ],
            },
            SettingsSection {
                title: "Rate limits",
                entries: vec![
                    ("API", format!("{} / min, burst {}", c.rate_limit.api_per_minute, c.rate_limit.api_burst)),
                    ("Logins", format!("{} / min, burst {}", c.rate_limit.login_per_minute, c.rate_limit.login_burst)),
                    (
                        "Device enrollment",
                        format!("{} / min, burst {}", c.rate_limit.enroll_per_minute, c.rate_limit.enroll_burst),
                    ),
                ],
            },
            SettingsSection {
                title: "Workflows",
                entries: vec![
                    ("Concurrent workflows", c.workflows.max_concurrent.to_string()),
                    ("Agent timeout", secs(c.workflows.agent_timeout)),
                    ("Step retries", c.workflows.step_retries.to_string()),
                    ("BMC timeout", secs(c.workflows.bmc_timeout)),
                    ("BMC retries", c.workflows.bmc_retries.to_string()),
                ],
            },
            SettingsSection {
                title: "Devices, PSKs and webhooks",
                entries: vec![
                    ("Device certificate lifetime", secs(c.devices.cert_lifetime)),
                    ("Device online window", secs(c.devices.online_window)),
                    ("PSK rotation grace", secs(c.psk_rotation_grace)),
                    ("Webhook attempts", c.webhooks.max_attempts.to_string()),
                    ("Webhook disabled after failures in a row", c.webhooks.disable_after.to_string()),
                    ("Webhook timeout", secs(c.webhooks.timeout)),
                ],
            },
        ];
        let dhcp_interfaces = c
            .dhcp
            .interfaces
            .iter()
            .map(|i| DhcpInterfaceView {
                name: i.name.clone(),
                mode: match i.mode {
                    DhcpMode::Full => "full",
                    DhcpMode::Proxy => "proxy",
                },
                vni: i.vni.clone(),
            })
            .collect();
        Ok(SettingsView { sections, dhcp_interfaces, tftp_port: c.boot.tftp_port })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_urls_are_masked() {
        assert_eq!(
            mask_url("postgres://ironbay:s3cret@db.example:5432/ironbay?sslmode=require"),
            "postgres://ironbay:****@db.example:5432/ironbay?sslmode=require"
        );
        assert!(!mask_url("postgres://db/x?user=a&password=s3cret").contains("s3cret"));
        assert_eq!(
            mask_url("sqlite:/var/lib/ironbay/ironbay.db?mode=rwc"),
            "sqlite:/var/lib/ironbay/ironbay.db?mode=rwc"
        );
        assert!(!mask_url("not a url s3cret").contains("s3cret"));
    }
}
