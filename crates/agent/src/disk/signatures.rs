//! Where filesystems, partition tables and RAID/LVM/LUKS put their magic, and a scanner that tells
//! which are on a device. Wipe uses it twice: to erase what it finds outside the zeroed ends, and
//! to verify that nothing it knows of is left.

use super::blkdev::{ALIGN, AlignedBuf, Device};

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;

/// One place a signature may be: `magic` at byte `offset` of the device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub name: &'static str,
    pub offset: u64,
    pub magic: &'static [u8],
}

const MD_MAGIC: &[u8] = &[0xfc, 0x4e, 0x2b, 0xa9]; // 0xa92b4efc, little-endian
const EXT_MAGIC: &[u8] = &[0x53, 0xef]; // 0xef53 at 0x438
const BOOT_SIG: &[u8] = &[0x55, 0xaa];

/// Every probe that fits a device of `size` bytes.
pub fn probes(size: u64) -> Vec<Probe> {
    let mut p = Vec::new();
    let mut add = |name, offset: u64, magic: &'static [u8]| {
        if offset + magic.len() as u64 <= size {
            p.push(Probe { name, offset, magic });
        }
    };
    // Partition tables: protective/DOS MBR (also FAT/NTFS boot sectors), GPT header at LBA 1
    // for 512- and 4096-byte sectors, and the backup GPT header at the last LBA.
    add("dos/boot sector", 510, BOOT_SIG);
    add("gpt", 512, b"EFI PART");
    add("gpt", 4096, b"EFI PART");
    if size >= 4096 {
        add("gpt backup", size - 512, b"EFI PART");
        add("gpt backup", size - 4096, b"EFI PART");
    }
    // Filesystems.
    add("ext2/3/4", 1080, EXT_MAGIC);
    add("xfs", 0, b"XFSB");
    for mirror in [64 * KIB, 64 * MIB, 256 * GIB] {
        add("btrfs", mirror + 64, b"_BHRfS_M");
    }
    add("iso9660", 32769, b"CD001");
    add("ntfs", 3, b"NTFS    ");
    add("exfat", 3, b"EXFAT   ");
    add("vfat", 54, b"FAT12   ");
    add("vfat", 54, b"FAT16   ");
    add("vfat", 82, b"FAT32   ");
    for page in [4096, 8192, 16384, 65536] {
        add("swap", page - 10, b"SWAPSPACE2");
        add("swap", page - 10, b"SWAP-SPACE");
    }
    // Volume managers and encryption.
    for sector in 0..4 {
        add("LVM2_member", sector * 512, b"LABELONE");
    }
    add("crypto_LUKS", 0, b"LUKS\xba\xbe");
    for off in [16, 32, 64, 128, 256, 512, 1024, 2048, 4096] {
        add("crypto_LUKS (secondary)", off * KIB, b"SKUL\xba\xbe");
    }
    // mdraid: 0.90 in the last 64 KiB-aligned 64 KiB; 1.1 at 0, 1.2 at 4 KiB, 1.0 at the end
    // less 8 KiB, rounded down to 4 KiB.
    if size >= 128 * KIB {
        add("linux_raid_member (0.90)", (size & !(64 * KIB - 1)) - 64 * KIB, MD_MAGIC);
    }
    add("linux_raid_member (1.1)", 0, MD_MAGIC);
    add("linux_raid_member (1.2)", 4 * KIB, MD_MAGIC);
    if size >= 12 * KIB {
        add("linux_raid_member (1.0)", (size - 8 * KIB) & !(4 * KIB - 1), MD_MAGIC);
    }
    p
}

/// The device block (of [`ALIGN`] bytes) that holds a probe's first byte.
pub fn block_of(offset: u64) -> u64 {
    offset - offset % ALIGN as u64
}

/// Reads every probe's block (once each) and returns the probes whose magic is there, and the
/// number of bytes read. A DOS boot signature alone counts: an empty MBR still makes a disk look
/// partitioned to firmware.
pub fn scan(dev: &Device, probes: &[Probe]) -> std::io::Result<(Vec<Probe>, u64)> {
    let mut blocks: Vec<u64> = probes.iter().map(|p| block_of(p.offset)).collect();
    blocks.sort_unstable();
    blocks.dedup();
    let mut found = Vec::new();
    let mut buf = AlignedBuf::new(2 * ALIGN);
    let mut read = 0;
    for block in blocks {
        // Two blocks, so a magic crossing a block boundary is still seen whole.
        // The device's size is a multiple of its logical block size, so this length is too.
        let len = (dev.size.saturating_sub(block)).min(2 * ALIGN as u64) as usize;
        if len == 0 {
            continue;
        }
        dev.read_at(&mut buf.as_mut_slice()[..len], block)?;
        read += len as u64;
        for p in probes.iter().filter(|p| block_of(p.offset) == block) {
            let at = (p.offset - block) as usize;
            if buf.as_slice().get(at..at + p.magic.len()) == Some(p.magic) {
                found.push(p.clone());
            }
        }
    }
    Ok((found, read))
}

