//! `/servers`: create, list (with filters, sorting, paging, changes-since),
//! show, update, delete; the server view for every microversion.

use std::collections::{BTreeMap, BTreeSet};

use axum::Router;
use axum::extract::{Path, State as S};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use sea_orm::TransactionTrait;
use serde_json::{Map, Value, json};
use sha2::Digest;
use stratus_core::auth::Auth;
use stratus_core::extract::{Json, RawQuery};
use stratus_core::{AuthContext, Microversion};

use super::resources::common::{self as c, invalid, py_repr};
use super::{authorize, is_admin, no_content, ok, project_of, project_target};
use crate::entity::instance_fault;
use crate::error::{ComputeError, Result, bad, conflict, server_not_found};
use crate::model::{self, task, vm};
use crate::rpc::{self, FlavorSpec, RequestSpec};
use crate::store::instances::{self, Change, Expect, Instance};
use crate::store::{self, flavors, quotas, services};
use crate::{ComputeService, State};

pub fn routes() -> Router<State> {
    Router::new()
        .route("/v2.1/servers", get(list).post(create))
        .route("/v2.1/servers/detail", get(detail))
        .route("/v2.1/servers/{id}", get(show).put(update).delete(delete))
}

/// The server as the caller may see it: 404 when it does not exist, is
/// deleted, or belongs to another project (for non-admins).
pub async fn visible(svc: &ComputeService, ctx: &AuthContext, id: &str) -> Result<Instance> {
    let inst = instances::get_live(&svc.db, id).await?.ok_or_else(|| server_not_found(id))?;
    if !is_admin(svc, ctx) && ctx.project_id.as_deref() != Some(inst.project_id.as_str()) {
        return Err(server_not_found(id));
    }
    Ok(inst)
}

/// What a list view needs besides the rows.
#[derive(Default)]
pub struct Extras {
    pub faults: BTreeMap<String, instance_fault::Model>,
    pub tags: BTreeMap<String, Vec<String>>,
    /// host -> status (UP/DOWN/MAINTENANCE) for host_status
    pub host_status: BTreeMap<String, &'static str>,
    /// server -> its volumes (`os-extended-volumes:volumes_attached`)
    pub volumes: BTreeMap<String, Vec<crate::volume::Bdm>>,
    /// server -> the security groups of its ports (`security_groups`)
    pub security_groups: BTreeMap<String, Vec<Value>>,
    /// port -> its floating IPs (fixed IP, floating IP), shown in `addresses`
    pub floating_ips: BTreeMap<String, Vec<(String, String)>>,
}

pub async fn extras(svc: &ComputeService, list: &[Instance]) -> Result<Extras> {
    let uuids: Vec<String> = list.iter().map(|i| i.uuid.clone()).collect();
    let errored: Vec<String> = list
        .iter()
        .filter(|i| matches!(i.vm_state.as_str(), vm::ERROR | vm::DELETED))
        .map(|i| i.uuid.clone())
        .collect();
    let mut host_status = BTreeMap::new();
    for s in services::list(&svc.db).await? {
        if s.binary == crate::manager::BINARY {
            let st = if s.forced_down || !services::is_up(&s, svc.cfg.compute.service_down_time) {
                "DOWN"
            } else if s.disabled {
                "MAINTENANCE"
            } else {
                "UP"
            };
            host_status.insert(s.host.clone(), st);
        }
    }
    let ports: Vec<String> =
        list.iter().flat_map(|i| crate::network::vifs_of(&i.system_metadata)).map(|v| v.port_id).collect();
    let mut volumes: BTreeMap<String, Vec<crate::volume::Bdm>> = BTreeMap::new();
    for b in crate::volume::of_instances(&svc.db, &uuids).await.map_err(ComputeError::Internal)? {
        volumes.entry(b.instance_uuid.clone()).or_default().push(b);
    }
    Ok(Extras {
        faults: instances::faults(&svc.db, &errored).await?,
        tags: instances::tags(&svc.db, &uuids).await?,
        host_status,
        volumes,
        security_groups: super::security_groups::bindings(svc, &uuids).await,
        floating_ips: super::floating_ips::on_ports(svc, &ports).await,
    })
}

fn time(us: i64) -> String {
    stratus_core::time::iso_seconds(chrono::DateTime::from_timestamp_micros(us).unwrap_or_default())
}

fn opt_time(us: Option<i64>) -> Value {
    us.map(|t| json!(c::naive_time(t))).unwrap_or(Value::Null)
}

/// Nova's `hostId`: a hash of the project and the host, so projects cannot map hosts.
pub fn host_id(project: &str, host: Option<&str>) -> String {
    match host {
        Some(h) if !h.is_empty() => {
            let mut d = sha2::Sha224::new();
            d.update(project.as_bytes());
            d.update(h.as_bytes());
            d.finalize().iter().map(|b| format!("{b:02x}")).collect()
        }
        _ => String::new(),
    }
}

/// The minimal list entry: id, name, links.
pub fn brief(svc: &ComputeService, i: &Instance) -> Value {
    json!({"id": i.uuid, "name": i.display_name, "links": c::links(svc, "servers", &i.uuid)})
}

/// The full server view (detail, show, update), shaped by the microversion and the caller.
pub fn view(svc: &ComputeService, ctx: &AuthContext, mv: Microversion, i: &Instance, x: &Extras, show: bool) -> Value {
    let admin = is_admin(svc, ctx);
    let status = model::status(&i.vm_state, i.task_state.as_deref());
    let flavor: Value = serde_json::from_str(&i.flavor).unwrap_or(Value::Null);
    let flavor_view = if mv.at_least(2, 47) {
        let mut f = json!({
            "vcpus": i.vcpus, "ram": i.memory_mb, "disk": i.root_gb, "ephemeral": i.ephemeral_gb,
            "swap": flavor["swap"].as_i64().unwrap_or(0), "original_name": flavor["name"],
        });
        if svc.policy.allowed(ctx, "os_compute_api:servers:show:flavor-extra-specs", &project_target(&i.project_id)) {
            f["extra_specs"] = flavor.get("extra_specs").cloned().unwrap_or_else(|| json!({}));
        }
        f
    } else {
        json!({"id": i.flavor_id, "links": [{"rel": "bookmark", "href": format!("{}/flavors/{}", svc.base_url, i.flavor_id)}]})
    };
    let image = if i.image_ref.is_empty() {
        json!("")
    } else {
        json!({"id": i.image_ref, "links": [{"rel": "bookmark", "href": format!("{}/images/{}", svc.base_url, i.image_ref)}]})
    };
    let mut s = json!({
        "id": i.uuid,
        "name": i.display_name,
        "status": status,
        "tenant_id": i.project_id,
        "user_id": i.user_id,
        "metadata": serde_json::from_str::<Value>(&i.metadata).unwrap_or_else(|_| json!({})),
        "hostId": host_id(&i.project_id, i.host.as_deref()),
        "image": image,
        "flavor": flavor_view,
        "created": time(i.created_at),
        "updated": time(i.updated_at),
        "addresses": addresses(i, x),
        "accessIPv4": i.access_ip_v4.clone().unwrap_or_default(),
        "accessIPv6": i.access_ip_v6.clone().unwrap_or_default(),
        "links": c::links(svc, "servers", &i.uuid),
        "OS-DCF:diskConfig": disk_config(i),
        "key_name": i.key_name,
        "config_drive": if i.config_drive { "True" } else { "" },
        "OS-EXT-AZ:availability_zone": i.availability_zone.clone().unwrap_or_default(),
        "OS-SRV-USG:launched_at": opt_time(i.launched_at),
        "OS-SRV-USG:terminated_at": opt_time(i.terminated_at),
        "OS-EXT-STS:task_state": i.task_state,
        "OS-EXT-STS:vm_state": i.vm_state,
        "OS-EXT-STS:power_state": i.power_state,
        "os-extended-volumes:volumes_attached": [],
    });
    let m = s.as_object_mut().map(std::mem::take).unwrap_or_default();
    let mut m: Map<String, Value> = m;
    if model::shows_progress(status) {
        m.insert("progress".into(), json!(i.progress));
    }
    if matches!(i.vm_state.as_str(), vm::ERROR | vm::DELETED)
        && let Some(f) = x.faults.get(&i.uuid)
    {
        let mut fault = json!({"code": f.code, "created": time(f.created_at), "message": f.message});
        if (admin || f.code != 500)
            && let Some(d) = &f.details
        {
            fault["details"] = json!(d);
        }
        m.insert("fault".into(), fault);
    }
    if admin {
        m.insert("OS-EXT-SRV-ATTR:host".into(), json!(i.host));
        m.insert("OS-EXT-SRV-ATTR:hypervisor_hostname".into(), json!(i.node));
        m.insert("OS-EXT-SRV-ATTR:instance_name".into(), json!(instance_name(&i.uuid)));
        if mv.at_least(2, 3) {
            m.insert("OS-EXT-SRV-ATTR:reservation_id".into(), json!(i.reservation_id));
            m.insert("OS-EXT-SRV-ATTR:launch_index".into(), json!(i.launch_index));
            m.insert("OS-EXT-SRV-ATTR:hostname".into(), json!(i.hostname));
            m.insert("OS-EXT-SRV-ATTR:kernel_id".into(), json!(""));
            m.insert("OS-EXT-SRV-ATTR:ramdisk_id".into(), json!(""));
            m.insert("OS-EXT-SRV-ATTR:root_device_name".into(), json!("/dev/vda"));
            m.insert("OS-EXT-SRV-ATTR:user_data".into(), json!(i.user_data));
        }
    } else if mv.at_least(2, 90) {
        m.insert("OS-EXT-SRV-ATTR:hostname".into(), json!(i.hostname));
    }
    {
        let mut rows: Vec<&crate::volume::Bdm> = x.volumes.get(&i.uuid).map(|v| v.iter().collect()).unwrap_or_default();
        rows.sort_by_key(|b| (!b.is_root(), b.id));
        m.insert(
            "os-extended-volumes:volumes_attached".into(),
            crate::volume::volumes_attached(&rows, mv.at_least(2, 3)),
        );
    }
    if let Some(groups) = x.security_groups.get(&i.uuid) {
        m.insert("security_groups".into(), json!(groups));
    }
    if mv.at_least(2, 9) {
        m.insert("locked".into(), json!(i.locked));
    }
    if mv.at_least(2, 16)
        && svc.policy.allowed(ctx, "os_compute_api:servers:show:host_status", &project_target(&i.project_id))
    {
        let hs = match &i.host {
            Some(h) => x.host_status.get(h).copied().unwrap_or("UNKNOWN"),
            None => "",
        };
        m.insert("host_status".into(), json!(hs));
    }
    if mv.at_least(2, 19) {
        m.insert("description".into(), json!(i.display_description));
    }
    if mv.at_least(2, 26) {
        m.insert("tags".into(), json!(x.tags.get(&i.uuid).cloned().unwrap_or_default()));
    }
    if mv.at_least(2, 63) {
        m.insert("trusted_image_certificates".into(), Value::Null);
    }
    if mv.at_least(2, 71) && show {
        let groups: Vec<String> = serde_json::from_str::<Value>(&i.request_spec)
            .ok()
            .and_then(|v| v["group"].as_str().map(|g| vec![g.to_string()]))
            .unwrap_or_default();
        m.insert("server_groups".into(), json!(groups));
    }
    if mv.at_least(2, 73) {
        m.insert("locked_reason".into(), json!(i.locked_reason));
    }
    if mv.at_least(2, 96) {
        let pinned: Value = serde_json::from_str::<Value>(&i.request_spec)
            .ok()
            .map(|v| v["availability_zone"].clone())
            .unwrap_or(Value::Null);
        m.insert("pinned_availability_zone".into(), pinned);
    }
    Value::Object(m)
}

