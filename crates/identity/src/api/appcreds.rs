//! `/v3/users/{user_id}/application_credentials`: a user delegates (some of)
//! its roles on the token's project to a named secret.

use std::collections::HashMap;

use axum::Router;
use axum::extract::{Path, State as S};
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};
use stratus_core::AuthContext;
use stratus_core::auth::Auth;
use stratus_core::extract::{Json, RawQuery};

use super::{created, no_content, ok};
use crate::error::{IdentityError, Result, bad, not_found};
use crate::store::appcred::{self, AccessRule, AppCred, NewAppCred, RuleInput};
use crate::store::assignment::{self, Role, Scope, role_domain};
use crate::util::{member, now_us, parse_extra};
use crate::{Identity, State};

pub fn routes() -> Router<State> {
    Router::new()
        .route("/v3/users/{user_id}/application_credentials", get(list).post(create))
        .route("/v3/users/{user_id}/application_credentials/{application_credential_id}", get(show).delete(remove))
        .route("/v3/users/{user_id}/access_rules", get(list_rules))
        .route("/v3/users/{user_id}/access_rules/{access_rule_id}", get(show_rule).delete(remove_rule))
}

const ALLOWED: &[&str] = &[
    "id",
    "secret",
    "name",
    "description",
    "expires_at",
    "project_id",
    "access_rules",
    "unrestricted",
    "system",
    "roles",
];

/// Keystone renders `expires_at` without a zone: `2018-02-27T18:30:59.000000`.
fn expires(us: i64) -> Option<String> {
    chrono::DateTime::from_timestamp_micros(us).map(|t| t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string())
}

fn render_role(r: &Role) -> Value {
    json!({
        "id": r.id,
        "name": r.name,
        "domain_id": role_domain(r),
        "description": r.description,
        "options": parse_extra(&r.options),
    })
}

/// An access rule as a credential and a token show it.
pub fn render_rule(r: &AccessRule) -> Value {
    json!({"id": r.id, "service": r.service, "path": r.path, "method": r.method})
}

pub fn render(
    s: &Identity,
    c: &AppCred,
    roles: &HashMap<String, Role>,
    rules: Option<&[AccessRule]>,
    secret: Option<&str>,
) -> Value {
    // a role deleted since is left out
    let role_list: Vec<Value> = appcred::role_ids(c).iter().filter_map(|id| roles.get(id)).map(render_role).collect();
    let mut v = json!({
        "id": c.id,
        "name": c.name,
        "description": c.description,
        "user_id": c.user_id,
        "project_id": c.project_id,
        "system": c.system,
        "expires_at": c.expires_at.and_then(expires),
        "unrestricted": c.unrestricted,
        "roles": role_list,
        "links": s.link(&format!("users/{}/application_credentials/{}", c.user_id, c.id)),
    });
    if let Some(rules) = rules {
        v["access_rules"] = rules.iter().map(render_rule).collect();
    }
    if let Some(sec) = secret {
        v["secret"] = json!(sec);
    }
    v
}

const RULE_METHODS: &[&str] = &["DELETE", "GET", "HEAD", "PATCH", "POST", "PUT"];

