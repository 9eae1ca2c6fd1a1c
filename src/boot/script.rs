//! The iPXE boot script: which one a machine gets (`choose`, pure, from the asset's state and
//! tags) and its text (askama templates in `templates/boot/`). Every value put into a script is
//! either ours (ids, tokens, the base URL checked by the caller) or validated here (`ScriptQuery`),
//! so a client cannot inject iPXE commands.

use askama::Template;

use crate::model::{AssetState, Mac};
use crate::store::assets::AssetRow;

/// The tag that holds an asset off the network boot (as if it had failed) until removed.
pub const LOCKED_TAG: &str = "locked";

/// The agent kernel and initrd, relative to `images_dir` (`/images/...`).
pub const AGENT_KERNEL: &str = "agent/vmlinuz";
pub const AGENT_INITRD: &str = "agent/initrd.img";

/// `GET /boot.ipxe`'s query, validated. iPXE sends `mac=${netX/mac}&uuid=${uuid}&arch=${buildarch}`
/// and `platform=${platform}`; empty values (an unset iPXE setting) count as absent, unknown keys
/// are ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScriptQuery {
    pub mac: Option<Mac>,
    /// SMBIOS UUID, lowercase.
    pub uuid: Option<String>,
    /// `x86_64`, `i386`, `arm64`, ...
    pub arch: Option<String>,
    /// iPXE's platform (`pcbios`, `efi`).
    pub platform: Option<String>,
}

impl ScriptQuery {
    pub fn parse(pairs: &[(String, String)]) -> Result<ScriptQuery, String> {
        let mut q = ScriptQuery::default();
        for (k, v) in pairs {
            let v = v.trim();
            if v.is_empty() {
                continue;
            }
            match k.as_str() {
                "mac" => q.mac = Some(v.parse().map_err(|_| format!("mac `{}` is not a MAC address", shown(v)))?),
                "uuid" => q.uuid = Some(parse_uuid(v).ok_or_else(|| format!("uuid `{}` is not a UUID", shown(v)))?),
                "arch" => q.arch = Some(token(v).ok_or_else(|| format!("arch `{}` is not an architecture", shown(v)))?),
                "platform" => {
                    q.platform = Some(token(v).ok_or_else(|| format!("platform `{}` is not a platform", shown(v)))?)
                }
                _ => {}
            }
        }
        Ok(q)
    }

    /// The firmware family discovery records (`dhcp::boot::firmware`'s names).
    pub fn firmware(&self) -> Option<String> {
        match self.platform.as_deref() {
            Some("pcbios") => Some("bios".into()),
            Some("efi") => Some("uefi".into()),
            _ => None,
        }
    }

    /// This request's own URL under `base`: what a waiting script chains back to.
    pub fn url(&self, base: &str) -> String {
        let mut url = format!("{base}/boot.ipxe");
        let mut sep = '?';
        let pairs = [
            ("mac", self.mac.map(|m| m.to_string())),
            ("uuid", self.uuid.clone()),
            ("arch", self.arch.clone()),
            ("platform", self.platform.clone()),
        ];
        for (k, v) in pairs {
            if let Some(v) = v {
                url.push_str(&format!("{sep}{k}={v}"));
                sep = '&';
            }
        }
        url
    }
}

/// 8-4-4-4-12 hex digits, lowercased.
pub fn parse_uuid(u: &str) -> Option<String> {
    let shape = u.len() == 36
        && u.char_indices().all(|(i, c)| if [8, 13, 18, 23].contains(&i) { c == '-' } else { c.is_ascii_hexdigit() });
    shape.then(|| u.to_ascii_lowercase())
}

/// A short word of letters, digits, `_` and `-`.
fn token(v: &str) -> Option<String> {
    let ok = v.len() <= 32 && v.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'));
    ok.then(|| v.to_string())
}

/// Client input as it may appear in a message: printable ASCII without `$` (iPXE expands
/// `${...}`), at most 40 characters.
fn shown(v: &str) -> String {
    v.chars().filter(|c| c.is_ascii_graphic() && *c != '$').take(40).collect()
}

/// Which script an asset gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// The in-RAM agent (with a boot token bound to the asset).
    Agent,
    /// `exit`: boot from the local disk.
    Exit,
    /// Wait and ask again: the asset must not boot from the network now.
    Hold,
}

/// The script for `asset` and why (the reason goes into the script and the boot timeline).
///
/// `available` gets the agent, like `discovering`: a machine in the pool that PXE-boots runs the
/// agent's inventory-and-wait loop, which touches no disk until a workflow asks (see ARCHITECTURE.md).
pub fn choose(asset: &AssetRow) -> (Choice, String) {
    let id = &asset.id;
    if asset.tags.iter().any(|t| t == LOCKED_TAG) {
        return (Choice::Hold, format!("asset {id} is locked (tag `{LOCKED_TAG}`)"));
    }
    match asset.state {
        AssetState::Failed => (Choice::Hold, format!("asset {id} is failed; retry its workflow explicitly")),
        AssetState::Provisioned => (Choice::Exit, format!("asset {id} is provisioned")),
        s @ (AssetState::Discovering | AssetState::Available | AssetState::Provisioning | AssetState::Wiping) => {
            (Choice::Agent, format!("asset {id} is {s}"))
        }
    }
}

#[derive(Template)]
#[template(path = "boot/agent.ipxe", escape = "none")]
pub struct AgentScript<'a> {
    pub base: &'a str,
    pub asset: &'a str,
    pub hostname: &'a str,
    pub token: &'a str,
    pub reason: &'a str,
    pub self_url: &'a str,
    pub kernel: &'a str,
    pub initrd: &'a str,
    pub initrd_name: &'a str,
}

