//! Unified limits: `/v3/registered_limits` (a service's default for a
//! resource), `/v3/limits` (a project's or domain's own value) and
//! `/v3/limits/model` (the enforcement model: flat).

use axum::Router;
use axum::extract::{Path, State as S};
use axum::response::Response;
use axum::routing::get;
use serde_json::{Map, Value, json};
use stratus_core::auth::Auth;
use stratus_core::extract::{Json, RawQuery};

use super::{created, no_content, ok};
use crate::error::{IdentityError, Result, bad, conflict};
use crate::store::misc::{self, Limit, LimitFilter, NewLimit, RegisteredLimit};
use crate::store::{catalog, resource};
use crate::{Identity, State};

pub fn routes() -> Router<State> {
    Router::new()
        .route("/v3/registered_limits", get(list_registered).post(create_registered))
        .route(
            "/v3/registered_limits/{registered_limit_id}",
            get(show_registered).patch(update_registered).delete(delete_registered),
        )
        .route("/v3/limits", get(list_limits).post(create_limits))
        .route("/v3/limits/model", get(model))
        .route("/v3/limits/{limit_id}", get(show_limit).patch(update_limit).delete(delete_limit))
}

const FLAT_DESCRIPTION: &str = "Limit enforcement and validation does not take project hierarchy into consideration.";

pub fn render_registered(s: &Identity, r: &RegisteredLimit) -> Value {
    json!({
        "id": r.id,
        "service_id": r.service_id,
        "region_id": r.region_id,
        "resource_name": r.resource_name,
        "default_limit": r.default_limit,
        "description": r.description,
        "links": s.link(&format!("registered_limits/{}", r.id)),
    })
}

pub fn render_limit(s: &Identity, l: &Limit) -> Value {
    json!({
        "id": l.id,
        "project_id": l.project_id,
        "domain_id": l.domain_id,
        "service_id": l.service_id,
        "region_id": l.region_id,
        "resource_name": l.resource_name,
        "resource_limit": l.resource_limit,
        "description": l.description,
        "links": s.link(&format!("limits/{}", l.id)),
    })
}

// ---- validation (Keystone's limit schemas)

/// One object of a request, with the path its errors name (`limits[0]`).
struct Fields<'a> {
    map: &'a Map<String, Value>,
    path: String,
}

impl<'a> Fields<'a> {
    fn of(v: &'a Value, path: String) -> Result<Self> {
        match v {
            Value::Object(map) => Ok(Fields { map, path }),
            _ => Err(bad(format!("Invalid input for field '{path}': expected an object."))),
        }
    }
    fn err(&self, k: &str, what: &str) -> IdentityError {
        bad(format!("Invalid input for field '{}.{k}': {what}.", self.path))
    }
    fn only(&self, allowed: &[&str]) -> Result<()> {
        match self.map.keys().find(|k| !allowed.contains(&k.as_str())) {
            Some(k) => Err(bad(format!(
                "Invalid input for field '{}': additional properties are not allowed ({k:?} was unexpected).",
                self.path
            ))),
            None => Ok(()),
        }
    }
    fn required(&self, k: &str) -> Result<&'a Value> {
        self.map.get(k).ok_or_else(|| self.err(k, &format!("'{k}' is a required property")))
    }
    fn string(&self, k: &str, v: &Value) -> Result<String> {
        v.as_str().map(str::to_string).ok_or_else(|| self.err(k, "expected a string"))
    }
    /// `resource_name`: 1 to 255 characters, not only blanks.
    fn name(&self, k: &str, v: &Value) -> Result<String> {
        let s = self.string(k, v)?;
        if s.trim().is_empty() || s.chars().count() > 255 {
            return Err(self.err(k, "expected 1 to 255 characters, not all blank"));
        }
        Ok(s)
    }
    /// A string of at most `max` characters, or null.
    fn nullable(&self, k: &str, v: &Value, min: usize, max: usize) -> Result<Option<String>> {
        match v {
            Value::Null => Ok(None),
            Value::String(s) if (min..=max).contains(&s.chars().count()) => Ok(Some(s.clone())),
            Value::String(_) => Err(self.err(k, &format!("expected {min} to {max} characters"))),
            _ => Err(self.err(k, "expected a string or null")),
        }
    }
    /// A project or domain id: letters, digits and dashes, or null.
    fn owner_id(&self, k: &str, v: &Value) -> Result<Option<String>> {
        let id = self.nullable(k, v, 1, 64)?;
        if id.as_deref().is_some_and(|i| !i.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')) {
            return Err(self.err(k, "expected letters, digits and dashes"));
        }
        Ok(id)
    }
    /// A limit value: an integer from -1 (unlimited) to 2147483647.
    fn limit(&self, k: &str, v: &Value) -> Result<i64> {
        match v.as_i64() {
            Some(n) if (-1..=i64::from(i32::MAX)).contains(&n) => Ok(n),
            _ => Err(self.err(k, "expected an integer from -1 to 2147483647")),
        }
    }
}

