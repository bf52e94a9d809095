//! Images and their tags.

use std::collections::HashMap;

use sea_orm::sea_query::{Expr, Query};
use sea_orm::{ActiveModelTrait, ColumnTrait, Condition, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder};
use stratus_db::Db;

use crate::entity::{image, image_member, image_tag};
use crate::error::Result;

pub type Image = image::Model;

/// Find a live (not deleted) image.
pub async fn get(db: &Db, id: &str) -> Result<Option<Image>> {
    Ok(image::Entity::find_by_id(id.to_string()).filter(image::Column::Deleted.eq(false)).one(&db.read).await?)
}

/// Find an image even if deleted (ids are never reused).
pub async fn get_any(db: &Db, id: &str) -> Result<Option<Image>> {
    Ok(image::Entity::find_by_id(id.to_string()).one(&db.read).await?)
}

/// Read from the writer: after a write, what the next step must see.
pub async fn get_fresh(db: &Db, id: &str) -> Result<Option<Image>> {
    Ok(image::Entity::find_by_id(id.to_string()).filter(image::Column::Deleted.eq(false)).one(&db.write).await?)
}

pub async fn insert(db: &Db, img: Image, tags: &[String]) -> Result<Image> {
    use sea_orm::TransactionTrait;
    let txn = db.write.begin().await?;
    let am: image::ActiveModel = img.clone().into();
    am.insert(&txn).await?;
    for t in tags {
        image_tag::ActiveModel { image_id: sea_orm::Set(img.id.clone()), tag: sea_orm::Set(t.clone()) }
            .insert(&txn)
            .await?;
    }
    txn.commit().await?;
    Ok(img)
}

/// Write every column of `img` (the caller read it, changed it, and keeps `updated_at`).
pub async fn save(db: &Db, img: &Image) -> Result<()> {
    let mut am = img.clone().into_active_model();
    for c in [
        image::Column::Name,
        image::Column::Status,
        image::Column::Visibility,
        image::Column::Protected,
        image::Column::OsHidden,
        image::Column::Owner,
        image::Column::Checksum,
        image::Column::OsHashAlgo,
        image::Column::OsHashValue,
        image::Column::Size,
        image::Column::VirtualSize,
        image::Column::DiskFormat,
        image::Column::ContainerFormat,
        image::Column::MinDisk,
        image::Column::MinRam,
        image::Column::Properties,
        image::Column::Locations,
        image::Column::Staging,
        image::Column::UpdatedAt,
    ] {
        am.reset(c);
    }
    am.update(&db.write).await?;
    Ok(())
}

/// Move an image from one of `from` to `to` atomically, with more column changes.
/// False when the image was not in one of `from` (someone else moved it first).
pub async fn transition(
    db: &Db,
    id: &str,
    from: &[&str],
    to: &str,
    sets: Vec<(image::Column, sea_orm::Value)>,
) -> Result<bool> {
    let mut q = image::Entity::update_many()
        .col_expr(image::Column::Status, Expr::value(to))
        .col_expr(image::Column::UpdatedAt, Expr::value(super::now_us()));
    for (c, v) in sets {
        q = q.col_expr(c, Expr::value(v));
    }
    let r = q
        .filter(image::Column::Id.eq(id))
        .filter(image::Column::Deleted.eq(false))
        .filter(image::Column::Status.is_in(from.iter().copied()))
        .exec(&db.write)
        .await?;
    Ok(r.rows_affected == 1)
}

/// Mark deleted (the id stays taken); tags and members go.
pub async fn mark_deleted(db: &Db, id: &str) -> Result<bool> {
    use sea_orm::TransactionTrait;
    let now = super::now_us();
    let txn = db.write.begin().await?;
    let r = image::Entity::update_many()
        .col_expr(image::Column::Deleted, Expr::value(true))
        .col_expr(image::Column::Status, Expr::value("deleted"))
        .col_expr(image::Column::DeletedAt, Expr::value(now))
        .col_expr(image::Column::UpdatedAt, Expr::value(now))
        .filter(image::Column::Id.eq(id))
        .filter(image::Column::Deleted.eq(false))
        .exec(&txn)
        .await?;
    image_tag::Entity::delete_many().filter(image_tag::Column::ImageId.eq(id)).exec(&txn).await?;
    image_member::Entity::delete_many().filter(image_member::Column::ImageId.eq(id)).exec(&txn).await?;
    txn.commit().await?;
    Ok(r.rows_affected == 1)
}

