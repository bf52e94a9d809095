//! `/v2.0/routers`: list, show, create, update, delete; the external gateway
//! (`external_gateway_info`, with SNAT mode, ext-gw-mode); interfaces
//! (`add_router_interface` / `remove_router_interface` by subnet or port);
//! extra routes (`routes`, and `add_extraroutes` / `remove_extraroutes`).
//!
//! A router's gateway and interfaces are ports it owns (`device_id`); every
//! change of them happens in one transaction that also bumps the router's
//! revision, so two racing changes of one router never both pass their checks.

use std::collections::BTreeSet;
use std::net::IpAddr;

use axum::Router;
use axum::extract::{Path, State as AxState};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{get, put};
use ipnet::IpNet;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, TransactionTrait};
use serde_json::{Map, Value, json};
use stratus_core::AuthContext;
use stratus_core::auth::Auth;
use stratus_core::extract::RawQuery;

use crate::api::list::{self, ListParams};
use crate::api::networks::viewer;
use crate::api::subnets::cidr_of;
use crate::api::{Body, allowed, authorize, check_revision, created, is_admin, no_content, ok, owner_for_create};
use crate::entity::ipallocation::{self, Model as Allocation};
use crate::entity::port::Model as Port;
use crate::entity::router::Model as Router_;
use crate::entity::subnet::Model as Subnet;
use crate::error::{NetworkError, Result, bad, bad_kind, conflict, invalid, not_found};
use crate::store::routers::{self as store, GATEWAY_OWNER, INTERFACE_OWNER, IpRequest};
use crate::store::{self as st, floatingips, networks, ports, quotas, subnets, tags};
use crate::{NetworkService, State, ipam, l3, model};

pub fn routes() -> Router<State> {
    Router::new()
        .route("/v2.0/routers", get(index).post(create))
        .route("/v2.0/routers/{id}", get(show).put(update).delete(delete))
        .route("/v2.0/routers/{id}/add_router_interface", put(add_interface))
        .route("/v2.0/routers/{id}/remove_router_interface", put(remove_interface))
        .route("/v2.0/routers/{id}/add_extraroutes", put(add_extraroutes))
        .route("/v2.0/routers/{id}/remove_extraroutes", put(remove_extraroutes))
}

const CREATE_ATTRS: &[&str] =
    &["name", "admin_state_up", "description", "external_gateway_info", "ha", "project_id", "tenant_id"];
const UPDATE_ATTRS: &[&str] = &["name", "admin_state_up", "description", "external_gateway_info", "routes", "ha"];
/// Neutron's `max_routes`.
const MAX_ROUTES: usize = 30;

pub fn router_not_found(id: &str) -> NetworkError {
    not_found("RouterNotFound", format!("Router {id} could not be found"))
}

fn bad_router(msg: impl std::fmt::Display) -> NetworkError {
    bad_kind("BadRequest", format!("Bad router request: {msg}."))
}

/// Neutron refuses to delete a router's or a floating IP's port through the
/// port API (`ServicePortInUse`); they go with their router interface,
/// gateway or floating IP.
pub fn prevent_l3_port_deletion(p: &Port) -> Result<()> {
    let owners = [INTERFACE_OWNER, GATEWAY_OWNER, store::FLOATINGIP_OWNER];
    if owners.contains(&p.device_owner.as_str()) && !p.device_id.is_empty() {
        return Err(conflict(
            "ServicePortInUse",
            format!("Port {} cannot be deleted directly via the port API: has device owner {}.", p.id, p.device_owner),
        ));
    }
    Ok(())
}

/// What a router shows besides its row: gateway port with addresses, routes, tags.
struct Extra {
    gw: Option<(Port, Vec<Allocation>)>,
    routes: Vec<(String, String)>,
    tags: Vec<String>,
}

fn render(r: &Router_, e: &Extra) -> Value {
    let gw = match &e.gw {
        Some((p, ips)) => json!({
            "network_id": p.network_id,
            "enable_snat": r.enable_snat,
            "external_fixed_ips": ips.iter().map(|a| json!({"subnet_id": a.subnet_id, "ip_address": a.ip_address})).collect::<Vec<_>>(),
        }),
        None => Value::Null,
    };
    json!({
        "id": r.id,
        "name": r.name,
        "tenant_id": r.project_id,
        "project_id": r.project_id,
        "admin_state_up": r.admin_state_up,
        "status": r.status,
        "external_gateway_info": gw,
        "routes": e.routes.iter().map(|(d, n)| json!({"destination": d, "nexthop": n})).collect::<Vec<_>>(),
        "description": r.description,
        "tags": e.tags,
        "created_at": r.created_at,
        "updated_at": r.updated_at,
        "revision_number": r.revision_number,
    })
}

