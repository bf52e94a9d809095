//! Nova's floating IP proxies (to 2.35): `/os-floating-ip-pools` (the
//! external networks), `/os-floating-ips` (list, show, allocate from a pool,
//! release) and the server actions `addFloatingIp` / `removeFloatingIp` (to
//! 2.43), all forwarded to the network service with the caller's token, in
//! Nova's view (`id`, `ip`, `fixed_ip`, `instance_id`, `pool`) and words.

use std::collections::BTreeMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State as S};
use axum::response::Response;
use axum::routing::get;
use serde_json::{Map, Value, json};
use stratus_clients::network::{NetworkClient, NetworkError};
use stratus_core::auth::Auth;
use stratus_core::{AuthContext, Microversion};

use super::network_proxy::{failed, message, neutron, show as show_one, up_to_2_35};
use super::resources::common::{self as c, invalid, py_repr};
use super::servers::visible;
use super::{accepted_empty, authorize, ok, project_of, project_target};
use crate::error::{ComputeError, Result, bad, conflict, not_found};
use crate::store::instances::Instance;
use crate::{ComputeService, State};

pub fn routes() -> Router<State> {
    Router::new()
        .route("/v2.1/os-floating-ip-pools", get(pools))
        .route("/v2.1/os-floating-ips", get(index).post(create))
        .route("/v2.1/os-floating-ips/{id}", get(show).delete(delete))
}

/// The pool Nova allocates from when none is named (`[neutron] default_floating_pool`).
const DEFAULT_POOL: &str = "nova";

fn rule(action: &str) -> String {
    format!("os_compute_api:os-floating-ips:{action}")
}

/// Nova's `_translate_floating_ip_view`: the pool is the network's name (or id).
fn view(fip: &Value, network: Option<&Value>, port: Option<&Value>) -> Value {
    let pool = network
        .and_then(|n| n["name"].as_str().filter(|s| !s.is_empty()))
        .map(str::to_string)
        .unwrap_or_else(|| fip["floating_network_id"].as_str().unwrap_or_default().to_string());
    let instance = port.map(|p| p["device_id"].clone()).unwrap_or(Value::Null);
    json!({
        "fixed_ip": fip["fixed_ip_address"],
        "id": fip["id"],
        "instance_id": instance,
        "ip": fip["floating_ip_address"],
        "pool": pool,
    })
}

/// The floating IP's port (`port_details`, or the port itself when the
/// network service does not inline it).
async fn port_of(net: &NetworkClient, token: &str, fip: &Value) -> Result<Option<Value>> {
    if let Some(d) = fip.get("port_details") {
        return Ok(d.is_object().then(|| d.clone()));
    }
    match fip["port_id"].as_str() {
        Some(p) if !p.is_empty() => show_one(net, token, &format!("/ports/{p}"), "port").await,
        _ => Ok(None),
    }
}

async fn full_view(net: &NetworkClient, token: &str, fip: &Value) -> Result<Value> {
    let net_id = fip["floating_network_id"].as_str().unwrap_or_default();
    let network = show_one(net, token, &format!("/networks/{net_id}"), "network").await?;
    let port = port_of(net, token, fip).await?;
    Ok(view(fip, network.as_ref(), port.as_ref()))
}

fn not_found_for_id(id: &str) -> ComputeError {
    not_found(format!("Floating IP not found for ID {id}"))
}

/// The floating IPs with this address (Nova's `_get_floating_ip_by_address` checks the count).
async fn by_address(net: &NetworkClient, token: &str, address: &str) -> Result<Vec<Value>> {
    if address.is_empty() {
        return Ok(Vec::new());
    }
    net.list(token, "floatingips", &[("floating_ip_address", address)]).await.map_err(failed)
}

async fn pools(S(svc): S<State>, Auth(ctx): Auth, mv: Microversion) -> Result<Response> {
    up_to_2_35(mv)?;
    authorize(&svc, &ctx, "os_compute_api:os-floating-ip-pools", &json!({}))?;
    let net = neutron(&svc)?;
    let nets = net.networks(&ctx.token, &[("router:external", "true")]).await.map_err(failed)?;
    let pools: Vec<Value> = nets
        .iter()
        .filter(|n| n["router:external"] == true)
        .map(|n| {
            let name = n["name"].as_str().filter(|s| !s.is_empty()).or(n["id"].as_str()).unwrap_or_default();
            json!({"name": name})
        })
        .collect();
    Ok(ok(json!({"floating_ip_pools": pools})))
}

