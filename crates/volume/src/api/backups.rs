//! Backups: list (summary and detail), create (full or incremental, of a
//! volume or one of its snapshots), show, update (3.9), delete, restore
//! (into a new volume or an existing one), and the actions
//! `os-reset_status` and `os-force_delete`.
//!
//! A create writes the backup `creating`, the volume `backing-up` (or the
//! snapshot), and casts it to the volume's host; the host's backup service
//! ([`crate::backup`]) writes the chunks and sets the outcome.

use std::collections::HashMap;

use axum::Router;
use axum::extract::{Path, State as AxState};
use axum::response::Response;
use axum::routing::{get, post};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QuerySelect, TransactionTrait};
use serde_json::{Map, Value, json};
use stratus_core::AuthContext;
use stratus_core::auth::Auth;
use stratus_core::extract::RawQuery;
use stratus_core::microversion::Microversion;

use crate::api::list::{self, ListQuery};
use crate::api::{
    Body, accepted, accepted_empty, allowed, authorize, body_object, is_admin, metadata_from, now, ok, project_of,
};
use crate::api::{check_id, check_len, opt_bool, opt_str, query_flag};
use crate::entity::backup::{self, Model as Backup};
use crate::entity::{snapshot, volume};
use crate::error::{Result, VolumeError, bad, invalid_volume, missing, not_found};
use crate::model::{backup_status as bs, snapshot_status as ss, volume_status as vs};
use crate::store::volumes as store_v;
use crate::{State, VolumeService};

pub fn routes() -> Router<State> {
    Router::new()
        .route("/v3/backups", get(list_summary).post(create))
        .route("/v3/backups/detail", get(list_detail))
        .route("/v3/backups/{id}", get(show).put(update).delete(delete))
        .route("/v3/backups/{id}/restore", post(restore))
        .route("/v3/backups/{id}/action", post(action))
}

fn bad_backup(msg: impl std::fmt::Display) -> VolumeError {
    bad(format!("Invalid backup: {msg}"))
}

fn links(svc: &VolumeService, id: &str) -> Value {
    json!([
        {"href": format!("{}/v3/backups/{id}", svc.base_url), "rel": "self"},
        {"href": format!("{}/backups/{id}", svc.base_url), "rel": "bookmark"},
    ])
}

/// Cinder's short backup view (creates, updates, summary lists).
pub fn summary(svc: &VolumeService, b: &Backup) -> Value {
    json!({"id": b.id, "name": b.name, "links": links(svc, &b.id)})
}

/// Cinder's detailed backup view at `mv`; `dependents` is how many
/// incremental backups name it as their parent.
pub fn detail(svc: &VolumeService, ctx: &AuthContext, mv: Microversion, b: &Backup, dependents: u64) -> Value {
    let mut o = json!({
        "id": b.id,
        "status": b.status,
        "size": b.size,
        "object_count": b.object_count,
        "availability_zone": b.availability_zone,
        "container": b.container,
        "created_at": b.created_at,
        "updated_at": b.updated_at,
        "name": b.name,
        "description": b.description,
        "fail_reason": b.fail_reason,
        "volume_id": b.volume_id,
        "links": links(svc, &b.id),
        "is_incremental": b.is_incremental,
        "has_dependent_backups": dependents > 0,
        "snapshot_id": b.snapshot_id,
        "data_timestamp": b.data_timestamp,
    });
    let Some(m) = o.as_object_mut() else { return o };
    if mv.at_least(3, 18) && allowed(svc, ctx, "backup:backup_project_attribute", &b.project_id) {
        m.insert("os-backup-project-attr:project_id".into(), json!(b.project_id));
    }
    if mv.at_least(3, 43) {
        m.insert("metadata".into(), Value::Object(store_v::json_map(&b.metadata)));
    }
    if mv.at_least(3, 51) {
        m.insert("encryption_key_id".into(), Value::Null);
    }
    if mv.at_least(3, 56) {
        m.insert("user_id".into(), json!(b.user_id));
    }
    o
}

