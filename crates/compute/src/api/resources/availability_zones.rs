//! `/os-availability-zone` (everyone) and `/os-availability-zone/detail`
//! (admin): zones as Nova derives them from services. A compute host is in
//! the zone(s) of its aggregates, else in the default zone; other services
//! are in the `internal` zone, which only the detail shows. A zone is
//! available while one of its services is enabled.

use std::collections::{BTreeMap, BTreeSet};

use axum::Router;
use axum::extract::State as S;
use axum::response::Response;
use axum::routing::get;
use serde_json::{Map, Value, json};
use stratus_core::auth::Auth;

use super::common::naive_time;
use crate::api::{authorize, ok};
use crate::error::Result;
use crate::store::aggregates::{self, Aggregate};
use crate::store::services::{self, Service};
use crate::{ComputeService, State};

pub fn routes() -> Router<State> {
    Router::new()
        .route("/v2.1/os-availability-zone", get(index))
        .route("/v2.1/os-availability-zone/detail", get(detail))
}

/// Nova's `internal_service_availability_zone`.
pub const INTERNAL_ZONE: &str = "internal";

/// Services that are not RPC services and have no state to show.
pub const API_BINARIES: &[&str] = &["nova-osapi_compute", "nova-metadata"];

/// The zone of a service (`set_availability_zones` in Nova).
pub fn zone_of(svc: &ComputeService, aggs: &[Aggregate], s: &Service) -> String {
    if s.topic == "compute" || s.binary == services::COMPUTE {
        aggregates::zone_from(aggs, &s.host, &svc.cfg.compute.default_availability_zone)
    } else {
        INTERNAL_ZONE.to_string()
    }
}

/// Every service with its zone.
pub async fn services_with_zones(svc: &ComputeService) -> Result<Vec<(Service, String)>> {
    let aggs = aggregates::all(&svc.db).await?;
    Ok(services::list(&svc.db)
        .await?
        .into_iter()
        .map(|s| {
            let z = zone_of(svc, &aggs, &s);
            (s, z)
        })
        .collect())
}

fn split(all: &[(Service, String)]) -> (BTreeSet<String>, BTreeSet<String>) {
    let available: BTreeSet<String> = all.iter().filter(|(s, _)| !s.disabled).map(|(_, z)| z.clone()).collect();
    let unavailable: BTreeSet<String> =
        all.iter().filter(|(s, _)| s.disabled).map(|(_, z)| z.clone()).filter(|z| !available.contains(z)).collect();
    (available, unavailable)
}

async fn index(S(svc): S<State>, Auth(ctx): Auth) -> Result<Response> {
    authorize(&svc, &ctx, "os_compute_api:os-availability-zone:list", &json!({}))?;
    let all = services_with_zones(&svc).await?;
    let (available, unavailable) = split(&all);
    let mut info = Vec::new();
    for (zones, state) in [(&available, true), (&unavailable, false)] {
        for z in zones.iter().filter(|z| z.as_str() != INTERNAL_ZONE) {
            info.push(json!({"zoneName": z, "zoneState": {"available": state}, "hosts": null}));
        }
    }
    Ok(ok(json!({"availabilityZoneInfo": info})))
}

async fn detail(S(svc): S<State>, Auth(ctx): Auth) -> Result<Response> {
    authorize(&svc, &ctx, "os_compute_api:os-availability-zone:detail", &json!({}))?;
    let all = services_with_zones(&svc).await?;
    let (available, unavailable) = split(&all);
    let down = svc.cfg.compute.service_down_time;
    // zone -> host -> binary -> state, enabled RPC services only
    let mut hosts: BTreeMap<&str, BTreeMap<&str, Map<String, Value>>> = BTreeMap::new();
    for (s, z) in all.iter().filter(|(s, _)| !s.disabled && !API_BINARIES.contains(&s.binary.as_str())) {
        hosts.entry(z.as_str()).or_default().entry(s.host.as_str()).or_default().insert(
            s.binary.clone(),
            json!({
                "available": services::is_up(s, down),
                "active": !s.disabled,
                "updated_at": naive_time(services::last_heartbeat(s)),
            }),
        );
    }
    let mut info = Vec::new();
    for z in &available {
        let h: Map<String, Value> = hosts
            .get(z.as_str())
            .map(|m| m.iter().map(|(h, b)| (h.to_string(), Value::Object(b.clone()))).collect())
            .unwrap_or_default();
        info.push(json!({"zoneName": z, "zoneState": {"available": true}, "hosts": h}));
    }
    for z in &unavailable {
        info.push(json!({"zoneName": z, "zoneState": {"available": false}, "hosts": null}));
    }
    Ok(ok(json!({"availabilityZoneInfo": info})))
}
