//! `POST /v3/volumes/{id}/action`: extend, bootable, readonly, image
//! metadata, upload to image, retype, reset status, force delete, force
//! detach, and the attach actions Nova used before attachments (reserve,
//! initialize_connection, attach, detach, terminate_connection, unreserve,
//! begin/roll detaching).
//!
//! As Cinder: the body is checked first (400), then the volume is looked up
//! (404) and the action's policy applied (403); a volume in the wrong
//! status is a 400 `Invalid volume: ...`. Status changes are compare-and-set
//! (or made under the volume's row lock), so racing actions cannot both win.

use axum::extract::{Path, State as AxState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, TransactionTrait};
use serde_json::{Map, Value, json};
use stratus_core::AuthContext;
use stratus_core::auth::Auth;
use stratus_core::microversion::Microversion;

use crate::api::attachments::{self as att, NOT_MIGRATING, is_migrating, lock_volume, or_list};
use crate::api::volumes::{delete_volume, load};
use crate::api::{
    Body, accepted, accepted_empty, authorize, is_admin, is_uuid_like, json_object, metadata_from, now, ok, project_of,
};
use crate::entity::volume::{self, Model as Volume};
use crate::error::{Result, VolumeError, bad, invalid_volume, missing, not_found};
use crate::model::{VOLUME_STATUSES, attach_status as ats, volume_status as vs};
use crate::store::{self, volumes as store_v};
use crate::{State, VolumeService};

/// One action's request: who asks, at which version, on which volume.
struct Act<'a> {
    svc: &'a VolumeService,
    ctx: &'a AuthContext,
    mv: Microversion,
    id: &'a str,
}

pub async fn action(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    Path(id): Path<String>,
    stratus_core::extract::Json(body): Body,
) -> Result<Response> {
    let Some(obj) = body.as_object() else {
        return Err(bad("Malformed request body: an action is required"));
    };
    let Some((name, args)) = obj.iter().next() else {
        return Err(bad("Malformed request body: an action is required"));
    };
    if obj.len() > 1 {
        return Err(bad("Malformed request body: only one action may be given"));
    }
    let a = Act { svc: &svc, ctx: &ctx, mv, id: &id };
    match name.as_str() {
        "os-extend" => extend(&a, args).await,
        "os-set_bootable" => set_bootable(&a, args).await,
        "os-update_readonly_flag" => update_readonly(&a, args).await,
        "os-reset_status" => reset_status(&a, args).await,
        "os-force_delete" => force_delete(&a).await,
        "os-force_detach" => force_detach(&a, args).await,
        "os-retype" => retype(&a, args).await,
        "os-set_image_metadata" => set_image_metadata(&a, args).await,
        "os-unset_image_metadata" => unset_image_metadata(&a, args).await,
        "os-show_image_metadata" => show_image_metadata(&a).await,
        "os-volume_upload_image" => upload_image(&a, args).await,
        "os-reserve" => reserve(&a).await,
        "os-unreserve" => unreserve(&a).await,
        "os-begin_detaching" => begin_detaching(&a).await,
        "os-roll_detaching" => roll_detaching(&a).await,
        "os-initialize_connection" => initialize_connection(&a, args).await,
        "os-terminate_connection" => terminate_connection(&a, args).await,
        "os-attach" => attach(&a, args).await,
        "os-detach" => detach(&a, args).await,
        other => Err(bad(format!("There is no such action: {other}"))),
    }
}

// --- request checks ----------------------------------------------------------

/// The action's arguments as an object (400 otherwise), with no key but `allowed`.
fn args_object<'v>(action: &str, args: &'v Value, allowed: &[&str]) -> Result<&'v Map<String, Value>> {
    let Some(o) = args.as_object() else {
        return Err(bad(format!(
            "Invalid input for field/attribute {action}. Value: {args}. {args} is not of type 'object'"
        )));
    };
    if let Some(k) = o.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(bad(format!(
            "Invalid input for field/attribute {action}. Additional properties are not allowed ('{k}' was unexpected)"
        )));
    }
    Ok(o)
}

fn required(field: &str) -> VolumeError {
    bad(format!("Invalid input received: '{field}' is a required property"))
}

/// A boolean as Cinder takes it: true/false or one of its strings.
fn parse_bool(field: &str, v: &Value) -> Result<bool> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) => match s.as_str() {
            "True" | "TRUE" | "true" | "1" | "ON" | "On" | "on" | "YES" | "Yes" | "yes" | "y" | "t" => Ok(true),
            "False" | "FALSE" | "false" | "0" | "OFF" | "Off" | "off" | "NO" | "No" | "no" | "n" | "f" => Ok(false),
            _ => Err(bad(format!("Invalid input for field/attribute {field}. Value: {s}. It is not a boolean."))),
        },
        other => Err(bad(format!("Invalid input for field/attribute {field}. Value: {other}. It is not a boolean."))),
    }
}

fn opt_string(o: &Map<String, Value>, field: &str) -> Result<Option<String>> {
    match o.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => {
            Err(bad(format!("Invalid input for field/attribute {field}. Value: {other}. It is not a string.")))
        }
    }
}

