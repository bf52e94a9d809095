//! Inventories of a provider: set all, add, update or delete one, each
//! checked against allocations and bumping the provider's generation.

use std::collections::{BTreeMap, BTreeSet};

use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set};

use super::providers::{self, Provider};
use super::{Tx, now_us, resource_classes};
use crate::entity::{allocation, inventory};
use crate::error::{PlacementError, Result};
use crate::model::Inventory;

pub type Record = inventory::Model;

pub async fn list(conn: &impl ConnectionTrait, rp_id: i64) -> Result<Vec<Record>> {
    Ok(inventory::Entity::find()
        .filter(inventory::Column::ResourceProviderId.eq(rp_id))
        .order_by_asc(inventory::Column::Id)
        .all(conn)
        .await?)
}

/// Resource classes with allocations on this provider, among `classes`.
async fn in_use(conn: &impl ConnectionTrait, rp_id: i64, classes: &[String]) -> Result<Vec<String>> {
    if classes.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<String> = allocation::Entity::find()
        .select_only()
        .column(allocation::Column::ResourceClass)
        .filter(allocation::Column::ResourceProviderId.eq(rp_id))
        .filter(allocation::Column::ResourceClass.is_in(classes.iter().cloned()))
        .group_by(allocation::Column::ResourceClass)
        .into_tuple()
        .all(conn)
        .await?;
    Ok(rows)
}

/// Usage of one class on one provider.
pub async fn usage(conn: &impl ConnectionTrait, rp_id: i64, rc: &str) -> Result<i64> {
    let rows: Vec<i64> = allocation::Entity::find()
        .select_only()
        .column(allocation::Column::Used)
        .filter(allocation::Column::ResourceProviderId.eq(rp_id))
        .filter(allocation::Column::ResourceClass.eq(rc))
        .into_tuple()
        .all(conn)
        .await?;
    Ok(rows.iter().sum())
}

