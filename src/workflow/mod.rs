//! Workflows: what the appliance does to a machine (wipe it, provision it), as a persisted,
//! ordered list of typed steps that survives the appliance's own crashes and never repeats a
//! destructive step. `plan` says which steps, `engine` claims and records them, `exec` runs
//! each, `certificate` signs the evidence of a wipe, `disk_choice` picks the target disk, `talos`
//! holds the Talos install and cluster bootstrap steps.

pub mod certificate;
pub mod disk_choice;
pub mod engine;
pub mod exec;
pub mod log;
pub mod plan;
pub mod step;
pub mod talos;

pub use step::{DiskHint, ImageSource, Step, StepStatus, WorkflowKind, WorkflowState};

/// Time since an RFC 3339 instant the store wrote (zero if it does not parse or lies ahead).
pub fn elapsed_since(rfc3339: &str) -> std::time::Duration {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .ok()
        .and_then(|t| (chrono::Utc::now() - t.with_timezone(&chrono::Utc)).to_std().ok())
        .unwrap_or_default()
}
