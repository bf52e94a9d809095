//! Generic volume groups (3.13+): `/v3/groups` create, list (summary and
//! detail), show, update (name, description, `add_volumes`,
//! `remove_volumes`), and the actions `delete` (with `delete-volumes`),
//! `reset_status` (3.20); `POST /v3/groups/action` `create-from-src` (3.14:
//! from a group snapshot or another group).
//!
//! A group needs no backend work here: a new group is `available` at once.
//! Volumes join it at create (`group_id` in the volume create body, see
//! [`admit_new_volume`]) or through update. A group made from a source gets
//! one new volume per source volume (a clone) or per snapshot of the group
//! snapshot, placed by the scheduler next to its source; the group is
//! `creating` until they are all made (`available`), or one fails (`error`).
//! A group being deleted with its volumes stays `deleting` until they are
//! gone.

use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State as AxState};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use sea_orm::TransactionTrait;
use serde_json::{Map, Value, json};
use stratus_core::AuthContext;
use stratus_core::auth::Auth;
use stratus_core::extract::RawQuery;
use stratus_core::microversion::Microversion;

use crate::api::group_types::{body_obj, invalid, only, opt_text, require};
use crate::api::list::{self, ListQuery};
use crate::api::types::parse_bool;
use crate::api::{Body, accepted_empty, allowed, authorize, is_admin, now, ok, project_of};
use crate::entity::group::Model as Group;
use crate::entity::volume::Model as Volume;
use crate::entity::{group_type, snapshot};
use crate::error::{Result, VolumeError, bad, invalid_volume, missing, not_found, over_quota};
use crate::model::volume_status as vs;
use crate::rpc::{ScheduleVolume, Source};
use crate::store::{self, groups as gstore, volumes as store_v};
use crate::{State, VolumeService};

pub fn routes() -> Router<State> {
    Router::new()
        .route("/v3/groups", get(list_summary).post(create))
        .route("/v3/groups/detail", get(list_detail))
        .route("/v3/groups/action", post(create_from_src))
        .route("/v3/groups/{id}", get(show).put(update))
        .route("/v3/groups/{id}/action", post(action))
}

const CREATE_POLICY: &str = "group:create";
const UPDATE_POLICY: &str = "group:update";
const GET_POLICY: &str = "group:get";
const GET_ALL_POLICY: &str = "group:get_all";
const DELETE_POLICY: &str = "group:delete";
const RESET_STATUS_POLICY: &str = "group:reset_status";
const PROJECT_ATTRIBUTE_POLICY: &str = "group:group_project_attribute";

/// Cinder's `GroupStatus`.
pub mod status {
    pub const CREATING: &str = "creating";
    pub const AVAILABLE: &str = "available";
    pub const DELETING: &str = "deleting";
    pub const ERROR: &str = "error";
    pub const ERROR_DELETING: &str = "error_deleting";
    pub const UPDATING: &str = "updating";
    pub const IN_USE: &str = "in-use";
    pub const DELETED: &str = "deleted";
    pub const ALL: &[&str] = &[CREATING, AVAILABLE, DELETING, ERROR, ERROR_DELETING, UPDATING, IN_USE, DELETED];
}

const VALID_REMOVE_STATUS: &[&str] = &["available", "in-use", "error", "error_deleting"];
const VALID_ADD_STATUS: &[&str] = &["available", "in-use"];

/// How long a watcher waits for a group's volumes (made or removed).
const WATCH_LIMIT: Duration = Duration::from_secs(900);
const WATCH_EVERY: Duration = Duration::from_millis(200);

pub fn group_not_found(id: &str) -> VolumeError {
    not_found(format!("Group {id} could not be found."))
}

fn invalid_group(reason: impl std::fmt::Display) -> VolumeError {
    bad(format!("Invalid group: {reason}"))
}

