//! Identity's schema, as versioned migrations identical in effect on SQLite,
//! PostgreSQL and MySQL. Times are microseconds since the epoch (BIGINT):
//! exact on all three backends, which revocation checks need.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DeriveIden;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(M0001Initial), Box::new(M0002DomainConfigEndpointGroups), Box::new(M0003AccessRules)]
    }
    fn migration_table_name() -> DynIden {
        Alias::new("identity_migrations").into_iden()
    }
}

struct M0001Initial;

impl MigrationName for M0001Initial {
    fn name(&self) -> &str {
        "m0001_identity_initial"
    }
}

fn id(name: impl IntoIden) -> ColumnDef {
    ColumnDef::new(name).string_len(64).not_null().primary_key().to_owned()
}
fn s64(name: impl IntoIden) -> ColumnDef {
    ColumnDef::new(name).string_len(64).not_null().to_owned()
}
fn s64n(name: impl IntoIden) -> ColumnDef {
    ColumnDef::new(name).string_len(64).null().to_owned()
}
fn s255(name: impl IntoIden) -> ColumnDef {
    ColumnDef::new(name).string_len(255).not_null().to_owned()
}
fn text(name: impl IntoIden) -> ColumnDef {
    ColumnDef::new(name).text().not_null().to_owned()
}
fn textn(name: impl IntoIden) -> ColumnDef {
    ColumnDef::new(name).text().null().to_owned()
}
fn boolean(name: impl IntoIden) -> ColumnDef {
    ColumnDef::new(name).boolean().not_null().to_owned()
}
fn big(name: impl IntoIden) -> ColumnDef {
    ColumnDef::new(name).big_integer().not_null().to_owned()
}
fn bign(name: impl IntoIden) -> ColumnDef {
    ColumnDef::new(name).big_integer().null().to_owned()
}

