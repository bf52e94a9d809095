//! `/v2.0/security-group-rules`: list (filters, fields, sorting, paging),
//! show, create (validated as Neutron does, duplicates refused), delete.
//! Rules are immutable; a rule created or deleted bumps its group's revision.

use axum::Router;
use axum::extract::{Path, State as AxState};
use axum::response::Response;
use axum::routing::get;
use sea_orm::TransactionTrait;
use serde_json::{Value, json};
use stratus_core::AuthContext;
use stratus_core::auth::Auth;
use stratus_core::extract::RawQuery;

use crate::api::list::{self, ListParams};
use crate::api::networks::viewer;
use crate::api::security_groups::sg_not_found;
use crate::api::{Body, allowed, authorize, created, no_content, ok, owner_for_create};
use crate::entity::security_group_rule::Model as SecurityGroupRule;
use crate::error::{NetworkError, Result, conflict, not_found};
use crate::model;
use crate::model::security_group_rules::{self as rules, rule_key};
use crate::store::security_groups as store;
use crate::store::{self as st, quotas};
use crate::{NetworkService, State, plugin};

pub fn routes() -> Router<State> {
    Router::new()
        .route("/v2.0/security-group-rules", get(index).post(create))
        .route("/v2.0/security-group-rules/{id}", get(show).delete(delete))
}

fn rule_not_found(id: &str) -> NetworkError {
    not_found("SecurityGroupRuleNotFound", format!("Security group rule {id} does not exist"))
}

fn null_if_empty(s: &str) -> Value {
    if s.is_empty() { Value::Null } else { json!(s) }
}

/// A rule as Neutron renders it.
pub fn render_rule(r: &SecurityGroupRule, belongs_to_default_sg: bool) -> Value {
    json!({
        "id": r.id,
        "tenant_id": r.project_id,
        "project_id": r.project_id,
        "security_group_id": r.security_group_id,
        "direction": r.direction,
        "ethertype": r.ethertype,
        "protocol": null_if_empty(&r.protocol),
        "port_range_min": r.port_range_min,
        "port_range_max": r.port_range_max,
        "remote_ip_prefix": null_if_empty(&r.remote_ip_prefix),
        "remote_group_id": null_if_empty(&r.remote_group_id),
        "remote_address_group_id": null,
        "normalized_cidr": null_if_empty(&r.normalized_cidr),
        "belongs_to_default_sg": belongs_to_default_sg,
        "description": r.description,
        "created_at": r.created_at,
        "updated_at": r.updated_at,
        "revision_number": r.revision_number,
    })
}

/// `rule` allows the caller on the rule as its owner, or as its group's owner.
async fn authorize_rule(svc: &NetworkService, ctx: &AuthContext, rule: &str, r: &SecurityGroupRule) -> Result<()> {
    if allowed(svc, ctx, rule, &r.project_id) {
        return Ok(());
    }
    let owner = store::get(&svc.db.read, &r.security_group_id).await?.map(|g| g.project_id).unwrap_or_default();
    authorize(svc, ctx, rule, &owner)
}

async fn render_many(svc: &NetworkService, rs: &[SecurityGroupRule]) -> Result<Vec<Value>> {
    let mut groups: Vec<String> = rs.iter().map(|r| r.security_group_id.clone()).collect();
    groups.sort();
    groups.dedup();
    let defaults = store::defaults_among(&svc.db.read, &groups).await?;
    Ok(rs.iter().map(|r| render_rule(r, defaults.contains(&r.security_group_id))).collect())
}

async fn index(AxState(svc): AxState<State>, Auth(ctx): Auth, q: RawQuery) -> Result<Response> {
    let mut p = ListParams::parse(&q)?;
    // every rule has a null remote address group
    if let Some(v) = p.take_filter("remote_address_group_id")
        && v.iter().any(|x| !x.is_empty())
    {
        let items = Vec::new();
        return Ok(ok(list::render(
            "security_group_rules",
            items,
            &p,
            false,
            &format!("{}/v2.0/security-group-rules", svc.base_url),
            &q,
        )));
    }
    let (rows, more) = store::list_rules(&svc.db.read, &viewer(&svc, &ctx), &p).await?;
    let items = render_many(&svc, &rows).await?;
    Ok(ok(list::render(
        "security_group_rules",
        items,
        &p,
        more,
        &format!("{}/v2.0/security-group-rules", svc.base_url),
        &q,
    )))
}

