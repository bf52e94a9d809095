//! `/v2.0/networks`: list (filters, fields, sorting, paging), show, create
//! (one or bulk), update (with `If-Match` revisions), delete.

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::{Path, State as AxState};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, TransactionTrait};
use serde_json::{Map, Value, json};
use stratus_core::AuthContext;
use stratus_core::auth::Auth;
use stratus_core::extract::RawQuery;

use crate::api::list::{self, ListParams};
use crate::api::{
    AttrDefault, Body, allowed, authorize, authorize_attributes, check_revision, created, is_admin, no_content, ok,
    owner_for_create,
};
use crate::entity::network::Model as Network;
use crate::error::{NetworkError, Result, bad, conflict, invalid, not_found};
use crate::model;
use crate::store::networks::{self as store, Viewer};
use crate::store::{self as st, quotas, rbac, subnets, tags};
use crate::{NetworkService, State};

pub fn routes() -> Router<State> {
    Router::new()
        .route("/v2.0/networks", get(index).post(create))
        .route("/v2.0/networks/{id}", get(show).put(update).delete(delete))
}

const CREATE_ATTRS: &[&str] = &[
    "name",
    "admin_state_up",
    "shared",
    "router:external",
    "mtu",
    "port_security_enabled",
    "provider:network_type",
    "provider:physical_network",
    "provider:segmentation_id",
    "availability_zone_hints",
    "description",
    "dns_domain",
    "is_default",
    "project_id",
    "tenant_id",
];
const UPDATE_ATTRS: &[&str] = &[
    "name",
    "admin_state_up",
    "shared",
    "router:external",
    "mtu",
    "port_security_enabled",
    "description",
    "dns_domain",
    "is_default",
    "provider:network_type",
    "provider:physical_network",
    "provider:segmentation_id",
];
/// Attributes with a rule of their own (`create_network:shared`, ...) and
/// their defaults.
const GUARDED: &[(&str, AttrDefault)] = &[
    ("shared", AttrDefault::Bool(false)),
    ("router:external", AttrDefault::Bool(false)),
    ("is_default", AttrDefault::Bool(false)),
    ("port_security_enabled", AttrDefault::Bool(true)),
    ("provider:network_type", AttrDefault::Unset),
    ("provider:physical_network", AttrDefault::Unset),
    ("provider:segmentation_id", AttrDefault::Unset),
];
const PROVIDER: &[&str] = &["provider:network_type", "provider:physical_network", "provider:segmentation_id"];

pub fn viewer(svc: &NetworkService, ctx: &AuthContext) -> Viewer {
    if is_admin(svc, ctx) { Viewer::Admin } else { Viewer::Project(crate::api::project_of(ctx)) }
}

/// A network as Neutron renders it.
pub fn render(
    svc: &NetworkService,
    ctx: &AuthContext,
    n: &Network,
    subnets: Vec<String>,
    tags: Vec<String>,
    scopes: (Option<&String>, Option<&String>),
) -> Value {
    let mut v = json!({
        "id": n.id,
        "name": n.name,
        "tenant_id": n.project_id,
        "project_id": n.project_id,
        "admin_state_up": n.admin_state_up,
        "status": n.status,
        "subnets": subnets,
        "shared": n.shared,
        "router:external": n.external,
        "mtu": n.mtu,
        "port_security_enabled": n.port_security_enabled,
        "availability_zone_hints": serde_json::from_str::<Value>(&n.availability_zone_hints).unwrap_or(json!([])),
        "availability_zones": [],
        "ipv4_address_scope": scopes.0,
        "ipv6_address_scope": scopes.1,
        "l2_adjacency": true,
        "description": n.description,
        "tags": tags,
        "created_at": n.created_at,
        "updated_at": n.updated_at,
        "revision_number": n.revision_number,
    });
    // `is_default` (auto-allocated-topology) belongs to external networks
    if n.external {
        v["is_default"] = json!(n.is_default);
    }
    if allowed(svc, ctx, "get_network:provider:network_type", &n.project_id) {
        v["provider:network_type"] = json!(n.network_type);
        v["provider:physical_network"] =
            if n.physical_network.is_empty() { Value::Null } else { json!(n.physical_network) };
        v["provider:segmentation_id"] = json!(n.segmentation_id);
    }
    v
}

