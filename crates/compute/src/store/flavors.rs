//! Flavors: the sizes servers are built with, their extra specs and, for
//! private flavors, the projects allowed to use them.
//!
//! Flavors are few (tens), so listing loads the visible set and sorts and
//! pages it in memory; uniqueness of name and id is the database's job.

use std::collections::{BTreeMap, BTreeSet};

use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set, TransactionTrait,
};
use serde_json::{Value, json};
use stratus_db::Db;

use crate::entity::{flavor, flavor_extra_spec, flavor_project};
use crate::error::{ComputeError, Result, conflict};

/// A flavor with its extra specs, as the API and the conductor see it.
#[derive(Clone, Debug, PartialEq)]
pub struct Flavor {
    /// The database's own id (extra specs and access rows refer to it).
    pub internal_id: i64,
    /// The flavor id clients use (`flavorid` in Nova's tables).
    pub id: String,
    pub name: String,
    pub memory_mb: i64,
    pub vcpus: i64,
    pub root_gb: i64,
    pub ephemeral_gb: i64,
    pub swap: i64,
    pub rxtx_factor: f64,
    pub vcpu_weight: Option<i64>,
    pub is_public: bool,
    pub disabled: bool,
    pub description: Option<String>,
    pub extra_specs: BTreeMap<String, String>,
    pub created_at: i64,
    pub updated_at: Option<i64>,
}

impl Flavor {
    fn from_model(m: flavor::Model, extra_specs: BTreeMap<String, String>) -> Flavor {
        Flavor {
            internal_id: m.id,
            id: m.flavorid,
            name: m.name,
            memory_mb: m.memory_mb,
            vcpus: m.vcpus,
            root_gb: m.root_gb,
            ephemeral_gb: m.ephemeral_gb,
            swap: m.swap,
            rxtx_factor: m.rxtx_factor,
            vcpu_weight: m.vcpu_weight,
            is_public: m.is_public,
            disabled: m.disabled,
            description: m.description,
            extra_specs,
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }

    /// The flavor as an instance keeps it (`instances.flavor`): every size,
    /// the extra specs, and both ids.
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "flavorid": self.id,
            "internal_id": self.internal_id,
            "name": self.name,
            "memory_mb": self.memory_mb,
            "vcpus": self.vcpus,
            "root_gb": self.root_gb,
            "ephemeral_gb": self.ephemeral_gb,
            "swap": self.swap,
            "rxtx_factor": self.rxtx_factor,
            "vcpu_weight": self.vcpu_weight,
            "is_public": self.is_public,
            "disabled": self.disabled,
            "description": self.description,
            "extra_specs": self.extra_specs,
        })
    }

    /// Read back what [`Flavor::to_json`] wrote (missing sizes read as 0).
    pub fn from_json(v: &Value) -> Option<Flavor> {
        let int = |k: &str| v.get(k).and_then(Value::as_i64).unwrap_or(0);
        let id = v.get("flavorid").or_else(|| v.get("id"))?;
        let id = match id {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        Some(Flavor {
            internal_id: int("internal_id"),
            id,
            name: v.get("name").and_then(Value::as_str).unwrap_or_default().to_string(),
            memory_mb: int("memory_mb"),
            vcpus: int("vcpus"),
            root_gb: int("root_gb"),
            ephemeral_gb: int("ephemeral_gb"),
            swap: int("swap"),
            rxtx_factor: v.get("rxtx_factor").and_then(Value::as_f64).unwrap_or(1.0),
            vcpu_weight: v.get("vcpu_weight").and_then(Value::as_i64),
            is_public: v.get("is_public").and_then(Value::as_bool).unwrap_or(true),
            disabled: v.get("disabled").and_then(Value::as_bool).unwrap_or(false),
            description: v.get("description").and_then(Value::as_str).map(str::to_string),
            extra_specs: v
                .get("extra_specs")
                .and_then(Value::as_object)
                .map(|o| {
                    o.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())))
                        .collect()
                })
                .unwrap_or_default(),
            created_at: 0,
            updated_at: None,
        })
    }
}

/// What creating a flavor needs (the API has validated it).
#[derive(Clone, Debug)]
pub struct NewFlavor {
    pub id: String,
    pub name: String,
    pub memory_mb: i64,
    pub vcpus: i64,
    pub root_gb: i64,
    pub ephemeral_gb: i64,
    pub swap: i64,
    pub rxtx_factor: f64,
    pub is_public: bool,
    pub description: Option<String>,
}

fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

async fn specs_of<C: ConnectionTrait>(conn: &C, ids: &[i64]) -> Result<BTreeMap<i64, BTreeMap<String, String>>> {
    let mut out: BTreeMap<i64, BTreeMap<String, String>> = BTreeMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    for chunk in ids.chunks(500) {
        let rows = flavor_extra_spec::Entity::find()
            .filter(flavor_extra_spec::Column::FlavorId.is_in(chunk.to_vec()))
            .all(conn)
            .await?;
        for r in rows {
            out.entry(r.flavor_id).or_default().insert(r.key, r.value);
        }
    }
    Ok(out)
}