pub async fn tags(db: &Db, id: &str) -> Result<Vec<String>> {
    let rows = image_tag::Entity::find()
        .filter(image_tag::Column::ImageId.eq(id))
        .order_by_asc(image_tag::Column::Tag)
        .all(&db.read)
        .await?;
    Ok(rows.into_iter().map(|r| r.tag).collect())
}

pub async fn tags_of(db: &Db, ids: &[String]) -> Result<HashMap<String, Vec<String>>> {
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    for chunk in ids.chunks(500) {
        let rows = image_tag::Entity::find()
            .filter(image_tag::Column::ImageId.is_in(chunk.iter().cloned()))
            .order_by_asc(image_tag::Column::Tag)
            .all(&db.read)
            .await?;
        for r in rows {
            out.entry(r.image_id).or_default().push(r.tag);
        }
    }
    Ok(out)
}

/// Replace the tag set.
pub async fn set_tags(db: &Db, id: &str, tags: &[String]) -> Result<()> {
    use sea_orm::TransactionTrait;
    let txn = db.write.begin().await?;
    image_tag::Entity::delete_many().filter(image_tag::Column::ImageId.eq(id)).exec(&txn).await?;
    for t in tags {
        image_tag::ActiveModel { image_id: sea_orm::Set(id.to_string()), tag: sea_orm::Set(t.clone()) }
            .insert(&txn)
            .await?;
    }
    txn.commit().await?;
    Ok(())
}

