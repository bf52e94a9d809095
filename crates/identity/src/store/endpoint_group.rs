//! OS-EP-FILTER: endpoint groups (endpoints chosen by filters), and the
//! projects they and single endpoints are associated with.

use std::collections::BTreeSet;

use sea_orm::ActiveValue::Set;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, TransactionTrait};
use serde_json::{Map, Value};
use stratus_db::Db;

use super::catalog::{self, Endpoint};
use crate::entity::{endpoint_group, project_endpoint, project_endpoint_group};
use crate::error::{IdentityError, Result, conflict, not_found};
use crate::util::{new_id, parse_extra};

pub type EndpointGroup = endpoint_group::Model;

/// The endpoint attributes a group may filter on.
pub const FILTER_KEYS: &[&str] = &["service_id", "region_id", "interface"];

pub fn filters_of(g: &EndpointGroup) -> Map<String, Value> {
    parse_extra(&g.filters)
}

fn filters_text(f: &Map<String, Value>) -> String {
    Value::Object(f.clone()).to_string()
}

pub async fn get(db: &Db, id: &str) -> Result<EndpointGroup> {
    endpoint_group::Entity::find_by_id(id.to_string())
        .one(&db.read)
        .await?
        .ok_or_else(|| not_found("Endpoint Group", id))
}

pub async fn list(db: &Db, name: Option<&str>) -> Result<Vec<EndpointGroup>> {
    let mut q = endpoint_group::Entity::find();
    if let Some(n) = name {
        q = q.filter(endpoint_group::Column::Name.eq(n));
    }
    Ok(q.order_by_asc(endpoint_group::Column::Id).all(&db.read).await?)
}

pub async fn create(
    db: &Db,
    name: String,
    description: Option<String>,
    filters: &Map<String, Value>,
) -> Result<EndpointGroup> {
    let am = endpoint_group::ActiveModel {
        id: Set(new_id()),
        name: Set(name),
        description: Set(description),
        filters: Set(filters_text(filters)),
    };
    Ok(am.insert(&db.write).await?)
}

/// Changes to an endpoint group; `None` leaves an attribute alone.
#[derive(Default)]
pub struct EndpointGroupUpdate {
    pub name: Option<String>,
    pub description: Option<Option<String>>,
    /// Replaces the filters as a whole.
    pub filters: Option<Map<String, Value>>,
}

pub async fn update(db: &Db, id: &str, u: EndpointGroupUpdate) -> Result<EndpointGroup> {
    let cur = get(db, id).await?;
    let mut am: endpoint_group::ActiveModel = cur.into();
    if let Some(n) = u.name {
        am.name = Set(n);
    }
    if let Some(d) = u.description {
        am.description = Set(d);
    }
    if let Some(f) = u.filters {
        am.filters = Set(filters_text(&f));
    }
    Ok(am.update(&db.write).await?)
}

/// Delete a group together with its project associations.
pub async fn delete(db: &Db, id: &str) -> Result<()> {
    get(db, id).await?;
    let txn = db.write.begin().await?;
    project_endpoint_group::Entity::delete_many()
        .filter(project_endpoint_group::Column::EndpointGroupId.eq(id))
        .exec(&txn)
        .await?;
    endpoint_group::Entity::delete_by_id(id.to_string()).exec(&txn).await?;
    txn.commit().await?;
    Ok(())
}

/// Whether an endpoint passes every one of the group's filters.
fn matches(filters: &Map<String, Value>, e: &Endpoint) -> bool {
    filters.iter().all(|(k, v)| match k.as_str() {
        "service_id" => v.as_str() == Some(e.service_id.as_str()),
        "interface" => v.as_str() == Some(e.interface.as_str()),
        "region_id" => match v {
            Value::Null => e.region_id.is_none(),
            other => other.as_str().is_some() && other.as_str() == e.region_id.as_deref(),
        },
        _ => false,
    })
}

/// The endpoints a group's filters select.
pub async fn endpoints_of_group(db: &Db, id: &str) -> Result<Vec<Endpoint>> {
    let filters = filters_of(&get(db, id).await?);
    let all = catalog::list_endpoints(db, None, None, None).await?;
    Ok(all.into_iter().filter(|e| matches(&filters, e)).collect())
}

// ---- endpoint groups and projects

pub async fn add_group_to_project(db: &Db, group_id: &str, project_id: &str) -> Result<()> {
    let am = project_endpoint_group::ActiveModel {
        endpoint_group_id: Set(group_id.to_string()),
        project_id: Set(project_id.to_string()),
    };
    match project_endpoint_group::Entity::insert(am).exec_without_returning(&db.write).await {
        Ok(_) => Ok(()),
        Err(e) if stratus_db::is_unique_violation(&e) => Err(conflict("project_endpoint_group", "Duplicate entry")),
        Err(e) => Err(e.into()),
    }
}

