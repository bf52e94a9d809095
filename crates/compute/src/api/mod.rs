//! Nova v2.1 over HTTP: one module per resource (routes, wire types, handlers).
//!
//! Routes live under `/v2.1`; the version documents (`/`, `/v2.1`) need no
//! token. Every response carries the negotiated microversion.

use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use stratus_core::{AuthContext, TokenValidator};

use crate::error::{ComputeError, Result};
use crate::{ComputeService, State};

pub mod assisted_volume_snapshots;
pub mod attach_interfaces;
pub mod floating_ips;
pub mod image_metadata;
pub mod images;
pub mod instance_actions;
pub mod multinic;
pub mod network_proxy;
pub mod networks;
pub mod remote_consoles;
pub mod resources;
pub mod security_groups;
pub mod server_actions;
pub mod server_diagnostics;
pub mod server_external_events;
pub mod server_meta;
pub mod server_password;
pub mod servers;
pub mod versions;
pub mod volume_attachments;
pub mod volumes;

/// Every route of the compute API, with authentication and microversions.
pub fn routes(state: State, validator: Arc<dyn TokenValidator>) -> Router {
    let authed: Router<State> = Router::new()
        .merge(resources::routes())
        .merge(servers::routes())
        .merge(server_actions::routes())
        .merge(server_meta::routes())
        .merge(images::routes())
        .merge(image_metadata::routes())
        .merge(instance_actions::routes())
        .merge(server_diagnostics::routes())
        .merge(server_external_events::routes())
        .merge(attach_interfaces::routes())
        .merge(volume_attachments::routes())
        .merge(volumes::routes())
        .merge(assisted_volume_snapshots::routes())
        .merge(server_password::routes())
        .merge(remote_consoles::routes())
        .merge(floating_ips::routes())
        .merge(security_groups::routes())
        .merge(networks::routes());
    let authed = authed.layer(stratus_core::auth::layer(validator));
    Router::new()
        .merge(versions::routes())
        .merge(authed)
        .layer(stratus_core::microversion::layer(crate::VERSIONS))
        .layer(axum::middleware::map_response(compute_request_id))
        .with_state(state)
}

/// Nova answers with the request id under its own old name too,
/// `x-compute-request-id` (Tempest reads it to find a server's actions).
async fn compute_request_id(mut resp: Response) -> Response {
    let id = stratus_core::http::current_request_id();
    if !id.is_empty()
        && let Ok(v) = axum::http::HeaderValue::from_str(&id)
    {
        resp.headers_mut().insert(axum::http::HeaderName::from_static("x-compute-request-id"), v);
    }
    resp
}

pub fn ok(v: Value) -> Response {
    (StatusCode::OK, axum::Json(v)).into_response()
}

pub fn created(v: Value) -> Response {
    (StatusCode::CREATED, axum::Json(v)).into_response()
}

pub fn accepted(v: Value) -> Response {
    (StatusCode::ACCEPTED, axum::Json(v)).into_response()
}

/// 202 with no body (server actions).
pub fn accepted_empty() -> Response {
    StatusCode::ACCEPTED.into_response()
}

pub fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// 403 in Nova's words unless `rule` allows the caller on `target`.
pub fn authorize(svc: &ComputeService, ctx: &AuthContext, rule: &str, target: &Value) -> Result<()> {
    if svc.policy.allowed(ctx, rule, target) {
        Ok(())
    } else {
        Err(ComputeError::Forbidden(format!("Policy doesn't allow {rule} to be performed.")))
    }
}

/// Is the caller an admin (Nova's `context.is_admin`)?
pub fn is_admin(svc: &ComputeService, ctx: &AuthContext) -> bool {
    svc.policy.allowed(ctx, "context_is_admin", &json!({}))
}

/// The caller's project (compute is project scoped).
pub fn project_of(ctx: &AuthContext) -> Result<&str> {
    ctx.project_id.as_deref().ok_or_else(|| ComputeError::Forbidden("A project-scoped token is required.".into()))
}

/// The target of project-owned rules.
pub fn project_target(project_id: &str) -> Value {
    json!({"project_id": project_id})
}