/// A new size: a positive integer, or a string of digits.
fn parse_new_size(v: Option<&Value>) -> Result<i64> {
    let n = match v {
        None => return Err(required("new_size")),
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => s.parse::<i64>().ok(),
        Some(_) => None,
    };
    match n {
        Some(n) if n >= 1 && n <= i32::MAX as i64 => Ok(n),
        _ => Err(bad(format!(
            "Invalid input for field/attribute new_size. Value: {}. It must be an integer of at least 1.",
            v.map(Value::to_string).unwrap_or_default()
        ))),
    }
}

fn ok_empty() -> Response {
    StatusCode::OK.into_response()
}

/// The volume as the action sees it: visible to the caller (404), allowed
/// by `rule` (403).
async fn volume_for(a: &Act<'_>, rule: &str) -> Result<Volume> {
    load(a.svc, a.ctx, a.id, rule).await
}

fn not_in_maintenance(v: &Volume, what: &str) -> Result<()> {
    if v.status == vs::MAINTENANCE {
        return Err(invalid_volume(format!("The volume {what} in maintenance mode.")));
    }
    Ok(())
}

/// The backend of `host@backend#pool`.
fn backend_of(host: &str) -> Option<&str> {
    host.split('#').next().and_then(|h| h.split_once('@')).map(|(_, b)| b)
}

// --- size, flags, status -----------------------------------------------------

/// `os-extend`: grow an available volume (an in-use one from 3.42).
async fn extend(a: &Act<'_>, args: &Value) -> Result<Response> {
    let o = args_object("os-extend", args, &["new_size"])?;
    let new_size = parse_new_size(o.get("new_size"))?;
    let v = volume_for(a, "volume:get").await?;
    let attached = a.mv.at_least(3, 42) && v.status == vs::IN_USE;
    authorize(a.svc, a.ctx, if attached { "volume:extend_attached_volume" } else { "volume:extend" }, &v.project_id)?;
    if new_size <= v.size {
        return Err(bad(format!(
            "Invalid input received: New size for extend must be greater than current size. (current: {}, extended: {new_size}).",
            v.size
        )));
    }
    let expected = if attached { vs::IN_USE } else { vs::AVAILABLE };
    let refused = |status: &str| {
        invalid_volume(format!("Volume {} status must be '{expected}' to extend, currently {status}.", v.id))
    };
    if v.status != expected {
        return Err(refused(&v.status));
    }
    let Some(host) = v.host.clone() else {
        return Err(invalid_volume(format!("Volume {} has not been placed on a host.", v.id)));
    };
    let increase = new_size - v.size;
    let per_type = match &v.volume_type_id {
        Some(t) => store::types::get_by_id(&a.svc.db.read, t).await?.map(|t| format!("gigabytes_{}", t.name)),
        None => None,
    };
    let mut deltas = vec![("per_volume_gigabytes", new_size), ("gigabytes", increase)];
    if let Some(p) = &per_type {
        deltas.push((p.as_str(), increase));
    }
    let txn = a.svc.db.write.begin().await?;
    store::quotas::check(&txn, &a.svc.cfg.volume, &v.project_id, &deltas).await?;
    if !store_v::transition(&txn, &v.id, &[expected], vs::EXTENDING).await? {
        let now_status = store_v::get(&txn, &v.id).await?.map(|v| v.status).unwrap_or_default();
        return Err(refused(&now_status));
    }
    set_previous_status(&txn, &v.id, expected).await?;
    txn.commit().await?;

    let msg = crate::rpc::ExtendVolume { volume_id: v.id.clone(), new_size };
    let sent = match a.svc.deps() {
        Ok(deps) => deps
            .bus
            .cast(&crate::rpc::host_topic(&host, "extend"), &msg, &format!("req-{}", uuid::Uuid::new_v4()))
            .await
            .map_err(|e| VolumeError::Internal(e.into())),
        Err(e) => Err(e),
    };
    if let Err(e) = sent {
        tracing::warn!(volume = %v.id, error = %e, "could not reach the volume host to extend");
        store_v::transition(&a.svc.db.write, &v.id, &[vs::EXTENDING], expected).await?;
        return Err(e);
    }
    Ok(accepted_empty())
}

async fn set_previous_status<C: sea_orm::ConnectionTrait>(conn: &C, id: &str, previous: &str) -> Result<()> {
    volume::Entity::update_many()
        .col_expr(volume::Column::PreviousStatus, Expr::value(previous))
        .filter(volume::Column::Id.eq(id))
        .exec(conn)
        .await?;
    Ok(())
}

/// `os-set_bootable` (200, no body).
async fn set_bootable(a: &Act<'_>, args: &Value) -> Result<Response> {
    let o = args_object("os-set_bootable", args, &["bootable"])?;
    let bootable = parse_bool("bootable", o.get("bootable").ok_or_else(|| required("bootable"))?)?;
    let v = volume_for(a, "volume:update").await?;
    let txn = a.svc.db.write.begin().await?;
    let v = lock_volume(&txn, &v.id).await?;
    not_in_maintenance(&v, "cannot be updated")?;
    volume::Entity::update_many()
        .col_expr(volume::Column::Bootable, Expr::value(bootable))
        .col_expr(volume::Column::UpdatedAt, Expr::value(now()))
        .filter(volume::Column::Id.eq(v.id.as_str()))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    Ok(ok_empty())
}

