//! The boot script operation: which iPXE script a machine gets, by its MAC's asset. Unauthenticated
//! (a booting machine has no credentials); an unknown MAC becomes a `discovering` asset here and
//! now, so the agent's boot token can name it.

use super::AppState;
use crate::boot::discovery::Sighting;
use crate::boot::script::{self, AgentScript, Choice, ExitScript, HoldScript, ScriptQuery};
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

impl AppState {
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
