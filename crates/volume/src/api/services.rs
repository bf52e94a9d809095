//! `/v3/os-services`: the list (`?host=`, `?binary=`), and the admin
//! actions `PUT /v3/os-services/{enable,disable,disable-log-reason,freeze,thaw}`.

use axum::Router;
use axum::extract::{Path, State as AxState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use serde_json::{Map, Value, json};
use stratus_core::auth::Auth;
use stratus_core::extract::RawQuery;
use stratus_core::microversion::Microversion;

use crate::State;
use crate::api::{Body, authorize, ok, project_of};
use crate::entity::service;
use crate::error::{Result, bad, not_found};
use crate::store::services::{self as store, VOLUME_BINARY};

pub fn routes() -> Router<State> {
    Router::new().route("/v3/os-services", get(index)).route("/v3/os-services/{action}", put(update))
}

/// A volume service's backend state (3.49): up while it reports pools and beats.
fn backend_state(s: &service::Model, down: u64) -> &'static str {
    if store::is_up(s, down) && !store::pools_of(s).is_empty() { "up" } else { "down" }
}

/// One service as the list shows it at `mv`.
pub fn render(s: &service::Model, down: u64, mv: Microversion) -> Value {
    let mut m = Map::new();
    m.insert("binary".into(), json!(s.binary));
    m.insert("host".into(), json!(s.host));
    m.insert("zone".into(), json!(s.availability_zone));
    m.insert("status".into(), json!(if s.disabled { "disabled" } else { "enabled" }));
    m.insert("state".into(), json!(if store::is_up(s, down) { "up" } else { "down" }));
    m.insert("updated_at".into(), json!(s.updated_at));
    m.insert("disabled_reason".into(), json!(s.disabled_reason));
    if mv.at_least(3, 7) {
        m.insert("cluster".into(), Value::Null);
    }
    if s.binary == VOLUME_BINARY {
        if mv.at_least(3, 49) {
            m.insert("backend_state".into(), json!(backend_state(s, down)));
        }
        m.insert("replication_status".into(), json!("not-capable"));
        m.insert("active_backend_id".into(), Value::Null);
        m.insert("frozen".into(), json!(s.frozen));
    }
    Value::Object(m)
}

async fn index(AxState(svc): AxState<State>, Auth(ctx): Auth, mv: Microversion, q: RawQuery) -> Result<Response> {
    authorize(&svc, &ctx, "volume_extension:services:index", &project_of(&ctx))?;
    let host = q.0.iter().rev().find(|(k, _)| k == "host").map(|(_, v)| v.clone());
    let binary = q.0.iter().rev().find(|(k, _)| k == "binary").map(|(_, v)| v.clone());
    let down = svc.cfg.volume.service_down_time;
    let items: Vec<Value> = store::all(&svc.db.read)
        .await?
        .iter()
        .filter(|s| host.as_deref().is_none_or(|h| store::host_matches(&s.host, h)))
        .filter(|s| binary.as_deref().is_none_or(|b| s.binary == b))
        .map(|s| render(s, down, mv))
        .collect();
    Ok(ok(json!({"services": items})))
}

fn text_field(body: &Map<String, Value>, key: &str, nullable: bool) -> Result<Option<String>> {
    match body.get(key) {
        None => Ok(None),
        Some(Value::Null) if nullable => Ok(None),
        Some(Value::String(s)) => {
            if s.chars().count() > 255 {
                return Err(bad(format!(
                    "Invalid input for field/attribute {key}. It must be at most 255 characters."
                )));
            }
            Ok(Some(s.clone()))
        }
        Some(v) => {
            Err(bad(format!("Invalid input for field/attribute {key}. Value: {v}. {v} is not of type 'string'")))
        }
    }
}

fn check_keys(body: &Map<String, Value>, allowed: &[&str]) -> Result<()> {
    if let Some(extra) = body.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(bad(format!(
            "Invalid input for field/attribute body. Additional properties are not allowed ('{extra}' was unexpected)"
        )));
    }
    Ok(())
}