/// `os-update_readonly_flag`: admin metadata `readonly` ("True"/"False") of an available volume.
async fn update_readonly(a: &Act<'_>, args: &Value) -> Result<Response> {
    let o = args_object("os-update_readonly_flag", args, &["readonly"])?;
    let readonly = parse_bool("readonly", o.get("readonly").ok_or_else(|| required("readonly"))?)?;
    let v = volume_for(a, "volume:update_readonly_flag").await?;
    let txn = a.svc.db.write.begin().await?;
    let v = lock_volume(&txn, &v.id).await?;
    if v.status != vs::AVAILABLE {
        return Err(invalid_volume(format!(
            "Volume {} status must be available to update readonly flag, but current status is: {}.",
            v.id, v.status
        )));
    }
    let mut meta = json_object(&v.admin_metadata);
    meta.insert("readonly".into(), json!(if readonly { "True" } else { "False" }));
    att::set_admin_metadata(&txn, &v.id, &meta).await?;
    txn.commit().await?;
    Ok(accepted_empty())
}

const ATTACH_STATUSES: &[&str] = &[ats::ATTACHED, ats::DETACHED];
const MIGRATION_STATUSES: &[&str] = &["migrating", "error", "success", "completing", "none", "starting"];

/// `os-reset_status` (admin): status, attach_status and/or migration_status, as given.
async fn reset_status(a: &Act<'_>, args: &Value) -> Result<Response> {
    let o = args_object("os-reset_status", args, &["status", "attach_status", "migration_status"])?;
    let pick = |field: &str, valid: &[&str], what: &str| -> Result<Option<String>> {
        let Some(s) = opt_string(o, field)?.filter(|s| !s.is_empty()) else { return Ok(None) };
        let s = s.to_lowercase();
        if !valid.contains(&s.as_str()) {
            return Err(bad(format!(
                "Invalid input received: {what}: {s} is invalid, valid statuses are: {}.",
                valid.join(", ")
            )));
        }
        Ok(Some(s))
    };
    let status = pick("status", VOLUME_STATUSES, "Volume status")?;
    let attach_status = pick("attach_status", ATTACH_STATUSES, "Volume attach status")?;
    let migration_status = pick("migration_status", MIGRATION_STATUSES, "Volume migration status")?;
    if status.is_none() && attach_status.is_none() && migration_status.is_none() {
        return Err(bad(
            "Invalid input received: Must specify 'status', 'attach_status' or 'migration_status' for update.",
        ));
    }
    let v = volume_for(a, "volume_extension:volume_admin_actions:reset_status").await?;
    if status.as_deref() == Some(vs::DELETING) {
        return Err(bad("Cannot reset-state to deleting"));
    }
    let txn = a.svc.db.write.begin().await?;
    let v = lock_volume(&txn, &v.id).await?;
    let atts = att::of_volume(&txn, &v.id).await?;
    if status.as_deref() == Some(vs::IN_USE) && atts.is_empty() {
        return Err(bad("Cannot reset-state to in-use because volume does not have any attachments."));
    }
    let mut upd = volume::Entity::update_many()
        .col_expr(volume::Column::UpdatedAt, Expr::value(now()))
        .filter(volume::Column::Id.eq(v.id.as_str()));
    if let Some(s) = &status {
        upd = upd.col_expr(volume::Column::Status, Expr::value(s.as_str()));
    }
    if let Some(s) = &attach_status {
        upd = upd.col_expr(volume::Column::AttachStatus, Expr::value(s.as_str()));
    }
    if let Some(s) = &migration_status {
        let m: Option<String> = if s == "none" { None } else { Some(s.clone()) };
        upd = upd.col_expr(volume::Column::MigrationStatus, Expr::value(m));
    }
    upd.exec(&txn).await?;
    if attach_status.as_deref() == Some(ats::DETACHED) {
        // every attachment goes; each one gone settles the volume as a detach does
        for at in &atts {
            att::remove(&txn, &at.id).await?;
            let now_v = store_v::get(&txn, &v.id).await?.ok_or_else(|| missing("Volume", &v.id))?;
            att::settle(&txn, &now_v).await?;
        }
        let now_v = store_v::get(&txn, &v.id).await?.ok_or_else(|| missing("Volume", &v.id))?;
        let mut meta = json_object(&now_v.admin_metadata);
        if meta.remove("attached_mode").is_some() {
            att::set_admin_metadata(&txn, &v.id, &meta).await?;
        }
    }
    txn.commit().await?;
    Ok(accepted_empty())
}

/// `os-force_delete` (admin): delete whatever the status (not while attached).
async fn force_delete(a: &Act<'_>) -> Result<Response> {
    let v = volume_for(a, "volume:force_delete").await?;
    delete_volume(a.svc, &v, false, true).await?;
    Ok(accepted_empty())
}

// --- retype ------------------------------------------------------------------

