//! `/v3/projects` and project tags.

use axum::Router;
use axum::extract::{Path, State as S};
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};
use stratus_core::auth::Auth;
use stratus_core::extract::{Json, RawQuery};

use super::{bool_filter, created, flag, no_content, ok};
use crate::error::{Result, bad};
use crate::store::resource::{self, NewProject, Project, ProjectFilter, ProjectUpdate};
use crate::util::{member, with_extra};
use crate::{Identity, State};

pub fn routes() -> Router<State> {
    Router::new()
        .route("/v3/projects", get(list).post(create))
        .route("/v3/projects/{project_id}", get(show).patch(update).delete(remove))
        .route("/v3/projects/{project_id}/tags", get(list_tags).put(replace_tags).delete(clear_tags))
        .route("/v3/projects/{project_id}/tags/{tag}", get(check_tag).put(add_tag).delete(remove_tag))
}

pub fn render(s: &Identity, p: &Project, tags: Vec<String>) -> Value {
    let (domain_id, parent_id) = if p.is_domain && p.domain_id == crate::store::DOMAIN_ROOT {
        (Value::Null, Value::Null)
    } else {
        (json!(p.domain_id), json!(p.parent_id))
    };
    with_extra(
        json!({
            "id": p.id,
            "name": p.name,
            "domain_id": domain_id,
            "parent_id": parent_id,
            "description": p.description.clone().unwrap_or_default(),
            "enabled": p.enabled,
            "is_domain": p.is_domain,
            "tags": tags,
            "options": {},
            "links": s.link(&format!("projects/{}", p.id)),
        }),
        &p.extra,
    )
}

/// Attributes with a column of their own; the rest are kept as extra attributes.
const KNOWN: &[&str] =
    &["id", "name", "domain_id", "parent_id", "is_domain", "enabled", "description", "tags", "options"];

fn target(p: &Project) -> Value {
    json!({"target.project.id": p.id, "target.project.domain_id": p.domain_id})
}

fn tag_list(v: Option<&str>) -> Vec<String> {
    v.map(|s| s.split(',').filter(|t| !t.is_empty()).map(str::to_string).collect()).unwrap_or_default()
}

async fn list(S(s): S<State>, Auth(ctx): Auth, q: RawQuery) -> Result<Response> {
    let mut t = json!({});
    if let Some(d) = &ctx.domain_id {
        t["target.domain_id"] = json!(d);
    }
    s.enforce(&ctx, "identity:list_projects", t)?;
    let f = ProjectFilter {
        domain_id: q.get("domain_id").map(str::to_string).or_else(|| ctx.domain_id.clone()),
        name: q.get("name").map(str::to_string),
        enabled: bool_filter(&q, "enabled"),
        parent_id: q.get("parent_id").map(str::to_string),
        is_domain: bool_filter(&q, "is_domain"),
        ids: None,
    };
    let projects = resource::list_projects(&s.db, &f).await?;
    let all_tags = resource::projects_with_tags(&s.db).await?;
    let (tags, tags_any, not_tags, not_tags_any) = (
        tag_list(q.get("tags")),
        tag_list(q.get("tags-any")),
        tag_list(q.get("not-tags")),
        tag_list(q.get("not-tags-any")),
    );
    let mut items = Vec::new();
    for p in &projects {
        let pt = all_tags.get(&p.id).cloned().unwrap_or_default();
        let has = |t: &String| pt.contains(t);
        if !tags.is_empty() && !tags.iter().all(has) {
            continue;
        }
        if !tags_any.is_empty() && !tags_any.iter().any(has) {
            continue;
        }
        if !not_tags.is_empty() && not_tags.iter().all(has) {
            continue;
        }
        if !not_tags_any.is_empty() && not_tags_any.iter().any(has) {
            continue;
        }
        items.push(render(&s, p, pt));
    }
    Ok(ok(s.collection("projects", "projects", items)))
}

