//! `/os-aggregates`: host aggregates (admin): list, create, show, update
//! (name and zone), delete, and the actions `add_host`, `remove_host`,
//! `set_metadata`; `POST /os-aggregates/{id}/images` (2.81) validates an
//! image-cache request and accepts it.
//!
//! `uuid` shows from 2.41. A host joins only as a known compute service,
//! and never into a second zone.

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::{Path, State as S};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::StatusCode;
use serde_json::{Map, Value, json};
use stratus_core::Microversion;
use stratus_core::auth::Auth;
use stratus_core::extract::Json;

use super::common::{self, invalid, naive_time, py_repr};
use crate::api::{accepted_empty, authorize, ok};
use crate::error::{ComputeError, Result, bad, conflict, not_found};
use crate::store::aggregates::{self, AZ_KEY, Aggregate, aggregate_not_found};
use crate::store::{services, usage};
use crate::{ComputeService, State};

pub fn routes() -> Router<State> {
    Router::new()
        .route("/v2.1/os-aggregates", get(index).post(create))
        .route("/v2.1/os-aggregates/{id}", get(show).put(update).delete(delete))
        .route("/v2.1/os-aggregates/{id}/action", post(action))
        .route("/v2.1/os-aggregates/{id}/images", post(images))
}

fn rule(name: &str) -> String {
    format!("os_compute_api:os-aggregates:{name}")
}

/// The aggregate as Nova shows it (create leaves out hosts and metadata).
fn view(a: &Aggregate, mv: Microversion, full: bool) -> Value {
    let mut v = json!({
        "id": a.id,
        "name": a.name,
        "availability_zone": a.availability_zone,
        "created_at": naive_time(a.created_at),
        "updated_at": a.updated_at.map(naive_time),
        "deleted": false,
        "deleted_at": null,
    });
    if full {
        v["hosts"] = json!(a.hosts);
        v["metadata"] = json!(a.metadata);
    }
    if mv.at_least(2, 41) {
        v["uuid"] = json!(a.uuid);
    }
    v
}

async fn load(svc: &ComputeService, id: &str) -> Result<Aggregate> {
    let n = common::int_id(id)?;
    aggregates::get(&svc.db, n).await?.ok_or_else(|| aggregate_not_found(id))
}

/// What Nova calls `is_safe_to_update_az`: a zone must have a name, and the
/// hosts concerned must not already be in another zone; when asked, a zone
/// change must not move existing servers. `action` words the refusal.
async fn safe_to_set_zone(
    svc: &ComputeService,
    agg: &Aggregate,
    metadata: &BTreeMap<String, Option<String>>,
    hosts: Option<&[String]>,
    action: &str,
    check_instances: bool,
) -> Result<()> {
    let Some(zone) = metadata.get(AZ_KEY) else {
        return Ok(());
    };
    let refuse = |reason: String| format!("{action} {}. Reason: {reason}.", agg.id);
    let Some(zone) = zone.as_deref().filter(|z| !z.is_empty()) else {
        return Err(bad(refuse(format!("Aggregate {} does not support empty named availability zone", agg.name))));
    };
    let hosts: Vec<String> = hosts.map(<[String]>::to_vec).unwrap_or_else(|| agg.hosts.clone());
    let all = aggregates::all(&svc.db).await?;
    let mut conflicting: Vec<String> = all
        .iter()
        .filter(|a| a.id != agg.id && a.hosts.iter().any(|h| hosts.contains(h)))
        .filter_map(|a| a.availability_zone.clone())
        .filter(|z| z != zone)
        .collect();
    conflicting.dedup();
    if !conflicting.is_empty() {
        let list = conflicting.iter().map(|z| py_repr(&json!(z))).collect::<Vec<_>>().join(", ");
        return Err(bad(refuse(format!("One or more hosts already in availability zone(s) [{list}]"))));
    }
    if check_instances && agg.availability_zone.as_deref() != Some(zone) {
        for h in &hosts {
            if usage::count_on_host(&svc.db, h).await? > 0 {
                return Err(bad(refuse("One or more hosts contain instances in this zone".into())));
            }
        }
    }
    Ok(())
}

async fn index(S(svc): S<State>, Auth(ctx): Auth, mv: Microversion) -> Result<Response> {
    authorize(&svc, &ctx, &rule("index"), &json!({}))?;
    let all = aggregates::all(&svc.db).await?;
    Ok(ok(json!({"aggregates": all.iter().map(|a| view(a, mv, true)).collect::<Vec<_>>()})))
}

