//! `/servers/{id}/os-interface`: a server's network interfaces (Nova's
//! attach-interfaces API). List and show read the server's ports from the
//! network service with the caller's token; attach resolves what is asked
//! (a port, a network, or the project's one network), makes or takes over
//! the port bound to the server's host, and has the host plug it in and
//! record it (a call: the port is given back when the host fails); detach
//! hands the unplug and the port's return to the host (a cast, 202).
//!
//! The attachment view is Nova's, field for field: `port_state`,
//! `fixed_ips` (`subnet_id`, `ip_address`), `port_id`, `net_id`, `mac_addr`,
//! and `tag` from 2.70.

use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State as S};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde_json::{Map, Value, json};
use stratus_core::auth::Auth;
use stratus_core::extract::Json;
use stratus_core::{AuthContext, Microversion};

use super::resources::common::{self as c, invalid, py_repr};
use super::servers::visible;
use super::{accepted_empty, authorize, is_admin, ok, project_target};
use crate::error::{ComputeError, Result, bad, conflict, invalid_state, not_found};
use crate::model::vm;
use crate::network::{Networking, Refusal, Requested, Vif, vifs_of};
use crate::rpc;
use crate::store::instances::{self, Instance};
use crate::{ComputeService, State};

pub fn routes() -> Router<State> {
    Router::new()
        .route("/v2.1/servers/{id}/os-interface", get(index).post(create))
        .route("/v2.1/servers/{id}/os-interface/{port_id}", get(show).delete(delete))
}

/// The vm_states an attach or detach is allowed in (with no task running).
const ALLOWED: &[&str] = &[vm::ACTIVE, vm::PAUSED, vm::STOPPED];

/// How long the API waits for the host to plug a port in.
const ATTACH_TIMEOUT: Duration = Duration::from_secs(60);

/// What a create asks for, schema-checked as Nova's `create` / `create_v249`.
#[derive(Debug, Default, PartialEq)]
struct AttachRequest {
    net_id: Option<String>,
    port_id: Option<String>,
    fixed_ip: Option<String>,
    tag: Option<String>,
}

fn uuid_field(field: &str, v: &Value) -> Result<String> {
    let s = match v {
        Value::String(s) => s,
        other => return Err(invalid(field, other, &format!("{} is not of type 'string'", py_repr(other)))),
    };
    if !c::is_uuid_like(s) {
        return Err(invalid(field, v, &format!("{} is not a 'uuid'", py_repr(v))));
    }
    Ok(s.clone())
}

fn parse(body: &Value, mv: Microversion) -> Result<AttachRequest> {
    let top = c::object(body, None)?;
    c::no_extra(top, None, &["interfaceAttachment"])?;
    let Some(att) = top.get("interfaceAttachment") else { return Ok(AttachRequest::default()) };
    let att = c::object(att, Some("interfaceAttachment"))?;
    let mut allowed = vec!["net_id", "port_id", "fixed_ips"];
    if mv.at_least(2, 49) {
        allowed.push("tag");
    }
    c::no_extra(att, Some("interfaceAttachment"), &allowed)?;
    let mut r = AttachRequest::default();
    if let Some(v) = att.get("net_id") {
        r.net_id = Some(uuid_field("net_id", v)?);
    }
    if let Some(v) = att.get("port_id") {
        r.port_id = Some(uuid_field("port_id", v)?);
    }
    if let Some(v) = att.get("fixed_ips") {
        let Value::Array(list) = v else {
            return Err(invalid("fixed_ips", v, &format!("{} is not of type 'array'", py_repr(v))));
        };
        if list.is_empty() {
            return Err(invalid("fixed_ips", v, &format!("{} is too short", py_repr(v))));
        }
        if list.len() > 1 {
            return Err(invalid("fixed_ips", v, &format!("{} is too long", py_repr(v))));
        }
        let item = c::object(&list[0], Some("fixed_ips"))?;
        c::no_extra(item, Some("fixed_ips"), &["ip_address"])?;
        let ip = c::required(item, Some("fixed_ips"), "ip_address")?;
        let valid = ip.as_str().is_some_and(|s| s.parse::<std::net::IpAddr>().is_ok());
        if !valid {
            return Err(invalid(
                "ip_address",
                ip,
                &format!("{} is not valid under any of the given schemas", py_repr(ip)),
            ));
        }
        r.fixed_ip = ip.as_str().map(str::to_string);
    }
    if let Some(v) = att.get("tag") {
        let t = c::string("tag", v, 1, 60)?;
        if t.contains(',') || t.contains('/') {
            return Err(invalid("tag", v, &format!("{} does not match '^[^,/]*$'", py_repr(v))));
        }
        r.tag = Some(t.to_string());
    }
    // Nova's checks after the schema
    if r.net_id.is_some() && r.port_id.is_some() {
        return Err(bad("Must not input both network_id and port_id"));
    }
    if r.fixed_ip.is_some() && r.net_id.is_none() {
        return Err(bad("Must input network_id when request IP address"));
    }
    Ok(r)
}

