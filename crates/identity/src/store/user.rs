//! Users, their passwords, groups and group membership.

use sea_orm::ActiveValue::Set;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, TransactionTrait};
use serde_json::{Map, Value};
use stratus_db::Db;

use super::revoke;
use crate::entity::{application_credential, assignment, credential, group, user, user_group_membership as ugm};
use crate::error::{IdentityError, Result, conflict, ignore_duplicate, not_found, or_conflict};
use crate::util::{extra_string, new_id, now_us};

pub type User = user::Model;
pub type Group = group::Model;

/// Hash a password with bcrypt off the async threads (it is slow on purpose).
pub async fn hash_password(password: &str, cost: u32) -> Result<String> {
    let pw = password.to_string();
    tokio::task::spawn_blocking(move || bcrypt::hash(pw, cost.clamp(4, 31)))
        .await
        .map_err(|e| IdentityError::Internal(e.into()))?
        .map_err(|e| IdentityError::Internal(e.into()))
}

/// Check a password against its hash in constant time (bcrypt compares in constant time).
pub async fn verify_password(password: &str, hash: &str) -> bool {
    let pw = password.to_string();
    let h = hash.to_string();
    tokio::task::spawn_blocking(move || bcrypt::verify(pw, &h).unwrap_or(false)).await.unwrap_or(false)
}

pub async fn get(db: &Db, id: &str) -> Result<User> {
    user::Entity::find_by_id(id.to_string()).one(&db.read).await?.ok_or_else(|| not_found("user", id))
}

pub async fn find(db: &Db, id: &str) -> Result<Option<User>> {
    Ok(user::Entity::find_by_id(id.to_string()).one(&db.read).await?)
}

pub async fn by_name(db: &Db, domain_id: &str, name: &str) -> Result<Option<User>> {
    Ok(user::Entity::find()
        .filter(user::Column::DomainId.eq(domain_id))
        .filter(user::Column::Name.eq(name))
        .one(&db.read)
        .await?)
}

#[derive(Default)]
pub struct UserFilter {
    pub domain_id: Option<String>,
    pub name: Option<String>,
    pub enabled: Option<bool>,
    pub ids: Option<Vec<String>>,
}

pub async fn list(db: &Db, f: &UserFilter) -> Result<Vec<User>> {
    let mut q = user::Entity::find();
    if let Some(d) = &f.domain_id {
        q = q.filter(user::Column::DomainId.eq(d.as_str()));
    }
    if let Some(n) = &f.name {
        q = q.filter(user::Column::Name.eq(n.as_str()));
    }
    if let Some(e) = f.enabled {
        q = q.filter(user::Column::Enabled.eq(e));
    }
    if let Some(ids) = &f.ids {
        q = q.filter(user::Column::Id.is_in(ids.clone()));
    }
    Ok(q.order_by_asc(user::Column::Name).all(&db.read).await?)
}

pub struct NewUser {
    pub id: Option<String>,
    pub name: String,
    pub domain_id: String,
    pub enabled: bool,
    pub default_project_id: Option<String>,
    pub password: Option<String>,
    pub options: Map<String, Value>,
    pub extra: Map<String, Value>,
}

pub async fn create(db: &Db, cfg: &stratus_core::Config, u: NewUser) -> Result<User> {
    super::resource::get_domain(db, &u.domain_id).await?;
    let now = now_us();
    let (hash, expires) = match &u.password {
        Some(p) => (Some(hash_password(p, cfg.identity.password_hash_rounds).await?), password_expiry(cfg, now)),
        None => (None, None),
    };
    let am = user::ActiveModel {
        id: Set(u.id.unwrap_or_else(new_id)),
        domain_id: Set(u.domain_id.clone()),
        name: Set(u.name.clone()),
        enabled: Set(u.enabled),
        default_project_id: Set(u.default_project_id),
        extra: Set(extra_string(&u.extra)),
        options: Set(extra_string(&u.options)),
        created_at: Set(now),
        last_active_at: Set(None),
        password_hash: Set(hash),
        password_created_at: Set(u.password.as_ref().map(|_| now)),
        password_expires_at: Set(expires),
        failed_auth_count: Set(0),
        failed_auth_at: Set(None),
    };
    or_conflict(am.insert(&db.write).await, || {
        conflict("user", format!("Duplicate entry found with name {} at domain ID {}", u.name, u.domain_id))
    })
}

fn password_expiry(cfg: &stratus_core::Config, now: i64) -> Option<i64> {
    (cfg.identity.password_expires_days > 0).then(|| now + cfg.identity.password_expires_days * 86_400 * 1_000_000)
}

