//! `/v2.0/address-scopes` (address-scope): list, show, create, update (a
//! shared scope cannot be unshared), delete (409 while subnet pools are in
//! it). Subnet pools join a scope by `address_scope_id`
//! ([`crate::api::subnetpools`] checks the IP version and prefix overlaps).

use axum::Router;
use axum::extract::{Path, State as AxState};
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};
use stratus_core::auth::Auth;
use stratus_core::extract::RawQuery;

use crate::State;
use crate::api::list::{self, ListParams};
use crate::api::networks::viewer;
use crate::api::{AttrDefault, Body, authorize, authorize_attributes, created, no_content, ok, owner_for_create};
use crate::entity::address_scope::Model as AddressScope;
use crate::error::{NetworkError, Result, bad, bad_kind, conflict, invalid, not_found};
use crate::model;
use crate::store::{self as st, address_scopes as store};

pub fn routes() -> Router<State> {
    Router::new()
        .route("/v2.0/address-scopes", get(index).post(create))
        .route("/v2.0/address-scopes/{id}", get(show).put(update).delete(delete))
}

const CREATE_ATTRS: &[&str] = &["name", "shared", "ip_version", "project_id", "tenant_id"];
const UPDATE_ATTRS: &[&str] = &["name", "shared"];
const GUARDED: &[(&str, AttrDefault)] = &[("shared", AttrDefault::Bool(false))];

pub fn render(a: &AddressScope) -> Value {
    json!({
        "id": a.id,
        "name": a.name,
        "tenant_id": a.project_id,
        "project_id": a.project_id,
        "shared": a.shared,
        "ip_version": a.ip_version,
    })
}

pub fn scope_not_found(id: &str) -> NetworkError {
    not_found("AddressScopeNotFound", format!("Address scope {id} could not be found."))
}

async fn index(AxState(svc): AxState<State>, Auth(ctx): Auth, q: RawQuery) -> Result<Response> {
    let p = ListParams::parse(&q)?;
    let (rows, more) = store::list(&svc.db.read, &viewer(&svc, &ctx), &p).await?;
    let items = rows.iter().map(render).collect();
    Ok(ok(list::render("address_scopes", items, &p, more, &format!("{}/v2.0/address-scopes", svc.base_url), &q)))
}

async fn show(AxState(svc): AxState<State>, Auth(ctx): Auth, Path(id): Path<String>, q: RawQuery) -> Result<Response> {
    let p = ListParams::parse(&q)?;
    let a = store::get_visible(&svc.db.read, &viewer(&svc, &ctx), &id).await?.ok_or_else(|| scope_not_found(&id))?;
    Ok(ok(json!({"address_scope": list::project(render(&a), &p.fields)})))
}

fn name_of(v: Option<&Value>) -> Result<String> {
    match v {
        None | Some(Value::Null) => Ok(String::new()),
        Some(v) => model::string("name", v, 255),
    }
}

async fn create(AxState(svc): AxState<State>, Auth(ctx): Auth, body: Body) -> Result<Response> {
    let obj = model::resource(&body.0, "address_scope")?.clone();
    model::only(&obj, CREATE_ATTRS)?;
    let project = owner_for_create(&svc, &ctx, &obj)?;
    authorize(&svc, &ctx, "create_address_scope", &project)?;
    authorize_attributes(&svc, &ctx, "create_address_scope", &obj, GUARDED, &project, true)?;
    let ip_version = match obj.get("ip_version") {
        None => return Err(bad("Failed to parse request. Required attribute 'ip_version' not specified")),
        Some(v) => {
            let n = model::integer("ip_version", v)?;
            if n != 4 && n != 6 {
                return Err(invalid("ip_version", format!("{n} is not in [4, 6]")));
            }
            n
        }
    };
    let a = AddressScope {
        id: st::new_id(),
        project_id: project,
        name: name_of(obj.get("name"))?,
        shared: obj.get("shared").map(|v| model::boolean("shared", v)).transpose()?.unwrap_or(false),
        ip_version,
    };
    store::insert(&svc.db.write, a.clone()).await?;
    Ok(created(json!({"address_scope": render(&a)})))
}

