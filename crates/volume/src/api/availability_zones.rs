//! `/v3/os-availability-zone`: the zones of the volume services; a zone is
//! available while any of its volume services is enabled.

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::State as AxState;
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};
use stratus_core::auth::Auth;

use crate::State;
use crate::api::{authorize, ok, project_of};
use crate::error::Result;
use crate::store::services::{self as store, VOLUME_BINARY};

pub fn routes() -> Router<State> {
    Router::new().route("/v3/os-availability-zone", get(index))
}

async fn index(AxState(svc): AxState<State>, Auth(ctx): Auth) -> Result<Response> {
    authorize(&svc, &ctx, "volume_extension:availability_zone_list", &project_of(&ctx))?;
    let mut zones: BTreeMap<String, bool> = BTreeMap::new();
    for s in store::all(&svc.db.read).await?.into_iter().filter(|s| s.binary == VOLUME_BINARY) {
        *zones.entry(s.availability_zone).or_insert(false) |= !s.disabled;
    }
    let items: Vec<Value> = zones
        .into_iter()
        .map(|(name, available)| json!({"zoneName": name, "zoneState": {"available": available}}))
        .collect();
    Ok(ok(json!({"availabilityZoneInfo": items})))
}
