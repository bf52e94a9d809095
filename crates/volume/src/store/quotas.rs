//! Quotas per project as Cinder keeps them: a limit is the project's
//! override (`volume_quotas`), else the `default` quota class
//! (`volume_quota_classes`), else the configured default (-1: unlimited).
//! Besides the global resources every volume type has `volumes_<name>`,
//! `gigabytes_<name>` and `snapshots_<name>` (unlimited by default).
//!
//! Usage is counted from the tables (no usage or reservation rows to drift):
//! volumes (count and size), snapshots (count; their size into gigabytes),
//! backups (count and size). [`check`] runs inside the transaction that
//! writes the new rows, under the project's lock row, so two racing creates
//! can never both pass the last unit.

use std::collections::BTreeMap;

use sea_orm::sea_query::{Expr, OnConflict, Query};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect, Set};
use stratus_core::config::VolumeConfig;

use crate::entity::{backup, quota, quota_class, quota_lock, snapshot, volume, volume_type};
use crate::error::{Result, VolumeError, over_quota};

/// The class every project falls back to.
pub const DEFAULT_CLASS: &str = "default";

/// The global resources, in the order Cinder lists them.
pub const GLOBAL: &[&str] =
    &["volumes", "per_volume_gigabytes", "snapshots", "gigabytes", "backups", "backup_gigabytes", "groups"];

/// The parts of a per-type resource name (`volumes_<type name>`).
pub const PER_TYPE: &[&str] = &["volumes", "gigabytes", "snapshots"];

/// The configured default of a resource (per-type resources: unlimited).
pub fn config_default(cfg: &VolumeConfig, resource: &str) -> i64 {
    match resource {
        "volumes" => cfg.quota_volumes,
        "snapshots" => cfg.quota_snapshots,
        "gigabytes" => cfg.quota_gigabytes,
        "backups" => cfg.quota_backups,
        "backup_gigabytes" => cfg.quota_backup_gigabytes,
        "per_volume_gigabytes" => cfg.quota_per_volume_gigabytes,
        "groups" => cfg.quota_groups,
        _ => -1,
    }
}

/// Every resource with a quota now: the global ones, then three per volume type.
pub async fn resource_names<C: ConnectionTrait>(conn: &C) -> Result<Vec<String>> {
    let mut out: Vec<String> = GLOBAL.iter().map(|s| s.to_string()).collect();
    let mut names: Vec<String> = volume_type::Entity::find()
        .select_only()
        .column(volume_type::Column::Name)
        .into_tuple::<String>()
        .all(conn)
        .await?;
    names.sort();
    for n in names {
        for part in PER_TYPE {
            out.push(format!("{part}_{n}"));
        }
    }
    Ok(out)
}

