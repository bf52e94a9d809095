//! Persistence of the placement service.
//!
//! Every write runs in a [`Tx`]: its first statement bumps the one row of
//! `placement_state` (the *epoch*), which serializes placement's writers on
//! every backend (SQLite has one writer anyway; on PostgreSQL and MySQL the
//! row lock is held until commit). That gives three things at once: capacity
//! checks and generation bumps can never race (two claims for the last
//! resources give one success and one 409), writers take their locks in one
//! order (no deadlocks), and epochs are handed out in commit order, so the
//! providers a transaction touched, recorded in `placement_changes` with its
//! epoch, tell every process's in-memory index (`crate::index`) exactly what
//! to reload.

pub mod aggregates;
pub mod allocations;
pub mod inventories;
pub mod providers;
pub mod reshape;
pub mod resource_classes;
pub mod snapshot;
pub mod traits;
pub mod usages;

use std::collections::BTreeSet;

use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ConnectionTrait, DatabaseTransaction, EntityTrait, QuerySelect, Set, TransactionTrait};
use stratus_db::Db;

use crate::entity::{change, state};
use crate::error::Result;

pub fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// A placement write transaction (see the module documentation).
pub struct Tx {
    pub txn: DatabaseTransaction,
    pub epoch: i64,
    touched: BTreeSet<i64>,
    names_changed: bool,
}

impl Tx {
    /// Begin a write: take the placement write lock and the next epoch.
    pub async fn begin(db: &Db) -> Result<Tx> {
        let txn = db.write.begin().await?;
        state::Entity::update_many()
            .col_expr(state::Column::Epoch, Expr::col(state::Column::Epoch).add(1))
            .filter_id()
            .exec(&txn)
            .await?;
        let row = state::Entity::find_by_id(1i64).one(&txn).await?;
        let epoch = row.map(|r| r.epoch).ok_or_else(|| anyhow::anyhow!("placement_state has no row"))?;
        Ok(Tx { txn, epoch, touched: BTreeSet::new(), names_changed: false })
    }

    /// Record that a provider changed (its row, inventory, usage, traits,
    /// aggregates, or that it is gone).
    pub fn touch(&mut self, provider_id: i64) {
        self.touched.insert(provider_id);
    }

    /// Record that resource classes or traits were created or deleted.
    pub fn names_changed(&mut self) {
        self.names_changed = true;
    }

    pub async fn commit(self) -> Result<()> {
        let Tx { txn, epoch, touched, names_changed } = self;
        let touched: Vec<i64> = touched.into_iter().collect();
        for chunk in touched.chunks(500) {
            let rows = chunk.iter().map(|id| change::ActiveModel { provider_id: Set(*id), epoch: Set(epoch) });
            change::Entity::insert_many(rows)
                .on_conflict(
                    OnConflict::column(change::Column::ProviderId).update_column(change::Column::Epoch).to_owned(),
                )
                .exec_without_returning(&txn)
                .await?;
        }
        if names_changed {
            state::Entity::update_many()
                .col_expr(state::Column::NamesEpoch, Expr::value(epoch))
                .filter_id()
                .exec(&txn)
                .await?;
        }
        txn.commit().await?;
        Ok(())
    }

    pub fn conn(&self) -> &DatabaseTransaction {
        &self.txn
    }
}

trait FilterId {
    fn filter_id(self) -> Self;
}

impl FilterId for sea_orm::UpdateMany<state::Entity> {
    fn filter_id(self) -> Self {
        use sea_orm::{ColumnTrait, QueryFilter};
        self.filter(state::Column::Id.eq(1i64))
    }
}

/// The epochs a reader compares its index with.
pub async fn read_state(conn: &impl ConnectionTrait) -> Result<(i64, i64)> {
    let row = state::Entity::find_by_id(1i64).one(conn).await?;
    let row = row.ok_or_else(|| anyhow::anyhow!("placement_state has no row: run the placement migrations"))?;
    Ok((row.epoch, row.names_epoch))
}

/// Providers changed after `epoch`.
pub async fn changed_since(conn: &impl ConnectionTrait, epoch: i64) -> Result<Vec<i64>> {
    use sea_orm::{ColumnTrait, QueryFilter};
    let ids: Vec<i64> = change::Entity::find()
        .select_only()
        .column(change::Column::ProviderId)
        .filter(change::Column::Epoch.gt(epoch))
        .into_tuple()
        .all(conn)
        .await?;
    Ok(ids)
}
