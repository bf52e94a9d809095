//! `/v2.0/subnets`: list, show, create (one or bulk; from a CIDR or carved
//! from a subnet pool), update, delete (409 while ports hold addresses).
//! The address rules (gateway, pools, IPv6 modes) live in [`crate::ipam`].

use std::net::IpAddr;

use axum::Router;
use axum::extract::{Path, State as AxState};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use ipnet::IpNet;
use sea_orm::TransactionTrait;
use serde_json::{Map, Value, json};
use stratus_core::AuthContext;
use stratus_core::auth::Auth;
use stratus_core::extract::RawQuery;

use crate::api::list::{self, ListParams};
use crate::api::networks::viewer;
use crate::api::{Body, check_revision, created, is_admin, no_content, ok, owner_for_create};
use crate::entity::subnet::Model as Subnet;
use crate::entity::subnetpool::Model as SubnetPool;
use crate::error::{NetworkError, Result, bad, bad_kind, conflict, forbidden, invalid, not_found};
use crate::ipam::{self, Range};
use crate::store::subnets as store;
use crate::store::{self as st, networks, quotas, subnetpools, tags};
use crate::{NetworkService, State, model};

pub fn routes() -> Router<State> {
    Router::new()
        .route("/v2.0/subnets", get(index).post(create))
        .route("/v2.0/subnets/{id}", get(show).put(update).delete(delete))
}

const CREATE_ATTRS: &[&str] = &[
    "name",
    "network_id",
    "ip_version",
    "cidr",
    "prefixlen",
    "subnetpool_id",
    "use_default_subnetpool",
    "gateway_ip",
    "allocation_pools",
    "dns_nameservers",
    "host_routes",
    "enable_dhcp",
    "ipv6_ra_mode",
    "ipv6_address_mode",
    "description",
    "segment_id",
    "service_types",
    "project_id",
    "tenant_id",
];
const UPDATE_ATTRS: &[&str] = &[
    "name",
    "gateway_ip",
    "allocation_pools",
    "dns_nameservers",
    "host_routes",
    "enable_dhcp",
    "description",
    "segment_id",
    "service_types",
];
/// Neutron's `max_dns_nameservers` and `max_subnet_host_routes`.
const MAX_DNS: usize = 5;
const MAX_ROUTES: usize = 20;

/// 403 unless `rule` allows the caller on a resource of `project` in a network of `net_owner`
/// (the `network_owner` rule reads `network:tenant_id`).
pub fn authorize_net(
    svc: &NetworkService,
    ctx: &AuthContext,
    rule: &str,
    project: &str,
    net_owner: &str,
) -> Result<()> {
    let target = json!({"project_id": project, "tenant_id": project, "network:tenant_id": net_owner, "network:project_id": net_owner});
    if svc.policy.allowed(ctx, rule, &target) {
        Ok(())
    } else {
        Err(forbidden(format!("(rule:{rule}) is disallowed by policy")))
    }
}

fn none_if_empty(s: &str) -> Value {
    if s.is_empty() { Value::Null } else { json!(s) }
}

fn json_list(s: &str) -> Value {
    serde_json::from_str::<Value>(s).unwrap_or(json!([]))
}

pub fn render(s: &Subnet, tags: Vec<String>, external: bool) -> Value {
    json!({
        "id": s.id,
        "name": s.name,
        "tenant_id": s.project_id,
        "project_id": s.project_id,
        "network_id": s.network_id,
        "ip_version": s.ip_version,
        "subnetpool_id": none_if_empty(&s.subnetpool_id),
        "cidr": s.cidr,
        "gateway_ip": none_if_empty(&s.gateway_ip),
        "allocation_pools": json_list(&s.allocation_pools),
        "dns_nameservers": json_list(&s.dns_nameservers),
        "host_routes": json_list(&s.host_routes),
        "enable_dhcp": s.enable_dhcp,
        "ipv6_ra_mode": none_if_empty(&s.ipv6_ra_mode),
        "ipv6_address_mode": none_if_empty(&s.ipv6_address_mode),
        "segment_id": null,
        "service_types": [],
        "description": s.description,
        "tags": tags,
        "created_at": s.created_at,
        "updated_at": s.updated_at,
        "revision_number": s.revision_number,
        "router:external": external,
    })
}

