//! SecurityGroups: security groups and their rules, each project's `default`
//! group (one row per project, so racing first uses create exactly one) and
//! the groups of each port.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DeriveIden;
use stratus_db::cols::{bign, boolean, s};

use crate::migration::standard;

#[derive(DeriveIden)]
enum Securitygroups {
    Table,
    Id,
    ProjectId,
    Name,
    Stateful,
}

#[derive(DeriveIden)]
enum Securitygrouprules {
    Table,
    Id,
    ProjectId,
    SecurityGroupId,
    Direction,
    Ethertype,
    Protocol,
    PortRangeMin,
    PortRangeMax,
    RemoteIpPrefix,
    NormalizedCidr,
    RemoteGroupId,
}

#[derive(DeriveIden)]
enum DefaultSecurityGroups {
    Table,
    ProjectId,
    SecurityGroupId,
}

#[derive(DeriveIden)]
enum Securitygroupportbindings {
    Table,
    PortId,
    SecurityGroupId,
}

pub struct M0004SecurityGroups;

impl MigrationName for M0004SecurityGroups {
    fn name(&self) -> &str {
        "m0004_security_groups"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0004SecurityGroups {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let mut t = Table::create();
        t.table(Securitygroups::Table)
            .if_not_exists()
            .col(s(Securitygroups::Id, 36).primary_key())
            .col(s(Securitygroups::ProjectId, 64))
            .col(s(Securitygroups::Name, 255))
            .col(boolean(Securitygroups::Stateful));
        standard(&mut t);
        m.create_table(t.to_owned()).await?;
        m.create_index(
            Index::create()
                .name("ix_securitygroups_project")
                .table(Securitygroups::Table)
                .col(Securitygroups::ProjectId)
                .to_owned(),
        )
        .await?;
        // '' stands for null in the sortable columns (protocol, prefixes, remote group)
        let mut t = Table::create();
        t.table(Securitygrouprules::Table)
            .if_not_exists()
            .col(s(Securitygrouprules::Id, 36).primary_key())
            .col(s(Securitygrouprules::ProjectId, 64))
            .col(s(Securitygrouprules::SecurityGroupId, 36))
            .col(s(Securitygrouprules::Direction, 16))
            .col(s(Securitygrouprules::Ethertype, 8))
            .col(s(Securitygrouprules::Protocol, 40))
            .col(bign(Securitygrouprules::PortRangeMin))
            .col(bign(Securitygrouprules::PortRangeMax))
            .col(s(Securitygrouprules::RemoteIpPrefix, 64))
            .col(s(Securitygrouprules::NormalizedCidr, 64))
            .col(s(Securitygrouprules::RemoteGroupId, 36));
        standard(&mut t);
        m.create_table(t.to_owned()).await?;
        m.create_index(
            Index::create()
                .name("ix_securitygrouprules_group")
                .table(Securitygrouprules::Table)
                .col(Securitygrouprules::SecurityGroupId)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_securitygrouprules_project")
                .table(Securitygrouprules::Table)
                .col(Securitygrouprules::ProjectId)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_securitygrouprules_remote_group")
                .table(Securitygrouprules::Table)
                .col(Securitygrouprules::RemoteGroupId)
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(DefaultSecurityGroups::Table)
                .if_not_exists()
                .col(s(DefaultSecurityGroups::ProjectId, 64).primary_key())
                .col(s(DefaultSecurityGroups::SecurityGroupId, 36))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Securitygroupportbindings::Table)
                .if_not_exists()
                .col(s(Securitygroupportbindings::PortId, 36))
                .col(s(Securitygroupportbindings::SecurityGroupId, 36))
                .primary_key(
                    Index::create()
                        .col(Securitygroupportbindings::PortId)
                        .col(Securitygroupportbindings::SecurityGroupId),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_securitygroupportbindings_group")
                .table(Securitygroupportbindings::Table)
                .col(Securitygroupportbindings::SecurityGroupId)
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, _: &SchemaManager) -> Result<(), DbErr> {
        Err(DbErr::Migration("the network schema cannot be migrated down".into()))
    }
}
