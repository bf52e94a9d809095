//! `/v3/users`, own password change, a user's groups and projects.

use axum::Router;
use axum::extract::{Path, State as S};
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::{Value, json};
use stratus_core::auth::Auth;
use stratus_core::extract::{Json, RawQuery};

use super::{bool_filter, created, no_content, ok};
use crate::error::{IdentityError, Result, bad};
use crate::store::{assignment, resource, user};
use crate::util::{member, us_to_iso, with_extra};
use crate::{Identity, State};

pub fn routes() -> Router<State> {
    Router::new()
        .route("/v3/users", get(list).post(create))
        .route("/v3/users/{user_id}", get(show).patch(update).delete(remove))
        .route("/v3/users/{user_id}/password", post(change_password))
        .route("/v3/users/{user_id}/groups", get(groups))
        .route("/v3/users/{user_id}/projects", get(projects))
}

pub fn render(s: &Identity, u: &user::User) -> Value {
    let mut v = json!({
        "id": u.id,
        "name": u.name,
        "domain_id": u.domain_id,
        "enabled": u.enabled,
        "password_expires_at": u.password_expires_at.map(us_to_iso),
        "options": crate::util::parse_extra(&u.options),
        "links": s.link(&format!("users/{}", u.id)),
    });
    if let Some(p) = &u.default_project_id {
        v["default_project_id"] = json!(p);
    }
    with_extra(v, &u.extra)
}

fn target(u: &user::User) -> Value {
    json!({"target.user.id": u.id, "target.user.domain_id": u.domain_id, "user_id": u.id})
}

const KNOWN: &[&str] =
    &["id", "name", "domain_id", "enabled", "default_project_id", "password", "options", "federated"];

fn options_of(v: Option<&Value>) -> Result<Option<serde_json::Map<String, Value>>> {
    match v {
        None => Ok(None),
        Some(Value::Object(m)) => {
            const ALLOWED: &[&str] = &[
                "ignore_change_password_upon_first_use",
                "ignore_password_expiry",
                "ignore_lockout_failure_attempts",
                "lock_password",
                "multi_factor_auth_enabled",
                "multi_factor_auth_rules",
                "ignore_user_inactivity",
            ];
            for k in m.keys() {
                if !ALLOWED.contains(&k.as_str()) {
                    return Err(bad(format!("Invalid input for field 'user.options': unknown option {k:?}.")));
                }
            }
            Ok(Some(m.clone()))
        }
        Some(_) => Err(bad("Invalid input for field 'user.options': expected an object.")),
    }
}

async fn list(S(s): S<State>, Auth(ctx): Auth, q: RawQuery) -> Result<Response> {
    let mut t = json!({});
    if let Some(d) = &ctx.domain_id {
        t["target.domain_id"] = json!(d);
    }
    s.enforce(&ctx, "identity:list_users", t)?;
    let f = user::UserFilter {
        domain_id: q.get("domain_id").map(str::to_string).or_else(|| ctx.domain_id.clone()),
        name: q.get("name").map(str::to_string),
        enabled: bool_filter(&q, "enabled"),
        ids: None,
    };
    let users = user::list(&s.db, &f).await?;
    Ok(ok(s.collection("users", "users", users.iter().map(|u| render(&s, u)).collect())))
}

async fn create(S(s): S<State>, Auth(ctx): Auth, Json(body): Json<Value>) -> Result<Response> {
    let u = member(&body, "user")?;
    let domain_id = u.str("domain_id")?.or_else(|| ctx.domain_id.clone()).unwrap_or_else(|| "default".into());
    s.enforce(&ctx, "identity:create_user", json!({"target.user.domain_id": domain_id}))?;
    let new = user::NewUser {
        id: None,
        name: u.req_str("name", 255)?,
        domain_id,
        enabled: u.bool("enabled")?.unwrap_or(true),
        default_project_id: u.str("default_project_id")?,
        password: u.str("password")?,
        options: options_of(u.get("options"))?.unwrap_or_default(),
        extra: u.extra(KNOWN),
    };
    if let Some(p) = &new.default_project_id
        && resource::get(&s.db, p).await?.is_some_and(|x| x.is_domain)
    {
        return Err(bad("Invalid input for field 'user.default_project_id': a domain cannot be a default project."));
    }
    let created_user = user::create(&s.db, &s.cfg, new).await?;
    Ok(created(json!({"user": render(&s, &created_user)})))
}

