//! Talos Linux clusters: the secrets bundle, machine configs, admin credentials (kubeconfig and
//! talosconfig), the planner that turns a cluster request into per-node configs and steps, and
//! the gRPC bootstrap call. Everything but `bootstrap` is pure (no I/O).

pub mod access;
pub mod bootstrap;
pub mod config;
pub mod secrets;

/// Why a Talos artefact could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TalosError {
    #[error("certificate generation failed: {0}")]
    Certificate(String),
    #[error("machine config rendering failed: {0}")]
    Render(String),
    #[error("{0}")]
    Invalid(String),
}