/// How many backups name each of `ids` as parent.
async fn dependents<C: sea_orm::ConnectionTrait>(conn: &C, ids: &[String]) -> Result<HashMap<String, u64>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let parents: Vec<Option<String>> = backup::Entity::find()
        .select_only()
        .column(backup::Column::ParentId)
        .filter(backup::Column::ParentId.is_in(ids.iter().cloned()))
        .into_tuple()
        .all(conn)
        .await?;
    let mut out = HashMap::new();
    for p in parents.into_iter().flatten() {
        *out.entry(p).or_insert(0) += 1;
    }
    Ok(out)
}

/// The backup `id` if the caller may see it and `rule` allows them (404 / 403).
pub async fn load(svc: &VolumeService, ctx: &AuthContext, id: &str, rule: &str) -> Result<Backup> {
    check_id("Backup", id)?;
    let b = backup::Entity::find_by_id(id.to_string())
        .one(&svc.db.read)
        .await?
        .filter(|b| is_admin(svc, ctx) || b.project_id == project_of(ctx))
        .ok_or_else(|| missing("Backup", id))?;
    authorize(svc, ctx, rule, &b.project_id)?;
    Ok(b)
}

async fn save<C: sea_orm::ConnectionTrait>(conn: &C, b: &Backup) -> Result<()> {
    let mut am = backup::ActiveModel::from(b.clone()).reset_all();
    am.id = sea_orm::ActiveValue::Unchanged(b.id.clone());
    backup::Entity::update(am).exec(conn).await?;
    Ok(())
}

/// Set a backup's status to `to` if it is one of `from` now (any when empty).
pub async fn transition<C: sea_orm::ConnectionTrait>(conn: &C, id: &str, from: &[&str], to: &str) -> Result<bool> {
    let mut q = backup::Entity::update_many()
        .col_expr(backup::Column::Status, Expr::value(to))
        .col_expr(backup::Column::UpdatedAt, Expr::value(now()))
        .filter(backup::Column::Id.eq(id));
    if !from.is_empty() {
        q = q.filter(backup::Column::Status.is_in(from.iter().copied()));
    }
    Ok(q.exec(conn).await?.rows_affected == 1)
}

async fn cast<M: stratus_bus::Message>(svc: &VolumeService, topic: &str, msg: &M) -> anyhow::Result<()> {
    let deps = svc.deps().map_err(|e| anyhow::anyhow!("{e}"))?;
    deps.bus.cast(topic, msg, &format!("req-{}", uuid::Uuid::new_v4())).await?;
    Ok(())
}

// --- list -----------------------------------------------------------------

const SORTABLE: &[&str] =
    &["id", "name", "status", "size", "created_at", "updated_at", "volume_id", "data_timestamp", "availability_zone"];

