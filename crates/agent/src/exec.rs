//! Runs one agent command, the same way whether the appliance asked over SSH or an operator typed
//! it on the console: lines go to `emit`, the outcome is returned (the caller writes it as the last
//! line). Disk commands are blocking: callers run them off the async runtime.

use std::path::Path;
use std::sync::{Arc, Mutex};

use ironbay_wire::command::Command;
use ironbay_wire::inventory::Disk;
use ironbay_wire::progress::{Outcome, Status};
use serde_json::json;

use crate::report::{Emit, log};
use crate::{disk, inventory};

/// What this agent ran since it started: the appliance asks (`history`) before retrying a
/// destructive step, so a wipe that finished is never run twice.
#[derive(Clone, Default)]
pub struct History(Arc<Mutex<Vec<serde_json::Value>>>);

impl History {
    /// Records a destructive command as it starts (`status: running`) and returns its slot, so a
    /// command cut off from the appliance can be asked about while it still runs.
    fn start(&self, entry: serde_json::Value) -> u64 {
        let Ok(mut v) = self.0.lock() else { return 0 };
        if v.len() >= 1000 {
            v.remove(0);
        }
        let seq = v.last().and_then(|e| e.get("seq")).and_then(|s| s.as_u64()).map_or(1, |s| s + 1);
        let mut entry = entry;
        entry["seq"] = json!(seq);
        v.push(entry);
        seq
    }

