//! Volume types: the types themselves (extra specs as a JSON object), the
//! projects a private type is shared with, encryption specs, and the
//! per-project default types.

use std::collections::HashSet;

use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, Set,
};
use serde_json::{Map, Value};

use crate::entity::{default_type, encryption, volume, volume_type, volume_type_project};
use crate::error::{Result, conflict};

/// The description Cinder gives its default type.
pub const DEFAULT_DESCRIPTION: &str = "Default Volume Type";

fn now() -> String {
    crate::api::now()
}

/// A type by id.
pub async fn get_by_id<C: ConnectionTrait>(conn: &C, id: &str) -> Result<Option<volume_type::Model>> {
    Ok(volume_type::Entity::find_by_id(id.to_string()).one(conn).await?)
}

/// A type by name.
pub async fn get_by_name<C: ConnectionTrait>(conn: &C, name: &str) -> Result<Option<volume_type::Model>> {
    Ok(volume_type::Entity::find().filter(volume_type::Column::Name.eq(name)).one(conn).await?)
}

/// A type by id, else by name.
pub async fn get<C: ConnectionTrait>(conn: &C, id_or_name: &str) -> Result<Option<volume_type::Model>> {
    if let Some(t) = get_by_id(conn, id_or_name).await? {
        return Ok(Some(t));
    }
    get_by_name(conn, id_or_name).await
}

/// The public type `name` (Cinder's `__DEFAULT__`), made when no type has that name.
pub async fn ensure_default<C: ConnectionTrait>(conn: &C, name: &str) -> Result<volume_type::Model> {
    if let Some(t) = get_by_name(conn, name).await? {
        return Ok(t);
    }
    let new = NewType {
        name: name.to_string(),
        description: Some(DEFAULT_DESCRIPTION.to_string()),
        is_public: true,
        extra_specs: Map::new(),
    };
    match create(conn, new).await {
        Ok(t) => Ok(t),
        // made meanwhile by another request
        Err(e) => get_by_name(conn, name).await?.ok_or(e),
    }
}

/// The project's default type, else the configured default.
pub async fn default_for<C: ConnectionTrait>(
    conn: &C,
    project_id: &str,
    default_name: &str,
) -> Result<volume_type::Model> {
    if !project_id.is_empty()
        && let Some(d) = default_type::Entity::find_by_id(project_id.to_string()).one(conn).await?
        && let Some(t) = get_by_id(conn, &d.volume_type_id).await?
    {
        return Ok(t);
    }
    ensure_default(conn, default_name).await
}

/// The extra specs of a type.
pub fn extra_specs(t: &volume_type::Model) -> Map<String, Value> {
    crate::api::json_object(&t.extra_specs)
}

/// Has `project_id` been given access to the (private) type?
pub async fn has_access<C: ConnectionTrait>(conn: &C, type_id: &str, project_id: &str) -> Result<bool> {
    Ok(volume_type_project::Entity::find_by_id((type_id.to_string(), project_id.to_string()))
        .one(conn)
        .await?
        .is_some())
}

/// May the project see the type: public, private with access, or an admin.
pub async fn visible_to<C: ConnectionTrait>(
    conn: &C,
    t: &volume_type::Model,
    project_id: &str,
    is_admin: bool,
) -> Result<bool> {
    if is_admin || t.is_public {
        return Ok(true);
    }
    has_access(conn, &t.id, project_id).await
}

/// Every type, oldest first.
pub async fn list_all<C: ConnectionTrait>(conn: &C) -> Result<Vec<volume_type::Model>> {
    Ok(volume_type::Entity::find()
        .order_by_asc(volume_type::Column::CreatedAt)
        .order_by_asc(volume_type::Column::Id)
        .all(conn)
        .await?)
}

/// The ids of the private types shared with a project.
pub async fn shared_with<C: ConnectionTrait>(conn: &C, project_id: &str) -> Result<HashSet<String>> {
    Ok(volume_type_project::Entity::find()
        .filter(volume_type_project::Column::ProjectId.eq(project_id))
        .all(conn)
        .await?
        .into_iter()
        .map(|r| r.volume_type_id)
        .collect())
}

/// A type to make.
pub struct NewType {
    pub name: String,
    pub description: Option<String>,
    pub is_public: bool,
    pub extra_specs: Map<String, Value>,
}

fn exists(name: &str) -> crate::error::VolumeError {
    conflict(format!("Volume Type {name} already exists."))
}

