//! `/resource_providers` and `/resource_providers/{uuid}`: list (with the
//! `name`, `uuid`, `member_of`, `resources`, `in_tree` and `required`
//! filters, searched on the index), create, show, update (rename, re-parent),
//! delete.

use std::collections::HashSet;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use serde_json::Value;
use stratus_core::Microversion;
use stratus_core::auth::Auth;
use stratus_core::extract::RawQuery;

use super::{accept_json, empty, json_body, json_response, ok, provider_view, view_of};
use crate::State;
use crate::candidates::providers_in_aggregates;
use crate::error::{PlacementError, Result, bad, not_found, provider_not_found};
use crate::index::{Index, Provider as Indexed};
use crate::policies as p;
use crate::query::{self, ProviderFilter, normalize_uuid};
use crate::schema::Schema;
use crate::store::{Tx, providers};

pub fn routes() -> Router<State> {
    Router::new()
        .route("/resource_providers", get(list).post(create))
        .route("/resource_providers/{uuid}", get(show).put(update).delete(delete))
}

fn create_schema(mv: Microversion) -> Schema {
    let s = Schema::object()
        .prop("name", Schema::string().max_len(200))
        .prop("uuid", Schema::uuid())
        .required(&["name"])
        .closed();
    if mv.at_least(1, 14) {
        s.prop("parent_provider_uuid", Schema::any_of(vec![Schema::uuid(), Schema::of(&[crate::schema::Ty::Null])]))
    } else {
        s
    }
}

fn update_schema(mv: Microversion) -> Schema {
    create_schema(mv).without("uuid")
}

/// Providers matching the filters, by id.
pub fn filter<'a>(idx: &'a Index, f: &ProviderFilter) -> Result<Vec<&'a Indexed>> {
    let mut required = Vec::new();
    for any in &f.required_traits {
        let mut ids = Vec::new();
        for t in any {
            ids.push(idx.trait_id(t).ok_or_else(|| bad_trait(t))?);
        }
        required.push(ids);
    }
    let mut forbidden = Vec::new();
    for t in &f.forbidden_traits {
        forbidden.push(idx.trait_id(t).ok_or_else(|| bad_trait(t))?);
    }
    let mut resources = Vec::new();
    for (rc, amount) in &f.resources {
        let id = idx.rc_id(rc).ok_or_else(|| {
            bad(format!("Invalid resource class in resources parameter: No such resource class {rc}."))
        })?;
        resources.push((id, *amount));
    }
    let tree_root = match &f.in_tree {
        None => None,
        Some(u) => match idx.by_uuid(u) {
            None => return Ok(Vec::new()),
            Some(p) => Some(p.root),
        },
    };
    let in_aggs: Option<HashSet<i64>> =
        if f.member_of.is_empty() { None } else { Some(providers_in_aggregates(idx, &f.member_of)) };
    if in_aggs.as_ref().is_some_and(HashSet::is_empty) {
        return Ok(Vec::new());
    }
    let bad_aggs: Vec<u32> = f.forbidden_aggs.iter().filter_map(|a| idx.agg_id(a)).collect();
    Ok(idx
        .iter()
        .filter(|p| f.name.as_ref().is_none_or(|n| &p.name == n))
        .filter(|p| f.uuid.as_ref().is_none_or(|u| &p.uuid == u))
        .filter(|p| tree_root.is_none_or(|r| p.root == r))
        .filter(|p| required.iter().all(|any| any.iter().any(|t| p.has_trait(*t))))
        .filter(|p| !forbidden.iter().any(|t| p.has_trait(*t)))
        .filter(|p| in_aggs.as_ref().is_none_or(|s| s.contains(&p.id)))
        .filter(|p| !bad_aggs.iter().any(|a| p.has_agg(*a)))
        .filter(|p| resources.iter().all(|(rc, amount)| p.inv(*rc).is_some_and(|i| i.fits(*amount))))
        .collect())
}

fn bad_trait(t: &str) -> PlacementError {
    bad(format!("Invalid trait(s) in \"required\" parameter: No such trait(s): {t}."))
}

