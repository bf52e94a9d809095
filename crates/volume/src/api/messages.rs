//! User messages (3.3): `/v3/messages` list, show, delete. Paging,
//! sorting and filters from 3.5, as Cinder's.

use axum::Router;
use axum::extract::{Path, State as AxState};
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};
use stratus_core::AuthContext;
use stratus_core::auth::Auth;
use stratus_core::extract::RawQuery;
use stratus_core::microversion::Microversion;

use crate::api::group_types::require;
use crate::api::list::{self, ListQuery};
use crate::api::{authorize, is_admin, no_content, ok, project_of};
use crate::entity::message;
use crate::error::{Result, VolumeError, not_found};
use crate::store::messages as store;
use crate::{State, VolumeService};

pub fn routes() -> Router<State> {
    Router::new().route("/v3/messages", get(index)).route("/v3/messages/{id}", get(show).delete(delete))
}

const GET_POLICY: &str = "message:get";
const GET_ALL_POLICY: &str = "message:get_all";
const DELETE_POLICY: &str = "message:delete";

fn message_not_found(id: &str) -> VolumeError {
    not_found(format!("Message {id} could not be found."))
}

fn links(svc: &VolumeService, ctx: &AuthContext, id: &str) -> Value {
    let project = project_of(ctx);
    let scoped = if project.is_empty() { String::new() } else { format!("/{project}") };
    json!([
        {"href": format!("{}/v3{scoped}/messages/{id}", svc.base_url), "rel": "self"},
        {"href": format!("{}{scoped}/messages/{id}", svc.base_url), "rel": "bookmark"},
    ])
}

fn view(svc: &VolumeService, ctx: &AuthContext, m: &message::Model) -> Value {
    let mut v = json!({
        "id": m.id,
        "event_id": m.event_id,
        "user_message": m.user_message,
        "message_level": m.message_level,
        "created_at": m.created_at,
        "guaranteed_until": m.expires_at,
        "request_id": m.request_id,
        "links": links(svc, ctx, &m.id),
    });
    if let Some(t) = m.resource_type.as_ref().filter(|t| !t.is_empty()) {
        v["resource_type"] = json!(t);
    }
    if let Some(u) = m.resource_uuid.as_ref().filter(|u| !u.is_empty()) {
        v["resource_uuid"] = json!(u);
    }
    v
}

async fn find(svc: &VolumeService, ctx: &AuthContext, id: &str, rule: &str) -> Result<message::Model> {
    let m = store::get(&svc.db.read, id).await?.ok_or_else(|| message_not_found(id))?;
    if !is_admin(svc, ctx) && m.project_id != project_of(ctx) {
        return Err(message_not_found(id));
    }
    authorize(svc, ctx, rule, &m.project_id)?;
    Ok(m)
}

const SORTABLE: &[&str] = &[
    "id",
    "event_id",
    "message_level",
    "created_at",
    "guaranteed_until",
    "resource_type",
    "resource_uuid",
    "request_id",
];

async fn index(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    RawQuery(pairs): RawQuery,
) -> Result<Response> {
    require(mv, 3)?;
    let project = project_of(&ctx);
    authorize(&svc, &ctx, GET_ALL_POLICY, &project)?;
    let admin = is_admin(&svc, &ctx);
    // before 3.5 Cinder takes no paging, sorting or filters
    let mut q = if mv.at_least(3, 5) { ListQuery::parse(&pairs)? } else { ListQuery::default() };
    let asked_project = q.take("project_id");
    crate::api::resource_filters::restrict(&mut q, "message", admin, mv)?;
    let scope = if admin && q.all_tenants {
        None
    } else if admin && asked_project.is_some() {
        asked_project
    } else {
        Some(project)
    };
    let items: Vec<Value> =
        store::list(&svc.db.write, scope.as_deref()).await?.iter().map(|m| view(&svc, &ctx, m)).collect();
    let base = format!("{}/v3/messages", svc.base_url);
    let (page, next, _) = list::page(items, &q, SORTABLE, &base)?;
    let mut out = json!({"messages": page});
    if let Some(l) = next {
        out["messages_links"] = l;
    }
    Ok(ok(out))
}

async fn show(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    Path(id): Path<String>,
) -> Result<Response> {
    require(mv, 3)?;
    let m = find(&svc, &ctx, &id, GET_POLICY).await?;
    Ok(ok(json!({"message": view(&svc, &ctx, &m)})))
}

async fn delete(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    Path(id): Path<String>,
) -> Result<Response> {
    require(mv, 3)?;
    let m = find(&svc, &ctx, &id, DELETE_POLICY).await?;
    if !store::delete(&svc.db.write, &m.id).await? {
        return Err(message_not_found(&id));
    }
    Ok(no_content())
}
