//! The block storage schema as versioned migrations, the same in effect on
//! SQLite, PostgreSQL and MySQL. Times are Cinder's UTC strings
//! (`2026-11-26T13:00:00.000000`), so they sort as text. Key-value sets that
//! are only ever read and written whole (metadata, extra specs, QoS specs,
//! a host's pools) are JSON objects in a text column.
//!
//! M0001: volumes, attachments, volume types (access, encryption, defaults),
//! QoS specs, snapshots, backups, transfers, quotas, volume services.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DeriveIden;
use stratus_db::cols::{big, bign, boolean, s, sn, text, textn};

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(M0001Volumes), Box::new(crate::migration_groups::M0002Groups)]
    }
    fn migration_table_name() -> DynIden {
        Alias::new("volume_migrations").into_iden()
    }
}

#[derive(DeriveIden)]
enum Volumes {
    Table,
    Id,
    ProjectId,
    UserId,
    Name,
    Description,
    Size,
    Status,
    AttachStatus,
    AvailabilityZone,
    VolumeTypeId,
    Bootable,
    Multiattach,
    Encrypted,
    SourceVolid,
    SnapshotId,
    ImageId,
    BackupId,
    Host,
    ProviderLocation,
    Metadata,
    AdminMetadata,
    ImageMetadata,
    MigrationStatus,
    ReplicationStatus,
    GroupId,
    PreviousStatus,
    CreatedAt,
    UpdatedAt,
    LaunchedAt,
}

