//! Routers are hosted by an L3 agent (Neutron's `routerl3agentbindings`, one
//! agent per router here): the host of that agent on the router's row, ''
//! while unscheduled. Ports get an index on their host (the bound ports are
//! what security group changes are told to).

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DeriveIden;

pub struct M0007RouterHosts;

impl MigrationName for M0007RouterHosts {
    fn name(&self) -> &str {
        "m0007_router_hosts"
    }
}

#[derive(DeriveIden)]
enum Routers {
    Table,
    L3AgentHost,
}

#[derive(DeriveIden)]
enum Ports {
    Table,
    HostId,
}

#[async_trait::async_trait]
impl MigrationTrait for M0007RouterHosts {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Routers::Table)
                .add_column(ColumnDef::new(Routers::L3AgentHost).string_len(255).not_null().default(""))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create().name("ix_routers_l3_agent_host").table(Routers::Table).col(Routers::L3AgentHost).to_owned(),
        )
        .await?;
        // the bound ports, read on every security group change (agents are told)
        m.create_index(Index::create().name("ix_ports_host").table(Ports::Table).col(Ports::HostId).to_owned()).await?;
        Ok(())
    }

    async fn down(&self, _: &SchemaManager) -> Result<(), DbErr> {
        Err(DbErr::Migration("the network schema cannot be migrated down".into()))
    }
}