/// Cinder's detailed group view at `mv`.
fn detail(
    svc: &VolumeService,
    ctx: &AuthContext,
    mv: Microversion,
    g: &Group,
    types: &[String],
    volumes: Option<&[String]>,
) -> Value {
    let mut v = json!({
        "id": g.id,
        "status": g.status,
        "availability_zone": g.availability_zone,
        "created_at": g.created_at,
        "name": g.name,
        "description": g.description,
        "group_type": g.group_type_id,
        "volume_types": types,
    });
    if mv.at_least(3, 14) {
        v["group_snapshot_id"] = json!(g.group_snapshot_id);
        v["source_group_id"] = json!(g.source_group_id);
    }
    if mv.at_least(3, 25)
        && let Some(vols) = volumes
    {
        v["volumes"] = json!(vols);
    }
    if mv.at_least(3, 38) {
        v["replication_status"] = json!(g.replication_status);
    }
    if mv.at_least(3, 58) && allowed(svc, ctx, PROJECT_ATTRIBUTE_POLICY, &g.project_id) {
        v["project_id"] = json!(g.project_id);
    }
    v
}

fn summary(g: &Group) -> Value {
    json!({"id": g.id, "name": g.name})
}

/// The group `id` as the caller may see it (404), once `rule` allows them (403).
pub async fn load(svc: &VolumeService, ctx: &AuthContext, id: &str, rule: &str) -> Result<Group> {
    let g = gstore::get(&svc.db.read, id).await?.ok_or_else(|| group_not_found(id))?;
    if !is_admin(svc, ctx) && g.project_id != project_of(ctx) {
        return Err(group_not_found(id));
    }
    authorize(svc, ctx, rule, &g.project_id)?;
    Ok(g)
}

/// For the volume create (3.13+, `group_id` in the body): the group the new
/// volume joins, checked as Cinder does (visible to the caller, `available`
/// or `creating`, and allowing the volume's type). Gives the group's id.
pub async fn admit_new_volume(
    svc: &VolumeService,
    ctx: &AuthContext,
    group_id: &str,
    volume_type_id: &str,
) -> Result<String> {
    let g = load(svc, ctx, group_id, GET_POLICY).await?;
    if g.status != status::AVAILABLE && g.status != status::CREATING {
        return Err(invalid_group("Originating group status must be one of 'available, creating' values"));
    }
    let types = gstore::volume_types_of(&svc.db.read, &g.id).await?;
    if !types.iter().any(|t| t == volume_type_id) {
        return Err(bad(format!(
            "Invalid input received: Invalid volume_type provided: {volume_type_id} (requested type must be supported by this group)."
        )));
    }
    Ok(g.id)
}

// ---- list and show ----

const SORTABLE: &[&str] = &["id", "name", "status", "created_at", "updated_at", "availability_zone", "group_type"];

async fn do_list(
    svc: &VolumeService,
    ctx: &AuthContext,
    mv: Microversion,
    pairs: &[(String, String)],
    detailed: bool,
) -> Result<Value> {
    require(mv, 13)?;
    let project = project_of(ctx);
    authorize(svc, ctx, GET_ALL_POLICY, &project)?;
    let admin = is_admin(svc, ctx);
    let mut q = ListQuery::parse(pairs)?;
    let list_volume = q.take("list_volume").is_some_and(|v| parse_bool("list_volume", &json!(v)).unwrap_or(false));
    let asked_project = q.take("project_id");
    crate::api::resource_filters::restrict(&mut q, "group", admin, mv)?;
    let scope = if admin && q.all_tenants {
        None
    } else if admin && asked_project.is_some() {
        asked_project
    } else {
        Some(project)
    };
    let groups = gstore::list(&svc.db.read, scope.as_deref()).await?;
    let ids: Vec<String> = groups.iter().map(|g| g.id.clone()).collect();
    let types = gstore::volume_types_by_group(&svc.db.read, &ids).await?;
    let mut items = Vec::new();
    for g in &groups {
        let vols = if list_volume && mv.at_least(3, 25) {
            Some(gstore::volumes_of(&svc.db.read, &g.id).await?.into_iter().map(|v| v.id).collect::<Vec<_>>())
        } else {
            None
        };
        let t = types.get(&g.id).cloned().unwrap_or_default();
        let mut v = detail(svc, ctx, mv, g, &t, vols.as_deref());
        v["updated_at"] = json!(g.updated_at);
        items.push(v);
    }
    let base = format!("{}/v3/groups{}", svc.base_url, if detailed { "/detail" } else { "" });
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
    let mut out = json!({"groups": page});
    if let Some(l) = links {
        out["group_links"] = l;
    }
    Ok(out)
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
    RawQuery(q): RawQuery,
) -> Result<Response> {
    require(mv, 13)?;
    let g = load(&svc, &ctx, &id, GET_POLICY).await?;
    let types = gstore::volume_types_of(&svc.db.read, &g.id).await?;
    let list_volume = q.iter().any(|(k, v)| k == "list_volume" && parse_bool(k, &json!(v)).unwrap_or(false));
    let vols = if list_volume {
        Some(gstore::volumes_of(&svc.db.read, &g.id).await?.into_iter().map(|v| v.id).collect::<Vec<_>>())
    } else {
        None
    };
    Ok(ok(json!({"group": detail(&svc, &ctx, mv, &g, &types, vols.as_deref())})))
}

