//! Server states exactly as Nova keeps them: `vm_state` (what the server
//! is), `task_state` (what is happening to it), `power_state` (what the
//! hypervisor says), and the `status` the API derives from the first two.

/// `vm_state` values.
pub mod vm {
    pub const ACTIVE: &str = "active";
    pub const BUILDING: &str = "building";
    pub const PAUSED: &str = "paused";
    pub const SUSPENDED: &str = "suspended";
    pub const STOPPED: &str = "stopped";
    pub const RESCUED: &str = "rescued";
    pub const RESIZED: &str = "resized";
    pub const SOFT_DELETED: &str = "soft-delete";
    pub const DELETED: &str = "deleted";
    pub const ERROR: &str = "error";
    pub const SHELVED: &str = "shelved";
    pub const SHELVED_OFFLOADED: &str = "shelved_offloaded";
}

/// `task_state` values.
pub mod task {
    pub const SCHEDULING: &str = "scheduling";
    pub const BLOCK_DEVICE_MAPPING: &str = "block_device_mapping";
    pub const NETWORKING: &str = "networking";
    pub const SPAWNING: &str = "spawning";
    pub const IMAGE_SNAPSHOT: &str = "image_snapshot";
    pub const IMAGE_SNAPSHOT_PENDING: &str = "image_snapshot_pending";
    pub const IMAGE_BACKUP: &str = "image_backup";
    pub const IMAGE_PENDING_UPLOAD: &str = "image_pending_upload";
    pub const IMAGE_UPLOADING: &str = "image_uploading";
    pub const UPDATING_PASSWORD: &str = "updating_password";
    pub const RESIZE_PREP: &str = "resize_prep";
    pub const RESIZE_MIGRATING: &str = "resize_migrating";
    pub const RESIZE_MIGRATED: &str = "resize_migrated";
    pub const RESIZE_FINISH: &str = "resize_finish";
    pub const RESIZE_REVERTING: &str = "resize_reverting";
    pub const RESIZE_CONFIRMING: &str = "resize_confirming";
    pub const REBOOTING: &str = "rebooting";
    pub const REBOOT_PENDING: &str = "reboot_pending";
    pub const REBOOT_STARTED: &str = "reboot_started";
    pub const REBOOTING_HARD: &str = "rebooting_hard";
    pub const REBOOT_PENDING_HARD: &str = "reboot_pending_hard";
    pub const REBOOT_STARTED_HARD: &str = "reboot_started_hard";
    pub const PAUSING: &str = "pausing";
    pub const UNPAUSING: &str = "unpausing";
    pub const SUSPENDING: &str = "suspending";
    pub const RESUMING: &str = "resuming";
    pub const POWERING_OFF: &str = "powering-off";
    pub const POWERING_ON: &str = "powering-on";
    pub const REBUILDING: &str = "rebuilding";
    pub const REBUILD_BLOCK_DEVICE_MAPPING: &str = "rebuild_block_device_mapping";
    pub const REBUILD_SPAWNING: &str = "rebuild_spawning";
    pub const MIGRATING: &str = "migrating";
    pub const DELETING: &str = "deleting";
    pub const SOFT_DELETING: &str = "soft-deleting";
    pub const RESTORING: &str = "restoring";
    pub const SHELVING: &str = "shelving";
    pub const UNSHELVING: &str = "unshelving";
}

/// The API `status` of a server (Nova's `status_from_state`).
pub fn status(vm_state: &str, task_state: Option<&str>) -> &'static str {
    use task::*;
    let t = task_state.unwrap_or("");
    match vm_state {
        vm::ACTIVE => match t {
            REBOOTING | REBOOT_PENDING | REBOOT_STARTED => "REBOOT",
            REBOOTING_HARD | REBOOT_PENDING_HARD | REBOOT_STARTED_HARD => "HARD_REBOOT",
            UPDATING_PASSWORD => "PASSWORD",
            REBUILDING | REBUILD_BLOCK_DEVICE_MAPPING | REBUILD_SPAWNING => "REBUILD",
            MIGRATING => "MIGRATING",
            RESIZE_PREP | RESIZE_MIGRATING | RESIZE_MIGRATED | RESIZE_FINISH => "RESIZE",
            _ => "ACTIVE",
        },
        vm::BUILDING => "BUILD",
        vm::STOPPED => match t {
            RESIZE_PREP | RESIZE_MIGRATING | RESIZE_MIGRATED | RESIZE_FINISH => "RESIZE",
            REBUILDING | REBUILD_BLOCK_DEVICE_MAPPING | REBUILD_SPAWNING => "REBUILD",
            _ => "SHUTOFF",
        },
        vm::RESIZED => match t {
            RESIZE_REVERTING => "REVERT_RESIZE",
            _ => "VERIFY_RESIZE",
        },
        vm::PAUSED => match t {
            MIGRATING => "MIGRATING",
            _ => "PAUSED",
        },
        vm::SUSPENDED => "SUSPENDED",
        vm::RESCUED => "RESCUE",
        vm::ERROR => match t {
            REBUILDING | REBUILD_BLOCK_DEVICE_MAPPING | REBUILD_SPAWNING => "REBUILD",
            _ => "ERROR",
        },
        vm::DELETED => "DELETED",
        vm::SOFT_DELETED => "SOFT_DELETED",
        vm::SHELVED => "SHELVED",
        vm::SHELVED_OFFLOADED => "SHELVED_OFFLOADED",
        _ => "UNKNOWN",
    }
}