async fn render_many(svc: &NetworkService, ctx: &AuthContext, nets: &[Network]) -> Result<Vec<Value>> {
    let ids: Vec<String> = nets.iter().map(|n| n.id.clone()).collect();
    let mut subs = subnets::ids_by_network(&svc.db.read, &ids).await?;
    let mut tg = tags::of(&svc.db.read, store::TAG_TYPE, &ids).await?;
    // `shared` as the caller sees it: shared with everyone, or with its project by a policy
    let shared_with = rbac::networks_shared_with(&svc.db.read, &ids, &crate::api::project_of(ctx)).await?;
    let scopes = st::address_scopes::of_networks(&svc.db.read, &ids).await?;
    Ok(nets
        .iter()
        .map(|n| {
            let mut n = n.clone();
            n.shared |= shared_with.contains(&n.id);
            let sc = (scopes.get(&(n.id.clone(), 4)), scopes.get(&(n.id.clone(), 6)));
            render(svc, ctx, &n, subs.remove(&n.id).unwrap_or_default(), tg.remove(&n.id).unwrap_or_default(), sc)
        })
        .collect())
}

fn network_not_found(id: &str) -> NetworkError {
    not_found("NetworkNotFound", format!("Network {id} could not be found."))
}

async fn index(AxState(svc): AxState<State>, Auth(ctx): Auth, q: RawQuery) -> Result<Response> {
    let p = ListParams::parse(&q)?;
    let (rows, more) = store::list(&svc.db.read, &viewer(&svc, &ctx), &p).await?;
    let items = render_many(&svc, &ctx, &rows).await?;
    Ok(ok(list::render("networks", items, &p, more, &format!("{}/v2.0/networks", svc.base_url), &q)))
}

async fn show(AxState(svc): AxState<State>, Auth(ctx): Auth, Path(id): Path<String>, q: RawQuery) -> Result<Response> {
    let p = ListParams::parse(&q)?;
    let n = store::get_visible(&svc.db.read, &viewer(&svc, &ctx), &id).await?.ok_or_else(|| network_not_found(&id))?;
    let item = render_many(&svc, &ctx, std::slice::from_ref(&n)).await?.remove(0);
    Ok(ok(json!({"network": list::project(item, &p.fields)})))
}

/// The network a create body describes (validated), not yet stored.
fn from_body(svc: &NetworkService, obj: &Map<String, Value>, project: &str) -> Result<Network> {
    model::only(obj, CREATE_ATTRS)?;
    let now = st::now();
    let mtu = match obj.get("mtu") {
        Some(v) => {
            let m = model::integer("mtu", v)?;
            if !(68..=svc.cfg.network.default_mtu.max(68)).contains(&m) {
                return Err(invalid(
                    "mtu",
                    format!("'{m}' is not in range 68 through {}", svc.cfg.network.default_mtu),
                ));
            }
            m
        }
        None => svc.cfg.network.default_mtu,
    };
    let zones = match obj.get("availability_zone_hints") {
        Some(Value::Array(a)) => {
            for z in a {
                model::string("availability_zone_hints", z, 255)?;
            }
            Value::Array(a.clone()).to_string()
        }
        Some(other) => return Err(invalid("availability_zone_hints", format!("'{other}' is not a list"))),
        None => "[]".into(),
    };
    let get_str = |k: &str, max: usize| -> Result<String> {
        match obj.get(k) {
            Some(Value::Null) | None => Ok(String::new()),
            Some(v) => model::string(k, v, max),
        }
    };
    let get_bool = |k: &str, d: bool| -> Result<bool> { obj.get(k).map(|v| model::boolean(k, v)).unwrap_or(Ok(d)) };
    let network_type = match obj.get("provider:network_type") {
        Some(v) if !v.is_null() => model::string("provider:network_type", v, 32)?,
        _ => "vxlan".into(),
    };
    if !matches!(network_type.as_str(), "vxlan" | "vlan" | "flat" | "local") {
        return Err(bad(format!("network_type value '{network_type}' not supported")));
    }
    let physnet = get_str("provider:physical_network", 64)?;
    let seg = match obj.get("provider:segmentation_id") {
        Some(v) if !v.is_null() => Some(model::integer("provider:segmentation_id", v)?),
        _ => None,
    };
    match network_type.as_str() {
        "flat" | "local" if seg.is_some() => {
            return Err(bad(format!("{network_type} networks do not take a segmentation_id")));
        }
        "flat" | "vlan" if physnet.is_empty() => {
            return Err(bad(format!("physical_network required for {network_type} provider network")));
        }
        "vxlan" | "local" if !physnet.is_empty() => {
            return Err(bad(format!("provider:physical_network specified for {network_type} network")));
        }
        _ => {}
    }
    let range = if network_type == "vlan" { model::VLAN_RANGE } else { model::VNI_RANGE };
    if let Some(s) = seg
        && !(range.0..=range.1).contains(&s)
    {
        return Err(bad(format!("segmentation_id {s} out of range ({} through {})", range.0, range.1)));
    }
    Ok(Network {
        id: st::new_id(),
        project_id: project.to_string(),
        name: get_str("name", 255)?,
        admin_state_up: get_bool("admin_state_up", true)?,
        status: "ACTIVE".into(),
        shared: get_bool("shared", false)?,
        external: get_bool("router:external", false)?,
        mtu,
        port_security_enabled: get_bool("port_security_enabled", true)?,
        network_type,
        physical_network: physnet,
        segmentation_id: seg,
        availability_zone_hints: zones,
        dns_domain: get_str("dns_domain", 255)?,
        // only an external network may be the default one
        is_default: get_bool("is_default", false)? && get_bool("router:external", false)?,
        description: get_str("description", 255)?,
        created_at: now.clone(),
        updated_at: now,
        revision_number: 0,
    })
}

