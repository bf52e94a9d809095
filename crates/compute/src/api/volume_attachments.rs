//! `/servers/{id}/os-volume_attachments`: a server's volumes (Nova's
//! volume attachments API). List and show read the server's block device
//! mappings; attach checks the volume with the caller's token, reserves a
//! device name and a Cinder attachment, and has the server's host connect
//! it (a call: the reservation is given back when the host fails); detach
//! hands the disconnect and the attachment's return to the host (a cast, 202).
//!
//! The attachment view is Nova's: `id` (until 2.88), `serverId`,
//! `volumeId`, `device`, `tag` from 2.70, `delete_on_termination` from
//! 2.79, `attachment_id` and `bdm_uuid` from 2.89.

use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State as S};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};
use stratus_core::auth::Auth;
use stratus_core::extract::{Json, RawQuery};
use stratus_core::{AuthContext, Microversion};

use super::resources::common::{self as c, invalid, py_repr};
use super::servers::visible;
use super::{accepted_empty, authorize, is_admin, ok, project_target};
use crate::error::{ComputeError, Result, bad, conflict, invalid_state, not_found};
use crate::model::vm;
use crate::rpc;
use crate::store::instances::{self, Instance};
use crate::volume::{self as v, Bdm, NewBdm, VolumeError, Volumes};
use crate::{ComputeService, State};

pub fn routes() -> Router<State> {
    Router::new()
        .route("/v2.1/servers/{id}/os-volume_attachments", get(index).post(create))
        .route("/v2.1/servers/{id}/os-volume_attachments/{volume_id}", get(show).put(update).delete(delete))
}

/// The vm_states a volume may be attached or detached in (no task running).
const ALLOWED: &[&str] = &[vm::ACTIVE, vm::PAUSED, vm::STOPPED, vm::RESIZED, vm::SHELVED, vm::SHELVED_OFFLOADED];

/// How long the API waits for the host to connect a volume.
const ATTACH_TIMEOUT: Duration = Duration::from_secs(120);

/// What an attach asks for, schema-checked as Nova's `create` (2.49, 2.79).
#[derive(Debug, Default, PartialEq)]
struct AttachRequest {
    volume_id: String,
    device: Option<String>,
    tag: Option<String>,
    delete_on_termination: bool,
}

fn uuid_field(field: &str, v: &Value) -> Result<String> {
    let s = match v {
        Value::String(s) => s,
        other => return Err(invalid(field, other, &format!("{} is not of type 'string'", py_repr(other)))),
    };
    if !c::is_uuid_like(s) {
        return Err(invalid(field, v, &format!("{} is not a 'uuid'", py_repr(v))));
    }
    Ok(s.clone())
}

/// Nova's device name pattern, `^(/dev/x{0,1}[a-z]{0,1}d{0,1})([a-z]+)[0-9]*$`:
/// `/dev/`, lowercase letters, then digits.
fn device_ok(d: &str) -> bool {
    let Some(rest) = d.strip_prefix("/dev/") else { return false };
    let letters = rest.bytes().take_while(u8::is_ascii_lowercase).count();
    letters > 0 && rest.bytes().skip(letters).all(|b| b.is_ascii_digit())
}

fn parse(body: &Value, mv: Microversion) -> Result<AttachRequest> {
    let top = c::object(body, None)?;
    let att = c::required(top, None, "volumeAttachment")?;
    c::no_extra(top, None, &["volumeAttachment"])?;
    let att = c::object(att, Some("volumeAttachment"))?;
    let mut allowed = vec!["volumeId", "device"];
    if mv.at_least(2, 49) {
        allowed.push("tag");
    }
    if mv.at_least(2, 79) {
        allowed.push("delete_on_termination");
    }
    c::no_extra(att, Some("volumeAttachment"), &allowed)?;
    let mut r = AttachRequest {
        volume_id: uuid_field("volumeId", c::required(att, Some("volumeAttachment"), "volumeId")?)?,
        ..Default::default()
    };
    match att.get("device") {
        None | Some(Value::Null) => {}
        Some(Value::String(d)) => {
            if !device_ok(d) {
                return Err(invalid(
                    "device",
                    &json!(d),
                    &format!(
                        "{} does not match '(^/dev/x{{0,1}}[a-z]{{0,1}}d{{0,1}})([a-z]+)[0-9]*$'",
                        py_repr(&json!(d))
                    ),
                ));
            }
            r.device = Some(d.clone());
        }
        Some(other) => {
            return Err(invalid("device", other, &format!("{} is not of type 'string', 'null'", py_repr(other))));
        }
    }
    if let Some(t) = att.get("tag") {
        let s = c::string("tag", t, 1, 60)?;
        if s.contains(',') || s.contains('/') {
            return Err(invalid("tag", t, &format!("{} does not match '^[^,/]*$'", py_repr(t))));
        }
        r.tag = Some(s.to_string());
    }
    if let Some(d) = att.get("delete_on_termination") {
        r.delete_on_termination = c::boolean("delete_on_termination", d)?;
    }
    Ok(r)
}

