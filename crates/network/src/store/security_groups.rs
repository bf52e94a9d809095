//! Security groups and their rules: rows, visibility (a project sees its own;
//! admins see all), each project's `default` group (created on first use,
//! exactly once however many first uses race), and the groups' use by ports.

use std::collections::{BTreeMap, BTreeSet};

use sea_orm::sea_query::{Expr, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect, Set,
    TransactionTrait,
};
use stratus_db::Db;

use crate::api::list::ListParams;
use crate::entity::default_security_group as dsg;
use crate::entity::security_group::{self, Column as C, Model as SecurityGroup};
use crate::entity::security_group_port_binding as binding;
use crate::entity::security_group_rule::{self, Column as R, Model as SecurityGroupRule};
use crate::error::Result;
use crate::store::networks::Viewer;
use crate::store::query::{self, Field, Kind, Table, field};
use crate::store::{new_id, now, tags};

pub const TAG_TYPE: &str = "security_group";
pub const DEFAULT_NAME: &str = "default";

pub const TABLE: Table = Table {
    name: "securitygroups",
    tag_type: TAG_TYPE,
    fields: &[
        field("id", "id", Kind::Str),
        field("name", "name", Kind::Str),
        field("project_id", "project_id", Kind::Str),
        field("tenant_id", "project_id", Kind::Str),
        field("stateful", "stateful", Kind::Bool),
        field("description", "description", Kind::Str),
        field("created_at", "created_at", Kind::Str),
        field("updated_at", "updated_at", Kind::Str),
        field("revision_number", "revision_number", Kind::Int),
    ],
};

