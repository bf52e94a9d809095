use sea_orm::entity::prelude::*;

/// One extra route of a router.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "routerroutes")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub router_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub destination: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub nexthop: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
