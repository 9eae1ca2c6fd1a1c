//! Feeds arbitrary datagrams to the DHCP packet handlers (`ironbay::dhcp::fuzzing::packet`): decode,
//! a full-mode decision against a fixed segment with a lease table that persists across inputs,
//! and the proxy and port-4011 answers; every reply is encoded and decoded again. It must never
//! panic: proxy answers never carry an address, full-mode addresses stay in the range. The same
//! property runs without nightly in `dhcp::server::fuzz_in_suite`.
#![no_main]

use std::sync::Mutex;

use ironbay::dhcp::leases::LeaseTable;
use libfuzzer_sys::fuzz_target;

static TABLE: Mutex<Option<LeaseTable>> = Mutex::new(None);

fuzz_target!(|data: &[u8]| {
    let mut guard = TABLE.lock().unwrap_or_else(|e| e.into_inner());
    let table = guard.get_or_insert_with(LeaseTable::default);
    ironbay::dhcp::fuzzing::packet(table, data);
});