async fn render_many(svc: &NetworkService, subs: &[Subnet]) -> Result<Vec<Value>> {
    let ids: Vec<String> = subs.iter().map(|s| s.id.clone()).collect();
    let mut tg = tags::of(&svc.db.read, store::TAG_TYPE, &ids).await?;
    let mut nets: Vec<String> = subs.iter().map(|s| s.network_id.clone()).collect();
    nets.sort();
    nets.dedup();
    let external = store::external_networks(&svc.db.read, &nets).await?;
    Ok(subs.iter().map(|s| render(s, tg.remove(&s.id).unwrap_or_default(), external.contains(&s.network_id))).collect())
}

pub fn subnet_not_found(id: &str) -> NetworkError {
    not_found("SubnetNotFound", format!("Subnet {id} could not be found."))
}

async fn index(AxState(svc): AxState<State>, Auth(ctx): Auth, q: RawQuery) -> Result<Response> {
    let mut p = ListParams::parse(&q)?;
    let external = match p.take_filter("router:external").as_deref() {
        None => None,
        Some([v]) => Some(list::is_true(v)),
        // Several values: any of them (true and false: every subnet).
        Some(vs) if vs.iter().all(|v| list::is_true(v)) => Some(true),
        Some(vs) if vs.iter().all(|v| !list::is_true(v)) => Some(false),
        Some(_) => None,
    };
    let (rows, more) = store::list(&svc.db.read, &viewer(&svc, &ctx), &p, external).await?;
    let items = render_many(&svc, &rows).await?;
    Ok(ok(list::render("subnets", items, &p, more, &format!("{}/v2.0/subnets", svc.base_url), &q)))
}

async fn show(AxState(svc): AxState<State>, Auth(ctx): Auth, Path(id): Path<String>, q: RawQuery) -> Result<Response> {
    let p = ListParams::parse(&q)?;
    let s = store::get_visible(&svc.db.read, &viewer(&svc, &ctx), &id).await?.ok_or_else(|| subnet_not_found(&id))?;
    let item = render_many(&svc, std::slice::from_ref(&s)).await?.remove(0);
    Ok(ok(json!({"subnet": list::project(item, &p.fields)})))
}

/// Allocation pools as stored (`[{"start", "end"}]`) -> ranges.
pub fn pools_of(s: &Subnet) -> Vec<Range> {
    let v: Vec<Value> = serde_json::from_str(&s.allocation_pools).unwrap_or_default();
    v.iter()
        .filter_map(|p| {
            let a: IpAddr = p["start"].as_str()?.parse().ok()?;
            let b: IpAddr = p["end"].as_str()?.parse().ok()?;
            Some(Range { start: ipam::to_u128(a), end: ipam::to_u128(b) })
        })
        .collect()
}

pub fn cidr_of(s: &Subnet) -> Result<IpNet> {
    s.cidr.parse().map_err(|_| anyhow::anyhow!("stored cidr {} of subnet {} is invalid", s.cidr, s.id).into())
}

fn pools_json(pools: &[Range], version: u8) -> String {
    Value::Array(
        pools
            .iter()
            .map(|r| json!({"start": ipam::from_u128(r.start, version).to_string(), "end": ipam::from_u128(r.end, version).to_string()}))
            .collect(),
    )
    .to_string()
}

