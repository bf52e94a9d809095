//! `/v2.0/floatingips`: list, show, create (allocate an address of an
//! external network, optionally associated), update (associate with a port's
//! fixed IP, or `port_id: null` to disassociate), delete (frees the address).
//!
//! The address is held by a `network:floatingip` port, chosen inside the
//! transaction that inserts the floating IP: racing allocations that chose the
//! same address collide on `ipallocations` and choose again. Association needs
//! a router with its gateway on the floating network and an interface on the
//! fixed IP's subnet; one floating IP per fixed IP (a unique key).

use std::net::IpAddr;

use axum::Router;
use axum::extract::{Path, State as AxState};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, TransactionTrait};
use serde_json::{Map, Value, json};
use stratus_core::AuthContext;
use stratus_core::auth::Auth;
use stratus_core::extract::RawQuery;

use crate::api::list::{self, ListParams};
use crate::api::networks::viewer;
use crate::api::subnets::cidr_of;
use crate::api::{Body, authorize, check_revision, created, is_admin, no_content, ok, owner_for_create};
use crate::entity::floatingip::Model as FloatingIp;
use crate::entity::port::{self, Model as Port};
use crate::error::{NetworkError, Result, bad, bad_kind, conflict, not_found};
use crate::store::floatingips as store;
use crate::store::routers::{self, FLOATINGIP_OWNER, IpRequest};
use crate::store::{self as st, networks, ports, quotas, subnets, tags};
use crate::{NetworkService, State, ipam, l3, model};

pub fn routes() -> Router<State> {
    Router::new()
        .route("/v2.0/floatingips", get(index).post(create))
        .route("/v2.0/floatingips/{id}", get(show).put(update).delete(delete))
}

const CREATE_ATTRS: &[&str] = &[
    "floating_network_id",
    "floating_ip_address",
    "subnet_id",
    "port_id",
    "fixed_ip_address",
    "description",
    "project_id",
    "tenant_id",
];
const UPDATE_ATTRS: &[&str] = &["port_id", "fixed_ip_address", "description"];

fn fip_not_found(id: &str) -> NetworkError {
    not_found("FloatingIPNotFound", format!("Floating IP {id} could not be found"))
}

fn bad_fip(msg: impl std::fmt::Display) -> NetworkError {
    bad_kind("BadRequest", format!("Bad floatingip request: {msg}."))
}

/// `port_details` (fip-port-details): the associated port, or null.
fn port_details(p: Option<&Port>) -> Value {
    match p {
        Some(p) => json!({
            "name": p.name,
            "network_id": p.network_id,
            "mac_address": p.mac_address,
            "admin_state_up": p.admin_state_up,
            "status": p.status,
            "device_id": p.device_id,
            "device_owner": p.device_owner,
        }),
        None => Value::Null,
    }
}

fn render(f: &FloatingIp, tags: Vec<String>, pfs: Vec<Value>, port: Option<&Port>) -> Value {
    json!({
        "port_details": port_details(port),
        "port_forwardings": pfs,
        "id": f.id,
        "tenant_id": f.project_id,
        "project_id": f.project_id,
        "floating_network_id": f.floating_network_id,
        "floating_ip_address": f.floating_ip_address,
        "fixed_ip_address": f.fixed_ip_address,
        "port_id": f.fixed_port_id,
        "router_id": f.router_id,
        "status": f.status,
        "description": f.description,
        "tags": tags,
        "created_at": f.created_at,
        "updated_at": f.updated_at,
        "revision_number": f.revision_number,
    })
}

