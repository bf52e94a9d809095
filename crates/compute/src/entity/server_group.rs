use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "server_groups")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub uuid: String,
    pub name: String,
    pub project_id: String,
    pub user_id: String,
    /// `affinity`, `anti-affinity`, `soft-affinity`, `soft-anti-affinity`
    pub policy: String,
    /// JSON object: `{"max_server_per_host": 2}` or `{}`
    pub rules: String,
    pub created_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
