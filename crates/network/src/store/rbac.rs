//! RBAC policies: who else may use an object, and how (`access_as_shared`,
//! `access_as_external`), for one project or for every project (`*`).
//!
//! A network's `shared` column mirrors "a `*` access_as_shared policy exists"
//! (so lists and filters need no join); everything else about who sees a
//! network is read from the policies (see [`network_ids_for`]).

use std::collections::BTreeSet;

use sea_orm::sea_query::{Alias, Expr, Query, SelectStatement};
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QuerySelect};

use crate::api::list::ListParams;
use crate::entity::network;
use crate::entity::rbac_policy::{self, Column as C, Model as RbacPolicy};
use crate::error::{NetworkError, Result, conflict};
use crate::store::networks::Viewer;
use crate::store::query::{self, Kind, Table, field};

pub const ACCESS_AS_SHARED: &str = "access_as_shared";
pub const ACCESS_AS_EXTERNAL: &str = "access_as_external";
/// The target meaning every project.
pub const EVERYONE: &str = "*";

/// The object types policies may name, with the actions each takes.
pub const OBJECT_TYPES: &[(&str, &[&str])] = &[("network", &[ACCESS_AS_SHARED, ACCESS_AS_EXTERNAL])];

pub const TABLE: Table = Table {
    name: "rbac_policies",
    tag_type: "",
    fields: &[
        field("id", "id", Kind::Str),
        field("project_id", "project_id", Kind::Str),
        field("tenant_id", "project_id", Kind::Str),
        field("object_type", "object_type", Kind::Str),
        field("object_id", "object_id", Kind::Str),
        field("action", "action", Kind::Str),
        field("target_tenant", "target_project", Kind::Str),
        field("target_project", "target_project", Kind::Str),
    ],
};

/// A project sees the policies it owns; an admin sees them all.
fn owned_by(v: &Viewer) -> sea_orm::Condition {
    match v {
        Viewer::Admin => sea_orm::Condition::all(),
        Viewer::Project(p) => sea_orm::Condition::all().add(C::ProjectId.eq(p.as_str())),
    }
}

pub async fn list<Cn: ConnectionTrait>(conn: &Cn, v: &Viewer, p: &ListParams) -> Result<(Vec<RbacPolicy>, bool)> {
    query::page(conn, &TABLE, rbac_policy::Entity::find().filter(owned_by(v)), p).await
}

pub async fn get_visible<Cn: ConnectionTrait>(conn: &Cn, v: &Viewer, id: &str) -> Result<Option<RbacPolicy>> {
    Ok(rbac_policy::Entity::find_by_id(id.to_string()).filter(owned_by(v)).one(conn).await?)
}

fn duplicate() -> NetworkError {
    conflict("DuplicateRbacPolicy", "An RBAC policy already exists with those values.")
}

fn map_unique(e: sea_orm::DbErr) -> NetworkError {
    if stratus_db::is_unique_violation(&e) { duplicate() } else { e.into() }
}

/// Store a policy: 409 `DuplicateRbacPolicy` when the same one exists (the
/// unique index decides, so racing creates make one).
pub async fn insert<Cn: ConnectionTrait>(conn: &Cn, p: RbacPolicy) -> Result<()> {
    let exists = rbac_policy::Entity::find()
        .filter(C::ObjectType.eq(p.object_type.as_str()))
        .filter(C::ObjectId.eq(p.object_id.as_str()))
        .filter(C::Action.eq(p.action.as_str()))
        .filter(C::TargetProject.eq(p.target_project.as_str()))
        .one(conn)
        .await?;
    if exists.is_some() {
        return Err(duplicate());
    }
    rbac_policy::ActiveModel::from(p).insert(conn).await.map_err(map_unique)?;
    Ok(())
}

