//! The tasks API's table: one row per task, Glance's `tasks` and `task_info`
//! in one (`input`, `result` and `message` are the task details). Times are
//! microseconds since the epoch.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DeriveIden;

use crate::migration::{big, bign, s, sn, text, textn};

pub struct M0003Tasks;

impl MigrationName for M0003Tasks {
    fn name(&self) -> &str {
        "m0003_tasks"
    }
}

#[derive(DeriveIden)]
enum ImageTasks {
    Table,
    Id,
    TaskType,
    Status,
    Owner,
    ExpiresAt,
    ImageId,
    RequestId,
    UserId,
    Input,
    Result,
    Message,
    CreatedAt,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for M0003Tasks {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(ImageTasks::Table)
                .if_not_exists()
                .col(ColumnDef::new(ImageTasks::Id).string_len(36).not_null().primary_key())
                .col(s(ImageTasks::TaskType, 30))
                .col(s(ImageTasks::Status, 30))
                .col(s(ImageTasks::Owner, 255))
                .col(bign(ImageTasks::ExpiresAt))
                .col(sn(ImageTasks::ImageId, 36))
                .col(sn(ImageTasks::RequestId, 64))
                .col(sn(ImageTasks::UserId, 64))
                .col(textn(ImageTasks::Input))
                .col(textn(ImageTasks::Result))
                .col(text(ImageTasks::Message))
                .col(big(ImageTasks::CreatedAt))
                .col(big(ImageTasks::UpdatedAt))
                .to_owned(),
        )
        .await?;
        for (name, col) in [
            ("ix_image_tasks_owner", ImageTasks::Owner),
            ("ix_image_tasks_status", ImageTasks::Status),
            ("ix_image_tasks_image_id", ImageTasks::ImageId),
            ("ix_image_tasks_expires_at", ImageTasks::ExpiresAt),
        ] {
            m.create_index(Index::create().name(name).table(ImageTasks::Table).col(col).if_not_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}