/// Add a tag (idempotent).
pub async fn add_tag(db: &Db, id: &str, tag: &str) -> Result<()> {
    let r = image_tag::ActiveModel { image_id: sea_orm::Set(id.to_string()), tag: sea_orm::Set(tag.to_string()) }
        .insert(&db.write)
        .await;
    match r {
        Ok(_) => Ok(()),
        Err(e) if stratus_db::is_unique_violation(&e) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Remove a tag; false if the image did not have it.
pub async fn remove_tag(db: &Db, id: &str, tag: &str) -> Result<bool> {
    let r = image_tag::Entity::delete_many()
        .filter(image_tag::Column::ImageId.eq(id))
        .filter(image_tag::Column::Tag.eq(tag))
        .exec(&db.write)
        .await?;
    Ok(r.rows_affected > 0)
}

pub async fn touch(db: &Db, id: &str) -> Result<()> {
    image::Entity::update_many()
        .col_expr(image::Column::UpdatedAt, Expr::value(super::now_us()))
        .filter(image::Column::Id.eq(id))
        .exec(&db.write)
        .await?;
    Ok(())
}

/// Comparison in a time or size filter (`gt:2016-01-01T00:00:00Z`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Eq,
    Neq,
    Gt,
    Gte,
    Lt,
    Lte,
}

/// The list query, as the API parsed it.
#[derive(Default, Debug, Clone)]
pub struct ListFilter {
    /// The caller's project (None: unscoped).
    pub project: Option<String>,
    pub is_admin: bool,
    /// public, private, shared, community, all; None = the default view
    pub visibility: Option<String>,
    /// accepted (default), pending, rejected, all
    pub member_status: String,
    pub ids: Vec<String>,
    pub names: Vec<String>,
    pub statuses: Vec<String>,
    pub owners: Vec<String>,
    pub disk_formats: Vec<String>,
    pub container_formats: Vec<String>,
    pub size_min: Option<i64>,
    pub size_max: Option<i64>,
    pub created_at: Vec<(Op, i64)>,
    pub updated_at: Vec<(Op, i64)>,
    pub os_hidden: Option<bool>,
    pub protected: Option<bool>,
    pub tags: Vec<String>,
    pub properties: Vec<(String, String)>,
    pub sizes: Vec<i64>,
    pub checksums: Vec<String>,
    pub hash_values: Vec<String>,
    pub min_ram: Option<i64>,
    pub min_disk: Option<i64>,
}

fn time_cond(col: image::Column, op: Op, v: i64) -> Condition {
    let c = match op {
        Op::Eq => col.eq(v),
        Op::Neq => col.ne(v),
        Op::Gt => col.gt(v),
        Op::Gte => col.gte(v),
        Op::Lt => col.lt(v),
        Op::Lte => col.lte(v),
    };
    Condition::all().add(c)
}

fn members_of(project: &str, status: &str) -> sea_orm::sea_query::SelectStatement {
    let mut q = Query::select();
    q.column(image_member::Column::ImageId)
        .from(image_member::Entity)
        .and_where(Expr::col(image_member::Column::Member).eq(project));
    if status != "all" {
        q.and_where(Expr::col(image_member::Column::Status).eq(status));
    }
    q
}

/// The images the filter selects, unsorted.
pub async fn list(db: &Db, f: &ListFilter) -> Result<Vec<Image>> {
    let rows = image::Entity::find().filter(condition(f)).all(&db.read).await?;
    Ok(filter_properties(f, rows))
}

/// Custom-property filters (JSON text, so checked here rather than in SQL).
fn filter_properties(f: &ListFilter, mut rows: Vec<Image>) -> Vec<Image> {
    if !f.properties.is_empty() {
        rows.retain(|img| {
            let props: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(&img.properties).unwrap_or_default();
            f.properties.iter().all(|(k, v)| props.get(k).and_then(|x| x.as_str()) == Some(v.as_str()))
        });
    }
    rows
}

fn sort_column(key: &str) -> (image::Column, bool) {
    match key {
        "name" => (image::Column::Name, true),
        "status" => (image::Column::Status, false),
        "container_format" => (image::Column::ContainerFormat, true),
        "disk_format" => (image::Column::DiskFormat, true),
        "size" => (image::Column::Size, true),
        "created_at" => (image::Column::CreatedAt, false),
        "updated_at" => (image::Column::UpdatedAt, false),
        _ => (image::Column::Id, false),
    }
}

fn sort_value(img: &Image, key: &str) -> sea_orm::Value {
    match key {
        "name" => img.name.clone().into(),
        "status" => img.status.clone().into(),
        "container_format" => img.container_format.clone().into(),
        "disk_format" => img.disk_format.clone().into(),
        "size" => img.size.into(),
        "created_at" => img.created_at.into(),
        "updated_at" => img.updated_at.into(),
        _ => img.id.clone().into(),
    }
}

fn is_null(v: &sea_orm::Value) -> bool {
    matches!(v, sea_orm::Value::String(None) | sea_orm::Value::BigInt(None))
}

/// One page of the images the filter selects, in SQL: ordered by `sort`
/// (NULL lowest, the same on every backend), after `marker`, at most `limit`;
/// with whether more follow. `sort` must end with a unique key (`id`).
pub async fn list_page(
    db: &Db,
    f: &ListFilter,
    sort: &[(String, bool)],
    marker: Option<&Image>,
    limit: u64,
) -> Result<(Vec<Image>, bool)> {
    use sea_orm::{Order, QuerySelect};
    if !f.properties.is_empty() {
        // property filters run after the query: page in memory
        let mut rows = list(db, f).await?;
        sort_in_memory(&mut rows, sort);
        let start = match marker {
            Some(m) => rows.iter().position(|r| r.id == m.id).map(|i| i + 1).unwrap_or(rows.len()),
            None => 0,
        };
        let more = rows.len() > start + limit as usize;
        return Ok((rows.into_iter().skip(start).take(limit as usize).collect(), more));
    }
    let mut cond = condition(f);
    if let Some(m) = marker {
        let mut after = Condition::any();
        for i in 0..sort.len() {
            let mut c = Condition::all();
            for (k, _) in &sort[..i] {
                let (col, _) = sort_column(k);
                let v = sort_value(m, k);
                c = c.add(if is_null(&v) { Expr::col(col).is_null() } else { Expr::col(col).eq(v) });
            }
            let (k, asc) = &sort[i];
            let (col, _) = sort_column(k);
            let v = sort_value(m, k);
            let step = match (asc, is_null(&v)) {
                (true, true) => Condition::all().add(Expr::col(col).is_not_null()),
                (true, false) => Condition::all().add(Expr::col(col).gt(v)),
                (false, true) => continue,
                (false, false) => Condition::any().add(Expr::col(col).lt(v)).add(Expr::col(col).is_null()),
            };
            after = after.add(c.add(step));
        }
        cond = cond.add(after);
    }
    let mut q = image::Entity::find().filter(cond);
    for (k, asc) in sort {
        let (col, nullable) = sort_column(k);
        if nullable {
            q = q.order_by(Expr::col(col).is_null(), if *asc { Order::Desc } else { Order::Asc });
        }
        q = q.order_by(col, if *asc { Order::Asc } else { Order::Desc });
    }
    let mut rows = q.limit(limit + 1).all(&db.read).await?;
    let more = rows.len() as u64 > limit;
    rows.truncate(limit as usize);
    Ok((rows, more))
}

/// The same order as `list_page`, for rows already in memory.
pub fn sort_in_memory(rows: &mut [Image], sort: &[(String, bool)]) {
    rows.sort_by(|a, b| {
        for (k, asc) in sort {
            let o = match k.as_str() {
                "name" => a.name.cmp(&b.name),
                "status" => a.status.cmp(&b.status),
                "container_format" => a.container_format.cmp(&b.container_format),
                "disk_format" => a.disk_format.cmp(&b.disk_format),
                "size" => a.size.cmp(&b.size),
                "created_at" => a.created_at.cmp(&b.created_at),
                "updated_at" => a.updated_at.cmp(&b.updated_at),
                _ => a.id.cmp(&b.id),
            };
            let o = if *asc { o } else { o.reverse() };
            if o != std::cmp::Ordering::Equal {
                return o;
            }
        }
        std::cmp::Ordering::Equal
    });
}

/// The SQL condition of a list filter (all but custom properties).
fn condition(f: &ListFilter) -> Condition {
    let mut cond = Condition::all().add(image::Column::Deleted.eq(false));
    let project = f.project.clone().unwrap_or_default();
    let owned = image::Column::Owner.eq(project.clone());
    let shared_with_me = Condition::all()
        .add(image::Column::Visibility.eq("shared"))
        .add(image::Column::Id.in_subquery(members_of(&project, &f.member_status)));
    let vis = match f.visibility.as_deref() {
        None | Some("all") => {
            if f.is_admin {
                Condition::all()
            } else {
                let mut c = Condition::any()
                    .add(image::Column::Visibility.eq("public"))
                    .add(owned.clone())
                    .add(shared_with_me.clone());
                if f.visibility.is_some() {
                    c = c.add(image::Column::Visibility.eq("community"));
                }
                c
            }
        }
        Some("public") => Condition::all().add(image::Column::Visibility.eq("public")),
        Some("community") => Condition::all().add(image::Column::Visibility.eq("community")),
        Some("private") => {
            let c = Condition::all().add(image::Column::Visibility.eq("private"));
            if f.is_admin { c } else { c.add(owned.clone()) }
        }
        Some("shared") => {
            let c = Condition::all().add(image::Column::Visibility.eq("shared"));
            if f.is_admin && f.member_status == "all" {
                c
            } else {
                c.add(
                    Condition::any()
                        .add(owned.clone())
                        .add(image::Column::Id.in_subquery(members_of(&project, &f.member_status))),
                )
            }
        }
        Some(_) => Condition::all().add(Expr::value(false)),
    };
    cond = cond.add(vis);
    if !f.ids.is_empty() {
        cond = cond.add(image::Column::Id.is_in(f.ids.clone()));
    }
    if !f.names.is_empty() {
        cond = cond.add(image::Column::Name.is_in(f.names.clone()));
    }
    if !f.statuses.is_empty() {
        cond = cond.add(image::Column::Status.is_in(f.statuses.clone()));
    }
    if !f.owners.is_empty() {
        cond = cond.add(image::Column::Owner.is_in(f.owners.clone()));
    }
    if !f.disk_formats.is_empty() {
        cond = cond.add(image::Column::DiskFormat.is_in(f.disk_formats.clone()));
    }
    if !f.container_formats.is_empty() {
        cond = cond.add(image::Column::ContainerFormat.is_in(f.container_formats.clone()));
    }
    if !f.sizes.is_empty() {
        cond = cond.add(image::Column::Size.is_in(f.sizes.clone()));
    }
    if !f.checksums.is_empty() {
        cond = cond.add(image::Column::Checksum.is_in(f.checksums.clone()));
    }
    if !f.hash_values.is_empty() {
        cond = cond.add(image::Column::OsHashValue.is_in(f.hash_values.clone()));
    }
    if let Some(v) = f.min_ram {
        cond = cond.add(image::Column::MinRam.eq(v));
    }
    if let Some(v) = f.min_disk {
        cond = cond.add(image::Column::MinDisk.eq(v));
    }
    if let Some(v) = f.size_min {
        cond = cond.add(image::Column::Size.gte(v));
    }
    if let Some(v) = f.size_max {
        cond = cond.add(image::Column::Size.lte(v));
    }
    for (op, v) in &f.created_at {
        cond = cond.add(time_cond(image::Column::CreatedAt, *op, *v));
    }
    for (op, v) in &f.updated_at {
        cond = cond.add(time_cond(image::Column::UpdatedAt, *op, *v));
    }
    match f.os_hidden {
        Some(h) => cond = cond.add(image::Column::OsHidden.eq(h)),
        None => cond = cond.add(image::Column::OsHidden.eq(false)),
    }
    if let Some(p) = f.protected {
        cond = cond.add(image::Column::Protected.eq(p));
    }
    for t in &f.tags {
        let mut q = Query::select();
        q.column(image_tag::Column::ImageId).from(image_tag::Entity).and_where(Expr::col(image_tag::Column::Tag).eq(t));
        cond = cond.add(image::Column::Id.in_subquery(q));
    }
    cond
}

/// How many live images a project has, read from the writer (what is committed now).
pub async fn count_fresh(db: &Db, owner: &str) -> Result<i64> {
    use sea_orm::PaginatorTrait;
    let n = image::Entity::find()
        .filter(image::Column::Owner.eq(owner))
        .filter(image::Column::Deleted.eq(false))
        .count(&db.write)
        .await?;
    Ok(n as i64)
}

/// Bytes of image data a project stores, read from the writer (what is committed now).
pub async fn bytes_fresh(db: &Db, owner: &str) -> Result<i64> {
    let rows = image::Entity::find()
        .filter(image::Column::Owner.eq(owner))
        .filter(image::Column::Deleted.eq(false))
        .filter(image::Column::Size.is_not_null())
        .all(&db.write)
        .await?;
    Ok(rows.iter().filter_map(|r| r.size).sum())
}

/// Images whose work stopped beating before `cutoff` move on: `saving` →
/// `killed`, an unfinished staging (`uploading`, nothing staged) → `queued`,
/// `importing` → `queued`. Returns how many moved.
pub async fn reap_stale(db: &Db, cutoff: i64, now: i64) -> Result<u64> {
    let stale = || image::Column::UpdatedAt.lt(cutoff);
    let live = || image::Column::Deleted.eq(false);
    let mut n = 0;
    let r = image::Entity::update_many()
        .col_expr(image::Column::Status, Expr::value("killed"))
        .col_expr(image::Column::UpdatedAt, Expr::value(now))
        .filter(image::Column::Status.eq("saving"))
        .filter(live())
        .filter(stale())
        .exec(&db.write)
        .await?;
    n += r.rows_affected;
    let r = image::Entity::update_many()
        .col_expr(image::Column::Status, Expr::value("queued"))
        .col_expr(image::Column::UpdatedAt, Expr::value(now))
        .filter(image::Column::Status.eq("uploading"))
        .filter(image::Column::Staging.is_null())
        .filter(live())
        .filter(stale())
        .exec(&db.write)
        .await?;
    n += r.rows_affected;
    let r = image::Entity::update_many()
        .col_expr(image::Column::Status, Expr::value("queued"))
        .col_expr(image::Column::Staging, Expr::value(Option::<String>::None))
        .col_expr(image::Column::UpdatedAt, Expr::value(now))
        .filter(image::Column::Status.eq("importing"))
        .filter(live())
        .filter(stale())
        .exec(&db.write)
        .await?;
    Ok(n + r.rows_affected)
}

/// Remove an image row that never became visible (a create refused after the fact).
pub async fn purge(db: &Db, id: &str) -> Result<()> {
    image_tag::Entity::delete_many().filter(image_tag::Column::ImageId.eq(id)).exec(&db.write).await?;
    image::Entity::delete_by_id(id.to_string()).exec(&db.write).await?;
    Ok(())
}

/// Total bytes and count of a project's images (for quotas).
pub async fn usage(db: &Db, owner: &str) -> Result<(i64, i64)> {
    let rows = image::Entity::find()
        .filter(image::Column::Owner.eq(owner))
        .filter(image::Column::Deleted.eq(false))
        .all(&db.read)
        .await?;
    let bytes = rows.iter().filter_map(|r| r.size).sum();
    Ok((rows.len() as i64, bytes))
}
