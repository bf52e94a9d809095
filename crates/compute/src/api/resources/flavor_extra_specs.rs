//! `/flavors/{id}/os-extra_specs`: list, show (project readers), create or
//! merge, update one key, delete one key (admin). From 2.86 the keys and
//! values Nova knows are validated (`extra_spec_rules`).

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::{Path, State as S};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::StatusCode;
use serde_json::{Map, Value, json};
use stratus_core::AuthContext;
use stratus_core::Microversion;
use stratus_core::auth::Auth;
use stratus_core::extract::Json;

use super::common::{self, invalid, py_repr};
use super::extra_spec_rules;
use super::flavors::visible;
use crate::State;
use crate::api::{authorize, ok};
use crate::error::{ComputeError, Result, bad, not_found};
use crate::store::flavors;

pub fn routes() -> Router<State> {
    Router::new()
        .route("/v2.1/flavors/{id}/os-extra_specs", get(index).post(create))
        .route("/v2.1/flavors/{id}/os-extra_specs/{key}", get(show).put(update).delete(delete))
}

fn own_project(ctx: &AuthContext) -> Value {
    json!({"project_id": ctx.project_id, "user_id": ctx.user_id})
}

fn no_such_key(flavor_id: &str, key: &str) -> ComputeError {
    not_found(format!("Flavor {flavor_id} has no extra specs with key {key}."))
}

fn key_ok(k: &str) -> bool {
    let n = k.chars().count();
    (1..=255).contains(&n) && k.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_:. ".contains(&b))
}

/// Validate a map of extra specs (`parent` names it in messages) into strings.
fn specs_of(obj: &Map<String, Value>, parent: &str, mv: Microversion) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for (k, v) in obj {
        if !key_ok(k) {
            return Err(invalid(
                parent,
                &Value::Object(obj.clone()),
                &format!("'{k}' does not match any of the regexes: '^[a-zA-Z0-9-_:. ]{{1,255}}$'"),
            ));
        }
        let value = match v {
            Value::String(s) => {
                if s.chars().count() > 255 {
                    return Err(invalid(k, v, &format!("{} is too long", py_repr(v))));
                }
                common::no_nul(k, v, s)?;
                s.clone()
            }
            Value::Number(n) => {
                let s = n.to_string();
                if s.len() > 255 {
                    return Err(bad("Invalid input received: extra_specs value has more than 255 characters."));
                }
                s
            }
            other => return Err(invalid(k, other, &format!("{} is not of type 'string', 'number'", py_repr(other)))),
        };
        if mv.at_least(2, 86) {
            extra_spec_rules::validate(k, &value)?;
        }
        out.insert(k.clone(), value);
    }
    Ok(out)
}

async fn index(S(svc): S<State>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Response> {
    authorize(&svc, &ctx, "os_compute_api:os-flavor-extra-specs:index", &own_project(&ctx))?;
    let f = visible(&svc, &ctx, &id).await?;
    Ok(ok(json!({"extra_specs": f.extra_specs})))
}

async fn show(S(svc): S<State>, Auth(ctx): Auth, Path((id, key)): Path<(String, String)>) -> Result<Response> {
    authorize(&svc, &ctx, "os_compute_api:os-flavor-extra-specs:show", &own_project(&ctx))?;
    let f = visible(&svc, &ctx, &id).await?;
    let v = f.extra_specs.get(&key).ok_or_else(|| no_such_key(&id, &key))?;
    Ok(ok(json!({ key: v })))
}

async fn create(
    S(svc): S<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response> {
    authorize(&svc, &ctx, "os_compute_api:os-flavor-extra-specs:create", &json!({}))?;
    let specs = common::the_object(&body, "extra_specs")?;
    let specs = specs_of(specs, "extra_specs", mv)?;
    let f = visible(&svc, &ctx, &id).await?;
    if !specs.is_empty() {
        flavors::set_extra_specs(&svc.db, f.internal_id, &specs).await?;
    }
    // Nova answers with the request as given
    Ok(ok(body))
}

async fn update(
    S(svc): S<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    Path((id, key)): Path<(String, String)>,
    Json(body): Json<Value>,
) -> Result<Response> {
    authorize(&svc, &ctx, "os_compute_api:os-flavor-extra-specs:update", &json!({}))?;
    let obj = common::object(&body, None)?;
    if obj.is_empty() {
        return Err(bad("{} does not have enough properties"));
    }
    if obj.len() > 1 {
        return Err(bad(format!("{} has too many properties", py_repr(&body))));
    }
    let specs = specs_of(obj, "extra_specs", mv)?;
    if !specs.contains_key(&key) {
        return Err(bad("Request body and URI mismatch"));
    }
    let f = visible(&svc, &ctx, &id).await?;
    flavors::set_extra_specs(&svc.db, f.internal_id, &specs).await?;
    Ok(ok(body))
}

async fn delete(S(svc): S<State>, Auth(ctx): Auth, Path((id, key)): Path<(String, String)>) -> Result<Response> {
    authorize(&svc, &ctx, "os_compute_api:os-flavor-extra-specs:delete", &json!({}))?;
    let f = visible(&svc, &ctx, &id).await?;
    if !flavors::delete_extra_spec(&svc.db, f.internal_id, &key).await? {
        return Err(no_such_key(&id, &key));
    }
    // 200 with no body, as Nova answers
    Ok(StatusCode::OK.into_response())
}
