use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "volume_quota_classes")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub class_name: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub resource: String,
    pub hard_limit: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
