//! `/v2.0/quotas`: list projects with overrides (admin), show a project's
//! limits, its usage (`/details`), the defaults (`/default`), set, reset.

use axum::Router;
use axum::extract::{Path, State as AxState};
use axum::response::Response;
use axum::routing::get;
use serde_json::{Map, Value, json};
use stratus_core::auth::Auth;

use crate::api::{Body, authorize, no_content, ok, project_of};
use crate::error::{Result, bad, invalid};
use crate::model;
use crate::store::quotas;
use crate::{NetworkService, State};

pub fn routes() -> Router<State> {
    Router::new()
        .route("/v2.0/quotas", get(index))
        .route("/v2.0/quotas/{project}", get(show).put(update).delete(reset))
        .route("/v2.0/quotas/{project}/default", get(defaults))
        .route("/v2.0/quotas/{project}/details", get(details))
}

fn body(svc: &NetworkService, limits: impl IntoIterator<Item = (String, i64)>) -> Map<String, Value> {
    let known: Vec<&str> = quotas::resources(&svc.cfg).iter().map(|(r, _, _)| *r).collect();
    limits.into_iter().filter(|(r, _)| known.contains(&r.as_str())).map(|(r, l)| (r, json!(l))).collect()
}

async fn index(AxState(svc): AxState<State>, Auth(ctx): Auth) -> Result<Response> {
    authorize(&svc, &ctx, "update_quota", &project_of(&ctx))?;
    let mut out = Vec::new();
    for p in quotas::projects(&svc.db.read).await? {
        let mut q = body(&svc, quotas::limits(&svc.db.read, &svc.cfg, &p).await?);
        q.insert("project_id".into(), json!(p));
        q.insert("tenant_id".into(), json!(p));
        out.push(Value::Object(q));
    }
    Ok(ok(json!({"quotas": out})))
}

async fn show(AxState(svc): AxState<State>, Auth(ctx): Auth, Path(project): Path<String>) -> Result<Response> {
    authorize(&svc, &ctx, "get_quota", &project)?;
    Ok(ok(json!({"quota": body(&svc, quotas::limits(&svc.db.read, &svc.cfg, &project).await?)})))
}

async fn defaults(AxState(svc): AxState<State>, Auth(ctx): Auth, Path(project): Path<String>) -> Result<Response> {
    authorize(&svc, &ctx, "get_quota", &project)?;
    let d = quotas::resources(&svc.cfg).into_iter().map(|(r, _, l)| (r.to_string(), l));
    Ok(ok(json!({"quota": body(&svc, d)})))
}

async fn details(AxState(svc): AxState<State>, Auth(ctx): Auth, Path(project): Path<String>) -> Result<Response> {
    authorize(&svc, &ctx, "get_quota", &project)?;
    let limits = quotas::limits(&svc.db.read, &svc.cfg, &project).await?;
    let mut out = Map::new();
    for (r, table, _) in quotas::resources(&svc.cfg) {
        // a table that does not exist yet counts nothing
        let used = quotas::count(&svc.db.read, table, &project).await.unwrap_or(0);
        out.insert(r.into(), json!({"limit": limits.get(r).copied().unwrap_or(-1), "used": used, "reserved": 0}));
    }
    Ok(ok(json!({"quota": out})))
}

async fn update(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    Path(project): Path<String>,
    b: Body,
) -> Result<Response> {
    authorize(&svc, &ctx, "update_quota", &project)?;
    let obj = model::resource(&b.0, "quota")?;
    let known: Vec<&str> = quotas::resources(&svc.cfg).iter().map(|(r, _, _)| *r).collect();
    // `check_limit` (quota-check-limit): refuse a limit below what the
    // project already uses; `force` is the CLI's opposite of it
    let check_limit = match obj.get("check_limit") {
        Some(v) => model::boolean("check_limit", v)?,
        None => false,
    };
    if let Some(v) = obj.get("force") {
        model::boolean("force", v)?;
    }
    let mut set = Vec::new();
    for (k, v) in obj {
        if k == "check_limit" || k == "force" {
            continue;
        }
        if !known.contains(&k.as_str()) {
            return Err(bad(format!("Unrecognized attribute(s) '{k}'")));
        }
        let l = model::integer(k, v)?;
        if l < -1 {
            return Err(invalid(k, format!("'{l}' should be greater than or equal to -1")));
        }
        set.push((k.clone(), l));
    }
    if check_limit {
        for (k, l) in &set {
            let Some((_, table, _)) = quotas::resources(&svc.cfg).into_iter().find(|(r, _, _)| r == k) else {
                continue;
            };
            if *l < 0 {
                continue;
            }
            let used = quotas::count(&svc.db.read, table, &project).await?;
            if used > *l {
                return Err(bad(format!(
                    "Quota limit {l} for {k} must be greater than or equal to already used {used}"
                )));
            }
        }
    }
    for (k, l) in &set {
        quotas::set(&svc.db.write, &project, k, *l).await?;
    }
    Ok(ok(json!({"quota": body(&svc, quotas::limits(&svc.db.read, &svc.cfg, &project).await?)})))
}

async fn reset(AxState(svc): AxState<State>, Auth(ctx): Auth, Path(project): Path<String>) -> Result<Response> {
    authorize(&svc, &ctx, "delete_quota", &project)?;
    quotas::reset(&svc.db.write, &project).await?;
    Ok(no_content())
}
