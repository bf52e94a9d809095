//! Subnets: subnets, subnet pools, allocation pools, DNS servers, host routes, IP allocations.

use sea_orm_migration::prelude::*;

pub struct M0002Subnets;

impl MigrationName for M0002Subnets {
    fn name(&self) -> &str {
        "m0002_subnets"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0002Subnets {
    async fn up(&self, _m: &SchemaManager) -> Result<(), DbErr> {
        Ok(())
    }

    async fn down(&self, _: &SchemaManager) -> Result<(), DbErr> {
        Err(DbErr::Migration("the network schema cannot be migrated down".into()))
    }
}