fn zone_field(v: &Value) -> Result<Option<String>> {
    match v {
        Value::Null => Ok(None),
        other => Ok(Some(common::az_name("availability_zone", other)?.trim().to_string())),
    }
}

async fn create(S(svc): S<State>, Auth(ctx): Auth, mv: Microversion, Json(body): Json<Value>) -> Result<Response> {
    let a = common::the_object(&body, "aggregate")?;
    let name = a.get("name").map(|v| common::name("name", v)).transpose()?;
    let zone = match a.get("availability_zone") {
        Some(v) => zone_field(v)?,
        None => None,
    };
    common::required(a, Some("aggregate"), "name")?;
    common::no_extra(a, Some("aggregate"), &["name", "availability_zone"])?;
    authorize(&svc, &ctx, &rule("create"), &json!({}))?;
    let name = name.unwrap_or_default().trim().to_string();
    let created = aggregates::create(&svc.db, &name, zone.as_deref().filter(|z| !z.is_empty())).await?;
    Ok(ok(json!({"aggregate": view(&created, mv, false)})))
}

async fn show(S(svc): S<State>, Auth(ctx): Auth, mv: Microversion, Path(id): Path<String>) -> Result<Response> {
    authorize(&svc, &ctx, &rule("show"), &json!({}))?;
    let a = load(&svc, &id).await?;
    Ok(ok(json!({"aggregate": view(&a, mv, true)})))
}

/// A name that may carry surrounding spaces (stripped), as update accepts it.
fn spaced_name(v: &Value) -> Result<String> {
    let s = common::string("name", v, 1, 255)?;
    if s.trim().is_empty() {
        return Err(bad(
            "An invalid 'name' value was provided. The name must be: printable characters with at least one non space character",
        ));
    }
    common::name("name", &json!(s.trim()))
}