/// Nova's `_translate_interface_attachment_view` of a port; `tag` is
/// `Some` from 2.70 (then always present, null when none was given).
fn attachment(port: &Value, tag: Option<Option<&str>>) -> Value {
    let fixed_ips = match port.get("fixed_ips") {
        Some(Value::Array(ips)) => Value::Array(
            ips.iter().map(|f| json!({"subnet_id": f["subnet_id"], "ip_address": f["ip_address"]})).collect(),
        ),
        _ => Value::Null,
    };
    let mut v = json!({
        "port_state": port["status"],
        "fixed_ips": fixed_ips,
        "port_id": port["id"],
        "net_id": port["network_id"],
        "mac_addr": port["mac_address"],
    });
    if let Some(t) = tag {
        v["tag"] = json!(t);
    }
    v
}

/// The tag of a port as the server's network info has it, from 2.70.
fn tag_of<'a>(mv: Microversion, vifs: &'a [Vif], port_id: &str) -> Option<Option<&'a str>> {
    mv.at_least(2, 70).then(|| vifs.iter().find(|v| v.port_id == port_id).and_then(|v| v.tag.as_deref()))
}

fn networking(svc: &ComputeService) -> Result<Option<&Networking>> {
    Ok(svc.deps()?.network.as_deref())
}

fn not_supported() -> ComputeError {
    ComputeError::Status(StatusCode::NOT_IMPLEMENTED, "Network driver does not support this function.".into())
}

fn locked_check(svc: &ComputeService, ctx: &AuthContext, inst: &Instance) -> Result<()> {
    if inst.locked && !is_admin(svc, ctx) {
        return Err(conflict(format!("Instance {} is locked", inst.uuid)));
    }
    Ok(())
}

/// Nova's `check_instance_state(vm_state=[ACTIVE, PAUSED, STOPPED], task_state=[None])`.
fn state_check(inst: &Instance, action: &str) -> Result<()> {
    if !ALLOWED.contains(&inst.vm_state.as_str()) {
        return Err(invalid_state(action, &inst.uuid, "vm_state", &inst.vm_state));
    }
    if let Some(t) = &inst.task_state {
        return Err(invalid_state(action, &inst.uuid, "task_state", t));
    }
    Ok(())
}

fn refused(r: Refusal) -> ComputeError {
    let status = StatusCode::from_u16(r.0).unwrap_or(StatusCode::BAD_REQUEST);
    match status {
        StatusCode::NOT_FOUND => not_found(r.1),
        StatusCode::CONFLICT => conflict(r.1),
        StatusCode::FORBIDDEN => ComputeError::Forbidden(r.1),
        StatusCode::BAD_REQUEST => bad(r.1),
        other => ComputeError::Status(other, r.1),
    }
}

async fn record(svc: &ComputeService, ctx: &AuthContext, inst: &Instance, action: &str) -> Result<String> {
    let rid = stratus_core::http::current_request_id();
    instances::start_action(&svc.db.write, &inst.uuid, action, &rid, Some(&ctx.user_id), ctx.project_id.as_deref())
        .await?;
    Ok(rid)
}

/// The port as the caller sees it, when it is the server's.
async fn port_of_server(net: &Networking, ctx: &AuthContext, server: &str, port_id: &str) -> Result<Value> {
    let port = net
        .client
        .port(&ctx.token, port_id)
        .await
        .map_err(|e| ComputeError::Internal(anyhow::anyhow!("{e}")))?
        .ok_or_else(|| not_found(format!("Port id {port_id} could not be found.")))?;
    if port["device_id"].as_str() != Some(server) {
        return Err(not_found(format!("Instance {server} does not have a port with id {port_id}")));
    }
    Ok(port)
}

async fn index(S(svc): S<State>, Auth(ctx): Auth, mv: Microversion, Path(id): Path<String>) -> Result<Response> {
    let inst = visible(&svc, &ctx, &id).await?;
    authorize(&svc, &ctx, "os_compute_api:os-attach-interfaces:list", &project_target(&inst.project_id))?;
    let Some(net) = networking(&svc)? else {
        return Ok(ok(json!({"interfaceAttachments": []})));
    };
    let ports = net
        .client
        .ports(&ctx.token, &[("device_id", inst.uuid.as_str())])
        .await
        .map_err(|e| ComputeError::Internal(anyhow::anyhow!("{e}")))?;
    let vifs = vifs_of(&inst.system_metadata);
    let list: Vec<Value> =
        ports.iter().map(|p| attachment(p, tag_of(mv, &vifs, p["id"].as_str().unwrap_or_default()))).collect();
    Ok(ok(json!({"interfaceAttachments": list})))
}

