//! `/os-quota-sets/{project}`: show (project readers), `/detail` with
//! usage, update (admin, checked against usage unless `force`), delete
//! (admin, back to the defaults), `/defaults` (everyone); `?user_id=` for a
//! user's own limits.
//!
//! Per microversion: the nova-network quotas (`fixed_ips`, `floating_ips`,
//! `security_groups`, `security_group_rules`) go at 2.36, the personality
//! file quotas at 2.57; unknown query parameters are refused from 2.75.
//! Not covered: Nova asks keystone whether the project exists (400 when it
//! does not); projects are taken as given here.

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::{Path, State as S};
use axum::response::Response;
use axum::routing::get;
use serde_json::{Map, Value, json};
use stratus_core::Microversion;
use stratus_core::auth::Auth;
use stratus_core::extract::{Json, RawQuery};

use super::common;
use crate::api::{accepted_empty, authorize, ok, project_target};
use crate::error::{Result, bad};
use crate::store::quotas::{self, INJECTED_RESOURCES, NETWORK_RESOURCES, RESOURCES};
use crate::{ComputeService, State};

pub fn routes() -> Router<State> {
    Router::new()
        .route("/v2.1/os-quota-sets/{id}", get(show).put(update).delete(delete))
        .route("/v2.1/os-quota-sets/{id}/detail", get(detail))
        .route("/v2.1/os-quota-sets/{id}/defaults", get(defaults))
}

fn rule(name: &str) -> String {
    format!("os_compute_api:os-quota-sets:{name}")
}

/// The resources this microversion shows (and accepts in updates).
pub fn shown(mv: Microversion) -> Vec<&'static str> {
    RESOURCES
        .iter()
        .copied()
        .filter(|r| !(mv.at_least(2, 36) && NETWORK_RESOURCES.contains(r)))
        .filter(|r| !(mv.at_least(2, 57) && INJECTED_RESOURCES.contains(r)))
        .collect()
}

fn format(id: Option<&str>, values: &BTreeMap<String, Value>, mv: Microversion) -> Value {
    let mut v = Map::new();
    if let Some(id) = id {
        v.insert("id".into(), json!(id));
    }
    for r in shown(mv) {
        if let Some(x) = values.get(r) {
            v.insert(r.to_string(), x.clone());
        }
    }
    json!({"quota_set": Value::Object(v)})
}

fn user_param(q: &RawQuery, mv: Microversion) -> Result<Option<String>> {
    common::check_query(q, &["user_id"], mv.at_least(2, 75))?;
    let user = q.get("user_id").filter(|u| !u.is_empty()).map(str::to_string);
    if user.as_ref().is_some_and(|u| u.chars().count() > 255) {
        return Err(bad("Invalid input received: user_id has more than 255 characters."));
    }
    Ok(user)
}

/// Quota rows keep project ids of up to 255 characters.
fn project_param(id: &str) -> Result<()> {
    if id.chars().count() > 255 {
        return Err(bad("Invalid input received: project_id has more than 255 characters."));
    }
    Ok(())
}

async fn limits(svc: &ComputeService, project: &str, user: Option<&str>) -> Result<BTreeMap<String, i64>> {
    quotas::limits(&svc.db, &svc.cfg, project, user).await
}

async fn show(
    S(svc): S<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    Path(id): Path<String>,
    q: RawQuery,
) -> Result<Response> {
    let user = user_param(&q, mv)?;
    authorize(&svc, &ctx, &rule("show"), &project_target(&id))?;
    let l = limits(&svc, &id, user.as_deref()).await?;
    let values = l.into_iter().map(|(k, v)| (k, json!(v))).collect();
    Ok(ok(format(Some(&id), &values, mv)))
}

async fn detail(
    S(svc): S<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    Path(id): Path<String>,
    q: RawQuery,
) -> Result<Response> {
    let user = user_param(&q, mv)?;
    authorize(&svc, &ctx, &rule("detail"), &project_target(&id))?;
    let l = limits(&svc, &id, user.as_deref()).await?;
    let used = quotas::usages(&svc.db.read, &id, user.as_deref()).await?;
    let values = l
        .into_iter()
        .map(|(k, v)| {
            let in_use = used.get(&k).copied().unwrap_or(0);
            (k, json!({"limit": v, "in_use": in_use, "reserved": 0}))
        })
        .collect();
    Ok(ok(format(Some(&id), &values, mv)))
}

