//! `os-flavor-access`: which projects may use a private flavor
//! (`GET /flavors/{id}/os-flavor-access`, `POST /flavors/{id}/action` with
//! `addTenantAccess` / `removeTenantAccess`). Admin only.
//!
//! From 2.7, giving access to a public flavor is a 409.

use axum::Router;
use axum::extract::{Path, State as S};
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::{Value, json};
use stratus_core::Microversion;
use stratus_core::auth::Auth;
use stratus_core::extract::Json;

use super::common;
use super::flavors::visible;
use crate::api::{authorize, ok};
use crate::error::{Result, bad, conflict, not_found};
use crate::store::flavors::{self, Flavor};
use crate::{ComputeService, State};

pub fn routes() -> Router<State> {
    Router::new()
        .route("/v2.1/flavors/{id}/os-flavor-access", get(index))
        .route("/v2.1/flavors/{id}/action", post(action))
}

async fn access_body(svc: &ComputeService, f: &Flavor) -> Result<Value> {
    let list = flavors::access_list(&svc.db, f.internal_id).await?;
    Ok(json!({"flavor_access": list.iter().map(|p| json!({"flavor_id": f.id, "tenant_id": p})).collect::<Vec<_>>()}))
}

async fn index(S(svc): S<State>, Auth(ctx): Auth, Path(id): Path<String>) -> Result<Response> {
    authorize(&svc, &ctx, "os_compute_api:os-flavor-access", &json!({}))?;
    let f = visible(&svc, &ctx, &id).await?;
    if f.is_public {
        return Err(not_found("Access list not available for public flavors."));
    }
    Ok(ok(access_body(&svc, &f).await?))
}

fn tenant_of(body: &Value, action: &str) -> Result<String> {
    let inner = common::the_object(body, action)?;
    let tenant = common::required(inner, Some(action), "tenant")?;
    let tenant = common::string("tenant", tenant, 1, 255)?.to_string();
    common::no_extra(inner, Some(action), &["tenant"])?;
    Ok(tenant)
}

async fn action(
    S(svc): S<State>,
    Auth(ctx): Auth,
    mv: Microversion,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response> {
    let name = body.as_object().and_then(|o| o.keys().next().cloned()).unwrap_or_default();
    match name.as_str() {
        "addTenantAccess" => {
            authorize(&svc, &ctx, "os_compute_api:os-flavor-access:add_tenant_access", &json!({}))?;
            let tenant = tenant_of(&body, "addTenantAccess")?;
            let f = visible(&svc, &ctx, &id).await?;
            if mv.at_least(2, 7) && f.is_public {
                return Err(conflict("Can not add access to a public flavor."));
            }
            flavors::add_access(&svc.db, &f, &tenant).await?;
            Ok(ok(access_body(&svc, &f).await?))
        }
        "removeTenantAccess" => {
            authorize(&svc, &ctx, "os_compute_api:os-flavor-access:remove_tenant_access", &json!({}))?;
            let tenant = tenant_of(&body, "removeTenantAccess")?;
            let f = visible(&svc, &ctx, &id).await?;
            if !flavors::remove_access(&svc.db, f.internal_id, &tenant).await? {
                return Err(not_found(format!("Flavor access not found for {} / {tenant} combination.", f.id)));
            }
            Ok(ok(access_body(&svc, &f).await?))
        }
        other => Err(bad(format!("There is no such action: {other}"))),
    }
}
