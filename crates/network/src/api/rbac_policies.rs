//! `/v2.0/rbac-policies`: list, show, create, update (the target only),
//! delete. A policy lets another project (or every project, `*`) use an
//! object: `access_as_shared` (ports on a network) or `access_as_external`
//! (a router gateway on it). Only the object's owner (or an admin) makes
//! policies on it, and only an admin makes them for everyone.

use axum::Router;
use axum::extract::{Path, State as AxState};
use axum::response::Response;
use axum::routing::get;
use sea_orm::TransactionTrait;
use serde_json::{Map, Value, json};
use stratus_core::auth::Auth;
use stratus_core::extract::RawQuery;

use crate::State;
use crate::api::list::{self, ListParams};
use crate::api::networks::viewer;
use crate::api::{Body, authorize, created, is_admin, no_content, ok, owner_for_create, project_of};
use crate::entity::rbac_policy::Model as RbacPolicy;
use crate::error::{NetworkError, Result, bad, bad_kind, conflict, forbidden, invalid, not_found};
use crate::model;
use crate::store::networks as nets;
use crate::store::rbac::{self as store, EVERYONE, OBJECT_TYPES};
use crate::store::{self as st, quotas};

pub fn routes() -> Router<State> {
    Router::new()
        .route("/v2.0/rbac-policies", get(index).post(create))
        .route("/v2.0/rbac-policies/{id}", get(show).put(update).delete(delete))
}

const CREATE_ATTRS: &[&str] =
    &["object_type", "object_id", "action", "target_tenant", "target_project", "project_id", "tenant_id"];
const UPDATE_ATTRS: &[&str] = &["target_tenant", "target_project"];

/// A policy as Neutron renders it.
pub fn render(p: &RbacPolicy) -> Value {
    json!({
        "id": p.id,
        "object_type": p.object_type,
        "object_id": p.object_id,
        "action": p.action,
        "target_tenant": p.target_project,
        "tenant_id": p.project_id,
        "project_id": p.project_id,
    })
}

fn policy_not_found(id: &str) -> NetworkError {
    not_found("RbacPolicyNotFound", format!("RBAC policy with ID {id} not found"))
}

fn in_use(p: &RbacPolicy) -> NetworkError {
    conflict(
        "RbacPolicyInUse",
        format!(
            "RBAC policy on object {} cannot be removed because other objects depend on it.\nDetails: ports of other projects use it",
            p.object_id
        ),
    )
}

/// The target a body names: `target_tenant`, or its newer spelling `target_project`.
fn target(obj: &Map<String, Value>) -> Result<Option<String>> {
    let t = match (obj.get("target_tenant"), obj.get("target_project")) {
        (Some(a), Some(b)) if a != b => return Err(bad("'target_tenant' and 'target_project' do not match")),
        (Some(v), _) => Some(model::string("target_tenant", v, 255)?),
        (None, Some(v)) => Some(model::string("target_project", v, 255)?),
        (None, None) => None,
    };
    if t.as_deref() == Some("") {
        return Err(invalid("target_tenant", "'' is not a valid project"));
    }
    Ok(t)
}

/// Only an admin opens an object to everyone (Neutron's
/// `create_rbac_policy:target_tenant` rule).
fn check_wildcard(svc: &crate::NetworkService, ctx: &stratus_core::AuthContext, t: &str, rule: &str) -> Result<()> {
    if t == EVERYONE && !is_admin(svc, ctx) {
        return Err(forbidden(format!("(rule:{rule}:target_tenant) is disallowed by policy")));
    }
    Ok(())
}

fn required<'a>(obj: &'a Map<String, Value>, k: &str) -> Result<&'a Value> {
    obj.get(k).ok_or_else(|| bad(format!("Failed to parse request. Required attribute '{k}' not specified")))
}

async fn index(AxState(svc): AxState<State>, Auth(ctx): Auth, q: RawQuery) -> Result<Response> {
    let p = ListParams::parse(&q)?;
    let (rows, more) = store::list(&svc.db.read, &viewer(&svc, &ctx), &p).await?;
    let items = rows.iter().map(render).collect();
    Ok(ok(list::render("rbac_policies", items, &p, more, &format!("{}/v2.0/rbac-policies", svc.base_url), &q)))
}

async fn show(AxState(svc): AxState<State>, Auth(ctx): Auth, Path(id): Path<String>, q: RawQuery) -> Result<Response> {
    let p = ListParams::parse(&q)?;
    let pol = store::get_visible(&svc.db.read, &viewer(&svc, &ctx), &id).await?.ok_or_else(|| policy_not_found(&id))?;
    authorize(&svc, &ctx, "get_rbac_policy", &pol.project_id)?;
    Ok(ok(json!({"rbac_policy": list::project(render(&pol), &p.fields)})))
}

