//! `POST /reshaper` (1.30): replace inventories and move allocations between
//! providers in one transaction, as a compute host does when it splits its
//! resources into a tree.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State as AxState;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::post;
use serde_json::Value;
use stratus_core::Microversion;
use stratus_core::auth::Auth;

use super::allocations::{consumer_allocations, post_schema, rules};
use super::inventories::{inventory_from, put_all_schema};
use super::{empty, int, json_body, since};
use crate::State;
use crate::error::{PlacementError, Result, bad, bad_code, codes, conflict, conflict_code};
use crate::model::Inventory;
use crate::policies as p;
use crate::query::normalize_uuid;
use crate::schema::{Schema, UUID_PATTERN};
use crate::store::allocations::ConsumerAllocations;
use crate::store::{Tx, providers, reshape};

pub fn routes() -> Router<State> {
    Router::new().route("/reshaper", post(reshape_handler))
}

fn schema(mv: Microversion) -> Schema {
    // allocations as POST /allocations takes them (1.28 at least), maybe empty
    let allocations_mv = if mv.at_least(1, 34) { mv } else { Microversion(1, 28) };
    let mut allocations = post_schema(allocations_mv);
    allocations = allocations.min_props(0);
    Schema::object()
        .prop("inventories", Schema::object().pattern_prop(UUID_PATTERN, put_all_schema()).min_props(1).closed())
        .prop("allocations", allocations)
        .required(&["inventories", "allocations"])
        .closed()
}

async fn reshape_handler(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    since(mv, 1, 30)?;
    super::require_json(&headers)?;
    svc.enforce(&ctx, p::RESHAPE)?;
    let data = json_body(&headers, &body, &schema(mv))?;
    let mut inventories = Vec::new();
    if let Some(m) = data["inventories"].as_object() {
        for (uuid, v) in m {
            let uuid = normalize_uuid(uuid);
            let Some(rp) = providers::get(&svc.db.read, &uuid).await? else {
                return Err(bad_code(
                    format!(
                        "Resource provider {uuid} in inventories not found: No resource provider with uuid {uuid} found"
                    ),
                    codes::RESOURCE_PROVIDER_NOT_FOUND,
                ));
            };
            let given = int(&v["resource_provider_generation"]);
            if given != rp.generation {
                return Err(conflict_code(
                    format!(
                        "resource provider generation conflict for provider {uuid}: actual: {}, given: {given}",
                        rp.generation
                    ),
                    codes::CONCURRENT_UPDATE,
                ));
            }
            let invs: Vec<Inventory> = v["inventories"]
                .as_object()
                .map(|m| m.iter().map(|(rc, x)| inventory_from(rc, x)).collect())
                .unwrap_or_default();
            inventories.push((rp, given, invs));
        }
    }
    let allocations: Vec<ConsumerAllocations> = data["allocations"]
        .as_object()
        .map(|m| m.iter().map(|(c, v): (&String, &Value)| consumer_allocations(&normalize_uuid(c), v, mv)).collect())
        .unwrap_or_default();
    let mut tx = Tx::begin(&svc.db).await?;
    reshape::reshape(&mut tx, &inventories, &allocations, rules(mv)).await.map_err(|e| match e {
        PlacementError::ConcurrentUpdate => conflict_code(format!("update conflict: {e}"), codes::CONCURRENT_UPDATE),
        PlacementError::ResourceClassNotFound(_) => bad(format!("malformed reshaper data: {e}")),
        PlacementError::InventoryInUse { .. } => conflict_code(format!("update conflict: {e}"), codes::INVENTORY_INUSE),
        PlacementError::InvalidInventory { .. }
        | PlacementError::CapacityExceeded { .. }
        | PlacementError::ConstraintsViolated { .. } => conflict(format!("Unable to allocate inventory: {e}")),
        other => other,
    })?;
    tx.commit().await?;
    Ok(empty(StatusCode::NO_CONTENT, None))
}
