//! Tasks the image service runs on an image's behalf (imports, location
//! verification), recorded in the tasks table so `GET /v2/images/{id}/tasks`
//! shows their outcome.

use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set};
use serde_json::{Value, json};
use stratus_core::AuthContext;
use stratus_db::Db;

use super::tasks::task;
use crate::error::Result;

/// Finished image tasks are kept this long (Glance's task_time_to_live: 48 h).
const TTL_US: i64 = 48 * 3600 * 1_000_000;

/// Record a task for `image_id`, processing from now on; returns its id.
pub async fn create_image_task(db: &Db, image_id: &str, kind: &str, ctx: &AuthContext, input: Value) -> Result<String> {
    let id = uuid::Uuid::new_v4().to_string();
    let now = super::now_us();
    task::ActiveModel {
        id: Set(id.clone()),
        task_type: Set(kind.to_string()),
        status: Set("processing".into()),
        owner: Set(ctx.project_id.clone().unwrap_or_default()),
        expires_at: Set(None),
        image_id: Set(Some(image_id.to_string())),
        request_id: Set(Some(stratus_core::http::current_request_id())),
        user_id: Set(Some(ctx.user_id.clone())),
        input: Set(Some(input.to_string())),
        result: Set(None),
        message: Set(String::new()),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&db.write)
    .await?;
    Ok(id)
}

/// Mark a task finished (`success` or `failure`).
pub async fn finish_image_task(db: &Db, id: &str, status: &str, message: &str) -> Result<()> {
    let now = super::now_us();
    task::Entity::update_many()
        .col_expr(task::Column::Status, Expr::value(status))
        .col_expr(task::Column::Message, Expr::value(message))
        .col_expr(task::Column::UpdatedAt, Expr::value(now))
        .col_expr(task::Column::ExpiresAt, Expr::value(now + TTL_US))
        .filter(task::Column::Id.eq(id))
        .exec(&db.write)
        .await?;
    Ok(())
}

fn time(us: i64) -> String {
    stratus_core::time::iso_micro(chrono::DateTime::from_timestamp_micros(us).unwrap_or_default())
}

/// The tasks of an image, oldest first, as the API shows them.
pub async fn image_tasks(db: &Db, image_id: &str) -> Result<Vec<Value>> {
    let rows = task::Entity::find()
        .filter(task::Column::ImageId.eq(image_id))
        .order_by_asc(task::Column::CreatedAt)
        .all(&db.read)
        .await?;
    Ok(rows
        .into_iter()
        .map(|t| {
            json!({
                "id": t.id,
                "type": t.task_type,
                "status": t.status,
                "owner": t.owner,
                "image_id": t.image_id,
                "request_id": t.request_id,
                "user_id": t.user_id,
                "input": t.input.as_deref().and_then(|s| serde_json::from_str::<Value>(s).ok()),
                "result": t.result.as_deref().and_then(|s| serde_json::from_str::<Value>(s).ok()),
                "message": t.message,
                "created_at": time(t.created_at),
                "updated_at": time(t.updated_at),
                "expires_at": t.expires_at.map(time),
            })
        })
        .collect())
}