async fn show(
    S(svc): S<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    Path((id, port_id)): Path<(String, String)>,
) -> Result<Response> {
    let inst = visible(&svc, &ctx, &id).await?;
    authorize(&svc, &ctx, "os_compute_api:os-attach-interfaces:show", &project_target(&inst.project_id))?;
    let Some(net) = networking(&svc)? else {
        return Err(not_found(format!("Port id {port_id} could not be found.")));
    };
    let port = port_of_server(net, &ctx, &inst.uuid, &port_id).await?;
    let vifs = vifs_of(&inst.system_metadata);
    Ok(ok(json!({"interfaceAttachment": attachment(&port, tag_of(mv, &vifs, &port_id))})))
}

async fn create(
    S(svc): S<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response> {
    let req = parse(&body, mv)?;
    let inst = visible(&svc, &ctx, &id).await?;
    authorize(&svc, &ctx, "os_compute_api:os-attach-interfaces:create", &project_target(&inst.project_id))?;
    locked_check(&svc, &ctx, &inst)?;
    state_check(&inst, "attach_interface")?;
    let Some(net) = networking(&svc)? else { return Err(not_supported()) };
    let Some(host) = inst.host.clone() else {
        return Err(invalid_state("attach_interface", &inst.uuid, "vm_state", &inst.vm_state));
    };
    let requested: Requested = net
        .resolve_attach(
            &ctx.token,
            &inst.project_id,
            req.net_id.as_deref(),
            req.port_id.as_deref(),
            req.fixed_ip.as_deref(),
            req.tag.as_deref(),
        )
        .await?
        .map_err(refused)?;
    let rid = record(&svc, &ctx, &inst, "attach_interface").await?;
    let sys: Map<String, Value> = serde_json::from_str(&inst.system_metadata).unwrap_or_default();
    let groups: Vec<String> =
        sys.get("security_groups").and_then(|v| serde_json::from_value(v.clone()).ok()).unwrap_or_default();
    let zone = inst.availability_zone.clone().unwrap_or_else(|| svc.cfg.compute.default_availability_zone.clone());
    let vif = net.attach_port(&inst.uuid, &inst.project_id, &zone, &host, &groups, &requested).await?;
    let vif = match vif {
        Ok(v) => v,
        Err(r) => {
            let _ = instances::finish_event(&svc.db, &inst.uuid, &rid, "compute_attach_interface", Some(&r.1)).await;
            return Err(refused(r));
        }
    };
    let msg =
        rpc::AttachInterface { instance_uuid: inst.uuid.clone(), vif: vif.clone(), action_request_id: rid.clone() };
    let done: std::result::Result<(), _> =
        svc.deps()?.bus.call(&rpc::attach_interface_topic(&host), &msg, &rid, ATTACH_TIMEOUT).await;
    if let Err(e) = done {
        // nothing of a failed attach stays: the port goes back, the record (if any) goes
        tracing::warn!(request_id = %rid, instance = %inst.uuid, port = %vif.port_id, error = %e, "attach interface failed on the host");
        if let Err(u) = net.release_port(&vif.port_id, vif.preserve).await {
            tracing::warn!(request_id = %rid, port = %vif.port_id, error = %format!("{u:#}"), "giving back the port of a failed attach failed");
        }
        let _ = crate::network::change_network_info(&svc.db, &inst.uuid, |vifs| {
            vifs.retain(|v| v.port_id != vif.port_id);
        })
        .await;
        return Err(ComputeError::Status(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("Failed to attach network adapter device to {}", inst.uuid),
        ));
    }
    let tag = mv.at_least(2, 70).then_some(vif.tag.as_deref());
    let port = match net.client.port(&ctx.token, &vif.port_id).await {
        Ok(Some(p)) => p,
        // the caller may not see a port compute made for it in another project: show what was recorded
        _ => json!({
            "id": vif.port_id,
            "network_id": vif.network_id,
            "mac_address": vif.mac,
            "status": "DOWN",
            "fixed_ips": [],
        }),
    };
    Ok(ok(json!({"interfaceAttachment": attachment(&port, tag)})))
}

async fn delete(S(svc): S<State>, Auth(ctx): Auth, Path((id, port_id)): Path<(String, String)>) -> Result<Response> {
    let inst = visible(&svc, &ctx, &id).await?;
    authorize(&svc, &ctx, "os_compute_api:os-attach-interfaces:delete", &project_target(&inst.project_id))?;
    locked_check(&svc, &ctx, &inst)?;
    state_check(&inst, "detach_interface")?;
    if !vifs_of(&inst.system_metadata).iter().any(|v| v.port_id == port_id) {
        return Err(not_found(format!("Port {port_id} is not attached")));
    }
    if networking(&svc)?.is_none() {
        return Err(not_supported());
    }
    let Some(host) = inst.host.clone() else {
        return Err(invalid_state("detach_interface", &inst.uuid, "vm_state", &inst.vm_state));
    };
    let rid = record(&svc, &ctx, &inst, "detach_interface").await?;
    let msg = rpc::DetachInterface { instance_uuid: inst.uuid.clone(), port_id, action_request_id: rid.clone() };
    svc.deps()?
        .bus
        .cast(&rpc::detach_interface_topic(&host), &msg, &rid)
        .await
        .map_err(|e| anyhow::anyhow!("bus: {e}"))?;
    Ok(accepted_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: &str = "6a0b1b84-8b3c-4f4e-9d0a-000000000001";
    const N: &str = "6a0b1b84-8b3c-4f4e-9d0a-000000000002";

    fn status(r: Result<AttachRequest>) -> u16 {
        match r {
            Ok(_) => 200,
            Err(e) => e.to_api().status.as_u16(),
        }
    }

    #[test]
    fn create_bodies_are_checked_as_novas_schema() {
        let mv = Microversion(2, 96);
        assert_eq!(parse(&json!({}), mv).unwrap(), AttachRequest::default());
        assert_eq!(parse(&json!({"interfaceAttachment": {}}), mv).unwrap(), AttachRequest::default());
        let r = parse(
            &json!({"interfaceAttachment": {"net_id": N, "fixed_ips": [{"ip_address": "10.0.0.9"}], "tag": "eth9"}}),
            mv,
        )
        .unwrap();
        assert_eq!(r.net_id.as_deref(), Some(N));
        assert_eq!(r.fixed_ip.as_deref(), Some("10.0.0.9"));
        assert_eq!(r.tag.as_deref(), Some("eth9"));
        for bad in [
            json!({"interfaceAttachment": {"net_id": N, "port_id": P}}),
            json!({"interfaceAttachment": {"fixed_ips": [{"ip_address": "10.0.0.9"}]}}),
            json!({"interfaceAttachment": {"net_id": "nope"}}),
            json!({"interfaceAttachment": {"port_id": 5}}),
            json!({"interfaceAttachment": {"net_id": N, "fixed_ips": []}}),
            json!({"interfaceAttachment": {"net_id": N, "fixed_ips": [{"ip_address": "10.0.0.999"}]}}),
            json!({"interfaceAttachment": {"net_id": N, "fixed_ips": [{"ip_address": "10.0.0.9", "subnet_id": N}]}}),
            json!({"interfaceAttachment": {"net_id": N, "tag": "a/b"}}),
            json!({"interfaceAttachment": {"net_id": N, "tag": ""}}),
            json!({"interfaceAttachment": {"net_id": N, "other": 1}}),
            json!({"interfaceAttachment": []}),
            json!({"other": {}}),
        ] {
            assert_eq!(status(parse(&bad, mv)), 400, "{bad}");
        }
        // tags come with 2.49
        assert_eq!(status(parse(&json!({"interfaceAttachment": {"net_id": N, "tag": "x"}}), Microversion(2, 48))), 400);
    }

    #[test]
    fn the_view_is_novas_with_the_tag_from_270() {
        let port = json!({"id": P, "network_id": N, "mac_address": "fa:16:3e:00:00:01", "status": "ACTIVE",
            "fixed_ips": [{"subnet_id": N, "ip_address": "10.0.0.5", "extra": 1}], "name": "x"});
        let v = attachment(&port, None);
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 5, "{v}");
        assert_eq!(v["fixed_ips"], json!([{"subnet_id": N, "ip_address": "10.0.0.5"}]));
        assert_eq!(v["mac_addr"], "fa:16:3e:00:00:01");
        assert_eq!(v["port_state"], "ACTIVE");
        let v = attachment(&port, Some(None));
        assert!(v["tag"].is_null() && v.as_object().unwrap().contains_key("tag"));
        let vifs = vec![Vif { port_id: P.into(), tag: Some("t".into()), ..Default::default() }];
        assert_eq!(tag_of(Microversion(2, 70), &vifs, P), Some(Some("t")));
        assert_eq!(tag_of(Microversion(2, 69), &vifs, P), None);
    }
}
