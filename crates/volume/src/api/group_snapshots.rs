//! Group snapshots (3.14+): `/v3/group_snapshots` create, list (summary and
//! detail), show, delete, and the `reset_status` action (3.19).
//!
//! A create snapshots every volume of the group: one snapshot row
//! (`creating`, with the group snapshot's id) per volume, each cast to its
//! volume's host as a single snapshot is; the group snapshot is `available`
//! once they all are (`error` when one fails). A delete removes them the
//! same way; the group snapshot goes once they are gone.

use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State as AxState};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use sea_orm::{ActiveModelTrait, TransactionTrait};
use serde_json::{Value, json};
use stratus_core::AuthContext;
use stratus_core::auth::Auth;
use stratus_core::extract::RawQuery;
use stratus_core::microversion::Microversion;

use crate::api::group_types::{body_obj, invalid, only, opt_text, require};
use crate::api::list::{self, ListQuery};
use crate::api::{Body, accepted_empty, allowed, authorize, is_admin, now, ok, project_of};
use crate::entity::group_snapshot::Model as GroupSnapshot;
use crate::entity::snapshot;
use crate::error::{Result, VolumeError, bad, not_found};
use crate::model::{snapshot_status as ss, volume_status as vs};
use crate::store::{self, groups as gstore};
use crate::{State, VolumeService};

pub fn routes() -> Router<State> {
    Router::new()
        .route("/v3/group_snapshots", get(list_summary).post(create))
        .route("/v3/group_snapshots/detail", get(list_detail))
        .route("/v3/group_snapshots/{id}", get(show).delete(delete))
        .route("/v3/group_snapshots/{id}/action", post(action))
}

const CREATE_POLICY: &str = "group:create_group_snapshot";
const DELETE_POLICY: &str = "group:delete_group_snapshot";
const GET_POLICY: &str = "group:get_group_snapshot";
const GET_ALL_POLICY: &str = "group:get_all_group_snapshots";
const RESET_STATUS_POLICY: &str = "group:reset_group_snapshot_status";
const PROJECT_ATTRIBUTE_POLICY: &str = "group:group_snapshot_project_attribute";

/// Cinder's `GroupSnapshotStatus`.
pub mod status {
    pub const CREATING: &str = "creating";
    pub const AVAILABLE: &str = "available";
    pub const DELETING: &str = "deleting";
    pub const ERROR: &str = "error";
    pub const ERROR_DELETING: &str = "error_deleting";
    pub const DELETED: &str = "deleted";
    pub const ALL: &[&str] = &[CREATING, AVAILABLE, DELETING, ERROR, ERROR_DELETING, DELETED];
}

const WATCH_LIMIT: Duration = Duration::from_secs(900);
const WATCH_EVERY: Duration = Duration::from_millis(200);

pub fn group_snapshot_not_found(id: &str) -> VolumeError {
    not_found(format!("GroupSnapshot {id} could not be found."))
}

fn detail(svc: &VolumeService, ctx: &AuthContext, mv: Microversion, gs: &GroupSnapshot) -> Value {
    let mut v = json!({
        "id": gs.id,
        "group_id": gs.group_id,
        "group_type_id": gs.group_type_id,
        "status": gs.status,
        "created_at": gs.created_at,
        "name": gs.name,
        "description": gs.description,
    });
    if mv.at_least(3, 58) && allowed(svc, ctx, PROJECT_ATTRIBUTE_POLICY, &gs.project_id) {
        v["project_id"] = json!(gs.project_id);
    }
    v
}

fn summary(gs: &GroupSnapshot) -> Value {
    json!({"id": gs.id, "name": gs.name, "group_type_id": gs.group_type_id})
}

/// The group snapshot `id` as the caller may see it (404), once `rule` allows them (403).
pub async fn load(svc: &VolumeService, ctx: &AuthContext, id: &str, rule: &str) -> Result<GroupSnapshot> {
    let gs = gstore::get_snapshot(&svc.db.read, id).await?.ok_or_else(|| group_snapshot_not_found(id))?;
    if !is_admin(svc, ctx) && gs.project_id != project_of(ctx) {
        return Err(group_snapshot_not_found(id));
    }
    authorize(svc, ctx, rule, &gs.project_id)?;
    Ok(gs)
}

