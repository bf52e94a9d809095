//! The saga table: one row per saga, its progress and its owner's heartbeat.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DeriveIden;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(M0001Sagas)]
    }
    fn migration_table_name() -> DynIden {
        Alias::new("saga_migrations").into_iden()
    }
}

fn s(name: impl IntoIden, len: u32) -> ColumnDef {
    ColumnDef::new(name).string_len(len).not_null().to_owned()
}
fn sn(name: impl IntoIden, len: u32) -> ColumnDef {
    ColumnDef::new(name).string_len(len).null().to_owned()
}
fn text(name: impl IntoIden) -> ColumnDef {
    ColumnDef::new(name).text().not_null().to_owned()
}
fn textn(name: impl IntoIden) -> ColumnDef {
    ColumnDef::new(name).text().null().to_owned()
}
fn big(name: impl IntoIden) -> ColumnDef {
    ColumnDef::new(name).big_integer().not_null().to_owned()
}

#[derive(DeriveIden)]
enum Sagas {
    Table,
    Id,
    Kind,
    Owner,
    Heartbeat,
    Status,
    Step,
    State,
    Error,
    CreatedAt,
    UpdatedAt,
}

pub struct M0001Sagas;

impl MigrationName for M0001Sagas {
    fn name(&self) -> &str {
        "m0001_sagas"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0001Sagas {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Sagas::Table)
                .if_not_exists()
                .col(s(Sagas::Id, 36).primary_key())
                .col(s(Sagas::Kind, 64))
                .col(sn(Sagas::Owner, 64))
                .col(big(Sagas::Heartbeat))
                .col(s(Sagas::Status, 16))
                .col(big(Sagas::Step))
                .col(text(Sagas::State))
                .col(textn(Sagas::Error))
                .col(big(Sagas::CreatedAt))
                .col(big(Sagas::UpdatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("sagas_status")
                .table(Sagas::Table)
                .col(Sagas::Status)
                .col(Sagas::Heartbeat)
                .if_not_exists()
                .to_owned(),
        )
        .await?;
        Ok(())
    }
}
