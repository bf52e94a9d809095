//! `/v3/os-quota-sets/{project_id}` (show, `?usage=true`, update, delete
//! back to the defaults), `/v3/os-quota-sets/{project_id}/defaults`, and
//! `/v3/os-quota-class-sets/{class}` (show, update).

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::{Path, State as AxState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sea_orm::TransactionTrait;
use serde_json::{Map, Value, json};
use stratus_core::auth::Auth;
use stratus_core::extract::RawQuery;

use crate::State;
use crate::api::{Body, authorize, is_admin, ok};
use crate::error::{Result, bad, forbidden};
use crate::store::quotas as store;

pub fn routes() -> Router<State> {
    Router::new()
        .route("/v3/os-quota-sets/{project_id}", get(show).put(update).delete(delete))
        .route("/v3/os-quota-sets/{project_id}/defaults", get(defaults))
        .route("/v3/os-quota-class-sets/{class}", get(show_class).put(update_class))
}

/// Cinder's largest quota value.
const DB_MAX_INT: i64 = 0x7FFF_FFFF;

/// Keys a quota set body may carry that are not resources.
const NON_QUOTA_KEYS: &[&str] = &["tenant_id", "id"];

pub fn parse_bool(name: &str, v: &str) -> Result<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "t" | "true" | "on" | "y" | "yes" => Ok(true),
        "0" | "f" | "false" | "off" | "n" | "no" => Ok(false),
        _ => Err(bad(format!("Invalid value '{v}' for {name}: it must be a boolean."))),
    }
}

fn as_object(limits: BTreeMap<String, i64>) -> Map<String, Value> {
    limits.into_iter().map(|(k, v)| (k, json!(v))).collect()
}

/// An integer the way Cinder's `validate_integer` takes one (an integer or
/// its text), within -1..=DB_MAX_INT.
fn quota_value(key: &str, v: &Value) -> Result<i64> {
    let n = match v {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    let Some(n) = n else {
        return Err(bad(format!("{key} must be an integer")));
    };
    if n < -1 {
        return Err(bad(format!("{key} must be >= -1")));
    }
    if n > DB_MAX_INT {
        return Err(bad(format!("{key} must be <= {DB_MAX_INT}")));
    }
    Ok(n)
}

/// The only top-level key of a body must be `key`.
fn only_key<'a>(body: &'a Value, key: &str) -> Result<&'a Map<String, Value>> {
    let Some(top) = body.as_object() else {
        return Err(bad("Invalid input received: the request body must be an object."));
    };
    if let Some(extra) = top.keys().find(|k| k.as_str() != key) {
        return Err(bad(format!(
            "Invalid input for field/attribute body. Additional properties are not allowed ('{extra}' was unexpected)"
        )));
    }
    top.get(key).and_then(Value::as_object).ok_or_else(|| {
        bad(format!("Invalid input for field/attribute {key}. '{key}' is a required property and must be an object."))
    })
}

async fn show(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    Path(project_id): Path<String>,
    q: RawQuery,
) -> Result<Response> {
    authorize(&svc, &ctx, "volume_extension:quotas:show", &project_id)?;
    let mut usage = false;
    for (k, v) in &q.0 {
        if k == "usage" {
            usage = parse_bool("usage", v)?;
        }
    }
    let conn = &svc.db.read;
    let limits = store::project_limits(conn, &svc.cfg.volume, &project_id).await?;
    let mut set = Map::new();
    if usage {
        let used = store::usage(conn, &project_id).await?;
        for (k, lim) in limits {
            let in_use = used.get(&k).copied().unwrap_or(0);
            set.insert(k, json!({"limit": lim, "in_use": in_use, "reserved": 0}));
        }
    } else {
        set = as_object(limits);
    }
    set.insert("id".into(), json!(project_id));
    Ok(ok(json!({"quota_set": set})))
}

async fn defaults(AxState(svc): AxState<State>, Auth(ctx): Auth, Path(project_id): Path<String>) -> Result<Response> {
    authorize(&svc, &ctx, "volume_extension:quotas:show", &project_id)?;
    let mut set = as_object(store::defaults(&svc.db.read, &svc.cfg.volume).await?);
    set.insert("id".into(), json!(project_id));
    Ok(ok(json!({"quota_set": set})))
}

