//! sea-orm entities of the compute service's tables, one module per table.

pub mod compute_node;
pub mod instance;
pub mod instance_action;
pub mod instance_action_event;
pub mod instance_fault;
pub mod instance_tag;
pub mod migration;
pub mod service;
// the resources beside servers (M0002)
pub mod aggregate;
pub mod aggregate_host;
pub mod aggregate_metadata;
pub mod flavor;
pub mod flavor_extra_spec;
pub mod flavor_project;
pub mod keypair;
pub mod quota;
pub mod quota_class;
pub mod quota_lock;
pub mod server_group;
pub mod server_group_member;