/// The attachment view of a mapping at `mv`.
fn view(b: &Bdm, mv: Microversion) -> Value {
    let volume_id = b.volume_id.clone().unwrap_or_default();
    let mut a = json!({
        "serverId": b.instance_uuid,
        "volumeId": volume_id,
        "device": b.device_name,
    });
    if !mv.at_least(2, 89) {
        a["id"] = json!(volume_id);
    }
    if mv.at_least(2, 70) {
        a["tag"] = json!(b.tag);
    }
    if mv.at_least(2, 79) {
        a["delete_on_termination"] = json!(b.delete_on_termination);
    }
    if mv.at_least(2, 89) {
        a["attachment_id"] = json!(b.attachment_id);
        a["bdm_uuid"] = json!(b.uuid);
    }
    a
}

fn volumes(svc: &ComputeService) -> Result<Option<&Volumes>> {
    Ok(svc.deps()?.volumes.as_deref())
}

fn no_block_storage() -> ComputeError {
    bad("Block storage is not available: this cloud's compute service has no volume service.")
}

fn failed(e: VolumeError) -> ComputeError {
    ComputeError::Internal(anyhow::anyhow!("{e}"))
}

fn locked_check(svc: &ComputeService, ctx: &AuthContext, inst: &Instance) -> Result<()> {
    if inst.locked && !is_admin(svc, ctx) {
        return Err(conflict(format!("Instance {} is locked", inst.uuid)));
    }
    Ok(())
}

fn state_check(inst: &Instance, action: &str) -> Result<()> {
    if !ALLOWED.contains(&inst.vm_state.as_str()) {
        return Err(invalid_state(action, &inst.uuid, "vm_state", &inst.vm_state));
    }
    if let Some(t) = &inst.task_state {
        return Err(invalid_state(action, &inst.uuid, "task_state", t));
    }
    Ok(())
}

async fn record(svc: &ComputeService, ctx: &AuthContext, inst: &Instance, action: &str) -> Result<String> {
    let rid = stratus_core::http::current_request_id();
    instances::start_action(&svc.db.write, &inst.uuid, action, &rid, Some(&ctx.user_id), ctx.project_id.as_deref())
        .await?;
    Ok(rid)
}

/// Nova's `limit` / `offset` of the list (non-negative integers).
fn page_param(q: &RawQuery, key: &str) -> Result<Option<usize>> {
    match q.get(key) {
        None => Ok(None),
        Some(s) => s.parse::<usize>().map(Some).map_err(|_| {
            bad(format!("Invalid input for query parameters {key}. Value: {s}. '{s}' does not match '^[0-9]*$'"))
        }),
    }
}

async fn index(
    S(svc): S<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    q: RawQuery,
    Path(id): Path<String>,
) -> Result<Response> {
    let inst = visible(&svc, &ctx, &id).await?;
    authorize(&svc, &ctx, "os_compute_api:os-volumes-attachments:index", &project_target(&inst.project_id))?;
    let limit = page_param(&q, "limit")?;
    let offset = page_param(&q, "offset")?.unwrap_or(0);
    let rows = v::of_instance(&svc.db, &inst.uuid).await.map_err(ComputeError::Internal)?;
    let list: Vec<Value> = rows
        .iter()
        .filter(|b| b.volume_id.is_some())
        .skip(offset)
        .take(limit.unwrap_or(usize::MAX))
        .map(|b| view(b, mv))
        .collect();
    Ok(ok(json!({"volumeAttachments": list})))
}

