//! Remote consoles: `POST /servers/{id}/remote-consoles` (2.6+), the legacy
//! actions `os-getVNCConsole`, `os-getSerialConsole`, `os-getSPICEConsole`
//! and `os-getRDPConsole` (2.1-2.5), and `GET /os-console-auth-tokens/{token}`
//! (admin, 2.31+). The work is in [`crate::console`].

use axum::Router;
use axum::extract::{Path, State as S};
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::{Value, json};
use stratus_core::auth::Auth;
use stratus_core::extract::Json;
use stratus_core::{AuthContext, Microversion};

use super::resources::common::{self as c, version_not_found};
use super::servers::visible;
use super::{authorize, ok, project_target};
use crate::error::{Result, bad, not_found};
use crate::store::instances::Instance;
use crate::{ComputeService, State, console};

pub fn routes() -> Router<State> {
    Router::new()
        .route("/v2.1/servers/{id}/remote-consoles", post(create))
        .route("/v2.1/os-console-auth-tokens/{token}", get(show_token))
}

const RULE: &str = "os_compute_api:os-remote-consoles";

async fn create(
    S(svc): S<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response> {
    if !mv.at_least(2, 6) {
        return Err(version_not_found());
    }
    let rc = c::the_object(&body, "remote_console")?;
    c::no_extra(rc, Some("remote_console"), &["protocol", "type"])?;
    let mut protocols = vec!["vnc", "spice", "serial", "rdp"];
    let mut types = vec!["novnc", "xvpvnc", "spice-html5", "serial", "rdp-html5"];
    if mv.at_least(2, 8) {
        protocols.push("mks");
        types.push("webmks");
    }
    let protocol = c::one_of("protocol", c::required(rc, Some("remote_console"), "protocol")?, &protocols)?;
    let console_type = c::one_of("type", c::required(rc, Some("remote_console"), "type")?, &types)?;
    let inst = visible(&svc, &ctx, &id).await?;
    authorize(&svc, &ctx, RULE, &project_target(&inst.project_id))?;
    if protocol == "rdp" {
        return Err(bad(format!("Unavailable console type {protocol}.")));
    }
    let action = format!("get_{protocol}_console");
    let url = console::get_console(&svc, &inst, protocol, console_type, &action).await?;
    Ok(ok(json!({"remote_console": {"protocol": protocol, "type": console_type, "url": url}})))
}

/// The legacy console actions of `POST /servers/{id}/action` (2.1-2.5).
pub async fn legacy_action(
    svc: &ComputeService,
    ctx: &AuthContext,
    mv: Microversion,
    inst: &Instance,
    name: &str,
    arg: &Value,
) -> Result<Response> {
    if mv.at_least(2, 6) {
        return Err(version_not_found());
    }
    let (protocol, types): (&str, &[&str]) = match name {
        "os-getVNCConsole" => ("vnc", &["novnc", "xvpvnc"]),
        "os-getSPICEConsole" => ("spice", &["spice-html5"]),
        "os-getSerialConsole" => ("serial", &["serial"]),
        // removed with Hyper-V in Nova 29.0.0: a bare 400
        "os-getRDPConsole" => {
            return Err(bad(
                "The server could not comply with the request since it is either malformed or otherwise incorrect.",
            ));
        }
        other => return Err(bad(format!("There is no such action: {other}"))),
    };
    let o = c::object(arg, Some(name))?;
    c::no_extra(o, Some(name), &["type"])?;
    let console_type = c::one_of("type", c::required(o, Some(name), "type")?, types)?;
    authorize(svc, ctx, RULE, &project_target(&inst.project_id))?;
    let action = format!("get_{protocol}_console");
    let url = console::get_console(svc, inst, protocol, console_type, &action).await?;
    Ok(ok(json!({"console": {"type": console_type, "url": url}})))
}

async fn show_token(
    S(svc): S<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    Path(token): Path<String>,
) -> Result<Response> {
    // before 2.31 only rdp-html5 tokens were shown, and RDP is gone
    if !mv.at_least(2, 31) {
        return Err(bad(
            "The server could not comply with the request since it is either malformed or otherwise incorrect.",
        ));
    }
    authorize(&svc, &ctx, "os_compute_api:os-console-auth-tokens", &json!({}))?;
    if token.is_empty() {
        return Err(bad("token not provided"));
    }
    let Some(auth) = console::store::validate(&svc.db, &token).await? else {
        return Err(not_found("Token not found"));
    };
    Ok(ok(json!({"console": {
        "instance_uuid": auth.instance_uuid,
        "host": auth.host,
        "port": auth.port,
        "internal_access_path": auth.internal_access_path,
    }})))
}
