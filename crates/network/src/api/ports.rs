//! `/v2.0/ports`: list (with the `fixed_ips=ip_address=..`/`subnet_id=..`
//! filter), show, create (one or bulk), update (fixed IPs re-allocated),
//! delete. Addresses and MACs are chosen inside the transaction that inserts
//! the port; the unique keys of `ipallocations` and of (network, MAC) make a
//! racing create that picked the same one fail, and it picks again.

use std::net::IpAddr;

use axum::Router;
use axum::extract::{Path, State as AxState};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use sea_orm::TransactionTrait;
use serde_json::{Map, Value, json};
use stratus_core::AuthContext;
use stratus_core::auth::Auth;
use stratus_core::extract::RawQuery;

use crate::api::list::{self, ListParams};
use crate::api::networks::viewer;
use crate::api::port_writes::{self, allocate, retryable};
use crate::api::subnets::{authorize_net, cidr_of};
use crate::api::{
    AttrDefault, Body, allowed, check_revision, created, explicitly_set, is_admin, no_content, ok, owner_for_create,
    project_of,
};
use crate::entity::ipallocation::Model as Allocation;
use crate::entity::network::Model as Network;
use crate::entity::port::Model as Port;
use crate::entity::subnet::Model as Subnet;
use crate::error::{NetworkError, Result, bad, bad_kind, conflict, invalid, not_found};
use crate::ipam;
use crate::store::ports as store;
use crate::store::{self as st, networks, security_groups, subnets, tags};
use crate::{NetworkService, State, model, plugin};

pub fn routes() -> Router<State> {
    Router::new()
        .route("/v2.0/ports", get(index).post(create))
        .route("/v2.0/ports/{id}", get(show).put(update).delete(delete))
}

const CREATE_ATTRS: &[&str] = &[
    "name",
    "network_id",
    "admin_state_up",
    "mac_address",
    "fixed_ips",
    "device_id",
    "device_owner",
    "binding:host_id",
    "binding:vnic_type",
    "binding:profile",
    "allowed_address_pairs",
    "extra_dhcp_opts",
    "port_security_enabled",
    "security_groups",
    "description",
    "project_id",
    "tenant_id",
];
const UPDATE_ATTRS: &[&str] = &[
    "name",
    "admin_state_up",
    "mac_address",
    "fixed_ips",
    "device_id",
    "device_owner",
    "binding:host_id",
    "binding:vnic_type",
    "binding:profile",
    "allowed_address_pairs",
    "extra_dhcp_opts",
    "port_security_enabled",
    "security_groups",
    "description",
];
/// Attributes with a rule of their own (`create_port:mac_address`, ...) and
/// their defaults.
const GUARDED: &[(&str, AttrDefault)] = &[
    ("mac_address", AttrDefault::Unset),
    ("port_security_enabled", AttrDefault::Unset),
    ("binding:host_id", AttrDefault::Unset),
    ("binding:vnic_type", AttrDefault::Str("normal")),
    ("binding:profile", AttrDefault::Unset),
    ("allowed_address_pairs", AttrDefault::Unset),
];
const VNIC_TYPES: &[&str] = &[
    "normal",
    "direct",
    "macvtap",
    "baremetal",
    "direct-physical",
    "virtio-forwarder",
    "smart-nic",
    "vdpa",
    "remote-managed",
    "accelerator-direct",
    "accelerator-direct-physical",
];
/// Neutron's `max_allowed_address_pair`.
const MAX_PAIRS: usize = 10;
/// `binding:vif_type` of a port bound to a host (Linux bridge data plane).
const VIF_BOUND: &str = "bridge";

fn port_not_found(id: &str) -> NetworkError {
    not_found("PortNotFound", format!("Port {id} could not be found."))
}

fn json_of(s: &str, default: Value) -> Value {
    serde_json::from_str::<Value>(s).unwrap_or(default)
}