// ---- list and show ----

const SORTABLE: &[&str] = &["id", "name", "status", "created_at", "updated_at", "group_id", "group_type_id"];

async fn do_list(
    svc: &VolumeService,
    ctx: &AuthContext,
    mv: Microversion,
    pairs: &[(String, String)],
    detailed: bool,
) -> Result<Value> {
    require(mv, 14)?;
    let project = project_of(ctx);
    authorize(svc, ctx, GET_ALL_POLICY, &project)?;
    let admin = is_admin(svc, ctx);
    let mut q = ListQuery::parse(pairs)?;
    let asked_project = q.take("project_id");
    crate::api::resource_filters::restrict(&mut q, "group_snapshot", admin, mv)?;
    let scope = if admin && q.all_tenants {
        None
    } else if admin && asked_project.is_some() {
        asked_project
    } else {
        Some(project)
    };
    let items: Vec<Value> = gstore::list_snapshots(&svc.db.read, scope.as_deref())
        .await?
        .iter()
        .map(|gs| {
            let mut v = detail(svc, ctx, mv, gs);
            v["updated_at"] = json!(gs.updated_at);
            v
        })
        .collect();
    let base = format!("{}/v3/group_snapshots{}", svc.base_url, if detailed { "/detail" } else { "" });
    let (page, links, _) = list::page(items, &q, SORTABLE, &base)?;
    let page: Vec<Value> = page
        .into_iter()
        .map(|mut v| {
            if detailed {
                if let Some(o) = v.as_object_mut() {
                    o.remove("updated_at");
                }
                v
            } else {
                json!({"id": v["id"], "name": v["name"]})
            }
        })
        .collect();
    Ok(list::answer("group_snapshots", page, links, None))
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

async fn show(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    Path(id): Path<String>,
) -> Result<Response> {
    require(mv, 14)?;
    let gs = load(&svc, &ctx, &id, GET_POLICY).await?;
    Ok(ok(json!({"group_snapshot": detail(&svc, &ctx, mv, &gs)})))
}

// ---- create ----

async fn create(AxState(svc): AxState<State>, Auth(ctx): Auth, mv: Microversion, body: Body) -> Result<Response> {
    require(mv, 14)?;
    let obj = body_obj(&body.0, "group_snapshot")?;
    only("group_snapshot", obj, &["name", "description", "group_id"])?;
    let name = opt_text("name", obj.get("name"), 255)?;
    let description = opt_text("description", obj.get("description"), 255)?;
    let group_id = match obj.get("group_id") {
        Some(Value::String(s)) if crate::api::is_uuid_like(s) => s.clone(),
        Some(other) => return Err(invalid("group_id", format!("Value: {other}. {other} is not a 'uuid'"))),
        None => return Err(invalid("group_snapshot", "'group_id' is a required property")),
    };
    let g = crate::api::groups::load(&svc, &ctx, &group_id, "group:get").await?;
    authorize(&svc, &ctx, CREATE_POLICY, &g.project_id)?;
    authorize(&svc, &ctx, "volume:create_snapshot", &g.project_id)?;
    let db = &svc.db;
    let vols = gstore::volumes_of(&db.read, &g.id).await?;
    for v in &vols {
        if v.host.is_none() {
            return Err(bad(
                "Invalid volume: The snapshot cannot be created because volume has not been scheduled to any host.",
            ));
        }
        if v.status == vs::MAINTENANCE {
            return Err(bad("Invalid volume: The snapshot cannot be created when the volume is in maintenance mode."));
        }
        if v.status == vs::ERROR {
            return Err(bad("Invalid volume: The snapshot cannot be created when the volume is in error status."));
        }
        if v.status != vs::AVAILABLE && v.status != vs::IN_USE {
            return Err(bad(format!(
                "Invalid volume: Volume {} status must be available or in-use, but current status is: {}.",
                v.id, v.status
            )));
        }
    }
    let gs = GroupSnapshot {
        id: uuid::Uuid::new_v4().to_string(),
        group_id: g.id.clone(),
        project_id: g.project_id.clone(),
        user_id: ctx.user_id.clone(),
        name: name.clone(),
        description: description.clone(),
        status: status::CREATING.into(),
        group_type_id: g.group_type_id.clone(),
        created_at: now(),
        updated_at: None,
    };
    let mut snaps = Vec::new();
    let mut deltas: Vec<(String, i64)> = Vec::new();
    let mut add = |k: String, d: i64| match deltas.iter_mut().find(|(dk, _)| *dk == k) {
        Some(slot) => slot.1 += d,
        None => deltas.push((k, d)),
    };
    for v in &vols {
        let type_name = match &v.volume_type_id {
            Some(t) => store::types::get_by_id(&db.read, t).await?.map(|t| t.name),
            None => None,
        };
        add("snapshots".into(), 1);
        add("gigabytes".into(), v.size);
        if let Some(t) = &type_name {
            add(format!("snapshots_{t}"), 1);
            add(format!("gigabytes_{t}"), v.size);
        }
        snaps.push(snapshot::Model {
            id: uuid::Uuid::new_v4().to_string(),
            volume_id: v.id.clone(),
            project_id: v.project_id.clone(),
            user_id: ctx.user_id.clone(),
            name: name.clone(),
            description: description.clone(),
            status: ss::CREATING.into(),
            progress: "0%".into(),
            size: v.size,
            metadata: "{}".into(),
            volume_type_id: v.volume_type_id.clone(),
            group_snapshot_id: Some(gs.id.clone()),
            provider_location: None,
            created_at: now(),
            updated_at: None,
        });
    }
    let txn = db.write.begin().await?;
    let refs: Vec<(&str, i64)> = deltas.iter().map(|(k, d)| (k.as_str(), *d)).collect();
    store::quotas::check(&txn, &svc.cfg.volume, &g.project_id, &refs).await?;
    gstore::insert_snapshot(&txn, &gs).await?;
    for s in &snaps {
        snapshot::ActiveModel::from(s.clone()).insert(&txn).await?;
    }
    txn.commit().await?;

    for (s, v) in snaps.iter().zip(&vols) {
        let host = v.host.clone().unwrap_or_default();
        let msg = crate::rpc::CreateSnapshot { snapshot_id: s.id.clone(), volume_id: v.id.clone() };
        let sent = match svc.deps() {
            Ok(deps) => deps
                .bus
                .cast(&crate::rpc::host_topic(&host, "snapshot"), &msg, &format!("req-{}", uuid::Uuid::new_v4()))
                .await
                .map_err(|e| anyhow::anyhow!("{e}")),
            Err(e) => Err(anyhow::anyhow!("{e}")),
        };
        if let Err(e) = sent {
            tracing::warn!(snapshot = %s.id, error = %e, "could not reach the volume host");
            crate::api::snapshots::transition(&db.write, &s.id, &[ss::CREATING], ss::ERROR).await?;
        }
    }
    watch_creating(svc.clone(), gs.id.clone());
    Ok((axum::http::StatusCode::ACCEPTED, axum::Json(json!({"group_snapshot": summary(&gs)}))).into_response())
}

/// Follow a new group snapshot until its snapshots are taken: `available`
/// when all are, `error` when one fails.
fn watch_creating(svc: State, id: String) {
    tokio::spawn(async move {
        let start = tokio::time::Instant::now();
        while start.elapsed() < WATCH_LIMIT {
            let snaps = match gstore::snapshots_of(&svc.db.read, &id).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(group_snapshot = %id, error = %e, "group snapshot watcher");
                    tokio::time::sleep(WATCH_EVERY).await;
                    continue;
                }
            };
            let to = if snaps.iter().any(|s| s.status.starts_with("error")) {
                status::ERROR
            } else if snaps.iter().all(|s| s.status == ss::AVAILABLE) {
                status::AVAILABLE
            } else {
                tokio::time::sleep(WATCH_EVERY).await;
                continue;
            };
            if let Err(e) = gstore::snapshot_transition(&svc.db.write, &id, &[status::CREATING], to).await {
                tracing::warn!(group_snapshot = %id, error = %e, "group snapshot watcher");
            }
            return;
        }
        let _ = gstore::snapshot_transition(&svc.db.write, &id, &[status::CREATING], status::ERROR).await;
    });
}

