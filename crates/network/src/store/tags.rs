//! Tags of any resource (`/v2.0/{resources}/{id}/tags`), keyed by resource type.

use std::collections::BTreeMap;

use sea_orm::sea_query::{Alias, Expr, Query};
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

/// The owner of row `id` of a tagged table, and whether every project may
/// read it (a shared or external network): None when there is no such row.
/// `table` is one of the tagged tables (a name from code, never from a request).
pub async fn owner_of<C: ConnectionTrait>(conn: &C, table: &'static str, id: &str) -> Result<Option<(String, bool)>> {
    let mut q = Query::select();
    q.column(Alias::new("project_id")).from(Alias::new(table)).and_where(Expr::col(Alias::new("id")).eq(id));
    let network = table == "networks";
    if network {
        q.column(Alias::new("shared")).column(Alias::new("external"));
    }
    let Some(row) = conn.query_one(conn.get_database_backend().build(&q)).await? else {
        return Ok(None);
    };
    let owner: String = row.try_get_by_index(0)?;
    let public = network
        && (row.try_get_by_index::<bool>(1).unwrap_or(false) || row.try_get_by_index::<bool>(2).unwrap_or(false));
    Ok(Some((owner, public)))
}

/// A tag change is a change of its resource: bump its revision and `updated_at`.
pub async fn bump<C: ConnectionTrait>(conn: &C, table: &'static str, id: &str) -> Result<()> {
    let mut q = Query::update();
    q.table(Alias::new(table))
        .value(Alias::new("revision_number"), Expr::col(Alias::new("revision_number")).add(1))
        .value(Alias::new("updated_at"), crate::store::now())
        .and_where(Expr::col(Alias::new("id")).eq(id));
    conn.execute(conn.get_database_backend().build(&q)).await?;
    Ok(())
}
