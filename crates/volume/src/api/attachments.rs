//! Attachments (3.27+): `/v3/attachments`, the way Nova attaches volumes
//! today. Create reserves the volume (`reserved`; with a connector it also
//! gets the connection from the volume host and is `attaching`), update
//! gives a connector and gets the connection, `os-complete` (3.44) marks it
//! `attached` and the volume `in-use`, delete removes it and settles the
//! volume's status from the attachments left.
//!
//! Also the pieces the legacy attach actions share: the volume row lock,
//! the status a volume takes from its attachments, and the call to the
//! volume host for a connection.

use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State as AxState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, TransactionTrait};
use serde_json::{Map, Value, json};
use stratus_core::AuthContext;
use stratus_core::auth::Auth;
use stratus_core::extract::RawQuery;
use stratus_core::microversion::Microversion;

use crate::api::list::{self, ListQuery};
use crate::api::volumes::load;
use crate::api::{Body, authorize, is_admin, is_uuid_like, json_object, now, ok, project_of};
use crate::entity::attachment::{self, Model as Attachment};
use crate::entity::volume::{self, Model as Volume};
use crate::error::{Result, VolumeError, bad, conflict, invalid_volume, missing, not_found};
use crate::model::{attach_status as ats, volume_status as vs};
use crate::store::volumes as store_v;
use crate::{State, VolumeService};

pub fn routes() -> Router<State> {
    Router::new()
        .route("/v3/attachments", get(list_summary).post(create))
        .route("/v3/attachments/detail", get(list_detail))
        .route("/v3/attachments/{id}", get(show).put(update).delete(delete))
        .route("/v3/attachments/{id}/action", post(action))
}

// --- shared with the legacy attach actions -----------------------------------

/// Migration statuses a volume may be attached, detached or retyped in (no migration running).
pub const NOT_MIGRATING: &[&str] = &["deleting", "error", "success", "none"];

pub fn is_migrating(v: &Volume) -> bool {
    v.migration_status.as_deref().is_some_and(|m| !NOT_MIGRATING.contains(&m))
}

/// Lock the volume's row for the rest of the transaction `conn` and read it
/// (404 when gone). Everything that changes a volume's attachments runs
/// under this lock, so two racing requests see each other's outcome.
pub async fn lock_volume<C: ConnectionTrait>(conn: &C, id: &str) -> Result<Volume> {
    // a write that changes nothing: it takes the row lock (and, on SQLite,
    // the database's write lock) before anything is read
    volume::Entity::update_many()
        .col_expr(volume::Column::UpdatedAt, Expr::col(volume::Column::UpdatedAt).into())
        .filter(volume::Column::Id.eq(id))
        .exec(conn)
        .await?;
    store_v::get(conn, id).await?.ok_or_else(|| missing("Volume", id))
}

/// The attachments of a volume, oldest first.
pub async fn of_volume<C: ConnectionTrait>(conn: &C, volume_id: &str) -> Result<Vec<Attachment>> {
    use sea_orm::QueryOrder;
    Ok(attachment::Entity::find()
        .filter(attachment::Column::VolumeId.eq(volume_id))
        .order_by_asc(attachment::Column::CreatedAt)
        .order_by_asc(attachment::Column::Id)
        .all(conn)
        .await?)
}

pub async fn get_row<C: ConnectionTrait>(conn: &C, id: &str) -> Result<Option<Attachment>> {
    Ok(attachment::Entity::find_by_id(id.to_string()).one(conn).await?)
}

/// A new attachment row of `volume_id`.
pub fn new_row(volume_id: &str, instance_uuid: Option<String>, status: &str, mode: &str) -> Attachment {
    Attachment {
        id: uuid::Uuid::new_v4().to_string(),
        volume_id: volume_id.to_string(),
        instance_uuid,
        attached_host: None,
        mountpoint: None,
        attach_status: status.to_string(),
        attach_mode: mode.to_string(),
        connector: None,
        connection_info: None,
        attach_time: None,
        detach_time: None,
        created_at: now(),
        updated_at: None,
    }
}

pub async fn insert<C: ConnectionTrait>(conn: &C, a: Attachment) -> Result<()> {
    attachment::ActiveModel::from(a).insert(conn).await?;
    Ok(())
}

