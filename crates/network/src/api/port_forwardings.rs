//! `/v2.0/floatingips/{id}/port_forwardings`: list, show, create, update,
//! delete (extensions `floating-ip-port-forwarding`, `-description`,
//! `-port-ranges`). A forwarding maps external ports of a free floating IP
//! (one not associated with a port) to ports of a fixed IPv4 address reachable
//! through a router with its gateway on the floating network; the floating
//! IP's `router_id` is that router while it has forwardings.
//!
//! Every change happens in a transaction that bumps the floating IP's
//! revision, so the overlap checks of racing changes run one after the other.

use std::net::IpAddr;

use axum::Router;
use axum::extract::{Path, State as AxState};
use axum::response::Response;
use axum::routing::get;
use sea_orm::{ConnectionTrait, TransactionTrait};
use serde_json::{Map, Value, json};
use stratus_core::AuthContext;
use stratus_core::auth::Auth;
use stratus_core::extract::RawQuery;

use crate::api::list::{self, ListParams};
use crate::api::networks::viewer;
use crate::api::{Body, authorize, created, is_admin, no_content, ok};
use crate::entity::floatingip::Model as FloatingIp;
use crate::entity::port_forwarding::Model as PortForwarding;
use crate::error::{NetworkError, Result, bad, bad_kind, conflict, invalid, not_found};
use crate::store::port_forwardings as store;
use crate::store::{self as st, floatingips, ports, routers, subnets};
use crate::{NetworkService, State, model};

pub fn routes() -> Router<State> {
    Router::new()
        .route("/v2.0/floatingips/{fip}/port_forwardings", get(index).post(create))
        .route("/v2.0/floatingips/{fip}/port_forwardings/{id}", get(show).put(update).delete(delete))
}

const CREATE_ATTRS: &[&str] = &[
    "external_port",
    "internal_port",
    "external_port_range",
    "internal_port_range",
    "internal_ip_address",
    "protocol",
    "internal_port_id",
    "description",
];
const PROTOCOLS: &[&str] = &["tcp", "udp"];

fn pf_not_found(id: &str) -> NetworkError {
    not_found("PortForwardingNotFound", format!("Port Forwarding {id} could not be found."))
}

fn bad_pf(msg: impl Into<String>) -> NetworkError {
    bad_kind("BadRequest", format!("Bad port_forwarding request: {}.", msg.into()))
}

fn range_str(a: i64, b: i64) -> String {
    format!("{a}:{b}")
}

pub fn render(p: &PortForwarding) -> Value {
    let single = |a: i64, b: i64| if a == b { json!(a) } else { Value::Null };
    json!({
        "id": p.id,
        "protocol": p.protocol,
        "external_port": single(p.external_port_start, p.external_port_end),
        "internal_port": single(p.internal_port_start, p.internal_port_end),
        "external_port_range": range_str(p.external_port_start, p.external_port_end),
        "internal_port_range": range_str(p.internal_port_start, p.internal_port_end),
        "internal_ip_address": p.internal_ip_address,
        "internal_port_id": p.internal_port_id,
        "description": p.description,
    })
}

/// A forwarding as the floating IP shows it (`expose-port-forwarding-in-fip`).
pub fn render_in_fip(p: &PortForwarding) -> Value {
    let mut v = json!({
        "id": p.id,
        "protocol": p.protocol,
        "internal_ip_address": p.internal_ip_address,
        "internal_port_id": p.internal_port_id,
    });
    if p.external_port_start == p.external_port_end {
        v["external_port"] = json!(p.external_port_start);
    }
    if p.internal_port_start == p.internal_port_end {
        v["internal_port"] = json!(p.internal_port_start);
    }
    v
}

/// The floating IP as the caller may see it (404 otherwise) and `rule` allows.
async fn fip_for<C: ConnectionTrait>(
    conn: &C,
    svc: &NetworkService,
    ctx: &AuthContext,
    id: &str,
    rule: &str,
) -> Result<FloatingIp> {
    let f = floatingips::get_visible(conn, &viewer(svc, ctx), id)
        .await?
        .ok_or_else(|| not_found("FloatingIPNotFound", format!("Floating IP {id} could not be found")))?;
    authorize(svc, ctx, rule, &f.project_id)?;
    Ok(f)
}

