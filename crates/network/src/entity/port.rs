use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "ports")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub project_id: String,
    pub network_id: String,
    pub name: String,
    pub mac_address: String,
    pub admin_state_up: bool,
    pub status: String,
    pub device_id: String,
    pub device_owner: String,
    /// `binding:host_id` ('' when unbound)
    pub host_id: String,
    /// `binding:vnic_type`
    pub vnic_type: String,
    /// `binding:profile` (JSON object)
    pub profile: String,
    /// `binding:vif_details` (JSON object)
    pub vif_details: String,
    pub port_security_enabled: bool,
    /// JSON `[{"ip_address": .., "mac_address": ..}]`
    pub allowed_address_pairs: String,
    /// JSON `[{"opt_name": .., "opt_value": .., "ip_version": ..}]`
    pub extra_dhcp_opts: String,
    pub description: String,
    pub created_at: String,
    pub updated_at: String,
    pub revision_number: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
