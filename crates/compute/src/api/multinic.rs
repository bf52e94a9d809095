//! Nova's multinic server actions (to 2.43): `addFixedIp` gives the server's
//! port on a network one more fixed IP (from the network's first subnet that
//! has one free), `removeFixedIp` takes an address off the port holding it.
//! Both change the port through the network service with the caller's token,
//! then the server's network info, as Nova's neutron API does.

use axum::response::Response;
use serde_json::{Value, json};
use stratus_core::{AuthContext, Microversion};

use super::network_proxy::{failed, message, neutron};
use super::resources::common as c;
use super::{accepted_empty, authorize, project_target};
use crate::ComputeService;
use crate::error::{Result, bad, not_found};
use crate::network::{Vif, change_network_info, vifs_of};
use crate::store::instances::Instance;

fn rule(action: &str) -> String {
    format!("os_compute_api:os-multinic:{action}")
}

/// The one string field `field` of the action's body.
fn field<'a>(action: &str, arg: &'a Value, field: &str) -> Result<&'a Value> {
    let o = c::object(arg, Some(action))?;
    c::no_extra(o, Some(action), &[field])?;
    o.get(field).ok_or_else(|| {
        bad(format!("Invalid input for field/attribute {action}. Value: {arg}. '{field}' is a required property"))
    })
}

/// The port's fixed IPs as the server's network info keeps them.
fn ips_of(port: &Value) -> Vec<(String, u8)> {
    port["fixed_ips"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|f| f["ip_address"].as_str())
                .map(|ip| (ip.to_string(), if ip.contains(':') { 6 } else { 4 }))
                .collect()
        })
        .unwrap_or_default()
}

/// The server's network info: that port's addresses are now `ips`.
async fn record(svc: &ComputeService, inst: &Instance, port_id: &str, ips: Vec<(String, u8)>) -> Result<()> {
    change_network_info(&svc.db, &inst.uuid, |vifs: &mut Vec<Vif>| {
        for v in vifs.iter_mut().filter(|v| v.port_id == port_id) {
            v.ips = ips.clone();
        }
    })
    .await?;
    Ok(())
}

pub async fn add_fixed_ip(
    svc: &ComputeService,
    ctx: &AuthContext,
    mv: Microversion,
    inst: &Instance,
    arg: &Value,
) -> Result<Response> {
    if mv.at_least(2, 44) {
        return Err(c::version_not_found());
    }
    let network_id = match field("addFixedIp", arg, "networkId")? {
        Value::String(s) if !s.is_empty() => s.clone(),
        Value::Number(n) => n.to_string(),
        other => return Err(bad(format!("Invalid input for field/attribute networkId. Value: {other}."))),
    };
    authorize(svc, ctx, &rule("add"), &project_target(&inst.project_id))?;
    let net = neutron(svc)?;
    let Some(vif) = vifs_of(&inst.system_metadata).into_iter().find(|v| v.network_id == network_id) else {
        return Err(bad(format!("Network {network_id} could not be found.")));
    };
    let port = net.get(&ctx.token, &format!("/ports/{}", vif.port_id)).await.map_err(failed)?;
    let port = &port["port"];
    let subnets = net.get(&ctx.token, &format!("/subnets?network_id={network_id}")).await.map_err(failed)?;
    let mut last = String::from("no subnet");
    for subnet in subnets["subnets"].as_array().into_iter().flatten() {
        let mut fixed = port["fixed_ips"].as_array().cloned().unwrap_or_default();
        fixed.push(json!({"subnet_id": subnet["id"]}));
        match net.put(&ctx.token, &format!("/ports/{}", vif.port_id), json!({"port": {"fixed_ips": fixed}})).await {
            Ok(updated) => {
                record(svc, inst, &vif.port_id, ips_of(&updated["port"])).await?;
                return Ok(accepted_empty());
            }
            Err(e) => last = message(&e),
        }
    }
    Err(bad(format!("Unable to add a fixed IP on network {network_id}: {last}")))
}

pub async fn remove_fixed_ip(
    svc: &ComputeService,
    ctx: &AuthContext,
    mv: Microversion,
    inst: &Instance,
    arg: &Value,
) -> Result<Response> {
    if mv.at_least(2, 44) {
        return Err(c::version_not_found());
    }
    let address = match field("removeFixedIp", arg, "address")? {
        Value::String(s) if !s.is_empty() => s.clone(),
        other => return Err(bad(format!("Invalid input for field/attribute address. Value: {other}."))),
    };
    authorize(svc, ctx, &rule("remove"), &project_target(&inst.project_id))?;
    let net = neutron(svc)?;
    let Some(vif) = vifs_of(&inst.system_metadata).into_iter().find(|v| v.ips.iter().any(|(ip, _)| *ip == address))
    else {
        return Err(bad(format!("Fixed IP {address} not found on instance {}", inst.uuid)));
    };
    let port = net.get(&ctx.token, &format!("/ports/{}", vif.port_id)).await.map_err(failed)?;
    let fixed: Vec<Value> = port["port"]["fixed_ips"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| f["ip_address"] != address.as_str())
        .cloned()
        .collect();
    let updated = net
        .put(&ctx.token, &format!("/ports/{}", vif.port_id), json!({"port": {"fixed_ips": fixed}}))
        .await
        .map_err(|e| not_found(message(&e)))?;
    record(svc, inst, &vif.port_id, ips_of(&updated["port"])).await?;
    Ok(accepted_empty())
}