/// Nova's `addresses`: the fixed IPs of the server's ports, each followed by its floating IPs.
fn addresses(i: &Instance, x: &Extras) -> Value {
    let vifs = crate::network::vifs_of(&i.system_metadata);
    let mut a = crate::network::addresses(&vifs);
    super::floating_ips::with_floating(&mut a, &vifs, &x.floating_ips, true);
    a
}

pub fn instance_name(uuid: &str) -> String {
    format!("instance-{}", &uuid.replace('-', "")[..8.min(uuid.len())])
}

// ---------------------------------------------------------------- list

const SORT_KEYS: &[&str] = &[
    "access_ip_v4",
    "access_ip_v6",
    "auto_disk_config",
    "availability_zone",
    "config_drive",
    "created_at",
    "display_description",
    "display_name",
    "host",
    "hostname",
    "image_ref",
    "instance_type_id",
    "kernel_id",
    "key_name",
    "launch_index",
    "launched_at",
    "locked",
    "locked_by",
    "node",
    "power_state",
    "progress",
    "project_id",
    "ramdisk_id",
    "root_device_name",
    "task_state",
    "terminated_at",
    "updated_at",
    "user_id",
    "uuid",
    "vm_state",
];

fn parse_time(param: &str, v: &str) -> Result<i64> {
    stratus_core::time::parse(v)
        .or_else(|| chrono::NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M:%S%.f").ok().map(|n| n.and_utc()))
        .map(|t| t.timestamp_micros())
        .ok_or_else(|| c::invalid_query(param, v, &format!("'{v}' is not a 'date-time'")))
}

async fn list_inner(
    svc: &ComputeService,
    ctx: &AuthContext,
    mv: Microversion,
    q: &RawQuery,
    detail: bool,
) -> Result<Response> {
    let project = project_of(ctx)?.to_string();
    let rule = if detail { "os_compute_api:servers:detail" } else { "os_compute_api:servers:index" };
    authorize(svc, ctx, rule, &project_target(&project))?;
    let admin = is_admin(svc, ctx);
    let mut f = instances::ListFilter::default();
    let all_tenants = q.get("all_tenants").map(|v| v.is_empty() || c::bool_word(v) != Some(false)).unwrap_or(false);
    if all_tenants {
        authorize(svc, ctx, &format!("{rule}:get_all_tenants"), &project_target(&project))?;
    }
    if !(admin && all_tenants) {
        f.project_id = Some(project.clone());
    }
    // Nova ignores a project filter unless all_tenants is given too
    if admin
        && all_tenants
        && let Some(p) = q.get("project_id").or_else(|| q.get("tenant_id"))
    {
        f.project_id = Some(p.to_string());
    }
    if let Some(v) = q.get("changes-since") {
        f.changes_since = Some(parse_time("changes-since", v)?);
    }
    if mv.at_least(2, 66)
        && let Some(v) = q.get("changes-before")
    {
        f.changes_before = Some(parse_time("changes-before", v)?);
        if let (Some(a), Some(b)) = (f.changes_since, f.changes_before)
            && a > b
        {
            return Err(bad(format!(
                "The value of changes-since must be less than or equal to changes-before. Given changes-since: {} and changes-before: {}",
                q.get("changes-since").unwrap_or(""),
                q.get("changes-before").unwrap_or("")
            )));
        }
    }
    if let Some(v) = q.get("deleted")
        && admin
    {
        f.deleted = c::bool_word(v);
    }
    if let Some(s) = q.get("status") {
        match model::vm_states_of_status(s) {
            Some((vms, tasks)) => {
                f.vm_states = Some(vms.to_vec());
                f.task_states = tasks.map(<[&str]>::to_vec);
                if s.eq_ignore_ascii_case("DELETED") {
                    if !admin {
                        return ok_list(svc, mv, q, detail, ctx, Vec::new(), 0).await;
                    }
                    f.deleted = Some(true);
                }
            }
            None if mv.at_least(2, 38) => return Err(bad("Invalid status value".to_string())),
            // older microversions answer an unknown status with nothing
            None => return ok_list(svc, mv, q, detail, ctx, Vec::new(), 0).await,
        }
    }
    if let Some(v) = q.get("flavor") {
        f.flavor_id = Some(v.rsplit('/').next().unwrap_or(v).to_string());
    }
    if let Some(v) = q.get("image") {
        f.image_ref = Some(v.rsplit('/').next().unwrap_or(v).to_string());
    }
    if let Some(v) = q.get("reservation_id") {
        f.reservation_id = Some(v.to_string());
    }
    if admin {
        if let Some(v) = q.get("host") {
            f.host = Some(v.to_string());
        }
        if let Some(v) = q.get("node") {
            f.node = Some(v.to_string());
        }
        if let Some(v) = q.get("availability_zone") {
            f.availability_zone = Some(v.to_string());
        }
        if let Some(v) = q.get("user_id") {
            f.user_id = Some(v.to_string());
        }
    }
    if mv.at_least(2, 73)
        && let Some(v) = q.get("locked")
    {
        f.locked = Some(c::bool_word(v).ok_or_else(|| c::invalid_query("locked", v, "Unrecognized value"))?);
    }
    let mut rows = instances::list(&svc.db, &f).await?;
    if let Some(pat) = q.get("name") {
        let re = regex::RegexBuilder::new(pat).size_limit(1 << 20).build().ok();
        rows.retain(|i| match &re {
            Some(r) => r.is_match(&i.display_name),
            None => i.display_name.contains(pat),
        });
    }
    if let Some(v) = q.get("ip").or_else(|| q.get("ip6")) {
        // Nova matches the pattern as a regular expression against each fixed address
        let re = regex::RegexBuilder::new(v).size_limit(1 << 20).build().ok();
        rows.retain(|i| {
            crate::network::vifs_of(&i.system_metadata).iter().flat_map(|f| f.ips.iter()).any(|(ip, _)| match &re {
                Some(r) => r.is_match(ip),
                None => ip.contains(v),
            })
        });
    }
    if mv.at_least(2, 26) {
        let uuids: Vec<String> = rows.iter().map(|i| i.uuid.clone()).collect();
        let tags = instances::tags(&svc.db, &uuids).await?;
        let split = |k: &str| q.get(k).map(|v| v.split(',').map(str::to_string).collect::<BTreeSet<String>>());
        let (all, any, not_all, not_any) = (split("tags"), split("tags-any"), split("not-tags"), split("not-tags-any"));
        rows.retain(|i| {
            let have: BTreeSet<String> = tags.get(&i.uuid).cloned().unwrap_or_default().into_iter().collect();
            all.as_ref().is_none_or(|t| t.is_subset(&have))
                && any.as_ref().is_none_or(|t| !t.is_disjoint(&have))
                && not_all.as_ref().is_none_or(|t| !t.is_subset(&have))
                && not_any.as_ref().is_none_or(|t| t.is_disjoint(&have))
        });
    }
    // sorting: several sort_key/sort_dir pairs; default created_at desc, then id
    let keys: Vec<String> = q.0.iter().filter(|(k, _)| k == "sort_key").map(|(_, v)| v.clone()).collect();
    let dirs: Vec<String> = q.0.iter().filter(|(k, _)| k == "sort_dir").map(|(_, v)| v.clone()).collect();
    for k in &keys {
        if !SORT_KEYS.contains(&k.as_str()) {
            return Err(c::invalid_query(
                "sort_key",
                k,
                &format!("'{k}' is not one of {}", py_repr(&json!(SORT_KEYS))),
            ));
        }
    }
    for d in &dirs {
        if d != "asc" && d != "desc" {
            return Err(c::invalid_query("sort_dir", d, &format!("'{d}' is not one of ['asc', 'desc']")));
        }
    }
    if !keys.is_empty() {
        rows.sort_by(|a, b| {
            for (n, k) in keys.iter().enumerate() {
                let desc = dirs.get(n).or(dirs.last()).map(|d| d == "desc").unwrap_or(true);
                let o = sort_value(a, k).cmp(&sort_value(b, k));
                let o = if desc { o.reverse() } else { o };
                if o != std::cmp::Ordering::Equal {
                    return o;
                }
            }
            b.created_at.cmp(&a.created_at).then_with(|| b.uuid.cmp(&a.uuid))
        });
    }
    let (limit, marker) = c::limit_marker(q)?;
    let start = match &marker {
        Some(m) => rows
            .iter()
            .position(|i| &i.uuid == m)
            .map(|p| p + 1)
            .ok_or_else(|| bad(format!("marker [{m}] not found")))?,
        None => 0,
    };
    let page: Vec<Instance> = rows.into_iter().skip(start).take(limit).collect();
    let explicit_limit = q.get("limit").is_some();
    ok_list(svc, mv, q, detail, ctx, page, if explicit_limit { limit } else { 0 }).await
}

fn sort_value(i: &Instance, key: &str) -> String {
    let o = |v: &Option<String>| v.clone().unwrap_or_default();
    match key {
        "display_name" => i.display_name.clone(),
        "created_at" => format!("{:020}", i.created_at),
        "updated_at" => format!("{:020}", i.updated_at),
        "launched_at" => format!("{:020}", i.launched_at.unwrap_or(0)),
        "terminated_at" => format!("{:020}", i.terminated_at.unwrap_or(0)),
        "vm_state" => i.vm_state.clone(),
        "task_state" => o(&i.task_state),
        "power_state" => format!("{:04}", i.power_state),
        "host" => o(&i.host),
        "node" => o(&i.node),
        "hostname" => i.hostname.clone(),
        "uuid" => i.uuid.clone(),
        "project_id" => i.project_id.clone(),
        "user_id" => i.user_id.clone(),
        "image_ref" => i.image_ref.clone(),
        "key_name" => o(&i.key_name),
        "availability_zone" => o(&i.availability_zone),
        "display_description" => o(&i.display_description),
        "launch_index" => format!("{:010}", i.launch_index),
        "locked" => i.locked.to_string(),
        "progress" => format!("{:04}", i.progress),
        "instance_type_id" => i.flavor_id.clone(),
        "access_ip_v4" => o(&i.access_ip_v4),
        "access_ip_v6" => o(&i.access_ip_v6),
        "config_drive" => i.config_drive.to_string(),
        _ => String::new(),
    }
}

async fn ok_list(
    svc: &ComputeService,
    mv: Microversion,
    q: &RawQuery,
    detail: bool,
    ctx: &AuthContext,
    page: Vec<Instance>,
    limit: usize,
) -> Result<Response> {
    let x = if detail { extras(svc, &page).await? } else { Extras::default() };
    let items: Vec<Value> =
        page.iter().map(|i| if detail { view(svc, ctx, mv, i, &x, false) } else { brief(svc, i) }).collect();
    let mut body = json!({"servers": items});
    let collection = if detail { "servers/detail" } else { "servers" };
    let next = c::next_links(svc, collection, q, page.len(), limit, page.last().map(|i| i.uuid.as_str()));
    if !next.is_empty() {
        body["servers_links"] = json!(next);
    }
    Ok(ok(body))
}

async fn list(S(svc): S<State>, Auth(ctx): Auth, mv: Microversion, q: RawQuery) -> Result<Response> {
    list_inner(&svc, &ctx, mv, &q, false).await
}

async fn detail(S(svc): S<State>, Auth(ctx): Auth, mv: Microversion, q: RawQuery) -> Result<Response> {
    list_inner(&svc, &ctx, mv, &q, true).await
}

async fn show(S(svc): S<State>, Auth(ctx): Auth, mv: Microversion, Path(id): Path<String>) -> Result<Response> {
    let inst = visible(&svc, &ctx, &id).await?;
    authorize(&svc, &ctx, "os_compute_api:servers:show", &project_target(&inst.project_id))?;
    let x = extras(&svc, std::slice::from_ref(&inst)).await?;
    Ok(ok(json!({"server": view(&svc, &ctx, mv, &inst, &x, true)})))
}

// ---------------------------------------------------------------- update

async fn update(
    S(svc): S<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response> {
    let inst = visible(&svc, &ctx, &id).await?;
    authorize(&svc, &ctx, "os_compute_api:servers:update", &project_target(&inst.project_id))?;
    let s = c::the_object(&body, "server")?;
    let mut allowed = vec!["name", "accessIPv4", "accessIPv6", "OS-DCF:diskConfig"];
    if mv.at_least(2, 19) {
        allowed.push("description");
    }
    if mv.at_least(2, 90) {
        allowed.push("hostname");
    }
    c::no_extra(s, Some("server"), &allowed)?;
    let mut ch = Change::default();
    if let Some(v) = s.get("name") {
        ch.display_name = Some(c::name("name", v)?);
    }
    if let Some(v) = s.get("description") {
        ch.display_description = Some(c::description("description", v, 255)?);
    }
    if let Some(v) = s.get("accessIPv4") {
        ch.access_ip_v4 = Some(Some(ip("accessIPv4", v, false)?));
    }
    if let Some(v) = s.get("accessIPv6") {
        ch.access_ip_v6 = Some(Some(ip("accessIPv6", v, true)?));
    }
    if let Some(v) = s.get("hostname") {
        ch.hostname = Some(hostname_value("hostname", v)?);
    }
    if let Some(v) = s.get("OS-DCF:diskConfig") {
        ch.system_metadata = Some(system_metadata_with_disk_config(&inst, parse_disk_config(v)?));
    }
    instances::update(&svc.db, &id, &Expect::live(), ch).await?;
    let inst = visible(&svc, &ctx, &id).await?;
    let x = extras(&svc, std::slice::from_ref(&inst)).await?;
    let mut v = view(&svc, &ctx, mv, &inst, &x, true);
    trim_before_275(mv, &mut v);
    Ok(ok(json!({ "server": v })))
}

pub fn ip(field: &str, v: &Value, v6: bool) -> Result<String> {
    let s = v.as_str().ok_or_else(|| invalid(field, v, &format!("{} is not of type 'string'", py_repr(v))))?;
    if s.is_empty() {
        return Ok(String::new());
    }
    // stored canonical, as Nova's IPAddress field does (RFC 5952 for IPv6)
    let canonical = if v6 {
        s.parse::<std::net::Ipv6Addr>().ok().map(|a| a.to_string())
    } else {
        s.parse::<std::net::Ipv4Addr>().ok().map(|a| a.to_string())
    };
    canonical.ok_or_else(|| {
        let kind = if v6 { "ipv6" } else { "ipv4" };
        invalid(field, v, &format!("{} is not a '{kind}'", py_repr(v)))
    })
}

/// Before 2.75 the update and rebuild answers are a shorter view than show:
/// no zone, config drive, key, usage, extended status, volumes, extended
/// attributes, host status, server groups or lock reason.
pub fn trim_before_275(mv: Microversion, v: &mut Value) {
    if mv.at_least(2, 75) {
        return;
    }
    if let Some(m) = v.as_object_mut() {
        for k in [
            "OS-EXT-AZ:availability_zone",
            "config_drive",
            "key_name",
            "OS-SRV-USG:launched_at",
            "OS-SRV-USG:terminated_at",
            "OS-EXT-STS:task_state",
            "OS-EXT-STS:vm_state",
            "OS-EXT-STS:power_state",
            "os-extended-volumes:volumes_attached",
            "OS-EXT-SRV-ATTR:host",
            "OS-EXT-SRV-ATTR:hypervisor_hostname",
            "OS-EXT-SRV-ATTR:instance_name",
            "OS-EXT-SRV-ATTR:reservation_id",
            "OS-EXT-SRV-ATTR:launch_index",
            "OS-EXT-SRV-ATTR:hostname",
            "OS-EXT-SRV-ATTR:kernel_id",
            "OS-EXT-SRV-ATTR:ramdisk_id",
            "OS-EXT-SRV-ATTR:root_device_name",
            "OS-EXT-SRV-ATTR:user_data",
            "host_status",
            "server_groups",
            "locked_reason",
            "security_groups",
        ] {
            m.remove(k);
        }
    }
}

/// `OS-DCF:diskConfig` of a server: `AUTO` when `auto_disk_config` is set
/// in its system metadata, else `MANUAL`.
pub fn disk_config(i: &Instance) -> &'static str {
    let sys: Value = serde_json::from_str(&i.system_metadata).unwrap_or(Value::Null);
    if sys["auto_disk_config"].as_bool().unwrap_or(false) { "AUTO" } else { "MANUAL" }
}

/// Validate an `OS-DCF:diskConfig` value: `true` for AUTO.
pub fn parse_disk_config(v: &Value) -> Result<bool> {
    c::one_of("OS-DCF:diskConfig", v, &["AUTO", "MANUAL"])?;
    Ok(v.as_str() == Some("AUTO"))
}

/// The server's system metadata (JSON) with `auto_disk_config` set.
pub fn system_metadata_with_disk_config(i: &Instance, auto: bool) -> String {
    let mut sys: Map<String, Value> = serde_json::from_str(&i.system_metadata).unwrap_or_default();
    sys.insert("auto_disk_config".into(), json!(auto));
    Value::Object(sys).to_string()
}

fn hostname_value(field: &str, v: &Value) -> Result<String> {
    let s = c::string(field, v, 2, 63)?;
    let okay = s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && !s.starts_with('-')
        && !s.ends_with('-')
        && !s.starts_with('.');
    if !okay {
        return Err(invalid(
            field,
            v,
            &format!("{} does not match '^[a-zA-Z0-9]+[a-zA-Z0-9-]*[a-zA-Z0-9]+$'", py_repr(v)),
        ));
    }
    Ok(s.to_string())
}

/// A server name as a hostname (Nova's `sanitize_hostname`).
pub fn sanitize_hostname(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|ch| if ch == ' ' || ch == '_' { '-' } else { ch })
        .filter(|ch| ch.is_ascii_alphanumeric() || *ch == '-' || *ch == '.')
        .collect::<String>()
        .to_ascii_lowercase();
    out = out.trim_matches(|ch| ch == '-' || ch == '.').to_string();
    out.truncate(63);
    if out.is_empty() { "server".into() } else { out }
}

