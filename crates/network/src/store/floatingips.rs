//! Floating IPs: rows and their association with a fixed IP of a port.
//! Each holds its address through a `network:floatingip` port (see
//! [`crate::store::routers::create_service_port`]).

use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, Set,
};

use crate::api::list::ListParams;
use crate::entity::floatingip::{self, Column as C, Model as FloatingIp};
use crate::error::Result;
use crate::store::networks::Viewer;
use crate::store::query::{self, Field, Kind, Table, field};

pub const TAG_TYPE: &str = "floatingip";

const fn unsorted(api: &'static str, column: &'static str) -> Field {
    Field { api, column, kind: Kind::Str, sortable: false }
}

pub const TABLE: Table = Table {
    name: "floatingips",
    tag_type: TAG_TYPE,
    fields: &[
        field("id", "id", Kind::Str),
        field("project_id", "project_id", Kind::Str),
        field("tenant_id", "project_id", Kind::Str),
        field("floating_network_id", "floating_network_id", Kind::Str),
        field("floating_ip_address", "floating_ip_address", Kind::Str),
        unsorted("port_id", "fixed_port_id"),
        unsorted("fixed_ip_address", "fixed_ip_address"),
        unsorted("router_id", "router_id"),
        field("status", "status", Kind::Str),
        field("description", "description", Kind::Str),
        field("created_at", "created_at", Kind::Str),
        field("updated_at", "updated_at", Kind::Str),
        field("revision_number", "revision_number", Kind::Int),
    ],
};

fn visible(v: &Viewer) -> Condition {
    match v {
        Viewer::Admin => Condition::all(),
        Viewer::Project(p) => Condition::all().add(C::ProjectId.eq(p.as_str())),
    }
}

pub async fn list<Cn: ConnectionTrait>(conn: &Cn, viewer: &Viewer, p: &ListParams) -> Result<(Vec<FloatingIp>, bool)> {
    query::page(conn, &TABLE, floatingip::Entity::find().filter(visible(viewer)), p).await
}

pub async fn get_visible<Cn: ConnectionTrait>(conn: &Cn, viewer: &Viewer, id: &str) -> Result<Option<FloatingIp>> {
    Ok(floatingip::Entity::find_by_id(id.to_string()).filter(visible(viewer)).one(conn).await?)
}

pub async fn insert<Cn: ConnectionTrait>(conn: &Cn, f: FloatingIp) -> Result<()> {
    floatingip::ActiveModel::from(f).insert(conn).await?;
    Ok(())
}

/// Write every attribute of `f` and bump its revision: false when the row
/// changed meanwhile.
pub async fn save<Cn: ConnectionTrait>(conn: &Cn, f: &FloatingIp) -> Result<bool> {
    let mut am = floatingip::ActiveModel::from(f.clone()).reset_all();
    am.id = sea_orm::ActiveValue::Unchanged(f.id.clone());
    am.revision_number = Set(f.revision_number + 1);
    let r = floatingip::Entity::update_many()
        .set(am)
        .filter(C::Id.eq(f.id.as_str()))
        .filter(C::RevisionNumber.eq(f.revision_number))
        .exec(conn)
        .await?;
    Ok(r.rows_affected == 1)
}

/// Remove a floating IP and its tags (the caller removes its port).
pub async fn delete<Cn: ConnectionTrait>(conn: &Cn, id: &str) -> Result<bool> {
    crate::store::tags::remove_all(conn, TAG_TYPE, id).await?;
    Ok(floatingip::Entity::delete_by_id(id.to_string()).exec(conn).await?.rows_affected > 0)
}

/// The floating IP already on this fixed IP of this port on this external network.
pub async fn on_fixed_ip<Cn: ConnectionTrait>(
    conn: &Cn,
    network: &str,
    port: &str,
    ip: &str,
) -> Result<Option<FloatingIp>> {
    Ok(floatingip::Entity::find()
        .filter(C::FloatingNetworkId.eq(network))
        .filter(C::FixedPortId.eq(port))
        .filter(C::FixedIpAddress.eq(ip))
        .one(conn)
        .await?)
}

/// Floating IPs associated through a router (optionally only to fixed IPs in `ips`).
pub async fn via_router<Cn: ConnectionTrait>(conn: &Cn, router: &str) -> Result<Vec<FloatingIp>> {
    Ok(floatingip::Entity::find().filter(C::RouterId.eq(router)).all(conn).await?)
}

/// How many floating IPs are associated through a router.
pub async fn count_via_router<Cn: ConnectionTrait>(conn: &Cn, router: &str) -> Result<u64> {
    Ok(floatingip::Entity::find().filter(C::RouterId.eq(router)).count(conn).await?)
}

/// A port is going away: the floating IPs on it lose their association, and
/// the port forwardings to it go (as Neutron does); a floating IP left without
/// forwardings is no longer tied to their router.
pub async fn disassociate_port<Cn: ConnectionTrait>(conn: &Cn, port_id: &str) -> Result<()> {
    for pf in crate::store::port_forwardings::of_internal_port(conn, port_id).await? {
        crate::store::port_forwardings::delete(conn, &pf.id).await?;
        if crate::store::port_forwardings::count_of_fip(conn, &pf.floatingip_id).await? == 0
            && let Some(mut f) = floatingip::Entity::find_by_id(pf.floatingip_id.clone()).one(conn).await?
        {
            f.router_id = None;
            let mut am = floatingip::ActiveModel::from(f.clone()).reset_all();
            am.id = sea_orm::ActiveValue::Unchanged(f.id.clone());
            am.revision_number = Set(f.revision_number + 1);
            floatingip::Entity::update_many().set(am).filter(C::Id.eq(f.id.as_str())).exec(conn).await?;
        }
    }
    for mut f in floatingip::Entity::find().filter(C::FixedPortId.eq(port_id)).all(conn).await? {
        f.fixed_port_id = None;
        f.fixed_ip_address = None;
        f.router_id = None;
        f.status = "DOWN".into();
        f.updated_at = crate::store::now();
        let mut am = floatingip::ActiveModel::from(f.clone()).reset_all();
        am.id = sea_orm::ActiveValue::Unchanged(f.id.clone());
        am.revision_number = Set(f.revision_number + 1);
        floatingip::Entity::update_many().set(am).filter(C::Id.eq(f.id.as_str())).exec(conn).await?;
    }
    Ok(())
}

pub async fn get<Cn: ConnectionTrait>(conn: &Cn, id: &str) -> Result<Option<FloatingIp>> {
    Ok(floatingip::Entity::find_by_id(id.to_string()).one(conn).await?)
}

/// Floating IPs associated with a port.
pub async fn on_port<Cn: ConnectionTrait>(conn: &Cn, port: &str) -> Result<Vec<FloatingIp>> {
    Ok(floatingip::Entity::find().filter(C::FixedPortId.eq(port)).all(conn).await?)
}

/// The status the agent reports for a floating IP, as a change (revision
/// bumped) only when it differs. False when nothing changed.
pub async fn set_status<Cn: ConnectionTrait>(conn: &Cn, id: &str, status: &str) -> Result<bool> {
    use sea_orm::sea_query::Expr;
    let r = floatingip::Entity::update_many()
        .col_expr(C::Status, Expr::value(status.to_string()))
        .col_expr(C::RevisionNumber, Expr::col(C::RevisionNumber).add(1))
        .col_expr(C::UpdatedAt, Expr::value(crate::store::now()))
        .filter(C::Id.eq(id))
        .filter(C::Status.ne(status))
        .exec(conn)
        .await?;
    Ok(r.rows_affected > 0)
}
