//! Servers (instances) and what hangs off them: faults, tags, actions and
//! their events. State changes are conditional updates, so two requests
//! racing to act on one server get one success and one conflict.

use std::collections::BTreeMap;

use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set, TransactionTrait,
};
use stratus_db::Db;

use crate::entity::{instance, instance_action, instance_action_event, instance_fault, instance_tag};
use crate::error::Result;

pub type Instance = instance::Model;

pub fn now() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

pub async fn get(db: &Db, uuid: &str) -> Result<Option<Instance>> {
    Ok(instance::Entity::find_by_id(uuid.to_string()).one(&db.read).await?)
}

/// A live (not deleted) server.
pub async fn get_live(db: &Db, uuid: &str) -> Result<Option<Instance>> {
    Ok(get(db, uuid).await?.filter(|i| !i.deleted))
}

pub async fn insert_in<C: ConnectionTrait>(conn: &C, inst: Instance) -> Result<()> {
    let am: instance::ActiveModel = inst.into();
    am.insert(conn).await?;
    Ok(())
}

/// Servers counted against quotas: (count, vcpus, ram MB) of a project's live servers.
pub async fn usage<C: ConnectionTrait>(conn: &C, project_id: &str) -> Result<(i64, i64, i64)> {
    // SUM's type differs per database (numeric on PostgreSQL, decimal on MySQL): cast it back
    let int = match conn.get_database_backend() {
        sea_orm::DbBackend::MySql => "SIGNED",
        _ => "BIGINT",
    };
    let sql = format!(
        "SELECT COUNT(*) AS n, CAST(COALESCE(SUM(vcpus), 0) AS {int}) AS cores, \
         CAST(COALESCE(SUM(memory_mb), 0) AS {int}) AS ram FROM instances WHERE project_id = {} AND deleted = {}",
        placeholder(conn, 1),
        placeholder(conn, 2)
    );
    let stmt = sea_orm::Statement::from_sql_and_values(
        conn.get_database_backend(),
        sql,
        vec![project_id.into(), false.into()],
    );
    let Some(row) = conn.query_one(stmt).await? else { return Ok((0, 0, 0)) };
    Ok((row.try_get("", "n")?, row.try_get("", "cores")?, row.try_get("", "ram")?))
}

fn placeholder<C: ConnectionTrait>(conn: &C, n: usize) -> String {
    match conn.get_database_backend() {
        sea_orm::DbBackend::Postgres => format!("${n}"),
        _ => "?".to_string(),
    }
}

/// What a state change may require of the server's current state.
#[derive(Default, Clone)]
pub struct Expect {
    pub vm_states: Option<Vec<&'static str>>,
    /// `Some(list)`: task_state must be one of these (`None` in the list: no task).
    pub task_states: Option<Vec<Option<&'static str>>>,
    /// The server must be on this host.
    pub host: Option<String>,
    pub live: bool,
    /// The system metadata must still be exactly this (a compare-and-swap
    /// for read-modify-write changes of it, such as `network_info`).
    pub system_metadata: Option<String>,
}

