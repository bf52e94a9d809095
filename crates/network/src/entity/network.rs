use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "networks")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub project_id: String,
    pub name: String,
    pub admin_state_up: bool,
    pub status: String,
    pub shared: bool,
    /// `router:external`
    pub external: bool,
    pub mtu: i64,
    pub port_security_enabled: bool,
    /// `provider:network_type`: flat, vlan, vxlan, local
    pub network_type: String,
    /// `provider:physical_network` ('' when none)
    pub physical_network: String,
    /// `provider:segmentation_id`
    pub segmentation_id: Option<i64>,
    /// JSON list
    pub availability_zone_hints: String,
    pub dns_domain: String,
    /// `is_default` (auto-allocated topology's external network)
    pub is_default: bool,
    pub description: String,
    pub created_at: String,
    pub updated_at: String,
    pub revision_number: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
