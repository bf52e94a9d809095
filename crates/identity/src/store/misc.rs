//! Credentials, policies, registered limits and limits.

use sea_orm::ActiveValue::Set;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde_json::{Map, Value};
use stratus_db::Db;

use crate::entity::{credential, policy, project_limit, registered_limit};
use crate::error::{IdentityError, Result, bad, conflict, not_found, or_conflict};
use crate::util::{extra_string, new_id, parse_extra};

pub type Credential = credential::Model;
pub type Policy = policy::Model;
pub type RegisteredLimit = registered_limit::Model;
pub type Limit = project_limit::Model;

pub async fn get_credential(db: &Db, id: &str) -> Result<Credential> {
    credential::Entity::find_by_id(id.to_string()).one(&db.read).await?.ok_or_else(|| not_found("credential", id))
}

pub async fn list_credentials(db: &Db, user_id: Option<&str>, kind: Option<&str>) -> Result<Vec<Credential>> {
    let mut q = credential::Entity::find();
    if let Some(u) = user_id {
        q = q.filter(credential::Column::UserId.eq(u));
    }
    if let Some(t) = kind {
        q = q.filter(credential::Column::Type.eq(t));
    }
    Ok(q.order_by_asc(credential::Column::Id).all(&db.read).await?)
}

pub async fn create_credential(
    db: &Db,
    id: Option<String>,
    user_id: &str,
    project_id: Option<String>,
    kind: &str,
    blob: &str,
    extra: &Map<String, Value>,
) -> Result<Credential> {
    let am = credential::ActiveModel {
        id: Set(id.unwrap_or_else(new_id)),
        user_id: Set(user_id.to_string()),
        project_id: Set(project_id),
        r#type: Set(kind.to_string()),
        blob: Set(blob.to_string()),
        extra: Set(extra_string(extra)),
    };
    or_conflict(am.insert(&db.write).await, || conflict("credential", "Duplicate ID"))
}

pub async fn update_credential(db: &Db, id: &str, fields: &Map<String, Value>) -> Result<Credential> {
    let cur = get_credential(db, id).await?;
    let mut am: credential::ActiveModel = cur.clone().into();
    let mut x = parse_extra(&cur.extra);
    for (k, v) in fields {
        match (k.as_str(), v) {
            ("user_id", Value::String(s)) => am.user_id = Set(s.clone()),
            ("project_id", Value::String(s)) => am.project_id = Set(Some(s.clone())),
            ("project_id", Value::Null) => am.project_id = Set(None),
            ("type", Value::String(s)) => am.r#type = Set(s.clone()),
            ("blob", Value::String(s)) => am.blob = Set(s.clone()),
            ("user_id" | "type" | "blob" | "project_id", _) => {
                return Err(bad(format!("Invalid input for field 'credential.{k}': expected a string.")));
            }
            ("id", _) => {
                return Err(bad("Invalid input for field 'credential.id': it cannot be changed."));
            }
            _ => {
                x.insert(k.clone(), v.clone());
            }
        }
    }
    am.extra = Set(extra_string(&x));
    Ok(am.update(&db.write).await?)
}

pub async fn delete_credential(db: &Db, id: &str) -> Result<()> {
    let r = credential::Entity::delete_by_id(id.to_string()).exec(&db.write).await?;
    if r.rows_affected == 0 {
        return Err(not_found("credential", id));
    }
    Ok(())
}

pub async fn get_policy(db: &Db, id: &str) -> Result<Policy> {
    policy::Entity::find_by_id(id.to_string()).one(&db.read).await?.ok_or_else(|| not_found("policy", id))
}

pub async fn list_policies(db: &Db, kind: Option<&str>) -> Result<Vec<Policy>> {
    let mut q = policy::Entity::find();
    if let Some(t) = kind {
        q = q.filter(policy::Column::Type.eq(t));
    }
    Ok(q.order_by_asc(policy::Column::Id).all(&db.read).await?)
}

pub async fn create_policy(db: &Db, kind: &str, blob: &str, extra: &Map<String, Value>) -> Result<Policy> {
    let am = policy::ActiveModel {
        id: Set(new_id()),
        r#type: Set(kind.to_string()),
        blob: Set(blob.to_string()),
        extra: Set(extra_string(extra)),
    };
    Ok(am.insert(&db.write).await?)
}

pub async fn update_policy(
    db: &Db,
    id: &str,
    kind: Option<String>,
    blob: Option<String>,
    extra: &Map<String, Value>,
) -> Result<Policy> {
    let cur = get_policy(db, id).await?;
    let mut am: policy::ActiveModel = cur.clone().into();
    if let Some(t) = kind {
        am.r#type = Set(t);
    }
    if let Some(b) = blob {
        am.blob = Set(b);
    }
    let mut x = parse_extra(&cur.extra);
    x.extend(extra.clone());
    am.extra = Set(extra_string(&x));
    Ok(am.update(&db.write).await?)
}

