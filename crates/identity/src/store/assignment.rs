//! Roles (global and domain-specific), implied roles, role assignments on
//! projects, domains and the system, and the effective roles a token carries.

use std::collections::{BTreeSet, HashMap};

use sea_orm::ActiveValue::Set;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, TransactionTrait};
use serde_json::{Map, Value};
use stratus_db::Db;

use super::{NULL_DOMAIN, resource, revoke, user};
use crate::entity::{assignment, implied_role, role};
use crate::error::{IdentityError, Result, bad, conflict, ignore_duplicate, not_found, or_conflict};
use crate::util::{extra_string, new_id};

pub type Role = role::Model;
pub const SYSTEM: &str = "system";

pub fn role_domain(r: &Role) -> Option<&str> {
    (r.domain_id != NULL_DOMAIN).then_some(r.domain_id.as_str())
}

pub async fn get_role(db: &Db, id: &str) -> Result<Role> {
    role::Entity::find_by_id(id.to_string()).one(&db.read).await?.ok_or_else(|| not_found("role", id))
}

pub async fn all_roles(db: &Db) -> Result<HashMap<String, Role>> {
    Ok(role::Entity::find().all(&db.read).await?.into_iter().map(|r| (r.id.clone(), r)).collect())
}

pub async fn list_roles(db: &Db, domain_id: Option<&str>, name: Option<&str>) -> Result<Vec<Role>> {
    let mut q = role::Entity::find().filter(role::Column::DomainId.eq(domain_id.unwrap_or(NULL_DOMAIN)));
    if let Some(n) = name {
        q = q.filter(role::Column::Name.eq(n));
    }
    Ok(q.order_by_asc(role::Column::Name).all(&db.read).await?)
}

pub async fn role_by_name(db: &Db, name: &str, domain_id: Option<&str>) -> Result<Option<Role>> {
    Ok(role::Entity::find()
        .filter(role::Column::Name.eq(name))
        .filter(role::Column::DomainId.eq(domain_id.unwrap_or(NULL_DOMAIN)))
        .one(&db.read)
        .await?)
}

pub async fn create_role(
    db: &Db,
    id: Option<String>,
    name: &str,
    domain_id: Option<&str>,
    description: Option<String>,
    options: &Map<String, Value>,
    extra: &Map<String, Value>,
) -> Result<Role> {
    if let Some(d) = domain_id {
        resource::get_domain(db, d).await.map_err(|_| bad(format!("Could not find domain: {d}.")))?;
    }
    let am = role::ActiveModel {
        id: Set(id.unwrap_or_else(new_id)),
        name: Set(name.to_string()),
        domain_id: Set(domain_id.unwrap_or(NULL_DOMAIN).to_string()),
        description: Set(description),
        options: Set(extra_string(options)),
        extra: Set(extra_string(extra)),
    };
    or_conflict(am.insert(&db.write).await, || conflict("role", format!("Duplicate entry found with name {name}")))
}

pub async fn update_role(
    db: &Db,
    id: &str,
    name: Option<String>,
    description: Option<Option<String>>,
    options: Option<&Map<String, Value>>,
    extra: &Map<String, Value>,
) -> Result<Role> {
    let cur = get_role(db, id).await?;
    if is_immutable(&cur) {
        return Err(IdentityError::Forbidden(format!("Role {id} is immutable.")));
    }
    let mut am: role::ActiveModel = cur.clone().into();
    if let Some(n) = &name {
        am.name = Set(n.clone());
    }
    if let Some(d) = description {
        am.description = Set(d);
    }
    if let Some(o) = options {
        am.options = Set(extra_string(o));
    }
    let mut x = crate::util::parse_extra(&cur.extra);
    x.extend(extra.clone());
    am.extra = Set(extra_string(&x));
    or_conflict(am.update(&db.write).await, || {
        conflict("role", format!("Duplicate entry found with name {}", name.unwrap_or_default()))
    })
}

fn is_immutable(r: &Role) -> bool {
    crate::util::parse_extra(&r.options).get("immutable").and_then(Value::as_bool).unwrap_or(false)
}

