//! Stand-in for the agent's local command line while `src/main.rs` is being written: runs
//! `wipe --method M --disk PATH` or `write-image --url U --sha256 H --disk PATH` (parsed by the
//! protocol's own `Command`) on a device described from sysfs, and prints the JSON lines the agent
//! would send, the outcome last. Used by bench/agent_disk.sh; exit status 1 on an error outcome.

use std::io::Write;
use std::path::Path;

use ironbay_agent::disk;
use ironbay_agent::report::{Line, Outcome};
use ironbay_wire::command::Command;

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let command = match Command::parse_exec(&argv.join(" ")) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let mut print = |line: Line| {
        let _ = writeln!(std::io::stdout(), "{}", line.to_json());
    };
    let outcome = match &command {
        Command::Wipe { method, disks } => {
            let mut results = Vec::new();
            let mut failed = false;
            for path in disks {
                match disk::describe(Path::new(path)) {
                    Ok(d) => {
                        let r = disk::wipe(&d, *method, &mut print);
                        failed |= r.status == "failed";
                        results.push(serde_json::to_value(&r).unwrap_or_default());
                    }
                    Err(e) => {
                        failed = true;
                        results.push(serde_json::json!({"disk": path, "status": "failed", "reason": e.to_string()}));
                    }
                }
            }
            let details = serde_json::json!({ "disks": results });
            if failed {
                Outcome::error("wipe", "WIPE_FAILED", "a disk was not wiped", details)
            } else {
                Outcome::ok("wipe", details)
            }
        }
        Command::WriteImage { url, sha256, disk: path } => {
            match disk::describe(Path::new(path)).and_then(|d| disk::write_image(url, sha256, &d, &mut print)) {
                Ok(w) => Outcome::ok("write-image", serde_json::to_value(&w).unwrap_or_default()),
                Err(e) => Outcome::error("write-image", e.code(), e.to_string(), serde_json::Value::Null),
            }
        }
        other => {
            eprintln!("disk_cli runs wipe and write-image only, not {}", other.name());
            std::process::exit(2);
        }
    };
    let ok = outcome.code.is_none();
    print(Line::Outcome(outcome));
    std::process::exit(if ok { 0 } else { 1 });
}