async fn index(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    Path(fip): Path<String>,
    q: RawQuery,
) -> Result<Response> {
    let mut p = ListParams::parse(&q)?;
    for f in ["internal_ip_address", "internal_port"] {
        if p.take_filter(f).is_some() {
            return Err(bad_kind(
                "PortForwardingNotSupportFilterField",
                format!("Port Forwarding filter {f} is not supported"),
            ));
        }
    }
    fip_for(&svc.db.read, &svc, &ctx, &fip, "get_floatingip_port_forwarding").await?;
    let (rows, more) = store::list(&svc.db.read, &fip, &p).await?;
    let items: Vec<Value> = rows.iter().map(|r| list::project(render(r), &p.fields)).collect();
    let base = format!("{}/v2.0/floatingips/{fip}/port_forwardings", svc.base_url);
    Ok(ok(list::render("port_forwardings", items, &p, more, &base, &q)))
}

async fn show(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    Path((fip, id)): Path<(String, String)>,
    q: RawQuery,
) -> Result<Response> {
    let p = ListParams::parse(&q)?;
    fip_for(&svc.db.read, &svc, &ctx, &fip, "get_floatingip_port_forwarding").await?;
    let pf = store::get(&svc.db.read, &fip, &id).await?.ok_or_else(|| pf_not_found(&id))?;
    Ok(ok(json!({"port_forwarding": list::project(render(&pf), &p.fields)})))
}

/// A port number (1..65535).
fn port_number(attr: &str, v: &Value) -> Result<i64> {
    let n = match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .ok_or_else(|| invalid(attr, format!("'{v}' is not an integer")))?;
    if !(1..=65535).contains(&n) {
        return Err(invalid(attr, format!("'{n}' is not in range 1 through 65535")));
    }
    Ok(n)
}

/// `"a:b"` (or `"a"`, or a number) as (start, end).
fn port_range(attr: &str, v: &Value) -> Result<(i64, i64)> {
    let s = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        other => return Err(invalid(attr, format!("'{other}' is not a valid port range"))),
    };
    let (a, b) = match s.split_once(':') {
        Some((a, b)) => (a, b),
        None => (s.as_str(), s.as_str()),
    };
    let a = port_number(attr, &Value::String(a.to_string()))?;
    let b = port_number(attr, &Value::String(b.to_string()))?;
    if a > b {
        return Err(invalid(attr, format!("'{s}' is not a valid port range: the first port is above the last")));
    }
    Ok((a, b))
}

/// The (start, end) of one side from `x_port` or `x_port_range` (not both).
fn side(obj: &Map<String, Value>, single: &str, range: &str) -> Result<Option<(i64, i64)>> {
    let one = obj.get(single).filter(|v| !v.is_null());
    let many = obj.get(range).filter(|v| !v.is_null());
    match (one, many) {
        (Some(_), Some(_)) => Err(bad_pf(format!("You cannot specify {single} and {range} at the same time"))),
        (Some(v), None) => port_number(single, v).map(|n| Some((n, n))),
        (None, Some(v)) => port_range(range, v).map(Some),
        (None, None) => Ok(None),
    }
}

fn overlaps(a: (i64, i64), b: (i64, i64)) -> bool {
    a.0.max(b.0) <= a.1.min(b.1)
}