/// 404 unless the group is associated with the project.
pub async fn check_group_in_project(db: &Db, group_id: &str, project_id: &str) -> Result<()> {
    let found = project_endpoint_group::Entity::find_by_id((group_id.to_string(), project_id.to_string()))
        .one(&db.read)
        .await?;
    match found {
        Some(_) => Ok(()),
        None => Err(IdentityError::NotFoundMsg("Endpoint Group Project Association not found".into())),
    }
}

pub async fn remove_group_from_project(db: &Db, group_id: &str, project_id: &str) -> Result<()> {
    check_group_in_project(db, group_id, project_id).await?;
    project_endpoint_group::Entity::delete_by_id((group_id.to_string(), project_id.to_string()))
        .exec(&db.write)
        .await?;
    Ok(())
}

/// Ids of the projects a group is associated with.
pub async fn projects_of_group(db: &Db, group_id: &str) -> Result<Vec<String>> {
    Ok(project_endpoint_group::Entity::find()
        .filter(project_endpoint_group::Column::EndpointGroupId.eq(group_id))
        .order_by_asc(project_endpoint_group::Column::ProjectId)
        .all(&db.read)
        .await?
        .into_iter()
        .map(|r| r.project_id)
        .collect())
}

/// The endpoint groups associated with a project.
pub async fn groups_of_project(db: &Db, project_id: &str) -> Result<Vec<EndpointGroup>> {
    let ids: Vec<String> = project_endpoint_group::Entity::find()
        .filter(project_endpoint_group::Column::ProjectId.eq(project_id))
        .all(&db.read)
        .await?
        .into_iter()
        .map(|r| r.endpoint_group_id)
        .collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(endpoint_group::Entity::find()
        .filter(endpoint_group::Column::Id.is_in(ids))
        .order_by_asc(endpoint_group::Column::Id)
        .all(&db.read)
        .await?)
}

// ---- single endpoints and projects

pub async fn add_endpoint_to_project(db: &Db, endpoint_id: &str, project_id: &str) -> Result<()> {
    let am = project_endpoint::ActiveModel {
        endpoint_id: Set(endpoint_id.to_string()),
        project_id: Set(project_id.to_string()),
    };
    match project_endpoint::Entity::insert(am).exec_without_returning(&db.write).await {
        Ok(_) => Ok(()),
        Err(e) if stratus_db::is_unique_violation(&e) => Err(conflict("project_endpoint", "Duplicate entry")),
        Err(e) => Err(e.into()),
    }
}

/// 404 unless the endpoint is associated with the project.
pub async fn check_endpoint_in_project(db: &Db, endpoint_id: &str, project_id: &str) -> Result<()> {
    let found =
        project_endpoint::Entity::find_by_id((endpoint_id.to_string(), project_id.to_string())).one(&db.read).await?;
    match found {
        Some(_) => Ok(()),
        None => Err(IdentityError::NotFoundMsg(format!("Endpoint {endpoint_id} not found in project {project_id}"))),
    }
}

pub async fn remove_endpoint_from_project(db: &Db, endpoint_id: &str, project_id: &str) -> Result<()> {
    check_endpoint_in_project(db, endpoint_id, project_id).await?;
    project_endpoint::Entity::delete_by_id((endpoint_id.to_string(), project_id.to_string())).exec(&db.write).await?;
    Ok(())
}

/// Ids of the projects an endpoint is associated with directly.
pub async fn projects_of_endpoint(db: &Db, endpoint_id: &str) -> Result<Vec<String>> {
    Ok(project_endpoint::Entity::find()
        .filter(project_endpoint::Column::EndpointId.eq(endpoint_id))
        .order_by_asc(project_endpoint::Column::ProjectId)
        .all(&db.read)
        .await?
        .into_iter()
        .map(|r| r.project_id)
        .collect())
}

/// The endpoints a project may see when its catalog is filtered: those
/// associated directly and those its endpoint groups select.
pub async fn endpoints_for_project(db: &Db, project_id: &str) -> Result<Vec<Endpoint>> {
    let direct: BTreeSet<String> = project_endpoint::Entity::find()
        .filter(project_endpoint::Column::ProjectId.eq(project_id))
        .all(&db.read)
        .await?
        .into_iter()
        .map(|r| r.endpoint_id)
        .collect();
    let groups: Vec<Map<String, Value>> = groups_of_project(db, project_id).await?.iter().map(filters_of).collect();
    if direct.is_empty() && groups.is_empty() {
        return Ok(Vec::new());
    }
    let all = catalog::list_endpoints(db, None, None, None).await?;
    Ok(all.into_iter().filter(|e| direct.contains(&e.id) || groups.iter().any(|f| matches(f, e))).collect())
}

/// Forget a project's associations (when the project goes away).
pub async fn delete_for_project(db: &Db, project_id: &str) -> Result<()> {
    project_endpoint_group::Entity::delete_many()
        .filter(project_endpoint_group::Column::ProjectId.eq(project_id))
        .exec(&db.write)
        .await?;
    project_endpoint::Entity::delete_many()
        .filter(project_endpoint::Column::ProjectId.eq(project_id))
        .exec(&db.write)
        .await?;
    Ok(())
}
