//! `/resource_providers/{uuid}/aggregates` (1.1): the aggregates of a
//! provider; from 1.19 with the provider's generation, checked and bumped.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State as AxState};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};
use stratus_core::Microversion;
use stratus_core::auth::Auth;

use super::{accept_json, int, json_body, ok, since};
use crate::State;
use crate::error::{Result, provider_not_found};
use crate::policies as p;
use crate::schema::Schema;
use crate::store::{Tx, aggregates as store};

pub fn routes() -> Router<State> {
    Router::new().route("/resource_providers/{uuid}/aggregates", get(list).put(set))
}

fn list_schema() -> Schema {
    Schema::array(Schema::uuid()).unique()
}

fn schema(mv: Microversion) -> Schema {
    if mv.at_least(1, 19) {
        Schema::object()
            .prop("aggregates", list_schema())
            .prop("resource_provider_generation", Schema::integer())
            .required(&["aggregates", "resource_provider_generation"])
            .closed()
    } else {
        list_schema()
    }
}

fn view(aggs: &[String], generation: i64, mv: Microversion) -> Value {
    let mut v = json!({"aggregates": aggs});
    if mv.at_least(1, 19) {
        v["resource_provider_generation"] = json!(generation);
    }
    v
}

async fn list(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    headers: HeaderMap,
    Path(uuid): Path<String>,
) -> Result<Response> {
    accept_json(&headers)?;
    since(mv, 1, 1)?;
    svc.enforce(&ctx, p::AGG_LIST)?;
    let rp = svc.provider(&uuid, || provider_not_found(&uuid)).await?;
    let aggs = store::of_provider(&svc.db.read, rp.id).await?;
    Ok(ok(&view(&aggs, rp.generation, mv), mv, None))
}

async fn set(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    headers: HeaderMap,
    Path(uuid): Path<String>,
    body: Bytes,
) -> Result<Response> {
    super::require_json(&headers)?;
    since(mv, 1, 1)?;
    svc.enforce(&ctx, p::AGG_UPDATE)?;
    let rp = svc.provider(&uuid, || provider_not_found(&uuid)).await?;
    let data = json_body(&headers, &body, &schema(mv))?;
    let (list, expected) = if mv.at_least(1, 19) {
        let expected = int(&data["resource_provider_generation"]);
        if expected != rp.generation {
            return Err(crate::store::traits::generation_conflict());
        }
        (data["aggregates"].clone(), Some(expected))
    } else {
        (data, None)
    };
    // as Placement: each uuid is kept as written (32 hex digits stay so,
    // upper case stays upper case), stored and returned verbatim; `member_of`
    // matches them verbatim too
    let aggs: Vec<String> =
        list.as_array().into_iter().flatten().filter_map(Value::as_str).map(str::to_string).collect();
    let mut tx = Tx::begin(&svc.db).await?;
    let generation = store::set_for_provider(&mut tx, &rp, expected, &aggs).await?;
    tx.commit().await?;
    Ok(ok(&view(&aggs, generation, mv), mv, None))
}