impl Expect {
    pub fn live() -> Expect {
        Expect { live: true, ..Default::default() }
    }
    pub fn vm(mut self, states: &[&'static str]) -> Expect {
        self.vm_states = Some(states.to_vec());
        self
    }
    pub fn task(mut self, states: &[Option<&'static str>]) -> Expect {
        self.task_states = Some(states.to_vec());
        self
    }
    pub fn on_host(mut self, host: &str) -> Expect {
        self.host = Some(host.to_string());
        self
    }
    pub fn system_metadata(mut self, current: &str) -> Expect {
        self.system_metadata = Some(current.to_string());
        self
    }
}

/// Columns to set; `None` leaves a column alone.
#[derive(Default, Clone, Debug)]
pub struct Change {
    pub vm_state: Option<&'static str>,
    pub task_state: Option<Option<&'static str>>,
    pub power_state: Option<i64>,
    pub host: Option<Option<String>>,
    pub node: Option<Option<String>>,
    pub availability_zone: Option<Option<String>>,
    pub launched_at: Option<Option<i64>>,
    pub terminated_at: Option<Option<i64>>,
    pub progress: Option<i64>,
    pub deleted: Option<bool>,
    pub image_ref: Option<String>,
    pub display_name: Option<String>,
    pub display_description: Option<Option<String>>,
    pub hostname: Option<String>,
    pub access_ip_v4: Option<Option<String>>,
    pub access_ip_v6: Option<Option<String>>,
    pub locked: Option<(bool, Option<String>, Option<String>)>,
    pub metadata: Option<String>,
    pub system_metadata: Option<String>,
    /// (flavor id, vcpus, memory, root, ephemeral, flavor json)
    pub flavor: Option<(String, i64, i64, i64, i64, String)>,
    pub old_flavor: Option<Option<String>>,
    pub new_flavor: Option<Option<String>>,
}

/// Apply `change` if the server is as `expect` says; `false` when it was not.
pub async fn update(db: &Db, uuid: &str, expect: &Expect, change: Change) -> Result<bool> {
    update_in(&db.write, uuid, expect, change).await
}

/// [`update`] inside the caller's transaction.
pub async fn update_in<C: ConnectionTrait>(conn: &C, uuid: &str, expect: &Expect, change: Change) -> Result<bool> {
    use instance::Column as C;
    let t = now();
    let mut q = instance::Entity::update_many().col_expr(C::UpdatedAt, Expr::value(t)).filter(C::Uuid.eq(uuid));
    if let Some(v) = change.vm_state {
        q = q.col_expr(C::VmState, Expr::value(v));
    }
    if let Some(v) = change.task_state {
        q = q.col_expr(C::TaskState, Expr::value(v.map(str::to_string)));
    }
    if let Some(v) = change.power_state {
        q = q.col_expr(C::PowerState, Expr::value(v));
    }
    if let Some(v) = change.host {
        q = q.col_expr(C::Host, Expr::value(v));
    }
    if let Some(v) = change.node {
        q = q.col_expr(C::Node, Expr::value(v));
    }
    if let Some(v) = change.availability_zone {
        q = q.col_expr(C::AvailabilityZone, Expr::value(v));
    }
    if let Some(v) = change.launched_at {
        q = q.col_expr(C::LaunchedAt, Expr::value(v));
    }
    if let Some(v) = change.terminated_at {
        q = q.col_expr(C::TerminatedAt, Expr::value(v));
    }
    if let Some(v) = change.progress {
        q = q.col_expr(C::Progress, Expr::value(v));
    }
    if let Some(v) = change.deleted {
        q = q.col_expr(C::Deleted, Expr::value(v));
        q = q.col_expr(C::DeletedAt, Expr::value(if v { Some(t) } else { None }));
    }
    if let Some(v) = change.image_ref {
        q = q.col_expr(C::ImageRef, Expr::value(v));
    }
    if let Some(v) = change.display_name {
        q = q.col_expr(C::DisplayName, Expr::value(v));
    }
    if let Some(v) = change.display_description {
        q = q.col_expr(C::DisplayDescription, Expr::value(v));
    }
    if let Some(v) = change.hostname {
        q = q.col_expr(C::Hostname, Expr::value(v));
    }
    if let Some(v) = change.access_ip_v4 {
        q = q.col_expr(C::AccessIpV4, Expr::value(v));
    }
    if let Some(v) = change.access_ip_v6 {
        q = q.col_expr(C::AccessIpV6, Expr::value(v));
    }
    if let Some((locked, by, reason)) = change.locked {
        q = q.col_expr(C::Locked, Expr::value(locked));
        q = q.col_expr(C::LockedBy, Expr::value(by));
        q = q.col_expr(C::LockedReason, Expr::value(reason));
    }
    if let Some(v) = change.metadata {
        q = q.col_expr(C::Metadata, Expr::value(v));
    }
    if let Some(v) = change.system_metadata {
        q = q.col_expr(C::SystemMetadata, Expr::value(v));
    }
    if let Some((id, vcpus, ram, root, eph, json)) = change.flavor {
        q = q
            .col_expr(C::FlavorId, Expr::value(id))
            .col_expr(C::Vcpus, Expr::value(vcpus))
            .col_expr(C::MemoryMb, Expr::value(ram))
            .col_expr(C::RootGb, Expr::value(root))
            .col_expr(C::EphemeralGb, Expr::value(eph))
            .col_expr(C::Flavor, Expr::value(json));
    }
    if let Some(v) = change.old_flavor {
        q = q.col_expr(C::OldFlavor, Expr::value(v));
    }
    if let Some(v) = change.new_flavor {
        q = q.col_expr(C::NewFlavor, Expr::value(v));
    }
    if expect.live {
        q = q.filter(C::Deleted.eq(false));
    }
    if let Some(vms) = &expect.vm_states {
        q = q.filter(C::VmState.is_in(vms.iter().copied()));
    }
    if let Some(ts) = &expect.task_states {
        let named: Vec<&str> = ts.iter().flatten().copied().collect();
        let mut cond = sea_orm::Condition::any();
        if ts.iter().any(Option::is_none) {
            cond = cond.add(C::TaskState.is_null());
        }
        if !named.is_empty() {
            cond = cond.add(C::TaskState.is_in(named));
        }
        q = q.filter(cond);
    }
    if let Some(h) = &expect.host {
        q = q.filter(C::Host.eq(h.as_str()));
    }
    if let Some(sys) = &expect.system_metadata {
        q = q.filter(C::SystemMetadata.eq(sys.as_str()));
    }
    Ok(q.exec(conn).await?.rows_affected == 1)
}

/// Live servers assigned to a host.
pub async fn on_host(db: &Db, host: &str) -> Result<Vec<Instance>> {
    Ok(instance::Entity::find()
        .filter(instance::Column::Host.eq(host))
        .filter(instance::Column::Deleted.eq(false))
        .all(&db.read)
        .await?)
}

/// Live servers of several hosts, as (host, uuid) pairs (for affinity).
pub async fn hosts_of(db: &Db, uuids: &[String]) -> Result<BTreeMap<String, String>> {
    if uuids.is_empty() {
        return Ok(BTreeMap::new());
    }
    let rows = instance::Entity::find()
        .filter(instance::Column::Uuid.is_in(uuids.iter().cloned()))
        .filter(instance::Column::Deleted.eq(false))
        .all(&db.read)
        .await?;
    Ok(rows.into_iter().filter_map(|i| Some((i.uuid, i.host?))).collect())
}

/// What a server list asks for, applied in SQL where an index helps and in memory otherwise.
#[derive(Default, Clone, Debug)]
pub struct ListFilter {
    pub project_id: Option<String>,
    pub user_id: Option<String>,
    /// `None`: live servers only; `Some(true)`: deleted only.
    pub deleted: Option<bool>,
    pub changes_since: Option<i64>,
    pub changes_before: Option<i64>,
    pub host: Option<String>,
    pub node: Option<String>,
    pub vm_states: Option<Vec<&'static str>>,
    pub task_states: Option<Vec<&'static str>>,
    pub flavor_id: Option<String>,
    pub image_ref: Option<String>,
    pub availability_zone: Option<String>,
    pub reservation_id: Option<String>,
    pub locked: Option<bool>,
    pub uuids: Option<Vec<String>>,
}

pub async fn list(db: &Db, f: &ListFilter) -> Result<Vec<Instance>> {
    use instance::Column as C;
    let mut q = instance::Entity::find();
    if let Some(p) = &f.project_id {
        q = q.filter(C::ProjectId.eq(p.as_str()));
    }
    if let Some(u) = &f.user_id {
        q = q.filter(C::UserId.eq(u.as_str()));
    }
    match (f.deleted, f.changes_since.or(f.changes_before)) {
        (Some(d), _) => q = q.filter(C::Deleted.eq(d)),
        // changes-since shows deleted servers too
        (None, Some(_)) => {}
        (None, None) => q = q.filter(C::Deleted.eq(false)),
    }
    if let Some(t) = f.changes_since {
        q = q.filter(C::UpdatedAt.gte(t));
    }
    if let Some(t) = f.changes_before {
        q = q.filter(C::UpdatedAt.lte(t));
    }
    if let Some(h) = &f.host {
        q = q.filter(C::Host.eq(h.as_str()));
    }
    if let Some(n) = &f.node {
        q = q.filter(C::Node.eq(n.as_str()));
    }
    if let Some(v) = &f.vm_states {
        q = q.filter(C::VmState.is_in(v.iter().copied()));
    }
    if let Some(v) = &f.task_states {
        q = q.filter(C::TaskState.is_in(v.iter().copied()));
    }
    if let Some(v) = &f.flavor_id {
        q = q.filter(C::FlavorId.eq(v.as_str()));
    }
    if let Some(v) = &f.image_ref {
        q = q.filter(C::ImageRef.eq(v.as_str()));
    }
    if let Some(v) = &f.availability_zone {
        q = q.filter(C::AvailabilityZone.eq(v.as_str()));
    }
    if let Some(v) = &f.reservation_id {
        q = q.filter(C::ReservationId.eq(v.as_str()));
    }
    if let Some(v) = f.locked {
        q = q.filter(C::Locked.eq(v));
    }
    if let Some(v) = &f.uuids {
        q = q.filter(C::Uuid.is_in(v.iter().cloned()));
    }
    Ok(q.order_by_desc(C::CreatedAt).order_by_desc(C::Uuid).all(&db.read).await?)
}

// ---- faults

pub async fn add_fault(
    db: &Db,
    uuid: &str,
    code: i64,
    message: &str,
    details: Option<&str>,
    host: Option<&str>,
) -> Result<()> {
    let am = instance_fault::ActiveModel {
        instance_uuid: Set(uuid.to_string()),
        code: Set(code),
        message: Set(message.chars().take(255).collect()),
        details: Set(details.map(str::to_string)),
        host: Set(host.map(str::to_string)),
        created_at: Set(now()),
        ..Default::default()
    };
    am.insert(&db.write).await?;
    Ok(())
}

/// The latest fault of each server.
pub async fn faults(db: &Db, uuids: &[String]) -> Result<BTreeMap<String, instance_fault::Model>> {
    if uuids.is_empty() {
        return Ok(BTreeMap::new());
    }
    let rows = instance_fault::Entity::find()
        .filter(instance_fault::Column::InstanceUuid.is_in(uuids.iter().cloned()))
        .order_by_asc(instance_fault::Column::Id)
        .all(&db.read)
        .await?;
    Ok(rows.into_iter().map(|f| (f.instance_uuid.clone(), f)).collect())
}

// ---- tags

pub async fn tags(db: &Db, uuids: &[String]) -> Result<BTreeMap<String, Vec<String>>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    if uuids.is_empty() {
        return Ok(out);
    }
    for chunk in uuids.chunks(500) {
        let rows = instance_tag::Entity::find()
            .filter(instance_tag::Column::InstanceUuid.is_in(chunk.iter().cloned()))
            .order_by_asc(instance_tag::Column::Tag)
            .all(&db.read)
            .await?;
        for r in rows {
            out.entry(r.instance_uuid).or_default().push(r.tag);
        }
    }
    Ok(out)
}

pub async fn set_tags<C: ConnectionTrait>(conn: &C, uuid: &str, tags: &[String]) -> Result<()> {
    instance_tag::Entity::delete_many().filter(instance_tag::Column::InstanceUuid.eq(uuid)).exec(conn).await?;
    for t in tags {
        add_tag(conn, uuid, t).await?;
    }
    Ok(())
}

pub async fn add_tag<C: ConnectionTrait>(conn: &C, uuid: &str, tag: &str) -> Result<()> {
    let am = instance_tag::ActiveModel { instance_uuid: Set(uuid.to_string()), tag: Set(tag.to_string()) };
    match am.insert(conn).await {
        Ok(_) => Ok(()),
        Err(e) if stratus_db::is_unique_violation(&e) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

pub async fn delete_tag(db: &Db, uuid: &str, tag: &str) -> Result<bool> {
    let r = instance_tag::Entity::delete_many()
        .filter(instance_tag::Column::InstanceUuid.eq(uuid))
        .filter(instance_tag::Column::Tag.eq(tag))
        .exec(&db.write)
        .await?;
    Ok(r.rows_affected > 0)
}

// ---- instance actions and events

pub async fn start_action<C: ConnectionTrait>(
    conn: &C,
    uuid: &str,
    action: &str,
    request_id: &str,
    user_id: Option<&str>,
    project_id: Option<&str>,
) -> Result<i64> {
    let t = now();
    let am = instance_action::ActiveModel {
        instance_uuid: Set(uuid.to_string()),
        action: Set(action.to_string()),
        request_id: Set(request_id.to_string()),
        user_id: Set(user_id.map(str::to_string)),
        project_id: Set(project_id.map(str::to_string)),
        start_time: Set(t),
        finish_time: Set(None),
        message: Set(None),
        updated_at: Set(t),
        ..Default::default()
    };
    Ok(am.insert(conn).await?.id)
}

async fn action_of<C: ConnectionTrait>(
    conn: &C,
    uuid: &str,
    request_id: &str,
) -> Result<Option<instance_action::Model>> {
    Ok(instance_action::Entity::find()
        .filter(instance_action::Column::InstanceUuid.eq(uuid))
        .filter(instance_action::Column::RequestId.eq(request_id))
        .one(conn)
        .await?)
}

/// Record an event of an action starting (`compute_stop_instance`, ...).
pub async fn start_event(db: &Db, uuid: &str, request_id: &str, event: &str, host: Option<&str>) -> Result<()> {
    start_event_in(&db.write, uuid, request_id, event, host).await
}

/// [`start_event`] inside the caller's transaction.
pub async fn start_event_in<C: ConnectionTrait>(
    conn: &C,
    uuid: &str,
    request_id: &str,
    event: &str,
    host: Option<&str>,
) -> Result<()> {
    let Some(a) = action_of(conn, uuid, request_id).await? else { return Ok(()) };
    let am = instance_action_event::ActiveModel {
        action_id: Set(a.id),
        event: Set(event.to_string()),
        start_time: Set(now()),
        finish_time: Set(None),
        result: Set(None),
        traceback: Set(None),
        host: Set(host.map(str::to_string)),
        details: Set(None),
        ..Default::default()
    };
    am.insert(conn).await?;
    Ok(())
}

/// Record an event's end: `Success` or `Error` (with details), and the action's end with it.
pub async fn finish_event(db: &Db, uuid: &str, request_id: &str, event: &str, error: Option<&str>) -> Result<()> {
    let txn = db.write.begin().await?;
    finish_event_in(&txn, uuid, request_id, event, error).await?;
    txn.commit().await?;
    Ok(())
}

/// [`finish_event`] inside the caller's transaction.
pub async fn finish_event_in<C: ConnectionTrait>(
    conn: &C,
    uuid: &str,
    request_id: &str,
    event: &str,
    error: Option<&str>,
) -> Result<()> {
    let Some(a) = action_of(conn, uuid, request_id).await? else { return Ok(()) };
    let t = now();
    instance_action_event::Entity::update_many()
        .col_expr(instance_action_event::Column::FinishTime, Expr::value(t))
        .col_expr(instance_action_event::Column::Result, Expr::value(if error.is_some() { "Error" } else { "Success" }))
        .col_expr(instance_action_event::Column::Details, Expr::value(error.map(str::to_string)))
        .filter(instance_action_event::Column::ActionId.eq(a.id))
        .filter(instance_action_event::Column::Event.eq(event))
        .filter(instance_action_event::Column::FinishTime.is_null())
        .exec(conn)
        .await?;
    let mut upd = instance_action::Entity::update_many()
        .col_expr(instance_action::Column::FinishTime, Expr::value(t))
        .col_expr(instance_action::Column::UpdatedAt, Expr::value(t))
        .filter(instance_action::Column::Id.eq(a.id));
    if error.is_some() {
        upd = upd.col_expr(instance_action::Column::Message, Expr::value("Error"));
    }
    upd.exec(conn).await?;
    Ok(())
}

pub async fn actions(db: &Db, uuid: &str) -> Result<Vec<instance_action::Model>> {
    Ok(instance_action::Entity::find()
        .filter(instance_action::Column::InstanceUuid.eq(uuid))
        .order_by_desc(instance_action::Column::StartTime)
        .order_by_desc(instance_action::Column::Id)
        .all(&db.read)
        .await?)
}

pub async fn action(db: &Db, uuid: &str, request_id: &str) -> Result<Option<instance_action::Model>> {
    action_of(&db.read, uuid, request_id).await
}

pub async fn events(db: &Db, action_id: i64) -> Result<Vec<instance_action_event::Model>> {
    Ok(instance_action_event::Entity::find()
        .filter(instance_action_event::Column::ActionId.eq(action_id))
        .order_by_asc(instance_action_event::Column::Id)
        .all(&db.read)
        .await?)
}
