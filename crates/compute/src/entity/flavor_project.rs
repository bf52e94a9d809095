use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "flavor_projects")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub flavor_id: i64,
    #[sea_orm(primary_key, auto_increment = false)]
    pub project_id: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
