//! `ironbay-agent`: runs in RAM on the machine being provisioned. The library holds everything the
//! binary does so tests drive it directly: [`inventory`] (what the machine is), [`disk`] (wipe and
//! image write on real block devices), [`exec`] (one command, as SSH or the command line runs it),
//! [`report`] (the progress lines they stream), and the boot flow: [`cmdline`], [`net`],
//! [`identity`], [`appliance`] (enrollment, registration, heartbeats) and [`sshd`].

pub mod appliance;
pub mod boot;
pub mod cmdline;
pub mod disk;
pub mod exec;
pub mod identity;
pub mod inventory;
pub mod net;
pub mod report;
pub mod sshd;
