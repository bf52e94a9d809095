use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "flavors")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// the id the API shows (`1`, `m1.tiny`, a uuid)
    pub flavorid: String,
    pub name: String,
    pub memory_mb: i64,
    pub vcpus: i64,
    pub root_gb: i64,
    pub ephemeral_gb: i64,
    pub swap: i64,
    pub rxtx_factor: f64,
    pub vcpu_weight: Option<i64>,
    pub disabled: bool,
    pub is_public: bool,
    pub description: Option<String>,
    pub created_at: i64,
    pub updated_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