async fn render_many<C: ConnectionTrait>(conn: &C, fs: &[FloatingIp]) -> Result<Vec<Value>> {
    let ids: Vec<String> = fs.iter().map(|f| f.id.clone()).collect();
    let mut tg = tags::of(conn, store::TAG_TYPE, &ids).await?;
    let mut pfs: std::collections::BTreeMap<String, Vec<Value>> = std::collections::BTreeMap::new();
    for p in crate::store::port_forwardings::of_fips(conn, &ids).await? {
        pfs.entry(p.floatingip_id.clone()).or_default().push(crate::api::port_forwardings::render_in_fip(&p));
    }
    let port_ids: Vec<String> = fs.iter().filter_map(|f| f.fixed_port_id.clone()).collect();
    let fixed_ports: std::collections::BTreeMap<String, Port> = if port_ids.is_empty() {
        Default::default()
    } else {
        port::Entity::find()
            .filter(port::Column::Id.is_in(port_ids))
            .all(conn)
            .await?
            .into_iter()
            .map(|p| (p.id.clone(), p))
            .collect()
    };
    Ok(fs
        .iter()
        .map(|f| {
            let port = f.fixed_port_id.as_ref().and_then(|id| fixed_ports.get(id));
            render(f, tg.remove(&f.id).unwrap_or_default(), pfs.remove(&f.id).unwrap_or_default(), port)
        })
        .collect())
}

async fn index(AxState(svc): AxState<State>, Auth(ctx): Auth, q: RawQuery) -> Result<Response> {
    let p = ListParams::parse(&q)?;
    let (rows, more) = store::list(&svc.db.read, &viewer(&svc, &ctx), &p).await?;
    let items: Vec<Value> =
        render_many(&svc.db.read, &rows).await?.into_iter().map(|v| list::project(v, &p.fields)).collect();
    Ok(ok(list::render("floatingips", items, &p, more, &format!("{}/v2.0/floatingips", svc.base_url), &q)))
}

async fn show(AxState(svc): AxState<State>, Auth(ctx): Auth, Path(id): Path<String>, q: RawQuery) -> Result<Response> {
    let p = ListParams::parse(&q)?;
    let f = store::get_visible(&svc.db.read, &viewer(&svc, &ctx), &id).await?.ok_or_else(|| fip_not_found(&id))?;
    let item = render_many(&svc.db.read, std::slice::from_ref(&f)).await?.remove(0);
    Ok(ok(json!({"floatingip": list::project(item, &p.fields)})))
}

/// Where a floating IP points: the port, its fixed IP, the router that NATs.
struct Assoc {
    port: String,
    fixed_ip: String,
    router: String,
}

/// Resolve `port_id` (+ `fixed_ip_address`) for a floating IP of `project` on
/// `network` (inside the transaction that associates).
async fn resolve<C: ConnectionTrait>(
    conn: &C,
    svc: &NetworkService,
    ctx: &AuthContext,
    fip: &FloatingIp,
    port_id: &str,
    fixed: Option<&str>,
) -> Result<Assoc> {
    let missing = || not_found("PortNotFound", format!("Port {port_id} could not be found."));
    let port = ports::get_visible(conn, &viewer(svc, ctx), port_id).await?.ok_or_else(missing)?;
    if port.project_id != fip.project_id && !is_admin(svc, ctx) {
        return Err(missing());
    }
    if port.device_owner.starts_with("network:router_") || port.device_owner == FLOATINGIP_OWNER {
        return Err(bad_fip(format!(
            "Port {port_id} has owner {} and therefore cannot be associated with a floating IP",
            port.device_owner
        )));
    }
    let ips = subnets::allocations_of(conn, std::slice::from_ref(&port.id)).await?.remove(&port.id).unwrap_or_default();
    let v4: Vec<_> = ips.iter().filter(|a| a.ip_address.parse::<IpAddr>().is_ok_and(|i| i.is_ipv4())).collect();
    let chosen = match fixed {
        Some(ip) => ips
            .iter()
            .find(|a| a.ip_address == ip)
            .ok_or_else(|| bad_fip(format!("Port {port_id} does not have fixed ip {ip}")))?,
        None => match v4.as_slice() {
            [] => return Err(bad_fip(format!("No IPv4 address found on port {port_id}"))),
            [one] => *one,
            _ => {
                return Err(bad_fip(format!(
                    "Port {port_id} has multiple fixed IPv4 addresses.  Must provide a specific IPv4 address when assigning a floating IP"
                )));
            }
        },
    };
    let router = router_for(conn, &fip.floating_network_id, &chosen.subnet_id).await?.ok_or_else(|| {
        not_found(
            "ExternalGatewayForFloatingIPNotFound",
            format!(
                "External network {} is not reachable from subnet {}.  Therefore, cannot associate Port {port_id} with a Floating IP.",
                fip.floating_network_id, chosen.subnet_id
            ),
        )
    })?;
    if let Some(other) = store::on_fixed_ip(conn, &fip.floating_network_id, port_id, &chosen.ip_address).await?
        && other.id != fip.id
    {
        return Err(already_associated(fip, port_id, &chosen.ip_address));
    }
    Ok(Assoc { port: port_id.to_string(), fixed_ip: chosen.ip_address.clone(), router })
}

