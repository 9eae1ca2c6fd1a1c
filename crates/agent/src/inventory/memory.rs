//! Memory: `MemTotal` of `/proc/meminfo` (kB, i.e. KiB) in bytes. That is what the kernel
//! manages, slightly less than the DIMMs installed (firmware and kernel reservations).

use std::path::Path;

use super::Memory;

pub fn read(root: &Path) -> Memory {
    let text = std::fs::read_to_string(root.join("proc/meminfo")).unwrap_or_default();
    Memory { total_bytes: parse_mem_total(&text).unwrap_or(0) }
}

fn parse_mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find_map(|l| l.strip_prefix("MemTotal:"))?;
    let mut words = line.split_whitespace();
    let n: u64 = words.next()?.parse().ok()?;
    match words.next() {
        Some("kB") | None => n.checked_mul(1024),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mem_total_is_kib() {
        assert_eq!(parse_mem_total("MemFree: 1 kB\nMemTotal:       16318480 kB\n"), Some(16318480 * 1024));
        assert_eq!(parse_mem_total("MemFree: 1 kB\n"), None);
    }
}