async fn insert(tx: &Tx, rp_id: i64, inv: &Inventory) -> Result<()> {
    let now = now_us();
    inventory::ActiveModel {
        resource_provider_id: Set(rp_id),
        resource_class: Set(inv.resource_class.clone()),
        total: Set(inv.total),
        reserved: Set(inv.reserved),
        min_unit: Set(inv.min_unit),
        max_unit: Set(inv.max_unit),
        step_size: Set(inv.step_size),
        allocation_ratio: Set(inv.allocation_ratio),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(tx.conn())
    .await
    .map_err(|e| if stratus_db::is_unique_violation(&e) { PlacementError::ConcurrentUpdate } else { e.into() })?;
    Ok(())
}

/// Update one existing record; false when there is none of that class.
async fn update(tx: &Tx, rp: &Provider, inv: &Inventory) -> Result<bool> {
    let used = usage(tx.conn(), rp.id, &inv.resource_class).await?;
    if used > inv.capacity() {
        tracing::warn!(provider = %rp.uuid, resource_class = %inv.resource_class, "resource provider is now over-capacity");
    }
    let r = inventory::Entity::update_many()
        .col_expr(inventory::Column::Total, Expr::value(inv.total))
        .col_expr(inventory::Column::Reserved, Expr::value(inv.reserved))
        .col_expr(inventory::Column::MinUnit, Expr::value(inv.min_unit))
        .col_expr(inventory::Column::MaxUnit, Expr::value(inv.max_unit))
        .col_expr(inventory::Column::StepSize, Expr::value(inv.step_size))
        .col_expr(inventory::Column::AllocationRatio, Expr::value(inv.allocation_ratio))
        .col_expr(inventory::Column::UpdatedAt, Expr::value(now_us()))
        .filter(inventory::Column::ResourceProviderId.eq(rp.id))
        .filter(inventory::Column::ResourceClass.eq(&inv.resource_class))
        .exec(tx.conn())
        .await?;
    Ok(r.rows_affected > 0)
}

/// The generation of `rp` now, or 404 when it went away; with `expected`, a
/// 409 when it moved since the client read it.
async fn current_generation(tx: &Tx, rp: &Provider, expected: Option<i64>) -> Result<i64> {
    let Some(generation) = providers::generation(tx.conn(), rp.id).await? else {
        return Err(crate::error::provider_not_found(&rp.uuid));
    };
    if let Some(e) = expected
        && e != generation
    {
        return Err(crate::error::conflict_code(
            "resource provider generation conflict",
            crate::error::codes::CONCURRENT_UPDATE,
        ));
    }
    Ok(generation)
}

/// Replace the whole inventory of `rp`; the new generation.
pub async fn set_all(tx: &mut Tx, rp: &Provider, expected: Option<i64>, invs: &[Inventory]) -> Result<i64> {
    let generation = current_generation(tx, rp, expected).await?;
    for inv in invs {
        resource_classes::require(tx.conn(), &inv.resource_class).await?;
    }
    replace(tx, rp, invs).await?;
    providers::bump_generation(tx, rp.id, generation).await
}

/// The inventory replacement itself, without the generation bump (the reshaper
/// replaces inventories twice in one go).
pub async fn replace(tx: &mut Tx, rp: &Provider, invs: &[Inventory]) -> Result<()> {
    let existing: BTreeSet<String> = list(tx.conn(), rp.id).await?.into_iter().map(|r| r.resource_class).collect();
    let wanted: BTreeMap<&str, &Inventory> = invs.iter().map(|i| (i.resource_class.as_str(), i)).collect();
    let to_delete: Vec<String> = existing.iter().filter(|c| !wanted.contains_key(c.as_str())).cloned().collect();
    if !to_delete.is_empty() {
        let busy = in_use(tx.conn(), rp.id, &to_delete).await?;
        if !busy.is_empty() {
            return Err(PlacementError::InventoryInUse { classes: busy.join(", "), provider: rp.uuid.clone() });
        }
        inventory::Entity::delete_many()
            .filter(inventory::Column::ResourceProviderId.eq(rp.id))
            .filter(inventory::Column::ResourceClass.is_in(to_delete))
            .exec(tx.conn())
            .await?;
    }
    for (rc, inv) in &wanted {
        if existing.contains(*rc) {
            update(tx, rp, inv).await?;
        } else {
            insert(tx, rp.id, inv).await?;
        }
    }
    tx.touch(rp.id);
    Ok(())
}

/// `POST /resource_providers/{uuid}/inventories`: add one class.
pub async fn add(tx: &mut Tx, rp: &Provider, inv: &Inventory) -> Result<i64> {
    let generation = current_generation(tx, rp, None).await?;
    resource_classes::require(tx.conn(), &inv.resource_class).await?;
    insert(tx, rp.id, inv).await?;
    providers::bump_generation(tx, rp.id, generation).await
}

/// Why updating one inventory failed, beyond the usual.
pub enum UpdateOutcome {
    Updated(i64),
    NoSuchInventory,
}

/// `PUT /resource_providers/{uuid}/inventories/{rc}`.
pub async fn update_one(tx: &mut Tx, rp: &Provider, expected: i64, inv: &Inventory) -> Result<UpdateOutcome> {
    let generation = current_generation(tx, rp, Some(expected)).await?;
    resource_classes::require(tx.conn(), &inv.resource_class).await?;
    if !update(tx, rp, inv).await? {
        return Ok(UpdateOutcome::NoSuchInventory);
    }
    Ok(UpdateOutcome::Updated(providers::bump_generation(tx, rp.id, generation).await?))
}

/// `DELETE /resource_providers/{uuid}/inventories/{rc}`: false when there was none.
pub async fn delete_one(tx: &mut Tx, rp: &Provider, rc: &str) -> Result<bool> {
    let generation = current_generation(tx, rp, None).await?;
    resource_classes::require(tx.conn(), rc).await?;
    let busy = in_use(tx.conn(), rp.id, &[rc.to_string()]).await?;
    if !busy.is_empty() {
        return Err(PlacementError::InventoryInUse { classes: busy.join(", "), provider: rp.uuid.clone() });
    }
    let r = inventory::Entity::delete_many()
        .filter(inventory::Column::ResourceProviderId.eq(rp.id))
        .filter(inventory::Column::ResourceClass.eq(rc))
        .exec(tx.conn())
        .await?;
    if r.rows_affected == 0 {
        return Ok(false);
    }
    providers::bump_generation(tx, rp.id, generation).await?;
    Ok(true)
}
