//! sea-orm entities of the compute service's tables, one module per table.

pub mod compute_node;
pub mod instance;
pub mod instance_action;
pub mod instance_action_event;
pub mod instance_fault;
pub mod instance_tag;
pub mod service;
