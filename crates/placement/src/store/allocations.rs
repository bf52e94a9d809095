//! Allocations and their consumers: replacing the allocations of one or more
//! consumers atomically, with placement's capacity rules, and reading them
//! back by consumer or by provider.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set};

use super::providers::{self, Provider};
use super::{Tx, now_us, resource_classes};
use crate::entity::{allocation, consumer, inventory, provider};
use crate::error::{PlacementError, Result, bad, codes, conflict_code};

pub type Consumer = consumer::Model;
pub type Allocation = allocation::Model;

/// placement's `incomplete_consumer_project_id` / `_user_id`: the owner of
/// allocations made before 1.8 without one.
pub const INCOMPLETE_CONSUMER_ID: &str = "00000000-0000-0000-0000-000000000000";

/// The allocations a client sets for one consumer.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ConsumerAllocations {
    pub consumer: String,
    pub project_id: String,
    pub user_id: String,
    /// `None`: not given (before 1.28); `Some(None)`: the consumer must be new.
    pub consumer_generation: Option<Option<i64>>,
    /// Given at 1.38 and later.
    pub consumer_type: Option<String>,
    /// provider uuid -> (resource class -> amount); empty: remove them all.
    pub allocations: BTreeMap<String, BTreeMap<String, i64>>,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct WriteRules {
    /// 1.28 and later: consumer generations are checked.
    pub consumer_generations: bool,
    /// 1.38 and later: the consumer type is recorded.
    pub consumer_types: bool,
}

pub async fn consumer(conn: &impl ConnectionTrait, uuid: &str) -> Result<Option<Consumer>> {
    Ok(consumer::Entity::find_by_id(uuid.to_string()).one(conn).await?)
}

/// The allocations of a consumer with their providers.
pub async fn by_consumer(conn: &impl ConnectionTrait, uuid: &str) -> Result<Vec<(Allocation, Provider)>> {
    let allocs = allocation::Entity::find()
        .filter(allocation::Column::ConsumerId.eq(uuid))
        .order_by_asc(allocation::Column::Id)
        .all(conn)
        .await?;
    let ids: BTreeSet<i64> = allocs.iter().map(|a| a.resource_provider_id).collect();
    let mut provs = HashMap::new();
    for id in ids {
        if let Some(p) = providers::get_by_id(conn, id).await? {
            provs.insert(id, p);
        }
    }
    Ok(allocs.into_iter().filter_map(|a| provs.get(&a.resource_provider_id).cloned().map(|p| (a, p))).collect())
}

/// The allocations against a provider, with each consumer's generation.
pub async fn by_provider(conn: &impl ConnectionTrait, rp_id: i64) -> Result<Vec<(Allocation, Option<i64>)>> {
    let allocs = allocation::Entity::find()
        .filter(allocation::Column::ResourceProviderId.eq(rp_id))
        .order_by_asc(allocation::Column::Id)
        .all(conn)
        .await?;
    let uuids: BTreeSet<String> = allocs.iter().map(|a| a.consumer_id.clone()).collect();
    let mut gens = HashMap::new();
    let uuids: Vec<String> = uuids.into_iter().collect();
    for chunk in uuids.chunks(500) {
        for c in consumer::Entity::find().filter(consumer::Column::Uuid.is_in(chunk.iter().cloned())).all(conn).await? {
            gens.insert(c.uuid, c.generation);
        }
    }
    Ok(allocs
        .into_iter()
        .map(|a| {
            let g = gens.get(&a.consumer_id).copied();
            (a, g)
        })
        .collect())
}

