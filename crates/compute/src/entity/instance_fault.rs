use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "instance_faults")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub instance_uuid: String,
    pub code: i64,
    pub message: String,
    pub details: Option<String>,
    pub host: Option<String>,
    pub created_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
