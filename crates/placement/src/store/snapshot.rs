//! What the in-memory index (`crate::index`) loads: every provider, or the
//! providers a batch of writes changed, with inventories, usage, traits and
//! aggregates; and the names of resource classes and traits.

use sea_orm::sea_query::{Alias, Expr, Func, Query, SimpleExpr};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, FromQueryResult, QueryFilter, QueryOrder, QuerySelect,
};

use crate::entity::{allocation, inventory, provider, provider_aggregate, provider_trait, resource_class, trait_};
use crate::error::Result;

#[derive(Default, Debug, Clone)]
pub struct Snapshot {
    pub providers: Vec<provider::Model>,
    pub inventories: Vec<inventory::Model>,
    /// (provider id, class, used)
    pub usage: Vec<(i64, String, i64)>,
    /// (provider id, trait)
    pub traits: Vec<(i64, String)>,
    /// (provider id, aggregate uuid)
    pub aggregates: Vec<(i64, String)>,
}

#[derive(FromQueryResult)]
struct UsageRow {
    resource_provider_id: i64,
    resource_class: String,
    used: i64,
}

fn sum_as_bigint(backend: DbBackend) -> SimpleExpr {
    let sum = Func::sum(Expr::col(allocation::Column::Used));
    let ty = match backend {
        DbBackend::MySql => "SIGNED",
        DbBackend::Postgres => "BIGINT",
        DbBackend::Sqlite => "INTEGER",
    };
    Func::cast_as(sum, Alias::new(ty)).into()
}

async fn usage(conn: &impl ConnectionTrait, ids: Option<&[i64]>) -> Result<Vec<(i64, String, i64)>> {
    let backend = conn.get_database_backend();
    let mut q = Query::select();
    q.column(allocation::Column::ResourceProviderId)
        .column(allocation::Column::ResourceClass)
        .expr_as(sum_as_bigint(backend), Alias::new("used"))
        .from(allocation::Entity)
        .group_by_col(allocation::Column::ResourceProviderId)
        .group_by_col(allocation::Column::ResourceClass);
    if let Some(ids) = ids {
        q.and_where(Expr::col(allocation::Column::ResourceProviderId).is_in(ids.iter().copied()));
    }
    let rows = UsageRow::find_by_statement(backend.build(&q)).all(conn).await?;
    Ok(rows.into_iter().map(|r| (r.resource_provider_id, r.resource_class, r.used)).collect())
}

/// Load every provider (`None`) or those with the given ids.
pub async fn load(conn: &impl ConnectionTrait, ids: Option<&[i64]>) -> Result<Snapshot> {
    let mut snap = Snapshot::default();
    match ids {
        None => {
            snap.providers = provider::Entity::find().order_by_asc(provider::Column::Id).all(conn).await?;
            snap.inventories = inventory::Entity::find().all(conn).await?;
            snap.usage = usage(conn, None).await?;
            snap.traits = provider_trait::Entity::find()
                .select_only()
                .columns([provider_trait::Column::ResourceProviderId, provider_trait::Column::Trait])
                .into_tuple()
                .all(conn)
                .await?;
            snap.aggregates = provider_aggregate::Entity::find()
                .select_only()
                .columns([provider_aggregate::Column::ResourceProviderId, provider_aggregate::Column::Aggregate])
                .into_tuple()
                .all(conn)
                .await?;
        }
        Some(ids) => {
            for chunk in ids.chunks(500) {
                let c = chunk.iter().copied();
                snap.providers
                    .extend(provider::Entity::find().filter(provider::Column::Id.is_in(c.clone())).all(conn).await?);
                snap.inventories.extend(
                    inventory::Entity::find()
                        .filter(inventory::Column::ResourceProviderId.is_in(c.clone()))
                        .all(conn)
                        .await?,
                );
                snap.usage.extend(usage(conn, Some(chunk)).await?);
                snap.traits.extend(
                    provider_trait::Entity::find()
                        .select_only()
                        .columns([provider_trait::Column::ResourceProviderId, provider_trait::Column::Trait])
                        .filter(provider_trait::Column::ResourceProviderId.is_in(c.clone()))
                        .into_tuple::<(i64, String)>()
                        .all(conn)
                        .await?,
                );
                snap.aggregates.extend(
                    provider_aggregate::Entity::find()
                        .select_only()
                        .columns([
                            provider_aggregate::Column::ResourceProviderId,
                            provider_aggregate::Column::Aggregate,
                        ])
                        .filter(provider_aggregate::Column::ResourceProviderId.is_in(c))
                        .into_tuple::<(i64, String)>()
                        .all(conn)
                        .await?,
                );
            }
        }
    }
    Ok(snap)
}

/// Resource class names in placement's order (by id) and all trait names.
pub async fn names(conn: &impl ConnectionTrait) -> Result<(Vec<String>, Vec<String>)> {
    let rcs: Vec<String> = resource_class::Entity::find()
        .select_only()
        .column(resource_class::Column::Name)
        .order_by_asc(resource_class::Column::Id)
        .into_tuple()
        .all(conn)
        .await?;
    let traits: Vec<String> = trait_::Entity::find()
        .select_only()
        .column(trait_::Column::Name)
        .order_by_asc(trait_::Column::Name)
        .into_tuple()
        .all(conn)
        .await?;
    Ok((rcs, traits))
}
