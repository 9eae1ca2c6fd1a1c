//! `ironbay-agent boot` (what the initramfs's /init runs) or one agent command run locally, e.g.
//! `ironbay-agent wipe --method zero --disk /dev/sdb`: the same code the appliance drives over
//! SSH, printing the same JSON lines, the result last. Exit status 0 when the result is ok.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use ironbay_agent::exec::{self, History};
use ironbay_wire::command::Command;
use ironbay_wire::progress::Line;

#[derive(Parser)]
#[command(name = "ironbay-agent", version, about = "ironbay's in-RAM agent")]
enum Cli {
    /// Bring up the network, enroll, register and serve SSH (run by the agent image's /init).
    Boot,
    #[command(flatten)]
    Run(Command),
}

fn main() -> ExitCode {
    match Cli::parse() {
        Cli::Boot => {
            let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("ironbay-agent: cannot start: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match rt.block_on(ironbay_agent::boot::run()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("ironbay-agent: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Cli::Run(command) => {
            let stdout = std::io::stdout();
            let mut emit = |line: Line| {
                let mut out = stdout.lock();
                let _ = writeln!(out, "{}", line.to_json());
                let _ = out.flush();
            };
            let outcome = exec::run(&command, &History::default(), &mut emit);
            let ok = exec::succeeded(&outcome);
            emit(Line::Outcome(outcome));
            if ok {
                exec::after(&command);
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
