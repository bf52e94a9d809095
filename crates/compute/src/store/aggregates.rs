//! Host aggregates: named groups of compute hosts with metadata; the
//! `availability_zone` key of the metadata makes an aggregate a zone.

use std::collections::BTreeMap;

use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set, TransactionTrait,
};
use stratus_db::Db;

use crate::entity::{aggregate, aggregate_host, aggregate_metadata};
use crate::error::{ComputeError, Result, conflict, not_found};

pub const AZ_KEY: &str = "availability_zone";

/// An aggregate with its hosts and metadata.
#[derive(Clone, Debug, PartialEq)]
pub struct Aggregate {
    pub id: i64,
    pub uuid: String,
    pub name: String,
    /// The `availability_zone` metadata value, if any.
    pub availability_zone: Option<String>,
    pub hosts: Vec<String>,
    pub metadata: BTreeMap<String, String>,
    pub created_at: i64,
    pub updated_at: Option<i64>,
}

fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

pub fn aggregate_not_found(id: impl std::fmt::Display) -> ComputeError {
    not_found(format!("Aggregate {id} could not be found."))
}

async fn assemble<C: ConnectionTrait>(conn: &C, rows: Vec<aggregate::Model>) -> Result<Vec<Aggregate>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let mut hosts: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    let mut meta: BTreeMap<i64, BTreeMap<String, String>> = BTreeMap::new();
    for chunk in ids.chunks(500) {
        for h in aggregate_host::Entity::find()
            .filter(aggregate_host::Column::AggregateId.is_in(chunk.to_vec()))
            .order_by_asc(aggregate_host::Column::Host)
            .all(conn)
            .await?
        {
            hosts.entry(h.aggregate_id).or_default().push(h.host);
        }
        for m in aggregate_metadata::Entity::find()
            .filter(aggregate_metadata::Column::AggregateId.is_in(chunk.to_vec()))
            .all(conn)
            .await?
        {
            meta.entry(m.aggregate_id).or_default().insert(m.key, m.value);
        }
    }
    Ok(rows
        .into_iter()
        .map(|r| {
            let metadata = meta.remove(&r.id).unwrap_or_default();
            Aggregate {
                availability_zone: metadata.get(AZ_KEY).cloned(),
                hosts: hosts.remove(&r.id).unwrap_or_default(),
                metadata,
                id: r.id,
                uuid: r.uuid,
                name: r.name,
                created_at: r.created_at,
                updated_at: r.updated_at,
            }
        })
        .collect())
}

/// Every aggregate with hosts and metadata, by id.
pub async fn all(db: &Db) -> Result<Vec<Aggregate>> {
    let rows = aggregate::Entity::find().order_by_asc(aggregate::Column::Id).all(&db.read).await?;
    assemble(&db.read, rows).await
}

pub async fn get(db: &Db, id: i64) -> Result<Option<Aggregate>> {
    let Some(r) = aggregate::Entity::find_by_id(id).one(&db.read).await? else {
        return Ok(None);
    };
    Ok(assemble(&db.read, vec![r]).await?.pop())
}

pub async fn get_by_uuid(db: &Db, uuid: &str) -> Result<Option<Aggregate>> {
    let Some(r) = aggregate::Entity::find().filter(aggregate::Column::Uuid.eq(uuid)).one(&db.read).await? else {
        return Ok(None);
    };
    Ok(assemble(&db.read, vec![r]).await?.pop())
}

/// The aggregates a host belongs to.
pub async fn of_host(db: &Db, host: &str) -> Result<Vec<Aggregate>> {
    let ids: Vec<i64> = aggregate_host::Entity::find()
        .filter(aggregate_host::Column::Host.eq(host))
        .all(&db.read)
        .await?
        .into_iter()
        .map(|h| h.aggregate_id)
        .collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows = aggregate::Entity::find()
        .filter(aggregate::Column::Id.is_in(ids))
        .order_by_asc(aggregate::Column::Id)
        .all(&db.read)
        .await?;
    assemble(&db.read, rows).await
}

/// The zone(s) of a host from the aggregates it is in (several joined by
/// `,` as Nova shows them), else `default_zone`.
pub async fn zone_of_host(db: &Db, host: &str, default_zone: &str) -> Result<String> {
    let aggs = of_host(db, host).await?;
    Ok(zone_from(&aggs, host, default_zone))
}

/// The zone of `host` given every aggregate (no database round trip per host).
pub fn zone_from(aggregates: &[Aggregate], host: &str, default_zone: &str) -> String {
    let mut zones: Vec<&str> = aggregates
        .iter()
        .filter(|a| a.hosts.iter().any(|h| h == host))
        .filter_map(|a| a.availability_zone.as_deref())
        .collect();
    zones.sort_unstable();
    zones.dedup();
    if zones.is_empty() { default_zone.to_string() } else { zones.join(",") }
}

