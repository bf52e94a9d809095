//! `/allocations/{consumer_uuid}` (get, put, delete), `POST /allocations`
//! (1.13: several consumers at once, as a move does) and
//! `GET /resource_providers/{uuid}/allocations`.

use std::collections::BTreeMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::{Map, Value, json};
use stratus_core::Microversion;
use stratus_core::auth::Auth;

use super::{accept_json, empty, int, json_body, ok, since};
use crate::State;
use crate::error::{PlacementError, Result, bad, codes, conflict, conflict_code, not_found};
use crate::policies as p;
use crate::query::normalize_uuid;
use crate::schema::{GROUP_PATTERN_1_33, RC_PATTERN, Schema, Ty, UUID_PATTERN, is_uuid_like};
use crate::store::Tx;
use crate::store::allocations::{self as store, ConsumerAllocations, INCOMPLETE_CONSUMER_ID, WriteRules};

pub fn routes() -> Router<State> {
    Router::new()
        .route("/allocations", post(post_allocations))
        .route("/allocations/{consumer}", get(show).put(put).delete(delete))
        .route("/resource_providers/{uuid}/allocations", get(for_provider))
}

fn resources_schema() -> Schema {
    Schema::object().min_props(1).pattern_prop(RC_PATTERN, Schema::integer().min(1.0)).closed()
}

fn id_schema() -> Schema {
    Schema::string().min_len(1).max_len(255)
}

/// The body of `PUT /allocations/{consumer}` (and of one consumer in `POST
/// /allocations`) at a microversion.
fn consumer_schema(mv: Microversion, post: bool) -> Schema {
    if !mv.at_least(1, 12) {
        let item = Schema::object()
            .prop("resource_provider", Schema::object().prop("uuid", Schema::uuid()).required(&["uuid"]).closed())
            .prop("resources", resources_schema())
            .required(&["resource_provider", "resources"])
            .closed();
        let s =
            Schema::object().prop("allocations", Schema::array(item).min_items(1)).required(&["allocations"]).closed();
        return if mv.at_least(1, 8) {
            s.prop("project_id", id_schema()).prop("user_id", id_schema()).required(&["project_id", "user_id"])
        } else {
            s
        };
    }
    let per_provider = Schema::object()
        .prop("generation", Schema::integer())
        .prop("resources", resources_schema())
        .required(&["resources"])
        .closed();
    let deletable = post || mv.at_least(1, 28);
    let mut allocations = Schema::object().pattern_prop(UUID_PATTERN, per_provider).closed();
    if !deletable {
        allocations = allocations.min_props(1);
    }
    let mut s = Schema::object()
        .prop("allocations", allocations)
        .prop("project_id", id_schema())
        .prop("user_id", id_schema())
        .required(&["allocations", "project_id", "user_id"])
        .closed();
    if mv.at_least(1, 28) {
        s = s.prop("consumer_generation", Schema::of(&[Ty::Integer, Ty::Null])).required(&["consumer_generation"]);
    }
    if mv.at_least(1, 34) {
        let mappings =
            Schema::object().min_props(1).pattern_prop(GROUP_PATTERN_1_33, Schema::array(Schema::uuid()).min_items(1));
        s = s.prop("mappings", mappings);
    }
    if mv.at_least(1, 38) {
        s = s
            .prop("consumer_type", Schema::string().matching(RC_PATTERN).min_len(1).max_len(255))
            .required(&["consumer_type"]);
    }
    s
}

pub fn post_schema(mv: Microversion) -> Schema {
    Schema::object().min_props(1).pattern_prop(UUID_PATTERN, consumer_schema(mv, true)).closed()
}

/// One consumer's allocations from a validated body.
pub fn consumer_allocations(consumer: &str, data: &Value, mv: Microversion) -> ConsumerAllocations {
    let mut allocations: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
    let resources = |v: &Value| -> BTreeMap<String, i64> {
        v.as_object().map(|m| m.iter().map(|(k, v)| (k.clone(), int(v))).collect()).unwrap_or_default()
    };
    match &data["allocations"] {
        Value::Array(items) => {
            for item in items {
                let rp = normalize_uuid(item["resource_provider"]["uuid"].as_str().unwrap_or_default());
                allocations.insert(rp, resources(&item["resources"]));
            }
        }
        Value::Object(m) => {
            for (rp, a) in m {
                allocations.insert(normalize_uuid(rp), resources(&a["resources"]));
            }
        }
        _ => {}
    }
    let (project_id, user_id) =
        match (data.get("project_id").and_then(Value::as_str), data.get("user_id").and_then(Value::as_str)) {
            (Some(p), Some(u)) => (p.to_string(), u.to_string()),
            _ => (INCOMPLETE_CONSUMER_ID.to_string(), INCOMPLETE_CONSUMER_ID.to_string()),
        };
    ConsumerAllocations {
        consumer: consumer.to_string(),
        project_id,
        user_id,
        consumer_generation: if mv.at_least(1, 28) {
            Some(data.get("consumer_generation").and_then(Value::as_i64))
        } else {
            None
        },
        consumer_type: data.get("consumer_type").and_then(Value::as_str).map(str::to_string),
        allocations,
    }
}

pub fn rules(mv: Microversion) -> WriteRules {
    WriteRules { consumer_generations: mv.at_least(1, 28), consumer_types: mv.at_least(1, 38) }
}

