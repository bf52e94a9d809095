use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "rbac_policies")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// The policy's owner (the object's owner, or the admin who made it).
    pub project_id: String,
    /// `network`, ...
    pub object_type: String,
    pub object_id: String,
    /// `access_as_shared` or `access_as_external`
    pub action: String,
    /// A project id, or `*` for every project (`target_tenant` on the wire).
    pub target_project: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