async fn update(AxState(svc): AxState<State>, Auth(ctx): Auth, Path(id): Path<String>, body: Body) -> Result<Response> {
    let obj = model::resource(&body.0, "address_scope")?.clone();
    for k in obj.keys() {
        if CREATE_ATTRS.contains(&k.as_str()) && !UPDATE_ATTRS.contains(&k.as_str()) {
            return Err(bad(format!("Cannot update read-only attribute {k}")));
        }
    }
    model::only(&obj, UPDATE_ATTRS)?;
    let cur = store::get_visible(&svc.db.read, &viewer(&svc, &ctx), &id).await?.ok_or_else(|| scope_not_found(&id))?;
    authorize(&svc, &ctx, "update_address_scope", &cur.project_id)?;
    authorize_attributes(&svc, &ctx, "update_address_scope", &obj, GUARDED, &cur.project_id, false)?;
    let mut a = cur.clone();
    if obj.contains_key("name") {
        a.name = name_of(obj.get("name"))?;
    }
    if let Some(v) = obj.get("shared") {
        a.shared = model::boolean("shared", v)?;
        if cur.shared && !a.shared {
            return Err(bad_kind(
                "AddressScopeUpdateError",
                format!("Unable to update address scope {id} : Shared address scope can't be unshared."),
            ));
        }
    }
    store::save(&svc.db.write, &a).await?;
    Ok(ok(json!({"address_scope": render(&a)})))
}

async fn delete(AxState(svc): AxState<State>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Response> {
    let a = store::get_visible(&svc.db.read, &viewer(&svc, &ctx), &id).await?.ok_or_else(|| scope_not_found(&id))?;
    authorize(&svc, &ctx, "delete_address_scope", &a.project_id)?;
    if !store::pools_in(&svc.db.read, &id).await?.is_empty() {
        return Err(conflict(
            "AddressScopeInUse",
            format!(
                "Unable to complete operation on address scope {id}. There are one or more subnet pools in use on the address scope."
            ),
        ));
    }
    if !store::delete(&svc.db.write, &id).await? {
        return Err(scope_not_found(&id));
    }
    Ok(no_content())
}

/// Neutron's `_validate_address_scope_id` (inside the transaction that
/// holds the scope's row, [`store::lock`]): a pool of `project` (`pool_id`,
/// with `prefixes` of `ip_version`) may join scope `scope_id` when the caller
/// may see the scope (its own or shared), the IP versions match and no other
/// pool of the scope overlaps its prefixes.
pub async fn validate_for_pool<C: sea_orm::ConnectionTrait>(
    conn: &C,
    viewer: &crate::store::networks::Viewer,
    scope_id: &str,
    pool_id: &str,
    prefixes: &[ipnet::IpNet],
    ip_version: i64,
) -> Result<()> {
    let Some(scope) = store::get_visible(conn, viewer, scope_id).await? else {
        return Err(scope_not_found(scope_id));
    };
    if scope.ip_version != ip_version {
        return Err(bad_kind(
            "IllegalSubnetPoolIpVersionAssociationToAddressScope",
            format!(
                "Illegal subnetpool association: subnetpool {pool_id} cannot associate with address scope {scope_id} because subnetpool ip_version is not {}.",
                scope.ip_version
            ),
        ));
    }
    for other in store::pools_in(conn, scope_id).await? {
        if other.id == pool_id {
            continue;
        }
        let theirs = crate::api::subnets::pool_prefixes(&other);
        if theirs.iter().any(|t| prefixes.iter().any(|p| crate::ipam::overlaps(t, p))) {
            return Err(conflict(
                "AddressScopePrefixConflict",
                "Failed to associate address scope: subnetpools within an address scope must have unique prefixes.",
            ));
        }
    }
    Ok(())
}
