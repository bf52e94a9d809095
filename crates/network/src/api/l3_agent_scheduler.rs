//! Neutron's `l3_agent_scheduler` extension: which L3 agent hosts a router
//! (`GET /v2.0/routers/{id}/l3-agents`), the routers an L3 agent hosts
//! (`GET /v2.0/agents/{id}/l3-routers`), and an operator's hand on it
//! (`POST` a router to an agent, `DELETE` it from one). Admins only.

use axum::Router;
use axum::extract::{Path, State as AxState};
use axum::response::Response;
use axum::routing::{delete, get};
use serde_json::{Value, json};
use stratus_core::AuthContext;
use stratus_core::auth::Auth;

use crate::api::agents::render as render_agent;
use crate::api::routers::{render_many, router_not_found};
use crate::api::{Body, authorize, created, no_content, ok, project_of};
use crate::entity::agent::Model as Agent;
use crate::error::{NetworkError, Result, conflict, not_found};
use crate::store::agents::{self, L3_AGENT};
use crate::store::routers;
use crate::{NetworkService, State, l3, model};

pub fn routes() -> Router<State> {
    Router::new()
        .route("/v2.0/routers/{id}/l3-agents", get(agents_hosting))
        .route("/v2.0/agents/{id}/l3-routers", get(routers_on).post(add_router))
        .route("/v2.0/agents/{id}/l3-routers/{router_id}", delete(remove_router))
}

fn check(svc: &NetworkService, ctx: &AuthContext, rule: &str) -> Result<()> {
    authorize(svc, ctx, rule, &project_of(ctx))
}

/// The agent, which must be an L3 agent (and, to host more, up).
async fn l3_agent(svc: &NetworkService, id: &str, to_host: bool) -> Result<Agent> {
    let a = agents::get(&svc.db.write, id)
        .await?
        .ok_or_else(|| not_found("AgentNotFound", format!("Agent {id} could not be found.")))?;
    if a.agent_type != L3_AGENT || (to_host && !a.admin_state_up) {
        return Err(invalid_l3_agent(id));
    }
    Ok(a)
}

fn invalid_l3_agent(id: &str) -> NetworkError {
    not_found("InvalidL3Agent", format!("Agent {id} is not a L3 Agent or has been disabled"))
}

async fn agents_hosting(AxState(svc): AxState<State>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Response> {
    check(&svc, &ctx, "get_l3-agents")?;
    let r = routers::get(&svc.db.read, &id).await?.ok_or_else(|| router_not_found(&id))?;
    let down = svc.cfg.network.agent_down_time;
    let agents: Vec<Value> = match r.l3_agent_host.as_str() {
        "" => Vec::new(),
        host => agents::l3_agent_on(&svc.db.read, host).await?.iter().map(|a| render_agent(a, down)).collect(),
    };
    Ok(ok(json!({ "agents": agents })))
}

async fn routers_on(AxState(svc): AxState<State>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Response> {
    check(&svc, &ctx, "get_l3-routers")?;
    let a = agents::get(&svc.db.read, &id)
        .await?
        .ok_or_else(|| not_found("AgentNotFound", format!("Agent {id} could not be found.")))?;
    let rows = if a.agent_type == L3_AGENT { routers::on_host(&svc.db.read, &a.host).await? } else { Vec::new() };
    Ok(ok(json!({ "routers": render_many(&svc.db.read, &rows).await? })))
}

async fn add_router(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    body: Body,
) -> Result<Response> {
    check(&svc, &ctx, "create_l3-router")?;
    let obj = body.0.as_object().ok_or_else(|| crate::error::bad("Resource body required"))?;
    model::only(obj, &["router_id"])?;
    let router_id = model::uuid(
        "router_id",
        obj.get("router_id").ok_or_else(|| {
            crate::error::bad("Failed to parse request. Required attribute 'router_id' not specified")
        })?,
    )?;
    let a = l3_agent(&svc, &id, true).await?;
    let r = routers::get(&svc.db.write, &router_id).await?.ok_or_else(|| router_not_found(&router_id))?;
    if !l3::add_to_host(&svc, &r, &a.host).await? {
        let other = match routers::get(&svc.db.write, &router_id).await? {
            Some(r) => agents::l3_agent_on(&svc.db.write, &r.l3_agent_host).await?.map(|a| a.id).unwrap_or_default(),
            None => return Err(router_not_found(&router_id)),
        };
        return Err(conflict(
            "RouterHostedByL3Agent",
            format!("The router {router_id} has been already hosted by the L3 Agent {other}."),
        ));
    }
    Ok(created(Value::Null))
}

async fn remove_router(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    Path((id, router_id)): Path<(String, String)>,
) -> Result<Response> {
    check(&svc, &ctx, "delete_l3-router")?;
    let a = l3_agent(&svc, &id, false).await?;
    let r = routers::get(&svc.db.write, &router_id).await?.ok_or_else(|| router_not_found(&router_id))?;
    if !l3::remove_from_host(&svc, &r, &a.host).await? {
        return Err(conflict(
            "RouterNotHostedByL3Agent",
            format!("The router {router_id} is not hosted by L3 agent {id}."),
        ));
    }
    Ok(no_content())
}
