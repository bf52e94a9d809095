//! `/v2.0/subnetpools`: prefixes subnets are carved from (`subnetpool_id` +
//! `prefixlen` on a subnet create). List, show, create, update (prefixes may
//! only grow), delete (409 while subnets use the pool).

use axum::Router;
use axum::extract::{Path, State as AxState};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use ipnet::IpNet;
use sea_orm::TransactionTrait;
use serde_json::{Map, Value, json};
use stratus_core::auth::Auth;
use stratus_core::extract::RawQuery;

use crate::api::address_scopes;
use crate::api::list::{self, ListParams};
use crate::api::networks::viewer;
use crate::api::subnets::pool_prefixes;
use crate::api::{
    AttrDefault, Body, authorize, authorize_attributes, check_revision, created, is_admin, no_content, ok,
    owner_for_create, project_of,
};
use crate::entity::subnetpool::Model as SubnetPool;
use crate::error::{NetworkError, Result, bad, bad_kind, conflict, invalid, not_found};
use crate::ipam;
use crate::store::address_scopes as address_scopes_store;
use crate::store::subnetpools as store;
use crate::store::{self as st, quotas, subnets, tags};
use crate::{NetworkService, State, model};

pub fn routes() -> Router<State> {
    Router::new()
        .route("/v2.0/subnetpools", get(index).post(create))
        .route("/v2.0/subnetpools/{id}", get(show).put(update).delete(delete))
}

const CREATE_ATTRS: &[&str] = &[
    "name",
    "prefixes",
    "default_prefixlen",
    "min_prefixlen",
    "max_prefixlen",
    "shared",
    "is_default",
    "default_quota",
    "address_scope_id",
    "description",
    "project_id",
    "tenant_id",
];
const UPDATE_ATTRS: &[&str] = &[
    "name",
    "prefixes",
    "default_prefixlen",
    "min_prefixlen",
    "max_prefixlen",
    "is_default",
    "default_quota",
    "address_scope_id",
    "description",
];
const GUARDED: &[(&str, AttrDefault)] =
    &[("shared", AttrDefault::Bool(false)), ("is_default", AttrDefault::Bool(false))];

pub fn render(p: &SubnetPool, tags: Vec<String>) -> Value {
    json!({
        "id": p.id,
        "name": p.name,
        "tenant_id": p.project_id,
        "project_id": p.project_id,
        "ip_version": p.ip_version,
        "prefixes": serde_json::from_str::<Value>(&p.prefixes).unwrap_or(json!([])),
        "default_prefixlen": p.default_prefixlen,
        "min_prefixlen": p.min_prefixlen,
        "max_prefixlen": p.max_prefixlen,
        "shared": p.shared,
        "is_default": p.is_default,
        "default_quota": p.default_quota,
        "address_scope_id": if p.address_scope_id.is_empty() { Value::Null } else { json!(p.address_scope_id) },
        "description": p.description,
        "tags": tags,
        "created_at": p.created_at,
        "updated_at": p.updated_at,
        "revision_number": p.revision_number,
    })
}

async fn render_one(svc: &NetworkService, p: &SubnetPool) -> Result<Value> {
    let mut tg = tags::of(&svc.db.read, store::TAG_TYPE, std::slice::from_ref(&p.id)).await?;
    Ok(render(p, tg.remove(&p.id).unwrap_or_default()))
}

fn pool_not_found(id: &str) -> NetworkError {
    not_found("SubnetPoolNotFound", format!("Subnet pool {id} could not be found."))
}

async fn index(AxState(svc): AxState<State>, Auth(ctx): Auth, q: RawQuery) -> Result<Response> {
    let p = ListParams::parse(&q)?;
    let (rows, more) = store::list(&svc.db.read, &viewer(&svc, &ctx), &p).await?;
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    let mut tg = tags::of(&svc.db.read, store::TAG_TYPE, &ids).await?;
    let items = rows.iter().map(|r| render(r, tg.remove(&r.id).unwrap_or_default())).collect();
    Ok(ok(list::render("subnetpools", items, &p, more, &format!("{}/v2.0/subnetpools", svc.base_url), &q)))
}

async fn show(AxState(svc): AxState<State>, Auth(ctx): Auth, Path(id): Path<String>, q: RawQuery) -> Result<Response> {
    let p = ListParams::parse(&q)?;
    let pool = store::get_visible(&svc.db.read, &viewer(&svc, &ctx), &id).await?.ok_or_else(|| pool_not_found(&id))?;
    Ok(ok(json!({"subnetpool": list::project(render_one(&svc, &pool).await?, &p.fields)})))
}