pub fn render(
    svc: &NetworkService,
    ctx: &AuthContext,
    p: &Port,
    ips: &[Allocation],
    groups: Vec<String>,
    tags: Vec<String>,
) -> Value {
    let fixed: Vec<Value> = ips.iter().map(|a| json!({"subnet_id": a.subnet_id, "ip_address": a.ip_address})).collect();
    let mut v = json!({
        "id": p.id,
        "name": p.name,
        "network_id": p.network_id,
        "tenant_id": p.project_id,
        "project_id": p.project_id,
        "mac_address": p.mac_address,
        "admin_state_up": p.admin_state_up,
        "status": p.status,
        "device_id": p.device_id,
        "device_owner": p.device_owner,
        "fixed_ips": fixed,
        "allowed_address_pairs": json_of(&p.allowed_address_pairs, json!([])),
        "extra_dhcp_opts": json_of(&p.extra_dhcp_opts, json!([])),
        "security_groups": groups,
        "port_security_enabled": p.port_security_enabled,
        "binding:vnic_type": p.vnic_type,
        "description": p.description,
        "tags": tags,
        "created_at": p.created_at,
        "updated_at": p.updated_at,
        "revision_number": p.revision_number,
    });
    if allowed(svc, ctx, "get_port:binding:host_id", &p.project_id) {
        v["binding:host_id"] = json!(p.host_id);
    }
    if allowed(svc, ctx, "get_port:binding:vif_type", &p.project_id) {
        v["binding:vif_type"] = json!(if p.host_id.is_empty() { "unbound" } else { VIF_BOUND });
    }
    if allowed(svc, ctx, "get_port:binding:vif_details", &p.project_id) {
        v["binding:vif_details"] = json_of(&p.vif_details, json!({}));
    }
    if allowed(svc, ctx, "get_port:binding:profile", &p.project_id) {
        v["binding:profile"] = json_of(&p.profile, json!({}));
    }
    v
}

async fn render_many(svc: &NetworkService, ctx: &AuthContext, ports: &[Port]) -> Result<Vec<Value>> {
    let ids: Vec<String> = ports.iter().map(|p| p.id.clone()).collect();
    let mut ips = subnets::allocations_of(&svc.db.read, &ids).await?;
    let mut groups = store::groups_of(&svc.db.read, &ids).await?;
    let mut tg = tags::of(&svc.db.read, store::TAG_TYPE, &ids).await?;
    Ok(ports
        .iter()
        .map(|p| {
            render(
                svc,
                ctx,
                p,
                &ips.remove(&p.id).unwrap_or_default(),
                groups.remove(&p.id).unwrap_or_default(),
                tg.remove(&p.id).unwrap_or_default(),
            )
        })
        .collect())
}

async fn index(AxState(svc): AxState<State>, Auth(ctx): Auth, q: RawQuery) -> Result<Response> {
    let mut p = ListParams::parse(&q)?;
    let (mut ips, mut subs, mut substrs) = (Vec::new(), Vec::new(), Vec::new());
    for f in p.take_filter("fixed_ips").unwrap_or_default() {
        match f.split_once('=') {
            Some(("ip_address", v)) => ips.push(ipam::parse_ip("fixed_ips", v, None)?.to_string()),
            Some(("subnet_id", v)) => subs.push(v.to_string()),
            Some(("ip_address_substr", v)) => substrs.push(v.to_string()),
            _ => {
                return Err(bad(format!(
                    "Invalid fixed_ips filter '{f}': use ip_address=..., ip_address_substr=... or subnet_id=..."
                )));
            }
        }
    }
    let (rows, more) = store::list(&svc.db.read, &viewer(&svc, &ctx), &p, &ips, &subs, &substrs).await?;
    let items = render_many(&svc, &ctx, &rows).await?;
    Ok(ok(list::render("ports", items, &p, more, &format!("{}/v2.0/ports", svc.base_url), &q)))
}