async fn with_specs<C: ConnectionTrait>(conn: &C, rows: Vec<flavor::Model>) -> Result<Vec<Flavor>> {
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let mut specs = specs_of(conn, &ids).await?;
    Ok(rows
        .into_iter()
        .map(|m| {
            let s = specs.remove(&m.id).unwrap_or_default();
            Flavor::from_model(m, s)
        })
        .collect())
}

/// The flavor with this (client-facing) id, whatever its visibility.
pub async fn get_by_flavorid(db: &Db, flavorid: &str) -> Result<Option<Flavor>> {
    let Some(m) = flavor::Entity::find().filter(flavor::Column::Flavorid.eq(flavorid)).one(&db.read).await? else {
        return Ok(None);
    };
    Ok(with_specs(&db.read, vec![m]).await?.into_iter().next())
}

pub async fn get_by_name(db: &Db, name: &str) -> Result<Option<Flavor>> {
    let Some(m) = flavor::Entity::find().filter(flavor::Column::Name.eq(name)).one(&db.read).await? else {
        return Ok(None);
    };
    Ok(with_specs(&db.read, vec![m]).await?.into_iter().next())
}

/// May `project_id` boot servers with this flavor? Public flavors are for
/// everyone, private ones for the projects given access.
pub async fn project_can_use(db: &Db, flavor: &Flavor, project_id: &str) -> Result<bool> {
    if flavor.is_public {
        return Ok(true);
    }
    Ok(flavor_project::Entity::find_by_id((flavor.internal_id, project_id.to_string())).one(&db.read).await?.is_some())
}

/// Every flavor with its extra specs, ordered by internal id.
pub async fn all(db: &Db) -> Result<Vec<Flavor>> {
    let rows = flavor::Entity::find().order_by_asc(flavor::Column::Id).all(&db.read).await?;
    with_specs(&db.read, rows).await
}

/// The private flavors `project_id` has access to (internal ids).
pub async fn accessible_private(db: &Db, project_id: &str) -> Result<BTreeSet<i64>> {
    Ok(flavor_project::Entity::find()
        .filter(flavor_project::Column::ProjectId.eq(project_id))
        .all(&db.read)
        .await?
        .into_iter()
        .map(|r| r.flavor_id)
        .collect())
}

fn name_taken(name: &str) -> ComputeError {
    conflict(format!("Flavor with name {name} already exists."))
}

fn id_taken(id: &str) -> ComputeError {
    conflict(format!("Flavor with ID {id} already exists."))
}

