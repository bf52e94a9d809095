//! The reshaper: inventories replaced and allocations moved in one go.

use super::allocations::{self, ConsumerAllocations, WriteRules};
use super::providers::{self, Provider};
use super::{Tx, inventories, resource_classes};
use crate::error::{PlacementError, Result};
use crate::model::Inventory;

/// placement's `reshape`: first every provider gets the union of its old and
/// new inventory (so no allocation loses its inventory), then the
/// allocations are replaced, then each provider gets exactly its new
/// inventory. Generations are checked against the client's.
pub async fn reshape(
    tx: &mut Tx,
    invs: &[(Provider, i64, Vec<Inventory>)],
    allocs: &[ConsumerAllocations],
    rules: WriteRules,
) -> Result<()> {
    for (rp, expected, list) in invs {
        let Some(generation) = providers::generation(tx.conn(), rp.id).await? else {
            return Err(PlacementError::ConcurrentUpdate);
        };
        if generation != *expected {
            return Err(PlacementError::ConcurrentUpdate);
        }
        for inv in list {
            resource_classes::require(tx.conn(), &inv.resource_class).await?;
        }
        if list.is_empty() {
            continue;
        }
        let mut interim: Vec<Inventory> = inventories::list(tx.conn(), rp.id)
            .await?
            .into_iter()
            .map(|r| Inventory {
                resource_class: r.resource_class,
                total: r.total,
                reserved: r.reserved,
                min_unit: r.min_unit,
                max_unit: r.max_unit,
                step_size: r.step_size,
                allocation_ratio: r.allocation_ratio,
            })
            .collect();
        for inv in list {
            match interim.iter_mut().find(|i| i.resource_class == inv.resource_class) {
                Some(i) => *i = inv.clone(),
                None => interim.push(inv.clone()),
            }
        }
        inventories::replace(tx, rp, &interim).await?;
        providers::bump_generation(tx, rp.id, generation).await?;
    }
    allocations::replace(tx, allocs, rules).await?;
    for (rp, _, list) in invs {
        let Some(generation) = providers::generation(tx.conn(), rp.id).await? else {
            return Err(PlacementError::ConcurrentUpdate);
        };
        inventories::replace(tx, rp, list).await?;
        providers::bump_generation(tx, rp.id, generation).await?;
    }
    Ok(())
}