/// `access_rules` of a new credential, checked as Keystone's schema checks
/// them: `path` a string starting with `/` (at most 225), `service` an id
/// string (at most 64), `method` one of the HTTP methods, `id` an id string.
fn parse_access_rules(v: Option<&Value>) -> Result<Vec<RuleInput>> {
    let field = "application_credential.access_rules";
    let items = match v {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(a)) => a,
        Some(_) => return Err(bad(format!("Invalid input for field '{field}': expected an array."))),
    };
    let id_like = |x: &str| !x.is_empty() && x.len() <= 64;
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let Value::Object(m) = item else {
            return Err(bad(format!("Invalid input for field '{field}[{i}]': expected an object.")));
        };
        let text = |k: &str| -> Result<Option<String>> {
            match m.get(k) {
                None => Ok(None),
                Some(Value::String(x)) => Ok(Some(x.clone())),
                Some(_) => Err(bad(format!("Invalid input for field '{field}[{i}].{k}': expected a string."))),
            }
        };
        let rule =
            RuleInput { id: text("id")?, service: text("service")?, path: text("path")?, method: text("method")? };
        if rule.id.as_deref().is_some_and(|x| !id_like(x)) {
            return Err(bad(format!("Invalid input for field '{field}[{i}].id': not a valid ID.")));
        }
        if rule.service.as_deref().is_some_and(|x| !id_like(x)) {
            return Err(bad(format!("Invalid input for field '{field}[{i}].service': not a valid service type.")));
        }
        if rule.path.as_deref().is_some_and(|x| !x.starts_with('/') || x.chars().count() > 225) {
            return Err(bad(format!(
                "Invalid input for field '{field}[{i}].path': it must start with '/' and be at most 225 characters."
            )));
        }
        if let Some(x) = rule.method.as_deref()
            && !RULE_METHODS.contains(&x)
        {
            return Err(bad(format!(
                "Invalid input for field '{field}[{i}].method': '{x}' is not one of {RULE_METHODS:?}."
            )));
        }
        out.push(rule);
    }
    Ok(out)
}

/// Whether the caller's token comes from a restricted application credential
/// (which may not manage credentials). A credential gone counts as restricted.
pub(crate) async fn restricted_app_cred(s: &Identity, ctx: &AuthContext) -> Result<bool> {
    let Some(id) = &ctx.application_credential_id else {
        return Ok(false);
    };
    match appcred::get(&s.db, id).await {
        Ok(c) => Ok(!c.unrestricted),
        Err(IdentityError::NotFound { .. }) => Ok(true),
        Err(e) => Err(e),
    }
}

fn forbid_restricted() -> IdentityError {
    IdentityError::Forbidden(
        "You are not authorized to perform the requested action: Using method 'application_credential' is not \
         allowed for managing additional application credentials."
            .into(),
    )
}

/// A requested role: by id or by name (exactly one of them).
enum RoleRef {
    Id(String),
    Name(String),
}

fn parse_roles(v: Option<&Value>) -> Result<Vec<RoleRef>> {
    let field = "application_credential.roles";
    let items = match v {
        None => return Ok(Vec::new()),
        Some(Value::Array(a)) => a,
        Some(_) => {
            return Err(bad(format!("Invalid input for field '{field}': expected an array.")));
        }
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let Value::Object(m) = item else {
            return Err(bad(format!("Invalid input for field '{field}[{i}]': expected an object.")));
        };
        if m.len() != 1 {
            return Err(bad(format!("Invalid input for field '{field}[{i}]': give exactly one of 'id' and 'name'.")));
        }
        match (m.get("id"), m.get("name")) {
            (Some(Value::String(id)), None)
                if !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') =>
            {
                out.push(RoleRef::Id(id.clone()))
            }
            (None, Some(Value::String(n))) if !n.trim().is_empty() && n.chars().count() <= 255 => {
                out.push(RoleRef::Name(n.clone()))
            }
            (Some(_), None) => {
                return Err(bad(format!("Invalid input for field '{field}[{i}].id': not a valid ID.")));
            }
            (None, Some(_)) => {
                return Err(bad(format!("Invalid input for field '{field}[{i}].name': not a valid name.")));
            }
            _ => {
                return Err(bad(format!(
                    "Invalid input for field '{field}[{i}]': give exactly one of 'id' and 'name'."
                )));
            }
        }
    }
    Ok(out)
}

