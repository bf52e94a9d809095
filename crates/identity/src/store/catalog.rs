//! Regions, services, endpoints, and the catalog tokens carry.

use sea_orm::ActiveValue::Set;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde_json::{Map, Value, json};
use stratus_db::Db;

use crate::entity::{endpoint, region, service};
use crate::error::{IdentityError, Result, bad, conflict, not_found, or_conflict};
use crate::util::{extra_string, new_id, parse_extra};

pub type Region = region::Model;
pub type Service = service::Model;
pub type Endpoint = endpoint::Model;

pub async fn get_region(db: &Db, id: &str) -> Result<Region> {
    region::Entity::find_by_id(id.to_string()).one(&db.read).await?.ok_or_else(|| not_found("region", id))
}

pub async fn list_regions(db: &Db, parent: Option<&str>) -> Result<Vec<Region>> {
    let mut q = region::Entity::find();
    if let Some(p) = parent {
        q = q.filter(region::Column::ParentRegionId.eq(p));
    }
    Ok(q.order_by_asc(region::Column::Id).all(&db.read).await?)
}

pub async fn create_region(
    db: &Db,
    id: Option<String>,
    description: Option<String>,
    parent: Option<String>,
    extra: &Map<String, Value>,
) -> Result<Region> {
    if let Some(p) = &parent {
        get_region(db, p).await.map_err(|_| bad(format!("Could not find parent region: {p}.")))?;
    }
    let am = region::ActiveModel {
        id: Set(id.unwrap_or_else(new_id)),
        description: Set(description),
        parent_region_id: Set(parent),
        extra: Set(extra_string(extra)),
    };
    or_conflict(am.insert(&db.write).await, || conflict("region", "Duplicate ID"))
}

pub async fn update_region(
    db: &Db,
    id: &str,
    description: Option<Option<String>>,
    parent: Option<Option<String>>,
    extra: &Map<String, Value>,
) -> Result<Region> {
    let cur = get_region(db, id).await?;
    let mut am: region::ActiveModel = cur.clone().into();
    if let Some(d) = description {
        am.description = Set(d);
    }
    if let Some(p) = parent {
        if let Some(pid) = &p {
            get_region(db, pid).await.map_err(|_| bad(format!("Could not find parent region: {pid}.")))?;
            // refuse a cycle
            let mut cur_p = Some(pid.clone());
            let mut hops = 0;
            while let Some(x) = cur_p {
                if x == id || hops > 64 {
                    return Err(bad("A region may not be its own ancestor."));
                }
                cur_p = get_region(db, &x).await?.parent_region_id;
                hops += 1;
            }
        }
        am.parent_region_id = Set(p);
    }
    let mut x = parse_extra(&cur.extra);
    x.extend(extra.clone());
    am.extra = Set(extra_string(&x));
    Ok(am.update(&db.write).await?)
}

pub async fn delete_region(db: &Db, id: &str) -> Result<()> {
    get_region(db, id).await?;
    let kids = region::Entity::find().filter(region::Column::ParentRegionId.eq(id)).all(&db.read).await?;
    if !kids.is_empty() {
        return Err(IdentityError::Forbidden(format!("Cannot delete region {id}: it has child regions.")));
    }
    endpoint::Entity::delete_many().filter(endpoint::Column::RegionId.eq(id)).exec(&db.write).await?;
    region::Entity::delete_by_id(id.to_string()).exec(&db.write).await?;
    Ok(())
}

pub async fn get_service(db: &Db, id: &str) -> Result<Service> {
    service::Entity::find_by_id(id.to_string()).one(&db.read).await?.ok_or_else(|| not_found("service", id))
}

pub async fn list_services(db: &Db, kind: Option<&str>) -> Result<Vec<Service>> {
    let mut q = service::Entity::find();
    if let Some(t) = kind {
        q = q.filter(service::Column::Type.eq(t));
    }
    Ok(q.order_by_asc(service::Column::Type).all(&db.read).await?)
}

