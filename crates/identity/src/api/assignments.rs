//! Role grants on projects, domains and the system (plus OS-INHERIT), and
//! `GET /v3/role_assignments`.

use std::collections::BTreeSet;

use axum::Router;
use axum::extract::{Path, State as S};
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};
use stratus_core::auth::Auth;
use stratus_core::extract::RawQuery;

use super::{flag, no_content, ok};
use crate::error::{IdentityError, Result, bad};
use crate::store::assignment::{self, Assignment, AssignmentFilter, SYSTEM, role_domain};
use crate::store::{resource, user};
use crate::{Identity, State};

pub fn routes() -> Router<State> {
    let one = || get(check).head(check).put(grant).delete(revoke);
    Router::new()
        .route("/v3/projects/{target}/users/{actor}/roles", get(list_grants))
        .route("/v3/projects/{target}/users/{actor}/roles/{role}", one())
        .route("/v3/projects/{target}/groups/{actor}/roles", get(list_grants))
        .route("/v3/projects/{target}/groups/{actor}/roles/{role}", one())
        .route("/v3/domains/{target}/users/{actor}/roles", get(list_grants))
        .route("/v3/domains/{target}/users/{actor}/roles/{role}", one())
        .route("/v3/domains/{target}/groups/{actor}/roles", get(list_grants))
        .route("/v3/domains/{target}/groups/{actor}/roles/{role}", one())
        .route("/v3/system/users/{actor}/roles", get(list_system))
        .route(
            "/v3/system/users/{actor}/roles/{role}",
            get(check_system).head(check_system).put(grant_system).delete(revoke_system),
        )
        .route("/v3/system/groups/{actor}/roles", get(list_system))
        .route(
            "/v3/system/groups/{actor}/roles/{role}",
            get(check_system).head(check_system).put(grant_system).delete(revoke_system),
        )
        .route("/v3/OS-INHERIT/domains/{target}/users/{actor}/roles/inherited_to_projects", get(list_grants))
        .route("/v3/OS-INHERIT/domains/{target}/groups/{actor}/roles/inherited_to_projects", get(list_grants))
        .route("/v3/OS-INHERIT/projects/{target}/users/{actor}/roles/inherited_to_projects", get(list_grants))
        .route("/v3/OS-INHERIT/projects/{target}/groups/{actor}/roles/inherited_to_projects", get(list_grants))
        .route(
            "/v3/OS-INHERIT/domains/{target}/users/{actor}/roles/{role}/inherited_to_projects",
            get(check).head(check).put(grant).delete(revoke),
        )
        .route(
            "/v3/OS-INHERIT/domains/{target}/groups/{actor}/roles/{role}/inherited_to_projects",
            get(check).head(check).put(grant).delete(revoke),
        )
        .route(
            "/v3/OS-INHERIT/projects/{target}/users/{actor}/roles/{role}/inherited_to_projects",
            get(check).head(check).put(grant).delete(revoke),
        )
        .route(
            "/v3/OS-INHERIT/projects/{target}/groups/{actor}/roles/{role}/inherited_to_projects",
            get(check).head(check).put(grant).delete(revoke),
        )
        .route("/v3/role_assignments", get(list_assignments))
}

/// What the URL names: who, on what, whether inherited.
struct GrantPath {
    user: bool,
    project: bool,
    inherited: bool,
}

fn parse_path(uri: &axum::http::Uri) -> GrantPath {
    let p = uri.path();
    GrantPath { user: p.contains("/users/"), project: p.contains("/projects/"), inherited: p.contains("/OS-INHERIT/") }
}

