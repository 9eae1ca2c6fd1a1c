//! `ironbay-agent`: runs in RAM on the machine being provisioned. The library holds everything the
//! binary does so tests drive it directly: [`inventory`] (what the machine is), [`disk`] (wipe and
//! image write on real block devices), [`report`] (the progress lines they stream).

pub mod disk;
pub mod inventory;
pub mod report;
