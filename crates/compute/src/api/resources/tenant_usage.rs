//! `/os-simple-tenant-usage` (admin: every project) and
//! `/os-simple-tenant-usage/{project}` (its readers): hours, vCPU-, RAM- and
//! disk-hours of the servers that ran in a period (`start`, `end`; default
//! now), per project, with each server's usage when `detailed=1`.
//!
//! Per microversion: paging by server (`limit`, `marker`) with
//! `tenant_usages_links` from 2.40; unknown query parameters refused from 2.75.

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::{Path, State as S};
use axum::response::Response;
use axum::routing::get;
use chrono::{NaiveDateTime, Utc};
use serde_json::{Value, json};
use stratus_core::Microversion;
use stratus_core::auth::Auth;
use stratus_core::extract::RawQuery;

use super::common::{self, naive_time};
use crate::api::{authorize, ok, project_target};
use crate::error::{Result, bad};
use crate::store::usage::{self, Instance};
use crate::{ComputeService, State};

pub fn routes() -> Router<State> {
    Router::new()
        .route("/v2.1/os-simple-tenant-usage", get(index))
        .route("/v2.1/os-simple-tenant-usage/{id}", get(show))
}

const US_PER_HOUR: f64 = 3_600_000_000.0;

/// A period bound as Nova parses it (three formats, naive UTC); empty: now.
fn parse_time(v: Option<&str>) -> Result<i64> {
    let Some(s) = v.filter(|s| !s.is_empty()) else {
        return Ok(Utc::now().timestamp_micros());
    };
    for fmt in ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
            return Ok(t.and_utc().timestamp_micros());
        }
    }
    Err(bad("Invalid datetime string: Datetime is in invalid format"))
}

struct Period {
    start: i64,
    stop: i64,
    detailed: bool,
}

fn period(q: &RawQuery) -> Result<Period> {
    let start = parse_time(q.get("start"))?;
    let stop = parse_time(q.get("end"))?;
    if start >= stop {
        return Err(bad("Invalid start time. The start time cannot occur after the end time."));
    }
    let now = Utc::now().timestamp_micros();
    Ok(Period { start, stop: stop.min(now), detailed: q.get("detailed") == Some("1") })
}

fn hours_for(i: &Instance, p: &Period) -> f64 {
    let Some(launched) = i.launched_at else { return 0.0 };
    if i.terminated_at.is_some_and(|t| t < p.start) || launched > p.stop {
        return 0.0;
    }
    let start = launched.max(p.start);
    let stop = i.terminated_at.map_or(p.stop, |t| t.min(p.stop));
    (stop - start) as f64 / US_PER_HOUR
}

