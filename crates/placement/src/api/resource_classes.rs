//! `/resource_classes` (1.2): the standard classes and custom `CUSTOM_*`
//! ones; `PUT /resource_classes/{name}` renames before 1.7 and is a bodiless
//! create-or-confirm from 1.7.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};
use stratus_core::Microversion;
use stratus_core::auth::Auth;

use super::{accept_json, empty, json_body, ok, since};
use crate::State;
use crate::error::{PlacementError, Result, bad, conflict, not_found};
use crate::policies as p;
use crate::schema::{CUSTOM_PATTERN, Schema};
use crate::store::Tx;
use crate::store::resource_classes::{self as store, DeleteOutcome, ResourceClass};

pub fn routes() -> Router<State> {
    Router::new()
        .route("/resource_classes", get(list).post(create))
        .route("/resource_classes/{name}", get(show).put(update).delete(delete))
}

fn schema() -> Schema {
    Schema::object().prop("name", Schema::string().matching(CUSTOM_PATTERN).max_len(255)).required(&["name"]).closed()
}

fn view(rc: &ResourceClass) -> Value {
    json!({"name": rc.name, "links": [{"rel": "self", "href": format!("/resource_classes/{}", rc.name)}]})
}

fn location(name: &str) -> Option<String> {
    Some(format!("/resource_classes/{name}"))
}

fn missing(name: &str) -> PlacementError {
    not_found(format!("No such resource class {name}."))
}

async fn list(AxState(svc): AxState<State>, Auth(ctx): Auth, mv: Microversion, headers: HeaderMap) -> Result<Response> {
    since(mv, 1, 2)?;
    accept_json(&headers)?;
    svc.enforce(&ctx, p::RC_LIST)?;
    let rcs = store::list(&svc.db.read).await?;
    let modified = rcs.iter().filter(|r| !store::is_standard(r)).map(|r| r.updated_at).max();
    let items: Vec<Value> = rcs.iter().map(view).collect();
    Ok(ok(&json!({"resource_classes": items}), mv, modified))
}

async fn create(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    since(mv, 1, 2)?;
    svc.enforce(&ctx, p::RC_CREATE)?;
    let data = json_body(&headers, &body, &schema())?;
    let name = data["name"].as_str().unwrap_or_default();
    let mut tx = Tx::begin(&svc.db).await?;
    if !store::create(&mut tx, name).await? {
        return Err(conflict(format!("Conflicting resource class already exists: {name}")));
    }
    tx.commit().await?;
    Ok(empty(StatusCode::CREATED, location(name)))
}

async fn show(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Response> {
    since(mv, 1, 2)?;
    accept_json(&headers)?;
    svc.enforce(&ctx, p::RC_SHOW)?;
    let rc = store::get(&svc.db.read, &name).await?.ok_or_else(|| missing(&name))?;
    let modified = if store::is_standard(&rc) { None } else { Some(rc.updated_at) };
    Ok(ok(&view(&rc), mv, modified))
}

async fn update(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response> {
    since(mv, 1, 2)?;
    svc.enforce(&ctx, p::RC_UPDATE)?;
    if mv.at_least(1, 7) {
        // the name itself is checked as a body would be
        schema().validate(&json!({"name": name})).map_err(|e| bad(format!("JSON does not validate: {e}")))?;
        let mut tx = Tx::begin(&svc.db).await?;
        let created = store::create(&mut tx, &name).await?;
        tx.commit().await?;
        let code = if created { StatusCode::CREATED } else { StatusCode::NO_CONTENT };
        return Ok(empty(code, location(&name)));
    }
    let data = json_body(&headers, &body, &schema())?;
    let new_name = data["name"].as_str().unwrap_or_default().to_string();
    let rc = store::get(&svc.db.read, &name).await?.ok_or_else(|| missing(&name))?;
    if store::is_standard(&rc) {
        return Err(bad(format!("Cannot update standard resource class {name}")));
    }
    let mut tx = Tx::begin(&svc.db).await?;
    if !store::rename(&mut tx, &rc, &new_name).await? {
        return Err(conflict(format!("Resource class already exists: {new_name}")));
    }
    tx.commit().await?;
    let renamed = ResourceClass { name: new_name, ..rc };
    Ok(ok(&view(&renamed), Microversion(1, 0), None))
}

async fn delete(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    Path(name): Path<String>,
) -> Result<Response> {
    since(mv, 1, 2)?;
    svc.enforce(&ctx, p::RC_DELETE)?;
    let rc = store::get(&svc.db.read, &name).await?.ok_or_else(|| missing(&name))?;
    if store::is_standard(&rc) {
        return Err(bad(format!("Error in delete resource class: Cannot delete standard resource class {name}.")));
    }
    let mut tx = Tx::begin(&svc.db).await?;
    match store::delete(&mut tx, &rc).await? {
        DeleteOutcome::Deleted => {}
        DeleteOutcome::InUse => {
            return Err(conflict(format!(
                "Error in delete resource class: Cannot delete resource class {name}. Class is in use in inventory."
            )));
        }
    }
    tx.commit().await?;
    Ok(empty(StatusCode::NO_CONTENT, None))
}
