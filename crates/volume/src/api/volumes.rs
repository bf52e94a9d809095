//! Volumes: create (empty, from an image, a snapshot, a volume or a backup),
//! list (summary and detail) with filters and paging, show, update, delete
//! (cascade, force), the summary (3.12), and metadata.
//!
//! A create writes the volume `creating` (under the project's quota lock)
//! and casts it to the scheduler; the volume host it lands on sets it
//! `available` or `error`.

use axum::Router;
use axum::extract::{Path, State as AxState};
use axum::response::Response;
use axum::routing::{get, post};
use sea_orm::TransactionTrait;
use serde_json::{Map, Value, json};
use stratus_core::AuthContext;
use stratus_core::auth::Auth;
use stratus_core::extract::RawQuery;
use stratus_core::microversion::Microversion;

use crate::api::list::{self, ListQuery};
use crate::api::resource_filters;
use crate::api::{
    Body, accepted, allowed, authorize, body_object, check_len, is_admin, metadata, metadata_from, now, ok, opt_str,
    project_of,
};
use crate::entity::attachment;
use crate::entity::volume::Model as Volume;
use crate::error::{Result, bad, invalid_volume, missing};
use crate::model::volume_status as vs;
use crate::rpc::{ScheduleVolume, Source};
use crate::store::{self, volumes as store_v};
use crate::{State, VolumeService};

pub fn routes() -> Router<State> {
    Router::new()
        .route("/v3/volumes", get(list_summary).post(create))
        .route("/v3/volumes/detail", get(list_detail))
        .route("/v3/volumes/summary", get(summary))
        .route("/v3/volumes/{id}", get(show).put(update).delete(delete))
        .route("/v3/volumes/{id}/metadata", get(meta_show).post(meta_merge).put(meta_replace))
        .route("/v3/volumes/{id}/metadata/{key}", get(meta_item).put(meta_item_set).delete(meta_item_delete))
        .route("/v3/volumes/{id}/action", post(crate::api::volume_actions::action))
}

fn link(svc: &VolumeService, id: &str) -> Value {
    json!([
        {"href": format!("{}/v3/volumes/{id}", svc.base_url), "rel": "self"},
        {"href": format!("{}/volumes/{id}", svc.base_url), "rel": "bookmark"},
    ])
}

/// The user's metadata with the admin metadata Cinder shows in it
/// (`readonly`, `attached_mode`).
fn shown_metadata(v: &Volume) -> Map<String, Value> {
    let mut m = store_v::json_map(&v.metadata);
    let admin = store_v::json_map(&v.admin_metadata);
    for k in ["readonly", "attached_mode"] {
        if let Some(val) = admin.get(k) {
            m.insert(k.into(), val.clone());
        }
    }
    m
}