pub async fn create_service(db: &Db, kind: &str, enabled: bool, extra: &Map<String, Value>) -> Result<Service> {
    let am = service::ActiveModel {
        id: Set(new_id()),
        r#type: Set(kind.to_string()),
        enabled: Set(enabled),
        extra: Set(extra_string(extra)),
    };
    Ok(am.insert(&db.write).await?)
}

pub async fn update_service(
    db: &Db,
    id: &str,
    kind: Option<String>,
    enabled: Option<bool>,
    extra: &Map<String, Value>,
) -> Result<Service> {
    let cur = get_service(db, id).await?;
    let mut am: service::ActiveModel = cur.clone().into();
    if let Some(t) = kind {
        am.r#type = Set(t);
    }
    if let Some(e) = enabled {
        am.enabled = Set(e);
    }
    let mut x = parse_extra(&cur.extra);
    x.extend(extra.clone());
    am.extra = Set(extra_string(&x));
    Ok(am.update(&db.write).await?)
}

pub async fn delete_service(db: &Db, id: &str) -> Result<()> {
    get_service(db, id).await?;
    endpoint::Entity::delete_many().filter(endpoint::Column::ServiceId.eq(id)).exec(&db.write).await?;
    service::Entity::delete_by_id(id.to_string()).exec(&db.write).await?;
    Ok(())
}

pub async fn get_endpoint(db: &Db, id: &str) -> Result<Endpoint> {
    endpoint::Entity::find_by_id(id.to_string()).one(&db.read).await?.ok_or_else(|| not_found("endpoint", id))
}

pub async fn list_endpoints(
    db: &Db,
    service_id: Option<&str>,
    interface: Option<&str>,
    region_id: Option<&str>,
) -> Result<Vec<Endpoint>> {
    let mut q = endpoint::Entity::find();
    if let Some(s) = service_id {
        q = q.filter(endpoint::Column::ServiceId.eq(s));
    }
    if let Some(i) = interface {
        q = q.filter(endpoint::Column::Interface.eq(i));
    }
    if let Some(r) = region_id {
        q = q.filter(endpoint::Column::RegionId.eq(r));
    }
    Ok(q.order_by_asc(endpoint::Column::Id).all(&db.read).await?)
}

pub fn check_interface(i: &str) -> Result<()> {
    if matches!(i, "public" | "internal" | "admin") {
        Ok(())
    } else {
        Err(bad(format!("Invalid input for field 'endpoint.interface': {i:?} is not one of public, internal, admin.")))
    }
}

pub fn check_url(u: &str) -> Result<()> {
    let ok = (u.starts_with("http://") || u.starts_with("https://")) && u.len() > 8 && !u.contains(' ');
    if ok { Ok(()) } else { Err(bad(format!("Invalid input for field 'endpoint.url': {u:?} is not a URL."))) }
}

pub struct NewEndpoint {
    pub service_id: String,
    pub interface: String,
    pub url: String,
    pub region_id: Option<String>,
    pub enabled: bool,
    pub extra: Map<String, Value>,
}

pub async fn create_endpoint(db: &Db, e: NewEndpoint) -> Result<Endpoint> {
    check_interface(&e.interface)?;
    check_url(&e.url)?;
    get_service(db, &e.service_id).await.map_err(|_| bad(format!("Could not find service: {}.", e.service_id)))?;
    if let Some(r) = &e.region_id {
        get_region(db, r).await.map_err(|_| bad(format!("Could not find region: {r}.")))?;
    }
    let am = endpoint::ActiveModel {
        id: Set(new_id()),
        service_id: Set(e.service_id),
        interface: Set(e.interface),
        url: Set(e.url),
        region_id: Set(e.region_id),
        enabled: Set(e.enabled),
        extra: Set(extra_string(&e.extra)),
    };
    Ok(am.insert(&db.write).await?)
}