async fn show(AxState(svc): AxState<State>, Auth(ctx): Auth, Path(id): Path<String>, q: RawQuery) -> Result<Response> {
    let p = ListParams::parse(&q)?;
    let r =
        store::get_rule_visible(&svc.db.read, &viewer(&svc, &ctx), &id).await?.ok_or_else(|| rule_not_found(&id))?;
    authorize_rule(&svc, &ctx, "get_security_group_rule", &r).await?;
    let item = render_many(&svc, std::slice::from_ref(&r)).await?.remove(0);
    Ok(ok(json!({"security_group_rule": list::project(item, &p.fields)})))
}

async fn create(AxState(svc): AxState<State>, Auth(ctx): Auth, body: Body) -> Result<Response> {
    if body.0.get("security_group_rules").is_some() {
        return Err(crate::error::bad("Bulk creation of security group rules is not supported"));
    }
    let obj = model::resource(&body.0, "security_group_rule")?.clone();
    let spec = rules::from_body(&obj)?;
    let v = viewer(&svc, &ctx);
    let sg = store::get_visible(&svc.db.read, &v, &spec.security_group_id)
        .await?
        .ok_or_else(|| sg_not_found(&spec.security_group_id))?;
    let project = if obj.contains_key("project_id") || obj.contains_key("tenant_id") {
        owner_for_create(&svc, &ctx, &obj)?
    } else {
        sg.project_id.clone()
    };
    authorize(&svc, &ctx, "create_security_group_rule", &sg.project_id)?;
    if let Some(remote) = &spec.remote_group_id
        && store::get_visible(&svc.db.read, &v, remote).await?.is_none()
    {
        return Err(sg_not_found(remote));
    }
    let t = st::now();
    let rule = SecurityGroupRule {
        id: st::new_id(),
        project_id: project.clone(),
        security_group_id: sg.id.clone(),
        direction: spec.direction.clone(),
        ethertype: spec.ethertype.clone(),
        protocol: spec.protocol.clone().unwrap_or_default(),
        port_range_min: spec.port_range_min,
        port_range_max: spec.port_range_max,
        remote_ip_prefix: spec.remote_ip_prefix.clone().unwrap_or_default(),
        normalized_cidr: spec.normalized_cidr.clone().unwrap_or_default(),
        remote_group_id: spec.remote_group_id.clone().unwrap_or_default(),
        description: spec.description.clone(),
        created_at: t.clone(),
        updated_at: t,
        revision_number: 0,
    };
    let key = |r: &SecurityGroupRule| {
        let opt = |s: &str| if s.is_empty() { None } else { Some(s.to_string()) };
        rule_key(
            &r.direction,
            &r.ethertype,
            opt(&r.protocol).as_deref(),
            r.port_range_min,
            r.port_range_max,
            opt(&r.normalized_cidr).as_deref(),
            opt(&r.remote_group_id).as_deref(),
        )
    };
    let mine = key(&rule);
    quotas::ensure_lock_row(&svc.db, &project).await?;
    let txn = svc.db.write.begin().await?;
    quotas::check(&txn, &svc.cfg, &project, "security_group_rule", 1).await?;
    // the group's lock: racing duplicates of one rule wait for each other here
    store::bump(&txn, &sg.id).await?;
    if let Some(dup) = store::rules_in(&txn, &sg.id).await?.into_iter().find(|r| key(r) == mine) {
        return Err(conflict(
            "SecurityGroupRuleExists",
            format!("Security group rule already exists. Rule id is {}.", dup.id),
        ));
    }
    store::insert_rule(&txn, rule.clone()).await?;
    txn.commit().await?;
    plugin::rules_changed(&svc, vec![sg.id.clone()]);
    let is_default = store::default_of(&svc.db.read, &sg.project_id).await?.as_deref() == Some(sg.id.as_str());
    Ok(created(json!({"security_group_rule": render_rule(&rule, is_default)})))
}

async fn delete(AxState(svc): AxState<State>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Response> {
    let r =
        store::get_rule_visible(&svc.db.read, &viewer(&svc, &ctx), &id).await?.ok_or_else(|| rule_not_found(&id))?;
    authorize_rule(&svc, &ctx, "delete_security_group_rule", &r).await?;
    let txn = svc.db.write.begin().await?;
    if !store::delete_rule(&txn, &id).await? {
        return Err(rule_not_found(&id));
    }
    store::bump(&txn, &r.security_group_id).await?;
    txn.commit().await?;
    plugin::rules_changed(&svc, vec![r.security_group_id.clone()]);
    Ok(no_content())
}