pub(crate) async fn render_many<C: ConnectionTrait>(conn: &C, rs: &[Router_]) -> Result<Vec<Value>> {
    let ids: Vec<String> = rs.iter().map(|r| r.id.clone()).collect();
    let mut routes = store::routes_of(conn, &ids).await?;
    let mut tg = tags::of(conn, store::TAG_TYPE, &ids).await?;
    let gw_ids: Vec<String> = rs.iter().filter(|r| !r.gw_port_id.is_empty()).map(|r| r.gw_port_id.clone()).collect();
    let mut gw_ips = subnets::allocations_of(conn, &gw_ids).await?;
    let mut out = Vec::new();
    for r in rs {
        let gw = if r.gw_port_id.is_empty() {
            None
        } else {
            store::port(conn, &r.gw_port_id).await?.map(|p| (p, gw_ips.remove(&r.gw_port_id).unwrap_or_default()))
        };
        let e = Extra {
            gw,
            routes: routes.remove(&r.id).unwrap_or_default().into_iter().map(|x| (x.destination, x.nexthop)).collect(),
            tags: tg.remove(&r.id).unwrap_or_default(),
        };
        out.push(render(r, &e));
    }
    Ok(out)
}

/// `ha` (l3-ha): routers here are never highly available; only those the
/// `get_router:ha` rule allows (admins) see the attribute.
fn with_ha(svc: &NetworkService, ctx: &AuthContext, mut v: Value) -> Value {
    let project = v["project_id"].as_str().unwrap_or_default().to_string();
    if allowed(svc, ctx, "get_router:ha", &project)
        && let Some(o) = v.as_object_mut()
    {
        o.insert("ha".into(), json!(false));
    }
    v
}

/// `ha` in a create or update body: its rule must allow the caller, and only
/// `false` is served (no VRRP pairs here).
fn check_ha(
    svc: &NetworkService,
    ctx: &AuthContext,
    action: &str,
    obj: &Map<String, Value>,
    project: &str,
) -> Result<()> {
    let Some(v) = obj.get("ha") else { return Ok(()) };
    authorize(svc, ctx, &format!("{action}:ha"), project)?;
    if v.is_null() {
        return Ok(());
    }
    if model::boolean("ha", v)? {
        return Err(bad_router("HA routers are not supported by this cloud"));
    }
    Ok(())
}

async fn render_one<C: ConnectionTrait>(conn: &C, r: &Router_) -> Result<Value> {
    Ok(render_many(conn, std::slice::from_ref(r)).await?.remove(0))
}

async fn index(AxState(svc): AxState<State>, Auth(ctx): Auth, q: RawQuery) -> Result<Response> {
    let p = ListParams::parse(&q)?;
    let (rows, more) = store::list(&svc.db.read, &viewer(&svc, &ctx), &p).await?;
    let items: Vec<Value> = render_many(&svc.db.read, &rows)
        .await?
        .into_iter()
        .map(|v| list::project(with_ha(&svc, &ctx, v), &p.fields))
        .collect();
    Ok(ok(list::render("routers", items, &p, more, &format!("{}/v2.0/routers", svc.base_url), &q)))
}

async fn show(AxState(svc): AxState<State>, Auth(ctx): Auth, Path(id): Path<String>, q: RawQuery) -> Result<Response> {
    let p = ListParams::parse(&q)?;
    let r = store::get_visible(&svc.db.read, &viewer(&svc, &ctx), &id).await?.ok_or_else(|| router_not_found(&id))?;
    Ok(ok(json!({"router": list::project(with_ha(&svc, &ctx, render_one(&svc.db.read, &r).await?), &p.fields)})))
}

/// A requested external gateway, validated against the network.
#[derive(Clone, Debug)]
struct Gateway {
    network: String,
    enable_snat: Option<bool>,
    /// The addresses asked for (`external_fixed_ips`), None: the default ones.
    fixed: Option<Vec<IpRequest>>,
}

/// `external_gateway_info` as a [`Gateway`] (None: remove it), with the
/// policy of each attribute given.
async fn parse_gateway(
    svc: &NetworkService,
    ctx: &AuthContext,
    action: &str,
    project: &str,
    v: &Value,
) -> Result<Option<Gateway>> {
    let o = match v {
        Value::Null => return Ok(None),
        Value::Object(o) if o.is_empty() => return Ok(None),
        Value::Object(o) => o,
        other => return Err(invalid("external_gateway_info", format!("'{other}' is not a dictionary"))),
    };
    for k in o.keys() {
        if !["network_id", "enable_snat", "external_fixed_ips"].contains(&k.as_str()) {
            return Err(invalid("external_gateway_info", format!("Unexpected keys supplied: {k}")));
        }
        authorize(svc, ctx, &format!("{action}:external_gateway_info:{k}"), project)?;
    }
    let net_id = model::uuid(
        "external_gateway_info",
        o.get("network_id").ok_or_else(|| {
            invalid("external_gateway_info", "Validation of dictionary's keys failed. Expected keys: {'network_id'}")
        })?,
    )?;
    let net = networks::get(&svc.db.read, &net_id)
        .await?
        .filter(|n| n.external || is_admin(svc, ctx) || n.project_id == project || n.shared)
        .ok_or_else(|| not_found("NetworkNotFound", format!("Network {net_id} could not be found.")))?;
    if !net.external {
        return Err(bad_router(format!("Network {net_id} is not an external network")));
    }
    let enable_snat = o.get("enable_snat").map(|v| model::boolean("enable_snat", v)).transpose()?;
    let subs = subnets::of_network(&svc.db.read, &net_id).await?;
    let fixed = match o.get("external_fixed_ips").filter(|v| !v.is_null()) {
        Some(v) => Some(parse_fixed_ips(v, &subs, "external_fixed_ips")?),
        None => None,
    };
    Ok(Some(Gateway { network: net_id, enable_snat, fixed }))
}

