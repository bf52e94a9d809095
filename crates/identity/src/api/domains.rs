//! `/v3/domains`

use axum::Router;
use axum::extract::{Path, State as S};
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};
use stratus_core::auth::Auth;
use stratus_core::extract::{Json, RawQuery};

use super::{bool_filter, created, no_content, ok};
use crate::error::Result;
use crate::store::resource::{self, NewProject, Project, ProjectUpdate};
use crate::util::{member, with_extra};
use crate::{Identity, State};

pub fn routes() -> Router<State> {
    Router::new()
        .route("/v3/domains", get(list).post(create))
        .route("/v3/domains/{domain_id}", get(show).patch(update).delete(remove))
}

pub fn render(s: &Identity, d: &Project) -> Value {
    with_extra(
        json!({
            "id": d.id,
            "name": d.name,
            "description": d.description.clone().unwrap_or_default(),
            "enabled": d.enabled,
            "tags": [],
            "options": {},
            "links": s.link(&format!("domains/{}", d.id)),
        }),
        &d.extra,
    )
}

async fn list(S(s): S<State>, Auth(ctx): Auth, q: RawQuery) -> Result<Response> {
    s.enforce(&ctx, "identity:list_domains", json!({}))?;
    let domains = resource::list_domains(&s.db, q.get("name"), bool_filter(&q, "enabled")).await?;
    let items = domains.iter().map(|d| render(&s, d)).collect();
    Ok(ok(s.collection("domains", "domains", items)))
}

async fn create(S(s): S<State>, Auth(ctx): Auth, Json(body): Json<Value>) -> Result<Response> {
    s.enforce(&ctx, "identity:create_domain", json!({}))?;
    let d = member(&body, "domain")?;
    let new = NewProject {
        id: d.str("explicit_domain_id")?,
        name: d.req_str("name", 64)?,
        domain_id: None,
        parent_id: None,
        is_domain: true,
        enabled: d.bool("enabled")?.unwrap_or(true),
        description: d.str("description")?,
        tags: Vec::new(),
        extra: d.extra(&["id", "name", "enabled", "description", "explicit_domain_id", "tags", "options"]),
    };
    let dom = resource::create(&s.db, new).await?;
    Ok(created(json!({"domain": render(&s, &dom)})))
}

async fn show(S(s): S<State>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Response> {
    let d = resource::get_domain(&s.db, &id).await?;
    s.enforce(&ctx, "identity:get_domain", json!({"target.domain.id": d.id}))?;
    Ok(ok(json!({"domain": render(&s, &d)})))
}

async fn update(S(s): S<State>, Auth(ctx): Auth, Path(id): Path<String>, Json(body): Json<Value>) -> Result<Response> {
    let cur = resource::get_domain(&s.db, &id).await?;
    s.enforce(&ctx, "identity:update_domain", json!({"target.domain.id": cur.id}))?;
    let d = member(&body, "domain")?;
    if let Some(v) = d.get("id")
        && v.as_str() != Some(id.as_str())
    {
        return Err(crate::error::bad("Invalid input for field 'domain.id': it cannot be changed."));
    }
    let u = ProjectUpdate {
        name: d.opt_name("name", 64)?,
        enabled: d.bool("enabled")?,
        description: if d.has("description") { Some(d.str("description")?) } else { None },
        tags: None,
        extra: d.extra(&["id", "name", "enabled", "description", "tags", "options"]),
    };
    let dom = resource::update(&s.db, &s.revocations, &id, u).await?;
    s.invalidate_tokens();
    Ok(ok(json!({"domain": render(&s, &dom)})))
}

async fn remove(S(s): S<State>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Response> {
    let d = resource::get_domain(&s.db, &id).await?;
    s.enforce(&ctx, "identity:delete_domain", json!({"target.domain.id": d.id}))?;
    resource::delete_domain(&s.db, &s.revocations, &id).await?;
    s.invalidate_tokens();
    Ok(no_content())
}
