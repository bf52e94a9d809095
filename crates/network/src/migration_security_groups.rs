//! SecurityGroups: security groups and their rules.

use sea_orm_migration::prelude::*;

pub struct M0004SecurityGroups;

impl MigrationName for M0004SecurityGroups {
    fn name(&self) -> &str {
        "m0004_security_groups"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0004SecurityGroups {
    async fn up(&self, _m: &SchemaManager) -> Result<(), DbErr> {
        Ok(())
    }

    async fn down(&self, _: &SchemaManager) -> Result<(), DbErr> {
        Err(DbErr::Migration("the network schema cannot be migrated down".into()))
    }
}