/// A router with its gateway on the floating network and an interface on the subnet.
pub async fn router_for<C: ConnectionTrait>(conn: &C, network: &str, subnet: &str) -> Result<Option<String>> {
    for rid in routers::with_gateway_on(conn, network).await? {
        let ifs: Vec<String> = routers::interfaces(conn, &rid).await?.into_iter().map(|p| p.id).collect();
        let held = subnets::allocations_of(conn, &ifs).await?;
        if held.values().flatten().any(|a| a.subnet_id == subnet) {
            return Ok(Some(rid));
        }
    }
    Ok(None)
}

fn in_use_by_port_forwarding(id: &str) -> NetworkError {
    conflict("FipInUseByPortForwarding", format!("Floating IP {id} in use by Port Forwarding resources."))
}

fn already_associated(fip: &FloatingIp, port: &str, ip: &str) -> NetworkError {
    conflict(
        "FloatingIPPortAlreadyAssociated",
        format!(
            "Cannot associate floating IP {} ({}) with port {port} using fixed IP {ip}, as that fixed IP already has a floating IP on external network {}.",
            fip.floating_ip_address, fip.id, fip.floating_network_id
        ),
    )
}

fn associate(f: &mut FloatingIp, a: Option<Assoc>) {
    match a {
        Some(a) => {
            f.fixed_port_id = Some(a.port);
            f.fixed_ip_address = Some(a.fixed_ip);
            f.router_id = Some(a.router);
            f.status = "ACTIVE".into();
        }
        None => {
            f.fixed_port_id = None;
            f.fixed_ip_address = None;
            f.router_id = None;
            f.status = "DOWN".into();
        }
    }
}

/// `port_id` / `fixed_ip_address` of a body: None when the port is not named.
fn assoc_args(obj: &Map<String, Value>) -> Result<Option<(Option<String>, Option<String>)>> {
    let fixed = match obj.get("fixed_ip_address").filter(|v| !v.is_null()) {
        Some(v) => Some(ipam::parse_ip("fixed_ip_address", v.as_str().unwrap_or_default(), None)?.to_string()),
        None => None,
    };
    match obj.get("port_id") {
        None if fixed.is_some() => Err(bad_fip("fixed_ip_address cannot be specified without a port_id")),
        None => Ok(None),
        Some(Value::Null) => Ok(Some((None, None))),
        Some(v) => Ok(Some((Some(model::uuid("port_id", v)?), fixed))),
    }
}

