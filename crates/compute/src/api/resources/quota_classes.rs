//! `/os-quota-class-sets/{class}` (admin): show and update a quota class.
//! The `default` class is what every project starts from.
//!
//! Per microversion: before 2.50 the server group quotas are not shown;
//! from 2.50 the nova-network quotas are gone, from 2.57 the personality
//! file quotas.

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::{Path, State as S};
use axum::response::Response;
use axum::routing::get;
use serde_json::{Map, Value, json};
use stratus_core::Microversion;
use stratus_core::auth::Auth;
use stratus_core::extract::Json;

use super::common;
use crate::State;
use crate::api::{authorize, ok};
use crate::error::{Result, bad};
use crate::store::quotas::{self, INJECTED_RESOURCES, NETWORK_RESOURCES, RESOURCES};

pub fn routes() -> Router<State> {
    Router::new().route("/v2.1/os-quota-class-sets/{id}", get(show).put(update))
}

const SERVER_GROUP_RESOURCES: &[&str] = &["server_groups", "server_group_members"];

/// What this microversion shows.
fn shown(mv: Microversion) -> Vec<&'static str> {
    RESOURCES
        .iter()
        .copied()
        .filter(|r| mv.at_least(2, 50) || !SERVER_GROUP_RESOURCES.contains(r))
        .filter(|r| !(mv.at_least(2, 50) && NETWORK_RESOURCES.contains(r)))
        .filter(|r| !(mv.at_least(2, 57) && INJECTED_RESOURCES.contains(r)))
        .collect()
}

/// What this microversion accepts in an update (server group quotas always).
fn settable(mv: Microversion) -> Vec<&'static str> {
    RESOURCES
        .iter()
        .copied()
        .filter(|r| !(mv.at_least(2, 50) && NETWORK_RESOURCES.contains(r)))
        .filter(|r| !(mv.at_least(2, 57) && INJECTED_RESOURCES.contains(r)))
        .collect()
}

fn format(id: Option<&str>, values: &BTreeMap<String, i64>, mv: Microversion) -> Value {
    let mut v = Map::new();
    if let Some(id) = id {
        v.insert("id".into(), json!(id));
    }
    for r in shown(mv) {
        if let Some(x) = values.get(r) {
            v.insert(r.to_string(), json!(x));
        }
    }
    json!({"quota_class_set": Value::Object(v)})
}

async fn show(S(svc): S<State>, Auth(ctx): Auth, mv: Microversion, Path(id): Path<String>) -> Result<Response> {
    authorize(&svc, &ctx, "os_compute_api:os-quota-class-sets:show", &json!({}))?;
    let values = quotas::class_limits(&svc.db.read, &svc.cfg, &id).await?;
    Ok(ok(format(Some(&id), &values, mv)))
}

async fn update(
    S(svc): S<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response> {
    let qs = common::the_object(&body, "quota_class_set")?;
    let allowed = settable(mv);
    let mut requested = Vec::new();
    for (k, v) in qs {
        if allowed.contains(&k.as_str()) {
            requested.push((k.clone(), common::integer(k, v, -1, 0x7FFF_FFFF, true)?));
        }
    }
    common::no_extra(qs, Some("quota_class_set"), &allowed)?;
    authorize(&svc, &ctx, "os_compute_api:os-quota-class-sets:update", &json!({}))?;
    if id.is_empty() || id.chars().count() > 255 {
        return Err(bad("Invalid input received: quota_class_name has a length greater than 255 or less than 1."));
    }
    for (k, v) in requested {
        quotas::set_class_limit(&svc.db, &id, &k, v).await?;
    }
    let values = quotas::class_limits(&svc.db.read, &svc.cfg, &id).await?;
    Ok(ok(format(None, &values, mv)))
}
