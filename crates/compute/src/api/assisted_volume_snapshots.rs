//! `/os-assisted-volume-snapshots`: the block storage service asks compute
//! to snapshot (or merge away a snapshot of) a file-backed volume a guest
//! has open (Nova's assisted volume snapshots, a service-role API). The
//! volume must be attached to a server that has a host and no task
//! running. The guest's disk chain is the hypervisor's business; the fake
//! hypervisor, as Nova's fake driver, has nothing to do, so the API answers
//! once the checks pass.

use axum::Router;
use axum::extract::{Path, State as S};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post};
use serde_json::{Value, json};
use stratus_core::auth::Auth;
use stratus_core::extract::{Json, RawQuery};

use super::resources::common::{self as c};
use super::{authorize, ok};
use crate::error::{ComputeError, Result, bad};
use crate::store::instances;
use crate::{ComputeService, State};

pub fn routes() -> Router<State> {
    Router::new()
        .route("/v2.1/os-assisted-volume-snapshots", post(create))
        .route("/v2.1/os-assisted-volume-snapshots/{id}", delete(remove))
}

/// The server `volume_id` is attached to, checked as Nova's
/// `check_instance_host` and `check_instance_state(vm_state=None)` do
/// (every refusal is a 400 here).
async fn attached_server(svc: &ComputeService, volume_id: &str, action: &str) -> Result<()> {
    let b = crate::volume::by_volume(&svc.db, volume_id)
        .await
        .map_err(ComputeError::Internal)?
        .ok_or_else(|| bad(format!("No volume Block Device Mapping with id {volume_id}.")))?;
    let inst = instances::get(&svc.db, &b.instance_uuid)
        .await?
        .ok_or_else(|| bad(format!("No volume Block Device Mapping with id {volume_id}.")))?;
    if inst.host.is_none() {
        return Err(bad(format!("Instance {} is not ready", inst.uuid)));
    }
    if let Some(t) = &inst.task_state {
        return Err(bad(format!("Cannot '{action}' instance {} while it is in task_state {t}", inst.uuid)));
    }
    Ok(())
}

fn non_empty(field: &str, v: Option<&Value>) -> Result<Option<String>> {
    match v {
        None => Ok(None),
        Some(v) => Ok(Some(c::string(field, v, 1, usize::MAX)?.to_string())),
    }
}

async fn create(S(svc): S<State>, Auth(ctx): Auth, Json(body): Json<Value>) -> Result<Response> {
    authorize(&svc, &ctx, "os_compute_api:os-assisted-volume-snapshots:create", &json!({}))?;
    let top = c::object(&body, None)?;
    let snap = c::required(top, None, "snapshot")?;
    c::no_extra(top, None, &["snapshot"])?;
    let snap = c::object(snap, Some("snapshot"))?;
    c::no_extra(snap, Some("snapshot"), &["volume_id", "create_info"])?;
    let volume_id = c::string("volume_id", c::required(snap, Some("snapshot"), "volume_id")?, 1, usize::MAX)?;
    let info = c::object(c::required(snap, Some("snapshot"), "create_info")?, Some("create_info"))?;
    c::no_extra(info, Some("create_info"), &["snapshot_id", "type", "new_file", "id"])?;
    non_empty("snapshot_id", Some(c::required(info, Some("create_info"), "snapshot_id")?))?;
    c::one_of("type", c::required(info, Some("create_info"), "type")?, &["qcow2"])?;
    non_empty("new_file", Some(c::required(info, Some("create_info"), "new_file")?))?;
    let id = non_empty("id", info.get("id"))?;
    attached_server(&svc, volume_id, "volume_snapshot_create").await?;
    Ok(ok(json!({"snapshot": {"id": id, "volumeId": volume_id}})))
}

async fn remove(S(svc): S<State>, Auth(ctx): Auth, q: RawQuery, Path(_id): Path<String>) -> Result<Response> {
    authorize(&svc, &ctx, "os_compute_api:os-assisted-volume-snapshots:delete", &json!({}))?;
    let info: Value = q
        .get("delete_info")
        .ok_or_else(|| bad("'delete_info'"))
        .and_then(|s| serde_json::from_str(s).map_err(|e| bad(e.to_string())))?;
    let volume_id = info["volume_id"].as_str().ok_or_else(|| bad("'volume_id'"))?;
    attached_server(&svc, volume_id, "volume_snapshot_delete").await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
