//! `/v2.0/security-groups`: list (filters, fields, sorting, paging), show
//! (with the group's rules), create (with its two egress rules), update
//! (name, description, stateful; If-Match revisions), delete. The caller's
//! project gets its `default` group on its first list, show or create.

use axum::Router;
use axum::extract::{Path, State as AxState};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use sea_orm::TransactionTrait;
use serde_json::{Map, Value, json};
use stratus_core::AuthContext;
use stratus_core::auth::Auth;
use stratus_core::extract::RawQuery;

use crate::api::list::{self, ListParams};
use crate::api::networks::viewer;
use crate::api::security_group_rules::render_rule;
use crate::api::{Body, authorize, check_revision, created, is_admin, no_content, ok, owner_for_create, project_of};
use crate::entity::security_group::Model as SecurityGroup;
use crate::error::{NetworkError, Result, conflict, not_found};
use crate::model;
use crate::store::security_groups::{self as store, DEFAULT_NAME};
use crate::store::{self as st, quotas, tags};
use crate::{NetworkService, State};

pub fn routes() -> Router<State> {
    Router::new()
        .route("/v2.0/security-groups", get(index).post(create))
        .route("/v2.0/security-groups/{id}", get(show).put(update).delete(delete))
}

const CREATE_ATTRS: &[&str] = &["name", "description", "stateful", "project_id", "tenant_id"];
const UPDATE_ATTRS: &[&str] = &["name", "description", "stateful"];

pub fn sg_not_found(id: &str) -> NetworkError {
    not_found("SecurityGroupNotFound", format!("Security group {id} does not exist"))
}

/// The caller's project gets its default group before it looks at groups.
async fn ensure_default(svc: &NetworkService, ctx: &AuthContext) -> Result<()> {
    let p = project_of(ctx);
    if !p.is_empty() {
        store::default_for_project(&svc.db, &p).await?;
    }
    Ok(())
}

/// A security group as Neutron renders it.
pub fn render(sg: &SecurityGroup, rules: Vec<Value>, tags: Vec<String>) -> Value {
    json!({
        "id": sg.id,
        "name": sg.name,
        "description": sg.description,
        "tenant_id": sg.project_id,
        "project_id": sg.project_id,
        "stateful": sg.stateful,
        "security_group_rules": rules,
        "tags": tags,
        "created_at": sg.created_at,
        "updated_at": sg.updated_at,
        "revision_number": sg.revision_number,
    })
}

async fn render_many(svc: &NetworkService, groups: &[SecurityGroup]) -> Result<Vec<Value>> {
    let ids: Vec<String> = groups.iter().map(|g| g.id.clone()).collect();
    let mut rules = store::rules_of(&svc.db.read, &ids).await?;
    let defaults = store::defaults_among(&svc.db.read, &ids).await?;
    let mut tg = tags::of(&svc.db.read, store::TAG_TYPE, &ids).await?;
    Ok(groups
        .iter()
        .map(|g| {
            let is_default = defaults.contains(&g.id);
            let rs = rules.remove(&g.id).unwrap_or_default().iter().map(|r| render_rule(r, is_default)).collect();
            render(g, rs, tg.remove(&g.id).unwrap_or_default())
        })
        .collect())
}

async fn index(AxState(svc): AxState<State>, Auth(ctx): Auth, q: RawQuery) -> Result<Response> {
    let p = ListParams::parse(&q)?;
    ensure_default(&svc, &ctx).await?;
    let (rows, more) = store::list(&svc.db.read, &viewer(&svc, &ctx), &p).await?;
    let items = render_many(&svc, &rows).await?;
    Ok(ok(list::render("security_groups", items, &p, more, &format!("{}/v2.0/security-groups", svc.base_url), &q)))
}

async fn show(AxState(svc): AxState<State>, Auth(ctx): Auth, Path(id): Path<String>, q: RawQuery) -> Result<Response> {
    let p = ListParams::parse(&q)?;
    ensure_default(&svc, &ctx).await?;
    let sg = store::get_visible(&svc.db.read, &viewer(&svc, &ctx), &id).await?.ok_or_else(|| sg_not_found(&id))?;
    authorize(&svc, &ctx, "get_security_group", &sg.project_id)?;
    let item = render_many(&svc, std::slice::from_ref(&sg)).await?.remove(0);
    Ok(ok(json!({"security_group": list::project(item, &p.fields)})))
}

fn opt_string(obj: &Map<String, Value>, k: &str) -> Result<String> {
    match obj.get(k) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(v) => model::string(k, v, 255),
    }
}