/// Create an aggregate (optionally a zone); a taken name is a 409.
pub async fn create(db: &Db, name: &str, availability_zone: Option<&str>) -> Result<Aggregate> {
    let txn = db.write.begin().await?;
    let res = async {
        let m = aggregate::ActiveModel {
            uuid: Set(uuid::Uuid::new_v4().to_string()),
            name: Set(name.to_string()),
            created_at: Set(now_us()),
            updated_at: Set(None),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
        if let Some(az) = availability_zone {
            aggregate_metadata::ActiveModel {
                aggregate_id: Set(m.id),
                key: Set(AZ_KEY.to_string()),
                value: Set(az.to_string()),
            }
            .insert(&txn)
            .await?;
        }
        Ok::<_, sea_orm::DbErr>(m)
    }
    .await;
    let m = match res {
        Ok(m) => {
            txn.commit().await?;
            m
        }
        Err(e) => {
            txn.rollback().await?;
            if stratus_db::is_unique_violation(&e) {
                return Err(conflict(format!("Aggregate {name} already exists.")));
            }
            return Err(e.into());
        }
    };
    get(db, m.id).await?.ok_or_else(|| aggregate_not_found(m.id))
}

/// Rename an aggregate; a taken name is a 409.
pub async fn rename(db: &Db, id: i64, name: &str) -> Result<()> {
    let r = aggregate::Entity::update_many()
        .col_expr(aggregate::Column::Name, Expr::value(name))
        .col_expr(aggregate::Column::UpdatedAt, Expr::value(Some(now_us())))
        .filter(aggregate::Column::Id.eq(id))
        .exec(&db.write)
        .await;
    match r {
        Ok(r) if r.rows_affected == 0 => Err(aggregate_not_found(id)),
        Ok(_) => Ok(()),
        Err(e) if stratus_db::is_unique_violation(&e) => Err(conflict(format!("Aggregate {name} already exists."))),
        Err(e) => Err(e.into()),
    }
}

/// Apply metadata updates: a value sets the key, `None` removes it.
pub async fn update_metadata(db: &Db, id: i64, updates: &BTreeMap<String, Option<String>>) -> Result<()> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let txn = db.write.begin().await?;
        let res = async {
            let keys: Vec<String> = updates.keys().cloned().collect();
            aggregate_metadata::Entity::delete_many()
                .filter(aggregate_metadata::Column::AggregateId.eq(id))
                .filter(aggregate_metadata::Column::Key.is_in(keys))
                .exec(&txn)
                .await?;
            for (k, v) in updates {
                if let Some(v) = v {
                    aggregate_metadata::ActiveModel {
                        aggregate_id: Set(id),
                        key: Set(k.clone()),
                        value: Set(v.clone()),
                    }
                    .insert(&txn)
                    .await?;
                }
            }
            aggregate::Entity::update_many()
                .col_expr(aggregate::Column::UpdatedAt, Expr::value(Some(now_us())))
                .filter(aggregate::Column::Id.eq(id))
                .exec(&txn)
                .await?;
            Ok::<(), sea_orm::DbErr>(())
        }
        .await;
        match res {
            Ok(()) => {
                txn.commit().await?;
                return Ok(());
            }
            Err(e) if stratus_db::is_unique_violation(&e) && attempt < 5 => txn.rollback().await?,
            Err(e) => {
                txn.rollback().await?;
                return Err(e.into());
            }
        }
    }
}

/// Add a host; 409 if it is already there.
pub async fn add_host(db: &Db, id: i64, host: &str) -> Result<()> {
    let m = aggregate_host::ActiveModel { aggregate_id: Set(id), host: Set(host.to_string()) };
    match m.insert(&db.write).await {
        Ok(_) => Ok(()),
        Err(e) if stratus_db::is_unique_violation(&e) => {
            Err(conflict(format!("Aggregate {id} already has host {host}.")))
        }
        Err(e) => Err(e.into()),
    }
}

/// Remove a host; false if it was not in the aggregate.
pub async fn remove_host(db: &Db, id: i64, host: &str) -> Result<bool> {
    let r = aggregate_host::Entity::delete_many()
        .filter(aggregate_host::Column::AggregateId.eq(id))
        .filter(aggregate_host::Column::Host.eq(host))
        .exec(&db.write)
        .await?;
    Ok(r.rows_affected > 0)
}

/// Delete an aggregate with its metadata (the API refuses while it has hosts).
pub async fn delete(db: &Db, id: i64) -> Result<bool> {
    let txn = db.write.begin().await?;
    aggregate_metadata::Entity::delete_many().filter(aggregate_metadata::Column::AggregateId.eq(id)).exec(&txn).await?;
    aggregate_host::Entity::delete_many().filter(aggregate_host::Column::AggregateId.eq(id)).exec(&txn).await?;
    let r = aggregate::Entity::delete_by_id(id).exec(&txn).await?;
    txn.commit().await?;
    Ok(r.rows_affected > 0)
}
