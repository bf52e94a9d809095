//! Nova's security group proxies: `/os-security-groups` (list, show,
//! create, update, delete) and `/os-security-group-rules` (create, delete)
//! to 2.35; at every microversion `GET /servers/{id}/os-security-groups`,
//! the server actions `addSecurityGroup` / `removeSecurityGroup`, and the
//! `security_groups` of the server view. All forwarded to the network
//! service with the caller's token (the server view reads with the service
//! token); Nova's view shows a group's ingress rules only, in its own shape
//! (`ip_protocol`, `from_port`, `to_port`, `ip_range`, `group`).

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::{Path, State as S};
use axum::response::Response;
use axum::routing::{delete, get, post};
use serde_json::{Map, Value, json};
use stratus_clients::network::{NetworkClient, NetworkError};
use stratus_core::auth::Auth;
use stratus_core::extract::{Json, RawQuery};
use stratus_core::{AuthContext, Microversion};

use super::network_proxy::{failed, message, neutron, up_to_2_35};
use super::resources::common::{self as c, invalid, py_repr, py_str};
use super::servers::visible;
use super::{accepted_empty, authorize, is_admin, ok, project_of, project_target};
use crate::error::{ComputeError, Result, bad, conflict, not_found};
use crate::store::instances::Instance;
use crate::{ComputeService, State};

pub fn routes() -> Router<State> {
    Router::new()
        .route("/v2.1/os-security-groups", get(index).post(create))
        .route("/v2.1/os-security-groups/{id}", get(show).put(update).delete(remove))
        .route("/v2.1/os-security-group-rules", post(create_rule))
        .route("/v2.1/os-security-group-rules/{id}", delete(delete_rule))
        .route("/v2.1/servers/{id}/os-security-groups", get(server_groups))
}

fn rule(action: &str) -> String {
    format!("os_compute_api:os-security-groups:{action}")
}

/// How many ids one filtered list asks for (Nova's `MAX_SEARCH_IDS`).
const MAX_SEARCH_IDS: usize = 150;

// ------------------------------------------------------------ Nova's shapes

/// Nova's internal rule (`_convert_to_nova_security_group_rule_format`): a
/// protocol without ports means all of them (1-65535 for TCP/UDP, -1 else).
fn nova_rule(r: &Value) -> Value {
    let protocol = r["protocol"].clone();
    let (from, to) = if !protocol.is_null() && r["port_range_min"].is_null() && r["port_range_max"].is_null() {
        let upper = py_str(&protocol).to_ascii_uppercase();
        if upper == "TCP" || upper == "UDP" { (json!(1), json!(65535)) } else { (json!(-1), json!(-1)) }
    } else {
        (r["port_range_min"].clone(), r["port_range_max"].clone())
    };
    let cidr = r["remote_ip_prefix"].as_str().filter(|s| !s.is_empty()).unwrap_or("0.0.0.0/0");
    json!({
        "id": r["id"],
        "parent_group_id": r["security_group_id"],
        "protocol": protocol,
        "from_port": from,
        "to_port": to,
        "group_id": r["remote_group_id"],
        "cidr": cidr,
    })
}

/// A network service group as Nova keeps it: its ingress rules only.
fn nova_group(sg: &Value) -> Value {
    let rules: Vec<Value> = sg["security_group_rules"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["direction"] == "ingress")
        .map(nova_rule)
        .collect();
    json!({
        "id": sg["id"],
        "description": sg["description"],
        "name": sg["name"],
        "project_id": sg.get("project_id").or(sg.get("tenant_id")).cloned().unwrap_or(Value::Null),
        "rules": rules,
    })
}

/// `{name, tenant_id}` of the groups rules point at (`group_id`), looked up
/// once each; None for a group the caller cannot see (its rules are left out).
struct Groups<'a> {
    net: &'a NetworkClient,
    token: &'a str,
    known: BTreeMap<String, Option<Value>>,
}

impl<'a> Groups<'a> {
    fn new(net: &'a NetworkClient, token: &'a str, groups: &[Value]) -> Self {
        let known = groups
            .iter()
            .filter_map(|g| {
                let id = g["id"].as_str()?.to_string();
                Some((id, Some(json!({"name": g["name"], "tenant_id": g["project_id"]}))))
            })
            .collect();
        Groups { net, token, known }
    }

    async fn data(&mut self, id: &str) -> Result<Option<Value>> {
        if let Some(d) = self.known.get(id) {
            return Ok(d.clone());
        }
        let d = match self.net.get(self.token, &format!("/security-groups/{id}")).await {
            Ok(v) => {
                let g = nova_group(&v["security_group"]);
                Some(json!({"name": g["name"], "tenant_id": g["project_id"]}))
            }
            Err(NetworkError::Refused { status: 404, .. }) => None,
            Err(e) => return Err(failed(e)),
        };
        self.known.insert(id.to_string(), d.clone());
        Ok(d)
    }
}