/// Cinder's detailed volume view at `mv`.
pub fn render(
    svc: &VolumeService,
    ctx: &AuthContext,
    mv: Microversion,
    v: &Volume,
    type_name: Option<&str>,
    atts: &[attachment::Model],
) -> Value {
    let attachments: Vec<Value> = atts
        .iter()
        .filter(|a| a.volume_id == v.id)
        .map(|a| {
            json!({
                "server_id": a.instance_uuid,
                "attachment_id": a.id,
                "attached_at": a.attach_time,
                "host_name": a.attached_host,
                "volume_id": v.id,
                "device": a.mountpoint,
                "id": v.id,
            })
        })
        .collect();
    let mut o = json!({
        "id": v.id,
        "name": v.name,
        "description": v.description,
        "size": v.size,
        "status": v.status,
        "availability_zone": v.availability_zone,
        "created_at": v.created_at,
        "updated_at": v.updated_at,
        "attachments": attachments,
        "links": link(svc, &v.id),
        "metadata": Value::Object(shown_metadata(v)),
        "bootable": if v.bootable { "true" } else { "false" },
        "encrypted": v.encrypted,
        "multiattach": v.multiattach,
        "replication_status": v.replication_status,
        "consistencygroup_id": Value::Null,
        "snapshot_id": v.snapshot_id,
        "source_volid": v.source_volid,
        "user_id": v.user_id,
        "volume_type": type_name,
        "migration_status": v.migration_status,
    });
    let Some(m) = o.as_object_mut() else { return o };
    let image_meta = store_v::json_map(&v.image_metadata);
    if !image_meta.is_empty() && allowed(svc, ctx, "volume_extension:volume_image_metadata:show", &v.project_id) {
        m.insert("volume_image_metadata".into(), Value::Object(image_meta));
    }
    if allowed(svc, ctx, "volume_extension:volume_tenant_attribute", &v.project_id) {
        m.insert("os-vol-tenant-attr:tenant_id".into(), json!(v.project_id));
    }
    if allowed(svc, ctx, "volume_extension:volume_host_attribute", &v.project_id) {
        m.insert("os-vol-host-attr:host".into(), json!(v.host));
    }
    if allowed(svc, ctx, "volume_extension:volume_mig_status_attribute", &v.project_id) {
        m.insert("os-vol-mig-status-attr:migstat".into(), json!(v.migration_status));
        m.insert("os-vol-mig-status-attr:name_id".into(), Value::Null);
    }
    if mv.at_least(3, 13) {
        m.insert("group_id".into(), json!(v.group_id));
    }
    if mv.at_least(3, 21) && is_admin(svc, ctx) {
        m.insert("provider_id".into(), Value::Null);
    }
    if mv.at_least(3, 48) {
        m.insert("service_uuid".into(), Value::Null);
        m.insert("shared_targets".into(), json!(false));
    }
    if mv.at_least(3, 61) && is_admin(svc, ctx) {
        m.insert("cluster_name".into(), Value::Null);
    }
    if mv.at_least(3, 63) {
        m.insert("volume_type_id".into(), json!(v.volume_type_id));
    }
    if mv.at_least(3, 65) {
        m.insert("consumes_quota".into(), json!(true));
    }
    o
}

/// The view create and update answer with: no extended attributes (Cinder
/// adds those on show and detail only).
pub fn plain(mut body: Value) -> Value {
    if let Some(o) = body.as_object_mut() {
        o.retain(|k, _| !k.starts_with("os-vol-") && k != "volume_image_metadata");
    }
    body
}

/// One volume rendered, with its type name and attachments read.
pub async fn render_one(svc: &VolumeService, ctx: &AuthContext, mv: Microversion, v: &Volume) -> Result<Value> {
    let names = store_v::type_names(&svc.db.read, std::slice::from_ref(v)).await?;
    let atts = store_v::attachments_of(&svc.db.read, std::slice::from_ref(&v.id)).await?;
    let tn = v.volume_type_id.as_ref().and_then(|t| names.get(t)).map(String::as_str);
    Ok(render(svc, ctx, mv, v, tn, &atts))
}

/// The volume `id` if the caller may see it and `rule` allows them (404 / 403).
pub async fn load(svc: &VolumeService, ctx: &AuthContext, id: &str, rule: &str) -> Result<Volume> {
    let v = store_v::visible(&svc.db.read, id, &project_of(ctx), is_admin(svc, ctx)).await?;
    authorize(svc, ctx, rule, &v.project_id)?;
    Ok(v)
}

/// A size as Cinder reads it: an integer (or a string of one) >= 1.
pub fn parse_size(v: Option<&Value>) -> Result<Option<i64>> {
    let n = match v {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.trim().parse::<i64>().ok(),
        Some(_) => None,
    };
    match n {
        Some(n) if n >= 1 && n <= i32::MAX as i64 => Ok(Some(n)),
        _ => Err(bad(format!(
            "Invalid input received: Volume size '{}' must be an integer and greater than 0.",
            v.map(|x| x.to_string()).unwrap_or_default().trim_matches('"')
        ))),
    }
}