/// `os-retype`: to another type of the same backend (no migration here).
async fn retype(a: &Act<'_>, args: &Value) -> Result<Response> {
    let o = args_object("os-retype", args, &["new_type", "migration_policy"])?;
    let new_type = opt_string(o, "new_type")?.ok_or_else(|| required("new_type"))?;
    let policy = opt_string(o, "migration_policy")?;
    if let Some(p) = &policy
        && p != "on-demand"
        && p != "never"
    {
        return Err(bad(format!(
            "Invalid input for field/attribute migration_policy. Value: {p}. It is not one of ['on-demand', 'never']"
        )));
    }
    let v = volume_for(a, "volume:retype").await?;
    let db = &a.svc.db;
    let admin = is_admin(a.svc, a.ctx);
    let type_missing = || {
        if is_uuid_like(&new_type) {
            missing("Volume type", &new_type)
        } else {
            not_found(format!("Volume type with name {new_type} could not be found."))
        }
    };
    let t = store::types::get(&db.read, &new_type).await?.ok_or_else(type_missing)?;
    if !store::types::visible_to(&db.read, &t, &project_of(a.ctx), admin).await? {
        return Err(type_missing());
    }
    let specs = store::types::extra_specs(&t);
    let to_multiattach = specs.get("multiattach").and_then(Value::as_str) == Some("<is> True");
    if v.multiattach != to_multiattach {
        if v.status != vs::AVAILABLE {
            return Err(bad(format!(
                "Invalid input received: Invalid volume_type passed, retypes affecting multiattach are only allowed on available volumes, the specified volume however currently has a status of: {}.",
                v.status
            )));
        }
        if to_multiattach {
            authorize(a.svc, a.ctx, "volume:multiattach", &v.project_id)?;
        }
    }
    let to_encrypted = store::types::encryption_of(&db.read, &t.id).await?.is_some();
    if to_multiattach && to_encrypted {
        return Err(bad(
            "Invalid input received: Retype requested both encryption and multi-attach, which is not supported.",
        ));
    }
    let refused = || {
        invalid_volume(
            "Retype needs volume to be in available or in-use state, not be part of an active migration or a consistency group, requested type has to be different that the one from the volume, and for in-use volumes front-end qos specs cannot change.",
        )
    };
    if v.volume_type_id.as_deref() == Some(t.id.as_str()) {
        return Err(refused());
    }
    // one backend holds the volume: the new type must fit it as it is
    let wanted = specs.get("volume_backend_name").and_then(Value::as_str);
    let here = v.host.as_deref().and_then(backend_of);
    let same_backend = wanted.is_none() || wanted == here;
    if !same_backend || to_encrypted != v.encrypted {
        return Err(if policy.as_deref() == Some("on-demand") {
            bad(format!(
                "Invalid input received: retyping volume {} to type {} needs a migration to another backend, which this cloud does not do.",
                v.id, t.name
            ))
        } else {
            invalid_volume(format!(
                "Volume {} cannot be retyped to type {} without a migration, and the migration policy is 'never'.",
                v.id, t.name
            ))
        });
    }
    if v.status == vs::IN_USE {
        let old_qos = match &v.volume_type_id {
            Some(id) => store::types::get_by_id(&db.read, id).await?.and_then(|t| t.qos_specs_id),
            None => None,
        };
        if old_qos != t.qos_specs_id
            && (front_end_qos(a.svc, &old_qos).await? || front_end_qos(a.svc, &t.qos_specs_id).await?)
        {
            return Err(refused());
        }
    }

    let per_type_volumes = format!("volumes_{}", t.name);
    let per_type_gb = format!("gigabytes_{}", t.name);
    let txn = db.write.begin().await?;
    store::quotas::check(
        &txn,
        &a.svc.cfg.volume,
        &v.project_id,
        &[(per_type_volumes.as_str(), 1), (per_type_gb.as_str(), v.size)],
    )
    .await?;
    let not_migrating = Condition::any()
        .add(volume::Column::MigrationStatus.is_null())
        .add(volume::Column::MigrationStatus.is_in(NOT_MIGRATING.iter().copied()));
    let other_type = Condition::any()
        .add(volume::Column::VolumeTypeId.is_null())
        .add(volume::Column::VolumeTypeId.ne(t.id.as_str()));
    let r = volume::Entity::update_many()
        .col_expr(volume::Column::VolumeTypeId, Expr::value(t.id.as_str()))
        .col_expr(volume::Column::Multiattach, Expr::value(to_multiattach))
        .col_expr(volume::Column::UpdatedAt, Expr::value(now()))
        .filter(volume::Column::Id.eq(v.id.as_str()))
        .filter(volume::Column::Status.is_in([vs::AVAILABLE, vs::IN_USE]))
        .filter(volume::Column::GroupId.is_null())
        .filter(not_migrating)
        .filter(other_type)
        .exec(&txn)
        .await?;
    if r.rows_affected != 1 {
        return Err(refused());
    }
    txn.commit().await?;
    Ok(accepted_empty())
}

/// Is the QoS spec `id` one the front end (the hypervisor) applies?
async fn front_end_qos(svc: &VolumeService, id: &Option<String>) -> Result<bool> {
    let Some(id) = id else { return Ok(false) };
    let q = crate::entity::qos_spec::Entity::find_by_id(id.clone()).one(&svc.db.read).await?;
    Ok(q.is_some_and(|q| q.consumer == "front-end" || q.consumer == "both"))
}

// --- image metadata and upload -----------------------------------------------

/// `os-set_image_metadata`: merge into the volume's image metadata; all of it back.
async fn set_image_metadata(a: &Act<'_>, args: &Value) -> Result<Response> {
    let o = args_object("os-set_image_metadata", args, &["metadata"])?;
    let add = metadata_from(o.get("metadata").ok_or_else(|| required("metadata"))?)?;
    let v = volume_for(a, "volume:get").await?;
    authorize(a.svc, a.ctx, "volume_extension:volume_image_metadata:set", &v.project_id)?;
    let txn = a.svc.db.write.begin().await?;
    let v = lock_volume(&txn, &v.id).await?;
    not_in_maintenance(&v, "metadata cannot be updated")?;
    let mut m = store_v::json_map(&v.image_metadata);
    m.extend(add);
    write_image_metadata(&txn, &v.id, &m).await?;
    txn.commit().await?;
    Ok(ok(json!({"metadata": Value::Object(m)})))
}