async fn show(AxState(svc): AxState<State>, Auth(ctx): Auth, Path(id): Path<String>, q: RawQuery) -> Result<Response> {
    let p = ListParams::parse(&q)?;
    let port = store::get_visible(&svc.db.read, &viewer(&svc, &ctx), &id).await?.ok_or_else(|| port_not_found(&id))?;
    let item = render_many(&svc, &ctx, std::slice::from_ref(&port)).await?.remove(0);
    Ok(ok(json!({"port": list::project(item, &p.fields)})))
}

/// One address a port asks for.
#[derive(Clone, Debug)]
pub(super) enum IpRequest {
    /// This address of this subnet.
    Specific(Subnet, IpAddr),
    /// The next free address of the first of these subnets that has one.
    Any(Vec<Subnet>),
    /// The EUI-64 address of the port's MAC (SLAAC / DHCPv6-stateless).
    Auto(Subnet),
}

fn is_auto(s: &Subnet) -> bool {
    ipam::is_auto_address(s.ip_version as u8, &s.ipv6_address_mode)
}

/// The addresses a port gets without `fixed_ips`: one IPv4 address, one
/// DHCPv6-stateful address, and an EUI-64 address on every SLAAC subnet.
fn default_requests(subs: &[Subnet]) -> Vec<IpRequest> {
    let mut out = Vec::new();
    let v4: Vec<Subnet> = subs.iter().filter(|s| s.ip_version == 4).cloned().collect();
    let v6: Vec<Subnet> = subs.iter().filter(|s| s.ip_version == 6 && !is_auto(s)).cloned().collect();
    for g in [v4, v6] {
        if !g.is_empty() {
            out.push(IpRequest::Any(g));
        }
    }
    out.extend(subs.iter().filter(|s| is_auto(s)).cloned().map(IpRequest::Auto));
    out
}

/// `fixed_ips` as requests on the network's subnets; `keep` are the port's
/// current addresses (a subnet-only entry keeps the port's address there).
fn parse_fixed_ips(v: &Value, subs: &[Subnet], network: &str, keep: &[Allocation]) -> Result<Vec<IpRequest>> {
    let Value::Array(a) = v else {
        return Err(invalid("fixed_ips", format!("'{v}' is not a list")));
    };
    let mut out = Vec::new();
    let mut kept: Vec<&Allocation> = keep.iter().collect();
    for e in a {
        let Some(e) = e.as_object() else {
            return Err(invalid("fixed_ips", format!("'{e}' is not a dictionary")));
        };
        for k in e.keys() {
            if k != "subnet_id" && k != "ip_address" {
                return Err(invalid("fixed_ips", format!("unexpected key '{k}'")));
            }
        }
        let ip = match e.get("ip_address") {
            Some(Value::String(s)) => Some(ipam::parse_ip("fixed_ips", s, None)?),
            None | Some(Value::Null) => None,
            Some(other) => return Err(invalid("fixed_ips", format!("'{other}' is not a valid IP address"))),
        };
        let subnet = match e.get("subnet_id") {
            Some(v) if !v.is_null() => {
                let id = model::uuid("subnet_id", v)?;
                Some(subs.iter().find(|s| s.id == id).cloned().ok_or_else(|| {
                    bad_kind(
                        "InvalidInput",
                        format!("Invalid input for operation: Failed to create port on network {network}, because fixed_ips included invalid subnet {id}."),
                    )
                })?)
            }
            _ => None,
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
            (None, None) => {
                return Err(invalid("fixed_ips", "each entry needs a subnet_id or an ip_address"));
            }
        };
        match ip {
            Some(ip) => {
                let cidr = cidr_of(&subnet)?;
                let (first, last) = ipam::bounds(&cidr);
                let v = ipam::to_u128(ip);
                let v4 = subnet.ip_version == 4;
                if !cidr.contains(&ip) || (v == first && last > first) || (v4 && v == last && last > first + 1) {
                    return Err(bad_kind(
                        "InvalidIpForSubnet",
                        format!("IP address {ip} is not a valid IP for the specified subnet."),
                    ));
                }
                if is_auto(&subnet) && !kept.iter().any(|a| a.ip_address == ip.to_string()) {
                    return Err(bad_kind(
                        "InvalidInput",
                        format!(
                            "Invalid input for operation: IPv6 address {ip} cannot be directly assigned to a port on subnet {} since the subnet is configured for automatic addresses.",
                            subnet.id
                        ),
                    ));
                }
                kept.retain(|a| !(a.subnet_id == subnet.id && a.ip_address == ip.to_string()));
                out.push(IpRequest::Specific(subnet, ip));
            }
            None => {
                if let Some(i) = kept.iter().position(|a| a.subnet_id == subnet.id) {
                    let a = kept.remove(i);
                    let ip = a.ip_address.parse().map_err(|_| anyhow::anyhow!("stored address {}", a.ip_address))?;
                    out.push(IpRequest::Specific(subnet, ip));
                } else if is_auto(&subnet) {
                    out.push(IpRequest::Auto(subnet));
                } else {
                    out.push(IpRequest::Any(vec![subnet]));
                }
            }
        }
    }
    Ok(out)
}

