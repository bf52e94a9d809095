//! Per-project default volume types (`/v3/default-types`, 3.62+): set
//! (PUT), show, list, unset (DELETE).

use axum::Router;
use axum::extract::{Path, State as AxState};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use stratus_core::auth::Auth;
use stratus_core::microversion::Microversion;

use crate::State;
use crate::api::{Body, authorize, no_content, ok, project_of};
use crate::entity::default_type;
use crate::error::{Result, bad, forbidden, not_found};
use crate::store::types as store;

pub fn routes() -> Router<State> {
    Router::new()
        .route("/v3/default-types", get(index))
        .route("/v3/default-types/{project_id}", get(show).put(set).delete(unset))
}

const SET_POLICY: &str = "volume_extension:default_set_or_update";
const GET_POLICY: &str = "volume_extension:default_get";
const GET_ALL_POLICY: &str = "volume_extension:default_get_all";
const UNSET_POLICY: &str = "volume_extension:default_unset";

/// Below 3.62 these routes do not exist (Cinder answers 404).
fn gate(mv: Microversion) -> Result<()> {
    if mv.at_least(3, 62) { Ok(()) } else { Err(not_found("The resource could not be found.")) }
}

fn render(d: &default_type::Model) -> Value {
    json!({"project_id": d.project_id, "volume_type_id": d.volume_type_id})
}

async fn set(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    Path(project_id): Path<String>,
    body: Body,
) -> Result<Response> {
    gate(mv)?;
    let wanted = match body.0.get("default_type").and_then(|d| d.as_object()) {
        Some(obj) => {
            if let Some(k) = obj.keys().find(|k| *k != "volume_type") {
                return Err(bad(format!(
                    "Invalid input for field/attribute default_type. Additional properties are not allowed ('{k}' was unexpected)"
                )));
            }
            match obj.get("volume_type") {
                Some(Value::String(s)) if !s.trim().is_empty() && s.chars().count() <= 255 => s.clone(),
                Some(other) => {
                    return Err(bad(format!("Invalid input for field/attribute volume_type. Value: {other}.")));
                }
                None => {
                    return Err(bad(
                        "Invalid input for field/attribute default_type. 'volume_type' is a required property",
                    ));
                }
            }
        }
        None => {
            return Err(bad("Invalid input for field/attribute default_type. 'default_type' is a required property"));
        }
    };
    authorize(&svc, &ctx, SET_POLICY, &project_id)?;
    let t = store::get(&svc.db.write, &wanted)
        .await?
        .ok_or_else(|| bad(format!("Volume type {wanted} could not be found.")))?;
    let d = store::set_project_default(&svc.db.write, &project_id, &t.id).await?;
    Ok(ok(json!({"default_type": render(&d)})))
}

async fn show(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    Path(project_id): Path<String>,
) -> Result<Response> {
    gate(mv)?;
    authorize(&svc, &ctx, GET_POLICY, &project_id)?;
    let d = store::project_default(&svc.db.read, &project_id)
        .await?
        .ok_or_else(|| not_found(format!("Default type for project {project_id} not found.")))?;
    Ok(ok(json!({"default_type": render(&d)})))
}

async fn index(AxState(svc): AxState<State>, Auth(ctx): Auth, mv: Microversion) -> Result<Response> {
    gate(mv)?;
    if authorize(&svc, &ctx, GET_ALL_POLICY, &project_of(&ctx)).is_err() {
        return Err(forbidden("You are not authorized to perform this operation."));
    }
    let items: Vec<Value> = store::project_defaults(&svc.db.read).await?.iter().map(render).collect();
    Ok(ok(json!({"default_types": items})))
}

async fn unset(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    Path(project_id): Path<String>,
) -> Result<Response> {
    gate(mv)?;
    authorize(&svc, &ctx, UNSET_POLICY, &project_id)?;
    store::unset_project_default(&svc.db.write, &project_id).await?;
    Ok(no_content().into_response())
}
