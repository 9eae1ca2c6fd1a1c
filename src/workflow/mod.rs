//! Workflows: what the appliance does to a machine (wipe it, provision it), as a persisted,
//! ordered list of typed steps that survives the appliance's own crashes and never repeats a
//! destructive step. `plan` says which steps, `engine` claims and records them, `exec` runs
//! each, `certificate` signs the evidence of a wipe, `disk_choice` picks the target disk.

pub mod certificate;
pub mod disk_choice;
pub mod engine;
pub mod exec;
pub mod log;
pub mod plan;
pub mod step;

pub use step::{DiskHint, ImageSource, Step, StepStatus, WorkflowKind, WorkflowState};
