//! `GET /` (API versions, no token) and `GET /v2.0` (the resources served).

use axum::Router;
use axum::extract::State as AxState;
use axum::response::Response;
use axum::routing::get;
use serde_json::json;

use crate::State;
use crate::api::ok;

pub fn routes() -> Router<State> {
    Router::new().route("/", get(versions))
}

pub fn authed_routes() -> Router<State> {
    Router::new()
        .route("/v2.0", get(resources))
        .route("/v2.0/", get(resources))
        .route("/v2.0/service-providers", get(service_providers))
}

/// `GET /v2.0/service-providers` (the service-type extension): no advanced
/// service (LBaaS, VPNaaS, L3 flavors) has selectable drivers here.
async fn service_providers() -> Response {
    ok(json!({"service_providers": []}))
}

async fn versions(AxState(svc): AxState<State>) -> Response {
    ok(json!({"versions": [{
        "id": "v2.0",
        "status": "CURRENT",
        "links": [{"href": format!("{}/v2.0/", svc.base_url), "rel": "self"}],
    }]}))
}

/// The collections this API serves, as Neutron lists them.
pub const COLLECTIONS: &[(&str, &str)] = &[
    ("network", "networks"),
    ("subnet", "subnets"),
    ("subnetpool", "subnetpools"),
    ("address_scope", "address-scopes"),
    ("port", "ports"),
    ("security_group", "security-groups"),
    ("security_group_rule", "security-group-rules"),
    ("rbac_policy", "rbac-policies"),
    ("agent", "agents"),
    ("availability_zone", "availability_zones"),
];

async fn resources(AxState(svc): AxState<State>) -> Response {
    let items: Vec<_> = COLLECTIONS
        .iter()
        .map(|(name, coll)| {
            json!({"name": name, "collection": coll, "links": [{"href": format!("{}/v2.0/{coll}", svc.base_url), "rel": "self"}]})
        })
        .collect();
    ok(json!({"resources": items}))
}