#[derive(DeriveIden)]
enum Project {
    Table,
    Id,
    Name,
    DomainId,
    ParentId,
    IsDomain,
    Enabled,
    Description,
    Extra,
}
#[derive(DeriveIden)]
enum ProjectTag {
    Table,
    ProjectId,
    Name,
}
#[derive(DeriveIden)]
enum User {
    Table,
    Id,
    DomainId,
    Name,
    Enabled,
    DefaultProjectId,
    Extra,
    Options,
    CreatedAt,
    LastActiveAt,
    PasswordHash,
    PasswordCreatedAt,
    PasswordExpiresAt,
    FailedAuthCount,
    FailedAuthAt,
}
#[derive(DeriveIden)]
enum Group {
    Table,
    Id,
    DomainId,
    Name,
    Description,
    Extra,
}
#[derive(DeriveIden)]
enum UserGroupMembership {
    Table,
    UserId,
    GroupId,
}
#[derive(DeriveIden)]
enum Role {
    Table,
    Id,
    Name,
    DomainId,
    Description,
    Options,
    Extra,
}
#[derive(DeriveIden)]
#[allow(clippy::enum_variant_names)] // the columns' names
enum ImpliedRole {
    Table,
    PriorRoleId,
    ImpliedRoleId,
}
#[derive(DeriveIden)]
enum Assignment {
    Table,
    Type,
    ActorId,
    TargetId,
    RoleId,
    Inherited,
}
#[derive(DeriveIden)]
enum Region {
    Table,
    Id,
    Description,
    ParentRegionId,
    Extra,
}
#[derive(DeriveIden)]
enum Service {
    Table,
    Id,
    Type,
    Enabled,
    Extra,
}
#[derive(DeriveIden)]
enum Endpoint {
    Table,
    Id,
    ServiceId,
    Interface,
    Url,
    RegionId,
    Enabled,
    Extra,
}
#[derive(DeriveIden)]
enum Credential {
    Table,
    Id,
    UserId,
    ProjectId,
    Type,
    Blob,
    Extra,
}
#[derive(DeriveIden)]
enum Policy {
    Table,
    Id,
    Type,
    Blob,
    Extra,
}
#[derive(DeriveIden)]
enum ApplicationCredential {
    Table,
    Id,
    Name,
    SecretHash,
    Description,
    UserId,
    ProjectId,
    ExpiresAt,
    System,
    Unrestricted,
    Roles,
    CreatedAt,
}
#[derive(DeriveIden)]
enum RegisteredLimit {
    Table,
    Id,
    ServiceId,
    RegionId,
    ResourceName,
    DefaultLimit,
    Description,
}
#[derive(DeriveIden)]
enum ProjectLimit {
    Table,
    Id,
    ProjectId,
    DomainId,
    ServiceId,
    RegionId,
    ResourceName,
    ResourceLimit,
    Description,
}
#[derive(DeriveIden)]
enum RevocationEvent {
    Table,
    Id,
    DomainId,
    ProjectId,
    UserId,
    RoleId,
    AuditId,
    IssuedBefore,
    RevokedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for M0001Initial {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Project::Table)
                .col(id(Project::Id))
                .col(s255(Project::Name))
                .col(s64(Project::DomainId))
                .col(s64n(Project::ParentId))
                .col(boolean(Project::IsDomain))
                .col(boolean(Project::Enabled))
                .col(textn(Project::Description))
                .col(text(Project::Extra))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ux_project_domain_name")
                .table(Project::Table)
                .col(Project::DomainId)
                .col(Project::Name)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(ProjectTag::Table)
                .col(s64(ProjectTag::ProjectId))
                .col(s255(ProjectTag::Name))
                .primary_key(Index::create().col(ProjectTag::ProjectId).col(ProjectTag::Name))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(User::Table)
                .col(id(User::Id))
                .col(s64(User::DomainId))
                .col(s255(User::Name))
                .col(boolean(User::Enabled))
                .col(s64n(User::DefaultProjectId))
                .col(text(User::Extra))
                .col(text(User::Options))
                .col(big(User::CreatedAt))
                .col(bign(User::LastActiveAt))
                .col(textn(User::PasswordHash))
                .col(bign(User::PasswordCreatedAt))
                .col(bign(User::PasswordExpiresAt))
                .col(ColumnDef::new(User::FailedAuthCount).integer().not_null().default(0))
                .col(bign(User::FailedAuthAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ux_user_domain_name")
                .table(User::Table)
                .col(User::DomainId)
                .col(User::Name)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Group::Table)
                .col(id(Group::Id))
                .col(s64(Group::DomainId))
                .col(s255(Group::Name))
                .col(textn(Group::Description))
                .col(text(Group::Extra))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ux_group_domain_name")
                .table(Group::Table)
                .col(Group::DomainId)
                .col(Group::Name)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(UserGroupMembership::Table)
                .col(s64(UserGroupMembership::UserId))
                .col(s64(UserGroupMembership::GroupId))
                .primary_key(Index::create().col(UserGroupMembership::UserId).col(UserGroupMembership::GroupId))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Role::Table)
                .col(id(Role::Id))
                .col(s255(Role::Name))
                .col(s64(Role::DomainId))
                .col(textn(Role::Description))
                .col(text(Role::Options))
                .col(text(Role::Extra))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ux_role_name_domain")
                .table(Role::Table)
                .col(Role::Name)
                .col(Role::DomainId)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(ImpliedRole::Table)
                .col(s64(ImpliedRole::PriorRoleId))
                .col(s64(ImpliedRole::ImpliedRoleId))
                .primary_key(Index::create().col(ImpliedRole::PriorRoleId).col(ImpliedRole::ImpliedRoleId))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Assignment::Table)
                .col(ColumnDef::new(Assignment::Type).string_len(16).not_null())
                .col(s64(Assignment::ActorId))
                .col(s64(Assignment::TargetId))
                .col(s64(Assignment::RoleId))
                .col(boolean(Assignment::Inherited))
                .primary_key(
                    Index::create()
                        .col(Assignment::Type)
                        .col(Assignment::ActorId)
                        .col(Assignment::TargetId)
                        .col(Assignment::RoleId)
                        .col(Assignment::Inherited),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create().name("ix_assignment_actor").table(Assignment::Table).col(Assignment::ActorId).to_owned(),
        )
        .await?;
        m.create_index(
            Index::create().name("ix_assignment_target").table(Assignment::Table).col(Assignment::TargetId).to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Region::Table)
                .col(ColumnDef::new(Region::Id).string_len(255).not_null().primary_key())
                .col(textn(Region::Description))
                .col(ColumnDef::new(Region::ParentRegionId).string_len(255).null())
                .col(text(Region::Extra))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Service::Table)
                .col(id(Service::Id))
                .col(s255(Service::Type))
                .col(boolean(Service::Enabled))
                .col(text(Service::Extra))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Endpoint::Table)
                .col(id(Endpoint::Id))
                .col(s64(Endpoint::ServiceId))
                .col(ColumnDef::new(Endpoint::Interface).string_len(8).not_null())
                .col(text(Endpoint::Url))
                .col(ColumnDef::new(Endpoint::RegionId).string_len(255).null())
                .col(boolean(Endpoint::Enabled))
                .col(text(Endpoint::Extra))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Credential::Table)
                .col(id(Credential::Id))
                .col(s64(Credential::UserId))
                .col(s64n(Credential::ProjectId))
                .col(s255(Credential::Type))
                .col(text(Credential::Blob))
                .col(text(Credential::Extra))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Policy::Table)
                .col(id(Policy::Id))
                .col(s255(Policy::Type))
                .col(text(Policy::Blob))
                .col(text(Policy::Extra))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(ApplicationCredential::Table)
                .col(id(ApplicationCredential::Id))
                .col(s255(ApplicationCredential::Name))
                .col(text(ApplicationCredential::SecretHash))
                .col(textn(ApplicationCredential::Description))
                .col(s64(ApplicationCredential::UserId))
                .col(s64n(ApplicationCredential::ProjectId))
                .col(bign(ApplicationCredential::ExpiresAt))
                .col(s64n(ApplicationCredential::System))
                .col(boolean(ApplicationCredential::Unrestricted))
                .col(text(ApplicationCredential::Roles))
                .col(big(ApplicationCredential::CreatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ux_app_cred_user_name")
                .table(ApplicationCredential::Table)
                .col(ApplicationCredential::UserId)
                .col(ApplicationCredential::Name)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(RegisteredLimit::Table)
                .col(id(RegisteredLimit::Id))
                .col(s64(RegisteredLimit::ServiceId))
                .col(ColumnDef::new(RegisteredLimit::RegionId).string_len(255).null())
                .col(s255(RegisteredLimit::ResourceName))
                .col(big(RegisteredLimit::DefaultLimit))
                .col(textn(RegisteredLimit::Description))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(ProjectLimit::Table)
                .col(id(ProjectLimit::Id))
                .col(s64n(ProjectLimit::ProjectId))
                .col(s64n(ProjectLimit::DomainId))
                .col(s64(ProjectLimit::ServiceId))
                .col(ColumnDef::new(ProjectLimit::RegionId).string_len(255).null())
                .col(s255(ProjectLimit::ResourceName))
                .col(big(ProjectLimit::ResourceLimit))
                .col(textn(ProjectLimit::Description))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(RevocationEvent::Table)
                .col(id(RevocationEvent::Id))
                .col(s64n(RevocationEvent::DomainId))
                .col(s64n(RevocationEvent::ProjectId))
                .col(s64n(RevocationEvent::UserId))
                .col(s64n(RevocationEvent::RoleId))
                .col(s64n(RevocationEvent::AuditId))
                .col(big(RevocationEvent::IssuedBefore))
                .col(big(RevocationEvent::RevokedAt))
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, _m: &SchemaManager) -> Result<(), DbErr> {
        Err(DbErr::Migration("identity migrations are forward-only".into()))
    }
}

