//! `/os-hypervisors` (admin): the compute nodes with their service's state.
//!
//! Per microversion: `cpu_info` as an object from 2.28; paging from 2.33;
//! from 2.53 uuid ids, `hypervisor_hostname_pattern` and `with_servers`
//! replace the `/{pattern}/search` and `/{pattern}/servers` routes, and
//! unknown query parameters are refused; `servers: []` always present when
//! asked for from 2.75; from 2.88 the detail loses the capacity fields and
//! gains `uptime`, and `/statistics` and `/{id}/uptime` are gone.

use axum::Router;
use axum::extract::{Path, State as S};
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};
use stratus_core::Microversion;
use stratus_core::auth::Auth;
use stratus_core::extract::RawQuery;

use super::common::{self, invalid_query};
use crate::api::{authorize, ok};
use crate::error::{ComputeError, Result, bad, not_found};
use crate::store::compute_nodes::{self, ComputeNode};
use crate::store::services::{self, COMPUTE, Service};
use crate::store::usage::{self, Instance};
use crate::{ComputeService, State};

pub fn routes() -> Router<State> {
    Router::new()
        .route("/v2.1/os-hypervisors", get(index))
        .route("/v2.1/os-hypervisors/detail", get(detail))
        .route("/v2.1/os-hypervisors/statistics", get(statistics))
        .route("/v2.1/os-hypervisors/{id}", get(show))
        .route("/v2.1/os-hypervisors/{id}/uptime", get(uptime))
        .route("/v2.1/os-hypervisors/{id}/search", get(search))
        .route("/v2.1/os-hypervisors/{id}/servers", get(servers))
}

fn rule(name: &str) -> String {
    format!("os_compute_api:os-hypervisors:{name}")
}

fn hypervisor_not_found(id: &str) -> ComputeError {
    not_found(format!("Hypervisor with ID '{id}' could not be found."))
}

/// What the view needs about a node: its service and, when asked, its servers.
struct Node {
    node: ComputeNode,
    service: Service,
    servers: Option<Vec<Instance>>,
    workload: i64,
}

fn uptime_text(svc: &Service) -> String {
    let secs = ((chrono::Utc::now().timestamp_micros() - svc.created_at) / 1_000_000).max(0);
    let now = chrono::Utc::now().format("%H:%M:%S");
    let (days, rem) = (secs / 86_400, secs % 86_400);
    format!(
        " {now} up {days} days, {:2}:{:02},  0 users,  load average: 0.00, 0.00, 0.00",
        rem / 3600,
        (rem % 3600) / 60
    )
}

fn view(svc: &ComputeService, n: &Node, detail: bool, mv: Microversion, with_servers: bool) -> Value {
    let up = services::is_up(&n.service, svc.cfg.compute.service_down_time);
    let uuid_ids = mv.at_least(2, 53);
    let mut v = json!({
        "id": if uuid_ids { json!(n.node.uuid) } else { json!(n.node.id) },
        "hypervisor_hostname": n.node.hypervisor_hostname,
        "state": if up { "up" } else { "down" },
        "status": if n.service.disabled { "disabled" } else { "enabled" },
    });
    if detail {
        v["hypervisor_type"] = json!(n.node.hypervisor_type);
        v["hypervisor_version"] = json!(n.node.hypervisor_version);
        v["host_ip"] = json!(n.node.host_ip);
        v["service"] = json!({
            "id": if uuid_ids { json!(n.service.uuid) } else { json!(n.service.id) },
            "host": n.node.host,
            "disabled_reason": n.service.disabled_reason,
        });
        if mv.at_least(2, 88) {
            v["uptime"] = if up { json!(uptime_text(&n.service)) } else { Value::Null };
        } else {
            let c = &n.node;
            v["vcpus"] = json!(c.vcpus);
            v["memory_mb"] = json!(c.memory_mb);
            v["local_gb"] = json!(c.local_gb);
            v["vcpus_used"] = json!(c.vcpus_used);
            v["memory_mb_used"] = json!(c.memory_mb_used);
            v["local_gb_used"] = json!(c.local_gb_used);
            v["free_ram_mb"] = json!(c.memory_mb - c.memory_mb_used);
            v["free_disk_gb"] = json!(c.local_gb - c.local_gb_used);
            v["current_workload"] = json!(n.workload);
            v["running_vms"] = json!(c.running_vms);
            v["disk_available_least"] = json!(c.local_gb - c.local_gb_used);
            v["cpu_info"] = if mv.at_least(2, 28) {
                serde_json::from_str::<Value>(&c.cpu_info).ok().filter(Value::is_object).unwrap_or_else(|| json!({}))
            } else {
                json!(c.cpu_info)
            };
        }
    }
    match &n.servers {
        Some(list) if !list.is_empty() => {
            v["servers"] =
                json!(list.iter().map(|i| json!({"name": i.display_name, "uuid": i.uuid})).collect::<Vec<_>>());
        }
        _ if with_servers && mv.at_least(2, 75) => v["servers"] = json!([]),
        _ => {}
    }
    v
}

