//! Server metadata (`/servers/{id}/metadata`) and tags (`/servers/{id}/tags`, 2.26+).

use axum::Router;
use axum::extract::{Path, State as S};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value, json};
use stratus_core::auth::Auth;
use stratus_core::extract::Json;
use stratus_core::{AuthContext, Microversion};

use super::resources::common::{self as c, invalid, py_repr};
use super::servers::visible;
use super::{authorize, is_admin, no_content, ok, project_target};
use crate::error::{ComputeError, Result, bad, conflict, invalid_state, not_found};
use crate::model::vm;
use crate::store::instances::{self, Change, Expect, Instance};
use crate::store::quotas;
use crate::{ComputeService, State};

pub fn routes() -> Router<State> {
    Router::new()
        .route("/v2.1/servers/{id}/metadata", get(meta_index).post(meta_merge).put(meta_replace))
        .route("/v2.1/servers/{id}/metadata/{key}", get(meta_show).put(meta_put).delete(meta_delete))
        .route("/v2.1/servers/{id}/tags", get(tags_index).put(tags_replace).delete(tags_clear))
        .route("/v2.1/servers/{id}/tags/{tag}", get(tag_show).put(tag_add).delete(tag_delete))
}

const MAX_TAGS: usize = 50;

/// Tags as Nova validates them: up to 50, each 1-60 characters without `/` or `,`.
pub fn parse_tags(field: &str, v: &Value) -> Result<Vec<String>> {
    let a = v.as_array().ok_or_else(|| invalid(field, v, &format!("{} is not of type 'array'", py_repr(v))))?;
    if a.len() > MAX_TAGS {
        return Err(invalid(field, v, &format!("{} is too long", py_repr(v))));
    }
    let mut out: Vec<String> = Vec::new();
    for t in a {
        out.push(tag_value(field, t)?);
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn tag_value(field: &str, t: &Value) -> Result<String> {
    let s = c::string(field, t, 1, 60)?;
    if s.contains('/') || s.contains(',') {
        return Err(invalid(field, t, &format!("{} does not match '^[^,/]*$'", py_repr(t))));
    }
    Ok(s.to_string())
}

fn metadata_of(i: &Instance) -> Map<String, Value> {
    serde_json::from_str(&i.metadata).unwrap_or_default()
}

/// Metadata and tags may change when the server is settled (Nova's state check) and not locked.
fn check_writable(svc: &ComputeService, ctx: &AuthContext, i: &Instance, action: &str) -> Result<()> {
    if i.locked && !is_admin(svc, ctx) {
        return Err(conflict(format!("Instance {} is locked", i.uuid)));
    }
    const OK: &[&str] =
        &[vm::ACTIVE, vm::BUILDING, vm::PAUSED, vm::SUSPENDED, vm::STOPPED, vm::SHELVED, vm::SHELVED_OFFLOADED];
    if !OK.contains(&i.vm_state.as_str()) {
        return Err(invalid_state(action, &i.uuid, "vm_state", &i.vm_state));
    }
    Ok(())
}

/// Nova's `metadata` schema: keys of 1-255 characters, string values of at most 255.
pub(crate) fn validate_items(m: &Map<String, Value>) -> Result<()> {
    for (k, v) in m {
        if k.is_empty() || k.chars().count() > 255 {
            return Err(invalid(
                "metadata",
                &json!(m),
                &format!("'{k}' does not match any of the regexes: '^[a-zA-Z0-9-_:. ]{{1,255}}$'"),
            ));
        }
        match v.as_str() {
            Some(s) if s.chars().count() <= 255 => {}
            Some(_) => return Err(invalid(&format!("metadata/{k}"), v, &format!("{} is too long", py_repr(v)))),
            None => {
                return Err(invalid(&format!("metadata/{k}"), v, &format!("{} is not of type 'string'", py_repr(v))));
            }
        }
    }
    Ok(())
}

async fn check_quota(svc: &ComputeService, i: &Instance, n: usize) -> Result<()> {
    let limits = quotas::limits(&svc.db, &svc.cfg, &i.project_id, Some(&i.user_id)).await?;
    let lim = limits.get("metadata_items").copied().unwrap_or(-1);
    if lim >= 0 && n as i64 > lim {
        return Err(ComputeError::OverQuota(format!(
            "Quota exceeded for metadata_items: Requested {n}, but already used 0 of {lim} metadata_items"
        )));
    }
    Ok(())
}

async fn save(svc: &ComputeService, i: &Instance, m: &Map<String, Value>) -> Result<()> {
    instances::update(
        &svc.db,
        &i.uuid,
        &Expect::live(),
        Change { metadata: Some(Value::Object(m.clone()).to_string()), ..Default::default() },
    )
    .await?;
    Ok(())
}

async fn meta_index(S(svc): S<State>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Response> {
    let i = visible(&svc, &ctx, &id).await?;
    authorize(&svc, &ctx, "os_compute_api:server-metadata:index", &project_target(&i.project_id))?;
    Ok(ok(json!({"metadata": metadata_of(&i)})))
}

async fn meta_body(
    svc: &ComputeService,
    ctx: &AuthContext,
    id: &str,
    rule: &str,
    body: &Value,
    key: &str,
) -> Result<(Instance, Map<String, Value>)> {
    let i = visible(svc, ctx, id).await?;
    authorize(svc, ctx, rule, &project_target(&i.project_id))?;
    let m = c::the_object(body, key)?.clone();
    validate_items(&m)?;
    check_writable(svc, ctx, &i, "update metadata")?;
    Ok((i, m))
}

async fn meta_merge(
    S(svc): S<State>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response> {
    let (i, m) = meta_body(&svc, &ctx, &id, "os_compute_api:server-metadata:create", &body, "metadata").await?;
    let mut all = metadata_of(&i);
    all.extend(m);
    check_quota(&svc, &i, all.len()).await?;
    save(&svc, &i, &all).await?;
    Ok(ok(json!({"metadata": all})))
}

async fn meta_replace(
    S(svc): S<State>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response> {
    let (i, m) = meta_body(&svc, &ctx, &id, "os_compute_api:server-metadata:update_all", &body, "metadata").await?;
    check_quota(&svc, &i, m.len()).await?;
    save(&svc, &i, &m).await?;
    Ok(ok(json!({"metadata": m})))
}

async fn meta_show(S(svc): S<State>, Auth(ctx): Auth, Path((id, key)): Path<(String, String)>) -> Result<Response> {
    let i = visible(&svc, &ctx, &id).await?;
    authorize(&svc, &ctx, "os_compute_api:server-metadata:show", &project_target(&i.project_id))?;
    let m = metadata_of(&i);
    let v = m.get(&key).ok_or_else(|| not_found("Metadata item was not found"))?;
    Ok(ok(json!({"meta": {key: v}})))
}

async fn meta_put(
    S(svc): S<State>,
    Auth(ctx): Auth,
    Path((id, key)): Path<(String, String)>,
    Json(body): Json<Value>,
) -> Result<Response> {
    let (i, m) = meta_body(&svc, &ctx, &id, "os_compute_api:server-metadata:update", &body, "meta").await?;
    if m.len() > 1 {
        return Err(bad("Request body contains too many items"));
    }
    let Some((k, v)) = m.iter().next() else {
        return Err(bad("Malformed request body"));
    };
    if k != &key {
        return Err(bad("Request body and URI mismatch"));
    }
    let mut all = metadata_of(&i);
    all.insert(k.clone(), v.clone());
    check_quota(&svc, &i, all.len()).await?;
    save(&svc, &i, &all).await?;
    Ok(ok(json!({"meta": m})))
}

async fn meta_delete(S(svc): S<State>, Auth(ctx): Auth, Path((id, key)): Path<(String, String)>) -> Result<Response> {
    let i = visible(&svc, &ctx, &id).await?;
    authorize(&svc, &ctx, "os_compute_api:server-metadata:delete", &project_target(&i.project_id))?;
    let mut all = metadata_of(&i);
    if all.remove(&key).is_none() {
        return Err(not_found("Metadata item was not found"));
    }
    check_writable(&svc, &ctx, &i, "delete metadata")?;
    save(&svc, &i, &all).await?;
    Ok(no_content())
}

// ---- tags

fn tags_version(mv: Microversion) -> Result<()> {
    if mv.at_least(2, 26) { Ok(()) } else { Err(c::version_not_found()) }
}

async fn current_tags(svc: &ComputeService, uuid: &str) -> Result<Vec<String>> {
    Ok(instances::tags(&svc.db, &[uuid.to_string()]).await?.remove(uuid).unwrap_or_default())
}

async fn tags_index(S(svc): S<State>, Auth(ctx): Auth, mv: Microversion, Path(id): Path<String>) -> Result<Response> {
    tags_version(mv)?;
    let i = visible(&svc, &ctx, &id).await?;
    authorize(&svc, &ctx, "os_compute_api:os-server-tags:index", &project_target(&i.project_id))?;
    Ok(ok(json!({"tags": current_tags(&svc, &id).await?})))
}

async fn tags_replace(
    S(svc): S<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response> {
    tags_version(mv)?;
    let i = visible(&svc, &ctx, &id).await?;
    authorize(&svc, &ctx, "os_compute_api:os-server-tags:update_all", &project_target(&i.project_id))?;
    let o = c::object(&body, None)?;
    c::no_extra(o, None, &["tags"])?;
    let tags = parse_tags("tags", c::required(o, None, "tags")?)?;
    check_writable(&svc, &ctx, &i, "update tags")?;
    instances::set_tags(&svc.db.write, &id, &tags).await?;
    Ok(ok(json!({"tags": tags})))
}

async fn tags_clear(S(svc): S<State>, Auth(ctx): Auth, mv: Microversion, Path(id): Path<String>) -> Result<Response> {
    tags_version(mv)?;
    let i = visible(&svc, &ctx, &id).await?;
    authorize(&svc, &ctx, "os_compute_api:os-server-tags:delete_all", &project_target(&i.project_id))?;
    check_writable(&svc, &ctx, &i, "delete tags")?;
    instances::set_tags(&svc.db.write, &id, &[]).await?;
    Ok(no_content())
}

async fn tag_show(
    S(svc): S<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    Path((id, tag)): Path<(String, String)>,
) -> Result<Response> {
    tags_version(mv)?;
    let i = visible(&svc, &ctx, &id).await?;
    authorize(&svc, &ctx, "os_compute_api:os-server-tags:show", &project_target(&i.project_id))?;
    if current_tags(&svc, &id).await?.contains(&tag) {
        Ok(no_content())
    } else {
        Err(not_found(format!("Tag '{tag}' could not be found for instance {id}.")))
    }
}

async fn tag_add(
    S(svc): S<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    Path((id, tag)): Path<(String, String)>,
) -> Result<Response> {
    tags_version(mv)?;
    let i = visible(&svc, &ctx, &id).await?;
    authorize(&svc, &ctx, "os_compute_api:os-server-tags:update", &project_target(&i.project_id))?;
    let tag = tag_value("tag", &json!(tag))?;
    check_writable(&svc, &ctx, &i, "update tag")?;
    let have = current_tags(&svc, &id).await?;
    if have.contains(&tag) {
        return Ok(no_content());
    }
    if have.len() >= MAX_TAGS {
        return Err(bad(format!("The number of tags exceeded the per-server limit {MAX_TAGS}")));
    }
    instances::add_tag(&svc.db.write, &id, &tag).await?;
    let mut resp = StatusCode::CREATED.into_response();
    if let Ok(v) = axum::http::HeaderValue::from_str(&format!("{}/v2.1/servers/{id}/tags/{tag}", svc.base_url)) {
        resp.headers_mut().insert(axum::http::header::LOCATION, v);
    }
    Ok(resp)
}

async fn tag_delete(
    S(svc): S<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    Path((id, tag)): Path<(String, String)>,
) -> Result<Response> {
    tags_version(mv)?;
    let i = visible(&svc, &ctx, &id).await?;
    authorize(&svc, &ctx, "os_compute_api:os-server-tags:delete", &project_target(&i.project_id))?;
    check_writable(&svc, &ctx, &i, "delete tag")?;
    if instances::delete_tag(&svc.db, &id, &tag).await? {
        Ok(no_content())
    } else {
        Err(not_found(format!("Tag '{tag}' could not be found for instance {id}.")))
    }
}