/// Find or create each consumer, checking consumer generations (1.28+).
async fn ensure_consumers(tx: &Tx, items: &[ConsumerAllocations], rules: WriteRules) -> Result<()> {
    let now = now_us();
    for item in items {
        let given = item.consumer_generation.flatten();
        match consumer(tx.conn(), &item.consumer).await? {
            Some(c) => {
                if rules.consumer_generations && given != Some(c.generation) {
                    let got = given.map(|g| g.to_string()).unwrap_or_else(|| "None".into());
                    return Err(conflict_code(
                        format!("consumer generation conflict - expected {} but got {got}", c.generation),
                        codes::CONCURRENT_UPDATE,
                    ));
                }
                let ctype = if rules.consumer_types { item.consumer_type.clone() } else { c.consumer_type.clone() };
                if c.project_id != item.project_id || c.user_id != item.user_id || c.consumer_type != ctype {
                    consumer::Entity::update_many()
                        .col_expr(consumer::Column::ProjectId, Expr::value(item.project_id.clone()))
                        .col_expr(consumer::Column::UserId, Expr::value(item.user_id.clone()))
                        .col_expr(consumer::Column::ConsumerType, Expr::value(ctype))
                        .col_expr(consumer::Column::UpdatedAt, Expr::value(now))
                        .filter(consumer::Column::Uuid.eq(&item.consumer))
                        .exec(tx.conn())
                        .await?;
                }
            }
            None => {
                if rules.consumer_generations
                    && let Some(g) = given
                {
                    return Err(conflict_code(
                        format!("consumer generation conflict - expected null but got {g}"),
                        codes::CONCURRENT_UPDATE,
                    ));
                }
                consumer::ActiveModel {
                    uuid: Set(item.consumer.clone()),
                    project_id: Set(item.project_id.clone()),
                    user_id: Set(item.user_id.clone()),
                    consumer_type: Set(if rules.consumer_types { item.consumer_type.clone() } else { None }),
                    generation: Set(0),
                    created_at: Set(now),
                    updated_at: Set(now),
                }
                .insert(tx.conn())
                .await?;
            }
        }
    }
    Ok(())
}

/// One allocation to write (`used == 0`: one to remove).
struct Wanted {
    rp: Provider,
    consumer: String,
    rc: String,
    used: i64,
}

/// Sum of `used` per (provider id, class) among `rps` x `rcs`.
async fn usage_of(
    conn: &impl ConnectionTrait,
    rps: &BTreeSet<i64>,
    rcs: &BTreeSet<String>,
) -> Result<HashMap<(i64, String), i64>> {
    let mut out: HashMap<(i64, String), i64> = HashMap::new();
    let rps: Vec<i64> = rps.iter().copied().collect();
    for chunk in rps.chunks(500) {
        let rows = allocation::Entity::find()
            .filter(allocation::Column::ResourceProviderId.is_in(chunk.iter().copied()))
            .filter(allocation::Column::ResourceClass.is_in(rcs.iter().cloned()))
            .all(conn)
            .await?;
        for r in rows {
            let e = out.entry((r.resource_provider_id, r.resource_class)).or_default();
            *e = e.saturating_add(r.used);
        }
    }
    Ok(out)
}

