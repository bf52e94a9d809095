//! `POST /os-server-external-events` (the service role): events from other
//! services (network-vif-plugged, volume-extended, ...) about servers. No
//! waiter in Stratus depends on them yet: each event is checked (the server
//! must exist and be on a host) and answered as Nova answers it.

use axum::Router;
use axum::extract::State as S;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use stratus_core::Microversion;
use stratus_core::auth::Auth;
use stratus_core::extract::Json;

use super::authorize;
use super::resources::common::{self as c, invalid, py_repr};
use crate::State;
use crate::error::{Result, not_found};
use crate::store::instances;

pub fn routes() -> Router<State> {
    Router::new().route("/v2.1/os-server-external-events", post(create))
}

/// Event names by the microversion that introduced them.
fn names(mv: Microversion) -> Vec<&'static str> {
    let mut n = vec!["network-changed", "network-vif-plugged", "network-vif-unplugged", "network-vif-deleted"];
    if mv.at_least(2, 51) {
        n.push("volume-extended");
    }
    if mv.at_least(2, 76) {
        n.push("power-update");
    }
    if mv.at_least(2, 82) {
        n.push("accelerator-request-bound");
    }
    if mv.at_least(2, 93) {
        n.push("volume-reimaged");
    }
    n
}

async fn create(S(svc): S<State>, Auth(ctx): Auth, mv: Microversion, Json(body): Json<Value>) -> Result<Response> {
    authorize(&svc, &ctx, "os_compute_api:os-server-external-events:create", &json!({}))?;
    let o = c::object(&body, None)?;
    c::no_extra(o, None, &["events"])?;
    let events = c::required(o, None, "events")?;
    let list = events
        .as_array()
        .ok_or_else(|| invalid("events", events, &format!("{} is not of type 'array'", py_repr(events))))?;
    if list.is_empty() {
        return Err(invalid("events", events, "[] is too short"));
    }
    let allowed = names(mv);
    let mut parsed = Vec::new();
    for e in list {
        let eo = c::object(e, Some("events"))?;
        c::no_extra(eo, Some("events"), &["name", "tag", "status", "server_uuid"])?;
        let name = c::one_of("name", c::required(eo, Some("events"), "name")?, &allowed)?.to_string();
        let uuid = c::string("server_uuid", c::required(eo, Some("events"), "server_uuid")?, 0, 255)?.to_string();
        let status = match eo.get("status") {
            Some(v) => c::one_of("status", v, &["failed", "completed", "in-progress"])?.to_string(),
            None => "completed".to_string(),
        };
        let tag = eo.get("tag").map(|v| c::string("tag", v, 0, 255).map(str::to_string)).transpose()?;
        parsed.push((name, uuid, status, tag));
    }
    let mut out = Vec::new();
    let mut accepted = 0;
    for (name, uuid, status, tag) in parsed {
        let mut ev = json!({"name": name, "server_uuid": uuid, "status": status});
        if let Some(t) = tag {
            ev["tag"] = json!(t);
        }
        match instances::get_live(&svc.db, &uuid).await? {
            Some(i) if i.host.is_some() => {
                ev["code"] = json!(200);
                accepted += 1;
            }
            Some(_) => {
                ev["code"] = json!(422);
                ev["status"] = json!("failed");
            }
            None => {
                ev["code"] = json!(404);
                ev["status"] = json!("failed");
            }
        }
        out.push(ev);
    }
    if accepted == 0 {
        return Err(not_found("No instances found for any event"));
    }
    // 207 when some events were refused (Nova's multi-status answer)
    let code = if accepted < out.len() { StatusCode::MULTI_STATUS } else { StatusCode::OK };
    Ok((code, axum::Json(json!({ "events": out }))).into_response())
}
