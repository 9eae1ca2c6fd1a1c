//! Simulated BMCs for lab tests: OpenIPMI's `ipmi_sim` (RMCP+ on UDP 623 of its own address in
//! the lab's server namespace, user `admin`), whose chassis is a shell script: power on starts
//! the caller's "machine" command detached (a qemu command line for VM tests, `sleep` for the
//! rest), power off kills it, and boot devices and every call are recorded in files the test
//! reads. One address per BMC, so many can run at once.
//!
//! What the chassis script does with each IPMI chassis request (its interface is ipmi_sim's
//! `chassis_control`: `<script> get power|boot` / `<script> set <param> <value>`):
//! - power 1 / 0: start the machine unless running / kill it (SIGTERM, by PID); a `strict` BMC
//!   (`set_strict`) refuses both when the power is already so, as some real BMCs do (ipmi_sim
//!   then answers completion code 0xFF);
//! - reset 1 (hard reset): kill and start it again (a new PID);
//! - shutdown 1 (ACPI soft off): the machine "obeys" at once: SIGTERM, power off;
//! - boot <dev>: store the device; ipmi_sim maps boot flag devices PXE → `pxe` and
//!   "force default hard disk" → `default` (and 0 → `none`, CD → `cdrom`, BIOS → `bios`).
//!
//! The machine gets the stored boot device in `$IRONBAY_SIM_BOOT` (default `default`).
//!
//! Usage: `#[path = "support/lab.rs"] mod lab;` and `#[path = "support/bmc.rs"] mod bmc_sim;`
//! side by side in the test crate (this file uses `super::lab::Lab`).
#![allow(dead_code)]

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use super::lab::Lab;

pub const USERNAME: &str = "admin";
pub const PORT: u16 = 623;

/// `<dir>/chassis.sh get|set ...`: see the module comment. `$D` is the BMC's directory.
const CHASSIS: &str = r#"#!/bin/sh
D=$(dirname "$0")
op=$1; shift
echo "$op $*" >> "$D/log"
# Alive and not a zombie (a killed machine is reaped by whoever inherited it, maybe late).
alive() { read -r st 2>/dev/null <"/proc/$1/stat" || return 1; st=${st##*) }; [ "${st%% *}" != Z ]; }
running() { [ -f "$D/pid" ] && alive "$(cat "$D/pid")"; }
already() { if [ "$1" = 1 ]; then running; else ! running; fi; }
start() {
  running && return 0
  IRONBAY_SIM_BOOT=$(cat "$D/boot" 2>/dev/null || echo default) \
    setsid "$D/machine.sh" </dev/null >>"$D/machine.log" 2>&1 &
  echo $! > "$D/pid"
}
stop() {
  if running; then
    pid=$(cat "$D/pid"); kill "$pid"
    # Power is off once the process is gone (bounded: SIGKILL after 5 s).
    i=0; while alive "$pid" && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done
    kill -9 "$pid" 2>/dev/null
  fi
  rm -f "$D/pid"
}
case $op in
get)
  for p in "$@"; do
    case $p in
      power) running && echo "power:1" || echo "power:0" ;;
      boot) echo "boot:$(cat "$D/boot" 2>/dev/null || echo default)" ;;
      *) echo "Invalid parameter: $p"; exit 1 ;;
    esac
  done ;;
set)
  while [ $# -gt 0 ]; do
    p=$1; v=$2; shift 2
    case $p in
      power)
        # A strict BMC refuses to power on when on and off when off.
        if [ -f "$D/strict" ] && already "$v"; then echo "power is already $v"; exit 1; fi
        if [ "$v" = 1 ]; then start; else stop; fi ;;
      reset) running && { stop; start; } ;;
      shutdown) stop ;;
      boot) echo "$v" > "$D/boot" ;;
      identify) shift ;;
      *) echo "Invalid parameter: $p"; exit 1 ;;
    esac
  done ;;
check) exit 1 ;;
*) echo "Unknown operation: $op"; exit 1 ;;
esac
exit 0
"#;

/// One management controller at IPMB 0x20 with the chassis device (support bits 0x9f).
const EMU: &str = "mc_setbmc 0x20
mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr
sel_enable 0x20 1000 0x0a
mc_enable 0x20
";

pub struct SimBmc {
    /// The BMC's address (UDP 623) in the lab's server namespace.
    pub address: String,
    pub port: u16,
    pub username: String,
    pub password: String,
    ns: String,
    dir: tempfile::TempDir,
    sim: Option<Child>,
}