/// A port to create: the row (MAC chosen per attempt unless requested), its
/// address requests and its security groups.
#[derive(Clone)]
pub(super) struct Draft {
    pub(super) port: Port,
    pub(super) mac: Option<[u8; 6]>,
    pub(super) reqs: Vec<IpRequest>,
    pub(super) groups: Vec<String>,
}

fn parse_pairs(v: &Value) -> Result<String> {
    let Value::Array(a) = v else {
        return Err(invalid("allowed_address_pairs", format!("'{v}' is not a list")));
    };
    if a.len() > MAX_PAIRS {
        return Err(bad_kind(
            "AllowedAddressPairExhausted",
            format!("The number of allowed address pair exceeds the maximum {MAX_PAIRS}."),
        ));
    }
    let mut out: Vec<Value> = Vec::new();
    for p in a {
        let Some(o) = p.as_object() else {
            return Err(invalid("allowed_address_pairs", format!("'{p}' is not a dictionary")));
        };
        for k in o.keys() {
            if k != "ip_address" && k != "mac_address" {
                return Err(invalid("allowed_address_pairs", format!("unexpected key '{k}'")));
            }
        }
        let ip = o
            .get("ip_address")
            .and_then(Value::as_str)
            .ok_or_else(|| bad_kind("AllowedAddressPairsMissingIP", "AllowedAddressPair must contain ip_address"))?;
        let ip = if ip.contains('/') {
            let n: ipnet::IpNet = ip
                .parse()
                .map_err(|_| invalid("allowed_address_pairs", format!("'{ip}' is not a valid IP address")))?;
            n.to_string()
        } else {
            ipam::parse_ip("allowed_address_pairs", ip, None)?.to_string()
        };
        let mut e = json!({"ip_address": ip});
        if let Some(m) = o.get("mac_address").filter(|m| !m.is_null()) {
            let s = m.as_str().unwrap_or_default();
            e["mac_address"] = json!(ipam::show_mac(&ipam::parse_mac("allowed_address_pairs", s)?));
        }
        if out.iter().any(|x| x["ip_address"] == e["ip_address"] && x.get("mac_address") == e.get("mac_address")) {
            return Err(bad_kind(
                "DuplicateAddressPairInRequest",
                format!("Request contains duplicate address pair: {e}."),
            ));
        }
        out.push(e);
    }
    Ok(Value::Array(out).to_string())
}

/// Pairs without a MAC take the port's.
pub(super) fn pairs_with_mac(pairs: &str, mac: &str) -> String {
    let mut v: Vec<Value> = serde_json::from_str(pairs).unwrap_or_default();
    for p in v.iter_mut() {
        if p.get("mac_address").is_none_or(Value::is_null) {
            p["mac_address"] = json!(mac);
        }
    }
    Value::Array(v).to_string()
}

