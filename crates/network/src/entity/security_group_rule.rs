use sea_orm::entity::prelude::*;

/// A rule; `''` stands for null in `protocol`, `remote_ip_prefix`,
/// `normalized_cidr` and `remote_group_id` (sortable columns are NOT NULL).
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "securitygrouprules")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub project_id: String,
    pub security_group_id: String,
    /// ingress, egress
    pub direction: String,
    /// IPv4, IPv6
    pub ethertype: String,
    /// a name (`tcp`) or a number (`"47"`), as given
    pub protocol: String,
    pub port_range_min: Option<i64>,
    pub port_range_max: Option<i64>,
    pub remote_ip_prefix: String,
    pub normalized_cidr: String,
    pub remote_group_id: String,
    pub description: String,
    pub created_at: String,
    pub updated_at: String,
    pub revision_number: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
