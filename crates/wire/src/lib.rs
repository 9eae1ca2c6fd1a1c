//! The agent protocol, shared by the appliance and `ironbay-agent`, so the two ends cannot drift:
//! - [`inventory`]: what the agent reports about the machine it runs on;
//! - [`register`]: the registration and heartbeat bodies (HTTP, boot-token bearer);
//! - [`command`]: the commands the appliance runs over SSH `exec`, as an argv both ends parse;
//! - [`progress`]: the JSON lines a command streams back, ending with one result line;
//! - [`keys`]: Ed25519 public keys as SPKI DER/PEM;
//! - [`compression`]: the image compressions the agent decodes (by magic), so an image's SHA-256
//!   means the same at both ends.

pub mod command;
pub mod compression;
pub mod inventory;
pub mod keys;
pub mod progress;
pub mod register;

/// The protocol's version: the agent sends it at registration; the appliance refuses what it
/// does not speak.
pub const PROTOCOL_VERSION: u32 = 1;
