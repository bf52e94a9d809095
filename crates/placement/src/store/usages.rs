//! Usages: per provider, and per project (and user), grouped by consumer type.

use std::collections::{BTreeMap, BTreeSet};

use sea_orm::sea_query::{Alias, Expr, Query};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, QueryFilter};

use crate::entity::{allocation, consumer, inventory};
use crate::error::Result;

/// Usage of every class a provider has inventory of (0 when unused).
pub async fn of_provider(conn: &impl ConnectionTrait, rp_id: i64) -> Result<BTreeMap<String, i64>> {
    let mut out: BTreeMap<String, i64> = inventory::Entity::find()
        .filter(inventory::Column::ResourceProviderId.eq(rp_id))
        .all(conn)
        .await?
        .into_iter()
        .map(|i| (i.resource_class, 0))
        .collect();
    for a in allocation::Entity::find().filter(allocation::Column::ResourceProviderId.eq(rp_id)).all(conn).await? {
        if let Some(u) = out.get_mut(&a.resource_class) {
            *u = u.saturating_add(a.used);
        }
    }
    Ok(out)
}

#[derive(FromQueryResult)]
struct Row {
    resource_class: String,
    used: i64,
    consumer_id: String,
    consumer_type: Option<String>,
}

async fn rows(conn: &impl ConnectionTrait, project: &str, user: Option<&str>) -> Result<Vec<Row>> {
    let a = Alias::new("a");
    let c = Alias::new("c");
    let mut q = Query::select();
    q.columns([
        (a.clone(), allocation::Column::ResourceClass),
        (a.clone(), allocation::Column::Used),
        (a.clone(), allocation::Column::ConsumerId),
    ])
    .column((c.clone(), consumer::Column::ConsumerType))
    .from_as(allocation::Entity, a.clone())
    .inner_join(
        sea_orm::sea_query::TableRef::TableAlias(
            sea_orm::sea_query::IntoIden::into_iden(consumer::Entity),
            sea_orm::sea_query::IntoIden::into_iden(c.clone()),
        ),
        Expr::col((c.clone(), consumer::Column::Uuid)).equals((a, allocation::Column::ConsumerId)),
    )
    .and_where(Expr::col((c.clone(), consumer::Column::ProjectId)).eq(project));
    if let Some(u) = user {
        q.and_where(Expr::col((c, consumer::Column::UserId)).eq(u));
    }
    let backend = conn.get_database_backend();
    Ok(Row::find_by_statement(backend.build(&q)).all(conn).await?)
}

/// `GET /usages` before 1.38: the sum per class.
pub async fn of_project(
    conn: &impl ConnectionTrait,
    project: &str,
    user: Option<&str>,
) -> Result<BTreeMap<String, i64>> {
    let mut out: BTreeMap<String, i64> = BTreeMap::new();
    for r in rows(conn, project, user).await? {
        let e = out.entry(r.resource_class).or_default();
        *e = e.saturating_add(r.used);
    }
    Ok(out)
}

/// Usage of one group of consumers.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Group {
    pub usages: BTreeMap<String, i64>,
    pub consumer_count: usize,
}

/// `GET /usages` at 1.38: grouped by consumer type (`unknown` for none), or
/// all in one group `all`, or only those without a type (`unknown`).
pub async fn of_project_by_type(
    conn: &impl ConnectionTrait,
    project: &str,
    user: Option<&str>,
    consumer_type: Option<&str>,
) -> Result<BTreeMap<String, Group>> {
    let mut groups: BTreeMap<String, (BTreeMap<String, i64>, BTreeSet<String>)> = BTreeMap::new();
    for r in rows(conn, project, user).await? {
        let key = match consumer_type {
            Some("all") => "all".to_string(),
            Some("unknown") => {
                if r.consumer_type.is_some() {
                    continue;
                }
                "unknown".to_string()
            }
            Some(t) => {
                if r.consumer_type.as_deref() != Some(t) {
                    continue;
                }
                t.to_string()
            }
            None => r.consumer_type.clone().unwrap_or_else(|| "unknown".to_string()),
        };
        let g = groups.entry(key).or_default();
        let e = g.0.entry(r.resource_class).or_default();
        *e = e.saturating_add(r.used);
        g.1.insert(r.consumer_id);
    }
    Ok(groups
        .into_iter()
        .map(|(k, (usages, consumers))| (k, Group { usages, consumer_count: consumers.len() }))
        .collect())
}