/// Write every attribute of `a`.
pub async fn save<C: ConnectionTrait>(conn: &C, a: &Attachment) -> Result<()> {
    let mut am = attachment::ActiveModel::from(a.clone()).reset_all();
    am.id = sea_orm::ActiveValue::Unchanged(a.id.clone());
    attachment::Entity::update(am).exec(conn).await?;
    Ok(())
}

pub async fn remove<C: ConnectionTrait>(conn: &C, id: &str) -> Result<()> {
    attachment::Entity::delete_by_id(id.to_string()).exec(conn).await?;
    Ok(())
}

/// Set the volume's status and attach status.
pub async fn set_volume_state<C: ConnectionTrait>(conn: &C, id: &str, status: &str, attach: &str) -> Result<()> {
    volume::Entity::update_many()
        .col_expr(volume::Column::Status, Expr::value(status))
        .col_expr(volume::Column::AttachStatus, Expr::value(attach))
        .col_expr(volume::Column::UpdatedAt, Expr::value(now()))
        .filter(volume::Column::Id.eq(id))
        .exec(conn)
        .await?;
    Ok(())
}

/// Write the volume's admin metadata.
pub async fn set_admin_metadata<C: ConnectionTrait>(conn: &C, id: &str, m: &Map<String, Value>) -> Result<()> {
    volume::Entity::update_many()
        .col_expr(volume::Column::AdminMetadata, Expr::value(store_v::to_text(m)))
        .filter(volume::Column::Id.eq(id))
        .exec(conn)
        .await?;
    Ok(())
}

/// Does the volume have an attachment not detached?
pub async fn has_attachments<C: ConnectionTrait>(conn: &C, volume_id: &str) -> Result<bool> {
    Ok(of_volume(conn, volume_id).await?.iter().any(|a| a.attach_status != ats::DETACHED))
}

/// After an attachment went away: the volume's status and attach status
/// from the attachments left, as Cinder decides them (the first of the
/// statuses not in error, alphabetically: attached, then attaching,
/// detaching, reserved; none left: detached and available, unless an
/// upload or a migration holds the volume's status).
pub async fn settle<C: ConnectionTrait>(conn: &C, v: &Volume) -> Result<()> {
    let atts = of_volume(conn, &v.id).await?;
    let mut states: Vec<&str> =
        atts.iter().map(|a| a.attach_status.as_str()).filter(|s| !s.starts_with("error_")).collect();
    states.sort_unstable();
    let attach = states.first().copied().unwrap_or(ats::DETACHED);
    let status = match attach {
        ats::ATTACHED => vs::IN_USE,
        ats::DETACHED => vs::AVAILABLE,
        other => other,
    };
    let migration = v.migration_status.as_deref().filter(|m| *m != "none");
    let keep_status = attach == ats::DETACHED
        && !(migration.is_none() && v.status != vs::UPLOADING)
        && !matches!(migration, Some("success" | "error"));
    let new_status = if keep_status { v.status.as_str() } else { status };
    set_volume_state(conn, &v.id, new_status, attach).await?;
    if atts.is_empty() {
        let mut meta = json_object(&v.admin_metadata);
        if meta.remove("attached_mode").is_some() {
            set_admin_metadata(conn, &v.id, &meta).await?;
        }
    }
    Ok(())
}

/// How long the volume host may take to give a connection.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(60);

/// Ask the volume's host how to reach it with `connector` (Cinder's
/// nested `connection_info`: `driver_volume_type` and `data`).
pub async fn connection(svc: &VolumeService, v: &Volume, connector: &Value) -> Result<Value> {
    let Some(host) = v.host.as_deref() else {
        return Err(invalid_volume(format!("Volume {} has not been placed on a host.", v.id)));
    };
    let deps = svc.deps()?;
    let msg = crate::rpc::InitializeConnection { volume_id: v.id.clone(), connector: connector.clone() };
    let topic = crate::rpc::host_topic(host, "connection");
    let rid = format!("req-{}", uuid::Uuid::new_v4());
    match deps.bus.call::<_, Value>(&topic, &msg, &rid, CONNECTION_TIMEOUT).await {
        Ok(info) => Ok(info),
        Err(e) => {
            tracing::warn!(volume = %v.id, error = %e, "initialize connection failed");
            Err(VolumeError::Status(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Unable to fetch connection information from backend.".into(),
            ))
        }
    }
}

