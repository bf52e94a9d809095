//! QoS specs (`/v3/qos-specs`): list, show, create, set keys (PUT), delete
//! (`?force=`), `delete_keys`, and the volume type associations
//! (`associate`, `disassociate`, `disassociate_all` by GET with
//! `?vol_type_id=`, and `associations`).

use axum::Router;
use axum::extract::{Path, State as AxState};
use axum::response::Response;
use axum::routing::{get, put};
use serde_json::{Map, Value, json};
use stratus_core::AuthContext;
use stratus_core::auth::Auth;
use stratus_core::extract::RawQuery;

use crate::api::list::{self, ListQuery};
use crate::api::types::{specs_from, type_not_found};
use crate::api::{Body, accepted_empty, authorize, ok, project_of};
use crate::entity::qos_spec;
use crate::error::{Result, VolumeError, bad, not_found};
use crate::store::{qos as store, types as type_store};
use crate::{State, VolumeService};

pub fn routes() -> Router<State> {
    Router::new()
        .route("/v3/qos-specs", get(index).post(create))
        .route("/v3/qos-specs/{id}", get(show).put(update).delete(delete))
        .route("/v3/qos-specs/{id}/delete_keys", put(delete_keys))
        .route("/v3/qos-specs/{id}/associations", get(associations))
        .route("/v3/qos-specs/{id}/associate", get(associate))
        .route("/v3/qos-specs/{id}/disassociate", get(disassociate))
        .route("/v3/qos-specs/{id}/disassociate_all", get(disassociate_all))
}

const CREATE_POLICY: &str = "volume_extension:qos_specs_manage:create";
const GET_POLICY: &str = "volume_extension:qos_specs_manage:get";
const GET_ALL_POLICY: &str = "volume_extension:qos_specs_manage:get_all";
const UPDATE_POLICY: &str = "volume_extension:qos_specs_manage:update";
const DELETE_POLICY: &str = "volume_extension:qos_specs_manage:delete";

const CONSUMERS: &[&str] = &["front-end", "back-end", "both"];

fn qos_not_found(id: &str) -> VolumeError {
    not_found(format!("No such QoS spec {id}."))
}

fn render(q: &qos_spec::Model) -> Value {
    json!({"id": q.id, "name": q.name, "consumer": q.consumer, "specs": store::specs(q)})
}

fn links(svc: &VolumeService, ctx: &AuthContext, id: &str) -> Value {
    let project = project_of(ctx);
    let (v3, bookmark) = if project.is_empty() {
        (format!("{}/v3/qos-specs/{id}", svc.base_url), format!("{}/qos-specs/{id}", svc.base_url))
    } else {
        (format!("{}/v3/{project}/qos-specs/{id}", svc.base_url), format!("{}/{project}/qos-specs/{id}", svc.base_url))
    };
    json!([{"rel": "self", "href": v3}, {"rel": "bookmark", "href": bookmark}])
}

async fn find(svc: &VolumeService, id: &str) -> Result<qos_spec::Model> {
    store::get(&svc.db.write, id).await?.ok_or_else(|| qos_not_found(id))
}

fn invalid_specs(reason: impl std::fmt::Display) -> VolumeError {
    bad(format!("Invalid qos specs: {reason}"))
}

/// Cinder's string check on every key and value of QoS specs.
fn check_strings(specs: &Map<String, Value>) -> Result<()> {
    for (k, v) in specs {
        if k.is_empty() || k.chars().count() > 255 {
            return Err(invalid_specs(format!("Invalid input received: {k} must be 1 to 255 characters long.")));
        }
        match v {
            Value::String(s) if s.chars().count() <= 255 => {}
            Value::String(_) => {
                return Err(invalid_specs(format!("Invalid input received: value of {k} exceeds 255 characters.")));
            }
            _ => return Err(invalid_specs(format!("Invalid input received: {k} value must be a string."))),
        }
    }
    Ok(())
}

fn consumer_ok(c: &str) -> Result<()> {
    if CONSUMERS.contains(&c) {
        Ok(())
    } else {
        Err(invalid_specs(format!("Valid consumer of QoS specs are: {CONSUMERS:?}")))
    }
}