async fn write_image_metadata<C: sea_orm::ConnectionTrait>(conn: &C, id: &str, m: &Map<String, Value>) -> Result<()> {
    volume::Entity::update_many()
        .col_expr(volume::Column::ImageMetadata, Expr::value(store_v::to_text(m)))
        .col_expr(volume::Column::UpdatedAt, Expr::value(now()))
        .filter(volume::Column::Id.eq(id))
        .exec(conn)
        .await?;
    Ok(())
}

/// `os-unset_image_metadata`: remove one key (404 when absent); 200, no body.
async fn unset_image_metadata(a: &Act<'_>, args: &Value) -> Result<Response> {
    let o = args_object("os-unset_image_metadata", args, &["key"])?;
    let key = opt_string(o, "key")?.ok_or_else(|| required("key"))?;
    if key.is_empty() || key.chars().count() > 255 {
        return Err(bad("Invalid input for field/attribute key: it must be 1 to 255 characters."));
    }
    let v = volume_for(a, "volume:get").await?;
    authorize(a.svc, a.ctx, "volume_extension:volume_image_metadata:remove", &v.project_id)?;
    let txn = a.svc.db.write.begin().await?;
    let v = lock_volume(&txn, &v.id).await?;
    not_in_maintenance(&v, "metadata cannot be updated")?;
    let mut m = store_v::json_map(&v.image_metadata);
    if m.remove(&key).is_none() {
        return Err(not_found(format!("Glance metadata for volume/snapshot {} cannot be found.", v.id)));
    }
    write_image_metadata(&txn, &v.id, &m).await?;
    txn.commit().await?;
    Ok(ok_empty())
}

/// `os-show_image_metadata`.
async fn show_image_metadata(a: &Act<'_>) -> Result<Response> {
    let v = volume_for(a, "volume:get").await?;
    authorize(a.svc, a.ctx, "volume_extension:volume_image_metadata:show", &v.project_id)?;
    Ok(ok(json!({"metadata": Value::Object(store_v::json_map(&v.image_metadata))})))
}

const DISK_FORMATS: &[&str] = &["raw", "vmdk", "vdi", "qcow2", "vhd", "vhdx", "ploop"];
const VISIBILITIES: &[&str] = &["community", "public", "private", "shared"];
/// Image metadata the image service sets itself (Cinder's `glance_core_properties`).
const CORE_PROPERTIES: &[&str] =
    &["checksum", "container_format", "disk_format", "image_name", "image_id", "min_disk", "min_ram", "name", "size"];

