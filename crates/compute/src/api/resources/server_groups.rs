//! `/os-server-groups`: list (own project; `all_projects` for admins, with
//! `limit`/`offset`), create (within the `server_groups` quota), show,
//! delete. Members are the group's servers that are not deleted.
//!
//! Per microversion: `project_id` and `user_id` from 2.13; the soft
//! policies from 2.15; from 2.64 `policy` and `rules`
//! (`max_server_per_host` for anti-affinity) replace `policies` and the
//! empty `metadata`; unknown query parameters are refused from 2.75.

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::{Path, State as S};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use stratus_core::Microversion;
use stratus_core::auth::Auth;
use stratus_core::extract::{Json, RawQuery};

use super::common::{self, invalid, py_repr};
use crate::api::{authorize, is_admin, ok, project_of, project_target};
use crate::error::{ComputeError, Result, bad, not_found};
use crate::store::server_groups::{self, NewServerGroup, ServerGroup};
use crate::{ComputeService, State};

pub fn routes() -> Router<State> {
    Router::new()
        .route("/v2.1/os-server-groups", get(index).post(create))
        .route("/v2.1/os-server-groups/{id}", get(show).delete(delete))
}

fn rule(name: &str) -> String {
    format!("os_compute_api:os-server-groups:{name}")
}

fn group_not_found(id: &str) -> ComputeError {
    not_found(format!("Instance group {id} could not be found."))
}

/// The group as the microversion shows it; `deleted` are members to hide.
fn view(g: &ServerGroup, mv: Microversion, deleted: &std::collections::BTreeSet<String>) -> Value {
    let members: Vec<&String> = g.members.iter().filter(|m| !deleted.contains(*m)).collect();
    let mut v = json!({"id": g.uuid, "name": g.name, "members": members});
    if mv.at_least(2, 64) {
        v["policy"] = json!(g.policy);
        v["rules"] = json!(g.rules);
    } else {
        v["policies"] = json!([g.policy]);
        v["metadata"] = json!({});
    }
    if mv.at_least(2, 13) {
        v["project_id"] = json!(g.project_id);
        v["user_id"] = json!(g.user_id);
    }
    v
}

async fn hidden(svc: &ComputeService, groups: &[ServerGroup]) -> Result<std::collections::BTreeSet<String>> {
    let all: Vec<String> = groups.iter().flat_map(|g| g.members.iter().cloned()).collect();
    server_groups::deleted_among(&svc.db, &all).await
}

async fn index(S(svc): S<State>, Auth(ctx): Auth, mv: Microversion, q: RawQuery) -> Result<Response> {
    common::check_query(&q, &["all_projects", "limit", "offset"], mv.at_least(2, 75))?;
    let project = project_of(&ctx)?.to_string();
    authorize(&svc, &ctx, &rule("index"), &project_target(&project))?;
    let (limit, _) = common::limit_marker(&RawQuery(q.0.iter().filter(|(k, _)| k == "limit").cloned().collect()))?;
    let offset = common::offset(&q)?;
    let groups = if q.has("all_projects") && is_admin(&svc, &ctx) {
        authorize(&svc, &ctx, &rule("index:all_projects"), &project_target(&project))?;
        server_groups::list(&svc.db, None).await?
    } else {
        server_groups::list(&svc.db, Some(&project)).await?
    };
    // a limit of 0 means "the maximum" here, as Nova's `limited` reads it
    let limit = if limit == 0 { common::MAX_LIMIT } else { limit };
    let page: Vec<ServerGroup> = groups.into_iter().skip(offset).take(limit).collect();
    let deleted = hidden(&svc, &page).await?;
    Ok(ok(json!({"server_groups": page.iter().map(|g| view(g, mv, &deleted)).collect::<Vec<_>>()})))
}

async fn load(svc: &ComputeService, id: &str) -> Result<ServerGroup> {
    server_groups::get(&svc.db, id).await?.ok_or_else(|| group_not_found(id))
}

