//! The steps of each kind of workflow, in order. Pure.

use ironbay_wire::command::WipeMethod;

use super::step::{ImageSource, Step};

/// Power the machine into the agent (skipped step by step when its agent already runs), read
/// its disks, wipe them, power it off.
pub fn wipe(method: WipeMethod) -> Vec<Step> {
    vec![
        Step::PowerOff,
        Step::SetBootPxe,
        Step::PowerOn,
        Step::WaitForAgent,
        Step::Inventory,
        Step::Wipe { method },
        Step::PowerOff,
    ]
}

/// Into the agent, resolve the target disk, optionally wipe, write and verify the image, boot
/// from the disk and wait until the installed system is up.
pub fn provision(image: ImageSource, wipe: Option<WipeMethod>) -> Vec<Step> {
    let mut steps = vec![Step::PowerOff, Step::SetBootPxe, Step::PowerOn, Step::WaitForAgent, Step::Inventory];
    if let Some(method) = wipe {
        steps.push(Step::Wipe { method });
    }
    steps.extend([Step::WriteImage { image }, Step::SetBootDisk, Step::Reboot, Step::WaitForInstall]);
    steps
}

/// A Talos node: power-cycle into the Talos PXE boot (the boot script serves Talos's kernel
/// while the asset is a member not yet installed), then wait for the install to complete.
pub fn talos_install() -> Vec<Step> {
    vec![Step::PowerOff, Step::SetBootPxe, Step::PowerOn, Step::WaitForTalosInstall]
}

/// The cluster: every member installed, then the one bootstrap call.
pub fn cluster_create() -> Vec<Step> {
    vec![Step::WaitForClusterNodes, Step::Bootstrap]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_provision_writes_after_the_inventory_and_boots_from_disk_last() {
        let image = ImageSource {
            url: Some("http://x/a.raw".into()),
            library_path: None,
            image_id: None,
            sha256: "0".repeat(64),
            size_bytes: None,
        };
        let kinds: Vec<_> = provision(image, Some(WipeMethod::Quick)).iter().map(Step::kind).collect();
        assert_eq!(
            kinds,
            [
                "power_off",
                "set_boot_pxe",
                "power_on",
                "wait_for_agent",
                "inventory",
                "wipe",
                "write_image",
                "set_boot_disk",
                "reboot",
                "wait_for_install"
            ]
        );
        assert_eq!(wipe(WipeMethod::Zero).iter().filter(|s| s.is_destructive()).count(), 1);
    }
}