/// Nova's `_format_security_group_rule` with the referenced group's data.
fn format_rule(r: &Value, group: Option<Value>) -> Value {
    let mut out = json!({
        "id": r["id"],
        "parent_group_id": r["parent_group_id"],
        "ip_protocol": r["protocol"],
        "from_port": r["from_port"],
        "to_port": r["to_port"],
        "group": {},
        "ip_range": {},
    });
    match group {
        Some(g) => out["group"] = g,
        None => out["ip_range"] = json!({"cidr": r["cidr"]}),
    }
    out
}

/// Nova's `_format_security_group` of a Nova-shaped group.
async fn format_group(g: &Value, groups: &mut Groups<'_>) -> Result<Value> {
    let mut rules = Vec::new();
    for r in g["rules"].as_array().into_iter().flatten() {
        match r["group_id"].as_str().filter(|s| !s.is_empty()) {
            Some(gid) => {
                if let Some(d) = groups.data(gid).await? {
                    rules.push(format_rule(r, Some(d)));
                }
            }
            None => rules.push(format_rule(r, None)),
        }
    }
    Ok(json!({
        "id": g["id"],
        "description": g["description"],
        "name": g["name"],
        "tenant_id": g["project_id"],
        "rules": rules,
    }))
}

fn sort_groups(list: &mut [Value]) {
    list.sort_by(|a, b| {
        let key = |v: &Value| (py_str(&v["tenant_id"]), py_str(&v["name"]));
        key(a).cmp(&key(b))
    });
}

// ------------------------------------------------------------ lookups

fn validate_id(id: &str) -> Result<()> {
    if c::is_uuid_like(id) { Ok(()) } else { Err(bad("Security group id should be uuid")) }
}

/// The group (Nova-shaped); 404 in the network service's words.
async fn get_group(net: &NetworkClient, token: &str, id: &str) -> Result<Value> {
    match net.get(token, &format!("/security-groups/{id}")).await {
        Ok(v) => Ok(nova_group(&v["security_group"])),
        Err(e @ NetworkError::Refused { status: 404, .. }) => Err(not_found(message(&e))),
        Err(e) => Err(failed(e)),
    }
}

// ------------------------------------------------------------ groups

async fn index(S(svc): S<State>, Auth(ctx): Auth, mv: Microversion, q: RawQuery) -> Result<Response> {
    up_to_2_35(mv)?;
    let project = project_of(&ctx)?;
    authorize(&svc, &ctx, &rule("get"), &project_target(project))?;
    let (limit, _) = c::limit_marker(&q)?;
    let offset = c::offset(&q)?;
    let net = neutron(&svc)?;
    let all_tenants = is_admin(&svc, &ctx) && q.get("all_tenants").is_some();
    let query: Vec<(&str, &str)> = if all_tenants { Vec::new() } else { vec![("project_id", project)] };
    let raw = net.list(&ctx.token, "security-groups", &query).await.map_err(failed)?;
    let limit = if limit == 0 { usize::MAX } else { limit };
    let page: Vec<Value> = raw.iter().skip(offset).take(limit).map(nova_group).collect();
    let mut groups = Groups::new(net, &ctx.token, &page.iter().map(nova_as_group_data).collect::<Vec<_>>());
    let mut out = Vec::with_capacity(page.len());
    for g in &page {
        out.push(format_group(g, &mut groups).await?);
    }
    sort_groups(&mut out);
    Ok(ok(json!({"security_groups": out})))
}

/// A Nova-shaped group as the lookup cache takes it (`project_id` as is).
fn nova_as_group_data(g: &Value) -> Value {
    json!({"id": g["id"], "name": g["name"], "project_id": g["project_id"]})
}

async fn show(S(svc): S<State>, Auth(ctx): Auth, mv: Microversion, Path(id): Path<String>) -> Result<Response> {
    up_to_2_35(mv)?;
    let project = project_of(&ctx)?;
    authorize(&svc, &ctx, &rule("show"), &project_target(project))?;
    let net = neutron(&svc)?;
    validate_id(&id)?;
    let g = get_group(net, &ctx.token, &id).await?;
    let mut groups = Groups::new(net, &ctx.token, &[nova_as_group_data(&g)]);
    Ok(ok(json!({"security_group": format_group(&g, &mut groups).await?})))
}

