//! M0002: the resources beside servers: flavors (with extra specs and
//! project access), key pairs, host aggregates (hosts, metadata), server
//! groups (members), quotas (project and user limits, quota classes) and the
//! per-scope lock rows that serialize quota checks.
//!
//! Uniqueness Nova relies on is enforced by the database, so that two racing
//! requests get one success and one 409: flavor name and flavor id, key pair
//! (user, name), aggregate name and uuid, server group uuid, a quota row per
//! (project, user, resource) and a class row per (class, resource).
//!
//! `quotas.user_id` is `''` for a project's own limit rather than NULL: a
//! unique index treats NULLs as distinct on PostgreSQL and MySQL, and the
//! project row must be unique too.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DeriveIden;

use stratus_db::cols::{big, bign, boolean, dbl, s, serial, text, textn};

pub struct M0002Resources;

impl MigrationName for M0002Resources {
    fn name(&self) -> &str {
        "m0002_resources"
    }
}

#[derive(DeriveIden)]
enum Flavors {
    Table,
    Id,
    Flavorid,
    Name,
    MemoryMb,
    Vcpus,
    RootGb,
    EphemeralGb,
    Swap,
    RxtxFactor,
    VcpuWeight,
    Disabled,
    IsPublic,
    Description,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum FlavorExtraSpecs {
    Table,
    FlavorId,
    Key,
    Value,
}

#[derive(DeriveIden)]
enum FlavorProjects {
    Table,
    FlavorId,
    ProjectId,
}

#[derive(DeriveIden)]
enum Keypairs {
    Table,
    Id,
    UserId,
    Name,
    Fingerprint,
    PublicKey,
    Type,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Aggregates {
    Table,
    Id,
    Uuid,
    Name,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum AggregateHosts {
    Table,
    AggregateId,
    Host,
}

#[derive(DeriveIden)]
enum AggregateMetadata {
    Table,
    AggregateId,
    Key,
    Value,
}

#[derive(DeriveIden)]
enum ServerGroups {
    Table,
    Id,
    Uuid,
    Name,
    ProjectId,
    UserId,
    Policy,
    Rules,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ServerGroupMembers {
    Table,
    GroupId,
    InstanceUuid,
}

#[derive(DeriveIden)]
enum Quotas {
    Table,
    Id,
    ProjectId,
    UserId,
    Resource,
    HardLimit,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum QuotaClasses {
    Table,
    Id,
    ClassName,
    Resource,
    HardLimit,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum QuotaLocks {
    Table,
    Scope,
    Resource,
    Generation,
}

async fn unique(
    m: &SchemaManager<'_>,
    name: &str,
    table: impl IntoIden + 'static,
    cols: Vec<DynIden>,
) -> Result<(), DbErr> {
    let mut idx = Index::create().name(name).table(table).unique().if_not_exists().to_owned();
    for c in cols {
        idx.col(c);
    }
    m.create_index(idx).await
}

async fn index(
    m: &SchemaManager<'_>,
    name: &str,
    table: impl IntoIden + 'static,
    cols: Vec<DynIden>,
) -> Result<(), DbErr> {
    let mut idx = Index::create().name(name).table(table).if_not_exists().to_owned();
    for c in cols {
        idx.col(c);
    }
    m.create_index(idx).await
}

#[async_trait::async_trait]
impl MigrationTrait for M0002Resources {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Flavors::Table)
                .if_not_exists()
                .col(serial(Flavors::Id))
                .col(s(Flavors::Flavorid, 255))
                .col(s(Flavors::Name, 255))
                .col(big(Flavors::MemoryMb))
                .col(big(Flavors::Vcpus))
                .col(big(Flavors::RootGb))
                .col(big(Flavors::EphemeralGb))
                .col(big(Flavors::Swap))
                .col(dbl(Flavors::RxtxFactor))
                .col(bign(Flavors::VcpuWeight))
                .col(boolean(Flavors::Disabled))
                .col(boolean(Flavors::IsPublic))
                .col(textn(Flavors::Description))
                .col(big(Flavors::CreatedAt))
                .col(bign(Flavors::UpdatedAt))
                .to_owned(),
        )
        .await?;
        unique(m, "flavors_flavorid", Flavors::Table, vec![Flavors::Flavorid.into_iden()]).await?;
        unique(m, "flavors_name", Flavors::Table, vec![Flavors::Name.into_iden()]).await?;
        m.create_table(
            Table::create()
                .table(FlavorExtraSpecs::Table)
                .if_not_exists()
                .col(big(FlavorExtraSpecs::FlavorId))
                .col(s(FlavorExtraSpecs::Key, 255))
                .col(s(FlavorExtraSpecs::Value, 255))
                .primary_key(Index::create().col(FlavorExtraSpecs::FlavorId).col(FlavorExtraSpecs::Key))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(FlavorProjects::Table)
                .if_not_exists()
                .col(big(FlavorProjects::FlavorId))
                .col(s(FlavorProjects::ProjectId, 255))
                .primary_key(Index::create().col(FlavorProjects::FlavorId).col(FlavorProjects::ProjectId))
                .to_owned(),
        )
        .await?;
        index(m, "flavor_projects_project", FlavorProjects::Table, vec![FlavorProjects::ProjectId.into_iden()]).await?;

        m.create_table(
            Table::create()
                .table(Keypairs::Table)
                .if_not_exists()
                .col(serial(Keypairs::Id))
                .col(s(Keypairs::UserId, 255))
                .col(s(Keypairs::Name, 255))
                .col(s(Keypairs::Fingerprint, 255))
                .col(text(Keypairs::PublicKey))
                .col(s(Keypairs::Type, 16))
                .col(big(Keypairs::CreatedAt))
                .to_owned(),
        )
        .await?;
        unique(
            m,
            "keypairs_user_name",
            Keypairs::Table,
            vec![Keypairs::UserId.into_iden(), Keypairs::Name.into_iden()],
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Aggregates::Table)
                .if_not_exists()
                .col(serial(Aggregates::Id))
                .col(s(Aggregates::Uuid, 36))
                .col(s(Aggregates::Name, 255))
                .col(big(Aggregates::CreatedAt))
                .col(bign(Aggregates::UpdatedAt))
                .to_owned(),
        )
        .await?;
        unique(m, "aggregates_uuid", Aggregates::Table, vec![Aggregates::Uuid.into_iden()]).await?;
        unique(m, "aggregates_name", Aggregates::Table, vec![Aggregates::Name.into_iden()]).await?;
        m.create_table(
            Table::create()
                .table(AggregateHosts::Table)
                .if_not_exists()
                .col(big(AggregateHosts::AggregateId))
                .col(s(AggregateHosts::Host, 255))
                .primary_key(Index::create().col(AggregateHosts::AggregateId).col(AggregateHosts::Host))
                .to_owned(),
        )
        .await?;
        index(m, "aggregate_hosts_host", AggregateHosts::Table, vec![AggregateHosts::Host.into_iden()]).await?;
        m.create_table(
            Table::create()
                .table(AggregateMetadata::Table)
                .if_not_exists()
                .col(big(AggregateMetadata::AggregateId))
                .col(s(AggregateMetadata::Key, 255))
                .col(s(AggregateMetadata::Value, 255))
                .primary_key(Index::create().col(AggregateMetadata::AggregateId).col(AggregateMetadata::Key))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(ServerGroups::Table)
                .if_not_exists()
                .col(serial(ServerGroups::Id))
                .col(s(ServerGroups::Uuid, 36))
                .col(s(ServerGroups::Name, 255))
                .col(s(ServerGroups::ProjectId, 255))
                .col(s(ServerGroups::UserId, 255))
                .col(s(ServerGroups::Policy, 32))
                .col(text(ServerGroups::Rules))
                .col(big(ServerGroups::CreatedAt))
                .to_owned(),
        )
        .await?;
        unique(m, "server_groups_uuid", ServerGroups::Table, vec![ServerGroups::Uuid.into_iden()]).await?;
        index(m, "server_groups_project", ServerGroups::Table, vec![ServerGroups::ProjectId.into_iden()]).await?;
        m.create_table(
            Table::create()
                .table(ServerGroupMembers::Table)
                .if_not_exists()
                .col(big(ServerGroupMembers::GroupId))
                .col(s(ServerGroupMembers::InstanceUuid, 36))
                .primary_key(Index::create().col(ServerGroupMembers::GroupId).col(ServerGroupMembers::InstanceUuid))
                .to_owned(),
        )
        .await?;
        index(
            m,
            "server_group_members_instance",
            ServerGroupMembers::Table,
            vec![ServerGroupMembers::InstanceUuid.into_iden()],
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Quotas::Table)
                .if_not_exists()
                .col(serial(Quotas::Id))
                .col(s(Quotas::ProjectId, 255))
                .col(s(Quotas::UserId, 255))
                .col(s(Quotas::Resource, 64))
                .col(big(Quotas::HardLimit))
                .col(big(Quotas::CreatedAt))
                .col(bign(Quotas::UpdatedAt))
                .to_owned(),
        )
        .await?;
        unique(
            m,
            "quotas_project_user_resource",
            Quotas::Table,
            vec![Quotas::ProjectId.into_iden(), Quotas::UserId.into_iden(), Quotas::Resource.into_iden()],
        )
        .await?;
        m.create_table(
            Table::create()
                .table(QuotaClasses::Table)
                .if_not_exists()
                .col(serial(QuotaClasses::Id))
                .col(s(QuotaClasses::ClassName, 255))
                .col(s(QuotaClasses::Resource, 64))
                .col(big(QuotaClasses::HardLimit))
                .col(big(QuotaClasses::CreatedAt))
                .col(bign(QuotaClasses::UpdatedAt))
                .to_owned(),
        )
        .await?;
        unique(
            m,
            "quota_classes_class_resource",
            QuotaClasses::Table,
            vec![QuotaClasses::ClassName.into_iden(), QuotaClasses::Resource.into_iden()],
        )
        .await?;
        m.create_table(
            Table::create()
                .table(QuotaLocks::Table)
                .if_not_exists()
                .col(s(QuotaLocks::Scope, 255))
                .col(s(QuotaLocks::Resource, 64))
                .col(big(QuotaLocks::Generation))
                .primary_key(Index::create().col(QuotaLocks::Scope).col(QuotaLocks::Resource))
                .to_owned(),
        )
        .await?;
        Ok(())
    }
}
