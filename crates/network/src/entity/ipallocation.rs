use sea_orm::entity::prelude::*;

/// One address of a subnet held by a port.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "ipallocations")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub subnet_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub ip_address: String,
    pub network_id: String,
    pub port_id: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
