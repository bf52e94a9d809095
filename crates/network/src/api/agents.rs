//! `/v2.0/agents`: list, show, update (`admin_state_up`, `description`),
//! delete; admins only (others see an empty list, and no agent). Agents
//! create and refresh themselves by reporting (`store::agents::report`).

use axum::Router;
use axum::extract::{Path, State as AxState};
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};
use stratus_core::auth::Auth;
use stratus_core::extract::RawQuery;

use crate::api::list::{self, ListParams};
use crate::api::{Body, allowed, no_content, ok, project_of};
use crate::entity::agent::Model as Agent;
use crate::error::{NetworkError, Result, not_found};
use crate::model;
use crate::store::agents as store;
use crate::{NetworkService, State};

pub fn routes() -> Router<State> {
    Router::new().route("/v2.0/agents", get(index)).route("/v2.0/agents/{id}", get(show).put(update).delete(delete))
}

const UPDATE_ATTRS: &[&str] = &["admin_state_up", "description"];

/// An agent as Neutron renders it.
pub fn render(a: &Agent, down_time: u64) -> Value {
    let nullable = |s: &str| if s.is_empty() { Value::Null } else { json!(s) };
    json!({
        "id": a.id,
        "agent_type": a.agent_type,
        "binary": a.binary,
        "topic": a.topic,
        "host": a.host,
        "admin_state_up": a.admin_state_up,
        "alive": store::is_alive(a, down_time),
        "created_at": a.created_at,
        "started_at": a.started_at,
        "heartbeat_timestamp": a.heartbeat_timestamp,
        "configurations": serde_json::from_str::<Value>(&a.configurations).unwrap_or(json!({})),
        "availability_zone": nullable(&a.availability_zone),
        "resources_synced": null,
        "description": nullable(&a.description),
    })
}

fn agent_not_found(id: &str) -> NetworkError {
    not_found("AgentNotFound", format!("Agent {id} could not be found."))
}

/// Agents are the admin's: to anyone else they do not exist (as Neutron hides them).
fn may(svc: &NetworkService, ctx: &stratus_core::AuthContext, rule: &str) -> bool {
    allowed(svc, ctx, rule, &project_of(ctx))
}

async fn index(AxState(svc): AxState<State>, Auth(ctx): Auth, q: RawQuery) -> Result<Response> {
    let p = ListParams::parse(&q)?;
    let down = svc.cfg.network.agent_down_time;
    let (rows, more) =
        if may(&svc, &ctx, "get_agent") { store::list(&svc.db.read, &p, down).await? } else { (Vec::new(), false) };
    let items = rows.iter().map(|a| render(a, down)).collect();
    Ok(ok(list::render("agents", items, &p, more, &format!("{}/v2.0/agents", svc.base_url), &q)))
}

async fn show(AxState(svc): AxState<State>, Auth(ctx): Auth, Path(id): Path<String>, q: RawQuery) -> Result<Response> {
    let p = ListParams::parse(&q)?;
    if !may(&svc, &ctx, "get_agent") {
        return Err(agent_not_found(&id));
    }
    let a = store::get(&svc.db.read, &id).await?.ok_or_else(|| agent_not_found(&id))?;
    Ok(ok(json!({"agent": list::project(render(&a, svc.cfg.network.agent_down_time), &p.fields)})))
}

async fn update(AxState(svc): AxState<State>, Auth(ctx): Auth, Path(id): Path<String>, body: Body) -> Result<Response> {
    let obj = model::resource(&body.0, "agent")?.clone();
    model::only(&obj, UPDATE_ATTRS)?;
    if !may(&svc, &ctx, "update_agent") {
        return Err(agent_not_found(&id));
    }
    let admin_state_up = obj.get("admin_state_up").map(|v| model::boolean("admin_state_up", v)).transpose()?;
    let description = match obj.get("description") {
        None => None,
        Some(Value::Null) => Some(String::new()),
        Some(v) => Some(model::string("description", v, 255)?),
    };
    if !store::update(&svc.db.write, &id, admin_state_up, description).await? {
        return Err(agent_not_found(&id));
    }
    let a = store::get(&svc.db.write, &id).await?.ok_or_else(|| agent_not_found(&id))?;
    Ok(ok(json!({"agent": render(&a, svc.cfg.network.agent_down_time)})))
}

async fn delete(AxState(svc): AxState<State>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Response> {
    if !may(&svc, &ctx, "delete_agent") {
        return Err(agent_not_found(&id));
    }
    if !store::delete(&svc.db.write, &id).await? {
        return Err(agent_not_found(&id));
    }
    Ok(no_content())
}
