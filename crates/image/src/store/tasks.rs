//! Tasks of the tasks API (`image_tasks`).
//!
//! A task's details (`input`, `result`) are JSON text. Finished tasks carry an
//! `expires_at`; once past it they are gone (deleted when tasks are listed,
//! invisible before that).

use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, Condition, EntityTrait, QueryFilter};
use stratus_db::Db;

use crate::error::Result;

pub mod task {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "image_tasks")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        /// `import`
        pub task_type: String,
        /// pending, processing, success, failure
        pub status: String,
        pub owner: String,
        pub expires_at: Option<i64>,
        pub image_id: Option<String>,
        pub request_id: Option<String>,
        pub user_id: Option<String>,
        /// the task's parameters: a JSON object
        pub input: Option<String>,
        /// what the task produced: a JSON object
        pub result: Option<String>,
        pub message: String,
        pub created_at: i64,
        pub updated_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub type Task = task::Model;

/// Not expired at `now`.
fn live(now: i64) -> Condition {
    Condition::any().add(task::Column::ExpiresAt.is_null()).add(task::Column::ExpiresAt.gt(now))
}

pub async fn insert(db: &Db, t: &Task) -> Result<()> {
    let am: task::ActiveModel = t.clone().into();
    am.insert(&db.write).await?;
    Ok(())
}

/// A task that has not expired.
pub async fn get(db: &Db, id: &str) -> Result<Option<Task>> {
    Ok(task::Entity::find_by_id(id.to_string()).filter(live(super::now_us())).one(&db.read).await?)
}

/// What to list: `owner` None means every project's tasks; `filters` are (column, value) equalities.
#[derive(Default, Debug)]
pub struct ListFilter {
    pub owner: Option<String>,
    pub filters: Vec<(task::Column, String)>,
}

/// The live tasks the filter selects, unsorted. Expired tasks are deleted first.
pub async fn list(db: &Db, f: &ListFilter) -> Result<Vec<Task>> {
    let now = super::now_us();
    purge_expired(db, now).await?;
    let mut cond = Condition::all().add(live(now));
    if let Some(o) = &f.owner {
        cond = cond.add(task::Column::Owner.eq(o.clone()));
    }
    for (c, v) in &f.filters {
        cond = cond.add(c.eq(v.clone()));
    }
    Ok(task::Entity::find().filter(cond).all(&db.read).await?)
}

/// Delete tasks whose `expires_at` has passed.
pub async fn purge_expired(db: &Db, now: i64) -> Result<u64> {
    let r = task::Entity::delete_many()
        .filter(task::Column::ExpiresAt.is_not_null())
        .filter(task::Column::ExpiresAt.lte(now))
        .exec(&db.write)
        .await?;
    Ok(r.rows_affected)
}

/// Move a task from one of `from` to `to`, with more column changes. False when
/// the task was not in one of `from`.
pub async fn transition(
    db: &Db,
    id: &str,
    from: &[&str],
    to: &str,
    sets: Vec<(task::Column, sea_orm::Value)>,
) -> Result<bool> {
    let mut q = task::Entity::update_many()
        .col_expr(task::Column::Status, Expr::value(to))
        .col_expr(task::Column::UpdatedAt, Expr::value(super::now_us()));
    for (c, v) in sets {
        q = q.col_expr(c, Expr::value(v));
    }
    let r = q
        .filter(task::Column::Id.eq(id))
        .filter(task::Column::Status.is_in(from.iter().copied()))
        .exec(&db.write)
        .await?;
    Ok(r.rows_affected == 1)
}
