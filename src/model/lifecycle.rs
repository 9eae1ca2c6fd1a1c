//! The asset lifecycle: which events move an asset from which state to which. Pure; the one
//! writer of the state column (`app::lifecycle::apply`) asks `next` and refuses what it refuses.
//!
//! ```text
//! discovering --AgentRegistered--> available
//! available | provisioned | failed --WipeStarted--> wiping --WipeFinished--> available
//! available | provisioned | failed --ProvisionStarted--> provisioning --ProvisionFinished--> provisioned
//! wiping | provisioning --WorkflowFailed--> failed
//! wiping | provisioning --WorkflowCancelled{back_to}--> back_to (nothing destructive ran) | failed
//! provisioning | provisioned | available --ImageWriteFailed--> failed   (an ad-hoc write-image command)
//! failed --WorkflowRetried{kind}--> wiping | provisioning
//! ```

use super::AssetState;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LifecycleEvent {
    AgentRegistered,
    WipeStarted,
    WipeFinished,
    ProvisionStarted,
    ProvisionFinished,
    WorkflowFailed,
    /// `Some(state)`: nothing destructive ran, go back to it; `None`: the disks may be half done.
    WorkflowCancelled(Option<AssetState>),
    /// A retry of a failed workflow resumes it: wiping or provisioning again.
    WorkflowRetried(AssetState),
    ImageWriteFailed,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an asset that is {from} cannot {what}")]
pub struct Refused {
    pub from: AssetState,
    pub what: &'static str,
}

impl LifecycleEvent {
    fn describe(self) -> &'static str {
        match self {
            LifecycleEvent::AgentRegistered => "become available by registering",
            LifecycleEvent::WipeStarted => "be wiped",
            LifecycleEvent::WipeFinished => "finish a wipe",
            LifecycleEvent::ProvisionStarted => "be provisioned",
            LifecycleEvent::ProvisionFinished => "finish provisioning",
            LifecycleEvent::WorkflowFailed => "fail a workflow",
            LifecycleEvent::WorkflowCancelled(_) => "cancel a workflow",
            LifecycleEvent::WorkflowRetried(_) => "retry a workflow",
            LifecycleEvent::ImageWriteFailed => "fail an image write",
        }
    }
}

/// The state `event` moves an asset in `from` to, or why it cannot.
pub fn next(from: AssetState, event: LifecycleEvent) -> Result<AssetState, Refused> {
    use AssetState::*;
    use LifecycleEvent::*;
    let to = match (from, event) {
        (Discovering, AgentRegistered) => Some(Available),
        (Available | Provisioned | Failed, WipeStarted) => Some(Wiping),
        (Wiping, WipeFinished) => Some(Available),
        (Available | Provisioned | Failed, ProvisionStarted) => Some(Provisioning),
        (Provisioning, ProvisionFinished) => Some(Provisioned),
        (Wiping | Provisioning, WorkflowFailed) => Some(Failed),
        (Wiping | Provisioning, WorkflowCancelled(back)) => Some(back.unwrap_or(Failed)),
        (Failed, WorkflowRetried(to @ (Wiping | Provisioning))) => Some(to),
        (Available | Provisioning | Provisioned, ImageWriteFailed) => Some(Failed),
        _ => None,
    };
    to.ok_or(Refused { from, what: event.describe() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use AssetState::*;
    use LifecycleEvent::*;

    #[test]
    fn a_wipe_and_a_provision_go_round() {
        assert_eq!(next(Available, WipeStarted), Ok(Wiping));
        assert_eq!(next(Wiping, WipeFinished), Ok(Available));
        assert_eq!(next(Available, ProvisionStarted), Ok(Provisioning));
        assert_eq!(next(Provisioning, ProvisionFinished), Ok(Provisioned));
        assert_eq!(next(Provisioned, WipeStarted), Ok(Wiping));
        assert_eq!(next(Discovering, AgentRegistered), Ok(Available));
    }

    #[test]
    fn busy_and_unknown_machines_cannot_start_another_workflow() {
        for from in [Discovering, Wiping, Provisioning] {
            assert!(next(from, WipeStarted).is_err(), "{from}");
            assert!(next(from, ProvisionStarted).is_err(), "{from}");
        }
        // Registering never moves a machine that is being worked on.
        for from in [Available, Wiping, Provisioning, Provisioned, Failed] {
            assert!(next(from, AgentRegistered).is_err(), "{from}");
        }
    }

    #[test]
    fn only_a_workflow_in_progress_ends_and_a_cancel_says_where_to() {
        assert_eq!(next(Wiping, WorkflowFailed), Ok(Failed));
        assert!(next(Available, WorkflowFailed).is_err());
        assert!(next(Provisioned, ProvisionFinished).is_err());
        assert_eq!(next(Wiping, WorkflowCancelled(Some(Provisioned))), Ok(Provisioned));
        assert_eq!(next(Provisioning, WorkflowCancelled(None)), Ok(Failed));
        assert_eq!(next(Failed, WorkflowRetried(Wiping)), Ok(Wiping));
        assert!(next(Failed, WorkflowRetried(Available)).is_err());
        assert!(next(Available, WorkflowRetried(Wiping)).is_err());
    }

    #[test]
    fn a_refusal_reads_as_a_sentence() {
        assert_eq!(
            next(Wiping, ProvisionStarted).unwrap_err().to_string(),
            "an asset that is wiping cannot be provisioned"
        );
    }
}