/// Create a flavor; a taken name or id is a 409 in Nova's words.
pub async fn create(db: &Db, new: NewFlavor) -> Result<Flavor> {
    let now = now_us();
    let m = flavor::ActiveModel {
        flavorid: Set(new.id.clone()),
        name: Set(new.name.clone()),
        memory_mb: Set(new.memory_mb),
        vcpus: Set(new.vcpus),
        root_gb: Set(new.root_gb),
        ephemeral_gb: Set(new.ephemeral_gb),
        swap: Set(new.swap),
        rxtx_factor: Set(new.rxtx_factor),
        vcpu_weight: Set(None),
        disabled: Set(false),
        is_public: Set(new.is_public),
        description: Set(new.description.clone()),
        created_at: Set(now),
        updated_at: Set(None),
        ..Default::default()
    };
    match m.insert(&db.write).await {
        Ok(m) => Ok(Flavor::from_model(m, BTreeMap::new())),
        Err(e) if stratus_db::is_unique_violation(&e) => {
            // which one? the flavor that holds the id or the name says
            if flavor::Entity::find().filter(flavor::Column::Flavorid.eq(&new.id)).one(&db.write).await?.is_some() {
                Err(id_taken(&new.id))
            } else {
                Err(name_taken(&new.name))
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// Delete a flavor with its extra specs and access list. False if absent.
pub async fn delete(db: &Db, flavorid: &str) -> Result<bool> {
    let txn = db.write.begin().await?;
    let Some(m) = flavor::Entity::find().filter(flavor::Column::Flavorid.eq(flavorid)).one(&txn).await? else {
        txn.rollback().await?;
        return Ok(false);
    };
    flavor_extra_spec::Entity::delete_many().filter(flavor_extra_spec::Column::FlavorId.eq(m.id)).exec(&txn).await?;
    flavor_project::Entity::delete_many().filter(flavor_project::Column::FlavorId.eq(m.id)).exec(&txn).await?;
    flavor::Entity::delete_by_id(m.id).exec(&txn).await?;
    txn.commit().await?;
    Ok(true)
}

/// Set a flavor's description (2.55). None if the flavor is gone.
pub async fn update_description(db: &Db, flavorid: &str, description: Option<String>) -> Result<Option<Flavor>> {
    let r = flavor::Entity::update_many()
        .col_expr(flavor::Column::Description, Expr::value(description))
        .col_expr(flavor::Column::UpdatedAt, Expr::value(Some(now_us())))
        .filter(flavor::Column::Flavorid.eq(flavorid))
        .exec(&db.write)
        .await?;
    if r.rows_affected == 0 {
        return Ok(None);
    }
    get_by_flavorid(db, flavorid).await
}

/// Merge `specs` into a flavor's extra specs (new keys added, known keys replaced).
pub async fn set_extra_specs(db: &Db, internal_id: i64, specs: &BTreeMap<String, String>) -> Result<()> {
    // a racing writer of the same key makes the insert fail once; the retry sees its row
    let mut attempt = 0;
    loop {
        attempt += 1;
        let txn = db.write.begin().await?;
        let keys: Vec<String> = specs.keys().cloned().collect();
        let res = async {
            flavor_extra_spec::Entity::delete_many()
                .filter(flavor_extra_spec::Column::FlavorId.eq(internal_id))
                .filter(flavor_extra_spec::Column::Key.is_in(keys))
                .exec(&txn)
                .await?;
            for (k, v) in specs {
                flavor_extra_spec::ActiveModel {
                    flavor_id: Set(internal_id),
                    key: Set(k.clone()),
                    value: Set(v.clone()),
                }
                .insert(&txn)
                .await?;
            }
            Ok::<(), sea_orm::DbErr>(())
        }
        .await;
        match res {
            Ok(()) => {
                txn.commit().await?;
                return Ok(());
            }
            Err(e) if stratus_db::is_unique_violation(&e) && attempt < 5 => {
                txn.rollback().await?;
            }
            Err(e) => {
                txn.rollback().await?;
                return Err(e.into());
            }
        }
    }
}

/// Remove one extra spec; false if the flavor had no such key.
pub async fn delete_extra_spec(db: &Db, internal_id: i64, key: &str) -> Result<bool> {
    let r = flavor_extra_spec::Entity::delete_many()
        .filter(flavor_extra_spec::Column::FlavorId.eq(internal_id))
        .filter(flavor_extra_spec::Column::Key.eq(key))
        .exec(&db.write)
        .await?;
    Ok(r.rows_affected > 0)
}

/// The projects given access to a private flavor, in order of id.
pub async fn access_list(db: &Db, internal_id: i64) -> Result<Vec<String>> {
    Ok(flavor_project::Entity::find()
        .filter(flavor_project::Column::FlavorId.eq(internal_id))
        .order_by_asc(flavor_project::Column::ProjectId)
        .all(&db.read)
        .await?
        .into_iter()
        .map(|r| r.project_id)
        .collect())
}

/// Give a project access to a flavor; 409 if it already has it.
pub async fn add_access(db: &Db, flavor: &Flavor, project_id: &str) -> Result<()> {
    let m = flavor_project::ActiveModel { flavor_id: Set(flavor.internal_id), project_id: Set(project_id.to_string()) };
    match m.insert(&db.write).await {
        Ok(_) => Ok(()),
        Err(e) if stratus_db::is_unique_violation(&e) => Err(conflict(format!(
            "Flavor access already exists for flavor {} and project {project_id} combination.",
            flavor.id
        ))),
        Err(e) => Err(e.into()),
    }
}

/// Take a project's access away; false if it had none.
pub async fn remove_access(db: &Db, internal_id: i64, project_id: &str) -> Result<bool> {
    let r = flavor_project::Entity::delete_many()
        .filter(flavor_project::Column::FlavorId.eq(internal_id))
        .filter(flavor_project::Column::ProjectId.eq(project_id))
        .exec(&db.write)
        .await?;
    Ok(r.rows_affected > 0)
}

/// Nova's classic flavors plus the two tiny ones Tempest and devstack use,
/// created when absent (by id; a name already taken by another flavor is left alone).
pub async fn ensure_default_flavors(db: &Db) -> Result<()> {
    const DEFAULTS: &[(&str, &str, i64, i64, i64)] = &[
        ("1", "m1.tiny", 512, 1, 1),
        ("2", "m1.small", 2048, 1, 20),
        ("3", "m1.medium", 4096, 2, 40),
        ("4", "m1.large", 8192, 4, 80),
        ("5", "m1.xlarge", 16384, 8, 160),
        ("42", "m1.nano", 128, 1, 1),
        ("84", "m1.micro", 192, 1, 1),
    ];
    for (id, name, ram, vcpus, disk) in DEFAULTS {
        if get_by_flavorid(db, id).await?.is_some() {
            continue;
        }
        let new = NewFlavor {
            id: (*id).to_string(),
            name: (*name).to_string(),
            memory_mb: *ram,
            vcpus: *vcpus,
            root_gb: *disk,
            ephemeral_gb: 0,
            swap: 0,
            rxtx_factor: 1.0,
            is_public: true,
            description: None,
        };
        match create(db, new).await {
            Ok(_) | Err(ComputeError::Conflict(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
