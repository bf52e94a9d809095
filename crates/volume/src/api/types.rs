//! Volume types (`/v3/types`): list, show (also `default`), create, update,
//! delete; extra specs (`/v3/types/{id}/extra_specs[/{key}]`); access to
//! private types (`/v3/types/{id}/os-volume-type-access`, the
//! `addProjectAccess` / `removeProjectAccess` actions); encryption specs
//! (`/v3/types/{id}/encryption[/{spec}]`).
//!
//! Views as Cinder's: create and update answer with the plain view (with
//! every extra spec); show and list with the v3 view (extra specs as policy
//! allows, `qos_specs_id` for admins, `os-volume-type-access:is_public`).

use std::collections::HashSet;

use axum::Router;
use axum::extract::{Path, State as AxState};
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::{Map, Value, json};
use stratus_core::AuthContext;
use stratus_core::auth::Auth;
use stratus_core::extract::RawQuery;
use stratus_core::microversion::Microversion;

use crate::api::list::{self, ListQuery};
use crate::api::{Body, accepted_empty, allowed, authorize, is_admin, ok, project_of};
use crate::entity::{encryption, volume_type};
use crate::error::{Result, VolumeError, bad, conflict, not_found};
use crate::store::types as store;
use crate::{State, VolumeService};

pub fn routes() -> Router<State> {
    Router::new()
        .route("/v3/types", get(index).post(create))
        .route("/v3/types/{id}", get(show).put(update).delete(delete))
        .route("/v3/types/{id}/action", post(action))
        .route("/v3/types/{id}/extra_specs", get(specs_index).post(specs_create))
        .route("/v3/types/{id}/extra_specs/{key}", get(specs_show).put(specs_update).delete(specs_delete))
        .route("/v3/types/{id}/os-volume-type-access", get(access_index))
        .route("/v3/types/{id}/encryption", get(encryption_index).post(encryption_create))
        .route(
            "/v3/types/{id}/encryption/{spec}",
            get(encryption_show).put(encryption_update).delete(encryption_delete),
        )
}

const CREATE_POLICY: &str = "volume_extension:type_create";
const UPDATE_POLICY: &str = "volume_extension:type_update";
const DELETE_POLICY: &str = "volume_extension:type_delete";
const GET_POLICY: &str = "volume_extension:type_get";
const GET_ALL_POLICY: &str = "volume_extension:type_get_all";
const QOS_POLICY: &str = "volume_extension:access_types_qos_specs_id";
const EXTRA_SPEC_POLICY: &str = "volume_extension:access_types_extra_specs";
const SPECS_INDEX: &str = "volume_extension:types_extra_specs:index";
const SPECS_SHOW: &str = "volume_extension:types_extra_specs:show";
const SPECS_CREATE: &str = "volume_extension:types_extra_specs:create";
const SPECS_UPDATE: &str = "volume_extension:types_extra_specs:update";
const SPECS_DELETE: &str = "volume_extension:types_extra_specs:delete";
const READ_SENSITIVE: &str = "volume_extension:types_extra_specs:read_sensitive";
const ACCESS_POLICY: &str = "volume_extension:volume_type_access";
const ACCESS_WHO_POLICY: &str = "volume_extension:volume_type_access:get_all_for_type";
const ADD_PROJECT_POLICY: &str = "volume_extension:volume_type_access:addProjectAccess";
const REMOVE_PROJECT_POLICY: &str = "volume_extension:volume_type_access:removeProjectAccess";
const ENC_CREATE: &str = "volume_extension:volume_type_encryption:create";
const ENC_GET: &str = "volume_extension:volume_type_encryption:get";
const ENC_UPDATE: &str = "volume_extension:volume_type_encryption:update";
const ENC_DELETE: &str = "volume_extension:volume_type_encryption:delete";

/// The extra specs a caller without `read_sensitive` may see.
pub const USER_VISIBLE_EXTRA_SPECS: &[&str] = &["RESKEY:availability_zones", "multiattach", "replication_enabled"];

const ACCESS_KEY: &str = "os-volume-type-access:is_public";