pub async fn delete_role(db: &Db, revs: &revoke::RevocationList, id: &str) -> Result<()> {
    let r = get_role(db, id).await?;
    if is_immutable(&r) {
        return Err(IdentityError::Forbidden(format!("Role {id} is immutable.")));
    }
    let txn = db.write.begin().await?;
    assignment::Entity::delete_many().filter(assignment::Column::RoleId.eq(id)).exec(&txn).await?;
    implied_role::Entity::delete_many().filter(implied_role::Column::PriorRoleId.eq(id)).exec(&txn).await?;
    implied_role::Entity::delete_many().filter(implied_role::Column::ImpliedRoleId.eq(id)).exec(&txn).await?;
    role::Entity::delete_by_id(id.to_string()).exec(&txn).await?;
    txn.commit().await?;
    revs.record(db, revoke::Event { role_id: Some(id.to_string()), ..Default::default() }).await?;
    Ok(())
}

// ---- implied roles

pub async fn implications(db: &Db) -> Result<Vec<(String, String)>> {
    Ok(implied_role::Entity::find()
        .all(&db.read)
        .await?
        .into_iter()
        .map(|r| (r.prior_role_id, r.implied_role_id))
        .collect())
}

pub async fn create_implied(db: &Db, prior: &str, implied: &str) -> Result<()> {
    let p = get_role(db, prior).await?;
    let i = get_role(db, implied).await?;
    // a global role may not imply a domain-specific one (domain roles may imply anything)
    if role_domain(&p).is_none() && role_domain(&i).is_some() {
        return Err(IdentityError::Forbidden(format!(
            "{implied} is a domain-specific role: a global role may not imply it."
        )));
    }
    // refuse a cycle: implied must not (transitively) imply prior
    let edges = implications(db).await?;
    let mut seen = BTreeSet::new();
    let mut stack = vec![implied.to_string()];
    while let Some(r) = stack.pop() {
        if r == prior {
            return Err(IdentityError::ConflictMsg(format!("Implying {implied} from {prior} would create a cycle.")));
        }
        if seen.insert(r.clone()) {
            stack.extend(edges.iter().filter(|(a, _)| *a == r).map(|(_, b)| b.clone()));
        }
    }
    ignore_duplicate(
        (implied_role::ActiveModel { prior_role_id: Set(prior.into()), implied_role_id: Set(implied.into()) })
            .insert(&db.write)
            .await,
    )
}

pub async fn delete_implied(db: &Db, prior: &str, implied: &str) -> Result<()> {
    get_role(db, prior).await?;
    get_role(db, implied).await?;
    let r = implied_role::Entity::delete_by_id((prior.to_string(), implied.to_string())).exec(&db.write).await?;
    if r.rows_affected == 0 {
        return Err(IdentityError::NotFoundMsg(format!("{prior} does not imply {implied}.")));
    }
    Ok(())
}

pub async fn implied_exists(db: &Db, prior: &str, implied: &str) -> Result<bool> {
    Ok(implied_role::Entity::find_by_id((prior.to_string(), implied.to_string())).one(&db.read).await?.is_some())
}

/// Roles reachable from `roles` through implications (including `roles`), with
/// the prior role each was implied by.
pub fn expand_implied(roles: &[String], edges: &[(String, String)]) -> Vec<(String, Option<String>)> {
    let mut out: Vec<(String, Option<String>)> = Vec::new();
    let mut seen = BTreeSet::new();
    let mut stack: Vec<(String, Option<String>)> = roles.iter().map(|r| (r.clone(), None)).collect();
    while let Some((r, prior)) = stack.pop() {
        if !seen.insert(r.clone()) {
            continue;
        }
        for (a, b) in edges {
            if *a == r {
                stack.push((b.clone(), Some(r.clone())));
            }
        }
        out.push((r, prior));
    }
    out
}

// ---- assignments

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Assignment {
    pub kind: String,
    pub actor_id: String,
    pub target_id: String,
    pub role_id: String,
    pub inherited: bool,
}

impl From<assignment::Model> for Assignment {
    fn from(m: assignment::Model) -> Self {
        Assignment {
            kind: m.r#type,
            actor_id: m.actor_id,
            target_id: m.target_id,
            role_id: m.role_id,
            inherited: m.inherited,
        }
    }
}