/// The `security_group` of a create or an update: `name` and `description`, both required.
fn parse_group(body: &Value) -> Result<(String, String)> {
    let top = c::object(body, None)?;
    let sg = c::object(c::required(top, None, "security_group")?, Some("security_group"))?;
    let name = c::string("name", c::required(sg, Some("security_group"), "name")?, 0, 255)?;
    let description = c::string("description", c::required(sg, Some("security_group"), "description")?, 0, 255)?;
    Ok((name.to_string(), description.to_string()))
}

async fn create(S(svc): S<State>, Auth(ctx): Auth, mv: Microversion, Json(body): Json<Value>) -> Result<Response> {
    up_to_2_35(mv)?;
    let (name, description) = parse_group(&body)?;
    let project = project_of(&ctx)?;
    authorize(&svc, &ctx, &rule("create"), &project_target(project))?;
    let net = neutron(&svc)?;
    let made = net
        .post(&ctx.token, "/security-groups", json!({"security_group": {"name": name, "description": description}}))
        .await;
    let sg = match made {
        Ok(v) => nova_group(&v["security_group"]),
        Err(e @ NetworkError::Refused { status: 400, .. }) => return Err(bad(message(&e))),
        Err(e @ NetworkError::Refused { status: 409, .. }) => return Err(ComputeError::OverQuota(message(&e))),
        Err(NetworkError::Refused { kind, message: m, .. }) if kind == "OverQuota" => {
            return Err(ComputeError::OverQuota(m));
        }
        Err(e) => return Err(failed(e)),
    };
    let mut groups = Groups::new(net, &ctx.token, &[nova_as_group_data(&sg)]);
    Ok(ok(json!({"security_group": format_group(&sg, &mut groups).await?})))
}

async fn update(
    S(svc): S<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response> {
    up_to_2_35(mv)?;
    let (name, description) = parse_group(&body)?;
    let project = project_of(&ctx)?;
    authorize(&svc, &ctx, &rule("update"), &project_target(project))?;
    let net = neutron(&svc)?;
    validate_id(&id)?;
    get_group(net, &ctx.token, &id).await?;
    let changed = net
        .put(
            &ctx.token,
            &format!("/security-groups/{id}"),
            json!({"security_group": {"name": name, "description": description}}),
        )
        .await;
    let sg = match changed {
        Ok(v) => nova_group(&v["security_group"]),
        Err(e @ NetworkError::Refused { status: 404, .. }) => return Err(not_found(message(&e))),
        Err(e @ NetworkError::Refused { status: 400, .. }) => return Err(bad(message(&e))),
        Err(e) => return Err(failed(e)),
    };
    let mut groups = Groups::new(net, &ctx.token, &[nova_as_group_data(&sg)]);
    Ok(ok(json!({"security_group": format_group(&sg, &mut groups).await?})))
}

async fn remove(S(svc): S<State>, Auth(ctx): Auth, mv: Microversion, Path(id): Path<String>) -> Result<Response> {
    up_to_2_35(mv)?;
    let project = project_of(&ctx)?;
    authorize(&svc, &ctx, &rule("delete"), &project_target(project))?;
    let net = neutron(&svc)?;
    validate_id(&id)?;
    get_group(net, &ctx.token, &id).await?;
    match net.delete(&ctx.token, &format!("/security-groups/{id}")).await {
        Ok(()) => Ok(accepted_empty()),
        Err(e @ NetworkError::Refused { status: 404, .. }) => Err(not_found(message(&e))),
        // in use, or the default group: Nova's Invalid
        Err(e @ NetworkError::Refused { status: 409, .. }) => Err(bad(message(&e))),
        Err(e) => Err(failed(e)),
    }
}

// ------------------------------------------------------------ rules

/// A rule create, after Nova's schema.
#[derive(Debug, PartialEq)]
struct RuleRequest {
    parent_group_id: String,
    group_id: Option<String>,
    from_port: Value,
    to_port: Value,
    ip_protocol: Value,
    cidr: Value,
}

fn uuid_string(field: &str, v: &Value) -> Result<String> {
    let Value::String(s) = v else {
        return Err(invalid(field, v, &format!("{} is not of type 'string'", py_repr(v))));
    };
    if !c::is_uuid_like(s) {
        return Err(invalid(field, v, &format!("{} is not a 'uuid'", py_repr(v))));
    }
    Ok(s.clone())
}

fn parse_rule(body: &Value) -> Result<RuleRequest> {
    let top = c::object(body, None)?;
    let r = c::object(c::required(top, None, "security_group_rule")?, Some("security_group_rule"))?;
    let parent_group_id =
        uuid_string("parent_group_id", c::required(r, Some("security_group_rule"), "parent_group_id")?)?;
    let group_id = match r.get("group_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(uuid_string("group_id", &Value::String(s.clone()))?),
        Some(other) => {
            return Err(invalid("group_id", other, &format!("{} is not of type 'string', 'null'", py_repr(other))));
        }
    };
    let take = |k: &str| r.get(k).cloned().unwrap_or(Value::Null);
    Ok(RuleRequest {
        parent_group_id,
        group_id,
        from_port: take("from_port"),
        to_port: take("to_port"),
        ip_protocol: take("ip_protocol"),
        cidr: take("cidr"),
    })
}

/// Python's `int(x)` of a JSON value (None when it would raise).
fn py_int(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f.trunc() as i64)),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        Value::Bool(b) => Some(i64::from(*b)),
        _ => None,
    }
}