async fn defaults(S(svc): S<State>, Auth(ctx): Auth, mv: Microversion, Path(id): Path<String>) -> Result<Response> {
    authorize(&svc, &ctx, &rule("defaults"), &project_target(&id))?;
    let d = quotas::defaults(&svc.db.read, &svc.cfg).await?;
    let values = d.into_iter().map(|(k, v)| (k, json!(v))).collect();
    Ok(ok(format(Some(&id), &values, mv)))
}

/// -1 (unlimited) compares as infinity.
fn inf(v: i64) -> f64 {
    if v < 0 { f64::INFINITY } else { v as f64 }
}

async fn update(
    S(svc): S<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    Path(id): Path<String>,
    q: RawQuery,
    Json(body): Json<Value>,
) -> Result<Response> {
    let qs = common::the_object(&body, "quota_set")?;
    let mut allowed = shown(mv);
    allowed.push("force");
    // validate every value (schema) before looking at any
    let mut requested: Vec<(String, i64)> = Vec::new();
    let mut force = false;
    for (k, v) in qs {
        if k == "force" {
            force = common::boolean("force", v)?;
        } else if allowed.contains(&k.as_str()) {
            requested.push((k.clone(), common::integer(k, v, -1, 0x7FFF_FFFF, true)?));
        }
    }
    common::no_extra(qs, Some("quota_set"), &allowed)?;
    let user = user_param(&q, mv)?;
    project_param(&id)?;
    authorize(&svc, &ctx, &rule("update"), &project_target(&id))?;
    if !force {
        let conn = &svc.db.read;
        let project_limits = quotas::limits_on(conn, &svc.cfg, &id, None).await?;
        let used = quotas::usages(conn, &id, user.as_deref()).await?;
        let user_sum = quotas::user_rows_sum(conn, &id).await?;
        let user_rows = match &user {
            Some(u) => quotas::rows(conn, &id, Some(u)).await?,
            None => BTreeMap::new(),
        };
        for (k, value) in &requested {
            let in_use = used.get(k).copied().unwrap_or(0);
            let limit = project_limits.get(k).copied().unwrap_or(-1);
            let summed = user_sum.get(k).copied().unwrap_or(0);
            // what the users of the project already hold leaves this much
            let remains = if limit < 0 || summed < 0 { -1 } else { limit - summed };
            let (minimum, maximum) = match &user {
                Some(_) => {
                    let mine = user_rows.get(k).copied().unwrap_or(0);
                    let max = if remains < 0 || mine < 0 { -1 } else { remains + mine };
                    (in_use, max)
                }
                None => {
                    let held = if limit < 0 || remains < 0 { -1 } else { limit - remains };
                    (held.max(in_use), -1)
                }
            };
            if inf(*value) < inf(minimum) {
                return Err(bad(format!(
                    "Quota limit {value} for {k} must be greater than or equal to already used and reserved {minimum}."
                )));
            }
            if inf(*value) > inf(maximum) {
                return Err(bad(format!("Quota limit {value} for {k} must be less than or equal to {maximum}.")));
            }
        }
    }
    for (k, value) in &requested {
        quotas::set_limit(&svc.db, &id, user.as_deref(), k, *value).await?;
    }
    let l = limits(&svc, &id, user.as_deref()).await?;
    let values = l.into_iter().map(|(k, v)| (k, json!(v))).collect();
    Ok(ok(format(None, &values, mv)))
}

async fn delete(
    S(svc): S<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    Path(id): Path<String>,
    q: RawQuery,
) -> Result<Response> {
    let user = user_param(&q, mv)?;
    authorize(&svc, &ctx, &rule("delete"), &project_target(&id))?;
    quotas::delete_all(&svc.db, &id, user.as_deref()).await?;
    Ok(accepted_empty())
}
