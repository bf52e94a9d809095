use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "backups")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub volume_id: String,
    pub snapshot_id: Option<String>,
    pub project_id: String,
    pub user_id: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub status: String,
    /// GiB (the volume's size)
    pub size: i64,
    pub availability_zone: Option<String>,
    pub container: Option<String>,
    pub fail_reason: Option<String>,
    pub is_incremental: bool,
    pub parent_id: Option<String>,
    pub object_count: i64,
    pub data_timestamp: Option<String>,
    pub host: Option<String>,
    /// Where the backup service keeps the data (JSON).
    pub service_metadata: Option<String>,
    /// JSON object of metadata.
    pub metadata: String,
    /// The volume a restore is writing (while `restoring`).
    pub restore_volume_id: Option<String>,
    pub created_at: String,
    pub updated_at: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
