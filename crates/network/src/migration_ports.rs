//! Ports: ports, their bindings, allowed address pairs, extra DHCP options, security group bindings.

use sea_orm_migration::prelude::*;

pub struct M0003Ports;

impl MigrationName for M0003Ports {
    fn name(&self) -> &str {
        "m0003_ports"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0003Ports {
    async fn up(&self, _m: &SchemaManager) -> Result<(), DbErr> {
        Ok(())
    }

    async fn down(&self, _: &SchemaManager) -> Result<(), DbErr> {
        Err(DbErr::Migration("the network schema cannot be migrated down".into()))
    }
}
