//! The block storage services (`cinder-scheduler`, `cinder-volume` as
//! `host@backend`, `cinder-backup`): one row per (host, binary), refreshed by
//! each service's heartbeat; a volume host's heartbeat carries its pools.

use chrono::NaiveDateTime;
use sea_orm::sea_query::{OnConflict, Query};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};
use serde_json::Value;

use crate::entity::service;
use crate::error::{Result, VolumeError};

pub const VOLUME_BINARY: &str = "cinder-volume";
pub const SCHEDULER_BINARY: &str = "cinder-scheduler";
pub const BACKUP_BINARY: &str = "cinder-backup";

/// Record a heartbeat: make or refresh the row of (host, binary) with its
/// zone and pools, `updated_at` now. Disabled and frozen stay as they are.
pub async fn heartbeat<C: ConnectionTrait>(
    conn: &C,
    host: &str,
    binary: &str,
    zone: &str,
    pools: &[crate::driver::Pool],
) -> Result<()> {
    let now = crate::api::now();
    let pools = serde_json::to_string(pools).map_err(|e| VolumeError::Internal(e.into()))?;
    let mut stmt = Query::insert();
    stmt.into_table(service::Entity)
        .columns([
            service::Column::Host,
            service::Column::Binary,
            service::Column::AvailabilityZone,
            service::Column::Disabled,
            service::Column::DisabledReason,
            service::Column::Frozen,
            service::Column::Pools,
            service::Column::CreatedAt,
            service::Column::UpdatedAt,
        ])
        .values([
            host.into(),
            binary.into(),
            zone.into(),
            false.into(),
            Option::<String>::None.into(),
            false.into(),
            pools.into(),
            now.clone().into(),
            now.into(),
        ])
        .map_err(|e| VolumeError::Internal(anyhow::anyhow!("service heartbeat statement: {e}")))?
        .on_conflict(
            OnConflict::columns([service::Column::Host, service::Column::Binary])
                .update_columns([service::Column::AvailabilityZone, service::Column::Pools, service::Column::UpdatedAt])
                .to_owned(),
        );
    conn.execute(conn.get_database_backend().build(&stmt)).await?;
    Ok(())
}

/// A Cinder time (`2026-11-26T13:00:00.000000`) as a UTC instant.
pub fn parse_time(s: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f").ok().map(|t| t.and_utc())
}

/// Did the service beat within the last `down_after_secs`?
pub fn is_up(s: &service::Model, down_after_secs: u64) -> bool {
    let Some(t) = parse_time(&s.updated_at).or_else(|| parse_time(&s.created_at)) else {
        return false;
    };
    let age = (chrono::Utc::now() - t).num_milliseconds().unsigned_abs();
    age <= down_after_secs.saturating_mul(1000)
}

/// Every service, oldest first.
pub async fn all<C: ConnectionTrait>(conn: &C) -> Result<Vec<service::Model>> {
    Ok(service::Entity::find()
        .order_by_asc(service::Column::CreatedAt)
        .order_by_asc(service::Column::Host)
        .order_by_asc(service::Column::Binary)
        .all(conn)
        .await?)
}

/// One service by host and binary.
pub async fn get<C: ConnectionTrait>(conn: &C, host: &str, binary: &str) -> Result<Option<service::Model>> {
    Ok(service::Entity::find_by_id((host.to_string(), binary.to_string())).one(conn).await?)
}

/// The volume hosts that can take new volumes: `cinder-volume` rows that are
/// enabled, not frozen, and beat within `down_after_secs`.
pub async fn alive_volume_hosts<C: ConnectionTrait>(conn: &C, down_after_secs: u64) -> Result<Vec<service::Model>> {
    let rows = service::Entity::find()
        .filter(service::Column::Binary.eq(VOLUME_BINARY))
        .filter(service::Column::Disabled.eq(false))
        .filter(service::Column::Frozen.eq(false))
        .order_by_asc(service::Column::Host)
        .all(conn)
        .await?;
    Ok(rows.into_iter().filter(|s| is_up(s, down_after_secs)).collect())
}

/// Does the service host `have` answer to `asked` as Cinder matches hosts:
/// the same, or `asked` naming its host (`host` for `host@backend`) or its
/// backend (`host@backend` for `host@backend#pool`)?
pub fn host_matches(have: &str, asked: &str) -> bool {
    if have == asked || have.starts_with(&format!("{asked}#")) {
        return true;
    }
    !asked.contains('@') && have.starts_with(&format!("{asked}@"))
}

/// Set `disabled` (and its reason) of one service; false when there is none.
pub async fn set_disabled<C: ConnectionTrait>(
    conn: &C,
    host: &str,
    binary: &str,
    disabled: bool,
    reason: Option<Option<String>>,
) -> Result<bool> {
    let mut q = service::Entity::update_many()
        .col_expr(service::Column::Disabled, sea_orm::sea_query::Expr::value(disabled))
        .filter(service::Column::Host.eq(host))
        .filter(service::Column::Binary.eq(binary));
    if let Some(r) = reason {
        q = q.col_expr(service::Column::DisabledReason, sea_orm::sea_query::Expr::value(r));
    }
    Ok(q.exec(conn).await?.rows_affected > 0)
}

/// Freeze or thaw volume services (by their exact host).
pub async fn set_frozen<C: ConnectionTrait>(conn: &C, hosts: &[String], frozen: bool) -> Result<()> {
    if hosts.is_empty() {
        return Ok(());
    }
    service::Entity::update_many()
        .col_expr(service::Column::Frozen, sea_orm::sea_query::Expr::value(frozen))
        .filter(service::Column::Binary.eq(VOLUME_BINARY))
        .filter(service::Column::Host.is_in(hosts.iter().cloned()))
        .exec(conn)
        .await?;
    Ok(())
}

/// The pools a volume service reported, as JSON objects (fields beyond
/// [`crate::driver::Pool`]'s are kept).
pub fn pools_of(s: &service::Model) -> Vec<serde_json::Map<String, Value>> {
    match serde_json::from_str::<Value>(&s.pools) {
        Ok(Value::Array(items)) => items
            .into_iter()
            .filter_map(|v| match v {
                Value::Object(m) => Some(m),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}
