//! The aggregates (uuids, known to placement only by association) of each provider.

use std::collections::BTreeSet;

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set};

use super::Tx;
use super::providers::{self, Provider};
use crate::entity::provider_aggregate;
use crate::error::Result;

pub async fn of_provider(conn: &impl ConnectionTrait, rp_id: i64) -> Result<Vec<String>> {
    Ok(provider_aggregate::Entity::find()
        .select_only()
        .column(provider_aggregate::Column::Aggregate)
        .filter(provider_aggregate::Column::ResourceProviderId.eq(rp_id))
        .order_by_asc(provider_aggregate::Column::Aggregate)
        .into_tuple()
        .all(conn)
        .await?)
}

/// Replace the aggregates of `rp`. With `expected` (1.19 and later) the
/// generation must match and is bumped, changed or not; before 1.19 the
/// generation is left alone. Returns the new generation.
pub async fn set_for_provider(tx: &mut Tx, rp: &Provider, expected: Option<i64>, wanted: &[String]) -> Result<i64> {
    let Some(generation) = providers::generation(tx.conn(), rp.id).await? else {
        return Err(crate::error::provider_not_found(&rp.uuid));
    };
    if expected.is_some_and(|e| e != generation) {
        return Err(super::traits::generation_conflict());
    }
    let wanted: BTreeSet<String> = wanted.iter().cloned().collect();
    let existing: BTreeSet<String> = of_provider(tx.conn(), rp.id).await?.into_iter().collect();
    let to_delete: Vec<String> = existing.difference(&wanted).cloned().collect();
    if !to_delete.is_empty() {
        provider_aggregate::Entity::delete_many()
            .filter(provider_aggregate::Column::ResourceProviderId.eq(rp.id))
            .filter(provider_aggregate::Column::Aggregate.is_in(to_delete))
            .exec(tx.conn())
            .await?;
    }
    let to_add: Vec<provider_aggregate::ActiveModel> = wanted
        .difference(&existing)
        .map(|a| provider_aggregate::ActiveModel { resource_provider_id: Set(rp.id), aggregate: Set(a.clone()) })
        .collect();
    if !to_add.is_empty() {
        provider_aggregate::Entity::insert_many(to_add).exec_without_returning(tx.conn()).await?;
    }
    tx.touch(rp.id);
    if expected.is_some() { providers::bump_generation(tx, rp.id, generation).await } else { Ok(generation) }
}
