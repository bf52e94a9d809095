//! Subnet pools (`/v2.0/subnetpools`): prefixes subnets are carved from.

use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, Set};

use crate::api::list::ListParams;
use crate::entity::subnetpool::{self, Column as C, Model as SubnetPool};
use crate::error::Result;
use crate::store::networks::Viewer;
use crate::store::query::{self, Kind, Table, field};

pub const TAG_TYPE: &str = "subnetpool";

pub const TABLE: Table = Table {
    name: "subnetpools",
    tag_type: TAG_TYPE,
    fields: &[
        field("id", "id", Kind::Str),
        field("name", "name", Kind::Str),
        field("project_id", "project_id", Kind::Str),
        field("tenant_id", "project_id", Kind::Str),
        field("ip_version", "ip_version", Kind::Int),
        field("default_prefixlen", "default_prefixlen", Kind::Int),
        field("min_prefixlen", "min_prefixlen", Kind::Int),
        field("max_prefixlen", "max_prefixlen", Kind::Int),
        field("shared", "shared", Kind::Bool),
        field("is_default", "is_default", Kind::Bool),
        field("address_scope_id", "address_scope_id", Kind::Str),
        field("description", "description", Kind::Str),
        field("created_at", "created_at", Kind::Str),
        field("updated_at", "updated_at", Kind::Str),
        field("revision_number", "revision_number", Kind::Int),
    ],
};

fn visible(v: &Viewer) -> Condition {
    match v {
        Viewer::Admin => Condition::all(),
        Viewer::Project(p) => Condition::any().add(C::ProjectId.eq(p.as_str())).add(C::Shared.eq(true)),
    }
}

pub async fn list<Cn: ConnectionTrait>(conn: &Cn, viewer: &Viewer, p: &ListParams) -> Result<(Vec<SubnetPool>, bool)> {
    query::page(conn, &TABLE, subnetpool::Entity::find().filter(visible(viewer)), p).await
}

pub async fn get_visible<Cn: ConnectionTrait>(conn: &Cn, viewer: &Viewer, id: &str) -> Result<Option<SubnetPool>> {
    Ok(subnetpool::Entity::find_by_id(id.to_string()).filter(visible(viewer)).one(conn).await?)
}

/// The default pool of an IP version (`use_default_subnetpool`).
pub async fn default_for<Cn: ConnectionTrait>(conn: &Cn, ip_version: i64) -> Result<Option<SubnetPool>> {
    Ok(subnetpool::Entity::find().filter(C::IsDefault.eq(true)).filter(C::IpVersion.eq(ip_version)).one(conn).await?)
}

pub async fn insert<Cn: ConnectionTrait>(conn: &Cn, s: SubnetPool) -> Result<()> {
    subnetpool::ActiveModel::from(s).insert(conn).await?;
    Ok(())
}

pub async fn save<Cn: ConnectionTrait>(conn: &Cn, s: &SubnetPool) -> Result<bool> {
    let mut am = subnetpool::ActiveModel::from(s.clone()).reset_all();
    am.id = sea_orm::ActiveValue::Unchanged(s.id.clone());
    am.revision_number = Set(s.revision_number + 1);
    let r = subnetpool::Entity::update_many()
        .set(am)
        .filter(C::Id.eq(s.id.as_str()))
        .filter(C::RevisionNumber.eq(s.revision_number))
        .exec(conn)
        .await?;
    Ok(r.rows_affected == 1)
}

pub async fn delete<Cn: ConnectionTrait>(conn: &Cn, id: &str) -> Result<bool> {
    crate::store::tags::remove_all(conn, TAG_TYPE, id).await?;
    Ok(subnetpool::Entity::delete_by_id(id.to_string()).exec(conn).await?.rows_affected > 0)
}

/// Hold the pool's row for the rest of the transaction, so that racing
/// subnet creates carve distinct prefixes.
pub async fn lock<Cn: ConnectionTrait>(conn: &Cn, id: &str) -> Result<()> {
    subnetpool::Entity::update_many().col_expr(C::Id, Expr::col(C::Id).into()).filter(C::Id.eq(id)).exec(conn).await?;
    Ok(())
}

/// The pool of `project` named `name` (the first, names are not unique).
pub async fn named<Cn: ConnectionTrait>(conn: &Cn, project: &str, name: &str) -> Result<Option<SubnetPool>> {
    Ok(subnetpool::Entity::find().filter(C::ProjectId.eq(project)).filter(C::Name.eq(name)).one(conn).await?)
}