async fn index(S(svc): S<State>, Auth(ctx): Auth, mv: Microversion) -> Result<Response> {
    up_to_2_35(mv)?;
    let project = project_of(&ctx)?;
    authorize(&svc, &ctx, &rule("list"), &project_target(project))?;
    let net = neutron(&svc)?;
    let fips = net.list(&ctx.token, "floatingips", &[("project_id", project)]).await.map_err(failed)?;
    let mut networks: Map<String, Value> = Map::new();
    let mut out = Vec::with_capacity(fips.len());
    for f in &fips {
        let net_id = f["floating_network_id"].as_str().unwrap_or_default().to_string();
        if !networks.contains_key(&net_id) {
            let n = show_one(net, &ctx.token, &format!("/networks/{net_id}"), "network").await?;
            networks.insert(net_id.clone(), n.unwrap_or(Value::Null));
        }
        let port = port_of(net, &ctx.token, f).await?;
        out.push(view(f, networks.get(&net_id).filter(|n| !n.is_null()), port.as_ref()));
    }
    Ok(ok(json!({"floating_ips": out})))
}

async fn show(S(svc): S<State>, Auth(ctx): Auth, mv: Microversion, Path(id): Path<String>) -> Result<Response> {
    up_to_2_35(mv)?;
    let project = project_of(&ctx)?;
    authorize(&svc, &ctx, &rule("show"), &project_target(project))?;
    let net = neutron(&svc)?;
    let fip = show_one(net, &ctx.token, &format!("/floatingips/{id}"), "floatingip")
        .await?
        .ok_or_else(|| not_found_for_id(&id))?;
    Ok(ok(json!({"floating_ip": full_view(net, &ctx.token, &fip).await?})))
}

/// The pool a create names (`{"pool": "..."}`, or no body at all).
fn pool_of(body: &Bytes) -> Result<Option<String>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let v: Value = stratus_core::extract::parse_json(crate::error::STYLE, body)?;
    match &v {
        Value::Null => Ok(None),
        Value::Object(o) => match o.get("pool") {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(invalid("pool", other, &format!("{} is not of type 'string', 'null'", py_repr(other)))),
        },
        other => Err(bad(format!(
            "Invalid input for field/attribute floating_ip. Value: {}. {} is not of type 'object', 'null'",
            py_repr(other),
            py_repr(other)
        ))),
    }
}

async fn create(S(svc): S<State>, Auth(ctx): Auth, mv: Microversion, body: Bytes) -> Result<Response> {
    up_to_2_35(mv)?;
    let pool = pool_of(&body)?;
    let project = project_of(&ctx)?;
    authorize(&svc, &ctx, &rule("create"), &project_target(project))?;
    let net = neutron(&svc)?;
    let name_or_id = pool.clone().unwrap_or_else(|| DEFAULT_POOL.to_string());
    // Nova's _get_floating_ip_pool_id_by_name_or_id: an external network by id or by name
    let by_id = c::is_uuid_like(&name_or_id);
    let matches: Vec<Value> = net
        .networks(&ctx.token, &[("router:external", "true")])
        .await
        .map_err(failed)?
        .into_iter()
        .filter(|n| n["router:external"] == true)
        .filter(|n| if by_id { n["id"] == name_or_id.as_str() } else { n["name"] == name_or_id.as_str() })
        .collect();
    let pool_id = match matches.as_slice() {
        [] => return Err(not_found("Floating IP pool not found.")),
        [one] => one["id"].as_str().unwrap_or_default().to_string(),
        _ => {
            return Err(ComputeError::Internal(anyhow::anyhow!(
                "Multiple floating IP pools matches found for name '{name_or_id}'"
            )));
        }
    };
    let made = net.post(&ctx.token, "/floatingips", json!({"floatingip": {"floating_network_id": pool_id}})).await;
    let fip = match made {
        Ok(v) => v["floatingip"].clone(),
        Err(NetworkError::Refused { kind, .. })
            if kind == "IpAddressGenerationFailure" || kind == "ExternalIpAddressExhausted" =>
        {
            return Err(not_found(match &pool {
                Some(p) => format!("No more floating IPs in pool {p}."),
                None => "No more floating IPs available.".into(),
            }));
        }
        Err(NetworkError::Refused { kind, .. }) if kind == "OverQuota" => {
            return Err(ComputeError::Forbidden(match &pool {
                Some(p) => format!("IP allocation over quota in pool {p}."),
                None => "IP allocation over quota.".into(),
            }));
        }
        Err(e @ NetworkError::Refused { status: 400, .. }) => return Err(bad(message(&e))),
        Err(e) => return Err(failed(e)),
    };
    Ok(ok(json!({"floating_ip": full_view(net, &ctx.token, &fip).await?})))
}