async fn update(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    Path(action): Path<String>,
    body: Body,
) -> Result<Response> {
    authorize(&svc, &ctx, "volume_extension:services:update", &project_of(&ctx))?;
    let Some(body) = body.0.as_object() else {
        return Err(bad("Invalid input received: the request body must be an object."));
    };
    match action.as_str() {
        "enable" | "disable" | "disable-log-reason" => set_status(&svc, &action, body).await,
        "freeze" | "thaw" => freeze(&svc, action == "freeze", mv, body).await,
        _ => Err(not_found("The resource could not be found.")),
    }
}

async fn set_status(svc: &State, action: &str, body: &Map<String, Value>) -> Result<Response> {
    let log_reason = action == "disable-log-reason";
    let mut keys = vec!["binary", "host", "cluster", "service"];
    if log_reason {
        keys.push("disabled_reason");
    }
    check_keys(body, &keys)?;
    let binary = text_field(body, "binary", false)?;
    let service = text_field(body, "service", false)?;
    text_field(body, "cluster", true)?;
    if binary.as_deref().is_none_or(str::is_empty) && service.as_deref().is_none_or(str::is_empty) {
        return Err(bad("Invalid input for field/attribute body. 'binary' is a required property"));
    }
    let host = text_field(body, "host", false)?.filter(|h| !h.is_empty());
    let Some(host) = host else {
        return Err(bad("Invalid input received: Host field is missing."));
    };
    let reason = if log_reason {
        match text_field(body, "disabled_reason", false)? {
            Some(r) if r.trim().is_empty() => {
                return Err(bad("Invalid input received: disabled_reason has a minimum character requirement of 1."));
            }
            r => r.map(|r| r.trim().to_string()),
        }
    } else {
        None
    };
    // `binary` wins over the deprecated `service`
    let binary_key = binary.clone().filter(|b| !b.is_empty()).or(service.clone()).unwrap_or_default();
    let disabled = action != "enable";
    let new_reason = match action {
        "enable" => Some(None),
        "disable-log-reason" if reason.is_some() => Some(reason.clone()),
        _ => None,
    };
    if !store::set_disabled(&svc.db.write, &host, &binary_key, disabled, new_reason).await? {
        return Err(not_found(format!("Service {binary_key} could not be found on host {host}.")));
    }
    let mut out = json!({
        "host": host,
        "service": service.unwrap_or_default(),
        "binary": binary.unwrap_or_default(),
        "status": if disabled { "disabled" } else { "enabled" },
        "disabled": disabled,
    });
    if !disabled || log_reason {
        out["disabled_reason"] = json!(reason);
    }
    Ok(ok(out))
}

async fn freeze(svc: &State, frozen: bool, mv: Microversion, body: &Map<String, Value>) -> Result<Response> {
    check_keys(body, &["host", "cluster"])?;
    let host = text_field(body, "host", true)?.filter(|h| !h.is_empty());
    let cluster = text_field(body, "cluster", true)?.filter(|c| !c.is_empty());
    // from 3.26 one and only one of cluster and host (no clusters here: a cluster names nothing)
    if mv.at_least(3, 26) {
        if host.is_some() == cluster.is_some() {
            return Err(bad("Invalid input received: One and only one of cluster and host must be set."));
        }
        if let Some(c) = cluster {
            return Err(bad(format!("Invalid input received: No service found with cluster={c}")));
        }
    }
    let Some(host) = host else {
        return Err(bad("Invalid input received: Host field is missing."));
    };
    let hosts: Vec<String> = store::all(&svc.db.read)
        .await?
        .into_iter()
        .filter(|s| s.binary == VOLUME_BINARY && store::host_matches(&s.host, &host))
        .map(|s| s.host)
        .collect();
    if hosts.is_empty() {
        return Err(bad(format!("Invalid input received: No service found with host={host}")));
    }
    store::set_frozen(&svc.db.write, &hosts, frozen).await?;
    Ok(StatusCode::OK.into_response())
}