/// Python truthiness of a JSON value.
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// Nova's `parse_cidr`: none means everywhere; else a valid `address/prefix`.
fn parse_cidr(cidr: &Value) -> Result<String> {
    if !truthy(cidr) {
        return Ok("0.0.0.0/0".into());
    }
    let raw = py_str(cidr);
    let s = percent_decode(&raw);
    let valid = match s.split_once('/') {
        Some((addr, len)) => match (addr.parse::<std::net::IpAddr>(), len.parse::<u8>()) {
            (Ok(std::net::IpAddr::V4(_)), Ok(l)) => l <= 32,
            (Ok(std::net::IpAddr::V6(_)), Ok(l)) => l <= 128,
            _ => false,
        },
        None => false,
    };
    if valid { Ok(s) } else { Err(bad(format!("{s} is not a valid IP network."))) }
}

/// `urllib.parse.unquote`: `%XX` escapes decoded.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Some(h) = std::str::from_utf8(&b[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(h);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Nova's `_new_ingress_rule`: the rule's values (`group_id` or `cidr`,
/// `protocol`, `from_port`, `to_port`), None when a CIDR rule lacks its
/// protocol or ports.
fn new_ingress_rule(req: &RuleRequest) -> Result<Option<Map<String, Value>>> {
    let mut values = Map::new();
    let mut from = req.from_port.clone();
    let mut to = req.to_port.clone();
    let proto = if truthy(&req.ip_protocol) { Some(py_str(&req.ip_protocol)) } else { None };
    let upper = proto.as_deref().unwrap_or_default().to_ascii_uppercase();
    let cidr = match &req.group_id {
        Some(g) => {
            values.insert("group_id".into(), json!(g));
            if from.is_null() && to.is_null() {
                if upper == "ICMP" {
                    (from, to) = (json!(-1), json!(-1));
                } else if upper == "TCP" || upper == "UDP" {
                    (from, to) = (json!(1), json!(65535));
                }
            }
            None
        }
        None => {
            let cidr = parse_cidr(&req.cidr)?;
            values.insert("cidr".into(), json!(cidr));
            Some(cidr)
        }
    };
    match proto {
        Some(p) if !from.is_null() && !to.is_null() => {
            let (Some(f), Some(t)) = (py_int(&from), py_int(&to)) else {
                return Err(bad(if upper == "ICMP" {
                    "Invalid input received: Type and Code must be integers for ICMP protocol type"
                } else {
                    "Invalid input received: To and From ports must be integers"
                }));
            };
            if !["TCP", "UDP", "ICMP"].contains(&upper.as_str()) {
                return Err(bad(format!("Invalid IP protocol {p}.")));
            }
            let range = |msg: &str| bad(format!("Invalid port range {f}:{t}. {msg}"));
            if (upper == "TCP" || upper == "UDP") && f > t {
                return Err(range("Former value cannot be greater than the later"));
            }
            if (upper == "TCP" || upper == "UDP") && (f < 1 || t > 65535) {
                return Err(range(&format!("Valid {upper} ports should be between 1-65535")));
            }
            if upper == "ICMP" && !((-1..=255).contains(&f) && (-1..=255).contains(&t)) {
                return Err(range("For ICMP, the type:code must be valid"));
            }
            values.insert("protocol".into(), json!(p));
            values.insert("from_port".into(), json!(f));
            values.insert("to_port".into(), json!(t));
        }
        _ if cidr.is_some() => return Ok(None),
        _ => {}
    }
    Ok(Some(values))
}

/// Nova's `_rule_exists`: a rule of the group with the same source, ports and protocol.
fn rule_exists(group: &Value, new: &Map<String, Value>) -> bool {
    group["rules"].as_array().into_iter().flatten().any(|r| {
        ["group_id", "cidr", "from_port", "to_port", "protocol"]
            .iter()
            .all(|k| r.get(*k).unwrap_or(&Value::Null) == new.get(*k).unwrap_or(&Value::Null))
    })
}