async fn create(AxState(svc): AxState<State>, Auth(ctx): Auth, body: Body) -> Result<Response> {
    let obj = model::resource(&body.0, "security_group")?.clone();
    model::only(&obj, CREATE_ATTRS)?;
    let project = owner_for_create(&svc, &ctx, &obj)?;
    authorize(&svc, &ctx, "create_security_group", &project)?;
    let name = opt_string(&obj, "name")?;
    let description = opt_string(&obj, "description")?;
    let stateful = match obj.get("stateful") {
        None | Some(Value::Null) => true,
        Some(v) => model::boolean("stateful", v)?,
    };
    store::default_for_project(&svc.db, &project).await?;
    if name == DEFAULT_NAME {
        return Err(conflict("SecurityGroupDefaultAlreadyExists", "Default security group already exists."));
    }
    let t = st::now();
    let sg = SecurityGroup {
        id: st::new_id(),
        project_id: project.clone(),
        name,
        stateful,
        description,
        created_at: t.clone(),
        updated_at: t,
        revision_number: 0,
    };
    let rules = store::egress_rules(&project, &sg.id);
    quotas::ensure_lock_row(&svc.db, &project).await?;
    let txn = svc.db.write.begin().await?;
    quotas::check(&txn, &svc.cfg, &project, "security_group", 1).await?;
    quotas::check(&txn, &svc.cfg, &project, "security_group_rule", rules.len() as i64).await?;
    store::insert(&txn, sg.clone()).await?;
    for r in &rules {
        store::insert_rule(&txn, r.clone()).await?;
    }
    txn.commit().await?;
    let rs = rules.iter().map(|r| render_rule(r, false)).collect();
    Ok(created(json!({"security_group": render(&sg, rs, vec![])})))
}

async fn update(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response> {
    let obj = model::resource(&body.0, "security_group")?.clone();
    model::only(&obj, UPDATE_ATTRS)?;
    let v = viewer(&svc, &ctx);
    for _ in 0..5 {
        let cur = store::get_visible(&svc.db.read, &v, &id).await?.ok_or_else(|| sg_not_found(&id))?;
        authorize(&svc, &ctx, "update_security_group", &cur.project_id)?;
        check_revision(&headers, cur.revision_number)?;
        let mut sg = cur.clone();
        for (k, val) in &obj {
            match k.as_str() {
                "name" => sg.name = model::string(k, val, 255)?,
                "description" => sg.description = model::string(k, val, 255)?,
                "stateful" => sg.stateful = model::boolean(k, val)?,
                _ => {}
            }
        }
        if cur.name == DEFAULT_NAME && sg.name != DEFAULT_NAME {
            return Err(conflict("SecurityGroupCannotUpdateDefault", "Updating default security group not allowed."));
        }
        // Neutron: only the project's own default group is named `default`.
        if sg.name == DEFAULT_NAME && cur.name != DEFAULT_NAME {
            return Err(conflict("SecurityGroupDefaultAlreadyExists", "Default security group already exists."));
        }
        if sg.stateful != cur.stateful && store::ports_using(&svc.db.read, &id).await? > 0 {
            return Err(conflict("SecurityGroupInUse", format!("Security Group {id} in use.")));
        }
        sg.updated_at = st::now();
        if store::save(&svc.db.write, &sg).await? {
            sg.revision_number += 1;
            let item = render_many(&svc, std::slice::from_ref(&sg)).await?.remove(0);
            return Ok(ok(json!({"security_group": item})));
        }
    }
    Err(conflict("SecurityGroupInUse", format!("Security group {id} kept changing during the update; try again.")))
}

async fn delete(AxState(svc): AxState<State>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Response> {
    let sg = store::get_visible(&svc.db.read, &viewer(&svc, &ctx), &id).await?.ok_or_else(|| sg_not_found(&id))?;
    authorize(&svc, &ctx, "delete_security_group", &sg.project_id)?;
    if sg.name == DEFAULT_NAME && !is_admin(&svc, &ctx) {
        return Err(conflict(
            "SecurityGroupCannotRemoveDefault",
            "Insufficient rights for removing default security group.",
        ));
    }
    let txn = svc.db.write.begin().await?;
    if store::ports_using(&txn, &id).await? > 0 {
        return Err(conflict("SecurityGroupInUse", format!("Security Group {id} in use.")));
    }
    if !store::delete(&txn, &id).await? {
        return Err(sg_not_found(&id));
    }
    txn.commit().await?;
    Ok(no_content())
}
