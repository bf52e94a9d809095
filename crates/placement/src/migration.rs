//! The placement service's schema, as versioned migrations identical in
//! effect on SQLite, PostgreSQL and MySQL. Every table is prefixed with
//! `placement_` (services share one database in a local cloud and never join
//! across services). Times are microseconds since the epoch.
//!
//! Resource classes, traits, aggregates, projects, users and consumer types
//! are stored by name: placement's integer ids for them are an internal
//! detail that the API never shows.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DeriveIden;

use crate::standard;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(M0001Placement)]
    }
    fn migration_table_name() -> DynIden {
        Alias::new("placement_migrations").into_iden()
    }
}

/// String columns compared byte for byte on every backend (MySQL's default
/// collation would make `vcpu` equal `VCPU`).
struct Cols {
    mysql: bool,
}

impl Cols {
    fn s(&self, name: impl IntoIden, len: u32) -> ColumnDef {
        self.binary(ColumnDef::new(name).string_len(len).not_null().to_owned())
    }
    fn sn(&self, name: impl IntoIden, len: u32) -> ColumnDef {
        self.binary(ColumnDef::new(name).string_len(len).null().to_owned())
    }
    fn binary(&self, mut c: ColumnDef) -> ColumnDef {
        if self.mysql {
            c.extra("COLLATE utf8mb4_bin");
        }
        c
    }
}

fn big(name: impl IntoIden) -> ColumnDef {
    ColumnDef::new(name).big_integer().not_null().to_owned()
}
fn bign(name: impl IntoIden) -> ColumnDef {
    ColumnDef::new(name).big_integer().null().to_owned()
}
fn id(name: impl IntoIden) -> ColumnDef {
    ColumnDef::new(name).big_integer().not_null().auto_increment().primary_key().to_owned()
}

