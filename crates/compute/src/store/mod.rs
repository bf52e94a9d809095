//! Persistence of the compute service: the API never writes SQL.

// the resources beside servers
pub mod aggregates;
pub mod compute_nodes;
pub mod flavors;
pub mod instances;
pub mod keypairs;
pub mod migrations;
pub mod quotas;
pub mod server_groups;
pub mod services;
pub mod usage;