/// Resolve actor, target and role, and build the policy target Keystone builds.
async fn resolve(
    s: &Identity,
    gp: &GrantPath,
    target: &str,
    actor: &str,
    role: Option<&str>,
) -> Result<(Value, Option<assignment::Role>)> {
    let mut t = serde_json::Map::new();
    if gp.project {
        let p = resource::get(&s.db, target)
            .await?
            .filter(|p| !p.is_domain)
            .ok_or_else(|| crate::error::not_found("project", target))?;
        t.insert("target.project.id".into(), json!(p.id));
        t.insert("target.project.domain_id".into(), json!(p.domain_id));
    } else {
        let d = resource::get_domain(&s.db, target).await?;
        t.insert("target.domain.id".into(), json!(d.id));
    }
    if gp.user {
        let u = user::get(&s.db, actor).await?;
        t.insert("target.user.id".into(), json!(u.id));
        t.insert("target.user.domain_id".into(), json!(u.domain_id));
    } else {
        let g = user::get_group(&s.db, actor).await?;
        t.insert("target.group.id".into(), json!(g.id));
        t.insert("target.group.domain_id".into(), json!(g.domain_id));
    }
    let mut r = None;
    if let Some(rid) = role {
        let role = assignment::get_role(&s.db, rid).await?;
        t.insert("target.role.id".into(), json!(role.id));
        t.insert("target.role.name".into(), json!(role.name));
        t.insert("target.role.domain_id".into(), json!(role_domain(&role)));
        r = Some(role);
    }
    Ok((Value::Object(t), r))
}

fn kind(gp: &GrantPath) -> String {
    format!("{}{}", if gp.user { "User" } else { "Group" }, if gp.project { "Project" } else { "Domain" })
}

/// The assignment a grant URL names, once `rule` allows the caller on it.
async fn authorized(
    s: &Identity,
    ctx: &stratus_core::AuthContext,
    uri: &axum::http::Uri,
    (target, actor, role): (String, String, String),
    rule: &str,
) -> Result<Assignment> {
    let gp = parse_path(uri);
    let (t, _) = resolve(s, &gp, &target, &actor, Some(&role)).await?;
    s.enforce(ctx, rule, t)?;
    Ok(Assignment { kind: kind(&gp), actor_id: actor, target_id: target, role_id: role, inherited: gp.inherited })
}

async fn grant(
    S(s): S<State>,
    Auth(ctx): Auth,
    uri: axum::http::Uri,
    Path(p): Path<(String, String, String)>,
) -> Result<Response> {
    let a = authorized(&s, &ctx, &uri, p, "identity:create_grant").await?;
    assignment::grant(&s.db, &a).await?;
    s.invalidate_tokens();
    Ok(no_content())
}

async fn check(
    S(s): S<State>,
    Auth(ctx): Auth,
    uri: axum::http::Uri,
    Path(p): Path<(String, String, String)>,
) -> Result<Response> {
    let a = authorized(&s, &ctx, &uri, p, "identity:check_grant").await?;
    if assignment::exists(&s.db, &a).await? {
        Ok(no_content())
    } else {
        Err(IdentityError::NotFoundMsg(format!("Could not find role assignment with role: {}.", a.role_id)))
    }
}

async fn revoke(
    S(s): S<State>,
    Auth(ctx): Auth,
    uri: axum::http::Uri,
    Path(p): Path<(String, String, String)>,
) -> Result<Response> {
    let a = authorized(&s, &ctx, &uri, p, "identity:revoke_grant").await?;
    assignment::revoke(&s.db, &s.revocations, &a).await?;
    s.invalidate_tokens();
    Ok(no_content())
}

async fn grants_list(s: &Identity, gp: &GrantPath, target: &str, actor: &str) -> Result<Vec<Value>> {
    let rows = assignment::list(
        &s.db,
        &AssignmentFilter {
            actor_ids: Some(vec![actor.to_string()]),
            target_id: Some(target.to_string()),
            inherited: Some(gp.inherited),
            kinds: None,
            ..Default::default()
        },
    )
    .await?;
    let roles = assignment::all_roles(&s.db).await?;
    let k = kind(gp);
    Ok(rows
        .iter()
        .filter(|a| a.kind == k)
        .filter_map(|a| roles.get(&a.role_id))
        .map(|r| super::roles::render(s, r))
        .collect())
}

async fn list_grants(
    S(s): S<State>,
    Auth(ctx): Auth,
    uri: axum::http::Uri,
    Path((target, actor)): Path<(String, String)>,
) -> Result<Response> {
    let gp = parse_path(&uri);
    let (t, _) = resolve(&s, &gp, &target, &actor, None).await?;
    s.enforce(&ctx, "identity:list_grants", t)?;
    let items = grants_list(&s, &gp, &target, &actor).await?;
    Ok(ok(s.collection(uri.path().trim_start_matches("/v3/"), "roles", items)))
}

