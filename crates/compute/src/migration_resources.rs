//! M0002: flavors, keypairs, aggregates, server groups, quotas.

use sea_orm_migration::prelude::*;

pub struct M0002Resources;

impl MigrationName for M0002Resources {
    fn name(&self) -> &str {
        "m0002_resources"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0002Resources {
    async fn up(&self, _m: &SchemaManager) -> Result<(), DbErr> {
        Ok(())
    }
}
