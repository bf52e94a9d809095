//! M0005: console authorizations (Nova's `console_auth_tokens`): one row per
//! console URL handed out, keyed by the SHA-256 of its token (the token
//! itself is never stored), until a connection consumes it or it expires.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DeriveIden;

use stratus_db::cols::{big, s, serial, sn, textn};

pub struct M0005ConsoleAuthTokens;

impl MigrationName for M0005ConsoleAuthTokens {
    fn name(&self) -> &str {
        "m0005_console_auth_tokens"
    }
}

#[derive(DeriveIden)]
enum ConsoleAuthTokens {
    Table,
    Id,
    TokenHash,
    ConsoleType,
    Host,
    Port,
    InternalAccessPath,
    InstanceUuid,
    ComputeHost,
    AccessUrlBase,
    Expires,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for M0005ConsoleAuthTokens {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(ConsoleAuthTokens::Table)
                .if_not_exists()
                .col(serial(ConsoleAuthTokens::Id))
                .col(s(ConsoleAuthTokens::TokenHash, 64))
                .col(s(ConsoleAuthTokens::ConsoleType, 32))
                .col(s(ConsoleAuthTokens::Host, 255))
                .col(big(ConsoleAuthTokens::Port))
                .col(textn(ConsoleAuthTokens::InternalAccessPath))
                .col(s(ConsoleAuthTokens::InstanceUuid, 36))
                .col(s(ConsoleAuthTokens::ComputeHost, 255))
                .col(sn(ConsoleAuthTokens::AccessUrlBase, 255))
                .col(big(ConsoleAuthTokens::Expires))
                .col(big(ConsoleAuthTokens::CreatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("console_auth_tokens_token_hash")
                .table(ConsoleAuthTokens::Table)
                .col(ConsoleAuthTokens::TokenHash)
                .unique()
                .if_not_exists()
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("console_auth_tokens_instance")
                .table(ConsoleAuthTokens::Table)
                .col(ConsoleAuthTokens::InstanceUuid)
                .if_not_exists()
                .to_owned(),
        )
        .await?;
        Ok(())
    }
}
