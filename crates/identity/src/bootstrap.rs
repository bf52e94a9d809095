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

/// The user services call each other as: in the `project` project with the
/// admin and service roles, password as given (reset when it changed), never
/// locked out and never expiring.
pub async fn ensure_service_user(id: &Identity, username: &str, password: &str, project: &str) -> Result<String> {
    let db = &id.db;
    let project_id = ensure_project(id, project, "Project of the services' own users").await?;
    let admin_role = ensure_role(id, "admin").await?;
    let service_role = ensure_role(id, "service").await?;
    let mut options = Map::new();
    options.insert("ignore_lockout_failure_attempts".into(), json!(true));
    options.insert("ignore_password_expiry".into(), json!(true));
    let user_id = match user::by_name(db, "default", username).await? {
        Some(u) => {
            let same = match &u.password_hash {
                Some(h) => user::verify_password(password, h).await,
                None => false,
            };
            if !same {
                user::update(
                    db,
                    &id.cfg,
                    &id.revocations,
                    &u.id,
                    user::UserUpdate { password: Some(password.to_string()), ..Default::default() },
                )
                .await?;
            }
            u.id
        }
        None => {
            user::create(
                db,
                &id.cfg,
                user::NewUser {
                    id: None,
                    name: username.into(),
                    domain_id: "default".into(),
                    enabled: true,
                    default_project_id: Some(project_id.clone()),
                    password: Some(password.to_string()),
                    options,
                    extra: Map::new(),
                },
            )
            .await?
            .id
        }
    };
    for role in [admin_role, service_role] {
        assignment::grant(
            db,
            &Assignment {
                kind: "UserProject".into(),
                actor_id: user_id.clone(),
                target_id: project_id.clone(),
                role_id: role,
                inherited: false,
            },
        )
        .await?;
    }
    id.invalidate_tokens();
    Ok(user_id)
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
