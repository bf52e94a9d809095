//! Routers: routers, their interfaces and routes, floating IPs, port forwardings.

use sea_orm_migration::prelude::*;

pub struct M0005Routers;

impl MigrationName for M0005Routers {
    fn name(&self) -> &str {
        "m0005_routers"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0005Routers {
    async fn up(&self, _m: &SchemaManager) -> Result<(), DbErr> {
        Ok(())
    }

    async fn down(&self, _: &SchemaManager) -> Result<(), DbErr> {
        Err(DbErr::Migration("the network schema cannot be migrated down".into()))
    }
}
