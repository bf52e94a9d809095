use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "transfers")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub volume_id: String,
    pub name: Option<String>,
    pub salt: String,
    /// SHA-256 of salt and auth key, hex.
    pub crypt_hash: String,
    pub source_project_id: String,
    pub destination_project_id: Option<String>,
    pub accepted: bool,
    pub no_snapshots: bool,
    pub created_at: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