/// Follow a group snapshot being deleted: the row goes once its snapshots
/// are gone; `error_deleting` when one fails to go.
fn watch_deleting(svc: State, id: String) {
    tokio::spawn(async move {
        let start = tokio::time::Instant::now();
        while start.elapsed() < WATCH_LIMIT {
            let snaps = match gstore::snapshots_of(&svc.db.read, &id).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(group_snapshot = %id, error = %e, "group snapshot watcher");
                    tokio::time::sleep(WATCH_EVERY).await;
                    continue;
                }
            };
            if snaps.is_empty() {
                if let Err(e) = gstore::delete_snapshot(&svc.db.write, &id).await {
                    tracing::warn!(group_snapshot = %id, error = %e, "group snapshot watcher");
                }
                return;
            }
            if snaps.iter().any(|s| s.status == ss::ERROR_DELETING) {
                let _ =
                    gstore::snapshot_transition(&svc.db.write, &id, &[status::DELETING], status::ERROR_DELETING).await;
                return;
            }
            tokio::time::sleep(WATCH_EVERY).await;
        }
        let _ = gstore::snapshot_transition(&svc.db.write, &id, &[status::DELETING], status::ERROR_DELETING).await;
    });
}

// ---- delete ----

async fn delete(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    Path(id): Path<String>,
) -> Result<Response> {
    require(mv, 14)?;
    let gs = load(&svc, &ctx, &id, DELETE_POLICY).await?;
    let db = &svc.db;
    let busy = gstore::source_of_creating(&db.read, None, Some(&gs.id)).await?;
    if busy
        || !gstore::snapshot_transition(&db.write, &gs.id, &[status::AVAILABLE, status::ERROR], status::DELETING)
            .await?
    {
        return Err(bad(
            "Invalid GroupSnapshot: GroupSnapshot status must be available or error, and no Group can be currently using it as source for its creation.",
        ));
    }
    let snaps = gstore::snapshots_of(&db.read, &gs.id).await?;
    if snaps.is_empty() {
        gstore::delete_snapshot(&db.write, &gs.id).await?;
        return Ok(accepted_empty());
    }
    for s in &snaps {
        if let Err(e) = crate::api::snapshots::delete_snapshot(&svc, s, true).await {
            tracing::warn!(group_snapshot = %gs.id, snapshot = %s.id, error = %e, "could not delete a snapshot of the group snapshot");
        }
    }
    watch_deleting(svc.clone(), gs.id.clone());
    Ok(accepted_empty())
}

