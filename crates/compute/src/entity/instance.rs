use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "instances")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub uuid: String,
    pub display_name: String,
    pub display_description: Option<String>,
    pub project_id: String,
    pub user_id: String,
    pub host: Option<String>,
    pub node: Option<String>,
    pub image_ref: String,
    /// The current flavor's id and sizes (what quotas and usage count).
    pub flavor_id: String,
    pub vcpus: i64,
    pub memory_mb: i64,
    pub root_gb: i64,
    pub ephemeral_gb: i64,
    /// JSON: the flavor as it was at create (with extra specs)
    pub flavor: String,
    pub old_flavor: Option<String>,
    pub new_flavor: Option<String>,
    pub vm_state: String,
    pub task_state: Option<String>,
    pub power_state: i64,
    pub availability_zone: Option<String>,
    pub key_name: Option<String>,
    pub key_data: Option<String>,
    pub user_data: Option<String>,
    /// JSON object of strings: server metadata
    pub metadata: String,
    /// JSON object of strings: image properties and internal notes
    pub system_metadata: String,
    pub config_drive: bool,
    pub access_ip_v4: Option<String>,
    pub access_ip_v6: Option<String>,
    pub locked: bool,
    /// `owner` or `admin`
    pub locked_by: Option<String>,
    pub locked_reason: Option<String>,
    pub hostname: String,
    pub launch_index: i64,
    pub reservation_id: String,
    pub progress: i64,
    /// JSON: what the scheduler needs to place it again (zone, hints, group, image properties)
    pub request_spec: String,
    /// JSON array: block device mappings
    pub block_devices: String,
    pub launched_at: Option<i64>,
    pub terminated_at: Option<i64>,
    pub deleted: bool,
    pub created_at: i64,
    pub updated_at: i64,
    pub deleted_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