/// Talos's kernel arguments for 1.13 amd64 (`talos.config=` is added by the template).
pub const TALOS_KERNEL_ARGS: &str = "talos.platform=metal console=tty0 init_on_alloc=1 slab_nomerge pti=on \
    consoleblank=0 nvme_core.io_timeout=4294967295 printk.devkmsg=on selinux=1 module.sig_enforce=1 \
    proc_mem.force_override=never initrd=initramfs.xz";

#[derive(Template)]
#[template(path = "boot/talos.ipxe", escape = "none")]
pub struct TalosScript<'a> {
    pub base: &'a str,
    pub asset: &'a str,
    pub hostname: &'a str,
    pub reason: &'a str,
    pub self_url: &'a str,
    /// `v1.13.9`: the directory under `images/talos/`.
    pub version: &'a str,
    pub args: &'a str,
}

#[derive(Template)]
#[template(path = "boot/exit.ipxe", escape = "none")]
pub struct ExitScript<'a> {
    pub asset: &'a str,
    pub hostname: &'a str,
    pub reason: &'a str,
}

#[derive(Template)]
#[template(path = "boot/hold.ipxe", escape = "none")]
pub struct HoldScript<'a> {
    pub asset: &'a str,
    pub hostname: &'a str,
    pub reason: &'a str,
    pub self_url: &'a str,
}

#[derive(Template)]
#[template(path = "boot/rechain.ipxe", escape = "none")]
pub struct RechainScript<'a> {
    pub base: &'a str,
}

#[derive(Template)]
#[template(path = "boot/refused.ipxe", escape = "none")]
pub struct RefusedScript<'a> {
    pub status: &'a str,
    pub message: &'a str,
}

/// Renders a template; ours are plain text with no fallible filters, so failure is a bug, and a
/// script that says so beats a panic.
pub fn render(t: &impl Template) -> String {
    t.render().unwrap_or_else(|e| format!("#!ipxe\necho ironbay: internal error rendering the boot script ({e})\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(q: &str) -> Vec<(String, String)> {
        serde_urlencoded::from_str(q).unwrap()
    }

    fn asset(state: AssetState, tags: &[&str]) -> AssetRow {
        AssetRow {
            id: "ast_1".into(),
            hostname: "node-1".into(),
            state,
            macs: vec![],
            tags: tags.iter().map(|t| t.to_string()).collect(),
            specs: serde_json::json!({}),
            disks: serde_json::json!([]),
            nics: serde_json::json!([]),
            smbios_uuid: None,
            serial: None,
            bmc: None,
            generation: 1,
            created_at: String::new(),
            updated_at: String::new(),
        }
    }

    #[test]
    fn parses_what_ipxe_sends() {
        let q = ScriptQuery::parse(&pairs(
            "mac=52%3A54%3A00%3A12%3A34%3A56&uuid=4C4C4544-0000-1000-8000-000000000001&arch=x86_64&platform=efi&x=1",
        ))
        .unwrap();
        assert_eq!(q.mac, "52:54:00:12:34:56".parse().ok());
        assert_eq!(q.uuid.as_deref(), Some("4c4c4544-0000-1000-8000-000000000001"));
        assert_eq!(q.firmware().as_deref(), Some("uefi"));
        assert_eq!(
            q.url("http://h"),
            "http://h/boot.ipxe?mac=52:54:00:12:34:56&uuid=4c4c4544-0000-1000-8000-000000000001&arch=x86_64&platform=efi"
        );
        assert_eq!(ScriptQuery::parse(&pairs("mac=&uuid=")).unwrap(), ScriptQuery::default());
    }

    #[test]
    fn refuses_malformed_input_without_echoing_it_raw() {
        for q in ["mac=52:54:00:12:34", "uuid=not-a-uuid", "arch=x86%20${x}", "mac=${net0/mac}"] {
            let err = ScriptQuery::parse(&pairs(q)).unwrap_err();
            assert!(!err.contains("${"), "{q}: {err}");
        }
    }

    #[test]
    fn chooses_by_state_and_lock() {
        use AssetState::*;
        for s in [Discovering, Available, Provisioning, Wiping] {
            assert_eq!(choose(&asset(s, &[])).0, Choice::Agent, "{s}");
        }
        assert_eq!(choose(&asset(Provisioned, &[])).0, Choice::Exit);
        assert_eq!(choose(&asset(Failed, &[])).0, Choice::Hold);
        let (c, why) = choose(&asset(Provisioned, &["rack-a", "locked"]));
        assert_eq!(c, Choice::Hold);
        assert!(why.contains("locked"), "{why}");
    }

    #[test]
    fn templates_render_verbatim() {
        let s = render(&AgentScript {
            base: "http://10.0.0.1:8080",
            asset: "ast_1",
            hostname: "node-1",
            token: "abc.def",
            reason: "asset ast_1 is discovering",
            self_url: "http://10.0.0.1:8080/boot.ipxe?mac=52:54:00:12:34:56&arch=x86_64",
            kernel: AGENT_KERNEL,
            initrd: AGENT_INITRD,
            initrd_name: "initrd.img",
        });
        assert!(s.starts_with("#!ipxe\n"), "{s}");
        assert!(s.contains("kernel http://10.0.0.1:8080/images/agent/vmlinuz ironbay.url=http://10.0.0.1:8080 ironbay.token=abc.def ironbay.asset=ast_1 "), "{s}");
        // No HTML escaping of `&` in a plain-text template.
        assert!(s.contains("?mac=52:54:00:12:34:56&arch=x86_64"), "{s}");
        assert!(render(&ExitScript { asset: "a", hostname: "h", reason: "r" }).contains("\nexit"));
    }
}
