//! Tables of the metadefs API, Glance's `metadef_*` tables with string ids.
//!
//! Namespaces are keyed by an internal id (their name can change); objects,
//! properties, tags and resource type associations hang off that id and go
//! with their namespace. Resource types are keyed by name and seeded with the
//! ones Glance ships. Names compare case-sensitively on every backend: on
//! MySQL the name columns get a binary collation. Times are microseconds
//! since the epoch.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend, DeriveIden};

use crate::migration::{big, boolean, s, sn, text, textn};

pub struct M0002Metadefs;

impl MigrationName for M0002Metadefs {
    fn name(&self) -> &str {
        "m0002_metadefs"
    }
}

/// The resource types Glance seeds (with `OS::Nova::Instance` renamed to
/// `OS::Nova::Server`, as Glance's Mitaka migration does), and the one more
/// its shipped definitions name.
pub const SEEDED_RESOURCE_TYPES: &[&str] = &[
    "OS::Glance::Image",
    "OS::Cinder::Volume",
    "OS::Nova::Flavor",
    "OS::Nova::Aggregate",
    "OS::Nova::Server",
    "OS::Trove::Instance",
];

#[derive(DeriveIden)]
enum MetadefNamespaces {
    Table,
    Id,
    Namespace,
    DisplayName,
    Description,
    Visibility,
    Protected,
    Owner,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum MetadefObjects {
    Table,
    Id,
    NamespaceId,
    Name,
    Description,
    Required,
    JsonSchema,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum MetadefProperties {
    Table,
    Id,
    NamespaceId,
    Name,
    JsonSchema,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum MetadefTags {
    Table,
    Id,
    NamespaceId,
    Name,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum MetadefResourceTypes {
    Table,
    Name,
    Protected,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum MetadefNamespaceResourceTypes {
    Table,
    NamespaceId,
    ResourceType,
    Prefix,
    PropertiesTarget,
    CreatedAt,
    UpdatedAt,
}

/// A required name column of `len` characters that compares case-sensitively.
fn name_col(backend: DbBackend, col: impl IntoIden, len: u32) -> ColumnDef {
    match backend {
        DbBackend::MySql => ColumnDef::new(col)
            .custom(Alias::new(format!("VARCHAR({len}) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")))
            .not_null()
            .to_owned(),
        _ => s(col, len),
    }
}

fn id_col(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).string_len(36).not_null().primary_key().to_owned()
}

/// A child table's link to its namespace: rows go with the namespace.
fn namespace_fk(table: impl IntoIden + 'static, col: impl IntoIden + 'static, name: &str) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(name)
        .from(table, col)
        .to(MetadefNamespaces::Table, MetadefNamespaces::Id)
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for M0002Metadefs {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let b = m.get_database_backend();
        m.create_table(
            Table::create()
                .table(MetadefNamespaces::Table)
                .if_not_exists()
                .col(id_col(MetadefNamespaces::Id))
                .col(name_col(b, MetadefNamespaces::Namespace, 80))
                .col(sn(MetadefNamespaces::DisplayName, 80))
                .col(textn(MetadefNamespaces::Description))
                .col(s(MetadefNamespaces::Visibility, 32))
                .col(boolean(MetadefNamespaces::Protected))
                .col(s(MetadefNamespaces::Owner, 255))
                .col(big(MetadefNamespaces::CreatedAt))
                .col(big(MetadefNamespaces::UpdatedAt))
                .index(
                    Index::create().name("uq_metadef_namespaces_namespace").col(MetadefNamespaces::Namespace).unique(),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_metadef_namespaces_owner")
                .table(MetadefNamespaces::Table)
                .col(MetadefNamespaces::Owner)
                .if_not_exists()
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(MetadefObjects::Table)
                .if_not_exists()
                .col(id_col(MetadefObjects::Id))
                .col(s(MetadefObjects::NamespaceId, 36))
                .col(name_col(b, MetadefObjects::Name, 80))
                .col(textn(MetadefObjects::Description))
                .col(textn(MetadefObjects::Required))
                .col(text(MetadefObjects::JsonSchema))
                .col(big(MetadefObjects::CreatedAt))
                .col(big(MetadefObjects::UpdatedAt))
                .index(
                    Index::create()
                        .name("uq_metadef_objects_namespace_id_name")
                        .col(MetadefObjects::NamespaceId)
                        .col(MetadefObjects::Name)
                        .unique(),
                )
                .foreign_key(&mut namespace_fk(
                    MetadefObjects::Table,
                    MetadefObjects::NamespaceId,
                    "fk_metadef_objects_namespace_id",
                ))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(MetadefProperties::Table)
                .if_not_exists()
                .col(id_col(MetadefProperties::Id))
                .col(s(MetadefProperties::NamespaceId, 36))
                .col(name_col(b, MetadefProperties::Name, 80))
                .col(text(MetadefProperties::JsonSchema))
                .col(big(MetadefProperties::CreatedAt))
                .col(big(MetadefProperties::UpdatedAt))
                .index(
                    Index::create()
                        .name("uq_metadef_properties_namespace_id_name")
                        .col(MetadefProperties::NamespaceId)
                        .col(MetadefProperties::Name)
                        .unique(),
                )
                .foreign_key(&mut namespace_fk(
                    MetadefProperties::Table,
                    MetadefProperties::NamespaceId,
                    "fk_metadef_properties_namespace_id",
                ))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(MetadefTags::Table)
                .if_not_exists()
                .col(id_col(MetadefTags::Id))
                .col(s(MetadefTags::NamespaceId, 36))
                .col(name_col(b, MetadefTags::Name, 80))
                .col(big(MetadefTags::CreatedAt))
                .col(big(MetadefTags::UpdatedAt))
                .index(
                    Index::create()
                        .name("uq_metadef_tags_namespace_id_name")
                        .col(MetadefTags::NamespaceId)
                        .col(MetadefTags::Name)
                        .unique(),
                )
                .foreign_key(&mut namespace_fk(
                    MetadefTags::Table,
                    MetadefTags::NamespaceId,
                    "fk_metadef_tags_namespace_id",
                ))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(MetadefResourceTypes::Table)
                .if_not_exists()
                .col(name_col(b, MetadefResourceTypes::Name, 80).primary_key())
                .col(boolean(MetadefResourceTypes::Protected))
                .col(big(MetadefResourceTypes::CreatedAt))
                .col(big(MetadefResourceTypes::UpdatedAt))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(MetadefNamespaceResourceTypes::Table)
                .if_not_exists()
                .col(s(MetadefNamespaceResourceTypes::NamespaceId, 36))
                .col(name_col(b, MetadefNamespaceResourceTypes::ResourceType, 80))
                .col(sn(MetadefNamespaceResourceTypes::Prefix, 80))
                .col(sn(MetadefNamespaceResourceTypes::PropertiesTarget, 80))
                .col(big(MetadefNamespaceResourceTypes::CreatedAt))
                .col(big(MetadefNamespaceResourceTypes::UpdatedAt))
                .primary_key(
                    Index::create()
                        .col(MetadefNamespaceResourceTypes::NamespaceId)
                        .col(MetadefNamespaceResourceTypes::ResourceType),
                )
                .foreign_key(&mut namespace_fk(
                    MetadefNamespaceResourceTypes::Table,
                    MetadefNamespaceResourceTypes::NamespaceId,
                    "fk_metadef_ns_res_types_namespace_id",
                ))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_metadef_ns_res_types_resource_type")
                        .from(MetadefNamespaceResourceTypes::Table, MetadefNamespaceResourceTypes::ResourceType)
                        .to(MetadefResourceTypes::Table, MetadefResourceTypes::Name),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_metadef_ns_res_types_resource_type")
                .table(MetadefNamespaceResourceTypes::Table)
                .col(MetadefNamespaceResourceTypes::ResourceType)
                .if_not_exists()
                .to_owned(),
        )
        .await?;

        seed_resource_types(m).await
    }
}

/// Insert the seeded resource types that are not there yet, one microsecond
/// apart so that listing them by creation keeps Glance's order.
async fn seed_resource_types(m: &SchemaManager<'_>) -> Result<(), DbErr> {
    let conn = m.get_connection();
    let backend = m.get_database_backend();
    let now = chrono::Utc::now().timestamp_micros();
    for (i, name) in SEEDED_RESOURCE_TYPES.iter().enumerate() {
        let exists = Query::select()
            .column(MetadefResourceTypes::Name)
            .from(MetadefResourceTypes::Table)
            .and_where(Expr::col(MetadefResourceTypes::Name).eq(*name))
            .to_owned();
        if conn.query_one(backend.build(&exists)).await?.is_some() {
            continue;
        }
        let at = now + i as i64;
        let mut insert = Query::insert();
        insert.into_table(MetadefResourceTypes::Table).columns([
            MetadefResourceTypes::Name,
            MetadefResourceTypes::Protected,
            MetadefResourceTypes::CreatedAt,
            MetadefResourceTypes::UpdatedAt,
        ]);
        insert
            .values([(*name).into(), true.into(), at.into(), at.into()])
            .map_err(|e| DbErr::Custom(format!("seeding resource type {name}: {e}")))?;
        conn.execute(backend.build(&insert)).await?;
    }
    Ok(())
}
