//! The network service's schema as versioned migrations, the same in effect on
//! SQLite, PostgreSQL and MySQL. Times are Neutron's UTC strings
//! (`2026-11-26T13:00:00Z`), so they sort as text.
//!
//! Every resource table carries Neutron's standard attributes (`description`,
//! `created_at`, `updated_at`, `revision_number`); tags of every resource live
//! in one `tags` table keyed by resource type.
//!
//! M0001 (here): networks, tags, quotas. Then one migration per resource
//! family, each in its own module: subnets and IPAM (M0002), ports (M0003),
//! security groups (M0004), routers and floating IPs (M0005), agents and RBAC
//! (M0006), routers' L3 agent hosts (M0007), address scopes and
//! auto-allocated topologies (M0008).

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DeriveIden;
use stratus_db::cols::{big, bign, boolean, s, text};

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(M0001Networks),
            Box::new(crate::migration_subnets::M0002Subnets),
            Box::new(crate::migration_ports::M0003Ports),
            Box::new(crate::migration_security_groups::M0004SecurityGroups),
            Box::new(crate::migration_routers::M0005Routers),
            Box::new(crate::migration_agents::M0006Agents),
            Box::new(crate::migration_l3_agents::M0007RouterHosts),
            Box::new(crate::migration_address_scopes::M0008AddressScopes),
        ]
    }
    fn migration_table_name() -> DynIden {
        Alias::new("network_migrations").into_iden()
    }
}

/// The standard attributes every resource table ends with.
pub fn standard(t: &mut TableCreateStatement) -> &mut TableCreateStatement {
    t.col(s(Alias::new("description"), 255))
        .col(s(Alias::new("created_at"), 32))
        .col(s(Alias::new("updated_at"), 32))
        .col(big(Alias::new("revision_number")))
}

#[derive(DeriveIden)]
enum Networks {
    Table,
    Id,
    ProjectId,
    Name,
    AdminStateUp,
    Status,
    Shared,
    External,
    Mtu,
    PortSecurityEnabled,
    NetworkType,
    PhysicalNetwork,
    SegmentationId,
    AvailabilityZoneHints,
    DnsDomain,
    IsDefault,
}

#[derive(DeriveIden)]
enum Tags {
    Table,
    ResourceType,
    ResourceId,
    Tag,
}

#[derive(DeriveIden)]
enum NetworkQuotas {
    Table,
    ProjectId,
    Resource,
    HardLimit,
}

#[derive(DeriveIden)]
enum NetworkQuotaLocks {
    Table,
    ProjectId,
    Generation,
}

pub struct M0001Networks;

impl MigrationName for M0001Networks {
    fn name(&self) -> &str {
        "m0001_networks"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0001Networks {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let mut t = Table::create();
        t.table(Networks::Table)
            .if_not_exists()
            .col(s(Networks::Id, 36).primary_key())
            .col(s(Networks::ProjectId, 64))
            .col(s(Networks::Name, 255))
            .col(boolean(Networks::AdminStateUp))
            .col(s(Networks::Status, 16))
            .col(boolean(Networks::Shared))
            .col(boolean(Networks::External))
            .col(big(Networks::Mtu))
            .col(boolean(Networks::PortSecurityEnabled))
            .col(s(Networks::NetworkType, 32))
            .col(s(Networks::PhysicalNetwork, 64))
            .col(bign(Networks::SegmentationId))
            .col(text(Networks::AvailabilityZoneHints))
            .col(s(Networks::DnsDomain, 255))
            .col(boolean(Networks::IsDefault));
        standard(&mut t);
        m.create_table(t.to_owned()).await?;
        m.create_index(
            Index::create().name("ix_networks_project").table(Networks::Table).col(Networks::ProjectId).to_owned(),
        )
        .await?;
        // one network per segment (NULL segmentation ids, flat/local, never collide)
        m.create_index(
            Index::create()
                .name("ux_networks_segment")
                .table(Networks::Table)
                .col(Networks::NetworkType)
                .col(Networks::PhysicalNetwork)
                .col(Networks::SegmentationId)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Tags::Table)
                .if_not_exists()
                .col(s(Tags::ResourceType, 32))
                .col(s(Tags::ResourceId, 36))
                .col(s(Tags::Tag, 255))
                .primary_key(Index::create().col(Tags::ResourceType).col(Tags::ResourceId).col(Tags::Tag))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(NetworkQuotas::Table)
                .if_not_exists()
                .col(s(NetworkQuotas::ProjectId, 64))
                .col(s(NetworkQuotas::Resource, 64))
                .col(big(NetworkQuotas::HardLimit))
                .primary_key(Index::create().col(NetworkQuotas::ProjectId).col(NetworkQuotas::Resource))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(NetworkQuotaLocks::Table)
                .if_not_exists()
                .col(s(NetworkQuotaLocks::ProjectId, 64).primary_key())
                .col(big(NetworkQuotaLocks::Generation))
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, _: &SchemaManager) -> Result<(), DbErr> {
        Err(DbErr::Migration("the network schema cannot be migrated down".into()))
    }
}
