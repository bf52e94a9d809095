//! `/os-services` (admin): list (filters `host`, `binary`), enable,
//! disable (with a reason), force down, delete.
//!
//! Per microversion: `forced_down` and the `force-down` action from 2.11;
//! before 2.53 updates are `PUT /os-services/{enable|disable|
//! disable-log-reason|force-down}` naming host and binary in the body and
//! ids are integers; from 2.53 ids are uuids and `PUT /os-services/{uuid}`
//! takes `status`, `disabled_reason`, `forced_down`; unknown query
//! parameters are refused from 2.75.

use axum::Router;
use axum::extract::{Path, State as S};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use serde_json::{Map, Value, json};
use stratus_core::Microversion;
use stratus_core::auth::Auth;
use stratus_core::extract::{Json, RawQuery};

use super::availability_zones::{API_BINARIES, zone_of};
use super::common::{self, naive_time};
use crate::api::{authorize, ok};
use crate::error::{ComputeError, Result, bad, conflict, not_found};
use crate::store::services::{self, COMPUTE, Service};
use crate::store::{aggregates, compute_nodes, usage};
use crate::{ComputeService, State};

pub fn routes() -> Router<State> {
    Router::new().route("/v2.1/os-services", get(index)).route("/v2.1/os-services/{id}", put(update).delete(delete))
}

fn rule(name: &str) -> String {
    format!("os_compute_api:os-services:{name}")
}

/// A service as the list (and the 2.53 update) shows it.
fn detail(svc: &ComputeService, s: &Service, zone: &str, mv: Microversion) -> Value {
    let mut v = json!({
        "binary": s.binary,
        "host": s.host,
        "zone": zone,
        "status": if s.disabled { "disabled" } else { "enabled" },
        "state": if services::is_up(s, svc.cfg.compute.service_down_time) { "up" } else { "down" },
        "updated_at": naive_time(services::last_heartbeat(s)),
        "disabled_reason": s.disabled_reason,
    });
    v["id"] = if mv.at_least(2, 53) { json!(s.uuid) } else { json!(s.id) };
    if mv.at_least(2, 11) {
        v["forced_down"] = json!(s.forced_down);
    }
    v
}

async fn index(S(svc): S<State>, Auth(ctx): Auth, mv: Microversion, q: RawQuery) -> Result<Response> {
    common::check_query(&q, &["host", "binary"], mv.at_least(2, 75))?;
    authorize(&svc, &ctx, &rule("list"), &json!({}))?;
    let aggs = aggregates::all(&svc.db).await?;
    let host = q.get("host").unwrap_or("");
    let binary = q.get("binary").unwrap_or("");
    let list: Vec<Value> = services::list(&svc.db)
        .await?
        .iter()
        .filter(|s| !API_BINARIES.contains(&s.binary.as_str()))
        .filter(|s| host.is_empty() || s.host == host)
        .filter(|s| binary.is_empty() || s.binary == binary)
        .map(|s| detail(&svc, s, &zone_of(&svc, &aggs, s), mv))
        .collect();
    Ok(ok(json!({"services": list})))
}

fn only_compute(binary: &str) -> Result<()> {
    if binary != COMPUTE {
        return Err(bad(format!(
            "Updating a {binary} service is not supported. Only nova-compute services can be updated."
        )));
    }
    Ok(())
}

/// The body of the pre-2.53 updates: host and binary name the service.
struct LegacyBody {
    host: String,
    binary: String,
    disabled_reason: Option<String>,
    forced_down: Option<Value>,
}

fn legacy_body(body: &Value, mv: Microversion) -> Result<LegacyBody> {
    let o = common::object(body, None)?;
    let host = o.get("host").map(|v| common::fqdn("host", v)).transpose()?;
    let binary = o.get("binary").map(|v| common::string("binary", v, 1, 255)).transpose()?;
    let disabled_reason = o.get("disabled_reason").map(|v| common::string("disabled_reason", v, 1, 255)).transpose()?;
    let forced_down = match o.get("forced_down") {
        Some(v) if mv.at_least(2, 11) => {
            common::boolean("forced_down", v)?;
            Some(v.clone())
        }
        _ => None,
    };
    common::required(o, None, "host")?;
    common::required(o, None, "binary")?;
    let mut allowed = vec!["host", "binary", "disabled_reason"];
    if mv.at_least(2, 11) {
        allowed.push("forced_down");
    }
    common::no_extra(o, None, &allowed)?;
    Ok(LegacyBody {
        host: host.unwrap_or_default(),
        binary: binary.unwrap_or_default().to_string(),
        disabled_reason: disabled_reason.map(str::to_string),
        forced_down,
    })
}

async fn by_host_binary(svc: &ComputeService, host: &str, binary: &str) -> Result<Service> {
    only_compute(binary)?;
    services::get_by_host_binary(&svc.db, host, binary)
        .await?
        .ok_or_else(|| not_found(format!("Could not find binary {binary} on host {host}.")))
}

