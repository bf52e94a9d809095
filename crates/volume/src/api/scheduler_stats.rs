//! `/v3/scheduler-stats/get_pools[?detail=true]`: the pools of the volume
//! hosts the scheduler can place on (`host@backend#pool`), with their
//! capabilities when detailed. From 3.28 other parameters filter the pools
//! (`name`, or any capability); from 3.35 `volume_type` keeps the pools that
//! type may land on.

use axum::Router;
use axum::extract::State as AxState;
use axum::response::Response;
use axum::routing::get;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Map, Value, json};
use stratus_core::auth::Auth;
use stratus_core::extract::RawQuery;
use stratus_core::microversion::Microversion;

use crate::State;
use crate::api::quotas::parse_bool;
use crate::api::{authorize, json_object, ok, project_of};
use crate::entity::{service, volume_type};
use crate::error::Result;
use crate::store::services as store;

pub fn routes() -> Router<State> {
    Router::new().route("/v3/scheduler-stats/get_pools", get(get_pools))
}

/// A pool's capabilities as the scheduler reports them: what the host sent,
/// with Cinder's usual additions.
pub fn pool_capabilities(s: &service::Model, pool: &Map<String, Value>) -> Map<String, Value> {
    let mut caps = pool.clone();
    let name = pool.get("name").and_then(Value::as_str).unwrap_or("").to_string();
    caps.remove("name");
    caps.insert("pool_name".into(), json!(name));
    let thin = pool.get("thin_provisioning_support").and_then(Value::as_bool).unwrap_or(false);
    caps.entry("thick_provisioning_support").or_insert(json!(!thin));
    caps.entry("QoS_support").or_insert(json!(false));
    caps.entry("backend_state").or_insert(json!("up"));
    caps.insert("timestamp".into(), json!(s.updated_at));
    caps
}

/// `host@backend#pool`
pub fn pool_name(s: &service::Model, pool: &Map<String, Value>) -> String {
    format!("{}#{}", s.host, pool.get("name").and_then(Value::as_str).unwrap_or(""))
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

async fn get_pools(AxState(svc): AxState<State>, Auth(ctx): Auth, mv: Microversion, q: RawQuery) -> Result<Response> {
    authorize(&svc, &ctx, "scheduler_extension:scheduler_stats:get_pools", &project_of(&ctx))?;
    let mut detail = false;
    let mut filters: Vec<(String, String)> = Vec::new();
    let mut backend_of_type: Option<Option<String>> = None;
    for (k, v) in &q.0 {
        match k.as_str() {
            "detail" => detail = parse_bool("detail", v)?,
            "volume_type" if mv.at_least(3, 35) => {
                let t = volume_type::Entity::find()
                    .filter(volume_type::Column::Name.eq(v.as_str()).or(volume_type::Column::Id.eq(v.as_str())))
                    .one(&svc.db.read)
                    .await?;
                // an unknown type has no pools; a type without a backend fits every pool
                backend_of_type = Some(match t {
                    Some(t) => json_object(&t.extra_specs).get("volume_backend_name").map(text),
                    None => Some(String::new()),
                });
            }
            _ if mv.at_least(3, 28) && k != "volume_type" => filters.push((k.clone(), v.clone())),
            _ => {}
        }
    }
    let mut items = Vec::new();
    for s in store::alive_volume_hosts(&svc.db.read, svc.cfg.volume.service_down_time).await? {
        for pool in store::pools_of(&s) {
            let name = pool_name(&s, &pool);
            let caps = pool_capabilities(&s, &pool);
            let keep = filters.iter().all(|(k, v)| {
                if k == "name" { &name == v } else { caps.get(k).map(text).as_deref() == Some(v.as_str()) }
            });
            let fits_type = match &backend_of_type {
                None | Some(None) => true,
                Some(Some(b)) => caps.get("volume_backend_name").map(text).as_deref() == Some(b.as_str()),
            };
            if !keep || !fits_type {
                continue;
            }
            items.push(if detail { json!({"name": name, "capabilities": caps}) } else { json!({"name": name}) });
        }
    }
    Ok(ok(json!({"pools": items})))
}