async fn show(S(svc): S<State>, Auth(ctx): Auth, mv: Microversion, Path(id): Path<String>) -> Result<Response> {
    let g = load(&svc, &id).await?;
    authorize(&svc, &ctx, &rule("show"), &project_target(&g.project_id))?;
    let deleted = hidden(&svc, std::slice::from_ref(&g)).await?;
    Ok(ok(json!({"server_group": view(&g, mv, &deleted)})))
}

async fn delete(S(svc): S<State>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Response> {
    let g = load(&svc, &id).await?;
    authorize(&svc, &ctx, &rule("delete"), &project_target(&g.project_id))?;
    if !server_groups::delete(&svc.db, &id).await? {
        return Err(group_not_found(&id));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The policy of a create request, as the microversion takes it.
fn policy_of(g: &serde_json::Map<String, Value>, mv: Microversion) -> Result<(Option<String>, BTreeMap<String, i64>)> {
    if mv.at_least(2, 64) {
        let policy = g
            .get("policy")
            .map(|v| common::one_of("policy", v, server_groups::POLICIES).map(str::to_string))
            .transpose()?;
        let mut rules = BTreeMap::new();
        if let Some(r) = g.get("rules") {
            let o = common::object(r, Some("rules"))?;
            if let Some(m) = o.get("max_server_per_host") {
                let n = match m {
                    Value::String(s) if s.is_empty() => {
                        return Err(invalid("max_server_per_host", m, &format!("{} is too short", py_repr(m))));
                    }
                    _ => common::integer("max_server_per_host", m, 1, i64::MAX, false)?,
                };
                rules.insert("max_server_per_host".to_string(), n);
            }
            common::no_extra(o, Some("rules"), &["max_server_per_host"])?;
        }
        Ok((policy, rules))
    } else {
        let allowed: &[&str] =
            if mv.at_least(2, 15) { server_groups::POLICIES } else { &["anti-affinity", "affinity"] };
        let Some(p) = g.get("policies") else {
            return Ok((None, BTreeMap::new()));
        };
        let Value::Array(items) = p else {
            return Err(invalid("policies", p, &format!("{} is not of type 'array'", py_repr(p))));
        };
        if items.is_empty() {
            return Err(invalid("policies", p, "[] should be non-empty"));
        }
        if items.len() > 1 {
            let distinct =
                items.iter().map(Value::to_string).collect::<std::collections::BTreeSet<_>>().len() == items.len();
            let msg = if distinct {
                format!("{} is too long", py_repr(p))
            } else {
                format!("{} has non-unique elements", py_repr(p))
            };
            return Err(invalid("policies", p, &msg));
        }
        let policy = common::one_of("policies", &items[0], allowed)?.to_string();
        Ok((Some(policy), BTreeMap::new()))
    }
}

async fn create(S(svc): S<State>, Auth(ctx): Auth, mv: Microversion, Json(body): Json<Value>) -> Result<Response> {
    let g = common::the_object(&body, "server_group")?;
    let name = g.get("name").map(|v| common::name("name", v)).transpose()?;
    let (policy, rules) = policy_of(g, mv)?;
    common::required(g, Some("server_group"), "name")?;
    let (policy_key, allowed): (&str, &[&str]) =
        if mv.at_least(2, 64) { ("policy", &["name", "policy", "rules"]) } else { ("policies", &["name", "policies"]) };
    common::required(g, Some("server_group"), policy_key)?;
    common::no_extra(g, Some("server_group"), allowed)?;
    let project = project_of(&ctx)?.to_string();
    authorize(&svc, &ctx, &rule("create"), &project_target(&project))?;
    let (Some(name), Some(policy)) = (name, policy) else {
        return Err(bad("'server_group' is incomplete"));
    };
    if mv.at_least(2, 64) && policy != "anti-affinity" && !rules.is_empty() {
        return Err(bad("Only anti-affinity policy supports rules."));
    }
    let new = NewServerGroup { name, project_id: project, user_id: ctx.user_id.clone(), policy, rules };
    let g = server_groups::create(&svc.db, &svc.cfg, new).await?;
    Ok(ok(json!({"server_group": view(&g, mv, &Default::default())})))
}