fn parse_dhcp_opts(v: &Value) -> Result<String> {
    let Value::Array(a) = v else {
        return Err(invalid("extra_dhcp_opts", format!("'{v}' is not a list")));
    };
    let mut out = Vec::new();
    for o in a {
        let name = o
            .get("opt_name")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| invalid("extra_dhcp_opts", format!("'{o}' needs an opt_name")))?;
        let value = match o.get("opt_value") {
            Some(Value::String(s)) => json!(s),
            None | Some(Value::Null) => Value::Null,
            Some(other) => return Err(invalid("extra_dhcp_opts", format!("'{other}' is not a valid opt_value"))),
        };
        let ver = match o.get("ip_version") {
            None | Some(Value::Null) => 4,
            Some(v) => model::integer("ip_version", v)?,
        };
        if ver != 4 && ver != 6 {
            return Err(invalid("extra_dhcp_opts", format!("ip_version '{ver}' is not in [4, 6]")));
        }
        out.push(json!({"opt_name": name, "opt_value": value, "ip_version": ver}));
    }
    Ok(Value::Array(out).to_string())
}

fn parse_profile(v: &Value) -> Result<String> {
    match v {
        Value::Null => Ok("{}".into()),
        Value::Object(_) => Ok(v.to_string()),
        other => Err(invalid("binding:profile", format!("'{other}' is not a dictionary"))),
    }
}

fn parse_vnic(v: &Value) -> Result<String> {
    let s = model::string("binding:vnic_type", v, 64)?;
    if !VNIC_TYPES.contains(&s.as_str()) {
        return Err(invalid("binding:vnic_type", format!("'{s}' is not in {VNIC_TYPES:?}")));
    }
    Ok(s)
}

/// `binding:vif_details` of a port of `network` bound to `host`: the bridge
/// its tap joins (Neutron's Linux bridge naming: `brq` + the network id's
/// first 11 characters).
pub fn vif_details_for(host: &str, network: &str) -> String {
    if host.is_empty() {
        return "{}".into();
    }
    json!({"port_filter": true, "connectivity": "l2", "bridge_name": bridge_name(network)}).to_string()
}

/// The bridge of a network on every host.
pub fn bridge_name(network: &str) -> String {
    format!("brq{}", network.chars().take(11).collect::<String>())
}

/// Security groups named in a body: visible ones (404 otherwise).
async fn parse_groups(svc: &NetworkService, ctx: &AuthContext, v: &Value) -> Result<Vec<String>> {
    let Value::Array(a) = v else {
        return Err(invalid("security_groups", format!("'{v}' is not a list")));
    };
    let mut out = Vec::new();
    for g in a {
        let id = model::uuid("security_groups", g)?;
        if security_groups::get_visible(&svc.db.read, &viewer(svc, ctx), &id).await?.is_none() {
            return Err(not_found("SecurityGroupNotFound", format!("Security group {id} does not exist")));
        }
        if !out.contains(&id) {
            out.push(id);
        }
    }
    Ok(out)
}

/// Network-owned device owners (`network:dhcp`, `network:router_interface`)
/// are for admins and the network's owner.
fn check_device_owner(svc: &NetworkService, ctx: &AuthContext, owner: &str, net: &Network) -> Result<()> {
    if owner.starts_with("network:") && !is_admin(svc, ctx) && project_of(ctx) != net.project_id {
        return Err(crate::error::forbidden("(rule:create_port:device_owner) is disallowed by policy"));
    }
    Ok(())
}

fn security_conflicts(psec: bool, groups: &[String], pairs: &str) -> Result<()> {
    if !psec && !groups.is_empty() {
        return Err(bad_kind(
            "PortSecurityAndIPRequiredForSecurityGroups",
            "Port security must be enabled and port must have an IP address in order to use security groups.",
        ));
    }
    if !psec && pairs != "[]" {
        return Err(conflict(
            "AddressPairAndPortSecurityRequired",
            "Port Security must be enabled in order to have allowed address pairs on a port.",
        ));
    }
    Ok(())
}

