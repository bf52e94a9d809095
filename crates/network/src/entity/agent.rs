use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "agents")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// `Linux bridge agent`, `DHCP agent`, `L3 agent`, ...
    pub agent_type: String,
    /// `neutron-linuxbridge-agent`, ...
    pub binary: String,
    pub topic: String,
    pub host: String,
    /// '' when the agent has none (rendered null)
    pub availability_zone: String,
    pub admin_state_up: bool,
    /// `2026-11-26 13:00:00` (Neutron's agent time format, UTC)
    pub created_at: String,
    pub started_at: String,
    pub heartbeat_timestamp: String,
    pub description: String,
    /// JSON object the agent reports
    pub configurations: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
