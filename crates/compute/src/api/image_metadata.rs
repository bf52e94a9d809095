//! `/images/{id}/metadata` (microversions 2.1–2.38): an image's custom
//! properties through Nova. Reads come from Glance; every write is one JSON
//! patch that makes Glance's properties equal the new set (Nova's
//! `purge_props`), after the `metadata_items` quota check (403 when over).

use axum::Router;
use axum::extract::{Path, State as S};
use axum::response::Response;
use axum::routing::get;
use serde_json::{Map, Value, json};
use stratus_core::auth::Auth;
use stratus_core::extract::Json;
use stratus_core::{AuthContext, Microversion};

use super::images::{check_version, fetch, image_error, tokens};
use super::resources::common::{self as c};
use super::server_meta::validate_items;
use super::servers::image_properties;
use super::{no_content, ok, project_of};
use crate::error::{ComputeError, Result, bad, not_found};
use crate::store::quotas;
use crate::{ComputeService, State};

pub fn routes() -> Router<State> {
    Router::new()
        .route("/v2.1/images/{id}/metadata", get(index).post(create).put(update_all))
        .route("/v2.1/images/{id}/metadata/{key}", get(show).put(update).delete(delete))
}

/// The metadata of a request body (`{"metadata": {...}}` or `{"meta": {...}}`), validated as Nova's schema.
fn metadata_body(body: &Value, key: &str) -> Result<Map<String, Value>> {
    let o = c::object(body, None)?;
    c::no_extra(o, None, &[key])?;
    let m = c::object(c::required(o, None, key)?, Some(key))?;
    validate_items(m)?;
    Ok(m.clone())
}

/// Nova's `check_img_metadata_properties_quota`: the whole set against `metadata_items`.
async fn check_quota(svc: &ComputeService, ctx: &AuthContext, m: &Map<String, Value>) -> Result<()> {
    if m.is_empty() {
        return Ok(());
    }
    let project = project_of(ctx)?;
    let limits = quotas::limits(&svc.db, &svc.cfg, project, Some(&ctx.user_id)).await?;
    let lim = limits.get("metadata_items").copied().unwrap_or(-1);
    if lim >= 0 && m.len() as i64 > lim {
        return Err(ComputeError::OverQuota("Image metadata limit exceeded".into()));
    }
    Ok(())
}

fn pointer(key: &str) -> String {
    format!("/{}", key.replace('~', "~0").replace('/', "~1"))
}

/// The JSON patch that turns the properties `old` into `new`: removes,
/// replaces and adds (Glance keeps property values as strings).
fn patch(old: &Map<String, Value>, new: &Map<String, Value>) -> Value {
    let mut ops: Vec<Value> = Vec::new();
    for k in old.keys() {
        if !new.contains_key(k) {
            ops.push(json!({"op": "remove", "path": pointer(k)}));
        }
    }
    for (k, v) in new {
        let v = match v {
            Value::String(_) | Value::Null => v.clone(),
            other => Value::String(c::py_str(other)),
        };
        match old.get(k) {
            Some(was) if *was == v => {}
            Some(_) => ops.push(json!({"op": "replace", "path": pointer(k), "value": v})),
            None => ops.push(json!({"op": "add", "path": pointer(k), "value": v})),
        }
    }
    Value::Array(ops)
}

/// Make the image's properties `new`; Glance's answer.
async fn save(
    svc: &ComputeService,
    ctx: &AuthContext,
    id: &str,
    old: &Map<String, Value>,
    new: &Map<String, Value>,
) -> Result<Value> {
    let ops = patch(old, new);
    if ops.as_array().is_some_and(Vec::is_empty) {
        return fetch(svc, ctx, id).await;
    }
    let service = tokens(svc).await?;
    svc.deps()?.images.update(id, &ops, &ctx.token, service.as_deref()).await.map_err(image_error)
}

async fn index(S(svc): S<State>, Auth(ctx): Auth, mv: Microversion, Path(id): Path<String>) -> Result<Response> {
    check_version(mv, 38)?;
    let img = fetch(&svc, &ctx, &id).await?;
    Ok(ok(json!({"metadata": image_properties(&img)})))
}

async fn show(
    S(svc): S<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    Path((id, key)): Path<(String, String)>,
) -> Result<Response> {
    check_version(mv, 38)?;
    let img = fetch(&svc, &ctx, &id).await?;
    match image_properties(&img).get(&key) {
        Some(v) => Ok(ok(json!({"meta": {key: v}}))),
        None => Err(not_found("The resource could not be found.")),
    }
}

/// `POST`: merge into the properties.
async fn create(
    S(svc): S<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response> {
    check_version(mv, 38)?;
    let add = metadata_body(&body, "metadata")?;
    let img = fetch(&svc, &ctx, &id).await?;
    let old = image_properties(&img);
    let mut new = old.clone();
    new.extend(add);
    check_quota(&svc, &ctx, &new).await?;
    let saved = save(&svc, &ctx, &id, &old, &new).await?;
    Ok(ok(json!({"metadata": image_properties(&saved)})))
}

/// `PUT`: the properties become exactly these.
async fn update_all(
    S(svc): S<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response> {
    check_version(mv, 38)?;
    let new = metadata_body(&body, "metadata")?;
    let img = fetch(&svc, &ctx, &id).await?;
    check_quota(&svc, &ctx, &new).await?;
    save(&svc, &ctx, &id, &image_properties(&img), &new).await?;
    Ok(ok(json!({"metadata": new})))
}

/// `PUT /{key}`: one property, named in the path and the body alike.
async fn update(
    S(svc): S<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    Path((id, key)): Path<(String, String)>,
    Json(body): Json<Value>,
) -> Result<Response> {
    check_version(mv, 38)?;
    let meta = metadata_body(&body, "meta")?;
    if meta.len() != 1 {
        let n = if meta.is_empty() { "does not have enough properties" } else { "has too many properties" };
        return Err(c::invalid("meta", &body["meta"], &format!("{} {n}", c::py_repr(&body["meta"]))));
    }
    let Some(value) = meta.get(&key) else {
        return Err(bad("Request body and URI mismatch"));
    };
    let img = fetch(&svc, &ctx, &id).await?;
    let old = image_properties(&img);
    let mut new = old.clone();
    new.insert(key.clone(), value.clone());
    check_quota(&svc, &ctx, &new).await?;
    save(&svc, &ctx, &id, &old, &new).await?;
    Ok(ok(json!({"meta": meta})))
}

async fn delete(
    S(svc): S<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    Path((id, key)): Path<(String, String)>,
) -> Result<Response> {
    check_version(mv, 38)?;
    let img = fetch(&svc, &ctx, &id).await?;
    let old = image_properties(&img);
    if !old.contains_key(&key) {
        return Err(not_found("Invalid metadata key"));
    }
    let mut new = old.clone();
    new.remove(&key);
    save(&svc, &ctx, &id, &old, &new).await?;
    Ok(no_content())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn a_patch_makes_the_properties_the_new_set() {
        let old = map(json!({"a": "1", "b": "2", "c": "3"}));
        let new = map(json!({"a": "1", "b": "two", "d": "4"}));
        let p = patch(&old, &new);
        assert_eq!(
            p,
            json!([
                {"op": "remove", "path": "/c"},
                {"op": "replace", "path": "/b", "value": "two"},
                {"op": "add", "path": "/d", "value": "4"},
            ])
        );
        assert_eq!(patch(&old, &old), json!([]));
        assert_eq!(pointer("a/b~c"), "/a~1b~0c");
    }
}
