//! Snapshots: list (summary and detail) with filters and paging, create
//! (from an available volume, or an in-use one with `force`), show, update,
//! delete, metadata, and the actions `os-reset_status`, `os-force_delete`
//! and `os-update_snapshot_status`.
//!
//! A create writes the snapshot `creating` (under the project's quota lock)
//! and casts it to the volume's host, which sets it `available` or `error`.

use axum::Router;
use axum::extract::{Path, State as AxState};
use axum::response::Response;
use axum::routing::{get, post};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, TransactionTrait};
use serde_json::{Map, Value, json};
use stratus_core::AuthContext;
use stratus_core::auth::Auth;
use stratus_core::extract::RawQuery;
use stratus_core::microversion::Microversion;

use crate::api::list::{self, ListQuery};
use crate::api::{
    Body, accepted, accepted_empty, allowed, authorize, body_object, check_id, check_len, is_admin, metadata,
    metadata_from, now, ok, opt_bool, opt_str, project_of,
};
use crate::entity::snapshot::{self, Model as Snapshot};
use crate::error::{Result, VolumeError, bad, invalid_volume, missing};
use crate::model::{snapshot_status as ss, volume_status as vs};
use crate::store::volumes as store_v;
use crate::{State, VolumeService};

pub fn routes() -> Router<State> {
    Router::new()
        .route("/v3/snapshots", get(list_summary).post(create))
        .route("/v3/snapshots/detail", get(list_detail))
        .route("/v3/snapshots/{id}", get(show).put(update).delete(delete))
        .route("/v3/snapshots/{id}/metadata", get(meta_show).post(meta_merge).put(meta_replace))
        .route("/v3/snapshots/{id}/metadata/{key}", get(meta_item).put(meta_item_set).delete(meta_item_delete))
        .route("/v3/snapshots/{id}/action", post(action))
}

// --- helpers shared with backups ---------------------------------------------

/// `display_name` sorts as `name` (Cinder's old name for it).
pub(crate) fn display_name_sort(q: &mut ListQuery) {
    for (k, _) in q.sort.iter_mut() {
        if k == "display_name" {
            *k = "name".into();
        }
    }
}

// --- views ----------------------------------------------------------------

/// Cinder's snapshot view at `mv`; `extended` adds the
/// `os-extended-snapshot-attributes` (show and detail only).
pub fn render(svc: &VolumeService, ctx: &AuthContext, mv: Microversion, s: &Snapshot, extended: bool) -> Value {
    let mut o = json!({
        "id": s.id,
        "created_at": s.created_at,
        "updated_at": s.updated_at,
        "name": s.name,
        "description": s.description,
        "volume_id": s.volume_id,
        "status": s.status,
        "size": s.size,
        "metadata": Value::Object(store_v::json_map(&s.metadata)),
    });
    let Some(m) = o.as_object_mut() else { return o };
    if mv.at_least(3, 14) {
        m.insert("group_snapshot_id".into(), json!(s.group_snapshot_id));
    }
    if mv.at_least(3, 41) {
        m.insert("user_id".into(), json!(s.user_id));
    }
    if mv.at_least(3, 65) {
        m.insert("consumes_quota".into(), json!(true));
    }
    if extended && allowed(svc, ctx, "volume_extension:extended_snapshot_attributes", &s.project_id) {
        m.insert("os-extended-snapshot-attributes:progress".into(), json!(s.progress));
        m.insert("os-extended-snapshot-attributes:project_id".into(), json!(s.project_id));
    }
    o
}

/// The snapshot `id` if the caller may see it and `rule` allows them (404 / 403).
pub async fn load(svc: &VolumeService, ctx: &AuthContext, id: &str, rule: &str) -> Result<Snapshot> {
    check_id("Snapshot", id)?;
    let s = snapshot::Entity::find_by_id(id.to_string())
        .one(&svc.db.read)
        .await?
        .filter(|s| is_admin(svc, ctx) || s.project_id == project_of(ctx))
        .ok_or_else(|| missing("Snapshot", id))?;
    authorize(svc, ctx, rule, &s.project_id)?;
    Ok(s)
}

