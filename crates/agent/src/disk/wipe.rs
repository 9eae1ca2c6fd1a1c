//! The four wipe methods. Each one fills in `bytes_wiped` and `verification` of the record, and
//! returns `Err(reason)` when it could not do what it was asked: never a weaker method instead.

// `[0..size]` here is a list of byte regions with one region in it, not a mistaken range.
#![allow(clippy::single_range_in_vec_init)]

use std::ops::Range;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use ironbay_wire::command::WipeMethod;
use ironbay_wire::inventory::Disk;
use ironbay_wire::progress::DiskWipe;

use super::blkdev::{ALIGN, AlignedBuf, Device, errno_name};
use super::{nvme, signatures, verify};
use crate::report::{Emit, Meter, log};

const MIB: u64 = 1024 * 1024;
/// How much of each end `quick` zeroes: partition tables, boot code and most superblocks live there.
const END: u64 = 32 * MIB;
/// Write size of a zero-fill: large enough that the device, not the syscalls, is the limit.
const ZERO_CHUNK: usize = 8 * MIB as usize;
/// Discard range per ioctl: small enough for progress lines, large enough to be cheap.
const DISCARD_CHUNK: u64 = 1024 * MIB;
/// Sampled reads spread over a verified region (plus its first and last block).
const SPREAD: u64 = 64;

pub fn run(disk: &Disk, method: WipeMethod, r: &mut DiskWipe, emit: Emit<'_>) -> Result<(), String> {
    if method == WipeMethod::Secure {
        // Decided on the transport before anything is opened: refusing must not touch the disk.
        let transport = transport(disk);
        match transport.as_str() {
            _ if disk.name.starts_with("nvme") => {}
            "nvme" => {}
            "sata" | "ata" => {
                return Err("SECURE_ERASE_UNSUPPORTED: ATA security erase (SG_IO ATA PASS-THROUGH) is not \
                            implemented by this agent yet; choose quick, discard or zero"
                    .into());
            }
            other => {
                return Err(format!(
                    "secure erase is not supported by {other} device {}; choose quick, discard or zero",
                    disk.name
                ));
            }
        }
    }
    let dev = Device::open_rw(Path::new(&disk.path))
        .map_err(|e| format!("cannot open {} exclusively: {} ({e})", disk.path, errno_name(&e)))?;
    r.size_bytes = dev.size;
    match method {
        WipeMethod::Quick => quick(&dev, disk, r, emit),
        WipeMethod::Zero => zero(&dev, disk, r, emit),
        WipeMethod::Discard => discard(&dev, disk, r, emit),
        WipeMethod::Secure => secure(&dev, disk, r, emit),
    }
}

/// `transport` from the inventory, else what the kernel name says.
fn transport(disk: &Disk) -> String {
    if let Some(t) = &disk.transport {
        return t.clone();
    }
    let n = disk.name.as_str();
    let t = if n.starts_with("nvme") {
        "nvme"
    } else if n.starts_with("vd") {
        "virtio"
    } else if n.starts_with("loop") {
        "loop"
    } else if n.starts_with("sd") {
        "scsi"
    } else {
        "unknown"
    };
    t.into()
}

/// Signatures gone, both ends zeroed, the backup GPT cleared explicitly.
fn quick(dev: &Device, disk: &Disk, r: &mut DiskWipe, emit: Emit<'_>) -> Result<(), String> {
    let size = dev.size;
    let io = |what: &str, e: std::io::Error| format!("{what} on {}: {e}", disk.path);
    let (found, _) = signatures::scan(dev, &signatures::probes(size)).map_err(|e| io("reading signatures", e))?;
    let mut names: Vec<&str> = found.iter().map(|p| p.name).collect();
    names.dedup();
    log(
        emit,
        if names.is_empty() {
            format!("{}: no known signature", disk.path)
        } else {
            format!("{}: found {}", disk.path, names.join(", "))
        },
    );

    let ends: Vec<Range<u64>> = if size < 2 * END { vec![0..size] } else { vec![0..END, size - END..size] };
    // Explicit spots first, so an interrupted wipe has already removed what identifies the disk:
    // both GPT copies (wherever the primary header says the backup is) and every signature found.
    let mut spots: Vec<Range<u64>> = gpt_spots(dev).map_err(|e| io("reading the GPT", e))?;
    spots.extend(found.iter().map(|p| signatures::block_of(p.offset)..signatures::block_of(p.offset) + ALIGN as u64));
    let spots: Vec<Range<u64>> = spots.into_iter().filter_map(|s| block_range(s, size)).collect();

    let total: u64 = spots.iter().chain(&ends).map(|s| s.end - s.start).sum();
    let mut meter = Meter::new("wipe-signatures", Some(&disk.path), total);
    let zeros = AlignedBuf::new(ZERO_CHUNK);
    for s in spots.iter().chain(&ends) {
        zero_range(dev, s.clone(), &zeros, &mut meter, emit).map_err(|e| io("zeroing", e))?;
    }
    dev.sync().map_err(|e| io("fdatasync", e))?;
    meter.finish(emit);
    let outside: u64 = spots
        .iter()
        .filter(|s| !ends.iter().any(|e| e.start <= s.start && s.end <= e.end))
        .map(|s| s.end - s.start)
        .sum();
    r.bytes_wiped = ends.iter().map(|e| e.end - e.start).sum::<u64>() + outside;
    settle(dev, disk, emit);

    let (v, left) = verify::no_signatures(dev, &ends, SPREAD / 2).map_err(|e| io("verifying", e))?;
    if !left.is_empty() {
        log(emit, format!("{}: signatures still found after the wipe: {}", disk.path, left.join(", ")));
    }
    r.verification = Some(v);
    Ok(())
}

