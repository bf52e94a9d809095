//! Generic volume groups: group types (group specs as a JSON object),
//! groups with the volume types they allow, and group snapshots. A volume
//! belongs to a group through `volumes.group_id`; a snapshot to a group
//! snapshot through `snapshots.group_snapshot_id`.

use std::collections::HashMap;

use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, Set,
};
use serde_json::{Map, Value};

use crate::entity::{group, group_snapshot, group_type, group_volume_type, snapshot, volume};
use crate::error::{Result, VolumeError, conflict};

fn now() -> String {
    crate::api::now()
}

// ---- group types ----

pub async fn get_type<C: ConnectionTrait>(conn: &C, id: &str) -> Result<Option<group_type::Model>> {
    Ok(group_type::Entity::find_by_id(id.to_string()).one(conn).await?)
}

pub async fn type_by_name<C: ConnectionTrait>(conn: &C, name: &str) -> Result<Option<group_type::Model>> {
    Ok(group_type::Entity::find().filter(group_type::Column::Name.eq(name)).one(conn).await?)
}

/// A type by id, else by name (Cinder accepts either where a group names its type).
pub async fn type_by_id_or_name<C: ConnectionTrait>(conn: &C, key: &str) -> Result<Option<group_type::Model>> {
    if let Some(t) = get_type(conn, key).await? {
        return Ok(Some(t));
    }
    type_by_name(conn, key).await
}

/// Every group type, oldest first.
pub async fn list_types<C: ConnectionTrait>(conn: &C) -> Result<Vec<group_type::Model>> {
    Ok(group_type::Entity::find()
        .order_by_asc(group_type::Column::CreatedAt)
        .order_by_asc(group_type::Column::Id)
        .all(conn)
        .await?)
}

pub fn specs(t: &group_type::Model) -> Map<String, Value> {
    crate::api::json_object(&t.group_specs)
}

fn type_exists(name: &str) -> VolumeError {
    conflict(format!("Group Type {name} already exists."))
}

/// Make a group type (409 when the name is taken).
pub async fn create_type<C: ConnectionTrait>(
    conn: &C,
    name: &str,
    description: Option<String>,
    is_public: bool,
    group_specs: Map<String, Value>,
) -> Result<group_type::Model> {
    if type_by_name(conn, name).await?.is_some() {
        return Err(type_exists(name));
    }
    let row = group_type::ActiveModel {
        id: Set(uuid::Uuid::new_v4().to_string()),
        name: Set(name.to_string()),
        description: Set(description),
        is_public: Set(is_public),
        group_specs: Set(Value::Object(group_specs).to_string()),
        created_at: Set(now()),
        updated_at: Set(None),
    };
    match row.insert(conn).await {
        Ok(m) => Ok(m),
        Err(e) if stratus_db::is_unique_violation(&e) => Err(type_exists(name)),
        Err(e) => Err(e.into()),
    }
}

/// Change a group type's name, description or visibility (409 when the new name is taken).
pub async fn update_type<C: ConnectionTrait>(
    conn: &C,
    t: &group_type::Model,
    name: Option<String>,
    description: Option<String>,
    is_public: Option<bool>,
) -> Result<group_type::Model> {
    if let Some(n) = &name
        && n != &t.name
        && type_by_name(conn, n).await?.is_some()
    {
        return Err(type_exists(n));
    }
    let mut am: group_type::ActiveModel = t.clone().into();
    if let Some(n) = name {
        am.name = Set(n);
    }
    if let Some(d) = description {
        am.description = Set(Some(d));
    }
    if let Some(p) = is_public {
        am.is_public = Set(p);
    }
    am.updated_at = Set(Some(now()));
    match am.update(conn).await {
        Ok(m) => Ok(m),
        Err(e) if stratus_db::is_unique_violation(&e) => Err(type_exists(&t.name)),
        Err(e) => Err(e.into()),
    }
}

pub async fn set_specs<C: ConnectionTrait>(conn: &C, type_id: &str, specs: &Map<String, Value>) -> Result<()> {
    group_type::Entity::update_many()
        .col_expr(group_type::Column::GroupSpecs, Expr::value(Value::Object(specs.clone()).to_string()))
        .col_expr(group_type::Column::UpdatedAt, Expr::value(now()))
        .filter(group_type::Column::Id.eq(type_id))
        .exec(conn)
        .await?;
    Ok(())
}

/// Does a group or group snapshot use the type?
pub async fn type_in_use<C: ConnectionTrait>(conn: &C, type_id: &str) -> Result<bool> {
    let groups = group::Entity::find().filter(group::Column::GroupTypeId.eq(type_id)).count(conn).await?;
    let snaps =
        group_snapshot::Entity::find().filter(group_snapshot::Column::GroupTypeId.eq(type_id)).count(conn).await?;
    Ok(groups + snaps > 0)
}