async fn save(svc: &VolumeService, s: &Snapshot) -> Result<()> {
    let mut am = snapshot::ActiveModel::from(s.clone()).reset_all();
    am.id = sea_orm::ActiveValue::Unchanged(s.id.clone());
    snapshot::Entity::update(am).exec(&svc.db.write).await?;
    Ok(())
}

/// Set a snapshot's status to `to` if it is one of `from` now (any when empty).
pub async fn transition<C: sea_orm::ConnectionTrait>(conn: &C, id: &str, from: &[&str], to: &str) -> Result<bool> {
    let mut q = snapshot::Entity::update_many()
        .col_expr(snapshot::Column::Status, Expr::value(to))
        .col_expr(snapshot::Column::UpdatedAt, Expr::value(now()))
        .filter(snapshot::Column::Id.eq(id));
    if !from.is_empty() {
        q = q.filter(snapshot::Column::Status.is_in(from.iter().copied()));
    }
    Ok(q.exec(conn).await?.rows_affected == 1)
}

// --- list -----------------------------------------------------------------

const SORTABLE: &[&str] = &["id", "name", "status", "size", "created_at", "updated_at", "volume_id", "project_id"];

async fn do_list(
    svc: &State,
    ctx: &AuthContext,
    mv: Microversion,
    pairs: &[(String, String)],
    detail: bool,
) -> Result<Value> {
    let mut q = ListQuery::parse(pairs)?;
    let admin = is_admin(svc, ctx);
    let project = project_of(ctx);
    authorize(svc, ctx, "volume:get_all_snapshots", &project)?;
    crate::api::resource_filters::restrict(&mut q, "snapshot", admin, mv)?;
    if let Some(n) = q.take("display_name") {
        q.filters.push(("name".into(), n));
    }
    display_name_sort(&mut q);
    let asked_project = q.take("project_id");
    let mut find = snapshot::Entity::find();
    if !(admin && q.all_tenants) {
        let scope = if admin { asked_project.unwrap_or(project) } else { project };
        find = find.filter(snapshot::Column::ProjectId.eq(scope));
    }
    let snaps = find.all(&svc.db.read).await?;
    let items: Vec<Value> = snaps
        .iter()
        .map(|s| {
            let mut v = render(svc, ctx, mv, s, detail);
            // sortable by project, never shown unless the view holds it
            v["project_id"] = json!(s.project_id);
            v
        })
        .collect();
    let base = format!("{}/v3/snapshots{}", svc.base_url, if detail { "/detail" } else { "" });
    let (page, links, count) = list::page(items, &q, SORTABLE, &base)?;
    let page: Vec<Value> = page
        .into_iter()
        .map(|mut v| {
            if let Some(o) = v.as_object_mut() {
                o.remove("project_id");
            }
            v
        })
        .collect();
    Ok(list::answer("snapshots", page, links, (q.with_count && mv.at_least(3, 45)).then_some(count)))
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

// --- create, show, update, delete ---------------------------------------------

async fn create(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    stratus_core::extract::Json(body): Body,
) -> Result<Response> {
    let obj = body_object(&body, "snapshot")?;
    let project = project_of(&ctx);
    authorize(&svc, &ctx, "volume:create_snapshot", &project)?;
    // no volume is a volume that cannot be found (as Cinder answers)
    let volume_id = opt_str(obj, "volume_id")?.ok_or_else(|| missing("Volume", "None"))?;
    let force = opt_bool(obj, "force")?;
    let name = opt_str(obj, "name")?.or(opt_str(obj, "display_name")?);
    let description = opt_str(obj, "description")?.or(opt_str(obj, "display_description")?);
    check_len("name", &name)?;
    check_len("description", &description)?;
    let metadata = match obj.get("metadata") {
        None | Some(Value::Null) => Map::new(),
        Some(m) => metadata_from(m)?,
    };
    check_id("Volume", &volume_id)?;
    let v = store_v::visible(&svc.db.read, &volume_id, &project, is_admin(&svc, &ctx)).await?;
    if v.status == vs::MAINTENANCE {
        return Err(invalid_volume("Volume is in maintenance mode; a snapshot cannot be taken."));
    }
    if !force && v.status != vs::AVAILABLE {
        return Err(invalid_volume(format!(
            "Volume {} status must be available, but current status is: {}.",
            v.id, v.status
        )));
    }
    if force && v.status != vs::AVAILABLE && v.status != vs::IN_USE {
        return Err(invalid_volume(format!(
            "Volume {} status must be available or in-use, but current status is: {}.",
            v.id, v.status
        )));
    }
    let Some(host) = v.host.clone() else {
        return Err(invalid_volume(format!("Volume {} has no host yet.", v.id)));
    };
    let type_name = match &v.volume_type_id {
        Some(t) => crate::store::types::get_by_id(&svc.db.read, t).await?.map(|t| t.name),
        None => None,
    };
    let id = uuid::Uuid::new_v4().to_string();
    let s = Snapshot {
        id: id.clone(),
        volume_id: v.id.clone(),
        // the snapshot belongs to the volume's project (an admin may snapshot another's volume)
        project_id: v.project_id.clone(),
        user_id: ctx.user_id.clone(),
        name,
        description,
        status: ss::CREATING.into(),
        progress: "0%".into(),
        size: v.size,
        metadata: store_v::to_text(&metadata),
        volume_type_id: v.volume_type_id.clone(),
        group_snapshot_id: None,
        provider_location: None,
        created_at: now(),
        updated_at: None,
    };
    let txn = svc.db.write.begin().await?;
    let mut deltas: Vec<(String, i64)> = vec![("snapshots".into(), 1), ("gigabytes".into(), v.size)];
    if let Some(t) = &type_name {
        deltas.push((format!("snapshots_{t}"), 1));
        deltas.push((format!("gigabytes_{t}"), v.size));
    }
    let refs: Vec<(&str, i64)> = deltas.iter().map(|(k, d)| (k.as_str(), *d)).collect();
    crate::store::quotas::check(&txn, &svc.cfg.volume, &s.project_id, &refs).await?;
    snapshot::ActiveModel::from(s.clone()).insert(&txn).await?;
    txn.commit().await?;

    let msg = crate::rpc::CreateSnapshot { snapshot_id: id.clone(), volume_id: v.id.clone() };
    let sent = match svc.deps() {
        Ok(deps) => deps
            .bus
            .cast(&crate::rpc::host_topic(&host, "snapshot"), &msg, &format!("req-{}", uuid::Uuid::new_v4()))
            .await
            .map_err(|e| anyhow::anyhow!("{e}")),
        Err(e) => Err(anyhow::anyhow!("{e}")),
    };
    if let Err(e) = sent {
        tracing::warn!(snapshot = %id, error = %e, "could not reach the volume host");
        transition(&svc.db.write, &id, &[ss::CREATING], ss::ERROR).await?;
    }
    Ok(accepted(json!({"snapshot": render(&svc, &ctx, mv, &s, false)})))
}

async fn show(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    Path(id): Path<String>,
) -> Result<Response> {
    let s = load(&svc, &ctx, &id, "volume:get_snapshot").await?;
    Ok(ok(json!({"snapshot": render(&svc, &ctx, mv, &s, true)})))
}

async fn update(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    Path(id): Path<String>,
    stratus_core::extract::Json(body): Body,
) -> Result<Response> {
    let obj = body_object(&body, "snapshot")?;
    let mut s = load(&svc, &ctx, &id, "volume:update_snapshot").await?;
    let keys = ["name", "description", "display_name", "display_description"];
    if obj.is_empty() || !obj.keys().any(|k| keys.contains(&k.as_str())) {
        return Err(bad("Invalid input received: the body must hold name or description."));
    }
    if obj.contains_key("name") || obj.contains_key("display_name") {
        s.name = opt_str(obj, "name")?.or(opt_str(obj, "display_name")?);
        check_len("name", &s.name)?;
    }
    if obj.contains_key("description") || obj.contains_key("display_description") {
        s.description = opt_str(obj, "description")?.or(opt_str(obj, "display_description")?);
        check_len("description", &s.description)?;
    }
    s.updated_at = Some(now());
    save(&svc, &s).await?;
    Ok(ok(json!({"snapshot": render(&svc, &ctx, mv, &s, false)})))
}

async fn delete(AxState(svc): AxState<State>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Response> {
    let s = load(&svc, &ctx, &id, "volume:delete_snapshot").await?;
    delete_snapshot(&svc, &s, false).await?;
    Ok(accepted_empty())
}

/// Start deleting `s`: `deleting` and a cast to its volume's host (a
/// snapshot never taken is removed at once).
pub async fn delete_snapshot(svc: &VolumeService, s: &Snapshot, force: bool) -> Result<()> {
    let from: Vec<&str> = if force { Vec::new() } else { vec![ss::AVAILABLE, ss::ERROR] };
    if !force && !from.contains(&s.status.as_str()) {
        return Err(bad(
            "Invalid snapshot: Snapshot status must be available or error and must not be part of a group.",
        ));
    }
    let dependents = crate::entity::backup::Entity::find()
        .filter(crate::entity::backup::Column::SnapshotId.eq(s.id.as_str()))
        .filter(crate::entity::backup::Column::Status.is_in([crate::model::backup_status::CREATING]))
        .one(&svc.db.read)
        .await?;
    if dependents.is_some() && !force {
        return Err(bad("Invalid snapshot: a backup of this snapshot is being made."));
    }
    if !transition(&svc.db.write, &s.id, &from, ss::DELETING).await? {
        return Err(bad("Invalid snapshot: Snapshot status changed meanwhile; try again."));
    }
    let host = store_v::get(&svc.db.read, &s.volume_id).await?.and_then(|v| v.host);
    match (&s.provider_location, host) {
        (_, Some(host)) => {
            let deps = svc.deps()?;
            let msg = crate::rpc::DeleteSnapshot { snapshot_id: s.id.clone() };
            if let Err(e) = deps
                .bus
                .cast(&crate::rpc::host_topic(&host, "delete_snapshot"), &msg, &format!("req-{}", uuid::Uuid::new_v4()))
                .await
            {
                transition(&svc.db.write, &s.id, &[], ss::ERROR_DELETING).await?;
                return Err(VolumeError::Internal(e.into()));
            }
        }
        (None, None) => {
            snapshot::Entity::delete_by_id(s.id.clone()).exec(&svc.db.write).await?;
        }
        (Some(_), None) => {
            transition(&svc.db.write, &s.id, &[], ss::ERROR_DELETING).await?;
            return Err(bad("Invalid snapshot: its volume has no host to remove it."));
        }
    }
    Ok(())
}

// --- actions --------------------------------------------------------------

/// Every status os-reset_status accepts for a snapshot.
const STATUSES: &[&str] =
    &["creating", "available", "deleting", "error", "error_deleting", "unmanaging", "backing-up", "restoring"];

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
            let s = load(&svc, &ctx, &id, "volume:get_snapshot").await?;
            authorize(&svc, &ctx, "volume_extension:snapshot_admin_actions:reset_status", &s.project_id)?;
            let status = args.get("status").and_then(Value::as_str).ok_or_else(|| bad("Must specify 'status'"))?;
            if !STATUSES.contains(&status) {
                return Err(bad(format!("Invalid input received: Invalid status '{status}' for a snapshot.")));
            }
            transition(&svc.db.write, &s.id, &[], status).await?;
            Ok(accepted_empty())
        }
        "os-force_delete" => {
            let s = load(&svc, &ctx, &id, "volume:get_snapshot").await?;
            authorize(&svc, &ctx, "volume_extension:snapshot_admin_actions:force_delete", &s.project_id)?;
            delete_snapshot(&svc, &s, true).await?;
            Ok(accepted_empty())
        }
        "os-update_snapshot_status" => {
            let mut s = load(&svc, &ctx, &id, "volume:get_snapshot").await?;
            authorize(&svc, &ctx, "snapshot_extension:snapshot_actions:update_snapshot_status", &s.project_id)?;
            let status =
                args.get("status").and_then(Value::as_str).ok_or_else(|| bad("'status' must be specified."))?;
            let allowed_to: &[&str] = match s.status.as_str() {
                ss::CREATING => &[ss::CREATING, ss::AVAILABLE, ss::ERROR],
                ss::DELETING => &[ss::DELETING, ss::ERROR_DELETING],
                other => {
                    return Err(bad(format!(
                        "Invalid snapshot: Snapshot status {other} not allowed for update_snapshot_status"
                    )));
                }
            };
            if !allowed_to.contains(&status) {
                return Err(bad(format!(
                    "Invalid snapshot: Provided snapshot status {status} not allowed for snapshot with status {}.",
                    s.status
                )));
            }
            s.status = status.to_string();
            if let Some(p) = args.get("progress") {
                s.progress = p.as_str().map(str::to_string).unwrap_or_else(|| p.to_string());
            }
            s.updated_at = Some(now());
            save(&svc, &s).await?;
            Ok(accepted_empty())
        }
        other => Err(bad(format!("Invalid action {other}"))),
    }
}

