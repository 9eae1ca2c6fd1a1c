//! Feeds arbitrary datagrams to the TFTP packet parser: it must never panic, and whatever it
//! accepts must re-encode to bytes that parse to the same packet. The same property runs without
//! nightly in `tftp::packet::tests::random_and_mutated_input_never_panics_and_round_trips`.
#![no_main]

#[path = "../../src/tftp/options.rs"]
#[allow(dead_code)]
mod options;
#[path = "../../src/tftp/packet.rs"]
#[allow(dead_code)]
mod packet;

use libfuzzer_sys::fuzz_target;
use options::{Limits, negotiate};
use packet::Packet;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = Packet::parse(data) {
        assert_eq!(Packet::parse(&p.to_bytes()).as_ref(), Ok(&p));
        if let Packet::Rrq(r) = &p {
            let limits = Limits { max_blksize: 1468, default_timeout: std::time::Duration::from_secs(1) };
            if let Ok(n) = negotiate(&r.options, 850_528, limits) {
                assert!((8..=1468).contains(&n.blksize) && n.windowsize >= 1);
            }
        }
    }
});