async fn update(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    Path(project_id): Path<String>,
    body: Body,
) -> Result<Response> {
    authorize(&svc, &ctx, "volume_extension:quotas:update", &project_id)?;
    if project_id.is_empty() || project_id.chars().count() > 255 {
        return Err(bad("Invalid input received: quota_set_name must be 1 to 255 characters."));
    }
    let asked = only_key(&body.0, "quota_set")?;
    if asked.is_empty() {
        return Err(bad("Invalid input for field/attribute quota_set. {} does not have enough properties"));
    }
    let conn = &svc.db.write;
    let mut bad_keys = Vec::new();
    let mut values: Vec<(String, i64)> = Vec::new();
    for (k, v) in asked {
        if NON_QUOTA_KEYS.contains(&k.as_str()) {
            continue;
        }
        if !store::is_resource(conn, k).await? {
            bad_keys.push(k.clone());
            continue;
        }
        values.push((k.clone(), quota_value(k, v)?));
    }
    if !bad_keys.is_empty() {
        return Err(bad(format!("Invalid input received: Bad key(s) in quota set: {}", bad_keys.join(", "))));
    }
    let txn = conn.begin().await?;
    // a limit may not go under what the project already uses
    let used = store::usage(&txn, &project_id).await?;
    for (k, v) in &values {
        let in_use = used.get(k).copied().unwrap_or(0);
        if k != "per_volume_gigabytes" && *v != -1 && *v < in_use {
            return Err(bad(format!(
                "Quota {k} limit must be equal or greater than existing resources. Current usage is {in_use} and the requested limit is {v}."
            )));
        }
    }
    for (k, v) in &values {
        store::set_project(&txn, &project_id, k, *v).await?;
    }
    txn.commit().await?;
    let set = as_object(store::project_limits(conn, &svc.cfg.volume, &project_id).await?);
    Ok(ok(json!({"quota_set": set})))
}

async fn delete(AxState(svc): AxState<State>, Auth(ctx): Auth, Path(project_id): Path<String>) -> Result<Response> {
    authorize(&svc, &ctx, "volume_extension:quotas:delete", &project_id)?;
    store::reset_project(&svc.db.write, &project_id).await?;
    Ok(StatusCode::OK.into_response())
}

fn authorize_class(svc: &State, ctx: &stratus_core::AuthContext) -> Result<()> {
    let project = crate::api::project_of(ctx);
    authorize(svc, ctx, "volume_extension:quota_classes", &project)?;
    // a non-admin may only see its own class (none: projects have no class)
    if !is_admin(svc, ctx) {
        return Err(forbidden("Policy doesn't allow volume_extension:quota_classes to be performed."));
    }
    Ok(())
}

async fn show_class(AxState(svc): AxState<State>, Auth(ctx): Auth, Path(class): Path<String>) -> Result<Response> {
    authorize_class(&svc, &ctx)?;
    let mut set = as_object(store::class_limits(&svc.db.read, &svc.cfg.volume, &class).await?);
    set.insert("id".into(), json!(class));
    Ok(ok(json!({"quota_class_set": set})))
}

async fn update_class(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    Path(class): Path<String>,
    body: Body,
) -> Result<Response> {
    authorize_class(&svc, &ctx)?;
    if class.is_empty() || class.chars().count() > 255 {
        return Err(bad("Invalid input received: quota_class_name must be 1 to 255 characters."));
    }
    let asked = only_key(&body.0, "quota_class_set")?;
    let conn = &svc.db.write;
    let mut bad_keys = Vec::new();
    let mut values: Vec<(String, i64)> = Vec::new();
    for (k, v) in asked {
        // integers, or text of digits only
        if let Value::String(s) = v
            && (s.is_empty() || !s.chars().all(|c| c.is_ascii_digit()))
        {
            return Err(bad(format!(
                "Invalid input for field/attribute {k}. Value: {s}. '{s}' does not match '^[0-9]*$'"
            )));
        }
        let n = quota_value(k, v)?;
        if !store::is_resource(conn, k).await? {
            bad_keys.push(k.clone());
            continue;
        }
        values.push((k.clone(), n));
    }
    if !bad_keys.is_empty() {
        return Err(bad(format!("Invalid input received: Bad key(s) in quota class set: {}", bad_keys.join(", "))));
    }
    let txn = conn.begin().await?;
    for (k, v) in &values {
        store::set_class(&txn, &class, k, *v).await?;
    }
    txn.commit().await?;
    let set = as_object(store::class_limits(conn, &svc.cfg.volume, &class).await?);
    Ok(ok(json!({"quota_class_set": set})))
}
