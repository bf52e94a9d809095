//! Application credentials: a user delegates (a subset of) its roles on one
//! project to a secret.
//!
//! Secrets Stratus generates are 64 random bytes, so a SHA-256 digest stores
//! them safely and checks them in microseconds; secrets a user chooses may be
//! weak and get bcrypt like passwords.

use base64::Engine;
use rand::RngCore;
use sea_orm::ActiveValue::Set;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use sha2::{Digest, Sha256};
use stratus_db::Db;
use subtle::ConstantTimeEq;

use crate::entity::application_credential as ac;
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
}

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
    let m = or_conflict(am.insert(&db.write).await, || {
        conflict("application_credential", format!("Duplicate entry found with name {}", c.name))
    })?;
    Ok((m, secret))
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
    let r = ac::Entity::delete_by_id(id.to_string()).exec(&db.write).await?;
    if r.rows_affected == 0 {
        return Err(not_found("application credential", id));
    }
    Ok(())
}
