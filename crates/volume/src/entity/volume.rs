use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "volumes")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub project_id: String,
    pub user_id: String,
    pub name: Option<String>,
    pub description: Option<String>,
    /// GiB
    pub size: i64,
    pub status: String,
    /// `detached` or `attached`
    pub attach_status: String,
    pub availability_zone: String,
    pub volume_type_id: Option<String>,
    pub bootable: bool,
    pub multiattach: bool,
    pub encrypted: bool,
    pub source_volid: Option<String>,
    pub snapshot_id: Option<String>,
    /// The image it was made from.
    pub image_id: Option<String>,
    pub backup_id: Option<String>,
    /// `host@backend#pool` once scheduled.
    pub host: Option<String>,
    /// Where the driver keeps it (the file's path for the file backend).
    pub provider_location: Option<String>,
    /// JSON object of user metadata.
    pub metadata: String,
    /// JSON object of admin metadata (`readonly`, `attached_mode`).
    pub admin_metadata: String,
    /// JSON object of image metadata (`volume_image_metadata`).
    pub image_metadata: String,
    pub migration_status: Option<String>,
    pub replication_status: Option<String>,
    pub group_id: Option<String>,
    pub previous_status: Option<String>,
    pub created_at: String,
    pub updated_at: Option<String>,
    pub launched_at: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
