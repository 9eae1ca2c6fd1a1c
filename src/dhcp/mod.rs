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

/// The packet handlers run on arbitrary bytes, for the fuzzer (`fuzz/fuzz_targets/dhcp_packet.rs`)
/// and the in-suite mutation test: decode, decide in full mode (against a fixed segment and a
/// table that persists across calls) and in proxy mode, encode every reply and check the
/// invariants that must hold whatever arrives.
pub mod fuzzing {
    pub use super::server::fuzz_packet as packet;
}