async fn index(AxState(svc): AxState<State>, Auth(ctx): Auth, RawQuery(pairs): RawQuery) -> Result<Response> {
    authorize(&svc, &ctx, GET_ALL_POLICY, &project_of(&ctx))?;
    let mut q = ListQuery::parse(&pairs)?;
    q.filters.retain(|(k, _)| matches!(k.as_str(), "id" | "name" | "consumer"));
    let items: Vec<Value> = store::list(&svc.db.read)
        .await?
        .iter()
        .map(|s| {
            let mut v = render(s);
            v["created_at"] = json!(s.created_at);
            v
        })
        .collect();
    let project = project_of(&ctx);
    let base = if project.is_empty() {
        format!("{}/v3/qos-specs", svc.base_url)
    } else {
        format!("{}/v3/{project}/qos-specs", svc.base_url)
    };
    let (mut page, next, _) = list::page(items, &q, &["id", "name", "consumer", "created_at"], &base)?;
    for it in &mut page {
        if let Some(o) = it.as_object_mut() {
            o.remove("created_at");
        }
    }
    let mut out = json!({"qos_specs": page});
    if let Some(l) = next {
        out["qos_specs_links"] = l;
    }
    Ok(ok(out))
}

async fn show(AxState(svc): AxState<State>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Response> {
    authorize(&svc, &ctx, GET_POLICY, &project_of(&ctx))?;
    let q = store::get(&svc.db.read, &id).await?.ok_or_else(|| qos_not_found(&id))?;
    Ok(ok(json!({"qos_specs": render(&q), "links": links(&svc, &ctx, &q.id)})))
}

async fn create(AxState(svc): AxState<State>, Auth(ctx): Auth, body: Body) -> Result<Response> {
    authorize(&svc, &ctx, CREATE_POLICY, &project_of(&ctx))?;
    let Some(top) = body.0.as_object() else {
        return Err(bad("Invalid input for field/attribute qos_specs. 'qos_specs' is a required property"));
    };
    if let Some(k) = top.keys().find(|k| *k != "qos_specs") {
        return Err(bad(format!(
            "Invalid input for field/attribute body. Additional properties are not allowed ('{k}' was unexpected)"
        )));
    }
    let Some(Value::Object(obj)) = top.get("qos_specs") else {
        return Err(bad("Invalid input for field/attribute qos_specs. 'qos_specs' is a required property"));
    };
    let mut specs = obj.clone();
    let name = match specs.remove("name") {
        Some(Value::String(s)) => s.trim().to_string(),
        Some(other) => {
            return Err(bad(format!("Invalid input for field/attribute name. Value: {other}. Not a valid name")));
        }
        None => return Err(bad("Invalid input for field/attribute qos_specs. 'name' is a required property")),
    };
    if name.is_empty() || name.chars().count() > 255 {
        return Err(bad("Invalid input for field/attribute name. The name must be 1 to 255 characters long."));
    }
    check_strings(&specs)?;
    let consumer = match specs.remove("consumer") {
        Some(Value::String(c)) if !c.is_empty() => c,
        _ => "back-end".to_string(),
    };
    consumer_ok(&consumer)?;
    let q = store::create(&svc.db.write, &name, &consumer, specs).await?;
    Ok(ok(json!({"qos_specs": render(&q), "links": links(&svc, &ctx, &q.id)})))
}

async fn update(AxState(svc): AxState<State>, Auth(ctx): Auth, Path(id): Path<String>, body: Body) -> Result<Response> {
    let Some(top) = body.0.as_object() else {
        return Err(bad("Invalid input for field/attribute qos_specs. 'qos_specs' is a required property"));
    };
    if let Some(k) = top.keys().find(|k| *k != "qos_specs") {
        return Err(bad(format!(
            "Invalid input for field/attribute body. Additional properties are not allowed ('{k}' was unexpected)"
        )));
    }
    let given = specs_from("qos_specs", top.get("qos_specs").unwrap_or(&Value::Null), true)?;
    authorize(&svc, &ctx, UPDATE_POLICY, &project_of(&ctx))?;
    let q = find(&svc, &id).await?;
    let mut consumer = q.consumer.clone();
    let mut specs = store::specs(&q);
    for (k, v) in &given {
        if k == "consumer" {
            let c = v.as_str().unwrap_or_default();
            consumer_ok(c)?;
            consumer = c.to_string();
        } else {
            specs.insert(k.clone(), v.clone());
        }
    }
    store::save(&svc.db.write, &q, &consumer, specs).await?;
    Ok(ok(json!({"qos_specs": given})))
}

async fn delete(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    RawQuery(pairs): RawQuery,
) -> Result<Response> {
    authorize(&svc, &ctx, DELETE_POLICY, &project_of(&ctx))?;
    let force = match pairs.iter().find(|(k, _)| k == "force").map(|(_, v)| v.as_str()) {
        None => false,
        Some(v) => crate::api::types::parse_bool("force", &Value::String(v.to_string()))
            .map_err(|_| bad(format!("Invalid value '{v}' for force: Unrecognized value '{v}', acceptable values are: '0', '1', 'f', 'false', 'n', 'no', 'off', 'on', 't', 'true', 'y', 'yes'")))?,
    };
    let q = find(&svc, &id).await?;
    if !force && !type_store::with_qos(&svc.db.write, &q.id).await?.is_empty() {
        return Err(bad("Qos specs still in use."));
    }
    store::delete(&svc.db.write, &q.id).await?;
    Ok(accepted_empty())
}

async fn delete_keys(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    body: Body,
) -> Result<Response> {
    let keys: Vec<String> = match body.0.as_object().and_then(|o| o.get("keys")) {
        Some(Value::Array(a)) if body.0.as_object().is_some_and(|o| o.len() == 1) => {
            let mut out: Vec<String> = Vec::new();
            for k in a {
                match k.as_str() {
                    Some(s) if (1..=255).contains(&s.chars().count()) && !out.iter().any(|o| o == s) => {
                        out.push(s.to_string())
                    }
                    _ => return Err(bad(format!("Invalid input for field/attribute keys. Value: {k}. Invalid key"))),
                }
            }
            out
        }
        _ => return Err(bad("Invalid input for field/attribute keys. 'keys' is a required property")),
    };
    authorize(&svc, &ctx, DELETE_POLICY, &project_of(&ctx))?;
    let q = find(&svc, &id).await?;
    let mut specs = store::specs(&q);
    // as Cinder: keys go until the first one missing, and what went stays gone
    let mut missing = None;
    for k in &keys {
        if specs.remove(k).is_none() {
            missing = Some(k.clone());
            break;
        }
    }
    store::save(&svc.db.write, &q, &q.consumer, specs).await?;
    if let Some(k) = missing {
        return Err(not_found(format!("QoS spec {id} has no spec with key {k}.")));
    }
    Ok(accepted_empty())
}

async fn associations(AxState(svc): AxState<State>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Response> {
    authorize(&svc, &ctx, GET_ALL_POLICY, &project_of(&ctx))?;
    let q = find(&svc, &id).await?;
    let items: Vec<Value> = type_store::with_qos(&svc.db.read, &q.id)
        .await?
        .into_iter()
        .map(|t| json!({"association_type": "volume_type", "name": t.name, "id": t.id}))
        .collect();
    Ok(ok(json!({"qos_associations": items})))
}

fn vol_type_param(pairs: &[(String, String)]) -> Result<String> {
    match pairs.iter().find(|(k, _)| k == "vol_type_id").map(|(_, v)| v.clone()) {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(bad("Volume Type id must not be None.")),
    }
}

async fn associate(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    RawQuery(pairs): RawQuery,
) -> Result<Response> {
    authorize(&svc, &ctx, UPDATE_POLICY, &project_of(&ctx))?;
    let type_id = vol_type_param(&pairs)?;
    let q = find(&svc, &id).await?;
    let t = type_store::get_by_id(&svc.db.write, &type_id).await?.ok_or_else(|| type_not_found(&type_id))?;
    match &t.qos_specs_id {
        Some(cur) if *cur != q.id => {
            return Err(bad(format!(
                "Invalid volume type: Type {type_id} is already associated with another qos specs: {cur}"
            )));
        }
        Some(_) => {}
        None => type_store::set_qos(&svc.db.write, &t.id, Some(&q.id)).await?,
    }
    Ok(accepted_empty())
}

async fn disassociate(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    RawQuery(pairs): RawQuery,
) -> Result<Response> {
    authorize(&svc, &ctx, UPDATE_POLICY, &project_of(&ctx))?;
    let type_id = vol_type_param(&pairs)?;
    let q = find(&svc, &id).await?;
    let t = type_store::get_by_id(&svc.db.write, &type_id).await?.ok_or_else(|| type_not_found(&type_id))?;
    if t.qos_specs_id.as_deref() == Some(q.id.as_str()) {
        type_store::set_qos(&svc.db.write, &t.id, None).await?;
    }
    Ok(accepted_empty())
}

async fn disassociate_all(AxState(svc): AxState<State>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Response> {
    authorize(&svc, &ctx, UPDATE_POLICY, &project_of(&ctx))?;
    let q = find(&svc, &id).await?;
    store::disassociate_all(&svc.db.write, &q.id).await?;
    Ok(accepted_empty())
}