fn parse_pools(v: &Value, version: u8) -> Result<Vec<Range>> {
    let Value::Array(a) = v else {
        return Err(invalid("allocation_pools", format!("'{v}' is not a list")));
    };
    let mut out = Vec::new();
    for p in a {
        let (Some(s), Some(e)) = (p.get("start").and_then(Value::as_str), p.get("end").and_then(Value::as_str)) else {
            return Err(invalid("allocation_pools", format!("'{p}' must have 'start' and 'end'")));
        };
        let s = ipam::parse_ip("allocation_pools", s, Some(version))?;
        let e = ipam::parse_ip("allocation_pools", e, Some(version))?;
        out.push(Range { start: ipam::to_u128(s), end: ipam::to_u128(e) });
    }
    Ok(out)
}

/// Nameservers of either IP version, in order, without duplicates.
fn parse_dns(v: &Value) -> Result<String> {
    let Value::Array(a) = v else {
        return Err(invalid("dns_nameservers", format!("'{v}' is not a list")));
    };
    if a.len() > MAX_DNS {
        return Err(bad_kind(
            "DNSNameServersExhausted",
            format!(
                "Unable to complete operation for the subnet. The number of DNS nameservers exceeds the limit {MAX_DNS}."
            ),
        ));
    }
    let mut out: Vec<String> = Vec::new();
    for d in a {
        let s = d.as_str().ok_or_else(|| invalid("dns_nameservers", format!("'{d}' is not a valid nameserver")))?;
        let ip = ipam::parse_ip("dns_nameservers", s, None)?;
        let s = ip.to_string();
        if out.contains(&s) {
            return Err(invalid("dns_nameservers", format!("Duplicate nameserver '{s}'")));
        }
        out.push(s);
    }
    Ok(json!(out).to_string())
}

fn parse_routes(v: &Value, version: u8) -> Result<String> {
    let Value::Array(a) = v else {
        return Err(invalid("host_routes", format!("'{v}' is not a list")));
    };
    if a.len() > MAX_ROUTES {
        return Err(bad_kind(
            "HostRoutesExhausted",
            format!(
                "Unable to complete operation for the subnet. The number of host routes exceeds the limit {MAX_ROUTES}."
            ),
        ));
    }
    let mut out: Vec<Value> = Vec::new();
    for r in a {
        let (Some(d), Some(n)) =
            (r.get("destination").and_then(Value::as_str), r.get("nexthop").and_then(Value::as_str))
        else {
            return Err(invalid("host_routes", format!("'{r}' must have 'destination' and 'nexthop'")));
        };
        let dest: IpNet = d.parse().map_err(|_| invalid("host_routes", format!("'{d}' is not a valid IP subnet")))?;
        let hop = ipam::parse_ip("host_routes", n, None)?;
        if ipam::net_version(&dest) != version || ipam::version(&hop) != version {
            return Err(invalid("host_routes", format!("'{r}' does not match the subnet's IP version {version}")));
        }
        let route = json!({"destination": dest.trunc().to_string(), "nexthop": hop.to_string()});
        if out.contains(&route) {
            return Err(invalid("host_routes", format!("Duplicate hostroute '{r}'")));
        }
        out.push(route);
    }
    Ok(Value::Array(out).to_string())
}

fn opt_mode(obj: &Map<String, Value>, k: &str) -> Result<String> {
    match obj.get(k) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(v) => model::string(k, v, 32),
    }
}

/// A gateway for `cidr`: inside it, and (IPv4) neither its network nor broadcast address.
fn check_gateway(cidr: &IpNet, g: IpAddr) -> Result<()> {
    let v = ipam::to_u128(g);
    let (first, last) = ipam::bounds(cidr);
    let v4 = ipam::net_version(cidr) == 4;
    if !cidr.contains(&g) || (v4 && last > first + 1 && (v == first || v == last)) {
        return Err(bad_kind(
            "InvalidInput",
            format!(
                "Invalid input for operation: Gateway is not valid on subnet. Gateway IP {g} is not in the subnet {cidr}."
            ),
        ));
    }
    Ok(())
}

