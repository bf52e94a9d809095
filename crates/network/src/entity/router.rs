use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "routers")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub project_id: String,
    pub name: String,
    pub admin_state_up: bool,
    pub status: String,
    /// The gateway port ('' without an external gateway).
    pub gw_port_id: String,
    pub enable_snat: bool,
    /// JSON list
    pub availability_zone_hints: String,
    /// The host of the L3 agent hosting it ('' while unscheduled).
    pub l3_agent_host: String,
    pub description: String,
    pub created_at: String,
    pub updated_at: String,
    pub revision_number: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