// ---- actions ----

async fn action(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    Path(id): Path<String>,
    body: Body,
) -> Result<Response> {
    require(mv, 14)?;
    let Some(top) = body.0.as_object() else {
        return Err(bad("Malformed request body"));
    };
    let Some((name, _)) = top.iter().next() else {
        return Err(bad("Malformed request body"));
    };
    if name != "reset_status" || !mv.at_least(3, 19) {
        return Err(bad(format!("There is no such action: {name}")));
    }
    let obj = body_obj(&body.0, "reset_status")?;
    only("reset_status", obj, &["status"])?;
    let to = match obj.get("status") {
        Some(Value::String(s)) => s.to_lowercase(),
        Some(other) => return Err(invalid("status", format!("Value: {other}. {other} is not of type 'string'"))),
        None => return Err(invalid("reset_status", "'status' is a required property")),
    };
    if !status::ALL.contains(&to.as_str()) {
        return Err(invalid(
            "status",
            format!("Value: {to}. Group snapshot status: {to} is invalid, valid statuses are: {:?}.", status::ALL),
        ));
    }
    let gs = load(&svc, &ctx, &id, RESET_STATUS_POLICY).await?;
    gstore::snapshot_transition(&svc.db.write, &gs.id, &[], &to).await?;
    Ok(accepted_empty())
}