/// The primary GPT header and entries for both sector sizes, the backup header and entries where
/// the primary header points (a disk grown after imaging keeps its backup short of the end), and
/// the last LBA's header slot in any case.
fn gpt_spots(dev: &Device) -> std::io::Result<Vec<Range<u64>>> {
    let mut spots = Vec::new();
    let first_len = (2 * ALIGN as u64).min(dev.size) as usize;
    let mut first = AlignedBuf::new(2 * ALIGN);
    dev.read_at(&mut first.as_mut_slice()[..first_len], 0)?;
    let mut sector_buf = AlignedBuf::new(ALIGN);
    for sector in [512u64, 4096] {
        if sector < dev.lbs || sector > dev.size {
            continue;
        }
        spots.push(dev.size - sector..dev.size);
        let Some(h) = signatures::parse_gpt_header(first.as_slice().get(sector as usize..first_len).unwrap_or(&[]))
        else {
            continue;
        };
        spots.push(sector..2 * sector);
        spots.push(h.entries_lba.saturating_mul(sector)..h.entries_lba.saturating_mul(sector) + h.entries_bytes);
        let alt = h.alternate_lba.saturating_mul(sector);
        if alt.saturating_add(sector) > dev.size {
            continue;
        }
        spots.push(alt..alt + sector);
        let block = signatures::block_of(alt);
        dev.read_at(&mut sector_buf.as_mut_slice()[..ALIGN.min((dev.size - block) as usize)], block)?;
        if let Some(b) = sector_buf.as_slice().get((alt - block) as usize..).and_then(signatures::parse_gpt_header) {
            let at = b.entries_lba.saturating_mul(sector);
            spots.push(at..at.saturating_add(b.entries_bytes));
        }
    }
    Ok(spots)
}

/// `r` widened to whole ALIGN blocks and clipped to the device (None if nothing is left).
fn block_range(r: Range<u64>, size: u64) -> Option<Range<u64>> {
    let start = signatures::block_of(r.start);
    let end = r.end.next_multiple_of(ALIGN as u64).min(size);
    (start < end).then_some(start..end)
}

/// Writes zeros over `range` (block-aligned) in `zeros`-sized O_DIRECT writes, two in flight:
/// a device (and the loop driver) streams better with the next write queued while one completes.
fn zero_range(
    dev: &Device,
    range: Range<u64>,
    zeros: &AlignedBuf,
    meter: &mut Meter,
    emit: Emit<'_>,
) -> std::io::Result<()> {
    const WRITERS: u64 = 2;
    let chunk = zeros.len() as u64;
    let chunks = (range.end - range.start).div_ceil(chunk);
    let done = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    // Writes chunks first, first + WRITERS, ... until done or the other writer failed.
    let writer = |first: u64| -> std::io::Result<()> {
        let mut k = first;
        while k < chunks && !stop.load(Ordering::Relaxed) {
            let at = range.start + k * chunk;
            let n = chunk.min(range.end - at);
            if let Err(e) = dev.write_at(&zeros.as_slice()[..n as usize], at) {
                stop.store(true, Ordering::Relaxed);
                return Err(e);
            }
            done.fetch_add(n, Ordering::Relaxed);
            k += WRITERS;
        }
        Ok(())
    };
    std::thread::scope(|s| {
        let helper = (chunks > 1).then(|| s.spawn(|| writer(1)));
        let mut reported = 0;
        let mut k = 0;
        let mut mine = Ok(());
        // This thread writes the even chunks and reports everyone's progress between them.
        while k < chunks && mine.is_ok() && !stop.load(Ordering::Relaxed) {
            let at = range.start + k * chunk;
            let n = chunk.min(range.end - at);
            mine = dev.write_at(&zeros.as_slice()[..n as usize], at);
            if mine.is_err() {
                stop.store(true, Ordering::Relaxed);
            } else {
                done.fetch_add(n, Ordering::Relaxed);
            }
            let d = done.load(Ordering::Relaxed);
            meter.advance(d - reported, emit);
            reported = d;
            k += WRITERS;
        }
        let theirs = match helper.map(|h| h.join()) {
            None | Some(Ok(Ok(()))) => Ok(()),
            Some(Ok(Err(e))) => Err(e),
            Some(Err(_)) => Err(std::io::Error::other("the zero writer thread panicked")),
        };
        meter.advance(done.load(Ordering::Relaxed) - reported, emit);
        mine.and(theirs)
    })
}