/// Point a policy at another target (the only attribute that changes).
pub async fn set_target<Cn: ConnectionTrait>(conn: &Cn, id: &str, target: &str) -> Result<bool> {
    let r = rbac_policy::Entity::update_many()
        .col_expr(C::TargetProject, Expr::value(target.to_string()))
        .filter(C::Id.eq(id))
        .exec(conn)
        .await
        .map_err(map_unique)?;
    Ok(r.rows_affected == 1)
}

pub async fn delete<Cn: ConnectionTrait>(conn: &Cn, id: &str) -> Result<bool> {
    Ok(rbac_policy::Entity::delete_by_id(id.to_string()).exec(conn).await?.rows_affected > 0)
}

/// Every policy on an object (when the object goes).
pub async fn delete_for_object<Cn: ConnectionTrait>(conn: &Cn, object_type: &str, object_id: &str) -> Result<()> {
    rbac_policy::Entity::delete_many()
        .filter(C::ObjectType.eq(object_type))
        .filter(C::ObjectId.eq(object_id))
        .exec(conn)
        .await?;
    Ok(())
}

/// The policies on an object with an action (all targets).
pub async fn of_object<Cn: ConnectionTrait>(
    conn: &Cn,
    object_type: &str,
    object_id: &str,
    action: &str,
) -> Result<Vec<RbacPolicy>> {
    Ok(rbac_policy::Entity::find()
        .filter(C::ObjectType.eq(object_type))
        .filter(C::ObjectId.eq(object_id))
        .filter(C::Action.eq(action))
        .all(conn)
        .await?)
}

/// The ids of networks some policy opens to `project` (for it alone or for
/// everyone), with any action: the subquery network visibility adds.
pub fn network_ids_for(project: &str) -> SelectStatement {
    Query::select()
        .column(C::ObjectId)
        .from(Alias::new("rbac_policies"))
        .and_where(Expr::col(C::ObjectType).eq("network"))
        .and_where(Expr::col(C::TargetProject).is_in([project.to_string(), EVERYONE.to_string()]))
        .to_owned()
}

/// The ids of networks shared (`access_as_shared`) with `project` or with
/// everyone: the subquery behind the `shared` filter.
pub fn shared_network_ids_for(project: &str) -> SelectStatement {
    Query::select()
        .column(C::ObjectId)
        .from(Alias::new("rbac_policies"))
        .and_where(Expr::col(C::ObjectType).eq("network"))
        .and_where(Expr::col(C::Action).eq(ACCESS_AS_SHARED))
        .and_where(Expr::col(C::TargetProject).is_in([project.to_string(), EVERYONE.to_string()]))
        .to_owned()
}

/// Which of `ids` are shared with `project` by a policy naming it (Neutron's
/// `shared` as the caller sees it: true for a `*` policy or one for the caller).
pub async fn networks_shared_with<Cn: ConnectionTrait>(
    conn: &Cn,
    ids: &[String],
    project: &str,
) -> Result<BTreeSet<String>> {
    if ids.is_empty() || project.is_empty() {
        return Ok(BTreeSet::new());
    }
    let rows: Vec<String> = rbac_policy::Entity::find()
        .select_only()
        .column(C::ObjectId)
        .filter(C::ObjectType.eq("network"))
        .filter(C::Action.eq(ACCESS_AS_SHARED))
        .filter(C::TargetProject.is_in([project.to_string(), EVERYONE.to_string()]))
        .filter(C::ObjectId.is_in(ids.to_vec()))
        .into_tuple()
        .all(conn)
        .await?;
    Ok(rows.into_iter().collect())
}