#[derive(Default)]
pub struct EndpointUpdate {
    pub service_id: Option<String>,
    pub interface: Option<String>,
    pub url: Option<String>,
    pub region_id: Option<Option<String>>,
    pub enabled: Option<bool>,
    pub extra: Map<String, Value>,
}

pub async fn update_endpoint(db: &Db, id: &str, u: EndpointUpdate) -> Result<Endpoint> {
    let cur = get_endpoint(db, id).await?;
    let mut am: endpoint::ActiveModel = cur.clone().into();
    if let Some(s) = u.service_id {
        get_service(db, &s).await.map_err(|_| bad(format!("Could not find service: {s}.")))?;
        am.service_id = Set(s);
    }
    if let Some(i) = u.interface {
        check_interface(&i)?;
        am.interface = Set(i);
    }
    if let Some(url) = u.url {
        check_url(&url)?;
        am.url = Set(url);
    }
    if let Some(r) = u.region_id {
        if let Some(rid) = &r {
            get_region(db, rid).await.map_err(|_| bad(format!("Could not find region: {rid}.")))?;
        }
        am.region_id = Set(r);
    }
    if let Some(e) = u.enabled {
        am.enabled = Set(e);
    }
    let mut x = parse_extra(&cur.extra);
    x.extend(u.extra);
    am.extra = Set(extra_string(&x));
    Ok(am.update(&db.write).await?)
}

pub async fn delete_endpoint(db: &Db, id: &str) -> Result<()> {
    let r = endpoint::Entity::delete_by_id(id.to_string()).exec(&db.write).await?;
    if r.rows_affected == 0 {
        return Err(not_found("endpoint", id));
    }
    Ok(())
}

/// The service catalog as tokens render it: enabled services with their enabled endpoints.
pub async fn catalog(db: &Db) -> Result<Value> {
    let services = list_services(db, None).await?;
    let endpoints = list_endpoints(db, None, None, None).await?;
    let mut out = Vec::new();
    for s in services.iter().filter(|s| s.enabled) {
        let extra = parse_extra(&s.extra);
        let eps: Vec<Value> = endpoints
            .iter()
            .filter(|e| e.enabled && e.service_id == s.id)
            .map(|e| {
                json!({
                    "id": e.id,
                    "interface": e.interface,
                    "region": e.region_id,
                    "region_id": e.region_id,
                    "url": e.url,
                })
            })
            .collect();
        out.push(json!({
            "id": s.id,
            "type": s.r#type,
            "name": extra.get("name").cloned().unwrap_or(Value::String(String::new())),
            "endpoints": eps,
        }));
    }
    Ok(Value::Array(out))
}

/// Delete a region the way Keystone does: refuse (403) when it or any region
/// below it has endpoints, otherwise delete it together with its descendants.
pub async fn delete_region_tree(db: &Db, id: &str) -> Result<()> {
    use sea_orm::TransactionTrait;
    get_region(db, id).await?;
    let all = region::Entity::find().all(&db.read).await?;
    let mut tree: Vec<String> = vec![id.to_string()];
    let mut next = 0;
    while let Some(cur) = tree.get(next).cloned() {
        for r in &all {
            if r.parent_region_id.as_deref() == Some(cur.as_str()) && !tree.contains(&r.id) {
                tree.push(r.id.clone());
            }
        }
        next += 1;
    }
    let used = endpoint::Entity::find().filter(endpoint::Column::RegionId.is_in(tree.clone())).one(&db.read).await?;
    if used.is_some() {
        return Err(IdentityError::Forbidden(format!(
            "Unable to delete region {id} because it or its child regions have associated endpoints."
        )));
    }
    let txn = db.write.begin().await?;
    region::Entity::delete_many().filter(region::Column::Id.is_in(tree)).exec(&txn).await?;
    txn.commit().await?;
    Ok(())
}
