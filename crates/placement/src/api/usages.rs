//! `GET /resource_providers/{uuid}/usages` and `GET /usages` (1.9; grouped by
//! consumer type with consumer counts from 1.38).

use axum::Router;
use axum::extract::{Path, State as AxState};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use serde_json::{Map, Value, json};
use stratus_core::Microversion;
use stratus_core::auth::Auth;
use stratus_core::extract::RawQuery;

use super::{accept_json, ok, since};
use crate::State;
use crate::error::{Result, not_found};
use crate::policies as p;
use crate::query;
use crate::schema::{Pattern, Schema};
use crate::store::usages as store;

pub fn routes() -> Router<State> {
    Router::new().route("/resource_providers/{uuid}/usages", get(provider_usages)).route("/usages", get(total_usages))
}

async fn provider_usages(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    headers: HeaderMap,
    Path(uuid): Path<String>,
) -> Result<Response> {
    accept_json(&headers)?;
    svc.enforce(&ctx, p::RP_USAGES)?;
    let rp = svc
        .provider(&uuid, || {
            not_found(format!(
                "No resource provider with uuid {uuid} found: No resource provider with uuid {uuid} found"
            ))
        })
        .await?;
    let usages = store::of_provider(&svc.db.read, rp.id).await?;
    Ok(ok(&json!({"resource_provider_generation": rp.generation, "usages": usages}), mv, None))
}

fn consumer_type_get(s: &str) -> bool {
    crate::standard::is_rc_name(s) || s.starts_with("all") || s == "unknown"
}

fn schema(mv: Microversion) -> Schema {
    let id = Schema::string().min_len(1).max_len(255);
    let s = Schema::object().prop("project_id", id.clone()).prop("user_id", id).required(&["project_id"]).closed();
    if mv.at_least(1, 38) {
        let pattern = Pattern { text: "^[A-Z0-9_]+$|^all|^unknown$", test: consumer_type_get };
        s.prop("consumer_type", Schema::string().matching(pattern).min_len(1).max_len(255))
    } else {
        s
    }
}

async fn total_usages(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Response> {
    since(mv, 1, 9)?;
    accept_json(&headers)?;
    let project = query::last(&q, "project_id");
    svc.enforce_on(&ctx, p::TOTAL_USAGES, &json!({"project_id": project}))?;
    query::validate(&q, &schema(mv))?;
    let project = project.unwrap_or_default();
    let user = query::last(&q, "user_id");
    let body = if mv.at_least(1, 38) {
        let groups = store::of_project_by_type(&svc.db.read, project, user, query::last(&q, "consumer_type")).await?;
        let mut out = Map::new();
        for (ctype, g) in groups {
            let mut m: Map<String, Value> = g.usages.into_iter().map(|(k, v)| (k, json!(v))).collect();
            m.insert("consumer_count".into(), json!(g.consumer_count));
            out.insert(ctype, Value::Object(m));
        }
        json!({"usages": out})
    } else {
        json!({"usages": store::of_project(&svc.db.read, project, user).await?})
    };
    Ok(ok(&body, mv, None))
}