// ---- system

async fn system_target(s: &Identity, user: bool, actor: &str, role: Option<&str>) -> Result<Value> {
    let mut t = serde_json::Map::new();
    if user {
        let u = user::get(&s.db, actor).await?;
        t.insert("target.user.id".into(), json!(u.id));
    } else {
        let g = user::get_group(&s.db, actor).await?;
        t.insert("target.group.id".into(), json!(g.id));
    }
    if let Some(r) = role {
        let role = assignment::get_role(&s.db, r).await?;
        t.insert("target.role.id".into(), json!(role.id));
    }
    Ok(Value::Object(t))
}

fn system_rule(user: bool, op: &str) -> String {
    let grant = if op == "list" { "grants" } else { "grant" };
    format!("identity:{op}_system_{grant}_for_{}", if user { "user" } else { "group" })
}

async fn list_system(
    S(s): S<State>,
    Auth(ctx): Auth,
    uri: axum::http::Uri,
    Path(actor): Path<String>,
) -> Result<Response> {
    let user = uri.path().contains("/users/");
    let t = system_target(&s, user, &actor, None).await?;
    s.enforce(&ctx, &system_rule(user, "list"), t)?;
    let rows = assignment::list(
        &s.db,
        &AssignmentFilter { actor_ids: Some(vec![actor]), target_id: Some(SYSTEM.into()), ..Default::default() },
    )
    .await?;
    let roles = assignment::all_roles(&s.db).await?;
    let items = rows.iter().filter_map(|a| roles.get(&a.role_id)).map(|r| super::roles::render(&s, r)).collect();
    Ok(ok(s.collection(uri.path().trim_start_matches("/v3/"), "roles", items)))
}

fn system_assignment(user: bool, actor: String, role: String) -> Assignment {
    Assignment {
        kind: if user { "UserSystem" } else { "GroupSystem" }.into(),
        actor_id: actor,
        target_id: SYSTEM.into(),
        role_id: role,
        inherited: false,
    }
}

/// The system assignment a URL names, once the `op` rule allows the caller on it.
async fn authorized_system(
    s: &Identity,
    ctx: &stratus_core::AuthContext,
    uri: &axum::http::Uri,
    (actor, role): (String, String),
    op: &str,
) -> Result<Assignment> {
    let user = uri.path().contains("/users/");
    let t = system_target(s, user, &actor, Some(&role)).await?;
    s.enforce(ctx, &system_rule(user, op), t)?;
    Ok(system_assignment(user, actor, role))
}

async fn check_system(
    S(s): S<State>,
    Auth(ctx): Auth,
    uri: axum::http::Uri,
    Path(p): Path<(String, String)>,
) -> Result<Response> {
    let a = authorized_system(&s, &ctx, &uri, p, "check").await?;
    if assignment::exists(&s.db, &a).await? {
        Ok(no_content())
    } else {
        Err(IdentityError::NotFoundMsg(format!("Could not find role assignment with role: {}.", a.role_id)))
    }
}

async fn grant_system(
    S(s): S<State>,
    Auth(ctx): Auth,
    uri: axum::http::Uri,
    Path(p): Path<(String, String)>,
) -> Result<Response> {
    let a = authorized_system(&s, &ctx, &uri, p, "create").await?;
    assignment::grant(&s.db, &a).await?;
    s.invalidate_tokens();
    Ok(no_content())
}

async fn revoke_system(
    S(s): S<State>,
    Auth(ctx): Auth,
    uri: axum::http::Uri,
    Path(p): Path<(String, String)>,
) -> Result<Response> {
    let a = authorized_system(&s, &ctx, &uri, p, "revoke").await?;
    assignment::revoke(&s.db, &s.revocations, &a).await?;
    s.invalidate_tokens();
    Ok(no_content())
}

// ---- GET /v3/role_assignments

/// One row of the listing, after effective expansion.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Row {
    user: Option<String>,
    group: Option<String>,
    /// "project" | "domain" | "system"
    scope_kind: &'static str,
    scope_id: String,
    role: String,
    inherited: bool,
    /// the group this row came through (effective)
    via_group: Option<String>,
    /// the role this one was implied by (effective)
    prior_role: Option<String>,
}

