//! Group types (3.11): `/v3/group_types` (list, show, `default`, create,
//! update, delete) and their group specs
//! (`/v3/group_types/{id}/group_specs[/{key}]`). Admins manage them; others
//! see the public ones. Views as Cinder's: id, name, description,
//! is_public, and `group_specs` for those `group:access_group_types_specs`
//! allows.

use axum::Router;
use axum::extract::{Path, State as AxState};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value, json};
use stratus_core::AuthContext;
use stratus_core::auth::Auth;
use stratus_core::extract::RawQuery;
use stratus_core::microversion::Microversion;

use crate::api::list::{self, ListQuery};
use crate::api::types::{parse_bool, specs_from};
use crate::api::{Body, accepted_empty, allowed, authorize, is_admin, ok, project_of};
use crate::entity::group_type;
use crate::error::{Result, VolumeError, bad, not_found};
use crate::store::groups as store;
use crate::{State, VolumeService};

pub fn routes() -> Router<State> {
    Router::new()
        .route("/v3/group_types", get(index).post(create))
        .route("/v3/group_types/{id}", get(show).put(update).delete(delete))
        .route("/v3/group_types/{id}/group_specs", get(specs_index).post(specs_create))
        .route("/v3/group_types/{id}/group_specs/{key}", get(specs_show).put(specs_update).delete(specs_delete))
}

const CREATE_POLICY: &str = "group:group_types:create";
const UPDATE_POLICY: &str = "group:group_types:update";
const DELETE_POLICY: &str = "group:group_types:delete";
const SHOW_ACCESS_POLICY: &str = "group:access_group_types_specs";
const SPEC_GET_POLICY: &str = "group:group_types_specs:get";
const SPEC_GET_ALL_POLICY: &str = "group:group_types_specs:get_all";
const SPEC_CREATE_POLICY: &str = "group:group_types_specs:create";
const SPEC_UPDATE_POLICY: &str = "group:group_types_specs:update";
const SPEC_DELETE_POLICY: &str = "group:group_types_specs:delete";

// ---- shared request checks (also used by groups and group snapshots) ----

/// 404 as Cinder answers a method below its microversion.
pub(crate) fn require(mv: Microversion, minor: u16) -> Result<()> {
    if mv.at_least(3, minor) { Ok(()) } else { Err(not_found("The resource could not be found.")) }
}

pub(crate) fn invalid(field: &str, msg: impl std::fmt::Display) -> VolumeError {
    bad(format!("Invalid input for field/attribute {field}. {msg}"))
}

/// No keys but `allowed_keys` in `obj`.
pub(crate) fn only(field: &str, obj: &Map<String, Value>, allowed_keys: &[&str]) -> Result<()> {
    if let Some(k) = obj.keys().find(|k| !allowed_keys.contains(&k.as_str())) {
        return Err(invalid(field, format!("Additional properties are not allowed ('{k}' was unexpected)")));
    }
    Ok(())
}

/// The body's only key `key`, an object.
pub(crate) fn body_obj<'a>(body: &'a Value, key: &str) -> Result<&'a Map<String, Value>> {
    let Some(top) = body.as_object() else {
        return Err(bad(format!("Invalid input for field/attribute {key}. '{key}' is a required property")));
    };
    only("body", top, &[key])?;
    match top.get(key) {
        Some(Value::Object(m)) => Ok(m),
        Some(other) => Err(invalid(key, format!("Value: {other}. {other} is not of type 'object'"))),
        None => Err(bad(format!("Invalid input for field/attribute {key}. '{key}' is a required property"))),
    }
}

/// An optional string (null allowed) of at most `max` characters.
pub(crate) fn opt_text(field: &str, v: Option<&Value>, max: usize) -> Result<Option<String>> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.chars().count() <= max => Ok(Some(s.clone())),
        Some(Value::String(s)) => Err(invalid(field, format!("Value: {s}. '{s}' is too long"))),
        Some(other) => Err(invalid(field, format!("Value: {other}. {other} is not of type 'string', 'null'"))),
    }
}

// ---- views ----

fn view(svc: &VolumeService, ctx: &AuthContext, t: &group_type::Model) -> Value {
    let mut v = json!({
        "id": t.id,
        "name": t.name,
        "description": t.description,
        "is_public": t.is_public,
    });
    if allowed(svc, ctx, SHOW_ACCESS_POLICY, &project_of(ctx)) {
        v["group_specs"] = Value::Object(store::specs(t));
    }
    v
}

pub fn type_not_found(id: &str) -> VolumeError {
    not_found(format!("Group type with id {id} could not be found."))
}

