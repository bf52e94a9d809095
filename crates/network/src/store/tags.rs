//! Tags of any resource (`/v2.0/{resources}/{id}/tags`), keyed by resource type.

use std::collections::BTreeMap;

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set};

use crate::entity::tag;
use crate::error::Result;

/// The tags of each of `ids` (sorted), for rendering lists.
pub async fn of<C: ConnectionTrait>(conn: &C, kind: &str, ids: &[String]) -> Result<BTreeMap<String, Vec<String>>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for chunk in ids.chunks(500) {
        let rows = tag::Entity::find()
            .filter(tag::Column::ResourceType.eq(kind))
            .filter(tag::Column::ResourceId.is_in(chunk.iter().cloned()))
            .order_by_asc(tag::Column::Tag)
            .all(conn)
            .await?;
        for r in rows {
            out.entry(r.resource_id).or_default().push(r.tag);
        }
    }
    Ok(out)
}

/// Replace every tag of a resource.
pub async fn replace<C: ConnectionTrait>(conn: &C, kind: &str, id: &str, tags: &[String]) -> Result<()> {
    remove_all(conn, kind, id).await?;
    let mut uniq: Vec<&String> = tags.iter().collect();
    uniq.sort();
    uniq.dedup();
    if uniq.is_empty() {
        return Ok(());
    }
    let rows = uniq.into_iter().map(|t| tag::ActiveModel {
        resource_type: Set(kind.to_string()),
        resource_id: Set(id.to_string()),
        tag: Set(t.clone()),
    });
    tag::Entity::insert_many(rows).exec_without_returning(conn).await?;
    Ok(())
}

/// Add one tag (idempotent).
pub async fn add<C: ConnectionTrait>(conn: &C, kind: &str, id: &str, t: &str) -> Result<()> {
    if has(conn, kind, id, t).await? {
        return Ok(());
    }
    let row = tag::ActiveModel {
        resource_type: Set(kind.to_string()),
        resource_id: Set(id.to_string()),
        tag: Set(t.to_string()),
    };
    match tag::Entity::insert(row).exec_without_returning(conn).await {
        Ok(_) => Ok(()),
        Err(e) if stratus_db::is_unique_violation(&e) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

pub async fn has<C: ConnectionTrait>(conn: &C, kind: &str, id: &str, t: &str) -> Result<bool> {
    Ok(tag::Entity::find_by_id((kind.to_string(), id.to_string(), t.to_string())).one(conn).await?.is_some())
}

/// Remove one tag; false when the resource did not have it.
pub async fn remove<C: ConnectionTrait>(conn: &C, kind: &str, id: &str, t: &str) -> Result<bool> {
    let r = tag::Entity::delete_by_id((kind.to_string(), id.to_string(), t.to_string())).exec(conn).await?;
    Ok(r.rows_affected > 0)
}

pub async fn remove_all<C: ConnectionTrait>(conn: &C, kind: &str, id: &str) -> Result<()> {
    tag::Entity::delete_many()
        .filter(tag::Column::ResourceType.eq(kind))
        .filter(tag::Column::ResourceId.eq(id))
        .exec(conn)
        .await?;
    Ok(())
}
