//! CPUs from `/proc/cpuinfo`: `processor` entries are threads, distinct `physical id`s are
//! sockets, distinct (`physical id`, `core id`) pairs are cores. Where the kernel gives no topology
//! (some VMs, most non-x86 kernels) there is one socket and every thread counts as a core.

use std::collections::BTreeSet;
use std::path::Path;

use super::{Cpu, non_empty};

pub fn read(root: &Path) -> Cpu {
    let text = std::fs::read_to_string(root.join("proc/cpuinfo")).unwrap_or_default();
    parse(&text)
}

pub fn parse(cpuinfo: &str) -> Cpu {
    let mut model = None;
    let mut threads = 0u32;
    let mut sockets = BTreeSet::new();
    let mut cores = BTreeSet::new();
    // One block per logical CPU, separated by blank lines.
    for block in cpuinfo.split("\n\n") {
        let mut is_cpu = false;
        let (mut physical, mut core) = (None, None);
        for line in block.lines() {
            let Some((key, value)) = line.split_once(':') else { continue };
            let value = value.trim();
            match key.trim() {
                "processor" => is_cpu = true,
                "model name" if model.is_none() => model = non_empty(value),
                "physical id" => physical = Some(value.to_string()),
                "core id" => core = Some(value.to_string()),
                _ => {}
            }
        }
        if !is_cpu {
            continue;
        }
        threads += 1;
        if let Some(p) = physical {
            if let Some(c) = core {
                cores.insert((p.clone(), c));
            }
            sockets.insert(p);
        }
    }
    let sockets = if sockets.is_empty() { u32::from(threads > 0) } else { sockets.len() as u32 };
    let cores = if cores.is_empty() { threads } else { cores.len() as u32 };
    Cpu { model, arch: std::env::consts::ARCH.to_string(), sockets, cores, threads }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_topology_every_thread_is_a_core_on_one_socket() {
        let cpu = parse("processor\t: 0\nBogoMIPS\t: 50.00\n\nprocessor\t: 1\nBogoMIPS\t: 50.00\n");
        assert_eq!((cpu.sockets, cpu.cores, cpu.threads, cpu.model), (1, 2, 2, None));
        assert_eq!(parse("").threads, 0);
        assert_eq!(parse("").sockets, 0);
    }
}