/// The role ids the new credential gets: the requested ones with the roles
/// they imply, or (none requested) the token's roles; each must be in the
/// token and assigned to the user on the project.
async fn choose_roles(s: &Identity, ctx: &AuthContext, wanted: Vec<RoleRef>, project_id: &str) -> Result<Vec<String>> {
    let token_roles: Vec<String> = ctx.roles.iter().map(|(id, _)| id.clone()).collect();
    let ids = if wanted.is_empty() {
        token_roles.clone()
    } else {
        let mut ids = Vec::new();
        for w in wanted {
            match w {
                RoleRef::Id(id) => ids.push(id),
                RoleRef::Name(n) => match assignment::role_by_name(&s.db, &n, None).await? {
                    Some(r) => ids.push(r.id),
                    None => {
                        return Err(IdentityError::NotFoundMsg(format!("Role {n} is not defined")));
                    }
                },
            }
        }
        let edges = assignment::implications(&s.db).await?;
        let mut all: Vec<String> = Vec::new();
        for (r, _) in assignment::expand_implied(&ids, &edges) {
            if !all.contains(&r) {
                all.push(r);
            }
        }
        // requested roles first, in the order given
        all.sort_by_key(|r| ids.iter().position(|x| x == r).unwrap_or(usize::MAX));
        if all.iter().any(|r| !token_roles.contains(r)) {
            return Err(bad(
                "Invalid application credential: Cannot create an application credential with unassigned role",
            ));
        }
        all
    };
    let assigned = assignment::effective_role_ids(&s.db, &ctx.user_id, &Scope::Project(project_id.to_string())).await?;
    if let Some(r) = ids.iter().find(|r| !assigned.contains(r)) {
        return Err(bad(format!(
            "Invalid application credential: Could not find role assignment with role: {r}, user or group: {}, \
             project, domain, or system: {project_id}.",
            ctx.user_id
        )));
    }
    Ok(ids)
}

async fn create(
    S(s): S<State>,
    Auth(ctx): Auth,
    Path(user_id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response> {
    let a = member(&body, "application_credential")?;
    if let Some(k) = a.map.keys().find(|k| !ALLOWED.contains(&k.as_str())) {
        return Err(bad(format!(
            "Invalid input for field 'application_credential': additional properties are not allowed ({k:?} was unexpected)."
        )));
    }
    let name = a.req_str("name", 255)?;
    let description = a.str("description")?;
    let secret = a.str("secret")?.filter(|x| !x.is_empty());
    let unrestricted = match a.get("unrestricted") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(bad("Invalid input for field 'application_credential.unrestricted': expected a boolean."));
        }
    };
    // set by Keystone from the token; only checked for type here
    a.str("project_id")?;
    a.str("system")?;
    let expires_at = match a.str("expires_at")?.filter(|x| !x.is_empty()) {
        None => None,
        Some(t) => {
            let us = crate::util::iso_to_us(&t).ok_or_else(|| {
                bad("Invalid input for field 'application_credential.expires_at': timestamp not in expected format.")
            })?;
            if us <= now_us() {
                return Err(bad(
                    "Invalid input for field 'application_credential.expires_at': it must not be before now.",
                ));
            }
            Some(us)
        }
    };
    let access_rules = parse_access_rules(a.get("access_rules"))?;
    let wanted = parse_roles(a.get("roles"))?;

    s.enforce(&ctx, "identity:create_application_credential", json!({"user_id": user_id}))?;
    if restricted_app_cred(&s, &ctx).await? {
        return Err(forbid_restricted());
    }
    if ctx.user_id != user_id {
        return Err(IdentityError::Forbidden(
            "You are not authorized to perform the requested action: Cannot create an application credential for \
             another user."
                .into(),
        ));
    }
    let Some(project_id) = ctx.project_id.clone() else {
        return Err(bad("Invalid application credential: a project-scoped token is required to create one."));
    };
    let role_ids = choose_roles(&s, &ctx, wanted, &project_id).await?;
    let new = NewAppCred {
        name,
        description,
        user_id: user_id.clone(),
        project_id: Some(project_id),
        system: None,
        expires_at,
        unrestricted,
        role_ids,
        secret,
        access_rules,
    };
    let (cred, secret) = appcred::create(&s.db, s.cfg.identity.password_hash_rounds, new).await?;
    let roles = assignment::all_roles(&s.db).await?;
    let rules = appcred::access_rules_of(&s.db, &cred.id).await?;
    Ok(created(json!({"application_credential": render(&s, &cred, &roles, rules.as_deref(), Some(&secret))})))
}

