//! Tables of the tasks API (being written).

use sea_orm_migration::prelude::*;

pub struct M0003Tasks;

impl MigrationName for M0003Tasks {
    fn name(&self) -> &str {
        "m0003_tasks"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0003Tasks {
    async fn up(&self, _m: &SchemaManager) -> Result<(), DbErr> {
        Ok(())
    }
}
