//! Quotas as Nova's database driver keeps them: a limit per resource comes
//! from the user's row, else the project's row, else the `default` quota
//! class, else the configuration (`compute.quota_*`); -1 is unlimited.
//!
//! Checks that must not be outrun by a racing request (key pairs, server
//! groups, and the lead's instances) count under a lock row per scope and
//! resource, taken inside the transaction that inserts.

use std::collections::BTreeMap;

use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QuerySelect, Set,
};
use stratus_core::Config;
use stratus_db::Db;

use crate::entity::{instance, quota, quota_class, quota_lock, server_group};
use crate::error::Result;

/// Every resource Nova's quota engine knows, in its order.
pub const RESOURCES: &[&str] = &[
    "cores",
    "injected_files",
    "injected_file_content_bytes",
    "injected_file_path_bytes",
    "instances",
    "key_pairs",
    "metadata_items",
    "ram",
    "server_groups",
    "server_group_members",
    "fixed_ips",
    "floating_ips",
    "security_groups",
    "security_group_rules",
];

/// The nova-network quotas the API stopped showing at 2.36 (2.50 for classes).
pub const NETWORK_RESOURCES: &[&str] = &["fixed_ips", "floating_ips", "security_groups", "security_group_rules"];

/// The personality-file quotas the API stopped showing at 2.57.
pub const INJECTED_RESOURCES: &[&str] = &["injected_files", "injected_file_content_bytes", "injected_file_path_bytes"];

/// Resources whose usage is counted (the others are only limits).
pub const COUNTED: &[&str] = &["cores", "instances", "ram", "key_pairs", "server_groups", "server_group_members"];

pub const DEFAULT_CLASS: &str = "default";

/// The configured default of a resource (-1 for those no option covers).
pub fn config_default(cfg: &Config, resource: &str) -> i64 {
    let c = &cfg.compute;
    match resource {
        "instances" => c.quota_instances,
        "cores" => c.quota_cores,
        "ram" => c.quota_ram,
        "key_pairs" => c.quota_key_pairs,
        "server_groups" => c.quota_server_groups,
        "server_group_members" => c.quota_server_group_members,
        "metadata_items" => c.quota_metadata_items,
        "injected_files" => c.quota_injected_files,
        "injected_file_content_bytes" => c.quota_injected_file_content_bytes,
        "injected_file_path_bytes" => c.quota_injected_file_path_length,
        _ => -1,
    }
}

fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

async fn class_rows<C: ConnectionTrait>(conn: &C, class: &str) -> Result<BTreeMap<String, i64>> {
    Ok(quota_class::Entity::find()
        .filter(quota_class::Column::ClassName.eq(class))
        .all(conn)
        .await?
        .into_iter()
        .map(|r| (r.resource, r.hard_limit))
        .collect())
}

/// The limits of a quota class: its rows over the configured defaults.
pub async fn class_limits<C: ConnectionTrait>(conn: &C, cfg: &Config, class: &str) -> Result<BTreeMap<String, i64>> {
    let rows = class_rows(conn, class).await?;
    Ok(RESOURCES
        .iter()
        .map(|r| (r.to_string(), rows.get(*r).copied().unwrap_or_else(|| config_default(cfg, r))))
        .collect())
}

/// The defaults every project starts from: the `default` class over the configuration.
pub async fn defaults<C: ConnectionTrait>(conn: &C, cfg: &Config) -> Result<BTreeMap<String, i64>> {
    class_limits(conn, cfg, DEFAULT_CLASS).await
}

/// A project's own rows (`user_id` empty) or one user's rows.
pub async fn rows<C: ConnectionTrait>(
    conn: &C,
    project_id: &str,
    user_id: Option<&str>,
) -> Result<BTreeMap<String, i64>> {
    Ok(quota::Entity::find()
        .filter(quota::Column::ProjectId.eq(project_id))
        .filter(quota::Column::UserId.eq(user_id.unwrap_or("")))
        .all(conn)
        .await?
        .into_iter()
        .map(|r| (r.resource, r.hard_limit))
        .collect())
}