/// The network service's rule for a Nova rule (always ingress).
fn neutron_rule(parent: &str, new: &Map<String, Value>) -> Value {
    let cidr = new.get("cidr").and_then(Value::as_str);
    let ethertype = match cidr {
        Some(c) if c.split('/').next().is_some_and(|a| a.contains(':')) => "IPv6",
        _ => "IPv4",
    };
    let mut r = json!({
        "direction": "ingress",
        "protocol": new.get("protocol").cloned().unwrap_or(Value::Null),
        "ethertype": ethertype,
        "remote_ip_prefix": cidr,
        "security_group_id": parent,
        "remote_group_id": new.get("group_id").cloned().unwrap_or(Value::Null),
    });
    if let Some(f) = new.get("from_port").filter(|v| **v != json!(-1)) {
        r["port_range_min"] = f.clone();
    }
    if let Some(t) = new.get("to_port").filter(|v| **v != json!(-1)) {
        r["port_range_max"] = t.clone();
    }
    r
}

async fn create_rule(S(svc): S<State>, Auth(ctx): Auth, mv: Microversion, Json(body): Json<Value>) -> Result<Response> {
    up_to_2_35(mv)?;
    let req = parse_rule(&body)?;
    let project = project_of(&ctx)?;
    authorize(&svc, &ctx, &rule("rule:create"), &project_target(project))?;
    let net = neutron(&svc)?;
    let parent = get_group(net, &ctx.token, &req.parent_group_id).await?;
    let source = match &req.group_id {
        Some(g) => Some(get_group(net, &ctx.token, g).await?),
        None => None,
    };
    let Some(new) = new_ingress_rule(&req)? else {
        return Err(bad("Not enough parameters to build a valid rule."));
    };
    if let Some(cidr) = new.get("cidr").and_then(Value::as_str)
        && let Some((addr, len)) = cidr.split_once('/')
        && addr != "0.0.0.0"
        && addr != "::"
        && len == "0"
    {
        return Err(bad(format!("Bad prefix for network in cidr {cidr}")));
    }
    let parent_id = parent["id"].as_str().unwrap_or_default().to_string();
    if rule_exists(&parent, &new) {
        return Err(bad(format!("This rule already exists in group {parent_id}")));
    }
    let made = net
        .post(&ctx.token, "/security-group-rules", json!({"security_group_rule": neutron_rule(&parent_id, &new)}))
        .await;
    let made = match made {
        Ok(v) => nova_rule(&v["security_group_rule"]),
        Err(e @ NetworkError::Refused { status: 404, .. }) => return Err(not_found(message(&e))),
        Err(e @ NetworkError::Refused { status: 409, .. }) => return Err(ComputeError::OverQuota(message(&e))),
        Err(e @ NetworkError::Refused { status: 400, .. }) => return Err(bad(message(&e))),
        Err(e) => return Err(failed(e)),
    };
    let group = source.map(|s| json!({"name": s["name"], "tenant_id": s["project_id"]}));
    Ok(ok(json!({"security_group_rule": format_rule(&made, group)})))
}

async fn delete_rule(S(svc): S<State>, Auth(ctx): Auth, mv: Microversion, Path(id): Path<String>) -> Result<Response> {
    up_to_2_35(mv)?;
    let project = project_of(&ctx)?;
    authorize(&svc, &ctx, &rule("rule:delete"), &project_target(project))?;
    let net = neutron(&svc)?;
    validate_id(&id)?;
    let r = match net.get(&ctx.token, &format!("/security-group-rules/{id}")).await {
        Ok(v) => v["security_group_rule"].clone(),
        Err(e @ NetworkError::Refused { status: 404, .. }) => return Err(not_found(message(&e))),
        Err(e) => return Err(failed(e)),
    };
    get_group(net, &ctx.token, r["security_group_id"].as_str().unwrap_or_default()).await?;
    match net.delete(&ctx.token, &format!("/security-group-rules/{id}")).await {
        Ok(()) => Ok(accepted_empty()),
        Err(e @ NetworkError::Refused { status: 404, .. }) => Err(not_found(message(&e))),
        Err(e) => Err(failed(e)),
    }
}

// ------------------------------------------------------------ servers