#[derive(Default)]
pub struct UserUpdate {
    pub name: Option<String>,
    pub enabled: Option<bool>,
    pub default_project_id: Option<Option<String>>,
    pub password: Option<String>,
    pub options: Option<Map<String, Value>>,
    pub extra: Map<String, Value>,
}

pub async fn update(
    db: &Db,
    cfg: &stratus_core::Config,
    revs: &revoke::RevocationList,
    id: &str,
    u: UserUpdate,
) -> Result<User> {
    let cur = get(db, id).await?;
    let mut am: user::ActiveModel = cur.clone().into();
    if let Some(n) = &u.name {
        am.name = Set(n.clone());
    }
    if let Some(e) = u.enabled {
        am.enabled = Set(e);
        if e {
            am.failed_auth_count = Set(0);
        }
    }
    if let Some(d) = u.default_project_id.clone() {
        am.default_project_id = Set(d);
    }
    if let Some(o) = &u.options {
        let mut opts = crate::util::parse_extra(&cur.options);
        for (k, v) in o {
            if v.is_null() {
                opts.remove(k);
            } else {
                opts.insert(k.clone(), v.clone());
            }
        }
        am.options = Set(extra_string(&opts));
    }
    let now = now_us();
    if let Some(p) = &u.password {
        am.password_hash = Set(Some(hash_password(p, cfg.identity.password_hash_rounds).await?));
        am.password_created_at = Set(Some(now));
        am.password_expires_at = Set(password_expiry(cfg, now));
    }
    let mut extra = crate::util::parse_extra(&cur.extra);
    extra.extend(u.extra.clone());
    am.extra = Set(extra_string(&extra));
    let model = or_conflict(am.update(&db.write).await, || {
        conflict("user", format!("Duplicate entry found with name {}", u.name.clone().unwrap_or_default()))
    })?;
    if u.enabled == Some(false) || u.password.is_some() {
        revs.record(db, revoke::Event { user_id: Some(id.to_string()), issued_before: now, ..Default::default() })
            .await?;
    }
    Ok(model)
}

/// Record a failed or successful password check (lockout bookkeeping).
pub async fn record_auth_result(db: &Db, u: &User, ok: bool) -> Result<()> {
    let mut am: user::ActiveModel = u.clone().into();
    if ok {
        if u.failed_auth_count == 0 && u.last_active_at.is_some() {
            return Ok(());
        }
        am.failed_auth_count = Set(0);
        am.failed_auth_at = Set(None);
        am.last_active_at = Set(Some(now_us()));
    } else {
        am.failed_auth_count = Set(u.failed_auth_count.saturating_add(1));
        am.failed_auth_at = Set(Some(now_us()));
    }
    am.update(&db.write).await?;
    Ok(())
}

pub async fn delete(db: &Db, revs: &revoke::RevocationList, id: &str) -> Result<()> {
    get(db, id).await?;
    let txn = db.write.begin().await?;
    assignment::Entity::delete_many().filter(assignment::Column::ActorId.eq(id)).exec(&txn).await?;
    ugm::Entity::delete_many().filter(ugm::Column::UserId.eq(id)).exec(&txn).await?;
    credential::Entity::delete_many().filter(credential::Column::UserId.eq(id)).exec(&txn).await?;
    let cred_ids: Vec<String> = application_credential::Entity::find()
        .filter(application_credential::Column::UserId.eq(id))
        .all(&txn)
        .await?
        .into_iter()
        .map(|c| c.id)
        .collect();
    if !cred_ids.is_empty() {
        crate::entity::application_credential_access_rule::Entity::delete_many()
            .filter(crate::entity::application_credential_access_rule::Column::ApplicationCredentialId.is_in(cred_ids))
            .exec(&txn)
            .await?;
    }
    crate::entity::access_rule::Entity::delete_many()
        .filter(crate::entity::access_rule::Column::UserId.eq(id))
        .exec(&txn)
        .await?;
    application_credential::Entity::delete_many()
        .filter(application_credential::Column::UserId.eq(id))
        .exec(&txn)
        .await?;
    user::Entity::delete_by_id(id.to_string()).exec(&txn).await?;
    txn.commit().await?;
    revs.record(db, revoke::Event { user_id: Some(id.to_string()), ..Default::default() }).await?;
    Ok(())
}

// ---- groups

pub async fn get_group(db: &Db, id: &str) -> Result<Group> {
    group::Entity::find_by_id(id.to_string()).one(&db.read).await?.ok_or_else(|| not_found("group", id))
}