/// The access mode of a connection: the attachment's mode when set, else
/// the volume's `attached_mode`, else `ro` for a read-only volume.
pub fn access_mode(v: &Volume, mode: Option<&str>) -> String {
    if let Some(m) = mode.filter(|m| *m == "ro" || *m == "rw") {
        return m.to_string();
    }
    let meta = json_object(&v.admin_metadata);
    if let Some(m) = meta.get("attached_mode").and_then(Value::as_str) {
        return m.to_string();
    }
    if meta.get("readonly").and_then(Value::as_str) == Some("True") { "ro" } else { "rw" }.to_string()
}

/// Is the volume marked read-only (admin metadata `readonly`)?
pub fn is_readonly(v: &Volume) -> bool {
    json_object(&v.admin_metadata).get("readonly").and_then(Value::as_str) == Some("True")
}

// --- views -------------------------------------------------------------------

fn summary(a: &Attachment) -> Value {
    json!({
        "id": a.id,
        "status": a.attach_status,
        "instance": a.instance_uuid,
        "volume_id": a.volume_id,
    })
}

fn detail(a: &Attachment) -> Value {
    let mut o = summary(a);
    o["attached_at"] = json!(a.attach_time.clone().unwrap_or_default());
    o["detached_at"] = json!(a.detach_time.clone().unwrap_or_default());
    o["attach_mode"] = json!(a.attach_mode);
    o["connection_info"] =
        a.connection_info.as_deref().and_then(|t| serde_json::from_str::<Value>(t).ok()).unwrap_or(Value::Null);
    o
}

// --- handlers ----------------------------------------------------------------

/// 404 below 3.27, as Cinder answers for a method its version lacks.
fn need(mv: Microversion, minor: u16) -> Result<()> {
    if mv.at_least(3, minor) { Ok(()) } else { Err(not_found("The resource could not be found.")) }
}

/// The attachment `id` if the caller may see its volume, and the volume.
async fn load_attachment(svc: &VolumeService, ctx: &AuthContext, id: &str, rule: &str) -> Result<(Attachment, Volume)> {
    let a = get_row(&svc.db.read, id)
        .await?
        .ok_or_else(|| not_found(format!("Volume attachment {id} could not be found.")))?;
    let v = match store_v::visible(&svc.db.read, &a.volume_id, &project_of(ctx), is_admin(svc, ctx)).await {
        Ok(v) => v,
        Err(VolumeError::NotFound(_)) => return Err(not_found(format!("Volume attachment {id} could not be found."))),
        Err(e) => return Err(e),
    };
    authorize(svc, ctx, rule, &v.project_id)?;
    Ok((a, v))
}

fn only_keys(obj: &Map<String, Value>, allowed: &[&str]) -> Result<()> {
    if let Some(k) = obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(bad(format!(
            "Invalid input for field/attribute attachment. Additional properties are not allowed ('{k}' was unexpected)"
        )));
    }
    Ok(())
}

/// The connector of a request: an object (or, for create, null / absent).
fn connector_of(obj: &Map<String, Value>, required: bool) -> Result<Option<Value>> {
    match obj.get("connector") {
        None | Some(Value::Null) if !required => Ok(None),
        Some(Value::Object(m)) if !required || !m.is_empty() => Ok(Some(Value::Object(m.clone()))),
        _ => Err(bad(
            "Invalid input for field/attribute connector. Value should be an object with at least one property.",
        )),
    }
}

