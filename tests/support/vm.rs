//! qemu VMs for lab tests: a VM on one of the lab's taps, network-booting with SeaBIOS and the
//! NIC's built-in iPXE ROM (BIOS) or with OVMF (UEFI; optionally without the NIC's iPXE ROM, so
//! the firmware's own PXE client runs), or booting SeaBIOS from a virtio disk. Serial console goes to a file the test reads. KVM only when
//! kvm_intel/kvm_amd is loaded (this machine's /dev/kvm is a software nested hypervisor that
//! crashes in iPXE), else TCG. The VM is killed (by PID) when dropped; the lab's teardown would
//! kill it too.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::lab::Lab;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Firmware {
    /// SeaBIOS; the NIC's iPXE option ROM does the network boot.
    Bios,
    /// OVMF with the NIC's iPXE ROM.
    Uefi,
    /// OVMF with the NIC's ROM removed (`romfile=`): EDK2's own PXE client boots.
    UefiFirmwarePxe,
}

pub struct Vm {
    child: Child,
    pub mac: String,
    pub serial: PathBuf,
    _dir: tempfile::TempDir,
}

/// `kvm` only with a hardware hypervisor module; else TCG.
pub fn accel() -> &'static str {
    let hw = Path::new("/sys/module/kvm_intel").exists() || Path::new("/sys/module/kvm_amd").exists();
    if hw && Path::new("/dev/kvm").exists() { "kvm" } else { "tcg" }
}

impl Vm {
    /// Starts a VM on `tap` (from `lab.add_tap()`) with `mac`, booting from the network.
    pub fn start(lab: &Lab, tap: &str, mac: &str, firmware: Firmware) -> Vm {
        Self::start_with(lab, tap, mac, firmware, &[])
    }

    /// Same, with more qemu arguments (disks, SMBIOS strings, memory).
    pub fn start_with(lab: &Lab, tap: &str, mac: &str, firmware: Firmware, extra: &[String]) -> Vm {
        Self::spawn(lab, tap, mac, firmware, "n", extra)
    }

    /// Starts a BIOS (SeaBIOS) VM on `tap` with `mac` that boots from `disk` (a virtio-blk
    /// disk, `format` "raw" or "qcow2"), never from the network. qemu writes to `disk`.
    pub fn start_disk(lab: &Lab, tap: &str, mac: &str, disk: &Path, format: &str) -> Vm {
        let drive = [
            "-drive".to_string(),
            format!("file={},if=none,id=disk0,format={format}", disk.display()),
            "-device".to_string(),
            "virtio-blk-pci,drive=disk0".to_string(),
        ];
        Self::spawn(lab, tap, mac, Firmware::Bios, "c", &drive)
    }

    /// `boot`: qemu's `-boot` order ("n": network, "c": first disk).
    fn spawn(lab: &Lab, tap: &str, mac: &str, firmware: Firmware, boot: &str, extra: &[String]) -> Vm {
        let dir = tempfile::tempdir().expect("vm dir");
        let serial = dir.path().join("serial.log");
        // SeaBIOS: also print its console on the serial port (0x3f8).
        let sercon = dir.path().join("sercon.bin");
        std::fs::write(&sercon, [0xf8u8, 0x03]).expect("sercon");
        let mut nic = format!("virtio-net-pci,netdev=n0,mac={mac}");
        if firmware == Firmware::UefiFirmwarePxe {
            nic.push_str(",romfile=");
        }
        let mut cmd = lab.command(&lab.server_ns, "qemu-system-x86_64");
        match accel() {
            "kvm" => cmd.args(["-enable-kvm", "-cpu", "host"]),
            _ => cmd.args(["-accel", "tcg"]),
        };
        if firmware != Firmware::Bios {
            let vars = dir.path().join("vars.fd");
            std::fs::copy("/usr/share/OVMF/OVMF_VARS_4M.fd", &vars).expect("OVMF vars (package ovmf)");
            cmd.args(["-machine", "q35", "-drive"])
                .arg("if=pflash,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd")
                .arg("-drive")
                .arg(format!("if=pflash,format=raw,file={}", vars.display()));
        }
        cmd.args(["-m", "512", "-smp", "1", "-display", "none", "-monitor", "none", "-no-reboot", "-boot", boot])
            .arg("-serial")
            .arg(format!("file:{}", serial.display()))
            .arg("-fw_cfg")
            .arg(format!("name=etc/sercon-port,file={}", sercon.display()))
            .arg("-netdev")
            .arg(format!("tap,id=n0,ifname={tap},script=no,downscript=no"))
            .arg("-device")
            .arg(nic)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let child = cmd.spawn().expect("qemu-system-x86_64 (package qemu-system-x86)");
        Vm { child, mac: mac.to_string(), serial, _dir: dir }
    }

    /// The serial console so far (firmware, iPXE, kernel and init output).
    pub fn console(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.serial).unwrap_or_default()).to_string()
    }

    /// Whether qemu has exited (the test initramfs powers the VM off when done).
    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a command that must succeed; its stdout.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// The qemu command line of a BMC-driven lab machine `idx` (what `ipmi_sim`'s chassis control
/// starts): its tap, MAC and `disk{idx}.qcow2` in `dir`, serial console to `serial{idx}.log`;
/// network first (the BMC's PXE override), then the disk — a PXE boot answered `exit` falls
/// through to the disk, as on real firmware. Reboots stay in the same process. `extra`: more qemu
/// arguments (e.g. `-uuid …`); the disk's serial is `{serial_prefix}-{idx}`.
pub fn bmc_machine(dir: &Path, idx: u32, tap: &str, mac: &str, serial_prefix: &str, extra: &str) -> Vec<String> {
    let sercon = dir.join(format!("sercon{idx}.bin"));
    std::fs::write(&sercon, [0xf8u8, 0x03]).unwrap();
    let accel = if accel() == "kvm" { "-enable-kvm" } else { "-accel tcg" };
    let script = format!(
        "exec qemu-system-x86_64 {accel} -m 512 -smp 1 -display none -monitor none -boot order=nc {extra} \
         -serial file:{serial} -fw_cfg name=etc/sercon-port,file={sercon} \
         -netdev tap,id=n0,ifname={tap},script=no,downscript=no -device virtio-net-pci,netdev=n0,mac={mac} \
         -drive file={disk},if=none,id=d0,format=qcow2 -device virtio-blk-pci,drive=d0,serial={serial_prefix}-{idx}",
        serial = dir.join(format!("serial{idx}.log")).display(),
        sercon = sercon.display(),
        disk = dir.join(format!("disk{idx}.qcow2")).display(),
    );
    vec!["sh".into(), "-c".into(), script]
}

/// A qcow2 disk's bytes; `-U` also reads a disk its running VM holds (what it last flushed).
pub fn disk_bytes(qcow2: &Path) -> Vec<u8> {
    let raw = qcow2.with_extension("out.raw");
    run(Command::new("qemu-img").args(["convert", "-U", "-q", "-O", "raw"]).arg(qcow2).arg(&raw));
    let bytes = std::fs::read(&raw).unwrap();
    let _ = std::fs::remove_file(raw);
    bytes
}

/// The last `chars` characters of `serial{idx}.log` in `dir`.
pub fn console_tail(dir: &Path, idx: u32, chars: usize) -> String {
    let s =
        String::from_utf8_lossy(&std::fs::read(dir.join(format!("serial{idx}.log"))).unwrap_or_default()).to_string();
    s.chars().rev().take(chars).collect::<Vec<_>>().into_iter().rev().collect()
}