async fn list(S(s): S<State>, Auth(ctx): Auth, Path(user_id): Path<String>, q: RawQuery) -> Result<Response> {
    s.enforce(&ctx, "identity:list_application_credentials", json!({"user_id": user_id}))?;
    let creds = appcred::list(&s.db, &user_id, q.get("name")).await?;
    let roles = assignment::all_roles(&s.db).await?;
    let mut items = Vec::new();
    for c in &creds {
        let rules = appcred::access_rules_of(&s.db, &c.id).await?;
        items.push(render(&s, c, &roles, rules.as_deref(), None));
    }
    Ok(ok(s.collection(&format!("users/{user_id}/application_credentials"), "application_credentials", items)))
}

/// The credential named in the path, which must belong to the user in the path.
async fn owned(s: &Identity, user_id: &str, id: &str) -> Result<AppCred> {
    let c = appcred::get(&s.db, id).await?;
    if c.user_id != user_id {
        return Err(not_found("application credential", id));
    }
    Ok(c)
}

async fn show(S(s): S<State>, Auth(ctx): Auth, Path((user_id, id)): Path<(String, String)>) -> Result<Response> {
    let c = owned(&s, &user_id, &id).await?;
    s.enforce(&ctx, "identity:get_application_credential", json!({"user_id": c.user_id}))?;
    let roles = assignment::all_roles(&s.db).await?;
    let rules = appcred::access_rules_of(&s.db, &c.id).await?;
    Ok(ok(json!({"application_credential": render(&s, &c, &roles, rules.as_deref(), None)})))
}

async fn remove(S(s): S<State>, Auth(ctx): Auth, Path((user_id, id)): Path<(String, String)>) -> Result<Response> {
    let c = owned(&s, &user_id, &id).await?;
    s.enforce(&ctx, "identity:delete_application_credential", json!({"user_id": c.user_id}))?;
    if restricted_app_cred(&s, &ctx).await? {
        return Err(forbid_restricted());
    }
    appcred::delete(&s.db, &id).await?;
    // tokens made from it must stop validating now, not when the cache expires
    s.invalidate_tokens();
    Ok(no_content())
}

// ---- access rules: `/v3/users/{user_id}/access_rules`

fn user_target(user_id: &str) -> Value {
    json!({"target.user.id": user_id, "user_id": user_id})
}

fn render_rule_linked(s: &Identity, user_id: &str, r: &AccessRule) -> Value {
    let mut v = render_rule(r);
    v["links"] = s.link(&format!("users/{user_id}/access_rules/{}", r.id));
    v
}

/// The rule named in the path, which must be the user's.
async fn owned_rule(s: &Identity, user_id: &str, id: &str) -> Result<AccessRule> {
    let r = appcred::get_access_rule(&s.db, id).await?;
    if r.user_id != user_id {
        return Err(not_found("access rule", id));
    }
    Ok(r)
}

async fn list_rules(S(s): S<State>, Auth(ctx): Auth, Path(user_id): Path<String>, q: RawQuery) -> Result<Response> {
    s.enforce(&ctx, "identity:list_access_rules", user_target(&user_id))?;
    let rules = appcred::list_access_rules(&s.db, &user_id, q.get("service"), q.get("path"), q.get("method")).await?;
    let items = rules.iter().map(|r| render_rule_linked(&s, &user_id, r)).collect();
    Ok(ok(s.collection(&format!("users/{user_id}/access_rules"), "access_rules", items)))
}

async fn show_rule(S(s): S<State>, Auth(ctx): Auth, Path((user_id, id)): Path<(String, String)>) -> Result<Response> {
    s.enforce(&ctx, "identity:get_access_rule", user_target(&user_id))?;
    let r = owned_rule(&s, &user_id, &id).await?;
    Ok(ok(json!({"access_rule": render_rule_linked(&s, &user_id, &r)})))
}

async fn remove_rule(S(s): S<State>, Auth(ctx): Auth, Path((user_id, id)): Path<(String, String)>) -> Result<Response> {
    s.enforce(&ctx, "identity:delete_access_rule", user_target(&user_id))?;
    owned_rule(&s, &user_id, &id).await?;
    appcred::delete_access_rule(&s.db, &id).await?;
    Ok(no_content())
}
