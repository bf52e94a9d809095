//! `GET /v2.0/availability_zones`: the zones agents report, per resource they
//! serve there (DHCP agents: `network`, L3 agents: `router`), `available`
//! while any agent of the zone and resource is administratively up.

use axum::Router;
use axum::extract::State as AxState;
use axum::response::Response;
use axum::routing::get;
use serde_json::json;
use stratus_core::auth::Auth;
use stratus_core::extract::RawQuery;

use crate::State;
use crate::api::list::{self, ListParams};
use crate::api::{authorize, ok, project_of};
use crate::error::{Result, bad};
use crate::store::agents as store;

pub fn routes() -> Router<State> {
    Router::new().route("/v2.0/availability_zones", get(index))
}

async fn index(AxState(svc): AxState<State>, Auth(ctx): Auth, q: RawQuery) -> Result<Response> {
    let p = ListParams::parse(&q)?;
    authorize(&svc, &ctx, "get_availability_zone", &project_of(&ctx))?;
    for (k, _) in &p.filters {
        if !matches!(k.as_str(), "name" | "resource" | "state") {
            return Err(bad(format!("{k} is not a valid filter")));
        }
    }
    let items = store::availability_zones(&svc.db.read)
        .await?
        .into_iter()
        .map(|(name, resource, up)| {
            json!({"name": name, "resource": resource, "state": if up { "available" } else { "unavailable" }})
        })
        .filter(|z| {
            p.filters.iter().all(|(k, vals)| vals.iter().any(|v| z[k.as_str()].as_str() == Some(v.as_str())))
        })
        .map(|z| list::project(z, &p.fields))
        .collect::<Vec<_>>();
    Ok(ok(json!({"availability_zones": items})))
}