async fn create(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    stratus_core::extract::Json(body): Body,
) -> Result<Response> {
    let obj = body_object(&body, "volume")?;
    let project = project_of(&ctx);
    authorize(&svc, &ctx, "volume:create", &project)?;
    if project.is_empty() {
        return Err(bad("A project-scoped token is required to create a volume."));
    }
    let name = opt_str(obj, "name")?.or(opt_str(obj, "display_name")?);
    let description = opt_str(obj, "description")?.or(opt_str(obj, "display_description")?);
    check_len("name", &name)?;
    check_len("description", &description)?;
    let metadata = match obj.get("metadata") {
        None | Some(Value::Null) => Map::new(),
        Some(m) => metadata_from(m)?,
    };
    let snapshot_id = opt_str(obj, "snapshot_id")?;
    let source_volid = opt_str(obj, "source_volid")?;
    let image_ref = opt_str(obj, "imageRef")?.or(opt_str(obj, "image_id")?);
    let backup_id = if mv.at_least(3, 47) { opt_str(obj, "backup_id")? } else { None };
    let sources = [&snapshot_id, &source_volid, &image_ref, &backup_id].iter().filter(|s| s.is_some()).count();
    if sources > 1 {
        return Err(bad(
            "Invalid input received: only one of snapshot_id, source_volid, imageRef, backup_id may be given.",
        ));
    }
    let mut size = parse_size(obj.get("size"))?;
    let db = &svc.db;
    let admin = is_admin(&svc, &ctx);

    // what the volume comes from decides its size, type and zone when not given
    let mut zone = opt_str(obj, "availability_zone")?;
    let mut type_id: Option<String> = None;
    let mut must_host: Option<String> = None;
    let mut bootable = false;
    let mut image_meta = Map::new();
    if let Some(sid) = &snapshot_id {
        let snap = <crate::entity::snapshot::Entity as sea_orm::EntityTrait>::find_by_id(sid.clone())
            .one(&db.read)
            .await?
            .filter(|s| admin || s.project_id == project)
            .ok_or_else(|| missing("Snapshot", sid))?;
        if snap.status != crate::model::snapshot_status::AVAILABLE {
            return Err(bad("Invalid snapshot: Originating snapshot status must be one of 'available' values"));
        }
        let size_now = *size.get_or_insert(snap.size);
        if size_now < snap.size {
            return Err(bad(format!(
                "Invalid input received: Volume size '{size_now}'GB cannot be smaller than the snapshot size {}GB. They must be >= original snapshot size.",
                snap.size
            )));
        }
        let src = store_v::get(&db.read, &snap.volume_id).await?;
        if let Some(src) = src {
            must_host = src.host.clone();
            zone.get_or_insert(src.availability_zone.clone());
            type_id = src.volume_type_id.clone();
            bootable = src.bootable;
            image_meta = store_v::json_map(&src.image_metadata);
        }
    }
    if let Some(vid) = &source_volid {
        let src = store_v::get(&db.read, vid)
            .await?
            .filter(|v| admin || v.project_id == project)
            .ok_or_else(|| missing("Volume", vid))?;
        if !matches!(src.status.as_str(), vs::AVAILABLE | vs::IN_USE) {
            return Err(invalid_volume("Source volume status must be available or in-use"));
        }
        let size_now = *size.get_or_insert(src.size);
        if size_now < src.size {
            return Err(bad(format!(
                "Invalid input received: Volume size '{size_now}'GB cannot be smaller than original volume size {}GB. They must be >= original volume size.",
                src.size
            )));
        }
        must_host = src.host.clone();
        zone.get_or_insert(src.availability_zone.clone());
        type_id = src.volume_type_id.clone();
        bootable = src.bootable;
        image_meta = store_v::json_map(&src.image_metadata);
    }
    if let Some(image_id) = &image_ref {
        authorize(&svc, &ctx, "volume:create_from_image", &project)?;
        let deps = svc.deps()?;
        let image = match deps.images.get(image_id, &ctx.token, None).await {
            Ok(stratus_clients::image::ImageLookup::Found(v)) => v,
            Ok(_) => return Err(bad("Invalid image identifier or unable to access requested image.")),
            Err(e) => return Err(crate::error::VolumeError::Internal(e)),
        };
        if image.get("status").and_then(Value::as_str) != Some("active") {
            return Err(bad(format!("Invalid image: Image {image_id} is not active.")));
        }
        let image_bytes = image.get("size").and_then(Value::as_i64).unwrap_or(0);
        let image_gb = (image_bytes + (1 << 30) - 1) >> 30;
        let min_disk = image.get("min_disk").and_then(Value::as_i64).unwrap_or(0);
        let need = image_gb.max(min_disk).max(1);
        let size_now = *size.get_or_insert(need);
        if size_now < need {
            return Err(bad(format!(
                "Invalid input received: Size of specified image {need}GB is larger than volume size {size_now}GB."
            )));
        }
        bootable = true;
        for k in ["container_format", "disk_format", "min_disk", "min_ram", "size", "checksum"] {
            if let Some(v) = image.get(k).filter(|v| !v.is_null()) {
                let s = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                image_meta.insert(k.into(), Value::String(s));
            }
        }
        // how the image boots, as Cinder copies an image's properties: a server booted
        // from the volume boots the same kernel and ramdisk
        for k in ["kernel_id", "ramdisk_id", "os_command_line"] {
            if let Some(v) = image.get(k).and_then(Value::as_str) {
                image_meta.insert(k.into(), json!(v));
            }
        }
        image_meta.insert("image_id".into(), json!(image_id));
        if let Some(n) = image.get("name").and_then(Value::as_str) {
            image_meta.insert("image_name".into(), json!(n));
        }
    }
    if let Some(bid) = &backup_id {
        let b = <crate::entity::backup::Entity as sea_orm::EntityTrait>::find_by_id(bid.clone())
            .one(&db.read)
            .await?
            .filter(|b| admin || b.project_id == project)
            .ok_or_else(|| missing("Backup", bid))?;
        if b.status != crate::model::backup_status::AVAILABLE {
            return Err(bad("Invalid backup: Backup status must be available"));
        }
        let size_now = *size.get_or_insert(b.size);
        if size_now < b.size {
            return Err(bad("Invalid input received: volume size must not be smaller than the backup's"));
        }
    }
    let size =
        size.ok_or_else(|| bad("Invalid input received: Volume size '' must be an integer and greater than 0."))?;

    // the type: asked for (by id or name), else the source's, else the default
    let vtype = match opt_str(obj, "volume_type")? {
        Some(t) => {
            let t = store::types::get(&db.read, &t).await?.ok_or_else(|| missing("Volume type", &t))?;
            if !store::types::visible_to(&db.read, &t, &project, admin).await? {
                return Err(missing("Volume type", &t.id));
            }
            t
        }
        None => match &type_id {
            Some(id) => match store::types::get(&db.read, id).await? {
                Some(t) => t,
                None => store::types::default_for(&db.read, &project, &svc.cfg.volume.default_volume_type).await?,
            },
            None => store::types::default_for(&db.read, &project, &svc.cfg.volume.default_volume_type).await?,
        },
    };
    let group_id = match opt_str(obj, "group_id")? {
        Some(g) if mv.at_least(3, 13) => Some(crate::api::groups::admit_new_volume(&svc, &ctx, &g, &vtype.id).await?),
        _ => None,
    };
    let zone = zone.unwrap_or_else(|| svc.cfg.volume.availability_zone.clone());
    if zone != svc.cfg.volume.availability_zone
        && !store::services::all(&db.read).await?.iter().any(|s| s.availability_zone == zone)
    {
        return Err(bad(format!("Invalid input received: Availability zone '{zone}' is invalid.")));
    }
    let multiattach = store::types::extra_specs(&vtype).get("multiattach").and_then(Value::as_str) == Some("<is> True")
        || obj.get("multiattach").and_then(Value::as_bool).unwrap_or(false);

    let id = uuid::Uuid::new_v4().to_string();
    let v = Volume {
        id: id.clone(),
        project_id: project.clone(),
        user_id: ctx.user_id.clone(),
        name,
        description,
        size,
        status: vs::CREATING.into(),
        attach_status: crate::model::attach_status::DETACHED.into(),
        availability_zone: zone.clone(),
        volume_type_id: Some(vtype.id.clone()),
        bootable,
        multiattach,
        encrypted: store::types::encryption_of(&db.read, &vtype.id).await?.is_some(),
        source_volid: source_volid.clone(),
        snapshot_id: snapshot_id.clone(),
        image_id: image_ref.clone(),
        backup_id: backup_id.clone(),
        host: None,
        provider_location: None,
        metadata: store_v::to_text(&metadata),
        admin_metadata: "{}".into(),
        image_metadata: store_v::to_text(&image_meta),
        migration_status: None,
        replication_status: None,
        group_id,
        previous_status: None,
        created_at: now(),
        updated_at: None,
        launched_at: None,
    };
    let txn = db.write.begin().await?;
    let per_type_volumes = format!("volumes_{}", vtype.name);
    let per_type_gb = format!("gigabytes_{}", vtype.name);
    store::quotas::check(
        &txn,
        &svc.cfg.volume,
        &project,
        &[
            ("volumes", 1),
            ("gigabytes", size),
            ("per_volume_gigabytes", size),
            (per_type_volumes.as_str(), 1),
            (per_type_gb.as_str(), size),
        ],
    )
    .await?;
    store_v::insert(&txn, v.clone()).await?;
    txn.commit().await?;

    let msg = ScheduleVolume {
        volume_id: id.clone(),
        size,
        availability_zone: zone,
        extra_specs: store::types::extra_specs(&vtype),
        source: Source { image_id: image_ref, snapshot_id, source_volid, backup_id },
        must_host,
    };
    if let Err(e) = cast_schedule(&svc, &msg).await {
        tracing::warn!(volume = %id, error = %e, "could not reach the volume scheduler");
        store_v::set_status(&db.write, &id, vs::ERROR).await?;
    }
    let body = plain(render(&svc, &ctx, mv, &v, Some(&vtype.name), &[]));
    Ok(accepted(json!({"volume": body})))
}