pub async fn delete_type<C: ConnectionTrait>(conn: &C, type_id: &str) -> Result<()> {
    group_type::Entity::delete_by_id(type_id.to_string()).exec(conn).await?;
    Ok(())
}

// ---- groups ----

pub async fn get<C: ConnectionTrait>(conn: &C, id: &str) -> Result<Option<group::Model>> {
    Ok(group::Entity::find_by_id(id.to_string()).one(conn).await?)
}

/// The groups of a project (every project's with `None`), oldest first.
pub async fn list<C: ConnectionTrait>(conn: &C, project_id: Option<&str>) -> Result<Vec<group::Model>> {
    let mut q = group::Entity::find();
    if let Some(p) = project_id {
        q = q.filter(group::Column::ProjectId.eq(p));
    }
    Ok(q.order_by_asc(group::Column::CreatedAt).order_by_asc(group::Column::Id).all(conn).await?)
}

/// How many groups a project has.
pub async fn count<C: ConnectionTrait>(conn: &C, project_id: &str) -> Result<u64> {
    Ok(group::Entity::find().filter(group::Column::ProjectId.eq(project_id)).count(conn).await?)
}

/// Write a new group and the volume types it allows (in that order).
pub async fn insert<C: ConnectionTrait>(conn: &C, g: &group::Model, type_ids: &[String]) -> Result<()> {
    group::ActiveModel::from(g.clone()).insert(conn).await?;
    add_volume_types(conn, &g.id, type_ids).await
}

/// Allow more volume types in a group (those it has already are skipped).
pub async fn add_volume_types<C: ConnectionTrait>(conn: &C, group_id: &str, type_ids: &[String]) -> Result<()> {
    let have = volume_types_of(conn, group_id).await?;
    let mut next = have.len() as i64;
    for t in type_ids {
        if have.contains(t) {
            continue;
        }
        group_volume_type::ActiveModel {
            group_id: Set(group_id.to_string()),
            volume_type_id: Set(t.clone()),
            position: Set(next),
        }
        .insert(conn)
        .await?;
        next += 1;
    }
    Ok(())
}

/// The volume types a group allows, in their order.
pub async fn volume_types_of<C: ConnectionTrait>(conn: &C, group_id: &str) -> Result<Vec<String>> {
    Ok(group_volume_type::Entity::find()
        .filter(group_volume_type::Column::GroupId.eq(group_id))
        .order_by_asc(group_volume_type::Column::Position)
        .all(conn)
        .await?
        .into_iter()
        .map(|r| r.volume_type_id)
        .collect())
}

/// The volume types of many groups, by group id.
pub async fn volume_types_by_group<C: ConnectionTrait>(
    conn: &C,
    group_ids: &[String],
) -> Result<HashMap<String, Vec<String>>> {
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    if group_ids.is_empty() {
        return Ok(out);
    }
    let rows = group_volume_type::Entity::find()
        .filter(group_volume_type::Column::GroupId.is_in(group_ids.iter().cloned()))
        .order_by_asc(group_volume_type::Column::Position)
        .all(conn)
        .await?;
    for r in rows {
        out.entry(r.group_id).or_default().push(r.volume_type_id);
    }
    Ok(out)
}

/// Is a volume type allowed by some group?
pub async fn volume_type_in_groups<C: ConnectionTrait>(conn: &C, type_id: &str) -> Result<bool> {
    Ok(group_volume_type::Entity::find()
        .filter(group_volume_type::Column::VolumeTypeId.eq(type_id))
        .count(conn)
        .await?
        > 0)
}

/// Save a group's name, description and status as given.
pub async fn save<C: ConnectionTrait>(conn: &C, g: &group::Model) -> Result<()> {
    let mut am = group::ActiveModel::from(g.clone()).reset_all();
    am.id = sea_orm::ActiveValue::Unchanged(g.id.clone());
    am.update(conn).await?;
    Ok(())
}

/// Move a group from one of `from` (any status when empty) to `to`; false
/// when it was in none of them (or is gone).
pub async fn transition<C: ConnectionTrait>(conn: &C, id: &str, from: &[&str], to: &str) -> Result<bool> {
    let mut q = group::Entity::update_many()
        .col_expr(group::Column::Status, Expr::value(to))
        .col_expr(group::Column::UpdatedAt, Expr::value(now()))
        .filter(group::Column::Id.eq(id));
    if !from.is_empty() {
        q = q.filter(group::Column::Status.is_in(from.iter().copied()));
    }
    Ok(q.exec(conn).await?.rows_affected == 1)
}