pub const RULES_TABLE: Table = Table {
    name: "securitygrouprules",
    tag_type: "",
    fields: &[
        field("id", "id", Kind::Str),
        field("project_id", "project_id", Kind::Str),
        field("tenant_id", "project_id", Kind::Str),
        field("security_group_id", "security_group_id", Kind::Str),
        field("direction", "direction", Kind::Str),
        field("ethertype", "ethertype", Kind::Str),
        field("protocol", "protocol", Kind::Str),
        Field { api: "port_range_min", column: "port_range_min", kind: Kind::Int, sortable: false },
        Field { api: "port_range_max", column: "port_range_max", kind: Kind::Int, sortable: false },
        field("remote_ip_prefix", "remote_ip_prefix", Kind::Str),
        field("normalized_cidr", "normalized_cidr", Kind::Str),
        field("remote_group_id", "remote_group_id", Kind::Str),
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

/// A project sees its rules and every rule of its groups.
fn rule_visible(v: &Viewer) -> Condition {
    match v {
        Viewer::Admin => Condition::all(),
        Viewer::Project(p) => Condition::any().add(R::ProjectId.eq(p.as_str())).add(
            R::SecurityGroupId.in_subquery(
                Query::select()
                    .column(C::Id)
                    .from(security_group::Entity)
                    .and_where(Expr::col(C::ProjectId).eq(p.as_str()))
                    .to_owned(),
            ),
        ),
    }
}

pub async fn list<Cn: ConnectionTrait>(
    conn: &Cn,
    viewer: &Viewer,
    p: &ListParams,
) -> Result<(Vec<SecurityGroup>, bool)> {
    query::page(conn, &TABLE, security_group::Entity::find().filter(visible(viewer)), p).await
}

pub async fn get<Cn: ConnectionTrait>(conn: &Cn, id: &str) -> Result<Option<SecurityGroup>> {
    Ok(security_group::Entity::find_by_id(id.to_string()).one(conn).await?)
}

pub async fn get_visible<Cn: ConnectionTrait>(conn: &Cn, viewer: &Viewer, id: &str) -> Result<Option<SecurityGroup>> {
    Ok(security_group::Entity::find_by_id(id.to_string()).filter(visible(viewer)).one(conn).await?)
}

/// The rules of each group (ordered by id).
pub async fn rules_of<Cn: ConnectionTrait>(
    conn: &Cn,
    groups: &[String],
) -> Result<BTreeMap<String, Vec<SecurityGroupRule>>> {
    let mut out: BTreeMap<String, Vec<SecurityGroupRule>> = BTreeMap::new();
    if groups.is_empty() {
        return Ok(out);
    }
    for chunk in groups.chunks(500) {
        let rows = security_group_rule::Entity::find()
            .filter(R::SecurityGroupId.is_in(chunk.iter().cloned()))
            .all(conn)
            .await?;
        for r in rows {
            out.entry(r.security_group_id.clone()).or_default().push(r);
        }
    }
    for v in out.values_mut() {
        v.sort_by(|a, b| a.id.cmp(&b.id));
    }
    Ok(out)
}

/// Which of `groups` are their project's default group.
pub async fn defaults_among<Cn: ConnectionTrait>(conn: &Cn, groups: &[String]) -> Result<BTreeSet<String>> {
    let mut out = BTreeSet::new();
    for chunk in groups.chunks(500) {
        let rows =
            dsg::Entity::find().filter(dsg::Column::SecurityGroupId.is_in(chunk.iter().cloned())).all(conn).await?;
        out.extend(rows.into_iter().map(|r| r.security_group_id));
    }
    Ok(out)
}

pub async fn list_rules<Cn: ConnectionTrait>(
    conn: &Cn,
    viewer: &Viewer,
    p: &ListParams,
) -> Result<(Vec<SecurityGroupRule>, bool)> {
    query::page(conn, &RULES_TABLE, security_group_rule::Entity::find().filter(rule_visible(viewer)), p).await
}

pub async fn get_rule_visible<Cn: ConnectionTrait>(
    conn: &Cn,
    viewer: &Viewer,
    id: &str,
) -> Result<Option<SecurityGroupRule>> {
    Ok(security_group_rule::Entity::find_by_id(id.to_string()).filter(rule_visible(viewer)).one(conn).await?)
}

pub async fn insert<Cn: ConnectionTrait>(conn: &Cn, sg: SecurityGroup) -> Result<()> {
    security_group::ActiveModel::from(sg).insert(conn).await?;
    Ok(())
}

pub async fn insert_rule<Cn: ConnectionTrait>(conn: &Cn, r: SecurityGroupRule) -> Result<()> {
    security_group_rule::ActiveModel::from(r).insert(conn).await?;
    Ok(())
}

/// A rule row of `group` (standard attributes fresh).
#[allow(clippy::too_many_arguments)]
pub fn new_rule(
    project: &str,
    group: &str,
    direction: &str,
    ethertype: &str,
    remote_group_id: &str,
) -> SecurityGroupRule {
    let t = now();
    SecurityGroupRule {
        id: new_id(),
        project_id: project.to_string(),
        security_group_id: group.to_string(),
        direction: direction.to_string(),
        ethertype: ethertype.to_string(),
        protocol: String::new(),
        port_range_min: None,
        port_range_max: None,
        remote_ip_prefix: String::new(),
        normalized_cidr: String::new(),
        remote_group_id: remote_group_id.to_string(),
        description: String::new(),
        created_at: t.clone(),
        updated_at: t,
        revision_number: 0,
    }
}

/// The rules every new group starts with: egress anywhere over IPv4 and IPv6.
pub fn egress_rules(project: &str, group: &str) -> Vec<SecurityGroupRule> {
    vec![new_rule(project, group, "egress", "IPv4", ""), new_rule(project, group, "egress", "IPv6", "")]
}

/// The project's `default` security group, created with Neutron's default
/// rules (egress anywhere, ingress from the group itself, over IPv4 and IPv6)
/// on first use. Racing first uses create exactly one: the group is created in
/// the same transaction as its `default_security_groups` row, whose key is the
/// project, and a loser reads the winner's.
pub async fn default_for_project(db: &Db, project: &str) -> Result<String> {
    // the common case, made once per project: a read, off the writer
    if let Some(d) = dsg::Entity::find_by_id(project.to_string()).one(&db.read).await? {
        return Ok(d.security_group_id);
    }
    let mut last_err = None;
    for _ in 0..10 {
        if let Some(d) = dsg::Entity::find_by_id(project.to_string()).one(&db.write).await? {
            return Ok(d.security_group_id);
        }
        let id = new_id();
        let t = now();
        let attempt = async {
            let txn = db.write.begin().await?;
            dsg::ActiveModel { project_id: Set(project.to_string()), security_group_id: Set(id.clone()) }
                .insert(&txn)
                .await?;
            insert(
                &txn,
                SecurityGroup {
                    id: id.clone(),
                    project_id: project.to_string(),
                    name: DEFAULT_NAME.into(),
                    stateful: true,
                    description: "Default security group".into(),
                    created_at: t.clone(),
                    updated_at: t.clone(),
                    revision_number: 0,
                },
            )
            .await?;
            let mut rules = egress_rules(project, &id);
            rules.push(new_rule(project, &id, "ingress", "IPv4", &id));
            rules.push(new_rule(project, &id, "ingress", "IPv6", &id));
            for r in rules {
                insert_rule(&txn, r).await?;
            }
            txn.commit().await?;
            Result::Ok(())
        };
        match attempt.await {
            Ok(()) => return Ok(id),
            // lost the race (or a deadlock between racers): read the winner's
            Err(e) => last_err = Some(e),
        }
    }
    match last_err {
        Some(e) => Err(e),
        None => Err(anyhow::anyhow!("no default security group for project {project}").into()),
    }
}

/// The project's default group, if it was created.
pub async fn default_of<Cn: ConnectionTrait>(conn: &Cn, project: &str) -> Result<Option<String>> {
    Ok(dsg::Entity::find_by_id(project.to_string()).one(conn).await?.map(|d| d.security_group_id))
}

/// How many ports are in the group (the ports code writes `securitygroupportbindings`).
pub async fn ports_using<Cn: ConnectionTrait>(conn: &Cn, group: &str) -> Result<i64> {
    let n = binding::Entity::find()
        .select_only()
        .column_as(binding::Column::PortId.count(), "n")
        .filter(binding::Column::SecurityGroupId.eq(group))
        .into_tuple::<i64>()
        .one(conn)
        .await?;
    Ok(n.unwrap_or(0))
}

/// Write name, description and stateful, bumping the revision, if the row is
/// still at `sg.revision_number`.
pub async fn save<Cn: ConnectionTrait>(conn: &Cn, sg: &SecurityGroup) -> Result<bool> {
    let r = security_group::Entity::update_many()
        .col_expr(C::Name, Expr::value(sg.name.clone()))
        .col_expr(C::Description, Expr::value(sg.description.clone()))
        .col_expr(C::Stateful, Expr::value(sg.stateful))
        .col_expr(C::UpdatedAt, Expr::value(sg.updated_at.clone()))
        .col_expr(C::RevisionNumber, Expr::value(sg.revision_number + 1))
        .filter(C::Id.eq(sg.id.as_str()))
        .filter(C::RevisionNumber.eq(sg.revision_number))
        .exec(conn)
        .await?;
    Ok(r.rows_affected == 1)
}

/// Bump the revision of a group whose rules changed.
pub async fn bump<Cn: ConnectionTrait>(conn: &Cn, id: &str) -> Result<()> {
    security_group::Entity::update_many()
        .col_expr(C::RevisionNumber, Expr::col(C::RevisionNumber).add(1))
        .col_expr(C::UpdatedAt, Expr::value(now()))
        .filter(C::Id.eq(id))
        .exec(conn)
        .await?;
    Ok(())
}

/// Remove a group: its rules, the rules of other groups that name it as their
/// remote group, its tags, its default-group row.
pub async fn delete<Cn: ConnectionTrait>(conn: &Cn, id: &str) -> Result<bool> {
    security_group_rule::Entity::delete_many()
        .filter(Condition::any().add(R::SecurityGroupId.eq(id)).add(R::RemoteGroupId.eq(id)))
        .exec(conn)
        .await?;
    dsg::Entity::delete_many().filter(dsg::Column::SecurityGroupId.eq(id)).exec(conn).await?;
    tags::remove_all(conn, TAG_TYPE, id).await?;
    Ok(security_group::Entity::delete_by_id(id.to_string()).exec(conn).await?.rows_affected > 0)
}

pub async fn delete_rule<Cn: ConnectionTrait>(conn: &Cn, id: &str) -> Result<bool> {
    Ok(security_group_rule::Entity::delete_by_id(id.to_string()).exec(conn).await?.rows_affected > 0)
}

/// Every rule of a group (for the duplicate check).
pub async fn rules_in<Cn: ConnectionTrait>(conn: &Cn, group: &str) -> Result<Vec<SecurityGroupRule>> {
    Ok(security_group_rule::Entity::find().filter(R::SecurityGroupId.eq(group)).all(conn).await?)
}

/// The ports bound to a host that are in any of `groups` (whose agents wire
/// those groups' rules). Read from the bound ports (an index on the host),
/// never from the groups' members: a default group holds every port of its
/// project, and this runs on every member change.
pub async fn bound_ports_in<Cn: ConnectionTrait>(
    conn: &Cn,
    groups: &[String],
) -> Result<Vec<crate::entity::port::Model>> {
    use crate::entity::port;
    if groups.is_empty() {
        return Ok(Vec::new());
    }
    let bound: Vec<String> = port::Entity::find()
        .select_only()
        .column(port::Column::Id)
        .filter(port::Column::HostId.gt(""))
        .into_tuple()
        .all(conn)
        .await?;
    let mut out = Vec::new();
    for chunk in bound.chunks(500) {
        let ids: Vec<String> = binding::Entity::find()
            .select_only()
            .column(binding::Column::PortId)
            .filter(binding::Column::PortId.is_in(chunk.iter().cloned()))
            .filter(binding::Column::SecurityGroupId.is_in(groups.iter().cloned()))
            .distinct()
            .into_tuple()
            .all(conn)
            .await?;
        if !ids.is_empty() {
            out.extend(port::Entity::find().filter(port::Column::Id.is_in(ids)).all(conn).await?);
        }
    }
    Ok(out)
}

/// The ports bound to a host whose groups have a rule admitting one of
/// `groups` (`remote_group_id`): whose agents must learn of a change of
/// those groups' members.
pub async fn bound_ports_admitting<Cn: ConnectionTrait>(
    conn: &Cn,
    groups: &[String],
) -> Result<Vec<crate::entity::port::Model>> {
    if groups.is_empty() {
        return Ok(Vec::new());
    }
    bound_ports_with_rules_where(conn, R::RemoteGroupId.is_in(groups.iter().cloned())).await
}

/// The bound ports in the groups that have a rule matching `rule`.
async fn bound_ports_with_rules_where<Cn: ConnectionTrait>(
    conn: &Cn,
    rule: sea_orm::sea_query::SimpleExpr,
) -> Result<Vec<crate::entity::port::Model>> {
    let groups: Vec<String> = security_group_rule::Entity::find()
        .select_only()
        .column(R::SecurityGroupId)
        .filter(rule)
        .distinct()
        .into_tuple()
        .all(conn)
        .await?;
    bound_ports_in(conn, &groups).await
}