/// Make a type (409 when the name is taken).
pub async fn create<C: ConnectionTrait>(conn: &C, new: NewType) -> Result<volume_type::Model> {
    if get_by_name(conn, &new.name).await?.is_some() {
        return Err(exists(&new.name));
    }
    let row = volume_type::ActiveModel {
        id: Set(uuid::Uuid::new_v4().to_string()),
        name: Set(new.name.clone()),
        description: Set(new.description),
        is_public: Set(new.is_public),
        extra_specs: Set(Value::Object(new.extra_specs).to_string()),
        qos_specs_id: Set(None),
        created_at: Set(now()),
        updated_at: Set(None),
    };
    match row.insert(conn).await {
        Ok(m) => Ok(m),
        Err(e) if stratus_db::is_unique_violation(&e) => Err(exists(&new.name)),
        Err(e) => Err(e.into()),
    }
}

/// Change name, description and/or visibility (409 when the new name is taken).
pub async fn update<C: ConnectionTrait>(
    conn: &C,
    t: &volume_type::Model,
    name: Option<String>,
    description: Option<String>,
    is_public: Option<bool>,
) -> Result<volume_type::Model> {
    let mut row: volume_type::ActiveModel = t.clone().into();
    if let Some(n) = &name {
        if let Some(other) = get_by_name(conn, n).await?
            && other.id != t.id
        {
            return Err(exists(n));
        }
        row.name = Set(n.clone());
    }
    if let Some(d) = description {
        row.description = Set(Some(d));
    }
    if let Some(p) = is_public {
        row.is_public = Set(p);
    }
    row.updated_at = Set(Some(now()));
    match row.update(conn).await {
        Ok(m) => Ok(m),
        Err(e) if stratus_db::is_unique_violation(&e) => Err(exists(name.as_deref().unwrap_or(&t.name))),
        Err(e) => Err(e.into()),
    }
}

/// Replace the extra specs of a type.
pub async fn set_extra_specs<C: ConnectionTrait>(
    conn: &C,
    t: &volume_type::Model,
    specs: Map<String, Value>,
) -> Result<volume_type::Model> {
    let mut row: volume_type::ActiveModel = t.clone().into();
    row.extra_specs = Set(Value::Object(specs).to_string());
    row.updated_at = Set(Some(now()));
    Ok(row.update(conn).await?)
}

/// Set (or clear) the QoS specs of a type.
pub async fn set_qos<C: ConnectionTrait>(conn: &C, type_id: &str, qos_id: Option<&str>) -> Result<()> {
    volume_type::Entity::update_many()
        .col_expr(volume_type::Column::QosSpecsId, Expr::value(qos_id.map(str::to_string)))
        .col_expr(volume_type::Column::UpdatedAt, Expr::value(Some(now())))
        .filter(volume_type::Column::Id.eq(type_id))
        .exec(conn)
        .await?;
    Ok(())
}

/// Is a volume of this type there?
pub async fn in_use<C: ConnectionTrait>(conn: &C, type_id: &str) -> Result<bool> {
    Ok(volume::Entity::find().filter(volume::Column::VolumeTypeId.eq(type_id)).count(conn).await? > 0)
}

/// How many types there are.
pub async fn count<C: ConnectionTrait>(conn: &C) -> Result<u64> {
    Ok(volume_type::Entity::find().count(conn).await?)
}

/// The projects whose default is this type.
pub async fn default_of_projects<C: ConnectionTrait>(conn: &C, type_id: &str) -> Result<Vec<String>> {
    Ok(default_type::Entity::find()
        .filter(default_type::Column::VolumeTypeId.eq(type_id))
        .all(conn)
        .await?
        .into_iter()
        .map(|d| d.project_id)
        .collect())
}

/// Remove a type with its access list and encryption specs.
pub async fn delete<C: ConnectionTrait>(conn: &C, type_id: &str) -> Result<()> {
    volume_type_project::Entity::delete_many()
        .filter(volume_type_project::Column::VolumeTypeId.eq(type_id))
        .exec(conn)
        .await?;
    encryption::Entity::delete_many().filter(encryption::Column::VolumeTypeId.eq(type_id)).exec(conn).await?;
    volume_type::Entity::delete_by_id(type_id.to_string()).exec(conn).await?;
    Ok(())
}

/// The projects a type is shared with.
pub async fn access_list<C: ConnectionTrait>(conn: &C, type_id: &str) -> Result<Vec<String>> {
    Ok(volume_type_project::Entity::find()
        .filter(volume_type_project::Column::VolumeTypeId.eq(type_id))
        .order_by_asc(volume_type_project::Column::ProjectId)
        .all(conn)
        .await?
        .into_iter()
        .map(|r| r.project_id)
        .collect())
}