/// Remove a group's row and its volume types.
pub async fn delete<C: ConnectionTrait>(conn: &C, id: &str) -> Result<()> {
    group_volume_type::Entity::delete_many().filter(group_volume_type::Column::GroupId.eq(id)).exec(conn).await?;
    group::Entity::delete_by_id(id.to_string()).exec(conn).await?;
    Ok(())
}

/// The volumes in a group, oldest first.
pub async fn volumes_of<C: ConnectionTrait>(conn: &C, group_id: &str) -> Result<Vec<volume::Model>> {
    Ok(volume::Entity::find()
        .filter(volume::Column::GroupId.eq(group_id))
        .order_by_asc(volume::Column::CreatedAt)
        .order_by_asc(volume::Column::Id)
        .all(conn)
        .await?)
}

/// Put a volume in a group (or take it out with `None`).
pub async fn set_volume_group<C: ConnectionTrait>(conn: &C, volume_id: &str, group_id: Option<&str>) -> Result<()> {
    volume::Entity::update_many()
        .col_expr(volume::Column::GroupId, Expr::value(group_id.map(str::to_string)))
        .col_expr(volume::Column::UpdatedAt, Expr::value(now()))
        .filter(volume::Column::Id.eq(volume_id))
        .exec(conn)
        .await?;
    Ok(())
}

// ---- group snapshots ----

pub async fn get_snapshot<C: ConnectionTrait>(conn: &C, id: &str) -> Result<Option<group_snapshot::Model>> {
    Ok(group_snapshot::Entity::find_by_id(id.to_string()).one(conn).await?)
}

/// The group snapshots of a project (every project's with `None`), oldest first.
pub async fn list_snapshots<C: ConnectionTrait>(
    conn: &C,
    project_id: Option<&str>,
) -> Result<Vec<group_snapshot::Model>> {
    let mut q = group_snapshot::Entity::find();
    if let Some(p) = project_id {
        q = q.filter(group_snapshot::Column::ProjectId.eq(p));
    }
    Ok(q.order_by_asc(group_snapshot::Column::CreatedAt).order_by_asc(group_snapshot::Column::Id).all(conn).await?)
}

/// Does the group have group snapshots?
pub async fn has_snapshots<C: ConnectionTrait>(conn: &C, group_id: &str) -> Result<bool> {
    Ok(group_snapshot::Entity::find().filter(group_snapshot::Column::GroupId.eq(group_id)).count(conn).await? > 0)
}

pub async fn insert_snapshot<C: ConnectionTrait>(conn: &C, gs: &group_snapshot::Model) -> Result<()> {
    group_snapshot::ActiveModel::from(gs.clone()).insert(conn).await?;
    Ok(())
}

/// Move a group snapshot from one of `from` (any status when empty) to `to`.
pub async fn snapshot_transition<C: ConnectionTrait>(conn: &C, id: &str, from: &[&str], to: &str) -> Result<bool> {
    let mut q = group_snapshot::Entity::update_many()
        .col_expr(group_snapshot::Column::Status, Expr::value(to))
        .col_expr(group_snapshot::Column::UpdatedAt, Expr::value(now()))
        .filter(group_snapshot::Column::Id.eq(id));
    if !from.is_empty() {
        q = q.filter(group_snapshot::Column::Status.is_in(from.iter().copied()));
    }
    Ok(q.exec(conn).await?.rows_affected == 1)
}

pub async fn delete_snapshot<C: ConnectionTrait>(conn: &C, id: &str) -> Result<()> {
    group_snapshot::Entity::delete_by_id(id.to_string()).exec(conn).await?;
    Ok(())
}

/// The snapshots a group snapshot took, oldest first.
pub async fn snapshots_of<C: ConnectionTrait>(conn: &C, group_snapshot_id: &str) -> Result<Vec<snapshot::Model>> {
    Ok(snapshot::Entity::find()
        .filter(snapshot::Column::GroupSnapshotId.eq(group_snapshot_id))
        .order_by_asc(snapshot::Column::CreatedAt)
        .order_by_asc(snapshot::Column::Id)
        .all(conn)
        .await?)
}

/// Is a group being made from this group or group snapshot right now?
pub async fn source_of_creating<C: ConnectionTrait>(
    conn: &C,
    source_group_id: Option<&str>,
    group_snapshot_id: Option<&str>,
) -> Result<bool> {
    let mut q = group::Entity::find().filter(group::Column::Status.eq("creating"));
    if let Some(g) = source_group_id {
        q = q.filter(group::Column::SourceGroupId.eq(g));
    }
    if let Some(s) = group_snapshot_id {
        q = q.filter(group::Column::GroupSnapshotId.eq(s));
    }
    Ok(q.count(conn).await? > 0)
}
