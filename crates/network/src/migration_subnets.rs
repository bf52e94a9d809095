//! Subnets: subnets, subnet pools, IP allocations.
//!
//! Allocation pools, DNS servers and host routes are small ordered lists
//! stored as JSON on the subnet. Every address handed out is a row of
//! `ipallocations`, unique per (subnet, address): racing port creates that
//! pick the same address collide there and retry.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DeriveIden;
use stratus_db::cols::{big, bign, boolean, s, text};

use crate::migration::standard;

pub struct M0002Subnets;

impl MigrationName for M0002Subnets {
    fn name(&self) -> &str {
        "m0002_subnets"
    }
}

#[derive(DeriveIden)]
enum Subnets {
    Table,
    Id,
    ProjectId,
    NetworkId,
    Name,
    IpVersion,
    Cidr,
    GatewayIp,
    AllocationPools,
    DnsNameservers,
    HostRoutes,
    EnableDhcp,
    Ipv6RaMode,
    Ipv6AddressMode,
    SubnetpoolId,
}

#[derive(DeriveIden)]
enum Subnetpools {
    Table,
    Id,
    ProjectId,
    Name,
    IpVersion,
    Prefixes,
    DefaultPrefixlen,
    MinPrefixlen,
    MaxPrefixlen,
    Shared,
    IsDefault,
    DefaultQuota,
    AddressScopeId,
}

#[derive(DeriveIden)]
enum Ipallocations {
    Table,
    SubnetId,
    IpAddress,
    NetworkId,
    PortId,
}

#[async_trait::async_trait]
impl MigrationTrait for M0002Subnets {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let mut t = Table::create();
        t.table(Subnetpools::Table)
            .if_not_exists()
            .col(s(Subnetpools::Id, 36).primary_key())
            .col(s(Subnetpools::ProjectId, 64))
            .col(s(Subnetpools::Name, 255))
            .col(big(Subnetpools::IpVersion))
            .col(text(Subnetpools::Prefixes))
            .col(big(Subnetpools::DefaultPrefixlen))
            .col(big(Subnetpools::MinPrefixlen))
            .col(big(Subnetpools::MaxPrefixlen))
            .col(boolean(Subnetpools::Shared))
            .col(boolean(Subnetpools::IsDefault))
            .col(bign(Subnetpools::DefaultQuota))
            .col(s(Subnetpools::AddressScopeId, 36));
        standard(&mut t);
        m.create_table(t.to_owned()).await?;

        let mut t = Table::create();
        t.table(Subnets::Table)
            .if_not_exists()
            .col(s(Subnets::Id, 36).primary_key())
            .col(s(Subnets::ProjectId, 64))
            .col(s(Subnets::NetworkId, 36))
            .col(s(Subnets::Name, 255))
            .col(big(Subnets::IpVersion))
            .col(s(Subnets::Cidr, 64))
            .col(s(Subnets::GatewayIp, 64))
            .col(text(Subnets::AllocationPools))
            .col(text(Subnets::DnsNameservers))
            .col(text(Subnets::HostRoutes))
            .col(boolean(Subnets::EnableDhcp))
            .col(s(Subnets::Ipv6RaMode, 32))
            .col(s(Subnets::Ipv6AddressMode, 32))
            .col(s(Subnets::SubnetpoolId, 36));
        standard(&mut t);
        m.create_table(t.to_owned()).await?;
        m.create_index(
            Index::create().name("ix_subnets_network").table(Subnets::Table).col(Subnets::NetworkId).to_owned(),
        )
        .await?;
        m.create_index(
            Index::create().name("ix_subnets_project").table(Subnets::Table).col(Subnets::ProjectId).to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Ipallocations::Table)
                .if_not_exists()
                .col(s(Ipallocations::SubnetId, 36))
                .col(s(Ipallocations::IpAddress, 64))
                .col(s(Ipallocations::NetworkId, 36))
                .col(s(Ipallocations::PortId, 36))
                .primary_key(Index::create().col(Ipallocations::SubnetId).col(Ipallocations::IpAddress))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_ipallocations_port")
                .table(Ipallocations::Table)
                .col(Ipallocations::PortId)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_ipallocations_network")
                .table(Ipallocations::Table)
                .col(Ipallocations::NetworkId)
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, _: &SchemaManager) -> Result<(), DbErr> {
        Err(DbErr::Migration("the network schema cannot be migrated down".into()))
    }
}
