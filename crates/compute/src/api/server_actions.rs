//! `POST /servers/{id}/action`: power actions, lock, rebuild, resize with
//! confirm/revert, snapshot (createImage) and backup (createBackup), console output, force delete,
//! reset state. Each checks the server's state as Nova does (409 when the
//! state forbids it), records an instance action, and hands the work to the
//! server's host (or the conductor, for resize).

use axum::Router;
use axum::extract::{Path, State as S};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use stratus_core::auth::Auth;
use stratus_core::extract::Json;
use stratus_core::{AuthContext, Microversion};

use super::resources::common::{self as c, invalid, py_repr};
use super::servers::{self, visible};
use super::{accepted_empty, authorize, is_admin, ok, project_target};
use crate::error::{ComputeError, Result, bad, conflict, invalid_state};
use crate::model::{task, vm};
use crate::rpc::{self, Action, FlavorSpec};
use crate::store::instances::{self, Change, Expect, Instance};
use crate::store::{flavors, quotas};
use crate::{ComputeService, State};

pub fn routes() -> Router<State> {
    Router::new().route("/v2.1/servers/{id}/action", post(action))
}

fn locked_check(svc: &ComputeService, ctx: &AuthContext, inst: &Instance) -> Result<()> {
    if inst.locked && !is_admin(svc, ctx) {
        return Err(conflict(format!("Instance {} is locked", inst.uuid)));
    }
    Ok(())
}