async fn cast_schedule(svc: &VolumeService, msg: &ScheduleVolume) -> anyhow::Result<()> {
    let deps = svc.deps().map_err(|e| anyhow::anyhow!("{e}"))?;
    deps.bus.cast(crate::rpc::SCHEDULER, msg, &format!("req-{}", uuid::Uuid::new_v4())).await?;
    Ok(())
}

/// The volumes a list shows: the caller's project's, or (admins with
/// `all_tenants`) every project's, or `project_id`'s.
async fn listed(svc: &VolumeService, ctx: &AuthContext, q: &mut ListQuery) -> Result<Vec<Volume>> {
    let admin = is_admin(svc, ctx);
    let project = project_of(ctx);
    authorize(svc, ctx, "volume:get_all", &project)?;
    let asked_project = q.take("project_id").or(q.take("tenant_id"));
    // an admin naming a project sees that project's (with or without all_tenants)
    let scope = if admin && asked_project.is_some() {
        asked_project.clone()
    } else if admin && q.all_tenants {
        None
    } else {
        Some(project)
    };
    store_v::list(&svc.db.read, scope.as_deref()).await
}

const SORTABLE: &[&str] =
    &["id", "name", "status", "size", "created_at", "updated_at", "availability_zone", "bootable", "volume_type"];

