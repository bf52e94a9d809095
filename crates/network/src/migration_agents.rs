//! Agents: network agents (one row per agent binary and host, kept fresh by
//! its heartbeats) and RBAC policies (who else may use an object, and how).

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DeriveIden;
use stratus_db::cols::{boolean, s, text};

#[derive(DeriveIden)]
enum Agents {
    Table,
    Id,
    AgentType,
    Binary,
    Topic,
    Host,
    AvailabilityZone,
    AdminStateUp,
    CreatedAt,
    StartedAt,
    HeartbeatTimestamp,
    Description,
    Configurations,
}

#[derive(DeriveIden)]
enum RbacPolicies {
    Table,
    Id,
    ProjectId,
    ObjectType,
    ObjectId,
    Action,
    TargetProject,
}

pub struct M0006Agents;

impl MigrationName for M0006Agents {
    fn name(&self) -> &str {
        "m0006_agents"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0006Agents {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // times as Neutron renders agents' (`2026-11-26 13:00:00`, UTC): they sort as text;
        // '' stands for a null availability zone
        m.create_table(
            Table::create()
                .table(Agents::Table)
                .if_not_exists()
                .col(s(Agents::Id, 36).primary_key())
                .col(s(Agents::AgentType, 255))
                .col(s(Agents::Binary, 255))
                .col(s(Agents::Topic, 255))
                .col(s(Agents::Host, 255))
                .col(s(Agents::AvailabilityZone, 255))
                .col(boolean(Agents::AdminStateUp))
                .col(s(Agents::CreatedAt, 32))
                .col(s(Agents::StartedAt, 32))
                .col(s(Agents::HeartbeatTimestamp, 32))
                .col(s(Agents::Description, 255))
                .col(text(Agents::Configurations))
                .to_owned(),
        )
        .await?;
        // racing first reports of one agent make one row
        m.create_index(
            Index::create()
                .name("ux_agents_host_binary")
                .table(Agents::Table)
                .col(Agents::Host)
                .col(Agents::Binary)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(RbacPolicies::Table)
                .if_not_exists()
                .col(s(RbacPolicies::Id, 36).primary_key())
                .col(s(RbacPolicies::ProjectId, 64))
                .col(s(RbacPolicies::ObjectType, 32))
                .col(s(RbacPolicies::ObjectId, 36))
                .col(s(RbacPolicies::Action, 32))
                .col(s(RbacPolicies::TargetProject, 255))
                .to_owned(),
        )
        .await?;
        // a duplicate policy is a unique violation (DuplicateRbacPolicy), even between racing creates
        m.create_index(
            Index::create()
                .name("ux_rbac_policies_entry")
                .table(RbacPolicies::Table)
                .col(RbacPolicies::ObjectType)
                .col(RbacPolicies::ObjectId)
                .col(RbacPolicies::Action)
                .col(RbacPolicies::TargetProject)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_rbac_policies_target")
                .table(RbacPolicies::Table)
                .col(RbacPolicies::TargetProject)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_rbac_policies_project")
                .table(RbacPolicies::Table)
                .col(RbacPolicies::ProjectId)
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, _: &SchemaManager) -> Result<(), DbErr> {
        Err(DbErr::Migration("the network schema cannot be migrated down".into()))
    }
}