/// The sum of the limits set for individual users of a project, by resource
/// (an unlimited user row makes the sum unlimited).
pub async fn user_rows_sum<C: ConnectionTrait>(conn: &C, project_id: &str) -> Result<BTreeMap<String, i64>> {
    let mut out: BTreeMap<String, i64> = BTreeMap::new();
    for r in quota::Entity::find()
        .filter(quota::Column::ProjectId.eq(project_id))
        .filter(quota::Column::UserId.ne(""))
        .all(conn)
        .await?
    {
        let e = out.entry(r.resource).or_insert(0);
        *e = if *e < 0 || r.hard_limit < 0 { -1 } else { *e + r.hard_limit };
    }
    Ok(out)
}

/// Effective hard limits for a project, or for one of its users (user rows
/// over project rows over the defaults); -1 is unlimited.
pub async fn limits_on<C: ConnectionTrait>(
    conn: &C,
    cfg: &Config,
    project_id: &str,
    user_id: Option<&str>,
) -> Result<BTreeMap<String, i64>> {
    let mut out = defaults(conn, cfg).await?;
    out.extend(rows(conn, project_id, None).await?);
    if let Some(u) = user_id {
        out.extend(rows(conn, project_id, Some(u)).await?);
    }
    Ok(out)
}

/// Effective hard limits of `project_id` (and `user_id` when given), -1 unlimited.
pub async fn limits(db: &Db, cfg: &Config, project_id: &str, user_id: Option<&str>) -> Result<BTreeMap<String, i64>> {
    limits_on(&db.read, cfg, project_id, user_id).await
}

/// One effective limit.
pub async fn limit_of<C: ConnectionTrait>(
    conn: &C,
    cfg: &Config,
    project_id: &str,
    user_id: Option<&str>,
    resource: &str,
) -> Result<i64> {
    Ok(limits_on(conn, cfg, project_id, user_id).await?.get(resource).copied().unwrap_or(-1))
}

/// What a project (or one of its users) uses of the counted resources:
/// `instances`, `cores`, `ram` from the live instances, `server_groups`
/// from the groups it owns. `key_pairs` and `server_group_members` are per
/// user and per group, and Nova's quota views show them as 0.
pub async fn usages<C: ConnectionTrait>(
    conn: &C,
    project_id: &str,
    user_id: Option<&str>,
) -> Result<BTreeMap<String, i64>> {
    let mut q = instance::Entity::find()
        .select_only()
        .column(instance::Column::Vcpus)
        .column(instance::Column::MemoryMb)
        .filter(instance::Column::ProjectId.eq(project_id))
        .filter(instance::Column::Deleted.eq(false))
        // soft-deleted servers (restorable) hold no quota, as in Nova
        .filter(instance::Column::VmState.ne("soft-delete"));
    if let Some(u) = user_id {
        q = q.filter(instance::Column::UserId.eq(u));
    }
    let sizes: Vec<(i64, i64)> = q.into_tuple().all(conn).await?;
    let mut groups = server_group::Entity::find().filter(server_group::Column::ProjectId.eq(project_id));
    if let Some(u) = user_id {
        groups = groups.filter(server_group::Column::UserId.eq(u));
    }
    let groups = groups.count(conn).await? as i64;
    let mut out = BTreeMap::new();
    out.insert("instances".to_string(), sizes.len() as i64);
    out.insert("cores".to_string(), sizes.iter().map(|s| s.0).sum());
    out.insert("ram".to_string(), sizes.iter().map(|s| s.1).sum());
    out.insert("server_groups".to_string(), groups);
    out.insert("key_pairs".to_string(), 0);
    out.insert("server_group_members".to_string(), 0);
    Ok(out)
}