#[derive(DeriveIden)]
enum VolumeAttachments {
    Table,
    Id,
    VolumeId,
    InstanceUuid,
    AttachedHost,
    Mountpoint,
    AttachStatus,
    AttachMode,
    Connector,
    ConnectionInfo,
    AttachTime,
    DetachTime,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum VolumeTypes {
    Table,
    Id,
    Name,
    Description,
    IsPublic,
    ExtraSpecs,
    QosSpecsId,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum VolumeTypeProjects {
    Table,
    VolumeTypeId,
    ProjectId,
}

#[derive(DeriveIden)]
enum VolumeTypeEncryption {
    Table,
    VolumeTypeId,
    EncryptionId,
    Provider,
    Cipher,
    KeySize,
    ControlLocation,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum DefaultVolumeTypes {
    Table,
    ProjectId,
    VolumeTypeId,
}

#[derive(DeriveIden)]
enum QosSpecs {
    Table,
    Id,
    Name,
    Consumer,
    Specs,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Snapshots {
    Table,
    Id,
    VolumeId,
    ProjectId,
    UserId,
    Name,
    Description,
    Status,
    Progress,
    Size,
    Metadata,
    VolumeTypeId,
    GroupSnapshotId,
    ProviderLocation,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Backups {
    Table,
    Id,
    VolumeId,
    SnapshotId,
    ProjectId,
    UserId,
    Name,
    Description,
    Status,
    Size,
    AvailabilityZone,
    Container,
    FailReason,
    IsIncremental,
    ParentId,
    ObjectCount,
    DataTimestamp,
    Host,
    ServiceMetadata,
    Metadata,
    RestoreVolumeId,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Transfers {
    Table,
    Id,
    VolumeId,
    Name,
    Salt,
    CryptHash,
    SourceProjectId,
    DestinationProjectId,
    Accepted,
    NoSnapshots,
    CreatedAt,
}

#[derive(DeriveIden)]
enum VolumeQuotas {
    Table,
    ProjectId,
    Resource,
    HardLimit,
}

#[derive(DeriveIden)]
enum VolumeQuotaClasses {
    Table,
    ClassName,
    Resource,
    HardLimit,
}

#[derive(DeriveIden)]
enum VolumeQuotaLocks {
    Table,
    ProjectId,
    Generation,
}

#[derive(DeriveIden)]
enum VolumeServices {
    Table,
    Host,
    Binary,
    AvailabilityZone,
    Disabled,
    DisabledReason,
    Frozen,
    Pools,
    CreatedAt,
    UpdatedAt,
}

pub struct M0001Volumes;

impl MigrationName for M0001Volumes {
    fn name(&self) -> &str {
        "m0001_volumes"
    }
}

fn index(name: &str, table: impl IntoIden + 'static, col: impl IntoIden + 'static) -> IndexCreateStatement {
    Index::create().name(name).table(table).col(col).to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for M0001Volumes {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Volumes::Table)
                .if_not_exists()
                .col(s(Volumes::Id, 36).primary_key())
                .col(s(Volumes::ProjectId, 64))
                .col(s(Volumes::UserId, 64))
                .col(sn(Volumes::Name, 255))
                .col(sn(Volumes::Description, 255))
                .col(big(Volumes::Size))
                .col(s(Volumes::Status, 32))
                .col(s(Volumes::AttachStatus, 32))
                .col(s(Volumes::AvailabilityZone, 255))
                .col(sn(Volumes::VolumeTypeId, 36))
                .col(boolean(Volumes::Bootable))
                .col(boolean(Volumes::Multiattach))
                .col(boolean(Volumes::Encrypted))
                .col(sn(Volumes::SourceVolid, 36))
                .col(sn(Volumes::SnapshotId, 36))
                .col(sn(Volumes::ImageId, 36))
                .col(sn(Volumes::BackupId, 36))
                .col(sn(Volumes::Host, 255))
                .col(textn(Volumes::ProviderLocation))
                .col(text(Volumes::Metadata))
                .col(text(Volumes::AdminMetadata))
                .col(text(Volumes::ImageMetadata))
                .col(sn(Volumes::MigrationStatus, 32))
                .col(sn(Volumes::ReplicationStatus, 32))
                .col(sn(Volumes::GroupId, 36))
                .col(sn(Volumes::PreviousStatus, 32))
                .col(s(Volumes::CreatedAt, 32))
                .col(sn(Volumes::UpdatedAt, 32))
                .col(sn(Volumes::LaunchedAt, 32))
                .to_owned(),
        )
        .await?;
        m.create_index(index("ix_volumes_project", Volumes::Table, Volumes::ProjectId)).await?;
        m.create_index(index("ix_volumes_created", Volumes::Table, Volumes::CreatedAt)).await?;

        m.create_table(
            Table::create()
                .table(VolumeAttachments::Table)
                .if_not_exists()
                .col(s(VolumeAttachments::Id, 36).primary_key())
                .col(s(VolumeAttachments::VolumeId, 36))
                .col(sn(VolumeAttachments::InstanceUuid, 36))
                .col(sn(VolumeAttachments::AttachedHost, 255))
                .col(sn(VolumeAttachments::Mountpoint, 255))
                .col(s(VolumeAttachments::AttachStatus, 32))
                .col(s(VolumeAttachments::AttachMode, 8))
                .col(textn(VolumeAttachments::Connector))
                .col(textn(VolumeAttachments::ConnectionInfo))
                .col(sn(VolumeAttachments::AttachTime, 32))
                .col(sn(VolumeAttachments::DetachTime, 32))
                .col(s(VolumeAttachments::CreatedAt, 32))
                .col(sn(VolumeAttachments::UpdatedAt, 32))
                .to_owned(),
        )
        .await?;
        m.create_index(index("ix_volume_attachments_volume", VolumeAttachments::Table, VolumeAttachments::VolumeId))
            .await?;

        m.create_table(
            Table::create()
                .table(VolumeTypes::Table)
                .if_not_exists()
                .col(s(VolumeTypes::Id, 36).primary_key())
                .col(s(VolumeTypes::Name, 255))
                .col(sn(VolumeTypes::Description, 255))
                .col(boolean(VolumeTypes::IsPublic))
                .col(text(VolumeTypes::ExtraSpecs))
                .col(sn(VolumeTypes::QosSpecsId, 36))
                .col(s(VolumeTypes::CreatedAt, 32))
                .col(sn(VolumeTypes::UpdatedAt, 32))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ux_volume_types_name")
                .table(VolumeTypes::Table)
                .col(VolumeTypes::Name)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(VolumeTypeProjects::Table)
                .if_not_exists()
                .col(s(VolumeTypeProjects::VolumeTypeId, 36))
                .col(s(VolumeTypeProjects::ProjectId, 64))
                .primary_key(Index::create().col(VolumeTypeProjects::VolumeTypeId).col(VolumeTypeProjects::ProjectId))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(VolumeTypeEncryption::Table)
                .if_not_exists()
                .col(s(VolumeTypeEncryption::VolumeTypeId, 36).primary_key())
                .col(s(VolumeTypeEncryption::EncryptionId, 36))
                .col(s(VolumeTypeEncryption::Provider, 255))
                .col(sn(VolumeTypeEncryption::Cipher, 255))
                .col(bign(VolumeTypeEncryption::KeySize))
                .col(s(VolumeTypeEncryption::ControlLocation, 32))
                .col(s(VolumeTypeEncryption::CreatedAt, 32))
                .col(sn(VolumeTypeEncryption::UpdatedAt, 32))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(DefaultVolumeTypes::Table)
                .if_not_exists()
                .col(s(DefaultVolumeTypes::ProjectId, 64).primary_key())
                .col(s(DefaultVolumeTypes::VolumeTypeId, 36))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(QosSpecs::Table)
                .if_not_exists()
                .col(s(QosSpecs::Id, 36).primary_key())
                .col(s(QosSpecs::Name, 255))
                .col(s(QosSpecs::Consumer, 32))
                .col(text(QosSpecs::Specs))
                .col(s(QosSpecs::CreatedAt, 32))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create().name("ux_qos_specs_name").table(QosSpecs::Table).col(QosSpecs::Name).unique().to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Snapshots::Table)
                .if_not_exists()
                .col(s(Snapshots::Id, 36).primary_key())
                .col(s(Snapshots::VolumeId, 36))
                .col(s(Snapshots::ProjectId, 64))
                .col(s(Snapshots::UserId, 64))
                .col(sn(Snapshots::Name, 255))
                .col(sn(Snapshots::Description, 255))
                .col(s(Snapshots::Status, 32))
                .col(s(Snapshots::Progress, 16))
                .col(big(Snapshots::Size))
                .col(text(Snapshots::Metadata))
                .col(sn(Snapshots::VolumeTypeId, 36))
                .col(sn(Snapshots::GroupSnapshotId, 36))
                .col(textn(Snapshots::ProviderLocation))
                .col(s(Snapshots::CreatedAt, 32))
                .col(sn(Snapshots::UpdatedAt, 32))
                .to_owned(),
        )
        .await?;
        m.create_index(index("ix_snapshots_volume", Snapshots::Table, Snapshots::VolumeId)).await?;
        m.create_index(index("ix_snapshots_project", Snapshots::Table, Snapshots::ProjectId)).await?;

        m.create_table(
            Table::create()
                .table(Backups::Table)
                .if_not_exists()
                .col(s(Backups::Id, 36).primary_key())
                .col(s(Backups::VolumeId, 36))
                .col(sn(Backups::SnapshotId, 36))
                .col(s(Backups::ProjectId, 64))
                .col(s(Backups::UserId, 64))
                .col(sn(Backups::Name, 255))
                .col(sn(Backups::Description, 255))
                .col(s(Backups::Status, 32))
                .col(big(Backups::Size))
                .col(sn(Backups::AvailabilityZone, 255))
                .col(sn(Backups::Container, 255))
                .col(sn(Backups::FailReason, 255))
                .col(boolean(Backups::IsIncremental))
                .col(sn(Backups::ParentId, 36))
                .col(big(Backups::ObjectCount))
                .col(sn(Backups::DataTimestamp, 32))
                .col(sn(Backups::Host, 255))
                .col(textn(Backups::ServiceMetadata))
                .col(text(Backups::Metadata))
                .col(sn(Backups::RestoreVolumeId, 36))
                .col(s(Backups::CreatedAt, 32))
                .col(sn(Backups::UpdatedAt, 32))
                .to_owned(),
        )
        .await?;
        m.create_index(index("ix_backups_project", Backups::Table, Backups::ProjectId)).await?;
        m.create_index(index("ix_backups_volume", Backups::Table, Backups::VolumeId)).await?;

        m.create_table(
            Table::create()
                .table(Transfers::Table)
                .if_not_exists()
                .col(s(Transfers::Id, 36).primary_key())
                .col(s(Transfers::VolumeId, 36))
                .col(sn(Transfers::Name, 255))
                .col(s(Transfers::Salt, 64))
                .col(s(Transfers::CryptHash, 255))
                .col(s(Transfers::SourceProjectId, 64))
                .col(sn(Transfers::DestinationProjectId, 64))
                .col(boolean(Transfers::Accepted))
                .col(boolean(Transfers::NoSnapshots))
                .col(s(Transfers::CreatedAt, 32))
                .to_owned(),
        )
        .await?;
        // one open transfer per volume
        m.create_index(
            Index::create()
                .name("ux_transfers_volume")
                .table(Transfers::Table)
                .col(Transfers::VolumeId)
                .unique()
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(VolumeQuotas::Table)
                .if_not_exists()
                .col(s(VolumeQuotas::ProjectId, 64))
                .col(s(VolumeQuotas::Resource, 255))
                .col(big(VolumeQuotas::HardLimit))
                .primary_key(Index::create().col(VolumeQuotas::ProjectId).col(VolumeQuotas::Resource))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(VolumeQuotaClasses::Table)
                .if_not_exists()
                .col(s(VolumeQuotaClasses::ClassName, 255))
                .col(s(VolumeQuotaClasses::Resource, 255))
                .col(big(VolumeQuotaClasses::HardLimit))
                .primary_key(Index::create().col(VolumeQuotaClasses::ClassName).col(VolumeQuotaClasses::Resource))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(VolumeQuotaLocks::Table)
                .if_not_exists()
                .col(s(VolumeQuotaLocks::ProjectId, 64).primary_key())
                .col(big(VolumeQuotaLocks::Generation))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(VolumeServices::Table)
                .if_not_exists()
                .col(s(VolumeServices::Host, 255))
                .col(s(VolumeServices::Binary, 64))
                .col(s(VolumeServices::AvailabilityZone, 255))
                .col(boolean(VolumeServices::Disabled))
                .col(sn(VolumeServices::DisabledReason, 255))
                .col(boolean(VolumeServices::Frozen))
                .col(text(VolumeServices::Pools))
                .col(s(VolumeServices::CreatedAt, 32))
                .col(s(VolumeServices::UpdatedAt, 32))
                .primary_key(Index::create().col(VolumeServices::Host).col(VolumeServices::Binary))
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, _: &SchemaManager) -> Result<(), DbErr> {
        Err(DbErr::Migration("the volume schema cannot be migrated down".into()))
    }
}