async fn create(AxState(svc): AxState<State>, Auth(ctx): Auth, body: Body) -> Result<Response> {
    let obj = model::resource(&body.0, "floatingip")?.clone();
    model::only(&obj, CREATE_ATTRS)?;
    let project = owner_for_create(&svc, &ctx, &obj)?;
    authorize(&svc, &ctx, "create_floatingip", &project)?;
    let net_id = model::uuid(
        "floating_network_id",
        obj.get("floating_network_id")
            .ok_or_else(|| bad("Failed to parse request. Required attribute 'floating_network_id' not specified"))?,
    )?;
    let net = networks::get(&svc.db.read, &net_id)
        .await?
        .filter(|n| n.external || is_admin(&svc, &ctx) || n.project_id == project || n.shared)
        .ok_or_else(|| not_found("NetworkNotFound", format!("Network {net_id} could not be found.")))?;
    if !net.external {
        return Err(bad_fip(format!("The network {net_id} is not a valid external network")));
    }
    let subs: Vec<_> =
        subnets::of_network(&svc.db.read, &net_id).await?.into_iter().filter(|s| s.ip_version == 4).collect();
    let subnet = match obj.get("subnet_id").filter(|v| !v.is_null()) {
        Some(v) => {
            let sid = model::uuid("subnet_id", v)?;
            Some(subs.iter().find(|s| s.id == sid).cloned().ok_or_else(|| {
                bad_fip(format!("Subnet {sid} is not an IPv4 subnet of the external network {net_id}"))
            })?)
        }
        None => None,
    };
    let req = match obj.get("floating_ip_address").filter(|v| !v.is_null()) {
        Some(v) => {
            authorize(&svc, &ctx, "create_floatingip:floating_ip_address", &project)?;
            let ip = ipam::parse_ip("floating_ip_address", v.as_str().unwrap_or_default(), Some(4))?;
            let s = match &subnet {
                Some(s) => s.clone(),
                None => subs.iter().find(|s| cidr_of(s).is_ok_and(|c| c.contains(&ip))).cloned().ok_or_else(|| {
                    bad_kind(
                        "InvalidIpForNetwork",
                        format!("IP address {ip} is not a valid IP for any of the subnets on the specified network."),
                    )
                })?,
            };
            if !routers::valid_host(&s, ip) {
                return Err(bad_kind(
                    "InvalidIpForSubnet",
                    format!("IP address {ip} is not a valid IP for the specified subnet."),
                ));
            }
            IpRequest::Specific(Box::new(s), ip)
        }
        None => match subnet {
            Some(s) => IpRequest::Any(vec![s]),
            None if subs.is_empty() => {
                return Err(bad_fip(format!("Network {net_id} has no IPv4 subnet to allocate a floating IP from")));
            }
            None => IpRequest::Any(subs.clone()),
        },
    };
    let assoc = assoc_args(&obj)?;
    let now = st::now();
    let row = FloatingIp {
        id: st::new_id(),
        project_id: project.clone(),
        floating_network_id: net_id.clone(),
        floating_ip_address: String::new(),
        floating_port_id: String::new(),
        fixed_port_id: None,
        fixed_ip_address: None,
        router_id: None,
        status: "DOWN".into(),
        description: match obj.get("description").filter(|v| !v.is_null()) {
            Some(v) => model::string("description", v, 255)?,
            None => String::new(),
        },
        created_at: now.clone(),
        updated_at: now,
        revision_number: 0,
    };
    quotas::ensure_lock_row(&svc.db, &project).await?;
    let retries = svc.cfg.network.allocation_retries.max(1);
    let mut last = None;
    for _ in 0..=retries {
        let attempt = async {
            let txn = svc.db.write.begin().await?;
            quotas::check(&txn, &svc.cfg, &project, "floatingip", 1).await?;
            let mut f = row.clone();
            let (p, ips) = routers::create_service_port(
                &txn,
                &svc.cfg.network.base_mac,
                &net_id,
                "",
                FLOATINGIP_OWNER,
                &f.id,
                std::slice::from_ref(&req),
            )
            .await?;
            f.floating_port_id = p.id;
            f.floating_ip_address = ips.first().map(|a| a.ip_address.clone()).unwrap_or_default();
            if let Some((Some(port), fixed)) = &assoc {
                let a = resolve(&txn, &svc, &ctx, &f, port, fixed.as_deref()).await?;
                associate(&mut f, Some(a));
            }
            store::insert(&txn, f.clone()).await?;
            txn.commit().await?;
            Ok::<_, NetworkError>(f)
        };
        match attempt.await {
            Ok(f) => {
                l3::floating_ip_changed(&svc, None, &f, false);
                let item = render_many(&svc.db.write, std::slice::from_ref(&f)).await?.remove(0);
                return Ok(created(json!({"floatingip": item})));
            }
            Err(e) if routers::retryable(&e) => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    tracing::warn!("floating IP create gave up after {retries} retries: {last:?}");
    Err(conflict("IpAddressGenerationFailure", format!("No more IP addresses available on network {net_id}.")))
}

async fn update(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response> {
    let obj = model::resource(&body.0, "floatingip")?.clone();
    for k in obj.keys() {
        if CREATE_ATTRS.contains(&k.as_str()) && !UPDATE_ATTRS.contains(&k.as_str()) {
            return Err(bad(format!("Cannot update read-only attribute {k}")));
        }
    }
    model::only(&obj, UPDATE_ATTRS)?;
    let assoc = assoc_args(&obj)?;
    let retries = svc.cfg.network.allocation_retries.max(1);
    for _ in 0..=retries {
        let cur =
            store::get_visible(&svc.db.write, &viewer(&svc, &ctx), &id).await?.ok_or_else(|| fip_not_found(&id))?;
        authorize(&svc, &ctx, "update_floatingip", &cur.project_id)?;
        check_revision(&headers, cur.revision_number)?;
        let mut f = cur.clone();
        if let Some(v) = obj.get("description") {
            f.description = if v.is_null() { String::new() } else { model::string("description", v, 255)? };
        }
        f.updated_at = st::now();
        let attempt = async {
            let txn = svc.db.write.begin().await?;
            match &assoc {
                Some((Some(port), fixed)) => {
                    if crate::store::port_forwardings::count_of_fip(&txn, &f.id).await? > 0 {
                        return Err(in_use_by_port_forwarding(&f.id));
                    }
                    let a = resolve(&txn, &svc, &ctx, &f, port, fixed.as_deref()).await?;
                    associate(&mut f, Some(a));
                }
                Some((None, _)) if f.fixed_port_id.is_some() => associate(&mut f, None),
                Some((None, _)) => {}
                None => {}
            }
            if !store::save(&txn, &f).await? {
                return Ok(None);
            }
            txn.commit().await?;
            f.revision_number += 1;
            Ok::<_, NetworkError>(Some(f.clone()))
        };
        match attempt.await {
            Ok(Some(f)) => {
                l3::floating_ip_changed(&svc, Some(&cur), &f, false);
                let item = render_many(&svc.db.write, std::slice::from_ref(&f)).await?.remove(0);
                return Ok(ok(json!({"floatingip": item})));
            }
            Ok(None) => continue,
            Err(e) if routers::retryable(&e) => {
                // a racing association took the fixed IP (unique key): say so
                if let Some((Some(port), _)) = &assoc
                    && let Some(ip) = f.fixed_ip_address.clone()
                    && store::on_fixed_ip(&svc.db.write, &f.floating_network_id, port, &ip).await?.is_some()
                {
                    return Err(already_associated(&f, port, &ip));
                }
                continue;
            }
            Err(e) => return Err(e),
        }
    }
    Err(conflict("FloatingIPPortAlreadyAssociated", format!("Floating IP {id} kept changing; try again.")))
}

async fn delete(AxState(svc): AxState<State>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Response> {
    let f = store::get_visible(&svc.db.write, &viewer(&svc, &ctx), &id).await?.ok_or_else(|| fip_not_found(&id))?;
    authorize(&svc, &ctx, "delete_floatingip", &f.project_id)?;
    let txn = svc.db.write.begin().await?;
    if crate::store::port_forwardings::count_of_fip(&txn, &id).await? > 0 {
        return Err(in_use_by_port_forwarding(&id));
    }
    if !store::delete(&txn, &id).await? {
        return Err(fip_not_found(&id));
    }
    ports::delete(&txn, &f.floating_port_id).await?;
    txn.commit().await?;
    l3::floating_ip_changed(&svc, None, &f, true);
    Ok(no_content())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_ip_needs_a_port() {
        let o = json!({"fixed_ip_address": "10.0.0.3"});
        assert!(assoc_args(o.as_object().unwrap()).is_err());
        let o = json!({"port_id": null});
        assert!(matches!(assoc_args(o.as_object().unwrap()), Ok(Some((None, None)))));
        let o = json!({"port_id": "nope"});
        assert!(assoc_args(o.as_object().unwrap()).is_err());
    }
}