/// Set a project's (or a user's) limit for one resource.
pub async fn set_limit(db: &Db, project_id: &str, user_id: Option<&str>, resource: &str, limit: i64) -> Result<()> {
    let user = user_id.unwrap_or("");
    for _ in 0..3 {
        let r = quota::Entity::update_many()
            .col_expr(quota::Column::HardLimit, Expr::value(limit))
            .col_expr(quota::Column::UpdatedAt, Expr::value(Some(now_us())))
            .filter(quota::Column::ProjectId.eq(project_id))
            .filter(quota::Column::UserId.eq(user))
            .filter(quota::Column::Resource.eq(resource))
            .exec(&db.write)
            .await?;
        if r.rows_affected > 0 {
            return Ok(());
        }
        let m = quota::ActiveModel {
            project_id: Set(project_id.to_string()),
            user_id: Set(user.to_string()),
            resource: Set(resource.to_string()),
            hard_limit: Set(limit),
            created_at: Set(now_us()),
            updated_at: Set(None),
            ..Default::default()
        };
        match m.insert(&db.write).await {
            Ok(_) => return Ok(()),
            // another request created the row meanwhile: update it
            Err(e) if stratus_db::is_unique_violation(&e) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Forget a project's limits (with every user's), or one user's.
pub async fn delete_all(db: &Db, project_id: &str, user_id: Option<&str>) -> Result<()> {
    let mut q = quota::Entity::delete_many().filter(quota::Column::ProjectId.eq(project_id));
    if let Some(u) = user_id {
        q = q.filter(quota::Column::UserId.eq(u));
    }
    q.exec(&db.write).await?;
    Ok(())
}

/// Set one limit of a quota class.
pub async fn set_class_limit(db: &Db, class: &str, resource: &str, limit: i64) -> Result<()> {
    for _ in 0..3 {
        let r = quota_class::Entity::update_many()
            .col_expr(quota_class::Column::HardLimit, Expr::value(limit))
            .col_expr(quota_class::Column::UpdatedAt, Expr::value(Some(now_us())))
            .filter(quota_class::Column::ClassName.eq(class))
            .filter(quota_class::Column::Resource.eq(resource))
            .exec(&db.write)
            .await?;
        if r.rows_affected > 0 {
            return Ok(());
        }
        let m = quota_class::ActiveModel {
            class_name: Set(class.to_string()),
            resource: Set(resource.to_string()),
            hard_limit: Set(limit),
            created_at: Set(now_us()),
            updated_at: Set(None),
            ..Default::default()
        };
        match m.insert(&db.write).await {
            Ok(_) => return Ok(()),
            Err(e) if stratus_db::is_unique_violation(&e) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Make sure the lock row of (scope, resource) exists. Call it before the
/// transaction that [`lock`]s it: a failed insert would abort that
/// transaction on PostgreSQL. Scopes in use: `user:<id>` for `key_pairs`,
/// `project:<id>` for `server_groups`; any string works as long as every
/// writer of one resource uses the same.
pub async fn ensure_lock_row(db: &Db, scope: &str, resource: &str) -> Result<()> {
    if quota_lock::Entity::find_by_id((scope.to_string(), resource.to_string())).one(&db.write).await?.is_some() {
        return Ok(());
    }
    let m = quota_lock::ActiveModel {
        scope: Set(scope.to_string()),
        resource: Set(resource.to_string()),
        generation: Set(0),
    };
    match m.insert(&db.write).await {
        Ok(_) => Ok(()),
        Err(e) if stratus_db::is_unique_violation(&e) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Take the lock of (scope, resource) for the rest of the transaction `txn`:
/// a second transaction locking the same pair waits until this one ends, and
/// then counts what this one inserted. (SQLite has one writer anyway.)
pub async fn lock<C: ConnectionTrait>(txn: &C, scope: &str, resource: &str) -> Result<()> {
    quota_lock::Entity::update_many()
        .col_expr(quota_lock::Column::Generation, Expr::col(quota_lock::Column::Generation).add(1))
        .filter(quota_lock::Column::Scope.eq(scope))
        .filter(quota_lock::Column::Resource.eq(resource))
        .exec(txn)
        .await?;
    Ok(())
}

/// Is `used + delta` within `limit` (-1 unlimited)?
pub fn within(limit: i64, used: i64, delta: i64) -> bool {
    limit < 0 || used + delta <= limit
}