async fn delete(S(svc): S<State>, Auth(ctx): Auth, mv: Microversion, Path(id): Path<String>) -> Result<Response> {
    up_to_2_35(mv)?;
    let project = project_of(&ctx)?;
    authorize(&svc, &ctx, &rule("delete"), &project_target(project))?;
    let net = neutron(&svc)?;
    let fip = show_one(net, &ctx.token, &format!("/floatingips/{id}"), "floatingip")
        .await?
        .ok_or_else(|| not_found_for_id(&id))?;
    let address = fip["floating_ip_address"].as_str().unwrap_or_default();
    // released even while associated (Nova's disassociate_and_release_floating_ip)
    match net.delete(&ctx.token, &format!("/floatingips/{id}")).await {
        Ok(()) => Ok(accepted_empty()),
        Err(NetworkError::Refused { status: 404, .. }) => {
            Err(not_found(format!("Floating IP not found for address {address}.")))
        }
        Err(e @ NetworkError::Refused { status: 403, .. }) => Err(ComputeError::Forbidden(message(&e))),
        Err(e) => Err(failed(e)),
    }
}

/// The floating IPs on these ports, by port: (fixed IP, floating IP), read
/// with the service token. What the server view adds to `addresses`, as
/// Nova's network info has them; nothing when networking is off or the
/// network service cannot say (logged).
pub async fn on_ports(svc: &ComputeService, ports: &[String]) -> BTreeMap<String, Vec<(String, String)>> {
    let mut out: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    let Ok(deps) = svc.deps() else { return out };
    let Some(networking) = deps.network.as_deref() else { return out };
    if ports.is_empty() {
        return out;
    }
    let token = match (deps.tokens)().await {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!("floating IPs of servers not shown: {e:#}");
            return out;
        }
    };
    for chunk in ports.chunks(150) {
        let q: Vec<(&str, &str)> = chunk.iter().map(|p| ("port_id", p.as_str())).collect();
        match networking.client.list(&token, "floatingips", &q).await {
            Ok(fips) => {
                for f in fips {
                    let (Some(port), Some(fixed), Some(ip)) =
                        (f["port_id"].as_str(), f["fixed_ip_address"].as_str(), f["floating_ip_address"].as_str())
                    else {
                        continue;
                    };
                    out.entry(port.to_string()).or_default().push((fixed.to_string(), ip.to_string()));
                }
            }
            Err(e) => {
                tracing::warn!("floating IPs of servers not shown: {e}");
                return BTreeMap::new();
            }
        }
    }
    out
}

/// Nova's addresses with floating IPs: each right after the fixed IP it
/// maps to (`OS-EXT-IPS:type` `floating` and the port's MAC when
/// `extended`, else `version` and `addr` only).
pub fn with_floating(
    addresses: &mut Value,
    vifs: &[crate::network::Vif],
    floating: &BTreeMap<String, Vec<(String, String)>>,
    extended: bool,
) {
    for v in vifs {
        let Some(fips) = floating.get(&v.port_id) else { continue };
        let Some(list) = addresses.get_mut(&v.network_name).and_then(Value::as_array_mut) else { continue };
        for (fixed, ip) in fips {
            let version = if ip.contains(':') { 6 } else { 4 };
            let entry = if extended {
                json!({"version": version, "addr": ip, "OS-EXT-IPS:type": "floating", "OS-EXT-IPS-MAC:mac_addr": v.mac})
            } else {
                json!({"version": version, "addr": ip})
            };
            let fixed_at = list.iter().position(|e| {
                e["addr"] == fixed.as_str()
                    && (!extended || e["OS-EXT-IPS:type"] == "fixed" && e["OS-EXT-IPS-MAC:mac_addr"] == v.mac.as_str())
            });
            match fixed_at {
                Some(p) => {
                    // after the fixed IP and the floating IPs already placed after it
                    let mut at = p + 1;
                    while at < list.len() && fips.iter().any(|(_, f)| list[at]["addr"] == f.as_str()) {
                        at += 1;
                    }
                    list.insert(at, entry);
                }
                None => list.push(entry),
            }
        }
    }
}

/// `parameter_types.ip_address`: a string that is an IPv4 or IPv6 address.
fn ip_field(field: &str, v: &Value) -> Result<String> {
    match v.as_str() {
        Some(s) if s.parse::<std::net::IpAddr>().is_ok() => Ok(s.to_string()),
        _ => Err(invalid(field, v, &format!("{} is not valid under any of the given schemas", py_repr(v)))),
    }
}

