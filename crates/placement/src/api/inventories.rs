//! `/resource_providers/{uuid}/inventories[/{resource_class}]`: the whole
//! inventory (get, set, delete) or one class of it (create, get, update,
//! delete), with generation checks and the in-use rule.

use std::collections::BTreeMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value, json};
use stratus_core::Microversion;
use stratus_core::auth::Auth;

use super::{accept_json, int, json_body, json_response, ok};
use crate::State;
use crate::error::{PlacementError, Result, bad, codes, conflict_code, not_found, provider_not_found, status};
use crate::model::{Inventory, MAX_INT, MAX_RATIO};
use crate::policies as p;
use crate::schema::{RC_PATTERN, Schema};
use crate::store::Tx;
use crate::store::inventories::{self as store, Record, UpdateOutcome};
use crate::store::providers::Provider;

pub fn routes() -> Router<State> {
    Router::new()
        .route("/resource_providers/{uuid}/inventories", get(list).post(create).put(set_all).delete(delete_all))
        .route("/resource_providers/{uuid}/inventories/{rc}", get(show).put(update).delete(delete))
}

fn amount() -> Schema {
    Schema::integer().max(MAX_INT as f64).min(1.0)
}

/// `BASE_INVENTORY_SCHEMA`: one inventory with the provider's generation.
fn base_schema() -> Schema {
    Schema::object()
        .prop("resource_provider_generation", Schema::integer())
        .prop("total", amount())
        .prop("reserved", Schema::integer().max(MAX_INT as f64).min(0.0))
        .prop("min_unit", amount())
        .prop("max_unit", amount())
        .prop("step_size", amount())
        .prop("allocation_ratio", Schema::number().max(MAX_RATIO))
        .required(&["total", "resource_provider_generation"])
        .closed()
}

fn post_schema() -> Schema {
    let mut s = base_schema().prop("resource_class", Schema::string().matching(RC_PATTERN));
    s = s.without("resource_provider_generation").prop("resource_provider_generation", Schema::integer());
    s.required(&["total", "resource_class"])
}

fn record_schema() -> Schema {
    base_schema()
        .without("resource_provider_generation")
        .prop("resource_provider_generation", Schema::integer())
        .required(&["total"])
}

pub fn put_all_schema() -> Schema {
    Schema::object()
        .prop("resource_provider_generation", Schema::integer())
        .prop("inventories", Schema::object().pattern_prop(RC_PATTERN, record_schema()))
        .required(&["resource_provider_generation", "inventories"])
        .closed()
}

/// An inventory from a validated record, placement's defaults filled in.
pub fn inventory_from(rc: &str, v: &Value) -> Inventory {
    let mut inv = Inventory::new(rc, int(&v["total"]));
    if let Some(x) = v.get("reserved") {
        inv.reserved = int(x);
    }
    if let Some(x) = v.get("min_unit") {
        inv.min_unit = int(x);
    }
    if let Some(x) = v.get("max_unit") {
        inv.max_unit = int(x);
    }
    if let Some(x) = v.get("step_size") {
        inv.step_size = int(x);
    }
    if let Some(x) = v.get("allocation_ratio") {
        inv.allocation_ratio = x.as_f64().unwrap_or(1.0);
    }
    inv
}

pub fn inventory_view(r: &Record) -> Value {
    json!({
        "total": r.total,
        "reserved": r.reserved,
        "min_unit": r.min_unit,
        "max_unit": r.max_unit,
        "step_size": r.step_size,
        "allocation_ratio": r.allocation_ratio,
    })
}

fn new_view(inv: &Inventory, generation: i64) -> Value {
    json!({
        "total": inv.total,
        "reserved": inv.reserved,
        "min_unit": inv.min_unit,
        "max_unit": inv.max_unit,
        "step_size": inv.step_size,
        "allocation_ratio": inv.allocation_ratio,
        "resource_provider_generation": generation,
    })
}

fn lookup_failed(uuid: &str) -> PlacementError {
    not_found(format!("No resource provider with uuid {uuid} found : No resource provider with uuid {uuid} found"))
}

async fn send_all(svc: &crate::PlacementService, rp: &Provider, generation: i64, mv: Microversion) -> Result<Response> {
    let records = store::list(&svc.db.read, rp.id).await?;
    let modified = records.iter().map(|r| r.updated_at).max();
    let invs: Map<String, Value> = records.iter().map(|r| (r.resource_class.clone(), inventory_view(r))).collect();
    Ok(ok(&json!({"resource_provider_generation": generation, "inventories": invs}), mv, modified))
}