/// After writing: caches dropped and the kernel told the partitions are gone.
fn settle(dev: &Device, disk: &Disk, emit: Emit<'_>) {
    dev.flush_buffers();
    if let Err(e) = dev.reread_partitions() {
        log(emit, format!("{}: re-reading the partition table failed: {} ({e})", disk.path, errno_name(&e)));
    }
}

fn zero(dev: &Device, disk: &Disk, r: &mut DiskWipe, emit: Emit<'_>) -> Result<(), String> {
    let io = |what: &str, e: std::io::Error| format!("{what} on {}: {e}", disk.path);
    let mut meter = Meter::new("zero", Some(&disk.path), dev.size);
    let zeros = AlignedBuf::new(ZERO_CHUNK);
    let res = zero_range(dev, 0..dev.size, &zeros, &mut meter, emit);
    r.bytes_wiped = meter.done();
    res.map_err(|e| io("zeroing", e))?;
    dev.sync().map_err(|e| io("fdatasync", e))?;
    meter.finish(emit);
    settle(dev, disk, emit);
    let v = verify::zeros(dev, &[0..dev.size], SPREAD).map_err(|e| io("verifying", e))?;
    r.verification = Some(v);
    Ok(())
}

fn discard(dev: &Device, disk: &Disk, r: &mut DiskWipe, emit: Emit<'_>) -> Result<(), String> {
    let size = dev.size;
    let mut meter = Meter::new("discard", Some(&disk.path), size);
    let mut secure = true;
    let mut at = 0;
    while at < size {
        let n = DISCARD_CHUNK.min(size - at);
        match dev.discard(at, n, secure) {
            Ok(()) => {}
            // Only the first range decides: a device either supports secure discard or not.
            Err(e) if secure && at == 0 && matches!(e.raw_os_error(), Some(libc::EOPNOTSUPP | libc::EINVAL)) => {
                let note = format!("secure discard unsupported ({}), used BLKDISCARD", errno_name(&e));
                log(emit, format!("{}: {note}", disk.path));
                r.reason = Some(note);
                secure = false;
                continue;
            }
            Err(e) if at == 0 && matches!(e.raw_os_error(), Some(libc::EOPNOTSUPP | libc::EINVAL)) => {
                return Err(format!(
                    "discard is not supported by {} (BLKDISCARD: {}); choose quick or zero",
                    disk.path,
                    errno_name(&e)
                ));
            }
            Err(e) => {
                r.bytes_wiped = at;
                return Err(format!("discard failed on {} at byte {at}: {} ({e})", disk.path, errno_name(&e)));
            }
        }
        at += n;
        meter.advance(n, emit);
    }
    r.bytes_wiped = size;
    meter.finish(emit);
    settle(dev, disk, emit);

    // Discarded blocks read as zeros on most devices, but only some promise it: expect zeros
    // where the reads show them or the device promises them, else at least no signature.
    let io = |what: &str, e: std::io::Error| format!("{what} on {}: {e}", disk.path);
    let v = verify::zeros(dev, &[0..size], SPREAD).map_err(|e| io("verifying", e))?;
    let promises = std::fs::read_to_string(format!("/sys/block/{}/queue/discard_zeroes_data", disk.name))
        .is_ok_and(|s| s.trim() == "1");
    if v.passed || promises {
        r.verification = Some(v);
        return Ok(());
    }
    log(
        emit,
        format!(
            "{}: discarded blocks do not read as zeros (not promised by the device); checking signatures",
            disk.path
        ),
    );
    let (v, left) = verify::no_signatures(dev, &[], 0).map_err(|e| io("verifying", e))?;
    if !left.is_empty() {
        log(emit, format!("{}: signatures still readable after discard: {}", disk.path, left.join(", ")));
    }
    r.verification = Some(v);
    Ok(())
}

fn secure(dev: &Device, disk: &Disk, r: &mut DiskWipe, emit: Emit<'_>) -> Result<(), String> {
    nvme::secure_erase(dev, disk, emit)?;
    r.bytes_wiped = dev.size;
    settle(dev, disk, emit);
    let io = |what: &str, e: std::io::Error| format!("{what} on {}: {e}", disk.path);
    // After a user-data erase the contents are the drive's choice (zeros or ones): the check is
    // that nothing recognisable is left; whether samples read as zeros goes to the log.
    let z = verify::zeros(dev, &[0..dev.size], SPREAD).map_err(|e| io("verifying", e))?;
    let how = if z.passed { "every sample reads as zeros" } else { "samples are not all zeros (allowed)" };
    log(emit, format!("{}: after the erase, {how}", disk.path));
    let (v, _) = verify::no_signatures(dev, &[], 0).map_err(|e| io("verifying", e))?;
    r.verification = Some(v);
    Ok(())
}
