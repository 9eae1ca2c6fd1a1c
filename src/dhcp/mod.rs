//! The DHCPv4 service (full and proxy mode) for PXE boot. Only interfaces named in config ever get
//! a socket. This module grows in pieces: `boot` (which program a client is offered) and `reply`
//! (where an answer is sent) are pure and unit-tested; the socket loop and leases build on them.

pub mod boot;
pub mod reply;
