//! Idempotent bootstrap: the `Default` domain, the admin project and user,
//! the roles admin > manager > member > reader and service, the `service`
//! project, a region, and catalog entries for the services that run.

use serde_json::{Map, json};

use crate::Identity;
use crate::error::Result;
use crate::store::assignment::{self, Assignment};
use crate::store::{catalog, resource, user};

/// A catalog entry a running service wants: (type, name, URL for all three interfaces).
pub struct ServiceEntry {
    pub kind: String,
    pub name: String,
    pub url: String,
}

pub struct Outcome {
    pub admin_user_id: String,
    pub admin_project_id: String,
    /// Set when bootstrap created the admin user now (the password to print once).
    pub created_admin: bool,
}

async fn ensure_role(id: &Identity, name: &str) -> Result<String> {
    if let Some(r) = assignment::role_by_name(&id.db, name, None).await? {
        return Ok(r.id);
    }
    Ok(assignment::create_role(&id.db, None, name, None, None, &Map::new(), &Map::new()).await?.id)
}

async fn ensure_project(id: &Identity, name: &str, description: &str) -> Result<String> {
    if let Ok(p) = resource::project_by_name(&id.db, "default", name).await {
        return Ok(p.id);
    }
    let p = resource::create(
        &id.db,
        resource::NewProject {
            id: None,
            name: name.into(),
            domain_id: Some("default".into()),
            parent_id: None,
            is_domain: false,
            enabled: true,
            description: Some(description.into()),
            tags: vec![],
            extra: Map::new(),
        },
    )
    .await?;
    Ok(p.id)
}

pub async fn run(id: &Identity, admin_password: &str, region: &str, services: &[ServiceEntry]) -> Result<Outcome> {
    let db = &id.db;
    if resource::get(db, "default").await?.is_none() {
        resource::create(
            db,
            resource::NewProject {
                id: Some("default".into()),
                name: "Default".into(),
                domain_id: None,
                parent_id: None,
                is_domain: true,
                enabled: true,
                description: Some("The default domain".into()),
                tags: vec![],
                extra: Map::new(),
            },
        )
        .await?;
    }
    let admin_role = ensure_role(id, "admin").await?;
    let manager = ensure_role(id, "manager").await?;
    let member = ensure_role(id, "member").await?;
    let reader = ensure_role(id, "reader").await?;
    ensure_role(id, "service").await?;
    assignment::create_implied(db, &admin_role, &manager).await?;
    assignment::create_implied(db, &manager, &member).await?;
    assignment::create_implied(db, &member, &reader).await?;
    let admin_project = ensure_project(id, "admin", "Bootstrap project for the cloud's administrator").await?;
    ensure_project(id, "service", "Project of the services' own users").await?;
    let (admin_user, created_admin) = match user::by_name(db, "default", "admin").await? {
        Some(u) => (u.id, false),
        None => {
            let u = user::create(
                db,
                &id.cfg,
                user::NewUser {
                    id: None,
                    name: "admin".into(),
                    domain_id: "default".into(),
                    enabled: true,
                    default_project_id: None,
                    password: Some(admin_password.to_string()),
                    options: Map::new(),
                    extra: Map::new(),
                },
            )
            .await?;
            (u.id, true)
        }
    };
    for a in [
        Assignment {
            kind: "UserProject".into(),
            actor_id: admin_user.clone(),
            target_id: admin_project.clone(),
            role_id: admin_role.clone(),
            inherited: false,
        },
        Assignment {
            kind: "UserSystem".into(),
            actor_id: admin_user.clone(),
            target_id: assignment::SYSTEM.into(),
            role_id: admin_role.clone(),
            inherited: false,
        },
    ] {
        assignment::grant(db, &a).await?;
    }
    if catalog::get_region(db, region).await.is_err() {
        catalog::create_region(db, Some(region.to_string()), Some(String::new()), None, &Map::new()).await?;
    }
    for s in services {
        let existing = catalog::list_services(db, Some(&s.kind)).await?;
        let svc = match existing.into_iter().next() {
            Some(x) => x,
            None => {
                let mut extra = Map::new();
                extra.insert("name".into(), json!(s.name));
                catalog::create_service(db, &s.kind, true, &extra).await?
            }
        };
        for iface in ["public", "internal", "admin"] {
            let eps = catalog::list_endpoints(db, Some(&svc.id), Some(iface), Some(region)).await?;
            match eps.first() {
                Some(e) if e.url == s.url => {}
                Some(e) => {
                    catalog::update_endpoint(
                        db,
                        &e.id,
                        catalog::EndpointUpdate { url: Some(s.url.clone()), ..Default::default() },
                    )
                    .await?;
                }
                None => {
                    catalog::create_endpoint(
                        db,
                        catalog::NewEndpoint {
                            service_id: svc.id.clone(),
                            interface: iface.into(),
                            url: s.url.clone(),
                            region_id: Some(region.to_string()),
                            enabled: true,
                            extra: Map::new(),
                        },
                    )
                    .await?;
                }
            }
        }
    }
    id.invalidate_tokens();
    Ok(Outcome { admin_user_id: admin_user, admin_project_id: admin_project, created_admin })
}
