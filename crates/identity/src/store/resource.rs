//! Domains and projects (a domain is a project with `is_domain`), project tags.

use sea_orm::ActiveValue::Set;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, TransactionTrait};
use serde_json::{Map, Value};
use stratus_db::Db;

use super::{DOMAIN_ROOT, revoke};
use crate::entity::{assignment, group, project, project_tag, role, user};
use crate::error::{IdentityError, Result, bad, conflict, ignore_duplicate, not_found, or_conflict};
use crate::util::{extra_string, new_id};

pub type Project = project::Model;

pub async fn get(db: &Db, id: &str) -> Result<Option<Project>> {
    Ok(project::Entity::find_by_id(id.to_string()).one(&db.read).await?)
}

pub async fn get_project(db: &Db, id: &str) -> Result<Project> {
    get(db, id).await?.ok_or_else(|| not_found("project", id))
}

pub async fn get_domain(db: &Db, id: &str) -> Result<Project> {
    match get(db, id).await? {
        Some(p) if p.is_domain => Ok(p),
        _ => Err(not_found("domain", id)),
    }
}

pub async fn domain_by_name(db: &Db, name: &str) -> Result<Project> {
    project::Entity::find()
        .filter(project::Column::DomainId.eq(DOMAIN_ROOT))
        .filter(project::Column::Name.eq(name))
        .one(&db.read)
        .await?
        .ok_or_else(|| not_found("domain", name))
}

pub async fn project_by_name(db: &Db, domain_id: &str, name: &str) -> Result<Project> {
    project::Entity::find()
        .filter(project::Column::DomainId.eq(domain_id))
        .filter(project::Column::Name.eq(name))
        .one(&db.read)
        .await?
        .ok_or_else(|| not_found("project", name))
}

#[derive(Default, Debug)]
pub struct ProjectFilter {
    pub domain_id: Option<String>,
    pub name: Option<String>,
    pub enabled: Option<bool>,
    pub parent_id: Option<String>,
    pub is_domain: Option<bool>,
    pub ids: Option<Vec<String>>,
}

pub async fn list_projects(db: &Db, f: &ProjectFilter) -> Result<Vec<Project>> {
    let mut q = project::Entity::find();
    match f.is_domain {
        // domains are projects acting as domains: listed only when asked for
        Some(true) => q = q.filter(project::Column::IsDomain.eq(true)),
        _ => q = q.filter(project::Column::IsDomain.eq(false)).filter(project::Column::DomainId.ne(DOMAIN_ROOT)),
    }
    if let Some(d) = &f.domain_id {
        q = q.filter(project::Column::DomainId.eq(d.as_str()));
    }
    if let Some(n) = &f.name {
        q = q.filter(project::Column::Name.eq(n.as_str()));
    }
    if let Some(e) = f.enabled {
        q = q.filter(project::Column::Enabled.eq(e));
    }
    if let Some(p) = &f.parent_id {
        q = q.filter(project::Column::ParentId.eq(p.as_str()));
    }
    if let Some(ids) = &f.ids {
        q = q.filter(project::Column::Id.is_in(ids.clone()));
    }
    Ok(q.order_by_asc(project::Column::Name).all(&db.read).await?)
}

pub async fn list_domains(db: &Db, name: Option<&str>, enabled: Option<bool>) -> Result<Vec<Project>> {
    let mut q = project::Entity::find().filter(project::Column::DomainId.eq(DOMAIN_ROOT));
    if let Some(n) = name {
        q = q.filter(project::Column::Name.eq(n));
    }
    if let Some(e) = enabled {
        q = q.filter(project::Column::Enabled.eq(e));
    }
    Ok(q.order_by_asc(project::Column::Name).all(&db.read).await?)
}

pub struct NewProject {
    pub id: Option<String>,
    pub name: String,
    pub domain_id: Option<String>,
    pub parent_id: Option<String>,
    pub is_domain: bool,
    pub enabled: bool,
    pub description: Option<String>,
    pub tags: Vec<String>,
    pub extra: Map<String, Value>,
}