async fn update(
    S(svc): S<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response> {
    authorize(&svc, &ctx, &rule("update"), &json!({}))?;
    let a = common::the_object(&body, "aggregate")?;
    let name = a.get("name").map(spaced_name).transpose()?;
    let zone = a.get("availability_zone").map(zone_field).transpose()?;
    common::no_extra(a, Some("aggregate"), &["name", "availability_zone"])?;
    if name.is_none() && zone.is_none() {
        return Err(invalid(
            "aggregate",
            &Value::Object(a.clone()),
            &format!("{} is not valid under any of the given schemas", py_repr(&Value::Object(a.clone()))),
        ));
    }
    let mut agg = load(&svc, &id).await?;
    if let Some(n) = &name {
        aggregates::rename(&svc.db, agg.id, n).await?;
        agg.name = n.clone();
    }
    if let Some(z) = zone {
        let meta = BTreeMap::from([(AZ_KEY.to_string(), z)]);
        safe_to_set_zone(&svc, &agg, &meta, None, "Cannot update aggregate", true).await?;
        aggregates::update_metadata(&svc.db, agg.id, &meta).await?;
    }
    let agg = load(&svc, &id).await?;
    Ok(ok(json!({"aggregate": view(&agg, mv, true)})))
}

async fn delete(S(svc): S<State>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Response> {
    authorize(&svc, &ctx, &rule("delete"), &json!({}))?;
    let agg = load(&svc, &id).await?;
    if !agg.hosts.is_empty() {
        return Err(bad(format!("Cannot remove host from aggregate {}. Reason: Host aggregate is not empty.", agg.id)));
    }
    if !aggregates::delete(&svc.db, agg.id).await? {
        return Err(aggregate_not_found(&id));
    }
    Ok(StatusCode::OK.into_response())
}

/// Keep placement's aggregates in step (Nova's `aggregate_add_host` /
/// `aggregate_remove_host` of the report client): the resource providers of
/// `host`'s compute nodes get the uuids of every aggregate the host is now
/// in. A failure is logged, never returned, as in Nova (the host reports its
/// aggregates again when it registers). Nothing to do while the API runs
/// without placement (tests, or before the process attached its clients).
async fn sync_placement(svc: &ComputeService, agg: &Aggregate, host: &str, added: bool) {
    let Some(deps) = svc.deps.get() else {
        return;
    };
    let result = async {
        let uuids: Vec<String> = aggregates::of_host(&svc.db, host).await?.into_iter().map(|a| a.uuid).collect();
        for node in crate::store::compute_nodes::of_host(&svc.db, host).await? {
            deps.placement.set_aggregates(&node.uuid, &uuids).await.map_err(ComputeError::Internal)?;
        }
        Ok::<(), ComputeError>(())
    }
    .await;
    if let Err(e) = result {
        tracing::warn!(aggregate = %agg.uuid, host, added, error = %e, "placement aggregates not updated");
    }
}

fn host_of(body: &Value, action: &str) -> Result<String> {
    let inner = common::the_object(body, action)?;
    let host = common::fqdn("host", common::required(inner, Some(action), "host")?)?;
    common::no_extra(inner, Some(action), &["host"])?;
    Ok(host)
}

async fn compute_service_exists(svc: &ComputeService, host: &str) -> Result<bool> {
    Ok(services::get_by_host_binary(&svc.db, host, services::COMPUTE).await?.is_some())
}

async fn add_host(svc: &ComputeService, id: &str, body: &Value, mv: Microversion) -> Result<Response> {
    let host = host_of(body, "add_host")?;
    let n = common::int_id(id)?;
    if !compute_service_exists(svc, &host).await? {
        return Err(not_found(format!("Compute host {host} could not be found.")));
    }
    let agg = aggregates::get(&svc.db, n).await?.ok_or_else(|| aggregate_not_found(id))?;
    let meta: BTreeMap<String, Option<String>> =
        agg.metadata.iter().map(|(k, v)| (k.clone(), Some(v.clone()))).collect();
    let hosts = vec![host.clone()];
    safe_to_set_zone(svc, &agg, &meta, Some(&hosts), "Cannot add host to aggregate", false).await.map_err(
        |e| match e {
            ComputeError::BadRequest(m) => conflict(m),
            other => other,
        },
    )?;
    // a host with servers must not change zone by joining
    if let Some(new_zone) = &agg.availability_zone {
        let on_host = usage::count_on_host(&svc.db, &host).await?;
        if on_host > 0 {
            let current = aggregates::of_host(&svc.db, &host).await?.into_iter().find_map(|a| a.availability_zone);
            if current.as_deref() != Some(new_zone.as_str()) {
                return Err(conflict(format!(
                    "Cannot add host to aggregate {}. Reason: The host cannot be added to the aggregate as the availability zone of the host would change from '{}' to '{new_zone}' but the host already has {on_host} instance(s). Changing the AZ of an existing instance is not supported by this action. Move the instances away from this host then try again. If you need to move the instances between AZs then you can use shelve_offload and unshelve to achieve this..",
                    agg.id,
                    current.as_deref().unwrap_or("None"),
                )));
            }
        }
    }
    aggregates::add_host(&svc.db, agg.id, &host).await?;
    sync_placement(svc, &agg, &host, true).await;
    let agg = aggregates::get(&svc.db, n).await?.ok_or_else(|| aggregate_not_found(id))?;
    Ok(ok(json!({"aggregate": view(&agg, mv, true)})))
}

async fn remove_host(svc: &ComputeService, id: &str, body: &Value, mv: Microversion) -> Result<Response> {
    let host = host_of(body, "remove_host")?;
    let n = common::int_id(id)?;
    let cannot = || not_found(format!("Cannot remove host {host} in aggregate {id}"));
    if !compute_service_exists(svc, &host).await? {
        return Err(cannot());
    }
    let agg = aggregates::get(&svc.db, n).await?.ok_or_else(cannot)?;
    if !agg.hosts.contains(&host) {
        return Err(cannot());
    }
    if let Some(zone) = &agg.availability_zone {
        let on_host = usage::count_on_host(&svc.db, &host).await?;
        if on_host > 0 {
            let next = aggregates::of_host(&svc.db, &host)
                .await?
                .into_iter()
                .filter(|a| a.id != agg.id)
                .find_map(|a| a.availability_zone);
            if next.as_deref() != Some(zone.as_str()) {
                return Err(conflict(format!(
                    "Cannot remove host from aggregate {}. Reason: The host cannot be removed from the aggregate as the availability zone of the host would change from '{zone}' to '{}' but the host already has {on_host} instance(s). Changing the AZ of an existing instance is not supported by this action. Move the instances away from this host then try again. If you need to move the instances between AZs then you can use shelve_offload and unshelve to achieve this..",
                    agg.id,
                    next.as_deref().unwrap_or("None"),
                )));
            }
        }
    }
    if !aggregates::remove_host(&svc.db, agg.id, &host).await? {
        return Err(cannot());
    }
    sync_placement(svc, &agg, &host, false).await;
    let agg = aggregates::get(&svc.db, n).await?.ok_or_else(|| aggregate_not_found(id))?;
    Ok(ok(json!({"aggregate": view(&agg, mv, true)})))
}

fn metadata_of(body: &Value) -> Result<BTreeMap<String, Option<String>>> {
    let inner = common::the_object(body, "set_metadata")?;
    let meta = common::required(inner, Some("set_metadata"), "metadata")?;
    common::no_extra(inner, Some("set_metadata"), &["metadata"])?;
    let meta: &Map<String, Value> = common::object(meta, Some("metadata"))?;
    let mut out = BTreeMap::new();
    for (k, v) in meta {
        let key_ok = (1..=255).contains(&k.chars().count())
            && k.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_:. ".contains(&b));
        if !key_ok {
            return Err(invalid(
                "metadata",
                &Value::Object(meta.clone()),
                &format!("'{k}' does not match any of the regexes: '^[a-zA-Z0-9-_:. ]{{1,255}}$'"),
            ));
        }
        let value = match v {
            Value::Null => None,
            Value::String(s) if s.chars().count() <= 255 => {
                common::no_nul(k, v, s)?;
                Some(s.clone())
            }
            Value::String(_) => return Err(invalid(k, v, &format!("{} is too long", py_repr(v)))),
            other => return Err(invalid(k, other, &format!("{} is not of type 'string', 'null'", py_repr(other)))),
        };
        out.insert(k.clone(), value);
    }
    Ok(out)
}

async fn set_metadata(svc: &ComputeService, id: &str, body: &Value, mv: Microversion) -> Result<Response> {
    let meta = metadata_of(body)?;
    let agg = load(svc, id).await?;
    safe_to_set_zone(svc, &agg, &meta, None, "Cannot update metadata of aggregate", true).await?;
    aggregates::update_metadata(&svc.db, agg.id, &meta).await?;
    let agg = load(svc, id).await?;
    Ok(ok(json!({"aggregate": view(&agg, mv, true)})))
}

async fn action(
    S(svc): S<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response> {
    let name = body.as_object().and_then(|o| o.keys().next().cloned()).unwrap_or_default();
    // as in Nova: the action's schema first, then its policy
    match name.as_str() {
        "add_host" | "remove_host" => drop(host_of(&body, &name)?),
        "set_metadata" => drop(metadata_of(&body)?),
        other => return Err(bad(format!("There is no such action: {other}"))),
    }
    authorize(&svc, &ctx, &rule(&name), &json!({}))?;
    match name.as_str() {
        "add_host" => add_host(&svc, &id, &body, mv).await,
        "remove_host" => remove_host(&svc, &id, &body, mv).await,
        _ => set_metadata(&svc, &id, &body, mv).await,
    }
}

async fn images(
    S(svc): S<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response> {
    if !mv.at_least(2, 81) {
        return Err(common::version_not_found());
    }
    authorize(&svc, &ctx, "compute:aggregates:images", &json!({}))?;
    let top = common::object(&body, None)?;
    let cache = common::required(top, None, "cache")?;
    common::no_extra(top, None, &["cache"])?;
    let Value::Array(items) = cache else {
        return Err(invalid("cache", cache, &format!("{} is not of type 'array'", py_repr(cache))));
    };
    if items.is_empty() {
        return Err(invalid("cache", cache, "[] should be non-empty"));
    }
    let mut ids: Vec<String> = Vec::new();
    for item in items {
        let o = common::object(item, Some("cache"))?;
        let idv = common::required(o, Some("cache"), "id")?;
        common::no_extra(o, Some("cache"), &["id"])?;
        let s = common::string("id", idv, 0, usize::MAX)?;
        if !common::is_uuid_like(s) {
            return Err(invalid("id", idv, &format!("{} is not a 'uuid'", py_repr(idv))));
        }
        ids.push(s.to_string());
    }
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    if unique.len() != ids.len() {
        return Err(bad("Duplicate images in request"));
    }
    let _agg: Aggregate = load(&svc, &id).await?;
    // the hosts would fetch the images into their caches; no driver caches yet
    Ok(accepted_empty())
}