/// The `addFloatingIp` / `removeFloatingIp` body: `address` (and `fixed_address` for add).
fn parse_action(action: &str, arg: &Value, with_fixed: bool) -> Result<(String, Option<String>)> {
    let o = c::object(arg, Some(action))?;
    let allowed: &[&str] = if with_fixed { &["address", "fixed_address"] } else { &["address"] };
    c::no_extra(o, Some(action), allowed)?;
    let address = ip_field("address", c::required(o, Some(action), "address")?)?;
    let fixed = match o.get("fixed_address") {
        Some(v) if with_fixed => Some(ip_field("fixed_address", v)?),
        _ => None,
    };
    Ok((address, fixed))
}

/// `addFloatingIp` (to 2.43): associate the floating IP with the server's
/// fixed IP (the one named, else its first IPv4 address) on its port.
pub async fn add_floating_ip(
    svc: &ComputeService,
    ctx: &AuthContext,
    mv: Microversion,
    inst: &Instance,
    arg: &Value,
) -> Result<Response> {
    if mv.at_least(2, 44) {
        return Err(c::version_not_found());
    }
    let (address, fixed_address) = parse_action("addFloatingIp", arg, true)?;
    authorize(svc, ctx, &rule("add"), &project_target(&inst.project_id))?;
    let net = neutron(svc)?;
    let vifs = crate::network::vifs_of(&inst.system_metadata);
    if vifs.is_empty() {
        return Err(bad("Instance network is not ready yet"));
    }
    let fixed_ips: Vec<&str> = vifs.iter().flat_map(|v| v.ips.iter().map(|(ip, _)| ip.as_str())).collect();
    if fixed_ips.is_empty() {
        return Err(bad("No fixed IPs associated to instance"));
    }
    let fixed = match fixed_address {
        Some(f) if fixed_ips.contains(&f.as_str()) => f,
        Some(_) => return Err(bad("Specified fixed address not assigned to instance")),
        None => match fixed_ips.iter().find(|ip| ip.parse::<std::net::Ipv4Addr>().is_ok()) {
            Some(ip) => ip.to_string(),
            None => {
                return Err(bad(format!(
                    "Unable to associate floating IP {address} to any fixed IPs for instance {}. Instance has no fixed IPv4 addresses to associate.",
                    inst.uuid
                )));
            }
        },
    };
    let unable = |why: &str| {
        bad(format!(
            "Unable to associate floating IP {address} to fixed IP {fixed} for instance {}. Error: {why}",
            inst.uuid
        ))
    };
    // the port holding that fixed IP, as the network service has it now
    let ports = net.ports(&ctx.token, &[("device_id", inst.uuid.as_str())]).await.map_err(failed)?;
    let port = ports
        .iter()
        .find(|p| p["fixed_ips"].as_array().is_some_and(|ips| ips.iter().any(|f| f["ip_address"] == fixed.as_str())));
    let Some(port_id) = port.and_then(|p| p["id"].as_str()) else {
        return Err(unable(&format!("Fixed IP associate failed: no port of the instance has address {fixed}.")));
    };
    let fips = by_address(net, &ctx.token, &address).await?;
    let fip = match fips.as_slice() {
        [] => return Err(not_found("floating IP not found")),
        [one] => one,
        _ => return Err(unable(&format!("Multiple floating IPs are found for address {address}."))),
    };
    let id = fip["id"].as_str().unwrap_or_default();
    let body = json!({"floatingip": {"port_id": port_id, "fixed_ip_address": fixed}});
    match net.put(&ctx.token, &format!("/floatingips/{id}"), body).await {
        Ok(_) => Ok(accepted_empty()),
        Err(e @ NetworkError::Refused { status: 409, .. }) => Err(bad(message(&e))),
        Err(e @ NetworkError::Refused { status: 403, .. }) => Err(ComputeError::Forbidden(message(&e))),
        Err(e @ NetworkError::Refused { .. }) => Err(unable(&message(&e))),
        Err(e) => Err(failed(e)),
    }
}