async fn list(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    headers: HeaderMap,
    Path(uuid): Path<String>,
) -> Result<Response> {
    accept_json(&headers)?;
    svc.enforce(&ctx, p::INV_LIST)?;
    let rp = svc.provider(&uuid, || lookup_failed(&uuid)).await?;
    send_all(&svc, &rp, rp.generation, mv).await
}

async fn show(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    headers: HeaderMap,
    Path((uuid, rc)): Path<(String, String)>,
) -> Result<Response> {
    accept_json(&headers)?;
    svc.enforce(&ctx, p::INV_SHOW)?;
    let rp = svc.provider(&uuid, || lookup_failed(&uuid)).await?;
    let records = store::list(&svc.db.read, rp.id).await?;
    let Some(r) = records.iter().find(|r| r.resource_class == rc) else {
        return Err(not_found(format!("No inventory of class {rc} for {uuid}")));
    };
    let mut v = inventory_view(r);
    v["resource_provider_generation"] = json!(rp.generation);
    Ok(ok(&v, mv, Some(r.updated_at)))
}

async fn create(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    headers: HeaderMap,
    Path(uuid): Path<String>,
    body: Bytes,
) -> Result<Response> {
    svc.enforce(&ctx, p::INV_CREATE)?;
    let rp = svc.provider(&uuid, || provider_not_found(&uuid)).await?;
    let data = json_body(&headers, &body, &post_schema())?;
    let rc = data["resource_class"].as_str().unwrap_or_default().to_string();
    let inv = inventory_from(&rc, &data);
    let unable = |e: PlacementError| bad(format!("Unable to create inventory for resource provider {uuid}: {e}"));
    inv.check_capacity(mv, &rp.uuid).map_err(unable)?;
    let mut tx = Tx::begin(&svc.db).await?;
    let generation = match store::add(&mut tx, &rp, &inv).await {
        Ok(g) => g,
        Err(PlacementError::ConcurrentUpdate) => {
            return Err(conflict_code(
                "Update conflict: Another thread concurrently updated the data. Please retry your update",
                codes::CONCURRENT_UPDATE,
            ));
        }
        Err(e @ PlacementError::ResourceClassNotFound(_)) => return Err(unable(e)),
        Err(e) => return Err(e),
    };
    tx.commit().await?;
    let mut resp = json_response(StatusCode::CREATED, &new_view(&inv, generation), mv, None);
    if let Ok(v) = axum::http::HeaderValue::from_str(&format!("/resource_providers/{uuid}/inventories/{rc}")) {
        resp.headers_mut().insert(axum::http::header::LOCATION, v);
    }
    Ok(resp)
}

async fn set_all(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    headers: HeaderMap,
    Path(uuid): Path<String>,
    body: Bytes,
) -> Result<Response> {
    svc.enforce(&ctx, p::INV_UPDATE)?;
    let rp = svc.provider(&uuid, || provider_not_found(&uuid)).await?;
    let data = json_body(&headers, &body, &put_all_schema())?;
    let expected = int(&data["resource_provider_generation"]);
    if expected != rp.generation {
        return Err(conflict_code("resource provider generation conflict", codes::CONCURRENT_UPDATE));
    }
    let invs: Vec<Inventory> = data["inventories"]
        .as_object()
        .map(|m| m.iter().map(|(rc, v)| inventory_from(rc, v)).collect())
        .unwrap_or_default();
    for inv in &invs {
        inv.check_capacity(mv, &rp.uuid)
            .map_err(|e| bad(format!("Unable to update inventory for resource provider {uuid}: {e}")))?;
    }
    let mut tx = Tx::begin(&svc.db).await?;
    let generation = store::set_all(&mut tx, &rp, Some(expected), &invs).await.map_err(|e| set_error(&uuid, e))?;
    tx.commit().await?;
    let records: BTreeMap<String, Value> = invs
        .iter()
        .map(|i| {
            (i.resource_class.clone(), {
                let mut v = new_view(i, generation);
                if let Some(o) = v.as_object_mut() {
                    o.remove("resource_provider_generation");
                }
                v
            })
        })
        .collect();
    Ok(ok(&json!({"resource_provider_generation": generation, "inventories": records}), mv, None))
}