// ---- create ----

/// The zone asked for (the configured one when none), 400 when no volume
/// service is in it.
async fn zone_of(svc: &VolumeService, asked: Option<String>) -> Result<String> {
    let zone = asked.unwrap_or_else(|| svc.cfg.volume.availability_zone.clone());
    if zone != svc.cfg.volume.availability_zone
        && !store::services::all(&svc.db.read).await?.iter().any(|s| s.availability_zone == zone)
    {
        return Err(bad(format!("Invalid input received: Availability zone '{zone}' is invalid.")));
    }
    Ok(zone)
}

/// Check one more group fits the project's `groups` quota (inside the
/// transaction that writes it: the quota check takes the project's lock).
async fn check_group_quota<C: sea_orm::ConnectionTrait>(svc: &VolumeService, conn: &C, project: &str) -> Result<()> {
    store::quotas::check(conn, &svc.cfg.volume, project, &[("groups", 1)]).await?;
    let limit = store::quotas::limit(conn, &svc.cfg.volume, project, "groups").await?;
    if limit >= 0 && gstore::count(conn, project).await? as i64 + 1 > limit {
        return Err(over_quota(format!("GroupLimitExceeded: Maximum number of groups allowed ({limit}) exceeded")));
    }
    Ok(())
}

fn new_group(
    ctx: &AuthContext,
    name: Option<String>,
    description: Option<String>,
    zone: String,
    type_id: String,
) -> Group {
    Group {
        id: uuid::Uuid::new_v4().to_string(),
        project_id: project_of(ctx),
        user_id: ctx.user_id.clone(),
        name,
        description,
        status: status::AVAILABLE.into(),
        availability_zone: zone,
        group_type_id: type_id,
        group_snapshot_id: None,
        source_group_id: None,
        replication_status: Some("disabled".into()),
        created_at: now(),
        updated_at: None,
    }
}

/// Name and description as Cinder takes them (stripped).
fn name_description(obj: &Map<String, Value>) -> Result<(Option<String>, Option<String>)> {
    let name = opt_text("name", obj.get("name"), 255)?.map(|s| s.trim().to_string());
    let description = opt_text("description", obj.get("description"), 255)?.map(|s| s.trim().to_string());
    Ok((name, description))
}