impl SimBmc {
    /// A BMC on `address` (added to the lab's bridge) with user `admin` / `password`, powering
    /// `machine` (argv) on and off.
    pub fn start<S: AsRef<str>>(lab: &Lab, address: &str, password: &str, machine: &[S]) -> SimBmc {
        let dir = tempfile::tempdir().expect("BMC dir");
        let d = dir.path();
        write_executable(&d.join("chassis.sh"), CHASSIS);
        let argv: Vec<String> = machine.iter().map(|a| shell_quote(a.as_ref())).collect();
        write_executable(&d.join("machine.sh"), &format!("#!/bin/sh\nexec {}\n", argv.join(" ")));
        std::fs::write(d.join("bmc.emu"), EMU).expect("bmc.emu");
        std::fs::create_dir(d.join("state")).expect("state dir");
        let conf = format!(
            "name \"ibsim\"\nset_working_mc 0x20\n  startlan 1\n    addr {address} {PORT}\n    priv_limit admin\n\
             \x20   allowed_auths_callback md5\n    allowed_auths_user md5\n    allowed_auths_operator md5\n\
             \x20   allowed_auths_admin md5\n    guid a123456789abcdefa123456789abcdef\n  endlan\n\
             \x20 chassis_control \"{chassis}\"\n\
             \x20 user 1 false \"\" \"\" user 1 md5\n\
             \x20 user 2 true \"{USERNAME}\" \"{password}\" admin 10 md5\n",
            chassis = d.join("chassis.sh").display(),
        );
        std::fs::write(d.join("lan.conf"), conf).expect("lan.conf");
        lab.ip(&lab.server_ns, &["addr", "add", &format!("{address}/32"), "dev", "ibbr0"]);
        let log = File::create(d.join("ipmi_sim.log")).expect("ipmi_sim log");
        let sim = lab
            .command(&lab.server_ns, "ipmi_sim")
            .args(["-n", "-c"])
            .arg(d.join("lan.conf"))
            .arg("-f")
            .arg(d.join("bmc.emu"))
            .arg("-s")
            .arg(d.join("state"))
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("ipmi_sim (package openipmi)");
        let mut bmc = SimBmc {
            address: address.to_string(),
            port: PORT,
            username: USERNAME.to_string(),
            password: password.to_string(),
            ns: lab.server_ns.clone(),
            dir,
            sim: Some(sim),
        };
        bmc.wait_listening(lab);
        bmc
    }

    /// A BMC whose machine is `sleep 100000`.
    pub fn dummy(lab: &Lab, address: &str, password: &str) -> SimBmc {
        Self::start(lab, address, password, &["sleep", "100000"])
    }

    fn wait_listening(&mut self, lab: &Lab) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let want = format!("{}:{}", self.address, self.port);
        loop {
            let out = lab.command(&self.ns, "ss").args(["-Hlun"]).output().expect("ss");
            if String::from_utf8_lossy(&out.stdout).contains(&want) {
                return;
            }
            if let Some(Ok(Some(status))) = self.sim.as_mut().map(Child::try_wait) {
                panic!("ipmi_sim exited ({status}): {}", self.sim_log());
            }
            assert!(Instant::now() < deadline, "ipmi_sim does not listen on {want}: {}", self.sim_log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The machine's PID while it runs.
    pub fn machine_pid(&self) -> Option<u32> {
        let pid: u32 = std::fs::read_to_string(self.dir.path().join("pid")).ok()?.trim().parse().ok()?;
        // A zombie (killed, not yet reaped) is off.
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let state = stat.rsplit_once(") ").and_then(|(_, rest)| rest.chars().next());
        (state != Some('Z')).then_some(pid)
    }

    pub fn power_is_on(&self) -> bool {
        self.machine_pid().is_some()
    }

    /// The last boot device ipmi_sim passed on (`pxe`, `default`, ...), if any.
    pub fn boot_device(&self) -> Option<String> {
        std::fs::read_to_string(self.dir.path().join("boot")).ok().map(|s| s.trim().to_string())
    }

    /// Every chassis call, one line each (`get power`, `set power 1`, `set boot pxe`, ...).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }

    pub fn sim_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("ipmi_sim.log")).unwrap_or_default()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Makes the BMC refuse "power on" when on and "power off" when off.
    pub fn set_strict(&self, strict: bool) {
        let flag = self.dir.path().join("strict");
        if strict {
            std::fs::write(flag, "").expect("strict flag");
        } else {
            let _ = std::fs::remove_file(flag);
        }
    }

    /// The BMC goes away (its machine keeps its power state); calls now fail as unreachable.
    pub fn stop(&mut self) {
        if let Some(mut sim) = self.sim.take() {
            let _ = sim.kill();
            let _ = sim.wait();
        }
    }

    /// How many sessions the BMC has open, asked over a session of ipmitool's own (which counts).
    pub fn active_sessions(&self, lab: &Lab) -> u8 {
        let out = lab
            .command(&self.ns, "ipmitool")
            .args(["-I", "lanplus", "-C", "3", "-H", &self.address, "-U", &self.username, "-P", &self.password])
            .args(["raw", "0x06", "0x3d", "0x00"])
            .output()
            .expect("ipmitool");
        assert!(out.status.success(), "ipmitool: {}", String::from_utf8_lossy(&out.stderr));
        // Get Session Info: handle, slots, active sessions, ...
        let text = String::from_utf8_lossy(&out.stdout);
        let bytes: Vec<&str> = text.split_whitespace().collect();
        u8::from_str_radix(bytes.get(2).expect("active session count"), 16).expect("hex")
    }
}

impl Drop for SimBmc {
    fn drop(&mut self) {
        self.stop();
        if let Some(pid) = self.machine_pid() {
            // SAFETY: kill(2) on a PID this BMC started; no memory is involved.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
    }
}

/// A tokio runtime whose threads (workers and blocking pool) all live in network namespace `ns`,
/// so the sockets the BMC driver opens are inside the lab.
pub fn runtime_in(ns: &str) -> tokio::runtime::Runtime {
    let path = PathBuf::from(format!("/run/netns/{ns}"));
    let handle = std::sync::Arc::new(File::open(&path).expect("namespace handle"));
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .on_thread_start(move || {
            // SAFETY: setns on the calling thread only, with a namespace fd we hold open.
            let rc = unsafe { libc::setns(handle.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
        })
        .build()
        .expect("runtime")
}

fn write_executable(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).expect("write script");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}
