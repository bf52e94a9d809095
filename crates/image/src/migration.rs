//! The image service's schema, as versioned migrations identical in effect on
//! SQLite, PostgreSQL and MySQL. Times are microseconds since the epoch.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DeriveIden;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(M0001Images),
            Box::new(crate::migration_metadefs::M0002Metadefs),
            Box::new(crate::migration_tasks::M0003Tasks),
        ]
    }
    fn migration_table_name() -> DynIden {
        Alias::new("image_migrations").into_iden()
    }
}

pub(crate) fn s(name: impl IntoIden, len: u32) -> ColumnDef {
    ColumnDef::new(name).string_len(len).not_null().to_owned()
}
pub(crate) fn sn(name: impl IntoIden, len: u32) -> ColumnDef {
    ColumnDef::new(name).string_len(len).null().to_owned()
}
pub(crate) fn text(name: impl IntoIden) -> ColumnDef {
    ColumnDef::new(name).text().not_null().to_owned()
}
pub(crate) fn textn(name: impl IntoIden) -> ColumnDef {
    ColumnDef::new(name).text().null().to_owned()
}
pub(crate) fn boolean(name: impl IntoIden) -> ColumnDef {
    ColumnDef::new(name).boolean().not_null().to_owned()
}
pub(crate) fn big(name: impl IntoIden) -> ColumnDef {
    ColumnDef::new(name).big_integer().not_null().to_owned()
}
pub(crate) fn bign(name: impl IntoIden) -> ColumnDef {
    ColumnDef::new(name).big_integer().null().to_owned()
}

#[derive(DeriveIden)]
enum Images {
    Table,
    Id,
    Name,
    Status,
    Visibility,
    Protected,
    OsHidden,
    Owner,
    Checksum,
    OsHashAlgo,
    OsHashValue,
    Size,
    VirtualSize,
    DiskFormat,
    ContainerFormat,
    MinDisk,
    MinRam,
    Properties,
    Locations,
    Staging,
    Deleted,
    CreatedAt,
    UpdatedAt,
    DeletedAt,
}

#[derive(DeriveIden)]
enum ImageTags {
    Table,
    ImageId,
    Tag,
}

#[derive(DeriveIden)]
enum ImageMembers {
    Table,
    ImageId,
    Member,
    Status,
    CreatedAt,
    UpdatedAt,
}

struct M0001Images;

impl MigrationName for M0001Images {
    fn name(&self) -> &str {
        "m0001_images"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0001Images {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Images::Table)
                .if_not_exists()
                .col(ColumnDef::new(Images::Id).string_len(36).not_null().primary_key())
                .col(sn(Images::Name, 255))
                .col(s(Images::Status, 30))
                .col(s(Images::Visibility, 20))
                .col(boolean(Images::Protected))
                .col(boolean(Images::OsHidden))
                .col(sn(Images::Owner, 255))
                .col(sn(Images::Checksum, 32))
                .col(sn(Images::OsHashAlgo, 64))
                .col(sn(Images::OsHashValue, 128))
                .col(bign(Images::Size))
                .col(bign(Images::VirtualSize))
                .col(sn(Images::DiskFormat, 20))
                .col(sn(Images::ContainerFormat, 20))
                .col(big(Images::MinDisk))
                .col(big(Images::MinRam))
                .col(text(Images::Properties))
                .col(text(Images::Locations))
                .col(textn(Images::Staging))
                .col(boolean(Images::Deleted))
                .col(big(Images::CreatedAt))
                .col(big(Images::UpdatedAt))
                .col(bign(Images::DeletedAt))
                .to_owned(),
        )
        .await?;
        for (name, col) in [
            ("ix_images_owner", Images::Owner),
            ("ix_images_status", Images::Status),
            ("ix_images_visibility", Images::Visibility),
            ("ix_images_created_at", Images::CreatedAt),
        ] {
            m.create_index(Index::create().name(name).table(Images::Table).col(col).if_not_exists().to_owned()).await?;
        }
        m.create_table(
            Table::create()
                .table(ImageTags::Table)
                .if_not_exists()
                .col(s(ImageTags::ImageId, 36))
                .col(s(ImageTags::Tag, 255))
                .primary_key(Index::create().col(ImageTags::ImageId).col(ImageTags::Tag))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_image_tags_tag")
                .table(ImageTags::Table)
                .col(ImageTags::Tag)
                .if_not_exists()
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(ImageMembers::Table)
                .if_not_exists()
                .col(s(ImageMembers::ImageId, 36))
                .col(s(ImageMembers::Member, 255))
                .col(s(ImageMembers::Status, 20))
                .col(big(ImageMembers::CreatedAt))
                .col(big(ImageMembers::UpdatedAt))
                .primary_key(Index::create().col(ImageMembers::ImageId).col(ImageMembers::Member))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_image_members_member")
                .table(ImageMembers::Table)
                .col(ImageMembers::Member)
                .if_not_exists()
                .to_owned(),
        )
        .await?;
        Ok(())
    }
}
