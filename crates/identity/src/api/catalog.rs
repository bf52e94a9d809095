//! `/v3/regions`, `/v3/services` and `/v3/endpoints`.

use axum::Router;
use axum::extract::{Path, State as S};
use axum::response::Response;
use axum::routing::get;
use serde_json::{Map, Value, json};
use stratus_core::auth::Auth;
use stratus_core::extract::{Json, RawQuery};

use super::{created, no_content, ok};
use crate::error::{IdentityError, Result, bad};
use crate::store::catalog::{self, Endpoint, EndpointUpdate, NewEndpoint, Region, Service};
use crate::util::{Obj, member, parse_extra, with_extra};
use crate::{Identity, State};

pub fn routes() -> Router<State> {
    Router::new()
        .route("/v3/regions", get(list_regions).post(create_region))
        .route("/v3/regions/{region_id}", get(show_region).put(put_region).patch(update_region).delete(delete_region))
        .route("/v3/services", get(list_services).post(create_service))
        .route("/v3/services/{service_id}", get(show_service).patch(update_service).delete(delete_service))
        .route("/v3/endpoints", get(list_endpoints).post(create_endpoint))
        .route("/v3/endpoints/{endpoint_id}", get(show_endpoint).patch(update_endpoint).delete(delete_endpoint))
}

// ---- shared validation

/// An optional string (absent: None; null: Some(None)) of at most `max` characters.
fn nullable_str(o: &Obj, k: &str, max: usize) -> Result<Option<Option<String>>> {
    match o.get(k) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::String(s)) if s.chars().count() > max => {
            Err(bad(format!("Invalid input for field '{}.{k}': longer than {max} characters.", o.name)))
        }
        Some(Value::String(s)) => Ok(Some(Some(s.clone()))),
        Some(_) => Err(bad(format!("Invalid input for field '{}.{k}': expected a string or null.", o.name))),
    }
}

/// A body's `id`, when present, must be the one in the URL.
fn same_id(o: &Obj, id: &str) -> Result<()> {
    match o.get("id") {
        Some(v) if v.as_str() != Some(id) => {
            Err(bad(format!("Invalid input for field '{}.id': it cannot be changed.", o.name)))
        }
        _ => Ok(()),
    }
}

fn not_empty(o: &Obj) -> Result<()> {
    if o.map.is_empty() {
        return Err(bad(format!("Invalid input for field '{}': it must have at least one property.", o.name)));
    }
    Ok(())
}

// ---- regions

const REGION_KNOWN: &[&str] = &["id", "description", "parent_region_id", "links"];

pub fn render_region(s: &Identity, r: &Region) -> Value {
    with_extra(
        json!({
            "id": r.id,
            "description": r.description.clone().unwrap_or_default(),
            "parent_region_id": r.parent_region_id,
            "links": s.link(&format!("regions/{}", r.id)),
        }),
        &r.extra,
    )
}

/// Keystone answers 404 for a parent region that does not exist.
async fn check_parent(s: &Identity, parent: Option<&str>) -> Result<()> {
    if let Some(p) = parent {
        catalog::get_region(&s.db, p).await?;
    }
    Ok(())
}

async fn list_regions(S(s): S<State>, Auth(ctx): Auth, q: RawQuery) -> Result<Response> {
    s.enforce(&ctx, "identity:list_regions", json!({}))?;
    let regions = catalog::list_regions(&s.db, q.get("parent_region_id")).await?;
    let items = regions.iter().map(|r| render_region(&s, r)).collect();
    Ok(ok(s.collection("regions", "regions", items)))
}

/// Create a region from a request body; `url_id` is the id a PUT names.
async fn new_region(s: &Identity, body: &Value, url_id: Option<&str>) -> Result<Region> {
    let r = member(body, "region")?;
    let id = match (nullable_str(&r, "id", 255)?, url_id) {
        (None, Some(u)) => Some(u.to_string()),
        (Some(given), Some(u)) if given.as_deref() != Some(u) => {
            return Err(bad(format!("Conflicting region IDs specified: \"{u}\" != \"{}\"", given.unwrap_or_default())));
        }
        (given, _) => given.flatten().filter(|i| !i.is_empty()),
    };
    let description = nullable_str(&r, "description", 255)?.flatten().unwrap_or_default();
    let parent = nullable_str(&r, "parent_region_id", 255)?.flatten();
    if parent.as_deref().is_some_and(str::is_empty) {
        return Err(bad("Invalid input for field 'region.parent_region_id': it must not be empty."));
    }
    check_parent(s, parent.as_deref()).await?;
    catalog::create_region(&s.db, id, Some(description), parent, &r.extra(REGION_KNOWN)).await
}

async fn create_region(S(s): S<State>, Auth(ctx): Auth, Json(body): Json<Value>) -> Result<Response> {
    s.enforce(&ctx, "identity:create_region", json!({}))?;
    let r = new_region(&s, &body, None).await?;
    Ok(created(json!({"region": render_region(&s, &r)})))
}