async fn show(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    headers: HeaderMap,
    Path(consumer): Path<String>,
) -> Result<Response> {
    accept_json(&headers)?;
    svc.enforce(&ctx, p::ALLOC_LIST)?;
    let allocs = store::by_consumer(&svc.db.read, &consumer).await?;
    let mut out: Map<String, Value> = Map::new();
    for (a, rp) in &allocs {
        let e = out.entry(rp.uuid.clone()).or_insert_with(|| json!({"resources": {}}));
        e["resources"][&a.resource_class] = json!(a.used);
        e["generation"] = json!(rp.generation);
    }
    let mut body = json!({"allocations": out});
    if !allocs.is_empty()
        && mv.at_least(1, 12)
        && let Some(c) = store::consumer(&svc.db.read, &consumer).await?
    {
        {
            body["project_id"] = json!(c.project_id);
            body["user_id"] = json!(c.user_id);
            if mv.at_least(1, 28) {
                body["consumer_generation"] = json!(c.generation);
            }
            if mv.at_least(1, 38) {
                body["consumer_type"] = json!(c.consumer_type.as_deref().unwrap_or("unknown"));
            }
        }
    }
    let modified = allocs.iter().map(|(a, _)| a.created_at).max();
    Ok(ok(&body, mv, modified))
}

async fn put(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    headers: HeaderMap,
    Path(consumer): Path<String>,
    body: Bytes,
) -> Result<Response> {
    super::require_json(&headers)?;
    svc.enforce(&ctx, p::ALLOC_UPDATE)?;
    if !is_uuid_like(&consumer) {
        return Err(bad(format!("Malformed consumer_uuid: {consumer}")));
    }
    let consumer = normalize_uuid(&consumer);
    let data = json_body(&headers, &body, &consumer_schema(mv, false))?;
    let item = consumer_allocations(&consumer, &data, mv);
    let mut tx = Tx::begin(&svc.db).await?;
    store::replace(&mut tx, std::slice::from_ref(&item), rules(mv)).await.map_err(|e| match e {
        PlacementError::ResourceClassNotFound(_) => {
            bad(format!("Unable to allocate inventory for consumer {consumer}: {e}"))
        }
        other => write_error(other),
    })?;
    tx.commit().await?;
    Ok(empty(StatusCode::NO_CONTENT, None))
}

/// How allocation writes word what the store refused.
pub fn write_error(e: PlacementError) -> PlacementError {
    match e {
        PlacementError::InvalidInventory { .. }
        | PlacementError::CapacityExceeded { .. }
        | PlacementError::ConstraintsViolated { .. }
        | PlacementError::InventoryInUse { .. } => conflict(format!("Unable to allocate inventory: {e}")),
        PlacementError::ConcurrentUpdate => conflict_code(
            format!("Inventory and/or allocations changed while attempting to allocate: {e}"),
            codes::CONCURRENT_UPDATE,
        ),
        other => other,
    }
}

async fn post_allocations(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    since(mv, 1, 13)?;
    super::require_json(&headers)?;
    svc.enforce(&ctx, p::ALLOC_MANAGE)?;
    let data = json_body(&headers, &body, &post_schema(mv))?;
    let items: Vec<ConsumerAllocations> = data
        .as_object()
        .map(|m| m.iter().map(|(c, v)| consumer_allocations(&normalize_uuid(c), v, mv)).collect())
        .unwrap_or_default();
    let mut tx = Tx::begin(&svc.db).await?;
    store::replace(&mut tx, &items, rules(mv)).await.map_err(|e| match e {
        PlacementError::ResourceClassNotFound(_) => bad(format!("Unable to allocate inventory {e}")),
        other => write_error(other),
    })?;
    tx.commit().await?;
    Ok(empty(StatusCode::NO_CONTENT, None))
}

async fn delete(AxState(svc): AxState<State>, Auth(ctx): Auth, Path(consumer): Path<String>) -> Result<Response> {
    svc.enforce(&ctx, p::ALLOC_DELETE)?;
    // nothing to delete: answer without taking the write lock (a delete racing a
    // claim of the same consumer is then ordered before it)
    if store::consumer(&svc.db.read, &consumer).await?.is_none() {
        return Err(not_found(format!("No allocations for consumer '{consumer}'")));
    }
    let mut tx = Tx::begin(&svc.db).await?;
    if !store::delete_for_consumer(&mut tx, &consumer).await? {
        return Err(not_found(format!("No allocations for consumer '{consumer}'")));
    }
    tx.commit().await?;
    Ok(empty(StatusCode::NO_CONTENT, None))
}

async fn for_provider(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    headers: HeaderMap,
    Path(uuid): Path<String>,
) -> Result<Response> {
    accept_json(&headers)?;
    svc.enforce(&ctx, p::RP_ALLOC_LIST)?;
    let rp = svc
        .provider(&uuid, || {
            not_found(format!("Resource provider '{uuid}' not found: No resource provider with uuid {uuid} found"))
        })
        .await?;
    let allocs = store::by_provider(&svc.db.read, rp.id).await?;
    let mut out: Map<String, Value> = Map::new();
    for (a, generation) in &allocs {
        let e = out.entry(a.consumer_id.clone()).or_insert_with(|| json!({"resources": {}}));
        e["resources"][&a.resource_class] = json!(a.used);
        if mv.at_least(1, 28) {
            e["consumer_generation"] = json!(generation);
        }
    }
    let modified = allocs.iter().map(|(a, _)| a.created_at).max();
    Ok(ok(&json!({"allocations": out, "resource_provider_generation": rp.generation}), mv, modified))
}
