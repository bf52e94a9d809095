//! Server groups: a policy (affinity, anti-affinity and their soft forms),
//! its rules, and the servers that are members.

use std::collections::{BTreeMap, BTreeSet};

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
    Set, TransactionTrait,
};
use stratus_core::Config;
use stratus_db::Db;

use crate::entity::{instance, server_group, server_group_member};
use crate::error::{ComputeError, Result, not_found};

pub const POLICIES: &[&str] = &["affinity", "anti-affinity", "soft-affinity", "soft-anti-affinity"];

/// A server group as the scheduler and the API use it.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerGroup {
    pub id: i64,
    pub uuid: String,
    pub name: String,
    pub project_id: String,
    pub user_id: String,
    pub policy: String,
    /// `max_server_per_host` (anti-affinity only) when set.
    pub rules: BTreeMap<String, i64>,
    /// Instance uuids, in order of uuid (deleted servers may linger until
    /// their removal is recorded; the API hides them).
    pub members: Vec<String>,
    pub created_at: i64,
}

impl ServerGroup {
    /// How many members of an anti-affinity group may share a host (1 unless a rule says more).
    pub fn max_server_per_host(&self) -> i64 {
        self.rules.get("max_server_per_host").copied().unwrap_or(1)
    }
}

/// What creating a group needs.
#[derive(Clone, Debug)]
pub struct NewServerGroup {
    pub name: String,
    pub project_id: String,
    pub user_id: String,
    pub policy: String,
    pub rules: BTreeMap<String, i64>,
}

fn group_not_found(uuid: &str) -> ComputeError {
    not_found(format!("Instance group {uuid} could not be found."))
}

fn parse_rules(text: &str) -> BTreeMap<String, i64> {
    serde_json::from_str::<BTreeMap<String, serde_json::Value>>(text)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(k, v)| {
            let n = v.as_i64().or_else(|| v.as_str().and_then(|s| s.parse().ok()))?;
            Some((k, n))
        })
        .collect()
}

async fn members_of<C: ConnectionTrait>(conn: &C, ids: &[i64]) -> Result<BTreeMap<i64, Vec<String>>> {
    let mut out: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    for chunk in ids.chunks(500) {
        for r in server_group_member::Entity::find()
            .filter(server_group_member::Column::GroupId.is_in(chunk.to_vec()))
            .order_by_asc(server_group_member::Column::InstanceUuid)
            .all(conn)
            .await?
        {
            out.entry(r.group_id).or_default().push(r.instance_uuid);
        }
    }
    Ok(out)
}

async fn assemble<C: ConnectionTrait>(conn: &C, rows: Vec<server_group::Model>) -> Result<Vec<ServerGroup>> {
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let mut members = members_of(conn, &ids).await?;
    Ok(rows
        .into_iter()
        .map(|m| ServerGroup {
            members: members.remove(&m.id).unwrap_or_default(),
            rules: parse_rules(&m.rules),
            id: m.id,
            uuid: m.uuid,
            name: m.name,
            project_id: m.project_id,
            user_id: m.user_id,
            policy: m.policy,
            created_at: m.created_at,
        })
        .collect())
}

/// The group with this uuid, with its members.
pub async fn get(db: &Db, uuid: &str) -> Result<Option<ServerGroup>> {
    let Some(m) = server_group::Entity::find().filter(server_group::Column::Uuid.eq(uuid)).one(&db.read).await? else {
        return Ok(None);
    };
    Ok(assemble(&db.read, vec![m]).await?.into_iter().next())
}

/// The groups of one project (or all), oldest first.
pub async fn list(db: &Db, project_id: Option<&str>) -> Result<Vec<ServerGroup>> {
    let mut q = server_group::Entity::find().order_by_asc(server_group::Column::Id);
    if let Some(p) = project_id {
        q = q.filter(server_group::Column::ProjectId.eq(p));
    }
    let rows = q.all(&db.read).await?;
    assemble(&db.read, rows).await
}

/// The groups an instance is a member of (at most one in practice).
pub async fn groups_of_instance(db: &Db, instance_uuid: &str) -> Result<Vec<ServerGroup>> {
    let ids: Vec<i64> = server_group_member::Entity::find()
        .filter(server_group_member::Column::InstanceUuid.eq(instance_uuid))
        .all(&db.read)
        .await?
        .into_iter()
        .map(|r| r.group_id)
        .collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows = server_group::Entity::find().filter(server_group::Column::Id.is_in(ids)).all(&db.read).await?;
    assemble(&db.read, rows).await
}

/// Of these instance uuids, the ones whose instance is deleted (unknown
/// uuids, e.g. servers not yet recorded, count as alive, as in Nova).
pub async fn deleted_among(db: &Db, uuids: &[String]) -> Result<BTreeSet<String>> {
    let mut out = BTreeSet::new();
    for chunk in uuids.chunks(500) {
        let rows: Vec<String> = instance::Entity::find()
            .select_only()
            .column(instance::Column::Uuid)
            .filter(instance::Column::Uuid.is_in(chunk.to_vec()))
            .filter(instance::Column::Deleted.eq(true))
            .into_tuple()
            .all(&db.read)
            .await?;
        out.extend(rows);
    }
    Ok(out)
}