/// `os-volume_upload_image`: a queued image, the volume `uploading`, the host copies.
async fn upload_image(a: &Act<'_>, args: &Value) -> Result<Response> {
    let mut allowed = vec!["image_name", "force", "disk_format", "container_format"];
    if a.mv.at_least(3, 1) {
        allowed.extend(["visibility", "protected"]);
    }
    let o = args_object("os-volume_upload_image", args, &allowed)?;
    let image_name = opt_string(o, "image_name")?.ok_or_else(|| required("image_name"))?;
    if image_name.is_empty() || image_name.chars().count() > 255 {
        return Err(bad("Invalid input for field/attribute image_name: it must be 1 to 255 characters."));
    }
    if let Some(f) = o.get("force") {
        // accepted and checked, then ignored as Cinder does by default (enable_force_upload = false)
        parse_bool("force", f)?;
    }
    let disk_format = opt_string(o, "disk_format")?.unwrap_or_else(|| "raw".into());
    if !DISK_FORMATS.contains(&disk_format.as_str()) {
        return Err(bad(format!(
            "Invalid input for field/attribute disk_format. Value: {disk_format}. It is not one of {DISK_FORMATS:?}"
        )));
    }
    let container_format = opt_string(o, "container_format")?.unwrap_or_else(|| "bare".into());
    if container_format.chars().count() > 255 {
        return Err(bad("Invalid input for field/attribute container_format: over 255 characters."));
    }
    let mut visibility = None;
    let mut protected = None;
    if a.mv.at_least(3, 1) {
        let vis = opt_string(o, "visibility")?.unwrap_or_else(|| "private".into());
        if !VISIBILITIES.contains(&vis.as_str()) {
            return Err(bad(format!(
                "Invalid input for field/attribute visibility. Value: {vis}. It is not one of {VISIBILITIES:?}"
            )));
        }
        visibility = Some(vis);
        protected = Some(match o.get("protected") {
            None => false,
            Some(p) => parse_bool("protected", p)?,
        });
    }
    let v = volume_for(a, "volume:get").await?;
    authorize(a.svc, a.ctx, "volume:copy_volume_to_image", &v.project_id)?;
    if visibility.as_deref() == Some("public") {
        authorize(a.svc, a.ctx, "volume_extension:volume_actions:upload_public", &v.project_id)?;
    }
    if v.encrypted && (disk_format != "raw" || container_format != "bare") {
        return Err(bad(
            "An encrypted volume uploaded as an image must use 'raw' disk_format and 'bare' container_format, which are the defaults for these options.",
        ));
    }
    let Some(host) = v.host.clone() else {
        return Err(invalid_volume(format!("Volume {} has not been placed on a host.", v.id)));
    };
    let db = &a.svc.db;
    let txn = db.write.begin().await?;
    if !store_v::transition(&txn, &v.id, &[vs::AVAILABLE], vs::UPLOADING).await? {
        return Err(invalid_volume(format!("Volume {} status must be available", v.id)));
    }
    set_previous_status(&txn, &v.id, vs::AVAILABLE).await?;
    txn.commit().await?;

    let mut image = json!({"name": image_name, "container_format": container_format, "disk_format": disk_format});
    if let Some(vis) = &visibility {
        image["visibility"] = json!(vis);
    }
    if let Some(p) = protected {
        image["protected"] = json!(p);
    }
    // the volume's own image properties travel with it
    for (k, val) in store_v::json_map(&v.image_metadata) {
        if !CORE_PROPERTIES.contains(&k.as_str()) && !k.starts_with("os_glance") && image.get(&k).is_none() {
            image[k] = val;
        }
    }
    let created = async {
        let deps = a.svc.deps()?;
        let made = deps.images.create(&image, &a.ctx.token, None).await.map_err(|e| bad(format!("{e:#}")))?;
        let image_id = made
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| bad("The image service answered without an image id."))?;
        let msg = crate::rpc::UploadImage {
            volume_id: v.id.clone(),
            image_id: image_id.clone(),
            disk_format: disk_format.clone(),
            token: a.ctx.token.clone(),
        };
        let rid = format!("req-{}", uuid::Uuid::new_v4());
        if let Err(e) = deps.bus.cast(&crate::rpc::host_topic(&host, "upload_image"), &msg, &rid).await {
            let _ = deps.images.delete(&image_id, &a.ctx.token).await;
            return Err(bad(format!("The volume host could not be reached: {e}")));
        }
        Ok::<_, VolumeError>((made, image_id))
    }
    .await;
    let (made, image_id) = match created {
        Ok(x) => x,
        Err(e) => {
            store_v::transition(&db.write, &v.id, &[vs::UPLOADING], vs::AVAILABLE).await?;
            return Err(e);
        }
    };
    let now_v = store_v::get(&db.read, &v.id).await?.unwrap_or(v);
    let vtype = match &now_v.volume_type_id {
        Some(t) => store::types::get_by_id(&db.read, t).await?,
        None => None,
    };
    let vtype = vtype.map(|t| {
        json!({
            "created_at": t.created_at,
            "deleted": false,
            "deleted_at": null,
            "description": t.description,
            "extra_specs": Value::Object(store::types::extra_specs(&t)),
            "id": t.id,
            "is_public": t.is_public,
            "name": t.name,
            "qos_specs_id": t.qos_specs_id,
            "updated_at": t.updated_at,
        })
    });
    let mut out = json!({
        "id": now_v.id,
        "updated_at": now_v.updated_at,
        "status": vs::UPLOADING,
        "display_description": now_v.description,
        "size": now_v.size,
        "volume_type": vtype,
        "image_id": image_id,
        "container_format": made.get("container_format").cloned().unwrap_or(json!(container_format)),
        "disk_format": made.get("disk_format").cloned().unwrap_or(json!(disk_format)),
        "image_name": made.get("name").cloned().unwrap_or(Value::Null),
    });
    if let Some(p) = made.get("protected") {
        out["protected"] = p.clone();
    }
    if let Some(p) = made.get("is_public") {
        out["is_public"] = p.clone();
    } else if let Some(p) = made.get("visibility") {
        out["visibility"] = p.clone();
    }
    Ok(accepted(json!({"os-volume_upload_image": out})))
}

// --- the legacy attach actions -----------------------------------------------

/// `os-reserve`: available (or, multiattach, in-use) -> attaching.
async fn reserve(a: &Act<'_>) -> Result<Response> {
    let v = volume_for(a, "volume:reserve_volume").await?;
    let expected: &[&str] = if v.multiattach { &[vs::AVAILABLE, vs::IN_USE] } else { &[vs::AVAILABLE] };
    if !store_v::transition(&a.svc.db.write, &v.id, expected, vs::ATTACHING).await? {
        let now_status = store_v::get(&a.svc.db.read, &v.id).await?.map(|v| v.status).unwrap_or_default();
        return Err(invalid_volume(format!(
            "Volume status must be {} to reserve, but the status is {now_status}.",
            or_list(expected)
        )));
    }
    Ok(accepted_empty())
}

/// attaching -> in-use (attachments left) or available; anything else stays.
async fn unreserve_in<C: sea_orm::ConnectionTrait>(conn: &C, v: &Volume) -> Result<()> {
    if v.status != vs::ATTACHING {
        return Ok(());
    }
    let to = if att::has_attachments(conn, &v.id).await? { vs::IN_USE } else { vs::AVAILABLE };
    store_v::transition(conn, &v.id, &[vs::ATTACHING], to).await?;
    Ok(())
}

/// `os-unreserve` (nothing to do when not reserved).
async fn unreserve(a: &Act<'_>) -> Result<Response> {
    let v = volume_for(a, "volume:unreserve_volume").await?;
    let txn = a.svc.db.write.begin().await?;
    let v = lock_volume(&txn, &v.id).await?;
    unreserve_in(&txn, &v).await?;
    txn.commit().await?;
    Ok(accepted_empty())
}