async fn do_list(
    svc: &State,
    ctx: &AuthContext,
    mv: Microversion,
    pairs: &[(String, String)],
    detail: bool,
) -> Result<Value> {
    let mut q = ListQuery::parse(pairs)?;
    resource_filters::restrict(&mut q, "volume", is_admin(svc, ctx), mv)?;
    if let Some(n) = q.take("display_name") {
        q.filters.push(("name".into(), n));
    }
    let vols = listed(svc, ctx, &mut q).await?;
    let names = store_v::type_names(&svc.db.read, &vols).await?;
    let ids: Vec<String> = vols.iter().map(|v| v.id.clone()).collect();
    let atts = store_v::attachments_of(&svc.db.read, &ids).await?;
    let items: Vec<Value> = vols
        .iter()
        .map(|v| {
            let tn = v.volume_type_id.as_ref().and_then(|t| names.get(t)).map(String::as_str);
            render(svc, ctx, mv, v, tn, &atts)
        })
        .collect();
    let base = format!("{}/v3/volumes{}", svc.base_url, if detail { "/detail" } else { "" });
    let (page, links, count) = list::page(items, &q, SORTABLE, &base)?;
    let page: Vec<Value> = if detail {
        page
    } else {
        page.into_iter().map(|v| json!({"id": v["id"], "name": v["name"], "links": v["links"]})).collect()
    };
    Ok(list::answer("volumes", page, links, (q.with_count && mv.at_least(3, 45)).then_some(count)))
}