/// What a create asks for, before the CIDR is known (it may come from a pool).
struct Draft {
    subnet: Subnet,
    /// `gateway_ip`: absent (default), null, or an address.
    gateway: Option<Option<IpAddr>>,
    pools: Option<Vec<Range>>,
    pool: Option<SubnetPool>,
    prefixlen: Option<i64>,
}

async fn draft(svc: &NetworkService, ctx: &AuthContext, obj: &Map<String, Value>) -> Result<Draft> {
    model::only(obj, CREATE_ATTRS)?;
    let project = owner_for_create(svc, ctx, obj)?;
    let net_id = model::uuid(
        "network_id",
        obj.get("network_id")
            .ok_or_else(|| bad("Failed to parse request. Required attribute 'network_id' not specified"))?,
    )?;
    let network = networks::get_visible(&svc.db.read, &viewer(svc, ctx), &net_id)
        .await?
        .ok_or_else(|| not_found("NetworkNotFound", format!("Network {net_id} could not be found.")))?;
    authorize_net(svc, ctx, "create_subnet", &project, &network.project_id)?;
    for a in ["segment_id", "service_types"] {
        if obj.get(a).is_some_and(|v| !v.is_null() && v != &json!([])) {
            authorize_net(svc, ctx, &format!("create_subnet:{a}"), &project, &network.project_id)?;
            return Err(bad(format!("Attribute '{a}' is not supported")));
        }
    }
    let ip_version = match obj.get("ip_version") {
        Some(v) => {
            let n = model::integer("ip_version", v)?;
            if n != 4 && n != 6 {
                return Err(invalid("ip_version", format!("'{n}' is not in [4, 6]")));
            }
            Some(n as u8)
        }
        None => None,
    };
    let mut pool = None;
    if let Some(v) = obj.get("subnetpool_id").filter(|v| !v.is_null()) {
        let id = model::uuid("subnetpool_id", v)?;
        pool = Some(
            subnetpools::get_visible(&svc.db.read, &viewer(svc, ctx), &id)
                .await?
                .ok_or_else(|| not_found("SubnetPoolNotFound", format!("Subnet pool {id} could not be found.")))?,
        );
    } else if obj
        .get("use_default_subnetpool")
        .map(|v| model::boolean("use_default_subnetpool", v))
        .transpose()?
        .unwrap_or(false)
    {
        let v =
            ip_version.ok_or_else(|| bad("ip_version must be specified in the absence of cidr and subnetpool_id"))?;
        pool = Some(
            subnetpools::default_for(&svc.db.read, i64::from(v))
                .await?
                .ok_or_else(|| bad(format!("No default subnetpool found for IPv{v}")))?,
        );
    }
    let ip_version = match (ip_version, &pool) {
        (Some(v), Some(p)) if i64::from(v) != p.ip_version => {
            return Err(bad_kind(
                "BadRequest",
                format!("Bad subnet request: Cannot allocate IPv{v} subnet from IPv{} subnet pool.", p.ip_version),
            ));
        }
        (Some(v), _) => v,
        (None, Some(p)) => p.ip_version as u8,
        (None, None) => return Err(bad("Failed to parse request. Required attribute 'ip_version' not specified")),
    };
    let cidr = match obj.get("cidr").filter(|v| !v.is_null()) {
        Some(v) => {
            let s = v.as_str().ok_or_else(|| invalid("cidr", format!("'{v}' is not a valid IP subnet")))?;
            Some(ipam::parse_cidr("cidr", s, ip_version)?)
        }
        None if pool.is_none() => {
            return Err(bad("Bad subnet request: a cidr must be specified in the absence of a subnet pool"));
        }
        None => None,
    };
    let prefixlen = match obj.get("prefixlen").filter(|v| !v.is_null()) {
        Some(_) if cidr.is_some() => {
            return Err(bad("Bad subnet request: cidr and prefixlen must not be supplied together"));
        }
        Some(v) => Some(model::integer("prefixlen", v)?),
        None => None,
    };
    let gateway = match obj.get("gateway_ip") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::String(s)) => Some(Some(ipam::parse_ip("gateway_ip", s, Some(ip_version))?)),
        Some(v) => return Err(invalid("gateway_ip", format!("'{v}' is not a valid IP address"))),
    };
    let pools = match obj.get("allocation_pools").filter(|v| !v.is_null()) {
        Some(v) => Some(parse_pools(v, ip_version)?),
        None => None,
    };
    let ra = opt_mode(obj, "ipv6_ra_mode")?;
    let addr = opt_mode(obj, "ipv6_address_mode")?;
    let enable_dhcp = obj.get("enable_dhcp").map(|v| model::boolean("enable_dhcp", v)).transpose()?.unwrap_or(true);
    let get_str = |k: &str| -> Result<String> {
        match obj.get(k) {
            Some(Value::Null) | None => Ok(String::new()),
            Some(v) => model::string(k, v, 255),
        }
    };
    let now = st::now();
    Ok(Draft {
        subnet: Subnet {
            id: st::new_id(),
            project_id: project,
            network_id: net_id,
            name: get_str("name")?,
            ip_version: i64::from(ip_version),
            cidr: cidr.map(|c| c.to_string()).unwrap_or_default(),
            gateway_ip: String::new(),
            allocation_pools: "[]".into(),
            dns_nameservers: match obj.get("dns_nameservers").filter(|v| !v.is_null()) {
                Some(v) => parse_dns(v)?,
                None => "[]".into(),
            },
            host_routes: match obj.get("host_routes").filter(|v| !v.is_null()) {
                Some(v) => parse_routes(v, ip_version)?,
                None => "[]".into(),
            },
            enable_dhcp,
            ipv6_ra_mode: ra,
            ipv6_address_mode: addr,
            subnetpool_id: pool.as_ref().map(|p| p.id.clone()).unwrap_or_default(),
            description: get_str("description")?,
            created_at: now.clone(),
            updated_at: now,
            revision_number: 0,
        },
        gateway,
        pools,
        pool,
        prefixlen,
    })
}

