//! Migration records: one per move of a server (a resize so far), written
//! when the conductor picks the destination and kept after the move ends,
//! its status following the move.

use sea_orm::{ActiveModelTrait, ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set};
use stratus_db::Db;

use crate::entity::migration;
use crate::error::Result;
use crate::store::instances::now;

pub type Migration = migration::Model;

/// Statuses of a resize, as Nova names them.
pub mod status {
    pub const MIGRATING: &str = "migrating";
    pub const FINISHED: &str = "finished";
    pub const CONFIRMED: &str = "confirmed";
    pub const REVERTED: &str = "reverted";
    pub const ERROR: &str = "error";
}

/// A new move.
pub struct NewMigration<'a> {
    pub uuid: &'a str,
    pub instance_uuid: &'a str,
    pub source_compute: &'a str,
    pub source_node: &'a str,
    pub dest_compute: &'a str,
    pub dest_node: &'a str,
    pub old_instance_type_id: Option<i64>,
    pub new_instance_type_id: Option<i64>,
    pub migration_type: &'a str,
    pub user_id: &'a str,
    pub project_id: &'a str,
}

/// Record a move in status `migrating`.
pub async fn create(db: &Db, m: &NewMigration<'_>) -> Result<Migration> {
    let am = migration::ActiveModel {
        uuid: Set(m.uuid.to_string()),
        instance_uuid: Set(m.instance_uuid.to_string()),
        source_compute: Set(Some(m.source_compute.to_string())),
        source_node: Set(Some(m.source_node.to_string())),
        dest_compute: Set(Some(m.dest_compute.to_string())),
        dest_node: Set(Some(m.dest_node.to_string())),
        dest_host: Set(None),
        old_instance_type_id: Set(m.old_instance_type_id),
        new_instance_type_id: Set(m.new_instance_type_id),
        status: Set(status::MIGRATING.to_string()),
        migration_type: Set(m.migration_type.to_string()),
        hidden: Set(false),
        user_id: Set(Some(m.user_id.to_string())),
        project_id: Set(Some(m.project_id.to_string())),
        created_at: Set(now()),
        updated_at: Set(None),
        ..Default::default()
    };
    Ok(am.insert(&db.write).await?)
}

/// Move a migration to `status` (no record is fine: moves from before the records).
pub async fn set_status(db: &Db, uuid: &str, status: &str) -> Result<()> {
    migration::Entity::update_many()
        .col_expr(migration::Column::Status, sea_orm::sea_query::Expr::value(status))
        .col_expr(migration::Column::UpdatedAt, sea_orm::sea_query::Expr::value(now()))
        .filter(migration::Column::Uuid.eq(uuid))
        .exec(&db.write)
        .await?;
    Ok(())
}

/// A move of the server that failed before it finished: `error`.
pub async fn fail_in_progress(db: &Db, instance_uuid: &str) -> Result<()> {
    migration::Entity::update_many()
        .col_expr(migration::Column::Status, sea_orm::sea_query::Expr::value(status::ERROR))
        .col_expr(migration::Column::UpdatedAt, sea_orm::sea_query::Expr::value(now()))
        .filter(migration::Column::InstanceUuid.eq(instance_uuid))
        .filter(migration::Column::Status.eq(status::MIGRATING))
        .exec(&db.write)
        .await?;
    Ok(())
}

pub async fn get(db: &Db, uuid: &str) -> Result<Option<Migration>> {
    Ok(migration::Entity::find().filter(migration::Column::Uuid.eq(uuid)).one(&db.read).await?)
}

/// What `os-migrations` filters on.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub status: Option<String>,
    /// the source or the destination host
    pub host: Option<String>,
    pub source_compute: Option<String>,
    pub instance_uuid: Option<String>,
    pub migration_type: Option<String>,
    pub user_id: Option<String>,
    pub project_id: Option<String>,
    /// `updated_at` at or after (microseconds)
    pub changes_since: Option<i64>,
    /// `updated_at` at or before (microseconds)
    pub changes_before: Option<i64>,
}

/// The visible migrations matching `f`: oldest first, or (for paging)
/// newest first after `marker`, at most `limit`.
pub async fn list(
    db: &Db,
    f: &Filter,
    newest_first: bool,
    marker: Option<&Migration>,
    limit: Option<u64>,
) -> Result<Vec<Migration>> {
    use migration::Column as C;
    let mut q = migration::Entity::find().filter(C::Hidden.eq(false));
    let eq = |q: sea_orm::Select<migration::Entity>, col: C, v: &Option<String>| match v {
        Some(v) => q.filter(col.eq(v.as_str())),
        None => q,
    };
    q = eq(q, C::Status, &f.status);
    q = eq(q, C::SourceCompute, &f.source_compute);
    q = eq(q, C::InstanceUuid, &f.instance_uuid);
    q = eq(q, C::MigrationType, &f.migration_type);
    q = eq(q, C::UserId, &f.user_id);
    q = eq(q, C::ProjectId, &f.project_id);
    if let Some(h) = &f.host {
        q = q.filter(Condition::any().add(C::SourceCompute.eq(h.as_str())).add(C::DestCompute.eq(h.as_str())));
    }
    if let Some(t) = f.changes_since {
        q = q.filter(C::UpdatedAt.gte(t));
    }
    if let Some(t) = f.changes_before {
        q = q.filter(C::UpdatedAt.lte(t));
    }
    if newest_first {
        if let Some(m) = marker {
            q = q.filter(
                Condition::any()
                    .add(C::CreatedAt.lt(m.created_at))
                    .add(Condition::all().add(C::CreatedAt.eq(m.created_at)).add(C::Id.lt(m.id))),
            );
        }
        q = q.order_by_desc(C::CreatedAt).order_by_desc(C::Id);
    } else {
        q = q.order_by_asc(C::Id);
    }
    if let Some(l) = limit {
        q = q.limit(l);
    }
    Ok(q.all(&db.read).await?)
}

/// The record of a resize the conductor has just scheduled (`migration`
/// when the flavor stays, as a cold migration is recorded).
pub async fn record_resize(
    db: &Db,
    inst: &crate::store::instances::Instance,
    mig: &crate::manager::Migration,
    new_flavor_id: &str,
) -> Result<Migration> {
    let kind = if new_flavor_id == inst.flavor_id { "migration" } else { "resize" };
    create(
        db,
        &NewMigration {
            uuid: &mig.uuid,
            instance_uuid: &inst.uuid,
            source_compute: &mig.source_host,
            source_node: &mig.source_node,
            dest_compute: &mig.dest_host,
            dest_node: &mig.dest_node,
            old_instance_type_id: inst.flavor_id.parse().ok(),
            new_instance_type_id: new_flavor_id.parse().ok(),
            migration_type: kind,
            user_id: &inst.user_id,
            project_id: &inst.project_id,
        },
    )
    .await
}
