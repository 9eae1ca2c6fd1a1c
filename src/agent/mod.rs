//! The appliance's side of the in-RAM agent: its SSH identity ([`key`]), the SSH client that runs
//! agent commands and streams their lines ([`ssh`]), and hardware drift between registrations
//! ([`diff`]). Registration and heartbeats are in `app::agents`; the protocol types in
//! `ironbay_wire`.

pub mod diff;
pub mod key;
pub mod ssh;
