//! Console authorizations, stored hashed: the token is returned once, in the
//! URL; the table keeps its SHA-256 with where it leads and until when.

use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use sha2::{Digest, Sha256};
use stratus_db::Db;
use stratus_virt::ConsoleEndpoint;

use super::entity::{self, Model};
use crate::error::Result;

pub type ConsoleAuthToken = Model;

/// What a new console authorization leads to.
#[derive(Clone, Debug)]
pub struct NewAuthorization {
    /// `novnc`, `serial`
    pub console_type: String,
    pub endpoint: ConsoleEndpoint,
    pub instance_uuid: String,
    pub compute_host: String,
    pub access_url_base: String,
    pub ttl: std::time::Duration,
}

/// Hex SHA-256 of a token (as Nova's `get_sha256_str`).
pub fn hash(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// Store a new authorization; its token (a random UUID, as Nova's) is
/// returned and kept nowhere. Expired authorizations are swept on the way.
pub async fn authorize(db: &Db, new: &NewAuthorization) -> Result<(String, Model)> {
    purge_expired(db).await?;
    let token = uuid::Uuid::new_v4().to_string();
    let (host, port, path) = match &new.endpoint {
        ConsoleEndpoint::Tcp { host, port } => (host.clone(), i64::from(*port), None),
        ConsoleEndpoint::Unix { path } => (new.compute_host.clone(), 0, Some(path.to_string_lossy().into_owned())),
    };
    let created = now();
    let ttl = i64::try_from(new.ttl.as_micros()).unwrap_or(i64::MAX / 2);
    let m = entity::ActiveModel {
        token_hash: Set(hash(&token)),
        console_type: Set(new.console_type.clone()),
        host: Set(host),
        port: Set(port),
        internal_access_path: Set(path),
        instance_uuid: Set(new.instance_uuid.clone()),
        compute_host: Set(new.compute_host.clone()),
        access_url_base: Set(Some(new.access_url_base.clone())),
        expires: Set(created.saturating_add(ttl)),
        created_at: Set(created),
        ..Default::default()
    }
    .insert(&db.write)
    .await?;
    Ok((token, m))
}

/// The authorization of a token that has not expired (nor been used).
pub async fn validate(db: &Db, token: &str) -> Result<Option<Model>> {
    Ok(entity::Entity::find()
        .filter(entity::Column::TokenHash.eq(hash(token)))
        .filter(entity::Column::Expires.gt(now()))
        .one(&db.write)
        .await?)
}

/// Use a token: its authorization when it is valid, which is gone
/// afterwards (of two connections racing with one token, one wins).
pub async fn consume(db: &Db, token: &str) -> Result<Option<Model>> {
    let Some(m) = validate(db, token).await? else { return Ok(None) };
    let gone = entity::Entity::delete_many().filter(entity::Column::Id.eq(m.id)).exec(&db.write).await?;
    Ok((gone.rows_affected == 1).then_some(m))
}

/// Forget every authorization of a server (it is deleted or moved).
pub async fn delete_for_instance(db: &Db, instance_uuid: &str) -> Result<()> {
    entity::Entity::delete_many().filter(entity::Column::InstanceUuid.eq(instance_uuid)).exec(&db.write).await?;
    Ok(())
}

pub async fn purge_expired(db: &Db) -> Result<()> {
    entity::Entity::delete_many().filter(entity::Column::Expires.lte(now())).exec(&db.write).await?;
    Ok(())
}

/// Where an authorization leads.
pub fn endpoint(m: &Model) -> ConsoleEndpoint {
    match (&m.internal_access_path, m.port) {
        (Some(path), 0) => ConsoleEndpoint::Unix { path: path.into() },
        _ => ConsoleEndpoint::Tcp { host: m.host.clone(), port: u16::try_from(m.port).unwrap_or(0) },
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn hash_is_hex_sha256() {
        assert_eq!(super::hash("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