/// Nodes with their compute service (nodes whose service is gone are skipped, as in Nova).
async fn with_services(
    svc: &ComputeService,
    nodes: Vec<ComputeNode>,
    with_servers: bool,
    detail: bool,
) -> Result<Vec<Node>> {
    let all = services::list(&svc.db).await?;
    let mut out = Vec::new();
    for node in nodes {
        let Some(service) = all.iter().find(|s| s.host == node.host && s.binary == COMPUTE).cloned() else {
            continue;
        };
        let need_instances = with_servers || (detail);
        let instances = if need_instances { usage::on_host(&svc.db, &node.host).await? } else { Vec::new() };
        let workload = instances.iter().filter(|i| i.task_state.is_some()).count() as i64;
        out.push(Node { node, service, servers: with_servers.then_some(instances), workload });
    }
    Ok(out)
}

fn pattern_match(node: &ComputeNode, pattern: &str) -> bool {
    // Nova matches `LIKE %pattern%`
    node.hypervisor_hostname.to_lowercase().contains(&pattern.to_lowercase())
}

async fn by_pattern(svc: &ComputeService, pattern: &str) -> Result<Vec<ComputeNode>> {
    let nodes: Vec<ComputeNode> =
        compute_nodes::list(&svc.db).await?.into_iter().filter(|n| pattern_match(n, pattern)).collect();
    if nodes.is_empty() {
        return Err(not_found(format!("No hypervisor matching '{pattern}' could be found.")));
    }
    Ok(nodes)
}

fn with_servers_param(q: &RawQuery) -> Result<bool> {
    match q.get("with_servers") {
        None => Ok(false),
        Some(v) => common::boolean("with_servers", &json!(v))
            .map_err(|_| invalid_query("with_servers", v, &format!("'{v}' is not one of the boolean words"))),
    }
}

async fn list(svc: &ComputeService, mv: Microversion, q: &RawQuery, detail: bool) -> Result<Value> {
    let (mut pattern, mut with_servers) = (None, false);
    if mv.at_least(2, 53) {
        common::check_query(q, &["limit", "marker", "hypervisor_hostname_pattern", "with_servers"], true)?;
        if let Some(p) = q.get("hypervisor_hostname_pattern") {
            common::fqdn("hypervisor_hostname_pattern", &json!(p)).map_err(|_| {
                invalid_query("hypervisor_hostname_pattern", p, &format!("'{p}' does not match '^[a-zA-Z0-9-._]*$'"))
            })?;
            pattern = Some(p.to_string());
        }
        with_servers = with_servers_param(q)?;
    }
    let paged = mv.at_least(2, 33);
    let (limit, marker) = if paged { common::limit_marker(q)? } else { (usize::MAX, None) };
    let mut links = paged;
    let nodes = if let Some(p) = &pattern {
        if q.has("limit") || marker.is_some() {
            return Err(bad(
                "Paging over hypervisors with the hypervisor_hostname_pattern query parameter is not supported.",
            ));
        }
        links = false;
        by_pattern(svc, p).await?
    } else {
        let mut all = compute_nodes::list(&svc.db).await?;
        if let Some(m) = &marker {
            let pos = all
                .iter()
                .position(|n| if mv.at_least(2, 53) { &n.uuid == m } else { &n.id.to_string() == m })
                .ok_or_else(|| bad(format!("marker [{m}] not found")))?;
            all.drain(..=pos);
        }
        all.truncate(limit);
        all
    };
    let nodes = with_services(svc, nodes, with_servers, detail).await?;
    let list: Vec<Value> = nodes.iter().map(|n| view(svc, n, detail, mv, with_servers)).collect();
    let mut body = json!({ "hypervisors": list });
    if links {
        let last = nodes.last().map(|n| if mv.at_least(2, 53) { n.node.uuid.clone() } else { n.node.id.to_string() });
        let coll = if detail { "os-hypervisors/detail" } else { "os-hypervisors" };
        let l = common::next_links(svc, coll, q, nodes.len(), limit, last.as_deref());
        if !l.is_empty() {
            body["hypervisors_links"] = json!(l);
        }
    }
    Ok(body)
}

async fn index(S(svc): S<State>, Auth(ctx): Auth, mv: Microversion, q: RawQuery) -> Result<Response> {
    authorize(&svc, &ctx, &rule("list"), &json!({}))?;
    Ok(ok(list(&svc, mv, &q, false).await?))
}

async fn detail(S(svc): S<State>, Auth(ctx): Auth, mv: Microversion, q: RawQuery) -> Result<Response> {
    authorize(&svc, &ctx, &rule("list-detail"), &json!({}))?;
    Ok(ok(list(&svc, mv, &q, true).await?))
}

