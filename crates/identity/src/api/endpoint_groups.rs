//! OS-EP-FILTER: `/v3/OS-EP-FILTER/endpoint_groups`, their project
//! associations, and the project-endpoint associations.

use axum::Router;
use axum::extract::{Path, State as S};
use axum::response::Response;
use axum::routing::get;
use serde_json::{Map, Value, json};
use stratus_core::auth::Auth;
use stratus_core::extract::{Json, RawQuery};

use super::catalog::render_endpoint;
use super::{created, no_content, ok};
use crate::error::{Result, bad};
use crate::store::catalog;
use crate::store::endpoint_group::{self, EndpointGroup, EndpointGroupUpdate, FILTER_KEYS};
use crate::store::resource;
use crate::util::{Obj, member};
use crate::{Identity, State};

pub fn routes() -> Router<State> {
    Router::new()
        .route("/v3/OS-EP-FILTER/endpoint_groups", get(list).post(create))
        .route("/v3/OS-EP-FILTER/endpoint_groups/{endpoint_group_id}", get(show).patch(update).delete(remove))
        .route("/v3/OS-EP-FILTER/endpoint_groups/{endpoint_group_id}/projects", get(list_group_projects))
        .route(
            "/v3/OS-EP-FILTER/endpoint_groups/{endpoint_group_id}/projects/{project_id}",
            get(show_group_project).put(add_group_project).delete(remove_group_project),
        )
        .route("/v3/OS-EP-FILTER/endpoint_groups/{endpoint_group_id}/endpoints", get(list_group_endpoints))
        .route("/v3/OS-EP-FILTER/projects/{project_id}/endpoint_groups", get(list_project_groups))
        .route("/v3/OS-EP-FILTER/projects/{project_id}/endpoints", get(list_project_endpoints))
        .route(
            "/v3/OS-EP-FILTER/projects/{project_id}/endpoints/{endpoint_id}",
            get(check_project_endpoint).put(add_project_endpoint).delete(remove_project_endpoint),
        )
        .route("/v3/OS-EP-FILTER/endpoints/{endpoint_id}/projects", get(list_endpoint_projects))
}

pub fn render(s: &Identity, g: &EndpointGroup) -> Value {
    json!({
        "id": g.id,
        "name": g.name,
        "description": g.description,
        "filters": endpoint_group::filters_of(g),
        "links": s.link(&format!("OS-EP-FILTER/endpoint_groups/{}", g.id)),
    })
}

// ---- validation (Keystone's endpoint group schema)

const KNOWN: &[&str] = &["name", "description", "filters"];

fn no_unknown(o: &Obj) -> Result<()> {
    match o.map.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        Some(k) => Err(bad(format!("Invalid input for field '{}': additional property '{k}' is not allowed.", o.name))),
        None => Ok(()),
    }
}

/// `description`: a string or null; absent: None.
fn description(o: &Obj) -> Result<Option<Option<String>>> {
    match o.get("description") {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::String(d)) => Ok(Some(Some(d.clone()))),
        Some(_) => Err(bad(format!("Invalid input for field '{}.description': expected a string or null.", o.name))),
    }
}

/// `filters`: an object over `service_id`, `region_id` and `interface`.
fn filters(o: &Obj) -> Result<Option<Map<String, Value>>> {
    let field = format!("{}.filters", o.name);
    let f = match o.get("filters") {
        None => return Ok(None),
        Some(Value::Object(f)) => f,
        Some(_) => {
            return Err(bad(format!("Invalid input for field '{field}': expected an object.")));
        }
    };
    for (k, v) in f {
        let ok = match k.as_str() {
            "service_id" => v.is_string(),
            "region_id" => v.is_string() || v.is_null(),
            "interface" => matches!(v.as_str(), Some("admin" | "internal" | "public")),
            _ => {
                return Err(bad(format!(
                    "Invalid input for field '{field}': '{k}' is not one of {}.",
                    FILTER_KEYS.join(", ")
                )));
            }
        };
        if !ok {
            let expected = match k.as_str() {
                "interface" => "one of 'admin', 'internal', 'public'",
                "region_id" => "a string or null",
                _ => "a string",
            };
            return Err(bad(format!("Invalid input for field '{field}.{k}': expected {expected}.")));
        }
    }
    Ok(Some(f.clone()))
}

// ---- endpoint groups

