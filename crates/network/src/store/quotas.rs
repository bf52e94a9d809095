//! Quotas per project (`/v2.0/quotas`): limits (project override, else the
//! configured default) and atomic enforcement: a create counts what the
//! project has under the project's lock row, inside the transaction that
//! inserts, so racing creates can never pass the limit together.

use std::collections::BTreeMap;

use sea_orm::sea_query::{Alias, Expr, Query};
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};
use stratus_core::Config;
use stratus_db::Db;

use crate::entity::{quota, quota_lock};
use crate::error::{Result, over_quota};

/// The resources with quotas, their tables, and their configured defaults.
pub fn resources(cfg: &Config) -> Vec<(&'static str, &'static str, i64)> {
    let n = &cfg.network;
    vec![
        ("network", "networks", n.quota_network),
        ("subnet", "subnets", n.quota_subnet),
        ("port", "ports", n.quota_port),
        ("router", "routers", n.quota_router),
        ("floatingip", "floatingips", n.quota_floatingip),
        ("security_group", "securitygroups", n.quota_security_group),
        ("security_group_rule", "securitygrouprules", n.quota_security_group_rule),
        ("subnetpool", "subnetpools", n.quota_subnetpool),
        ("rbac_policy", "rbac_policies", n.quota_rbac_policy),
    ]
}

/// The limits of a project: its overrides over the defaults.
pub async fn limits<C: ConnectionTrait>(conn: &C, cfg: &Config, project: &str) -> Result<BTreeMap<String, i64>> {
    let mut out: BTreeMap<String, i64> = resources(cfg).into_iter().map(|(r, _, d)| (r.to_string(), d)).collect();
    for q in quota::Entity::find().filter(quota::Column::ProjectId.eq(project)).all(conn).await? {
        out.insert(q.resource, q.hard_limit);
    }
    Ok(out)
}

/// Projects with overrides.
pub async fn projects<C: ConnectionTrait>(conn: &C) -> Result<Vec<String>> {
    let mut ps: Vec<String> = quota::Entity::find().all(conn).await?.into_iter().map(|q| q.project_id).collect();
    ps.sort();
    ps.dedup();
    Ok(ps)
}

pub async fn set<C: ConnectionTrait>(conn: &C, project: &str, resource: &str, limit: i64) -> Result<()> {
    quota::Entity::delete_by_id((project.to_string(), resource.to_string())).exec(conn).await?;
    quota::ActiveModel {
        project_id: Set(project.to_string()),
        resource: Set(resource.to_string()),
        hard_limit: Set(limit),
    }
    .insert(conn)
    .await?;
    Ok(())
}

/// Back to the defaults.
pub async fn reset<C: ConnectionTrait>(conn: &C, project: &str) -> Result<()> {
    quota::Entity::delete_many().filter(quota::Column::ProjectId.eq(project)).exec(conn).await?;
    Ok(())
}

/// How many rows of `table` the project owns.
pub async fn count<C: ConnectionTrait>(conn: &C, table: &str, project: &str) -> Result<i64> {
    let mut q = Query::select();
    q.expr(Expr::col(Alias::new("id")).count())
        .from(Alias::new(table))
        .and_where(Expr::col(Alias::new("project_id")).eq(project));
    let stmt = conn.get_database_backend().build(&q);
    let row = conn.query_one(stmt).await?;
    Ok(row.and_then(|r| r.try_get_by_index::<i64>(0).ok()).unwrap_or(0))
}

/// Make sure the project's lock row exists (outside the transaction that takes it).
pub async fn ensure_lock_row(db: &Db, project: &str) -> Result<()> {
    if quota_lock::Entity::find_by_id(project.to_string()).one(&db.read).await?.is_some() {
        return Ok(());
    }
    let m = quota_lock::ActiveModel { project_id: Set(project.to_string()), generation: Set(0) };
    match m.insert(&db.write).await {
        Ok(_) => Ok(()),
        Err(e) if stratus_db::is_unique_violation(&e) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// The limit of one resource for a project (its override, else the default),
/// read before the writing transaction begins.
pub async fn limit_of<C: ConnectionTrait>(conn: &C, cfg: &Config, project: &str, resource: &str) -> Result<i64> {
    let default = resources(cfg).into_iter().find(|(r, _, _)| *r == resource).map(|(_, _, d)| d).unwrap_or(-1);
    Ok(match quota::Entity::find_by_id((project.to_string(), resource.to_string())).one(conn).await? {
        Some(q) => q.hard_limit,
        None => default,
    })
}

/// [`check`] with the limit read beforehand ([`limit_of`]): an unlimited
/// resource takes no lock and counts nothing (the hot path of port creates).
pub async fn check_limit<C: ConnectionTrait>(
    txn: &C,
    cfg: &Config,
    project: &str,
    resource: &str,
    delta: i64,
    limit: i64,
) -> Result<()> {
    if limit < 0 {
        return Ok(());
    }
    check(txn, cfg, project, resource, delta).await
}

/// Take the project's lock for the rest of `txn` (a racing create waits, then
/// counts what this one inserted), then check that `delta` more of `resource`
/// fit: 409 `OverQuota` otherwise.
pub async fn check<C: ConnectionTrait>(txn: &C, cfg: &Config, project: &str, resource: &str, delta: i64) -> Result<()> {
    // the lock first: on MySQL/MariaDB the transaction's snapshot starts at its
    // first plain read, which must come after the lock so the count below sees
    // what the previous holder committed
    quota_lock::Entity::update_many()
        .col_expr(quota_lock::Column::Generation, Expr::col(quota_lock::Column::Generation).add(1))
        .filter(quota_lock::Column::ProjectId.eq(project))
        .exec(txn)
        .await?;
    let Some((_, table, default)) = resources(cfg).into_iter().find(|(r, _, _)| *r == resource) else {
        return Ok(());
    };
    let limit = match quota::Entity::find_by_id((project.to_string(), resource.to_string())).one(txn).await? {
        Some(q) => q.hard_limit,
        None => default,
    };
    if limit < 0 {
        return Ok(());
    }
    let used = count(txn, table, project).await?;
    if used + delta > limit {
        return Err(over_quota(resource));
    }
    Ok(())
}