async fn list_summary(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    RawQuery(q): RawQuery,
) -> Result<Response> {
    Ok(ok(do_list(&svc, &ctx, mv, &q, false).await?))
}

async fn list_detail(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    RawQuery(q): RawQuery,
) -> Result<Response> {
    Ok(ok(do_list(&svc, &ctx, mv, &q, true).await?))
}

/// `GET /v3/volumes/summary` (3.12): count, total size and the metadata of the project's volumes.
async fn summary(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    RawQuery(q): RawQuery,
) -> Result<Response> {
    if !mv.at_least(3, 12) {
        return Err(crate::error::not_found("The resource could not be found."));
    }
    let mut q = ListQuery::parse(&q)?;
    let vols = listed(&svc, &ctx, &mut q).await?;
    let mut body = json!({"total_size": vols.iter().map(|v| v.size).sum::<i64>(), "total_count": vols.len()});
    if mv.at_least(3, 36) {
        let mut meta: Map<String, Value> = Map::new();
        for v in &vols {
            for (k, val) in store_v::json_map(&v.metadata) {
                let e = meta.entry(k).or_insert_with(|| json!([]));
                if let Some(a) = e.as_array_mut()
                    && !a.contains(&val)
                {
                    a.push(val);
                }
            }
        }
        body["metadata"] = Value::Object(meta);
    }
    Ok(ok(json!({"volume-summary": body})))
}

async fn show(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    Path(id): Path<String>,
) -> Result<Response> {
    let v = load(&svc, &ctx, &id, "volume:get").await?;
    Ok(ok(json!({"volume": render_one(&svc, &ctx, mv, &v).await?})))
}

async fn update(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    Path(id): Path<String>,
    stratus_core::extract::Json(body): Body,
) -> Result<Response> {
    let obj = body_object(&body, "volume")?;
    let mut v = load(&svc, &ctx, &id, "volume:update").await?;
    let allowed_keys = ["name", "description", "display_name", "display_description", "metadata"];
    if obj.is_empty() || !obj.keys().any(|k| allowed_keys.contains(&k.as_str())) {
        return Err(bad("Invalid input received: the body must hold name, description or metadata."));
    }
    if obj.contains_key("name") || obj.contains_key("display_name") {
        v.name = opt_str(obj, "name")?.or(opt_str(obj, "display_name")?);
        check_len("name", &v.name)?;
    }
    if obj.contains_key("description") || obj.contains_key("display_description") {
        v.description = opt_str(obj, "description")?.or(opt_str(obj, "display_description")?);
        check_len("description", &v.description)?;
    }
    if let Some(m) = obj.get("metadata") {
        v.metadata = store_v::to_text(&metadata_from(m)?);
    }
    v.updated_at = Some(now());
    store_v::save(&svc.db.write, &v).await?;
    Ok(ok(json!({"volume": plain(render_one(&svc, &ctx, mv, &v).await?)})))
}

/// Statuses a volume may be deleted from (admins' force delete takes any but attached).
const DELETABLE: &[&str] = &[vs::AVAILABLE, vs::ERROR, vs::ERROR_EXTENDING, "error_restoring", "error_managing"];