/// Replace the allocations of every consumer in `items` in one transaction:
/// all of them or none. Errors: 409 on a consumer generation conflict, 400
/// (`bad`) for a provider that does not exist, `ResourceClassNotFound`,
/// `InvalidInventory`, `ConstraintsViolated`, `CapacityExceeded`.
pub async fn replace(tx: &mut Tx, items: &[ConsumerAllocations], rules: WriteRules) -> Result<()> {
    ensure_consumers(tx, items, rules).await?;

    // the providers named must exist
    let uuids: BTreeSet<String> = items.iter().flat_map(|i| i.allocations.keys().cloned()).collect();
    let uuids: Vec<String> = uuids.into_iter().collect();
    let provs = providers::get_many(tx.conn(), &uuids).await?;
    for item in items {
        for rp in item.allocations.keys() {
            if !provs.contains_key(rp) {
                return Err(bad(format!("Allocation for resource provider '{rp}' that does not exist.")));
            }
        }
    }

    // what to write: the given allocations, and a zero for each existing
    // allocation of a consumer whose allocations are emptied
    let mut wanted: Vec<Wanted> = Vec::new();
    for item in items {
        if item.allocations.is_empty() {
            for (a, p) in by_consumer(tx.conn(), &item.consumer).await? {
                wanted.push(Wanted { rp: p, consumer: item.consumer.clone(), rc: a.resource_class, used: 0 });
            }
        } else {
            for (rp, resources) in &item.allocations {
                for (rc, amount) in resources {
                    if let Some(p) = provs.get(rp) {
                        wanted.push(Wanted {
                            rp: p.clone(),
                            consumer: item.consumer.clone(),
                            rc: rc.clone(),
                            used: *amount,
                        });
                    }
                }
            }
        }
    }
    let rcs: BTreeSet<String> = wanted.iter().map(|w| w.rc.clone()).collect();
    resource_classes::require_all(tx.conn(), &rcs).await?;
    let rp_ids: BTreeSet<i64> = wanted.iter().map(|w| w.rp.id).collect();
    let prev_usage = usage_of(tx.conn(), &rp_ids, &rcs).await?;

    // a clean slate for the consumers of the request
    let consumers: Vec<String> = items.iter().map(|i| i.consumer.clone()).collect();
    let mut usage = prev_usage.clone();
    for chunk in consumers.chunks(500) {
        let before = allocation::Entity::find()
            .filter(allocation::Column::ConsumerId.is_in(chunk.iter().cloned()))
            .all(tx.conn())
            .await?;
        if before.is_empty() {
            continue;
        }
        for a in before {
            // their providers' usage changes even where no generation is bumped
            tx.touch(a.resource_provider_id);
            if let Some(u) = usage.get_mut(&(a.resource_provider_id, a.resource_class)) {
                *u -= a.used;
            }
        }
        allocation::Entity::delete_many()
            .filter(allocation::Column::ConsumerId.is_in(chunk.iter().cloned()))
            .exec(tx.conn())
            .await?;
    }

    check_capacity(tx.conn(), &wanted, &rp_ids, &usage, &rcs, &prev_usage).await?;

    let now = now_us();
    let rows: Vec<allocation::ActiveModel> = wanted
        .iter()
        .filter(|w| w.used > 0)
        .map(|w| allocation::ActiveModel {
            resource_provider_id: Set(w.rp.id),
            consumer_id: Set(w.consumer.clone()),
            resource_class: Set(w.rc.clone()),
            used: Set(w.used),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        })
        .collect();
    for chunk in rows.chunks(200) {
        allocation::Entity::insert_many(chunk.to_vec()).exec_without_returning(tx.conn()).await?;
    }

    // generations: every provider involved, every consumer that had or has
    // allocations (the write lock is held: nobody moved them since we read)
    let ids: Vec<i64> = rp_ids.iter().copied().collect();
    for chunk in ids.chunks(500) {
        provider::Entity::update_many()
            .col_expr(provider::Column::Generation, Expr::col(provider::Column::Generation).add(1))
            .col_expr(provider::Column::UpdatedAt, Expr::value(now))
            .filter(provider::Column::Id.is_in(chunk.iter().copied()))
            .exec(tx.conn())
            .await?;
    }
    for id in &ids {
        tx.touch(*id);
    }
    let visited: Vec<String> =
        wanted.iter().map(|w| w.consumer.clone()).collect::<BTreeSet<String>>().into_iter().collect();
    for chunk in visited.chunks(500) {
        consumer::Entity::update_many()
            .col_expr(consumer::Column::Generation, Expr::col(consumer::Column::Generation).add(1))
            .col_expr(consumer::Column::UpdatedAt, Expr::value(now))
            .filter(consumer::Column::Uuid.is_in(chunk.iter().cloned()))
            .exec(tx.conn())
            .await?;
    }
    // a consumer whose allocations were emptied goes (the others have some)
    let emptied: Vec<String> = items.iter().filter(|i| i.allocations.is_empty()).map(|i| i.consumer.clone()).collect();
    delete_consumers_without_allocations(tx, &emptied).await?;
    Ok(())
}

async fn delete_consumers_without_allocations(tx: &Tx, consumers: &[String]) -> Result<()> {
    for c in consumers {
        let any = allocation::Entity::find().filter(allocation::Column::ConsumerId.eq(c)).one(tx.conn()).await?;
        if any.is_none() {
            consumer::Entity::delete_by_id(c.clone()).exec(tx.conn()).await?;
        }
    }
    Ok(())
}