/// A volume type as Cinder renders it: id, name, description, is_public,
/// `os-volume-type-access:is_public`, and (when asked) every extra spec.
/// `qos_specs_id` is left to callers that know the caller is an admin.
pub fn render(t: &volume_type::Model, show_extra_specs: bool) -> Value {
    let mut v = json!({
        "id": t.id,
        "name": t.name,
        "description": t.description,
        "is_public": t.is_public,
        ACCESS_KEY: t.is_public,
    });
    if show_extra_specs {
        v["extra_specs"] = Value::Object(store::extra_specs(t));
    }
    v
}

/// The extra specs of a type as the caller may see them.
fn specs_for(svc: &VolumeService, ctx: &AuthContext, t: &volume_type::Model) -> Map<String, Value> {
    let all = store::extra_specs(t);
    if allowed(svc, ctx, READ_SENSITIVE, &project_of(ctx)) {
        all
    } else {
        all.into_iter().filter(|(k, _)| USER_VISIBLE_EXTRA_SPECS.contains(&k.as_str())).collect()
    }
}

/// The v3 view (show and list).
fn view(svc: &VolumeService, ctx: &AuthContext, t: &volume_type::Model) -> Value {
    let project = project_of(ctx);
    let mut v = json!({
        "id": t.id,
        "name": t.name,
        "description": t.description,
        "is_public": t.is_public,
    });
    if allowed(svc, ctx, EXTRA_SPEC_POLICY, &project) {
        v["extra_specs"] = Value::Object(specs_for(svc, ctx, t));
    }
    if allowed(svc, ctx, QOS_POLICY, &project) {
        v["qos_specs_id"] = json!(t.qos_specs_id);
    }
    if allowed(svc, ctx, ACCESS_POLICY, &project) {
        v[ACCESS_KEY] = json!(t.is_public);
    }
    v
}

/// The plain view (create and update answers).
fn manage_view(t: &volume_type::Model) -> Value {
    json!({
        "id": t.id,
        "name": t.name,
        "description": t.description,
        "is_public": t.is_public,
        "extra_specs": store::extra_specs(t),
    })
}

pub fn type_not_found(id: &str) -> VolumeError {
    not_found(format!("Volume type {id} could not be found."))
}

/// A type by id as the caller may see it (404 for a private type the
/// caller's project has no access to).
async fn find(svc: &VolumeService, ctx: &AuthContext, id: &str) -> Result<volume_type::Model> {
    let t = store::get_by_id(&svc.db.read, id).await?.ok_or_else(|| type_not_found(id))?;
    if !store::visible_to(&svc.db.read, &t, &project_of(ctx), is_admin(svc, ctx)).await? {
        return Err(type_not_found(id));
    }
    Ok(t)
}

// ---- validation, in the words of Cinder's JSON schemas ----

fn invalid(field: &str, msg: impl std::fmt::Display) -> VolumeError {
    bad(format!("Invalid input for field/attribute {field}. {msg}"))
}

/// `parameter_types.boolean`: a boolean or one of its spellings as a string.
pub fn parse_bool(field: &str, v: &Value) -> Result<bool> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) => match s.as_str() {
            "True" | "TRUE" | "true" | "1" | "ON" | "On" | "on" | "YES" | "Yes" | "yes" | "y" | "t" => Ok(true),
            "False" | "FALSE" | "false" | "0" | "OFF" | "Off" | "off" | "NO" | "No" | "no" | "n" | "f" => Ok(false),
            _ => Err(invalid(field, format!("Value: {s}. {v} is not one of the accepted boolean values"))),
        },
        other => Err(invalid(field, format!("Value: {other}. {other} is not of type 'boolean', 'string'"))),
    }
}

fn only(field: &str, obj: &Map<String, Value>, allowed_keys: &[&str]) -> Result<()> {
    if let Some(k) = obj.keys().find(|k| !allowed_keys.contains(&k.as_str())) {
        return Err(invalid(field, format!("Additional properties are not allowed ('{k}' was unexpected)")));
    }
    Ok(())
}

/// An optional string of at most `max` characters (null allowed).
fn opt_string(field: &str, v: Option<&Value>, max: usize) -> Result<Option<Option<String>>> {
    match v {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::String(s)) if s.chars().count() <= max => Ok(Some(Some(s.clone()))),
        Some(Value::String(s)) => Err(invalid(field, format!("Value: {s}. '{s}' is too long"))),
        Some(other) => Err(invalid(field, format!("Value: {other}. {other} is not of type 'string', 'null'"))),
    }
}

