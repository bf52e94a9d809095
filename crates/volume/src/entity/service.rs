use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "volume_services")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub host: String,
    /// `cinder-volume`, `cinder-scheduler`, `cinder-backup`
    #[sea_orm(primary_key, auto_increment = false)]
    pub binary: String,
    pub availability_zone: String,
    pub disabled: bool,
    pub disabled_reason: Option<String>,
    pub frozen: bool,
    /// JSON array of the pools a volume host reports (name, capacities, capabilities).
    pub pools: String,
    pub created_at: String,
    /// The last heartbeat.
    pub updated_at: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
