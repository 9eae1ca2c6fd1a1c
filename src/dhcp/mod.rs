//! The DHCPv4 service (full and proxy mode) for PXE boot. Only interfaces named in config ever get
//! a socket. Pure parts: `boot` (which program a client is offered), `reply` (where an answer is
//! sent), `leases` (who holds which address), `options` (reading and writing options). The
//! socket side: `socket`, `segments` (VNIs, refreshed), `persist` (group commit), `server`.

pub mod boot;
pub mod leases;
pub mod options;
pub mod persist;
pub mod reply;
pub mod segments;
pub mod server;
pub mod socket;