// ---------------------------------------------------------------- delete

async fn delete(S(svc): S<State>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Response> {
    let inst = visible(&svc, &ctx, &id).await?;
    authorize(&svc, &ctx, "os_compute_api:servers:delete", &project_target(&inst.project_id))?;
    delete_server(&svc, &ctx, &inst, "delete").await?;
    Ok(no_content())
}

/// Delete a server: through its host when the host is up (it removes the
/// guest, the claims and the record); here when it has no host or the host is down.
pub async fn delete_server(svc: &ComputeService, ctx: &AuthContext, inst: &Instance, action: &str) -> Result<()> {
    if inst.locked && !is_admin(svc, ctx) {
        return Err(conflict(format!("Instance {} is locked", inst.uuid)));
    }
    if inst.task_state.as_deref() == Some(task::DELETING) {
        return Ok(());
    }
    let rid = stratus_core::http::current_request_id();
    let marked = instances::update(
        &svc.db,
        &inst.uuid,
        &Expect::live(),
        Change { task_state: Some(Some(task::DELETING)), ..Default::default() },
    )
    .await?;
    if !marked {
        return Ok(());
    }
    instances::start_action(&svc.db.write, &inst.uuid, action, &rid, Some(&ctx.user_id), ctx.project_id.as_deref())
        .await?;
    let host_up = match &inst.host {
        Some(h) => services::get_by_host_binary(&svc.db, h, crate::manager::BINARY)
            .await?
            .is_some_and(|s| services::is_up(&s, svc.cfg.compute.service_down_time)),
        None => false,
    };
    let deps = svc.deps()?;
    if host_up && inst.vm_state != vm::BUILDING {
        let host = inst.host.clone().unwrap_or_default();
        deps.bus
            .cast(
                &format!("{}.actions", rpc::compute_topic(&host)),
                &rpc::InstanceAction {
                    instance_uuid: inst.uuid.clone(),
                    action: rpc::Action::Terminate,
                    action_request_id: rid.clone(),
                },
                &rid,
            )
            .await
            .map_err(|e| anyhow::anyhow!("bus: {e}"))?;
        return Ok(());
    }
    // local delete: nothing runs (a build in flight sees the server gone and stops)
    if let Some(h) = &inst.host
        && host_up
    {
        let _: std::result::Result<(), _> = deps
            .bus
            .call(
                &format!("{}.destroy", rpc::compute_topic(h)),
                &rpc::DestroyGuest { instance_uuid: inst.uuid.clone() },
                &rid,
                std::time::Duration::from_secs(10),
            )
            .await;
    }
    if let Some(net) = &deps.network {
        net.deallocate(&inst.uuid, &crate::network::preserved(&inst.system_metadata))
            .await
            .map_err(ComputeError::Internal)?;
    }
    if let Some(vols) = &deps.volumes {
        vols.release_instance(&svc.db, &inst.uuid).await.map_err(ComputeError::Internal)?;
    }
    deps.placement.release(&inst.uuid).await.map_err(ComputeError::Internal)?;
    instances::update(
        &svc.db,
        &inst.uuid,
        &Expect::live(),
        Change {
            vm_state: Some(vm::DELETED),
            task_state: Some(None),
            power_state: Some(0),
            terminated_at: Some(Some(instances::now())),
            deleted: Some(true),
            ..Default::default()
        },
    )
    .await?;
    store::server_groups::remove_member(&svc.db, &inst.uuid).await?;
    instances::finish_event(&svc.db, &inst.uuid, &rid, "api_delete", None).await.ok();
    Ok(())
}

// ---------------------------------------------------------------- create

const CREATE_KEYS: &[&str] = &[
    "name",
    "imageRef",
    "flavorRef",
    "adminPass",
    "metadata",
    "networks",
    "OS-DCF:diskConfig",
    "accessIPv4",
    "accessIPv6",
    "personality",
    "config_drive",
    "key_name",
    "user_data",
    "availability_zone",
    "security_groups",
    "block_device_mapping",
    "block_device_mapping_v2",
    "min_count",
    "max_count",
    "return_reservation_id",
    "description",
    "tags",
    "trusted_image_certificates",
    "host",
    "hypervisor_hostname",
    "hostname",
];

/// The id at the end of a reference that may be a URL.
fn id_of(r: &str) -> String {
    r.trim_end_matches('/').rsplit('/').next().unwrap_or(r).to_string()
}

fn count(field: &str, v: Option<&Value>) -> Result<Option<i64>> {
    match v {
        None => Ok(None),
        Some(v) => c::integer(field, v, 1, i64::from(i32::MAX), false).map(Some),
    }
}

/// Nova's `metadata` schema: keys of 1-255 characters, string values of up to 255.
pub(crate) fn string_map(field: &str, v: &Value) -> Result<Map<String, Value>> {
    let o = c::object(v, Some(field))?;
    for (k, val) in o {
        if k.is_empty() || k.chars().count() > 255 {
            return Err(invalid(
                field,
                v,
                &format!("'{k}' does not match any of the regexes: '^[a-zA-Z0-9-_:. ]{{1,255}}$'"),
            ));
        }
        match val.as_str() {
            Some(s) if s.chars().count() <= 255 => {}
            Some(_) => return Err(invalid(&format!("{field}/{k}"), val, &format!("{} is too long", py_repr(val)))),
            None => {
                return Err(invalid(
                    &format!("{field}/{k}"),
                    val,
                    &format!("{} is not of type 'string'", py_repr(val)),
                ));
            }
        }
    }
    Ok(o.clone())
}

struct Parsed {
    name: String,
    image_id: String,
    flavor_ref: String,
    min: i64,
    max: i64,
    metadata: Map<String, Value>,
    user_data: Option<String>,
    key_name: Option<String>,
    az: Option<String>,
    forced_host: Option<String>,
    forced_node: Option<String>,
    description: Option<String>,
    tags: Vec<String>,
    config_drive: bool,
    access_v4: Option<String>,
    access_v6: Option<String>,
    admin_pass: Option<String>,
    hostname: Option<String>,
    return_reservation_id: bool,
    networks: Value,
    security_groups: Vec<String>,
    bdms: Vec<Value>,
    auto_disk_config: bool,
}

fn parse_create(mv: Microversion, body: &Value) -> Result<Parsed> {
    // beside `server`, only the scheduler hints (read by the caller)
    let top = c::object(body, None)?;
    let s = c::required(top, None, "server")?;
    c::no_extra(top, None, &["server", "os:scheduler_hints", "OS-SCH-HNT:scheduler_hints"])?;
    let s = c::object(s, Some("server"))?;
    c::no_extra(s, Some("server"), CREATE_KEYS)?;
    let name = c::name("name", c::required(s, Some("server"), "name")?)?;
    let flavor_ref = match c::required(s, Some("server"), "flavorRef")? {
        Value::String(f) if !f.is_empty() => f.clone(),
        Value::Number(n) => n.to_string(),
        other => {
            return Err(invalid("flavorRef", other, &format!("{} is not of type 'string', 'integer'", py_repr(other))));
        }
    };
    let bdms: Vec<Value> = match s.get("block_device_mapping_v2") {
        None => Vec::new(),
        Some(Value::Array(a)) => a.clone(),
        Some(other) => {
            return Err(invalid(
                "block_device_mapping_v2",
                other,
                &format!("{} is not of type 'array'", py_repr(other)),
            ));
        }
    };
    let image_id = match s.get("imageRef") {
        Some(Value::String(r)) if !r.is_empty() => {
            let id = id_of(r);
            if !c::is_uuid_like(&id) {
                return Err(bad("Invalid imageRef provided."));
            }
            id
        }
        Some(Value::String(_)) | None => {
            // boot from an image named in the block device mapping, or refuse
            let from_image = bdms.iter().find(|b| {
                b["source_type"] == "image"
                    && b["boot_index"].as_i64().or_else(|| b["boot_index"].as_str().and_then(|s| s.parse().ok()))
                        == Some(0)
            });
            match from_image.and_then(|b| b["uuid"].as_str()) {
                Some(u) if b_is_local(from_image) => u.to_string(),
                // volume-backed: the boot volume is checked with the other volumes (no image)
                _ if bdms.iter().any(|b| is_volume_bdm(b) && bdm_boot_index(b) == Some(0)) => String::new(),
                _ if bdms.iter().any(|b| b["destination_type"] == "volume") => {
                    return Err(bad(
                        "Booting from volume is not supported yet: block storage comes with its own service.",
                    ));
                }
                _ => return Err(bad("Missing imageRef attribute")),
            }
        }
        Some(other) => return Err(invalid("imageRef", other, &format!("{} is not of type 'string'", py_repr(other)))),
    };
    let min = count("min_count", s.get("min_count"))?.unwrap_or(1);
    let max = count("max_count", s.get("max_count"))?.unwrap_or(min);
    if min > max {
        return Err(bad("min_count must be <= max_count"));
    }
    let metadata = match s.get("metadata") {
        Some(v) => string_map("metadata", v)?,
        None => Map::new(),
    };
    let user_data = match s.get("user_data") {
        None | Some(Value::Null) => None,
        Some(Value::String(u)) => {
            if u.len() > 65535 || base64::engine::general_purpose::STANDARD.decode(u.trim()).is_err() {
                return Err(bad("User data needs to be valid base 64."));
            }
            Some(u.clone())
        }
        Some(other) => return Err(invalid("user_data", other, &format!("{} is not of type 'string'", py_repr(other)))),
    };
    let key_name = match s.get("key_name") {
        None | Some(Value::Null) => None,
        Some(v) => Some(c::string("key_name", v, 1, 255)?.to_string()),
    };
    let (mut az, mut forced_host, mut forced_node) = (None, None, None);
    if let Some(v) = s.get("availability_zone") {
        let text = c::string("availability_zone", v, 1, 255)?;
        let mut parts = text.splitn(3, ':');
        let zone = parts.next().unwrap_or_default();
        az = (!zone.is_empty()).then(|| zone.to_string());
        forced_host = parts.next().filter(|h| !h.is_empty()).map(str::to_string);
        forced_node = parts.next().filter(|n| !n.is_empty()).map(str::to_string);
    }
    if mv.at_least(2, 74) {
        if let Some(v) = s.get("host") {
            forced_host = Some(c::fqdn("host", v)?);
        }
        if let Some(v) = s.get("hypervisor_hostname") {
            forced_node = Some(c::fqdn("hypervisor_hostname", v)?);
        }
    } else if s.contains_key("host") || s.contains_key("hypervisor_hostname") {
        return Err(bad("Additional properties are not allowed ('host' was unexpected)"));
    }
    let description = match s.get("description") {
        Some(v) if mv.at_least(2, 19) => c::description("description", v, 255)?,
        Some(_) => return Err(bad("Additional properties are not allowed ('description' was unexpected)")),
        None => None,
    };
    let tags = match s.get("tags") {
        Some(v) if mv.at_least(2, 52) => crate::api::server_meta::parse_tags("tags", v)?,
        Some(_) => return Err(bad("Additional properties are not allowed ('tags' was unexpected)")),
        None => Vec::new(),
    };
    let config_drive = match s.get("config_drive") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::String(t)) => c::bool_word(t).unwrap_or(false),
        Some(other) => {
            return Err(invalid(
                "config_drive",
                other,
                &format!("{} is not of type 'boolean', 'string', 'null'", py_repr(other)),
            ));
        }
    };
    let access_v4 = s.get("accessIPv4").map(|v| ip("accessIPv4", v, false)).transpose()?;
    let access_v6 = s.get("accessIPv6").map(|v| ip("accessIPv6", v, true)).transpose()?;
    let admin_pass = s.get("adminPass").map(|v| c::string("adminPass", v, 0, 255).map(str::to_string)).transpose()?;
    let hostname = match s.get("hostname") {
        Some(v) if mv.at_least(2, 90) => Some(hostname_value("hostname", v)?),
        Some(_) => return Err(bad("Additional properties are not allowed ('hostname' was unexpected)")),
        None => None,
    };
    if s.contains_key("personality") && mv.at_least(2, 57) {
        return Err(bad("Additional properties are not allowed ('personality' was unexpected)"));
    }
    let networks = match s.get("networks") {
        None if mv.at_least(2, 37) => {
            return Err(bad(
                "Invalid input for field/attribute server. Value: networks. 'networks' is a required property",
            ));
        }
        None => json!("auto"),
        Some(Value::String(w)) if mv.at_least(2, 37) && (w == "auto" || w == "none") => json!(w),
        Some(Value::Array(a)) => {
            for n in a {
                let o = c::object(n, Some("networks"))?;
                c::no_extra(o, Some("networks"), &["uuid", "port", "fixed_ip", "tag"])?;
                if let Some(u) = o.get("uuid").and_then(Value::as_str)
                    && !c::is_uuid_like(u)
                    && u != "auto"
                {
                    return Err(bad(format!("Bad networks format: network uuid is not in proper format ({u})")));
                }
            }
            Value::Array(a.clone())
        }
        Some(other) => {
            return Err(invalid(
                "networks",
                other,
                &format!("{} is not valid under any of the given schemas", py_repr(other)),
            ));
        }
    };
    let security_groups = match s.get("security_groups") {
        None => Vec::new(),
        Some(Value::Array(a)) => a.iter().filter_map(|g| g["name"].as_str().map(str::to_string)).collect(),
        Some(other) => {
            return Err(invalid("security_groups", other, &format!("{} is not of type 'array'", py_repr(other))));
        }
    };
    let return_reservation_id = match s.get("return_reservation_id") {
        None => false,
        Some(v) => c::boolean("return_reservation_id", v)?,
    };
    let auto_disk_config = s.get("OS-DCF:diskConfig").map(parse_disk_config).transpose()?.unwrap_or(false);
    Ok(Parsed {
        auto_disk_config,
        name,
        image_id,
        flavor_ref,
        min,
        max,
        metadata,
        user_data,
        key_name,
        az,
        forced_host,
        forced_node,
        description,
        tags,
        config_drive,
        access_v4,
        access_v6,
        admin_pass,
        hostname,
        return_reservation_id,
        networks,
        security_groups,
        bdms,
    })
}

