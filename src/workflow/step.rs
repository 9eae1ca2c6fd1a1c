//! What a workflow is made of: typed steps, their statuses, the workflow's kind and state.

use ironbay_wire::command::WipeMethod;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Where the image comes from, as a workflow runs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ImageSource {
    /// An http:// URL the agent downloads; for a registry upload, a path under the appliance's
    /// base URL (`images/library/<id>`), completed with the URL the agent reached the appliance at.
    pub url: Option<String>,
    pub library_path: Option<String>,
    pub image_id: Option<String>,
    /// SHA-256 of the image as written to disk (after decompression).
    pub sha256: String,
    pub size_bytes: Option<u64>,
}

/// Which disk a provision writes to, as the request said it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DiskHint {
    /// The smallest writable disk large enough for the image (name order breaks ties).
    Auto,
    Serial(String),
    Wwn(String),
    Path(String),
}

/// One step. Its JSON (`{"type": "wipe", "method": "quick"}`) is stored on the step row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Step {
    PowerOff,
    SetBootPxe,
    PowerOn,
    WaitForAgent,
    /// Reads the disks from the agent; in a provision, also resolves the target disk.
    Inventory,
    Wipe {
        #[schema(value_type = String)]
        method: WipeMethod,
    },
    WriteImage {
        image: ImageSource,
    },
    SetBootDisk,
    Reboot,
    WaitForInstall,
    /// A Talos node: its config fetched, the PXE boot after it (installed), then apid on :50000
    /// at the node's static address.
    WaitForTalosInstall,
    /// The cluster workflow: every member's talos_install workflow succeeded.
    WaitForClusterNodes,
    /// `machine.MachineService/Bootstrap` on the first control plane, once.
    Bootstrap,
}

impl Step {
    pub fn kind(&self) -> &'static str {
        match self {
            Step::PowerOff => "power_off",
            Step::SetBootPxe => "set_boot_pxe",
            Step::PowerOn => "power_on",
            Step::WaitForAgent => "wait_for_agent",
            Step::Inventory => "inventory",
            Step::Wipe { .. } => "wipe",
            Step::WriteImage { .. } => "write_image",
            Step::SetBootDisk => "set_boot_disk",
            Step::Reboot => "reboot",
            Step::WaitForInstall => "wait_for_install",
            Step::WaitForTalosInstall => "wait_for_talos_install",
            Step::WaitForClusterNodes => "wait_for_cluster_nodes",
            Step::Bootstrap => "bootstrap",
        }
    }

    /// Destructive steps change disks: once finished they never run again, and one found running
    /// after a crash is re-examined (the agent asked) before anything is retried.
    pub fn is_destructive(&self) -> bool {
        matches!(self, Step::Wipe { .. } | Step::WriteImage { .. })
    }

    /// Steps that talk to the BMC (skipped when the agent is already up, or there is no BMC).
    pub fn is_power(&self) -> bool {
        matches!(self, Step::PowerOff | Step::SetBootPxe | Step::PowerOn | Step::SetBootDisk)
    }
}

macro_rules! string_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err(format!("`{other}` is not one of: {}", [$($text),+].join(", "))),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

string_enum!(
    /// What a workflow does: to its asset (wipe, provision, talos_install) or to a cluster
    /// (cluster_create: wait for the members, bootstrap; its `asset_id` is the cluster's id).
    WorkflowKind {
        Wipe => "wipe",
        Provision => "provision",
        TalosInstall => "talos_install",
        ClusterCreate => "cluster_create",
    }
);

string_enum!(
    /// `pending` until its first step is claimed; `running` until it ends.
    WorkflowState {
        Pending => "pending",
        Running => "running",
        Succeeded => "succeeded",
        Failed => "failed",
        Cancelled => "cancelled",
    }
);

string_enum!(
    /// `waiting`: a step that polls (for the agent, for the installed system) between tries, with
    /// no appliance holding it.
    StepStatus {
        Pending => "pending",
        Running => "running",
        Waiting => "waiting",
        Succeeded => "succeeded",
        Failed => "failed",
        Skipped => "skipped",
        Cancelled => "cancelled",
    }
);

impl WorkflowState {
    pub fn is_active(self) -> bool {
        matches!(self, WorkflowState::Pending | WorkflowState::Running)
    }
}

impl StepStatus {
    pub fn is_done(self) -> bool {
        matches!(self, StepStatus::Succeeded | StepStatus::Skipped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_stored_as_tagged_json() {
        let s = Step::Wipe { method: WipeMethod::Zero };
        let text = serde_json::to_string(&s).unwrap();
        assert_eq!(text, r#"{"type":"wipe","method":"zero"}"#);
        assert_eq!(serde_json::from_str::<Step>(&text).unwrap(), s);
        assert!(s.is_destructive());
        assert!(!Step::Reboot.is_destructive());
        assert_eq!("waiting".parse::<StepStatus>(), Ok(StepStatus::Waiting));
        assert!("done".parse::<StepStatus>().is_err());
    }
}
