//! Traits, and the traits of each provider.

use std::collections::BTreeSet;

use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set};

use super::providers::{self, Provider};
use super::{Tx, now_us};
use crate::entity::{provider_trait, trait_};
use crate::error::{Result, bad};

pub type Trait = trait_::Model;

/// `GET /traits` filters.
#[derive(Default, Debug, Clone)]
pub struct Filter {
    pub name_in: Option<Vec<String>>,
    pub prefix: Option<String>,
    pub associated: Option<bool>,
}

pub async fn list(conn: &impl ConnectionTrait, f: &Filter) -> Result<Vec<Trait>> {
    let mut q = trait_::Entity::find().order_by_asc(trait_::Column::Name);
    if let Some(names) = &f.name_in {
        q = q.filter(trait_::Column::Name.is_in(names.iter().cloned()));
    }
    let mut all = q.all(conn).await?;
    if let Some(prefix) = &f.prefix {
        all.retain(|t| t.name.starts_with(prefix.as_str()));
    }
    if let Some(associated) = f.associated {
        let used: BTreeSet<String> = provider_trait::Entity::find()
            .select_only()
            .column(provider_trait::Column::Trait)
            .distinct()
            .into_tuple::<String>()
            .all(conn)
            .await?
            .into_iter()
            .collect();
        all.retain(|t| used.contains(&t.name) == associated);
    }
    Ok(all)
}

pub async fn get(conn: &impl ConnectionTrait, name: &str) -> Result<Option<Trait>> {
    Ok(trait_::Entity::find_by_id(name.to_string()).one(conn).await?)
}

/// Create a custom trait; false when it already exists.
pub async fn create(tx: &mut Tx, name: &str) -> Result<bool> {
    if get(tx.conn(), name).await?.is_some() {
        return Ok(false);
    }
    let now = now_us();
    let r = trait_::ActiveModel { name: Set(name.to_string()), created_at: Set(now), updated_at: Set(now) }
        .insert(tx.conn())
        .await;
    match r {
        Ok(_) => {
            tx.names_changed();
            Ok(true)
        }
        Err(e) if stratus_db::is_unique_violation(&e) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

pub enum DeleteOutcome {
    Deleted,
    NotFound,
    InUse,
}

pub async fn delete(tx: &mut Tx, name: &str) -> Result<DeleteOutcome> {
    if get(tx.conn(), name).await?.is_none() {
        return Ok(DeleteOutcome::NotFound);
    }
    let used = provider_trait::Entity::find().filter(provider_trait::Column::Trait.eq(name)).one(tx.conn()).await?;
    if used.is_some() {
        return Ok(DeleteOutcome::InUse);
    }
    trait_::Entity::delete_by_id(name.to_string()).exec(tx.conn()).await?;
    tx.names_changed();
    Ok(DeleteOutcome::Deleted)
}

/// The traits of one provider, sorted.
pub async fn of_provider(conn: &impl ConnectionTrait, rp_id: i64) -> Result<Vec<String>> {
    Ok(provider_trait::Entity::find()
        .select_only()
        .column(provider_trait::Column::Trait)
        .filter(provider_trait::Column::ResourceProviderId.eq(rp_id))
        .order_by_asc(provider_trait::Column::Trait)
        .into_tuple()
        .all(conn)
        .await?)
}

/// Replace the traits of `rp`. With `expected`, 409 when the provider's
/// generation moved. The generation is bumped only when the set changes, as
/// placement does. Returns (traits, generation).
pub async fn set_for_provider(
    tx: &mut Tx,
    rp: &Provider,
    expected: Option<i64>,
    wanted: &[String],
) -> Result<(Vec<String>, i64)> {
    let Some(generation) = providers::generation(tx.conn(), rp.id).await? else {
        return Err(crate::error::provider_not_found(&rp.uuid));
    };
    if expected.is_some_and(|e| e != generation) {
        return Err(generation_conflict());
    }
    let wanted: BTreeSet<String> = wanted.iter().cloned().collect();
    if !wanted.is_empty() {
        let known: BTreeSet<String> =
            list(tx.conn(), &Filter { name_in: Some(wanted.iter().cloned().collect()), ..Default::default() })
                .await?
                .into_iter()
                .map(|t| t.name)
                .collect();
        let missing: Vec<&String> = wanted.difference(&known).collect();
        if !missing.is_empty() {
            return Err(bad(format!(
                "No such trait {}",
                missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
            )));
        }
    }
    let existing: BTreeSet<String> = of_provider(tx.conn(), rp.id).await?.into_iter().collect();
    if existing == wanted {
        return Ok((wanted.into_iter().collect(), generation));
    }
    let to_delete: Vec<String> = existing.difference(&wanted).cloned().collect();
    if !to_delete.is_empty() {
        provider_trait::Entity::delete_many()
            .filter(provider_trait::Column::ResourceProviderId.eq(rp.id))
            .filter(provider_trait::Column::Trait.is_in(to_delete))
            .exec(tx.conn())
            .await?;
    }
    let to_add: Vec<provider_trait::ActiveModel> = wanted
        .difference(&existing)
        .map(|t| provider_trait::ActiveModel { resource_provider_id: Set(rp.id), trait_: Set(t.clone()) })
        .collect();
    if !to_add.is_empty() {
        provider_trait::Entity::insert_many(to_add).exec_without_returning(tx.conn()).await?;
    }
    let generation = providers::bump_generation(tx, rp.id, generation).await?;
    Ok((wanted.into_iter().collect(), generation))
}

pub fn generation_conflict() -> crate::error::PlacementError {
    crate::error::conflict_code(
        "Resource provider's generation already changed. Please update the generation and try again.",
        crate::error::codes::CONCURRENT_UPDATE,
    )
}