/// A name: a string of 1 to 255 characters, not only blanks.
fn name_of(field: &str, v: &Value) -> Result<String> {
    let Some(s) = v.as_str() else {
        return Err(invalid(field, format!("Value: {v}. {v} is not of type 'string'")));
    };
    if s.is_empty() || s.chars().count() > 255 {
        return Err(invalid(field, format!("Value: {s}. The name must be 1 to 255 characters long.")));
    }
    if s.trim().is_empty() {
        return Err(invalid(field, "The 'name' can not be empty."));
    }
    Ok(s.to_string())
}

fn spec_key_ok(k: &str, allow_space: bool) -> bool {
    let n = k.chars().count();
    (1..=255).contains(&n)
        && k.chars().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':' | '.') || (allow_space && matches!(c, ' ' | '/'))
        })
}

/// Extra specs (or QoS specs): keys of `[a-zA-Z0-9-_:.]` (with ` /` when
/// `allow_space`), values strings (or null) of at most 255 characters.
pub fn specs_from(field: &str, v: &Value, allow_space: bool) -> Result<Map<String, Value>> {
    let Some(obj) = v.as_object() else {
        return Err(invalid(field, format!("Value: {v}. {v} is not of type 'object'")));
    };
    for (k, val) in obj {
        if !spec_key_ok(k, allow_space) {
            return Err(invalid(field, format!("Additional properties are not allowed ('{k}' was unexpected)")));
        }
        match val {
            Value::Null => {}
            Value::String(s) if s.chars().count() <= 255 => {}
            Value::String(s) => return Err(invalid(field, format!("Value: {s}. '{s}' is too long"))),
            other => return Err(invalid(field, format!("Value: {other}. {other} is not of type 'string', 'null'"))),
        }
    }
    Ok(obj.clone())
}

fn body_obj<'a>(body: &'a Value, key: &str) -> Result<&'a Map<String, Value>> {
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

// ---- types ----