/// How `PUT .../inventories` words what the store refused.
pub fn set_error(uuid: &str, e: PlacementError) -> PlacementError {
    match e {
        PlacementError::ResourceClassNotFound(_) => {
            bad(format!("Unknown resource class in inventory for resource provider {uuid}: {e}"))
        }
        PlacementError::ConcurrentUpdate => conflict_code(format!("update conflict: {e}"), codes::CONCURRENT_UPDATE),
        PlacementError::InventoryInUse { .. } => conflict_code(format!("update conflict: {e}"), codes::INVENTORY_INUSE),
        other => other,
    }
}

async fn delete_all(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    Path(uuid): Path<String>,
) -> Result<Response> {
    if !mv.at_least(1, 5) {
        return Err(status(StatusCode::METHOD_NOT_ALLOWED, "The method specified is not allowed for this resource."));
    }
    svc.enforce(&ctx, p::INV_DELETE)?;
    let rp = svc.provider(&uuid, || provider_not_found(&uuid)).await?;
    let mut tx = Tx::begin(&svc.db).await?;
    match store::set_all(&mut tx, &rp, None, &[]).await {
        Ok(_) => {}
        Err(PlacementError::ConcurrentUpdate) => {
            return Err(conflict_code(
                format!(
                    "Unable to delete inventory for resource provider {uuid} because the inventory was updated by another process. Please retry your request."
                ),
                codes::CONCURRENT_UPDATE,
            ));
        }
        Err(e @ PlacementError::InventoryInUse { .. }) => {
            return Err(conflict_code(e.to_string(), codes::INVENTORY_INUSE));
        }
        Err(e) => return Err(e),
    }
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn update(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    headers: HeaderMap,
    Path((uuid, rc)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response> {
    svc.enforce(&ctx, p::INV_UPDATE)?;
    let rp = svc.provider(&uuid, || provider_not_found(&uuid)).await?;
    let data = json_body(&headers, &body, &base_schema())?;
    let expected = int(&data["resource_provider_generation"]);
    if expected != rp.generation {
        return Err(conflict_code("resource provider generation conflict", codes::CONCURRENT_UPDATE));
    }
    let inv = inventory_from(&rc, &data);
    inv.check_capacity(mv, &rp.uuid)
        .map_err(|e| bad(format!("Unable to update inventory for resource provider {uuid}: {e}")))?;
    let mut tx = Tx::begin(&svc.db).await?;
    let outcome = match store::update_one(&mut tx, &rp, expected, &inv).await {
        Ok(o) => o,
        Err(e @ PlacementError::ResourceClassNotFound(_)) => return Err(not_found(e.to_string())),
        Err(PlacementError::ConcurrentUpdate) => {
            return Err(conflict_code(
                "update conflict: Another thread concurrently updated the data. Please retry your update",
                codes::CONCURRENT_UPDATE,
            ));
        }
        Err(e) => return Err(e),
    };
    let generation = match outcome {
        UpdateOutcome::Updated(g) => g,
        UpdateOutcome::NoSuchInventory => {
            return Err(bad(format!(
                "No inventory record with resource class for resource provider {uuid}: No inventory of class {rc} found."
            )));
        }
    };
    tx.commit().await?;
    Ok(ok(&new_view(&inv, generation), mv, None))
}

async fn delete(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    Path((uuid, rc)): Path<(String, String)>,
) -> Result<Response> {
    svc.enforce(&ctx, p::INV_DELETE)?;
    let rp = svc.provider(&uuid, || provider_not_found(&uuid)).await?;
    let mut tx = Tx::begin(&svc.db).await?;
    let deleted = match store::delete_one(&mut tx, &rp, &rc).await {
        Ok(d) => d,
        Err(e @ (PlacementError::ConcurrentUpdate | PlacementError::InventoryInUse { .. })) => {
            return Err(conflict_code(
                format!("Unable to delete inventory of class {rc}: {e}"),
                codes::CONCURRENT_UPDATE,
            ));
        }
        Err(e @ PlacementError::ResourceClassNotFound(_)) => {
            return Err(not_found(format!("No inventory of class {rc} found for delete: {e}")));
        }
        Err(e) => return Err(e),
    };
    if !deleted {
        return Err(not_found(format!(
            "No inventory of class {rc} found for delete: No inventory of class {rc} found for delete"
        )));
    }
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
