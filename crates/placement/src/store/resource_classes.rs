//! Resource classes: the standard ones (seeded by the migration) and custom
//! ones, numbered from 10000 as placement numbers them.

use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set};

use super::{Tx, now_us};
use crate::entity::{allocation, inventory, resource_class};
use crate::error::{PlacementError, Result};
use crate::standard::FIRST_CUSTOM_RESOURCE_CLASS_ID;

pub type ResourceClass = resource_class::Model;

pub async fn list(conn: &impl ConnectionTrait) -> Result<Vec<ResourceClass>> {
    Ok(resource_class::Entity::find().order_by_asc(resource_class::Column::Id).all(conn).await?)
}

pub async fn get(conn: &impl ConnectionTrait, name: &str) -> Result<Option<ResourceClass>> {
    Ok(resource_class::Entity::find().filter(resource_class::Column::Name.eq(name)).one(conn).await?)
}

/// `ResourceClassNotFound` unless the class exists.
pub async fn require(conn: &impl ConnectionTrait, name: &str) -> Result<()> {
    match get(conn, name).await? {
        Some(_) => Ok(()),
        None => Err(PlacementError::ResourceClassNotFound(name.to_string())),
    }
}

/// `ResourceClassNotFound` (for the first, by name) unless all exist.
pub async fn require_all(conn: &impl ConnectionTrait, names: &std::collections::BTreeSet<String>) -> Result<()> {
    if names.is_empty() {
        return Ok(());
    }
    let known: std::collections::BTreeSet<String> = resource_class::Entity::find()
        .select_only()
        .column(resource_class::Column::Name)
        .filter(resource_class::Column::Name.is_in(names.iter().cloned()))
        .into_tuple::<String>()
        .all(conn)
        .await?
        .into_iter()
        .collect();
    match names.iter().find(|n| !known.contains(*n)) {
        Some(missing) => Err(PlacementError::ResourceClassNotFound(missing.clone())),
        None => Ok(()),
    }
}

pub fn is_standard(rc: &ResourceClass) -> bool {
    rc.id < FIRST_CUSTOM_RESOURCE_CLASS_ID
}

/// Create a custom class; false when it already exists.
pub async fn create(tx: &mut Tx, name: &str) -> Result<bool> {
    if get(tx.conn(), name).await?.is_some() {
        return Ok(false);
    }
    let max: Option<i64> = resource_class::Entity::find()
        .select_only()
        .column_as(resource_class::Column::Id.max(), "max")
        .into_tuple::<Option<i64>>()
        .one(tx.conn())
        .await?
        .flatten();
    let id = max.unwrap_or(0).max(FIRST_CUSTOM_RESOURCE_CLASS_ID - 1) + 1;
    let now = now_us();
    let r = resource_class::ActiveModel {
        id: Set(id),
        name: Set(name.to_string()),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(tx.conn())
    .await;
    match r {
        Ok(_) => {
            tx.names_changed();
            Ok(true)
        }
        Err(e) if stratus_db::is_unique_violation(&e) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Rename a custom class (microversions 1.2 to 1.6); its inventories and
/// allocations follow. False when the new name is taken.
pub async fn rename(tx: &mut Tx, rc: &ResourceClass, new_name: &str) -> Result<bool> {
    if rc.name == new_name {
        return Ok(true);
    }
    if get(tx.conn(), new_name).await?.is_some() {
        return Ok(false);
    }
    resource_class::Entity::update_many()
        .col_expr(resource_class::Column::Name, Expr::value(new_name))
        .col_expr(resource_class::Column::UpdatedAt, Expr::value(now_us()))
        .filter(resource_class::Column::Id.eq(rc.id))
        .exec(tx.conn())
        .await?;
    let providers: Vec<i64> = inventory::Entity::find()
        .select_only()
        .column(inventory::Column::ResourceProviderId)
        .filter(inventory::Column::ResourceClass.eq(&rc.name))
        .into_tuple()
        .all(tx.conn())
        .await?;
    inventory::Entity::update_many()
        .col_expr(inventory::Column::ResourceClass, Expr::value(new_name))
        .filter(inventory::Column::ResourceClass.eq(&rc.name))
        .exec(tx.conn())
        .await?;
    allocation::Entity::update_many()
        .col_expr(allocation::Column::ResourceClass, Expr::value(new_name))
        .filter(allocation::Column::ResourceClass.eq(&rc.name))
        .exec(tx.conn())
        .await?;
    for p in providers {
        tx.touch(p);
    }
    tx.names_changed();
    Ok(true)
}

/// Delete a custom class; `Err(InUse)` when an inventory has it.
pub enum DeleteOutcome {
    Deleted,
    InUse,
}

pub async fn delete(tx: &mut Tx, rc: &ResourceClass) -> Result<DeleteOutcome> {
    let used = inventory::Entity::find()
        .select_only()
        .column(inventory::Column::Id)
        .filter(inventory::Column::ResourceClass.eq(&rc.name))
        .into_tuple::<i64>()
        .one(tx.conn())
        .await?;
    if used.is_some() {
        return Ok(DeleteOutcome::InUse);
    }
    resource_class::Entity::delete_by_id(rc.id).exec(tx.conn()).await?;
    tx.names_changed();
    Ok(DeleteOutcome::Deleted)
}
