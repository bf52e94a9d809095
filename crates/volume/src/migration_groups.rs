//! M0002: generic volume groups and user messages.
//!
//! Group types (their group specs a JSON object in a text column, as
//! `volume_types.extra_specs`), groups and the volume types each allows
//! (`group_volume_types`, in the order given; the groups table is
//! `volume_groups`: GROUPS is a reserved word on MySQL), group snapshots, and the
//! user messages (`/v3/messages`). `volumes.group_id` and
//! `snapshots.group_snapshot_id` came with M0001.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DeriveIden;
use stratus_db::cols::{big, boolean, s, sn, text};

#[derive(DeriveIden)]
enum GroupTypes {
    Table,
    Id,
    Name,
    Description,
    IsPublic,
    GroupSpecs,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum VolumeGroups {
    Table,
    Id,
    ProjectId,
    UserId,
    Name,
    Description,
    Status,
    AvailabilityZone,
    GroupTypeId,
    GroupSnapshotId,
    SourceGroupId,
    ReplicationStatus,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum GroupVolumeTypes {
    Table,
    GroupId,
    VolumeTypeId,
    Position,
}

#[derive(DeriveIden)]
enum GroupSnapshots {
    Table,
    Id,
    GroupId,
    ProjectId,
    UserId,
    Name,
    Description,
    Status,
    GroupTypeId,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum VolumeMessages {
    Table,
    Id,
    ProjectId,
    RequestId,
    ResourceType,
    ResourceUuid,
    EventId,
    MessageLevel,
    UserMessage,
    CreatedAt,
    ExpiresAt,
}

pub struct M0002Groups;

impl MigrationName for M0002Groups {
    fn name(&self) -> &str {
        "m0002_groups"
    }
}

fn index(name: &str, table: impl IntoIden + 'static, col: impl IntoIden + 'static) -> IndexCreateStatement {
    Index::create().name(name).table(table).col(col).to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for M0002Groups {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(GroupTypes::Table)
                .if_not_exists()
                .col(s(GroupTypes::Id, 36).primary_key())
                .col(s(GroupTypes::Name, 255))
                .col(sn(GroupTypes::Description, 255))
                .col(boolean(GroupTypes::IsPublic))
                .col(text(GroupTypes::GroupSpecs))
                .col(s(GroupTypes::CreatedAt, 32))
                .col(sn(GroupTypes::UpdatedAt, 32))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ux_group_types_name")
                .table(GroupTypes::Table)
                .col(GroupTypes::Name)
                .unique()
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(VolumeGroups::Table)
                .if_not_exists()
                .col(s(VolumeGroups::Id, 36).primary_key())
                .col(s(VolumeGroups::ProjectId, 64))
                .col(s(VolumeGroups::UserId, 64))
                .col(sn(VolumeGroups::Name, 255))
                .col(sn(VolumeGroups::Description, 255))
                .col(s(VolumeGroups::Status, 32))
                .col(s(VolumeGroups::AvailabilityZone, 255))
                .col(s(VolumeGroups::GroupTypeId, 36))
                .col(sn(VolumeGroups::GroupSnapshotId, 36))
                .col(sn(VolumeGroups::SourceGroupId, 36))
                .col(sn(VolumeGroups::ReplicationStatus, 32))
                .col(s(VolumeGroups::CreatedAt, 32))
                .col(sn(VolumeGroups::UpdatedAt, 32))
                .to_owned(),
        )
        .await?;
        m.create_index(index("ix_volume_groups_project", VolumeGroups::Table, VolumeGroups::ProjectId)).await?;
        m.create_index(index("ix_volume_groups_group_type", VolumeGroups::Table, VolumeGroups::GroupTypeId)).await?;

        m.create_table(
            Table::create()
                .table(GroupVolumeTypes::Table)
                .if_not_exists()
                .col(s(GroupVolumeTypes::GroupId, 36))
                .col(s(GroupVolumeTypes::VolumeTypeId, 36))
                .col(big(GroupVolumeTypes::Position))
                .primary_key(Index::create().col(GroupVolumeTypes::GroupId).col(GroupVolumeTypes::VolumeTypeId))
                .to_owned(),
        )
        .await?;
        m.create_index(index("ix_group_volume_types_type", GroupVolumeTypes::Table, GroupVolumeTypes::VolumeTypeId))
            .await?;

        m.create_table(
            Table::create()
                .table(GroupSnapshots::Table)
                .if_not_exists()
                .col(s(GroupSnapshots::Id, 36).primary_key())
                .col(s(GroupSnapshots::GroupId, 36))
                .col(s(GroupSnapshots::ProjectId, 64))
                .col(s(GroupSnapshots::UserId, 64))
                .col(sn(GroupSnapshots::Name, 255))
                .col(sn(GroupSnapshots::Description, 255))
                .col(s(GroupSnapshots::Status, 32))
                .col(s(GroupSnapshots::GroupTypeId, 36))
                .col(s(GroupSnapshots::CreatedAt, 32))
                .col(sn(GroupSnapshots::UpdatedAt, 32))
                .to_owned(),
        )
        .await?;
        m.create_index(index("ix_group_snapshots_group", GroupSnapshots::Table, GroupSnapshots::GroupId)).await?;
        m.create_index(index("ix_group_snapshots_project", GroupSnapshots::Table, GroupSnapshots::ProjectId)).await?;

        m.create_table(
            Table::create()
                .table(VolumeMessages::Table)
                .if_not_exists()
                .col(s(VolumeMessages::Id, 36).primary_key())
                .col(s(VolumeMessages::ProjectId, 64))
                .col(s(VolumeMessages::RequestId, 64))
                .col(sn(VolumeMessages::ResourceType, 64))
                .col(sn(VolumeMessages::ResourceUuid, 36))
                .col(s(VolumeMessages::EventId, 64))
                .col(s(VolumeMessages::MessageLevel, 32))
                .col(s(VolumeMessages::UserMessage, 255))
                .col(s(VolumeMessages::CreatedAt, 32))
                .col(s(VolumeMessages::ExpiresAt, 32))
                .to_owned(),
        )
        .await?;
        m.create_index(index("ix_volume_messages_project", VolumeMessages::Table, VolumeMessages::ProjectId)).await?;
        Ok(())
    }

    async fn down(&self, _: &SchemaManager) -> Result<(), DbErr> {
        Err(DbErr::Migration("the volume schema cannot be migrated down".into()))
    }
}
