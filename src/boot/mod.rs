//! What the boot services share: the boot timeline (`journal`), discovery of unknown machines
//! (`discovery`), which MAC an IP address belongs to (`neighbors`), the boot tokens the agent is
//! given (`token`), which iPXE script a machine gets (`script`), the boot-file jail (`files`) and
//! where the services listen (for the health report).

pub mod discovery;
pub mod files;
pub mod journal;
pub mod neighbors;
pub mod script;
pub mod token;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

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
    /// The TFTP listeners bound right now.
    pub tftp: Listening,
    /// The DHCP sockets bound right now (the interface's address; the socket itself is bound to
    /// the device).
    pub dhcp: Listening,
}

/// The addresses a boot service is bound to at the moment (interfaces come and go).
#[derive(Clone, Default)]
pub struct Listening(Arc<Mutex<Vec<SocketAddr>>>);

impl Listening {
    pub fn add(&self, addr: SocketAddr) {
        if let Ok(mut v) = self.0.lock()
            && !v.contains(&addr)
        {
            v.push(addr);
            v.sort();
        }
    }

    pub fn remove(&self, addr: SocketAddr) {
        if let Ok(mut v) = self.0.lock() {
            v.retain(|a| *a != addr);
        }
    }

    pub fn addresses(&self) -> Vec<SocketAddr> {
        self.0.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

impl BootShared {
    /// Starts the journal writer and the discovery task (needs a tokio runtime).
    pub fn start(store: &Store, keys: &MasterKey, config: &BootConfig) -> BootShared {
        BootShared {
            journal: journal::BootJournal::start(store.clone(), journal::Limits::default()),
            discovery: discovery::Discovery::start(store.clone()),
            neighbors: neighbors::Neighbors::default(),
            tokens: Arc::new(token::BootTokens::new(keys.token_signing_key(), config.token_ttl)),
            tftp: Listening::default(),
            dhcp: Listening::default(),
        }
    }
}