/// The boot index of a block device mapping (an integer or its string; none: not bootable).
fn bdm_boot_index(b: &Value) -> Option<i64> {
    b["boot_index"].as_i64().or_else(|| b["boot_index"].as_str().and_then(|s| s.parse().ok()))
}

/// A mapping that is a volume (`destination_type` volume, or a volume source without one).
fn is_volume_bdm(b: &Value) -> bool {
    b["destination_type"] == "volume" || (b["source_type"] == "volume" && b.get("destination_type").is_none())
}

/// A volume a create asks for (Nova's block_device_mapping_v2 entry with
/// destination `volume`).
#[derive(Clone, Debug)]
struct VolumeBdm {
    source_type: String,
    uuid: Option<String>,
    volume_size: Option<i64>,
    boot_index: Option<i64>,
    delete_on_termination: bool,
    device_name: Option<String>,
    tag: Option<String>,
}

/// The volume entries of a create's block_device_mapping_v2, checked as Nova does.
fn volume_bdms(mv: Microversion, bdms: &[Value]) -> Result<Vec<VolumeBdm>> {
    let mut out = Vec::new();
    for b in bdms {
        let o = c::object(b, Some("block_device_mapping_v2"))?;
        // Nova's schema: the destination is local or a volume, whatever the source
        if let Some(d) = o.get("destination_type") {
            c::one_of("destination_type", d, &["local", "volume"])?;
        }
        if !is_volume_bdm(b) {
            continue;
        }
        let source_type = match o.get("source_type").and_then(Value::as_str) {
            Some(t @ ("image" | "volume" | "blank")) => t.to_string(),
            Some("snapshot") => {
                return Err(bad("Block Device Mapping is Invalid: booting from a volume snapshot is not supported."));
            }
            Some(other) => {
                return Err(invalid(
                    "source_type",
                    &json!(other),
                    &format!("'{other}' is not one of ['volume', 'image', 'snapshot', 'blank']"),
                ));
            }
            None => return Err(bad("Block Device Mapping is Invalid: source_type is required.")),
        };
        let uuid = match o.get("uuid") {
            None | Some(Value::Null) => None,
            Some(Value::String(u)) if c::is_uuid_like(u) => Some(u.clone()),
            Some(other) => {
                return Err(bad(format!("Block Device Mapping is Invalid: invalid uuid {}.", py_repr(other))));
            }
        };
        if source_type != "blank" && uuid.is_none() {
            return Err(bad(format!("Block Device Mapping is Invalid: a {source_type} source needs a uuid.")));
        }
        let volume_size = match o.get("volume_size") {
            None | Some(Value::Null) => None,
            Some(v) => Some(c::integer("volume_size", v, 0, i64::from(i32::MAX), false)?),
        };
        if source_type != "volume" && volume_size.unwrap_or(0) == 0 {
            return Err(bad(
                "Block Device Mapping is Invalid: Images with destination_type 'volume' need to have a non-zero size specified",
            ));
        }
        let boot_index = match o.get("boot_index") {
            None | Some(Value::Null) => None,
            Some(v) => Some(c::integer("boot_index", v, -1, i64::from(i32::MAX), true)?).filter(|i| *i >= 0),
        };
        let delete_on_termination = match o.get("delete_on_termination") {
            None | Some(Value::Null) => false,
            Some(v) => c::boolean("delete_on_termination", v)?,
        };
        let device_name = match o.get("device_name") {
            None | Some(Value::Null) => None,
            Some(v) => Some(c::string("device_name", v, 1, 255)?.to_string()),
        };
        let tag = match o.get("tag") {
            Some(v) if mv.at_least(2, 42) || mv.at_least(2, 32) && !mv.at_least(2, 33) => {
                Some(c::string("tag", v, 1, 60)?.to_string())
            }
            Some(_) => return Err(bad("Additional properties are not allowed ('tag' was unexpected)")),
            None => None,
        };
        out.push(VolumeBdm { source_type, uuid, volume_size, boot_index, delete_on_termination, device_name, tag });
    }
    if out.iter().filter(|b| b.boot_index == Some(0)).count() > 1 {
        return Err(bad(
            "Block Device Mapping is Invalid: Boot sequence for the instance and image/block device mapping combination is not valid.",
        ));
    }
    Ok(out)
}