/// `prefixes`: CIDRs of one IP version, canonical (host bits cleared).
fn parse_prefixes(v: &Value) -> Result<Vec<IpNet>> {
    let Value::Array(a) = v else {
        return Err(invalid("prefixes", format!("'{v}' is not a list")));
    };
    if a.is_empty() {
        return Err(invalid("prefixes", "at least one prefix is required"));
    }
    let mut out: Vec<IpNet> = Vec::new();
    for p in a {
        let s = p.as_str().ok_or_else(|| invalid("prefixes", format!("'{p}' is not a valid IP subnet")))?;
        let n: IpNet = s.parse().map_err(|_| invalid("prefixes", format!("'{s}' is not a valid IP subnet")))?;
        out.push(n.trunc());
    }
    if out.iter().any(|n| ipam::net_version(n) != ipam::net_version(&out[0])) {
        return Err(bad_kind("PrefixVersionMismatch", "Cannot mix IPv4 and IPv6 prefixes in a subnet pool."));
    }
    Ok(IpNet::aggregate(&out))
}

fn prefixes_json(p: &[IpNet]) -> String {
    json!(p.iter().map(|n| n.to_string()).collect::<Vec<_>>()).to_string()
}

/// Apply the prefix-length attributes of `obj` to `pool` and check
/// `min <= default <= max` within the version's bits.
fn apply_lengths(obj: &Map<String, Value>, pool: &mut SubnetPool) -> Result<()> {
    let bits = if pool.ip_version == 4 { 32 } else { 128 };
    for (k, slot) in [
        ("min_prefixlen", &mut pool.min_prefixlen),
        ("max_prefixlen", &mut pool.max_prefixlen),
        ("default_prefixlen", &mut pool.default_prefixlen),
    ] {
        if let Some(v) = obj.get(k).filter(|v| !v.is_null()) {
            let n = model::integer(k, v)?;
            if !(0..=bits).contains(&n) {
                return Err(invalid(k, format!("'{n}' is not in range 0 through {bits}")));
            }
            *slot = n;
        }
    }
    if !obj.contains_key("default_prefixlen") && pool.default_prefixlen < pool.min_prefixlen {
        pool.default_prefixlen = pool.min_prefixlen;
    }
    if !(pool.min_prefixlen <= pool.default_prefixlen && pool.default_prefixlen <= pool.max_prefixlen) {
        return Err(bad_kind(
            "IllegalSubnetPoolPrefixBounds",
            format!(
                "Illegal prefix bounds: min_prefixlen={}, default_prefixlen={}, max_prefixlen={}.",
                pool.min_prefixlen, pool.default_prefixlen, pool.max_prefixlen
            ),
        ));
    }
    Ok(())
}

async fn create(AxState(svc): AxState<State>, Auth(ctx): Auth, body: Body) -> Result<Response> {
    let obj = model::resource(&body.0, "subnetpool")?.clone();
    model::only(&obj, CREATE_ATTRS)?;
    let project = owner_for_create(&svc, &ctx, &obj)?;
    authorize(&svc, &ctx, "create_subnetpool", &project)?;
    authorize_attributes(&svc, &ctx, "create_subnetpool", &obj, GUARDED, &project, true)?;
    let prefixes = parse_prefixes(
        obj.get("prefixes")
            .ok_or_else(|| bad("Failed to parse request. Required attribute 'prefixes' not specified"))?,
    )?;
    let version = ipam::net_version(&prefixes[0]);
    let get_str = |k: &str| -> Result<String> {
        match obj.get(k) {
            Some(Value::Null) | None => Ok(String::new()),
            Some(v) => model::string(k, v, 255),
        }
    };
    let now = st::now();
    let (min, max) = if version == 4 { (8, 32) } else { (64, 128) };
    let mut pool = SubnetPool {
        id: st::new_id(),
        project_id: project.clone(),
        name: get_str("name")?,
        ip_version: i64::from(version),
        prefixes: prefixes_json(&prefixes),
        default_prefixlen: min,
        min_prefixlen: min,
        max_prefixlen: max,
        shared: obj.get("shared").map(|v| model::boolean("shared", v)).transpose()?.unwrap_or(false),
        is_default: obj.get("is_default").map(|v| model::boolean("is_default", v)).transpose()?.unwrap_or(false),
        default_quota: obj
            .get("default_quota")
            .filter(|v| !v.is_null())
            .map(|v| model::integer("default_quota", v))
            .transpose()?,
        address_scope_id: match obj.get("address_scope_id").filter(|v| !v.is_null()) {
            Some(v) => model::uuid("address_scope_id", v)?,
            None => String::new(),
        },
        description: get_str("description")?,
        created_at: now.clone(),
        updated_at: now,
        revision_number: 0,
    };
    apply_lengths(&obj, &mut pool)?;
    quotas::ensure_lock_row(&svc.db, &project).await?;
    let txn = svc.db.write.begin().await?;
    if !pool.address_scope_id.is_empty() {
        // the scope's row held: racing pools joining it see each other's prefixes
        address_scopes_store::lock(&txn, &pool.address_scope_id).await?;
    }
    quotas::check(&txn, &svc.cfg, &project, "subnetpool", 1).await?;
    if !pool.address_scope_id.is_empty() {
        let v = viewer(&svc, &ctx);
        address_scopes::validate_for_pool(&txn, &v, &pool.address_scope_id, &pool.id, &prefixes, pool.ip_version)
            .await?;
    }
    if pool.is_default && store::default_for(&txn, pool.ip_version).await?.is_some() {
        return Err(bad_kind(
            "InvalidInput",
            format!(
                "Invalid input for operation: A default subnetpool for this IP family (IPv{version}) already exists."
            ),
        ));
    }
    store::insert(&txn, pool.clone()).await?;
    txn.commit().await?;
    Ok(created(json!({"subnetpool": render_one(&svc, &pool).await?})))
}

