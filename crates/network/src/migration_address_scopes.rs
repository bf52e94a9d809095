//! Address scopes (`/v2.0/address-scopes`: subnet pools of one scope never
//! overlap; no standard attributes, as in Neutron) and the auto-allocated
//! topology of each project (`/v2.0/auto-allocated-topology`): one row per
//! project, its primary key, so that two racing first requests make one.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DeriveIden;
use stratus_db::cols::{big, boolean, s};

pub struct M0008AddressScopes;

impl MigrationName for M0008AddressScopes {
    fn name(&self) -> &str {
        "m0008_address_scopes"
    }
}

#[derive(DeriveIden)]
enum AddressScopes {
    Table,
    Id,
    ProjectId,
    Name,
    Shared,
    IpVersion,
}

#[derive(DeriveIden)]
enum AutoAllocatedTopologies {
    Table,
    ProjectId,
    NetworkId,
    RouterId,
}

#[async_trait::async_trait]
impl MigrationTrait for M0008AddressScopes {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(AddressScopes::Table)
                .if_not_exists()
                .col(s(AddressScopes::Id, 36).primary_key())
                .col(s(AddressScopes::ProjectId, 64))
                .col(s(AddressScopes::Name, 255))
                .col(boolean(AddressScopes::Shared))
                .col(big(AddressScopes::IpVersion))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_address_scopes_project")
                .table(AddressScopes::Table)
                .col(AddressScopes::ProjectId)
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(AutoAllocatedTopologies::Table)
                .if_not_exists()
                .col(s(AutoAllocatedTopologies::ProjectId, 64).primary_key())
                .col(s(AutoAllocatedTopologies::NetworkId, 36))
                .col(s(AutoAllocatedTopologies::RouterId, 36))
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, _: &SchemaManager) -> Result<(), DbErr> {
        Err(DbErr::Migration("the network schema cannot be migrated down".into()))
    }
}