/// The volumes a create asks for, checked with the caller's token; for a
/// volume-backed server, what stands for its image (the boot image, or the
/// boot volume's image metadata). A boot volume must be bootable only when
/// no image is given (with one, the image is the root, as Nova has it).
async fn check_volumes(
    svc: &ComputeService,
    ctx: &AuthContext,
    vols: &crate::volume::Volumes,
    bdms: &[VolumeBdm],
    volume_backed: bool,
) -> Result<Option<Value>> {
    let mut boot = None;
    for b in bdms {
        match (b.source_type.as_str(), &b.uuid) {
            ("volume", Some(id)) => {
                let vol = vols
                    .get(Some(&ctx.token), id)
                    .await
                    .map_err(|e| ComputeError::Internal(anyhow::anyhow!("{e}")))?
                    .ok_or_else(|| bad(format!("Block Device Mapping is Invalid: failed to get volume {id}.")))?;
                let status = vol["status"].as_str().unwrap_or_default();
                if status != "available" {
                    return Err(bad(format!(
                        "Invalid volume: volume '{id}' status must be 'available'. Currently in '{status}'"
                    )));
                }
                if b.boot_index == Some(0) && volume_backed {
                    // Nova's InvalidBDMVolumeNotBootable
                    if vol["bootable"] == "false" || vol["bootable"] == false {
                        return Err(bad(format!("Block Device {id} is not bootable.")));
                    }
                    let props = vol["volume_image_metadata"].as_object().cloned().unwrap_or_default();
                    let num = |k: &str| props.get(k).and_then(|v| v.as_str()?.parse::<i64>().ok()).unwrap_or(0);
                    let mut img = json!({"min_ram": num("min_ram"), "min_disk": 0, "size": 0});
                    for (k, v) in props {
                        if img.get(&k).is_none() {
                            img[k] = v;
                        }
                    }
                    boot = Some(img);
                }
            }
            ("image", Some(id)) => {
                let mut img = image_for(svc, ctx, id).await?;
                let min_disk = img["min_disk"].as_i64().unwrap_or(0);
                let size = b.volume_size.unwrap_or(0);
                if size < min_disk || size << 30 < img["size"].as_i64().unwrap_or(0) {
                    return Err(bad(format!(
                        "Volume is smaller than the minimum size specified in image metadata. Volume size is {} bytes, minimum size is {} bytes.",
                        size << 30,
                        (min_disk << 30).max(img["size"].as_i64().unwrap_or(0))
                    )));
                }
                if b.boot_index == Some(0) {
                    // the disk is the volume's, not the flavor's
                    img["min_disk"] = json!(0);
                    img["size"] = json!(0);
                    boot = Some(img);
                }
            }
            _ => {}
        }
    }
    Ok(boot)
}