async fn update_legacy(svc: &ComputeService, action: &str, b: LegacyBody, mv: Microversion) -> Result<Response> {
    let actions: &[&str] = if mv.at_least(2, 11) {
        &["enable", "disable", "disable-log-reason", "force-down"]
    } else {
        &["enable", "disable", "disable-log-reason"]
    };
    if !actions.contains(&action) {
        return Err(not_found("Unknown action"));
    }
    let mut out = json!({"host": b.host, "binary": b.binary});
    match action {
        "enable" | "disable" | "disable-log-reason" => {
            let (disabled, reason) = match action {
                "enable" => (false, None),
                "disable" => (true, None),
                _ => (true, Some(b.disabled_reason.clone().ok_or_else(|| bad("Missing disabled reason field"))?)),
            };
            let s = by_host_binary(svc, &b.host, &b.binary).await?;
            services::update_state(&svc.db, s.id, disabled, reason.clone(), s.forced_down).await?;
            out["status"] = json!(if disabled { "disabled" } else { "enabled" });
            if let Some(r) = reason {
                out["disabled_reason"] = json!(r);
            }
        }
        _ => {
            let v = b.forced_down.ok_or_else(|| bad("Missing forced_down field"))?;
            let forced = match &v {
                Value::Bool(x) => *x,
                Value::String(s) => common::bool_word(s).unwrap_or(false),
                _ => false,
            };
            let s = by_host_binary(svc, &b.host, &b.binary).await?;
            services::update_state(&svc.db, s.id, s.disabled, s.disabled_reason.clone(), forced).await?;
            out["forced_down"] = json!(forced);
        }
    }
    Ok(ok(json!({"service": out})))
}

/// The body of the 2.53 update.
struct Body253 {
    status: Option<String>,
    reason: Option<String>,
    forced: Option<bool>,
}

fn body_v253(body: &Value) -> Result<Body253> {
    let o: &Map<String, Value> = common::object(body, None)?;
    let status = o.get("status").map(|v| common::one_of("status", v, &["enabled", "disabled"])).transpose()?;
    let reason = o.get("disabled_reason").map(|v| common::string("disabled_reason", v, 1, 255)).transpose()?;
    let forced = o.get("forced_down").map(|v| common::boolean("forced_down", v)).transpose()?;
    common::no_extra(o, None, &["status", "disabled_reason", "forced_down"])?;
    Ok(Body253 { status: status.map(str::to_string), reason: reason.map(str::to_string), forced })
}

async fn update_v253(svc: &ComputeService, id: &str, b: Body253, mv: Microversion) -> Result<Response> {
    let Body253 { status, reason, forced } = b;
    let s = services::get_by_uuid(&svc.db, id)
        .await?
        .ok_or_else(|| not_found(format!("Service {id} could not be found.")))?;
    only_compute(&s.binary)?;
    let (mut disabled, mut disabled_reason, mut forced_down) = (s.disabled, s.disabled_reason.clone(), s.forced_down);
    let mut changed = false;
    match status.as_deref() {
        Some("enabled") => {
            if reason.is_some() {
                return Err(bad("Specifying 'disabled_reason' with status 'enabled' is invalid."));
            }
            disabled = false;
            disabled_reason = None;
            changed = true;
        }
        Some(_) => {
            disabled = true;
            disabled_reason = reason;
            changed = true;
        }
        None => {}
    }
    if let Some(f) = forced {
        forced_down = f;
        changed = true;
    }
    if !changed {
        return Err(bad("No updates were requested. Fields 'status' or 'forced_down' should be specified."));
    }
    services::update_state(&svc.db, s.id, disabled, disabled_reason, forced_down).await?;
    let s =
        services::get(&svc.db, s.id).await?.ok_or_else(|| not_found(format!("Service {id} could not be found.")))?;
    let aggs = aggregates::all(&svc.db).await?;
    let mut v = detail(svc, &s, &zone_of(svc, &aggs, &s), mv);
    v["forced_down"] = json!(s.forced_down);
    Ok(ok(json!({"service": v})))
}

async fn update(
    S(svc): S<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response> {
    // as in Nova: the body first, then (2.53) the id, then the policy
    if mv.at_least(2, 53) {
        let b = body_v253(&body)?;
        if !common::is_uuid_like(&id) {
            return Err(bad(format!("Invalid uuid {id}")));
        }
        authorize(&svc, &ctx, &rule("update"), &json!({}))?;
        update_v253(&svc, &id, b, mv).await
    } else {
        let b = legacy_body(&body, mv)?;
        authorize(&svc, &ctx, &rule("update"), &json!({}))?;
        update_legacy(&svc, &id, b, mv).await
    }
}

async fn delete(S(svc): S<State>, Auth(ctx): Auth, mv: Microversion, Path(id): Path<String>) -> Result<Response> {
    authorize(&svc, &ctx, &rule("delete"), &json!({}))?;
    let s = if mv.at_least(2, 53) {
        if !common::is_uuid_like(&id) {
            return Err(bad(format!("Invalid uuid {id}")));
        }
        services::get_by_uuid(&svc.db, &id).await?
    } else {
        let n = common::int_id(&id)?;
        services::get(&svc.db, n).await?
    };
    let s = s.ok_or_else(|| not_found(format!("Service {id} not found.")))?;
    if s.binary == COMPUTE {
        if usage::count_on_host(&svc.db, &s.host).await? > 0 {
            return Err(conflict(
                "Unable to delete compute service that is hosting instances. Migrate or delete the instances first.",
            ));
        }
        for agg in aggregates::of_host(&svc.db, &s.host).await? {
            aggregates::remove_host(&svc.db, agg.id, &s.host).await?;
        }
        compute_nodes::delete_of_host(&svc.db, &s.host).await?;
    }
    if !services::delete(&svc.db, s.id).await? {
        return Err(ComputeError::NotFound(format!("Service {id} not found.")));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}
