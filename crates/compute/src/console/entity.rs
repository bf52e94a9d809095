//! The `console_auth_tokens` table.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "console_auth_tokens")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// Hex SHA-256 of the token.
    pub token_hash: String,
    /// `novnc`, `serial`
    pub console_type: String,
    /// Where the proxy connects: an address and port, or (a unix socket)
    /// the compute host's name, port 0 and the socket's path in `internal_access_path`.
    pub host: String,
    pub port: i64,
    pub internal_access_path: Option<String>,
    pub instance_uuid: String,
    /// The compute host the guest runs on.
    pub compute_host: String,
    pub access_url_base: Option<String>,
    /// Microseconds since the epoch.
    pub expires: i64,
    pub created_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
