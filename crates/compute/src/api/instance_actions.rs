//! `/servers/{id}/os-instance-actions` (with events), `/servers/{id}/ips`.

use axum::Router;
use axum::extract::{Path, State as S};
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};
use stratus_core::auth::Auth;
use stratus_core::extract::RawQuery;
use stratus_core::{AuthContext, Microversion};

use super::resources::common as c;
use super::{authorize, is_admin, ok, project_target};
use crate::error::{Result, not_found, server_not_found};
use crate::store::instances::{self, Instance};
use crate::{ComputeService, State};

pub fn routes() -> Router<State> {
    Router::new()
        .route("/v2.1/servers/{id}/os-instance-actions", get(list))
        .route("/v2.1/servers/{id}/os-instance-actions/{request_id}", get(show))
        .route("/v2.1/servers/{id}/ips", get(ips))
        .route("/v2.1/servers/{id}/ips/{network}", get(ip_network))
}

/// Actions stay visible after the server is deleted (2.21+), to its project and admins.
async fn server_any(svc: &ComputeService, ctx: &AuthContext, mv: Microversion, id: &str) -> Result<Instance> {
    let inst = instances::get(&svc.db, id).await?.ok_or_else(|| server_not_found(id))?;
    if (inst.deleted && !mv.at_least(2, 21))
        || (!is_admin(svc, ctx) && ctx.project_id.as_deref() != Some(inst.project_id.as_str()))
    {
        return Err(server_not_found(id));
    }
    Ok(inst)
}

fn action_view(a: &crate::entity::instance_action::Model, mv: Microversion) -> Value {
    let mut v = json!({
        "action": a.action,
        "instance_uuid": a.instance_uuid,
        "request_id": a.request_id,
        "user_id": a.user_id,
        "project_id": a.project_id,
        "start_time": c::naive_time(a.start_time),
        "message": a.message,
    });
    if mv.at_least(2, 58) {
        v["updated_at"] = json!(c::naive_time(a.updated_at));
    }
    v
}

async fn list(
    S(svc): S<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    Path(id): Path<String>,
    q: RawQuery,
) -> Result<Response> {
    let inst = server_any(&svc, &ctx, mv, &id).await?;
    authorize(&svc, &ctx, "os_compute_api:os-instance-actions:list", &project_target(&inst.project_id))?;
    let mut all = instances::actions(&svc.db, &id).await?;
    if mv.at_least(2, 58) {
        if let Some(v) = q.get("changes-since")
            && let Some(t) = stratus_core::time::parse(v)
        {
            all.retain(|a| a.updated_at >= t.timestamp_micros());
        }
        if mv.at_least(2, 66)
            && let Some(v) = q.get("changes-before")
            && let Some(t) = stratus_core::time::parse(v)
        {
            all.retain(|a| a.updated_at <= t.timestamp_micros());
        }
    }
    let (limit, marker) = if mv.at_least(2, 58) { c::limit_marker(&q)? } else { (c::MAX_LIMIT, None) };
    let start = match &marker {
        Some(m) => all
            .iter()
            .position(|a| &a.request_id == m)
            .map(|p| p + 1)
            .ok_or_else(|| crate::error::bad(format!("Marker {m} could not be found.")))?,
        None => 0,
    };
    let page: Vec<_> = all.into_iter().skip(start).take(limit).collect();
    let mut body = json!({"instanceActions": page.iter().map(|a| action_view(a, mv)).collect::<Vec<_>>()});
    if mv.at_least(2, 58) && q.get("limit").is_some() {
        let next = c::next_links(
            &svc,
            &format!("servers/{id}/os-instance-actions"),
            &q,
            page.len(),
            limit,
            page.last().map(|a| a.request_id.as_str()),
        );
        if !next.is_empty() {
            body["links"] = json!(next);
        }
    }
    Ok(ok(body))
}

async fn show(
    S(svc): S<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    Path((id, rid)): Path<(String, String)>,
) -> Result<Response> {
    let inst = server_any(&svc, &ctx, mv, &id).await?;
    authorize(&svc, &ctx, "os_compute_api:os-instance-actions:show", &project_target(&inst.project_id))?;
    let a = instances::action(&svc.db, &id, &rid)
        .await?
        .ok_or_else(|| not_found(format!("Action for request_id {rid} on instance {id} not found")))?;
    let mut v = action_view(&a, mv);
    let show_events = mv.at_least(2, 51)
        || svc.policy.allowed(&ctx, "os_compute_api:os-instance-actions:events", &project_target(&inst.project_id));
    if show_events {
        let details_ok = svc.policy.allowed(
            &ctx,
            "os_compute_api:os-instance-actions:events:details",
            &project_target(&inst.project_id),
        );
        let admin =
            svc.policy.allowed(&ctx, "os_compute_api:os-instance-actions:events", &project_target(&inst.project_id));
        let events: Vec<Value> = instances::events(&svc.db, a.id)
            .await?
            .iter()
            .map(|e| {
                let mut ev = json!({
                    "event": e.event,
                    "start_time": c::naive_time(e.start_time),
                    "finish_time": e.finish_time.map(c::naive_time),
                    "result": e.result,
                });
                if admin {
                    ev["traceback"] = json!(e.traceback);
                }
                if mv.at_least(2, 62) {
                    if admin {
                        ev["host"] = json!(e.host.clone().unwrap_or_default());
                    }
                    ev["hostId"] = json!(super::servers::host_id(&inst.project_id, e.host.as_deref()));
                }
                if mv.at_least(2, 84) && details_ok {
                    ev["details"] = json!(e.details);
                }
                ev
            })
            .collect();
        v["events"] = json!(events);
    }
    Ok(ok(json!({"instanceAction": v})))
}

async fn ips(S(svc): S<State>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Response> {
    let inst = super::servers::visible(&svc, &ctx, &id).await?;
    authorize(&svc, &ctx, "os_compute_api:ips:index", &project_target(&inst.project_id))?;
    Ok(ok(json!({"addresses": plain_addresses(&svc, &inst).await})))
}

/// The server's addresses, `version` and `addr` only, its floating IPs after their fixed IPs.
async fn plain_addresses(svc: &crate::ComputeService, inst: &crate::store::instances::Instance) -> Value {
    let vifs = crate::network::vifs_of(&inst.system_metadata);
    let ports: Vec<String> = vifs.iter().map(|v| v.port_id.clone()).collect();
    let floating = super::floating_ips::on_ports(svc, &ports).await;
    let mut a = crate::network::plain_addresses(&vifs);
    super::floating_ips::with_floating(&mut a, &vifs, &floating, false);
    a
}

async fn ip_network(
    S(svc): S<State>,
    Auth(ctx): Auth,
    Path((id, network)): Path<(String, String)>,
) -> Result<Response> {
    let inst = super::servers::visible(&svc, &ctx, &id).await?;
    authorize(&svc, &ctx, "os_compute_api:ips:show", &project_target(&inst.project_id))?;
    match plain_addresses(&svc, &inst).await.get(&network) {
        Some(a) => Ok(ok(json!({ network: a }))),
        None => Err(not_found("Instance is not a member of specified network")),
    }
}