/// Is `resource` one a quota set may name (a global one or a per-type one of an existing type)?
pub async fn is_resource<C: ConnectionTrait>(conn: &C, resource: &str) -> Result<bool> {
    if GLOBAL.contains(&resource) {
        return Ok(true);
    }
    for part in PER_TYPE {
        if let Some(name) = resource.strip_prefix(part).and_then(|r| r.strip_prefix('_'))
            && !name.is_empty()
            && volume_type::Entity::find().filter(volume_type::Column::Name.eq(name)).one(conn).await?.is_some()
        {
            return Ok(true);
        }
    }
    Ok(false)
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

/// The defaults of every resource: the `default` class over the configuration.
pub async fn defaults<C: ConnectionTrait>(conn: &C, cfg: &VolumeConfig) -> Result<BTreeMap<String, i64>> {
    let class = class_rows(conn, DEFAULT_CLASS).await?;
    let mut out = BTreeMap::new();
    for r in resource_names(conn).await? {
        let v = class.get(&r).copied().unwrap_or_else(|| config_default(cfg, &r));
        out.insert(r, v);
    }
    Ok(out)
}

/// The limits of a quota class: its rows over the defaults.
pub async fn class_limits<C: ConnectionTrait>(
    conn: &C,
    cfg: &VolumeConfig,
    class: &str,
) -> Result<BTreeMap<String, i64>> {
    let mut out = defaults(conn, cfg).await?;
    for (r, v) in class_rows(conn, class).await? {
        if let Some(slot) = out.get_mut(&r) {
            *slot = v;
        }
    }
    Ok(out)
}

/// The limits of a project: its overrides over the defaults.
pub async fn project_limits<C: ConnectionTrait>(
    conn: &C,
    cfg: &VolumeConfig,
    project_id: &str,
) -> Result<BTreeMap<String, i64>> {
    let mut out = defaults(conn, cfg).await?;
    for q in quota::Entity::find().filter(quota::Column::ProjectId.eq(project_id)).all(conn).await? {
        if let Some(slot) = out.get_mut(&q.resource) {
            *slot = q.hard_limit;
        }
    }
    Ok(out)
}

/// The limit of one resource for a project.
pub async fn limit<C: ConnectionTrait>(conn: &C, cfg: &VolumeConfig, project_id: &str, resource: &str) -> Result<i64> {
    if let Some(q) = quota::Entity::find_by_id((project_id.to_string(), resource.to_string())).one(conn).await? {
        return Ok(q.hard_limit);
    }
    if let Some(c) =
        quota_class::Entity::find_by_id((DEFAULT_CLASS.to_string(), resource.to_string())).one(conn).await?
    {
        return Ok(c.hard_limit);
    }
    Ok(config_default(cfg, resource))
}

/// What a project uses of every resource (per-type entries for the types it
/// uses; a resource it does not use is absent: 0).
pub async fn usage<C: ConnectionTrait>(conn: &C, project_id: &str) -> Result<BTreeMap<String, i64>> {
    let types: BTreeMap<String, String> = volume_type::Entity::find()
        .select_only()
        .column(volume_type::Column::Id)
        .column(volume_type::Column::Name)
        .into_tuple::<(String, String)>()
        .all(conn)
        .await?
        .into_iter()
        .collect();
    let mut out: BTreeMap<String, i64> = BTreeMap::new();
    let mut add = |k: String, n: i64| *out.entry(k).or_insert(0) += n;
    let vols: Vec<(i64, Option<String>)> = volume::Entity::find()
        .select_only()
        .column(volume::Column::Size)
        .column(volume::Column::VolumeTypeId)
        .filter(volume::Column::ProjectId.eq(project_id))
        .into_tuple()
        .all(conn)
        .await?;
    for (size, type_id) in vols {
        add("volumes".into(), 1);
        add("gigabytes".into(), size);
        if let Some(name) = type_id.as_ref().and_then(|t| types.get(t)) {
            add(format!("volumes_{name}"), 1);
            add(format!("gigabytes_{name}"), size);
        }
    }
    let snaps: Vec<(i64, Option<String>)> = snapshot::Entity::find()
        .select_only()
        .column(snapshot::Column::Size)
        .column(snapshot::Column::VolumeTypeId)
        .filter(snapshot::Column::ProjectId.eq(project_id))
        .into_tuple()
        .all(conn)
        .await?;
    for (size, type_id) in snaps {
        add("snapshots".into(), 1);
        add("gigabytes".into(), size);
        if let Some(name) = type_id.as_ref().and_then(|t| types.get(t)) {
            add(format!("snapshots_{name}"), 1);
            add(format!("gigabytes_{name}"), size);
        }
    }
    let backups: Vec<i64> = backup::Entity::find()
        .select_only()
        .column(backup::Column::Size)
        .filter(backup::Column::ProjectId.eq(project_id))
        .into_tuple()
        .all(conn)
        .await?;
    for size in backups {
        add("backups".into(), 1);
        add("backup_gigabytes".into(), size);
    }
    Ok(out)
}

/// Take the project's lock row for the rest of the transaction `conn` (made
/// on first use; a racing holder makes this wait until it commits).
async fn lock<C: ConnectionTrait>(conn: &C, project_id: &str) -> Result<()> {
    // one statement on every database: insert the row, or bump it when it
    // is there; either way the row is locked until the transaction ends
    let mut stmt = Query::insert();
    stmt.into_table(quota_lock::Entity)
        .columns([quota_lock::Column::ProjectId, quota_lock::Column::Generation])
        .values([project_id.into(), 0i64.into()])
        .map_err(|e| VolumeError::Internal(anyhow::anyhow!("quota lock statement: {e}")))?
        .on_conflict(
            OnConflict::column(quota_lock::Column::ProjectId)
                .value(
                    quota_lock::Column::Generation,
                    Expr::col((quota_lock::Entity, quota_lock::Column::Generation)).add(1),
                )
                .to_owned(),
        );
    conn.execute(conn.get_database_backend().build(&stmt)).await?;
    Ok(())
}

/// Cinder's 413 for `resource` going over `limit`.
fn exceeded(resource: &str, requested: i64, limit: i64, used: i64) -> VolumeError {
    let msg = if resource == "per_volume_gigabytes" {
        format!(
            "VolumeSizeExceedsLimit: Requested volume size {requested}G is larger than maximum allowed limit {limit}G."
        )
    } else if resource == "backup_gigabytes" {
        format!(
            "VolumeBackupSizeExceedsAvailableQuota: Requested backup exceeds allowed Backup gigabytes quota. \
             Requested {requested}G, quota is {limit}G and {used}G has been consumed."
        )
    } else if resource.starts_with("gigabytes") {
        format!(
            "VolumeSizeExceedsAvailableQuota: Requested volume or snapshot exceeds allowed {resource} quota. \
             Requested {requested}G, quota is {limit}G and {used}G has been consumed."
        )
    } else if resource.starts_with("volumes") {
        format!("VolumeLimitExceeded: Maximum number of volumes allowed ({limit}) exceeded for quota '{resource}'.")
    } else if resource.starts_with("snapshots") {
        format!("SnapshotLimitExceeded: Maximum number of snapshots allowed ({limit}) exceeded")
    } else if resource == "backups" {
        format!("BackupLimitExceeded: Maximum number of backups allowed ({limit}) exceeded")
    } else if resource == "groups" {
        format!("GroupLimitExceeded: Maximum number of groups allowed ({limit}) exceeded")
    } else {
        format!("OverQuota: Quota exceeded for resources: ['{resource}']")
    };
    over_quota(msg)
}

/// Which resource to report first when several are over (Cinder: the size
/// of a single volume, then sizes, then counts).
fn rank(resource: &str) -> u8 {
    if resource == "per_volume_gigabytes" {
        0
    } else if resource.contains("gigabytes") {
        1
    } else {
        2
    }
}

/// Check that `deltas` more of each resource fit the project's limits: 413
/// in Cinder's words otherwise. Call it INSIDE the transaction that writes
/// the new rows, before any other read in it (it takes the project's lock
/// first: on MySQL/MariaDB a transaction's snapshot starts at its first
/// plain read, which must come after the lock). `per_volume_gigabytes`
/// limits one volume's size (its delta is that size). Deltas <= 0 are not
/// checked.
pub async fn check<C: ConnectionTrait>(
    conn: &C,
    cfg: &VolumeConfig,
    project_id: &str,
    deltas: &[(&str, i64)],
) -> Result<()> {
    if deltas.iter().all(|(_, d)| *d <= 0) {
        return Ok(());
    }
    lock(conn, project_id).await?;
    let mut asked: Vec<(&str, i64)> = deltas.iter().copied().filter(|(_, d)| *d > 0).collect();
    asked.sort_by_key(|(r, _)| rank(r));
    let mut used: Option<BTreeMap<String, i64>> = None;
    for (resource, delta) in asked {
        let lim = limit(conn, cfg, project_id, resource).await?;
        if lim < 0 {
            continue;
        }
        if resource == "per_volume_gigabytes" {
            if delta > lim {
                return Err(exceeded(resource, delta, lim, 0));
            }
            continue;
        }
        if used.is_none() {
            used = Some(usage(conn, project_id).await?);
        }
        let now = used.as_ref().and_then(|u| u.get(resource)).copied().unwrap_or(0);
        if now + delta > lim {
            return Err(exceeded(resource, delta, lim, now));
        }
    }
    Ok(())
}

/// Set a project's limit of one resource.
pub async fn set_project<C: ConnectionTrait>(conn: &C, project_id: &str, resource: &str, value: i64) -> Result<()> {
    let row = quota::ActiveModel {
        project_id: Set(project_id.to_string()),
        resource: Set(resource.to_string()),
        hard_limit: Set(value),
    };
    quota::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([quota::Column::ProjectId, quota::Column::Resource])
                .update_column(quota::Column::HardLimit)
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// Set a quota class's limit of one resource.
pub async fn set_class<C: ConnectionTrait>(conn: &C, class: &str, resource: &str, value: i64) -> Result<()> {
    let row = quota_class::ActiveModel {
        class_name: Set(class.to_string()),
        resource: Set(resource.to_string()),
        hard_limit: Set(value),
    };
    quota_class::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([quota_class::Column::ClassName, quota_class::Column::Resource])
                .update_column(quota_class::Column::HardLimit)
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// A project back to the defaults.
pub async fn reset_project<C: ConnectionTrait>(conn: &C, project_id: &str) -> Result<()> {
    quota::Entity::delete_many().filter(quota::Column::ProjectId.eq(project_id)).exec(conn).await?;
    Ok(())
}

/// Rename the per-type resources of a volume type (its name changed), in
/// project overrides and quota classes.
pub async fn rename_type<C: ConnectionTrait>(conn: &C, old_name: &str, new_name: &str) -> Result<()> {
    if old_name == new_name {
        return Ok(());
    }
    for part in PER_TYPE {
        let (old, new) = (format!("{part}_{old_name}"), format!("{part}_{new_name}"));
        quota::Entity::update_many()
            .col_expr(quota::Column::Resource, Expr::value(new.clone()))
            .filter(quota::Column::Resource.eq(old.clone()))
            .exec(conn)
            .await?;
        quota_class::Entity::update_many()
            .col_expr(quota_class::Column::Resource, Expr::value(new))
            .filter(quota_class::Column::Resource.eq(old))
            .exec(conn)
            .await?;
    }
    Ok(())
}