pub async fn delete_policy(db: &Db, id: &str) -> Result<()> {
    let r = policy::Entity::delete_by_id(id.to_string()).exec(&db.write).await?;
    if r.rows_affected == 0 {
        return Err(not_found("policy", id));
    }
    Ok(())
}

// ---- unified limits

pub async fn get_registered_limit(db: &Db, id: &str) -> Result<RegisteredLimit> {
    registered_limit::Entity::find_by_id(id.to_string())
        .one(&db.read)
        .await?
        .ok_or_else(|| not_found("registered limit", id))
}

pub async fn list_registered_limits(
    db: &Db,
    service_id: Option<&str>,
    region_id: Option<&str>,
    resource_name: Option<&str>,
) -> Result<Vec<RegisteredLimit>> {
    let mut q = registered_limit::Entity::find();
    if let Some(s) = service_id {
        q = q.filter(registered_limit::Column::ServiceId.eq(s));
    }
    if let Some(r) = region_id {
        q = q.filter(registered_limit::Column::RegionId.eq(r));
    }
    if let Some(n) = resource_name {
        q = q.filter(registered_limit::Column::ResourceName.eq(n));
    }
    Ok(q.order_by_asc(registered_limit::Column::Id).all(&db.read).await?)
}

pub async fn create_registered_limit(
    db: &Db,
    service_id: &str,
    region_id: Option<String>,
    resource_name: &str,
    default_limit: i64,
    description: Option<String>,
) -> Result<RegisteredLimit> {
    super::catalog::get_service(db, service_id)
        .await
        .map_err(|_| bad(format!("Could not find service: {service_id}.")))?;
    if let Some(r) = &region_id {
        super::catalog::get_region(db, r).await.map_err(|_| bad(format!("Could not find region: {r}.")))?;
    }
    let dup = list_registered_limits(db, Some(service_id), None, Some(resource_name)).await?;
    if dup.iter().any(|d| d.region_id == region_id) {
        return Err(conflict("registered_limit", format!("Duplicate entry for {resource_name}")));
    }
    let am = registered_limit::ActiveModel {
        id: Set(new_id()),
        service_id: Set(service_id.to_string()),
        region_id: Set(region_id),
        resource_name: Set(resource_name.to_string()),
        default_limit: Set(default_limit),
        description: Set(description),
    };
    Ok(am.insert(&db.write).await?)
}

pub async fn update_registered_limit(db: &Db, id: &str, fields: &Map<String, Value>) -> Result<RegisteredLimit> {
    let cur = get_registered_limit(db, id).await?;
    let mut am: registered_limit::ActiveModel = cur.clone().into();
    for (k, v) in fields {
        match (k.as_str(), v) {
            ("default_limit", Value::Number(n)) if n.as_i64().is_some_and(|x| x >= -1) => {
                am.default_limit = Set(n.as_i64().unwrap_or(0))
            }
            ("description", Value::String(s)) => am.description = Set(Some(s.clone())),
            ("description", Value::Null) => am.description = Set(None),
            ("service_id", Value::String(s)) => am.service_id = Set(s.clone()),
            ("region_id", Value::String(s)) => am.region_id = Set(Some(s.clone())),
            ("region_id", Value::Null) => am.region_id = Set(None),
            ("resource_name", Value::String(s)) => am.resource_name = Set(s.clone()),
            _ => {
                return Err(bad(format!("Invalid input for field 'registered_limit.{k}'.")));
            }
        }
    }
    Ok(am.update(&db.write).await?)
}

pub async fn delete_registered_limit(db: &Db, id: &str) -> Result<()> {
    let r = get_registered_limit(db, id).await?;
    let used = project_limit::Entity::find()
        .filter(project_limit::Column::ServiceId.eq(r.service_id.as_str()))
        .filter(project_limit::Column::ResourceName.eq(r.resource_name.as_str()))
        .all(&db.read)
        .await?;
    if used.iter().any(|l| l.region_id == r.region_id) {
        return Err(IdentityError::Forbidden(
            "The registered limit is referenced by limits; delete them first.".into(),
        ));
    }
    registered_limit::Entity::delete_by_id(id.to_string()).exec(&db.write).await?;
    Ok(())
}

pub async fn get_limit(db: &Db, id: &str) -> Result<Limit> {
    project_limit::Entity::find_by_id(id.to_string()).one(&db.read).await?.ok_or_else(|| not_found("limit", id))
}

#[derive(Default)]
pub struct LimitFilter {
    pub service_id: Option<String>,
    pub region_id: Option<String>,
    pub resource_name: Option<String>,
    pub project_id: Option<String>,
    pub domain_id: Option<String>,
}