/// placement's `_check_capacity_exceeded`, after the consumers' old
/// allocations are gone: every provider must have inventory of the classes
/// asked, every amount must respect min_unit, max_unit and step_size, and
/// usage must stay within `(total - reserved) * allocation_ratio` unless the
/// change makes an existing overage no worse.
async fn check_capacity(
    conn: &impl ConnectionTrait,
    wanted: &[Wanted],
    rp_ids: &BTreeSet<i64>,
    usage: &HashMap<(i64, String), i64>,
    rcs: &BTreeSet<String>,
    prev_usage: &HashMap<(i64, String), i64>,
) -> Result<()> {
    if wanted.is_empty() {
        return Ok(());
    }
    let mut invs: HashMap<(i64, String), inventory::Model> = HashMap::new();
    let ids: Vec<i64> = rp_ids.iter().copied().collect();
    for chunk in ids.chunks(500) {
        let rows = inventory::Entity::find()
            .filter(inventory::Column::ResourceProviderId.is_in(chunk.iter().copied()))
            .filter(inventory::Column::ResourceClass.is_in(rcs.iter().cloned()))
            .all(conn)
            .await?;
        for r in rows {
            invs.insert((r.resource_provider_id, r.resource_class.clone()), r);
        }
    }
    let with_inv: BTreeSet<i64> = invs.keys().map(|(rp, _)| *rp).collect();
    let mut missing: Vec<&str> = Vec::new();
    let mut seen = BTreeSet::new();
    for w in wanted {
        if !with_inv.contains(&w.rp.id) && seen.insert(w.rp.id) {
            missing.push(&w.rp.uuid);
        }
    }
    if !missing.is_empty() {
        return Err(PlacementError::InvalidInventory {
            classes: rcs.iter().cloned().collect::<Vec<_>>().join(", "),
            provider: missing.join(", "),
        });
    }
    let mut needed_all: HashMap<(i64, &str), i64> = HashMap::new();
    for w in wanted {
        let e = needed_all.entry((w.rp.id, w.rc.as_str())).or_default();
        *e = e.saturating_add(w.used);
        if w.used == 0 {
            continue;
        }
        let key = (w.rp.id, w.rc.clone());
        let Some(inv) = invs.get(&key) else {
            return Err(PlacementError::InvalidInventory { classes: w.rc.clone(), provider: w.rp.uuid.clone() });
        };
        if w.used < inv.min_unit || w.used > inv.max_unit || w.used % inv.step_size.max(1) != 0 {
            tracing::warn!(rc = %w.rc, provider = %w.rp.uuid, requested = w.used, "allocation violates min_unit, max_unit or step_size");
            return Err(PlacementError::ConstraintsViolated { rc: w.rc.clone(), provider: w.rp.uuid.clone() });
        }
        let used = usage.get(&key).copied().unwrap_or(0);
        let capacity = (inv.total - inv.reserved) as f64 * inv.allocation_ratio;
        let all = needed_all.get(&(w.rp.id, w.rc.as_str())).copied().unwrap_or(0);
        if capacity < used.saturating_add(w.used) as f64 || capacity < used.saturating_add(all) as f64 {
            let prev = prev_usage.get(&key).copied();
            if prev.is_some_and(|p| used.saturating_add(all) <= p) {
                tracing::warn!(rc = %w.rc, provider = %w.rp.uuid, "over capacity, but the allocation reduces the overage");
            } else {
                return Err(PlacementError::CapacityExceeded { rc: w.rc.clone(), provider: w.rp.uuid.clone() });
            }
        }
    }
    Ok(())
}

/// Remove all the allocations of a consumer; false when it had none.
pub async fn delete_for_consumer(tx: &mut Tx, uuid: &str) -> Result<bool> {
    let allocs = allocation::Entity::find().filter(allocation::Column::ConsumerId.eq(uuid)).all(tx.conn()).await?;
    if allocs.is_empty() {
        return Ok(false);
    }
    allocation::Entity::delete_many().filter(allocation::Column::ConsumerId.eq(uuid)).exec(tx.conn()).await?;
    consumer::Entity::delete_by_id(uuid.to_string()).exec(tx.conn()).await?;
    for a in allocs {
        tx.touch(a.resource_provider_id);
    }
    Ok(true)
}