/// Share a type with a project; false when it already was.
pub async fn add_access<C: ConnectionTrait>(conn: &C, type_id: &str, project_id: &str) -> Result<bool> {
    if has_access(conn, type_id, project_id).await? {
        return Ok(false);
    }
    let row = volume_type_project::ActiveModel {
        volume_type_id: Set(type_id.to_string()),
        project_id: Set(project_id.to_string()),
    };
    match row.insert(conn).await {
        Ok(_) => Ok(true),
        Err(e) if stratus_db::is_unique_violation(&e) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Stop sharing a type with a project; false when it was not.
pub async fn remove_access<C: ConnectionTrait>(conn: &C, type_id: &str, project_id: &str) -> Result<bool> {
    let r = volume_type_project::Entity::delete_by_id((type_id.to_string(), project_id.to_string())).exec(conn).await?;
    Ok(r.rows_affected > 0)
}

/// The encryption specs of a type.
pub async fn encryption_of<C: ConnectionTrait>(conn: &C, type_id: &str) -> Result<Option<encryption::Model>> {
    Ok(encryption::Entity::find_by_id(type_id.to_string()).one(conn).await?)
}

/// Encryption fields as a request gives them.
#[derive(Debug, Default, Clone)]
pub struct EncryptionSpec {
    pub provider: Option<String>,
    pub cipher: Option<Option<String>>,
    pub key_size: Option<Option<i64>>,
    pub control_location: Option<String>,
}

/// Make the encryption specs of a type (provider and control location given).
pub async fn create_encryption<C: ConnectionTrait>(
    conn: &C,
    type_id: &str,
    spec: &EncryptionSpec,
) -> Result<encryption::Model> {
    let row = encryption::ActiveModel {
        volume_type_id: Set(type_id.to_string()),
        encryption_id: Set(uuid::Uuid::new_v4().to_string()),
        provider: Set(spec.provider.clone().unwrap_or_default()),
        cipher: Set(spec.cipher.clone().flatten()),
        key_size: Set(spec.key_size.flatten()),
        control_location: Set(spec.control_location.clone().unwrap_or_else(|| "front-end".into())),
        created_at: Set(now()),
        updated_at: Set(None),
    };
    Ok(row.insert(conn).await?)
}

/// Change the given encryption fields.
pub async fn update_encryption<C: ConnectionTrait>(
    conn: &C,
    current: &encryption::Model,
    spec: &EncryptionSpec,
) -> Result<encryption::Model> {
    let mut row: encryption::ActiveModel = current.clone().into();
    if let Some(p) = &spec.provider {
        row.provider = Set(p.clone());
    }
    if let Some(c) = &spec.cipher {
        row.cipher = Set(c.clone());
    }
    if let Some(k) = spec.key_size {
        row.key_size = Set(k);
    }
    if let Some(l) = &spec.control_location {
        row.control_location = Set(l.clone());
    }
    row.updated_at = Set(Some(now()));
    Ok(row.update(conn).await?)
}

/// Remove the encryption specs of a type; false when there were none.
pub async fn delete_encryption<C: ConnectionTrait>(conn: &C, type_id: &str) -> Result<bool> {
    let r = encryption::Entity::delete_by_id(type_id.to_string()).exec(conn).await?;
    Ok(r.rows_affected > 0)
}

/// The default type set for a project.
pub async fn project_default<C: ConnectionTrait>(conn: &C, project_id: &str) -> Result<Option<default_type::Model>> {
    Ok(default_type::Entity::find_by_id(project_id.to_string()).one(conn).await?)
}

/// Every project default.
pub async fn project_defaults<C: ConnectionTrait>(conn: &C) -> Result<Vec<default_type::Model>> {
    Ok(default_type::Entity::find().order_by_asc(default_type::Column::ProjectId).all(conn).await?)
}

/// Set a project's default type.
pub async fn set_project_default<C: ConnectionTrait>(
    conn: &C,
    project_id: &str,
    type_id: &str,
) -> Result<default_type::Model> {
    if let Some(cur) = project_default(conn, project_id).await? {
        let mut row: default_type::ActiveModel = cur.into();
        row.volume_type_id = Set(type_id.to_string());
        return Ok(row.update(conn).await?);
    }
    let row =
        default_type::ActiveModel { project_id: Set(project_id.to_string()), volume_type_id: Set(type_id.to_string()) };
    Ok(row.insert(conn).await?)
}

/// Unset a project's default type.
pub async fn unset_project_default<C: ConnectionTrait>(conn: &C, project_id: &str) -> Result<()> {
    default_type::Entity::delete_by_id(project_id.to_string()).exec(conn).await?;
    Ok(())
}

/// The types that use a QoS specs.
pub async fn with_qos<C: ConnectionTrait>(conn: &C, qos_id: &str) -> Result<Vec<volume_type::Model>> {
    Ok(volume_type::Entity::find()
        .filter(volume_type::Column::QosSpecsId.eq(qos_id))
        .order_by_asc(volume_type::Column::CreatedAt)
        .all(conn)
        .await?)
}
