//! Tables of the metadefs API (being written).

use sea_orm_migration::prelude::*;

pub struct M0002Metadefs;

impl MigrationName for M0002Metadefs {
    fn name(&self) -> &str {
        "m0002_metadefs"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0002Metadefs {
    async fn up(&self, _m: &SchemaManager) -> Result<(), DbErr> {
        Ok(())
    }
}