/// Fill in the CIDR (from the pool if needed), gateway and pools; check overlaps.
async fn finish<C: sea_orm::ConnectionTrait>(conn: &C, d: Draft, siblings: &[Subnet]) -> Result<Subnet> {
    let mut s = d.subnet;
    let version = s.ip_version as u8;
    let cidr: IpNet = match (&d.pool, s.cidr.is_empty()) {
        (Some(pool), empty) => {
            let prefixes = pool_prefixes(pool);
            let used: Vec<IpNet> =
                store::of_pool(conn, &pool.id).await?.iter().filter_map(|x| x.cidr.parse().ok()).collect();
            if empty {
                let len = d.prefixlen.unwrap_or(pool.default_prefixlen);
                if len < pool.min_prefixlen || len > pool.max_prefixlen {
                    return Err(bad_kind(
                        "IllegalSubnetPoolPrefixLength",
                        format!(
                            "Illegal prefix bounds: prefixlen={len}, min_prefixlen={}, max_prefixlen={}.",
                            pool.min_prefixlen, pool.max_prefixlen
                        ),
                    ));
                }
                ipam::carve(&prefixes, &used, len as u8).ok_or_else(|| {
                    conflict(
                        "SubnetAllocationError",
                        format!("Failed to allocate subnet: Insufficient prefix space to allocate subnet size /{len}."),
                    )
                })?
            } else {
                let c: IpNet = s.cidr.parse().map_err(|_| invalid("cidr", "not a valid IP subnet"))?;
                if !prefixes.iter().any(|p| p.contains(&c)) || used.iter().any(|u| ipam::overlaps(u, &c)) {
                    return Err(bad_kind(
                        "BadRequest",
                        format!(
                            "Bad subnet request: Cannot allocate requested subnet {c} from the available set of prefixes."
                        ),
                    ));
                }
                c
            }
        }
        (None, _) => s.cidr.parse().map_err(|_| invalid("cidr", "not a valid IP subnet"))?,
    };
    s.cidr = cidr.to_string();
    if let Some(o) = siblings.iter().find(|o| o.cidr.parse::<IpNet>().is_ok_and(|oc| ipam::overlaps(&oc, &cidr))) {
        return Err(bad_kind(
            "InvalidInput",
            format!(
                "Invalid input for operation: Requested subnet with cidr: {cidr} for network: {} overlaps with another subnet ({} {}).",
                s.network_id, o.id, o.cidr
            ),
        ));
    }
    ipam::validate_ipv6_modes(version, &cidr, &s.ipv6_ra_mode, &s.ipv6_address_mode)?;
    let gateway = match d.gateway {
        None => ipam::default_gateway(&cidr),
        Some(g) => g,
    };
    if let Some(g) = gateway {
        check_gateway(&cidr, g)?;
    }
    let pools = match d.pools {
        Some(p) => {
            ipam::validate_pools(&cidr, &p, gateway)?;
            p
        }
        None => ipam::default_pools(&cidr, gateway),
    };
    s.gateway_ip = gateway.map(|g| g.to_string()).unwrap_or_default();
    s.allocation_pools = pools_json(&pools, version);
    Ok(s)
}

