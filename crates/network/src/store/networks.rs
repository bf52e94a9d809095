//! Networks: rows, visibility, segment allocation.

use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect, Set};

use crate::api::list::ListParams;
use crate::entity::network::{self, Column as C, Model as Network};
use crate::error::Result;
use crate::store::query::{self, Field, Kind, Table, field};

pub const TAG_TYPE: &str = "network";

pub const TABLE: Table = Table {
    name: "networks",
    tag_type: TAG_TYPE,
    fields: &[
        field("id", "id", Kind::Str),
        field("name", "name", Kind::Str),
        field("project_id", "project_id", Kind::Str),
        field("tenant_id", "project_id", Kind::Str),
        field("status", "status", Kind::Str),
        field("admin_state_up", "admin_state_up", Kind::Bool),
        field("shared", "shared", Kind::Bool),
        field("router:external", "external", Kind::Bool),
        field("mtu", "mtu", Kind::Int),
        field("port_security_enabled", "port_security_enabled", Kind::Bool),
        field("provider:network_type", "network_type", Kind::Str),
        field("provider:physical_network", "physical_network", Kind::Str),
        Field { api: "provider:segmentation_id", column: "segmentation_id", kind: Kind::Int, sortable: false },
        field("description", "description", Kind::Str),
        field("dns_domain", "dns_domain", Kind::Str),
        field("is_default", "is_default", Kind::Bool),
        field("created_at", "created_at", Kind::Str),
        field("updated_at", "updated_at", Kind::Str),
        field("revision_number", "revision_number", Kind::Int),
    ],
};

/// Who is asking: an admin sees every network; a project sees its own and
/// those RBAC policies open to it (shared or external, to it or to everyone).
#[derive(Clone, Debug)]
pub enum Viewer {
    Admin,
    Project(String),
}

fn visible(v: &Viewer) -> Condition {
    match v {
        Viewer::Admin => Condition::all(),
        Viewer::Project(p) => Condition::any()
            .add(C::ProjectId.eq(p.as_str()))
            .add(C::Shared.eq(true))
            .add(C::Id.in_subquery(crate::store::rbac::network_ids_for(p))),
    }
}

/// `shared=` as a project sees it: shared with everyone or with it by a policy.
fn shared_filter(v: &Viewer, vals: &[String]) -> Result<Condition> {
    let mut any = Condition::any();
    for val in vals {
        let want = match val.to_ascii_lowercase().as_str() {
            "true" | "1" | "t" | "yes" | "on" | "y" => true,
            "false" | "0" | "f" | "no" | "off" | "n" => false,
            _ => {
                return Err(crate::error::bad(format!(
                    "Invalid input for shared. Reason: '{val}' cannot be converted to boolean."
                )));
            }
        };
        let shared = match v {
            Viewer::Admin => Condition::all().add(C::Shared.eq(true)),
            Viewer::Project(p) => Condition::any()
                .add(C::Shared.eq(true))
                .add(C::Id.in_subquery(crate::store::rbac::shared_network_ids_for(p))),
        };
        any = any.add(if want { shared } else { shared.not() });
    }
    Ok(any)
}

pub async fn list<Cn: ConnectionTrait>(conn: &Cn, viewer: &Viewer, p: &ListParams) -> Result<(Vec<Network>, bool)> {
    let mut p = p.clone();
    let mut cond = visible(viewer);
    if let Some(vals) = p.take_filter("shared") {
        cond = Condition::all().add(cond).add(shared_filter(viewer, &vals)?);
    }
    query::page(conn, &TABLE, network::Entity::find().filter(cond), &p).await
}

pub async fn get<Cn: ConnectionTrait>(conn: &Cn, id: &str) -> Result<Option<Network>> {
    Ok(network::Entity::find_by_id(id.to_string()).one(conn).await?)
}