/// The forwarding's rules against the floating IP's others and the internal
/// port: ranges N-N or 1-N, no overlapping external ranges per protocol, no
/// overlapping internal ranges per (port, address, protocol), the internal
/// address on the port, the floating IP free, a router reaching the port
/// (and the floating IP's router, if it has one).
async fn check<C: ConnectionTrait>(
    conn: &C,
    svc: &NetworkService,
    ctx: &AuthContext,
    f: &FloatingIp,
    pf: &PortForwarding,
) -> Result<String> {
    let ext = (pf.external_port_start, pf.external_port_end);
    let int = (pf.internal_port_start, pf.internal_port_end);
    if int.1 > int.0 && int.1 - int.0 != ext.1 - ext.0 {
        return Err(bad_pf(
            "Invalid ranges of internal and/or external ports. The relation between internal and external ports must be N-N or 1-N",
        ));
    }
    if let Some(port) = f.fixed_port_id.as_deref() {
        return Err(conflict(
            "FloatingIPPortAlreadyAssociated",
            format!(
                "Cannot associate floating IP {} ({}) with port {} using fixed IP {}, as that fixed IP already has a floating IP on external network {}.",
                f.floating_ip_address, f.id, port, pf.internal_ip_address, f.floating_network_id
            ),
        ));
    }
    let missing = || not_found("PortNotFound", format!("Port {} could not be found.", pf.internal_port_id));
    let port = ports::get_visible(conn, &viewer(svc, ctx), &pf.internal_port_id).await?.ok_or_else(missing)?;
    if port.project_id != f.project_id && !is_admin(svc, ctx) {
        return Err(missing());
    }
    if let Some(other) = floatingips::on_port(conn, &port.id).await?.first() {
        return Err(conflict(
            "PortHasBindingFloatingIP",
            format!(
                "Cannot create port forwarding to floating IP {} ({}) with port {} using fixed IP {}, as that port already has a binding floating IP.",
                other.floating_ip_address, other.id, port.id, pf.internal_ip_address
            ),
        ));
    }
    let ips = subnets::allocations_of(conn, std::slice::from_ref(&port.id)).await?.remove(&port.id).unwrap_or_default();
    let alloc = ips.iter().find(|a| a.ip_address == pf.internal_ip_address).ok_or_else(|| {
        bad_pf(format!(
            "Requested internal IP address {} is not suitable for internal neutron port {}",
            pf.internal_ip_address, port.id
        ))
    })?;
    let router = crate::api::floatingips::router_for(conn, &f.floating_network_id, &alloc.subnet_id)
        .await?
        .ok_or_else(|| {
            bad_pf(format!(
                "External network {} is not reachable from subnet {}. Cannot set Port forwarding for port {} with Floating IP {}",
                f.floating_network_id, alloc.subnet_id, port.id, f.id
            ))
        })?;
    if let Some(r) = f.router_id.as_deref()
        && r != router
    {
        return Err(bad_pf(format!(
            "The Floating IP {} had been set on router {r}, the internal Neutron port {} can not reach it",
            f.id, port.id
        )));
    }
    for o in store::of_fips(conn, std::slice::from_ref(&f.id)).await? {
        if o.id != pf.id && o.protocol == pf.protocol && overlaps((o.external_port_start, o.external_port_end), ext) {
            return Err(bad_pf(format!(
                "There is a port collision with the external_port_range. The following ranges collide: {} and {}",
                range_str(o.external_port_start, o.external_port_end),
                range_str(ext.0, ext.1)
            )));
        }
    }
    for o in store::of_internal_port(conn, &port.id).await? {
        if o.id != pf.id
            && o.protocol == pf.protocol
            && o.internal_ip_address == pf.internal_ip_address
            && overlaps((o.internal_port_start, o.internal_port_end), int)
        {
            return Err(bad_pf(format!(
                "There is a port collision with the internal_port_range. The following ranges collide: {} and {}",
                range_str(o.internal_port_start, o.internal_port_end),
                range_str(int.0, int.1)
            )));
        }
    }
    Ok(router)
}