/// The node an id names in this microversion (int before 2.53, uuid from it).
async fn node_by_id(svc: &ComputeService, id: &str, mv: Microversion) -> Result<ComputeNode> {
    let node = if mv.at_least(2, 53) {
        if !common::is_uuid_like(id) {
            return Err(bad(format!("Invalid uuid {id}")));
        }
        compute_nodes::get_by_uuid(&svc.db, id).await?
    } else {
        let n = id.trim().parse::<i64>().map_err(|_| hypervisor_not_found(id))?;
        compute_nodes::get(&svc.db, n).await?
    };
    node.ok_or_else(|| hypervisor_not_found(id))
}

async fn show(
    S(svc): S<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    Path(id): Path<String>,
    q: RawQuery,
) -> Result<Response> {
    let mut with_servers = false;
    if mv.at_least(2, 53) {
        common::check_query(&q, &["with_servers"], true)?;
        with_servers = with_servers_param(&q)?;
    }
    authorize(&svc, &ctx, &rule("show"), &json!({}))?;
    let node = node_by_id(&svc, &id, mv).await?;
    let nodes = with_services(&svc, vec![node], with_servers, true).await?;
    let n = nodes.first().ok_or_else(|| hypervisor_not_found(&id))?;
    Ok(ok(json!({"hypervisor": view(&svc, n, true, mv, with_servers)})))
}

async fn uptime(S(svc): S<State>, Auth(ctx): Auth, mv: Microversion, Path(id): Path<String>) -> Result<Response> {
    if mv.at_least(2, 88) {
        return Err(common::version_not_found());
    }
    authorize(&svc, &ctx, &rule("uptime"), &json!({}))?;
    let node = node_by_id(&svc, &id, mv).await?;
    let nodes = with_services(&svc, vec![node], false, false).await?;
    let n = nodes.first().ok_or_else(|| hypervisor_not_found(&id))?;
    if !services::is_up(&n.service, svc.cfg.compute.service_down_time) {
        return Err(bad(format!("Compute service of {} is unavailable at this time.", n.node.host)));
    }
    let mut v = view(&svc, n, false, mv, false);
    v["uptime"] = json!(uptime_text(&n.service));
    Ok(ok(json!({"hypervisor": v})))
}

async fn search(S(svc): S<State>, Auth(ctx): Auth, mv: Microversion, Path(pattern): Path<String>) -> Result<Response> {
    if mv.at_least(2, 53) {
        return Err(common::version_not_found());
    }
    authorize(&svc, &ctx, &rule("search"), &json!({}))?;
    let nodes = with_services(&svc, by_pattern(&svc, &pattern).await?, false, false).await?;
    Ok(ok(json!({"hypervisors": nodes.iter().map(|n| view(&svc, n, false, mv, false)).collect::<Vec<_>>()})))
}

async fn servers(S(svc): S<State>, Auth(ctx): Auth, mv: Microversion, Path(pattern): Path<String>) -> Result<Response> {
    if mv.at_least(2, 53) {
        return Err(common::version_not_found());
    }
    authorize(&svc, &ctx, &rule("servers"), &json!({}))?;
    let nodes = with_services(&svc, by_pattern(&svc, &pattern).await?, true, false).await?;
    Ok(ok(json!({"hypervisors": nodes.iter().map(|n| view(&svc, n, false, mv, false)).collect::<Vec<_>>()})))
}

async fn statistics(S(svc): S<State>, Auth(ctx): Auth, mv: Microversion) -> Result<Response> {
    if mv.at_least(2, 88) {
        return Err(common::version_not_found());
    }
    authorize(&svc, &ctx, &rule("statistics"), &json!({}))?;
    let nodes = with_services(&svc, compute_nodes::list(&svc.db).await?, false, true).await?;
    let sum = |f: &dyn Fn(&Node) -> i64| nodes.iter().map(f).sum::<i64>();
    Ok(ok(json!({"hypervisor_statistics": {
        "count": nodes.len(),
        "vcpus": sum(&|n| n.node.vcpus),
        "memory_mb": sum(&|n| n.node.memory_mb),
        "local_gb": sum(&|n| n.node.local_gb),
        "vcpus_used": sum(&|n| n.node.vcpus_used),
        "memory_mb_used": sum(&|n| n.node.memory_mb_used),
        "local_gb_used": sum(&|n| n.node.local_gb_used),
        "free_ram_mb": sum(&|n| n.node.memory_mb - n.node.memory_mb_used),
        "free_disk_gb": sum(&|n| n.node.local_gb - n.node.local_gb_used),
        "current_workload": sum(&|n| n.workload),
        "running_vms": sum(&|n| n.node.running_vms),
        "disk_available_least": sum(&|n| n.node.local_gb - n.node.local_gb_used),
    }})))
}