async fn list(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Response> {
    accept_json(&headers)?;
    svc.enforce(&ctx, p::RP_LIST)?;
    let f = query::provider_filter(&q, mv)?;
    let idx = svc.index.read(&svc.db).await?;
    let found = filter(&idx, &f)?;
    let mut modified: Option<i64> = None;
    let items: Vec<Value> = found
        .iter()
        .map(|p| {
            modified = Some(modified.map_or(p.updated_at, |m| m.max(p.updated_at)));
            let parent = p.parent.and_then(|id| idx.get(id)).map(|x| x.uuid.as_str());
            let root = idx.get(p.root).map(|x| x.uuid.as_str()).unwrap_or(&p.uuid);
            provider_view(&p.uuid, &p.name, p.generation, parent, root, mv)
        })
        .collect();
    Ok(ok(&serde_json::json!({"resource_providers": items}), mv, modified))
}

async fn create(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    svc.enforce(&ctx, p::RP_CREATE)?;
    let data = json_body(&headers, &body, &create_schema(mv))?;
    let name = data["name"].as_str().unwrap_or_default().to_string();
    let uuid = match data.get("uuid").and_then(Value::as_str) {
        Some(u) => normalize_uuid(u),
        None => uuid::Uuid::new_v4().to_string(),
    };
    let parent = data.get("parent_provider_uuid").and_then(Value::as_str).map(normalize_uuid);
    let mut tx = Tx::begin(&svc.db).await?;
    let rp = providers::create(&mut tx, &uuid, &name, parent.as_deref()).await?;
    tx.commit().await?;
    let location = format!("/resource_providers/{}", rp.uuid);
    if mv.at_least(1, 20) {
        let mut resp = json_response(StatusCode::OK, &view_of(&rp, mv), mv, Some(rp.updated_at));
        if let Ok(v) = axum::http::HeaderValue::from_str(&location) {
            resp.headers_mut().insert(axum::http::header::LOCATION, v);
        }
        Ok(resp)
    } else {
        Ok(empty(StatusCode::CREATED, Some(location)))
    }
}

async fn show(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    headers: HeaderMap,
    Path(uuid): Path<String>,
) -> Result<Response> {
    accept_json(&headers)?;
    svc.enforce(&ctx, p::RP_SHOW)?;
    let rp = svc.provider(&uuid, || provider_not_found(&uuid)).await?;
    Ok(ok(&view_of(&rp, mv), mv, Some(rp.updated_at)))
}

async fn update(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    headers: HeaderMap,
    Path(uuid): Path<String>,
    body: Bytes,
) -> Result<Response> {
    svc.enforce(&ctx, p::RP_UPDATE)?;
    let rp = svc.provider(&uuid, || provider_not_found(&uuid)).await?;
    let data = json_body(&headers, &body, &update_schema(mv))?;
    let up = providers::Update {
        name: data["name"].as_str().unwrap_or_default().to_string(),
        parent: data.get("parent_provider_uuid").map(|v| v.as_str().map(normalize_uuid)),
        allow_reparenting: mv.at_least(1, 37),
    };
    let mut tx = Tx::begin(&svc.db).await?;
    let rp = providers::get_by_id(tx.conn(), rp.id).await?.ok_or_else(|| provider_not_found(&uuid))?;
    let rp = providers::update(&mut tx, &rp, up).await?;
    tx.commit().await?;
    Ok(ok(&view_of(&rp, mv), mv, Some(rp.updated_at)))
}

async fn delete(AxState(svc): AxState<State>, Auth(ctx): Auth, Path(uuid): Path<String>) -> Result<Response> {
    svc.enforce(&ctx, p::RP_DELETE)?;
    let gone = || not_found(format!("No resource provider with uuid {uuid} found for delete"));
    let rp = svc.provider(&uuid, gone).await?;
    let mut tx = Tx::begin(&svc.db).await?;
    // it may have gone since
    let Some(rp) = providers::get_by_id(tx.conn(), rp.id).await? else {
        return Err(gone());
    };
    providers::delete(&mut tx, &rp).await?;
    tx.commit().await?;
    Ok(empty(StatusCode::NO_CONTENT, None))
}
