//! sea-orm entities of the network tables (one module per table).

pub mod address_scope;
pub mod agent;
pub mod auto_allocated_topology;
pub mod default_security_group;
pub mod floatingip;
pub mod ipallocation;
pub mod network;
pub mod port;
pub mod port_forwarding;
pub mod quota;
pub mod quota_lock;
pub mod rbac_policy;
pub mod router;
pub mod router_route;
pub mod security_group;
pub mod security_group_port_binding;
pub mod security_group_rule;
pub mod subnet;
pub mod subnetpool;
pub mod tag;