pub fn validate_tag(t: &str) -> Result<()> {
    if t.is_empty() || t.chars().count() > 255 || t.contains('/') || t.contains(',') {
        return Err(bad(format!("Invalid input for field 'tags': invalid project tag {t:?}.")));
    }
    Ok(())
}

pub async fn create(db: &Db, p: NewProject) -> Result<Project> {
    for t in &p.tags {
        validate_tag(t)?;
    }
    if p.tags.len() > 80 {
        return Err(bad("Invalid input for field 'tags': at most 80 tags."));
    }
    let id = p.id.clone().unwrap_or_else(new_id);
    let (domain_id, parent_id) = if p.is_domain && p.parent_id.is_none() && p.domain_id.is_none() {
        (DOMAIN_ROOT.to_string(), None)
    } else {
        // a project: its domain and parent must exist and agree
        let parent = match &p.parent_id {
            Some(pid) => {
                Some(get(db, pid).await?.ok_or_else(|| bad(format!("Could not find parent project: {pid}.")))?)
            }
            None => None,
        };
        let domain_id = match (&p.domain_id, &parent) {
            (Some(d), _) => d.clone(),
            (None, Some(par)) if par.is_domain => par.id.clone(),
            (None, Some(par)) => par.domain_id.clone(),
            (None, None) => "default".to_string(),
        };
        let domain = get(db, &domain_id).await?.filter(|d| d.is_domain);
        if domain.is_none() {
            return Err(bad(format!("Could not find domain: {domain_id}.")));
        }
        if let Some(par) = &parent {
            let par_domain = if par.is_domain { par.id.clone() } else { par.domain_id.clone() };
            if par_domain != domain_id {
                return Err(bad("Cannot create project, the parent and the project must be in the same domain."));
            }
            if p.is_domain {
                return Err(bad("Cannot create a domain with a parent."));
            }
        }
        let parent_id = parent.map(|x| x.id).or(Some(domain_id.clone()));
        if p.is_domain { (DOMAIN_ROOT.to_string(), None) } else { (domain_id, parent_id) }
    };
    let txn = db.write.begin().await?;
    let am = project::ActiveModel {
        id: Set(id.clone()),
        name: Set(p.name.clone()),
        domain_id: Set(domain_id.clone()),
        parent_id: Set(parent_id),
        is_domain: Set(p.is_domain),
        enabled: Set(p.enabled),
        description: Set(p.description.clone()),
        extra: Set(extra_string(&p.extra)),
    };
    let kind = if p.is_domain { "domain" } else { "project" };
    let model =
        or_conflict(am.insert(&txn).await, || conflict(kind, format!("Duplicate entry found with name {}", p.name)))?;
    let mut tags = p.tags.clone();
    tags.sort();
    tags.dedup();
    for t in tags {
        project_tag::ActiveModel { project_id: Set(id.clone()), name: Set(t) }.insert(&txn).await?;
    }
    txn.commit().await?;
    Ok(model)
}

#[derive(Default)]
pub struct ProjectUpdate {
    pub name: Option<String>,
    pub enabled: Option<bool>,
    pub description: Option<Option<String>>,
    pub tags: Option<Vec<String>>,
    pub extra: Map<String, Value>,
}

