//! `/v3/roles`, implied roles and `/v3/role_inferences`.

use axum::Router;
use axum::extract::{Path, State as S};
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};
use stratus_core::auth::Auth;
use stratus_core::extract::{Json, RawQuery};

use super::{created, no_content, ok};
use crate::error::{IdentityError, Result, bad};
use crate::store::assignment::{self, Role, role_domain};
use crate::util::{member, with_extra};
use crate::{Identity, State};

pub fn routes() -> Router<State> {
    Router::new()
        .route("/v3/roles", get(list).post(create))
        .route("/v3/roles/{role_id}", get(show).patch(update).delete(remove))
        .route("/v3/roles/{prior}/implies", get(list_implied))
        .route(
            "/v3/roles/{prior}/implies/{implied}",
            get(get_implied).head(check_implied).put(create_implied).delete(delete_implied),
        )
        .route("/v3/role_inferences", get(inferences))
}

pub fn render(s: &Identity, r: &Role) -> Value {
    let mut v = json!({
        "id": r.id,
        "name": r.name,
        "domain_id": role_domain(r),
        "options": crate::util::parse_extra(&r.options),
        "links": s.link(&format!("roles/{}", r.id)),
    });
    if let Some(d) = &r.description {
        v["description"] = json!(d);
    }
    with_extra(v, &r.extra)
}

fn brief(s: &Identity, r: &Role) -> Value {
    json!({"id": r.id, "name": r.name, "links": s.link(&format!("roles/{}", r.id))})
}

fn target(r: &Role) -> Value {
    json!({"target.role.id": r.id, "target.role.domain_id": role_domain(r), "target.role.name": r.name})
}

fn options_of(v: Option<&Value>) -> Result<Option<serde_json::Map<String, Value>>> {
    match v {
        None => Ok(None),
        Some(Value::Object(m)) => {
            for (k, val) in m {
                if k != "immutable" || !(val.is_boolean() || val.is_null()) {
                    return Err(bad(format!("Invalid input for field 'role.options.{k}'.")));
                }
            }
            Ok(Some(m.iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k.clone(), v.clone())).collect()))
        }
        Some(_) => Err(bad("Invalid input for field 'role.options': expected an object.")),
    }
}

async fn list(S(s): S<State>, Auth(ctx): Auth, q: RawQuery) -> Result<Response> {
    let rule = if q.has("domain_id") { "identity:list_domain_roles" } else { "identity:list_roles" };
    let mut t = json!({});
    if let Some(d) = q.get("domain_id") {
        t["target.domain_id"] = json!(d);
    }
    s.enforce(&ctx, rule, t)?;
    let roles = assignment::list_roles(&s.db, q.get("domain_id"), q.get("name")).await?;
    Ok(ok(s.collection("roles", "roles", roles.iter().map(|r| render(&s, r)).collect())))
}

async fn create(S(s): S<State>, Auth(ctx): Auth, Json(body): Json<Value>) -> Result<Response> {
    let r = member(&body, "role")?;
    let domain_id = r.str("domain_id")?;
    let rule = if domain_id.is_some() { "identity:create_domain_role" } else { "identity:create_role" };
    s.enforce(&ctx, rule, json!({"target.role.domain_id": domain_id}))?;
    let name = r.req_str("name", 255)?;
    let opts = options_of(r.get("options"))?.unwrap_or_default();
    let role = assignment::create_role(
        &s.db,
        None,
        &name,
        domain_id.as_deref(),
        r.str("description")?,
        &opts,
        &r.extra(&["id", "name", "domain_id", "description", "options"]),
    )
    .await?;
    Ok(created(json!({"role": render(&s, &role)})))
}