async fn create(AxState(svc): AxState<State>, Auth(ctx): Auth, mv: Microversion, body: Body) -> Result<Response> {
    require(mv, 13)?;
    let obj = body_obj(&body.0, "group")?;
    only("group", obj, &["name", "description", "group_type", "volume_types", "availability_zone"])?;
    let (name, description) = name_description(obj)?;
    let type_key = match obj.get("group_type") {
        Some(Value::String(s)) => s.clone(),
        Some(other) => return Err(invalid("group_type", format!("Value: {other}. {other} is not of type 'string'"))),
        None => return Err(invalid("group", "'group_type' is a required property")),
    };
    let volume_types: Vec<String> = match obj.get("volume_types") {
        Some(Value::Array(a)) if !a.is_empty() => {
            let mut out: Vec<String> = Vec::new();
            for v in a {
                match v.as_str() {
                    Some(s) if s.chars().count() <= 255 => {
                        if out.iter().any(|o| o == s) {
                            return Err(invalid(
                                "volume_types",
                                format!("Value: {}. has non-unique elements", Value::Array(a.clone())),
                            ));
                        }
                        out.push(s.to_string());
                    }
                    _ => return Err(invalid("volume_types", format!("Value: {v}. {v} is not of type 'string'"))),
                }
            }
            out
        }
        Some(Value::Array(_)) => return Err(invalid("volume_types", "Value: []. [] is too short")),
        Some(other) => return Err(invalid("volume_types", format!("Value: {other}. {other} is not of type 'array'"))),
        None => return Err(invalid("group", "'volume_types' is a required property")),
    };
    let zone_asked = match obj.get("availability_zone") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => {
            return Err(invalid(
                "availability_zone",
                format!("Value: {other}. {other} is not of type 'string', 'null'"),
            ));
        }
    };
    let project = project_of(&ctx);
    authorize(&svc, &ctx, CREATE_POLICY, &project)?;
    if project.is_empty() {
        return Err(bad("A project-scoped token is required to create a group."));
    }
    let admin = is_admin(&svc, &ctx);
    let db = &svc.db;
    let gtype: group_type::Model = match gstore::type_by_id_or_name(&db.read, &type_key).await? {
        Some(t) if t.is_public || admin => t,
        _ if crate::api::is_uuid_like(&type_key) => {
            return Err(not_found(format!("Group type with id {type_key} could not be found.")));
        }
        _ => return Err(not_found(format!("Group type with name {type_key} could not be found."))),
    };
    let mut type_ids = Vec::new();
    for key in &volume_types {
        let t = store::types::get(&db.read, key).await?;
        let t = match t {
            Some(t) if store::types::visible_to(&db.read, &t, &project, admin).await? => t,
            _ if crate::api::is_uuid_like(key) => return Err(missing("Volume type", key)),
            _ => return Err(not_found(format!("Volume type with name {key} could not be found."))),
        };
        if !type_ids.contains(&t.id) {
            type_ids.push(t.id);
        }
    }
    let zone = zone_of(&svc, zone_asked).await?;
    let g = new_group(&ctx, name, description, zone, gtype.id.clone());
    let txn = db.write.begin().await?;
    check_group_quota(&svc, &txn, &project).await?;
    gstore::insert(&txn, &g, &type_ids).await?;
    txn.commit().await?;
    Ok((axum::http::StatusCode::ACCEPTED, axum::Json(json!({"group": summary(&g)}))).into_response())
}

/// One new volume of a group made from a source (a clone of a volume, or
/// from a snapshot), ready to insert; scheduled next to its source.
struct Planned {
    volume: Volume,
    schedule: ScheduleVolume,
    type_name: Option<String>,
}

async fn plan_volume(
    svc: &VolumeService,
    ctx: &AuthContext,
    g: &Group,
    src: &Volume,
    size: i64,
    source: Source,
) -> Result<Planned> {
    let vtype = match &src.volume_type_id {
        Some(t) => store::types::get_by_id(&svc.db.read, t).await?,
        None => None,
    };
    let extra_specs = vtype.as_ref().map(store::types::extra_specs).unwrap_or_default();
    let id = uuid::Uuid::new_v4().to_string();
    let volume = Volume {
        id: id.clone(),
        project_id: g.project_id.clone(),
        user_id: ctx.user_id.clone(),
        name: None,
        description: None,
        size,
        status: vs::CREATING.into(),
        attach_status: crate::model::attach_status::DETACHED.into(),
        availability_zone: g.availability_zone.clone(),
        volume_type_id: src.volume_type_id.clone(),
        bootable: src.bootable,
        multiattach: src.multiattach,
        encrypted: src.encrypted,
        source_volid: source.source_volid.clone(),
        snapshot_id: source.snapshot_id.clone(),
        image_id: None,
        backup_id: None,
        host: None,
        provider_location: None,
        metadata: "{}".into(),
        admin_metadata: "{}".into(),
        image_metadata: src.image_metadata.clone(),
        migration_status: None,
        replication_status: None,
        group_id: Some(g.id.clone()),
        previous_status: None,
        created_at: now(),
        updated_at: None,
        launched_at: None,
    };
    let schedule = ScheduleVolume {
        volume_id: id,
        size,
        availability_zone: g.availability_zone.clone(),
        extra_specs,
        source,
        must_host: src.host.clone(),
    };
    Ok(Planned { volume, schedule, type_name: vtype.map(|t| t.name) })
}

