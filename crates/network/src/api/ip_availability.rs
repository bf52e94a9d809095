//! `/v2.0/network-ip-availabilities[/{network_id}]` (admin): per network and
//! subnet, how many addresses the allocation pools hold (`total_ips`) and
//! how many ports hold (`used_ips`).

use axum::Router;
use axum::extract::{Path, State as AxState};
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};
use stratus_core::auth::Auth;
use stratus_core::extract::RawQuery;

use crate::api::list::{self, ListParams};
use crate::api::subnets::pools_of;
use crate::api::{authorize, ok};
use crate::entity::network::Model as Network;
use crate::error::{Result, bad, not_found};
use crate::ipam;
use crate::store::networks::{self, Viewer};
use crate::store::subnets;
use crate::{NetworkService, State};

pub fn routes() -> Router<State> {
    Router::new()
        .route("/v2.0/network-ip-availabilities", get(index))
        .route("/v2.0/network-ip-availabilities/{id}", get(show))
}

/// Totals saturate at `i64::MAX`-sized JSON numbers (an IPv6 /64 holds 2^64).
fn count(n: u128) -> Value {
    match u64::try_from(n) {
        Ok(v) => json!(v),
        Err(_) => json!(u64::MAX),
    }
}

async fn availability(svc: &NetworkService, n: &Network, ip_version: Option<i64>) -> Result<Value> {
    let subs: Vec<_> = subnets::of_network(&svc.db.read, &n.id)
        .await?
        .into_iter()
        .filter(|s| ip_version.is_none_or(|v| v == s.ip_version))
        .collect();
    let ids: Vec<String> = subs.iter().map(|s| s.id.clone()).collect();
    let used = subnets::used_counts(&svc.db.read, &ids).await?;
    let (mut total, mut used_all) = (0u128, 0u128);
    let mut per = Vec::new();
    for s in &subs {
        let t = ipam::pool_size(&pools_of(s));
        let u = used.get(&s.id).copied().unwrap_or(0).max(0) as u128;
        total = total.saturating_add(t);
        used_all += u;
        per.push(json!({
            "subnet_id": s.id,
            "subnet_name": s.name,
            "cidr": s.cidr,
            "ip_version": s.ip_version,
            "total_ips": count(t),
            "used_ips": count(u),
        }));
    }
    Ok(json!({
        "network_id": n.id,
        "network_name": n.name,
        "tenant_id": n.project_id,
        "project_id": n.project_id,
        "total_ips": count(total),
        "used_ips": count(used_all),
        "subnet_ip_availability": per,
    }))
}

async fn index(AxState(svc): AxState<State>, Auth(ctx): Auth, q: RawQuery) -> Result<Response> {
    authorize(&svc, &ctx, "get_network_ip_availability", "")?;
    let mut p = ListParams::parse(&q)?;
    let ip_version = match p.take_filter("ip_version") {
        Some(v) => {
            Some(v.first().and_then(|s| s.parse::<i64>().ok()).ok_or_else(|| bad("Invalid input for ip_version"))?)
        }
        None => None,
    };
    if let Some(names) = p.take_filter("network_name") {
        p.filters.push(("name".into(), names));
    }
    if let Some(ids) = p.take_filter("network_id") {
        p.filters.push(("id".into(), ids));
    }
    // sorting and paging are not offered on this collection
    p.sorts.clear();
    p.limit = None;
    p.marker = None;
    let (nets, _) = networks::list(&svc.db.read, &Viewer::Admin, &p).await?;
    let mut items = Vec::new();
    for n in &nets {
        items.push(list::project(availability(&svc, n, ip_version).await?, &p.fields));
    }
    Ok(ok(json!({"network_ip_availabilities": items})))
}

async fn show(AxState(svc): AxState<State>, Auth(ctx): Auth, Path(id): Path<String>, q: RawQuery) -> Result<Response> {
    authorize(&svc, &ctx, "get_network_ip_availability", "")?;
    let p = ListParams::parse(&q)?;
    let n = networks::get(&svc.db.read, &id)
        .await?
        .ok_or_else(|| not_found("NetworkNotFound", format!("Network {id} could not be found.")))?;
    Ok(ok(json!({"network_ip_availability": list::project(availability(&svc, &n, None).await?, &p.fields)})))
}