/// Create a group within the `server_groups` quota of the project and of
/// the user, counted under the project's quota lock so that racing creates
/// cannot exceed it.
pub async fn create(db: &Db, cfg: &Config, new: NewServerGroup) -> Result<ServerGroup> {
    let scope = format!("project:{}", new.project_id);
    super::quotas::ensure_lock_row(db, &scope, "server_groups").await?;
    let txn = db.write.begin().await?;
    let res = async {
        super::quotas::lock(&txn, &scope, "server_groups").await?;
        let over = || ComputeError::OverQuota("Quota exceeded, too many server groups.".into());
        let project_limit = super::quotas::limit_of(&txn, cfg, &new.project_id, None, "server_groups").await?;
        let project_used =
            server_group::Entity::find().filter(server_group::Column::ProjectId.eq(&new.project_id)).count(&txn).await?
                as i64;
        if !super::quotas::within(project_limit, project_used, 1) {
            return Err(over());
        }
        let user_limit =
            super::quotas::limit_of(&txn, cfg, &new.project_id, Some(&new.user_id), "server_groups").await?;
        let user_used = server_group::Entity::find()
            .filter(server_group::Column::ProjectId.eq(&new.project_id))
            .filter(server_group::Column::UserId.eq(&new.user_id))
            .count(&txn)
            .await? as i64;
        if !super::quotas::within(user_limit, user_used, 1) {
            return Err(over());
        }
        let rules = serde_json::to_string(&new.rules).map_err(|e| ComputeError::Internal(e.into()))?;
        let m = server_group::ActiveModel {
            uuid: Set(uuid::Uuid::new_v4().to_string()),
            name: Set(new.name.clone()),
            project_id: Set(new.project_id.clone()),
            user_id: Set(new.user_id.clone()),
            policy: Set(new.policy.clone()),
            rules: Set(rules),
            created_at: Set(chrono::Utc::now().timestamp_micros()),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
        Ok(m)
    }
    .await;
    match res {
        Ok(m) => {
            txn.commit().await?;
            Ok(ServerGroup {
                id: m.id,
                uuid: m.uuid,
                name: m.name,
                project_id: m.project_id,
                user_id: m.user_id,
                policy: m.policy,
                rules: new.rules,
                members: Vec::new(),
                created_at: m.created_at,
            })
        }
        Err(e) => {
            txn.rollback().await?;
            Err(e)
        }
    }
}

/// Delete a group and its member list; false if it was not there.
pub async fn delete(db: &Db, uuid: &str) -> Result<bool> {
    let txn = db.write.begin().await?;
    let Some(m) = server_group::Entity::find().filter(server_group::Column::Uuid.eq(uuid)).one(&txn).await? else {
        txn.rollback().await?;
        return Ok(false);
    };
    server_group_member::Entity::delete_many().filter(server_group_member::Column::GroupId.eq(m.id)).exec(&txn).await?;
    server_group::Entity::delete_by_id(m.id).exec(&txn).await?;
    txn.commit().await?;
    Ok(true)
}

/// Record `instance_uuid` as a member of the group (inside the caller's
/// transaction when given one). 404 if the group is gone; adding twice is a no-op.
pub async fn add_member<C: ConnectionTrait>(conn: &C, group_uuid: &str, instance_uuid: &str) -> Result<()> {
    let Some(g) = server_group::Entity::find().filter(server_group::Column::Uuid.eq(group_uuid)).one(conn).await?
    else {
        return Err(group_not_found(group_uuid));
    };
    if server_group_member::Entity::find_by_id((g.id, instance_uuid.to_string())).one(conn).await?.is_some() {
        return Ok(());
    }
    server_group_member::ActiveModel { group_id: Set(g.id), instance_uuid: Set(instance_uuid.to_string()) }
        .insert(conn)
        .await?;
    Ok(())
}

/// Take a (deleted) instance out of every group.
pub async fn remove_member(db: &Db, instance_uuid: &str) -> Result<()> {
    server_group_member::Entity::delete_many()
        .filter(server_group_member::Column::InstanceUuid.eq(instance_uuid))
        .exec(&db.write)
        .await?;
    Ok(())
}

/// How many members a group has (for the `server_group_members` quota).
pub async fn member_count<C: ConnectionTrait>(conn: &C, group_uuid: &str) -> Result<i64> {
    let Some(g) = server_group::Entity::find().filter(server_group::Column::Uuid.eq(group_uuid)).one(conn).await?
    else {
        return Ok(0);
    };
    Ok(server_group_member::Entity::find().filter(server_group_member::Column::GroupId.eq(g.id)).count(conn).await?
        as i64)
}