/// The array under `key` of a batch body (`{"limits": [...]}`), not empty.
fn batch<'a>(body: &'a Value, key: &str) -> Result<&'a Vec<Value>> {
    match body.get(key) {
        Some(Value::Array(a)) if !a.is_empty() => Ok(a),
        Some(Value::Array(_)) => Err(bad(format!("Invalid input for field '{key}': it must not be empty."))),
        Some(_) => Err(bad(format!("Invalid input for field '{key}': expected an array."))),
        None => Err(bad(format!("Expecting to find {key} in request body."))),
    }
}

/// The object under `key` of an update body.
fn single<'a>(body: &'a Value, key: &str) -> Result<Fields<'a>> {
    match body.get(key) {
        Some(v) => Fields::of(v, key.to_string()),
        None => Err(bad(format!("Expecting to find {key} in request body."))),
    }
}

/// Service and region named by a (registered) limit must exist: 400 otherwise.
async fn check_refs(s: &Identity, service_id: Option<&str>, region_id: Option<&str>, target: &str) -> Result<()> {
    if let Some(sid) = service_id
        && catalog::get_service(&s.db, sid).await.is_err()
    {
        return Err(bad(format!("Expecting to find service_id in {target}: could not find service {sid}.")));
    }
    if let Some(rid) = region_id
        && catalog::get_region(&s.db, rid).await.is_err()
    {
        return Err(bad(format!("Expecting to find region_id in {target}: could not find region {rid}.")));
    }
    Ok(())
}

// ---- registered limits

struct NewRegistered {
    service_id: String,
    region_id: Option<String>,
    resource_name: String,
    default_limit: i64,
    description: Option<String>,
}

fn parse_registered(v: &Value, path: String) -> Result<NewRegistered> {
    let f = Fields::of(v, path)?;
    f.only(&["service_id", "region_id", "resource_name", "default_limit", "description"])?;
    Ok(NewRegistered {
        service_id: f.string("service_id", f.required("service_id")?)?,
        region_id: match f.map.get("region_id") {
            Some(r) => f.nullable("region_id", r, 1, 255)?,
            None => None,
        },
        resource_name: f.name("resource_name", f.required("resource_name")?)?,
        default_limit: f.limit("default_limit", f.required("default_limit")?)?,
        description: match f.map.get("description") {
            Some(d) => f.nullable("description", d, 0, 255)?,
            None => None,
        },
    })
}

async fn list_registered(S(s): S<State>, Auth(ctx): Auth, q: RawQuery) -> Result<Response> {
    s.enforce(&ctx, "identity:list_registered_limits", json!({}))?;
    let regs =
        misc::list_registered_limits(&s.db, q.get("service_id"), q.get("region_id"), q.get("resource_name")).await?;
    let items = regs.iter().map(|r| render_registered(&s, r)).collect();
    Ok(ok(s.collection("registered_limits", "registered_limits", items)))
}

