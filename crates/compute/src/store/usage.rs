//! Read-only views of instances for the resources beside servers: usage
//! over a period (`os-simple-tenant-usage`) and what runs on a host
//! (`os-hypervisors`, `os-hosts`, service and aggregate checks).

use sea_orm::{ColumnTrait, Condition, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder};
use stratus_db::Db;

use crate::entity::instance;
use crate::error::Result;

pub type Instance = instance::Model;

/// Instances (deleted ones included) that ran at some time in [start, stop):
/// not terminated before `start`, launched before `stop`. Ordered by
/// creation, then uuid (the order markers page in); `project` narrows.
pub async fn active_in_window(db: &Db, start_us: i64, stop_us: i64, project: Option<&str>) -> Result<Vec<Instance>> {
    let mut q = instance::Entity::find()
        .filter(
            Condition::any()
                .add(instance::Column::TerminatedAt.is_null())
                .add(instance::Column::TerminatedAt.gt(start_us)),
        )
        .filter(instance::Column::LaunchedAt.lt(stop_us))
        .order_by_asc(instance::Column::CreatedAt)
        .order_by_asc(instance::Column::Uuid);
    if let Some(p) = project {
        q = q.filter(instance::Column::ProjectId.eq(p));
    }
    Ok(q.all(&db.read).await?)
}

/// The live (not deleted) instances on a host, by creation.
pub async fn on_host(db: &Db, host: &str) -> Result<Vec<Instance>> {
    Ok(instance::Entity::find()
        .filter(instance::Column::Host.eq(host))
        .filter(instance::Column::Deleted.eq(false))
        .order_by_asc(instance::Column::CreatedAt)
        .order_by_asc(instance::Column::Uuid)
        .all(&db.read)
        .await?)
}

/// How many live instances a host has.
pub async fn count_on_host(db: &Db, host: &str) -> Result<u64> {
    Ok(instance::Entity::find()
        .filter(instance::Column::Host.eq(host))
        .filter(instance::Column::Deleted.eq(false))
        .count(&db.read)
        .await?)
}