pub async fn list_limits(db: &Db, f: &LimitFilter) -> Result<Vec<Limit>> {
    let mut q = project_limit::Entity::find();
    if let Some(s) = &f.service_id {
        q = q.filter(project_limit::Column::ServiceId.eq(s.as_str()));
    }
    if let Some(r) = &f.region_id {
        q = q.filter(project_limit::Column::RegionId.eq(r.as_str()));
    }
    if let Some(n) = &f.resource_name {
        q = q.filter(project_limit::Column::ResourceName.eq(n.as_str()));
    }
    if let Some(p) = &f.project_id {
        q = q.filter(project_limit::Column::ProjectId.eq(p.as_str()));
    }
    if let Some(d) = &f.domain_id {
        q = q.filter(project_limit::Column::DomainId.eq(d.as_str()));
    }
    Ok(q.order_by_asc(project_limit::Column::Id).all(&db.read).await?)
}

pub struct NewLimit {
    pub project_id: Option<String>,
    pub domain_id: Option<String>,
    pub service_id: String,
    pub region_id: Option<String>,
    pub resource_name: String,
    pub resource_limit: i64,
    pub description: Option<String>,
}

pub async fn create_limit(db: &Db, l: NewLimit) -> Result<Limit> {
    let reg = list_registered_limits(db, Some(&l.service_id), None, Some(&l.resource_name)).await?;
    if !reg.iter().any(|r| r.region_id == l.region_id) {
        return Err(bad(format!(
            "No registered limit with the matching service ID, region ID and resource name exists for {}.",
            l.resource_name
        )));
    }
    let dup = list_limits(
        db,
        &LimitFilter {
            service_id: Some(l.service_id.clone()),
            resource_name: Some(l.resource_name.clone()),
            ..Default::default()
        },
    )
    .await?;
    if dup.iter().any(|d| d.region_id == l.region_id && d.project_id == l.project_id && d.domain_id == l.domain_id) {
        return Err(conflict("limit", format!("Duplicate entry for {}", l.resource_name)));
    }
    let am = project_limit::ActiveModel {
        id: Set(new_id()),
        project_id: Set(l.project_id),
        domain_id: Set(l.domain_id),
        service_id: Set(l.service_id),
        region_id: Set(l.region_id),
        resource_name: Set(l.resource_name),
        resource_limit: Set(l.resource_limit),
        description: Set(l.description),
    };
    Ok(am.insert(&db.write).await?)
}

pub async fn update_limit(db: &Db, id: &str, fields: &Map<String, Value>) -> Result<Limit> {
    let cur = get_limit(db, id).await?;
    let mut am: project_limit::ActiveModel = cur.clone().into();
    for (k, v) in fields {
        match (k.as_str(), v) {
            ("resource_limit", Value::Number(n)) if n.as_i64().is_some_and(|x| x >= -1) => {
                am.resource_limit = Set(n.as_i64().unwrap_or(0))
            }
            ("description", Value::String(s)) => am.description = Set(Some(s.clone())),
            ("description", Value::Null) => am.description = Set(None),
            _ => return Err(bad(format!("Invalid input for field 'limit.{k}'."))),
        }
    }
    Ok(am.update(&db.write).await?)
}

pub async fn delete_limit(db: &Db, id: &str) -> Result<()> {
    let r = project_limit::Entity::delete_by_id(id.to_string()).exec(&db.write).await?;
    if r.rows_affected == 0 {
        return Err(not_found("limit", id));
    }
    Ok(())
}

/// Whether any limit refers to this registered limit (same service, region and resource).
pub async fn registered_limit_in_use(db: &Db, r: &RegisteredLimit) -> Result<bool> {
    let used = project_limit::Entity::find()
        .filter(project_limit::Column::ServiceId.eq(r.service_id.as_str()))
        .filter(project_limit::Column::ResourceName.eq(r.resource_name.as_str()))
        .all(&db.read)
        .await?;
    Ok(used.iter().any(|l| l.region_id == r.region_id))
}

/// The limit a project has on a resource of the services of type `kind`: a
/// project limit if one is set, else the registered default (None: neither).
pub async fn effective_limit(db: &Db, kind: &str, project_id: &str, resource: &str) -> Result<Option<i64>> {
    for service in super::catalog::list_services(db, Some(kind)).await? {
        let f = LimitFilter {
            service_id: Some(service.id.clone()),
            resource_name: Some(resource.to_string()),
            project_id: Some(project_id.to_string()),
            ..Default::default()
        };
        if let Some(l) = list_limits(db, &f).await?.first() {
            return Ok(Some(l.resource_limit));
        }
        if let Some(r) = list_registered_limits(db, Some(&service.id), None, Some(resource)).await?.first() {
            return Ok(Some(r.default_limit));
        }
    }
    Ok(None)
}
