use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "volume_attachments")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub volume_id: String,
    pub instance_uuid: Option<String>,
    pub attached_host: Option<String>,
    pub mountpoint: Option<String>,
    /// `reserved`, `attaching`, `attached`, `detaching`, `detached`, `error_attaching`, `error_detaching`
    pub attach_status: String,
    /// `rw` or `ro`
    pub attach_mode: String,
    /// JSON of the connector the host gave.
    pub connector: Option<String>,
    /// JSON of the connection info the driver gave.
    pub connection_info: Option<String>,
    pub attach_time: Option<String>,
    pub detach_time: Option<String>,
    pub created_at: String,
    pub updated_at: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