/// Give the attachment its connection (Cinder's `attachment_update` on the
/// volume host): the flattened connection info, the connector, `attaching`
/// for the attachment and the volume. Outside any transaction (the host
/// reads the volume); the writes take the volume's lock.
async fn connect_attachment(svc: &VolumeService, a: &Attachment, v: &Volume, connector: &Value) -> Result<Attachment> {
    let mut connector = connector.clone();
    let mut mode = connector.get("mode").and_then(Value::as_str).unwrap_or("rw").to_string();
    if a.attach_mode != "null" && !a.attach_mode.is_empty() {
        mode = a.attach_mode.clone();
        connector["mode"] = json!(mode);
    }
    let info = connection(svc, v, &connector).await?;
    let mut flat = info.get("data").and_then(Value::as_object).cloned().unwrap_or_default();
    if let Some(o) = info.as_object() {
        for (k, val) in o {
            if k != "data" {
                flat.insert(k.clone(), val.clone());
            }
        }
    }
    flat.insert("access_mode".into(), json!(access_mode(v, Some(&mode))));
    flat.insert("attachment_id".into(), json!(a.id));
    flat.insert("enforce_multipath".into(), connector.get("enforce_multipath").cloned().unwrap_or(json!(false)));
    let flat = Value::Object(flat);

    let txn = svc.db.write.begin().await?;
    let v = lock_volume(&txn, &v.id).await?;
    let mut a = get_row(&txn, &a.id)
        .await?
        .ok_or_else(|| not_found(format!("Volume attachment {} could not be found.", a.id)))?;
    a.connector = Some(connector.to_string());
    a.connection_info = Some(flat.to_string());
    a.attach_status = ats::ATTACHING.into();
    a.attached_host = connector.get("host").and_then(Value::as_str).map(str::to_string);
    a.mountpoint = Some(connector.get("mountpoint").and_then(Value::as_str).unwrap_or("na").to_string());
    a.attach_mode = mode;
    a.attach_time = Some(now());
    a.updated_at = Some(now());
    save(&txn, &a).await?;
    set_volume_state(&txn, &v.id, vs::ATTACHING, ats::ATTACHING).await?;
    txn.commit().await?;
    Ok(a)
}

async fn create(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    stratus_core::extract::Json(body): Body,
) -> Result<Response> {
    need(mv, 27)?;
    let obj = crate::api::body_object(&body, "attachment")?;
    if body.as_object().is_some_and(|o| o.len() > 1) {
        return Err(bad("Invalid input: only 'attachment' is allowed in the request body."));
    }
    let mut allowed = vec!["instance_uuid", "connector", "volume_uuid", "volume_id"];
    if mv.at_least(3, 54) {
        allowed.push("mode");
    }
    only_keys(obj, &allowed)?;
    let volume_id = match obj.get("volume_uuid").or(obj.get("volume_id")) {
        Some(Value::String(s)) => s.clone(),
        _ => return Err(bad("Invalid input for field/attribute attachment. 'volume_uuid' is a required property")),
    };
    let instance_uuid = match obj.get("instance_uuid") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if is_uuid_like(s) => Some(s.clone()),
        Some(other) => {
            return Err(bad(format!(
                "Invalid input for field/attribute instance_uuid. Value: {other}. It is not a valid UUID."
            )));
        }
    };
    let connector = connector_of(obj, false)?;
    let mode = match obj.get("mode") {
        None | Some(Value::Null) => "null".to_string(),
        Some(Value::String(m)) if m == "rw" || m == "ro" => m.clone(),
        Some(other) => {
            return Err(bad(format!(
                "Invalid input for field/attribute mode. Value: {other}. It is not one of ['rw', 'ro']"
            )));
        }
    };
    if !is_uuid_like(&volume_id) {
        return Err(missing("Volume", &volume_id));
    }
    let v = load(&svc, &ctx, &volume_id, "volume:attachment_create").await?;

    let txn = svc.db.write.begin().await?;
    let v = lock_volume(&txn, &v.id).await?;
    if v.status.contains("error") {
        return Err(invalid_volume(format!(
            "Volume attachments can not be created if the volume is in an error state. The Volume {} currently has a status of: {} ",
            v.id, v.status
        )));
    }
    if v.multiattach && v.status == vs::IN_USE && v.bootable {
        authorize(&svc, &ctx, "volume:multiattach", &v.project_id)?;
    }
    let expected: &[&str] =
        if v.multiattach { &[vs::AVAILABLE, vs::IN_USE, vs::DOWNLOADING] } else { &[vs::AVAILABLE, vs::DOWNLOADING] };
    if !store_v::transition(&txn, &v.id, expected, vs::RESERVED).await? {
        // the same instance attaching again (a move between hosts) may
        let same_instance = match &instance_uuid {
            Some(i) if v.status == vs::IN_USE || v.status == vs::RESERVED => {
                of_volume(&txn, &v.id).await?.iter().any(|a| a.instance_uuid.as_deref() == Some(i.as_str()))
            }
            _ => false,
        };
        if !same_instance {
            return Err(invalid_volume(format!(
                "Volume {} status must be {} to reserve, but the current status is {}.",
                v.id,
                or_list(expected),
                v.status
            )));
        }
    }
    let mode = if is_readonly(&v) { "ro".to_string() } else { mode };
    let mut a = new_row(&v.id, instance_uuid, ats::RESERVED, &mode);
    a.connection_info = Some("{}".into());
    insert(&txn, a.clone()).await?;
    txn.commit().await?;

    if let Some(conn) = connector {
        a = match connect_attachment(&svc, &a, &v, &conn).await {
            Ok(a) => a,
            Err(e) => {
                // undo the reservation: the caller gets the error and no attachment
                let undo = async {
                    let txn = svc.db.write.begin().await?;
                    let v = lock_volume(&txn, &v.id).await?;
                    remove(&txn, &a.id).await?;
                    settle(&txn, &v).await?;
                    txn.commit().await?;
                    Ok::<_, VolumeError>(())
                };
                if let Err(u) = undo.await {
                    tracing::warn!(attachment = %a.id, error = %u, "could not undo a failed attachment");
                }
                return Err(e);
            }
        };
    }
    Ok(ok(json!({"attachment": detail(&a)})))
}

