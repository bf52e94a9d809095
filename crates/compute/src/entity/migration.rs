use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "migrations")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub uuid: String,
    pub instance_uuid: String,
    pub source_compute: Option<String>,
    pub source_node: Option<String>,
    pub dest_compute: Option<String>,
    pub dest_node: Option<String>,
    pub dest_host: Option<String>,
    pub old_instance_type_id: Option<i64>,
    pub new_instance_type_id: Option<i64>,
    pub status: String,
    /// `resize`, `migration`, `live-migration`, `evacuation`
    pub migration_type: String,
    pub hidden: bool,
    pub user_id: Option<String>,
    pub project_id: Option<String>,
    pub created_at: i64,
    pub updated_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