/// `os-begin_detaching`: in-use and attached -> detaching.
async fn begin_detaching(a: &Act<'_>) -> Result<Response> {
    let v = volume_for(a, "volume:begin_detaching").await?;
    let txn = a.svc.db.write.begin().await?;
    let v = lock_volume(&txn, &v.id).await?;
    if v.status == vs::IN_USE && v.attach_status == ats::ATTACHED && !is_migrating(&v) {
        store_v::transition(&txn, &v.id, &[vs::IN_USE], vs::DETACHING).await?;
    } else if !is_migrating(&v) {
        return Err(invalid_volume(
            "Unable to detach volume. Volume status must be 'in-use' and attach_status must be 'attached' to detach.",
        ));
    }
    txn.commit().await?;
    Ok(accepted_empty())
}

/// `os-roll_detaching`: detaching -> in-use (nothing otherwise).
async fn roll_detaching(a: &Act<'_>) -> Result<Response> {
    let v = volume_for(a, "volume:roll_detaching").await?;
    store_v::transition(&a.svc.db.write, &v.id, &[vs::DETACHING], vs::IN_USE).await?;
    Ok(accepted_empty())
}

/// `os-initialize_connection`: how a host reaches the volume (200).
async fn initialize_connection(a: &Act<'_>, args: &Value) -> Result<Response> {
    let o = args_object("os-initialize_connection", args, &["connector"])?;
    let connector = match o.get("connector") {
        Some(c @ (Value::Object(_) | Value::String(_))) => c.clone(),
        Some(other) => {
            return Err(bad(format!(
                "Invalid input for field/attribute connector. Value: {other}. It is not an object."
            )));
        }
        None => return Err(required("connector")),
    };
    let v = volume_for(a, "volume:initialize_connection").await?;
    not_in_maintenance(&v, "connection cannot be initialized")?;
    let mut info = att::connection(a.svc, &v, &connector).await?;
    if let Some(d) = info.get_mut("data").and_then(Value::as_object_mut) {
        d.insert("access_mode".into(), json!(att::access_mode(&v, None)));
    }
    info["enforce_multipath"] = connector.get("enforce_multipath").cloned().unwrap_or(json!(false));
    Ok(ok(json!({"connection_info": info})))
}

/// `os-terminate_connection`: the host let go; a reservation ends.
async fn terminate_connection(a: &Act<'_>, args: &Value) -> Result<Response> {
    let o = args_object("os-terminate_connection", args, &["connector"])?;
    match o.get("connector") {
        Some(Value::Object(_) | Value::String(_) | Value::Null) => {}
        Some(other) => {
            return Err(bad(format!(
                "Invalid input for field/attribute connector. Value: {other}. It is not an object."
            )));
        }
        None => return Err(required("connector")),
    }
    let v = volume_for(a, "volume:terminate_connection").await?;
    let txn = a.svc.db.write.begin().await?;
    let v = lock_volume(&txn, &v.id).await?;
    unreserve_in(&txn, &v).await?;
    txn.commit().await?;
    Ok(accepted_empty())
}

/// Statuses a volume may be attached from with `os-attach`.
const ATTACHABLE: &[&str] = &[vs::AVAILABLE, vs::ATTACHING, vs::RESERVED, vs::IN_USE];

/// `os-attach`: record the attachment (`attached`), the volume `in-use`.
async fn attach(a: &Act<'_>, args: &Value) -> Result<Response> {
    let o = args_object("os-attach", args, &["instance_uuid", "mountpoint", "host_name", "mode"])?;
    let instance_uuid = opt_string(o, "instance_uuid")?;
    if let Some(i) = &instance_uuid
        && !is_uuid_like(i)
    {
        return Err(bad(format!(
            "Invalid input for field/attribute instance_uuid. Value: {i}. It is not a valid UUID."
        )));
    }
    let host_name = opt_string(o, "host_name")?;
    if instance_uuid.is_none() && host_name.is_none() {
        return Err(bad("Invalid input received: one of 'instance_uuid' or 'host_name' is required."));
    }
    if host_name.as_ref().is_some_and(|h| h.chars().count() > 255) {
        return Err(bad("Invalid input for field/attribute host_name: over 255 characters."));
    }
    let mountpoint = opt_string(o, "mountpoint")?.ok_or_else(|| required("mountpoint"))?;
    if mountpoint.is_empty() || mountpoint.chars().count() > 255 {
        return Err(bad("Invalid input for field/attribute mountpoint: it must be 1 to 255 characters."));
    }
    let mode = opt_string(o, "mode")?.unwrap_or_else(|| "rw".into());
    if mode != "rw" && mode != "ro" {
        return Err(bad(format!(
            "Invalid input for field/attribute mode. Value: {mode}. It is not one of ['rw', 'ro']"
        )));
    }
    let v = volume_for(a, "volume:attach").await?;
    let txn = a.svc.db.write.begin().await?;
    let v = lock_volume(&txn, &v.id).await?;
    not_in_maintenance(&v, "cannot be attached")?;
    let mut meta = json_object(&v.admin_metadata);
    if !meta.contains_key("readonly") {
        meta.insert("readonly".into(), json!("False"));
    }
    if meta.get("readonly").and_then(Value::as_str) == Some("True") && mode != "ro" {
        return Err(bad(format!("Invalid attaching mode '{mode}' for volume {}.", v.id)));
    }
    if v.status == vs::ATTACHING
        && let Some(m) = meta.get("attached_mode").and_then(Value::as_str)
        && m != mode
    {
        return Err(invalid_volume("being attached by different mode"));
    }
    let host_name = host_name.map(|h| sanitize_hostname(&h));
    let atts = att::of_volume(&txn, &v.id).await?;
    let known = atts.iter().find(|x| match &instance_uuid {
        Some(i) => x.instance_uuid.as_deref() == Some(i.as_str()),
        None => x.instance_uuid.is_none() && x.attached_host == host_name,
    });
    if known.is_some() {
        // this server (or host) already has the volume
        store_v::set_status(&txn, &v.id, vs::IN_USE).await?;
        txn.commit().await?;
        return Ok(accepted_empty());
    }
    if v.status == vs::IN_USE && !v.multiattach && v.migration_status.is_none() {
        return Err(invalid_volume("volume is already attached and multiple attachments are not enabled"));
    }
    if !ATTACHABLE.contains(&v.status.as_str()) {
        return Err(invalid_volume(format!(
            "Volume {} status must be {} to attach, but the status is {}.",
            v.id,
            or_list(ATTACHABLE),
            v.status
        )));
    }
    let mut row = att::new_row(&v.id, instance_uuid, ats::ATTACHED, &mode);
    row.attached_host = host_name;
    row.mountpoint = Some(mountpoint);
    row.attach_time = Some(now());
    att::insert(&txn, row).await?;
    meta.insert("attached_mode".into(), json!(mode));
    att::set_admin_metadata(&txn, &v.id, &meta).await?;
    att::set_volume_state(&txn, &v.id, vs::IN_USE, ats::ATTACHED).await?;
    txn.commit().await?;
    Ok(accepted_empty())
}