#[derive(DeriveIden)]
enum PlacementResourceProviders {
    Table,
    Id,
    Uuid,
    Name,
    Generation,
    ParentProviderId,
    RootProviderId,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum PlacementInventories {
    Table,
    Id,
    ResourceProviderId,
    ResourceClass,
    Total,
    Reserved,
    MinUnit,
    MaxUnit,
    StepSize,
    AllocationRatio,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum PlacementAllocations {
    Table,
    Id,
    ResourceProviderId,
    ConsumerId,
    ResourceClass,
    Used,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum PlacementConsumers {
    Table,
    Uuid,
    ProjectId,
    UserId,
    ConsumerType,
    Generation,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum PlacementResourceClasses {
    Table,
    Id,
    Name,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum PlacementTraits {
    Table,
    Name,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum PlacementProviderTraits {
    Table,
    ResourceProviderId,
    Trait,
}

#[derive(DeriveIden)]
enum PlacementProviderAggregates {
    Table,
    ResourceProviderId,
    Aggregate,
}

#[derive(DeriveIden)]
enum PlacementState {
    Table,
    Id,
    Epoch,
    NamesEpoch,
}

#[derive(DeriveIden)]
enum PlacementChanges {
    Table,
    ProviderId,
    Epoch,
}

struct M0001Placement;

impl MigrationName for M0001Placement {
    fn name(&self) -> &str {
        "m0001_placement"
    }
}

async fn index(
    m: &SchemaManager<'_>,
    name: &str,
    table: impl IntoIden + 'static,
    cols: &[&str],
    unique: bool,
) -> Result<(), DbErr> {
    let mut ix = Index::create();
    ix.name(name).table(table).if_not_exists();
    for c in cols {
        ix.col(Alias::new(*c));
    }
    if unique {
        ix.unique();
    }
    m.create_index(ix.to_owned()).await
}

#[async_trait::async_trait]
impl MigrationTrait for M0001Placement {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let c = Cols { mysql: m.get_database_backend() == sea_orm_migration::sea_orm::DbBackend::MySql };
        use PlacementResourceProviders as Rp;
        m.create_table(
            Table::create()
                .table(Rp::Table)
                .if_not_exists()
                .col(id(Rp::Id))
                .col(c.s(Rp::Uuid, 36))
                .col(c.s(Rp::Name, 200))
                .col(big(Rp::Generation))
                .col(bign(Rp::ParentProviderId))
                .col(bign(Rp::RootProviderId))
                .col(big(Rp::CreatedAt))
                .col(big(Rp::UpdatedAt))
                .to_owned(),
        )
        .await?;
        index(m, "ux_placement_rp_uuid", Rp::Table, &["uuid"], true).await?;
        index(m, "ux_placement_rp_name", Rp::Table, &["name"], true).await?;
        index(m, "ix_placement_rp_root", Rp::Table, &["root_provider_id"], false).await?;
        index(m, "ix_placement_rp_parent", Rp::Table, &["parent_provider_id"], false).await?;

        use PlacementInventories as Inv;
        m.create_table(
            Table::create()
                .table(Inv::Table)
                .if_not_exists()
                .col(id(Inv::Id))
                .col(big(Inv::ResourceProviderId))
                .col(c.s(Inv::ResourceClass, 255))
                .col(big(Inv::Total))
                .col(big(Inv::Reserved))
                .col(big(Inv::MinUnit))
                .col(big(Inv::MaxUnit))
                .col(big(Inv::StepSize))
                .col(ColumnDef::new(Inv::AllocationRatio).double().not_null())
                .col(big(Inv::CreatedAt))
                .col(big(Inv::UpdatedAt))
                .to_owned(),
        )
        .await?;
        index(m, "ux_placement_inv_rp_rc", Inv::Table, &["resource_provider_id", "resource_class"], true).await?;
        index(m, "ix_placement_inv_rc", Inv::Table, &["resource_class"], false).await?;

        use PlacementAllocations as Al;
        m.create_table(
            Table::create()
                .table(Al::Table)
                .if_not_exists()
                .col(id(Al::Id))
                .col(big(Al::ResourceProviderId))
                .col(c.s(Al::ConsumerId, 36))
                .col(c.s(Al::ResourceClass, 255))
                .col(big(Al::Used))
                .col(big(Al::CreatedAt))
                .col(big(Al::UpdatedAt))
                .to_owned(),
        )
        .await?;
        index(m, "ix_placement_alloc_rp_rc", Al::Table, &["resource_provider_id", "resource_class"], false).await?;
        index(m, "ix_placement_alloc_consumer", Al::Table, &["consumer_id"], false).await?;

        use PlacementConsumers as Co;
        m.create_table(
            Table::create()
                .table(Co::Table)
                .if_not_exists()
                .col(c.s(Co::Uuid, 36).primary_key().to_owned())
                .col(c.s(Co::ProjectId, 255))
                .col(c.s(Co::UserId, 255))
                .col(c.sn(Co::ConsumerType, 255))
                .col(big(Co::Generation))
                .col(big(Co::CreatedAt))
                .col(big(Co::UpdatedAt))
                .to_owned(),
        )
        .await?;
        index(m, "ix_placement_consumer_project_user", Co::Table, &["project_id", "user_id"], false).await?;

        use PlacementResourceClasses as Rc;
        m.create_table(
            Table::create()
                .table(Rc::Table)
                .if_not_exists()
                .col(ColumnDef::new(Rc::Id).big_integer().not_null().primary_key())
                .col(c.s(Rc::Name, 255))
                .col(big(Rc::CreatedAt))
                .col(big(Rc::UpdatedAt))
                .to_owned(),
        )
        .await?;
        index(m, "ux_placement_rc_name", Rc::Table, &["name"], true).await?;

        m.create_table(
            Table::create()
                .table(PlacementTraits::Table)
                .if_not_exists()
                .col(c.s(PlacementTraits::Name, 255).primary_key().to_owned())
                .col(big(PlacementTraits::CreatedAt))
                .col(big(PlacementTraits::UpdatedAt))
                .to_owned(),
        )
        .await?;

        use PlacementProviderTraits as Pt;
        m.create_table(
            Table::create()
                .table(Pt::Table)
                .if_not_exists()
                .col(big(Pt::ResourceProviderId))
                .col(c.s(Pt::Trait, 255))
                .primary_key(Index::create().col(Pt::ResourceProviderId).col(Pt::Trait))
                .to_owned(),
        )
        .await?;
        index(m, "ix_placement_rp_traits_trait", Pt::Table, &["trait"], false).await?;

        use PlacementProviderAggregates as Pa;
        m.create_table(
            Table::create()
                .table(Pa::Table)
                .if_not_exists()
                .col(big(Pa::ResourceProviderId))
                .col(c.s(Pa::Aggregate, 36))
                .primary_key(Index::create().col(Pa::ResourceProviderId).col(Pa::Aggregate))
                .to_owned(),
        )
        .await?;
        index(m, "ix_placement_rp_aggs_agg", Pa::Table, &["aggregate"], false).await?;

        m.create_table(
            Table::create()
                .table(PlacementState::Table)
                .if_not_exists()
                .col(ColumnDef::new(PlacementState::Id).big_integer().not_null().primary_key())
                .col(big(PlacementState::Epoch))
                .col(big(PlacementState::NamesEpoch))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(PlacementChanges::Table)
                .if_not_exists()
                .col(ColumnDef::new(PlacementChanges::ProviderId).big_integer().not_null().primary_key())
                .col(big(PlacementChanges::Epoch))
                .to_owned(),
        )
        .await?;
        index(m, "ix_placement_changes_epoch", PlacementChanges::Table, &["epoch"], false).await?;

        // seed: the one state row, the standard resource classes (ids in
        // os-resource-classes order, as placement numbers them) and traits
        let conn = m.get_connection();
        let backend = m.get_database_backend();
        let now = chrono::Utc::now().timestamp_micros();
        let state = Query::insert()
            .into_table(PlacementState::Table)
            .columns([PlacementState::Id, PlacementState::Epoch, PlacementState::NamesEpoch])
            .values_panic([1i64.into(), 0i64.into(), 0i64.into()])
            .to_owned();
        conn.execute(backend.build(&state)).await?;
        let mut rcs = Query::insert();
        rcs.into_table(Rc::Table).columns([Rc::Id, Rc::Name, Rc::CreatedAt, Rc::UpdatedAt]);
        for (i, name) in standard::RESOURCE_CLASSES.iter().enumerate() {
            rcs.values_panic([(i as i64).into(), (*name).into(), now.into(), now.into()]);
        }
        conn.execute(backend.build(&rcs)).await?;
        for chunk in standard::traits().collect::<Vec<_>>().chunks(200) {
            let mut traits = Query::insert();
            traits.into_table(PlacementTraits::Table).columns([
                PlacementTraits::Name,
                PlacementTraits::CreatedAt,
                PlacementTraits::UpdatedAt,
            ]);
            for name in chunk {
                traits.values_panic([(*name).into(), now.into(), now.into()]);
            }
            conn.execute(backend.build(&traits)).await?;
        }
        Ok(())
    }
}