async fn create_from_src(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    body: Body,
) -> Result<Response> {
    require(mv, 14)?;
    let obj = body_obj(&body.0, "create-from-src")?;
    only("create-from-src", obj, &["name", "description", "source_group_id", "group_snapshot_id"])?;
    let (name, description) = name_description(obj)?;
    let uuid_field = |k: &str| -> Result<Option<String>> {
        match obj.get(k) {
            None => Ok(None),
            Some(Value::String(s)) if crate::api::is_uuid_like(s) => Ok(Some(s.clone())),
            Some(other) => Err(invalid(k, format!("Value: {other}. {other} is not a 'uuid'"))),
        }
    };
    let snap_id = uuid_field("group_snapshot_id")?;
    let source_id = uuid_field("source_group_id")?;
    if snap_id.is_some() == source_id.is_some() {
        return Err(invalid(
            "create-from-src",
            format!(
                "Value: {}. {} is valid under each of {{'required': ['source_group_id']}}, {{'required': ['group_snapshot_id']}}",
                Value::Object(obj.clone()),
                Value::Object(obj.clone())
            ),
        ));
    }
    let project = project_of(&ctx);
    authorize(&svc, &ctx, CREATE_POLICY, &project)?;
    if project.is_empty() {
        return Err(bad("A project-scoped token is required to create a group."));
    }
    let db = &svc.db;
    let mut planned = Vec::new();
    let (src_group, gs_id) = if let Some(sid) = &snap_id {
        let gs = crate::api::group_snapshots::load(&svc, &ctx, sid, "group:get_group_snapshot").await?;
        let src_group = gstore::get(&db.read, &gs.group_id).await?.ok_or_else(|| group_not_found(&gs.group_id))?;
        (src_group, Some(gs.id))
    } else {
        let src = source_id.clone().unwrap_or_default();
        (load(&svc, &ctx, &src, GET_POLICY).await?, None)
    };
    let mut g =
        new_group(&ctx, name, description, src_group.availability_zone.clone(), src_group.group_type_id.clone());
    g.status = status::CREATING.into();
    g.group_snapshot_id = gs_id.clone();
    g.source_group_id = source_id.clone();
    let type_ids = gstore::volume_types_of(&db.read, &src_group.id).await?;
    if let Some(gs_id) = &gs_id {
        let snaps: Vec<snapshot::Model> = gstore::snapshots_of(&db.read, gs_id).await?;
        if snaps.is_empty() {
            return Err(invalid_group("Group snapshot is empty. No group will be created."));
        }
        for s in snaps {
            if s.status != crate::model::snapshot_status::AVAILABLE {
                return Err(bad("Invalid snapshot: Originating snapshot status must be one of 'available' values"));
            }
            let src = store_v::get(&db.read, &s.volume_id).await?.ok_or_else(|| missing("Volume", &s.volume_id))?;
            let source = Source { snapshot_id: Some(s.id.clone()), ..Default::default() };
            planned.push(plan_volume(&svc, &ctx, &g, &src, s.size, source).await?);
        }
    } else {
        let vols = gstore::volumes_of(&db.read, &src_group.id).await?;
        if vols.is_empty() {
            return Err(invalid_group("Source Group is empty. No group will be created."));
        }
        for v in vols {
            if v.status != vs::AVAILABLE && v.status != vs::IN_USE {
                return Err(invalid_volume("Source volume status must be available or in-use"));
            }
            let source = Source { source_volid: Some(v.id.clone()), ..Default::default() };
            planned.push(plan_volume(&svc, &ctx, &g, &v, v.size, source).await?);
        }
    }

    let txn = db.write.begin().await?;
    let mut deltas: Vec<(String, i64)> = vec![("groups".into(), 1)];
    for p in &planned {
        let size = p.volume.size;
        deltas.push(("volumes".into(), 1));
        deltas.push(("gigabytes".into(), size));
        if let Some(t) = &p.type_name {
            deltas.push((format!("volumes_{t}"), 1));
            deltas.push((format!("gigabytes_{t}"), size));
        }
    }
    // summed per resource; per_volume_gigabytes is the biggest volume
    let mut summed: Vec<(String, i64)> = Vec::new();
    for (k, d) in deltas {
        match summed.iter_mut().find(|(sk, _)| *sk == k) {
            Some(slot) => slot.1 += d,
            None => summed.push((k, d)),
        }
    }
    summed.push(("per_volume_gigabytes".into(), planned.iter().map(|p| p.volume.size).max().unwrap_or(0)));
    let refs: Vec<(&str, i64)> = summed.iter().map(|(k, d)| (k.as_str(), *d)).collect();
    store::quotas::check(&txn, &svc.cfg.volume, &project, &refs).await?;
    check_group_quota(&svc, &txn, &project).await?;
    gstore::insert(&txn, &g, &type_ids).await?;
    for p in &planned {
        store_v::insert(&txn, p.volume.clone()).await?;
    }
    txn.commit().await?;

    for p in &planned {
        let sent = match svc.deps() {
            Ok(deps) => deps
                .bus
                .cast(crate::rpc::SCHEDULER, &p.schedule, &format!("req-{}", uuid::Uuid::new_v4()))
                .await
                .map_err(|e| anyhow::anyhow!("{e}")),
            Err(e) => Err(anyhow::anyhow!("{e}")),
        };
        if let Err(e) = sent {
            tracing::warn!(volume = %p.volume.id, error = %e, "could not reach the volume scheduler");
            store_v::set_status(&db.write, &p.volume.id, vs::ERROR).await?;
        }
    }
    watch_creating(svc.clone(), g.id.clone());
    Ok((axum::http::StatusCode::ACCEPTED, axum::Json(json!({"group": summary(&g)}))).into_response())
}

