//! Cinder v3 over HTTP: one module per resource (routes, wire types, handlers).
//!
//! `GET /` and `GET /v3/` (versions) need no token; everything else does.
//! Routes are written project-less (`/v3/volumes`); [`strip_project`] maps
//! the project-scoped form (`/v3/{project_id}/volumes`) onto them.

use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use stratus_core::{AuthContext, TokenValidator};

use crate::error::{Result, VolumeError, forbidden};
use crate::{State, VolumeService};

pub mod attachments;
pub mod availability_zones;
pub mod backups;
pub mod capabilities;
pub mod default_types;
pub mod group_snapshots;
pub mod group_types;
pub mod groups;
pub mod hosts;
pub mod limits;
pub mod list;
pub mod messages;
pub mod metadata;
pub mod qos;
pub mod quotas;
pub mod resource_filters;
pub mod root;
pub mod scheduler_stats;
pub mod services;
pub mod snapshots;
pub mod transfers;
pub mod types;
pub mod volume_actions;
pub mod volumes;

/// The first path segments after `/v3/` that name a collection (anything
/// else there is a project id).
pub const COLLECTIONS: &[&str] = &[
    "volumes",
    "types",
    "snapshots",
    "backups",
    "os-volume-transfer",
    "volume-transfers",
    "os-quota-sets",
    "os-quota-class-sets",
    "limits",
    "os-services",
    "os-availability-zone",
    "qos-specs",
    "attachments",
    "extensions",
    "scheduler-stats",
    "messages",
    "default-types",
    "os-hosts",
    "groups",
    "group_types",
    "group_snapshots",
    "capabilities",
    "manageable_volumes",
    "manageable_snapshots",
    "os-volume-manage",
    "os-snapshot-manage",
    "workers",
    "clusters",
    "resource_filters",
];

/// `/v3/{project_id}/rest` -> `/v3/rest` (the project comes from the token).
pub fn strip_project(mut req: Request) -> Request {
    // access rules of application credentials match the path as sent
    let original = stratus_core::access_rules::RequestPath(req.uri().path().to_string());
    req.extensions_mut().insert(original);
    let path = req.uri().path();
    let Some(rest) = path.strip_prefix("/v3/") else {
        return req;
    };
    let (first, tail) = rest.split_once('/').unwrap_or((rest, ""));
    if first.is_empty() || COLLECTIONS.contains(&first) {
        return req;
    }
    let new_path = if tail.is_empty() { "/v3/".to_string() } else { format!("/v3/{tail}") };
    let pq = match req.uri().query() {
        Some(q) => format!("{new_path}?{q}"),
        None => new_path,
    };
    let mut parts = req.uri().clone().into_parts();
    if let Ok(p) = pq.parse() {
        parts.path_and_query = Some(p);
        if let Ok(u) = Uri::from_parts(parts) {
            *req.uri_mut() = u;
        }
    }
    req
}

/// Every route of the block storage API, with authentication.
pub fn routes(state: State, validator: Arc<dyn TokenValidator>) -> Router {
    let authed: Router<State> = Router::new().merge(root::authed_routes()).merge(volumes::routes());
    let authed = authed.merge(types::routes()).merge(qos::routes()).merge(default_types::routes());
    let authed = authed.merge(quotas::routes()).merge(limits::routes()).merge(services::routes());
    let authed = authed.merge(availability_zones::routes()).merge(scheduler_stats::routes());
    let authed = authed.merge(capabilities::routes()).merge(hosts::routes());
    let authed = authed.merge(snapshots::routes()).merge(backups::routes()).merge(transfers::routes());
    let authed = authed.merge(attachments::routes());
    let authed = authed.merge(group_types::routes()).merge(groups::routes());
    let authed = authed.merge(group_snapshots::routes()).merge(messages::routes());
    let authed = authed.merge(resource_filters::routes());
    let authed = authed.layer(stratus_core::microversion::layer(crate::VERSIONS));
    let authed = authed.layer(stratus_core::auth::layer(validator));
    Router::new().merge(root::routes()).merge(authed).with_state(state)
}

pub fn ok(v: Value) -> Response {
    (StatusCode::OK, axum::Json(v)).into_response()
}

pub fn accepted(v: Value) -> Response {
    (StatusCode::ACCEPTED, axum::Json(v)).into_response()
}

pub fn accepted_empty() -> Response {
    StatusCode::ACCEPTED.into_response()
}

pub fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// Is the caller an admin?
pub fn is_admin(svc: &VolumeService, ctx: &AuthContext) -> bool {
    svc.policy.allowed(ctx, "context_is_admin", &json!({}))
}

