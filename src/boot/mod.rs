//! What the boot services share: the boot timeline (`journal`), discovery of unknown machines
//! (`discovery`), which MAC an IP address belongs to (`neighbors`), the boot tokens the agent is
//! given (`token`), which iPXE script a machine gets (`script`) and the boot-file jail (`files`).

pub mod discovery;
pub mod files;
pub mod journal;
pub mod neighbors;
pub mod script;
pub mod token;

use std::sync::Arc;

use crate::config::BootConfig;
use crate::secret::MasterKey;
use crate::store::Store;

/// The handles every boot service is given.
#[derive(Clone)]
pub struct BootShared {
    pub journal: journal::BootJournal,
    pub discovery: discovery::Discovery,
    pub neighbors: neighbors::Neighbors,
    pub tokens: Arc<token::BootTokens>,
}

impl BootShared {
    /// Starts the journal writer and the discovery task (needs a tokio runtime).
    pub fn start(store: &Store, keys: &MasterKey, config: &BootConfig) -> BootShared {
        BootShared {
            journal: journal::BootJournal::start(store.clone(), journal::Limits::default()),
            discovery: discovery::Discovery::start(store.clone()),
            neighbors: neighbors::Neighbors::default(),
            tokens: Arc::new(token::BootTokens::new(keys.token_signing_key(), config.token_ttl)),
        }
    }
}
