//! `/traits` (1.6): the standard os-traits and custom `CUSTOM_*` ones; and
//! `/resource_providers/{uuid}/traits`.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};
use stratus_core::Microversion;
use stratus_core::auth::Auth;
use stratus_core::extract::RawQuery;

use super::{accept_json, empty, int, json_body, ok, since};
use crate::State;
use crate::error::{PlacementError, Result, bad, codes, conflict, conflict_code, not_found};
use crate::policies as p;
use crate::query;
use crate::schema::Schema;
use crate::standard;
use crate::store::Tx;
use crate::store::traits::{self as store, DeleteOutcome, Filter};

pub fn routes() -> Router<State> {
    Router::new().route("/traits", get(list)).route("/traits/{name}", get(show).put(create).delete(delete)).route(
        "/resource_providers/{uuid}/traits",
        get(list_for_provider).put(set_for_provider).delete(delete_for_provider),
    )
}

fn set_schema() -> Schema {
    Schema::object()
        .prop("traits", Schema::array(Schema::string().min_len(1).max_len(255)))
        .prop("resource_provider_generation", Schema::integer())
        .required(&["traits", "resource_provider_generation"])
        .closed()
}

fn missing(name: &str) -> PlacementError {
    not_found(format!("No such trait(s): {name}."))
}

async fn list(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Response> {
    since(mv, 1, 6)?;
    accept_json(&headers)?;
    svc.enforce(&ctx, p::TRAITS_LIST)?;
    query::validate(
        &q,
        &Schema::object().prop("name", Schema::string()).prop("associated", Schema::string()).closed(),
    )?;
    let mut f = Filter::default();
    if let Some(name) = query::last(&q, "name") {
        let Some((op, value)) = name.split_once(':') else {
            return Err(bad(format!(
                "Badly formatted name parameter. Expected name query string parameter in form: ?name=[in|startswith]:[name1,name2|prefix]. Got: \"{name}\""
            )));
        };
        match op {
            "in" => f.name_in = Some(value.split(',').map(str::to_string).collect()),
            "startswith" => f.prefix = Some(value.to_string()),
            _ => {}
        }
    }
    if let Some(a) = query::last(&q, "associated") {
        f.associated = match a.to_ascii_lowercase().as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => return Err(bad("The query parameter \"associated\" only accepts \"true\" or \"false\"")),
        };
    }
    let traits = store::list(&svc.db.read, &f).await?;
    let modified = traits.iter().map(|t| t.created_at).max();
    let names: Vec<&str> = traits.iter().map(|t| t.name.as_str()).collect();
    Ok(ok(&json!({"traits": names}), mv, modified))
}

async fn create(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    Path(name): Path<String>,
) -> Result<Response> {
    since(mv, 1, 6)?;
    svc.enforce(&ctx, p::TRAITS_UPDATE)?;
    if name.chars().count() > 255 || !standard::is_custom_name(&name) {
        return Err(bad(
            "The trait is invalid. A valid trait must be no longer than 255 characters, start with the prefix \"CUSTOM_\" and use following characters: \"A\"-\"Z\", \"0\"-\"9\" and \"_\"",
        ));
    }
    let mut tx = Tx::begin(&svc.db).await?;
    let created = store::create(&mut tx, &name).await?;
    tx.commit().await?;
    let mut resp =
        empty(if created { StatusCode::CREATED } else { StatusCode::NO_CONTENT }, Some(format!("/traits/{name}")));
    let modified = store::get(&svc.db.read, &name).await?.map(|t| t.created_at);
    super::cache_headers(&mut resp, mv, modified);
    Ok(resp)
}

async fn show(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    Path(name): Path<String>,
) -> Result<Response> {
    since(mv, 1, 6)?;
    svc.enforce(&ctx, p::TRAITS_SHOW)?;
    let t = store::get(&svc.db.read, &name).await?.ok_or_else(|| missing(&name))?;
    let mut resp = empty(StatusCode::NO_CONTENT, None);
    super::cache_headers(&mut resp, mv, Some(t.created_at));
    Ok(resp)
}

async fn delete(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    Path(name): Path<String>,
) -> Result<Response> {
    since(mv, 1, 6)?;
    svc.enforce(&ctx, p::TRAITS_DELETE)?;
    if store::get(&svc.db.read, &name).await?.is_none() {
        return Err(missing(&name));
    }
    if !standard::is_custom(&name) {
        return Err(bad(format!("Cannot delete standard trait {name}.")));
    }
    let mut tx = Tx::begin(&svc.db).await?;
    match store::delete(&mut tx, &name).await? {
        DeleteOutcome::Deleted => {}
        DeleteOutcome::NotFound => return Err(missing(&name)),
        DeleteOutcome::InUse => return Err(conflict(format!("The trait {name} is in use by a resource provider."))),
    }
    tx.commit().await?;
    Ok(empty(StatusCode::NO_CONTENT, None))
}

fn provider_missing(uuid: &str) -> PlacementError {
    not_found(format!("No resource provider with uuid {uuid} found: No resource provider with uuid {uuid} found"))
}

fn traits_view(traits: &[String], generation: i64) -> Value {
    json!({"traits": traits, "resource_provider_generation": generation})
}

async fn list_for_provider(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    headers: HeaderMap,
    Path(uuid): Path<String>,
) -> Result<Response> {
    since(mv, 1, 6)?;
    accept_json(&headers)?;
    svc.enforce(&ctx, p::RP_TRAIT_LIST)?;
    let rp = svc.provider(&uuid, || provider_missing(&uuid)).await?;
    let traits = store::of_provider(&svc.db.read, rp.id).await?;
    Ok(ok(&traits_view(&traits, rp.generation), mv, None))
}

async fn set_for_provider(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    headers: HeaderMap,
    Path(uuid): Path<String>,
    body: Bytes,
) -> Result<Response> {
    since(mv, 1, 6)?;
    svc.enforce(&ctx, p::RP_TRAIT_UPDATE)?;
    let data = json_body(&headers, &body, &set_schema())?;
    let rp = svc.provider(&uuid, || crate::error::provider_not_found(&uuid)).await?;
    let expected = int(&data["resource_provider_generation"]);
    if expected != rp.generation {
        return Err(store::generation_conflict());
    }
    let wanted: Vec<String> =
        data["traits"].as_array().into_iter().flatten().filter_map(|t| t.as_str().map(str::to_string)).collect();
    let mut tx = Tx::begin(&svc.db).await?;
    let (traits, generation) = store::set_for_provider(&mut tx, &rp, Some(expected), &wanted).await?;
    tx.commit().await?;
    Ok(ok(&traits_view(&traits, generation), mv, None))
}

async fn delete_for_provider(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    Path(uuid): Path<String>,
) -> Result<Response> {
    since(mv, 1, 6)?;
    svc.enforce(&ctx, p::RP_TRAIT_DELETE)?;
    let rp = svc.provider(&uuid, || crate::error::provider_not_found(&uuid)).await?;
    let mut tx = Tx::begin(&svc.db).await?;
    match store::set_for_provider(&mut tx, &rp, None, &[]).await {
        Ok(_) => {}
        Err(PlacementError::ConcurrentUpdate) => {
            return Err(conflict_code(
                "Another thread concurrently updated the data. Please retry your update",
                codes::CONCURRENT_UPDATE,
            ));
        }
        Err(e) => return Err(e),
    }
    tx.commit().await?;
    Ok(empty(StatusCode::NO_CONTENT, None))
}