/// Run `pf` through [`check`], then write it (insert or update) with the
/// floating IP's `router_id` and a bumped revision, retrying a lost race.
async fn store_pf(svc: &State, ctx: &AuthContext, fip: &str, rule: &str, pf: &PortForwarding, new: bool) -> Result<()> {
    let retries = svc.cfg.network.allocation_retries.max(1);
    for _ in 0..=retries {
        let attempt = async {
            let txn = svc.db.write.begin().await?;
            let mut f = fip_for(&txn, svc, ctx, fip, rule).await?;
            let before = f.clone();
            let router = check(&txn, svc, ctx, &f, pf).await?;
            f.router_id = Some(router);
            f.updated_at = st::now();
            if !floatingips::save(&txn, &f).await? {
                return Ok(None);
            }
            if new {
                store::insert(&txn, pf.clone()).await?;
            } else {
                store::save(&txn, pf).await?;
            }
            txn.commit().await?;
            Ok::<_, NetworkError>(Some((before, f)))
        };
        match attempt.await {
            Ok(Some((before, after))) => {
                crate::l3::forwardings_changed(svc, &before, &after);
                return Ok(());
            }
            Ok(None) => continue,
            Err(e) if routers::retryable(&e) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(bad_pf(format!("A duplicate port forwarding entry with same attributes already exists on floating IP {fip}")))
}

fn internal_ip(obj: &Map<String, Value>) -> Result<Option<String>> {
    match obj.get("internal_ip_address").filter(|v| !v.is_null()) {
        Some(v) => {
            let s =
                v.as_str().ok_or_else(|| invalid("internal_ip_address", format!("'{v}' is not a valid IP address")))?;
            let ip: IpAddr =
                s.parse().map_err(|_| invalid("internal_ip_address", format!("'{s}' is not a valid IP address")))?;
            if !ip.is_ipv4() {
                return Err(invalid("internal_ip_address", format!("'{s}' is not a valid IPv4 address")));
            }
            Ok(Some(ip.to_string()))
        }
        None => Ok(None),
    }
}

fn protocol(v: &Value) -> Result<String> {
    let p = v.as_str().unwrap_or_default().to_ascii_lowercase();
    if !PROTOCOLS.contains(&p.as_str()) {
        return Err(invalid("protocol", format!("{v} is not in {PROTOCOLS:?}")));
    }
    Ok(p)
}

/// The first IPv4 address of a port (the default internal address).
async fn first_v4<C: ConnectionTrait>(conn: &C, port: &str) -> Result<String> {
    let ips = subnets::allocations_of(conn, &[port.to_string()]).await?.remove(port).unwrap_or_default();
    ips.into_iter()
        .map(|a| a.ip_address)
        .find(|ip| ip.parse::<IpAddr>().is_ok_and(|i| i.is_ipv4()))
        .ok_or_else(|| bad_pf(format!("Requested internal port {port} must allocate an IPv4 address at least")))
}

async fn create(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    Path(fip): Path<String>,
    body: Body,
) -> Result<Response> {
    let obj = model::resource(&body.0, "port_forwarding")?.clone();
    model::only(&obj, CREATE_ATTRS)?;
    let required = |k: &str| bad(format!("Failed to parse request. Required attribute '{k}' not specified"));
    let protocol = protocol(obj.get("protocol").ok_or_else(|| required("protocol"))?)?;
    let port_id =
        model::uuid("internal_port_id", obj.get("internal_port_id").ok_or_else(|| required("internal_port_id"))?)?;
    let ext = side(&obj, "external_port", "external_port_range")?.ok_or_else(|| required("external_port"))?;
    let int = side(&obj, "internal_port", "internal_port_range")?.ok_or_else(|| required("internal_port"))?;
    let ip = match internal_ip(&obj)? {
        Some(ip) => ip,
        None => first_v4(&svc.db.read, &port_id).await?,
    };
    let pf = PortForwarding {
        id: st::new_id(),
        floatingip_id: fip.clone(),
        protocol,
        external_port_start: ext.0,
        external_port_end: ext.1,
        internal_port_id: port_id,
        internal_ip_address: ip,
        internal_port_start: int.0,
        internal_port_end: int.1,
        description: match obj.get("description").filter(|v| !v.is_null()) {
            Some(v) => model::string("description", v, 255)?,
            None => String::new(),
        },
    };
    store_pf(&svc, &ctx, &fip, "create_floatingip_port_forwarding", &pf, true).await?;
    Ok(created(json!({"port_forwarding": render(&pf)})))
}

async fn update(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    Path((fip, id)): Path<(String, String)>,
    body: Body,
) -> Result<Response> {
    let obj = model::resource(&body.0, "port_forwarding")?.clone();
    model::only(&obj, CREATE_ATTRS)?;
    fip_for(&svc.db.read, &svc, &ctx, &fip, "update_floatingip_port_forwarding").await?;
    let mut pf = store::get(&svc.db.read, &fip, &id).await?.ok_or_else(|| pf_not_found(&id))?;
    if let Some(v) = obj.get("protocol") {
        pf.protocol = protocol(v)?;
    }
    if let Some(v) = obj.get("internal_port_id") {
        pf.internal_port_id = model::uuid("internal_port_id", v)?;
        if internal_ip(&obj)?.is_none() {
            pf.internal_ip_address = first_v4(&svc.db.read, &pf.internal_port_id).await?;
        }
    }
    if let Some(ip) = internal_ip(&obj)? {
        pf.internal_ip_address = ip;
    }
    if let Some((a, b)) = side(&obj, "external_port", "external_port_range")? {
        (pf.external_port_start, pf.external_port_end) = (a, b);
    }
    if let Some((a, b)) = side(&obj, "internal_port", "internal_port_range")? {
        (pf.internal_port_start, pf.internal_port_end) = (a, b);
    }
    if let Some(v) = obj.get("description") {
        pf.description = if v.is_null() { String::new() } else { model::string("description", v, 255)? };
    }
    store_pf(&svc, &ctx, &fip, "update_floatingip_port_forwarding", &pf, false).await?;
    Ok(ok(json!({"port_forwarding": render(&pf)})))
}

async fn delete(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    Path((fip, id)): Path<(String, String)>,
) -> Result<Response> {
    let retries = svc.cfg.network.allocation_retries.max(1);
    for _ in 0..=retries {
        let attempt = async {
            let txn = svc.db.write.begin().await?;
            let mut f = fip_for(&txn, &svc, &ctx, &fip, "delete_floatingip_port_forwarding").await?;
            let before = f.clone();
            if store::get(&txn, &fip, &id).await?.is_none() || !store::delete(&txn, &id).await? {
                return Err(pf_not_found(&id));
            }
            if store::count_of_fip(&txn, &fip).await? == 0 {
                f.router_id = None;
            }
            f.updated_at = st::now();
            if !floatingips::save(&txn, &f).await? {
                return Ok(None);
            }
            txn.commit().await?;
            Ok::<_, NetworkError>(Some((before, f)))
        };
        match attempt.await {
            Ok(Some((before, after))) => {
                crate::l3::forwardings_changed(&svc, &before, &after);
                return Ok(no_content());
            }
            Ok(None) => continue,
            Err(e) if routers::retryable(&e) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(conflict("FipInUseByPortForwarding", format!("Floating IP {fip} kept changing; try again.")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_ranges() {
        assert_eq!(port_range("r", &json!("100:110")).unwrap(), (100, 110));
        assert_eq!(port_range("r", &json!("80")).unwrap(), (80, 80));
        assert!(port_range("r", &json!("110:100")).is_err());
        assert!(port_range("r", &json!("0:10")).is_err());
        assert!(port_range("r", &json!("1:65536")).is_err());
        assert!(port_number("p", &json!(true)).is_err());
        assert!(overlaps((1, 10), (10, 20)));
        assert!(!overlaps((1, 9), (10, 20)));
    }

    #[test]
    fn one_side_at_a_time() {
        let o = json!({"external_port": 1, "external_port_range": "1:2"});
        assert!(side(o.as_object().unwrap(), "external_port", "external_port_range").is_err());
        let o = json!({});
        assert_eq!(side(o.as_object().unwrap(), "external_port", "external_port_range").unwrap(), None);
    }
}
