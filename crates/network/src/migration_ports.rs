//! Ports: one row each, with their binding and extension attributes; the
//! fixed IPs are the port's rows in `ipallocations`. A MAC address is unique
//! per network (racing creates that draw the same one collide and retry).

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DeriveIden;
use stratus_db::cols::{boolean, s, text};

use crate::migration::standard;

pub struct M0003Ports;

impl MigrationName for M0003Ports {
    fn name(&self) -> &str {
        "m0003_ports"
    }
}

#[derive(DeriveIden)]
enum Ports {
    Table,
    Id,
    ProjectId,
    NetworkId,
    Name,
    MacAddress,
    AdminStateUp,
    Status,
    DeviceId,
    DeviceOwner,
    HostId,
    VnicType,
    Profile,
    VifDetails,
    PortSecurityEnabled,
    AllowedAddressPairs,
    ExtraDhcpOpts,
}

#[async_trait::async_trait]
impl MigrationTrait for M0003Ports {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let mut t = Table::create();
        t.table(Ports::Table)
            .if_not_exists()
            .col(s(Ports::Id, 36).primary_key())
            .col(s(Ports::ProjectId, 64))
            .col(s(Ports::NetworkId, 36))
            .col(s(Ports::Name, 255))
            .col(s(Ports::MacAddress, 32))
            .col(boolean(Ports::AdminStateUp))
            .col(s(Ports::Status, 16))
            .col(s(Ports::DeviceId, 255))
            .col(s(Ports::DeviceOwner, 255))
            .col(s(Ports::HostId, 255))
            .col(s(Ports::VnicType, 64))
            .col(text(Ports::Profile))
            .col(text(Ports::VifDetails))
            .col(boolean(Ports::PortSecurityEnabled))
            .col(text(Ports::AllowedAddressPairs))
            .col(text(Ports::ExtraDhcpOpts));
        standard(&mut t);
        m.create_table(t.to_owned()).await?;
        m.create_index(
            Index::create()
                .name("ux_ports_network_mac")
                .table(Ports::Table)
                .col(Ports::NetworkId)
                .col(Ports::MacAddress)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_index(Index::create().name("ix_ports_project").table(Ports::Table).col(Ports::ProjectId).to_owned())
            .await?;
        m.create_index(Index::create().name("ix_ports_device").table(Ports::Table).col(Ports::DeviceId).to_owned())
            .await?;
        Ok(())
    }

    async fn down(&self, _: &SchemaManager) -> Result<(), DbErr> {
        Err(DbErr::Migration("the network schema cannot be migrated down".into()))
    }
}