pub async fn group_by_name(db: &Db, domain_id: &str, name: &str) -> Result<Option<Group>> {
    Ok(group::Entity::find()
        .filter(group::Column::DomainId.eq(domain_id))
        .filter(group::Column::Name.eq(name))
        .one(&db.read)
        .await?)
}

pub async fn list_groups(db: &Db, domain_id: Option<&str>, name: Option<&str>) -> Result<Vec<Group>> {
    let mut q = group::Entity::find();
    if let Some(d) = domain_id {
        q = q.filter(group::Column::DomainId.eq(d));
    }
    if let Some(n) = name {
        q = q.filter(group::Column::Name.eq(n));
    }
    Ok(q.order_by_asc(group::Column::Name).all(&db.read).await?)
}

pub async fn create_group(
    db: &Db,
    domain_id: &str,
    name: &str,
    description: Option<String>,
    extra: &Map<String, Value>,
) -> Result<Group> {
    super::resource::get_domain(db, domain_id).await?;
    let am = group::ActiveModel {
        id: Set(new_id()),
        domain_id: Set(domain_id.to_string()),
        name: Set(name.to_string()),
        description: Set(description),
        extra: Set(extra_string(extra)),
    };
    or_conflict(am.insert(&db.write).await, || {
        conflict("group", format!("Duplicate entry found with name {name} at domain ID {domain_id}"))
    })
}

pub async fn update_group(
    db: &Db,
    id: &str,
    name: Option<String>,
    description: Option<Option<String>>,
    extra: &Map<String, Value>,
) -> Result<Group> {
    let cur = get_group(db, id).await?;
    let mut am: group::ActiveModel = cur.clone().into();
    if let Some(n) = &name {
        am.name = Set(n.clone());
    }
    if let Some(d) = description {
        am.description = Set(d);
    }
    let mut x = crate::util::parse_extra(&cur.extra);
    x.extend(extra.clone());
    am.extra = Set(extra_string(&x));
    or_conflict(am.update(&db.write).await, || {
        conflict("group", format!("Duplicate entry found with name {}", name.unwrap_or_default()))
    })
}

pub async fn delete_group(db: &Db, revs: &revoke::RevocationList, id: &str) -> Result<()> {
    get_group(db, id).await?;
    let members = group_members(db, id).await?;
    let txn = db.write.begin().await?;
    assignment::Entity::delete_many().filter(assignment::Column::ActorId.eq(id)).exec(&txn).await?;
    ugm::Entity::delete_many().filter(ugm::Column::GroupId.eq(id)).exec(&txn).await?;
    group::Entity::delete_by_id(id.to_string()).exec(&txn).await?;
    txn.commit().await?;
    for uid in members {
        revs.record(db, revoke::Event { user_id: Some(uid), ..Default::default() }).await?;
    }
    Ok(())
}

pub async fn group_members(db: &Db, group_id: &str) -> Result<Vec<String>> {
    Ok(ugm::Entity::find()
        .filter(ugm::Column::GroupId.eq(group_id))
        .all(&db.read)
        .await?
        .into_iter()
        .map(|m| m.user_id)
        .collect())
}

pub async fn user_groups(db: &Db, user_id: &str) -> Result<Vec<String>> {
    Ok(ugm::Entity::find()
        .filter(ugm::Column::UserId.eq(user_id))
        .all(&db.read)
        .await?
        .into_iter()
        .map(|m| m.group_id)
        .collect())
}

pub async fn add_member(db: &Db, group_id: &str, user_id: &str) -> Result<()> {
    get_group(db, group_id).await?;
    get(db, user_id).await?;
    ignore_duplicate(
        (ugm::ActiveModel { user_id: Set(user_id.to_string()), group_id: Set(group_id.to_string()) })
            .insert(&db.write)
            .await,
    )
}

pub async fn is_member(db: &Db, group_id: &str, user_id: &str) -> Result<bool> {
    Ok(ugm::Entity::find_by_id((user_id.to_string(), group_id.to_string())).one(&db.read).await?.is_some())
}

pub async fn remove_member(db: &Db, revs: &revoke::RevocationList, group_id: &str, user_id: &str) -> Result<()> {
    get_group(db, group_id).await?;
    get(db, user_id).await?;
    let r = ugm::Entity::delete_by_id((user_id.to_string(), group_id.to_string())).exec(&db.write).await?;
    if r.rows_affected == 0 {
        return Err(IdentityError::NotFoundMsg(format!("User '{user_id}' not found in group '{group_id}'")));
    }
    revs.record(db, revoke::Event { user_id: Some(user_id.to_string()), ..Default::default() }).await?;
    Ok(())
}