/// Domain-specific configuration (whitelisted and sensitive options in one
/// table) and OS-EP-FILTER: endpoint groups and project associations.
struct M0002DomainConfigEndpointGroups;

impl MigrationName for M0002DomainConfigEndpointGroups {
    fn name(&self) -> &str {
        "m0002_identity_domain_config_endpoint_groups"
    }
}

#[derive(DeriveIden)]
enum DomainConfig {
    Table,
    DomainId,
    ConfigGroup,
    ConfigOption,
    Value,
    Sensitive,
}
#[derive(DeriveIden)]
enum EndpointGroup {
    Table,
    Id,
    Name,
    Description,
    Filters,
}
#[derive(DeriveIden)]
enum ProjectEndpointGroup {
    Table,
    EndpointGroupId,
    ProjectId,
}
#[derive(DeriveIden)]
enum ProjectEndpoint {
    Table,
    EndpointId,
    ProjectId,
}

#[async_trait::async_trait]
impl MigrationTrait for M0002DomainConfigEndpointGroups {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(DomainConfig::Table)
                .col(s64(DomainConfig::DomainId))
                .col(s64(DomainConfig::ConfigGroup))
                .col(s64(DomainConfig::ConfigOption))
                .col(text(DomainConfig::Value))
                .col(boolean(DomainConfig::Sensitive))
                .primary_key(
                    Index::create()
                        .col(DomainConfig::DomainId)
                        .col(DomainConfig::ConfigGroup)
                        .col(DomainConfig::ConfigOption),
                )
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(EndpointGroup::Table)
                .col(id(EndpointGroup::Id))
                .col(s255(EndpointGroup::Name))
                .col(textn(EndpointGroup::Description))
                .col(text(EndpointGroup::Filters))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(ProjectEndpointGroup::Table)
                .col(s64(ProjectEndpointGroup::EndpointGroupId))
                .col(s64(ProjectEndpointGroup::ProjectId))
                .primary_key(
                    Index::create().col(ProjectEndpointGroup::EndpointGroupId).col(ProjectEndpointGroup::ProjectId),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_project_endpoint_group_project")
                .table(ProjectEndpointGroup::Table)
                .col(ProjectEndpointGroup::ProjectId)
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(ProjectEndpoint::Table)
                .col(s64(ProjectEndpoint::EndpointId))
                .col(s64(ProjectEndpoint::ProjectId))
                .primary_key(Index::create().col(ProjectEndpoint::EndpointId).col(ProjectEndpoint::ProjectId))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_project_endpoint_project")
                .table(ProjectEndpoint::Table)
                .col(ProjectEndpoint::ProjectId)
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, _m: &SchemaManager) -> Result<(), DbErr> {
        Err(DbErr::Migration("identity migrations are forward-only".into()))
    }
}