pub async fn update(db: &Db, revs: &revoke::RevocationList, id: &str, u: ProjectUpdate) -> Result<Project> {
    let cur = get(db, id).await?.ok_or_else(|| not_found("project", id))?;
    if let Some(tags) = &u.tags {
        for t in tags {
            validate_tag(t)?;
        }
        if tags.len() > 80 {
            return Err(bad("Invalid input for field 'tags': at most 80 tags."));
        }
    }
    let disabling = u.enabled == Some(false) && cur.enabled;
    let mut extra = crate::util::parse_extra(&cur.extra);
    extra.extend(u.extra.clone());
    let txn = db.write.begin().await?;
    let mut am: project::ActiveModel = cur.clone().into();
    if let Some(n) = &u.name {
        am.name = Set(n.clone());
    }
    if let Some(e) = u.enabled {
        am.enabled = Set(e);
    }
    if let Some(d) = &u.description {
        am.description = Set(d.clone());
    }
    am.extra = Set(extra_string(&extra));
    let kind = if cur.is_domain { "domain" } else { "project" };
    let model = or_conflict(am.update(&txn).await, || {
        conflict(kind, format!("Duplicate entry found with name {}", u.name.clone().unwrap_or_default()))
    })?;
    if let Some(tags) = u.tags {
        project_tag::Entity::delete_many().filter(project_tag::Column::ProjectId.eq(id)).exec(&txn).await?;
        let mut tags = tags;
        tags.sort();
        tags.dedup();
        for t in tags {
            project_tag::ActiveModel { project_id: Set(id.to_string()), name: Set(t) }.insert(&txn).await?;
        }
    }
    txn.commit().await?;
    if disabling {
        let ev = if cur.is_domain {
            revoke::Event { domain_id: Some(id.to_string()), ..Default::default() }
        } else {
            revoke::Event { project_id: Some(id.to_string()), ..Default::default() }
        };
        revs.record(db, ev).await?;
    }
    Ok(model)
}

pub async fn children(db: &Db, id: &str) -> Result<Vec<Project>> {
    Ok(project::Entity::find()
        .filter(project::Column::ParentId.eq(id))
        .filter(project::Column::IsDomain.eq(false))
        .all(&db.read)
        .await?)
}

/// All descendants of a project, breadth first.
pub async fn subtree(db: &Db, id: &str) -> Result<Vec<Project>> {
    let mut out = Vec::new();
    let mut frontier = vec![id.to_string()];
    while let Some(pid) = frontier.pop() {
        for c in children(db, &pid).await? {
            frontier.push(c.id.clone());
            out.push(c);
        }
    }
    Ok(out)
}

/// Ancestors of a project, nearest first, up to (not including) its domain.
pub async fn parents(db: &Db, p: &Project) -> Result<Vec<Project>> {
    let mut out = Vec::new();
    let mut cur = p.parent_id.clone();
    while let Some(pid) = cur {
        let Some(par) = get(db, &pid).await? else {
            break;
        };
        if par.is_domain || out.len() > 64 {
            break;
        }
        cur = par.parent_id.clone();
        out.push(par);
    }
    Ok(out)
}

pub async fn delete_project(db: &Db, revs: &revoke::RevocationList, id: &str) -> Result<()> {
    let p = get(db, id).await?.filter(|p| !p.is_domain).ok_or_else(|| not_found("project", id))?;
    if !children(db, id).await?.is_empty() {
        return Err(IdentityError::Forbidden(format!(
            "Cannot delete the project {id} since it is not a leaf in the hierarchy. Use the cascade option if you want to delete a whole subtree."
        )));
    }
    let txn = db.write.begin().await?;
    project_tag::Entity::delete_many().filter(project_tag::Column::ProjectId.eq(id)).exec(&txn).await?;
    assignment::Entity::delete_many().filter(assignment::Column::TargetId.eq(id)).exec(&txn).await?;
    project::Entity::delete_by_id(p.id.clone()).exec(&txn).await?;
    txn.commit().await?;
    revs.record(db, revoke::Event { project_id: Some(id.to_string()), ..Default::default() }).await?;
    super::endpoint_group::delete_for_project(db, id).await?;
    Ok(())
}

