//! Application credentials: a user delegates (a subset of) its roles on one
//! project to a secret.
//!
//! Secrets Stratus generates are 64 random bytes, so a SHA-256 digest stores
//! them safely and checks them in microseconds; secrets a user chooses may be
//! weak and get bcrypt like passwords.

use base64::Engine;
use rand::RngCore;
use sea_orm::ActiveValue::Set;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, TransactionTrait};
use sha2::{Digest, Sha256};
use stratus_db::Db;
use subtle::ConstantTimeEq;

use crate::entity::access_rule as ar;
use crate::entity::application_credential as ac;
use crate::entity::application_credential_access_rule as acar;
use crate::error::{Result, conflict, not_found, or_conflict};
use crate::util::{new_id, now_us};

pub type AppCred = ac::Model;

const SHA_PREFIX: &str = "sha256$";

pub fn generate_secret() -> String {
    let mut b = [0u8; 64];
    rand::rng().fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

fn sha(secret: &str) -> String {
    let d = Sha256::digest(secret.as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

pub async fn verify_secret(secret: &str, stored: &str) -> bool {
    if let Some(hex) = stored.strip_prefix(SHA_PREFIX) {
        return sha(secret).as_bytes().ct_eq(hex.as_bytes()).into();
    }
    super::user::verify_password(secret, stored).await
}

pub struct NewAppCred {
    pub name: String,
    pub description: Option<String>,
    pub user_id: String,
    pub project_id: Option<String>,
    pub system: Option<String>,
    pub expires_at: Option<i64>,
    pub unrestricted: bool,
    pub role_ids: Vec<String>,
    /// a secret the user chose; None: generate one
    pub secret: Option<String>,
    /// the access rules asked for (none: the credential may call anything)
    pub access_rules: Vec<RuleInput>,
}

/// An access rule as a credential's creator gives it: an existing rule of
/// the user by `id`, or a service, path and method (an identical rule of
/// the user is reused, as Keystone does).
#[derive(Clone, Debug, Default)]
pub struct RuleInput {
    pub id: Option<String>,
    pub service: Option<String>,
    pub path: Option<String>,
    pub method: Option<String>,
}

pub type AccessRule = ar::Model;

/// Create; returns the record and the secret in clear (shown once).
pub async fn create(db: &Db, cost: u32, c: NewAppCred) -> Result<(AppCred, String)> {
    let (secret, hash) = match c.secret {
        Some(s) => {
            let h = super::user::hash_password(&s, cost).await?;
            (s, h)
        }
        None => {
            let s = generate_secret();
            let h = format!("{SHA_PREFIX}{}", sha(&s));
            (s, h)
        }
    };
    let am = ac::ActiveModel {
        id: Set(new_id()),
        name: Set(c.name.clone()),
        secret_hash: Set(hash),
        description: Set(c.description),
        user_id: Set(c.user_id),
        project_id: Set(c.project_id),
        expires_at: Set(c.expires_at),
        system: Set(c.system),
        unrestricted: Set(c.unrestricted),
        roles: Set(serde_json::to_string(&c.role_ids).unwrap_or_else(|_| "[]".into())),
        created_at: Set(now_us()),
    };
    let txn = db.write.begin().await?;
    let m = or_conflict(am.insert(&txn).await, || {
        conflict("application_credential", format!("Duplicate entry found with name {}", c.name))
    })?;
    for (position, rule) in c.access_rules.iter().enumerate() {
        let r = find_or_make_rule(&txn, &m.user_id, rule).await?;
        // the same rule twice in one request is linked once
        if acar::Entity::find_by_id((m.id.clone(), r.id.clone())).one(&txn).await?.is_some() {
            continue;
        }
        acar::ActiveModel {
            application_credential_id: Set(m.id.clone()),
            access_rule_id: Set(r.id),
            position: Set(i32::try_from(position).unwrap_or(i32::MAX)),
        }
        .insert(&txn)
        .await?;
    }
    txn.commit().await?;
    Ok((m, secret))
}

/// The user's rule named by `id`, or the user's identical rule, or a new one.
async fn find_or_make_rule(conn: &impl ConnectionTrait, user_id: &str, r: &RuleInput) -> Result<AccessRule> {
    if let Some(id) = &r.id
        && let Some(found) = ar::Entity::find_by_id(id.clone()).one(conn).await?
        && found.user_id == user_id
    {
        return Ok(found);
    }
    let (Some(service), Some(path), Some(method)) = (&r.service, &r.path, &r.method) else {
        return Err(crate::error::bad(
            "Invalid input for field 'application_credential.access_rules': an access rule needs a service, a path \
             and a method, or the id of an existing rule.",
        ));
    };
    if let Some(found) = ar::Entity::find()
        .filter(ar::Column::UserId.eq(user_id))
        .filter(ar::Column::Service.eq(service))
        .filter(ar::Column::Path.eq(path))
        .filter(ar::Column::Method.eq(method))
        .one(conn)
        .await?
    {
        return Ok(found);
    }
    // an id given for a rule not yet made is kept, unless another user's rule has it
    let id = match &r.id {
        Some(id) if ar::Entity::find_by_id(id.clone()).one(conn).await?.is_none() => id.clone(),
        _ => new_id(),
    };
    let am = ar::ActiveModel {
        id: Set(id),
        user_id: Set(user_id.to_string()),
        service: Set(service.clone()),
        path: Set(path.clone()),
        method: Set(method.clone()),
    };
    Ok(am.insert(conn).await?)
}

/// The access rules a credential is limited to, in the order given at its
/// creation; `None` when it has none (it may call anything).
pub async fn access_rules_of(db: &Db, cred_id: &str) -> Result<Option<Vec<AccessRule>>> {
    let links = acar::Entity::find()
        .filter(acar::Column::ApplicationCredentialId.eq(cred_id))
        .order_by_asc(acar::Column::Position)
        .all(&db.read)
        .await?;
    if links.is_empty() {
        return Ok(None);
    }
    let ids: Vec<String> = links.iter().map(|l| l.access_rule_id.clone()).collect();
    let rules = ar::Entity::find().filter(ar::Column::Id.is_in(ids.clone())).all(&db.read).await?;
    Ok(Some(ids.iter().filter_map(|id| rules.iter().find(|r| &r.id == id).cloned()).collect()))
}

/// A user's access rules, filtered by service, path and method when given.
pub async fn list_access_rules(
    db: &Db,
    user_id: &str,
    service: Option<&str>,
    path: Option<&str>,
    method: Option<&str>,
) -> Result<Vec<AccessRule>> {
    let mut q = ar::Entity::find().filter(ar::Column::UserId.eq(user_id));
    if let Some(v) = service {
        q = q.filter(ar::Column::Service.eq(v));
    }
    if let Some(v) = path {
        q = q.filter(ar::Column::Path.eq(v));
    }
    if let Some(v) = method {
        q = q.filter(ar::Column::Method.eq(v));
    }
    Ok(q.order_by_asc(ar::Column::Id).all(&db.read).await?)
}

pub async fn get_access_rule(db: &Db, id: &str) -> Result<AccessRule> {
    ar::Entity::find_by_id(id.to_string()).one(&db.read).await?.ok_or_else(|| not_found("access rule", id))
}

/// Delete a rule no credential uses (403 while one does, as Keystone).
pub async fn delete_access_rule(db: &Db, id: &str) -> Result<()> {
    let txn = db.write.begin().await?;
    if ar::Entity::find_by_id(id.to_string()).one(&txn).await?.is_none() {
        return Err(not_found("access rule", id));
    }
    if acar::Entity::find().filter(acar::Column::AccessRuleId.eq(id)).one(&txn).await?.is_some() {
        return Err(crate::error::IdentityError::Forbidden("May not delete access rule in use".into()));
    }
    ar::Entity::delete_by_id(id.to_string()).exec(&txn).await?;
    txn.commit().await?;
    Ok(())
}

pub fn role_ids(c: &AppCred) -> Vec<String> {
    serde_json::from_str(&c.roles).unwrap_or_default()
}

pub async fn get(db: &Db, id: &str) -> Result<AppCred> {
    ac::Entity::find_by_id(id.to_string()).one(&db.read).await?.ok_or_else(|| not_found("application credential", id))
}

pub async fn by_name(db: &Db, user_id: &str, name: &str) -> Result<Option<AppCred>> {
    Ok(ac::Entity::find()
        .filter(ac::Column::UserId.eq(user_id))
        .filter(ac::Column::Name.eq(name))
        .one(&db.read)
        .await?)
}

pub async fn list(db: &Db, user_id: &str, name: Option<&str>) -> Result<Vec<AppCred>> {
    let mut q = ac::Entity::find().filter(ac::Column::UserId.eq(user_id));
    if let Some(n) = name {
        q = q.filter(ac::Column::Name.eq(n));
    }
    Ok(q.order_by_asc(ac::Column::Name).all(&db.read).await?)
}

/// Delete; tokens made from it stop validating because validation looks it up.
pub async fn delete(db: &Db, id: &str) -> Result<()> {
    let txn = db.write.begin().await?;
    let r = ac::Entity::delete_by_id(id.to_string()).exec(&txn).await?;
    if r.rows_affected == 0 {
        return Err(not_found("application credential", id));
    }
    // its rules stay the user's (Keystone keeps them too), now unused
    acar::Entity::delete_many().filter(acar::Column::ApplicationCredentialId.eq(id)).exec(&txn).await?;
    txn.commit().await?;
    Ok(())
}