/// Application-credential access rules: a user's rules (one per service,
/// path and method) and which credentials use them, in their order.
struct M0003AccessRules;

impl MigrationName for M0003AccessRules {
    fn name(&self) -> &str {
        "m0003_identity_access_rules"
    }
}

#[derive(DeriveIden)]
enum AccessRule {
    Table,
    Id,
    UserId,
    Service,
    Path,
    Method,
}
#[derive(DeriveIden)]
enum ApplicationCredentialAccessRule {
    Table,
    ApplicationCredentialId,
    AccessRuleId,
    Position,
}

#[async_trait::async_trait]
impl MigrationTrait for M0003AccessRules {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(AccessRule::Table)
                .col(id(AccessRule::Id))
                .col(s64(AccessRule::UserId))
                .col(s64(AccessRule::Service))
                .col(s255(AccessRule::Path))
                .col(ColumnDef::new(AccessRule::Method).string_len(16).not_null().to_owned())
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ux_access_rule_user_service_path_method")
                .table(AccessRule::Table)
                .col(AccessRule::UserId)
                .col(AccessRule::Service)
                .col(AccessRule::Path)
                .col(AccessRule::Method)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(ApplicationCredentialAccessRule::Table)
                .col(s64(ApplicationCredentialAccessRule::ApplicationCredentialId))
                .col(s64(ApplicationCredentialAccessRule::AccessRuleId))
                .col(ColumnDef::new(ApplicationCredentialAccessRule::Position).integer().not_null().to_owned())
                .primary_key(
                    Index::create()
                        .col(ApplicationCredentialAccessRule::ApplicationCredentialId)
                        .col(ApplicationCredentialAccessRule::AccessRuleId),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_app_cred_access_rule_rule")
                .table(ApplicationCredentialAccessRule::Table)
                .col(ApplicationCredentialAccessRule::AccessRuleId)
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, _m: &SchemaManager) -> Result<(), DbErr> {
        Err(DbErr::Migration("identity migrations are forward-only".into()))
    }
}