pub async fn delete_domain(db: &Db, revs: &revoke::RevocationList, id: &str) -> Result<()> {
    let d = get_domain(db, id).await?;
    if d.enabled {
        return Err(IdentityError::Forbidden(
            "Cannot delete a domain that is enabled, please disable it first.".into(),
        ));
    }
    let projects = project::Entity::find().filter(project::Column::DomainId.eq(id)).all(&db.read).await?;
    let users = user::Entity::find().filter(user::Column::DomainId.eq(id)).all(&db.read).await?;
    let groups = group::Entity::find().filter(group::Column::DomainId.eq(id)).all(&db.read).await?;
    let txn = db.write.begin().await?;
    for p in &projects {
        project_tag::Entity::delete_many().filter(project_tag::Column::ProjectId.eq(p.id.as_str())).exec(&txn).await?;
        assignment::Entity::delete_many().filter(assignment::Column::TargetId.eq(p.id.as_str())).exec(&txn).await?;
    }
    project::Entity::delete_many().filter(project::Column::DomainId.eq(id)).exec(&txn).await?;
    for u in &users {
        assignment::Entity::delete_many().filter(assignment::Column::ActorId.eq(u.id.as_str())).exec(&txn).await?;
        crate::entity::user_group_membership::Entity::delete_many()
            .filter(crate::entity::user_group_membership::Column::UserId.eq(u.id.as_str()))
            .exec(&txn)
            .await?;
    }
    user::Entity::delete_many().filter(user::Column::DomainId.eq(id)).exec(&txn).await?;
    for g in &groups {
        assignment::Entity::delete_many().filter(assignment::Column::ActorId.eq(g.id.as_str())).exec(&txn).await?;
        crate::entity::user_group_membership::Entity::delete_many()
            .filter(crate::entity::user_group_membership::Column::GroupId.eq(g.id.as_str()))
            .exec(&txn)
            .await?;
    }
    group::Entity::delete_many().filter(group::Column::DomainId.eq(id)).exec(&txn).await?;
    let roles = role::Entity::find().filter(role::Column::DomainId.eq(id)).all(&txn).await?;
    for r in &roles {
        assignment::Entity::delete_many().filter(assignment::Column::RoleId.eq(r.id.as_str())).exec(&txn).await?;
    }
    role::Entity::delete_many().filter(role::Column::DomainId.eq(id)).exec(&txn).await?;
    assignment::Entity::delete_many().filter(assignment::Column::TargetId.eq(id)).exec(&txn).await?;
    project::Entity::delete_by_id(id.to_string()).exec(&txn).await?;
    txn.commit().await?;
    revs.record(db, revoke::Event { domain_id: Some(id.to_string()), ..Default::default() }).await?;
    super::domain_config::delete_for_domain(db, id).await?;
    for p in &projects {
        super::endpoint_group::delete_for_project(db, &p.id).await?;
    }
    Ok(())
}

pub async fn tags(db: &Db, id: &str) -> Result<Vec<String>> {
    Ok(project_tag::Entity::find()
        .filter(project_tag::Column::ProjectId.eq(id))
        .order_by_asc(project_tag::Column::Name)
        .all(&db.read)
        .await?
        .into_iter()
        .map(|t| t.name)
        .collect())
}

pub async fn add_tag(db: &Db, id: &str, tag: &str) -> Result<()> {
    validate_tag(tag)?;
    let existing = tags(db, id).await?;
    if existing.iter().any(|t| t == tag) {
        return Ok(());
    }
    if existing.len() >= 80 {
        return Err(bad("A project may have at most 80 tags."));
    }
    ignore_duplicate(
        project_tag::ActiveModel { project_id: Set(id.to_string()), name: Set(tag.to_string()) }
            .insert(&db.write)
            .await,
    )
}

pub async fn remove_tag(db: &Db, id: &str, tag: &str) -> Result<bool> {
    let r = project_tag::Entity::delete_many()
        .filter(project_tag::Column::ProjectId.eq(id))
        .filter(project_tag::Column::Name.eq(tag))
        .exec(&db.write)
        .await?;
    Ok(r.rows_affected > 0)
}

pub async fn projects_with_tags(db: &Db) -> Result<std::collections::HashMap<String, Vec<String>>> {
    let mut out: std::collections::HashMap<String, Vec<String>> = Default::default();
    for t in project_tag::Entity::find().order_by_asc(project_tag::Column::Name).all(&db.read).await? {
        out.entry(t.project_id).or_default().push(t.name);
    }
    Ok(out)
}