/// GPT header at LBA 1 for one sector size: (backup header LBA, first entry LBA, entries bytes).
pub struct GptHeader {
    pub alternate_lba: u64,
    pub entries_lba: u64,
    pub entries_bytes: u64,
}

/// Parses a GPT header from its sector (None if the signature is not there).
pub fn parse_gpt_header(sector: &[u8]) -> Option<GptHeader> {
    if sector.get(0..8)? != b"EFI PART" {
        return None;
    }
    let u64_at = |o: usize| sector.get(o..o + 8).and_then(|b| b.try_into().ok()).map(u64::from_le_bytes);
    let u32_at = |o: usize| sector.get(o..o + 4).and_then(|b| b.try_into().ok()).map(u32::from_le_bytes);
    let count = u64::from(u32_at(80)?);
    let entry_size = u64::from(u32_at(84)?);
    Some(GptHeader {
        alternate_lba: u64_at(32)?,
        entries_lba: u64_at(72)?,
        // A corrupt header must not make the wipe zero gigabytes: cap at the usual 16 KiB x 8.
        entries_bytes: (count.saturating_mul(entry_size)).min(128 * KIB),
    })
}

/// The partition table on the device's first blocks, as inventory names it.
pub fn partition_table(first: &[u8]) -> Option<String> {
    let gpt = |o: usize| first.get(o..o + 8) == Some(b"EFI PART");
    if gpt(512) || gpt(4096) {
        return Some("gpt".into());
    }
    let is_boot_sector = [(3, &b"NTFS    "[..]), (3, b"EXFAT   "), (54, b"FAT1"), (82, b"FAT32   ")]
        .iter()
        .any(|(o, m)| first.get(*o..*o + m.len()) == Some(m));
    if first.get(510..512) == Some(BOOT_SIG) && !is_boot_sector {
        return Some("dos".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_stay_inside_the_device() {
        for size in [0, 4096, 1 << 20, 100 << 20, 300 << 30] {
            for p in probes(size) {
                assert!(p.offset + p.magic.len() as u64 <= size, "{p:?} on {size}");
            }
        }
        let big = probes(300 << 30);
        assert!(big.iter().any(|p| p.name == "btrfs" && p.offset == (256 << 30) + 64));
        assert!(!probes(1 << 30).iter().any(|p| p.offset == (256 << 30) + 64));
    }

    #[test]
    fn md_090_superblock_sits_in_the_last_aligned_64k() {
        let size = (10 << 20) + 12345;
        let p = probes(size).into_iter().find(|p| p.name == "linux_raid_member (0.90)").map(|p| p.offset);
        assert_eq!(p, Some((10 << 20) - (64 << 10)));
    }

    #[test]
    fn gpt_headers_and_tables_are_recognised() {
        let mut s = vec![0u8; 512];
        s[..8].copy_from_slice(b"EFI PART");
        s[32..40].copy_from_slice(&1000u64.to_le_bytes());
        s[72..80].copy_from_slice(&2u64.to_le_bytes());
        s[80..84].copy_from_slice(&128u32.to_le_bytes());
        s[84..88].copy_from_slice(&128u32.to_le_bytes());
        let h = parse_gpt_header(&s).expect("header");
        assert_eq!((h.alternate_lba, h.entries_lba, h.entries_bytes), (1000, 2, 16384));
        assert!(parse_gpt_header(&[0; 512]).is_none());

        let mut first = vec![0u8; 8192];
        first[510] = 0x55;
        first[511] = 0xaa;
        assert_eq!(partition_table(&first).as_deref(), Some("dos"));
        first[82..90].copy_from_slice(b"FAT32   ");
        assert_eq!(partition_table(&first), None);
        first[512..520].copy_from_slice(b"EFI PART");
        assert_eq!(partition_table(&first).as_deref(), Some("gpt"));
    }
}
