use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "subnets")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub project_id: String,
    pub network_id: String,
    pub name: String,
    pub ip_version: i64,
    pub cidr: String,
    /// '' when the subnet has no gateway (null in the API)
    pub gateway_ip: String,
    /// JSON `[{"start": .., "end": ..}]`
    pub allocation_pools: String,
    /// JSON list of addresses, in order
    pub dns_nameservers: String,
    /// JSON `[{"destination": .., "nexthop": ..}]`
    pub host_routes: String,
    pub enable_dhcp: bool,
    /// '' when unset
    pub ipv6_ra_mode: String,
    pub ipv6_address_mode: String,
    /// '' when not from a pool
    pub subnetpool_id: String,
    pub description: String,
    pub created_at: String,
    pub updated_at: String,
    pub revision_number: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