async fn delete(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response> {
    let v = load(&svc, &ctx, &id, "volume:delete").await?;
    let cascade = crate::api::query_flag(&q, "cascade");
    let force = crate::api::query_flag(&q, "force");
    if force {
        authorize(&svc, &ctx, "volume:force_delete", &v.project_id)?;
    }
    delete_volume(&svc, &v, cascade, force).await?;
    Ok(crate::api::accepted_empty())
}

/// Start deleting `v`: the checks Cinder makes, then `deleting` and a cast
/// to its host (a volume never placed is removed at once).
pub async fn delete_volume(svc: &VolumeService, v: &Volume, cascade: bool, force: bool) -> Result<()> {
    if v.attach_status == crate::model::attach_status::ATTACHED || v.status == vs::IN_USE {
        return Err(invalid_volume(
            "Volume status must be available or error or error_restoring or error_extending or error_managing and must not be migrating, attached, belong to a group, have snapshots, awaiting a transfer, or be disassociated from snapshots after volume transfer.",
        ));
    }
    let unplaced = v.status == vs::CREATING && v.host.is_none();
    if !(force || unplaced || DELETABLE.contains(&v.status.as_str())) {
        return Err(invalid_volume(
            "Volume status must be available or error or error_restoring or error_extending or error_managing and must not be migrating, attached, belong to a group, have snapshots, awaiting a transfer, or be disassociated from snapshots after volume transfer.",
        ));
    }
    let snaps = store_v::snapshot_count(&svc.db.read, &v.id).await?;
    if snaps > 0 && !cascade {
        return Err(invalid_volume(format!("Volume still has {snaps} dependent snapshots.")));
    }
    let from: Vec<&str> =
        if force { vec![v.status.as_str()] } else { DELETABLE.iter().copied().chain([vs::CREATING]).collect() };
    if !store_v::transition(&svc.db.write, &v.id, &from, vs::DELETING).await? {
        return Err(invalid_volume("Volume status changed meanwhile; try again."));
    }
    match &v.host {
        None => {
            // never placed: nothing to remove on a host
            store_v::delete(&svc.db.write, &v.id).await?;
        }
        Some(host) => {
            let deps = svc.deps()?;
            let msg = crate::rpc::DeleteVolume { volume_id: v.id.clone(), cascade };
            if let Err(e) = deps
                .bus
                .cast(&crate::rpc::host_topic(host, "delete"), &msg, &format!("req-{}", uuid::Uuid::new_v4()))
                .await
            {
                store_v::set_status(&svc.db.write, &v.id, vs::ERROR_DELETING).await?;
                return Err(crate::error::VolumeError::Internal(e.into()));
            }
        }
    }
    Ok(())
}

// --- metadata -------------------------------------------------------------

async fn write_meta(svc: &VolumeService, v: &mut Volume, m: Map<String, Value>) -> Result<()> {
    v.metadata = store_v::to_text(&m);
    v.updated_at = Some(now());
    store_v::save(&svc.db.write, v).await
}

async fn meta_show(AxState(svc): AxState<State>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Response> {
    let v = load(&svc, &ctx, &id, "volume:get_volume_metadata").await?;
    Ok(metadata::show(store_v::json_map(&v.metadata)))
}

async fn meta_merge(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    stratus_core::extract::Json(body): Body,
) -> Result<Response> {
    let mut v = load(&svc, &ctx, &id, "volume:create_volume_metadata").await?;
    let (m, answer) = metadata::merge(store_v::json_map(&v.metadata), &body)?;
    write_meta(&svc, &mut v, m).await?;
    Ok(answer)
}

async fn meta_replace(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    stratus_core::extract::Json(body): Body,
) -> Result<Response> {
    let mut v = load(&svc, &ctx, &id, "volume:update_volume_metadata").await?;
    let (m, answer) = metadata::replace(&body)?;
    write_meta(&svc, &mut v, m).await?;
    Ok(answer)
}

async fn meta_item(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    Path((id, key)): Path<(String, String)>,
) -> Result<Response> {
    let v = load(&svc, &ctx, &id, "volume:get_volume_metadata").await?;
    metadata::item(&store_v::json_map(&v.metadata), &key)
}

async fn meta_item_set(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    Path((id, key)): Path<(String, String)>,
    stratus_core::extract::Json(body): Body,
) -> Result<Response> {
    let mut v = load(&svc, &ctx, &id, "volume:update_volume_metadata").await?;
    let (m, answer) = metadata::item_set(store_v::json_map(&v.metadata), &key, &body)?;
    write_meta(&svc, &mut v, m).await?;
    Ok(answer)
}

async fn meta_item_delete(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    Path((id, key)): Path<(String, String)>,
) -> Result<Response> {
    let mut v = load(&svc, &ctx, &id, "volume:delete_volume_metadata").await?;
    let (m, answer) = metadata::item_delete(store_v::json_map(&v.metadata), &key)?;
    write_meta(&svc, &mut v, m).await?;
    Ok(answer)
}
