//! Persistence of the network service: one module per resource family; the
//! API never writes SQL. [`query`] turns Neutron list requests into SQL for
//! any table.

pub mod address_scopes;
pub mod floatingips;
pub mod networks;
pub mod port_forwardings;
pub mod ports;
pub mod query;
pub mod quotas;
pub mod routers;
pub mod security_groups;
pub mod subnetpools;
pub mod subnets;
pub mod tags;

/// Neutron's timestamp format (UTC, seconds): `2026-11-26T13:00:00Z`.
pub fn now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}
pub mod agents;
pub mod rbac;