/// A group type as the caller may see it (private ones: admins only).
pub(crate) async fn find(svc: &VolumeService, ctx: &AuthContext, id: &str) -> Result<group_type::Model> {
    let t = store::get_type(&svc.db.read, id).await?.ok_or_else(|| type_not_found(id))?;
    if !t.is_public && !is_admin(svc, ctx) {
        return Err(type_not_found(id));
    }
    Ok(t)
}

// ---- group types ----

async fn index(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    RawQuery(pairs): RawQuery,
) -> Result<Response> {
    require(mv, 11)?;
    let admin = is_admin(&svc, &ctx);
    let mut q = ListQuery::parse(&pairs)?;
    let is_public = q.take("is_public");
    // admins choose (public by default, `None` for every one); others see public ones
    let want: Option<bool> = if admin {
        match is_public.as_deref() {
            None => Some(true),
            Some(v) if v.eq_ignore_ascii_case("none") => None,
            Some(v) => Some(
                parse_bool("is_public", &Value::String(v.to_string()))
                    .map_err(|_| bad(format!("Invalid is_public filter [{v}]")))?,
            ),
        }
    } else {
        Some(true)
    };
    if !admin {
        q.filters.clear();
    }
    let mut items = Vec::new();
    for t in store::list_types(&svc.db.read).await? {
        if want.is_some_and(|w| w != t.is_public) {
            continue;
        }
        let mut v = view(&svc, &ctx, &t);
        v["created_at"] = json!(t.created_at);
        v["updated_at"] = json!(t.updated_at);
        items.push(v);
    }
    let base = format!("{}/v3/group_types", svc.base_url);
    let (mut page, links, _) =
        list::page(items, &q, &["id", "name", "description", "is_public", "created_at", "updated_at"], &base)?;
    for it in &mut page {
        if let Some(o) = it.as_object_mut() {
            o.remove("created_at");
            o.remove("updated_at");
        }
    }
    let mut out = json!({"group_types": page});
    if let Some(l) = links {
        out["group_type_links"] = l;
    }
    Ok(ok(out))
}

async fn show(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    Path(id): Path<String>,
) -> Result<Response> {
    require(mv, 11)?;
    if id == "default" {
        // Cinder's `default_group_type` is unset unless configured: no default
        return Err(not_found("Default group type can not be found."));
    }
    let t = find(&svc, &ctx, &id).await?;
    Ok(ok(json!({"group_type": view(&svc, &ctx, &t)})))
}

fn name_value(field: &str, v: &Value, allow_empty: bool) -> Result<String> {
    let Some(s) = v.as_str() else {
        return Err(invalid(field, format!("Value: {v}. {v} is not of type 'string'")));
    };
    let n = s.chars().count();
    if n > 255 {
        return Err(invalid(field, format!("Value: {s}. '{s}' is too long")));
    }
    if n == 0 && !allow_empty {
        return Err(invalid(field, format!("Value: {s}. '{s}' is too short")));
    }
    Ok(s.to_string())
}

async fn create(AxState(svc): AxState<State>, Auth(ctx): Auth, mv: Microversion, body: Body) -> Result<Response> {
    require(mv, 11)?;
    authorize(&svc, &ctx, CREATE_POLICY, &project_of(&ctx))?;
    let obj = body_obj(&body.0, "group_type")?;
    only("group_type", obj, &["name", "description", "is_public", "group_specs"])?;
    let name = match obj.get("name") {
        Some(v) => name_value("name", v, false)?,
        None => return Err(invalid("group_type", "'name' is a required property")),
    };
    if name.trim().is_empty() {
        return Err(invalid("name", "The 'name' can not be empty."));
    }
    let description = opt_text("description", obj.get("description"), 255)?;
    let is_public = match obj.get("is_public") {
        None => true,
        Some(v) => parse_bool("is_public", v)?,
    };
    let specs = match obj.get("group_specs") {
        None | Some(Value::Null) => Map::new(),
        Some(v) => specs_from("group_specs", v, true)?,
    };
    let t = store::create_type(&svc.db.write, &name, description, is_public, specs).await?;
    Ok((axum::http::StatusCode::ACCEPTED, axum::Json(json!({"group_type": view(&svc, &ctx, &t)}))).into_response())
}