/// Follow a group made from a source until its volumes are made:
/// `available` when all are, `error` when one fails.
fn watch_creating(svc: State, group_id: String) {
    tokio::spawn(async move {
        let start = tokio::time::Instant::now();
        while start.elapsed() < WATCH_LIMIT {
            tokio::time::sleep(WATCH_EVERY).await;
            let vols = match gstore::volumes_of(&svc.db.read, &group_id).await {
                Ok(v) => v,
                Err(e) => {
                    tracing::warn!(group = %group_id, error = %e, "group watcher");
                    continue;
                }
            };
            let to = if vols.iter().any(|v| v.status.starts_with("error")) {
                status::ERROR
            } else if vols.iter().all(|v| v.status == vs::AVAILABLE) {
                status::AVAILABLE
            } else {
                continue;
            };
            if let Err(e) = gstore::transition(&svc.db.write, &group_id, &[status::CREATING], to).await {
                tracing::warn!(group = %group_id, error = %e, "group watcher");
            }
            return;
        }
        let _ = gstore::transition(&svc.db.write, &group_id, &[status::CREATING], status::ERROR).await;
    });
}

/// Follow a group being deleted with its volumes: the row goes once they
/// are gone; `error_deleting` when one fails to go.
fn watch_deleting(svc: State, group_id: String) {
    tokio::spawn(async move {
        let start = tokio::time::Instant::now();
        while start.elapsed() < WATCH_LIMIT {
            tokio::time::sleep(WATCH_EVERY).await;
            let vols = match gstore::volumes_of(&svc.db.read, &group_id).await {
                Ok(v) => v,
                Err(e) => {
                    tracing::warn!(group = %group_id, error = %e, "group watcher");
                    continue;
                }
            };
            if vols.is_empty() {
                if let Err(e) = gstore::delete(&svc.db.write, &group_id).await {
                    tracing::warn!(group = %group_id, error = %e, "group watcher");
                }
                return;
            }
            if vols.iter().any(|v| v.status == vs::ERROR_DELETING) {
                let _ = gstore::transition(&svc.db.write, &group_id, &[status::DELETING], status::ERROR_DELETING).await;
                return;
            }
        }
        let _ = gstore::transition(&svc.db.write, &group_id, &[status::DELETING], status::ERROR_DELETING).await;
    });
}

// ---- update ----

fn id_list(s: &Option<String>) -> Vec<String> {
    match s {
        Some(s) => s.trim_matches(',').split(',').map(|x| x.trim().to_string()).filter(|x| !x.is_empty()).collect(),
        None => Vec::new(),
    }
}

