//! Image members: the projects a shared image is offered to.

use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, Set};
use stratus_db::Db;

use crate::entity::image_member;
use crate::error::{Result, conflict};

pub type Member = image_member::Model;

pub async fn list(db: &Db, image_id: &str) -> Result<Vec<Member>> {
    Ok(image_member::Entity::find()
        .filter(image_member::Column::ImageId.eq(image_id))
        .order_by_asc(image_member::Column::CreatedAt)
        .all(&db.read)
        .await?)
}

pub async fn get(db: &Db, image_id: &str, member: &str) -> Result<Option<Member>> {
    Ok(image_member::Entity::find_by_id((image_id.to_string(), member.to_string())).one(&db.read).await?)
}

pub async fn count(db: &Db, image_id: &str) -> Result<u64> {
    Ok(image_member::Entity::find().filter(image_member::Column::ImageId.eq(image_id)).count(&db.read).await?)
}

pub async fn add(db: &Db, image_id: &str, member: &str) -> Result<Member> {
    let now = super::now_us();
    let m = image_member::ActiveModel {
        image_id: Set(image_id.to_string()),
        member: Set(member.to_string()),
        status: Set("pending".into()),
        created_at: Set(now),
        updated_at: Set(now),
    };
    match m.insert(&db.write).await {
        Ok(m) => Ok(m),
        Err(e) if stratus_db::is_unique_violation(&e) => {
            Err(conflict(format!("Member {member} already associated with image {image_id}")))
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn set_status(db: &Db, image_id: &str, member: &str, status: &str) -> Result<bool> {
    let r = image_member::Entity::update_many()
        .col_expr(image_member::Column::Status, Expr::value(status))
        .col_expr(image_member::Column::UpdatedAt, Expr::value(super::now_us()))
        .filter(image_member::Column::ImageId.eq(image_id))
        .filter(image_member::Column::Member.eq(member))
        .exec(&db.write)
        .await?;
    Ok(r.rows_affected > 0)
}

pub async fn delete(db: &Db, image_id: &str, member: &str) -> Result<bool> {
    let r = image_member::Entity::delete_many()
        .filter(image_member::Column::ImageId.eq(image_id))
        .filter(image_member::Column::Member.eq(member))
        .exec(&db.write)
        .await?;
    Ok(r.rows_affected > 0)
}