impl Assignment {
    pub fn is_user(&self) -> bool {
        self.kind.starts_with("User")
    }
    pub fn on_project(&self) -> bool {
        self.kind.ends_with("Project")
    }
    pub fn on_domain(&self) -> bool {
        self.kind.ends_with("Domain")
    }
    pub fn on_system(&self) -> bool {
        self.kind.ends_with("System")
    }
}

/// Record an assignment (idempotent). A domain-specific role may only be
/// granted inside its own domain.
pub async fn grant(db: &Db, a: &Assignment) -> Result<()> {
    let role = get_role(db, &a.role_id).await?;
    if let Some(rd) = role_domain(&role) {
        let target_domain = if a.on_project() {
            resource::get(db, &a.target_id).await?.map(|p| p.domain_id)
        } else if a.on_domain() {
            Some(a.target_id.clone())
        } else {
            None
        };
        if target_domain.as_deref() != Some(rd) {
            return Err(IdentityError::Forbidden(format!(
                "Cannot assign the domain-specific role {} outside its domain.",
                role.id
            )));
        }
    }
    let am = assignment::ActiveModel {
        r#type: Set(a.kind.clone()),
        actor_id: Set(a.actor_id.clone()),
        target_id: Set(a.target_id.clone()),
        role_id: Set(a.role_id.clone()),
        inherited: Set(a.inherited),
    };
    ignore_duplicate(am.insert(&db.write).await)
}

pub async fn exists(db: &Db, a: &Assignment) -> Result<bool> {
    Ok(assignment::Entity::find_by_id((
        a.kind.clone(),
        a.actor_id.clone(),
        a.target_id.clone(),
        a.role_id.clone(),
        a.inherited,
    ))
    .one(&db.read)
    .await?
    .is_some())
}

pub async fn revoke(db: &Db, revs: &revoke::RevocationList, a: &Assignment) -> Result<()> {
    let r = assignment::Entity::delete_by_id((
        a.kind.clone(),
        a.actor_id.clone(),
        a.target_id.clone(),
        a.role_id.clone(),
        a.inherited,
    ))
    .exec(&db.write)
    .await?;
    if r.rows_affected == 0 {
        return Err(IdentityError::NotFoundMsg(format!(
            "Could not find role assignment with role: {}, {} {}, {} {}.",
            a.role_id,
            if a.is_user() { "user" } else { "group" },
            a.actor_id,
            if a.on_project() {
                "project"
            } else if a.on_domain() {
                "domain"
            } else {
                "system"
            },
            a.target_id
        )));
    }
    let mut ev = revoke::Event { role_id: Some(a.role_id.clone()), ..Default::default() };
    if a.is_user() {
        ev.user_id = Some(a.actor_id.clone());
    } else {
        // a group's assignment: revoke for each member
        for uid in user::group_members(db, &a.actor_id).await? {
            revs.record(
                db,
                revoke::Event { user_id: Some(uid), role_id: Some(a.role_id.clone()), ..Default::default() },
            )
            .await?;
        }
        return Ok(());
    }
    if a.on_project() && !a.inherited {
        ev.project_id = Some(a.target_id.clone());
    }
    revs.record(db, ev).await?;
    Ok(())
}

#[derive(Default, Debug)]
pub struct AssignmentFilter {
    pub actor_ids: Option<Vec<String>>,
    pub target_id: Option<String>,
    pub role_id: Option<String>,
    pub inherited: Option<bool>,
    pub system: bool,
    pub kinds: Option<Vec<&'static str>>,
}

pub async fn list(db: &Db, f: &AssignmentFilter) -> Result<Vec<Assignment>> {
    let mut q = assignment::Entity::find();
    if let Some(a) = &f.actor_ids {
        q = q.filter(assignment::Column::ActorId.is_in(a.clone()));
    }
    if let Some(t) = &f.target_id {
        q = q.filter(assignment::Column::TargetId.eq(t.as_str()));
    }
    if let Some(r) = &f.role_id {
        q = q.filter(assignment::Column::RoleId.eq(r.as_str()));
    }
    if let Some(i) = f.inherited {
        q = q.filter(assignment::Column::Inherited.eq(i));
    }
    if let Some(k) = &f.kinds {
        q = q.filter(assignment::Column::Type.is_in(k.iter().map(|s| s.to_string())));
    }
    let mut rows: Vec<Assignment> = q.all(&db.read).await?.into_iter().map(Into::into).collect();
    rows.sort();
    Ok(rows)
}

