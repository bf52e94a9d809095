//! The states of volumes, snapshots, backups and attachments, as Cinder names them.

pub mod volume_status {
    pub const CREATING: &str = "creating";
    pub const AVAILABLE: &str = "available";
    pub const RESERVED: &str = "reserved";
    pub const ATTACHING: &str = "attaching";
    pub const IN_USE: &str = "in-use";
    pub const DETACHING: &str = "detaching";
    pub const EXTENDING: &str = "extending";
    pub const DELETING: &str = "deleting";
    pub const ERROR: &str = "error";
    pub const ERROR_DELETING: &str = "error_deleting";
    pub const ERROR_EXTENDING: &str = "error_extending";
    pub const UPLOADING: &str = "uploading";
    pub const DOWNLOADING: &str = "downloading";
    pub const BACKING_UP: &str = "backing-up";
    pub const RESTORING_BACKUP: &str = "restoring-backup";
    pub const AWAITING_TRANSFER: &str = "awaiting-transfer";
    pub const RETYPING: &str = "retyping";
    pub const MAINTENANCE: &str = "maintenance";
}

/// Every status reset-status accepts for a volume.
pub const VOLUME_STATUSES: &[&str] = &[
    "creating",
    "available",
    "reserved",
    "attaching",
    "in-use",
    "detaching",
    "extending",
    "deleting",
    "error",
    "error_deleting",
    "error_extending",
    "uploading",
    "downloading",
    "backing-up",
    "restoring-backup",
    "error_restoring",
    "awaiting-transfer",
    "retyping",
    "maintenance",
    "error_managing",
    "managing",
];

pub mod snapshot_status {
    pub const CREATING: &str = "creating";
    pub const AVAILABLE: &str = "available";
    pub const DELETING: &str = "deleting";
    pub const ERROR: &str = "error";
    pub const ERROR_DELETING: &str = "error_deleting";
    pub const BACKING_UP: &str = "backing-up";
}

pub mod backup_status {
    pub const CREATING: &str = "creating";
    pub const AVAILABLE: &str = "available";
    pub const DELETING: &str = "deleting";
    pub const ERROR: &str = "error";
    pub const ERROR_DELETING: &str = "error_deleting";
    pub const RESTORING: &str = "restoring";
}

pub mod attach_status {
    pub const ATTACHED: &str = "attached";
    pub const ATTACHING: &str = "attaching";
    pub const DETACHED: &str = "detached";
    pub const RESERVED: &str = "reserved";
    pub const ERROR_ATTACHING: &str = "error_attaching";
    pub const ERROR_DETACHING: &str = "error_detaching";
    pub const DELETED: &str = "deleted";
}

/// The quota resources Cinder counts per project.
pub const QUOTA_RESOURCES: &[&str] =
    &["volumes", "snapshots", "gigabytes", "backups", "backup_gigabytes", "per_volume_gigabytes", "groups"];