/// `[{"subnet_id": .., "ip_address": ..}]` as address requests on `subs`.
fn parse_fixed_ips(v: &Value, subs: &[Subnet], attr: &str) -> Result<Vec<IpRequest>> {
    let Value::Array(a) = v else {
        return Err(invalid(attr, format!("'{v}' is not a list")));
    };
    let mut out = Vec::new();
    for e in a {
        let Some(e) = e.as_object() else {
            return Err(invalid(attr, format!("'{e}' is not a dictionary")));
        };
        for k in e.keys() {
            if k != "subnet_id" && k != "ip_address" {
                return Err(invalid(attr, format!("unexpected key '{k}'")));
            }
        }
        let ip = match e.get("ip_address").filter(|v| !v.is_null()) {
            Some(v) => Some(ipam::parse_ip(attr, v.as_str().unwrap_or_default(), None)?),
            None => None,
        };
        let subnet = match e.get("subnet_id").filter(|v| !v.is_null()) {
            Some(v) => {
                let id = model::uuid("subnet_id", v)?;
                Some(subs.iter().find(|s| s.id == id).cloned().ok_or_else(|| {
                    bad_kind("BadRequest", format!("Bad router request: Subnet {id} is not on the external network."))
                })?)
            }
            None => None,
        };
        let subnet = match (subnet, ip) {
            (Some(s), _) => s,
            (None, Some(ip)) => {
                subs.iter().find(|s| cidr_of(s).is_ok_and(|c| c.contains(&ip))).cloned().ok_or_else(|| {
                    bad_kind(
                        "InvalidIpForNetwork",
                        format!("IP address {ip} is not a valid IP for any of the subnets on the specified network."),
                    )
                })?
            }
            (None, None) => return Err(invalid(attr, "each entry needs a subnet_id or an ip_address")),
        };
        match ip {
            Some(ip) if !store::valid_host(&subnet, ip) => {
                return Err(bad_kind(
                    "InvalidIpForSubnet",
                    format!("IP address {ip} is not a valid IP for the specified subnet."),
                ));
            }
            Some(ip) => out.push(IpRequest::Specific(Box::new(subnet), ip)),
            None => out.push(IpRequest::Any(vec![subnet])),
        }
    }
    Ok(out)
}

/// The addresses of a gateway without `external_fixed_ips`: one IPv4 and one
/// IPv6 address when the network has such subnets.
fn default_requests(subs: &[Subnet]) -> Vec<IpRequest> {
    [4, 6]
        .into_iter()
        .map(|v| subs.iter().filter(|s| s.ip_version == v).cloned().collect::<Vec<_>>())
        .filter(|g| !g.is_empty())
        .map(IpRequest::Any)
        .collect()
}

/// Set, change or remove the router's gateway inside `txn` (the router row is
/// saved by the caller).
async fn apply_gateway<C: ConnectionTrait>(
    txn: &C,
    svc: &NetworkService,
    r: &mut Router_,
    gw: Option<&Gateway>,
) -> Result<()> {
    let cur = if r.gw_port_id.is_empty() { None } else { store::port(txn, &r.gw_port_id).await? };
    let same_net = matches!((&cur, gw), (Some(p), Some(g)) if p.network_id == g.network);
    let replace = match gw {
        None => cur.is_some(),
        Some(g) => !same_net || g.fixed.is_some(),
    };
    if let Some(g) = gw {
        r.enable_snat = g.enable_snat.unwrap_or(if same_net { r.enable_snat } else { true });
    }
    if !replace {
        return Ok(());
    }
    if let Some(p) = &cur {
        if (gw.is_none() || !same_net) && floatingips::count_via_router(txn, &r.id).await? > 0 {
            return Err(conflict(
                "RouterExternalGatewayInUseByFloatingIp",
                format!(
                    "Gateway cannot be updated for router {}, since a gateway to external network {} is required by one or more floating IPs.",
                    r.id, p.network_id
                ),
            ));
        }
        ports::delete(txn, &p.id).await?;
        r.gw_port_id = String::new();
    }
    let Some(g) = gw else {
        r.enable_snat = true;
        return Ok(());
    };
    let reqs = match &g.fixed {
        Some(f) => f.clone(),
        None => default_requests(&subnets::of_network(txn, &g.network).await?),
    };
    // an external network without subnets: the gateway port has no address
    // yet (Neutron makes it so, and logs "No IPs available")
    let (p, _) =
        store::create_service_port(txn, &svc.cfg.network.base_mac, &g.network, "", GATEWAY_OWNER, &r.id, &reqs).await?;
    r.gw_port_id = p.id;
    Ok(())
}