/// The caller's project ('' for a system- or domain-scoped admin).
pub fn project_of(ctx: &AuthContext) -> String {
    ctx.project_id.clone().unwrap_or_default()
}

/// Does `rule` allow the caller on a resource of `project_id`?
pub fn allowed(svc: &VolumeService, ctx: &AuthContext, rule: &str, project_id: &str) -> bool {
    svc.policy.allowed(ctx, rule, &json!({"project_id": project_id}))
}

/// 403 in Cinder's words unless `rule` allows the caller.
pub fn authorize(svc: &VolumeService, ctx: &AuthContext, rule: &str, project_id: &str) -> Result<()> {
    if allowed(svc, ctx, rule, project_id) {
        Ok(())
    } else {
        Err(forbidden(format!("Policy doesn't allow {rule} to be performed.")))
    }
}

/// A request body as a JSON value (400 in Cinder's style otherwise).
pub type Body = stratus_core::extract::Json<Value>;

/// The object under `key` in a body (400 when missing or not an object).
pub fn body_object<'a>(body: &'a Value, key: &str) -> Result<&'a serde_json::Map<String, Value>> {
    body.get(key)
        .and_then(Value::as_object)
        .ok_or_else(|| crate::error::bad(format!("Missing required element '{key}' in request body.")))
}

/// A JSON object stored as text (metadata, specs), `{}` when unreadable.
pub fn json_object(text: &str) -> serde_json::Map<String, Value> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    }
}

/// Validate a metadata object as Cinder does (string keys of 1-255
/// characters, string values up to 255) and give it as a map.
pub fn metadata_from(v: &Value) -> Result<serde_json::Map<String, Value>> {
    let Some(obj) = v.as_object() else {
        return Err(crate::error::bad("Malformed metadata: it must be an object"));
    };
    for (k, val) in obj {
        if k.is_empty() || k.chars().count() > 255 {
            return Err(crate::error::bad("Invalid metadata key: it must be 1 to 255 characters"));
        }
        let Some(s) = val.as_str() else {
            return Err(crate::error::bad(format!("Invalid metadata value for key {k}: it must be a string")));
        };
        if s.chars().count() > 255 {
            return Err(crate::error::bad(format!("Invalid metadata value for key {k}: over 255 characters")));
        }
    }
    Ok(obj.clone())
}

// --- reading requests (shared by the resources) --------------------------------

/// An optional string attribute (400 when present but not a string).
pub fn opt_str(obj: &Map<String, Value>, key: &str) -> Result<Option<String>> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => {
            Err(crate::error::bad(format!("Invalid input for field/attribute {key}. Value should be a string.")))
        }
    }
}

/// A name or description of at most 255 characters.
pub fn check_len(what: &str, v: &Option<String>) -> Result<()> {
    if let Some(s) = v
        && s.chars().count() > 255
    {
        return Err(crate::error::bad(format!(
            "Invalid input for field/attribute {what}: it is longer than 255 characters."
        )));
    }
    Ok(())
}

/// A boolean as Cinder reads one strictly (JSON booleans or their words).
pub fn opt_bool(obj: &Map<String, Value>, key: &str) -> Result<bool> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::String(s)) => match s.to_ascii_lowercase().as_str() {
            "1" | "t" | "true" | "on" | "y" | "yes" => Ok(true),
            "0" | "f" | "false" | "off" | "n" | "no" => Ok(false),
            _ => Err(crate::error::bad(format!("Invalid value '{s}' for {key}."))),
        },
        Some(Value::Number(n)) if n.as_i64() == Some(0) || n.as_i64() == Some(1) => Ok(n.as_i64() == Some(1)),
        Some(other) => Err(crate::error::bad(format!("Invalid value '{other}' for {key}."))),
    }
}

/// Is a query flag set (`?force=true`)?
pub fn query_flag(q: &[(String, String)], name: &str) -> bool {
    q.iter()
        .any(|(k, v)| k == name && matches!(v.to_ascii_lowercase().as_str(), "1" | "t" | "true" | "on" | "y" | "yes"))
}

/// A 404 for ids that are not even UUIDs, before touching the database.
pub fn check_id(kind: &str, id: &str) -> Result<()> {
    if is_uuid_like(id) { Ok(()) } else { Err(crate::error::missing(kind, id)) }
}

/// Now, as Cinder writes times: `2026-11-26T13:00:00.000000`.
pub fn now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
}

/// `id` must look like a UUID (Cinder answers 404 for anything else).
pub fn is_uuid_like(id: &str) -> bool {
    uuid::Uuid::parse_str(id).is_ok()
}

impl From<VolumeError> for Response {
    fn from(e: VolumeError) -> Response {
        e.into_response()
    }
}
