use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "volume_messages")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub project_id: String,
    pub request_id: String,
    /// `VOLUME`, `VOLUME_SNAPSHOT`, `VOLUME_BACKUP`
    pub resource_type: Option<String>,
    pub resource_uuid: Option<String>,
    /// `VOLUME_<resource>_<action>_<detail>`
    pub event_id: String,
    pub message_level: String,
    pub user_message: String,
    pub created_at: String,
    pub expires_at: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