async fn draft(svc: &NetworkService, ctx: &AuthContext, obj: &Map<String, Value>) -> Result<Draft> {
    model::only(obj, CREATE_ATTRS)?;
    let project = owner_for_create(svc, ctx, obj)?;
    let net_id = model::uuid(
        "network_id",
        obj.get("network_id")
            .ok_or_else(|| bad("Failed to parse request. Required attribute 'network_id' not specified"))?,
    )?;
    let net = networks::get_visible(&svc.db.read, &viewer(svc, ctx), &net_id)
        .await?
        .ok_or_else(|| not_found("NetworkNotFound", format!("Network {net_id} could not be found.")))?;
    authorize_net(svc, ctx, "create_port", &project, &net.project_id)?;
    for (a, d) in GUARDED {
        if explicitly_set(obj, a, *d) {
            authorize_net(svc, ctx, &format!("create_port:{a}"), &project, &net.project_id)?;
        }
    }
    let get_str = |k: &str, max: usize| -> Result<String> {
        match obj.get(k) {
            Some(Value::Null) | None => Ok(String::new()),
            Some(v) => model::string(k, v, max),
        }
    };
    let device_owner = get_str("device_owner", 255)?;
    check_device_owner(svc, ctx, &device_owner, &net)?;
    let subs = subnets::of_network(&svc.db.read, &net_id).await?;
    let reqs = match obj.get("fixed_ips").filter(|v| !v.is_null()) {
        Some(v) => {
            let r = parse_fixed_ips(v, &subs, &net_id, &[])?;
            if r.iter().any(|r| matches!(r, IpRequest::Specific(..))) {
                authorize_net(svc, ctx, "create_port:fixed_ips:ip_address", &project, &net.project_id)?;
            }
            r
        }
        None => default_requests(&subs),
    };
    let mac = match obj.get("mac_address").filter(|v| !v.is_null()) {
        Some(v) => Some(ipam::parse_mac("mac_address", &model::string("mac_address", v, 32)?)?),
        None => None,
    };
    let psec = match obj.get("port_security_enabled") {
        Some(v) => model::boolean("port_security_enabled", v)?,
        None => net.port_security_enabled,
    };
    let pairs = match obj.get("allowed_address_pairs").filter(|v| !v.is_null()) {
        Some(v) => parse_pairs(v)?,
        None => "[]".into(),
    };
    let groups = match obj.get("security_groups").filter(|v| !v.is_null()) {
        Some(v) => parse_groups(svc, ctx, v).await?,
        None if psec && !device_owner.starts_with("network:") => {
            vec![security_groups::default_for_project(&svc.db, &project).await?]
        }
        None => Vec::new(),
    };
    security_conflicts(psec, &groups, &pairs)?;
    let host = get_str("binding:host_id", 255)?;
    let now = st::now();
    Ok(Draft {
        port: Port {
            id: st::new_id(),
            project_id: project,
            network_id: net_id.clone(),
            name: get_str("name", 255)?,
            mac_address: String::new(),
            admin_state_up: obj
                .get("admin_state_up")
                .map(|v| model::boolean("admin_state_up", v))
                .transpose()?
                .unwrap_or(true),
            status: plugin::DOWN.into(),
            device_id: get_str("device_id", 255)?,
            device_owner,
            vif_details: vif_details_for(&host, &net_id),
            host_id: host,
            vnic_type: match obj.get("binding:vnic_type").filter(|v| !v.is_null()) {
                Some(v) => parse_vnic(v)?,
                None => "normal".into(),
            },
            profile: obj.get("binding:profile").map(parse_profile).transpose()?.unwrap_or_else(|| "{}".into()),
            port_security_enabled: psec,
            allowed_address_pairs: pairs,
            extra_dhcp_opts: match obj.get("extra_dhcp_opts").filter(|v| !v.is_null()) {
                Some(v) => parse_dhcp_opts(v)?,
                None => "[]".into(),
            },
            description: get_str("description", 255)?,
            created_at: now.clone(),
            updated_at: now,
            revision_number: 0,
        },
        mac,
        reqs,
        groups,
    })
}