async fn index(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    RawQuery(pairs): RawQuery,
) -> Result<Response> {
    authorize(&svc, &ctx, GET_ALL_POLICY, &project_of(&ctx))?;
    let admin = is_admin(&svc, &ctx);
    let project = project_of(&ctx);
    let mut q = ListQuery::parse(&pairs)?;
    let is_public_param = q.take("is_public");
    let specs_param = q.take("extra_specs");
    // Cinder: admins choose (public by default, `None` for all); others see public ones
    let want_public: Option<bool> = if admin {
        match is_public_param.as_deref() {
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
        // others may filter by is_public (ignored) and, from 3.52, extra specs
        q.filters.clear();
    }
    let specs_filter = match specs_param {
        Some(v) if admin || mv.at_least(3, 52) => {
            Some(list::parse_dict(&v).ok_or_else(|| bad(format!("Invalid input received: extra_specs={v}")))?)
        }
        _ => None,
    };
    if let Some(f) = &specs_filter
        && !allowed(&svc, &ctx, READ_SENSITIVE, &project)
        && f.keys().any(|k| !USER_VISIBLE_EXTRA_SPECS.contains(&k.as_str()))
    {
        return Ok(ok(json!({"volume_types": []})));
    }
    let shared: HashSet<String> =
        if project.is_empty() { HashSet::new() } else { store::shared_with(&svc.db.read, &project).await? };
    let mut items = Vec::new();
    for t in store::list_all(&svc.db.read).await? {
        let keep = match want_public {
            None => true,
            Some(true) => t.is_public || shared.contains(&t.id),
            Some(false) => !t.is_public,
        };
        if !keep {
            continue;
        }
        if let Some(f) = &specs_filter {
            let have = store::extra_specs(&t);
            let all = f.iter().all(|(k, want)| {
                let want = match want {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                match have.get(k).and_then(Value::as_str) {
                    Some(h) if k == "RESKEY:availability_zones" => h.contains(&want),
                    Some(h) => h == want,
                    None => false,
                }
            });
            if !all {
                continue;
            }
        }
        let mut v = view(&svc, &ctx, &t);
        v["created_at"] = json!(t.created_at);
        v["updated_at"] = json!(t.updated_at);
        items.push(v);
    }
    let base = if project.is_empty() {
        format!("{}/v3/types", svc.base_url)
    } else {
        format!("{}/v3/{project}/types", svc.base_url)
    };
    let (mut page, links, _) =
        list::page(items, &q, &["id", "name", "description", "is_public", "created_at", "updated_at"], &base)?;
    for it in &mut page {
        if let Some(o) = it.as_object_mut() {
            o.remove("created_at");
            o.remove("updated_at");
        }
    }
    let mut out = json!({"volume_types": page});
    if let Some(l) = links {
        out["volume_type_links"] = l;
    }
    Ok(ok(out))
}

async fn show(AxState(svc): AxState<State>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Response> {
    let t = if id == "default" {
        store::default_for(&svc.db.write, &project_of(&ctx), &svc.cfg.volume.default_volume_type).await?
    } else {
        find(&svc, &ctx, &id).await?
    };
    authorize(&svc, &ctx, GET_POLICY, &project_of(&ctx))?;
    Ok(ok(json!({"volume_type": view(&svc, &ctx, &t)})))
}

async fn create(AxState(svc): AxState<State>, Auth(ctx): Auth, body: Body) -> Result<Response> {
    authorize(&svc, &ctx, CREATE_POLICY, &project_of(&ctx))?;
    let obj = body_obj(&body.0, "volume_type")?;
    only("volume_type", obj, &["name", "description", "extra_specs", ACCESS_KEY])?;
    let name = name_of("name", obj.get("name").unwrap_or(&Value::Null))?;
    let description = opt_string("description", obj.get("description"), 255)?.flatten();
    let extra_specs = match obj.get("extra_specs") {
        None | Some(Value::Null) => Map::new(),
        Some(v) => specs_from("extra_specs", v, true)?,
    };
    let is_public = match obj.get(ACCESS_KEY) {
        None => true,
        Some(v) => parse_bool(ACCESS_KEY, v)?,
    };
    let t = store::create(&svc.db.write, store::NewType { name, description, is_public, extra_specs }).await?;
    let mut v = manage_view(&t);
    if allowed(&svc, &ctx, ACCESS_POLICY, &project_of(&ctx)) {
        v[ACCESS_KEY] = json!(t.is_public);
    }
    Ok(ok(json!({"volume_type": v})))
}

async fn update(AxState(svc): AxState<State>, Auth(ctx): Auth, Path(id): Path<String>, body: Body) -> Result<Response> {
    let obj = body_obj(&body.0, "volume_type")?;
    only("volume_type", obj, &["name", "description", "is_public"])?;
    let name = match obj.get("name") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.chars().count() > 255 => {
            return Err(invalid("name", format!("Value: {s}. '{s}' is too long")));
        }
        Some(Value::String(s)) if s.is_empty() => {
            return Err(invalid("name", format!("Value: {s}. '{s}' is too short")));
        }
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => return Err(invalid("name", format!("Value: {other}. {other} is not of type 'string', 'null'"))),
    };
    let description = opt_string("description", obj.get("description"), 255)?.flatten();
    let is_public = match obj.get("is_public") {
        None | Some(Value::Null) => None,
        Some(v) => Some(parse_bool("is_public", v)?),
    };
    authorize(&svc, &ctx, UPDATE_POLICY, &project_of(&ctx))?;
    if let Some(n) = &name
        && n.trim().is_empty()
    {
        return Err(bad("Volume type name can not be empty."));
    }
    if name.is_none() && description.is_none() && is_public.is_none() {
        return Err(bad("Specify volume type name, description, is_public or a combination thereof."));
    }
    let t = store::get_by_id(&svc.db.write, &id).await?.ok_or_else(|| type_not_found(&id))?;
    let t = store::update(&svc.db.write, &t, name, description, is_public).await?;
    Ok(ok(json!({"volume_type": manage_view(&t)})))
}

async fn delete(AxState(svc): AxState<State>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Response> {
    authorize(&svc, &ctx, DELETE_POLICY, &project_of(&ctx))?;
    let db = &svc.db.write;
    let t = store::get_by_id(db, &id).await?.ok_or_else(|| type_not_found(&id))?;
    let default_deletion = || bad(format!("The volume type {} is a default volume type and cannot be deleted.", t.id));
    if !store::default_of_projects(db, &t.id).await?.is_empty() {
        return Err(default_deletion());
    }
    let default = store::ensure_default(db, &svc.cfg.volume.default_volume_type).await?;
    if default.id == t.id {
        return Err(default_deletion());
    }
    if store::count(db).await? <= 1 {
        return Err(bad(format!(
            "The volume type {} is the only currently defined volume type and cannot be deleted.",
            t.id
        )));
    }
    if store::in_use(db, &t.id).await? {
        return Err(bad("Target volume type is still in use."));
    }
    store::delete(db, &t.id).await?;
    Ok(accepted_empty())
}

// ---- access to private types ----

async fn access_index(AxState(svc): AxState<State>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Response> {
    authorize(&svc, &ctx, ACCESS_WHO_POLICY, &project_of(&ctx))?;
    let t = find(&svc, &ctx, &id).await?;
    if t.is_public {
        return Err(not_found("Access list not available for public volume types."));
    }
    let items: Vec<Value> = store::access_list(&svc.db.read, &t.id)
        .await?
        .into_iter()
        .map(|p| json!({"volume_type_id": t.id, "project_id": p}))
        .collect();
    Ok(ok(json!({"volume_type_access": items})))
}

async fn action(AxState(svc): AxState<State>, Auth(ctx): Auth, Path(id): Path<String>, body: Body) -> Result<Response> {
    let Some(top) = body.0.as_object() else {
        return Err(bad("Malformed request body"));
    };
    let Some((name, _)) = top.iter().next() else {
        return Err(bad("Malformed request body"));
    };
    let (rule, add) = match name.as_str() {
        "addProjectAccess" => (ADD_PROJECT_POLICY, true),
        "removeProjectAccess" => (REMOVE_PROJECT_POLICY, false),
        other => return Err(bad(format!("There is no such action: {other}"))),
    };
    let obj = body_obj(&body.0, name)?;
    only(name, obj, &["project"])?;
    let project = match obj.get("project") {
        Some(Value::String(s)) if (1..=255).contains(&s.chars().count()) => s.clone(),
        Some(other) => return Err(invalid("project", format!("Value: {other}. {other} is not a valid project"))),
        None => return Err(invalid(name, "'project' is a required property")),
    };
    authorize(&svc, &ctx, rule, &project_of(&ctx))?;
    let db = &svc.db.write;
    let t = store::get_by_id(db, &id).await?.ok_or_else(|| type_not_found(&id))?;
    if t.is_public {
        return Err(bad("Invalid volume type: Type access modification is not applicable to public volume type."));
    }
    if add {
        if !store::add_access(db, &t.id, &project).await? {
            return Err(conflict(format!("Volume type access for {id} / {project} combination already exists.")));
        }
    } else if !store::remove_access(db, &t.id, &project).await? {
        return Err(not_found(format!("Volume type access not found for {id} / {project} combination.")));
    }
    Ok(accepted_empty())
}

// ---- extra specs ----

fn spec_not_found(type_id: &str, key: &str) -> VolumeError {
    not_found(format!("Volume Type {type_id} has no extra specs with key {key}."))
}

async fn refuse_in_use(svc: &VolumeService, type_id: &str) -> Result<()> {
    if store::in_use(&svc.db.write, type_id).await? {
        return Err(bad("Volume Type is currently in use."));
    }
    Ok(())
}

/// Cinder refuses `cacheable` and `multiattach` both `<is> True`.
fn check_cacheable(new: &Map<String, Value>, current: &Map<String, Value>) -> Result<()> {
    let is_true = |m: &Map<String, Value>, k: &str| m.get(k).and_then(Value::as_str) == Some("<is> True");
    if (is_true(new, "multiattach") && is_true(current, "cacheable"))
        || (is_true(new, "cacheable") && is_true(current, "multiattach"))
        || (is_true(new, "cacheable") && is_true(new, "multiattach"))
    {
        return Err(bad("cacheable cannot be set with multiattach."));
    }
    Ok(())
}

async fn specs_index(AxState(svc): AxState<State>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Response> {
    authorize(&svc, &ctx, SPECS_INDEX, &project_of(&ctx))?;
    let t = find(&svc, &ctx, &id).await?;
    Ok(ok(json!({"extra_specs": specs_for(&svc, &ctx, &t)})))
}

async fn specs_create(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    body: Body,
) -> Result<Response> {
    let obj = body_obj(&body.0, "extra_specs")?;
    let specs = specs_from("extra_specs", &Value::Object(obj.clone()), false)?;
    authorize(&svc, &ctx, SPECS_CREATE, &project_of(&ctx))?;
    refuse_in_use(&svc, &id).await?;
    let t = store::get_by_id(&svc.db.write, &id).await?.ok_or_else(|| type_not_found(&id))?;
    let mut current = store::extra_specs(&t);
    check_cacheable(&specs, &current)?;
    for (k, v) in &specs {
        current.insert(k.clone(), v.clone());
    }
    store::set_extra_specs(&svc.db.write, &t, current).await?;
    Ok(ok(json!({"extra_specs": specs})))
}

async fn specs_show(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    Path((id, key)): Path<(String, String)>,
) -> Result<Response> {
    authorize(&svc, &ctx, SPECS_SHOW, &project_of(&ctx))?;
    let t = find(&svc, &ctx, &id).await?;
    let specs = specs_for(&svc, &ctx, &t);
    let v = specs.get(&key).ok_or_else(|| spec_not_found(&id, &key))?;
    let mut out = Map::new();
    out.insert(key, v.clone());
    Ok(ok(Value::Object(out)))
}

async fn specs_update(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    Path((id, key)): Path<(String, String)>,
    body: Body,
) -> Result<Response> {
    let specs = specs_from("body", &body.0, false)?;
    if specs.len() != 1 {
        let what = if specs.is_empty() { "does not have enough properties" } else { "has too many properties" };
        return Err(bad(format!("Invalid input for field/attribute body. {} {what}", body.0)));
    }
    authorize(&svc, &ctx, SPECS_UPDATE, &project_of(&ctx))?;
    refuse_in_use(&svc, &id).await?;
    let t = store::get_by_id(&svc.db.write, &id).await?.ok_or_else(|| type_not_found(&id))?;
    if !specs.contains_key(&key) {
        return Err(bad("Request body and URI mismatch"));
    }
    let mut current = store::extra_specs(&t);
    check_cacheable(&specs, &current)?;
    for (k, v) in &specs {
        current.insert(k.clone(), v.clone());
    }
    store::set_extra_specs(&svc.db.write, &t, current).await?;
    Ok(ok(Value::Object(specs)))
}

async fn specs_delete(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    Path((id, key)): Path<(String, String)>,
) -> Result<Response> {
    let t = store::get_by_id(&svc.db.write, &id).await?.ok_or_else(|| type_not_found(&id))?;
    authorize(&svc, &ctx, SPECS_DELETE, &project_of(&ctx))?;
    refuse_in_use(&svc, &id).await?;
    let mut current = store::extra_specs(&t);
    if current.remove(&key).is_none() {
        return Err(spec_not_found(&id, &key));
    }
    store::set_extra_specs(&svc.db.write, &t, current).await?;
    Ok(accepted_empty())
}

// ---- encryption ----

fn encryption_not_found(type_id: &str) -> VolumeError {
    not_found(format!("Volume type encryption for type {type_id} does not exist."))
}

fn render_encryption(e: &encryption::Model) -> Value {
    json!({
        "volume_type_id": e.volume_type_id,
        "encryption_id": e.encryption_id,
        "key_size": e.key_size,
        "provider": e.provider,
        "control_location": e.control_location,
        "cipher": e.cipher,
        "deleted": false,
        "created_at": e.created_at,
        "updated_at": e.updated_at,
        "deleted_at": null,
    })
}

/// The `encryption` object of a create or update, validated; with the
/// fields the body gave, as Cinder echoes them.
fn encryption_from(body: &Value, create: bool) -> Result<(store::EncryptionSpec, Map<String, Value>)> {
    let obj = body_obj(body, "encryption")?;
    let mut spec = store::EncryptionSpec::default();
    let mut echo = Map::new();
    if let Some(v) = obj.get("provider") {
        match v {
            Value::String(s) if s.chars().count() <= 255 => spec.provider = Some(s.clone()),
            other => return Err(invalid("provider", format!("Value: {other}. {other} is not a valid provider"))),
        }
        echo.insert("provider".into(), v.clone());
    } else if create {
        return Err(invalid("encryption", "'provider' is a required property"));
    }
    if let Some(v) = obj.get("control_location") {
        match v.as_str() {
            Some(s @ ("front-end" | "back-end")) => spec.control_location = Some(s.to_string()),
            _ => {
                return Err(invalid(
                    "control_location",
                    format!("Value: {v}. {v} is not one of ['front-end', 'back-end']"),
                ));
            }
        }
        echo.insert("control_location".into(), v.clone());
    } else if create {
        return Err(invalid("encryption", "'control_location' is a required property"));
    }
    if let Some(c) = opt_string("cipher", obj.get("cipher"), 255)? {
        echo.insert("cipher".into(), json!(c));
        spec.cipher = Some(c);
    }
    if let Some(v) = obj.get("key_size") {
        let size = match v {
            Value::Null => None,
            Value::Number(n) => match n.as_i64() {
                Some(i) if i >= 0 => Some(i),
                _ => return Err(invalid("key_size", format!("Value: {v}. {v} is not a valid key size"))),
            },
            Value::String(s) => match s.trim().parse::<i64>() {
                Ok(i) if i >= 0 => Some(i),
                _ => return Err(invalid("key_size", format!("Value: {s}. {s} is not a valid key size"))),
            },
            other => return Err(invalid("key_size", format!("Value: {other}. {other} is not a valid key size"))),
        };
        echo.insert("key_size".into(), json!(size));
        spec.key_size = Some(size);
    }
    Ok((spec, echo))
}

async fn encryption_index(AxState(svc): AxState<State>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Response> {
    authorize(&svc, &ctx, ENC_GET, &project_of(&ctx))?;
    let t = find(&svc, &ctx, &id).await?;
    Ok(ok(match store::encryption_of(&svc.db.read, &t.id).await? {
        Some(e) => render_encryption(&e),
        None => json!({}),
    }))
}

async fn encryption_create(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    body: Body,
) -> Result<Response> {
    let (spec, mut echo) = encryption_from(&body.0, true)?;
    authorize(&svc, &ctx, ENC_CREATE, &project_of(&ctx))?;
    let db = &svc.db.write;
    if store::in_use(db, &id).await? {
        return Err(bad("Cannot create encryption specs. Volume type in use."));
    }
    let t = store::get_by_id(db, &id).await?.ok_or_else(|| type_not_found(&id))?;
    if store::encryption_of(db, &t.id).await?.is_some() {
        return Err(bad(format!("Volume type encryption for type {} already exists.", t.id)));
    }
    let e = store::create_encryption(db, &t.id, &spec).await?;
    echo.insert("volume_type_id".into(), json!(e.volume_type_id));
    echo.insert("encryption_id".into(), json!(e.encryption_id));
    Ok(ok(json!({"encryption": echo})))
}

async fn encryption_update(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    Path((id, _encryption_id)): Path<(String, String)>,
    body: Body,
) -> Result<Response> {
    let (spec, echo) = encryption_from(&body.0, false)?;
    authorize(&svc, &ctx, ENC_UPDATE, &project_of(&ctx))?;
    let db = &svc.db.write;
    let t = store::get_by_id(db, &id).await?.ok_or_else(|| type_not_found(&id))?;
    if store::in_use(db, &t.id).await? {
        return Err(bad("Cannot update encryption specs. Volume type in use."));
    }
    let current = store::encryption_of(db, &t.id).await?.ok_or_else(|| encryption_not_found(&t.id))?;
    store::update_encryption(db, &current, &spec).await?;
    Ok(ok(json!({"encryption": echo})))
}

async fn encryption_show(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    Path((id, key)): Path<(String, String)>,
) -> Result<Response> {
    authorize(&svc, &ctx, ENC_GET, &project_of(&ctx))?;
    let t = find(&svc, &ctx, &id).await?;
    let e = store::encryption_of(&svc.db.read, &t.id).await?.ok_or_else(|| encryption_not_found(&t.id))?;
    let all = render_encryption(&e);
    let v = all.get(&key).ok_or_else(|| encryption_not_found(&t.id))?;
    let mut out = Map::new();
    out.insert(key, v.clone());
    Ok(ok(Value::Object(out)))
}

async fn encryption_delete(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    Path((id, _encryption_id)): Path<(String, String)>,
) -> Result<Response> {
    authorize(&svc, &ctx, ENC_DELETE, &project_of(&ctx))?;
    let db = &svc.db.write;
    if store::in_use(db, &id).await? {
        return Err(bad("Cannot delete encryption specs. Volume type in use."));
    }
    if !store::delete_encryption(db, &id).await? {
        return Err(encryption_not_found(&id));
    }
    Ok(accepted_empty())
}
