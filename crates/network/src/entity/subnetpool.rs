use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "subnetpools")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub project_id: String,
    pub name: String,
    pub ip_version: i64,
    /// JSON list of CIDRs
    pub prefixes: String,
    pub default_prefixlen: i64,
    pub min_prefixlen: i64,
    pub max_prefixlen: i64,
    pub shared: bool,
    pub is_default: bool,
    pub default_quota: Option<i64>,
    /// '' when none
    pub address_scope_id: String,
    pub description: String,
    pub created_at: String,
    pub updated_at: String,
    pub revision_number: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