pub fn pool_prefixes(p: &SubnetPool) -> Vec<IpNet> {
    let v: Vec<String> = serde_json::from_str(&p.prefixes).unwrap_or_default();
    v.iter().filter_map(|s| s.parse().ok()).collect()
}

async fn create(AxState(svc): AxState<State>, Auth(ctx): Auth, body: Body) -> Result<Response> {
    let body = body.0;
    let (objs, bulk) = model::one_or_bulk(&body, "subnet", "subnets")?;
    let mut drafts = Vec::new();
    for obj in &objs {
        drafts.push(draft(&svc, &ctx, obj).await?);
    }
    let mut projects: Vec<String> = drafts.iter().map(|d| d.subnet.project_id.clone()).collect();
    projects.sort();
    projects.dedup();
    for p in &projects {
        quotas::ensure_lock_row(&svc.db, p).await?;
    }
    let txn = svc.db.write.begin().await?;
    let mut nets: Vec<String> = drafts.iter().map(|d| d.subnet.network_id.clone()).collect();
    nets.sort();
    nets.dedup();
    let mut pools: Vec<String> = drafts.iter().filter_map(|d| d.pool.as_ref().map(|p| p.id.clone())).collect();
    pools.sort();
    pools.dedup();
    // take every lock before the first plain read: MySQL's snapshot starts there
    for n in &nets {
        store::lock_network(&txn, n).await?;
    }
    for p in &pools {
        subnetpools::lock(&txn, p).await?;
    }
    for p in &projects {
        let n = drafts.iter().filter(|d| &d.subnet.project_id == p).count() as i64;
        quotas::check(&txn, &svc.cfg, p, "subnet", n).await?;
    }
    let mut done: Vec<Subnet> = Vec::new();
    for d in drafts {
        let mut siblings = store::of_network(&txn, &d.subnet.network_id).await?;
        siblings.extend(done.iter().filter(|s| s.network_id == d.subnet.network_id).cloned());
        let s = finish(&txn, d, &siblings).await?;
        store::insert(&txn, s.clone()).await?;
        done.push(s);
    }
    txn.commit().await?;
    let items = render_many(&svc, &done).await?;
    Ok(if bulk { created(json!({"subnets": items})) } else { created(json!({"subnet": items[0]})) })
}