async fn put_region(
    S(s): S<State>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response> {
    s.enforce(&ctx, "identity:create_region", json!({}))?;
    let r = new_region(&s, &body, Some(&id)).await?;
    Ok(created(json!({"region": render_region(&s, &r)})))
}

async fn show_region(S(s): S<State>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Response> {
    let r = catalog::get_region(&s.db, &id).await?;
    s.enforce(&ctx, "identity:get_region", json!({}))?;
    Ok(ok(json!({"region": render_region(&s, &r)})))
}

async fn update_region(
    S(s): S<State>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response> {
    s.enforce(&ctx, "identity:update_region", json!({}))?;
    catalog::get_region(&s.db, &id).await?;
    let r = member(&body, "region")?;
    not_empty(&r)?;
    same_id(&r, &id)?;
    // a null description is stored as "" (Keystone's column is NOT NULL)
    let description = nullable_str(&r, "description", 255)?.map(|d| Some(d.unwrap_or_default()));
    let parent = nullable_str(&r, "parent_region_id", 255)?;
    if let Some(Some(p)) = &parent {
        if p.is_empty() {
            return Err(bad("Invalid input for field 'region.parent_region_id': it must not be empty."));
        }
        check_parent(&s, Some(p)).await?;
    }
    let updated = catalog::update_region(&s.db, &id, description, parent, &r.extra(REGION_KNOWN)).await?;
    s.invalidate_tokens();
    Ok(ok(json!({"region": render_region(&s, &updated)})))
}

async fn delete_region(S(s): S<State>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Response> {
    s.enforce(&ctx, "identity:delete_region", json!({}))?;
    catalog::delete_region_tree(&s.db, &id).await?;
    s.invalidate_tokens();
    Ok(no_content())
}

// ---- services

const SERVICE_KNOWN: &[&str] = &["id", "type", "enabled", "links"];

pub fn render_service(s: &Identity, v: &Service) -> Value {
    with_extra(
        json!({
            "id": v.id,
            "type": v.r#type,
            "enabled": v.enabled,
            "links": s.link(&format!("services/{}", v.id)),
        }),
        &v.extra,
    )
}

async fn list_services(S(s): S<State>, Auth(ctx): Auth, q: RawQuery) -> Result<Response> {
    s.enforce(&ctx, "identity:list_services", json!({}))?;
    let services = catalog::list_services(&s.db, q.get("type")).await?;
    let name = q.get("name");
    let items = services
        .iter()
        .filter(|v| name.is_none_or(|n| parse_extra(&v.extra).get("name").and_then(Value::as_str) == Some(n)))
        .map(|v| render_service(&s, v))
        .collect();
    Ok(ok(s.collection("services", "services", items)))
}

async fn create_service(S(s): S<State>, Auth(ctx): Auth, Json(body): Json<Value>) -> Result<Response> {
    s.enforce(&ctx, "identity:create_service", json!({}))?;
    let v = member(&body, "service")?;
    let kind = v.req_str("type", 255)?;
    let name = v.opt_name("name", 255)?;
    let enabled = v.bool("enabled")?.unwrap_or(true);
    let mut extra = v.extra(SERVICE_KNOWN);
    // Keystone stores name (default "") and description as extra attributes
    extra.insert("name".into(), json!(name.unwrap_or_default()));
    let svc = catalog::create_service(&s.db, &kind, enabled, &extra).await?;
    s.invalidate_tokens();
    Ok(created(json!({"service": render_service(&s, &svc)})))
}

async fn show_service(S(s): S<State>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Response> {
    let v = catalog::get_service(&s.db, &id).await?;
    s.enforce(&ctx, "identity:get_service", json!({}))?;
    Ok(ok(json!({"service": render_service(&s, &v)})))
}

async fn update_service(
    S(s): S<State>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response> {
    s.enforce(&ctx, "identity:update_service", json!({}))?;
    catalog::get_service(&s.db, &id).await?;
    let v = member(&body, "service")?;
    not_empty(&v)?;
    same_id(&v, &id)?;
    let kind = v.opt_name("type", 255)?;
    v.opt_name("name", 255)?;
    let enabled = v.bool("enabled")?;
    let updated = catalog::update_service(&s.db, &id, kind, enabled, &v.extra(SERVICE_KNOWN)).await?;
    s.invalidate_tokens();
    Ok(ok(json!({"service": render_service(&s, &updated)})))
}

async fn delete_service(S(s): S<State>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Response> {
    s.enforce(&ctx, "identity:delete_service", json!({}))?;
    catalog::delete_service(&s.db, &id).await?;
    s.invalidate_tokens();
    Ok(no_content())
}

// ---- endpoints

const ENDPOINT_KNOWN: &[&str] =
    &["id", "service_id", "interface", "url", "region_id", "region", "enabled", "links", "legacy_endpoint_id"];

pub fn render_endpoint(s: &Identity, e: &Endpoint) -> Value {
    with_extra(
        json!({
            "id": e.id,
            "interface": e.interface,
            "region_id": e.region_id,
            "region": e.region_id,
            "service_id": e.service_id,
            "url": e.url,
            "enabled": e.enabled,
            "links": s.link(&format!("endpoints/{}", e.id)),
        }),
        &e.extra,
    )
}

fn check_interface(field: &str, i: &str) -> Result<()> {
    if matches!(i, "public" | "internal" | "admin") {
        Ok(())
    } else {
        Err(bad(format!("Invalid input for field '{field}': {i:?} is not one of 'admin', 'internal', 'public'.")))
    }
}

/// Keystone's URL schema: a scheme, a colon, something; at most 225 characters.
fn check_url(u: &str) -> Result<()> {
    let scheme_ok = u.split_once(':').is_some_and(|(scheme, rest)| {
        !scheme.is_empty()
            && !rest.is_empty()
            && scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '-'))
    });
    if !scheme_ok {
        return Err(bad(format!("Invalid input for field 'endpoint.url': {u:?} is not a URL.")));
    }
    if u.chars().count() > 225 {
        return Err(bad("Invalid input for field 'endpoint.url': longer than 225 characters."));
    }
    Ok(())
}

/// The region an endpoint body names: `region_id`, or the legacy `region`,
/// which Keystone creates when it does not exist yet. Absent: None; null: Some(None).
async fn endpoint_region(s: &Identity, e: &Obj<'_>) -> Result<Option<Option<String>>> {
    let region_id = nullable_str(e, "region_id", 255)?;
    let legacy = nullable_str(e, "region", 255)?;
    match (region_id, legacy) {
        (Some(Some(r)), _) => Ok(Some(Some(r))),
        (_, Some(Some(r))) => {
            if catalog::get_region(&s.db, &r).await.is_err() {
                match catalog::create_region(&s.db, Some(r.clone()), Some(String::new()), None, &Map::new()).await {
                    Ok(_) | Err(IdentityError::Conflict { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(Some(Some(r)))
        }
        (rid, _) => Ok(rid),
    }
}

async fn list_endpoints(S(s): S<State>, Auth(ctx): Auth, q: RawQuery) -> Result<Response> {
    s.enforce(&ctx, "identity:list_endpoints", json!({}))?;
    if let Some(i) = q.get("interface") {
        check_interface("interface", i)?;
    }
    let eps = catalog::list_endpoints(&s.db, q.get("service_id"), q.get("interface"), q.get("region_id")).await?;
    let items = eps.iter().map(|e| render_endpoint(&s, e)).collect();
    Ok(ok(s.collection("endpoints", "endpoints", items)))
}

async fn create_endpoint(S(s): S<State>, Auth(ctx): Auth, Json(body): Json<Value>) -> Result<Response> {
    s.enforce(&ctx, "identity:create_endpoint", json!({}))?;
    let e = member(&body, "endpoint")?;
    let required = |k: &str| -> Result<String> {
        e.str(k)?.ok_or_else(|| bad(format!("Invalid input for field 'endpoint.{k}': '{k}' is a required property.")))
    };
    let service_id = required("service_id")?;
    let interface = required("interface")?;
    check_interface("endpoint.interface", &interface)?;
    let url = required("url")?;
    check_url(&url)?;
    let enabled = e.bool("enabled")?.unwrap_or(true);
    let region_id = endpoint_region(&s, &e).await?.flatten();
    let new = NewEndpoint { service_id, interface, url, region_id, enabled, extra: e.extra(ENDPOINT_KNOWN) };
    let ep = catalog::create_endpoint(&s.db, new).await?;
    s.invalidate_tokens();
    Ok(created(json!({"endpoint": render_endpoint(&s, &ep)})))
}

async fn show_endpoint(S(s): S<State>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Response> {
    let e = catalog::get_endpoint(&s.db, &id).await?;
    s.enforce(&ctx, "identity:get_endpoint", json!({}))?;
    Ok(ok(json!({"endpoint": render_endpoint(&s, &e)})))
}

async fn update_endpoint(
    S(s): S<State>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response> {
    s.enforce(&ctx, "identity:update_endpoint", json!({}))?;
    catalog::get_endpoint(&s.db, &id).await?;
    let e = member(&body, "endpoint")?;
    not_empty(&e)?;
    same_id(&e, &id)?;
    let string = |k: &str| -> Result<Option<String>> {
        match e.get(k) {
            Some(Value::Null) => Err(bad(format!("Invalid input for field 'endpoint.{k}': expected a string."))),
            _ => e.str(k),
        }
    };
    let interface = string("interface")?;
    if let Some(i) = &interface {
        check_interface("endpoint.interface", i)?;
    }
    let url = string("url")?;
    if let Some(u) = &url {
        check_url(u)?;
    }
    let u = EndpointUpdate {
        service_id: string("service_id")?,
        interface,
        url,
        enabled: e.bool("enabled")?,
        region_id: endpoint_region(&s, &e).await?,
        extra: e.extra(ENDPOINT_KNOWN),
    };
    let ep = catalog::update_endpoint(&s.db, &id, u).await?;
    s.invalidate_tokens();
    Ok(ok(json!({"endpoint": render_endpoint(&s, &ep)})))
}

async fn delete_endpoint(S(s): S<State>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Response> {
    s.enforce(&ctx, "identity:delete_endpoint", json!({}))?;
    catalog::delete_endpoint(&s.db, &id).await?;
    s.invalidate_tokens();
    Ok(no_content())
}