async fn create_registered(S(s): S<State>, Auth(ctx): Auth, Json(body): Json<Value>) -> Result<Response> {
    let items = batch(&body, "registered_limits")?;
    let mut news = Vec::new();
    for (i, v) in items.iter().enumerate() {
        news.push(parse_registered(v, format!("registered_limits[{i}]"))?);
    }
    s.enforce(&ctx, "identity:create_registered_limits", json!({}))?;
    // check the whole batch before creating any of it
    for (i, n) in news.iter().enumerate() {
        check_refs(&s, Some(&n.service_id), n.region_id.as_deref(), "registered_limit").await?;
        let twice = news[..i]
            .iter()
            .any(|o| o.service_id == n.service_id && o.region_id == n.region_id && o.resource_name == n.resource_name);
        let existing = misc::list_registered_limits(&s.db, Some(&n.service_id), None, Some(&n.resource_name)).await?;
        if twice || existing.iter().any(|e| e.region_id == n.region_id) {
            return Err(conflict("registered_limit", "Duplicate entry"));
        }
    }
    let mut out = Vec::new();
    for n in news {
        let r = misc::create_registered_limit(
            &s.db,
            &n.service_id,
            n.region_id,
            &n.resource_name,
            n.default_limit,
            n.description,
        )
        .await?;
        out.push(render_registered(&s, &r));
    }
    Ok(created(json!({"registered_limits": out})))
}