async fn create(AxState(svc): AxState<State>, Auth(ctx): Auth, body: Body) -> Result<Response> {
    let obj = model::resource(&body.0, "rbac_policy")?.clone();
    model::only(&obj, CREATE_ATTRS)?;
    let object_type = model::string("object_type", required(&obj, "object_type")?, 32)?;
    let Some((_, actions)) = OBJECT_TYPES.iter().find(|(t, _)| *t == object_type) else {
        let types: Vec<&str> = OBJECT_TYPES.iter().map(|(t, _)| *t).collect();
        return Err(invalid("object_type", format!("'{object_type}' is not in {types:?}")));
    };
    let object_id = model::string("object_id", required(&obj, "object_id")?, 36)?;
    let action = model::string("action", required(&obj, "action")?, 32)?;
    if !actions.contains(&action.as_str()) {
        return Err(invalid("action", format!("'{action}' is not in {actions:?}")));
    }
    required(&obj, if obj.contains_key("target_project") { "target_project" } else { "target_tenant" })?;
    let target = target(&obj)?.unwrap_or_default();
    let project = owner_for_create(&svc, &ctx, &obj)?;
    authorize(&svc, &ctx, "create_rbac_policy", &project)?;
    check_wildcard(&svc, &ctx, &target, "create_rbac_policy")?;
    // the object: invisible ones do not exist; visible ones of others are not the caller's to share
    let net = nets::get_visible(&svc.db.read, &viewer(&svc, &ctx), &object_id)
        .await?
        .ok_or_else(|| not_found("NetworkNotFound", format!("Network {object_id} could not be found.")))?;
    if !is_admin(&svc, &ctx) && net.project_id != project_of(&ctx) {
        return Err(bad_kind("InvalidInput", "Only admins can manipulate policies on objects they do not own"));
    }
    let pol = RbacPolicy {
        id: st::new_id(),
        project_id: project.clone(),
        object_type,
        object_id,
        action,
        target_project: target,
    };
    quotas::ensure_lock_row(&svc.db, &project).await?;
    let txn = svc.db.write.begin().await?;
    quotas::check(&txn, &svc.cfg, &project, "rbac_policy", 1).await?;
    store::insert(&txn, pol.clone()).await?;
    store::sync_network(&txn, &pol.object_id).await?;
    txn.commit().await?;
    Ok(created(json!({"rbac_policy": render(&pol)})))
}

async fn update(AxState(svc): AxState<State>, Auth(ctx): Auth, Path(id): Path<String>, body: Body) -> Result<Response> {
    let obj = model::resource(&body.0, "rbac_policy")?.clone();
    model::only(&obj, UPDATE_ATTRS)?;
    let mut pol =
        store::get_visible(&svc.db.read, &viewer(&svc, &ctx), &id).await?.ok_or_else(|| policy_not_found(&id))?;
    authorize(&svc, &ctx, "update_rbac_policy", &pol.project_id)?;
    let Some(t) = target(&obj)? else { return Ok(ok(json!({"rbac_policy": render(&pol)}))) };
    check_wildcard(&svc, &ctx, &t, "update_rbac_policy")?;
    if t == pol.target_project {
        return Ok(ok(json!({"rbac_policy": render(&pol)})));
    }
    let owner = nets::get(&svc.db.read, &pol.object_id).await?.map(|n| n.project_id).unwrap_or_default();
    // the old target loses its access
    if store::other_projects_ports(&svc.db.read, &pol.object_id, &owner, &pol.target_project).await? > 0 {
        return Err(in_use(&pol));
    }
    let txn = svc.db.write.begin().await?;
    if !store::set_target(&txn, &id, &t).await? {
        return Err(policy_not_found(&id));
    }
    store::sync_network(&txn, &pol.object_id).await?;
    txn.commit().await?;
    pol.target_project = t;
    Ok(ok(json!({"rbac_policy": render(&pol)})))
}

async fn delete(AxState(svc): AxState<State>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Response> {
    let pol = store::get_visible(&svc.db.read, &viewer(&svc, &ctx), &id).await?.ok_or_else(|| policy_not_found(&id))?;
    authorize(&svc, &ctx, "delete_rbac_policy", &pol.project_id)?;
    let owner = nets::get(&svc.db.read, &pol.object_id).await?.map(|n| n.project_id).unwrap_or_default();
    if store::other_projects_ports(&svc.db.read, &pol.object_id, &owner, &pol.target_project).await? > 0 {
        return Err(in_use(&pol));
    }
    let txn = svc.db.write.begin().await?;
    if !store::delete(&txn, &id).await? {
        return Err(policy_not_found(&id));
    }
    store::sync_network(&txn, &pol.object_id).await?;
    txn.commit().await?;
    Ok(no_content())
}