/// The groups of the servers' ports: server -> the groups of each of its
/// ports in turn (Nova's `get_instances_security_groups_bindings`).
async fn port_groups(net: &NetworkClient, token: &str, servers: &[String]) -> Result<Vec<(String, Vec<Value>)>> {
    let mut ports = Vec::new();
    for chunk in servers.chunks(MAX_SEARCH_IDS) {
        let q: Vec<(&str, &str)> = chunk.iter().map(|s| ("device_id", s.as_str())).collect();
        ports.extend(net.ports(token, &q).await.map_err(failed)?);
    }
    let mut ids: Vec<String> = Vec::new();
    for p in &ports {
        for g in p["security_groups"].as_array().into_iter().flatten().filter_map(Value::as_str) {
            if !ids.iter().any(|i| i == g) {
                ids.push(g.to_string());
            }
        }
    }
    let mut groups: BTreeMap<String, Value> = BTreeMap::new();
    for chunk in ids.chunks(MAX_SEARCH_IDS) {
        let q: Vec<(&str, &str)> = chunk.iter().map(|i| ("id", i.as_str())).collect();
        for g in net.list(token, "security-groups", &q).await.map_err(failed)? {
            if let Some(id) = g["id"].as_str() {
                groups.insert(id.to_string(), g.clone());
            }
        }
    }
    let mut out: Vec<(String, Vec<Value>)> = Vec::new();
    for p in &ports {
        let device = p["device_id"].as_str().unwrap_or_default().to_string();
        let found: Vec<Value> = p["security_groups"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .filter_map(|g| groups.get(g).cloned())
            .collect();
        match out.iter_mut().find(|(d, _)| *d == device) {
            Some((_, list)) => list.extend(found),
            None => out.push((device, found)),
        }
    }
    Ok(out)
}

/// `security_groups` of the server view: server -> `[{"name": ...}]` (a
/// group without a name by its id), read with the service token; servers
/// whose ports have no group are left out (Nova then shows no key).
pub async fn bindings(svc: &ComputeService, servers: &[String]) -> BTreeMap<String, Vec<Value>> {
    let mut out = BTreeMap::new();
    let Ok(deps) = svc.deps() else { return out };
    let Some(networking) = deps.network.as_deref() else { return out };
    if servers.is_empty() {
        return out;
    }
    let found = match (deps.tokens)().await {
        Ok(token) => port_groups(&networking.client, &token, servers).await,
        Err(e) => Err(ComputeError::Internal(e)),
    };
    match found {
        Ok(list) => {
            for (server, groups) in list {
                let names: Vec<Value> = groups
                    .iter()
                    .map(|g| {
                        let name = g["name"].as_str().filter(|s| !s.is_empty()).or(g["id"].as_str());
                        json!({"name": name})
                    })
                    .collect();
                if !names.is_empty() {
                    out.insert(server, names);
                }
            }
        }
        Err(e) => tracing::warn!("security groups of servers not shown: {e}"),
    }
    out
}

async fn server_groups(S(svc): S<State>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Response> {
    let inst = visible(&svc, &ctx, &id).await?;
    authorize(&svc, &ctx, &rule("list"), &project_target(&inst.project_id))?;
    let net = neutron(&svc)?;
    let list = port_groups(net, &ctx.token, std::slice::from_ref(&inst.uuid)).await?;
    let groups: Vec<Value> = list.into_iter().flat_map(|(_, g)| g).map(|g| nova_group(&g)).collect();
    let mut lookup = Groups::new(net, &ctx.token, &groups.iter().map(nova_as_group_data).collect::<Vec<_>>());
    let mut out = Vec::with_capacity(groups.len());
    for g in &groups {
        out.push(format_group(g, &mut lookup).await?);
    }
    sort_groups(&mut out);
    Ok(ok(json!({"security_groups": out})))
}

/// The group name of an `addSecurityGroup` / `removeSecurityGroup` body.
fn parse_action(action: &str, arg: &Value) -> Result<String> {
    let o = c::object(arg, Some(action))?;
    let name = c::required(o, Some(action), "name")?;
    c::no_extra(o, Some(action), &["name"])?;
    Ok(c::string("name", name, 1, usize::MAX)?.to_string())
}

/// neutronclient's `find_resourceid_by_name_or_id`: by id, else by name in the project.
async fn find_group(net: &NetworkClient, token: &str, project: &str, name: &str) -> Result<String> {
    if c::is_uuid_like(name) {
        let by_id = net.list(token, "security-groups", &[("id", name)]).await.map_err(failed)?;
        if let Some(id) = by_id.first().and_then(|g| g["id"].as_str()) {
            return Ok(id.to_string());
        }
    }
    let by_name =
        net.list(token, "security-groups", &[("name", name), ("project_id", project)]).await.map_err(failed)?;
    match by_name.as_slice() {
        [] => Err(not_found(format!("Security group {name} is not found for project {project}"))),
        [one] => Ok(one["id"].as_str().unwrap_or_default().to_string()),
        _ => Err(conflict(format!(
            "Multiple security_group matches found for name '{name}', use an ID to be more specific."
        ))),
    }
}

fn no_ports(inst: &Instance) -> ComputeError {
    not_found(format!("instance_id {} could not be found as device id on any ports", inst.uuid))
}

fn group_ids(port: &Value) -> Vec<String> {
    port["security_groups"].as_array().into_iter().flatten().filter_map(Value::as_str).map(str::to_string).collect()
}

/// `addSecurityGroup`: the group on every port of the server.
pub async fn add_security_group(
    svc: &ComputeService,
    ctx: &AuthContext,
    inst: &Instance,
    arg: &Value,
) -> Result<Response> {
    let name = parse_action("addSecurityGroup", arg)?;
    authorize(svc, ctx, &rule("add"), &project_target(&inst.project_id))?;
    if name.trim().is_empty() {
        return Err(bad("Security group name cannot be empty"));
    }
    let net = neutron(svc)?;
    let project = project_of(ctx)?;
    let group = find_group(net, &ctx.token, project, &name).await?;
    let ports = net.ports(&ctx.token, &[("device_id", inst.uuid.as_str())]).await.map_err(failed)?;
    if ports.is_empty() {
        return Err(no_ports(inst));
    }
    for p in &ports {
        let secured = p["port_security_enabled"].as_bool().unwrap_or(true);
        let addressed = p["fixed_ips"].as_array().is_some_and(|a| !a.is_empty()) || p["ip_allocation"] == "deferred";
        if !(secured && addressed) {
            return Err(bad(
                "Network requires port_security_enabled and subnet associated in order to apply security groups.",
            ));
        }
        let mut ids = group_ids(p);
        if !ids.contains(&group) {
            ids.push(group.clone());
        }
        let id = p["id"].as_str().unwrap_or_default();
        match net.update_port(&ctx.token, id, json!({"security_groups": ids})).await {
            Ok(_) => {}
            Err(e @ NetworkError::Refused { status: 400, .. }) => return Err(bad(message(&e))),
            Err(e @ NetworkError::Refused { status: 409, .. }) => return Err(conflict(message(&e))),
            Err(e) => return Err(failed(e)),
        }
    }
    Ok(accepted_empty())
}

/// `removeSecurityGroup`: the group off every port of the server that has it.
pub async fn remove_security_group(
    svc: &ComputeService,
    ctx: &AuthContext,
    inst: &Instance,
    arg: &Value,
) -> Result<Response> {
    let name = parse_action("removeSecurityGroup", arg)?;
    authorize(svc, ctx, &rule("remove"), &project_target(&inst.project_id))?;
    if name.trim().is_empty() {
        return Err(bad("Security group name cannot be empty"));
    }
    let net = neutron(svc)?;
    let project = project_of(ctx)?;
    let group = find_group(net, &ctx.token, project, &name).await?;
    let ports = net.ports(&ctx.token, &[("device_id", inst.uuid.as_str())]).await.map_err(failed)?;
    if ports.is_empty() {
        return Err(no_ports(inst));
    }
    let mut found = false;
    for p in &ports {
        let ids = group_ids(p);
        if !ids.contains(&group) {
            continue;
        }
        let rest: Vec<String> = ids.into_iter().filter(|g| *g != group).collect();
        let id = p["id"].as_str().unwrap_or_default();
        net.update_port(&ctx.token, id, json!({"security_groups": rest})).await.map_err(failed)?;
        found = true;
    }
    if !found {
        return Err(not_found(format!("Security group {name} not associated with the instance {}", inst.uuid)));
    }
    Ok(accepted_empty())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn req(proto: Value, from: Value, to: Value) -> RuleRequest {
        RuleRequest {
            parent_group_id: "p".into(),
            group_id: None,
            from_port: from,
            to_port: to,
            ip_protocol: proto,
            cidr: Value::Null,
        }
    }

    #[test]
    fn rules_are_checked_as_nova_checks_them() {
        let r = new_ingress_rule(&req(json!("tcp"), json!(22), json!("22"))).unwrap().unwrap();
        assert_eq!(Value::Object(r), json!({"cidr": "0.0.0.0/0", "protocol": "tcp", "from_port": 22, "to_port": 22}));
        let e = new_ingress_rule(&req(json!("999"), json!(22), json!(22))).unwrap_err();
        assert_eq!(e.to_string(), "Invalid IP protocol 999.");
        let e = new_ingress_rule(&req(json!("tcp"), json!(65536), json!(22))).unwrap_err();
        assert_eq!(e.to_string(), "Invalid port range 65536:22. Former value cannot be greater than the later");
        let e = new_ingress_rule(&req(json!("tcp"), json!(22), json!(70000))).unwrap_err();
        assert_eq!(e.to_string(), "Invalid port range 22:70000. Valid TCP ports should be between 1-65535");
        let e = new_ingress_rule(&req(json!("icmp"), json!("x"), json!(0))).unwrap_err();
        assert!(e.to_string().contains("Type and Code must be integers"), "{e}");
        assert!(new_ingress_rule(&req(json!("icmp"), json!(-1), json!(-1))).unwrap().is_some());
        // a CIDR rule needs its protocol and ports
        assert!(new_ingress_rule(&req(Value::Null, json!(22), json!(22))).unwrap().is_none());
        // a group rule opens every port of its protocol
        let mut g = req(json!("tcp"), Value::Null, Value::Null);
        g.group_id = Some("g".into());
        let r = new_ingress_rule(&g).unwrap().unwrap();
        assert_eq!(Value::Object(r), json!({"group_id": "g", "protocol": "tcp", "from_port": 1, "to_port": 65535}));
        let mut c = req(json!("tcp"), json!(22), json!(22));
        c.cidr = json!("10.0.0.0%2F8");
        assert_eq!(new_ingress_rule(&c).unwrap().unwrap()["cidr"], "10.0.0.0/8");
        c.cidr = json!("10.0.0.0");
        assert_eq!(new_ingress_rule(&c).unwrap_err().to_string(), "10.0.0.0 is not a valid IP network.");
    }

    #[test]
    fn neutron_rules_round_trip_to_nova_shape() {
        let mut new = Map::new();
        new.insert("cidr".into(), json!("fd00::/8"));
        new.insert("protocol".into(), json!("icmp"));
        new.insert("from_port".into(), json!(-1));
        new.insert("to_port".into(), json!(-1));
        let n = neutron_rule("p", &new);
        assert_eq!(n["ethertype"], "IPv6");
        assert!(n.get("port_range_min").is_none());
        let mut back = n.clone();
        back["id"] = json!("r");
        back["security_group_id"] = json!("p");
        let nova = nova_rule(&back);
        assert_eq!(nova["from_port"], -1);
        assert_eq!(nova["to_port"], -1);
        assert_eq!(nova["cidr"], "fd00::/8");
        let f = format_rule(&nova, None);
        assert_eq!(f["ip_range"], json!({"cidr": "fd00::/8"}));
        assert_eq!(f["group"], json!({}));
        assert_eq!(f["ip_protocol"], "icmp");
        // a TCP rule without ports means all of them
        let all = nova_rule(&json!({"id": "r", "security_group_id": "p", "protocol": "tcp", "remote_ip_prefix": null}));
        assert_eq!((all["from_port"].clone(), all["to_port"].clone()), (json!(1), json!(65535)));
        assert_eq!(all["cidr"], "0.0.0.0/0");
    }

    #[test]
    fn groups_show_their_ingress_rules_only() {
        let sg = json!({"id": "g", "name": "web", "description": "", "project_id": "p", "security_group_rules": [
            {"id": "e", "direction": "egress", "security_group_id": "g", "protocol": null},
            {"id": "i", "direction": "ingress", "security_group_id": "g", "protocol": "tcp",
             "port_range_min": 80, "port_range_max": 80, "remote_ip_prefix": "10.0.0.0/8"},
        ]});
        let g = nova_group(&sg);
        assert_eq!(g["rules"].as_array().unwrap().len(), 1);
        assert_eq!(g["rules"][0]["id"], "i");
        assert!(rule_exists(
            &g,
            json!({"cidr": "10.0.0.0/8", "protocol": "tcp", "from_port": 80, "to_port": 80}).as_object().unwrap()
        ));
        assert!(!rule_exists(
            &g,
            json!({"cidr": "10.0.0.0/8", "protocol": "tcp", "from_port": 81, "to_port": 81}).as_object().unwrap()
        ));
    }

    #[test]
    fn bodies_follow_novas_schemas() {
        assert!(parse_group(&json!({"security_group": {"name": "a"}})).is_err());
        assert!(parse_group(&json!({"security_group": {"name": "a".repeat(256), "description": ""}})).is_err());
        assert_eq!(
            parse_group(&json!({"security_group": {"name": " a ", "description": ""}})).unwrap(),
            (" a ".to_string(), String::new())
        );
        let e = parse_rule(&json!({"security_group_rule": {"parent_group_id": "non_int_id"}})).unwrap_err();
        assert!(e.to_string().contains("is not a 'uuid'"), "{e}");
        assert!(parse_action("addSecurityGroup", &json!({"name": ""})).is_err());
        assert!(parse_action("addSecurityGroup", &json!({"name": "x", "y": 1})).is_err());
        assert_eq!(parse_action("addSecurityGroup", &json!({"name": " "})).unwrap(), " ");
    }
}
