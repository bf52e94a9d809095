//! The resources beside servers: flavors (with access and extra specs),
//! keypairs, aggregates, availability zones, hypervisors, services, quotas
//! and quota classes, limits, server groups, usage, extensions, hosts, the
//! instance usage audit log, migrations.
//! One module per resource under `resources/`.

use axum::Router;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};

use crate::State;
use crate::error::bad;

pub mod aggregates;
pub mod availability_zones;
pub mod common;
pub mod extensions;
pub mod extra_spec_rules;
pub mod flavor_access;
pub mod flavor_extra_specs;
pub mod flavors;
pub mod hosts;
pub mod hypervisors;
pub mod instance_usage_audit_log;
pub mod keypairs;
pub mod limits;
pub mod migrations;
pub mod os_services;
pub mod quota_classes;
pub mod quota_sets;
pub mod server_groups;
pub mod tenant_usage;

pub fn routes() -> Router<State> {
    Router::new()
        .merge(flavors::routes())
        .merge(flavor_access::routes())
        .merge(flavor_extra_specs::routes())
        .merge(keypairs::routes())
        .merge(aggregates::routes())
        .merge(availability_zones::routes())
        .merge(os_services::routes())
        .merge(hypervisors::routes())
        .merge(quota_sets::routes())
        .merge(quota_classes::routes())
        .merge(limits::routes())
        .merge(server_groups::routes())
        .merge(tenant_usage::routes())
        .merge(extensions::routes())
        .merge(hosts::routes())
        .merge(instance_usage_audit_log::routes())
        .merge(migrations::routes())
        .layer(middleware::from_fn(no_nul))
}

/// A NUL character in the path or the query is a 400: PostgreSQL refuses it
/// in any text it is handed, which would otherwise surface as a 500.
async fn no_nul(req: Request, next: Next) -> Response {
    let nul = |s: &str| s.as_bytes().windows(3).any(|w| w.eq_ignore_ascii_case(b"%00"));
    if nul(req.uri().path()) || req.uri().query().is_some_and(nul) {
        return bad("Invalid input: the request URL holds a NUL character.").into_response();
    }
    next.run(req).await
}
