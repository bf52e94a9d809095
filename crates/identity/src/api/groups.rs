//! `/v3/groups` and group membership.

use axum::Router;
use axum::extract::{Path, State as S};
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};
use stratus_core::auth::Auth;
use stratus_core::extract::{Json, RawQuery};

use super::{created, no_content, ok};
use crate::error::{IdentityError, Result};
use crate::store::user;
use crate::util::{member, with_extra};
use crate::{Identity, State};

pub fn routes() -> Router<State> {
    Router::new()
        .route("/v3/groups", get(list).post(create))
        .route("/v3/groups/{group_id}", get(show).patch(update).delete(remove))
        .route("/v3/groups/{group_id}/users", get(members))
        .route("/v3/groups/{group_id}/users/{user_id}", get(check).head(check).put(add).delete(remove_member))
}

pub fn render(s: &Identity, g: &user::Group) -> Value {
    with_extra(
        json!({
            "id": g.id,
            "name": g.name,
            "domain_id": g.domain_id,
            "description": g.description.clone().unwrap_or_default(),
            "links": s.link(&format!("groups/{}", g.id)),
        }),
        &g.extra,
    )
}

fn target(g: &user::Group) -> Value {
    json!({"target.group.id": g.id, "target.group.domain_id": g.domain_id})
}

async fn list(S(s): S<State>, Auth(ctx): Auth, q: RawQuery) -> Result<Response> {
    let mut t = json!({});
    if let Some(d) = &ctx.domain_id {
        t["target.domain_id"] = json!(d);
    }
    s.enforce(&ctx, "identity:list_groups", t)?;
    let domain = q.get("domain_id").map(str::to_string).or_else(|| ctx.domain_id.clone());
    let groups = user::list_groups(&s.db, domain.as_deref(), q.get("name")).await?;
    Ok(ok(s.collection("groups", "groups", groups.iter().map(|g| render(&s, g)).collect())))
}

async fn create(S(s): S<State>, Auth(ctx): Auth, Json(body): Json<Value>) -> Result<Response> {
    let g = member(&body, "group")?;
    let domain_id = g.str("domain_id")?.or_else(|| ctx.domain_id.clone()).unwrap_or_else(|| "default".into());
    s.enforce(&ctx, "identity:create_group", json!({"target.group.domain_id": domain_id}))?;
    let name = g.req_str("name", 64)?;
    let grp = user::create_group(
        &s.db,
        &domain_id,
        &name,
        g.str("description")?,
        &g.extra(&["id", "name", "domain_id", "description"]),
    )
    .await?;
    Ok(created(json!({"group": render(&s, &grp)})))
}

async fn show(S(s): S<State>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Response> {
    let g = user::get_group(&s.db, &id).await?;
    s.enforce(&ctx, "identity:get_group", target(&g))?;
    Ok(ok(json!({"group": render(&s, &g)})))
}

async fn update(S(s): S<State>, Auth(ctx): Auth, Path(id): Path<String>, Json(body): Json<Value>) -> Result<Response> {
    let cur = user::get_group(&s.db, &id).await?;
    s.enforce(&ctx, "identity:update_group", target(&cur))?;
    let g = member(&body, "group")?;
    if let Some(v) = g.get("domain_id")
        && v.as_str() != Some(cur.domain_id.as_str())
    {
        return Err(crate::error::bad("Invalid input for field 'group.domain_id': it cannot be changed."));
    }
    let desc = if g.has("description") { Some(g.str("description")?) } else { None };
    let grp = user::update_group(
        &s.db,
        &id,
        g.opt_name("name", 64)?,
        desc,
        &g.extra(&["id", "name", "domain_id", "description"]),
    )
    .await?;
    Ok(ok(json!({"group": render(&s, &grp)})))
}

async fn remove(S(s): S<State>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Response> {
    let g = user::get_group(&s.db, &id).await?;
    s.enforce(&ctx, "identity:delete_group", target(&g))?;
    user::delete_group(&s.db, &s.revocations, &id).await?;
    s.invalidate_tokens();
    Ok(no_content())
}

async fn members(S(s): S<State>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Response> {
    let g = user::get_group(&s.db, &id).await?;
    s.enforce(&ctx, "identity:list_users_in_group", target(&g))?;
    let ids = user::group_members(&s.db, &id).await?;
    let users = user::list(&s.db, &user::UserFilter { ids: Some(ids), ..Default::default() }).await?;
    let items = users.iter().map(|u| super::users::render(&s, u)).collect();
    Ok(ok(s.collection(&format!("groups/{id}/users"), "users", items)))
}

fn member_target(g: &user::Group, u: &user::User) -> Value {
    json!({"target.group.id": g.id, "target.group.domain_id": g.domain_id, "target.user.id": u.id, "target.user.domain_id": u.domain_id})
}

async fn check(S(s): S<State>, Auth(ctx): Auth, Path((gid, uid)): Path<(String, String)>) -> Result<Response> {
    let g = user::get_group(&s.db, &gid).await?;
    let u = user::get(&s.db, &uid).await?;
    s.enforce(&ctx, "identity:check_user_in_group", member_target(&g, &u))?;
    if user::is_member(&s.db, &gid, &uid).await? {
        Ok(no_content())
    } else {
        Err(IdentityError::NotFoundMsg(format!("User '{uid}' not found in group '{gid}'")))
    }
}

async fn add(S(s): S<State>, Auth(ctx): Auth, Path((gid, uid)): Path<(String, String)>) -> Result<Response> {
    let g = user::get_group(&s.db, &gid).await?;
    let u = user::get(&s.db, &uid).await?;
    s.enforce(&ctx, "identity:add_user_to_group", member_target(&g, &u))?;
    user::add_member(&s.db, &gid, &uid).await?;
    s.invalidate_tokens();
    Ok(no_content())
}

async fn remove_member(S(s): S<State>, Auth(ctx): Auth, Path((gid, uid)): Path<(String, String)>) -> Result<Response> {
    let g = user::get_group(&s.db, &gid).await?;
    let u = user::get(&s.db, &uid).await?;
    s.enforce(&ctx, "identity:remove_user_from_group", member_target(&g, &u))?;
    user::remove_member(&s.db, &s.revocations, &gid, &uid).await?;
    s.invalidate_tokens();
    Ok(no_content())
}
