//! `/v3/capabilities/{host}`: what a volume backend (`host@backend`, or a
//! bare host naming its first backend) can do, from its last report.

use axum::Router;
use axum::extract::{Path, State as AxState};
use axum::response::Response;
use axum::routing::get;
use serde_json::{Map, Value, json};
use stratus_core::auth::Auth;

use crate::State;
use crate::api::scheduler_stats::pool_capabilities;
use crate::api::{authorize, ok, project_of};
use crate::error::{Result, not_found};
use crate::store::services::{self as store, VOLUME_BINARY};

pub fn routes() -> Router<State> {
    Router::new().route("/v3/capabilities/{host}", get(show))
}

fn property(title: &str, description: &str, kind: &str) -> Value {
    json!({"title": title, "description": description, "type": kind})
}

async fn show(AxState(svc): AxState<State>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Response> {
    authorize(&svc, &ctx, "volume_extension:capabilities", &project_of(&ctx))?;
    // `host@backend#pool` names the pool's backend (clients often cut at '#' themselves)
    let (backend, pool_asked) = match id.split_once('#') {
        Some((b, p)) => (b.to_string(), Some(p.to_string())),
        None => (id.clone(), None),
    };
    let Some(s) = store::all(&svc.db.read)
        .await?
        .into_iter()
        .find(|s| s.binary == VOLUME_BINARY && store::host_matches(&s.host, &backend))
    else {
        return Err(not_found(format!("Can't find service: {id}")));
    };
    let pools = store::pools_of(&s);
    let pool = match &pool_asked {
        Some(p) => pools.iter().find(|m| m.get("name").and_then(Value::as_str) == Some(p.as_str())),
        None => pools.first(),
    };
    let caps: Map<String, Value> = pool.map(|p| pool_capabilities(&s, p)).unwrap_or_default();
    let get = |k: &str| caps.get(k).cloned().unwrap_or(Value::Null);
    let text = |k: &str| json!(caps.get(k).and_then(Value::as_str).unwrap_or(""));
    let mut properties = Map::new();
    properties.insert("thin_provisioning".into(), property("Thin Provisioning", "Sets thin provisioning.", "boolean"));
    properties.insert("compression".into(), property("Compression", "Enables compression.", "boolean"));
    properties.insert("qos".into(), property("QoS", "Enables QoS.", "boolean"));
    properties.insert("replication_enabled".into(), property("Replication", "Enables replication.", "boolean"));
    let pool_name = if pool_asked.is_some() { get("pool_name") } else { Value::Null };
    Ok(ok(json!({
        "namespace": format!("OS::Storage::Capabilities::{}", s.host),
        "vendor_name": text("vendor_name"),
        "volume_backend_name": text("volume_backend_name"),
        "pool_name": pool_name,
        "driver_version": text("driver_version"),
        "storage_protocol": text("storage_protocol"),
        "display_name": Value::Null,
        "description": Value::Null,
        "visibility": Value::Null,
        "replication_targets": [],
        "properties": properties,
    })))
}
