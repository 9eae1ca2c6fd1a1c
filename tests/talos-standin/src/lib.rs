//! TEST STAND-IN for a Talos node — not Talos. It plays the two things ironbay's Talos workflow
//! needs from a node, so the workflow can be tested without Talos images:
//!
//! - [`apid`]: `machine.MachineService/Bootstrap` over TLS with apid's client-certificate rules
//!   (OS CA chain, EKU exactly `[ClientAuth]`, roles from the Organization, `os:admin` needed);
//! - [`node`]: the PXE-boot life of a node inside a lab VM: fetch the machine config like Talos,
//!   "install" a raw image from the registry mirror, reboot, come up on the static address;
//! - [`config`]: the slice of a v1alpha1 machine config both read.

pub mod apid;
pub mod config;
pub mod node;
