//! Address scopes (`/v2.0/address-scopes`): subnet pools of one scope carve
//! from disjoint prefixes.

use sea_orm::{ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter};

use crate::api::list::ListParams;
use crate::entity::address_scope::{self, Column as C, Model as AddressScope};
use crate::entity::subnetpool;
use crate::error::Result;
use crate::store::networks::Viewer;
use crate::store::query::{self, Kind, Table, field};

pub const TABLE: Table = Table {
    name: "address_scopes",
    // no standard attributes, so no tags (as in Neutron)
    tag_type: "",
    fields: &[
        field("id", "id", Kind::Str),
        field("name", "name", Kind::Str),
        field("project_id", "project_id", Kind::Str),
        field("tenant_id", "project_id", Kind::Str),
        field("shared", "shared", Kind::Bool),
        field("ip_version", "ip_version", Kind::Int),
    ],
};

/// A project sees its own scopes and the shared ones.
fn visible(v: &Viewer) -> Condition {
    match v {
        Viewer::Admin => Condition::all(),
        Viewer::Project(p) => Condition::any().add(C::ProjectId.eq(p.as_str())).add(C::Shared.eq(true)),
    }
}

pub async fn list<Cn: ConnectionTrait>(
    conn: &Cn,
    viewer: &Viewer,
    p: &ListParams,
) -> Result<(Vec<AddressScope>, bool)> {
    query::page(conn, &TABLE, address_scope::Entity::find().filter(visible(viewer)), p).await
}

pub async fn get_visible<Cn: ConnectionTrait>(conn: &Cn, viewer: &Viewer, id: &str) -> Result<Option<AddressScope>> {
    Ok(address_scope::Entity::find_by_id(id.to_string()).filter(visible(viewer)).one(conn).await?)
}

pub async fn insert<Cn: ConnectionTrait>(conn: &Cn, a: AddressScope) -> Result<()> {
    address_scope::ActiveModel::from(a).insert(conn).await?;
    Ok(())
}

pub async fn save<Cn: ConnectionTrait>(conn: &Cn, a: &AddressScope) -> Result<()> {
    let mut am = address_scope::ActiveModel::from(a.clone()).reset_all();
    am.id = sea_orm::ActiveValue::Unchanged(a.id.clone());
    am.update(conn).await?;
    Ok(())
}

pub async fn delete<Cn: ConnectionTrait>(conn: &Cn, id: &str) -> Result<bool> {
    Ok(address_scope::Entity::delete_by_id(id.to_string()).exec(conn).await?.rows_affected > 0)
}

/// Hold the scope's row for the rest of the transaction: pools joining it
/// one at a time never both pass the overlap check.
pub async fn lock<Cn: ConnectionTrait>(conn: &Cn, id: &str) -> Result<()> {
    use sea_orm::sea_query::Expr;
    address_scope::Entity::update_many()
        .col_expr(C::Id, Expr::col(C::Id).into())
        .filter(C::Id.eq(id))
        .exec(conn)
        .await?;
    Ok(())
}

/// The subnet pools in a scope.
pub async fn pools_in<Cn: ConnectionTrait>(conn: &Cn, id: &str) -> Result<Vec<subnetpool::Model>> {
    Ok(subnetpool::Entity::find().filter(subnetpool::Column::AddressScopeId.eq(id)).all(conn).await?)
}

/// The address scopes of networks (Neutron's `ipv4_address_scope` /
/// `ipv6_address_scope`): the scope of the pools their subnets came from,
/// as (network, ip version) -> scope id.
pub async fn of_networks<Cn: ConnectionTrait>(
    conn: &Cn,
    networks: &[String],
) -> Result<std::collections::BTreeMap<(String, i64), String>> {
    use crate::entity::subnet;
    use sea_orm::QuerySelect;
    let mut out = std::collections::BTreeMap::new();
    if networks.is_empty() {
        return Ok(out);
    }
    let rows: Vec<(String, String)> = subnet::Entity::find()
        .select_only()
        .column(subnet::Column::NetworkId)
        .column(subnet::Column::SubnetpoolId)
        .filter(subnet::Column::NetworkId.is_in(networks.iter().cloned()))
        .filter(subnet::Column::SubnetpoolId.ne(""))
        .into_tuple()
        .all(conn)
        .await?;
    if rows.is_empty() {
        return Ok(out);
    }
    let pool_ids: std::collections::BTreeSet<String> = rows.iter().map(|(_, p)| p.clone()).collect();
    let pools: std::collections::BTreeMap<String, subnetpool::Model> = subnetpool::Entity::find()
        .filter(subnetpool::Column::Id.is_in(pool_ids))
        .filter(subnetpool::Column::AddressScopeId.ne(""))
        .all(conn)
        .await?
        .into_iter()
        .map(|p| (p.id.clone(), p))
        .collect();
    for (net, pool) in rows {
        if let Some(p) = pools.get(&pool) {
            out.insert((net, p.ip_version), p.address_scope_id.clone());
        }
    }
    Ok(out)
}