async fn list(S(s): S<State>, Auth(ctx): Auth, q: RawQuery) -> Result<Response> {
    s.enforce(&ctx, "identity:list_endpoint_groups", json!({}))?;
    let groups = endpoint_group::list(&s.db, q.get("name")).await?;
    let items = groups.iter().map(|g| render(&s, g)).collect();
    Ok(ok(s.collection("OS-EP-FILTER/endpoint_groups", "endpoint_groups", items)))
}

async fn create(S(s): S<State>, Auth(ctx): Auth, Json(body): Json<Value>) -> Result<Response> {
    s.enforce(&ctx, "identity:create_endpoint_group", json!({}))?;
    let g = member(&body, "endpoint_group")?;
    no_unknown(&g)?;
    let name = g.req_str("name", 255)?;
    let description = description(&g)?.flatten();
    let filters = match filters(&g)? {
        Some(f) if !f.is_empty() => f,
        _ => {
            return Err(bad(
                "Invalid input for field 'endpoint_group.filters': filters field is required and cannot be empty.",
            ));
        }
    };
    let created_group = endpoint_group::create(&s.db, name, description, &filters).await?;
    Ok(created(json!({"endpoint_group": render(&s, &created_group)})))
}

async fn show(S(s): S<State>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Response> {
    s.enforce(&ctx, "identity:get_endpoint_group", json!({}))?;
    let g = endpoint_group::get(&s.db, &id).await?;
    Ok(ok(json!({"endpoint_group": render(&s, &g)})))
}

async fn update(S(s): S<State>, Auth(ctx): Auth, Path(id): Path<String>, Json(body): Json<Value>) -> Result<Response> {
    s.enforce(&ctx, "identity:update_endpoint_group", json!({}))?;
    let g = member(&body, "endpoint_group")?;
    no_unknown(&g)?;
    if g.map.is_empty() {
        return Err(bad("Invalid input for field 'endpoint_group': it must have at least one property."));
    }
    let u =
        EndpointGroupUpdate { name: g.opt_name("name", 255)?, description: description(&g)?, filters: filters(&g)? };
    let updated = endpoint_group::update(&s.db, &id, u).await?;
    s.invalidate_tokens();
    Ok(ok(json!({"endpoint_group": render(&s, &updated)})))
}

async fn remove(S(s): S<State>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Response> {
    s.enforce(&ctx, "identity:delete_endpoint_group", json!({}))?;
    endpoint_group::delete(&s.db, &id).await?;
    s.invalidate_tokens();
    Ok(no_content())
}

// ---- endpoint groups and projects

fn project_target(project_id: &str) -> Value {
    json!({"target.project.id": project_id})
}

/// Render the projects of `ids` that still exist.
async fn render_projects(s: &Identity, ids: Vec<String>) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    for id in ids {
        if let Some(p) = resource::get(&s.db, &id).await? {
            let tags = resource::tags(&s.db, &p.id).await?;
            out.push(super::projects::render(s, &p, tags));
        }
    }
    Ok(out)
}

async fn list_group_projects(S(s): S<State>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Response> {
    s.enforce(&ctx, "identity:list_projects_associated_with_endpoint_group", json!({}))?;
    endpoint_group::get(&s.db, &id).await?;
    let ids = endpoint_group::projects_of_group(&s.db, &id).await?;
    let items = render_projects(&s, ids).await?;
    Ok(ok(s.collection(&format!("OS-EP-FILTER/endpoint_groups/{id}/projects"), "projects", items)))
}

async fn show_group_project(
    S(s): S<State>,
    Auth(ctx): Auth,
    Path((id, project_id)): Path<(String, String)>,
) -> Result<Response> {
    s.enforce(&ctx, "identity:get_endpoint_group_in_project", project_target(&project_id))?;
    resource::get_project(&s.db, &project_id).await?;
    endpoint_group::get(&s.db, &id).await?;
    endpoint_group::check_group_in_project(&s.db, &id, &project_id).await?;
    Ok(ok(json!({"project_endpoint_group": {
        "endpoint_group_id": id,
        "project_id": project_id,
        "links": s.link(&format!("OS-EP-FILTER/endpoint_groups/{id}/projects/{project_id}")),
    }})))
}

async fn add_group_project(
    S(s): S<State>,
    Auth(ctx): Auth,
    Path((id, project_id)): Path<(String, String)>,
) -> Result<Response> {
    s.enforce(&ctx, "identity:add_endpoint_group_to_project", project_target(&project_id))?;
    resource::get_project(&s.db, &project_id).await?;
    endpoint_group::get(&s.db, &id).await?;
    endpoint_group::add_group_to_project(&s.db, &id, &project_id).await?;
    s.invalidate_tokens();
    Ok(no_content())
}

async fn remove_group_project(
    S(s): S<State>,
    Auth(ctx): Auth,
    Path((id, project_id)): Path<(String, String)>,
) -> Result<Response> {
    s.enforce(&ctx, "identity:remove_endpoint_group_from_project", project_target(&project_id))?;
    resource::get_project(&s.db, &project_id).await?;
    endpoint_group::get(&s.db, &id).await?;
    endpoint_group::remove_group_from_project(&s.db, &id, &project_id).await?;
    s.invalidate_tokens();
    Ok(no_content())
}

async fn list_group_endpoints(S(s): S<State>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Response> {
    s.enforce(&ctx, "identity:list_endpoints_associated_with_endpoint_group", json!({}))?;
    let eps = endpoint_group::endpoints_of_group(&s.db, &id).await?;
    let items = eps.iter().map(|e| render_endpoint(&s, e)).collect();
    Ok(ok(s.collection(&format!("OS-EP-FILTER/endpoint_groups/{id}/endpoints"), "endpoints", items)))
}

async fn list_project_groups(S(s): S<State>, Auth(ctx): Auth, Path(project_id): Path<String>) -> Result<Response> {
    s.enforce(&ctx, "identity:list_endpoint_groups_for_project", project_target(&project_id))?;
    resource::get_project(&s.db, &project_id).await?;
    let groups = endpoint_group::groups_of_project(&s.db, &project_id).await?;
    let items = groups.iter().map(|g| render(&s, g)).collect();
    Ok(ok(s.collection(&format!("OS-EP-FILTER/projects/{project_id}/endpoint_groups"), "endpoint_groups", items)))
}

// ---- single endpoints and projects

async fn list_project_endpoints(S(s): S<State>, Auth(ctx): Auth, Path(project_id): Path<String>) -> Result<Response> {
    s.enforce(&ctx, "identity:list_endpoints_for_project", project_target(&project_id))?;
    resource::get_project(&s.db, &project_id).await?;
    let eps = endpoint_group::endpoints_for_project(&s.db, &project_id).await?;
    let items = eps.iter().map(|e| render_endpoint(&s, e)).collect();
    Ok(ok(s.collection(&format!("OS-EP-FILTER/projects/{project_id}/endpoints"), "endpoints", items)))
}

async fn check_project_endpoint(
    S(s): S<State>,
    Auth(ctx): Auth,
    Path((project_id, endpoint_id)): Path<(String, String)>,
) -> Result<Response> {
    s.enforce(&ctx, "identity:check_endpoint_in_project", project_target(&project_id))?;
    catalog::get_endpoint(&s.db, &endpoint_id).await?;
    resource::get_project(&s.db, &project_id).await?;
    endpoint_group::check_endpoint_in_project(&s.db, &endpoint_id, &project_id).await?;
    Ok(no_content())
}

async fn add_project_endpoint(
    S(s): S<State>,
    Auth(ctx): Auth,
    Path((project_id, endpoint_id)): Path<(String, String)>,
) -> Result<Response> {
    s.enforce(&ctx, "identity:add_endpoint_to_project", project_target(&project_id))?;
    catalog::get_endpoint(&s.db, &endpoint_id).await?;
    resource::get_project(&s.db, &project_id).await?;
    endpoint_group::add_endpoint_to_project(&s.db, &endpoint_id, &project_id).await?;
    s.invalidate_tokens();
    Ok(no_content())
}

async fn remove_project_endpoint(
    S(s): S<State>,
    Auth(ctx): Auth,
    Path((project_id, endpoint_id)): Path<(String, String)>,
) -> Result<Response> {
    s.enforce(&ctx, "identity:remove_endpoint_from_project", project_target(&project_id))?;
    endpoint_group::remove_endpoint_from_project(&s.db, &endpoint_id, &project_id).await?;
    s.invalidate_tokens();
    Ok(no_content())
}

async fn list_endpoint_projects(S(s): S<State>, Auth(ctx): Auth, Path(endpoint_id): Path<String>) -> Result<Response> {
    s.enforce(&ctx, "identity:list_projects_for_endpoint", json!({}))?;
    catalog::get_endpoint(&s.db, &endpoint_id).await?;
    let ids = endpoint_group::projects_of_endpoint(&s.db, &endpoint_id).await?;
    let items = render_projects(&s, ids).await?;
    Ok(ok(s.collection(&format!("OS-EP-FILTER/endpoints/{endpoint_id}/projects"), "projects", items)))
}
