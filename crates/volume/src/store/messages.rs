//! User messages (`/v3/messages`): what went wrong in an asynchronous step
//! a user asked for, in words fit for them, as Cinder's `message_field`
//! names them. A message lives for Cinder's `message_ttl` (30 days); expired
//! ones are dropped when a project's messages are listed.

use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set};

use crate::entity::{message, volume};
use crate::error::Result;

/// Cinder's `message_ttl` default: 30 days.
pub const TTL_SECS: i64 = 2_592_000;

/// `message_field.Resource`
pub mod resource {
    pub const VOLUME: &str = "VOLUME";
    pub const VOLUME_SNAPSHOT: &str = "VOLUME_SNAPSHOT";
    pub const VOLUME_BACKUP: &str = "VOLUME_BACKUP";
}

/// An event as Cinder writes it: `VOLUME_<resource>_<action id>_<detail
/// id>`, and its text `<action>:<detail>`.
pub fn event(resource_type: &str, action: (&str, &str), detail: (&str, &str)) -> (String, String) {
    (format!("VOLUME_{resource_type}_{}_{}", action.0, detail.0), format!("{}:{}", action.1, detail.1))
}

/// `message_field.Action` (the ones this service reports).
pub mod action {
    pub const SCHEDULE_ALLOCATE_VOLUME: (&str, &str) = ("001", "schedule allocate volume");
    pub const ATTACH_VOLUME: (&str, &str) = ("002", "attach volume");
    pub const COPY_VOLUME_TO_IMAGE: (&str, &str) = ("003", "copy volume to image");
    pub const COPY_IMAGE_TO_VOLUME: (&str, &str) = ("005", "copy image to volume");
    pub const EXTEND_VOLUME: (&str, &str) = ("007", "extend volume");
    pub const SNAPSHOT_CREATE: (&str, &str) = ("009", "create snapshot");
    pub const SNAPSHOT_DELETE: (&str, &str) = ("010", "delete snapshot");
    pub const BACKUP_CREATE: (&str, &str) = ("013", "create backup");
    pub const BACKUP_DELETE: (&str, &str) = ("014", "delete backup");
    pub const BACKUP_RESTORE: (&str, &str) = ("015", "restore backup");
}

/// `message_field.Detail` (the ones this service reports).
pub mod detail {
    pub const UNKNOWN_ERROR: (&str, &str) = ("001", "An unknown error occurred.");
    pub const DRIVER_NOT_INITIALIZED: (&str, &str) = ("002", "Driver is not initialized at present.");
    pub const NO_BACKEND_AVAILABLE: (&str, &str) = ("003", "Could not find any available weighted backend.");
    pub const QUOTA_EXCEED: (&str, &str) = ("006", "Not enough quota resource for operation.");
    pub const DRIVER_FAILED_EXTEND: (&str, &str) = ("010", "Volume Driver failed to extend volume.");
    pub const DRIVER_FAILED_CREATE: (&str, &str) = ("012", "Driver failed to create the volume.");
    pub const SNAPSHOT_CREATE_ERROR: (&str, &str) = ("013", "Snapshot failed to create.");
    pub const SNAPSHOT_DELETE_ERROR: (&str, &str) = ("016", "Snapshot failed to delete.");
}

fn stamp(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
}

/// Write a message (level `ERROR`, as Cinder's default) about a resource of
/// `project_id`.
pub async fn record<C: ConnectionTrait>(
    conn: &C,
    project_id: &str,
    resource_type: &str,
    resource_uuid: &str,
    event_id: &str,
    message: &str,
) -> Result<()> {
    let now = chrono::Utc::now();
    let row = message::ActiveModel {
        id: Set(uuid::Uuid::new_v4().to_string()),
        project_id: Set(project_id.to_string()),
        request_id: Set(format!("req-{}", uuid::Uuid::new_v4())),
        resource_type: Set(Some(resource_type.to_string())),
        resource_uuid: Set(Some(resource_uuid.to_string()).filter(|s| !s.is_empty())),
        event_id: Set(event_id.to_string()),
        message_level: Set("ERROR".into()),
        user_message: Set(message.chars().take(255).collect()),
        created_at: Set(stamp(now)),
        expires_at: Set(stamp(now + chrono::Duration::seconds(TTL_SECS))),
    };
    row.insert(conn).await?;
    Ok(())
}

/// The scheduler found no backend for the volume: Cinder's
/// `VOLUME_VOLUME_001_003` ("schedule allocate volume:Could not find any
/// available weighted backend."), for the volume's project. Failures are
/// logged, never returned (the volume goes to `error` either way).
pub async fn no_valid_backend<C: ConnectionTrait>(conn: &C, volume_id: &str) {
    let r = async {
        let Some(v) = volume::Entity::find_by_id(volume_id.to_string()).one(conn).await? else {
            return Ok(());
        };
        let (event_id, text) = event(resource::VOLUME, action::SCHEDULE_ALLOCATE_VOLUME, detail::NO_BACKEND_AVAILABLE);
        record(conn, &v.project_id, resource::VOLUME, volume_id, &event_id, &text).await
    }
    .await;
    if let Err(e) = r {
        tracing::warn!(volume = %volume_id, error = %e, "could not record the user message");
    }
}

/// A message by id.
pub async fn get<C: ConnectionTrait>(conn: &C, id: &str) -> Result<Option<message::Model>> {
    Ok(message::Entity::find_by_id(id.to_string()).one(conn).await?)
}

/// The messages of a project (every project's with `None`), oldest first;
/// expired ones are removed first.
pub async fn list<C: ConnectionTrait>(conn: &C, project_id: Option<&str>) -> Result<Vec<message::Model>> {
    let now = stamp(chrono::Utc::now());
    message::Entity::delete_many().filter(message::Column::ExpiresAt.lt(now)).exec(conn).await?;
    let mut q = message::Entity::find();
    if let Some(p) = project_id {
        q = q.filter(message::Column::ProjectId.eq(p));
    }
    Ok(q.order_by_asc(message::Column::CreatedAt).order_by_asc(message::Column::Id).all(conn).await?)
}

/// Remove a message; false when there was none.
pub async fn delete<C: ConnectionTrait>(conn: &C, id: &str) -> Result<bool> {
    Ok(message::Entity::delete_by_id(id.to_string()).exec(conn).await?.rows_affected > 0)
}