async fn update(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response> {
    let obj = model::resource(&body.0, "subnet")?.clone();
    for k in obj.keys() {
        if CREATE_ATTRS.contains(&k.as_str()) && !UPDATE_ATTRS.contains(&k.as_str()) {
            return Err(bad(format!("Cannot update read-only attribute {k}")));
        }
    }
    model::only(&obj, UPDATE_ATTRS)?;
    let v = viewer(&svc, &ctx);
    for _ in 0..5 {
        let cur = store::get_visible(&svc.db.read, &v, &id).await?.ok_or_else(|| subnet_not_found(&id))?;
        let net_owner = networks::get(&svc.db.read, &cur.network_id).await?.map(|n| n.project_id).unwrap_or_default();
        authorize_net(&svc, &ctx, "update_subnet", &cur.project_id, &net_owner)?;
        check_revision(&headers, cur.revision_number)?;
        let cidr = cidr_of(&cur)?;
        let version = cur.ip_version as u8;
        let mut s = cur.clone();
        let mut gateway: Option<IpAddr> = s.gateway_ip.parse().ok();
        let mut pools = pools_of(&s);
        for (k, val) in &obj {
            match k.as_str() {
                "name" => s.name = model::string(k, val, 255)?,
                "description" => s.description = model::string(k, val, 255)?,
                "enable_dhcp" => s.enable_dhcp = model::boolean(k, val)?,
                "dns_nameservers" => s.dns_nameservers = if val.is_null() { "[]".into() } else { parse_dns(val)? },
                "host_routes" => s.host_routes = if val.is_null() { "[]".into() } else { parse_routes(val, version)? },
                "gateway_ip" => {
                    gateway = match val {
                        Value::Null => None,
                        Value::String(g) => Some(ipam::parse_ip("gateway_ip", g, Some(version))?),
                        other => return Err(invalid("gateway_ip", format!("'{other}' is not a valid IP address"))),
                    }
                }
                "allocation_pools" => pools = parse_pools(val, version)?,
                "segment_id" | "service_types" if !(val.is_null() || val == &json!([])) => {
                    return Err(bad(format!("Attribute '{k}' is not supported")));
                }
                _ => {}
            }
        }
        if let Some(g) = gateway {
            check_gateway(&cidr, g)?;
        }
        ipam::validate_pools(&cidr, &pools, gateway)?;
        s.gateway_ip = gateway.map(|g| g.to_string()).unwrap_or_default();
        s.allocation_pools = pools_json(&pools, version);
        s.updated_at = st::now();
        if store::save(&svc.db.write, &s).await? {
            s.revision_number += 1;
            let item = render_many(&svc, std::slice::from_ref(&s)).await?.remove(0);
            return Ok(ok(json!({"subnet": item})));
        }
    }
    Err(conflict("SubnetInUse", format!("Subnet {id} kept changing during the update; try again.")))
}

async fn delete(AxState(svc): AxState<State>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Response> {
    let s = store::get_visible(&svc.db.read, &viewer(&svc, &ctx), &id).await?.ok_or_else(|| subnet_not_found(&id))?;
    let net_owner = networks::get(&svc.db.read, &s.network_id).await?.map(|n| n.project_id).unwrap_or_default();
    if !is_admin(&svc, &ctx) {
        authorize_net(&svc, &ctx, "delete_subnet", &s.project_id, &net_owner)?;
    }
    let txn = svc.db.write.begin().await?;
    let auto = crate::ipam::is_auto_address(6, &s.ipv6_address_mode)
        || (s.ipv6_address_mode.is_empty() && crate::ipam::is_auto_address(6, &s.ipv6_ra_mode));
    if !store::ports_in_use(&txn, &id, s.ip_version == 6 && auto).await?.is_empty() {
        return Err(conflict(
            "SubnetInUse",
            format!(
                "Unable to complete operation on subnet {id}: One or more ports have an IP allocation from this subnet."
            ),
        ));
    }
    if !store::delete(&txn, &id).await? {
        return Err(subnet_not_found(&id));
    }
    txn.commit().await?;
    Ok(no_content())
}