async fn create(AxState(svc): AxState<State>, Auth(ctx): Auth, body: Body) -> Result<Response> {
    let body = body.0;
    let (objs, bulk) = model::one_or_bulk(&body, "port", "ports")?;
    let mut drafts = Vec::new();
    for obj in &objs {
        drafts.push(draft(&svc, &ctx, obj).await?);
    }
    let made = port_writes::create(&svc, drafts).await?;
    let ports: Vec<Port> = made.iter().map(|c| c.port.clone()).collect();
    plugin::ports_created(&svc, &ports);
    // a new port has no tags yet
    let items: Vec<Value> =
        made.into_iter().map(|c| render(&svc, &ctx, &c.port, &c.ips, c.groups, Vec::new())).collect();
    Ok(if bulk { created(json!({"ports": items})) } else { created(json!({"port": items[0]})) })
}

async fn update(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response> {
    let obj = model::resource(&body.0, "port")?.clone();
    for k in obj.keys() {
        if CREATE_ATTRS.contains(&k.as_str()) && !UPDATE_ATTRS.contains(&k.as_str()) {
            return Err(bad(format!("Cannot update read-only attribute {k}")));
        }
    }
    model::only(&obj, UPDATE_ATTRS)?;
    let v = viewer(&svc, &ctx);
    let retries = svc.cfg.network.allocation_retries.max(1);
    for _ in 0..=retries {
        let cur = store::get_visible(&svc.db.read, &v, &id).await?.ok_or_else(|| port_not_found(&id))?;
        let net = networks::get(&svc.db.read, &cur.network_id).await?.ok_or_else(|| port_not_found(&id))?;
        authorize_net(&svc, &ctx, "update_port", &cur.project_id, &net.project_id)?;
        for (a, _) in GUARDED {
            if obj.contains_key(*a) {
                authorize_net(&svc, &ctx, &format!("update_port:{a}"), &cur.project_id, &net.project_id)?;
            }
        }
        check_revision(&headers, cur.revision_number)?;
        let mut p = cur.clone();
        let old_ips =
            subnets::allocations_of(&svc.db.read, std::slice::from_ref(&id)).await?.remove(&id).unwrap_or_default();
        let mut groups = None;
        let mut reqs = None;
        let mut pairs_given = None;
        for (k, val) in &obj {
            match k.as_str() {
                "name" => p.name = model::string(k, val, 255)?,
                "description" => p.description = model::string(k, val, 255)?,
                "admin_state_up" => p.admin_state_up = model::boolean(k, val)?,
                "device_id" => p.device_id = if val.is_null() { String::new() } else { model::string(k, val, 255)? },
                "device_owner" => {
                    p.device_owner = if val.is_null() { String::new() } else { model::string(k, val, 255)? };
                    check_device_owner(&svc, &ctx, &p.device_owner, &net)?;
                }
                "binding:host_id" => {
                    p.host_id = if val.is_null() { String::new() } else { model::string(k, val, 255)? };
                    p.vif_details = vif_details_for(&p.host_id, &p.network_id);
                }
                "binding:vnic_type" => p.vnic_type = parse_vnic(val)?,
                "binding:profile" => p.profile = parse_profile(val)?,
                "port_security_enabled" => p.port_security_enabled = model::boolean(k, val)?,
                "extra_dhcp_opts" => {
                    p.extra_dhcp_opts = if val.is_null() { "[]".into() } else { parse_dhcp_opts(val)? }
                }
                "allowed_address_pairs" => {
                    pairs_given = Some(if val.is_null() { "[]".into() } else { parse_pairs(val)? })
                }
                "security_groups" => {
                    groups = Some(if val.is_null() { Vec::new() } else { parse_groups(&svc, &ctx, val).await? })
                }
                "mac_address" => {
                    let m = ipam::parse_mac("mac_address", &model::string(k, val, 32)?)?;
                    if !p.host_id.is_empty() && ipam::show_mac(&m) != cur.mac_address {
                        return Err(conflict(
                            "PortBound",
                            format!("Unable to complete operation on port {id}, port is already bound."),
                        ));
                    }
                    p.mac_address = ipam::show_mac(&m);
                }
                "fixed_ips" => {
                    let subs = subnets::of_network(&svc.db.read, &p.network_id).await?;
                    let r = parse_fixed_ips(val, &subs, &p.network_id, &old_ips)?;
                    reqs = Some(r);
                }
                _ => {}
            }
        }
        if let Some(pairs) = &pairs_given {
            p.allowed_address_pairs = pairs_with_mac(pairs, &p.mac_address);
        }
        let cur_groups =
            store::groups_of(&svc.db.read, std::slice::from_ref(&id)).await?.remove(&id).unwrap_or_default();
        let eff_groups = groups.clone().unwrap_or_else(|| cur_groups.clone());
        security_conflicts(
            p.port_security_enabled,
            &eff_groups,
            if p.port_security_enabled { "[]" } else { &p.allowed_address_pairs },
        )
        .map_err(|e| match e {
            NetworkError::Client(_, "PortSecurityAndIPRequiredForSecurityGroups", m) => {
                conflict("PortSecurityPortHasSecurityGroup", m)
            }
            other => other,
        })?;
        p.status = plugin::status_after_update(&cur, &p);
        p.updated_at = st::now();
        let attempt = async {
            let txn = svc.db.write.begin().await?;
            if p.mac_address != cur.mac_address && store::mac_in_use(&txn, &p.network_id, &p.mac_address).await? {
                return Err(conflict(
                    "MacAddressInUse",
                    format!(
                        "Unable to complete operation for network {}. The mac address {} is in use.",
                        p.network_id, p.mac_address
                    ),
                ));
            }
            if !store::save(&txn, &p).await? {
                return Ok(false);
            }
            if let Some(reqs) = &reqs {
                subnets::release_port(&txn, &id).await?;
                let mac = ipam::parse_mac("mac_address", &p.mac_address)?;
                for a in allocate(&txn, &p, &mac, reqs, &[]).await? {
                    subnets::allocate(&txn, a).await?;
                }
            }
            if let Some(g) = &groups {
                store::set_groups(&txn, &id, g).await?;
            }
            txn.commit().await?;
            Ok(true)
        };
        match attempt.await {
            Ok(true) => {
                p.revision_number += 1;
                let rewire = obj.keys().any(|k| plugin::WIRED_ATTRS.contains(&k.as_str()));
                plugin::port_updated(&svc, &cur, &p, rewire);
                if obj.contains_key("fixed_ips") || obj.contains_key("security_groups") {
                    let all = cur_groups.iter().chain(&eff_groups).cloned().collect::<std::collections::BTreeSet<_>>();
                    plugin::members_changed(&svc, all.into_iter().collect(), &p.id);
                }
                let item = render_many(&svc, &ctx, std::slice::from_ref(&p)).await?.remove(0);
                return Ok(ok(json!({"port": item})));
            }
            Ok(false) => continue,
            Err(e) if retryable(&e) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(conflict("IpAddressGenerationFailure", format!("Port {id} kept changing during the update; try again.")))
}

async fn delete(AxState(svc): AxState<State>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Response> {
    let p = store::get_visible(&svc.db.read, &viewer(&svc, &ctx), &id).await?.ok_or_else(|| port_not_found(&id))?;
    let net_owner = networks::get(&svc.db.read, &p.network_id).await?.map(|n| n.project_id).unwrap_or_default();
    authorize_net(&svc, &ctx, "delete_port", &p.project_id, &net_owner)?;
    crate::api::routers::prevent_l3_port_deletion(&p)?;
    let txn = svc.db.write.begin().await?;
    let fips = crate::store::floatingips::on_port(&txn, &id).await?;
    let groups = store::groups_of(&txn, std::slice::from_ref(&id)).await?.remove(&id).unwrap_or_default();
    crate::store::floatingips::disassociate_port(&txn, &id).await?;
    if !store::delete(&txn, &id).await? {
        return Err(port_not_found(&id));
    }
    txn.commit().await?;
    plugin::port_deleted(&svc, &p, groups);
    crate::l3::port_gone(&svc, &fips);
    Ok(no_content())
}