fn b_is_local(b: Option<&Value>) -> bool {
    b.is_some_and(|b| b["destination_type"].as_str().is_none_or(|d| d == "local"))
}

/// The image as the caller may use it, from the image service.
async fn image_for(svc: &ComputeService, ctx: &AuthContext, id: &str) -> Result<Value> {
    let deps = svc.deps()?;
    let service = (deps.tokens)().await.ok();
    match deps.images.get(id, &ctx.token, service.as_deref()).await.map_err(ComputeError::Internal)? {
        stratus_clients::image::ImageLookup::Found(img) => {
            if img["status"] != "active" {
                return Err(bad(format!("Image {id} is not active.")));
            }
            Ok(img)
        }
        stratus_clients::image::ImageLookup::NotFound => Err(bad(format!("Image {id} could not be found."))),
    }
}

/// The image's custom properties (what the scheduler's image filter reads).
pub fn image_properties(img: &Value) -> Map<String, Value> {
    const CORE: &[&str] = &[
        "id",
        "name",
        "status",
        "visibility",
        "protected",
        "os_hidden",
        "owner",
        "checksum",
        "os_hash_algo",
        "os_hash_value",
        "size",
        "virtual_size",
        "disk_format",
        "container_format",
        "min_disk",
        "min_ram",
        "created_at",
        "updated_at",
        "tags",
        "self",
        "file",
        "schema",
        "locations",
        "direct_url",
        "stores",
    ];
    img.as_object()
        .map(|o| o.iter().filter(|(k, _)| !CORE.contains(&k.as_str())).map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

/// Zones servers can be placed in: the default zone and every aggregate's.
pub async fn zones(svc: &ComputeService) -> Result<BTreeSet<String>> {
    let mut z: BTreeSet<String> =
        store::aggregates::all(&svc.db).await?.into_iter().filter_map(|a| a.availability_zone).collect();
    z.insert(svc.cfg.compute.default_availability_zone.clone());
    Ok(z)
}

async fn create(S(svc): S<State>, Auth(ctx): Auth, mv: Microversion, Json(body): Json<Value>) -> Result<Response> {
    let project = project_of(&ctx)?.to_string();
    authorize(&svc, &ctx, "os_compute_api:servers:create", &project_target(&project))?;
    let p = parse_create(mv, &body)?;
    let vol_bdms = volume_bdms(mv, &p.bdms)?;
    let volume_backed = p.image_id.is_empty() && vol_bdms.iter().any(|b| b.boot_index == Some(0));
    let vols = svc.deps()?.volumes.clone();
    if !vol_bdms.is_empty() && vols.is_none() {
        return Err(bad("Booting from volume is not supported yet: block storage comes with its own service."));
    }
    if p.max > 1 && vol_bdms.iter().any(|b| b.source_type == "volume") {
        return Err(bad("Cannot attach one or more volumes to multiple instances"));
    }
    let hints = match body.get("os:scheduler_hints").or_else(|| body.get("OS-SCH-HNT:scheduler_hints")) {
        None => Map::new(),
        Some(v) => c::object(v, Some("os:scheduler_hints"))?.clone(),
    };
    if p.forced_host.is_some() || p.forced_node.is_some() {
        let rule = if mv.at_least(2, 74) && body["server"].get("host").is_some() {
            "os_compute_api:servers:create:requested_destination"
        } else {
            "os_compute_api:servers:create:forced_host"
        };
        authorize(&svc, &ctx, rule, &project_target(&project))?;
        if let Some(h) = &p.forced_host
            && services::get_by_host_binary(&svc.db, h, crate::manager::BINARY).await?.is_none()
        {
            return Err(bad(format!("Compute host {h} could not be found.")));
        }
    }
    let flavor_id = id_of(&p.flavor_ref);
    let flavor = flavors::get_by_flavorid(&svc.db, &flavor_id)
        .await?
        .ok_or_else(|| bad(format!("Flavor {flavor_id} could not be found.")))?;
    if flavor.disabled || !flavors::project_can_use(&svc.db, &flavor, &project).await? {
        return Err(bad(format!("Flavor {flavor_id} could not be found.")));
    }
    if let Some(az) = &p.az
        && !zones(&svc).await?.contains(az)
    {
        return Err(bad("The requested availability zone is not available".to_string()));
    }
    let key = match &p.key_name {
        Some(k) => Some(
            store::keypairs::get(&svc.db, &ctx.user_id, k)
                .await?
                .ok_or_else(|| bad("Invalid key_name provided.".to_string()))?,
        ),
        None => None,
    };
    let group = match hints.get("group") {
        Some(g) => {
            let g = g.as_str().ok_or_else(|| invalid("group", g, "is not of type 'string'"))?;
            let grp = store::server_groups::get(&svc.db, g)
                .await?
                .ok_or_else(|| bad(format!("Instance group {g} could not be found.")))?;
            Some(grp)
        }
        None => None,
    };
    let boot = match &vols {
        Some(v) if !vol_bdms.is_empty() => check_volumes(&svc, &ctx, v, &vol_bdms, volume_backed).await?,
        _ => None,
    };
    let img = match boot {
        Some(b) if volume_backed => b,
        _ => image_for(&svc, &ctx, &p.image_id).await?,
    };
    let min_ram = img["min_ram"].as_i64().unwrap_or(0);
    let min_disk = img["min_disk"].as_i64().unwrap_or(0);
    if min_ram > flavor.memory_mb {
        return Err(bad("Flavor's memory is too small for requested image."));
    }
    if volume_backed {
        // the root disk is the volume: nothing of the flavor's disk to check
    } else if flavor.root_gb == 0 {
        if !svc.policy.allowed(&ctx, "os_compute_api:servers:create:zero_disk_flavor", &project_target(&project)) {
            return Err(ComputeError::Forbidden(
                "Only volume-backed servers are allowed for flavors with zero disk.".into(),
            ));
        }
    } else if min_disk > flavor.root_gb || img["size"].as_i64().unwrap_or(0) > flavor.root_gb << 30 {
        return Err(bad("Flavor's disk is too small for requested image."));
    }
    // the networks asked for, checked with the caller's token (none when servers have no networking)
    let requested = match &svc.deps()?.network {
        Some(net) => {
            let explicit_auto = p.networks.as_str() == Some("auto") && body["server"].get("networks").is_some();
            if let Some(g) = net
                .missing_security_group(&ctx.token, &project, &p.security_groups)
                .await
                .map_err(ComputeError::Internal)?
            {
                return Err(bad(format!("Security group {g} not found for project {project}.")));
            }
            match net.resolve(&ctx.token, &project, &p.networks, explicit_auto).await.map_err(ComputeError::Internal)? {
                Ok(r) => r,
                Err(crate::network::Refusal(409, m)) => return Err(conflict(m)),
                Err(crate::network::Refusal(_, m)) => return Err(bad(m)),
            }
        }
        None => Vec::new(),
    };
    if p.max > 1 && requested.iter().any(|r| r.port_id.is_some()) {
        return Err(bad(
            "Unable to launch multiple instances with a single configured port ID. Please launch your instance one by one with different ports.",
        ));
    }
    let limits = quotas::limits(&svc.db, &svc.cfg, &project, Some(&ctx.user_id)).await?;
    let meta_limit = limits.get("metadata_items").copied().unwrap_or(-1);
    if meta_limit >= 0 && p.metadata.len() as i64 > meta_limit {
        return Err(ComputeError::OverQuota(format!(
            "Quota exceeded for metadata_items: Requested {}, but already used 0 of {meta_limit} metadata_items",
            p.metadata.len()
        )));
    }
    let mut flavor_spec = FlavorSpec::from_flavor(&flavor);
    if volume_backed {
        // a volume-backed server claims no root disk on its host
        flavor_spec.root_gb = 0;
    }
    let spec = RequestSpec {
        project_id: project.clone(),
        user_id: ctx.user_id.clone(),
        flavor: flavor_spec,
        image_id: p.image_id.clone(),
        image_properties: image_properties(&img),
        availability_zone: p.az.clone().or_else(|| {
            (!svc.cfg.compute.default_schedule_zone.is_empty()).then(|| svc.cfg.compute.default_schedule_zone.clone())
        }),
        forced_host: p.forced_host.clone(),
        forced_node: p.forced_node.clone(),
        hints: hints.clone(),
        group: group.as_ref().map(|g| g.uuid.clone()),
        ignore_hosts: Vec::new(),
    };
    let deps = svc.deps()?;
    let rid = stratus_core::http::current_request_id();
    let reservation_id = format!("r-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let saga_id = uuid::Uuid::new_v4().to_string();
    let now = instances::now();
    let mut sys = Map::new();
    sys.insert("image_properties".into(), Value::Object(spec.image_properties.clone()));
    sys.insert("image_min_ram".into(), json!(min_ram));
    sys.insert("image_min_disk".into(), json!(min_disk));
    sys.insert("requested_networks".into(), json!(requested));
    sys.insert("security_groups".into(), json!(p.security_groups));
    sys.insert("auto_disk_config".into(), json!(p.auto_disk_config));
    let spec_json = serde_json::to_string(&spec).map_err(|e| ComputeError::Internal(e.into()))?;
    // quotas are counted and the servers recorded under one lock per project
    quotas::ensure_lock_row(&svc.db, &project, "instances").await?;
    let txn = svc.db.write.begin().await?;
    quotas::lock(&txn, &project, "instances").await?;
    let (used_n, used_cores, used_ram) = instances::usage(&txn, &project).await?;
    let fit = |res: &str, used: i64, per: i64| -> i64 {
        let lim = limits.get(res).copied().unwrap_or(-1);
        if lim < 0 || per == 0 { i64::MAX } else { ((lim - used) / per).max(0) }
    };
    let room = fit("instances", used_n, 1).min(fit("cores", used_cores, flavor.vcpus)).min(fit(
        "ram",
        used_ram,
        flavor.memory_mb,
    ));
    if room < p.min {
        drop(txn);
        let (res, used, per) = if fit("instances", used_n, 1) < p.min {
            ("instances", used_n, 1)
        } else if fit("cores", used_cores, flavor.vcpus) < p.min {
            ("cores", used_cores, flavor.vcpus)
        } else {
            ("ram", used_ram, flavor.memory_mb)
        };
        let lim = limits.get(res).copied().unwrap_or(-1);
        return Err(ComputeError::OverQuota(format!(
            "Quota exceeded for {res}: Requested {}, but already used {used} of {lim} {res}",
            p.min * per
        )));
    }
    let n = p.max.min(room);
    if let Some(g) = &group {
        let lim = limits.get("server_group_members").copied().unwrap_or(-1);
        let members = store::server_groups::member_count(&txn, &g.uuid).await?;
        if lim >= 0 && members + n > lim {
            drop(txn);
            return Err(ComputeError::OverQuota("Quota exceeded, too many servers in group".into()));
        }
    }
    let mut uuids = Vec::new();
    for idx in 0..n {
        let uuid = uuid::Uuid::new_v4().to_string();
        let name = if n > 1 { format!("{}-{}", p.name, idx + 1) } else { p.name.clone() };
        let hostname = match &p.hostname {
            Some(h) => h.clone(),
            None => sanitize_hostname(&name),
        };
        let inst = Instance {
            uuid: uuid.clone(),
            display_name: name,
            display_description: p.description.clone(),
            project_id: project.clone(),
            user_id: ctx.user_id.clone(),
            host: None,
            node: None,
            image_ref: p.image_id.clone(),
            flavor_id: flavor.id.clone(),
            vcpus: flavor.vcpus,
            memory_mb: flavor.memory_mb,
            root_gb: flavor.root_gb,
            ephemeral_gb: flavor.ephemeral_gb,
            flavor: flavor.to_json().to_string(),
            old_flavor: None,
            new_flavor: None,
            vm_state: vm::BUILDING.into(),
            task_state: Some(task::SCHEDULING.into()),
            power_state: 0,
            availability_zone: p.az.clone(),
            key_name: key.as_ref().map(|k| k.name.clone()),
            key_data: key.as_ref().map(|k| k.public_key.clone()),
            user_data: p.user_data.clone(),
            metadata: Value::Object(p.metadata.clone()).to_string(),
            system_metadata: Value::Object(sys.clone()).to_string(),
            config_drive: p.config_drive,
            access_ip_v4: p.access_v4.clone(),
            access_ip_v6: p.access_v6.clone(),
            locked: false,
            locked_by: None,
            locked_reason: None,
            hostname,
            launch_index: idx,
            reservation_id: reservation_id.clone(),
            progress: 0,
            request_spec: spec_json.clone(),
            block_devices: Value::Array(p.bdms.clone()).to_string(),
            launched_at: None,
            terminated_at: None,
            deleted: false,
            created_at: now,
            updated_at: now,
            deleted_at: None,
        };
        instances::insert_in(&txn, inst).await?;
        instances::set_tags(&txn, &uuid, &p.tags).await?;
        instances::start_action(&txn, &uuid, "create", &rid, Some(&ctx.user_id), Some(&project)).await?;
        if let Some(g) = &group {
            store::server_groups::add_member(&txn, &g.uuid, &uuid).await?;
        }
        let mut used: Vec<String> = Vec::new();
        for b in &vol_bdms {
            let device = match (&b.device_name, b.boot_index) {
                (Some(d), _) if !used.contains(d) => d.clone(),
                (_, Some(0)) if !used.iter().any(|u| u == "/dev/vda") => "/dev/vda".to_string(),
                _ => crate::volume::next_device(&used, flavor.ephemeral_gb > 0)
                    .ok_or_else(|| bad("Block Device Mapping is Invalid: too many volumes."))?,
            };
            used.push(device.clone());
            let (image_id, volume_id) = match b.source_type.as_str() {
                "image" => (b.uuid.clone(), None),
                "volume" => (None, b.uuid.clone()),
                _ => (None, None),
            };
            crate::volume::insert(
                &txn,
                crate::volume::NewBdm {
                    instance_uuid: uuid.clone(),
                    source_type: b.source_type.clone(),
                    image_id,
                    volume_id,
                    volume_size: b.volume_size,
                    attachment_id: None,
                    device_name: Some(device),
                    boot_index: b.boot_index,
                    delete_on_termination: b.delete_on_termination,
                    tag: b.tag.clone(),
                },
            )
            .await
            .map_err(ComputeError::Internal)?;
        }
        uuids.push(uuid);
    }
    let mut state = crate::conductor::build_state(&uuids, &spec, &rid);
    if !vol_bdms.is_empty() {
        // the volumes compute makes are the creator's: the build makes them with its token
        state["user_token"] = json!(ctx.token);
    }
    stratus_saga::Engine::create_in(&txn, crate::conductor::BUILD, &saga_id, &state)
        .await
        .map_err(ComputeError::Internal)?;
    txn.commit().await?;
    // if the cast is lost, a conductor adopts the saga once it looks orphaned
    if let Err(e) = deps.bus.cast(rpc::CONDUCTOR, &rpc::BuildInstances { saga_id: saga_id.clone() }, &rid).await {
        tracing::warn!(saga = %saga_id, error = %e, "could not reach the conductor; the saga will be adopted");
    }
    if p.return_reservation_id {
        return Ok((StatusCode::ACCEPTED, axum::Json(json!({"reservation_id": reservation_id}))).into_response());
    }
    let first = &uuids[0];
    let mut server = json!({
        "id": first,
        "links": c::links(&svc, "servers", first),
        "OS-DCF:diskConfig": if p.auto_disk_config { "AUTO" } else { "MANUAL" },
        "security_groups": p.security_groups.iter().map(|g| json!({"name": g})).collect::<Vec<_>>(),
    });
    if p.security_groups.is_empty() {
        server["security_groups"] = json!([{"name": "default"}]);
    }
    server["adminPass"] = json!(p.admin_pass.clone().unwrap_or_else(generate_password));
    let location = format!("{}/v2.1/servers/{first}", svc.base_url);
    let mut resp = (StatusCode::ACCEPTED, axum::Json(json!({"server": server}))).into_response();
    if let Ok(v) = axum::http::HeaderValue::from_str(&location) {
        resp.headers_mut().insert(axum::http::header::LOCATION, v);
    }
    Ok(resp)
}

pub fn generate_password() -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let bytes: [u8; 9] = rand::random();
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod access_ip_tests {
    use serde_json::json;

    use super::ip;

    #[test]
    fn access_ips_are_stored_canonical() {
        assert_eq!(
            ip("accessIPv6", &json!("0000:0000:0000:0000:0000:babe:220.12.22.2"), true).unwrap(),
            "::babe:dc0c:1602"
        );
        assert_eq!(ip("accessIPv4", &json!("1.1.1.1"), false).unwrap(), "1.1.1.1");
        assert_eq!(ip("accessIPv4", &json!(""), false).unwrap(), "");
        assert!(ip("accessIPv4", &json!("1.1.1"), false).is_err());
    }
}
