//! The read-back after a wipe: sampled O_DIRECT reads (they bypass the page cache, so they see what
//! the device returns) that must be zeros, and a signature scan that must come back empty.

use std::io;
use std::ops::Range;

use ironbay_wire::progress::Verification;

use super::blkdev::{ALIGN, AlignedBuf, Device};
use super::signatures;

/// Bytes per sampled read.
pub const SAMPLE: u64 = 64 * 1024;
/// Failure offsets kept in the record (the rest are counted, not listed).
const MAX_FAILURES: usize = 8;

/// Sample offsets in `region`: its first and last block plus `spread` more, one per equal stripe
/// at a pseudo-random place inside the stripe (so two runs do not check the very same bytes).
pub fn sample_offsets(region: Range<u64>, spread: u64, seed: u64) -> Vec<u64> {
    let len = region.end.saturating_sub(region.start);
    if len == 0 {
        return Vec::new();
    }
    let align = ALIGN as u64;
    let last = region.start + (len.saturating_sub(SAMPLE.min(len))) / align * align;
    let mut out = vec![region.start, last];
    let stripe = len / spread.max(1);
    let mut x = seed | 1;
    for i in 0..spread {
        if stripe < align {
            break;
        }
        // xorshift64: cheap, good enough to move samples around.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let within = (x % stripe) / align * align;
        let at = region.start + (i * stripe + within) / align * align;
        out.push(at.min(last));
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// What a sampled check found.
pub struct Samples {
    pub samples: u32,
    pub bytes_read: u64,
    /// Offsets of samples that were not all zeros.
    pub nonzero: Vec<u64>,
}

/// Reads every offset's sample (clipped to its region's end) and notes the non-zero ones.
pub fn read_samples(dev: &Device, regions: &[Range<u64>], spread: u64) -> io::Result<Samples> {
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64);
    let mut buf = AlignedBuf::new(SAMPLE as usize);
    let mut s = Samples { samples: 0, bytes_read: 0, nonzero: Vec::new() };
    for region in regions {
        for off in sample_offsets(region.clone(), spread, seed ^ region.start) {
            // Region ends are multiples of the logical block size, so this length is too.
            let len = SAMPLE.min(region.end - off) as usize;
            dev.read_at(&mut buf.as_mut_slice()[..len], off)?;
            s.samples += 1;
            s.bytes_read += len as u64;
            if buf.as_slice()[..len].iter().any(|&b| b != 0) {
                s.nonzero.push(off);
            }
        }
    }
    Ok(s)
}

/// Every sample in `regions` must be zeros.
pub fn zeros(dev: &Device, regions: &[Range<u64>], spread: u64) -> io::Result<Verification> {
    let s = read_samples(dev, regions, spread)?;
    Ok(Verification {
        expect: "zeros".into(),
        samples: s.samples,
        bytes_read: s.bytes_read,
        passed: s.nonzero.is_empty(),
        failures: s.nonzero.into_iter().take(MAX_FAILURES).collect(),
    })
}

/// No known signature may remain anywhere on the device, and every sample of the regions the
/// wipe zeroed must be zeros. Returns the record and the names of signatures still found.
pub fn no_signatures(
    dev: &Device,
    zeroed: &[Range<u64>],
    spread: u64,
) -> io::Result<(Verification, Vec<&'static str>)> {
    let s = read_samples(dev, zeroed, spread)?;
    let (found, scanned) = signatures::scan(dev, &signatures::probes(dev.size))?;
    let mut failures: Vec<u64> = found.iter().map(|p| p.offset).chain(s.nonzero.iter().copied()).collect();
    failures.truncate(MAX_FAILURES);
    let passed = found.is_empty() && s.nonzero.is_empty();
    let mut names: Vec<&'static str> = found.iter().map(|p| p.name).collect();
    names.dedup();
    let v = Verification {
        expect: "signatures".into(),
        samples: s.samples + signatures::probes(dev.size).len() as u32,
        bytes_read: s.bytes_read + scanned,
        passed,
        failures,
    };
    Ok((v, names))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_cover_both_ends_and_stay_inside() {
        let r = (1 << 20)..(100 << 20);
        for seed in [1, 42, u64::MAX] {
            let offs = sample_offsets(r.clone(), 64, seed);
            assert_eq!(offs[0], r.start);
            assert_eq!(*offs.last().unwrap_or(&0), r.end - SAMPLE);
            assert!(offs.len() > 60, "{}", offs.len());
            assert!(offs.iter().all(|o| o % ALIGN as u64 == 0 && *o + SAMPLE <= r.end));
        }
        // A region smaller than one sample is read once, whole.
        assert_eq!(sample_offsets(0..8192, 64, 7), vec![0]);
        assert!(sample_offsets(5..5, 64, 7).is_empty());
    }
}