/// `removeFloatingIp` (to 2.43): disassociate the floating IP, which must be
/// associated with this server.
pub async fn remove_floating_ip(
    svc: &ComputeService,
    ctx: &AuthContext,
    mv: Microversion,
    inst: &Instance,
    arg: &Value,
) -> Result<Response> {
    if mv.at_least(2, 44) {
        return Err(c::version_not_found());
    }
    let (address, _) = parse_action("removeFloatingIp", arg, false)?;
    let net = neutron(svc)?;
    let fips = by_address(net, &ctx.token, &address).await?;
    let fip = match fips.as_slice() {
        [] => return Err(not_found(format!("Floating IP not found for address {address}."))),
        [one] => one,
        _ => return Err(conflict(format!("Multiple floating IPs are found for address {address}."))),
    };
    // the server the floating IP is with, by its port's device (Nova's get_instance_by_floating_ip_addr)
    let port_id = fip["port_id"].as_str().filter(|p| !p.is_empty());
    let holder = match port_id {
        Some(p) => show_one(net, &ctx.token, &format!("/ports/{p}"), "port").await?,
        None => None,
    };
    let holder = match holder.as_ref().and_then(|p| p["device_id"].as_str()).filter(|d| !d.is_empty()) {
        Some(device) => Some(visible(svc, ctx, device).await?),
        None => None,
    };
    let target = match &holder {
        Some(h) => project_target(&h.project_id),
        None => project_target(project_of(ctx)?),
    };
    authorize(svc, ctx, &rule("remove"), &target)?;
    match holder {
        Some(h) if port_id.is_some() && h.uuid == inst.uuid => {
            let id = fip["id"].as_str().unwrap_or_default();
            match net.put(&ctx.token, &format!("/floatingips/{id}"), json!({"floatingip": {"port_id": null}})).await {
                Ok(_) => Ok(accepted_empty()),
                Err(e @ NetworkError::Refused { status: 403, .. }) => Err(ComputeError::Forbidden(message(&e))),
                Err(e) => Err(failed(e)),
            }
        }
        _ => Err(conflict(format!("Floating IP {address} is not associated with instance {}.", inst.uuid))),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_view_names_the_pool_and_the_server() {
        let fip = json!({"id": "f", "floating_ip_address": "203.0.113.5", "fixed_ip_address": "10.0.0.3",
            "floating_network_id": "n", "port_id": "p"});
        let v = view(&fip, Some(&json!({"id": "n", "name": "public"})), Some(&json!({"device_id": "srv"})));
        assert_eq!(
            v,
            json!({"fixed_ip": "10.0.0.3", "id": "f", "instance_id": "srv", "ip": "203.0.113.5", "pool": "public"})
        );
        // a network without a name (or not visible) is named by its id; no port, no server
        let v = view(&fip, Some(&json!({"id": "n", "name": ""})), None);
        assert_eq!(v["pool"], "n");
        assert!(v["instance_id"].is_null());
    }

    #[test]
    fn floating_ips_follow_their_fixed_ip() {
        let vifs = vec![crate::network::Vif {
            port_id: "p1".into(),
            network_name: "private".into(),
            mac: "fa:16:3e:00:00:01".into(),
            ips: vec![("10.0.0.5".into(), 4), ("10.0.0.6".into(), 4)],
            ..Default::default()
        }];
        let floating = BTreeMap::from([("p1".to_string(), vec![("10.0.0.5".to_string(), "203.0.113.9".to_string())])]);
        let mut a = crate::network::addresses(&vifs);
        with_floating(&mut a, &vifs, &floating, true);
        let addrs: Vec<&str> = a["private"].as_array().unwrap().iter().map(|e| e["addr"].as_str().unwrap()).collect();
        assert_eq!(addrs, ["10.0.0.5", "203.0.113.9", "10.0.0.6"]);
        assert_eq!(a["private"][1]["OS-EXT-IPS:type"], "floating");
        assert_eq!(a["private"][1]["OS-EXT-IPS-MAC:mac_addr"], "fa:16:3e:00:00:01");
        let mut p = crate::network::plain_addresses(&vifs);
        with_floating(&mut p, &vifs, &floating, false);
        assert_eq!(p["private"][1], json!({"version": 4, "addr": "203.0.113.9"}));
    }

    #[test]
    fn actions_take_ip_addresses_only() {
        assert_eq!(
            parse_action("addFloatingIp", &json!({"address": "1.2.3.4", "fixed_address": "10.0.0.2"}), true).unwrap(),
            ("1.2.3.4".to_string(), Some("10.0.0.2".to_string()))
        );
        let e = parse_action("addFloatingIp", &json!({"address": ""}), true).unwrap_err();
        assert!(e.to_string().contains("is not valid under any of the given schemas"), "{e}");
        assert!(parse_action("removeFloatingIp", &json!({"address": "1.2.3.4", "fixed_address": "x"}), false).is_err());
        assert!(parse_action("removeFloatingIp", &json!({}), false).is_err());
        assert!(pool_of(&Bytes::from_static(b"{\"pool\": 1}")).is_err());
        assert_eq!(pool_of(&Bytes::new()).unwrap(), None);
        assert_eq!(pool_of(&Bytes::from_static(b"{\"pool\": \"public\"}")).unwrap(), Some("public".into()));
    }
}
