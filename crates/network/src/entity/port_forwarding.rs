use sea_orm::entity::prelude::*;

/// A port forwarding of a floating IP: external ports to internal ports of a
/// fixed IP (a single port is a range with start = end).
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "portforwardings")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub floatingip_id: String,
    pub protocol: String,
    pub external_port_start: i64,
    pub external_port_end: i64,
    pub internal_port_id: String,
    pub internal_ip_address: String,
    pub internal_port_start: i64,
    pub internal_port_end: i64,
    pub description: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