async fn list_assignments(S(s): S<State>, Auth(ctx): Auth, q: RawQuery) -> Result<Response> {
    let mut t = json!({});
    if let Some(d) = &ctx.domain_id {
        t["target.domain_id"] = json!(d);
    }
    let subtree = flag(&q, "include_subtree");
    if subtree {
        let pid = q.get("scope.project.id").ok_or_else(|| bad("include_subtree requires scope.project.id."))?;
        let p = resource::get_project(&s.db, pid).await?;
        s.enforce(
            &ctx,
            "identity:list_role_assignments_for_tree",
            json!({"target.project.domain_id": p.domain_id, "target.project.id": p.id}),
        )?;
    } else {
        s.enforce(&ctx, "identity:list_role_assignments", t)?;
    }
    if q.has("scope.project.id") as u8 + q.has("scope.domain.id") as u8 + q.has("scope.system") as u8 > 1 {
        return Err(bad("Specify at most one of scope.project.id, scope.domain.id and scope.system."));
    }
    if q.has("user.id") && q.has("group.id") {
        return Err(bad("Specify at most one of user.id and group.id."));
    }
    let effective = flag(&q, "effective");
    if effective && q.has("group.id") {
        return Err(bad("Combining effective and group filter will always result in an empty list."));
    }
    let include_names = flag(&q, "include_names");
    let inherited_filter = q.get("scope.OS-INHERIT:inherited_to").map(|_| true);

    let all = assignment::list(&s.db, &AssignmentFilter::default()).await?;
    let mut rows: Vec<Row> = all
        .iter()
        .map(|a| Row {
            user: a.is_user().then(|| a.actor_id.clone()),
            group: (!a.is_user()).then(|| a.actor_id.clone()),
            scope_kind: if a.on_project() {
                "project"
            } else if a.on_domain() {
                "domain"
            } else {
                "system"
            },
            scope_id: a.target_id.clone(),
            role: a.role_id.clone(),
            inherited: a.inherited,
            via_group: None,
            prior_role: None,
        })
        .collect();

    if effective {
        // groups -> their members
        let mut expanded = Vec::new();
        for r in rows {
            if let Some(g) = &r.group {
                for u in user::group_members(&s.db, g).await? {
                    expanded.push(Row { user: Some(u), group: None, via_group: Some(g.clone()), ..r.clone() });
                }
            } else {
                expanded.push(r);
            }
        }
        // inherited -> the projects below
        let mut out = Vec::new();
        for r in expanded {
            if r.inherited {
                let projects = if r.scope_kind == "domain" {
                    resource::list_projects(
                        &s.db,
                        &resource::ProjectFilter { domain_id: Some(r.scope_id.clone()), ..Default::default() },
                    )
                    .await?
                } else {
                    resource::subtree(&s.db, &r.scope_id).await?
                };
                for p in projects {
                    out.push(Row { scope_kind: "project", scope_id: p.id, inherited: false, ..r.clone() });
                }
            } else {
                out.push(r);
            }
        }
        // implied roles
        let edges = assignment::implications(&s.db).await?;
        let mut with_implied = Vec::new();
        for r in out {
            for (role, prior) in assignment::expand_implied(std::slice::from_ref(&r.role), &edges) {
                with_implied.push(Row { role, prior_role: prior.map(|_| r.role.clone()), ..r.clone() });
            }
        }
        // domain-specific roles never reach a token: leave them out of the effective list
        let all_roles = assignment::all_roles(&s.db).await?;
        with_implied.retain(|r| all_roles.get(&r.role).is_some_and(|x| role_domain(x).is_none()));
        rows = with_implied;
    }

    let scope_ids: Option<BTreeSet<String>> = if let Some(pid) = q.get("scope.project.id") {
        let mut set = BTreeSet::from([pid.to_string()]);
        if subtree {
            set.extend(resource::subtree(&s.db, pid).await?.into_iter().map(|p| p.id));
        }
        Some(set)
    } else {
        q.get("scope.domain.id").map(|d| BTreeSet::from([d.to_string()]))
    };
    let want_kind = if q.has("scope.project.id") {
        Some("project")
    } else if q.has("scope.domain.id") {
        Some("domain")
    } else if q.has("scope.system") {
        Some("system")
    } else {
        None
    };
    let user_ids: Option<BTreeSet<String>> = match q.get("user.id") {
        Some(u) if !effective => {
            // a user's own rows and (not effective) nothing of its groups
            Some(BTreeSet::from([u.to_string()]))
        }
        Some(u) => Some(BTreeSet::from([u.to_string()])),
        None => None,
    };
    rows.retain(|r| {
        want_kind.is_none_or(|k| r.scope_kind == k)
            && scope_ids.as_ref().is_none_or(|ids| ids.contains(&r.scope_id))
            && user_ids.as_ref().is_none_or(|ids| r.user.as_ref().is_some_and(|u| ids.contains(u)))
            && q.get("group.id").is_none_or(|g| r.group.as_deref() == Some(g))
            && q.get("role.id").is_none_or(|x| r.role == x)
            && inherited_filter.is_none_or(|i| r.inherited == i)
    });
    rows.sort();
    rows.dedup();

    let roles = assignment::all_roles(&s.db).await?;
    let mut items = Vec::new();
    for r in &rows {
        items.push(render_row(&s, r, include_names, &roles).await?);
    }
    Ok(ok(s.collection("role_assignments", "role_assignments", items)))
}