async fn show(
    S(svc): S<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    Path((id, volume_id)): Path<(String, String)>,
) -> Result<Response> {
    let inst = visible(&svc, &ctx, &id).await?;
    authorize(&svc, &ctx, "os_compute_api:os-volumes-attachments:show", &project_target(&inst.project_id))?;
    let b = v::find(&svc.db, &inst.uuid, &volume_id)
        .await
        .map_err(ComputeError::Internal)?
        .ok_or_else(|| not_found(format!("volume_id not found: {volume_id}")))?;
    Ok(ok(json!({"volumeAttachment": view(&b, mv)})))
}

async fn create(
    S(svc): S<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response> {
    let req = parse(&body, mv)?;
    let inst = visible(&svc, &ctx, &id).await?;
    authorize(&svc, &ctx, "os_compute_api:os-volumes-attachments:create", &project_target(&inst.project_id))?;
    locked_check(&svc, &ctx, &inst)?;
    state_check(&inst, "attach_volume")?;
    let Some(vols) = volumes(&svc)? else { return Err(no_block_storage()) };
    let Some(host) = inst.host.clone() else {
        return Err(invalid_state("attach_volume", &inst.uuid, "vm_state", &inst.vm_state));
    };
    let volume = vols
        .get(Some(&ctx.token), &req.volume_id)
        .await
        .map_err(failed)?
        .ok_or_else(|| not_found(format!("Volume {} could not be found.", req.volume_id)))?;
    let rows = v::of_instance(&svc.db, &inst.uuid).await.map_err(ComputeError::Internal)?;
    if rows.iter().any(|b| b.volume_id.as_deref() == Some(req.volume_id.as_str())) {
        return Err(bad(format!("Invalid volume: volume {} already attached", req.volume_id)));
    }
    let status = volume["status"].as_str().unwrap_or_default();
    let multiattach = volume["multiattach"] == true;
    if status != "available" && !(multiattach && status == "in-use") {
        return Err(bad(format!(
            "Invalid volume: volume '{}' status must be 'available'. Currently in '{status}'",
            req.volume_id
        )));
    }
    let Some(device) = v::device_name(&rows, req.device.as_deref(), inst.ephemeral_gb > 0) else {
        return Err(conflict(format!(
            "The supplied device path ({}) is in use.",
            req.device.as_deref().unwrap_or_default()
        )));
    };
    let rid = record(&svc, &ctx, &inst, "attach_volume").await?;
    let attachment = match vols.attachment_create(Some(&ctx.token), &req.volume_id, &inst.uuid, None).await {
        Ok(a) => a,
        Err(e) => {
            let _ = instances::finish_event(&svc.db, &inst.uuid, &rid, "api_attach_volume", Some(&e.message())).await;
            return Err(match e.status() {
                Some(404) => not_found(format!("Volume {} could not be found.", req.volume_id)),
                Some(400 | 409) => bad(format!("Invalid volume: {}", e.message())),
                _ => failed(e),
            });
        }
    };
    let attachment_id = attachment["id"].as_str().unwrap_or_default().to_string();
    let row = v::insert(
        &svc.db.write,
        NewBdm {
            instance_uuid: inst.uuid.clone(),
            source_type: "volume".into(),
            volume_id: Some(req.volume_id.clone()),
            attachment_id: Some(attachment_id.clone()),
            device_name: Some(device),
            delete_on_termination: req.delete_on_termination,
            tag: req.tag.clone(),
            ..Default::default()
        },
    )
    .await;
    let row = match row {
        Ok(r) => r,
        Err(e) => {
            let _ = vols.attachment_delete(&attachment_id).await;
            return Err(ComputeError::Internal(e));
        }
    };
    let msg = rpc::AttachVolume {
        instance_uuid: inst.uuid.clone(),
        bdm_uuid: row.uuid.clone(),
        action_request_id: rid.clone(),
    };
    let done: std::result::Result<(), _> =
        svc.deps()?.bus.call(&rpc::attach_volume_topic(&host), &msg, &rid, ATTACH_TIMEOUT).await;
    if let Err(e) = done {
        // nothing of a failed attach stays: the attachment goes back, the mapping goes
        tracing::warn!(request_id = %rid, instance = %inst.uuid, volume = %req.volume_id, error = %e, "attach volume failed on the host");
        if let Err(u) = vols.attachment_delete(&attachment_id).await {
            tracing::warn!(request_id = %rid, attachment = %attachment_id, error = %u, "giving back the attachment of a failed attach failed");
        }
        let _ = v::remove(&svc.db, &row.uuid).await;
        return Err(ComputeError::Status(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("Failed to attach volume {} to {}", req.volume_id, inst.uuid),
        ));
    }
    Ok(ok(json!({"volumeAttachment": view(&row, mv)})))
}

/// PUT: from 2.85 the same volume's `delete_on_termination` may change;
/// another volume is a swap, which this cloud's drivers cannot do.
async fn update(
    S(svc): S<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    Path((id, volume_id)): Path<(String, String)>,
    Json(body): Json<Value>,
) -> Result<Response> {
    let top = c::object(&body, None)?;
    let att = c::required(top, None, "volumeAttachment")?;
    c::no_extra(top, None, &["volumeAttachment"])?;
    let att = c::object(att, Some("volumeAttachment"))?;
    let mut allowed = vec!["volumeId"];
    if mv.at_least(2, 85) {
        allowed.extend(["id", "serverId", "device", "tag", "delete_on_termination"]);
    }
    c::no_extra(att, Some("volumeAttachment"), &allowed)?;
    let new_volume = uuid_field("volumeId", c::required(att, Some("volumeAttachment"), "volumeId")?)?;
    let inst = visible(&svc, &ctx, &id).await?;
    let swap = new_volume != volume_id;
    if swap {
        authorize(&svc, &ctx, "os_compute_api:os-volumes-attachments:swap", &project_target(&inst.project_id))?;
    } else {
        if !mv.at_least(2, 85) {
            return Err(bad(format!("Invalid volume: volume {volume_id} already attached")));
        }
        authorize(&svc, &ctx, "os_compute_api:os-volumes-attachments:update", &project_target(&inst.project_id))?;
    }
    locked_check(&svc, &ctx, &inst)?;
    let b = v::find(&svc.db, &inst.uuid, &volume_id)
        .await
        .map_err(ComputeError::Internal)?
        .ok_or_else(|| not_found(format!("volume_id not found: {volume_id}")))?;
    if swap {
        state_check(&inst, "swap_volume")?;
        return Err(bad("Swapping volumes is not supported by this cloud's compute driver."));
    }
    // 2.85: only delete_on_termination may change; the rest must be as it is
    for (key, now) in [
        ("id", json!(volume_id)),
        ("serverId", json!(inst.uuid)),
        ("device", json!(b.device_name)),
        ("tag", json!(b.tag)),
    ] {
        if let Some(given) = att.get(key)
            && *given != now
        {
            return Err(bad(format!("The {key} property of the attachment cannot be changed.")));
        }
    }
    if let Some(d) = att.get("delete_on_termination") {
        let flag = c::boolean("delete_on_termination", d)?;
        v::update(&svc.db, &b.uuid, v::BdmChange { delete_on_termination: Some(flag), ..Default::default() })
            .await
            .map_err(ComputeError::Internal)?;
    }
    Ok(accepted_empty())
}

async fn delete(S(svc): S<State>, Auth(ctx): Auth, Path((id, volume_id)): Path<(String, String)>) -> Result<Response> {
    let inst = visible(&svc, &ctx, &id).await?;
    authorize(&svc, &ctx, "os_compute_api:os-volumes-attachments:delete", &project_target(&inst.project_id))?;
    locked_check(&svc, &ctx, &inst)?;
    state_check(&inst, "detach_volume")?;
    let b = v::find(&svc.db, &inst.uuid, &volume_id)
        .await
        .map_err(ComputeError::Internal)?
        .ok_or_else(|| not_found(format!("Instance {} is not attached to volume {volume_id}", inst.uuid)))?;
    if b.is_root() {
        return Err(bad("Cannot detach a root device volume"));
    }
    let rid = record(&svc, &ctx, &inst, "detach_volume").await?;
    match (&inst.host, inst.vm_state.as_str()) {
        (Some(host), s) if s != vm::SHELVED_OFFLOADED => {
            let msg = rpc::DetachVolume { instance_uuid: inst.uuid.clone(), volume_id, action_request_id: rid.clone() };
            svc.deps()?
                .bus
                .cast(&rpc::detach_volume_topic(host), &msg, &rid)
                .await
                .map_err(|e| anyhow::anyhow!("bus: {e}"))?;
        }
        _ => {
            // no host has it connected: the attachment and the mapping go here
            if let (Some(vols), Some(a)) = (volumes(&svc)?, &b.attachment_id) {
                vols.attachment_delete(a).await.map_err(failed)?;
            }
            v::remove(&svc.db, &b.uuid).await.map_err(ComputeError::Internal)?;
            let _ = instances::finish_event(&svc.db, &inst.uuid, &rid, "api_detach_volume", None).await;
        }
    }
    Ok(accepted_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    const V: &str = "6a0b1b84-8b3c-4f4e-9d0a-000000000001";

    fn status(r: Result<AttachRequest>) -> u16 {
        match r {
            Ok(_) => 200,
            Err(e) => e.to_api().status.as_u16(),
        }
    }

    #[test]
    fn attach_bodies_are_checked_as_novas_schema() {
        let mv = Microversion(2, 96);
        let r = parse(
            &json!({"volumeAttachment": {"volumeId": V, "device": "/dev/vdc", "tag": "data",
            "delete_on_termination": true}}),
            mv,
        )
        .unwrap();
        assert_eq!(r.device.as_deref(), Some("/dev/vdc"));
        assert!(r.delete_on_termination);
        assert_eq!(
            parse(&json!({"volumeAttachment": {"volumeId": V, "device": null}}), Microversion(2, 1)).unwrap().device,
            None
        );
        for bad in [
            json!({}),
            json!({"volumeAttachment": {}}),
            json!({"volumeAttachment": {"volumeId": "nope"}}),
            json!({"volumeAttachment": {"volumeId": V, "device": "vdb"}}),
            json!({"volumeAttachment": {"volumeId": V, "device": "/dev/VDB"}}),
            json!({"volumeAttachment": {"volumeId": V, "device": "/dev/1"}}),
            json!({"volumeAttachment": {"volumeId": V, "device": 5}}),
            json!({"volumeAttachment": {"volumeId": V, "tag": "a/b"}}),
            json!({"volumeAttachment": {"volumeId": V, "other": 1}}),
            json!({"volumeAttachment": {"volumeId": V, "delete_on_termination": "maybe"}}),
        ] {
            assert_eq!(status(parse(&bad, mv)), 400, "{bad}");
        }
        // tags come with 2.49, the delete flag with 2.79
        assert_eq!(status(parse(&json!({"volumeAttachment": {"volumeId": V, "tag": "x"}}), Microversion(2, 48))), 400);
        assert_eq!(
            status(parse(
                &json!({"volumeAttachment": {"volumeId": V, "delete_on_termination": true}}),
                Microversion(2, 78)
            )),
            400
        );
    }

    #[test]
    fn the_view_follows_the_microversion() {
        let b = Bdm {
            id: 1,
            uuid: "b".into(),
            instance_uuid: "s".into(),
            source_type: "volume".into(),
            destination_type: "volume".into(),
            image_id: None,
            volume_id: Some(V.into()),
            volume_size: None,
            attachment_id: Some("a".into()),
            device_name: Some("/dev/vdb".into()),
            boot_index: None,
            delete_on_termination: true,
            tag: None,
            connection_info: None,
            created_at: 0,
            updated_at: None,
        };
        let keys = |v: Value| {
            let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
            k.sort();
            k.join(",")
        };
        assert_eq!(keys(view(&b, Microversion(2, 1))), "device,id,serverId,volumeId");
        assert_eq!(keys(view(&b, Microversion(2, 79))), "delete_on_termination,device,id,serverId,tag,volumeId");
        assert_eq!(
            keys(view(&b, Microversion(2, 89))),
            "attachment_id,bdm_uuid,delete_on_termination,device,serverId,tag,volumeId"
        );
    }
}