async fn show(S(s): S<State>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Response> {
    let u = user::get(&s.db, &id).await?;
    s.enforce(&ctx, "identity:get_user", target(&u))?;
    Ok(ok(json!({"user": render(&s, &u)})))
}

async fn update(S(s): S<State>, Auth(ctx): Auth, Path(id): Path<String>, Json(body): Json<Value>) -> Result<Response> {
    let cur = user::get(&s.db, &id).await?;
    s.enforce(&ctx, "identity:update_user", target(&cur))?;
    let u = member(&body, "user")?;
    if let Some(v) = u.get("id")
        && v.as_str() != Some(id.as_str())
    {
        return Err(bad("Invalid input for field 'user.id': it cannot be changed."));
    }
    if let Some(v) = u.get("domain_id")
        && v.as_str() != Some(cur.domain_id.as_str())
    {
        return Err(bad("Invalid input for field 'user.domain_id': it cannot be changed."));
    }
    let upd = user::UserUpdate {
        name: u.opt_name("name", 255)?,
        enabled: u.bool("enabled")?,
        default_project_id: if u.has("default_project_id") { Some(u.str("default_project_id")?) } else { None },
        password: u.str("password")?,
        options: options_of(u.get("options"))?,
        extra: u.extra(KNOWN),
    };
    let updated = user::update(&s.db, &s.cfg, &s.revocations, &id, upd).await?;
    s.invalidate_tokens();
    Ok(ok(json!({"user": render(&s, &updated)})))
}

async fn remove(S(s): S<State>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Response> {
    let u = user::get(&s.db, &id).await?;
    s.enforce(&ctx, "identity:delete_user", target(&u))?;
    user::delete(&s.db, &s.revocations, &id).await?;
    s.invalidate_tokens();
    Ok(no_content())
}

/// POST /v3/users/{id}/password: a user changes its own password (no policy rule:
/// knowing the original password is the authorization).
async fn change_password(S(s): S<State>, Path(id): Path<String>, Json(body): Json<Value>) -> Result<Response> {
    let u = member(&body, "user")?;
    let original = u.str("original_password")?.ok_or_else(|| bad("Expecting to find original_password in user."))?;
    let password = u.str("password")?.ok_or_else(|| bad("Expecting to find password in user."))?;
    let cur = user::find(&s.db, &id).await?.ok_or_else(|| IdentityError::Unauthorized("user not found".into()))?;
    let good = match &cur.password_hash {
        Some(h) => user::verify_password(&original, h).await,
        None => false,
    };
    if !good {
        return Err(IdentityError::Unauthorized("original password wrong".into()));
    }
    let upd = user::UserUpdate { password: Some(password), ..Default::default() };
    user::update(&s.db, &s.cfg, &s.revocations, &id, upd).await?;
    s.invalidate_tokens();
    Ok(no_content())
}

async fn groups(S(s): S<State>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Response> {
    let u = user::get(&s.db, &id).await?;
    s.enforce(&ctx, "identity:list_groups_for_user", target(&u))?;
    let mut items = Vec::new();
    for gid in user::user_groups(&s.db, &id).await? {
        if let Ok(g) = user::get_group(&s.db, &gid).await {
            items.push(super::groups::render(&s, &g));
        }
    }
    Ok(ok(s.collection(&format!("users/{id}/groups"), "groups", items)))
}

async fn projects(S(s): S<State>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Response> {
    let u = user::get(&s.db, &id).await?;
    s.enforce(&ctx, "identity:list_user_projects", target(&u))?;
    let ids = assignment::projects_for_user(&s.db, &id).await?;
    let projects =
        resource::list_projects(&s.db, &resource::ProjectFilter { ids: Some(ids), ..Default::default() }).await?;
    let items = projects.iter().map(|p| super::projects::render(&s, p, Vec::new())).collect();
    Ok(ok(s.collection(&format!("users/{id}/projects"), "projects", items)))
}