/// `a or b or c`, as Cinder lists the statuses it wanted.
pub fn or_list(items: &[&str]) -> String {
    items.join(" or ")
}

async fn update(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    Path(id): Path<String>,
    stratus_core::extract::Json(body): Body,
) -> Result<Response> {
    need(mv, 27)?;
    let obj = crate::api::body_object(&body, "attachment")?;
    only_keys(obj, &["connector"])?;
    let Some(connector) = connector_of(obj, true)? else {
        return Err(bad("Invalid input for field/attribute attachment. 'connector' is a required property"));
    };
    let (a, v) = load_attachment(&svc, &ctx, &id, "volume:attachment_update").await?;
    if v.status.contains("error") {
        return Err(conflict(format!(
            "Volume attachments can not be updated if the volume is in an error state. The Volume {} currently has a status of: {} ",
            v.id, v.status
        )));
    }
    let atts = of_volume(&svc.db.read, &v.id).await?;
    if atts.len() > 1 && !v.multiattach {
        // several attachments to one host are a move; to several hosts, a race lost
        let connected = atts.iter().any(|x| x.id != a.id && x.connection_info.as_deref().is_some_and(|c| c != "{}"));
        if connected {
            return Err(conflict(format!("duplicate connectors detected on volume {}", v.id)));
        }
    }
    let a = connect_attachment(&svc, &a, &v, &connector).await?;
    Ok(ok(json!({"attachment": detail(&a)})))
}

async fn action(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    Path(id): Path<String>,
    stratus_core::extract::Json(body): Body,
) -> Result<Response> {
    need(mv, 27)?;
    let Some(obj) = body.as_object().filter(|o| o.len() == 1) else {
        return Err(bad("Malformed request body: exactly one action is required"));
    };
    match obj.keys().next().map(String::as_str) {
        Some("os-complete") => {
            need(mv, 44)?;
            complete(&svc, &ctx, &id).await
        }
        Some(other) => Err(bad(format!("There is no such action: {other}"))),
        None => Err(bad("Malformed request body: exactly one action is required")),
    }
}