/// Move the server into `task` if its vm_state is one of `vms` and no task runs; 409 otherwise.
async fn begin(svc: &ComputeService, inst: &Instance, name: &str, vms: &[&'static str], t: &'static str) -> Result<()> {
    if !vms.contains(&inst.vm_state.as_str()) {
        return Err(invalid_state(name, &inst.uuid, "vm_state", &inst.vm_state));
    }
    if let Some(cur) = &inst.task_state {
        return Err(invalid_state(name, &inst.uuid, "task_state", cur));
    }
    let moved = instances::update(
        &svc.db,
        &inst.uuid,
        &Expect::live().vm(vms).task(&[None]),
        Change { task_state: Some(Some(t)), ..Default::default() },
    )
    .await?;
    if !moved {
        let now = instances::get_live(&svc.db, &inst.uuid).await?;
        let (attr, val) = match now {
            Some(i) if i.task_state.is_some() => ("task_state", i.task_state.unwrap_or_default()),
            Some(i) => ("vm_state", i.vm_state),
            None => return Err(crate::error::server_not_found(&inst.uuid)),
        };
        return Err(invalid_state(name, &inst.uuid, attr, &val));
    }
    Ok(())
}

async fn record(svc: &ComputeService, ctx: &AuthContext, inst: &Instance, action: &str) -> Result<String> {
    let rid = stratus_core::http::current_request_id();
    instances::start_action(&svc.db.write, &inst.uuid, action, &rid, Some(&ctx.user_id), ctx.project_id.as_deref())
        .await?;
    Ok(rid)
}

async fn cast_host(svc: &ComputeService, inst: &Instance, action: Action, rid: &str) -> Result<()> {
    let Some(host) = inst.host.clone() else {
        return Err(conflict(format!("Instance {} has no host yet", inst.uuid)));
    };
    let msg = rpc::InstanceAction { instance_uuid: inst.uuid.clone(), action, action_request_id: rid.to_string() };
    svc.deps()?
        .bus
        .cast(&format!("{}.actions", rpc::compute_topic(&host)), &msg, rid)
        .await
        .map_err(|e| anyhow::anyhow!("bus: {e}"))?;
    Ok(())
}

/// A simple power action: state check, task, instance action, cast.
async fn power(
    svc: &ComputeService,
    ctx: &AuthContext,
    inst: &Instance,
    spec: (&str, &str, &[&'static str], &'static str, Action),
) -> Result<Response> {
    let (name, rule, vms, t, act) = spec;
    authorize(svc, ctx, rule, &project_target(&inst.project_id))?;
    locked_check(svc, ctx, inst)?;
    begin(svc, inst, name, vms, t).await?;
    let rid = record(svc, ctx, inst, name).await?;
    cast_host(svc, inst, act, &rid).await?;
    Ok(accepted_empty())
}

async fn action(
    S(svc): S<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response> {
    let inst = visible(&svc, &ctx, &id).await?;
    let obj = c::object(&body, None)?;
    let Some((name, arg)) = obj.iter().next() else {
        return Err(bad("Malformed request body"));
    };
    if obj.len() > 1 {
        return Err(bad("Malformed request body: one action at a time"));
    }
    let svc = &*svc;
    let ctx = &*ctx;
    match name.as_str() {
        "os-stop" => {
            power(
                svc,
                ctx,
                &inst,
                ("stop", "os_compute_api:servers:stop", &[vm::ACTIVE, vm::ERROR], task::POWERING_OFF, Action::Stop),
            )
            .await
        }
        "os-start" => {
            power(
                svc,
                ctx,
                &inst,
                ("start", "os_compute_api:servers:start", &[vm::STOPPED], task::POWERING_ON, Action::Start),
            )
            .await
        }
        "pause" => {
            power(
                svc,
                ctx,
                &inst,
                ("pause", "os_compute_api:os-pause-server:pause", &[vm::ACTIVE], task::PAUSING, Action::Pause),
            )
            .await
        }
        "unpause" => {
            power(
                svc,
                ctx,
                &inst,
                ("unpause", "os_compute_api:os-pause-server:unpause", &[vm::PAUSED], task::UNPAUSING, Action::Unpause),
            )
            .await
        }
        "suspend" => {
            power(
                svc,
                ctx,
                &inst,
                (
                    "suspend",
                    "os_compute_api:os-suspend-server:suspend",
                    &[vm::ACTIVE],
                    task::SUSPENDING,
                    Action::Suspend,
                ),
            )
            .await
        }
        "resume" => {
            power(
                svc,
                ctx,
                &inst,
                ("resume", "os_compute_api:os-suspend-server:resume", &[vm::SUSPENDED], task::RESUMING, Action::Resume),
            )
            .await
        }
        "reboot" => {
            let o = c::object(arg, Some("reboot"))?;
            let kind = c::one_of("type", c::required(o, Some("reboot"), "type")?, &["HARD", "Hard", "Soft", "SOFT"])?
                .to_ascii_uppercase();
            let hard = kind == "HARD";
            let vms: &[&'static str] =
                if hard { &[vm::ACTIVE, vm::STOPPED, vm::PAUSED, vm::SUSPENDED, vm::ERROR] } else { &[vm::ACTIVE] };
            let t = if hard { task::REBOOTING_HARD } else { task::REBOOTING };
            power(svc, ctx, &inst, ("reboot", "os_compute_api:servers:reboot", vms, t, Action::Reboot { hard })).await
        }
        "lock" => lock(svc, ctx, mv, &inst, arg).await,
        "unlock" => unlock(svc, ctx, &inst).await,
        "os-getConsoleOutput" => console(svc, ctx, &inst, arg).await,
        "os-getVNCConsole" | "os-getSerialConsole" | "os-getSPICEConsole" | "os-getRDPConsole" => {
            super::remote_consoles::legacy_action(svc, ctx, mv, &inst, name, arg).await
        }
        "createImage" => create_image(svc, ctx, mv, &inst, arg).await,
        "createBackup" => create_backup(svc, ctx, mv, &inst, arg).await,
        "rebuild" => rebuild(svc, ctx, mv, &inst, arg).await,
        "resize" => resize(svc, ctx, &inst, arg).await,
        "confirmResize" => {
            authorize(svc, ctx, "os_compute_api:servers:confirm_resize", &project_target(&inst.project_id))?;
            locked_check(svc, ctx, &inst)?;
            if inst.vm_state != vm::RESIZED {
                return Err(bad("Instance has not been resized.".to_string()));
            }
            begin_any(svc, &inst, "confirmResize", &[vm::RESIZED], task::RESIZE_CONFIRMING).await?;
            let rid = record(svc, ctx, &inst, "confirmResize").await?;
            cast_host(svc, &inst, Action::ConfirmResize, &rid).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        "revertResize" => {
            authorize(svc, ctx, "os_compute_api:servers:revert_resize", &project_target(&inst.project_id))?;
            locked_check(svc, ctx, &inst)?;
            if inst.vm_state != vm::RESIZED {
                return Err(bad("Instance has not been resized.".to_string()));
            }
            begin_any(svc, &inst, "revertResize", &[vm::RESIZED], task::RESIZE_REVERTING).await?;
            let rid = record(svc, ctx, &inst, "revertResize").await?;
            cast_host(svc, &inst, Action::RevertResize, &rid).await?;
            Ok(accepted_empty())
        }
        "forceDelete" => {
            authorize(svc, ctx, "os_compute_api:os-deferred-delete:force", &project_target(&inst.project_id))?;
            servers::delete_server(svc, ctx, &inst, "forceDelete").await?;
            Ok(accepted_empty())
        }
        "restore" => {
            authorize(svc, ctx, "os_compute_api:os-deferred-delete:restore", &project_target(&inst.project_id))?;
            Err(invalid_state("restore", &inst.uuid, "vm_state", &inst.vm_state))
        }
        "injectNetworkInfo" => {
            // the fake hypervisor's guests read their network from the ports: nothing to push
            authorize(
                svc,
                ctx,
                "os_compute_api:os-admin-actions:inject_network_info",
                &project_target(&inst.project_id),
            )?;
            record(svc, ctx, &inst, "inject_network_info").await?;
            Ok(accepted_empty())
        }
        "os-resetState" => {
            authorize(svc, ctx, "os_compute_api:os-admin-actions:reset_state", &project_target(&inst.project_id))?;
            let o = c::object(arg, Some("os-resetState"))?;
            let state = c::one_of("state", c::required(o, Some("os-resetState"), "state")?, &["active", "error"])?;
            let v = if state == "active" { vm::ACTIVE } else { vm::ERROR };
            instances::update(
                &svc.db,
                &inst.uuid,
                &Expect::live(),
                Change { vm_state: Some(v), task_state: Some(None), ..Default::default() },
            )
            .await?;
            record(svc, ctx, &inst, "resetState").await?;
            Ok(accepted_empty())
        }
        "addFloatingIp" => super::floating_ips::add_floating_ip(svc, ctx, mv, &inst, arg).await,
        "removeFloatingIp" => super::floating_ips::remove_floating_ip(svc, ctx, mv, &inst, arg).await,
        "addFixedIp" => super::multinic::add_fixed_ip(svc, ctx, mv, &inst, arg).await,
        "removeFixedIp" => super::multinic::remove_fixed_ip(svc, ctx, mv, &inst, arg).await,
        "addSecurityGroup" => super::security_groups::add_security_group(svc, ctx, &inst, arg).await,
        "removeSecurityGroup" => super::security_groups::remove_security_group(svc, ctx, &inst, arg).await,
        other => Err(bad(format!("There is no such action: {other}"))),
    }
}

/// Like `begin`, for actions that need a given vm_state and no task.
async fn begin_any(
    svc: &ComputeService,
    inst: &Instance,
    name: &str,
    vms: &[&'static str],
    t: &'static str,
) -> Result<()> {
    begin(svc, inst, name, vms, t).await
}

async fn lock(
    svc: &ComputeService,
    ctx: &AuthContext,
    mv: Microversion,
    inst: &Instance,
    arg: &Value,
) -> Result<Response> {
    authorize(svc, ctx, "os_compute_api:os-lock-server:lock", &project_target(&inst.project_id))?;
    let mut reason = None;
    if let Some(o) = arg.as_object() {
        if mv.at_least(2, 73) {
            c::no_extra(o, Some("lock"), &["locked_reason"])?;
            if let Some(r) = o.get("locked_reason") {
                reason = Some(c::string("locked_reason", r, 0, 255)?.to_string());
            }
        } else if !o.is_empty() {
            return Err(bad("Additional properties are not allowed"));
        }
    } else if !arg.is_null() {
        return Err(invalid("lock", arg, &format!("{} is not of type 'object', 'null'", py_repr(arg))));
    }
    let by = if ctx.project_id.as_deref() == Some(inst.project_id.as_str()) { "owner" } else { "admin" };
    instances::update(
        &svc.db,
        &inst.uuid,
        &Expect::live(),
        Change { locked: Some((true, Some(by.into()), reason)), ..Default::default() },
    )
    .await?;
    record(svc, ctx, inst, "lock").await?;
    Ok(accepted_empty())
}

async fn unlock(svc: &ComputeService, ctx: &AuthContext, inst: &Instance) -> Result<Response> {
    authorize(svc, ctx, "os_compute_api:os-lock-server:unlock", &project_target(&inst.project_id))?;
    // an admin's lock is the admin's to lift
    if inst.locked
        && inst.locked_by.as_deref() == Some("admin")
        && ctx.project_id.as_deref() == Some(inst.project_id.as_str())
    {
        authorize(svc, ctx, "os_compute_api:os-lock-server:unlock:unlock_override", &project_target(&inst.project_id))?;
    }
    instances::update(
        &svc.db,
        &inst.uuid,
        &Expect::live(),
        Change { locked: Some((false, None, None)), ..Default::default() },
    )
    .await?;
    record(svc, ctx, inst, "unlock").await?;
    Ok(accepted_empty())
}

async fn console(svc: &ComputeService, ctx: &AuthContext, inst: &Instance, arg: &Value) -> Result<Response> {
    authorize(svc, ctx, "os_compute_api:os-console-output", &project_target(&inst.project_id))?;
    let length = match arg.get("length") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => {
            Some(n.as_i64().ok_or_else(|| invalid("length", &arg["length"], "is not an integer"))?)
        }
        Some(Value::String(s)) => Some(
            s.parse::<i64>()
                .map_err(|_| invalid("length", &arg["length"], &format!("'{s}' does not match '^-?[0-9]+$'")))?,
        ),
        Some(other) => {
            return Err(invalid(
                "length",
                other,
                &format!("{} is not of type 'integer', 'string', 'null'", py_repr(other)),
            ));
        }
    };
    let length = match length {
        Some(n) if n < -1 => return Err(invalid("length", &json!(n), &format!("{n} is less than the minimum of -1"))),
        Some(-1) | None => None,
        Some(n) => Some(usize::try_from(n).unwrap_or(0)),
    };
    if inst.vm_state == vm::BUILDING || inst.host.is_none() {
        return Err(conflict(format!("Instance {} is not ready yet", inst.uuid)));
    }
    let host = inst.host.clone().unwrap_or_default();
    // The whole log is fetched and cut here the way Nova's compute manager
    // does (`_tail_log`): the last `length` pieces of `split('\n')`, so a log
    // ending in a newline yields length - 1 lines plus the final newline.
    let msg = rpc::GetConsoleOutput { instance_uuid: inst.uuid.clone(), length: None };
    let rid = stratus_core::http::current_request_id();
    let out: std::result::Result<String, _> = svc
        .deps()?
        .bus
        .call(&format!("{}.console", rpc::compute_topic(&host)), &msg, &rid, std::time::Duration::from_secs(30))
        .await;
    match out {
        Ok(o) => Ok(ok(json!({"output": tail_log(&o, length)}))),
        Err(e) => Err(conflict(format!("Console output of instance {} is not available: {e}", inst.uuid))),
    }
}

/// Nova's `_tail_log`: the last `length` pieces of the log split on newlines.
fn tail_log(log: &str, length: Option<usize>) -> String {
    match length {
        None => log.to_string(),
        Some(0) => String::new(),
        Some(n) => {
            let parts: Vec<&str> = log.split('\n').collect();
            parts[parts.len().saturating_sub(n)..].join("\n")
        }
    }
}

async fn create_image(
    svc: &ComputeService,
    ctx: &AuthContext,
    mv: Microversion,
    inst: &Instance,
    arg: &Value,
) -> Result<Response> {
    authorize(svc, ctx, "os_compute_api:servers:create_image", &project_target(&inst.project_id))?;
    let o = c::object(arg, Some("createImage"))?;
    c::no_extra(o, Some("createImage"), &["name", "metadata"])?;
    let name = c::name("name", c::required(o, Some("createImage"), "name")?)?;
    let mut props = serde_json::Map::new();
    if let Some(m) = o.get("metadata") {
        props = servers::string_map("metadata", m)?;
    }
    let image_id = snapshot_image(svc, ctx, inst, &name, "snapshot", props, task::IMAGE_SNAPSHOT).await?;
    let rid = record(svc, ctx, inst, "createImage").await?;
    cast_host(svc, inst, Action::Snapshot { image_id: image_id.clone() }, &rid).await?;
    Ok(image_accepted(svc, mv, &image_id, true))
}

/// A snapshot image of the server, queued in the image service, with the
/// server moved into `task` (409 when its state forbids it): what
/// createImage and createBackup share. The image's properties are Nova's
/// (`instance_uuid`, `image_type`, `base_image_ref`, ...) with `extra` over them.
async fn snapshot_image(
    svc: &ComputeService,
    ctx: &AuthContext,
    inst: &Instance,
    name: &str,
    image_type: &str,
    extra: serde_json::Map<String, Value>,
    task: &'static str,
) -> Result<String> {
    let action = if image_type == "backup" { "createBackup" } else { "createImage" };
    begin(svc, inst, action, &[vm::ACTIVE, vm::STOPPED, vm::PAUSED, vm::SUSPENDED], task).await?;
    let deps = svc.deps()?;
    let sys: serde_json::Map<String, Value> = serde_json::from_str(&inst.system_metadata).unwrap_or_default();
    let mut body = json!({
        "name": name,
        "disk_format": "raw",
        "container_format": "bare",
        "min_ram": sys.get("image_min_ram").cloned().unwrap_or(json!(0)),
        "min_disk": inst.root_gb,
        "instance_uuid": inst.uuid,
        "image_type": image_type,
        "base_image_ref": inst.image_ref,
    });
    // what the guest boots with comes along, so the snapshot boots the same way
    if let Some(props) = sys.get("image_properties").and_then(Value::as_object) {
        for k in ["kernel_id", "ramdisk_id", "os_command_line"] {
            if let Some(v) = props.get(k) {
                body[k] = v.clone();
            }
        }
    }
    for (k, v) in extra {
        body[k] = v;
    }
    let service = (deps.tokens)().await.ok();
    match deps.images.create(&body, &ctx.token, service.as_deref()).await {
        Ok(img) => Ok(img["id"].as_str().unwrap_or_default().to_string()),
        Err(e) => {
            instances::update(
                &svc.db,
                &inst.uuid,
                &Expect::live(),
                Change { task_state: Some(None), ..Default::default() },
            )
            .await?;
            Err(bad(format!("{e:#}")))
        }
    }
}

/// 202 for a new image: its id in the body from 2.45, before that in a
/// `Location` header (which createBackup leaves out when it keeps no backups).
fn image_accepted(svc: &ComputeService, mv: Microversion, image_id: &str, location: bool) -> Response {
    if mv.at_least(2, 45) {
        return (StatusCode::ACCEPTED, axum::Json(json!({"image_id": image_id}))).into_response();
    }
    let mut resp = StatusCode::ACCEPTED.into_response();
    if location && let Ok(v) = axum::http::HeaderValue::from_str(&format!("{}/images/{image_id}", svc.base_url)) {
        resp.headers_mut().insert(axum::http::header::LOCATION, v);
    }
    resp
}

/// createBackup: a snapshot with `image_type` backup and its `backup_type`;
/// once it is uploaded, the host deletes the oldest backups of that type
/// beyond `rotation`.
async fn create_backup(
    svc: &ComputeService,
    ctx: &AuthContext,
    mv: Microversion,
    inst: &Instance,
    arg: &Value,
) -> Result<Response> {
    authorize(svc, ctx, "os_compute_api:os-create-backup", &project_target(&inst.project_id))?;
    let o = c::object(arg, Some("createBackup"))?;
    c::no_extra(o, Some("createBackup"), &["name", "backup_type", "rotation", "metadata"])?;
    let name = c::name("name", c::required(o, Some("createBackup"), "name")?)?;
    let backup_type = c::string("backup_type", c::required(o, Some("createBackup"), "backup_type")?, 0, usize::MAX)?;
    let rotation = c::integer("rotation", c::required(o, Some("createBackup"), "rotation")?, 0, i64::MAX, false)?;
    let mut props = serde_json::Map::new();
    if let Some(m) = o.get("metadata") {
        let m = c::object(m, Some("metadata"))?;
        super::server_meta::validate_items(m)?;
        // quotas are not checked on backup metadata from 2.39 on
        if !mv.at_least(2, 39) {
            let limits = quotas::limits(&svc.db, &svc.cfg, &inst.project_id, Some(&inst.user_id)).await?;
            let lim = limits.get("metadata_items").copied().unwrap_or(-1);
            if lim >= 0 && m.len() as i64 > lim {
                return Err(ComputeError::OverQuota("Image metadata limit exceeded".into()));
            }
        }
        props.extend(m.clone());
    }
    props.insert("backup_type".into(), json!(backup_type));
    let image_id = snapshot_image(svc, ctx, inst, &name, "backup", props, task::IMAGE_BACKUP).await?;
    let rid = record(svc, ctx, inst, "createBackup").await?;
    let act = Action::Backup { image_id: image_id.clone(), backup_type: backup_type.to_string(), rotation };
    cast_host(svc, inst, act, &rid).await?;
    Ok(image_accepted(svc, mv, &image_id, rotation > 0))
}

async fn rebuild(
    svc: &ComputeService,
    ctx: &AuthContext,
    mv: Microversion,
    inst: &Instance,
    arg: &Value,
) -> Result<Response> {
    authorize(svc, ctx, "os_compute_api:servers:rebuild", &project_target(&inst.project_id))?;
    locked_check(svc, ctx, inst)?;
    let o = c::object(arg, Some("rebuild"))?;
    let mut allowed = vec![
        "imageRef",
        "name",
        "adminPass",
        "metadata",
        "preserve_ephemeral",
        "OS-DCF:diskConfig",
        "accessIPv4",
        "accessIPv6",
        "personality",
    ];
    if mv.at_least(2, 19) {
        allowed.push("description");
    }
    if mv.at_least(2, 54) {
        allowed.push("key_name");
    }
    if mv.at_least(2, 57) {
        allowed.push("user_data");
    }
    if mv.at_least(2, 63) {
        allowed.push("trusted_image_certificates");
    }
    if mv.at_least(2, 90) {
        allowed.push("hostname");
    }
    c::no_extra(o, Some("rebuild"), &allowed)?;
    let image_ref = c::string("imageRef", c::required(o, Some("rebuild"), "imageRef")?, 1, 255)?;
    let image_id = image_ref.trim_end_matches('/').rsplit('/').next().unwrap_or(image_ref).to_string();
    if !c::is_uuid_like(&image_id) {
        return Err(bad("Invalid imageRef provided."));
    }
    let deps = svc.deps()?;
    let service = (deps.tokens)().await.ok();
    let img = match deps.images.get(&image_id, &ctx.token, service.as_deref()).await.map_err(ComputeError::Internal)? {
        stratus_clients::image::ImageLookup::Found(i) if i["status"] == "active" => i,
        stratus_clients::image::ImageLookup::Found(_) => return Err(bad(format!("Image {image_id} is not active."))),
        stratus_clients::image::ImageLookup::NotFound => {
            return Err(bad(format!("Image {image_id} could not be found.")));
        }
    };
    if img["min_ram"].as_i64().unwrap_or(0) > inst.memory_mb {
        return Err(bad("Flavor's memory is too small for requested image."));
    }
    let mut ch = Change { image_ref: Some(image_id.clone()), ..Default::default() };
    if let Some(v) = o.get("name") {
        ch.display_name = Some(c::name("name", v)?);
    }
    if let Some(v) = o.get("description") {
        ch.display_description = Some(c::description("description", v, 255)?);
    }
    if let Some(v) = o.get("metadata") {
        let m = c::object(v, Some("metadata"))?;
        ch.metadata = Some(Value::Object(m.clone()).to_string());
    }
    if let Some(v) = o.get("accessIPv4") {
        ch.access_ip_v4 = Some(Some(servers::ip("accessIPv4", v, false)?));
    }
    if let Some(v) = o.get("accessIPv6") {
        ch.access_ip_v6 = Some(Some(servers::ip("accessIPv6", v, true)?));
    }
    if let Some(v) = o.get("OS-DCF:diskConfig") {
        ch.system_metadata = Some(servers::system_metadata_with_disk_config(inst, servers::parse_disk_config(v)?));
    }
    begin(svc, inst, "rebuild", &[vm::ACTIVE, vm::STOPPED, vm::ERROR], task::REBUILDING).await?;
    instances::update(&svc.db, &inst.uuid, &Expect::live(), ch).await?;
    let rid = record(svc, ctx, inst, "rebuild").await?;
    cast_host(svc, inst, Action::Rebuild { image_id }, &rid).await?;
    let now =
        instances::get_live(&svc.db, &inst.uuid).await?.ok_or_else(|| crate::error::server_not_found(&inst.uuid))?;
    let x = servers::extras(svc, std::slice::from_ref(&now)).await?;
    let mut v = servers::view(svc, ctx, mv, &now, &x, true);
    v["adminPass"] = json!(
        o.get("adminPass").and_then(Value::as_str).map(str::to_string).unwrap_or_else(servers::generate_password)
    );
    servers::trim_before_275(mv, &mut v);
    if let Some(m) = v.as_object_mut() {
        // rebuild shows the user data as `user_data` (2.57), never as the
        // extended attribute
        m.remove("OS-EXT-SRV-ATTR:user_data");
        // and its addresses plain (Nova's `extend_address=False`): no
        // `OS-EXT-IPS:type`, no `OS-EXT-IPS-MAC:mac_addr`
        let vifs = crate::network::vifs_of(&now.system_metadata);
        let mut addresses = crate::network::plain_addresses(&vifs);
        super::floating_ips::with_floating(&mut addresses, &vifs, &x.floating_ips, false);
        m.insert("addresses".into(), addresses);
        if mv.at_least(2, 54) {
            m.insert("key_name".into(), json!(now.key_name));
        }
        if mv.at_least(2, 57) {
            m.insert("user_data".into(), json!(now.user_data));
        }
    }
    Ok((StatusCode::ACCEPTED, axum::Json(json!({"server": v}))).into_response())
}

async fn resize(svc: &ComputeService, ctx: &AuthContext, inst: &Instance, arg: &Value) -> Result<Response> {
    authorize(svc, ctx, "os_compute_api:servers:resize", &project_target(&inst.project_id))?;
    locked_check(svc, ctx, inst)?;
    let o = c::object(arg, Some("resize"))?;
    c::no_extra(o, Some("resize"), &["flavorRef", "OS-DCF:diskConfig"])?;
    let fref = match c::required(o, Some("resize"), "flavorRef")? {
        Value::String(s) if !s.is_empty() => s.clone(),
        Value::Number(n) => n.to_string(),
        other => {
            return Err(invalid("flavorRef", other, &format!("{} is not of type 'string', 'integer'", py_repr(other))));
        }
    };
    let fid = fref.trim_end_matches('/').rsplit('/').next().unwrap_or(&fref).to_string();
    let flavor = flavors::get_by_flavorid(&svc.db, &fid)
        .await?
        .ok_or_else(|| bad(format!("Unable to find flavor with ID {fid}")))?;
    if !flavors::project_can_use(&svc.db, &flavor, &inst.project_id).await? {
        return Err(bad(format!("Unable to find flavor with ID {fid}")));
    }
    if flavor.id == inst.flavor_id {
        return Err(bad("When resizing, instances must change flavor!"));
    }
    if flavor.root_gb < inst.root_gb && flavor.root_gb != 0 {
        return Err(bad("Resizing to a smaller disk flavor is not allowed."));
    }
    // the growth must fit the quota
    let limits = quotas::limits(&svc.db, &svc.cfg, &inst.project_id, Some(&inst.user_id)).await?;
    let (_, cores, ram) = instances::usage(&svc.db.read, &inst.project_id).await?;
    for (res, used, delta) in
        [("cores", cores, flavor.vcpus - inst.vcpus), ("ram", ram, flavor.memory_mb - inst.memory_mb)]
    {
        let lim = limits.get(res).copied().unwrap_or(-1);
        if delta > 0 && lim >= 0 && used + delta > lim {
            return Err(ComputeError::OverQuota(format!(
                "Quota exceeded for {res}: Requested {delta}, but already used {used} of {lim} {res}"
            )));
        }
    }
    let auto_disk = o.get("OS-DCF:diskConfig").map(servers::parse_disk_config).transpose()?;
    begin(svc, inst, "resize", &[vm::ACTIVE, vm::STOPPED], task::RESIZE_PREP).await?;
    instances::update(
        &svc.db,
        &inst.uuid,
        &Expect::live(),
        Change {
            new_flavor: Some(Some(flavor.to_json().to_string())),
            system_metadata: auto_disk.map(|a| servers::system_metadata_with_disk_config(inst, a)),
            ..Default::default()
        },
    )
    .await?;
    let rid = record(svc, ctx, inst, "resize").await?;
    let msg = rpc::ResizeInstance {
        instance_uuid: inst.uuid.clone(),
        flavor: FlavorSpec::from_flavor(&flavor),
        action_request_id: rid.clone(),
    };
    svc.deps()?
        .bus
        .cast(&format!("{}.resize", rpc::CONDUCTOR), &msg, &rid)
        .await
        .map_err(|e| anyhow::anyhow!("bus: {e}"))?;
    Ok(accepted_empty())
}

#[cfg(test)]
mod tests {
    use super::tail_log;

    #[test]
    fn console_tail_is_novas() {
        let log = "a\nb\nc\n";
        assert_eq!(tail_log(log, None), log);
        assert_eq!(tail_log(log, Some(0)), "");
        // the last 3 pieces of split('\n'): "b", "c", ""
        assert_eq!(tail_log(log, Some(3)), "b\nc\n");
        assert_eq!(tail_log(log, Some(3)).split('\n').count(), 3);
        assert_eq!(tail_log(log, Some(10)), log);
    }
}