fn tags_of(v: Option<&Value>) -> Result<Vec<String>> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(a)) => a
            .iter()
            .map(|t| {
                t.as_str().map(str::to_string).ok_or_else(|| bad("Invalid input for field 'tags': expected strings."))
            })
            .collect(),
        Some(_) => Err(bad("Invalid input for field 'tags': expected a list.")),
    }
}

async fn create(S(s): S<State>, Auth(ctx): Auth, Json(body): Json<Value>) -> Result<Response> {
    let p = member(&body, "project")?;
    let domain_id = p.str("domain_id")?.or_else(|| ctx.domain_id.clone());
    let domain_id = match (domain_id, p.str("parent_id")?) {
        (Some(d), _) => Some(d),
        (None, Some(par)) => resource::get(&s.db, &par).await?.map(|x| if x.is_domain { x.id } else { x.domain_id }),
        (None, None) => Some(ctx.project_domain_id.clone().unwrap_or_else(|| "default".into())),
    };
    s.enforce(&ctx, "identity:create_project", json!({"target.project.domain_id": domain_id}))?;
    let new = NewProject {
        id: None,
        name: p.req_str("name", 64)?,
        domain_id,
        parent_id: p.str("parent_id")?,
        is_domain: p.bool("is_domain")?.unwrap_or(false),
        enabled: p.bool("enabled")?.unwrap_or(true),
        description: p.str("description")?,
        tags: tags_of(p.get("tags"))?,
        extra: p.extra(KNOWN),
    };
    let proj = resource::create(&s.db, new).await?;
    let tags = resource::tags(&s.db, &proj.id).await?;
    Ok(created(json!({"project": render(&s, &proj, tags)})))
}

async fn show(S(s): S<State>, Auth(ctx): Auth, Path(id): Path<String>, q: RawQuery) -> Result<Response> {
    let p = resource::get_project(&s.db, &id).await?;
    s.enforce(&ctx, "identity:get_project", target(&p))?;
    let tags = resource::tags(&s.db, &p.id).await?;
    let mut v = render(&s, &p, tags);
    if flag(&q, "parents_as_ids") {
        let parents = resource::parents(&s.db, &p).await?;
        let mut nested = Value::Null;
        for par in parents.iter().rev() {
            nested = json!({ par.id.clone(): nested });
        }
        v["parents"] = nested;
    }
    if flag(&q, "parents_as_list") {
        let parents = resource::parents(&s.db, &p).await?;
        v["parents"] = parents.iter().map(|x| json!({"project": render(&s, x, Vec::new())})).collect();
    }
    if flag(&q, "subtree_as_ids") {
        v["subtree"] = subtree_ids(&s, &p.id, 0).await?;
    }
    if flag(&q, "subtree_as_list") {
        let sub = resource::subtree(&s.db, &p.id).await?;
        v["subtree"] = sub.iter().map(|x| json!({"project": render(&s, x, Vec::new())})).collect();
    }
    Ok(ok(json!({"project": v})))
}

fn subtree_ids<'a>(s: &'a Identity, id: &'a str, depth: usize) -> futures::future::BoxFuture<'a, Result<Value>> {
    Box::pin(async move {
        let kids = resource::children(&s.db, id).await?;
        if kids.is_empty() || depth > 64 {
            return Ok(Value::Null);
        }
        let mut m = serde_json::Map::new();
        for k in kids {
            let sub = subtree_ids(s, &k.id, depth + 1).await?;
            m.insert(k.id, sub);
        }
        Ok(Value::Object(m))
    })
}

