//! TFTP server (RFC 1350 with the option extensions RFC 2347/2348/2349 and windowsize, RFC
//! 7440): serves `boot.pxe_dir` read-only to PXE firmware, only on the addresses of the
//! interfaces named in `[dhcp] interfaces`, and records every request in the boot timeline.
//!
//! Written here on tokio rather than taken from a crate; both candidates were read:
//! - `tftpd` 1.0 (the design's choice): a blocking listener with a thread per transfer, no hook
//!   to learn how a transfer ended (it prints to stdout/stderr), one bind address per server, the
//!   jail is lexical only (a symlink out of the directory is followed), and a bad option value
//!   ends the request without the RFC 2347 error 8.
//! - `async-tftp` 0.4: has windowsize and binds transfer sockets to the listening address, but
//!   runs its own `async-executor`/`async-io` reactor next to tokio, silently drops out-of-range
//!   option values (no error 8), and its `Handler` only opens files: the outcome of a transfer
//!   (bytes acknowledged, retransmissions, client abort, timeout) is not reported back, which the
//!   boot timeline needs ("why didn't it boot?").
//!
//! What we need is small (read-only, octet, one sender state machine), so it is a few files:
//! `packet` (bytes ⇄ typed packets, pure), `options` (negotiation, pure), `files` (the jail and
//! the content cache), `transfer` (the sender state machine and its timer loop) and `server`
//! (sockets, interfaces, timeline), plus `netif` (interface addresses and MTU).
//!
//! Behaviour worth knowing: `netascii` requests are served as octet (PXE clients ask for octet;
//! converting line ends in a binary would corrupt it), `mail` is refused with error 4, and a
//! packet from a port other than the client's transfer port never reaches the transfer (its
//! socket is connected to the client) instead of being answered with error 5.

pub mod files;
pub mod netif;
pub mod options;
pub mod packet;
pub mod server;
pub mod transfer;

pub use server::{Settings, start};

/// `ipxe.efi blksize=1468 windowsize=8 tsize` — the file and what the client asked for, as the
/// boot timeline shows it.
pub fn requested(req: &packet::Request) -> String {
    let mut s: String = req.filename.chars().map(|c| if c.is_control() { '?' } else { c }).collect();
    if req.mode != packet::Mode::Octet {
        s.push_str(" mode=");
        s.push_str(req.mode.as_str());
    }
    for (name, value) in &req.options {
        s.push(' ');
        s.push_str(name);
        if !(name == "tsize" && value == "0") {
            s.push('=');
            s.push_str(value);
        }
    }
    s
}

/// Starts TFTP if any interface is named (the caller logs nothing else: no interfaces, no socket).
pub fn start_from_config(
    config: &crate::config::Config,
    boot: crate::boot::BootShared,
) -> Option<tokio::task::JoinHandle<()>> {
    if config.dhcp.interfaces.is_empty() {
        return None;
    }
    let settings = Settings {
        interfaces: config.dhcp.interfaces.iter().map(|i| i.name.clone()).collect(),
        port: config.boot.tftp_port,
        pxe_dir: config.boot.pxe_dir.clone(),
    };
    Some(start(settings, boot))
}