async fn update(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    Path(id): Path<String>,
    body: Body,
) -> Result<Response> {
    require(mv, 13)?;
    let obj = body_obj(&body.0, "group")?;
    only("group", obj, &["name", "description", "add_volumes", "remove_volumes"])?;
    if obj.is_empty() {
        return Err(invalid("group", "Value: {}. {} is not valid under any of the given schemas"));
    }
    let (name, description) = name_description(obj)?;
    let add = opt_text("add_volumes", obj.get("add_volumes"), 255)?;
    let remove = opt_text("remove_volumes", obj.get("remove_volumes"), 255)?;
    let mut g = load(&svc, &ctx, &id, UPDATE_POLICY).await?;
    let name = name.filter(|n| Some(n) != g.name.as_ref());
    let description = description.filter(|d| Some(d) != g.description.as_ref());
    let add_list = id_list(&add);
    let remove_list = id_list(&remove);
    let both: Vec<&String> = add_list.iter().filter(|a| remove_list.contains(a)).collect();
    if !both.is_empty() {
        return Err(invalid_volume(format!("UUIDs {both:?} are in both add and remove volume list.")));
    }
    let db = &svc.db;
    let members = gstore::volumes_of(&db.read, &g.id).await?;
    let group_types = gstore::volume_types_of(&db.read, &g.id).await?;

    // removals: members in a state that allows it
    let mut to_remove = Vec::new();
    for v in &members {
        if remove_list.contains(&v.id) {
            if !VALID_REMOVE_STATUS.contains(&v.status.as_str()) {
                return Err(invalid_volume(format!(
                    "Cannot remove volume {} from group {} because volume is in an invalid state: {}. Valid states are: {VALID_REMOVE_STATUS:?}.",
                    v.id, g.id, v.status
                )));
            }
            to_remove.push(v.id.clone());
        }
    }
    if let Some(r) = remove_list.iter().find(|r| !to_remove.contains(r)) {
        return Err(invalid_volume(format!(
            "Cannot remove volume {r} from group {} because it is not in the group.",
            g.id
        )));
    }
    // additions: not members yet, of this project, of an allowed type, available or in use
    let mut to_add = Vec::new();
    for a in add_list.iter().filter(|a| !members.iter().any(|m| &&m.id == a)) {
        let Some(v) = store_v::get(&db.read, a).await? else {
            return Err(invalid_volume(format!(
                "Cannot add volume {a} to group {} because volume cannot be found.",
                g.id
            )));
        };
        if let Some(other) = &v.group_id {
            return Err(invalid_volume(format!(
                "Cannot add volume {} to group {} because it is already in group {other}.",
                v.id, g.id
            )));
        }
        if v.project_id != g.project_id {
            return Err(invalid_volume(format!(
                "Cannot add volume {} to group {} as they belong to different projects.",
                v.id, g.id
            )));
        }
        let Some(t) = &v.volume_type_id else {
            return Err(invalid_volume(format!(
                "Cannot add volume {} to group {} because it has no volume type.",
                v.id, g.id
            )));
        };
        if !group_types.contains(t) {
            return Err(invalid_volume(format!(
                "Cannot add volume {} to group {} because volume type {t} is not supported by the group.",
                v.id, g.id
            )));
        }
        if !VALID_ADD_STATUS.contains(&v.status.as_str()) {
            return Err(invalid_volume(format!(
                "Cannot add volume {} to group {} because volume is in an invalid state: {}. Valid states are: {VALID_ADD_STATUS:?}.",
                v.id, g.id, v.status
            )));
        }
        to_add.push(v.id.clone());
    }
    if name.is_none() && description.is_none() && to_add.is_empty() && to_remove.is_empty() {
        return Err(invalid_group(format!(
            "Cannot update group {} because no valid name, description, add_volumes, or remove_volumes were provided.",
            g.id
        )));
    }
    let changes_volumes = !to_add.is_empty() || !to_remove.is_empty();
    if changes_volumes && g.status != status::AVAILABLE {
        return Err(invalid_group("Group status must be available."));
    }
    if let Some(n) = name {
        g.name = Some(n);
    }
    if let Some(d) = description {
        g.description = Some(d);
    }
    // Cinder: a name or description change alone makes the group available
    g.status = status::AVAILABLE.into();
    g.updated_at = Some(now());
    let txn = db.write.begin().await?;
    for v in &to_remove {
        gstore::set_volume_group(&txn, v, None).await?;
    }
    for v in &to_add {
        gstore::set_volume_group(&txn, v, Some(&g.id)).await?;
    }
    gstore::save(&txn, &g).await?;
    txn.commit().await?;
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
    require(mv, 13)?;
    let Some(top) = body.0.as_object() else {
        return Err(bad("Malformed request body"));
    };
    let Some((name, _)) = top.iter().next() else {
        return Err(bad("Malformed request body"));
    };
    match name.as_str() {
        "delete" => delete(&svc, &ctx, &id, &body.0).await,
        "reset_status" if mv.at_least(3, 20) => reset_status(&svc, &ctx, &id, &body.0).await,
        "enable_replication" | "disable_replication" | "failover_replication" | "list_replication_targets"
            if mv.at_least(3, 38) =>
        {
            let g = load(&svc, &ctx, &id, &format!("group:{name}")).await?;
            Err(bad(format!("Invalid group type: Group {} is not a replication group type.", g.id)))
        }
        other => Err(bad(format!("There is no such action: {other}"))),
    }
}

