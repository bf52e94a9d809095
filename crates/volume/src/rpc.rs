//! The block storage service's messages on the bus, versioned.
//!
//! The API casts [`ScheduleVolume`] to [`SCHEDULER`]; the scheduler picks a
//! host and pool and casts [`CreateVolume`] to that host. Everything that
//! touches a volume's data goes to the host holding it, on
//! `volume.<host>.<operation>` (one topic per message, so each operation has
//! its own handler). Casts report their outcome by writing the resource's
//! status; calls answer.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use stratus_bus::Message;

/// Where the volume schedulers listen.
pub const SCHEDULER: &str = "volume-scheduler";

/// The topic of `operation` on the volume host `host` (the host part of
/// `host@backend#pool`).
pub fn host_topic(host: &str, operation: &str) -> String {
    let host = host_of(host);
    format!("volume.{host}.{operation}")
}

/// `host@backend#pool` -> `host`.
pub fn host_of(full: &str) -> &str {
    let h = full.split('#').next().unwrap_or(full);
    h.split('@').next().unwrap_or(h)
}

/// `host@backend#pool` -> `pool` ('' when none is named).
pub fn pool_of(full: &str) -> &str {
    full.split_once('#').map(|(_, p)| p).unwrap_or("")
}

/// Where a new volume's data comes from.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Source {
    #[serde(default)]
    pub image_id: Option<String>,
    #[serde(default)]
    pub snapshot_id: Option<String>,
    #[serde(default)]
    pub source_volid: Option<String>,
    #[serde(default)]
    pub backup_id: Option<String>,
}

/// API -> scheduler (cast): place this volume.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ScheduleVolume {
    pub volume_id: String,
    pub size: i64,
    pub availability_zone: String,
    /// The volume type's extra specs (`volume_backend_name`, capabilities).
    #[serde(default)]
    pub extra_specs: serde_json::Map<String, Value>,
    #[serde(default)]
    pub source: Source,
    /// Where it must go (a clone or a volume from a snapshot stays with its
    /// source): `host@backend#pool`.
    #[serde(default)]
    pub must_host: Option<String>,
}

impl Message for ScheduleVolume {
    const NAME: &'static str = "volume_scheduler.schedule_volume";
    const VERSION: u32 = 1;
}

/// scheduler -> `volume.<host>.create` (cast): make the volume in `pool`.
/// The host sets it `available` (or `error`).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct CreateVolume {
    pub volume_id: String,
    /// `host@backend#pool`
    pub host: String,
    pub size: i64,
    #[serde(default)]
    pub source: Source,
}

impl Message for CreateVolume {
    const NAME: &'static str = "volume.create_volume";
    const VERSION: u32 = 1;
}

/// API -> `volume.<host>.delete` (cast): remove the volume's data and row
/// (`error_deleting` when the backend fails).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct DeleteVolume {
    pub volume_id: String,
    /// Delete its snapshots too (`cascade`).
    #[serde(default)]
    pub cascade: bool,
}

impl Message for DeleteVolume {
    const NAME: &'static str = "volume.delete_volume";
    const VERSION: u32 = 1;
}

/// API -> `volume.<host>.extend` (cast): grow to `new_size` GiB.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ExtendVolume {
    pub volume_id: String,
    pub new_size: i64,
}

impl Message for ExtendVolume {
    const NAME: &'static str = "volume.extend_volume";
    const VERSION: u32 = 1;
}

/// API -> `volume.<host>.connection` (call): how a host reaches the volume
/// (the reply is Cinder's `connection_info`).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct InitializeConnection {
    pub volume_id: String,
    #[serde(default)]
    pub connector: Value,
}

impl Message for InitializeConnection {
    const NAME: &'static str = "volume.initialize_connection";
    const VERSION: u32 = 1;
}

/// API -> `volume.<host>.snapshot` (cast): take a snapshot
/// (`available` or `error`).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct CreateSnapshot {
    pub snapshot_id: String,
    pub volume_id: String,
}

impl Message for CreateSnapshot {
    const NAME: &'static str = "volume.create_snapshot";
    const VERSION: u32 = 1;
}

/// API -> `volume.<host>.delete_snapshot` (cast): remove a snapshot's data and row.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct DeleteSnapshot {
    pub snapshot_id: String,
}

impl Message for DeleteSnapshot {
    const NAME: &'static str = "volume.delete_snapshot";
    const VERSION: u32 = 1;
}

/// API -> `volume.<host>.upload_image` (cast): write the volume's data into
/// an image (queued in the image service by the API); the volume returns to
/// its previous status.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct UploadImage {
    pub volume_id: String,
    pub image_id: String,
    pub disk_format: String,
    /// The caller's token, to write the image as them.
    pub token: String,
}

impl Message for UploadImage {
    const NAME: &'static str = "volume.copy_volume_to_image";
    const VERSION: u32 = 1;
}

/// API -> `volume.<host>.backup` (cast): copy the volume (or a snapshot of
/// it) into the backup store.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct CreateBackup {
    pub backup_id: String,
}

impl Message for CreateBackup {
    const NAME: &'static str = "volume.create_backup";
    const VERSION: u32 = 1;
}

/// API -> `volume.<host>.restore` (cast): write a backup into a volume.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct RestoreBackup {
    pub backup_id: String,
    pub volume_id: String,
}

impl Message for RestoreBackup {
    const NAME: &'static str = "volume.restore_backup";
    const VERSION: u32 = 1;
}

/// API -> `volume.<host>.delete_backup` (cast): remove a backup's data and row.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct DeleteBackup {
    pub backup_id: String,
}

impl Message for DeleteBackup {
    const NAME: &'static str = "volume.delete_backup";
    const VERSION: u32 = 1;
}