async fn do_list(
    svc: &State,
    ctx: &AuthContext,
    mv: Microversion,
    pairs: &[(String, String)],
    detailed: bool,
) -> Result<Value> {
    let mut q = ListQuery::parse(pairs)?;
    let admin = is_admin(svc, ctx);
    let project = project_of(ctx);
    authorize(svc, ctx, "backup:get_all", &project)?;
    crate::api::resource_filters::restrict(&mut q, "backup", admin, mv)?;
    if let Some(n) = q.take("display_name") {
        q.filters.push(("name".into(), n));
    }
    crate::api::snapshots::display_name_sort(&mut q);
    let asked_project = q.take("project_id");
    let mut find = backup::Entity::find();
    if !(admin && q.all_tenants) {
        let scope = if admin { asked_project.unwrap_or(project) } else { project };
        find = find.filter(backup::Column::ProjectId.eq(scope));
    }
    let rows = find.all(&svc.db.read).await?;
    let ids: Vec<String> = rows.iter().map(|b| b.id.clone()).collect();
    let deps = dependents(&svc.db.read, &ids).await?;
    let full = if mv.at_least(3, 43) { mv } else { Microversion(3, 43) };
    let items: Vec<Value> = rows
        .iter()
        // filtered and sorted on the fullest view (metadata filters), shown at `mv`
        .map(|b| detail(svc, ctx, full, b, deps.get(&b.id).copied().unwrap_or(0)))
        .collect();
    let base = format!("{}/v3/backups{}", svc.base_url, if detailed { "/detail" } else { "" });
    let (page, links, count) = list::page(items, &q, SORTABLE, &base)?;
    let by_id: HashMap<&str, &Backup> = rows.iter().map(|b| (b.id.as_str(), b)).collect();
    let page: Vec<Value> =
        page.iter()
            .filter_map(|v| v.get("id").and_then(Value::as_str).and_then(|id| by_id.get(id)))
            .map(|b| {
                if detailed { detail(svc, ctx, mv, b, deps.get(&b.id).copied().unwrap_or(0)) } else { summary(svc, b) }
            })
            .collect();
    Ok(list::answer("backups", page, links, (q.with_count && mv.at_least(3, 45)).then_some(count)))
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

// --- create ---------------------------------------------------------------

async fn create(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    stratus_core::extract::Json(body): Body,
) -> Result<Response> {
    let obj = body_object(&body, "backup")?;
    let project = project_of(&ctx);
    authorize(&svc, &ctx, "backup:create", &project)?;
    let volume_id =
        opt_str(obj, "volume_id")?.ok_or_else(|| bad("Invalid input received: 'volume_id' must be specified"))?;
    let name = opt_str(obj, "name")?.or(opt_str(obj, "display_name")?);
    let description = opt_str(obj, "description")?.or(opt_str(obj, "display_description")?);
    check_len("name", &name)?;
    check_len("description", &description)?;
    let container = opt_str(obj, "container")?;
    check_len("container", &container)?;
    let incremental = opt_bool(obj, "incremental")?;
    let force = opt_bool(obj, "force")?;
    let snapshot_id = opt_str(obj, "snapshot_id")?;
    let metadata = match obj.get("metadata") {
        Some(m) if mv.at_least(3, 43) && !m.is_null() => metadata_from(m)?,
        _ => Map::new(),
    };
    check_id("Volume", &volume_id)?;
    let admin = is_admin(&svc, &ctx);
    let v = store_v::visible(&svc.db.read, &volume_id, &project, admin).await?;
    let snap = match &snapshot_id {
        Some(sid) => {
            check_id("Snapshot", sid)?;
            let s = snapshot::Entity::find_by_id(sid.clone())
                .one(&svc.db.read)
                .await?
                .filter(|s| admin || s.project_id == project)
                .ok_or_else(|| missing("Snapshot", sid))?;
            if s.volume_id != v.id {
                return Err(bad(format!("Invalid snapshot: Snapshot {sid} is not a snapshot of volume {}.", v.id)));
            }
            if s.status != ss::AVAILABLE {
                return Err(bad(format!(
                    "Invalid snapshot: Snapshot to be backed up must be available, but the current status is \"{}\".",
                    s.status
                )));
            }
            Some(s)
        }
        None => None,
    };
    if snap.is_none() {
        if v.status == vs::IN_USE && !force {
            return Err(invalid_volume("Backing up an in-use volume must use the force flag."));
        }
        if v.status != vs::AVAILABLE && v.status != vs::IN_USE {
            return Err(invalid_volume(format!(
                "Volume to be backed up must be available or in-use, but the current status is \"{}\".",
                v.status
            )));
        }
    } else if v.status != vs::AVAILABLE && v.status != vs::IN_USE {
        return Err(invalid_volume(format!(
            "Volume to be backed up must be available or in-use, but the current status is \"{}\".",
            v.status
        )));
    }
    let Some(vol_host) = v.host.clone() else {
        return Err(invalid_volume(format!("Volume {} has no host.", v.id)));
    };
    let data_timestamp = snap.as_ref().map(|s| s.created_at.clone()).unwrap_or_else(now);

    // an incremental backup builds on the volume's latest available backup
    let parent = if incremental {
        let mut found = backup::Entity::find()
            .filter(backup::Column::VolumeId.eq(v.id.as_str()))
            .filter(backup::Column::Status.eq(bs::AVAILABLE))
            .all(&svc.db.read)
            .await?;
        found.retain(|b| b.data_timestamp.as_deref().unwrap_or(&b.created_at) <= data_timestamp.as_str());
        found.sort_by(|a, b| {
            let ka = (a.data_timestamp.as_deref().unwrap_or(&a.created_at), a.created_at.as_str());
            let kb = (b.data_timestamp.as_deref().unwrap_or(&b.created_at), b.created_at.as_str());
            ka.cmp(&kb)
        });
        match found.pop() {
            Some(p) => Some(p),
            None => return Err(bad_backup("No backups available to do an incremental backup.")),
        }
    } else {
        None
    };

    let id = uuid::Uuid::new_v4().to_string();
    let source = json!({
        "volume": {
            "metadata": Value::Object(store_v::json_map(&v.metadata)),
            "image_metadata": Value::Object(store_v::json_map(&v.image_metadata)),
            "bootable": v.bootable,
            "size": v.size,
        }
    });
    let b = Backup {
        id: id.clone(),
        volume_id: v.id.clone(),
        snapshot_id: snapshot_id.clone(),
        project_id: v.project_id.clone(),
        user_id: ctx.user_id.clone(),
        name,
        description,
        status: bs::CREATING.into(),
        size: v.size,
        availability_zone: Some(v.availability_zone.clone()),
        container,
        fail_reason: None,
        is_incremental: parent.is_some(),
        parent_id: parent.map(|p| p.id),
        object_count: 0,
        data_timestamp: Some(data_timestamp),
        host: Some(crate::rpc::host_of(&vol_host).to_string()),
        service_metadata: Some(source.to_string()),
        metadata: store_v::to_text(&metadata),
        restore_volume_id: None,
        created_at: now(),
        updated_at: None,
    };
    let txn = svc.db.write.begin().await?;
    crate::store::quotas::check(&txn, &svc.cfg.volume, &b.project_id, &[("backups", 1), ("backup_gigabytes", b.size)])
        .await?;
    backup::ActiveModel::from(b.clone()).insert(&txn).await?;
    let claimed = match &snap {
        Some(s) => crate::api::snapshots::transition(&txn, &s.id, &[ss::AVAILABLE], ss::BACKING_UP).await?,
        None => {
            volume::Entity::update_many()
                .col_expr(volume::Column::Status, Expr::value(vs::BACKING_UP))
                .col_expr(volume::Column::PreviousStatus, Expr::value(v.status.clone()))
                .col_expr(volume::Column::UpdatedAt, Expr::value(now()))
                .filter(volume::Column::Id.eq(v.id.as_str()))
                .filter(volume::Column::Status.eq(v.status.as_str()))
                .exec(&txn)
                .await?
                .rows_affected
                == 1
        }
    };
    if !claimed {
        txn.rollback().await?;
        return Err(invalid_volume("Volume status changed meanwhile; try again."));
    }
    txn.commit().await?;

    let msg = crate::rpc::CreateBackup { backup_id: id.clone() };
    if let Err(e) = cast(&svc, &crate::rpc::host_topic(&vol_host, "backup"), &msg).await {
        tracing::warn!(backup = %id, error = %e, "could not reach the backup service");
        crate::backup::fail_backup(&svc.db, &id, &format!("could not reach the backup service: {e}")).await;
    }
    Ok(accepted(json!({"backup": summary(&svc, &b)})))
}

// --- show, update, delete -------------------------------------------------------

async fn show(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    Path(id): Path<String>,
) -> Result<Response> {
    let b = load(&svc, &ctx, &id, "backup:get").await?;
    let n = dependents(&svc.db.read, std::slice::from_ref(&b.id)).await?.get(&b.id).copied().unwrap_or(0);
    Ok(ok(json!({"backup": detail(&svc, &ctx, mv, &b, n)})))
}

async fn update(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    Path(id): Path<String>,
    stratus_core::extract::Json(body): Body,
) -> Result<Response> {
    if !mv.at_least(3, 9) {
        return Err(not_found("The resource could not be found."));
    }
    let obj = body_object(&body, "backup")?;
    let mut b = load(&svc, &ctx, &id, "backup:update").await?;
    let mut keys = vec!["name", "description", "display_name", "display_description"];
    if mv.at_least(3, 43) {
        keys.push("metadata");
    }
    if obj.is_empty() || obj.keys().any(|k| !keys.contains(&k.as_str())) {
        return Err(bad("Invalid input received: the body must hold only name, description or metadata."));
    }
    if obj.contains_key("name") || obj.contains_key("display_name") {
        b.name = opt_str(obj, "name")?.or(opt_str(obj, "display_name")?);
        check_len("name", &b.name)?;
    }
    if obj.contains_key("description") || obj.contains_key("display_description") {
        b.description = opt_str(obj, "description")?.or(opt_str(obj, "display_description")?);
        check_len("description", &b.description)?;
    }
    if let Some(m) = obj.get("metadata") {
        b.metadata = store_v::to_text(&metadata_from(m)?);
    }
    b.updated_at = Some(now());
    save(&svc.db.write, &b).await?;
    Ok(ok(json!({"backup": summary(&svc, &b)})))
}

async fn delete(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response> {
    let b = load(&svc, &ctx, &id, "backup:delete").await?;
    let force = query_flag(&q, "force");
    if force {
        authorize(&svc, &ctx, "volume_extension:backup_admin_actions:force_delete", &b.project_id)?;
    }
    delete_backup(&svc, &b, force).await?;
    Ok(accepted_empty())
}

/// Start deleting `b`: the checks Cinder makes, `deleting`, and a cast to
/// the backup service that holds it.
pub async fn delete_backup(svc: &VolumeService, b: &Backup, force: bool) -> Result<()> {
    let from: Vec<&str> = if force {
        vec![bs::AVAILABLE, bs::ERROR, bs::CREATING, bs::RESTORING, bs::ERROR_DELETING, bs::DELETING]
    } else {
        vec![bs::AVAILABLE, bs::ERROR]
    };
    if !from.contains(&b.status.as_str()) {
        return Err(bad_backup("Backup status must be available or error"));
    }
    let n = dependents(&svc.db.read, std::slice::from_ref(&b.id)).await?.get(&b.id).copied().unwrap_or(0);
    if n > 0 {
        return Err(bad_backup("Incremental backups exist for this backup."));
    }
    if !transition(&svc.db.write, &b.id, &from, bs::DELETING).await? {
        return Err(bad_backup("Backup status changed meanwhile; try again."));
    }
    match &b.host {
        None => {
            backup::Entity::delete_by_id(b.id.clone()).exec(&svc.db.write).await?;
        }
        Some(host) => {
            let msg = crate::rpc::DeleteBackup { backup_id: b.id.clone() };
            if let Err(e) = cast(svc, &crate::rpc::host_topic(host, "delete_backup"), &msg).await {
                transition(&svc.db.write, &b.id, &[], bs::ERROR_DELETING).await?;
                return Err(VolumeError::Internal(e));
            }
        }
    }
    Ok(())
}

// --- restore --------------------------------------------------------------

/// What the backup recorded of its volume (metadata, bootable).
pub fn source_volume(b: &Backup) -> Map<String, Value> {
    let meta = b.service_metadata.as_deref().map(crate::api::json_object).unwrap_or_default();
    meta.get("volume").and_then(Value::as_object).cloned().unwrap_or_default()
}

async fn restore(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    stratus_core::extract::Json(body): Body,
) -> Result<Response> {
    let obj = body_object(&body, "restore")?;
    let b = load(&svc, &ctx, &id, "backup:restore").await?;
    let volume_id = opt_str(obj, "volume_id")?;
    let name = opt_str(obj, "name")?;
    check_len("name", &name)?;
    if b.status != bs::AVAILABLE {
        return Err(bad_backup("Backup status must be available"));
    }
    let project = project_of(&ctx);
    let admin = is_admin(&svc, &ctx);
    match volume_id {
        Some(vid) => {
            check_id("Volume", &vid)?;
            let v = store_v::visible(&svc.db.read, &vid, &project, admin).await?;
            if v.status != vs::AVAILABLE {
                return Err(invalid_volume("Volume to be restored to must be available"));
            }
            if v.size < b.size {
                return Err(invalid_volume(format!(
                    "volume size {} is too small to restore backup of size {}.",
                    v.size, b.size
                )));
            }
            let Some(host) = v.host.clone() else {
                return Err(invalid_volume("Volume to be restored to has no host."));
            };
            let txn = svc.db.write.begin().await?;
            let got_backup = backup::Entity::update_many()
                .col_expr(backup::Column::Status, Expr::value(bs::RESTORING))
                .col_expr(backup::Column::RestoreVolumeId, Expr::value(v.id.clone()))
                .col_expr(backup::Column::UpdatedAt, Expr::value(now()))
                .filter(backup::Column::Id.eq(b.id.as_str()))
                .filter(backup::Column::Status.eq(bs::AVAILABLE))
                .exec(&txn)
                .await?
                .rows_affected
                == 1;
            let got_volume =
                got_backup && store_v::transition(&txn, &v.id, &[vs::AVAILABLE], vs::RESTORING_BACKUP).await?;
            if !got_volume {
                txn.rollback().await?;
                return Err(bad_backup("Backup or volume status changed meanwhile; try again."));
            }
            txn.commit().await?;
            let msg = crate::rpc::RestoreBackup { backup_id: b.id.clone(), volume_id: v.id.clone() };
            if let Err(e) = cast(&svc, &crate::rpc::host_topic(&host, "restore"), &msg).await {
                tracing::warn!(backup = %b.id, error = %e, "could not reach the volume host");
                transition(&svc.db.write, &b.id, &[bs::RESTORING], bs::AVAILABLE).await?;
                store_v::set_status(&svc.db.write, &v.id, "error_restoring").await?;
                return Err(VolumeError::Internal(e));
            }
            Ok(accepted(json!({"restore": {
                "backup_id": b.id,
                "volume_id": v.id,
                "volume_name": v.name.unwrap_or_default(),
            }})))
        }
        None => {
            authorize(&svc, &ctx, "volume:create", &project)?;
            let v = restore_volume(&svc, &ctx, &b, name).await?;
            Ok(accepted(json!({"restore": {
                "backup_id": b.id,
                "volume_id": v.id,
                "volume_name": v.name.unwrap_or_default(),
            }})))
        }
    }
}

/// A new volume holding the backup: written `creating` (under the quota
/// lock) with the backup as its source and sent to the scheduler; the host
/// that makes it restores the data ([`crate::backup::restore_into`]).
async fn restore_volume(
    svc: &VolumeService,
    ctx: &AuthContext,
    b: &Backup,
    name: Option<String>,
) -> Result<volume::Model> {
    let project = project_of(ctx);
    if project.is_empty() {
        return Err(bad("A project-scoped token is required to restore into a new volume."));
    }
    let vtype = crate::store::types::default_for(&svc.db.read, &project, &svc.cfg.volume.default_volume_type).await?;
    let src = source_volume(b);
    let metadata = src.get("metadata").and_then(Value::as_object).cloned().unwrap_or_default();
    let image_meta = src.get("image_metadata").and_then(Value::as_object).cloned().unwrap_or_default();
    let bootable = src.get("bootable").and_then(Value::as_bool).unwrap_or(false);
    let zone = svc.cfg.volume.availability_zone.clone();
    let v = volume::Model {
        id: uuid::Uuid::new_v4().to_string(),
        project_id: project.clone(),
        user_id: ctx.user_id.clone(),
        name: Some(name.unwrap_or_else(|| format!("restore_backup_{}", b.id))),
        description: Some("auto-created_from_restore_from_backup".into()),
        size: b.size,
        status: vs::CREATING.into(),
        attach_status: crate::model::attach_status::DETACHED.into(),
        availability_zone: zone.clone(),
        volume_type_id: Some(vtype.id.clone()),
        bootable,
        multiattach: false,
        encrypted: false,
        source_volid: None,
        snapshot_id: None,
        image_id: None,
        backup_id: Some(b.id.clone()),
        host: None,
        provider_location: None,
        metadata: store_v::to_text(&metadata),
        admin_metadata: "{}".into(),
        image_metadata: store_v::to_text(&image_meta),
        migration_status: None,
        replication_status: None,
        group_id: None,
        previous_status: None,
        created_at: now(),
        updated_at: None,
        launched_at: None,
    };
    let txn = svc.db.write.begin().await?;
    let (tv, tg) = (format!("volumes_{}", vtype.name), format!("gigabytes_{}", vtype.name));
    crate::store::quotas::check(
        &txn,
        &svc.cfg.volume,
        &project,
        &[
            ("volumes", 1),
            ("gigabytes", v.size),
            ("per_volume_gigabytes", v.size),
            (tv.as_str(), 1),
            (tg.as_str(), v.size),
        ],
    )
    .await?;
    let got = backup::Entity::update_many()
        .col_expr(backup::Column::Status, Expr::value(bs::RESTORING))
        .col_expr(backup::Column::RestoreVolumeId, Expr::value(v.id.clone()))
        .col_expr(backup::Column::UpdatedAt, Expr::value(now()))
        .filter(backup::Column::Id.eq(b.id.as_str()))
        .filter(backup::Column::Status.eq(bs::AVAILABLE))
        .exec(&txn)
        .await?
        .rows_affected
        == 1;
    if !got {
        txn.rollback().await?;
        return Err(bad_backup("Backup status must be available"));
    }
    store_v::insert(&txn, v.clone()).await?;
    txn.commit().await?;
    let msg = crate::rpc::ScheduleVolume {
        volume_id: v.id.clone(),
        size: v.size,
        availability_zone: zone,
        extra_specs: crate::store::types::extra_specs(&vtype),
        source: crate::rpc::Source { backup_id: Some(b.id.clone()), ..Default::default() },
        must_host: None,
    };
    if let Err(e) = cast(svc, crate::rpc::SCHEDULER, &msg).await {
        tracing::warn!(volume = %v.id, error = %e, "could not reach the volume scheduler");
        store_v::set_status(&svc.db.write, &v.id, vs::ERROR).await?;
        transition(&svc.db.write, &b.id, &[bs::RESTORING], bs::AVAILABLE).await?;
    }
    Ok(v)
}

// --- actions --------------------------------------------------------------

async fn action(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    stratus_core::extract::Json(body): Body,
) -> Result<Response> {
    let Some((name, args)) = body.as_object().and_then(|o| o.iter().next()) else {
        return Err(bad("Malformed request body: an action is required"));
    };
    match name.as_str() {
        "os-reset_status" => {
            let b = load(&svc, &ctx, &id, "backup:get").await?;
            authorize(&svc, &ctx, "volume_extension:backup_admin_actions:reset_status", &b.project_id)?;
            let status = args.get("status").and_then(Value::as_str).ok_or_else(|| bad("Must specify 'status'"))?;
            if status != bs::AVAILABLE && status != bs::ERROR {
                return Err(bad(format!(
                    "Invalid input received: Backup status must be available or error, not {status}."
                )));
            }
            transition(&svc.db.write, &b.id, &[], status).await?;
            Ok(accepted_empty())
        }
        "os-force_delete" => {
            let b = load(&svc, &ctx, &id, "backup:get").await?;
            authorize(&svc, &ctx, "volume_extension:backup_admin_actions:force_delete", &b.project_id)?;
            delete_backup(&svc, &b, true).await?;
            Ok(accepted_empty())
        }
        other => Err(bad(format!("Invalid action {other}"))),
    }
}