// --- metadata -------------------------------------------------------------

async fn write_meta(svc: &VolumeService, s: &mut Snapshot, m: Map<String, Value>) -> Result<()> {
    s.metadata = store_v::to_text(&m);
    s.updated_at = Some(now());
    save(svc, s).await
}

async fn meta_show(AxState(svc): AxState<State>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Response> {
    let s = load(&svc, &ctx, &id, "volume:get_snapshot").await?;
    Ok(metadata::show(store_v::json_map(&s.metadata)))
}

async fn meta_merge(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    stratus_core::extract::Json(body): Body,
) -> Result<Response> {
    let mut s = load(&svc, &ctx, &id, "volume:snapshot_metadata").await?;
    let (m, answer) = metadata::merge(store_v::json_map(&s.metadata), &body)?;
    write_meta(&svc, &mut s, m).await?;
    Ok(answer)
}

async fn meta_replace(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    stratus_core::extract::Json(body): Body,
) -> Result<Response> {
    let mut s = load(&svc, &ctx, &id, "volume:snapshot_metadata").await?;
    let (m, answer) = metadata::replace(&body)?;
    write_meta(&svc, &mut s, m).await?;
    Ok(answer)
}

async fn meta_item(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    Path((id, key)): Path<(String, String)>,
) -> Result<Response> {
    let s = load(&svc, &ctx, &id, "volume:get_snapshot").await?;
    metadata::item(&store_v::json_map(&s.metadata), &key)
}

async fn meta_item_set(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    Path((id, key)): Path<(String, String)>,
    stratus_core::extract::Json(body): Body,
) -> Result<Response> {
    let mut s = load(&svc, &ctx, &id, "volume:snapshot_metadata").await?;
    let (m, answer) = metadata::item_set(store_v::json_map(&s.metadata), &key, &body)?;
    write_meta(&svc, &mut s, m).await?;
    Ok(answer)
}

async fn meta_item_delete(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    Path((id, key)): Path<(String, String)>,
) -> Result<Response> {
    let mut s = load(&svc, &ctx, &id, "volume:snapshot_metadata").await?;
    let (m, answer) = metadata::item_delete(store_v::json_map(&s.metadata), &key)?;
    write_meta(&svc, &mut s, m).await?;
    Ok(answer)
}