/// Make the `*` policy of `action` on a network exist (`on`) or not, owned by
/// the network's owner: what `shared` / `router:external` on a network mean.
/// Turning `router:external` off drops every external policy, as Neutron does.
pub async fn set_wildcard<Cn: ConnectionTrait>(
    conn: &Cn,
    network_id: &str,
    owner: &str,
    action: &str,
    on: bool,
) -> Result<()> {
    let current = of_object(conn, "network", network_id, action).await?;
    let wildcard = current.iter().find(|p| p.target_project == EVERYONE);
    match (on, wildcard) {
        (true, None) => {
            insert(
                conn,
                RbacPolicy {
                    id: crate::store::new_id(),
                    project_id: owner.to_string(),
                    object_type: "network".into(),
                    object_id: network_id.to_string(),
                    action: action.to_string(),
                    target_project: EVERYONE.into(),
                },
            )
            .await?;
        }
        (false, Some(w)) if action == ACCESS_AS_SHARED => {
            delete(conn, &w.id).await?;
        }
        (false, _) if action == ACCESS_AS_EXTERNAL => {
            for p in current {
                delete(conn, &p.id).await?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Keep the network's `shared` column equal to "a `*` access_as_shared policy
/// exists", and mark it external when an external policy names it (as
/// Neutron does when an `access_as_external` policy is created).
pub async fn sync_network<Cn: ConnectionTrait>(conn: &Cn, network_id: &str) -> Result<()> {
    let shared =
        of_object(conn, "network", network_id, ACCESS_AS_SHARED).await?.iter().any(|p| p.target_project == EVERYONE);
    let external = !of_object(conn, "network", network_id, ACCESS_AS_EXTERNAL).await?.is_empty();
    let Some(n) = network::Entity::find_by_id(network_id.to_string()).one(conn).await? else { return Ok(()) };
    if n.shared == shared && (n.external || !external) {
        return Ok(());
    }
    network::Entity::update_many()
        .col_expr(network::Column::Shared, Expr::value(shared))
        .col_expr(network::Column::External, Expr::value(n.external || external))
        .col_expr(network::Column::RevisionNumber, Expr::col(network::Column::RevisionNumber).add(1))
        .col_expr(network::Column::UpdatedAt, Expr::value(crate::store::now()))
        .filter(network::Column::Id.eq(network_id))
        .exec(conn)
        .await?;
    Ok(())
}

/// Ports on `network_id` of projects other than its owner `owner` that
/// depend on access through `target` (a project, or `*`: any other project)
/// and would lose it: a policy in use (`RbacPolicyInUse`), `shared` that
/// cannot be turned off (`InvalidSharedSetting`). Network-owned ports (DHCP,
/// router interfaces) do not count, nor do projects another `access_as_shared`
/// policy of the network (for them, or for everyone) keeps granting access.
pub async fn other_projects_ports<Cn: ConnectionTrait>(
    conn: &Cn,
    network_id: &str,
    owner: &str,
    target: &str,
) -> Result<i64> {
    use crate::entity::port::{Column as P, Entity as Ports};
    let mut q = Ports::find()
        .select_only()
        .column(P::ProjectId)
        .filter(P::NetworkId.eq(network_id))
        .filter(P::ProjectId.ne(owner))
        .filter(P::DeviceOwner.not_like("network:%"));
    if target != EVERYONE {
        q = q.filter(P::ProjectId.eq(target));
    }
    let rows: Vec<String> = q.distinct().into_tuple().all(conn).await?;
    if rows.is_empty() {
        return Ok(0);
    }
    // the grants that stay: every other access_as_shared policy of the network
    let remaining: BTreeSet<String> = rbac_policy::Entity::find()
        .select_only()
        .column(C::TargetProject)
        .filter(C::ObjectType.eq("network"))
        .filter(C::ObjectId.eq(network_id))
        .filter(C::Action.eq(ACCESS_AS_SHARED))
        .filter(C::TargetProject.ne(target))
        .into_tuple::<String>()
        .all(conn)
        .await?
        .into_iter()
        .collect();
    if remaining.contains(EVERYONE) {
        return Ok(0);
    }
    let mut lost = 0i64;
    for project in rows {
        if !remaining.contains(&project) {
            lost += Ports::find()
                .filter(P::NetworkId.eq(network_id))
                .filter(P::ProjectId.eq(project.as_str()))
                .filter(P::DeviceOwner.not_like("network:%"))
                .count(conn)
                .await? as i64;
        }
    }
    Ok(lost)
}