/// The `vm_state`s a `status` filter means (the inverse of [`status`], for list filters).
pub fn vm_states_of_status(status: &str) -> Option<(&'static [&'static str], Option<&'static [&'static str]>)> {
    use task::*;
    const REBOOTS: &[&str] = &[REBOOTING, REBOOT_PENDING, REBOOT_STARTED];
    const HARD: &[&str] = &[REBOOTING_HARD, REBOOT_PENDING_HARD, REBOOT_STARTED_HARD];
    const RESIZES: &[&str] = &[RESIZE_PREP, RESIZE_MIGRATING, RESIZE_MIGRATED, RESIZE_FINISH];
    Some(match status.to_ascii_uppercase().as_str() {
        "ACTIVE" => (&[vm::ACTIVE], None),
        "BUILD" => (&[vm::BUILDING], None),
        "SHUTOFF" => (&[vm::STOPPED], None),
        "PAUSED" => (&[vm::PAUSED], None),
        "SUSPENDED" => (&[vm::SUSPENDED], None),
        "RESCUE" => (&[vm::RESCUED], None),
        "ERROR" => (&[vm::ERROR], None),
        "DELETED" => (&[vm::DELETED], None),
        "SOFT_DELETED" => (&[vm::SOFT_DELETED], None),
        "SHELVED" => (&[vm::SHELVED], None),
        "SHELVED_OFFLOADED" => (&[vm::SHELVED_OFFLOADED], None),
        "VERIFY_RESIZE" => (&[vm::RESIZED], None),
        "REVERT_RESIZE" => (&[vm::RESIZED], Some(&[RESIZE_REVERTING])),
        "REBOOT" => (&[vm::ACTIVE], Some(REBOOTS)),
        "HARD_REBOOT" => (&[vm::ACTIVE], Some(HARD)),
        "RESIZE" => (&[vm::ACTIVE, vm::STOPPED], Some(RESIZES)),
        "REBUILD" => {
            (&[vm::ACTIVE, vm::STOPPED, vm::ERROR], Some(&[REBUILDING, REBUILD_BLOCK_DEVICE_MAPPING, REBUILD_SPAWNING]))
        }
        "MIGRATING" => (&[vm::ACTIVE, vm::PAUSED], Some(&[MIGRATING])),
        _ => return None,
    })
}

/// Progress is shown only in these statuses (as Nova does).
pub fn shows_progress(status: &str) -> bool {
    matches!(status, "ACTIVE" | "BUILD" | "REBUILD" | "RESIZE" | "VERIFY_RESIZE" | "MIGRATING")
}

/// What an action requires of a server: allowed vm_states, and whether a
/// task in progress forbids it (Nova's `check_instance_state`).
pub struct Requires {
    pub vm_states: &'static [&'static str],
    /// `None`: no task may be in progress; `Some(list)`: only these tasks (or none).
    pub task_states: Option<&'static [&'static str]>,
}

pub const fn needs(vm_states: &'static [&'static str]) -> Requires {
    Requires { vm_states, task_states: None }
}

impl Requires {
    /// `Err((attribute, value))` names what is wrong, for Nova's 409 message.
    pub fn check(&self, vm_state: &str, task_state: Option<&str>) -> Result<(), (&'static str, String)> {
        if !self.vm_states.contains(&vm_state) {
            return Err(("vm_state", vm_state.to_string()));
        }
        match (task_state, self.task_states) {
            (None, _) => Ok(()),
            (Some(t), Some(ok)) if ok.contains(&t) => Ok(()),
            (Some(t), _) => Err(("task_state", t.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        assert_eq!(status("active", None), "ACTIVE");
        assert_eq!(status("active", Some("rebooting_hard")), "HARD_REBOOT");
        assert_eq!(status("active", Some("deleting")), "ACTIVE");
        assert_eq!(status("stopped", Some("resize_prep")), "RESIZE");
        assert_eq!(status("resized", None), "VERIFY_RESIZE");
        assert_eq!(status("resized", Some("resize_reverting")), "REVERT_RESIZE");
        assert_eq!(status("building", Some("scheduling")), "BUILD");
        assert_eq!(status("error", Some("rebuilding")), "REBUILD");
        for s in ["ACTIVE", "REBOOT", "VERIFY_RESIZE", "SHUTOFF"] {
            let (vms, _) = vm_states_of_status(s).unwrap_or((&[], None));
            assert!(!vms.is_empty(), "{s}");
        }
        assert!(vm_states_of_status("NOPE").is_none());
    }

    #[test]
    fn requirements() {
        let r = needs(&[vm::ACTIVE]);
        assert!(r.check("active", None).is_ok());
        assert_eq!(r.check("stopped", None), Err(("vm_state", "stopped".into())));
        assert_eq!(r.check("active", Some("pausing")), Err(("task_state", "pausing".into())));
    }
}
