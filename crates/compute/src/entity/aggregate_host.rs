use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "aggregate_hosts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub aggregate_id: i64,
    #[sea_orm(primary_key, auto_increment = false)]
    pub host: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
