//! What the boot services share: the boot timeline (`journal`), discovery of unknown machines
//! (`discovery`) and which MAC an IP address belongs to (`neighbors`).

pub mod discovery;
pub mod journal;
pub mod neighbors;

use crate::store::Store;

/// The handles every boot service is given.
#[derive(Clone)]
pub struct BootShared {
    pub journal: journal::BootJournal,
    pub discovery: discovery::Discovery,
    pub neighbors: neighbors::Neighbors,
}

impl BootShared {
    /// Starts the journal writer and the discovery task (needs a tokio runtime).
    pub fn start(store: &Store) -> BootShared {
        BootShared {
            journal: journal::BootJournal::start(store.clone(), journal::Limits::default()),
            discovery: discovery::Discovery::start(store.clone()),
            neighbors: neighbors::Neighbors::default(),
        }
    }
}