async fn update(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    Path(id): Path<String>,
    body: Body,
) -> Result<Response> {
    require(mv, 11)?;
    authorize(&svc, &ctx, UPDATE_POLICY, &project_of(&ctx))?;
    let obj = body_obj(&body.0, "group_type")?;
    only("group_type", obj, &["name", "description", "is_public"])?;
    let name = match obj.get("name") {
        None | Some(Value::Null) => None,
        Some(v) => Some(name_value("name", v, true)?),
    };
    let description = opt_text("description", obj.get("description"), 255)?;
    let is_public = match obj.get("is_public") {
        None | Some(Value::Null) => None,
        Some(v) => Some(parse_bool("is_public", v)?),
    };
    if let Some(n) = &name
        && !n.is_empty()
        && n.trim().is_empty()
    {
        return Err(bad("Group type name can not be empty."));
    }
    if name.is_none() && description.is_none() && is_public.is_none() {
        return Err(bad("Specify group type name, description or a combination thereof."));
    }
    // an empty name leaves the name as it is (Cinder: `if name:`)
    let name = name.filter(|n| !n.is_empty());
    let t = store::get_type(&svc.db.write, &id).await?.ok_or_else(|| type_not_found(&id))?;
    let t = store::update_type(&svc.db.write, &t, name, description, is_public).await?;
    Ok(ok(json!({"group_type": view(&svc, &ctx, &t)})))
}

async fn delete(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    Path(id): Path<String>,
) -> Result<Response> {
    require(mv, 11)?;
    authorize(&svc, &ctx, DELETE_POLICY, &project_of(&ctx))?;
    let db = &svc.db.write;
    let t = store::get_type(db, &id).await?.ok_or_else(|| type_not_found(&id))?;
    if store::type_in_use(db, &t.id).await? {
        return Err(bad("Target group type is still in use."));
    }
    store::delete_type(db, &t.id).await?;
    Ok(accepted_empty())
}

// ---- group specs ----

async fn type_for_specs(svc: &VolumeService, ctx: &AuthContext, id: &str) -> Result<group_type::Model> {
    find(svc, ctx, id).await
}

async fn specs_index(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    Path(id): Path<String>,
) -> Result<Response> {
    require(mv, 11)?;
    authorize(&svc, &ctx, SPEC_GET_ALL_POLICY, &project_of(&ctx))?;
    let t = type_for_specs(&svc, &ctx, &id).await?;
    Ok(ok(json!({"group_specs": store::specs(&t)})))
}

async fn specs_create(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    Path(id): Path<String>,
    body: Body,
) -> Result<Response> {
    require(mv, 11)?;
    authorize(&svc, &ctx, SPEC_CREATE_POLICY, &project_of(&ctx))?;
    let obj = body_obj(&body.0, "group_specs")?;
    let specs = specs_from("group_specs", &Value::Object(obj.clone()), false)?;
    let t = type_for_specs(&svc, &ctx, &id).await?;
    let mut current = store::specs(&t);
    current.extend(specs.clone());
    store::set_specs(&svc.db.write, &t.id, &current).await?;
    Ok((axum::http::StatusCode::ACCEPTED, axum::Json(json!({"group_specs": specs}))).into_response())
}

async fn specs_show(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    Path((id, key)): Path<(String, String)>,
) -> Result<Response> {
    require(mv, 11)?;
    authorize(&svc, &ctx, SPEC_GET_POLICY, &project_of(&ctx))?;
    let t = type_for_specs(&svc, &ctx, &id).await?;
    let specs = store::specs(&t);
    let v = specs.get(&key).ok_or_else(|| not_found(format!("Group Type {id} has no extra spec with key {key}.")))?;
    let mut out = Map::new();
    out.insert(key, v.clone());
    Ok(ok(Value::Object(out)))
}

async fn specs_update(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    Path((id, key)): Path<(String, String)>,
    body: Body,
) -> Result<Response> {
    require(mv, 11)?;
    authorize(&svc, &ctx, SPEC_UPDATE_POLICY, &project_of(&ctx))?;
    let specs = specs_from("body", &body.0, false)?;
    if specs.len() != 1 {
        let what = if specs.is_empty() { "does not have enough properties" } else { "has too many properties" };
        return Err(bad(format!("Invalid input for field/attribute body. {} {what}", body.0)));
    }
    let t = type_for_specs(&svc, &ctx, &id).await?;
    if !specs.contains_key(&key) {
        return Err(bad("Request body and URI mismatch"));
    }
    let mut current = store::specs(&t);
    current.extend(specs.clone());
    store::set_specs(&svc.db.write, &t.id, &current).await?;
    Ok(ok(Value::Object(specs)))
}

async fn specs_delete(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    Path((id, key)): Path<(String, String)>,
) -> Result<Response> {
    require(mv, 11)?;
    authorize(&svc, &ctx, SPEC_DELETE_POLICY, &project_of(&ctx))?;
    let t = type_for_specs(&svc, &ctx, &id).await?;
    let mut current = store::specs(&t);
    if current.remove(&key).is_none() {
        return Err(not_found(format!("Group Type {id} has no specs with key {key}.")));
    }
    store::set_specs(&svc.db.write, &t.id, &current).await?;
    Ok(accepted_empty())
}
