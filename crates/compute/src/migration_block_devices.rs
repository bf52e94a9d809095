//! M0004: the volumes of servers (`block_device_mappings`, Nova's BDMs):
//! one row per volume a server has or is getting (reserved at the API or
//! asked for by a create), with its Cinder attachment and device name.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DeriveIden;

use stratus_db::cols::{big, bign, boolean, s, serial, sn, textn};

pub struct M0004BlockDevices;

impl MigrationName for M0004BlockDevices {
    fn name(&self) -> &str {
        "m0004_block_devices"
    }
}

#[derive(DeriveIden)]
enum BlockDeviceMappings {
    Table,
    Id,
    Uuid,
    InstanceUuid,
    SourceType,
    DestinationType,
    ImageId,
    VolumeId,
    VolumeSize,
    AttachmentId,
    DeviceName,
    BootIndex,
    DeleteOnTermination,
    Tag,
    ConnectionInfo,
    CreatedAt,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for M0004BlockDevices {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        use BlockDeviceMappings as B;
        m.create_table(
            Table::create()
                .table(B::Table)
                .if_not_exists()
                .col(serial(B::Id))
                .col(s(B::Uuid, 36))
                .col(s(B::InstanceUuid, 36))
                .col(s(B::SourceType, 32))
                .col(s(B::DestinationType, 32))
                .col(sn(B::ImageId, 36))
                .col(sn(B::VolumeId, 36))
                .col(bign(B::VolumeSize))
                .col(sn(B::AttachmentId, 36))
                .col(sn(B::DeviceName, 255))
                .col(bign(B::BootIndex))
                .col(boolean(B::DeleteOnTermination))
                .col(sn(B::Tag, 255))
                .col(textn(B::ConnectionInfo))
                .col(big(B::CreatedAt))
                .col(bign(B::UpdatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("block_device_mappings_uuid")
                .table(B::Table)
                .col(B::Uuid)
                .unique()
                .if_not_exists()
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("block_device_mappings_instance")
                .table(B::Table)
                .col(B::InstanceUuid)
                .if_not_exists()
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("block_device_mappings_volume")
                .table(B::Table)
                .col(B::VolumeId)
                .if_not_exists()
                .to_owned(),
        )
        .await?;
        Ok(())
    }
}
