use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "instance_actions")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub instance_uuid: String,
    pub action: String,
    pub request_id: String,
    pub user_id: Option<String>,
    pub project_id: Option<String>,
    pub start_time: i64,
    pub finish_time: Option<i64>,
    pub message: Option<String>,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
