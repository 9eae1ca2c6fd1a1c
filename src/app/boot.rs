//! The boot script operation: which iPXE script a machine gets, by its MAC's asset. Unauthenticated
//! (a booting machine has no credentials); an unknown MAC becomes a `discovering` asset here and
//! now, so the agent's boot token can name it.

use super::AppState;
use crate::boot::discovery::Sighting;
use crate::boot::script::{self, AgentScript, Choice, ExitScript, HoldScript, ScriptQuery, TalosScript};
use crate::error::{Error, Result};
use crate::model::Mac;

/// A rendered script and what the boot timeline says about it.
#[derive(Debug)]
pub struct BootScript {
    pub text: String,
    /// What was answered, in a few words.
    pub summary: String,
    /// Why (names the asset and its state).
    pub reason: String,
}

/// What a cluster member being installed gets.
enum TalosBoot {
    /// Talos's kernel and initramfs, with talos.config pointing here.
    Install { version: String },
    /// It fetched its config and PXE-boots again: Talos has installed itself and rebooted.
    Installed,
}

impl AppState {
    /// For an asset whose talos_install workflow is active: the Talos boot, or `exit` once the
    /// node comes back after fetching its config (that boot is the install-complete signal).
    async fn talos_boot(&self, asset_id: &str) -> Result<Option<TalosBoot>> {
        let Some(member) = self.store.member_of_asset(asset_id).await? else { return Ok(None) };
        let Some(wf) = self.store.workflow_get(&member.workflow_id).await? else { return Ok(None) };
        if !matches!(wf.state.as_str(), "pending" | "running") {
            return Ok(None);
        }
        if member.installed_at.is_some() || self.store.member_installed(asset_id, &crate::model::now_rfc3339()).await? {
            self.workflow_wake.notify_one();
            return Ok(Some(TalosBoot::Installed));
        }
        let Some(cluster) = self.store.cluster_get(&member.cluster_id).await? else { return Ok(None) };
        Ok(Some(TalosBoot::Install { version: cluster.talos_version }))
    }

    /// The script for the machine with `mac`; `base` is the appliance's URL as that machine
    /// reaches it (no trailing slash), `query` what it told us.
    pub async fn boot_script(&self, mac: Mac, query: &ScriptQuery, base: &str) -> Result<BootScript> {
        let sighting = Sighting {
            mac: Some(mac),
            firmware: query.firmware(),
            arch: query.arch.clone(),
            uuid: query.uuid.clone(),
            via: "http",
        };
        let asset = match self.store.asset_by_mac(&mac).await? {
            Some(asset) => {
                // Known: new facts (UUID, arch) are filled in off the request path.
                self.boot.discovery.observe(sighting);
                asset
            }
            None => self
                .boot
                .discovery
                .ensure(&self.store, sighting)
                .await?
                .ok_or_else(|| Error::internal(format!("discovery of {mac} left no asset")))?,
        };
        let (mut choice, mut reason) = script::choose(&asset);
        // A provision that has written its image boots the disk from now on, never the agent
        // (which would be a loop back into the provision).
        if asset.state == crate::model::AssetState::Provisioning && self.store.workflow_image_written(&asset.id).await?
        {
            choice = Choice::Exit;
            reason = format!("asset {} has its image written: boot from disk", asset.id);
        }
        let self_url = query.url(base);
        if asset.state == crate::model::AssetState::Provisioning
            && let Some(talos) = self.talos_boot(&asset.id).await?
        {
            return Ok(match talos {
                TalosBoot::Install { version } => {
                    let reason = format!("asset {} is installing Talos {version} as a cluster member", asset.id);
                    let args = match self.config.talos.kernel_args.as_str() {
                        "" => script::TALOS_KERNEL_ARGS.to_string(),
                        extra => format!("{} {extra}", script::TALOS_KERNEL_ARGS),
                    };
                    let text = script::render(&TalosScript {
                        base,
                        asset: &asset.id,
                        hostname: &asset.hostname,
                        reason: &reason,
                        self_url: &self_url,
                        version: &version,
                        args: &args,
                    });
                    BootScript { text, summary: format!("Talos {version} PXE boot"), reason }
                }
                TalosBoot::Installed => {
                    let reason = format!("asset {} has installed Talos: boot from disk", asset.id);
                    let text =
                        script::render(&ExitScript { asset: &asset.id, hostname: &asset.hostname, reason: &reason });
                    BootScript { text, summary: "exit script (Talos installed)".into(), reason }
                }
            });
        }
        let (text, summary) = match choice {
            Choice::Agent => {
                let token = self.boot.tokens.issue(&asset.id, mac, chrono::Utc::now().timestamp());
                let initrd_name = script::AGENT_INITRD.rsplit('/').next().unwrap_or(script::AGENT_INITRD);
                let text = script::render(&AgentScript {
                    base,
                    asset: &asset.id,
                    hostname: &asset.hostname,
                    token: &token,
                    reason: &reason,
                    self_url: &self_url,
                    kernel: script::AGENT_KERNEL,
                    initrd: script::AGENT_INITRD,
                    initrd_name,
                });
                let summary =
                    format!("agent script (kernel {}, initrd {})", script::AGENT_KERNEL, script::AGENT_INITRD);
                (text, summary)
            }
            Choice::Exit => (
                script::render(&ExitScript { asset: &asset.id, hostname: &asset.hostname, reason: &reason }),
                "exit script (boot from the local disk)".to_string(),
            ),
            Choice::Hold => (
                script::render(&HoldScript {
                    asset: &asset.id,
                    hostname: &asset.hostname,
                    reason: &reason,
                    self_url: &self_url,
                }),
                "hold script (echo, ask again in 30 s)".to_string(),
            ),
        };
        Ok(BootScript { text, summary, reason })
    }
}