async fn delete(svc: &State, ctx: &AuthContext, id: &str, body: &Value) -> Result<Response> {
    let obj = body_obj(body, "delete")?;
    only("delete", obj, &["delete-volumes"])?;
    let delete_volumes = match obj.get("delete-volumes") {
        None => false,
        Some(v) => parse_bool("delete-volumes", v)?,
    };
    let g = load(svc, ctx, id, DELETE_POLICY).await?;
    let db = &svc.db;
    if !delete_volumes && g.status != status::AVAILABLE && g.status != status::ERROR {
        return Err(invalid_group(format!(
            "Group status must be available or error, but current status is: {}",
            g.status
        )));
    }
    if gstore::has_snapshots(&db.read, &g.id).await? {
        return Err(invalid_group("Group has existing snapshots."));
    }
    let vols = gstore::volumes_of(&db.read, &g.id).await?;
    if !vols.is_empty() && !delete_volumes {
        return Err(invalid_group(format!(
            "Group {} still contains volumes. The delete-volumes flag is required to delete it.",
            g.id
        )));
    }
    for v in &vols {
        if v.attach_status == crate::model::attach_status::ATTACHED {
            return Err(invalid_group(format!("Volume in group {} is attached. Need to detach first.", g.id)));
        }
        let snaps = {
            use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
            snapshot::Entity::find().filter(snapshot::Column::VolumeId.eq(v.id.as_str())).count(&db.read).await?
        };
        if snaps > 0 {
            return Err(invalid_group("Volume in group still has dependent snapshots."));
        }
    }
    let expected: &[&str] = if delete_volumes { &[] } else { &[status::AVAILABLE, status::ERROR] };
    let busy_source = gstore::source_of_creating(&db.read, Some(&g.id), None).await?;
    if busy_source || !gstore::transition(&db.write, &g.id, expected, status::DELETING).await? {
        let reason = if delete_volumes {
            "Group status must be available or error and must not have dependent group snapshots"
        } else {
            "Group must not have attached volumes, volumes with snapshots, or dependent group snapshots"
        };
        return Err(invalid_group(format!(
            "Cannot delete group {}. {reason}, and it cannot be the source for an ongoing group or group snapshot creation.",
            g.id
        )));
    }
    if vols.is_empty() {
        gstore::delete(&db.write, &g.id).await?;
        return Ok(accepted_empty());
    }
    for v in &vols {
        if let Err(e) = crate::api::volumes::delete_volume(svc, v, false, true).await {
            tracing::warn!(group = %g.id, volume = %v.id, error = %e, "could not delete a volume of the group");
            store_v::set_status(&db.write, &v.id, vs::ERROR_DELETING).await?;
        }
    }
    watch_deleting(svc.clone(), g.id.clone());
    Ok(accepted_empty())
}

async fn reset_status(svc: &VolumeService, ctx: &AuthContext, id: &str, body: &Value) -> Result<Response> {
    let obj = body_obj(body, "reset_status")?;
    only("reset_status", obj, &["status"])?;
    let to = match obj.get("status") {
        Some(Value::String(s)) => s.to_lowercase(),
        Some(other) => return Err(invalid("status", format!("Value: {other}. {other} is not of type 'string'"))),
        None => return Err(invalid("reset_status", "'status' is a required property")),
    };
    if !status::ALL.contains(&to.as_str()) {
        return Err(invalid(
            "status",
            format!("Value: {to}. Group status: {to} is invalid, valid statuses are: {:?}.", status::ALL),
        ));
    }
    let g = gstore::get(&svc.db.read, id).await?.ok_or_else(|| group_not_found(id))?;
    if !is_admin(svc, ctx) && g.project_id != project_of(ctx) {
        return Err(group_not_found(id));
    }
    authorize(svc, ctx, RESET_STATUS_POLICY, &g.project_id)?;
    gstore::transition(&svc.db.write, &g.id, &[], &to).await?;
    Ok(accepted_empty())
}