async fn create(AxState(svc): AxState<State>, Auth(ctx): Auth, body: Body) -> Result<Response> {
    let obj = model::resource(&body.0, "router")?.clone();
    model::only(&obj, CREATE_ATTRS)?;
    let project = owner_for_create(&svc, &ctx, &obj)?;
    authorize(&svc, &ctx, "create_router", &project)?;
    check_ha(&svc, &ctx, "create_router", &obj, &project)?;
    let gw = match obj.get("external_gateway_info") {
        Some(v) => parse_gateway(&svc, &ctx, "create_router", &project, v).await?,
        None => None,
    };
    let get_str = |k: &str| -> Result<String> {
        match obj.get(k) {
            Some(Value::Null) | None => Ok(String::new()),
            Some(v) => model::string(k, v, 255),
        }
    };
    let now = st::now();
    let row = Router_ {
        id: st::new_id(),
        project_id: project.clone(),
        name: get_str("name")?,
        admin_state_up: obj
            .get("admin_state_up")
            .map(|v| model::boolean("admin_state_up", v))
            .transpose()?
            .unwrap_or(true),
        status: "ACTIVE".into(),
        gw_port_id: String::new(),
        enable_snat: true,
        availability_zone_hints: "[]".into(),
        l3_agent_host: String::new(),
        description: get_str("description")?,
        created_at: now.clone(),
        updated_at: now,
        revision_number: 0,
    };
    let row = Router_ {
        l3_agent_host: l3::choose_host(&svc.db.read, svc.cfg.network.agent_down_time).await?.unwrap_or_default(),
        ..row
    };
    quotas::ensure_lock_row(&svc.db, &project).await?;
    let retries = svc.cfg.network.allocation_retries.max(1);
    let mut last = None;
    for _ in 0..=retries {
        let attempt = async {
            let txn = svc.db.write.begin().await?;
            quotas::check(&txn, &svc.cfg, &project, "router", 1).await?;
            let mut r = row.clone();
            apply_gateway(&txn, &svc, &mut r, gw.as_ref()).await?;
            store::insert(&txn, r.clone()).await?;
            txn.commit().await?;
            Ok::<_, NetworkError>(r)
        };
        match attempt.await {
            Ok(r) => {
                l3::router_changed(&svc, &r.id);
                return Ok(created(json!({"router": with_ha(&svc, &ctx, render_one(&svc.db.write, &r).await?)})));
            }
            Err(e) if store::retryable(&e) => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    tracing::warn!("router create gave up after {retries} retries: {last:?}");
    Err(conflict("IpAddressGenerationFailure", "Unable to allocate the gateway address: try again."))
}

/// The router as its owner (or an admin) may change it: 404 when invisible, 403 by policy.
async fn writable(svc: &NetworkService, ctx: &AuthContext, id: &str, rule: &str) -> Result<Router_> {
    let r = store::get_visible(&svc.db.write, &viewer(svc, ctx), id).await?.ok_or_else(|| router_not_found(id))?;
    authorize(svc, ctx, rule, &r.project_id)?;
    Ok(r)
}

/// `routes` as (destination, nexthop) pairs, checked against the router's
/// interfaces (the nexthop must be on one of their subnets, and not be one of
/// the router's own addresses).
async fn parse_routes<C: ConnectionTrait>(conn: &C, router: &str, v: &Value) -> Result<Vec<(String, String)>> {
    let items = match v {
        Value::Null => return Ok(Vec::new()),
        Value::Array(a) => a,
        other => return Err(invalid("routes", format!("'{other}' is not a list"))),
    };
    let mut out = Vec::new();
    for it in items {
        let Some(o) = it.as_object() else {
            return Err(invalid("routes", format!("'{it}' is not a dictionary")));
        };
        if o.keys().any(|k| k != "destination" && k != "nexthop") || o.len() != 2 {
            return Err(invalid(
                "routes",
                "Validation of dictionary's keys failed. Expected keys: {'destination', 'nexthop'}",
            ));
        }
        let d = o["destination"].as_str().unwrap_or_default();
        let dest: IpNet = d.parse().map_err(|_| invalid("routes", format!("'{d}' is not a valid IP subnet")))?;
        let n = o["nexthop"].as_str().unwrap_or_default();
        let hop = ipam::parse_ip("routes", n, None)?;
        out.push((dest.trunc().to_string(), hop.to_string()));
    }
    let uniq: BTreeSet<(String, String)> = out.iter().cloned().collect();
    if uniq.len() > MAX_ROUTES {
        return Err(bad_kind(
            "RoutesExhausted",
            format!(
                "Unable to complete operation for {router}. The number of routes exceeds the maximum {MAX_ROUTES}."
            ),
        ));
    }
    check_nexthops(conn, router, &out).await?;
    Ok(uniq.into_iter().collect())
}

async fn check_nexthops<C: ConnectionTrait>(conn: &C, router: &str, routes: &[(String, String)]) -> Result<()> {
    let (cidrs, own) = interface_cidrs(conn, router).await?;
    for (d, n) in routes {
        let hop: IpAddr = n.parse().map_err(|_| invalid("routes", format!("'{n}' is not a valid IP address")))?;
        let route = json!({"destination": d, "nexthop": n});
        if own.contains(n) {
            return Err(bad_kind(
                "InvalidRoutes",
                format!("Invalid format for routes: {route}, the nexthop is used by router"),
            ));
        }
        if !cidrs.iter().any(|(_, c)| c.contains(&hop)) {
            return Err(bad_kind(
                "InvalidRoutes",
                format!("Invalid format for routes: {route}, the nexthop is not connected with router"),
            ));
        }
    }
    Ok(())
}

/// The (subnet id, CIDR) of every interface of the router, and its interface addresses.
async fn interface_cidrs<C: ConnectionTrait>(
    conn: &C,
    router: &str,
) -> Result<(Vec<(String, IpNet)>, BTreeSet<String>)> {
    let ifs = store::interfaces(conn, router).await?;
    let ids: Vec<String> = ifs.iter().map(|p| p.id.clone()).collect();
    let allocs: Vec<Allocation> = subnets::allocations_of(conn, &ids).await?.into_values().flatten().collect();
    let sids: Vec<String> = allocs.iter().map(|a| a.subnet_id.clone()).collect();
    let mut cidrs = Vec::new();
    for s in subnets::by_ids(conn, &sids).await? {
        cidrs.push((s.id.clone(), cidr_of(&s)?));
    }
    Ok((cidrs, allocs.into_iter().map(|a| a.ip_address).collect()))
}

async fn update(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response> {
    let obj = model::resource(&body.0, "router")?.clone();
    for k in obj.keys() {
        if CREATE_ATTRS.contains(&k.as_str()) && !UPDATE_ATTRS.contains(&k.as_str()) {
            return Err(bad(format!("Cannot update read-only attribute {k}")));
        }
    }
    model::only(&obj, UPDATE_ATTRS)?;
    let retries = svc.cfg.network.allocation_retries.max(1);
    for _ in 0..=retries {
        let cur = writable(&svc, &ctx, &id, "update_router").await?;
        check_ha(&svc, &ctx, "update_router", &obj, &cur.project_id)?;
        check_revision(&headers, cur.revision_number)?;
        let gw = match obj.get("external_gateway_info") {
            Some(v) => Some(parse_gateway(&svc, &ctx, "update_router", &cur.project_id, v).await?),
            None => None,
        };
        let mut r = cur.clone();
        for (k, v) in &obj {
            match k.as_str() {
                "name" => r.name = model::string(k, v, 255)?,
                "description" => r.description = model::string(k, v, 255)?,
                "admin_state_up" => r.admin_state_up = model::boolean(k, v)?,
                _ => {}
            }
        }
        r.updated_at = st::now();
        let attempt = async {
            let txn = svc.db.write.begin().await?;
            if let Some(g) = &gw {
                apply_gateway(&txn, &svc, &mut r, g.as_ref()).await?;
            }
            if let Some(v) = obj.get("routes") {
                let routes = parse_routes(&txn, &id, v).await?;
                store::set_routes(&txn, &id, &routes).await?;
            }
            if !store::save(&txn, &r).await? {
                return Ok(None);
            }
            txn.commit().await?;
            r.revision_number += 1;
            Ok::<_, NetworkError>(Some(r.clone()))
        };
        match attempt.await {
            Ok(Some(r)) => {
                l3::router_changed(&svc, &r.id);
                return Ok(ok(json!({"router": with_ha(&svc, &ctx, render_one(&svc.db.write, &r).await?)})));
            }
            Ok(None) => continue,
            Err(e) if store::retryable(&e) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(conflict("RouterInUse", format!("Router {id} kept changing during the update; try again.")))
}

async fn delete(AxState(svc): AxState<State>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Response> {
    let r = writable(&svc, &ctx, &id, "delete_router").await?;
    let txn = svc.db.write.begin().await?;
    if !store::interfaces(&txn, &id).await?.is_empty() {
        return Err(conflict("RouterInUse", format!("Router {id} still has ports")));
    }
    let mut r = r;
    apply_gateway(&txn, &svc, &mut r, None).await?;
    if !store::delete(&txn, &id).await? {
        return Err(router_not_found(&id));
    }
    txn.commit().await?;
    l3::router_deleted(&svc, &r);
    Ok(no_content())
}

/// The `add_router_interface`/`remove_router_interface` answer.
fn interface_info(r: &Router_, p: &Port, subnet_ids: &[String]) -> Value {
    json!({
        "id": r.id,
        "tenant_id": r.project_id,
        "project_id": r.project_id,
        "port_id": p.id,
        "network_id": p.network_id,
        "subnet_id": subnet_ids.first(),
        "subnet_ids": subnet_ids,
    })
}

/// The body's `subnet_id` and `port_id` (at least one).
fn interface_args(body: &Value) -> Result<(Option<String>, Option<String>)> {
    let Some(o) = body.as_object() else {
        return Err(bad("Resource body required"));
    };
    for k in o.keys() {
        if k != "subnet_id" && k != "port_id" {
            return Err(bad(format!("Unrecognized attribute(s) '{k}'")));
        }
    }
    let subnet = o.get("subnet_id").filter(|v| !v.is_null()).map(|v| model::uuid("subnet_id", v)).transpose()?;
    let port = o.get("port_id").filter(|v| !v.is_null()).map(|v| model::uuid("port_id", v)).transpose()?;
    if subnet.is_none() && port.is_none() {
        return Err(bad_router("Either subnet_id or port_id must be specified"));
    }
    Ok((subnet, port))
}

/// A new interface on `subs` must not repeat or overlap the router's others.
async fn check_new_interface<C: ConnectionTrait>(conn: &C, router: &str, subs: &[Subnet]) -> Result<()> {
    let (cidrs, _) = interface_cidrs(conn, router).await?;
    for s in subs {
        let new = cidr_of(s)?;
        for (sid, c) in &cidrs {
            if *sid == s.id {
                return Err(bad_router(format!("Router already has a port on subnet {sid}")));
            }
            if ipam::overlaps(c, &new) {
                return Err(bad_router(format!(
                    "Cidr {new} of subnet {} overlaps with cidr {c} of subnet {sid}",
                    s.id
                )));
            }
        }
    }
    Ok(())
}

async fn add_interface(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    body: Body,
) -> Result<Response> {
    let (subnet_id, port_id) = interface_args(&body.0)?;
    if subnet_id.is_some() && port_id.is_some() {
        return Err(bad_router("Cannot specify both subnet-id and port-id"));
    }
    let v = viewer(&svc, &ctx);
    let retries = svc.cfg.network.allocation_retries.max(1);
    let mut last = None;
    for _ in 0..=retries {
        let r = writable(&svc, &ctx, &id, "add_router_interface").await?;
        let attempt = async {
            let txn = svc.db.write.begin().await?;
            let (port, sids) = match (&subnet_id, &port_id) {
                (Some(sid), _) => {
                    let s = subnets::get_visible(&txn, &v, sid)
                        .await?
                        .ok_or_else(|| crate::api::subnets::subnet_not_found(sid))?;
                    if s.gateway_ip.is_empty() {
                        return Err(bad_router("Subnet for router interface must have a gateway IP"));
                    }
                    check_new_interface(&txn, &id, std::slice::from_ref(&s)).await?;
                    let gw: IpAddr =
                        s.gateway_ip.parse().map_err(|_| anyhow::anyhow!("stored gateway {}", s.gateway_ip))?;
                    let reqs = [IpRequest::Specific(Box::new(s.clone()), gw)];
                    let (p, _) = store::create_service_port(
                        &txn,
                        &svc.cfg.network.base_mac,
                        &s.network_id,
                        &r.project_id,
                        INTERFACE_OWNER,
                        &r.id,
                        &reqs,
                    )
                    .await?;
                    (p, vec![s.id])
                }
                (None, Some(pid)) => {
                    let mut p = ports::get_visible(&txn, &v, pid)
                        .await?
                        .ok_or_else(|| not_found("PortNotFound", format!("Port {pid} could not be found.")))?;
                    if !p.device_id.is_empty() {
                        return Err(conflict(
                            "PortInUse",
                            format!(
                                "Unable to complete operation on port {pid} for network {}. Port already has an attached device {}.",
                                p.network_id, p.device_id
                            ),
                        ));
                    }
                    let ips =
                        subnets::allocations_of(&txn, std::slice::from_ref(pid)).await?.remove(pid).unwrap_or_default();
                    if ips.is_empty() {
                        return Err(bad_router("Router port must have at least one fixed IP"));
                    }
                    let sids: Vec<String> =
                        ips.iter().map(|a| a.subnet_id.clone()).collect::<BTreeSet<_>>().into_iter().collect();
                    let subs = subnets::by_ids(&txn, &sids).await?;
                    if subs.iter().filter(|s| s.ip_version == 4).count() > 1 {
                        return Err(bad_router("Cannot have multiple IPv4 subnets on router port"));
                    }
                    check_new_interface(&txn, &id, &subs).await?;
                    p.device_id = r.id.clone();
                    p.device_owner = INTERFACE_OWNER.into();
                    p.updated_at = st::now();
                    if !ports::save(&txn, &p).await? {
                        return Ok(None);
                    }
                    p.revision_number += 1;
                    (p, sids)
                }
                (None, None) => return Err(bad_router("Either subnet_id or port_id must be specified")),
            };
            let mut rr = r.clone();
            rr.updated_at = st::now();
            if !store::save(&txn, &rr).await? {
                return Ok(None);
            }
            txn.commit().await?;
            Ok::<_, NetworkError>(Some(interface_info(&r, &port, &sids)))
        };
        match attempt.await {
            Ok(Some(v)) => {
                l3::router_changed(&svc, &id);
                return Ok(ok(v));
            }
            Ok(None) => continue,
            Err(e) if store::retryable(&e) => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    tracing::warn!("add_router_interface gave up after {retries} retries: {last:?}");
    Err(conflict("RouterInUse", format!("Router {id} kept changing; try again.")))
}

async fn remove_interface(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    body: Body,
) -> Result<Response> {
    let (subnet_id, port_id) = interface_args(&body.0)?;
    let retries = svc.cfg.network.allocation_retries.max(1);
    for _ in 0..=retries {
        let r = writable(&svc, &ctx, &id, "remove_router_interface").await?;
        let attempt = async {
            let txn = svc.db.write.begin().await?;
            let ifs = store::interfaces(&txn, &id).await?;
            let ids: Vec<String> = ifs.iter().map(|p| p.id.clone()).collect();
            let mut allocs = subnets::allocations_of(&txn, &ids).await?;
            // the port, and the subnets of it that go
            let (port, gone): (Port, Vec<String>) = match (&port_id, &subnet_id) {
                (Some(pid), sid) => {
                    let p = ifs.iter().find(|p| &p.id == pid).cloned().ok_or_else(|| {
                        not_found(
                            "RouterInterfaceNotFound",
                            format!("Router {id} does not have an interface with id {pid}"),
                        )
                    })?;
                    let subs: Vec<String> =
                        allocs.remove(pid).unwrap_or_default().into_iter().map(|a| a.subnet_id).collect();
                    if let Some(sid) = sid
                        && !subs.contains(sid)
                    {
                        return Err(conflict(
                            "SubnetMismatchForPort",
                            format!("Subnet on port {pid} does not match the requested subnet {sid}."),
                        ));
                    }
                    (p, subs)
                }
                (None, Some(sid)) => {
                    let p = ifs
                        .iter()
                        .find(|p| allocs.get(&p.id).is_some_and(|a| a.iter().any(|a| &a.subnet_id == sid)))
                        .cloned()
                        .ok_or_else(|| {
                            not_found(
                                "RouterInterfaceNotFoundForSubnet",
                                format!("Router {id} has no interface on subnet {sid}"),
                            )
                        })?;
                    (p, vec![sid.clone()])
                }
                (None, None) => return Err(bad_router("Either subnet_id or port_id must be specified")),
            };
            confirm_not_in_use(&txn, &id, &gone).await?;
            let rest = subnets::allocations_of(&txn, std::slice::from_ref(&port.id))
                .await?
                .remove(&port.id)
                .unwrap_or_default()
                .into_iter()
                .filter(|a| !gone.contains(&a.subnet_id))
                .count();
            if rest == 0 {
                ports::delete(&txn, &port.id).await?;
            } else {
                ipallocation::Entity::delete_many()
                    .filter(ipallocation::Column::PortId.eq(port.id.as_str()))
                    .filter(ipallocation::Column::SubnetId.is_in(gone.iter().cloned()))
                    .exec(&txn)
                    .await?;
            }
            let mut rr = r.clone();
            rr.updated_at = st::now();
            if !store::save(&txn, &rr).await? {
                return Ok(None);
            }
            txn.commit().await?;
            Ok::<_, NetworkError>(Some(interface_info(&r, &port, &gone)))
        };
        match attempt.await {
            Ok(Some(v)) => {
                l3::router_changed(&svc, &id);
                return Ok(ok(v));
            }
            Ok(None) => continue,
            Err(e) if store::retryable(&e) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(conflict("RouterInUse", format!("Router {id} kept changing; try again.")))
}

/// An interface cannot go while a floating IP or an extra route needs it.
async fn confirm_not_in_use<C: ConnectionTrait>(conn: &C, router: &str, gone: &[String]) -> Result<()> {
    let subs = subnets::by_ids(conn, gone).await?;
    let (all, _) = interface_cidrs(conn, router).await?;
    let remaining: Vec<IpNet> = all.iter().filter(|(s, _)| !gone.contains(s)).map(|(_, c)| *c).collect();
    let fips = floatingips::via_router(conn, router).await?;
    let routes = store::routes_of(conn, &[router.to_string()]).await?.remove(router).unwrap_or_default();
    for s in &subs {
        let c = cidr_of(s)?;
        let hit = |ip: &str| ip.parse::<IpAddr>().is_ok_and(|ip| c.contains(&ip));
        if fips.iter().any(|f| f.fixed_ip_address.as_deref().is_some_and(hit)) {
            return Err(conflict(
                "RouterInterfaceInUseByFloatingIP",
                format!(
                    "Router interface for subnet {} on router {router} cannot be deleted, as it is required by one or more floating IPs.",
                    s.id
                ),
            ));
        }
        let needed = routes.iter().any(|r| {
            hit(&r.nexthop) && !r.nexthop.parse::<IpAddr>().is_ok_and(|ip| remaining.iter().any(|c| c.contains(&ip)))
        });
        if needed {
            return Err(conflict(
                "RouterInterfaceInUseByRoute",
                format!(
                    "Router interface for subnet {} on router {router} cannot be deleted, as it is required by one or more routes.",
                    s.id
                ),
            ));
        }
    }
    Ok(())
}

/// `{"router": {"routes": [...]}}` of the extraroute-atomic actions.
fn extraroutes_body(body: &Value) -> Result<Value> {
    let obj = model::resource(body, "router")?;
    let mut m = Map::new();
    for (k, v) in obj {
        if k != "routes" {
            return Err(bad(format!("Unrecognized attribute(s) '{k}'")));
        }
        m.insert(k.clone(), v.clone());
    }
    m.get("routes").cloned().ok_or_else(|| bad("Failed to parse request. Required attribute 'routes' not specified"))
}

async fn edit_routes(svc: &State, ctx: &AuthContext, id: &str, body: &Value, add: bool) -> Result<Response> {
    let given = extraroutes_body(body)?;
    let rule = if add { "add_extraroutes" } else { "remove_extraroutes" };
    let retries = svc.cfg.network.allocation_retries.max(1);
    for _ in 0..=retries {
        let r = writable(svc, ctx, id, rule).await?;
        let attempt = async {
            let txn = svc.db.write.begin().await?;
            let cur: BTreeSet<(String, String)> = store::routes_of(&txn, &[id.to_string()])
                .await?
                .remove(id)
                .unwrap_or_default()
                .into_iter()
                .map(|x| (x.destination, x.nexthop))
                .collect();
            let next: Vec<(String, String)> = if add {
                let new = parse_routes(&txn, id, &given).await?;
                cur.into_iter().chain(new).collect::<BTreeSet<_>>().into_iter().collect()
            } else {
                let gone = parse_routes_unchecked(&given)?;
                cur.into_iter().filter(|x| !gone.contains(x)).collect()
            };
            if next.len() > MAX_ROUTES {
                return Err(bad_kind(
                    "RoutesExhausted",
                    format!(
                        "Unable to complete operation for {id}. The number of routes exceeds the maximum {MAX_ROUTES}."
                    ),
                ));
            }
            store::set_routes(&txn, id, &next).await?;
            let mut rr = r.clone();
            rr.updated_at = st::now();
            if !store::save(&txn, &rr).await? {
                return Ok(None);
            }
            rr.revision_number += 1;
            let v = render_one(&txn, &rr).await?;
            txn.commit().await?;
            Ok::<_, NetworkError>(Some(v))
        };
        match attempt.await {
            Ok(Some(v)) => {
                l3::router_changed(svc, id);
                return Ok(ok(json!({"router": with_ha(svc, ctx, v)})));
            }
            Ok(None) => continue,
            Err(e) if store::retryable(&e) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(conflict("RouterInUse", format!("Router {id} kept changing; try again.")))
}

/// Routes to remove: only their form is checked.
fn parse_routes_unchecked(v: &Value) -> Result<BTreeSet<(String, String)>> {
    let Value::Array(a) = v else {
        return Err(invalid("routes", format!("'{v}' is not a list")));
    };
    let mut out = BTreeSet::new();
    for it in a {
        let d = it.get("destination").and_then(Value::as_str).unwrap_or_default();
        let n = it.get("nexthop").and_then(Value::as_str).unwrap_or_default();
        let dest: IpNet = d.parse().map_err(|_| invalid("routes", format!("'{d}' is not a valid IP subnet")))?;
        let hop = ipam::parse_ip("routes", n, None)?;
        out.insert((dest.trunc().to_string(), hop.to_string()));
    }
    Ok(out)
}

async fn add_extraroutes(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    body: Body,
) -> Result<Response> {
    edit_routes(&svc, &ctx, &id, &body.0, true).await
}

async fn remove_extraroutes(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    body: Body,
) -> Result<Response> {
    edit_routes(&svc, &ctx, &id, &body.0, false).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_to_remove_are_normalized() {
        let v = json!([{"destination": "10.1.2.3/16", "nexthop": "10.0.0.5"}]);
        let r = parse_routes_unchecked(&v).unwrap();
        assert!(r.contains(&("10.1.0.0/16".to_string(), "10.0.0.5".to_string())));
        assert!(parse_routes_unchecked(&json!([{"destination": "x", "nexthop": "10.0.0.5"}])).is_err());
        assert!(parse_routes_unchecked(&json!({})).is_err());
    }

    #[test]
    fn interface_needs_a_subnet_or_a_port() {
        assert!(interface_args(&json!({})).is_err());
        assert!(interface_args(&json!({"network_id": "x"})).is_err());
        let sid = "0b9a1c8e-7d6f-4e5a-9b8c-1d2e3f4a5b6c";
        assert_eq!(interface_args(&json!({"subnet_id": sid})).unwrap(), (Some(sid.to_string()), None));
    }
}