fn flavor_name(i: &Instance) -> String {
    serde_json::from_str::<Value>(&i.flavor)
        .ok()
        .and_then(|f| f.get("name").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_default()
}

/// One server's usage in the period.
fn server_usage(i: &Instance, p: &Period) -> Value {
    let launched = i.launched_at.unwrap_or(i.created_at);
    let (state, uptime_us) = match i.terminated_at {
        Some(t) => ("terminated".to_string(), t - launched),
        None => (i.vm_state.clone(), Utc::now().timestamp_micros() - launched),
    };
    json!({
        "hours": hours_for(i, p),
        "flavor": flavor_name(i),
        "instance_id": i.uuid,
        "name": i.display_name,
        "tenant_id": i.project_id,
        "memory_mb": i.memory_mb,
        "local_gb": i.root_gb + i.ephemeral_gb,
        "vcpus": i.vcpus,
        "started_at": naive_time(launched),
        "ended_at": i.terminated_at.map(naive_time),
        "state": state,
        "uptime": uptime_us / 1_000_000,
    })
}

/// The usages of a period by project, and every server usage (for links).
async fn usages(
    svc: &ComputeService,
    p: &Period,
    project: Option<&str>,
    detailed: bool,
    limit: usize,
    marker: Option<&str>,
) -> Result<(Vec<Value>, Vec<Value>)> {
    let mut instances = usage::active_in_window(&svc.db, p.start, p.stop, project).await?;
    if let Some(m) = marker {
        let pos =
            instances.iter().position(|i| i.uuid == m).ok_or_else(|| bad(format!("Marker {m} could not be found.")))?;
        instances.drain(..=pos);
    }
    instances.truncate(limit);
    let mut order: Vec<String> = Vec::new();
    let mut by_project: BTreeMap<String, Value> = BTreeMap::new();
    let mut all = Vec::new();
    for i in &instances {
        let u = server_usage(i, p);
        let hours = u["hours"].as_f64().unwrap_or(0.0);
        let summary = by_project.entry(i.project_id.clone()).or_insert_with(|| {
            order.push(i.project_id.clone());
            let mut s = json!({
                "tenant_id": i.project_id,
                "total_local_gb_usage": 0.0,
                "total_vcpus_usage": 0.0,
                "total_memory_mb_usage": 0.0,
                "total_hours": 0.0,
                "start": naive_time(p.start),
                "stop": naive_time(p.stop),
            });
            if detailed {
                s["server_usages"] = json!([]);
            }
            s
        });
        let add = |s: &mut Value, k: &str, x: f64| {
            let cur = s[k].as_f64().unwrap_or(0.0);
            s[k] = json!(cur + x);
        };
        add(summary, "total_local_gb_usage", (i.root_gb + i.ephemeral_gb) as f64 * hours);
        add(summary, "total_vcpus_usage", i.vcpus as f64 * hours);
        add(summary, "total_memory_mb_usage", i.memory_mb as f64 * hours);
        add(summary, "total_hours", hours);
        if detailed && let Some(list) = summary["server_usages"].as_array_mut() {
            list.push(u.clone());
        }
        all.push(u);
    }
    let list = order.iter().filter_map(|p| by_project.remove(p)).collect();
    Ok((list, all))
}

fn paging(q: &RawQuery, mv: Microversion) -> Result<(usize, Option<String>)> {
    if mv.at_least(2, 40) { common::limit_marker(q) } else { Ok((common::MAX_LIMIT, None)) }
}

fn allowed(mv: Microversion, index: bool) -> Vec<&'static str> {
    let mut a = vec!["start", "end"];
    if index {
        a.push("detailed");
    }
    if mv.at_least(2, 40) {
        a.extend(["limit", "marker"]);
    }
    a
}

async fn index(S(svc): S<State>, Auth(ctx): Auth, mv: Microversion, q: RawQuery) -> Result<Response> {
    common::check_query(&q, &allowed(mv, true), mv.at_least(2, 75))?;
    authorize(&svc, &ctx, "os_compute_api:os-simple-tenant-usage:list", &json!({}))?;
    let p = period(&q)?;
    let (limit, marker) = paging(&q, mv)?;
    let (list, all) = usages(&svc, &p, None, p.detailed, limit, marker.as_deref()).await?;
    let mut body = json!({ "tenant_usages": list });
    if mv.at_least(2, 40) {
        let last = all.last().and_then(|u| u["instance_id"].as_str());
        let links = common::next_links(&svc, "os-simple-tenant-usage", &q, all.len(), limit, last);
        if !links.is_empty() {
            body["tenant_usages_links"] = json!(links);
        }
    }
    Ok(ok(body))
}

async fn show(
    S(svc): S<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    Path(id): Path<String>,
    q: RawQuery,
) -> Result<Response> {
    common::check_query(&q, &allowed(mv, false), mv.at_least(2, 75))?;
    authorize(&svc, &ctx, "os_compute_api:os-simple-tenant-usage:show", &project_target(&id))?;
    let p = period(&q)?;
    let (limit, marker) = paging(&q, mv)?;
    let (list, all) = usages(&svc, &p, Some(&id), true, limit, marker.as_deref()).await?;
    let mut body = json!({"tenant_usage": list.into_iter().next().unwrap_or_else(|| json!({}))});
    if mv.at_least(2, 40) {
        let last = all.last().and_then(|u| u["instance_id"].as_str());
        let links = common::next_links(&svc, &format!("os-simple-tenant-usage/{id}"), &q, all.len(), limit, last);
        if !links.is_empty() {
            body["tenant_usage_links"] = json!(links);
        }
    }
    Ok(ok(body))
}