async fn show_registered(S(s): S<State>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Response> {
    s.enforce(&ctx, "identity:get_registered_limit", json!({}))?;
    let r = misc::get_registered_limit(&s.db, &id).await?;
    Ok(ok(json!({"registered_limit": render_registered(&s, &r)})))
}

async fn update_registered(
    S(s): S<State>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response> {
    let f = single(&body, "registered_limit")?;
    f.only(&["service_id", "region_id", "resource_name", "default_limit", "description"])?;
    let mut fields = Map::new();
    for (k, v) in f.map {
        let checked = match k.as_str() {
            "service_id" => json!(f.string(k, v)?),
            "region_id" => json!(f.nullable(k, v, 1, 255)?),
            "resource_name" => json!(f.name(k, v)?),
            "default_limit" => json!(f.limit(k, v)?),
            _ => json!(f.nullable(k, v, 0, 255)?),
        };
        fields.insert(k.clone(), checked);
    }
    s.enforce(&ctx, "identity:update_registered_limit", json!({}))?;
    let cur = misc::get_registered_limit(&s.db, &id).await?;
    if misc::registered_limit_in_use(&s.db, &cur).await? {
        return Err(IdentityError::Forbidden(format!(
            "Unable to update or delete registered limit {id} because there are project limits associated with it."
        )));
    }
    if fields.is_empty() {
        return Ok(ok(json!({"registered_limit": render_registered(&s, &cur)})));
    }
    let service_id = fields.get("service_id").and_then(Value::as_str).unwrap_or(&cur.service_id).to_string();
    let region_id = match fields.get("region_id") {
        Some(r) => r.as_str().map(str::to_string),
        None => cur.region_id.clone(),
    };
    let resource_name = fields.get("resource_name").and_then(Value::as_str).unwrap_or(&cur.resource_name).to_string();
    check_refs(
        &s,
        fields.contains_key("service_id").then_some(service_id.as_str()),
        if fields.contains_key("region_id") { region_id.as_deref() } else { None },
        "registered_limit",
    )
    .await?;
    let others = misc::list_registered_limits(&s.db, Some(&service_id), None, Some(&resource_name)).await?;
    if others.iter().any(|o| o.id != id && o.region_id == region_id) {
        return Err(conflict("registered_limit", "Duplicate entry"));
    }
    let r = misc::update_registered_limit(&s.db, &id, &fields).await?;
    Ok(ok(json!({"registered_limit": render_registered(&s, &r)})))
}

async fn delete_registered(S(s): S<State>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Response> {
    s.enforce(&ctx, "identity:delete_registered_limit", json!({}))?;
    let cur = misc::get_registered_limit(&s.db, &id).await?;
    if misc::registered_limit_in_use(&s.db, &cur).await? {
        return Err(IdentityError::Forbidden(format!(
            "Unable to update or delete registered limit {id} because there are project limits associated with it."
        )));
    }
    misc::delete_registered_limit(&s.db, &id).await?;
    Ok(no_content())
}

// ---- limits

fn parse_limit(v: &Value, path: String) -> Result<NewLimit> {
    let f = Fields::of(v, path)?;
    f.only(&["project_id", "domain_id", "service_id", "region_id", "resource_name", "resource_limit", "description"])?;
    let (project_id, domain_id) = match (f.map.get("project_id"), f.map.get("domain_id")) {
        (Some(p), None) => (f.owner_id("project_id", p)?, None),
        (None, Some(d)) => (None, f.owner_id("domain_id", d)?),
        _ => {
            return Err(bad(format!(
                "Invalid input for field '{}': exactly one of 'project_id' and 'domain_id' is required.",
                f.path
            )));
        }
    };
    if project_id.is_none() && domain_id.is_none() {
        return Err(bad(format!("Invalid input for field '{}': a project_id or domain_id is required.", f.path)));
    }
    Ok(NewLimit {
        project_id,
        domain_id,
        service_id: f.string("service_id", f.required("service_id")?)?,
        region_id: match f.map.get("region_id") {
            Some(r) => f.nullable("region_id", r, 1, 255)?,
            None => None,
        },
        resource_name: f.name("resource_name", f.required("resource_name")?)?,
        resource_limit: f.limit("resource_limit", f.required("resource_limit")?)?,
        description: match f.map.get("description") {
            Some(d) => f.nullable("description", d, 0, 255)?,
            None => None,
        },
    })
}

/// Check what a new limit refers to; a project that is a domain makes a domain limit.
async fn resolve_limit(s: &Identity, mut l: NewLimit) -> Result<NewLimit> {
    check_refs(s, Some(&l.service_id), l.region_id.as_deref(), "limit").await?;
    if let Some(pid) = l.project_id.clone() {
        match resource::get(&s.db, &pid).await? {
            Some(p) if p.is_domain => {
                l.project_id = None;
                l.domain_id = Some(p.id);
            }
            Some(_) => {}
            None => {
                return Err(bad(format!("Expecting to find project_id in limit: could not find project {pid}.")));
            }
        }
    }
    if let Some(did) = &l.domain_id
        && resource::get_domain(&s.db, did).await.is_err()
    {
        return Err(bad(format!("Expecting to find domain_id in limit: could not find domain {did}.")));
    }
    let regs = misc::list_registered_limits(&s.db, Some(&l.service_id), None, Some(&l.resource_name)).await?;
    if !regs.iter().any(|r| r.region_id == l.region_id) {
        return Err(IdentityError::Forbidden(
            "Unable to create a limit that has no corresponding registered limit.".into(),
        ));
    }
    Ok(l)
}

fn same_limit(a: &NewLimit, b: &NewLimit) -> bool {
    a.service_id == b.service_id
        && a.region_id == b.region_id
        && a.resource_name == b.resource_name
        && a.project_id == b.project_id
        && a.domain_id == b.domain_id
}

async fn list_limits(S(s): S<State>, Auth(ctx): Auth, q: RawQuery) -> Result<Response> {
    s.enforce(&ctx, "identity:list_limits", json!({}))?;
    let mut f = LimitFilter {
        service_id: q.get("service_id").map(str::to_string),
        region_id: q.get("region_id").map(str::to_string),
        resource_name: q.get("resource_name").map(str::to_string),
        project_id: q.get("project_id").map(str::to_string),
        domain_id: q.get("domain_id").map(str::to_string),
    };
    let superuser = ctx.system_scope || ctx.has_role("admin") || ctx.has_role("service");
    let limits = if superuser {
        misc::list_limits(&s.db, &f).await?
    } else if let Some(d) = &ctx.domain_id {
        // a domain's own limits and those of its projects
        let projects = resource::list_projects(
            &s.db,
            &resource::ProjectFilter { domain_id: Some(d.clone()), ..Default::default() },
        )
        .await?;
        let ids: Vec<String> = projects.into_iter().map(|p| p.id).collect();
        misc::list_limits(&s.db, &f)
            .await?
            .into_iter()
            .filter(|l| match (&l.project_id, &l.domain_id) {
                (Some(p), _) => ids.contains(p),
                (None, Some(ld)) => ld == d,
                (None, None) => false,
            })
            .collect()
    } else if let Some(p) = &ctx.project_id {
        // a project member sees its project's limits only
        if f.project_id.as_ref().is_some_and(|x| x != p) {
            Vec::new()
        } else {
            f.project_id = Some(p.clone());
            misc::list_limits(&s.db, &f).await?
        }
    } else {
        Vec::new()
    };
    let items = limits.iter().map(|l| render_limit(&s, l)).collect();
    Ok(ok(s.collection("limits", "limits", items)))
}

async fn create_limits(S(s): S<State>, Auth(ctx): Auth, Json(body): Json<Value>) -> Result<Response> {
    let items = batch(&body, "limits")?;
    let mut parsed = Vec::new();
    for (i, v) in items.iter().enumerate() {
        parsed.push(parse_limit(v, format!("limits[{i}]"))?);
    }
    s.enforce(&ctx, "identity:create_limits", json!({}))?;
    // check the whole batch before creating any of it
    let mut news: Vec<NewLimit> = Vec::new();
    for l in parsed {
        let l = resolve_limit(&s, l).await?;
        let existing = misc::list_limits(
            &s.db,
            &LimitFilter {
                service_id: Some(l.service_id.clone()),
                resource_name: Some(l.resource_name.clone()),
                ..Default::default()
            },
        )
        .await?;
        let in_db = existing
            .iter()
            .any(|e| e.region_id == l.region_id && e.project_id == l.project_id && e.domain_id == l.domain_id);
        if in_db || news.iter().any(|o| same_limit(o, &l)) {
            return Err(conflict("limit", "Duplicate entry"));
        }
        news.push(l);
    }
    let mut out = Vec::new();
    for l in news {
        let created_limit = misc::create_limit(&s.db, l).await?;
        out.push(render_limit(&s, &created_limit));
    }
    Ok(created(json!({"limits": out})))
}

/// The policy target of `identity:get_limit`: the limit, with its project
/// (for the project's domain) or its domain.
async fn limit_target(s: &Identity, l: &Limit) -> Result<Value> {
    let mut t = json!({
        "target.limit.id": l.id,
        "target.limit.project_id": l.project_id,
        "target.limit.service_id": l.service_id,
        "target.limit.resource_name": l.resource_name,
    });
    if let Some(pid) = &l.project_id {
        if let Some(p) = resource::get(&s.db, pid).await? {
            t["target.limit.project.id"] = json!(p.id);
            t["target.limit.project.domain_id"] = json!(p.domain_id);
        }
    } else if let Some(did) = &l.domain_id {
        t["target.limit.domain_id"] = json!(did);
        t["target.limit.domain.id"] = json!(did);
    }
    Ok(t)
}

async fn show_limit(S(s): S<State>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Response> {
    let l = misc::get_limit(&s.db, &id).await?;
    s.enforce(&ctx, "identity:get_limit", limit_target(&s, &l).await?)?;
    Ok(ok(json!({"limit": render_limit(&s, &l)})))
}

async fn update_limit(
    S(s): S<State>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response> {
    let f = single(&body, "limit")?;
    f.only(&["resource_limit", "description"])?;
    let mut fields = Map::new();
    if let Some(v) = f.map.get("resource_limit") {
        fields.insert("resource_limit".into(), json!(f.limit("resource_limit", v)?));
    }
    if let Some(v) = f.map.get("description") {
        fields.insert("description".into(), json!(f.nullable("description", v, 0, 255)?));
    }
    s.enforce(&ctx, "identity:update_limit", json!({}))?;
    let cur = misc::get_limit(&s.db, &id).await?;
    if fields.is_empty() {
        return Ok(ok(json!({"limit": render_limit(&s, &cur)})));
    }
    let l = misc::update_limit(&s.db, &id, &fields).await?;
    Ok(ok(json!({"limit": render_limit(&s, &l)})))
}

async fn delete_limit(S(s): S<State>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Response> {
    s.enforce(&ctx, "identity:delete_limit", json!({}))?;
    misc::delete_limit(&s.db, &id).await?;
    Ok(no_content())
}

async fn model(S(s): S<State>, Auth(ctx): Auth) -> Result<Response> {
    s.enforce(&ctx, "identity:get_limit_model", json!({}))?;
    Ok(ok(json!({"model": {"name": "flat", "description": FLAT_DESCRIPTION}})))
}
