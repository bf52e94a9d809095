//! The compute service's schema as versioned migrations, identical in effect
//! on SQLite, PostgreSQL and MySQL. Times are microseconds since the epoch.
//!
//! M0001: what hosts and servers are (services, compute nodes, instances and
//! their history). M0002 (`migration_resources`): flavors, keypairs,
//! aggregates, server groups, quotas. M0003 (`migration_server_migrations`):
//! the migration records of servers. M0004 (`migration_block_devices`): the
//! volumes of servers. M0005 (`console::migration`): console authorizations.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DeriveIden;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(M0001Servers),
            Box::new(crate::migration_resources::M0002Resources),
            Box::new(crate::migration_server_migrations::M0003ServerMigrations),
            Box::new(crate::migration_block_devices::M0004BlockDevices),
            Box::new(crate::console::migration::M0005ConsoleAuthTokens),
        ]
    }
    fn migration_table_name() -> DynIden {
        Alias::new("compute_migrations").into_iden()
    }
}

use stratus_db::cols::{big, bign, boolean, s, serial, sn, text, textn};

#[derive(DeriveIden)]
enum Services {
    Table,
    Id,
    Uuid,
    Host,
    Binary,
    Topic,
    Disabled,
    DisabledReason,
    ForcedDown,
    LastSeenUp,
    ReportCount,
    Version,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ComputeNodes {
    Table,
    Id,
    Uuid,
    ServiceId,
    Host,
    HypervisorHostname,
    HypervisorType,
    HypervisorVersion,
    HostIp,
    Vcpus,
    MemoryMb,
    LocalGb,
    VcpusUsed,
    MemoryMbUsed,
    LocalGbUsed,
    RunningVms,
    CpuInfo,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Instances {
    Table,
    Uuid,
    DisplayName,
    DisplayDescription,
    ProjectId,
    UserId,
    Host,
    Node,
    ImageRef,
    FlavorId,
    Vcpus,
    MemoryMb,
    RootGb,
    EphemeralGb,
    Flavor,
    OldFlavor,
    NewFlavor,
    VmState,
    TaskState,
    PowerState,
    AvailabilityZone,
    KeyName,
    KeyData,
    UserData,
    Metadata,
    SystemMetadata,
    ConfigDrive,
    AccessIpV4,
    AccessIpV6,
    Locked,
    LockedBy,
    LockedReason,
    Hostname,
    LaunchIndex,
    ReservationId,
    Progress,
    RequestSpec,
    BlockDevices,
    LaunchedAt,
    TerminatedAt,
    Deleted,
    CreatedAt,
    UpdatedAt,
    DeletedAt,
}

#[derive(DeriveIden)]
enum InstanceTags {
    Table,
    InstanceUuid,
    Tag,
}

#[derive(DeriveIden)]
enum InstanceFaults {
    Table,
    Id,
    InstanceUuid,
    Code,
    Message,
    Details,
    Host,
    CreatedAt,
}

#[derive(DeriveIden)]
enum InstanceActions {
    Table,
    Id,
    InstanceUuid,
    Action,
    RequestId,
    UserId,
    ProjectId,
    StartTime,
    FinishTime,
    Message,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum InstanceActionEvents {
    Table,
    Id,
    ActionId,
    Event,
    StartTime,
    FinishTime,
    Result,
    Traceback,
    Host,
    Details,
}

pub struct M0001Servers;

impl MigrationName for M0001Servers {
    fn name(&self) -> &str {
        "m0001_servers"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0001Servers {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Services::Table)
                .if_not_exists()
                .col(serial(Services::Id))
                .col(s(Services::Uuid, 36))
                .col(s(Services::Host, 255))
                .col(s(Services::Binary, 64))
                .col(s(Services::Topic, 255))
                .col(boolean(Services::Disabled))
                .col(sn(Services::DisabledReason, 255))
                .col(boolean(Services::ForcedDown))
                .col(bign(Services::LastSeenUp))
                .col(big(Services::ReportCount))
                .col(big(Services::Version))
                .col(big(Services::CreatedAt))
                .col(big(Services::UpdatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("services_host_binary")
                .table(Services::Table)
                .col(Services::Host)
                .col(Services::Binary)
                .unique()
                .if_not_exists()
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("services_uuid")
                .table(Services::Table)
                .col(Services::Uuid)
                .unique()
                .if_not_exists()
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(ComputeNodes::Table)
                .if_not_exists()
                .col(serial(ComputeNodes::Id))
                .col(s(ComputeNodes::Uuid, 36))
                .col(big(ComputeNodes::ServiceId))
                .col(s(ComputeNodes::Host, 255))
                .col(s(ComputeNodes::HypervisorHostname, 255))
                .col(s(ComputeNodes::HypervisorType, 64))
                .col(big(ComputeNodes::HypervisorVersion))
                .col(s(ComputeNodes::HostIp, 64))
                .col(big(ComputeNodes::Vcpus))
                .col(big(ComputeNodes::MemoryMb))
                .col(big(ComputeNodes::LocalGb))
                .col(big(ComputeNodes::VcpusUsed))
                .col(big(ComputeNodes::MemoryMbUsed))
                .col(big(ComputeNodes::LocalGbUsed))
                .col(big(ComputeNodes::RunningVms))
                .col(text(ComputeNodes::CpuInfo))
                .col(big(ComputeNodes::CreatedAt))
                .col(big(ComputeNodes::UpdatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("compute_nodes_host_node")
                .table(ComputeNodes::Table)
                .col(ComputeNodes::Host)
                .col(ComputeNodes::HypervisorHostname)
                .unique()
                .if_not_exists()
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Instances::Table)
                .if_not_exists()
                .col(s(Instances::Uuid, 36).primary_key())
                .col(s(Instances::DisplayName, 255))
                .col(textn(Instances::DisplayDescription))
                .col(s(Instances::ProjectId, 64))
                .col(s(Instances::UserId, 64))
                .col(sn(Instances::Host, 255))
                .col(sn(Instances::Node, 255))
                .col(s(Instances::ImageRef, 255))
                .col(s(Instances::FlavorId, 255))
                .col(big(Instances::Vcpus))
                .col(big(Instances::MemoryMb))
                .col(big(Instances::RootGb))
                .col(big(Instances::EphemeralGb))
                .col(text(Instances::Flavor))
                .col(textn(Instances::OldFlavor))
                .col(textn(Instances::NewFlavor))
                .col(s(Instances::VmState, 32))
                .col(sn(Instances::TaskState, 64))
                .col(big(Instances::PowerState))
                .col(sn(Instances::AvailabilityZone, 255))
                .col(sn(Instances::KeyName, 255))
                .col(textn(Instances::KeyData))
                .col(textn(Instances::UserData))
                .col(text(Instances::Metadata))
                .col(text(Instances::SystemMetadata))
                .col(boolean(Instances::ConfigDrive))
                .col(sn(Instances::AccessIpV4, 64))
                .col(sn(Instances::AccessIpV6, 64))
                .col(boolean(Instances::Locked))
                .col(sn(Instances::LockedBy, 16))
                .col(sn(Instances::LockedReason, 255))
                .col(s(Instances::Hostname, 255))
                .col(big(Instances::LaunchIndex))
                .col(s(Instances::ReservationId, 64))
                .col(big(Instances::Progress))
                .col(text(Instances::RequestSpec))
                .col(text(Instances::BlockDevices))
                .col(bign(Instances::LaunchedAt))
                .col(bign(Instances::TerminatedAt))
                .col(boolean(Instances::Deleted))
                .col(big(Instances::CreatedAt))
                .col(big(Instances::UpdatedAt))
                .col(bign(Instances::DeletedAt))
                .to_owned(),
        )
        .await?;
        for (name, cols) in [
            ("instances_project", vec![Instances::ProjectId, Instances::Deleted, Instances::CreatedAt]),
            ("instances_host", vec![Instances::Host, Instances::Deleted]),
            ("instances_updated", vec![Instances::UpdatedAt]),
        ] {
            let mut idx = Index::create().name(name).table(Instances::Table).if_not_exists().to_owned();
            for c in cols {
                idx.col(c);
            }
            m.create_index(idx).await?;
        }
        m.create_table(
            Table::create()
                .table(InstanceTags::Table)
                .if_not_exists()
                .col(s(InstanceTags::InstanceUuid, 36))
                .col(s(InstanceTags::Tag, 80))
                .primary_key(Index::create().col(InstanceTags::InstanceUuid).col(InstanceTags::Tag))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(InstanceFaults::Table)
                .if_not_exists()
                .col(serial(InstanceFaults::Id))
                .col(s(InstanceFaults::InstanceUuid, 36))
                .col(big(InstanceFaults::Code))
                .col(text(InstanceFaults::Message))
                .col(textn(InstanceFaults::Details))
                .col(sn(InstanceFaults::Host, 255))
                .col(big(InstanceFaults::CreatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("instance_faults_instance")
                .table(InstanceFaults::Table)
                .col(InstanceFaults::InstanceUuid)
                .if_not_exists()
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(InstanceActions::Table)
                .if_not_exists()
                .col(serial(InstanceActions::Id))
                .col(s(InstanceActions::InstanceUuid, 36))
                .col(s(InstanceActions::Action, 64))
                .col(s(InstanceActions::RequestId, 64))
                .col(sn(InstanceActions::UserId, 64))
                .col(sn(InstanceActions::ProjectId, 64))
                .col(big(InstanceActions::StartTime))
                .col(bign(InstanceActions::FinishTime))
                .col(sn(InstanceActions::Message, 255))
                .col(big(InstanceActions::UpdatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("instance_actions_instance")
                .table(InstanceActions::Table)
                .col(InstanceActions::InstanceUuid)
                .col(InstanceActions::RequestId)
                .if_not_exists()
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(InstanceActionEvents::Table)
                .if_not_exists()
                .col(serial(InstanceActionEvents::Id))
                .col(big(InstanceActionEvents::ActionId))
                .col(s(InstanceActionEvents::Event, 64))
                .col(big(InstanceActionEvents::StartTime))
                .col(bign(InstanceActionEvents::FinishTime))
                .col(sn(InstanceActionEvents::Result, 32))
                .col(textn(InstanceActionEvents::Traceback))
                .col(sn(InstanceActionEvents::Host, 255))
                .col(textn(InstanceActionEvents::Details))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("instance_action_events_action")
                .table(InstanceActionEvents::Table)
                .col(InstanceActionEvents::ActionId)
                .if_not_exists()
                .to_owned(),
        )
        .await?;
        Ok(())
    }
}
