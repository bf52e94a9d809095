//! M0003: the migration records of servers (`os-migrations`): one row per
//! move (a resize so far), kept after the move ends, its status following
//! the move (`migrating`, `finished`, `confirmed`, `reverted`, `error`).

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DeriveIden;

use stratus_db::cols::{big, bign, boolean, s, serial, sn};

pub struct M0003ServerMigrations;

impl MigrationName for M0003ServerMigrations {
    fn name(&self) -> &str {
        "m0003_server_migrations"
    }
}

#[derive(DeriveIden)]
enum Migrations {
    Table,
    Id,
    Uuid,
    InstanceUuid,
    SourceCompute,
    SourceNode,
    DestCompute,
    DestNode,
    DestHost,
    OldInstanceTypeId,
    NewInstanceTypeId,
    Status,
    MigrationType,
    Hidden,
    UserId,
    ProjectId,
    CreatedAt,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for M0003ServerMigrations {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Migrations::Table)
                .if_not_exists()
                .col(serial(Migrations::Id))
                .col(s(Migrations::Uuid, 36))
                .col(s(Migrations::InstanceUuid, 36))
                .col(sn(Migrations::SourceCompute, 255))
                .col(sn(Migrations::SourceNode, 255))
                .col(sn(Migrations::DestCompute, 255))
                .col(sn(Migrations::DestNode, 255))
                .col(sn(Migrations::DestHost, 255))
                .col(bign(Migrations::OldInstanceTypeId))
                .col(bign(Migrations::NewInstanceTypeId))
                .col(s(Migrations::Status, 255))
                .col(s(Migrations::MigrationType, 32))
                .col(boolean(Migrations::Hidden))
                .col(sn(Migrations::UserId, 255))
                .col(sn(Migrations::ProjectId, 255))
                .col(big(Migrations::CreatedAt))
                .col(bign(Migrations::UpdatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("migrations_uuid")
                .table(Migrations::Table)
                .col(Migrations::Uuid)
                .unique()
                .if_not_exists()
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("migrations_instance")
                .table(Migrations::Table)
                .col(Migrations::InstanceUuid)
                .if_not_exists()
                .to_owned(),
        )
        .await?;
        Ok(())
    }
}