async fn update(
    AxState(svc): AxState<State>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response> {
    let obj = model::resource(&body.0, "subnetpool")?.clone();
    if obj.contains_key("shared") || obj.contains_key("ip_version") {
        return Err(bad("Cannot update read-only attribute shared"));
    }
    model::only(&obj, UPDATE_ATTRS)?;
    let v = viewer(&svc, &ctx);
    for _ in 0..5 {
        let cur = store::get_visible(&svc.db.read, &v, &id).await?.ok_or_else(|| pool_not_found(&id))?;
        authorize(&svc, &ctx, "update_subnetpool", &cur.project_id)?;
        authorize_attributes(&svc, &ctx, "update_subnetpool", &obj, GUARDED, &cur.project_id, false)?;
        check_revision(&headers, cur.revision_number)?;
        let mut p = cur.clone();
        for (k, val) in &obj {
            match k.as_str() {
                "name" => p.name = model::string(k, val, 255)?,
                "description" => p.description = model::string(k, val, 255)?,
                "is_default" => p.is_default = model::boolean(k, val)?,
                "default_quota" => p.default_quota = if val.is_null() { None } else { Some(model::integer(k, val)?) },
                "address_scope_id" => {
                    p.address_scope_id = if val.is_null() { String::new() } else { model::uuid(k, val)? };
                }
                "prefixes" => {
                    let new = parse_prefixes(val)?;
                    if new.iter().any(|n| i64::from(ipam::net_version(n)) != p.ip_version) {
                        return Err(bad_kind(
                            "PrefixVersionMismatch",
                            "Cannot mix IPv4 and IPv6 prefixes in a subnet pool.",
                        ));
                    }
                    let old = pool_prefixes(&cur);
                    if !old.iter().all(|o| new.iter().any(|n| n.contains(o))) {
                        return Err(bad_kind(
                            "IllegalPrefixUpdate",
                            "Illegal update to prefixes: existing prefixes must be retained or extended.",
                        ));
                    }
                    p.prefixes = prefixes_json(&new);
                }
                _ => {}
            }
        }
        apply_lengths(&obj, &mut p)?;
        if !cur.address_scope_id.is_empty()
            && !is_admin(&svc, &ctx)
            && address_scopes_store::get_visible(&svc.db.read, &v, &cur.address_scope_id)
                .await?
                .is_some_and(|a| a.project_id != project_of(&ctx))
        {
            return Err(bad_kind(
                "IllegalSubnetPoolUpdate",
                format!(
                    "Illegal subnetpool update : subnetpool {id} cannot be updated when associated with shared address scope {}",
                    cur.address_scope_id
                ),
            ));
        }
        if p.is_default
            && !cur.is_default
            && store::default_for(&svc.db.read, p.ip_version).await?.is_some_and(|d| d.id != p.id)
        {
            return Err(bad_kind(
                "InvalidInput",
                format!(
                    "Invalid input for operation: A default subnetpool for this IP family (IPv{}) already exists.",
                    p.ip_version
                ),
            ));
        }
        p.updated_at = st::now();
        let txn = svc.db.write.begin().await?;
        if !p.address_scope_id.is_empty() {
            address_scopes_store::lock(&txn, &p.address_scope_id).await?;
            address_scopes::validate_for_pool(&txn, &v, &p.address_scope_id, &p.id, &pool_prefixes(&p), p.ip_version)
                .await?;
        }
        let saved = store::save(&txn, &p).await?;
        txn.commit().await?;
        if saved {
            p.revision_number += 1;
            return Ok(ok(json!({"subnetpool": render_one(&svc, &p).await?})));
        }
    }
    Err(conflict("SubnetPoolInUse", format!("Subnet pool {id} kept changing during the update; try again.")))
}

async fn delete(AxState(svc): AxState<State>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Response> {
    let p = store::get_visible(&svc.db.read, &viewer(&svc, &ctx), &id).await?.ok_or_else(|| pool_not_found(&id))?;
    authorize(&svc, &ctx, "delete_subnetpool", &p.project_id)?;
    let txn = svc.db.write.begin().await?;
    if !subnets::of_pool(&txn, &id).await?.is_empty() {
        return Err(conflict(
            "SubnetPoolInUse",
            format!("Unable to complete operation on subnet pool {id}. Subnets are allocated from this pool."),
        ));
    }
    if !store::delete(&txn, &id).await? {
        return Err(pool_not_found(&id));
    }
    txn.commit().await?;
    Ok(no_content())
}
