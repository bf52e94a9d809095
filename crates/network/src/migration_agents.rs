//! Agents: network agents and RBAC policies.

use sea_orm_migration::prelude::*;

pub struct M0006Agents;

impl MigrationName for M0006Agents {
    fn name(&self) -> &str {
        "m0006_agents"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0006Agents {
    async fn up(&self, _m: &SchemaManager) -> Result<(), DbErr> {
        Ok(())
    }

    async fn down(&self, _: &SchemaManager) -> Result<(), DbErr> {
        Err(DbErr::Migration("the network schema cannot be migrated down".into()))
    }
}
