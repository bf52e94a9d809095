//! Resource providers: the rows, their trees (parent and root), generations.

use std::collections::{HashMap, HashSet};

use sea_orm::sea_query::{Alias, Expr, JoinType, Query, SelectStatement};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, QueryFilter, QuerySelect, Set,
};

use super::{Tx, now_us};
use crate::entity::{allocation, inventory, provider, provider_aggregate, provider_trait};
use crate::error::{PlacementError, Result, bad, codes, conflict_code};

/// A provider as the API shows it, with its parent's and root's uuids.
#[derive(Clone, Debug, PartialEq, Eq, FromQueryResult)]
pub struct Provider {
    pub id: i64,
    pub uuid: String,
    pub name: String,
    pub generation: i64,
    pub parent_provider_id: Option<i64>,
    pub root_provider_id: Option<i64>,
    pub parent_provider_uuid: Option<String>,
    pub root_provider_uuid: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Provider {
    pub fn root_uuid(&self) -> &str {
        self.root_provider_uuid.as_deref().unwrap_or(&self.uuid)
    }
    pub fn root_id(&self) -> i64 {
        self.root_provider_id.unwrap_or(self.id)
    }
}

fn select() -> SelectStatement {
    let rp = Alias::new("rp");
    let parent = Alias::new("parent");
    let root = Alias::new("root");
    let table = provider::Entity;
    Query::select()
        .columns([
            (rp.clone(), provider::Column::Id),
            (rp.clone(), provider::Column::Uuid),
            (rp.clone(), provider::Column::Name),
            (rp.clone(), provider::Column::Generation),
            (rp.clone(), provider::Column::ParentProviderId),
            (rp.clone(), provider::Column::RootProviderId),
            (rp.clone(), provider::Column::CreatedAt),
            (rp.clone(), provider::Column::UpdatedAt),
        ])
        .expr_as(Expr::col((parent.clone(), provider::Column::Uuid)), Alias::new("parent_provider_uuid"))
        .expr_as(Expr::col((root.clone(), provider::Column::Uuid)), Alias::new("root_provider_uuid"))
        .from_as(table, rp.clone())
        .join_as(
            JoinType::LeftJoin,
            table,
            parent.clone(),
            Expr::col((parent, provider::Column::Id)).equals((rp.clone(), provider::Column::ParentProviderId)),
        )
        .join_as(
            JoinType::LeftJoin,
            table,
            root.clone(),
            Expr::col((root, provider::Column::Id)).equals((rp, provider::Column::RootProviderId)),
        )
        .to_owned()
}

async fn query(conn: &impl ConnectionTrait, stmt: SelectStatement) -> Result<Vec<Provider>> {
    let backend = conn.get_database_backend();
    Ok(Provider::find_by_statement(backend.build(&stmt)).all(conn).await?)
}

pub async fn get(conn: &impl ConnectionTrait, uuid: &str) -> Result<Option<Provider>> {
    let mut stmt = select();
    stmt.and_where(Expr::col((Alias::new("rp"), provider::Column::Uuid)).eq(uuid));
    Ok(query(conn, stmt).await?.into_iter().next())
}

pub async fn get_by_id(conn: &impl ConnectionTrait, id: i64) -> Result<Option<Provider>> {
    let mut stmt = select();
    stmt.and_where(Expr::col((Alias::new("rp"), provider::Column::Id)).eq(id));
    Ok(query(conn, stmt).await?.into_iter().next())
}

/// Providers by uuid (those that exist).
pub async fn get_many(conn: &impl ConnectionTrait, uuids: &[String]) -> Result<HashMap<String, Provider>> {
    let mut out = HashMap::new();
    for chunk in uuids.chunks(500) {
        let mut stmt = select();
        stmt.and_where(Expr::col((Alias::new("rp"), provider::Column::Uuid)).is_in(chunk.iter().cloned()));
        for p in query(conn, stmt).await? {
            out.insert(p.uuid.clone(), p);
        }
    }
    Ok(out)
}

/// Every provider in the tree rooted at `root_id`.
pub async fn tree(conn: &impl ConnectionTrait, root_id: i64) -> Result<Vec<provider::Model>> {
    Ok(provider::Entity::find().filter(provider::Column::RootProviderId.eq(root_id)).all(conn).await?)
}

/// The ids of `id` and all its descendants.
pub async fn subtree(conn: &impl ConnectionTrait, id: i64, root_id: i64) -> Result<Vec<i64>> {
    let members = tree(conn, root_id).await?;
    let mut children: HashMap<i64, Vec<i64>> = HashMap::new();
    for m in &members {
        if let Some(p) = m.parent_provider_id {
            children.entry(p).or_default().push(m.id);
        }
    }
    let mut out = vec![id];
    let mut i = 0;
    let mut seen = HashSet::from([id]);
    while i < out.len() {
        for c in children.get(&out[i]).into_iter().flatten() {
            if seen.insert(*c) {
                out.push(*c);
            }
        }
        i += 1;
    }
    Ok(out)
}

/// Create a provider (its uuid already normalized).
pub async fn create(tx: &mut Tx, uuid: &str, name: &str, parent_uuid: Option<&str>) -> Result<Provider> {
    let why = |reason: &str| {
        bad(format!(
            "Unable to create resource provider \"{name}\", {uuid}: Object action create failed because: {reason}"
        ))
    };
    let mut dups = Vec::new();
    if provider::Entity::find().filter(provider::Column::Uuid.eq(uuid)).one(tx.conn()).await?.is_some() {
        dups.push(format!("uuid: {uuid}"));
    }
    if provider::Entity::find().filter(provider::Column::Name.eq(name)).one(tx.conn()).await?.is_some() {
        dups.push(format!("name: {name}"));
    }
    if !dups.is_empty() {
        return Err(conflict_code(
            format!("Conflicting resource provider {} already exists.", dups.join(", ")),
            codes::DUPLICATE_NAME,
        ));
    }
    let (parent_id, root_id) = match parent_uuid {
        None => (None, None),
        Some(p) if p == uuid => {
            return Err(why(
                "parent provider UUID cannot be same as UUID. Please set parent provider UUID to None if there is no parent.",
            ));
        }
        Some(p) => match get(tx.conn(), p).await? {
            None => return Err(why("parent provider UUID does not exist.")),
            Some(parent) => (Some(parent.id), Some(parent.root_id())),
        },
    };
    let now = now_us();
    let row = provider::ActiveModel {
        uuid: Set(uuid.to_string()),
        name: Set(name.to_string()),
        generation: Set(0),
        parent_provider_id: Set(parent_id),
        root_provider_id: Set(root_id),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(tx.conn())
    .await
    .map_err(|e| {
        if stratus_db::is_unique_violation(&e) {
            conflict_code(format!("Conflicting resource provider name: {name} already exists."), codes::DUPLICATE_NAME)
        } else {
            e.into()
        }
    })?;
    if root_id.is_none() {
        provider::Entity::update_many()
            .col_expr(provider::Column::RootProviderId, Expr::value(row.id))
            .filter(provider::Column::Id.eq(row.id))
            .exec(tx.conn())
            .await?;
    }
    tx.touch(row.id);
    get_by_id(tx.conn(), row.id).await?.ok_or_else(|| anyhow::anyhow!("provider vanished after insert").into())
}

/// What `PUT /resource_providers/{uuid}` asks for.
pub struct Update {
    pub name: String,
    /// `Some(None)`: make it a root; `None`: leave the parent alone.
    pub parent: Option<Option<String>>,
    /// 1.37: re-parenting and un-parenting are allowed.
    pub allow_reparenting: bool,
}

pub async fn update(tx: &mut Tx, me: &Provider, up: Update) -> Result<Provider> {
    let why = |reason: &str| bad(format!("Unable to save resource provider {}: Object action {reason}", me.uuid));
    let mut new_parent = me.parent_provider_id;
    let mut new_root = me.root_id();
    let mut subtree_ids = Vec::new();
    if let Some(parent) = &up.parent {
        match parent {
            Some(parent_uuid) => {
                let Some(parent) = get(tx.conn(), parent_uuid).await? else {
                    return Err(why("create failed because: parent provider UUID does not exist."));
                };
                if me.parent_provider_id.is_some_and(|p| p != parent.id) && !up.allow_reparenting {
                    return Err(why("update failed because: re-parenting a provider is not currently allowed."));
                }
                subtree_ids = subtree(tx.conn(), me.id, me.root_id()).await?;
                if subtree_ids.contains(&parent.id) {
                    return Err(why("update failed because: creating loop in the provider tree is not allowed."));
                }
                new_parent = Some(parent.id);
                new_root = parent.root_id();
            }
            None => {
                if me.parent_provider_id.is_some() {
                    if !up.allow_reparenting {
                        return Err(why("update failed because: un-parenting a provider is not currently allowed."));
                    }
                    subtree_ids = subtree(tx.conn(), me.id, me.root_id()).await?;
                    new_parent = None;
                    new_root = me.id;
                }
            }
        }
    }
    if up.name != me.name
        && provider::Entity::find().filter(provider::Column::Name.eq(&up.name)).one(tx.conn()).await?.is_some()
    {
        return Err(conflict_code(
            format!("Conflicting resource provider {} already exists.", up.name),
            codes::DUPLICATE_NAME,
        ));
    }
    provider::Entity::update_many()
        .col_expr(provider::Column::Name, Expr::value(up.name.clone()))
        .col_expr(provider::Column::ParentProviderId, Expr::value(new_parent))
        .col_expr(provider::Column::UpdatedAt, Expr::value(now_us()))
        .filter(provider::Column::Id.eq(me.id))
        .exec(tx.conn())
        .await
        .map_err(|e| {
            if stratus_db::is_unique_violation(&e) {
                conflict_code(
                    format!("Conflicting resource provider {} already exists.", up.name),
                    codes::DUPLICATE_NAME,
                )
            } else {
                PlacementError::from(e)
            }
        })?;
    if new_root != me.root_id() {
        for chunk in subtree_ids.chunks(500) {
            provider::Entity::update_many()
                .col_expr(provider::Column::RootProviderId, Expr::value(new_root))
                .filter(provider::Column::Id.is_in(chunk.iter().copied()))
                .exec(tx.conn())
                .await?;
        }
    }
    tx.touch(me.id);
    for id in subtree_ids {
        tx.touch(id);
    }
    get_by_id(tx.conn(), me.id).await?.ok_or_else(|| anyhow::anyhow!("provider vanished during update").into())
}

pub async fn delete(tx: &mut Tx, me: &Provider) -> Result<()> {
    let child = provider::Entity::find().filter(provider::Column::ParentProviderId.eq(me.id)).one(tx.conn()).await?;
    if child.is_some() {
        return Err(conflict_code(
            format!("Unable to delete parent resource provider {}: It has child resource providers.", me.uuid),
            codes::PROVIDER_CANNOT_DELETE_PARENT,
        ));
    }
    let used = allocation::Entity::find()
        .filter(allocation::Column::ResourceProviderId.eq(me.id))
        .select_only()
        .column(allocation::Column::Id)
        .into_tuple::<i64>()
        .one(tx.conn())
        .await?;
    if used.is_some() {
        return Err(conflict_code(
            format!("Unable to delete resource provider {}: Resource provider has allocations.", me.uuid),
            codes::PROVIDER_IN_USE,
        ));
    }
    inventory::Entity::delete_many().filter(inventory::Column::ResourceProviderId.eq(me.id)).exec(tx.conn()).await?;
    provider_aggregate::Entity::delete_many()
        .filter(provider_aggregate::Column::ResourceProviderId.eq(me.id))
        .exec(tx.conn())
        .await?;
    provider_trait::Entity::delete_many()
        .filter(provider_trait::Column::ResourceProviderId.eq(me.id))
        .exec(tx.conn())
        .await?;
    provider::Entity::delete_by_id(me.id).exec(tx.conn()).await?;
    tx.touch(me.id);
    Ok(())
}

/// Bump a provider's generation from `expected`; `ConcurrentUpdate` when it moved.
pub async fn bump_generation(tx: &mut Tx, id: i64, expected: i64) -> Result<i64> {
    let r = provider::Entity::update_many()
        .col_expr(provider::Column::Generation, Expr::value(expected + 1))
        .col_expr(provider::Column::UpdatedAt, Expr::value(now_us()))
        .filter(provider::Column::Id.eq(id))
        .filter(provider::Column::Generation.eq(expected))
        .exec(tx.conn())
        .await?;
    if r.rows_affected != 1 {
        return Err(PlacementError::ConcurrentUpdate);
    }
    tx.touch(id);
    Ok(expected + 1)
}

/// The current generation of a provider (inside a write, after the lock).
pub async fn generation(conn: &impl ConnectionTrait, id: i64) -> Result<Option<i64>> {
    Ok(provider::Entity::find_by_id(id)
        .select_only()
        .column(provider::Column::Generation)
        .into_tuple::<i64>()
        .one(conn)
        .await?)
}