async fn show(S(s): S<State>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Response> {
    let r = assignment::get_role(&s.db, &id).await?;
    let rule = if role_domain(&r).is_some() { "identity:get_domain_role" } else { "identity:get_role" };
    s.enforce(&ctx, rule, target(&r))?;
    Ok(ok(json!({"role": render(&s, &r)})))
}

async fn update(S(s): S<State>, Auth(ctx): Auth, Path(id): Path<String>, Json(body): Json<Value>) -> Result<Response> {
    let cur = assignment::get_role(&s.db, &id).await?;
    let rule = if role_domain(&cur).is_some() { "identity:update_domain_role" } else { "identity:update_role" };
    s.enforce(&ctx, rule, target(&cur))?;
    let r = member(&body, "role")?;
    if let Some(v) = r.get("domain_id")
        && v.as_str() != role_domain(&cur)
    {
        return Err(bad("Invalid input for field 'role.domain_id': it cannot be changed."));
    }
    let desc = if r.has("description") { Some(r.str("description")?) } else { None };
    let opts = options_of(r.get("options"))?;
    let role = assignment::update_role(
        &s.db,
        &id,
        r.opt_name("name", 255)?,
        desc,
        opts.as_ref(),
        &r.extra(&["id", "name", "domain_id", "description", "options"]),
    )
    .await?;
    s.invalidate_tokens();
    Ok(ok(json!({"role": render(&s, &role)})))
}

async fn remove(S(s): S<State>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Response> {
    let r = assignment::get_role(&s.db, &id).await?;
    let rule = if role_domain(&r).is_some() { "identity:delete_domain_role" } else { "identity:delete_role" };
    s.enforce(&ctx, rule, target(&r))?;
    assignment::delete_role(&s.db, &s.revocations, &id).await?;
    s.invalidate_tokens();
    Ok(no_content())
}

async fn implied_body(s: &Identity, prior: &Role, implied: &[Role]) -> Value {
    json!({
        "role_inference": {
            "prior_role": brief(s, prior),
            "implies": implied.iter().map(|r| brief(s, r)).collect::<Vec<_>>(),
        },
        "links": s.link(&format!("roles/{}/implies", prior.id)),
    })
}

async fn list_implied(S(s): S<State>, Auth(ctx): Auth, Path(prior): Path<String>) -> Result<Response> {
    s.enforce(&ctx, "identity:list_implied_roles", json!({}))?;
    let p = assignment::get_role(&s.db, &prior).await?;
    let roles = assignment::all_roles(&s.db).await?;
    let implied: Vec<Role> = assignment::implications(&s.db)
        .await?
        .into_iter()
        .filter(|(a, _)| *a == prior)
        .filter_map(|(_, b)| roles.get(&b).cloned())
        .collect();
    Ok(ok(implied_body(&s, &p, &implied).await))
}

async fn get_implied(
    S(s): S<State>,
    Auth(ctx): Auth,
    Path((prior, implied)): Path<(String, String)>,
) -> Result<Response> {
    s.enforce(&ctx, "identity:get_implied_role", json!({}))?;
    let p = assignment::get_role(&s.db, &prior).await?;
    let i = assignment::get_role(&s.db, &implied).await?;
    if !assignment::implied_exists(&s.db, &prior, &implied).await? {
        return Err(IdentityError::NotFoundMsg(format!("{prior} does not imply {implied}.")));
    }
    Ok(ok(json!({
        "role_inference": {"prior_role": brief(&s, &p), "implies": brief(&s, &i)},
        "links": s.link(&format!("roles/{prior}/implies/{implied}")),
    })))
}

async fn check_implied(
    S(s): S<State>,
    Auth(ctx): Auth,
    Path((prior, implied)): Path<(String, String)>,
) -> Result<Response> {
    s.enforce(&ctx, "identity:check_implied_role", json!({}))?;
    assignment::get_role(&s.db, &prior).await?;
    assignment::get_role(&s.db, &implied).await?;
    if !assignment::implied_exists(&s.db, &prior, &implied).await? {
        return Err(IdentityError::NotFoundMsg(format!("{prior} does not imply {implied}.")));
    }
    Ok(no_content())
}

async fn create_implied(
    S(s): S<State>,
    Auth(ctx): Auth,
    Path((prior, implied)): Path<(String, String)>,
) -> Result<Response> {
    s.enforce(&ctx, "identity:create_implied_role", json!({}))?;
    assignment::create_implied(&s.db, &prior, &implied).await?;
    s.invalidate_tokens();
    let p = assignment::get_role(&s.db, &prior).await?;
    let i = assignment::get_role(&s.db, &implied).await?;
    Ok(created(json!({
        "role_inference": {"prior_role": brief(&s, &p), "implies": brief(&s, &i)},
        "links": s.link(&format!("roles/{prior}/implies/{implied}")),
    })))
}

async fn delete_implied(
    S(s): S<State>,
    Auth(ctx): Auth,
    Path((prior, implied)): Path<(String, String)>,
) -> Result<Response> {
    s.enforce(&ctx, "identity:delete_implied_role", json!({}))?;
    assignment::delete_implied(&s.db, &prior, &implied).await?;
    s.invalidate_tokens();
    Ok(no_content())
}

async fn inferences(S(s): S<State>, Auth(ctx): Auth) -> Result<Response> {
    s.enforce(&ctx, "identity:list_role_inference_rules", json!({}))?;
    let roles = assignment::all_roles(&s.db).await?;
    let edges = assignment::implications(&s.db).await?;
    let mut priors: Vec<String> = edges.iter().map(|(a, _)| a.clone()).collect();
    priors.sort();
    priors.dedup();
    let mut out = Vec::new();
    for p in priors {
        let Some(pr) = roles.get(&p) else { continue };
        let implies: Vec<Value> =
            edges.iter().filter(|(a, _)| *a == p).filter_map(|(_, b)| roles.get(b)).map(|r| brief(&s, r)).collect();
        out.push(json!({"prior_role": brief(&s, pr), "implies": implies}));
    }
    Ok(ok(json!({"role_inferences": out, "links": s.link("role_inferences")})))
}
