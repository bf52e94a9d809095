//! Routers: routers, their extra routes, floating IPs. A router's interfaces
//! and gateway are ports (`device_id` = the router, `device_owner`
//! `network:router_interface` / `network:router_gateway`); a floating IP holds
//! its address through a `network:floatingip` port on the external network, so
//! the unique keys of `ipallocations` settle racing allocations. One floating
//! IP per fixed IP and external network: a unique key (NULLs, unassociated
//! floating IPs, never collide). Port forwardings of floating IPs (ranges as
//! start/end pairs, a single port as start = end).

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DeriveIden;
use stratus_db::cols::{big, boolean, s, sn, text};

use crate::migration::standard;

pub struct M0005Routers;

impl MigrationName for M0005Routers {
    fn name(&self) -> &str {
        "m0005_routers"
    }
}

#[derive(DeriveIden)]
enum Routers {
    Table,
    Id,
    ProjectId,
    Name,
    AdminStateUp,
    Status,
    GwPortId,
    EnableSnat,
    AvailabilityZoneHints,
}

#[derive(DeriveIden)]
enum Routerroutes {
    Table,
    RouterId,
    Destination,
    Nexthop,
}

#[derive(DeriveIden)]
enum Floatingips {
    Table,
    Id,
    ProjectId,
    FloatingNetworkId,
    FloatingIpAddress,
    FloatingPortId,
    FixedPortId,
    FixedIpAddress,
    RouterId,
    Status,
}

#[derive(DeriveIden)]
enum Portforwardings {
    Table,
    Id,
    FloatingipId,
    Protocol,
    ExternalPortStart,
    ExternalPortEnd,
    InternalPortId,
    InternalIpAddress,
    InternalPortStart,
    InternalPortEnd,
    Description,
}

#[async_trait::async_trait]
impl MigrationTrait for M0005Routers {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let mut t = Table::create();
        t.table(Routers::Table)
            .if_not_exists()
            .col(s(Routers::Id, 36).primary_key())
            .col(s(Routers::ProjectId, 64))
            .col(s(Routers::Name, 255))
            .col(boolean(Routers::AdminStateUp))
            .col(s(Routers::Status, 16))
            .col(s(Routers::GwPortId, 36))
            .col(boolean(Routers::EnableSnat))
            .col(text(Routers::AvailabilityZoneHints));
        standard(&mut t);
        m.create_table(t.to_owned()).await?;
        m.create_index(
            Index::create().name("ix_routers_project").table(Routers::Table).col(Routers::ProjectId).to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Routerroutes::Table)
                .if_not_exists()
                .col(s(Routerroutes::RouterId, 36))
                .col(s(Routerroutes::Destination, 64))
                .col(s(Routerroutes::Nexthop, 64))
                .primary_key(
                    Index::create()
                        .col(Routerroutes::RouterId)
                        .col(Routerroutes::Destination)
                        .col(Routerroutes::Nexthop),
                )
                .to_owned(),
        )
        .await?;
        let mut t = Table::create();
        t.table(Floatingips::Table)
            .if_not_exists()
            .col(s(Floatingips::Id, 36).primary_key())
            .col(s(Floatingips::ProjectId, 64))
            .col(s(Floatingips::FloatingNetworkId, 36))
            .col(s(Floatingips::FloatingIpAddress, 64))
            .col(s(Floatingips::FloatingPortId, 36))
            .col(sn(Floatingips::FixedPortId, 36))
            .col(sn(Floatingips::FixedIpAddress, 64))
            .col(sn(Floatingips::RouterId, 36))
            .col(s(Floatingips::Status, 16));
        standard(&mut t);
        m.create_table(t.to_owned()).await?;
        m.create_index(
            Index::create()
                .name("ix_floatingips_project")
                .table(Floatingips::Table)
                .col(Floatingips::ProjectId)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ux_floatingips_fixed")
                .table(Floatingips::Table)
                .col(Floatingips::FloatingNetworkId)
                .col(Floatingips::FixedPortId)
                .col(Floatingips::FixedIpAddress)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Portforwardings::Table)
                .if_not_exists()
                .col(s(Portforwardings::Id, 36).primary_key())
                .col(s(Portforwardings::FloatingipId, 36))
                .col(s(Portforwardings::Protocol, 16))
                .col(big(Portforwardings::ExternalPortStart))
                .col(big(Portforwardings::ExternalPortEnd))
                .col(s(Portforwardings::InternalPortId, 36))
                .col(s(Portforwardings::InternalIpAddress, 64))
                .col(big(Portforwardings::InternalPortStart))
                .col(big(Portforwardings::InternalPortEnd))
                .col(s(Portforwardings::Description, 255))
                .to_owned(),
        )
        .await?;
        // exact duplicates collide here; overlapping ranges are checked under the floating IP's row
        m.create_index(
            Index::create()
                .name("ux_portforwardings_external")
                .table(Portforwardings::Table)
                .col(Portforwardings::FloatingipId)
                .col(Portforwardings::Protocol)
                .col(Portforwardings::ExternalPortStart)
                .col(Portforwardings::ExternalPortEnd)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_portforwardings_internal")
                .table(Portforwardings::Table)
                .col(Portforwardings::InternalPortId)
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, _: &SchemaManager) -> Result<(), DbErr> {
        Err(DbErr::Migration("the network schema cannot be migrated down".into()))
    }
}