/// A network the viewer may see.
pub async fn get_visible<Cn: ConnectionTrait>(conn: &Cn, viewer: &Viewer, id: &str) -> Result<Option<Network>> {
    Ok(network::Entity::find_by_id(id.to_string()).filter(visible(viewer)).one(conn).await?)
}

pub async fn insert<Cn: ConnectionTrait>(conn: &Cn, n: Network) -> Result<()> {
    network::ActiveModel::from(n).insert(conn).await?;
    Ok(())
}

/// Write every attribute of `n` and bump its revision (the caller computed `n`
/// from the row it read): false when the row is gone or changed meanwhile.
pub async fn save<Cn: ConnectionTrait>(conn: &Cn, n: &Network) -> Result<bool> {
    let mut am = network::ActiveModel::from(n.clone()).reset_all();
    am.id = sea_orm::ActiveValue::Unchanged(n.id.clone());
    am.revision_number = Set(n.revision_number + 1);
    let r = network::Entity::update_many()
        .set(am)
        .filter(C::Id.eq(n.id.as_str()))
        .filter(C::RevisionNumber.eq(n.revision_number))
        .exec(conn)
        .await?;
    Ok(r.rows_affected == 1)
}

/// Bump the revision of a network whose sub-resources changed (tags).
pub async fn bump<Cn: ConnectionTrait>(conn: &Cn, id: &str) -> Result<()> {
    network::Entity::update_many()
        .col_expr(C::RevisionNumber, Expr::col(C::RevisionNumber).add(1))
        .col_expr(C::UpdatedAt, Expr::value(crate::store::now()))
        .filter(C::Id.eq(id))
        .exec(conn)
        .await?;
    Ok(())
}

pub async fn delete<Cn: ConnectionTrait>(conn: &Cn, id: &str) -> Result<bool> {
    Ok(network::Entity::delete_by_id(id.to_string()).exec(conn).await?.rows_affected > 0)
}

/// Remove the unassociated floating IPs of an external network that is being
/// deleted, with their ports (Neutron's `delete_disassociated_floatingips`);
/// associated ones (to a port, or through port forwardings to a router) stay
/// and keep the network in use.
pub async fn delete_disassociated_floatingips<Cn: ConnectionTrait>(conn: &Cn, id: &str) -> Result<()> {
    use crate::entity::floatingip::{self, Column as F};
    let fips = floatingip::Entity::find()
        .filter(F::FloatingNetworkId.eq(id))
        .filter(F::FixedPortId.is_null())
        .filter(F::RouterId.is_null())
        .all(conn)
        .await?;
    for f in fips {
        crate::store::floatingips::delete(conn, &f.id).await?;
        crate::store::ports::delete(conn, &f.floating_port_id).await?;
    }
    Ok(())
}

/// Segmentation ids in use for a network type (and physical network).
pub async fn used_segments<Cn: ConnectionTrait>(conn: &Cn, network_type: &str, physnet: &str) -> Result<Vec<i64>> {
    let rows: Vec<Option<i64>> = network::Entity::find()
        .select_only()
        .column(C::SegmentationId)
        .filter(C::NetworkType.eq(network_type))
        .filter(C::PhysicalNetwork.eq(physnet))
        .into_tuple()
        .all(conn)
        .await?;
    Ok(rows.into_iter().flatten().collect())
}

/// Is there a default external network already (`is_default`)?
pub async fn default_external<Cn: ConnectionTrait>(conn: &Cn) -> Result<Option<Network>> {
    Ok(network::Entity::find().filter(C::IsDefault.eq(true)).filter(C::External.eq(true)).one(conn).await?)
}

/// The network of `project` named `name` (the first, names are not unique).
pub async fn named<C: ConnectionTrait>(conn: &C, project: &str, name: &str) -> Result<Option<Network>> {
    Ok(network::Entity::find()
        .filter(network::Column::ProjectId.eq(project))
        .filter(network::Column::Name.eq(name))
        .one(conn)
        .await?)
}