/// Store networks (all or none): quota, segment allocation (retried when a
/// racing create took the same segment).
async fn store_all(svc: &NetworkService, mut nets: Vec<Network>) -> Result<Vec<Network>> {
    let mut projects: Vec<String> = nets.iter().map(|n| n.project_id.clone()).collect();
    projects.sort();
    projects.dedup();
    for p in &projects {
        quotas::ensure_lock_row(&svc.db, p).await?;
    }
    let retries = svc.cfg.network.allocation_retries.max(1);
    for attempt in 0..=retries {
        let txn = svc.db.write.begin().await?;
        for p in &projects {
            let n = nets.iter().filter(|n| &n.project_id == p).count() as i64;
            quotas::check(&txn, &svc.cfg, p, "network", n).await?;
        }
        let mut taken: BTreeMap<(String, String), Vec<i64>> = BTreeMap::new();
        for n in nets.iter_mut() {
            if n.network_type == "flat" || n.network_type == "local" {
                continue;
            }
            let key = (n.network_type.clone(), n.physical_network.clone());
            if !taken.contains_key(&key) {
                taken.insert(key.clone(), store::used_segments(&txn, &key.0, &key.1).await?);
            }
            let used = taken.get_mut(&key).ok_or_else(|| anyhow::anyhow!("segment table"))?;
            match n.segmentation_id {
                Some(s) if used.contains(&s) => {
                    return Err(conflict(
                        "SegmentationIdInUse",
                        format!(
                            "Unable to create the network. The VLAN/tunnel {s} on physical network {} is in use.",
                            n.physical_network
                        ),
                    ));
                }
                Some(s) => used.push(s),
                None => {
                    let range = if n.network_type == "vlan" { model::VLAN_RANGE } else { model::VNI_RANGE };
                    let s = model::lowest_free(range, used).ok_or_else(|| {
                        conflict(
                            "NoNetworkAvailable",
                            "Unable to create the network. No tenant network is available for allocation.",
                        )
                    })?;
                    used.push(s);
                    n.segmentation_id = Some(s);
                }
            }
        }
        let mut failed = None;
        for n in &nets {
            if let Err(e) = store::insert(&txn, n.clone()).await {
                failed = Some(e);
                break;
            }
        }
        if failed.is_none() {
            // `shared` and `router:external` are `*` RBAC policies, as in Neutron
            for n in &nets {
                if n.shared {
                    rbac::set_wildcard(&txn, &n.id, &n.project_id, rbac::ACCESS_AS_SHARED, true).await?;
                }
                if n.external {
                    rbac::set_wildcard(&txn, &n.id, &n.project_id, rbac::ACCESS_AS_EXTERNAL, true).await?;
                }
            }
        }
        match failed {
            None => {
                txn.commit().await?;
                return Ok(nets);
            }
            Some(NetworkError::Internal(e))
                if attempt < retries
                    && e.downcast_ref::<sea_orm::DbErr>().is_some_and(stratus_db::is_unique_violation) =>
            {
                // a racing create took a segment this one picked: pick again
                drop(txn);
                for n in nets.iter_mut() {
                    if n.network_type != "flat" && n.network_type != "local" {
                        n.segmentation_id = None;
                    }
                }
                continue;
            }
            Some(e) => return Err(e),
        }
    }
    Err(conflict("NoNetworkAvailable", "Unable to create the network: segment allocation kept conflicting."))
}

/// Only one external network is the default (`is_default`) at a time.
async fn check_one_default(svc: &NetworkService, id: &str) -> Result<()> {
    if let Some(d) = store::default_external(&svc.db.read).await?
        && d.id != id
    {
        return Err(conflict(
            "DefaultExternalNetworkExists",
            format!("A default external network already exists: {}.", d.id),
        ));
    }
    Ok(())
}

async fn create(AxState(svc): AxState<State>, Auth(ctx): Auth, body: Body) -> Result<Response> {
    let body = body.0;
    let (objs, bulk) = model::one_or_bulk(&body, "network", "networks")?;
    let mut nets = Vec::new();
    for obj in &objs {
        let project = owner_for_create(&svc, &ctx, obj)?;
        authorize(&svc, &ctx, "create_network", &project)?;
        authorize_attributes(&svc, &ctx, "create_network", obj, GUARDED, &project, true)?;
        nets.push(from_body(&svc, obj, &project)?);
    }
    for n in nets.iter().filter(|n| n.is_default) {
        check_one_default(&svc, &n.id).await?;
    }
    let nets = store_all(&svc, nets).await?;
    let items = render_many(&svc, &ctx, &nets).await?;
    Ok(if bulk { created(json!({"networks": items})) } else { created(json!({"network": items[0]})) })
}

