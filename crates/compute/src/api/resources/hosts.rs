//! `/os-hosts` (admin, removed at 2.43): the hosts of the services (filter
//! `zone`) and one host's resources (total, used now, used by its servers,
//! per project); the host update (enable or disable its compute service;
//! maintenance mode is not supported, 501 as Nova's drivers answer) and the
//! power actions (501: no driver here powers hosts).

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::{Path, State as S};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};
use stratus_core::Microversion;
use stratus_core::auth::Auth;
use stratus_core::extract::{Json, RawQuery};

use super::availability_zones::{API_BINARIES, services_with_zones};
use super::common;
use crate::State;
use crate::api::{authorize, ok};
use crate::error::{ComputeError, Result, bad, not_found};
use crate::store::{compute_nodes, services, usage};

pub fn routes() -> Router<State> {
    Router::new()
        .route("/v2.1/os-hosts", get(index))
        .route("/v2.1/os-hosts/{host}", get(show).put(update))
        .route("/v2.1/os-hosts/{host}/reboot", get(reboot))
        .route("/v2.1/os-hosts/{host}/shutdown", get(shutdown))
        .route("/v2.1/os-hosts/{host}/startup", get(startup))
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
        .map(|(s, z)| json!({"host_name": s.host, "service": s.topic.split('.').next().unwrap_or_default(), "zone": z}))
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

/// The compute service of `host`, or Nova's 404.
async fn compute_service(svc: &crate::ComputeService, host: &str) -> Result<services::Service> {
    services::get_by_host_binary(&svc.db, host, crate::manager::BINARY)
        .await?
        .ok_or_else(|| not_found(format!("Compute host {host} could not be found.")))
}

/// `PUT /os-hosts/{host}` `{"status": "enable"|"disable", "maintenance_mode": ...}`.
async fn update(
    S(svc): S<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    Path(host): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response> {
    if mv.at_least(2, 43) {
        return Err(common::version_not_found());
    }
    let o = common::object(&body, None)?;
    common::no_extra(o, None, &["status", "maintenance_mode"])?;
    let status = o.get("status").map(|v| common::one_of("status", v, &["enable", "disable"])).transpose()?;
    let maintenance =
        o.get("maintenance_mode").map(|v| common::one_of("maintenance_mode", v, &["enable", "disable"])).transpose()?;
    if status.is_none() && maintenance.is_none() {
        return Err(bad(
            "Invalid input for field/attribute request_body. Value: {}. {} is not valid under any of the given schemas",
        ));
    }
    authorize(&svc, &ctx, "os_compute_api:os-hosts:update", &json!({}))?;
    let service = compute_service(&svc, &host).await?;
    if maintenance.is_some() {
        return Err(ComputeError::Status(
            StatusCode::NOT_IMPLEMENTED,
            "Virt driver does not implement host maintenance mode.".into(),
        ));
    }
    let disable = status == Some("disable");
    let reason = if disable { service.disabled_reason.clone() } else { None };
    services::update_state(&svc.db, service.id, disable, reason, service.forced_down).await?;
    Ok(ok(json!({"host": host, "status": if disable { "disabled" } else { "enabled" }})))
}

/// The power actions: the host must exist; no driver powers hosts (501).
async fn power_action(
    svc: &crate::ComputeService,
    ctx: &stratus_core::AuthContext,
    mv: Microversion,
    host: &str,
    rule: &str,
) -> Result<Response> {
    if mv.at_least(2, 43) {
        return Err(common::version_not_found());
    }
    authorize(svc, ctx, rule, &json!({}))?;
    compute_service(svc, host).await?;
    Err(ComputeError::Status(
        StatusCode::NOT_IMPLEMENTED,
        "Virt driver does not implement host power management.".into(),
    ))
}

async fn reboot(S(svc): S<State>, Auth(ctx): Auth, mv: Microversion, Path(host): Path<String>) -> Result<Response> {
    power_action(&svc, &ctx, mv, &host, "os_compute_api:os-hosts:reboot").await
}

async fn shutdown(S(svc): S<State>, Auth(ctx): Auth, mv: Microversion, Path(host): Path<String>) -> Result<Response> {
    power_action(&svc, &ctx, mv, &host, "os_compute_api:os-hosts:shutdown").await
}

async fn startup(S(svc): S<State>, Auth(ctx): Auth, mv: Microversion, Path(host): Path<String>) -> Result<Response> {
    power_action(&svc, &ctx, mv, &host, "os_compute_api:os-hosts:start").await
}