async fn update(S(s): S<State>, Auth(ctx): Auth, Path(id): Path<String>, Json(body): Json<Value>) -> Result<Response> {
    let cur = resource::get_project(&s.db, &id).await?;
    s.enforce(&ctx, "identity:update_project", target(&cur))?;
    let p = member(&body, "project")?;
    for k in ["domain_id", "is_domain", "parent_id", "id"] {
        if let Some(v) = p.get(k) {
            let same = match k {
                "domain_id" => v.as_str() == Some(cur.domain_id.as_str()),
                "is_domain" => v.as_bool() == Some(cur.is_domain),
                "parent_id" => v.as_str() == cur.parent_id.as_deref(),
                _ => v.as_str() == Some(cur.id.as_str()),
            };
            if !same {
                return Err(bad(format!("Invalid input for field 'project.{k}': it cannot be changed.")));
            }
        }
    }
    let u = ProjectUpdate {
        name: p.opt_name("name", 64)?,
        enabled: p.bool("enabled")?,
        description: if p.has("description") { Some(p.str("description")?) } else { None },
        tags: if p.has("tags") { Some(tags_of(p.get("tags"))?) } else { None },
        extra: p.extra(KNOWN),
    };
    let proj = resource::update(&s.db, &s.revocations, &id, u).await?;
    s.invalidate_tokens();
    let tags = resource::tags(&s.db, &proj.id).await?;
    Ok(ok(json!({"project": render(&s, &proj, tags)})))
}

async fn remove(S(s): S<State>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Response> {
    let p = resource::get_project(&s.db, &id).await?;
    s.enforce(&ctx, "identity:delete_project", target(&p))?;
    if p.is_domain {
        resource::delete_domain(&s.db, &s.revocations, &id).await?;
    } else {
        resource::delete_project(&s.db, &s.revocations, &id).await?;
    }
    s.invalidate_tokens();
    Ok(no_content())
}

async fn list_tags(S(s): S<State>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Response> {
    let p = resource::get_project(&s.db, &id).await?;
    s.enforce(&ctx, "identity:list_project_tags", target(&p))?;
    Ok(ok(json!({"tags": resource::tags(&s.db, &id).await?})))
}

async fn replace_tags(
    S(s): S<State>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response> {
    let p = resource::get_project(&s.db, &id).await?;
    s.enforce(&ctx, "identity:update_project_tags", target(&p))?;
    let tags = tags_of(body.get("tags"))?;
    let u = ProjectUpdate { tags: Some(tags), ..Default::default() };
    let proj = resource::update(&s.db, &s.revocations, &id, u).await?;
    let tags = resource::tags(&s.db, &proj.id).await?;
    Ok(ok(json!({"tags": tags})))
}

async fn clear_tags(S(s): S<State>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Response> {
    let p = resource::get_project(&s.db, &id).await?;
    s.enforce(&ctx, "identity:delete_project_tags", target(&p))?;
    let u = ProjectUpdate { tags: Some(Vec::new()), ..Default::default() };
    resource::update(&s.db, &s.revocations, &id, u).await?;
    Ok(no_content())
}

async fn check_tag(S(s): S<State>, Auth(ctx): Auth, Path((id, tag)): Path<(String, String)>) -> Result<Response> {
    let p = resource::get_project(&s.db, &id).await?;
    s.enforce(&ctx, "identity:get_project_tag", target(&p))?;
    if resource::tags(&s.db, &id).await?.contains(&tag) {
        Ok(no_content())
    } else {
        Err(crate::error::not_found("project tag", tag))
    }
}

async fn add_tag(S(s): S<State>, Auth(ctx): Auth, Path((id, tag)): Path<(String, String)>) -> Result<Response> {
    let p = resource::get_project(&s.db, &id).await?;
    s.enforce(&ctx, "identity:create_project_tag", target(&p))?;
    resource::add_tag(&s.db, &id, &tag).await?;
    let mut r = created(Value::Null);
    *r.body_mut() = axum::body::Body::empty();
    r.headers_mut().remove(axum::http::header::CONTENT_TYPE);
    if let Ok(v) = axum::http::HeaderValue::from_str(&format!("{}/v3/projects/{id}/tags/{tag}", s.base_url)) {
        r.headers_mut().insert(axum::http::header::LOCATION, v);
    }
    Ok(r)
}

async fn remove_tag(S(s): S<State>, Auth(ctx): Auth, Path((id, tag)): Path<(String, String)>) -> Result<Response> {
    let p = resource::get_project(&s.db, &id).await?;
    s.enforce(&ctx, "identity:delete_project_tag", target(&p))?;
    if resource::remove_tag(&s.db, &id, &tag).await? {
        Ok(no_content())
    } else {
        Err(crate::error::not_found("project tag", tag))
    }
}
