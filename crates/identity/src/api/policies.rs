//! `/v3/policies`: policy blobs Keystone stores for other services (deprecated
//! upstream since Queens, still part of the API).

use axum::Router;
use axum::extract::{Path, State as S};
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};
use stratus_core::auth::Auth;
use stratus_core::extract::{Json, RawQuery};

use super::{created, no_content, ok};
use crate::error::{Result, bad};
use crate::store::misc::{self, Policy};
use crate::util::{Obj, member, with_extra};
use crate::{Identity, State};

pub fn routes() -> Router<State> {
    Router::new()
        .route("/v3/policies", get(list).post(create))
        .route("/v3/policies/{policy_id}", get(show).patch(update).delete(remove))
}

const KNOWN: &[&str] = &["id", "type", "blob", "links"];

pub fn render(s: &Identity, p: &Policy) -> Value {
    with_extra(
        json!({
            "id": p.id,
            "type": p.r#type,
            "blob": p.blob,
            "links": s.link(&format!("policies/{}", p.id)),
        }),
        &p.extra,
    )
}

/// An optional string attribute (not null), at most `max` characters.
fn string(o: &Obj, k: &str, max: Option<usize>) -> Result<Option<String>> {
    match o.get(k) {
        None => Ok(None),
        Some(Value::String(s)) if max.is_some_and(|m| s.chars().count() > m) => Err(bad(format!(
            "Invalid input for field '{}.{k}': longer than {} characters.",
            o.name,
            max.unwrap_or_default()
        ))),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(bad(format!("Invalid input for field '{}.{k}': expected a string.", o.name))),
    }
}

fn required(o: &Obj, k: &str, max: Option<usize>) -> Result<String> {
    string(o, k, max)?
        .ok_or_else(|| bad(format!("Invalid input for field '{}.{k}': '{k}' is a required property.", o.name)))
}

async fn list(S(s): S<State>, Auth(ctx): Auth, q: RawQuery) -> Result<Response> {
    s.enforce(&ctx, "identity:list_policies", json!({}))?;
    let policies = misc::list_policies(&s.db, q.get("type")).await?;
    let items = policies.iter().map(|p| render(&s, p)).collect();
    Ok(ok(s.collection("policies", "policies", items)))
}

async fn create(S(s): S<State>, Auth(ctx): Auth, Json(body): Json<Value>) -> Result<Response> {
    s.enforce(&ctx, "identity:create_policy", json!({}))?;
    let p = member(&body, "policy")?;
    let blob = required(&p, "blob", None)?;
    let kind = required(&p, "type", Some(255))?;
    let policy = misc::create_policy(&s.db, &kind, &blob, &p.extra(KNOWN)).await?;
    Ok(created(json!({"policy": render(&s, &policy)})))
}

async fn show(S(s): S<State>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Response> {
    s.enforce(&ctx, "identity:get_policy", json!({}))?;
    let p = misc::get_policy(&s.db, &id).await?;
    Ok(ok(json!({"policy": render(&s, &p)})))
}

async fn update(S(s): S<State>, Auth(ctx): Auth, Path(id): Path<String>, Json(body): Json<Value>) -> Result<Response> {
    s.enforce(&ctx, "identity:update_policy", json!({}))?;
    let p = member(&body, "policy")?;
    if p.map.is_empty() {
        return Err(bad("Invalid input for field 'policy': it must have at least one property."));
    }
    if let Some(v) = p.get("id")
        && v.as_str() != Some(id.as_str())
    {
        return Err(bad("Invalid input for field 'policy.id': it cannot be changed."));
    }
    let blob = string(&p, "blob", None)?;
    let kind = string(&p, "type", Some(255))?;
    let policy = misc::update_policy(&s.db, &id, kind, blob, &p.extra(KNOWN)).await?;
    Ok(ok(json!({"policy": render(&s, &policy)})))
}

async fn remove(S(s): S<State>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Response> {
    s.enforce(&ctx, "identity:delete_policy", json!({}))?;
    misc::delete_policy(&s.db, &id).await?;
    Ok(no_content())
}
