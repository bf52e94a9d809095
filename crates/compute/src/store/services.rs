//! Services: one row per (host, binary) of the compute roles (`nova-compute`,
//! `nova-conductor`, `nova-scheduler`), with their heartbeat. A service is
//! up when its last heartbeat is recent enough and it is not forced down.

use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set};
use stratus_db::Db;

use crate::entity::service;
use crate::error::Result;

pub type Service = service::Model;

pub const COMPUTE: &str = "nova-compute";

fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// Register a service (or find it again after a restart): the row of
/// (host, binary), created enabled with a new uuid when absent.
pub async fn upsert(db: &Db, host: &str, binary: &str, topic: &str) -> Result<Service> {
    if let Some(s) = get_by_host_binary(db, host, binary).await? {
        if s.topic != topic {
            service::Entity::update_many()
                .col_expr(service::Column::Topic, Expr::value(topic))
                .col_expr(service::Column::UpdatedAt, Expr::value(now_us()))
                .filter(service::Column::Id.eq(s.id))
                .exec(&db.write)
                .await?;
            return Ok(get_by_host_binary(db, host, binary).await?.unwrap_or(s));
        }
        return Ok(s);
    }
    let now = now_us();
    let m = service::ActiveModel {
        uuid: Set(uuid::Uuid::new_v4().to_string()),
        host: Set(host.to_string()),
        binary: Set(binary.to_string()),
        topic: Set(topic.to_string()),
        disabled: Set(false),
        disabled_reason: Set(None),
        forced_down: Set(false),
        last_seen_up: Set(None),
        report_count: Set(0),
        version: Set(1),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    };
    match m.insert(&db.write).await {
        Ok(m) => Ok(m),
        // another process registered it first
        Err(e) if stratus_db::is_unique_violation(&e) => match get_by_host_binary(db, host, binary).await? {
            Some(s) => Ok(s),
            None => Err(e.into()),
        },
        Err(e) => Err(e.into()),
    }
}

/// Record a heartbeat: `last_seen_up` now, one more report.
pub async fn heartbeat(db: &Db, id: i64) -> Result<()> {
    let now = now_us();
    service::Entity::update_many()
        .col_expr(service::Column::LastSeenUp, Expr::value(Some(now)))
        .col_expr(service::Column::ReportCount, Expr::col(service::Column::ReportCount).add(1))
        .filter(service::Column::Id.eq(id))
        .exec(&db.write)
        .await?;
    Ok(())
}

/// Every service, by id.
pub async fn list(db: &Db) -> Result<Vec<Service>> {
    Ok(service::Entity::find().order_by_asc(service::Column::Id).all(&db.read).await?)
}

pub async fn get_by_host_binary(db: &Db, host: &str, binary: &str) -> Result<Option<Service>> {
    Ok(service::Entity::find()
        .filter(service::Column::Host.eq(host))
        .filter(service::Column::Binary.eq(binary))
        .one(&db.read)
        .await?)
}

pub async fn get(db: &Db, id: i64) -> Result<Option<Service>> {
    Ok(service::Entity::find_by_id(id).one(&db.read).await?)
}

pub async fn get_by_uuid(db: &Db, uuid: &str) -> Result<Option<Service>> {
    Ok(service::Entity::find().filter(service::Column::Uuid.eq(uuid)).one(&db.read).await?)
}

/// The time of the last sign of life (heartbeat, else last update), microseconds.
pub fn last_heartbeat(s: &Service) -> i64 {
    s.last_seen_up.unwrap_or(s.updated_at.max(s.created_at))
}

/// Is the service up: not forced down and heard from within `down_seconds`?
pub fn is_up(s: &Service, down_seconds: u64) -> bool {
    if s.forced_down {
        return false;
    }
    let elapsed = (now_us() - last_heartbeat(s)).abs();
    elapsed <= (down_seconds as i64).saturating_mul(1_000_000)
}

/// Change what an operator may change: disabled (with a reason) and forced down.
pub async fn update_state(
    db: &Db,
    id: i64,
    disabled: bool,
    disabled_reason: Option<String>,
    forced_down: bool,
) -> Result<()> {
    service::Entity::update_many()
        .col_expr(service::Column::Disabled, Expr::value(disabled))
        .col_expr(service::Column::DisabledReason, Expr::value(disabled_reason))
        .col_expr(service::Column::ForcedDown, Expr::value(forced_down))
        .col_expr(service::Column::UpdatedAt, Expr::value(now_us()))
        .filter(service::Column::Id.eq(id))
        .exec(&db.write)
        .await?;
    Ok(())
}

pub async fn delete(db: &Db, id: i64) -> Result<bool> {
    Ok(service::Entity::delete_by_id(id).exec(&db.write).await?.rows_affected > 0)
}
