//! Volume rows. Status changes are compare-and-set on the status the caller
//! saw, so two racing actions on one volume cannot both start.

use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect};

use crate::entity::volume::{self, Column as C, Model as Volume};
use crate::entity::{attachment, volume_type};
use crate::error::{Result, missing};

pub async fn get<Cn: ConnectionTrait>(conn: &Cn, id: &str) -> Result<Option<Volume>> {
    Ok(volume::Entity::find_by_id(id.to_string()).one(conn).await?)
}

/// The volume if the caller may see it (its project's, or any for an admin): 404 otherwise.
pub async fn visible<Cn: ConnectionTrait>(conn: &Cn, id: &str, project: &str, admin: bool) -> Result<Volume> {
    match get(conn, id).await? {
        Some(v) if admin || v.project_id == project => Ok(v),
        _ => Err(missing("Volume", id)),
    }
}

/// Every volume of `project` (None: of every project).
pub async fn list<Cn: ConnectionTrait>(conn: &Cn, project: Option<&str>) -> Result<Vec<Volume>> {
    let mut q = volume::Entity::find();
    if let Some(p) = project {
        q = q.filter(C::ProjectId.eq(p));
    }
    Ok(q.all(conn).await?)
}

pub async fn insert<Cn: ConnectionTrait>(conn: &Cn, v: Volume) -> Result<()> {
    volume::ActiveModel::from(v).insert(conn).await?;
    Ok(())
}

/// Write every attribute of `v` (no status check).
pub async fn save<Cn: ConnectionTrait>(conn: &Cn, v: &Volume) -> Result<()> {
    let mut am = volume::ActiveModel::from(v.clone()).reset_all();
    am.id = sea_orm::ActiveValue::Unchanged(v.id.clone());
    volume::Entity::update(am).exec(conn).await?;
    Ok(())
}

/// Set the status to `to` if it is one of `from` now; false otherwise.
pub async fn transition<Cn: ConnectionTrait>(conn: &Cn, id: &str, from: &[&str], to: &str) -> Result<bool> {
    let r = volume::Entity::update_many()
        .col_expr(C::Status, Expr::value(to))
        .col_expr(C::UpdatedAt, Expr::value(crate::api::now()))
        .filter(C::Id.eq(id))
        .filter(C::Status.is_in(from.iter().copied()))
        .exec(conn)
        .await?;
    Ok(r.rows_affected == 1)
}

/// Set the status (whatever it was).
pub async fn set_status<Cn: ConnectionTrait>(conn: &Cn, id: &str, to: &str) -> Result<()> {
    volume::Entity::update_many()
        .col_expr(C::Status, Expr::value(to))
        .col_expr(C::UpdatedAt, Expr::value(crate::api::now()))
        .filter(C::Id.eq(id))
        .exec(conn)
        .await?;
    Ok(())
}

pub async fn delete<Cn: ConnectionTrait>(conn: &Cn, id: &str) -> Result<bool> {
    Ok(volume::Entity::delete_by_id(id.to_string()).exec(conn).await?.rows_affected > 0)
}

/// GiB the volumes placed on `host` (any pool of it) claim.
pub async fn allocated_gb<Cn: ConnectionTrait>(conn: &Cn, host: &str) -> Result<i64> {
    let rows: Vec<(Option<String>, i64)> = volume::Entity::find()
        .select_only()
        .column(C::Host)
        .column(C::Size)
        .filter(C::Host.like(format!("{host}@%")))
        .into_tuple()
        .all(conn)
        .await?;
    Ok(rows.iter().map(|(_, s)| *s).sum())
}

/// Is any volume of type `type_id`?
pub async fn type_in_use<Cn: ConnectionTrait>(conn: &Cn, type_id: &str) -> Result<bool> {
    Ok(volume::Entity::find().filter(C::VolumeTypeId.eq(type_id)).one(conn).await?.is_some())
}

/// Name lookups (`openstack volume show NAME` lists with `name=`).
pub async fn by_name<Cn: ConnectionTrait>(conn: &Cn, project: &str, name: &str) -> Result<Vec<Volume>> {
    Ok(volume::Entity::find().filter(C::ProjectId.eq(project)).filter(C::Name.eq(name)).all(conn).await?)
}

pub fn json_map(text: &str) -> serde_json::Map<String, serde_json::Value> {
    crate::api::json_object(text)
}

pub fn to_text(m: &serde_json::Map<String, serde_json::Value>) -> String {
    serde_json::Value::Object(m.clone()).to_string()
}

/// The volume's attachments as the volume view shows them.
pub async fn attachments_of<C: sea_orm::ConnectionTrait>(conn: &C, ids: &[String]) -> Result<Vec<attachment::Model>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(attachment::Entity::find()
        .filter(attachment::Column::VolumeId.is_in(ids.iter().cloned()))
        .filter(attachment::Column::AttachStatus.eq(crate::model::attach_status::ATTACHED))
        .all(conn)
        .await?)
}

/// The names of the volume types of `vols`, by type id.
pub async fn type_names<C: sea_orm::ConnectionTrait>(
    conn: &C,
    vols: &[Volume],
) -> Result<std::collections::HashMap<String, String>> {
    let ids: Vec<String> = vols.iter().filter_map(|v| v.volume_type_id.clone()).collect();
    if ids.is_empty() {
        return Ok(Default::default());
    }
    let types = volume_type::Entity::find().filter(volume_type::Column::Id.is_in(ids)).all(conn).await?;
    Ok(types.into_iter().map(|t| (t.id, t.name)).collect())
}

/// How many snapshots the volume has.
pub async fn snapshot_count<Cn: ConnectionTrait>(conn: &Cn, volume_id: &str) -> Result<u64> {
    use sea_orm::PaginatorTrait;
    Ok(crate::entity::snapshot::Entity::find()
        .filter(crate::entity::snapshot::Column::VolumeId.eq(volume_id))
        .count(conn)
        .await?)
}