/// What a token is scoped to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    Unscoped,
    Project(String),
    Domain(String),
    System,
}

/// The role ids a user holds on a scope: direct and group assignments,
/// inheritance from parent projects and the domain, implied roles expanded,
/// domain-specific roles left out (they only imply).
pub async fn effective_role_ids(db: &Db, user_id: &str, scope: &Scope) -> Result<Vec<String>> {
    let mut actors = vec![user_id.to_string()];
    actors.extend(user::user_groups(db, user_id).await?);
    let rows = list(db, &AssignmentFilter { actor_ids: Some(actors), ..Default::default() }).await?;
    let mut direct: BTreeSet<String> = BTreeSet::new();
    match scope {
        Scope::Unscoped => return Ok(Vec::new()),
        Scope::System => {
            direct.extend(rows.iter().filter(|a| a.on_system()).map(|a| a.role_id.clone()));
        }
        Scope::Domain(d) => {
            direct.extend(
                rows.iter().filter(|a| a.on_domain() && a.target_id == *d && !a.inherited).map(|a| a.role_id.clone()),
            );
        }
        Scope::Project(p) => {
            direct.extend(
                rows.iter().filter(|a| a.on_project() && a.target_id == *p && !a.inherited).map(|a| a.role_id.clone()),
            );
            let Some(proj) = resource::get(db, p).await? else {
                return Ok(Vec::new());
            };
            let ancestors = resource::parents(db, &proj).await?;
            for anc in &ancestors {
                direct.extend(
                    rows.iter()
                        .filter(|a| a.on_project() && a.target_id == anc.id && a.inherited)
                        .map(|a| a.role_id.clone()),
                );
            }
            direct.extend(
                rows.iter()
                    .filter(|a| a.on_domain() && a.target_id == proj.domain_id && a.inherited)
                    .map(|a| a.role_id.clone()),
            );
        }
    }
    if direct.is_empty() {
        return Ok(Vec::new());
    }
    let edges = implications(db).await?;
    let roles = all_roles(db).await?;
    let direct: Vec<String> = direct.into_iter().collect();
    let mut out: Vec<String> = expand_implied(&direct, &edges)
        .into_iter()
        .map(|(r, _)| r)
        .filter(|r| roles.get(r).is_some_and(|role| role_domain(role).is_none()))
        .collect();
    out.sort();
    out.dedup();
    Ok(out)
}

/// Projects (ids) where the user has any role, directly, by group or by inheritance.
pub async fn projects_for_user(db: &Db, user_id: &str) -> Result<Vec<String>> {
    let mut actors = vec![user_id.to_string()];
    actors.extend(user::user_groups(db, user_id).await?);
    let rows = list(db, &AssignmentFilter { actor_ids: Some(actors), ..Default::default() }).await?;
    let mut out = BTreeSet::new();
    for a in &rows {
        if a.on_project() {
            if !a.inherited {
                out.insert(a.target_id.clone());
            }
            if a.inherited {
                for c in resource::subtree(db, &a.target_id).await? {
                    out.insert(c.id);
                }
            }
        } else if a.on_domain() && a.inherited {
            for p in resource::list_projects(
                db,
                &resource::ProjectFilter { domain_id: Some(a.target_id.clone()), ..Default::default() },
            )
            .await?
            {
                out.insert(p.id);
            }
        }
    }
    Ok(out.into_iter().collect())
}

/// Domains (ids) where the user has a (non-inherited) role.
pub async fn domains_for_user(db: &Db, user_id: &str) -> Result<Vec<String>> {
    let mut actors = vec![user_id.to_string()];
    actors.extend(user::user_groups(db, user_id).await?);
    let rows = list(db, &AssignmentFilter { actor_ids: Some(actors), ..Default::default() }).await?;
    let set: BTreeSet<String> =
        rows.iter().filter(|a| a.on_domain() && !a.inherited).map(|a| a.target_id.clone()).collect();
    Ok(set.into_iter().collect())
}