/// `os-complete`: the attachment is in use.
async fn complete(svc: &VolumeService, ctx: &AuthContext, id: &str) -> Result<Response> {
    let (a, v) = load_attachment(svc, ctx, id, "volume:attachment_complete").await?;
    let txn = svc.db.write.begin().await?;
    let v = lock_volume(&txn, &v.id).await?;
    let mut a =
        get_row(&txn, &a.id).await?.ok_or_else(|| not_found(format!("Volume attachment {id} could not be found.")))?;
    a.attach_status = ats::ATTACHED.into();
    if a.attach_time.is_none() {
        a.attach_time = Some(now());
    }
    a.updated_at = Some(now());
    save(&txn, &a).await?;
    set_volume_state(&txn, &v.id, vs::IN_USE, ats::ATTACHED).await?;
    txn.commit().await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn delete(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    Path(id): Path<String>,
) -> Result<Response> {
    need(mv, 27)?;
    let (a, v) = load_attachment(&svc, &ctx, &id, "volume:attachment_delete").await?;
    let txn = svc.db.write.begin().await?;
    let v = lock_volume(&txn, &v.id).await?;
    if get_row(&txn, &a.id).await?.is_none() {
        return Err(not_found(format!("Volume attachment {id} could not be found.")));
    }
    remove(&txn, &a.id).await?;
    settle(&txn, &v).await?;
    let left = of_volume(&txn, &v.id).await?;
    txn.commit().await?;
    Ok(ok(json!({"attachments": left.iter().map(summary).collect::<Vec<_>>()})))
}

async fn show(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    Path(id): Path<String>,
) -> Result<Response> {
    need(mv, 27)?;
    let (a, _) = load_attachment(&svc, &ctx, &id, "volume:get_attachment").await?;
    Ok(ok(json!({"attachment": detail(&a)})))
}

const SORTABLE: &[&str] =
    &["id", "status", "volume_id", "instance", "attach_mode", "attached_at", "created_at", "updated_at"];

async fn do_list(svc: &VolumeService, ctx: &AuthContext, pairs: &[(String, String)], detailed: bool) -> Result<Value> {
    let mut q = ListQuery::parse(pairs)?;
    let project = project_of(ctx);
    authorize(svc, ctx, "volume:get_all_attachments", &project)?;
    let admin = is_admin(svc, ctx);
    // Cinder's filters: volume_id, status (or attach_status), instance_id
    let mut filters = Vec::new();
    for (k, val) in std::mem::take(&mut q.filters) {
        match k.as_str() {
            "volume_id" => filters.push(("volume_id".to_string(), val)),
            "status" | "attach_status" => filters.push(("status".to_string(), val)),
            "instance_id" | "instance_uuid" => filters.push(("instance".to_string(), val)),
            _ => {}
        }
    }
    q.filters = filters;
    let vols = store_v::list(&svc.db.read, if admin && q.all_tenants { None } else { Some(project.as_str()) }).await?;
    let ids: Vec<String> = vols.into_iter().map(|v| v.id).collect();
    let rows = if ids.is_empty() {
        Vec::new()
    } else {
        attachment::Entity::find().filter(attachment::Column::VolumeId.is_in(ids)).all(&svc.db.read).await?
    };
    let items: Vec<Value> = rows
        .iter()
        .map(|a| {
            let mut o = detail(a);
            o["created_at"] = json!(a.created_at);
            o["updated_at"] = json!(a.updated_at);
            o
        })
        .collect();
    let base = format!("{}/v3/attachments{}", svc.base_url, if detailed { "/detail" } else { "" });
    let (page, links, _) = list::page(items, &q, SORTABLE, &base)?;
    let page: Vec<Value> = page
        .into_iter()
        .map(|mut o| {
            if let Some(m) = o.as_object_mut() {
                m.remove("created_at");
                m.remove("updated_at");
                if !detailed {
                    for k in ["attached_at", "detached_at", "attach_mode", "connection_info"] {
                        m.remove(k);
                    }
                }
            }
            o
        })
        .collect();
    let mut out = json!({"attachments": page});
    if let Some(l) = links {
        out["attachments_links"] = l;
    }
    Ok(out)
}

async fn list_summary(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    RawQuery(q): RawQuery,
) -> Result<Response> {
    need(mv, 27)?;
    Ok(ok(do_list(&svc, &ctx, &q, false).await?))
}

async fn list_detail(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    RawQuery(q): RawQuery,
) -> Result<Response> {
    need(mv, 27)?;
    Ok(ok(do_list(&svc, &ctx, &q, true).await?))
}
