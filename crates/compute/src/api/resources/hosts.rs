//! `/os-hosts` (admin, removed at 2.43): the hosts of the services (filter
//! `zone`) and one host's resources (total, used now, used by its servers,
//! per project). Not covered: the host update and power actions, which no
//! driver here supports (Nova answers 501 for most drivers too).

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::{Path, State as S};
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};
use stratus_core::Microversion;
use stratus_core::auth::Auth;
use stratus_core::extract::RawQuery;

use super::availability_zones::{API_BINARIES, services_with_zones};
use super::common;
use crate::State;
use crate::api::{authorize, ok};
use crate::error::{Result, not_found};
use crate::store::{compute_nodes, usage};

pub fn routes() -> Router<State> {
    Router::new().route("/v2.1/os-hosts", get(index)).route("/v2.1/os-hosts/{host}", get(show))
}

async fn index(S(svc): S<State>, Auth(ctx): Auth, mv: Microversion, q: RawQuery) -> Result<Response> {
    if mv.at_least(2, 43) {
        return Err(common::version_not_found());
    }
    authorize(&svc, &ctx, "os_compute_api:os-hosts:list", &json!({}))?;
    let zone = q.get("zone").filter(|z| !z.is_empty());
    let hosts: Vec<Value> = services_with_zones(&svc)
        .await?
        .into_iter()
        .filter(|(s, _)| !s.disabled && !API_BINARIES.contains(&s.binary.as_str()))
        .filter(|(_, z)| zone.is_none_or(|want| want == z))
        .map(|(s, z)| json!({"host_name": s.host, "service": s.topic, "zone": z}))
        .collect();
    Ok(ok(json!({ "hosts": hosts })))
}

fn resource(host: &str, project: &str, cpu: i64, memory_mb: i64, disk_gb: i64) -> Value {
    json!({"resource": {"host": host, "project": project, "cpu": cpu, "memory_mb": memory_mb, "disk_gb": disk_gb}})
}

async fn show(S(svc): S<State>, Auth(ctx): Auth, mv: Microversion, Path(host): Path<String>) -> Result<Response> {
    if mv.at_least(2, 43) {
        return Err(common::version_not_found());
    }
    authorize(&svc, &ctx, "os_compute_api:os-hosts:show", &json!({}))?;
    let node = compute_nodes::of_host(&svc.db, &host)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| not_found(format!("Compute host {host} could not be found.")))?;
    let instances = usage::on_host(&svc.db, &host).await?;
    let mut out = vec![
        resource(&host, "(total)", node.vcpus, node.memory_mb, node.local_gb),
        resource(&host, "(used_now)", node.vcpus_used, node.memory_mb_used, node.local_gb_used),
    ];
    let disk = |i: &usage::Instance| i.root_gb + i.ephemeral_gb;
    out.push(resource(
        &host,
        "(used_max)",
        instances.iter().map(|i| i.vcpus).sum(),
        instances.iter().map(|i| i.memory_mb).sum(),
        instances.iter().map(disk).sum(),
    ));
    let mut per: BTreeMap<&str, (i64, i64, i64)> = BTreeMap::new();
    for i in &instances {
        let e = per.entry(i.project_id.as_str()).or_default();
        e.0 += i.vcpus;
        e.1 += i.memory_mb;
        e.2 += disk(i);
    }
    for (p, (c, m, d)) in per {
        out.push(resource(&host, p, c, m, d));
    }
    Ok(ok(json!({ "host": out })))
}