async fn render_row(
    s: &Identity,
    r: &Row,
    names: bool,
    roles: &std::collections::HashMap<String, assignment::Role>,
) -> Result<Value> {
    let mut v = json!({});
    let mut role = json!({"id": r.role});
    if names && let Some(x) = roles.get(&r.role) {
        role["name"] = json!(x.name);
        if let Some(d) = role_domain(x) {
            role["domain"] = domain_brief(s, d).await?;
        }
    }
    v["role"] = role;
    let actor_path;
    if let Some(u) = &r.user {
        let mut uj = json!({"id": u});
        if names && let Some(x) = user::find(&s.db, u).await? {
            uj["name"] = json!(x.name);
            uj["domain"] = domain_brief(s, &x.domain_id).await?;
        }
        v["user"] = uj;
        actor_path = format!("users/{u}");
    } else {
        let g = r.group.clone().unwrap_or_default();
        let mut gj = json!({"id": g});
        if names && let Ok(x) = user::get_group(&s.db, &g).await {
            gj["name"] = json!(x.name);
            gj["domain"] = domain_brief(s, &x.domain_id).await?;
        }
        v["group"] = gj;
        actor_path = format!("groups/{g}");
    }
    let mut scope = json!({"id": r.scope_id});
    if r.scope_kind == "system" {
        v["scope"] = json!({"system": {"all": true}});
    } else {
        if names && let Some(p) = resource::get(&s.db, &r.scope_id).await? {
            scope["name"] = json!(p.name);
            if r.scope_kind == "project" {
                scope["domain"] = domain_brief(s, &p.domain_id).await?;
            }
        }
        v["scope"] = json!({ r.scope_kind: scope });
        if r.inherited {
            v["scope"]["OS-INHERIT:inherited_to"] = json!("projects");
        }
    }
    let base = &s.base_url;
    let scope_path = match r.scope_kind {
        "system" => "system".to_string(),
        k => format!("{k}s/{}", r.scope_id),
    };
    let mut links = json!({"assignment": format!("{base}/v3/{scope_path}/{actor_path}/roles/{}", r.role)});
    if let Some(g) = &r.via_group {
        links["membership"] = json!(format!("{base}/v3/groups/{g}/users/{}", r.user.clone().unwrap_or_default()));
        links["assignment"] = json!(format!(
            "{base}/v3/{scope_path}/groups/{g}/roles/{}",
            r.prior_role.clone().unwrap_or(r.role.clone())
        ));
    }
    if let Some(p) = &r.prior_role {
        links["prior_role"] = json!(format!("{base}/v3/roles/{p}"));
        if r.via_group.is_none() {
            links["assignment"] = json!(format!("{base}/v3/{scope_path}/{actor_path}/roles/{p}"));
        }
    }
    v["links"] = links;
    Ok(v)
}

async fn domain_brief(s: &Identity, id: &str) -> Result<Value> {
    Ok(match resource::get(&s.db, id).await? {
        Some(d) => json!({"id": d.id, "name": d.name}),
        None => json!({"id": id}),
    })
}
