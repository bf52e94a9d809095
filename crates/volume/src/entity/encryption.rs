use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "volume_type_encryption")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub volume_type_id: String,
    pub encryption_id: String,
    pub provider: String,
    pub cipher: Option<String>,
    pub key_size: Option<i64>,
    /// `front-end` or `back-end`
    pub control_location: String,
    pub created_at: String,
    pub updated_at: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