    /// Completes the entry `start` made with the outcome's fields.
    fn finish(&self, seq: u64, fields: serde_json::Value) {
        let Ok(mut v) = self.0.lock() else { return };
        if let Some(e) = v.iter_mut().find(|e| e.get("seq").and_then(|s| s.as_u64()) == Some(seq))
            && let (Some(e), Some(f)) = (e.as_object_mut(), fields.as_object())
        {
            for (k, val) in f {
                e.insert(k.clone(), val.clone());
            }
        }
    }
    pub fn entries(&self) -> Vec<serde_json::Value> {
        self.0.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// The machine's disks now: only /sys/block and the partition tables, not the whole inventory
/// (whose BMC query alone can take seconds).
fn current_disks() -> Vec<Disk> {
    inventory::disks_from(Path::new("/"))
}

/// Finds the disk a command names: by path or kernel name among the inventory's disks, else
/// (a device the inventory leaves out, such as a loop device in a test) any block device path.
pub fn resolve_disk(name: &str, known: &[Disk]) -> Result<Disk, Outcome> {
    let path = if name.starts_with('/') { name.to_string() } else { format!("/dev/{name}") };
    if let Some(d) = known.iter().find(|d| d.path == path || d.name == name) {
        return Ok(d.clone());
    }
    disk::describe(Path::new(&path))
        .map_err(|e| Outcome::error("resolve", "DISK_NOT_FOUND", format!("no disk {name}: {e}"), json!({"disk": name})))
}

/// Runs `command`. Reboot and poweroff are answered first and done by the caller afterwards
/// (`after`), so the appliance sees their result before the connection drops.
pub fn run(command: &Command, history: &History, emit: Emit<'_>) -> Outcome {
    run_with(command, history, emit, &dispatch)
}

/// What a command does, given its emitter: `dispatch` on a machine; a stand-in in tests and
/// benchmarks that must not touch the host's disks.
pub type Dispatch = Arc<dyn Fn(&Command, Emit<'_>) -> Outcome + Send + Sync>;

/// Runs `command` through `body`, recording destructive ones in `history` as they start and end.
pub fn run_with(
    command: &Command,
    history: &History,
    emit: Emit<'_>,
    body: &(dyn Fn(&Command, Emit<'_>) -> Outcome + Send + Sync),
) -> Outcome {
    let started = unix_ms();
    let slot = command.is_destructive().then(|| {
        history.start(json!({
            "command": command.to_exec(),
            "run": command.run_id(),
            "started_at_unix_ms": started,
            "status": "running",
        }))
    });
    // The history is the runner's own: answered here whatever does the commands.
    let outcome = match command {
        Command::History => Outcome::ok("history", json!(history.entries())),
        _ => body(command, emit),
    };
    if let Some(seq) = slot {
        history.finish(
            seq,
            json!({
                "status": "finished",
                "finished_at_unix_ms": unix_ms(),
                "result": outcome.result,
                "code": outcome.code,
                "message": outcome.message,
                "details": outcome.details,
            }),
        );
    }
    outcome
}

/// The commands as a machine runs them.
fn dispatch(command: &Command, emit: Emit<'_>) -> Outcome {
    match command {
        Command::Inventory => Outcome::ok("inventory", json!(inventory::collect())),
        Command::Lsblk => Outcome::ok("lsblk", json!(current_disks())),
        Command::History => Outcome::ok("history", json!([])), // answered by `run_with`
        Command::Wipe { method, disks, .. } => {
            let known = current_disks();
            let targets: Result<Vec<Disk>, Outcome> = if disks.is_empty() {
                Ok(known.clone())
            } else {
                disks.iter().map(|d| resolve_disk(d, &known)).collect()
            };
            match targets {
                Err(mut o) => {
                    o.command = "wipe".into();
                    o
                }
                Ok(targets) if targets.is_empty() => {
                    Outcome::error("wipe", "NO_DISKS", "this machine has no disks to wipe", json!({"disks": []}))
                }
                Ok(targets) => {
                    let results: Vec<_> = targets
                        .iter()
                        .map(|d| {
                            if let Some(why) = d.protected_reason() {
                                log(emit, format!("skipping {}: {why}", d.path));
                            }
                            disk::wipe(d, *method, emit)
                        })
                        .collect();
                    let failed: Vec<&str> =
                        results.iter().filter(|r| r.status == "failed").map(|r| r.disk.as_str()).collect();
                    let details = json!({"method": method.as_str(), "disks": results});
                    if failed.is_empty() {
                        Outcome::ok("wipe", details)
                    } else {
                        Outcome::error(
                            "wipe",
                            "WIPE_FAILED",
                            format!("wiping {} failed (see details)", failed.join(", ")),
                            details,
                        )
                    }
                }
            }
        }
        Command::WriteImage { url, sha256, disk: target, .. } => {
            let known = current_disks();
            match resolve_disk(target, &known) {
                Err(mut o) => {
                    o.command = "write-image".into();
                    o
                }
                Ok(d) => match d.protected_reason() {
                    Some(why) => Outcome::error(
                        "write-image",
                        "DISK_PROTECTED",
                        format!("{} is {why}: images are never written to it", d.path),
                        json!({"disk": d.path}),
                    ),
                    None => match disk::write_image(url, sha256, &d, emit) {
                        Ok(w) => Outcome::ok("write-image", json!(w)),
                        Err(e) => {
                            Outcome::error("write-image", e.code(), e.to_string(), json!({"disk": d.path, "url": url}))
                        }
                    },
                },
            }
        }
        Command::Reboot => Outcome::ok("reboot", json!({"rebooting": true})),
        Command::Poweroff => Outcome::ok("poweroff", json!({"powering_off": true})),
        // Handled by the SSH server (it owns the key list); here only for completeness.
        Command::RescueKey { .. } => {
            Outcome::error("rescue-key", "NOT_HERE", "rescue keys are given to the running agent over SSH", json!(null))
        }
    }
}

/// After the outcome of a reboot or poweroff was sent: do it.
pub fn after(command: &Command) {
    let how = match command {
        Command::Reboot => libc::RB_AUTOBOOT,
        Command::Poweroff => libc::RB_POWER_OFF,
        _ => return,
    };
    // SAFETY: sync and reboot take no pointers; reboot only returns on failure.
    unsafe {
        libc::sync();
        libc::reboot(how);
    }
}

/// Whether an outcome is a success.
pub fn succeeded(o: &Outcome) -> bool {
    o.result == Status::Ok
}
