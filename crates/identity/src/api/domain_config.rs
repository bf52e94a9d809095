//! Domain-specific configuration: `/v3/domains/{domain_id}/config[/{group}[/{option}]]`
//! and the defaults, `/v3/domains/config[/{group}[/{option}]]/default`.

use axum::Router;
use axum::extract::{Path, State as S};
use axum::response::Response;
use axum::routing::get;
use serde_json::{Map, Value, json};
use stratus_core::AuthContext;
use stratus_core::auth::Auth;
use stratus_core::extract::Json;

use super::{created, no_content, ok};
use crate::error::Result;
use crate::store::domain_config::{self, SECURITY_COMPLIANCE};
use crate::store::resource;
use crate::util::member;
use crate::{Identity, State};

pub fn routes() -> Router<State> {
    Router::new()
        .route("/v3/domains/{domain_id}/config", get(show_all).put(create).patch(update_all).delete(delete_all))
        .route("/v3/domains/{domain_id}/config/{group}", get(show_group).patch(update_group).delete(delete_group))
        .route(
            "/v3/domains/{domain_id}/config/{group}/{option}",
            get(show_option).patch(update_option).delete(delete_option),
        )
        .route("/v3/domains/config/default", get(default_all))
        .route("/v3/domains/config/{group}/default", get(default_group))
        .route("/v3/domains/config/{group}/{option}/default", get(default_option))
}

fn target(domain_id: &str) -> Value {
    json!({"target.domain.id": domain_id})
}

fn render(config: Map<String, Value>) -> Value {
    json!({"config": config})
}

/// The request's `config` object.
fn body_config(body: &Value) -> Result<Map<String, Value>> {
    Ok(member(body, "config")?.map.clone())
}

// ---- reading

async fn show(
    s: &Identity,
    ctx: &AuthContext,
    domain_id: &str,
    group: Option<&str>,
    option: Option<&str>,
) -> Result<Response> {
    // like Keystone: authorize before telling whether the domain exists
    if group == Some(SECURITY_COMPLIANCE) {
        s.enforce(ctx, "identity:get_security_compliance_domain_config", target(domain_id))?;
        resource::get_domain(&s.db, domain_id).await?;
        return Ok(ok(render(domain_config::security_compliance(domain_id, option)?)));
    }
    s.enforce(ctx, "identity:get_domain_config", target(domain_id))?;
    resource::get_domain(&s.db, domain_id).await?;
    let config = domain_config::get(&s.db, domain_id, group, option).await?;
    Ok(ok(render(config)))
}

async fn show_all(S(s): S<State>, Auth(ctx): Auth, Path(domain_id): Path<String>) -> Result<Response> {
    show(&s, &ctx, &domain_id, None, None).await
}

async fn show_group(
    S(s): S<State>,
    Auth(ctx): Auth,
    Path((domain_id, group)): Path<(String, String)>,
) -> Result<Response> {
    show(&s, &ctx, &domain_id, Some(&group), None).await
}

async fn show_option(
    S(s): S<State>,
    Auth(ctx): Auth,
    Path((domain_id, group, option)): Path<(String, String, String)>,
) -> Result<Response> {
    show(&s, &ctx, &domain_id, Some(&group), Some(&option)).await
}

// ---- creating (PUT replaces the whole configuration)

async fn create(
    S(s): S<State>,
    Auth(ctx): Auth,
    Path(domain_id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response> {
    s.enforce(&ctx, "identity:create_domain_config", target(&domain_id))?;
    resource::get_domain(&s.db, &domain_id).await?;
    let config = body_config(&body)?;
    let (stored, existed) = domain_config::create(&s.db, &domain_id, &config).await?;
    Ok(if existed { ok(render(stored)) } else { created(render(stored)) })
}

// ---- updating

async fn update(
    s: &Identity,
    ctx: &AuthContext,
    domain_id: &str,
    body: &Value,
    group: Option<&str>,
    option: Option<&str>,
) -> Result<Response> {
    s.enforce(ctx, "identity:update_domain_config", target(domain_id))?;
    resource::get_domain(&s.db, domain_id).await?;
    let config = body_config(body)?;
    let stored = domain_config::update(&s.db, domain_id, &config, group, option).await?;
    Ok(ok(render(stored)))
}

async fn update_all(
    S(s): S<State>,
    Auth(ctx): Auth,
    Path(domain_id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response> {
    update(&s, &ctx, &domain_id, &body, None, None).await
}

async fn update_group(
    S(s): S<State>,
    Auth(ctx): Auth,
    Path((domain_id, group)): Path<(String, String)>,
    Json(body): Json<Value>,
) -> Result<Response> {
    update(&s, &ctx, &domain_id, &body, Some(&group), None).await
}

async fn update_option(
    S(s): S<State>,
    Auth(ctx): Auth,
    Path((domain_id, group, option)): Path<(String, String, String)>,
    Json(body): Json<Value>,
) -> Result<Response> {
    update(&s, &ctx, &domain_id, &body, Some(&group), Some(&option)).await
}

// ---- deleting

async fn delete(
    s: &Identity,
    ctx: &AuthContext,
    domain_id: &str,
    group: Option<&str>,
    option: Option<&str>,
) -> Result<Response> {
    s.enforce(ctx, "identity:delete_domain_config", target(domain_id))?;
    resource::get_domain(&s.db, domain_id).await?;
    domain_config::delete(&s.db, domain_id, group, option).await?;
    Ok(no_content())
}

async fn delete_all(S(s): S<State>, Auth(ctx): Auth, Path(domain_id): Path<String>) -> Result<Response> {
    delete(&s, &ctx, &domain_id, None, None).await
}

async fn delete_group(
    S(s): S<State>,
    Auth(ctx): Auth,
    Path((domain_id, group)): Path<(String, String)>,
) -> Result<Response> {
    delete(&s, &ctx, &domain_id, Some(&group), None).await
}

async fn delete_option(
    S(s): S<State>,
    Auth(ctx): Auth,
    Path((domain_id, group, option)): Path<(String, String, String)>,
) -> Result<Response> {
    delete(&s, &ctx, &domain_id, Some(&group), Some(&option)).await
}

// ---- defaults

fn defaults(s: &Identity, ctx: &AuthContext, group: Option<&str>, option: Option<&str>) -> Result<Response> {
    s.enforce(ctx, "identity:get_domain_config_default", json!({}))?;
    Ok(ok(render(domain_config::defaults(group, option)?)))
}

async fn default_all(S(s): S<State>, Auth(ctx): Auth) -> Result<Response> {
    defaults(&s, &ctx, None, None)
}

async fn default_group(S(s): S<State>, Auth(ctx): Auth, Path(group): Path<String>) -> Result<Response> {
    defaults(&s, &ctx, Some(&group), None)
}

async fn default_option(
    S(s): S<State>,
    Auth(ctx): Auth,
    Path((group, option)): Path<(String, String)>,
) -> Result<Response> {
    defaults(&s, &ctx, Some(&group), Some(&option))
}