/// A host name as Cinder keeps it: letters, digits, `-` and `.`, lower case.
fn sanitize_hostname(h: &str) -> String {
    let s: String = h
        .chars()
        .map(|c| if c == ' ' || c == '_' { '-' } else { c })
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '.')
        .collect();
    s.trim_matches(|c| c == '.' || c == '-').to_lowercase().chars().take(63).collect()
}

/// Detach one attachment of `v` (the only one when `attachment_id` is not
/// given) and settle the volume's status, inside the caller's lock.
async fn detach_in<C: sea_orm::ConnectionTrait>(conn: &C, v: &Volume, attachment_id: Option<&str>) -> Result<()> {
    not_in_maintenance(v, "cannot be detached")?;
    let target = match attachment_id {
        Some(aid) => match att::get_row(conn, aid).await? {
            Some(x) if x.volume_id != v.id => {
                return Err(bad("Invalid input received: Mismatched volume and attachment"));
            }
            Some(x) => x,
            None => {
                // nothing to detach: the volume's status still follows its attachments
                return att::settle(conn, v).await;
            }
        },
        None => {
            let atts = att::of_volume(conn, &v.id).await?;
            match atts.len() {
                0 => {
                    return att::set_volume_state(conn, &v.id, vs::AVAILABLE, ats::DETACHED).await;
                }
                1 => atts.into_iter().next().ok_or_else(|| missing("Volume attachment", &v.id))?,
                _ => {
                    return Err(invalid_volume(
                        "Detach volume failed: More than one attachment, but no attachment_id provided.",
                    ));
                }
            }
        }
    };
    att::remove(conn, &target.id).await?;
    att::settle(conn, v).await
}

fn attachment_id_of(o: &Map<String, Value>) -> Result<Option<String>> {
    opt_string(o, "attachment_id")
}

/// `os-detach`.
async fn detach(a: &Act<'_>, args: &Value) -> Result<Response> {
    let empty = Map::new();
    let o = if args.is_null() { &empty } else { args_object("os-detach", args, &["attachment_id"])? };
    let attachment_id = attachment_id_of(o)?;
    if let Some(aid) = &attachment_id
        && !is_uuid_like(aid)
    {
        return Err(bad(format!(
            "Invalid input for field/attribute attachment_id. Value: {aid}. It is not a valid UUID."
        )));
    }
    let v = volume_for(a, "volume:detach").await?;
    let txn = a.svc.db.write.begin().await?;
    let v = lock_volume(&txn, &v.id).await?;
    detach_in(&txn, &v, attachment_id.as_deref()).await?;
    txn.commit().await?;
    Ok(accepted_empty())
}

/// `os-force_detach` (admin): terminate the connection and detach, whatever the status.
async fn force_detach(a: &Act<'_>, args: &Value) -> Result<Response> {
    let o = args_object("os-force_detach", args, &["connector", "attachment_id"])?;
    if let Some(c) = o.get("connector")
        && !matches!(c, Value::Object(_) | Value::String(_) | Value::Null)
    {
        return Err(bad(format!("Invalid input for field/attribute connector. Value: {c}. It is not an object.")));
    }
    let attachment_id = attachment_id_of(o)?;
    let v = volume_for(a, "volume_extension:volume_admin_actions:force_detach").await?;
    let txn = a.svc.db.write.begin().await?;
    let v = lock_volume(&txn, &v.id).await?;
    unreserve_in(&txn, &v).await?;
    let v = store_v::get(&txn, &v.id).await?.ok_or_else(|| missing("Volume", &v.id))?;
    detach_in(&txn, &v, attachment_id.as_deref()).await?;
    txn.commit().await?;
    Ok(accepted_empty())
}