async fn update(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response> {
    let obj = model::resource(&body.0, "network")?.clone();
    model::only(&obj, UPDATE_ATTRS)?;
    let v = viewer(&svc, &ctx);
    for _ in 0..5 {
        let cur = store::get_visible(&svc.db.read, &v, &id).await?.ok_or_else(|| network_not_found(&id))?;
        authorize(&svc, &ctx, "update_network", &cur.project_id)?;
        authorize_attributes(&svc, &ctx, "update_network", &obj, GUARDED, &cur.project_id, false)?;
        check_revision(&headers, cur.revision_number)?;
        let mut n = cur.clone();
        for (k, val) in &obj {
            match k.as_str() {
                "name" => n.name = model::string(k, val, 255)?,
                "description" => n.description = model::string(k, val, 255)?,
                "dns_domain" => n.dns_domain = model::string(k, val, 255)?,
                "admin_state_up" => n.admin_state_up = model::boolean(k, val)?,
                "shared" => n.shared = model::boolean(k, val)?,
                "router:external" => n.external = model::boolean(k, val)?,
                "is_default" => n.is_default = model::boolean(k, val)?,
                "port_security_enabled" => n.port_security_enabled = model::boolean(k, val)?,
                "mtu" => {
                    let m = model::integer(k, val)?;
                    if !(68..=svc.cfg.network.default_mtu.max(68)).contains(&m) {
                        return Err(invalid(
                            "mtu",
                            format!("'{m}' is not in range 68 through {}", svc.cfg.network.default_mtu),
                        ));
                    }
                    n.mtu = m;
                }
                p if PROVIDER.contains(&p) => {
                    return Err(bad("Plugin does not support updating provider attributes"));
                }
                _ => {}
            }
        }
        if !n.external {
            n.is_default = false;
        }
        if n.is_default && !cur.is_default {
            check_one_default(&svc, &id).await?;
        }
        n.updated_at = st::now();
        if cur.shared
            && !n.shared
            && rbac::other_projects_ports(&svc.db.read, &id, &cur.project_id, rbac::EVERYONE).await? > 0
        {
            return Err(conflict(
                "InvalidSharedSetting",
                format!("Unable to reconfigure sharing settings for network {id}. Multiple tenants are using it."),
            ));
        }
        let txn = svc.db.write.begin().await?;
        if store::save(&txn, &n).await? {
            if n.shared != cur.shared {
                rbac::set_wildcard(&txn, &id, &n.project_id, rbac::ACCESS_AS_SHARED, n.shared).await?;
            }
            if n.external != cur.external {
                rbac::set_wildcard(&txn, &id, &n.project_id, rbac::ACCESS_AS_EXTERNAL, n.external).await?;
            }
            txn.commit().await?;
            n.revision_number += 1;
            let item = render_many(&svc, &ctx, std::slice::from_ref(&n)).await?.remove(0);
            return Ok(ok(json!({"network": item})));
        }
        // changed meanwhile: read it again
    }
    Err(conflict("NetworkInUse", format!("Network {id} kept changing during the update; try again.")))
}

async fn delete(AxState(svc): AxState<State>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Response> {
    let n = store::get_visible(&svc.db.read, &viewer(&svc, &ctx), &id).await?.ok_or_else(|| network_not_found(&id))?;
    authorize(&svc, &ctx, "delete_network", &n.project_id)?;
    let txn = svc.db.write.begin().await?;
    if n.external {
        store::delete_disassociated_floatingips(&txn, &id).await?;
    }
    if st::ports::blocking_network_delete(&txn, &id).await? > 0 {
        return Err(conflict(
            "NetworkInUse",
            format!(
                "Unable to complete operation on network {id}. There are one or more ports still in use on the network."
            ),
        ));
    }
    st::ports::delete_network_owned(&txn, &id).await?;
    subnets::delete_for_network(&txn, &id).await?;
    tags::remove_all(&txn, store::TAG_TYPE, &id).await?;
    rbac::delete_for_object(&txn, "network", &id).await?;
    // an auto-allocated topology goes with its network (Neutron's cascade)
    crate::entity::auto_allocated_topology::Entity::delete_many()
        .filter(crate::entity::auto_allocated_topology::Column::NetworkId.eq(id.as_str()))
        .exec(&txn)
        .await?;
    if !store::delete(&txn, &id).await? {
        return Err(network_not_found(&id));
    }
    txn.commit().await?;
    Ok(no_content())
}
